/**
 * The ADS client: one gRPC stream of {@code AggregatedDiscoveryService/StreamAggregatedResources} (or, incremental,
 * {@code DeltaAggregatedResources}) to istiod or any xDS v3 server, in Envoy's order (CDS, EDS, LDS, RDS). Listeners
 * and clusters are wildcard subscriptions; route configurations and cluster load assignments are asked for by the names
 * the listeners and clusters need. Each response is parsed resource by resource: the valid ones are applied, the
 * invalid ones are NACKed by name and field (gRFC A46) and their last good version keeps serving; one that cannot be
 * decoded (so has no name) rejects the whole response, as in Envoy. Every update reaches the routing core as one new
 * {@link dev.inmesh.runtime.xds.ResourceBundle} applied atomically through
 * {@link dev.inmesh.runtime.snapshot.SnapshotHolder}; the first only once a complete set has arrived or timed out.
 *
 * <p>Public: {@link dev.inmesh.runtime.xds.ads.AdsClient}, its options ({@link dev.inmesh.runtime.xds.ads.AdsOptions},
 * {@link dev.inmesh.runtime.xds.ads.NodeOptions}), the node it presents ({@link dev.inmesh.runtime.xds.ads.NodeBuilder})
 * and its status view ({@link dev.inmesh.runtime.xds.ads.XdsStatus}, {@link dev.inmesh.runtime.xds.ads.XdsStatusJson}).
 * The rest is package-private.
 */
package dev.inmesh.runtime.xds.ads;
