/**
 * Listeners: choosing the listener for a connection's original destination and the filter chain within it, by
 * Envoy's rules ({@link dev.inmesh.runtime.listener.FilterChainSelector}), for the in-JVM outbound path and the
 * capture listeners alike.
 */
package dev.inmesh.runtime.listener;
