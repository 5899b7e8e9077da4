package dev.inmesh.runtime.snapshot;

import dev.inmesh.runtime.runtime.LayeredRuntime;
import dev.inmesh.runtime.runtime.RuntimeEntry;
import dev.inmesh.runtime.runtime.RuntimeSnapshot;
import dev.inmesh.runtime.stats.ConfigStats;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.LayeredRuntimeParser;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Holds the current {@link MeshSnapshot} and swaps it atomically. Readers call {@link #current()} (one volatile
 * read); a config source calls {@link #apply}: a bundle that fails to compile, or that a registered {@link Check}
 * refuses, is rejected with the error naming the resource, and the previous snapshot stays.
 */
public final class SnapshotHolder {
    private volatile MeshSnapshot current;
    private volatile boolean ready;
    private final List<Consumer<MeshSnapshot>> listeners = new CopyOnWriteArrayList<>();
    private final List<Check> checks = new CopyOnWriteArrayList<>();
    private final UpstreamEnvironment upstream;
    private ClusterManager clusters;
    /**
     * While the server initializes, the manager whose clusters' initialization ends it: the last one applied, unless
     * its source held a listener or a cluster back; null while a configuration is applied (the clusters it removes let
     * go of their wait then, which ends nothing).
     */
    private volatile ClusterManager initializingWith;
    /**
     * While the server initializes, the manager whose clusters' initialization ends Envoy's cluster manager
     * initialization ({@link #clustersInitialized()}): the last one applied, unless its source held a cluster back.
     */
    private volatile ClusterManager clustersInitializingWith;
    /** Whether the clusters of a snapshot applied while the server initializes are initialized: never false again. */
    private volatile boolean clustersInitialized;
    /** Completed once the first snapshot's clusters are initialized (see {@link #initialized()}). */
    private final Promise<Void> initialized = Promise.promise();
    /**
     * The values of the runtime's admin layer that {@link #modifyRuntime} set, by key; they stay across configurations,
     * as Envoy's admin layer stays across xDS updates. Guarded by this.
     */
    private Map<String, RuntimeEntry> adminRuntime = Map.of();
    /** The clusters a source holds back while they warm, not in the snapshot yet (see {@link #heldWarming}). */
    private volatile java.util.function.IntSupplier heldWarming = () -> 0;

    /**
     * Envoy's cluster and listener manager statistics, and those the config sources count. Each gauge reads the
     * current snapshot once (a scrape thread's read may meet a swap).
     */
    private final ConfigStats stats = new ConfigStats(() -> {
        MeshSnapshot s = current;
        return s.clusterManager().clusters().size() - warming(s);
    }, () -> warming(current) + this.heldWarming.getAsInt(), () -> current.listeners().size(),
            () -> drainingListeners().size());
    /** The listeners that drain now, as their server tells them (see {@link #drainingListeners(Supplier)}). */
    private volatile java.util.function.Supplier<List<dev.inmesh.runtime.xds.DynamicState.Draining>>
            drainingListeners = List::of;

    /**
     * Tells the holder which listener versions drain now (the standalone proxy's: removed or replaced by a
     * configuration, for the drain time), which Envoy's config dump shows as {@code draining_state} and its
     * {@code listener_manager.total_listeners_draining} counts.
     */
    public void drainingListeners(java.util.function.Supplier<List<dev.inmesh.runtime.xds.DynamicState.Draining>>
                                          draining) {
        this.drainingListeners = draining;
    }

    /** The listener versions draining now, newest first (none unless a server tells them). */
    public List<dev.inmesh.runtime.xds.DynamicState.Draining> drainingListeners() {
        return drainingListeners.get();
    }

    /**
     * Tells the holder how many clusters its source holds back while they warm (an ADS client's clusters waiting for
     * their endpoints), which Envoy's {@code cluster_manager.warming_clusters} counts with those waiting for their
     * first health checks.
     */
    public void heldWarming(java.util.function.IntSupplier count) {
        this.heldWarming = count;
    }

    /**
     * The statistics of a connection manager ({@code MeshMetrics#connectionManager}), asked for each one of every
     * snapshot applied; null for none.
     */
    private java.util.function.Function<dev.inmesh.api.config.listener.HttpConnectionManager,
            dev.inmesh.runtime.stats.DownstreamStats> connectionManagerStats;
    /** The statistics of the TCP proxies by stat prefix ({@code MeshMetrics#tcpProxy}), made alike; null for none. */
    private java.util.function.Function<String, dev.inmesh.runtime.stats.TcpProxyStats> tcpProxyStats;
    /** A holder without Vert.x: clusters are compiled but have no connection pools (tools, tests). */
    public SnapshotHolder() {
        this(new UpstreamEnvironment(null, null, null, null));
    }

    /**
     * The local rate limit filters' token buckets, handed from one snapshot to the next where a filter's or route's
     * config is unchanged: an update elsewhere (an endpoint, another listener) leaves them as they were.
     */
    private final dev.inmesh.runtime.router.LocalRateLimitFilter.Buckets rateLimitBuckets =
            new dev.inmesh.runtime.router.LocalRateLimitFilter.Buckets();

    /** A holder whose snapshots' clusters run in {@code upstream} (Vert.x pools, timers, DNS). */
    public SnapshotHolder(UpstreamEnvironment upstream) {
        this.upstream = upstream;
        this.current = MeshSnapshot.empty();
    }

    /** The snapshot requests should use now. */
    public MeshSnapshot current() {
        return current;
    }

    /** Whether a first complete configuration has been applied. */
    public boolean ready() {
        return ready;
    }

    /**
     * Completed once a first snapshot was applied and its clusters are initialized
     * ({@link ClusterManager#initialized()}: each of its clusters with health checks had its first round), as Envoy's
     * server leaves {@code PRE_INITIALIZING} once its cluster manager has initialized its clusters. A snapshot applied
     * meanwhile is waited for instead: its new clusters, and those it changes (which warm anew), hold it too, as do
     * the listeners and clusters its source holds back ({@link #apply(ResourceBundle, boolean)}). Without health
     * checks, as soon as the first snapshot is applied. Never failed.
     */
    public Future<Void> initialized() {
        return initialized.future();
    }

    /**
     * Whether Envoy's cluster manager would have initialized: a snapshot was applied whose clusters are initialized
     * (as {@link #initialized()} waits for them) and whose source held no cluster back. Envoy's server then
     * initializes its init manager, whose wait for its listeners (their route configurations) is the rest of
     * {@link #initialized()}: its state is {@code INITIALIZING} from then on, {@code PRE_INITIALIZING} before.
     */
    public boolean clustersInitialized() {
        return clustersInitialized || initialized.future().isComplete();
    }

    /**
     * Tells, before a first snapshot is applied, that its source has every cluster of it and their load assignments
     * (or their initial fetch timeouts passed), none of them with health checks: Envoy's cluster manager would have
     * initialized, and its server's init manager wait for the listeners' route configurations, for which the source
     * holds the first snapshot back. {@link #clustersInitialized()} is true from then on ({@code INITIALIZING}).
     */
    public void clustersArrived() {
        clustersInitialized = true;
    }

    /**
     * Compiles and publishes a bundle.
     *
     * @throws InvalidResourceException when a resource is unusable (it does not compile, or a {@link Check} refuses
     *                                  it); nothing changes then
     */
    public MeshSnapshot apply(ResourceBundle bundle) throws InvalidResourceException {
        return apply(bundle, false);
    }

    /**
     * Compiles and publishes a bundle from a source that may hold resources back: {@code held} says that the source
     * holds a listener or a cluster (new, or a new version of one) out of the bundle while it warms there, as the ADS
     * client holds a listener until its route configurations arrive and an EDS cluster until its load assignment
     * does. While the server initializes ({@link #initialized()} not complete), it waits for such a resource too: as
     * Envoy's init helper waits for a cluster CDS adds or updates before the cluster manager has initialized, whatever
     * it waits for, and Envoy's server, before it starts its workers, for each listener LDS adds or updates, whose
     * init target waits for its RDS subscriptions. The source ends such a wait by applying the resource (arrived,
     * rejected or timed out) and no longer holding it.
     *
     * @throws InvalidResourceException as {@link #apply(ResourceBundle)}
     */
    public MeshSnapshot apply(ResourceBundle bundle, boolean held) throws InvalidResourceException {
        return apply(bundle, held, held);
    }

    /**
     * As {@link #apply(ResourceBundle, boolean)}, with {@code heldCluster} saying whether a cluster is among what the
     * source holds back: only a listener held lets {@link #clustersInitialized()} be true meanwhile, as Envoy's
     * cluster manager initializes without waiting for its listeners.
     *
     * @throws InvalidResourceException as {@link #apply(ResourceBundle)}
     */
    public synchronized MeshSnapshot apply(ResourceBundle bundle, boolean held, boolean heldCluster)
            throws InvalidResourceException {
        var buckets = rateLimitBuckets.session();
        MeshSnapshot compiled = SnapshotCompiler.compile(bundle, current.resources(), current.generation() + 1,
                buckets, RuntimeSnapshot.of(bundle.runtime(), adminRuntime));
        runChecks(bundle);
        boolean initializing = !initialized.future().isComplete();
        initializingWith = null;
        clustersInitializingWith = null;
        clusters = clusters == null ? ClusterManager.create(upstream, bundle.clusters(), bundle.endpoints())
                : clusters.update(bundle.clusters(), bundle.endpoints(), initializing);
        MeshSnapshot next = compiled.withClusters(clusters);
        ResourceBundle before = current.resources();
        current = next;
        countChanges(before, bundle);
        buckets.commit();
        ready = true;
        if (initializing) {
            // after the snapshot is current: what waits for it (the proxy's listeners) reads the snapshot
            ClusterManager m = clusters;
            initializingWith = held ? null : m;
            clustersInitializingWith = heldCluster ? null : m;
            m.initialized().onComplete(ar -> {
                if (clustersInitializingWith == m) {
                    clustersInitialized = true;
                }
                if (initializingWith == m) {
                    initialized.tryComplete();
                }
            });
        }
        for (Consumer<MeshSnapshot> l : listeners) {
            l.accept(next);
        }
        registerStats(next);
        return next;
    }

    /**
     * Sets values of the runtime's admin layer, as Envoy's admin {@code /runtime_modify} does
     * ({@code Runtime::AdminLayer::mergeValues}): each read as YAML ({@link LayeredRuntimeParser#yaml}), an empty one
     * removing the key's value. The current configuration is compiled again with them and published, so that the next
     * request (of an open connection too, for a connection manager's RDS routes) takes them, as Envoy's next runtime
     * snapshot; its listeners and clusters stay as they are.
     *
     * @throws IllegalStateException {@code No admin layer specified}, Envoy's words, when the configuration's runtime
     *                               has no admin layer
     * @throws IllegalArgumentException when a value is no YAML; nothing changes then
     */
    public synchronized void modifyRuntime(Map<String, String> values) {
        LayeredRuntime config = current.resources().runtime();
        if (config == null || !config.hasAdminLayer()) {
            throw new IllegalStateException("No admin layer specified");
        }
        Map<String, RuntimeEntry> admin = new java.util.HashMap<>(adminRuntime);
        values.forEach((key, value) -> {
            if (value.isEmpty()) {
                admin.remove(key);
            } else {
                admin.put(key, RuntimeEntry.of(LayeredRuntimeParser.yaml(value), value));
            }
        });
        adminRuntime = Map.copyOf(admin);
        var buckets = rateLimitBuckets.session();
        MeshSnapshot next = SnapshotCompiler.compileUnchecked(current.resources(), current.generation() + 1, buckets,
                RuntimeSnapshot.of(config, adminRuntime)).withClusters(current.clusterManager());
        current = next;
        buckets.commit();
        for (Consumer<MeshSnapshot> l : listeners) {
            l.accept(next);
        }
    }

    /**
     * Counts the clusters and listeners {@code after} adds, changes and removes, as Envoy's cluster and listener
     * managers count them: one whose Envoy message (else, built in code, whose record) is unchanged is no update. A
     * bootstrap's static clusters are not counted, as Envoy's cluster manager counts only the clusters its CDS adds,
     * changes or removes ({@code addOrUpdateCluster}, and {@code removeCluster} of one added through the API), not
     * those it loads from {@code static_resources}; its listener manager adds a static listener as any other.
     */
    private void countChanges(ResourceBundle before, ResourceBundle after) {
        int[] clusters = changes(ResourceType.CLUSTER, before, after, dynamic(before), dynamic(after));
        stats.clustersChanged(clusters[0], clusters[1], clusters[2]);
        int[] listeners = changes(ResourceType.LISTENER, before, after, before.listeners(), after.listeners());
        stats.listenersChanged(listeners[0], listeners[1], listeners[2]);
    }

    /**
     * How many clusters of {@code s} are Envoy's warming ones: those from xDS (or code) waiting for their first health
     * checks; a bootstrap's static cluster is not, as Envoy's cluster manager loads {@code static_resources} clusters
     * straight into its active clusters ({@code /clusters} and {@code /config_dump} show it so).
     */
    private static int warming(MeshSnapshot s) {
        int n = 0;
        for (String name : s.clusterManager().warming().keySet()) {
            n += s.resources().isStatic(ResourceType.CLUSTER, name) ? 0 : 1;
        }
        return n;
    }

    /** The clusters of {@code bundle} that are not a bootstrap's static ones. */
    private static Map<String, ?> dynamic(ResourceBundle bundle) {
        Map<String, ?> all = bundle.clusters();
        if (bundle.statics().isEmpty()) {
            return all;
        }
        Map<String, Object> out = new java.util.HashMap<>(all);
        out.keySet().removeIf(name -> bundle.isStatic(ResourceType.CLUSTER, name));
        return out;
    }

    /** How many resources of {@code type} were added, modified and removed. */
    private static int[] changes(ResourceType type, ResourceBundle before, ResourceBundle after,
                                 Map<String, ?> was, Map<String, ?> is) {
        int[] out = new int[3];
        is.forEach((name, resource) -> {
            if (!was.containsKey(name)) {
                out[0]++;
            } else {
                Object old = before.message(type, name);
                Object now = after.message(type, name);
                boolean same = old != null && now != null ? old.equals(now)
                        : old == null && now == null && was.get(name).equals(resource);
                out[1] += same ? 0 : 1;
            }
        });
        was.keySet().forEach(name -> out[2] += is.containsKey(name) ? 0 : 1);
        return out;
    }

    /**
     * Where the statistics of the connection managers are kept ({@code MeshMetrics#connectionManager}; null: none):
     * those of the current snapshot's and, from now on, of each snapshot applied are made then, at 0, as Envoy makes a
     * connection manager's ({@code http.<stat_prefix>.*}) and its filters' (fault, CORS, RBAC, compressor, local rate
     * limit, its route configuration's local rate limit configs too) when it builds the listener or loads the route
     * configuration, not when the first request comes. Those of a connection manager that a later configuration
     * drops stay in the registry, unlike a removed cluster's (Envoy lets both go with their config): one set
     * per stat prefix (and filter stat prefix) ever configured, shared by name, not one per update.
     */
    public synchronized void connectionManagerStats(java.util.function.Function<
            dev.inmesh.api.config.listener.HttpConnectionManager, dev.inmesh.runtime.stats.DownstreamStats> stats) {
        this.connectionManagerStats = stats;
        registerStats(current);
    }

    /**
     * Where the statistics of the TCP proxy filters are kept ({@code MeshMetrics#tcpProxy}; null: none): made with
     * each snapshot applied, at 0, as Envoy makes a TCP proxy's ({@code tcp.<stat_prefix>.*}) with its filter config.
     */
    public synchronized void tcpProxyStats(
            java.util.function.Function<String, dev.inmesh.runtime.stats.TcpProxyStats> stats) {
        this.tcpProxyStats = stats;
        registerStats(current);
    }

    /**
     * Makes the statistics of {@code snapshot}'s connection managers ({@link #connectionManagerStats}) and TCP
     * proxies ({@link #tcpProxyStats}).
     */
    private void registerStats(MeshSnapshot snapshot) {
        var stats = connectionManagerStats;
        var tcpStats = tcpProxyStats;
        if (stats == null && tcpStats == null) {
            return;
        }
        try {
            // a route configuration shared by connection managers of one stats scope is walked once for it
            Map<Object, java.util.Set<Object>> walked = new java.util.IdentityHashMap<>();
            for (dev.inmesh.api.config.listener.Listener l : snapshot.resources().listeners().values()) {
                for (dev.inmesh.api.config.listener.FilterChain c : l.allFilterChains()) {
                    if (c.filter() instanceof dev.inmesh.api.config.listener.HttpConnectionManager hcm
                            && stats != null) {
                        var ds = stats.apply(hcm);
                        var routes = hcm.routeConfig() != null ? hcm.routeConfig()
                                : snapshot.resources().routes().get(hcm.rdsRouteConfigName());
                        if (ds != null && routes != null && walked.computeIfAbsent(ds, k -> java.util.Collections
                                .newSetFromMap(new java.util.IdentityHashMap<>())).add(routes)) {
                            ds.withRouteConfiguration(routes);
                        }
                    } else if (c.filter() instanceof dev.inmesh.api.config.listener.TcpProxy tcp
                            && tcpStats != null) {
                        tcpStats.apply(tcp.statPrefix());
                    }
                }
            }
        } catch (RuntimeException e) {
            // the snapshot is in force: statistics not made now are made by the first request that counts them
            System.getLogger(SnapshotHolder.class.getName()).log(System.Logger.Level.WARNING,
                    "cannot make the connection managers'' statistics: {0}", e.toString());
        }
    }

    /**
     * Envoy's cluster manager and listener manager statistics of this holder's snapshots, which its config source
     * adds its subscriptions' to (see {@link ConfigStats}).
     */
    public ConfigStats stats() {
        return stats;
    }

    /**
     * Checks a bundle as {@link #apply} would (what spans resources, then the registered checks) without publishing
     * it: what a config source accepts before it applies it.
     *
     * @throws InvalidResourceException the first resource that {@link #apply} would reject
     */
    public synchronized void check(ResourceBundle bundle) throws InvalidResourceException {
        List<InvalidResourceException> problems = SnapshotCompiler.validate(bundle, current.resources());
        if (!problems.isEmpty()) {
            throw problems.get(0);
        }
        runChecks(bundle);
    }

    private void runChecks(ResourceBundle bundle) throws InvalidResourceException {
        for (Check c : checks) {
            c.check(bundle);
        }
    }

    /**
     * Adds a check that every bundle must pass before it is published, beside compiling: what only the one serving the
     * snapshots can tell (the standalone proxy's: whether a new listener's address can be bound). None by default.
     */
    public void addCheck(Check check) {
        checks.add(check);
    }

    /** A check of a bundle before it is published; see {@link #addCheck}. */
    @FunctionalInterface
    public interface Check {
        /**
         * Called on the thread that applies or checks the bundle, with the holder's lock held (the file and ADS
         * sources apply on worker threads, so a check may make a short system call).
         *
         * @throws InvalidResourceException naming the resource that cannot be served; the bundle is not published
         */
        void check(ResourceBundle bundle) throws InvalidResourceException;
    }

    /**
     * Closes the clusters of the current snapshot (timers, pools). Their warming ends, and so does the wait of
     * {@link #initialized()}, also when its source holds a listener or a cluster back (for its route configurations,
     * its load assignment).
     */
    public synchronized void close() {
        if (clusters != null) {
            clusters.close();
        }
        initialized.tryComplete();
    }

    /** Called with every snapshot published after this call. */
    public void onUpdate(Consumer<MeshSnapshot> listener) {
        listeners.add(listener);
    }
}
