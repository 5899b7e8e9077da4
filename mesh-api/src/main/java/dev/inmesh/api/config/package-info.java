/**
 * The configuration model: immutable records mirroring Envoy's v3 resources (Listener, RouteConfiguration, Cluster,
 * ClusterLoadAssignment). Every record validates its arguments in its constructor and throws
 * {@link java.lang.IllegalArgumentException} with a message naming the field and what was expected, such as
 * {@code weight: -1 (expected: >= 0)}. One-of fields are sealed interfaces. No Envoy protobuf type appears here.
 */
package dev.inmesh.api.config;
