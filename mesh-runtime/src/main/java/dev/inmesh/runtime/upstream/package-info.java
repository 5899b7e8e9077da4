/**
 * The upstream half of the routing core: a {@link dev.inmesh.runtime.upstream.ClusterManager} built from each
 * snapshot's clusters and load assignments, one {@link dev.inmesh.runtime.upstream.UpstreamCluster} per cluster
 * (STATIC, STRICT_DNS, EDS, ORIGINAL_DST), its {@link dev.inmesh.runtime.upstream.Host}s by priority and locality
 * ({@link dev.inmesh.runtime.upstream.PrioritySet}, {@link dev.inmesh.runtime.upstream.HostSet}), circuit breakers,
 * outlier detection and per-host Vert.x connection pools, all with Envoy's semantics.
 *
 * <p>The router's contract:
 * <pre>{@code
 * ClusterManager cm = ClusterManager.create(vertx, clustersByName, assignmentsByServiceName);
 * cm = cm.update(nextClusters, nextAssignments);            // hosts that stay keep their state
 * UpstreamCluster c = cm.cluster(name);                       // null: unknown cluster
 * CircuitBreakerState cb = c.circuitBreakers(priority);       // or circuitBreakers() for DEFAULT
 * Long hash = HashPolicies.hash(routeHashPolicies, headers, sourceIp, rawQuery);
 * LbContext ctx = new LbContext(hash != null, hash == null ? 0 : hash, previousHosts::contains, maxAttempts, origDst);
 * Host h = c.chooseHost(ctx);                                 // null: no healthy upstream (503, flag UH)
 * h.stats().requestStarted(); HttpClient client = c.httpClient(h); ... h.stats().requestFinished();
 * if (!cb.tryStartRequest()) -> 503, x-envoy-overloaded: true, flag UO, never retried  // once it has its connection
 * h.outlier().reportConnectSuccess();                         // the attempt has its connection
 * h.outlier().reportHttpStatus(status) | reportLocalOriginFailure(kind) | reportSuccess();
 * h.stats().requestSucceeded() | requestFailed();             // as Envoy's router charges the host (rq_success, rq_error)
 * cb.finishRequest();  // when the attempt ends; and tryStartRetry()/finishRetry() around each retry
 * cm.close();
 * }</pre>
 */
package dev.inmesh.runtime.upstream;
