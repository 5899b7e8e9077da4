/**
 * Istio's bookinfo as Java Vert.x services that embed Inmesh, one {@link dev.inmesh.api.Mesh} per "pod": productpage
 * calls details and reviews, reviews v2 and v3 call ratings, every call goes through the pod's mesh client to a
 * service name such as {@code http://reviews:9080/reviews/0}, and every server is wrapped with
 * {@code mesh.inbound(...)}. Each pod has its own loopback address and listens on 9080, as pods in a cluster do; the
 * mesh configuration is the Envoy JSON in {@code samples/bookinfo/mesh/}, shaped as istiod generates it.
 * {@link dev.inmesh.samples.bookinfo.Bookinfo} starts it all in one JVM and runs a short scenario.
 */
package dev.inmesh.samples.bookinfo;
