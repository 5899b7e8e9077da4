/**
 * Inmesh's public API: the entry points a service compiles against, and the packages below it that hold the
 * configuration model (immutable records mirroring Envoy's xDS v3 resources) and the SPIs.
 */
package dev.inmesh.api;
