/**
 * Statistics in the names dashboards already read: {@link dev.inmesh.runtime.stats.MeshMetrics} turns each finished
 * request ({@link dev.inmesh.runtime.stats.StreamInfo}) into Istio's standard metrics ({@code istio_requests_total},
 * {@code istio_request_duration_milliseconds}, {@code istio_request_bytes}, {@code istio_response_bytes}) with Istio's
 * labels and buckets, counts the standalone proxy's TCP connections in Istio's TCP metrics, and keeps per-cluster
 * upstream statistics in Envoy's names ({@code envoy_cluster_upstream_rq_total{cluster_name=...}}), so that Istio's
 * Grafana dashboards and Kiali read a Micrometer registry's Prometheus scrape unchanged.
 */
package dev.inmesh.runtime.stats;
