/** Endpoints (EDS): {@link dev.inmesh.api.config.endpoint.ClusterLoadAssignment} and its localities and hosts. */
package dev.inmesh.api.config.endpoint;
