package dev.inmesh.runtime.stats;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * One cluster's Envoy-named statistics over adders: counters whose Envoy name ends in {@code _total} as counters, the
 * rest as gauges (see {@link UpstreamStats} on why).
 */
final class UpstreamStatsImpl implements UpstreamStats {
    private static final String PREFIX = "envoy_cluster_";
    /** The largest uint64, Envoy's unset {@code max_connection_pools}, as a double (2^64, the nearest). */
    private static final double UINT64_MAX = 0x1p64;

    /**
     * Where the cluster's meters go: the mesh's registry, and once the cluster is gone ({@link #releaseAll}) a
     * registry of its own that nothing reads, so that its users in flight count on without registering anything.
     */
    private MeterRegistry registry; // guarded by this once constructed
    private final String cluster;
    /** The statistics by cluster name this one is kept in, which it leaves when released. */
    private final java.util.Map<String, UpstreamStats> owner;
    private final LongAdder rqTotal = new LongAdder();
    private final LongAdder rqCompleted = new LongAdder();
    private final LongAdder rqRetry = new LongAdder();
    private final LongAdder rqRetryBackOffExponential = new LongAdder();
    private final LongAdder rqRetryBackOffRateLimited = new LongAdder();
    private final LongAdder rqRetrySuccess = new LongAdder();
    private final LongAdder rqRetryLimitExceeded = new LongAdder();
    private final LongAdder rqRetryOverflow = new LongAdder();
    private final LongAdder rqTimeout = new LongAdder();
    private final LongAdder rqPerTryTimeout = new LongAdder();
    private final LongAdder rqPerTryIdleTimeout = new LongAdder();
    private final LongAdder retryOrShadowAbandoned = new LongAdder();
    private final LongAdder rqMaxDurationReached = new LongAdder();
    private final LongAdder rqPendingOverflow = new LongAdder();
    private final LongAdder rqActiveOverflow = new LongAdder();
    private final LongAdder cxOverflow = new LongAdder();
    private final LongAdder cxNoneHealthy = new LongAdder();
    private final LongAdder originalDstHostInvalid = new LongAdder();
    private final LongAdder cxPoolOverflow = new LongAdder();
    private final LongAdder lbHealthyPanic = new LongAdder();
    private final LongAdder membershipChange = new LongAdder();
    private static final int[] NO_HOSTS = new int[4];
    private volatile java.util.function.Supplier<int[]> membership = () -> NO_HOSTS;
    private final LongAdder cxAttemptsExceeded = new LongAdder();
    private final LongAdder cxTotal = new LongAdder();
    private final LongAdder cxDestroy = new LongAdder();
    private final LongAdder cxMaxRequests = new LongAdder();
    private final LongAdder cxMaxDuration = new LongAdder();
    private final LongAdder cxIdleTimeout = new LongAdder();
    private final LongAdder cxCloseNotify = new LongAdder();
    private final LongAdder cxDestroyLocal = new LongAdder();
    private final LongAdder cxDestroyRemote = new LongAdder();
    private final LongAdder cxDestroyWithActiveRq = new LongAdder();
    private final LongAdder cxDestroyLocalWithActiveRq = new LongAdder();
    private final LongAdder cxDestroyRemoteWithActiveRq = new LongAdder();
    private final LongAdder rqRxReset = new LongAdder();
    private final LongAdder rqTxReset = new LongAdder();
    private final LongAdder cxConnectFail = new LongAdder();
    private final LongAdder cxProtocolError = new LongAdder();
    private final LongAdder cxConnectTimeout = new LongAdder();
    private final AtomicLong cxActive = new AtomicLong();
    private final AtomicLong rqActive = new AtomicLong();
    private final LongAdder rqPendingTotal = new LongAdder();
    private final LongAdder rqPendingFailureEject = new LongAdder();
    private final LongAdder rqCancelled = new LongAdder();
    private final AtomicLong rqPendingActive = new AtomicLong();
    private final DistributionSummary rqTime;
    private final DistributionSummary cxConnectMs;
    private final DistributionSummary cxLengthMs;
    /** The breakers published per routing priority (0 default, 1 high), and whether remaining_* are registered. */
    private final AtomicReferenceArray<BreakerReadings> breakers = new AtomicReferenceArray<>(2);
    private final boolean[] breakerGauges = new boolean[2];
    private final boolean[] remainingGauges = new boolean[2];
    /** The remaining_* gauges of each priority, removed when track_remaining is taken off. */
    private final List<List<Gauge>> remaining = List.of(new ArrayList<>(), new ArrayList<>());
    private final AtomicReferenceArray<LongAdder> byClass = new AtomicReferenceArray<>(6);
    private final LongAdder retriedCompleted = new LongAdder();
    /** Whether {@code retry.upstream_rq_completed} is registered: on the first response retried away. */
    private volatile boolean retriedRegistered;
    private final AtomicReferenceArray<LongAdder> retriedByClass = new AtomicReferenceArray<>(6);
    private final AtomicReferenceArray<LongAdder> retriedByCode = new AtomicReferenceArray<>(600);
    /** Envoy's {@code upstream_rq_<code>}, by status code (100 to 599), each registered on first use. */
    private final AtomicReferenceArray<LongAdder> byCode = new AtomicReferenceArray<>(600);
    private final java.util.concurrent.atomic.AtomicReference<OutlierStats> outlier =
            new java.util.concurrent.atomic.AtomicReference<>();
    private final java.util.concurrent.atomic.AtomicReference<HealthCheckStats> healthCheck =
            new java.util.concurrent.atomic.AtomicReference<>();
    /** The {@code ssl.*} counters, named as {@link #SSL}, once the first handshake registered them. */
    private final java.util.concurrent.atomic.AtomicReference<LongAdder[]> ssl =
            new java.util.concurrent.atomic.AtomicReference<>();
    private static final String[] SSL = {"ssl_handshake", "ssl_connection_error", "ssl_fail_verify_error",
        "ssl_fail_verify_san"};
    /** The {@code update_*} counters (attempt, success, failure, no_rebuild, empty), or null. */
    private final java.util.concurrent.atomic.AtomicReference<LongAdder[]> update =
            new java.util.concurrent.atomic.AtomicReference<>();
    /** The {@code ratelimit.*} counters, by {@link RateLimitStat}, each registered on first use. */
    private final AtomicReferenceArray<LongAdder> rateLimit =
            new AtomicReferenceArray<>(RateLimitStat.values().length);

    UpstreamStatsImpl(MeterRegistry registry, String cluster, java.util.Map<String, UpstreamStats> owner) {
        this.registry = registry;
        this.cluster = cluster;
        this.owner = owner;
        adder("upstream_rq_total", rqTotal);
        adder("upstream_rq_completed", rqCompleted);
        adder("upstream_rq_retry", rqRetry);
        adder("upstream_rq_retry_backoff_exponential", rqRetryBackOffExponential);
        adder("upstream_rq_retry_backoff_ratelimited", rqRetryBackOffRateLimited);
        adder("upstream_rq_retry_success", rqRetrySuccess);
        adder("upstream_rq_retry_limit_exceeded", rqRetryLimitExceeded);
        adder("upstream_rq_retry_overflow", rqRetryOverflow);
        adder("upstream_rq_timeout", rqTimeout);
        adder("upstream_rq_per_try_timeout", rqPerTryTimeout);
        adder("upstream_rq_per_try_idle_timeout", rqPerTryIdleTimeout);
        adder("retry_or_shadow_abandoned", retryOrShadowAbandoned);
        adder("upstream_rq_max_duration_reached", rqMaxDurationReached);
        adder("upstream_rq_pending_overflow", rqPendingOverflow);
        adder("upstream_rq_active_overflow", rqActiveOverflow);
        adder("upstream_cx_overflow", cxOverflow);
        adder("upstream_cx_none_healthy", cxNoneHealthy);
        adder("original_dst_host_invalid", originalDstHostInvalid);
        adder("upstream_cx_pool_overflow", cxPoolOverflow);
        adder("lb_healthy_panic", lbHealthyPanic);
        adder("membership_change", membershipChange);
        String[] membershipGauges = {"membership_healthy", "membership_degraded", "membership_excluded",
            "membership_total"};
        for (int i = 0; i < membershipGauges.length; i++) {
            int index = i;
            Gauge.builder(PREFIX + membershipGauges[i], this, s -> s.membership.get()[index])
                    .tag("cluster_name", cluster).strongReference(true).register(registry);
        }
        adder("upstream_cx_connect_attempts_exceeded", cxAttemptsExceeded);
        adder("upstream_cx_total", cxTotal);
        adder("upstream_cx_destroy", cxDestroy);
        adder("upstream_cx_destroy_local", cxDestroyLocal);
        adder("upstream_cx_destroy_remote", cxDestroyRemote);
        adder("upstream_cx_destroy_with_active_rq", cxDestroyWithActiveRq);
        adder("upstream_cx_destroy_local_with_active_rq", cxDestroyLocalWithActiveRq);
        adder("upstream_cx_destroy_remote_with_active_rq", cxDestroyRemoteWithActiveRq);
        adder("upstream_rq_rx_reset", rqRxReset);
        adder("upstream_rq_tx_reset", rqTxReset);
        adder("upstream_cx_max_requests", cxMaxRequests);
        adder("upstream_cx_max_duration_reached", cxMaxDuration);
        adder("upstream_cx_idle_timeout", cxIdleTimeout);
        adder("upstream_cx_close_notify", cxCloseNotify);
        adder("upstream_cx_connect_fail", cxConnectFail);
        adder("upstream_cx_protocol_error", cxProtocolError);
        adder("upstream_cx_connect_timeout", cxConnectTimeout);
        adder("upstream_rq_pending_total", rqPendingTotal);
        adder("upstream_rq_pending_failure_eject", rqPendingFailureEject);
        adder("upstream_rq_cancelled", rqCancelled);
        Gauge.builder(PREFIX + "upstream_rq_pending_active", rqPendingActive, AtomicLong::doubleValue)
                .tag("cluster_name", cluster).strongReference(true).register(registry);
        Gauge.builder(PREFIX + "upstream_cx_active", cxActive, AtomicLong::doubleValue)
                .tag("cluster_name", cluster).strongReference(true).register(registry);
        Gauge.builder(PREFIX + "upstream_rq_active", rqActive, AtomicLong::doubleValue)
                .tag("cluster_name", cluster).strongReference(true).register(registry);
        var tags = io.micrometer.core.instrument.Tags.of("cluster_name", cluster);
        rqTime = MeshMetrics.histogram(registry, PREFIX + "upstream_rq_time", "Request time milliseconds", tags);
        cxConnectMs = MeshMetrics.histogram(registry, PREFIX + "upstream_cx_connect_ms",
                "Connection establishment milliseconds", tags);
        cxLengthMs = MeshMetrics.histogram(registry, PREFIX + "upstream_cx_length_ms", "Connection length milliseconds",
                tags);
    }

    private void adder(String name, LongAdder a) {
        adder(registry, cluster, name, a);
    }

    /**
     * Registers cluster {@code cluster}'s Envoy counter {@code name} (after {@code cluster.<name>.}, a scope's dot as
     * an underscore), counted in {@code a}: as a counter when the name ends in {@code _total}, else as a gauge that
     * only goes up (see {@link UpstreamStats} on why). Returns {@code a}.
     */
    static LongAdder adder(MeterRegistry registry, String cluster, String name, LongAdder a) {
        return adder(registry, PREFIX + name, "cluster_name", cluster, a);
    }

    /**
     * Registers the Envoy counter whose meter is {@code meter} (Envoy's name flattened, after its tree's
     * {@code envoy_*_} prefix) with the tag {@code tag} (the scope's cluster, stat prefix, ...), counted in {@code a}:
     * as a counter when the name ends in {@code _total}, else as a gauge that only goes up. Returns {@code a}.
     */
    static LongAdder adder(MeterRegistry registry, String meter, String tag, String value, LongAdder a) {
        if (meter.endsWith("_total")) {
            // A gauge's name loses a trailing _total in the Prometheus naming; a counter's keeps it.
            FunctionCounter.builder(meter, a, LongAdder::doubleValue).tag(tag, value).register(registry);
        } else {
            Gauge.builder(meter, a, LongAdder::doubleValue).tag(tag, value).strongReference(true)
                    .register(registry);
        }
        return a;
    }

    @Override
    public void requestStarted() {
        rqTotal.increment();
    }

    @Override
    public void requestCompleted(int status) {
        rqCompleted.increment();
        countClass(byClass, "upstream_rq_xx", status);
        countCode(byCode, "upstream_rq_code", status);
    }

    /**
     * Envoy's {@code cluster.C.upstream_rq_<code>} (or {@code retry.upstream_rq_<code>}): registered as
     * {@code envoy_cluster_upstream_rq_code} ({@code envoy_cluster_retry_upstream_rq_code}) with its
     * {@code response_code} tag, which {@code /stats/prometheus} serves as Istio's proxy does, in the one family
     * {@code envoy_cluster_upstream_rq} ({@code envoy_cluster_retry_upstream_rq}) with the classes
     * ({@code PrometheusText}).
     */
    private void countCode(AtomicReferenceArray<LongAdder> codes, String name, int status) {
        if (status >= 100 && status <= 599) {
            count(codes, status, name, "response_code", Integer::toString);
        }
    }

    @Override
    public void retriedResponse(int status) {
        if (!retriedRegistered) {
            // as Envoy makes its retry. scope's counters as it first charges them: none before the first retry
            synchronized (retriedCompleted) {
                if (!retriedRegistered) {
                    registered(r -> adder(r, cluster, "retry_upstream_rq_completed", retriedCompleted));
                    retriedRegistered = true;
                }
            }
        }
        retriedCompleted.increment();
        // Istio's name for it: cluster.C.retry.upstream_rq_5xx under its response_code_class tag (no
        // retry.upstream_rq_total exists to clash with, unlike upstream_rq_xx's)
        countClass(retriedByClass, "retry_upstream_rq", status);
        // and cluster.C.retry.upstream_rq_503, served in the same family under its response_code tag
        countCode(retriedByCode, "retry_upstream_rq_code", status);
    }

    /** The status's class in {@code classes}, its gauge {@code PREFIX + name} registered on first use. */
    private void countClass(AtomicReferenceArray<LongAdder> classes, String name, int status) {
        int c = status / 100;
        if (c >= 1 && c <= 5) {
            count(classes, c, name, "response_code_class", k -> k + "xx");
        }
    }

    /**
     * Counts in slot {@code i} of {@code slots}, whose gauge {@code PREFIX + name} with tag {@code tag} (its value
     * made of {@code i}, only then) is registered on first use.
     */
    private void count(AtomicReferenceArray<LongAdder> slots, int i, String name, String tag,
                       java.util.function.IntFunction<String> value) {
        LongAdder a = slots.get(i);
        if (a == null) {
            synchronized (slots) {
                a = slots.get(i);
                if (a == null) {
                    LongAdder made = new LongAdder();
                    registered(r -> Gauge.builder(PREFIX + name, made, LongAdder::doubleValue).tag(tag, value.apply(i))
                            .tag("cluster_name", cluster).strongReference(true).register(r));
                    a = made;
                    slots.set(i, a);
                }
            }
        }
        a.increment();
    }

    @Override
    public void tlsHandshake() {
        ssl()[0].increment();
    }

    @Override
    public void tlsFailed(ListenerStats.TlsFailure why) {
        ssl()[switch (why) {
            case VERIFY_ERROR -> 2;
            case VERIFY_SAN -> 3;
            // (no certificate is a client's failure: a server always presents one) any other TLS error
            case CONNECTION_ERROR, NO_CERTIFICATE -> 1;
        }].increment();
    }

    @Override
    public void rateLimit(RateLimitStat stat) {
        firstUse(rateLimit, stat.ordinal(), RATE_LIMIT_NAMES[stat.ordinal()]).increment();
    }

    /** The statistics' names by {@link RateLimitStat} ordinal, made once (not on each call). */
    private static final String[] RATE_LIMIT_NAMES = java.util.Arrays.stream(RateLimitStat.values())
            .map(s -> "ratelimit_" + s.envoyName()).toArray(String[]::new);

    /** Slot {@code i} of {@code slots}: the counter of the cluster's Envoy statistic {@code name}, registered now. */
    private LongAdder firstUse(AtomicReferenceArray<LongAdder> slots, int i, String name) {
        LongAdder a = slots.get(i);
        if (a == null) {
            synchronized (slots) {
                a = slots.get(i);
                if (a == null) {
                    a = registered(r -> adder(r, cluster, name, new LongAdder()));
                    slots.set(i, a);
                }
            }
        }
        return a;
    }

    /** The {@code ssl.*} counters, registered on first use (a TLS cluster's first handshake). */
    private LongAdder[] ssl() {
        return once(ssl, () -> registered(r -> adders(r, PREFIX, "cluster_name", cluster, SSL)));
    }

    /** The {@code update_*} counters, registered on first use (a DNS cluster's first resolution). */
    private LongAdder[] update() {
        return once(update, () -> registered(r -> adders(r, PREFIX, "cluster_name", cluster, "update_attempt",
                "update_success", "update_failure", "update_no_rebuild", "update_empty")));
    }

    /**
     * New counters, one for each of Envoy's {@code names} (flattened, after the tree's {@code meterPrefix}), each
     * registered as {@link #adder} registers one with the tag {@code tag} set to {@code value}.
     */
    static LongAdder[] adders(MeterRegistry registry, String meterPrefix, String tag, String value, String... names) {
        LongAdder[] a = new LongAdder[names.length];
        for (int i = 0; i < a.length; i++) {
            a[i] = adder(registry, meterPrefix + names[i], tag, value, new LongAdder());
        }
        return a;
    }

    @Override
    public void updateAttempt() {
        update()[0].increment();
    }

    @Override
    public void updateOutcome(UpdateOutcome outcome) {
        LongAdder[] a = update();
        switch (outcome) {
            case SUCCESS -> a[1].increment();
            case NO_REBUILD -> {
                a[1].increment();
                a[3].increment();
            }
            case FAILURE -> a[2].increment();
        }
    }

    @Override
    public HealthCheckStats healthCheck() {
        return once(healthCheck, () -> registered(r -> new HealthCheckStats(r, cluster)));
    }

    @Override
    public OutlierStats outlierDetection() {
        return once(outlier, () -> registered(r -> new OutlierStats(r, cluster)));
    }

    /** The statistics in {@code ref}, registered by {@code make} on the first call. */
    static <T> T once(java.util.concurrent.atomic.AtomicReference<T> ref, java.util.function.Supplier<T> make) {
        T v = ref.get();
        if (v == null) {
            synchronized (ref) {
                v = ref.get();
                if (v == null) {
                    v = make.get();
                    ref.set(v);
                }
            }
        }
        return v;
    }

    @Override
    public void retry(boolean rateLimitedBackOff) {
        rqRetry.increment();
        (rateLimitedBackOff ? rqRetryBackOffRateLimited : rqRetryBackOffExponential).increment();
    }

    @Override
    public void retrySuccess() {
        rqRetrySuccess.increment();
    }

    @Override
    public void retryLimitExceeded() {
        rqRetryLimitExceeded.increment();
    }

    @Override
    public void maxDurationReached() {
        rqMaxDurationReached.increment();
    }

    @Override
    public void retryOrShadowAbandoned() {
        retryOrShadowAbandoned.increment();
    }

    /** {@code upstream_internal_redirect_succeeded_total} and {@code _failed_total}, each registered on first use. */
    private final AtomicReferenceArray<LongAdder> internalRedirects = new AtomicReferenceArray<>(2);

    @Override
    public void internalRedirect(boolean followed) {
        firstUse(internalRedirects, followed ? 0 : 1, followed ? "upstream_internal_redirect_succeeded_total"
                : "upstream_internal_redirect_failed_total").increment();
    }

    @Override
    public void retryOverflow() {
        rqRetryOverflow.increment();
    }

    @Override
    public void timeout() {
        rqTimeout.increment();
    }

    @Override
    public void perTryTimeout(boolean idle) {
        (idle ? rqPerTryIdleTimeout : rqPerTryTimeout).increment();
    }

    @Override
    public void overflow() {
        rqPendingOverflow.increment();
    }

    @Override
    public void activeOverflow() {
        rqActiveOverflow.increment();
    }

    @Override
    public void connectionOverflow() {
        cxOverflow.increment();
    }

    @Override
    public void membershipFrom(java.util.function.Supplier<int[]> counts) {
        membership = counts == null ? () -> NO_HOSTS : counts;
    }

    @Override
    public void membershipChanged() {
        membershipChange.increment();
    }

    @Override
    public void connectionPoolOverflow() {
        cxPoolOverflow.increment();
    }

    @Override
    public void noHealthyHost() {
        cxNoneHealthy.increment();
    }

    @Override
    public void originalDstHostInvalid() {
        originalDstHostInvalid.increment();
    }

    @Override
    public void healthyPanic() {
        lbHealthyPanic.increment();
    }

    @Override
    public void connectAttemptsExceeded() {
        cxAttemptsExceeded.increment();
    }

    @Override
    public void connectionOpened() {
        cxTotal.increment();
        cxActive.incrementAndGet();
    }

    @Override
    public void connectTime(long millis) {
        cxConnectMs.record(Math.max(0, millis));
    }

    @Override
    public void connectionClosed(long lengthMillis, boolean local, boolean activeRequest) {
        // the length first: whoever sees one fewer active sees the closed connection's length too
        cxLengthMs.record(Math.max(0, lengthMillis));
        destroyed(local);
        if (activeRequest) {
            cxDestroyWithActiveRq.increment();
            (local ? cxDestroyLocalWithActiveRq : cxDestroyRemoteWithActiveRq).increment();
        }
        cxActive.decrementAndGet();
    }

    @Override
    public void streamReset(boolean remote) {
        (remote ? rqRxReset : rqTxReset).increment();
    }

    /** A connection, connected or not, closed: upstream_cx_destroy and the side that closed it. */
    private void destroyed(boolean local) {
        cxDestroy.increment();
        (local ? cxDestroyLocal : cxDestroyRemote).increment();
    }

    @Override
    public void requestTime(long millis) {
        rqTime.record(Math.max(0, millis));
    }

    @Override
    public void connectFailed(boolean local) {
        cxConnectFail.increment();
        cxTotal.increment(); // Envoy's pool counts a connection in upstream_cx_total when it makes it, before it connects
        destroyed(local);
    }

    @Override
    public void connectionMaxRequests() {
        cxMaxRequests.increment();
    }

    @Override
    public void connectionMaxDuration() {
        cxMaxDuration.increment();
    }

    @Override
    public void connectionIdleTimeout() {
        cxIdleTimeout.increment();
    }

    @Override
    public void connectionCloseNotify() {
        cxCloseNotify.increment();
    }

    @Override
    public void connectTimeout() {
        cxConnectTimeout.increment();
    }

    @Override
    public void protocolError() {
        cxProtocolError.increment();
    }

    @Override
    public void activeRequests(int delta) {
        rqActive.addAndGet(delta);
    }

    @Override
    public void pendingStarted() {
        rqPendingTotal.increment();
        rqPendingActive.incrementAndGet();
    }

    @Override
    public void pendingEnded(boolean connectionFailed) {
        rqPendingActive.decrementAndGet();
        if (connectionFailed) {
            rqPendingFailureEject.increment();
        }
    }

    @Override
    public void pendingCancelled() {
        rqCancelled.increment();
    }

    @Override
    public void circuitBreakers(String priority, BreakerReadings readings) {
        int p = "high".equals(priority) ? 1 : 0;
        breakers.set(p, readings);
        // read without the lock (the router calls this for every request): the lock decides again, and a call that
        // read a stale view is followed by the next request's
        if (breakerGauges[p] && remainingGauges[p] == readings.trackRemaining()) {
            return;
        }
        synchronized (breakers) {
            String scope = "circuit_breakers_" + (p == 1 ? "high" : "default") + "_";
            if (remainingGauges[p] && !readings.trackRemaining()) {
                // track_remaining taken off the cluster: its gauges go, as with Envoy's new cluster info
                registered(r -> {
                    remaining.get(p).forEach(r::remove);
                    return null;
                });
                remaining.get(p).clear();
                remainingGauges[p] = false;
                return;
            }
            if (!breakerGauges[p]) {
                // as Envoy's: 0 until the count first moves (see BreakerReadings.counted), whatever the limit
                breakerGauge(scope + "cx_open", p, r -> (r.counted() & BreakerReadings.CONNECTIONS) != 0
                        && r.openConnections() >= r.maxConnections() ? 1 : 0);
                breakerGauge(scope + "rq_pending_open", p, r -> (r.counted() & BreakerReadings.PENDING) != 0
                        && r.pendingRequests() >= r.maxPendingRequests() ? 1 : 0);
                breakerGauge(scope + "rq_open", p, r -> (r.counted() & BreakerReadings.REQUESTS) != 0
                        && r.activeRequests() >= r.maxRequests() ? 1 : 0);
                // as Envoy's: the max_retries resource's, which a retry_budget leaves beside it
                breakerGauge(scope + "rq_retry_open", p, r -> (r.counted() & BreakerReadings.RETRIES) != 0
                        && r.activeRetries() >= r.maxRetries() ? 1 : 0);
                breakerGauge(scope + "cx_pool_open", p, r -> (r.counted() & BreakerReadings.POOLS) != 0
                        && r.openConnectionPools() >= r.maxConnectionPools() ? 1 : 0);
                breakerGauges[p] = true;
            }
            if (readings.trackRemaining() && !remainingGauges[p]) {
                // as Envoy: what is left before the breaker opens, never below 0
                List<Gauge> made = remaining.get(p);
                made.add(breakerGauge(scope + "remaining_cx", p,
                        r -> Math.max(0, r.maxConnections() - r.openConnections())));
                made.add(breakerGauge(scope + "remaining_pending", p,
                        r -> Math.max(0, r.maxPendingRequests() - r.pendingRequests())));
                made.add(breakerGauge(scope + "remaining_rq", p,
                        r -> Math.max(0, r.maxRequests() - r.activeRequests())));
                // under a retry_budget Envoy holds it at 0: the remaining share of a budget is not tracked
                made.add(breakerGauge(scope + "remaining_retries", p, r -> r.retryBudgeted() ? 0
                        : Math.max(0, r.retryLimit() - r.activeRetries())));
                // no max_connection_pools: Envoy's limit is the largest uint64, what remains of it as near as a
                // gauge's double holds it (the statistics print it as that uint64)
                made.add(registered(into -> Gauge.builder(PREFIX + scope + "remaining_cx_pools", breakers, b -> {
                    BreakerReadings r = b.get(p);
                    if (r == null) {
                        return 0;
                    }
                    return r.maxConnectionPools() == CircuitBreakers.Thresholds.NO_LIMIT
                            ? UINT64_MAX - r.openConnectionPools()
                            : Math.max(0, r.maxConnectionPools() - r.openConnectionPools());
                }).tag("cluster_name", cluster).strongReference(true).register(into)));
                remainingGauges[p] = true;
            }
        }
    }

    /** A gauge over the breakers published for priority {@code p}, 0 while none are. */
    private Gauge breakerGauge(String name, int p, java.util.function.ToLongFunction<BreakerReadings> value) {
        return registered(into -> Gauge.builder(PREFIX + name, breakers, b -> {
            BreakerReadings r = b.get(p);
            return r == null ? 0 : value.applyAsLong(r);
        }).tag("cluster_name", cluster).strongReference(true).register(into));
    }

    /**
     * What {@code register} makes registering the cluster's meters after its construction (a statistic's first use):
     * in the mesh's registry while the cluster is in use, in a detached one once it was released.
     */
    private synchronized <T> T registered(java.util.function.Function<MeterRegistry, T> register) {
        return register.apply(registry);
    }

    /**
     * Lets the statistics of clusters that are gone go, as Envoy frees a removed cluster's scope: their meters leave
     * the registry (one pass over it for them all), and they leave the statistics kept by name, so that a cluster of
     * the same name added later starts at 0. Their users in flight count on into meters no registry holds.
     */
    static void releaseAll(java.util.Collection<? extends UpstreamStats> gone) {
        java.util.Map<MeterRegistry, java.util.Set<String>> byRegistry = new java.util.IdentityHashMap<>();
        List<UpstreamStatsImpl> released = new ArrayList<>();
        for (UpstreamStats s : gone) {
            if (s instanceof UpstreamStatsImpl i) {
                MeterRegistry r = i.detach();
                if (r != null) {
                    byRegistry.computeIfAbsent(r, k -> new java.util.HashSet<>()).add(i.cluster);
                    released.add(i);
                }
            }
        }
        byRegistry.forEach((registry, clusters) -> {
            for (io.micrometer.core.instrument.Meter m : registry.getMeters()) {
                if (m.getId().getName().startsWith(PREFIX) && clusters.contains(m.getId().getTag("cluster_name"))) {
                    registry.remove(m);
                }
            }
        });
        // only then: a cluster of the same name made meanwhile would have been handed these meters
        released.forEach(i -> i.owner.remove(i.cluster, i));
    }

    /** Points lazy registrations at a registry of its own; the mesh's registry, or null when already detached. */
    private synchronized MeterRegistry detach() {
        if (registry instanceof Detached) {
            return null;
        }
        MeterRegistry r = registry;
        registry = new Detached();
        return r;
    }

    /** The registry of a released cluster's late meters, which nothing scrapes. */
    private static final class Detached extends io.micrometer.core.instrument.simple.SimpleMeterRegistry {
    }
}
