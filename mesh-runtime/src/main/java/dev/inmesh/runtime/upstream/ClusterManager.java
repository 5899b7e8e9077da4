package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.util.HashMap;
import java.util.Map;

/**
 * The upstream clusters of one configuration. Built from a snapshot's clusters and load assignments;
 * {@link #update} gives the manager for the next snapshot, carrying over each cluster that stays (its hosts with
 * their active requests, round-robin positions, ejections and pools, and its breaker counts), so that requests in
 * flight are not failed. Clusters that stay are updated in place and shared by both managers (their statistics with
 * them); clusters that left are closed gracefully and their statistics released. The manager that {@code update}
 * replaced is retired: its {@link #close()} does nothing.
 */
public final class ClusterManager implements AutoCloseable {
    private final UpstreamEnvironment env;
    private final Map<String, UpstreamCluster> clusters;
    private boolean retired; // guarded by this

    private ClusterManager(UpstreamEnvironment env, Map<String, UpstreamCluster> clusters) {
        this.env = env;
        this.clusters = clusters;
    }

    /**
     * A manager on Vert.x.
     *
     * @param clusters by cluster name
     * @param assignments EDS load assignments by service name ({@link Cluster#serviceName()})
     */
    public static ClusterManager create(Vertx vertx, Map<String, Cluster> clusters,
                                        Map<String, ClusterLoadAssignment> assignments) {
        return create(UpstreamEnvironment.of(vertx), clusters, assignments);
    }

    /** A manager in a given environment (tests and benchmarks pass a fake clock, seeded randomness, no Vert.x). */
    public static ClusterManager create(UpstreamEnvironment env, Map<String, Cluster> clusters,
                                        Map<String, ClusterLoadAssignment> assignments) {
        return new ClusterManager(env, Map.of()).build(clusters, assignments, true);
    }

    /**
     * The manager for the next snapshot. Clusters are matched by name; hosts by address.
     */
    public ClusterManager update(Map<String, Cluster> newClusters, Map<String, ClusterLoadAssignment> assignments) {
        return update(newClusters, assignments, false);
    }

    /**
     * The same, {@code initializing} saying whether the server still initializes: a changed cluster with health checks
     * then warms anew (see {@link UpstreamCluster#apply}), as Envoy's init helper waits for the new version of a
     * cluster updated before the cluster manager has initialized.
     */
    public synchronized ClusterManager update(Map<String, Cluster> newClusters,
                                              Map<String, ClusterLoadAssignment> assignments, boolean initializing) {
        if (retired) {
            throw new IllegalStateException("this cluster manager was replaced or closed");
        }
        ClusterManager next = build(newClusters, assignments, initializing);
        retired = true;
        java.util.List<dev.inmesh.runtime.stats.UpstreamStats> gone = new java.util.ArrayList<>();
        for (Map.Entry<String, UpstreamCluster> e : clusters.entrySet()) {
            if (!newClusters.containsKey(e.getKey())) {
                e.getValue().close();
                var stats = e.getValue().stats();
                if (stats != null) {
                    gone.add(stats);
                }
            }
        }
        // as Envoy frees a removed cluster's stats scope: its statistics leave the registry and /stats
        dev.inmesh.runtime.stats.UpstreamStats.release(gone);
        return next;
    }

    private ClusterManager build(Map<String, Cluster> newClusters, Map<String, ClusterLoadAssignment> assignments,
                                 boolean initializing) {
        Map<String, UpstreamCluster> out = new HashMap<>();
        for (Map.Entry<String, Cluster> e : newClusters.entrySet()) {
            Cluster c = e.getValue();
            UpstreamCluster uc = clusters.get(c.name());
            if (uc == null) {
                uc = new UpstreamCluster(c, env);
            }
            uc.apply(c, assignments.get(c.serviceName()), initializing);
            out.put(c.name(), uc);
        }
        return new ClusterManager(env, Map.copyOf(out));
    }

    /**
     * The cluster of that name in use, or null (Envoy answers 503 with flag NC, "cluster not found"). A new cluster
     * with health checks is not in use until it is warm ({@link UpstreamCluster#warming()}): as Envoy's cluster
     * manager makes a cluster its workers' only once its first round of checks completed, a request for it meanwhile
     * finds no cluster. Nothing waits for it, on the event loop or elsewhere: the checks run on their own timers, and
     * the cluster is in use from the request after its last first check.
     */
    public UpstreamCluster cluster(String name) {
        UpstreamCluster c = clusters.get(name);
        return c == null || c.warming() ? null : c;
    }

    /**
     * The name cluster {@code name} is observed by, Envoy's observability name: its {@code alt_stat_name} (istiod
     * writes the name and a {@code ;}), else its name, also when there is no such cluster (null for none).
     */
    public String observabilityName(String name) {
        UpstreamCluster c = name == null ? null : clusters.get(name);
        return c == null ? name : c.config().observabilityName();
    }

    /**
     * Completed once every cluster that warms now is warm (or was closed): Envoy's cluster manager initialized, which
     * its server waits for before it starts its workers and answers {@code /ready} with {@code LIVE}. Envoy bounds
     * this wait only by the checks' own timeouts, and so does this future: a check that never completes (no answer
     * and no timeout) holds it. Completed at once when no cluster warms (none has health checks).
     */
    public Future<Void> initialized() {
        var warming = warming().values().stream().map(UpstreamCluster::initialized).toList();
        return warming.isEmpty() ? Future.succeededFuture() : Future.all(warming).mapEmpty();
    }

    /**
     * The clusters that warm now ({@link UpstreamCluster#warming}: new, with health checks, not in use until their
     * first round), by name; Envoy's warming clusters.
     */
    public Map<String, UpstreamCluster> warming() {
        Map<String, UpstreamCluster> out = new java.util.HashMap<>();
        clusters.forEach((name, c) -> {
            if (c.warming()) {
                out.put(name, c);
            }
        });
        return out;
    }

    /** All clusters by name, those that warm too. */
    public Map<String, UpstreamCluster> clusters() {
        return clusters;
    }

    /** Closes every cluster (timers stop, pools drain); does nothing on a manager that {@link #update} replaced. */
    @Override
    public synchronized void close() {
        if (retired) {
            return;
        }
        retired = true;
        clusters.values().forEach(UpstreamCluster::close);
    }
}
