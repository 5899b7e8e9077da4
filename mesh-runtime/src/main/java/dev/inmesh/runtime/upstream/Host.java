package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.runtime.lb.LbHost;
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater;

/**
 * One upstream host of a cluster, known by its address. The same object lives as long as its address stays in the
 * cluster: an EDS update changes its weight, health, locality and metadata in place, and keeps its
 * {@link #stats()}, its {@link #outlier()} state and its connection pool.
 */
public final class Host implements LbHost {
    private static final AtomicIntegerFieldUpdater<Host> ACTIVE =
            AtomicIntegerFieldUpdater.newUpdater(Host.class, "active");

    private final SocketAddress address;
    private final String addressString;
    private final HostStats stats = new HostStats(this);
    /** Requests in flight (kept here rather than in {@link HostStats}: one reference less for LEAST_REQUEST). */
    private volatile int active;
    private final OutlierMonitor outlier;
    private volatile String hostname;
    private volatile int weight;
    private volatile HealthStatus health;
    private volatile Locality locality;
    private volatile int priority;
    private volatile Metadata metadata;
    private volatile dev.inmesh.api.config.endpoint.HealthCheckConfig healthCheckConfig;
    /** What ring hash and Maglev hash: see {@link #hashKey()}. */
    private volatile String hashKey;
    /** Where the host is connected to, in the order of a happy eyeballs race: see {@link #connectAddresses()}. */
    private volatile java.util.List<SocketAddress> connectAddresses;
    /** The transport socket the host's metadata chose in its cluster, or null before it was placed. */
    volatile TransportSockets.Slot socket;
    /** Set while the host is in use, cleared by ORIGINAL_DST cleanup sweeps. */
    volatile boolean used;
    final HostPool pool;
    /**
     * When the cluster first saw the host healthy ({@link UpstreamEnvironment#ticker()} nanos), or
     * {@link LbHost#NEVER_HEALTHY}; kept across updates and ejections, as Envoy keeps it without active health checks
     * (with them, the last check a failed host passed: {@link #passedActiveHealthCheck}).
     */
    private volatile long healthySince = NEVER_HEALTHY;
    /**
     * Envoy's {@code FAILED_ACTIVE_HC}: the cluster's active health check failed the host, or has not passed it yet
     * (a host of a cluster with health checks starts so). Set and cleared by its {@link HealthChecker}.
     */
    volatile boolean failedActiveHc;
    /** Envoy's {@code ACTIVE_HC_TIMEOUT}: the host is failed and its last check timed out. */
    volatile boolean activeHcTimeout;
    /**
     * Envoy's {@code EXCLUDED_VIA_IMMEDIATE_HC_FAIL}: an HTTP check was answered with an unexpected status and
     * {@code x-envoy-immediate-health-check-fail} (an Envoy upstream failing its health checks, as when draining);
     * cleared when the host's checks pass again.
     */
    volatile boolean excludedViaImmediateHcFail;
    /**
     * The session of the cluster's active health checker that checks this host, or null (Envoy's host health checker
     * monitor: a null one for a host nothing checks). See {@link #immediateHealthCheckFail()}.
     */
    volatile HealthChecker.Session healthCheckSession;
    /** Envoy's {@code DEGRADED_ACTIVE_HC}: the host's last passed check was answered with {@code x-envoy-degraded}. */
    volatile boolean degradedActiveHc;
    /**
     * Envoy's {@code PENDING_DYNAMIC_REMOVAL}: the host left its cluster's EDS assignment or DNS answers while its
     * active health checks passed it, and stays (routable while healthy) until they fail it or it comes back.
     */
    volatile boolean pendingDynamicRemoval;

    Host(SocketAddress address, LbEndpoint endpoint, Locality locality, int priority, OutlierMonitor outlier,
         HostPool pool, boolean hostnameForHashing) {
        this.address = address;
        this.addressString = address.toString();
        this.outlier = outlier;
        this.pool = pool;
        outlier.attach(this);
        pool.attach(stats);
        update(endpoint, locality, priority, hostnameForHashing);
    }

    /** @param hostnameForHashing the cluster's {@code use_hostname_for_hashing}: see {@link #hashKey()} */
    void update(LbEndpoint endpoint, Locality locality, int priority, boolean hostnameForHashing) {
        this.hostname = endpoint.hostname();
        this.weight = endpoint.loadBalancingWeight();
        this.health = endpoint.healthStatus();
        this.metadata = endpoint.metadata();
        this.healthCheckConfig = endpoint.healthCheckConfig();
        this.hashKey = hashKey(endpoint.metadata(), hostnameForHashing ? endpoint.hostname() : addressString);
        this.connectAddresses = happyEyeballsOrder(address, endpoint.additionalAddresses());
        this.locality = locality;
        this.priority = priority;
    }

    public SocketAddress address() {
        return address;
    }

    /**
     * Every address the host may be connected to (its endpoint's {@code additional_addresses} after its own), in the
     * order Envoy's happy eyeballs tries them: the host's own address first, then alternating between the address
     * families, each family's addresses in their order; a host of one address has only that one. The host stays known
     * by {@link #address()}.
     */
    public java.util.List<SocketAddress> connectAddresses() {
        return connectAddresses;
    }

    static java.util.List<SocketAddress> happyEyeballsOrder(SocketAddress own, java.util.List<SocketAddress> more) {
        if (more.isEmpty()) {
            return java.util.List.of(own);
        }
        java.util.ArrayDeque<SocketAddress> same = new java.util.ArrayDeque<>();
        java.util.ArrayDeque<SocketAddress> other = new java.util.ArrayDeque<>();
        boolean ownV6 = own.address().contains(":");
        for (SocketAddress a : more) {
            (a.address().contains(":") == ownV6 ? same : other).add(a);
        }
        java.util.List<SocketAddress> out = new java.util.ArrayList<>(1 + more.size());
        out.add(own);
        // the first family has had its turn: the other's next, then alternately
        boolean otherTurn = true;
        while (!same.isEmpty() || !other.isEmpty()) {
            java.util.ArrayDeque<SocketAddress> from = otherTurn && !other.isEmpty() || same.isEmpty() ? other : same;
            out.add(from.poll());
            otherTurn = !otherTurn;
        }
        return java.util.List.copyOf(out);
    }

    @Override
    public String addressString() {
        return addressString;
    }

    /**
     * The key ring hash and Maglev place the host by, as Envoy's: its endpoint metadata's {@code envoy.lb}
     * {@code hash_key} when that is a non-empty string, else its hostname when the cluster sets
     * {@code use_hostname_for_hashing}, else its address.
     */
    @Override
    public String hashKey() {
        return hashKey;
    }

    private static String hashKey(Metadata metadata, String otherwise) {
        return metadata.get("envoy.lb", "hash_key") instanceof String s && !s.isEmpty() ? s : otherwise;
    }

    /** The endpoint's hostname from EDS (may be empty), used as the Host header by some routes. */
    public String hostname() {
        return hostname;
    }

    @Override
    public int weight() {
        return weight;
    }

    @Override
    public long healthySinceNanos() {
        return healthySince;
    }

    /**
     * A check passed while the host was failed by active health checks: as Envoy's last health check pass time, it
     * is when the host's slow start counts from.
     */
    void passedActiveHealthCheck(long now) {
        healthySince = now;
    }

    /** Notes {@code now} as the moment the host was first healthy, if it is healthy and was never before. */
    void noteHealthy(long now) {
        if (healthySince == NEVER_HEALTHY && healthy()) {
            healthySince = now;
        }
    }

    @Override
    public int activeRequests() {
        return active;
    }

    void addActive(int delta) {
        ACTIVE.addAndGet(this, delta);
    }

    /** The health EDS reported. */
    public HealthStatus healthStatus() {
        return health;
    }

    public Locality locality() {
        return locality;
    }

    public int priority() {
        return priority;
    }

    public Metadata metadata() {
        return metadata;
    }

    /** How the cluster's active health checks treat the host (its endpoint's {@code health_check_config}). */
    public dev.inmesh.api.config.endpoint.HealthCheckConfig healthCheckConfig() {
        return healthCheckConfig;
    }

    /**
     * Whether the load balancer may pick this host outside panic: healthy or degraded, not ejected, and not failed by
     * active health checks.
     */
    public boolean available() {
        return health.selectable() && !outlier.ejected() && !failedActiveHc;
    }

    /**
     * Healthy for balancing, as Envoy counts it: EDS health HEALTHY or UNKNOWN, not ejected, and not failed by active
     * health checks (a host is healthy only when neither EDS nor its checks say otherwise).
     */
    @Override
    public boolean healthy() {
        return (health == HealthStatus.HEALTHY || health == HealthStatus.UNKNOWN) && !outlier.ejected()
                && !failedActiveHc && !degradedActiveHc;
    }

    /**
     * Degraded (EDS health DEGRADED, or HEALTHY or UNKNOWN and degraded by its active health checks), not ejected and
     * not failed by active health checks: picked only for the load healthy hosts cannot take.
     */
    public boolean degraded() {
        boolean edsUp = health == HealthStatus.HEALTHY || health == HealthStatus.UNKNOWN;
        return (health == HealthStatus.DEGRADED || edsUp && degradedActiveHc) && !outlier.ejected()
                && !failedActiveHc;
    }

    /** Whether the host's last passed check said it is degraded (Envoy's {@code DEGRADED_ACTIVE_HC}). */
    public boolean degradedByActiveHealthCheck() {
        return degradedActiveHc;
    }

    /** Whether active health checks failed the host, or have not passed it yet (Envoy's {@code FAILED_ACTIVE_HC}). */
    public boolean failedActiveHealthCheck() {
        return failedActiveHc;
    }

    /** Whether the host is failed by active health checks and its last check timed out ({@code ACTIVE_HC_TIMEOUT}). */
    public boolean activeHealthCheckTimedOut() {
        return activeHcTimeout;
    }

    /**
     * Excluded from balancing (EDS health DRAINING, or excluded by an immediate health check failure): never picked
     * outside panic, and not counted in the priority's availability, so that draining hosts neither lower it nor push
     * it into panic.
     */
    public boolean excluded() {
        return health == HealthStatus.DRAINING || excludedViaImmediateHcFail;
    }

    /** The host is no longer checked by {@code session}: nothing hands it answers asking to fail it any more. */
    void clearHealthCheckSession(HealthChecker.Session session) {
        if (healthCheckSession == session) {
            healthCheckSession = null;
        }
    }

    /** Forgets what active health checks said of the host (it is no longer checked). */
    void clearActiveHealthCheck() {
        failedActiveHc = false;
        activeHcTimeout = false;
        excludedViaImmediateHcFail = false;
        degradedActiveHc = false;
    }

    /**
     * Whether the host left its cluster's assignment and stays only until its active health checks fail it
     * ({@code PENDING_DYNAMIC_REMOVAL}).
     */
    public boolean pendingDynamicRemoval() {
        return pendingDynamicRemoval;
    }

    /**
     * An answer to a request (not a check) carried {@code x-envoy-immediate-health-check-fail}: as Envoy's router, the
     * host is handed to its health checker, which excludes it and fails it at once as a passive failure (see
     * {@link HealthChecker.Session#immediateFailure}); a host nothing checks is left as it is.
     */
    public void immediateHealthCheckFail() {
        HealthChecker.Session s = healthCheckSession;
        if (s != null) {
            s.immediateFailure();
        }
    }

    /** Whether a check's answer asked to exclude the host ({@code EXCLUDED_VIA_IMMEDIATE_HC_FAIL}). */
    public boolean excludedViaImmediateHealthCheckFail() {
        return excludedViaImmediateHcFail;
    }

    public HostStats stats() {
        return stats;
    }

    public OutlierMonitor outlier() {
        return outlier;
    }

    @Override
    public String toString() {
        return addressString;
    }
}
