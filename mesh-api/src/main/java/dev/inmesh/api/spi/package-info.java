/** Service provider interfaces: how the runtime plugs in behind {@link dev.inmesh.api.Mesh}. */
package dev.inmesh.api.spi;
