/** Command-line tools built on the routing core ({@code inmesh route-check}), registered by the {@code inmesh} launcher. */
package dev.inmesh.runtime.tools;
