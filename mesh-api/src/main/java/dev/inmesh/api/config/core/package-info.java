/** Types shared by several resources: addresses, metadata, header mutations, string matchers, fractions. */
package dev.inmesh.api.config.core;
