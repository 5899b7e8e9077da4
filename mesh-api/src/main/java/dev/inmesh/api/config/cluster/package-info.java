/** Upstream clusters (CDS): discovery type, load balancing policy, circuit breakers, outlier detection. */
package dev.inmesh.api.config.cluster;
