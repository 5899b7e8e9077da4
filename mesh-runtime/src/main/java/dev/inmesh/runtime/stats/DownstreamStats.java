package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * One HTTP connection manager's statistics, named as Envoy names them under {@code http.<stat_prefix>.}: the
 * connection manager's ({@code downstream_rq_total}, {@code downstream_rq_2xx}, {@code downstream_cx_total}, ...),
 * its router filter's ({@code no_route}, {@code no_cluster}, {@code rq_redirect}, {@code rq_direct_response}), its
 * tracing's ({@code tracing.random_sampling}, {@code tracing.service_forced}, {@code tracing.client_enabled},
 * {@code tracing.not_traceable}, {@code tracing.health_check}), its
 * fault filter's ({@code fault.aborts_injected}, ...), its CORS filter's ({@code cors.origin_valid},
 * {@code cors.origin_invalid}) and its RBAC filters' ({@code rbac.allowed}, {@code rbac.denied},
 * {@code rbac.shadow_allowed}, {@code rbac.shadow_denied}, each after the filter's own stat prefix), and, through
 * it, its local rate limit filter's (rooted at that filter's own stat prefix, {@link #localRateLimit}). Connection
 * managers with the same stat prefix share them, as Envoy's statistics are shared by name. Scraped with the prefix in the tag {@code http_conn_manager_prefix}, as
 * {@code envoy_http_downstream_rq_total{http_conn_manager_prefix="<prefix>"}} and
 * {@code envoy_http_downstream_rq{response_code_class="2xx",http_conn_manager_prefix="<prefix>"}} (registered as
 * {@code envoy_http_downstream_rq_xx}, beside {@code _total}, and renamed in the admin's scrape); as with
 * {@link UpstreamStats}, the counters whose Envoy name does not end in {@code _total} are gauges that only go up.
 *
 * <p>The in-JVM paths have no downstream connections: they count requests only ({@code downstream_cx_*} stay 0);
 * the standalone proxy counts both. A connection manager's statistics are looked up once per compiled decision or
 * connection, never per request by name. Every method is thread-safe and allocation-free.
 */
public final class DownstreamStats implements RbacStats {
    static final String PREFIX = "envoy_http_";
    /** The tag that carries the stat prefix: Istio's tag name (Envoy's default: envoy.http_conn_manager_prefix). */
    static final String TAG = "http_conn_manager_prefix";

    private final MeterRegistry registry;
    private final String statPrefix;
    private final LongAdder rqTotal = new LongAdder();
    private final LongAdder rqHttp1 = new LongAdder();
    private final LongAdder rqHttp2 = new LongAdder();
    private final AtomicLong rqActive = new AtomicLong();
    private final LongAdder rqCompleted = new LongAdder();
    private final LongAdder[] byClass = new LongAdder[6];
    private final LongAdder rqRxReset = new LongAdder();
    private final LongAdder rqTxReset = new LongAdder();
    private final LongAdder rqTooManyPrematureResets = new LongAdder();
    private final LongAdder rqIdleTimeout = new LongAdder();
    private final LongAdder rqMaxDurationReached = new LongAdder();
    private final LongAdder rqTimeout = new LongAdder();
    private final LongAdder rqHeaderTimeout = new LongAdder();
    private final LongAdder rqTooLarge = new LongAdder();
    private final LongAdder rsTooLarge = new LongAdder();
    private final LongAdder rqFailedPathNormalization = new LongAdder();
    private final LongAdder rqRedirectedWithNormalizedPath = new LongAdder();
    private final LongAdder rqRejectedViaIpDetection = new LongAdder();
    private final LongAdder rqNonRelativePath = new LongAdder();
    private final LongAdder noRoute = new LongAdder();
    private final LongAdder rqWsOnNonWsRoute = new LongAdder();
    private final LongAdder cxUpgradesTotal = new LongAdder();
    private final AtomicLong cxUpgradesActive = new AtomicLong();
    private final LongAdder noCluster = new LongAdder();
    private final LongAdder rqRedirect = new LongAdder();
    private final LongAdder rqDirectResponse = new LongAdder();
    private final LongAdder tracingRandomSampling = new LongAdder();
    private final LongAdder tracingServiceForced = new LongAdder();
    private final LongAdder tracingClientEnabled = new LongAdder();
    private final LongAdder tracingNotTraceable = new LongAdder();
    private final LongAdder tracingHealthCheck = new LongAdder();
    private final LongAdder cxTotal = new LongAdder();
    private final AtomicLong cxActive = new AtomicLong();
    private final LongAdder cxHttp1 = new LongAdder();
    private final AtomicLong cxHttp1Active = new AtomicLong();
    private final LongAdder cxHttp2 = new LongAdder();
    private final AtomicLong cxHttp2Active = new AtomicLong();
    private final LongAdder cxDestroy = new LongAdder();
    private final LongAdder cxRxBytes = new LongAdder();
    private final LongAdder cxTxBytes = new LongAdder();
    private final LongAdder cxIdleTimeout = new LongAdder();
    private final LongAdder cxMaxDurationReached = new LongAdder();
    private final LongAdder cxMaxRequestsReached = new LongAdder();
    private final LongAdder cxDelayedCloseTimeout = new LongAdder();
    private final LongAdder cxProtocolError = new LongAdder();
    private final DistributionSummary rqTime;
    private final DistributionSummary cxLengthMs;
    private final AtomicLong activeFaults = new AtomicLong();
    private final LongAdder abortsInjected = new LongAdder();
    private final LongAdder delaysInjected = new LongAdder();
    private final LongAdder faultsOverflow = new LongAdder();
    private final LongAdder responseRlInjected = new LongAdder();
    /** The fault filter's {@code aborts_injected} and {@code delays_injected} by downstream cluster. */
    private final java.util.concurrent.ConcurrentHashMap<String, LongAdder[]> faultClusters =
            new java.util.concurrent.ConcurrentHashMap<>();
    private final LongAdder originValid = new LongAdder();
    private final LongAdder originInvalid = new LongAdder();
    private final java.util.concurrent.ConcurrentHashMap<String, RbacCounters> rbac =
            new java.util.concurrent.ConcurrentHashMap<>();
    private volatile boolean faultRegistered;
    private volatile boolean corsRegistered;
    private volatile JwtAuthnCounters jwtAuthn;
    private volatile ExtAuthzCounters extAuthz;
    /** The compressor filters' counters by library name: with a {@code response_direction_config}, and without. */
    private final java.util.concurrent.ConcurrentHashMap<String, CompressorCounters> responseCompressors =
            new java.util.concurrent.ConcurrentHashMap<>();
    private final java.util.concurrent.ConcurrentHashMap<String, CompressorCounters> legacyCompressors =
            new java.util.concurrent.ConcurrentHashMap<>();
    /** The counters of the compressor filters with a library name that do not depend on the response's direction. */
    private final java.util.concurrent.ConcurrentHashMap<String, CompressorLibrary> compressorLibraries =
            new java.util.concurrent.ConcurrentHashMap<>();

    /** The local rate limit filters' statistics by their stat prefix, shared by the registry's connection managers. */
    private final java.util.concurrent.ConcurrentMap<String, LocalRateLimitCounters> localRateLimits;

    /** The downstream codecs' statistics, which Envoy keeps outside the connection managers. */
    private final CodecStats codec;

    DownstreamStats(MeterRegistry registry, String statPrefix,
                    java.util.concurrent.ConcurrentMap<String, LocalRateLimitCounters> localRateLimits,
                    CodecStats codec) {
        this.registry = registry;
        this.statPrefix = statPrefix;
        this.localRateLimits = localRateLimits;
        this.codec = codec;
        adder("downstream_rq_total", rqTotal);
        adder("downstream_rq_http1_total", rqHttp1);
        adder("downstream_rq_http2_total", rqHttp2);
        gauge("downstream_rq_active", rqActive);
        adder("downstream_rq_completed", rqCompleted);
        for (int c = 1; c <= 5; c++) {
            byClass[c] = new LongAdder();
            Gauge.builder(PREFIX + "downstream_rq_xx", byClass[c], LongAdder::doubleValue)
                    .tag("response_code_class", c + "xx").tag(TAG, statPrefix).strongReference(true)
                    .register(registry);
        }
        adder("downstream_rq_rx_reset", rqRxReset);
        adder("downstream_rq_tx_reset", rqTxReset);
        adder("downstream_rq_too_many_premature_resets", rqTooManyPrematureResets);
        adder("downstream_rq_idle_timeout", rqIdleTimeout);
        adder("downstream_rq_max_duration_reached", rqMaxDurationReached);
        adder("downstream_rq_timeout", rqTimeout);
        adder("downstream_rq_header_timeout", rqHeaderTimeout);
        adder("downstream_rq_too_large", rqTooLarge);
        adder("rs_too_large", rsTooLarge);
        adder("downstream_rq_failed_path_normalization", rqFailedPathNormalization);
        adder("downstream_rq_redirected_with_normalized_path", rqRedirectedWithNormalizedPath);
        adder("downstream_rq_rejected_via_ip_detection", rqRejectedViaIpDetection);
        adder("downstream_rq_non_relative_path", rqNonRelativePath);
        adder("no_route", noRoute);
        adder("no_cluster", noCluster);
        adder("rq_redirect", rqRedirect);
        adder("rq_direct_response", rqDirectResponse);
        // Envoy makes the tracing counters for every connection manager, tracing or not
        adder("tracing_random_sampling", tracingRandomSampling);
        adder("tracing_service_forced", tracingServiceForced);
        adder("tracing_client_enabled", tracingClientEnabled);
        adder("tracing_not_traceable", tracingNotTraceable);
        adder("tracing_health_check", tracingHealthCheck);
        adder("downstream_cx_total", cxTotal);
        gauge("downstream_cx_active", cxActive);
        adder("downstream_cx_http1_total", cxHttp1);
        gauge("downstream_cx_http1_active", cxHttp1Active);
        adder("downstream_cx_http2_total", cxHttp2);
        gauge("downstream_cx_http2_active", cxHttp2Active);
        adder("downstream_cx_destroy", cxDestroy);
        adder("downstream_cx_rx_bytes_total", cxRxBytes);
        adder("downstream_cx_tx_bytes_total", cxTxBytes);
        adder("downstream_cx_idle_timeout", cxIdleTimeout);
        adder("downstream_cx_max_duration_reached", cxMaxDurationReached);
        adder("downstream_cx_max_requests_reached", cxMaxRequestsReached);
        adder("downstream_cx_delayed_close_timeout", cxDelayedCloseTimeout);
        adder("downstream_cx_protocol_error", cxProtocolError);
        adder("downstream_cx_upgrades_total", cxUpgradesTotal);
        gauge("downstream_cx_upgrades_active", cxUpgradesActive);
        adder("downstream_rq_ws_on_non_ws_route", rqWsOnNonWsRoute);
        var tags = io.micrometer.core.instrument.Tags.of(TAG, statPrefix);
        rqTime = MeshMetrics.histogram(registry, PREFIX + "downstream_rq_time",
                "Total time for request and response (milliseconds)", tags);
        cxLengthMs = MeshMetrics.histogram(registry, PREFIX + "downstream_cx_length_ms",
                "Connection length milliseconds", tags);
    }

    private void adder(String name, LongAdder a) {
        UpstreamStatsImpl.adder(registry, PREFIX + name, TAG, statPrefix, a);
    }

    /** The {@code passthrough_internal_redirect_*} counters, by reason. */
    private final java.util.concurrent.ConcurrentHashMap<String, LongAdder> internalRedirects =
            new java.util.concurrent.ConcurrentHashMap<>();

    private void gauge(String name, AtomicLong value) {
        Gauge.builder(PREFIX + name, value, AtomicLong::doubleValue).tag(TAG, statPrefix).strongReference(true)
                .register(registry);
    }

    /** The statistics of the codecs that read this connection manager's requests ({@code http1.*}, {@code http2.*}). */
    public CodecStats codec() {
        return codec;
    }

    /** The connection manager's {@code stat_prefix}. */
    public String statPrefix() {
        return statPrefix;
    }

    /**
     * Registers the fault filter's statistics ({@code fault.aborts_injected}, {@code fault.delays_injected},
     * {@code fault.faults_overflow}, {@code fault.response_rl_injected}, the gauge {@code fault.active_faults}),
     * once: Envoy keeps them for a connection manager that runs the filter.
     */
    public DownstreamStats withFaultFilter() {
        if (!faultRegistered) {
            synchronized (this) {
                if (!faultRegistered) {
                    adder("fault_aborts_injected", abortsInjected);
                    adder("fault_delays_injected", delaysInjected);
                    adder("fault_faults_overflow", faultsOverflow);
                    adder("fault_response_rl_injected", responseRlInjected);
                    gauge("fault_active_faults", activeFaults);
                    faultRegistered = true;
                }
            }
        }
        return this;
    }

    /** Registers the CORS filter's {@code cors.origin_valid} and {@code cors.origin_invalid}, once. */
    public DownstreamStats withCorsFilter() {
        if (!corsRegistered) {
            synchronized (this) {
                if (!corsRegistered) {
                    adder("cors_origin_valid", originValid);
                    adder("cors_origin_invalid", originInvalid);
                    corsRegistered = true;
                }
            }
        }
        return this;
    }

    /**
     * The trace decision of a request of a connection manager that traces, in Envoy's {@code tracing.*} counters, one
     * a request, by why it is traced: {@code random_sampling}, {@code service_forced} ({@code x-envoy-force-trace}),
     * {@code client_enabled} ({@code x-client-trace-id}) or {@code not_traceable}. ({@code tracing.health_check} stays
     * 0, as in Envoy, whose health check filter marks a request only after the decision was counted.)
     *
     * @param reason {@code '9'} sampled, {@code 'a'} forced, {@code 'b'} client, anything else not traced (the
     *               request id's trace character)
     */
    public void traceDecided(char reason) {
        switch (reason) {
            case '9' -> tracingRandomSampling.increment();
            case 'a' -> tracingServiceForced.increment();
            case 'b' -> tracingClientEnabled.increment();
            default -> tracingNotTraceable.increment();
        }
    }

    /**
     * A request arrived ({@code downstream_rq_total}, and {@code downstream_rq_http1_total} or
     * {@code downstream_rq_http2_total} by its protocol) and is active until {@link #requestEnded}.
     *
     * @param protocol {@code HTTP/1.1}, {@code HTTP/1.0} or {@code HTTP/2}
     */
    public void requestStarted(String protocol) {
        rqTotal.increment();
        if (protocol != null && protocol.startsWith("HTTP/2")) {
            rqHttp2.increment();
        } else {
            rqHttp1.increment();
        }
        rqActive.incrementAndGet();
    }

    /**
     * A request ended: no longer active; its response's class counted ({@code downstream_rq_2xx}, ...) with
     * {@code downstream_rq_completed} when it had one ({@code status} 0: none was sent), whether or not its body ended,
     * as Envoy's connection manager counts both once it encodes the response's headers
     * (source/common/http/conn_manager_impl.cc {@code ActiveStream::chargeStats}), so that completed is the sum of the
     * classes; and, when the response was sent whole ({@code completed}), the time from the request's start to the
     * response's end in the histogram {@code downstream_rq_time}, as Envoy times a stream whose encoding ended.
     *
     * @param reset 0 none, 1 the downstream reset the request ({@code downstream_rq_rx_reset}), 2 the proxy reset it
     *     ({@code downstream_rq_tx_reset})
     * @param millis the milliseconds since the request began
     */
    public void requestEnded(int status, boolean completed, int reset, long millis) {
        rqActive.decrementAndGet();
        int c = status / 100;
        if (c >= 1 && c <= 5) {
            byClass[c].increment();
            rqCompleted.increment();
        }
        if (completed) {
            rqTime.record(Math.max(0, millis));
        }
        if (reset == 1) {
            rqRxReset.increment();
        } else if (reset == 2) {
            rqTxReset.increment();
        }
    }

    /**
     * An HTTP/2 connection was closed for the streams its client reset too soon after opening them:
     * {@code downstream_rq_too_many_premature_resets}.
     */
    public void tooManyPrematureResets() {
        rqTooManyPrematureResets.increment();
    }

    /** The stream idle timeout ended a request: {@code downstream_rq_idle_timeout}. */
    public void idleTimeout() {
        rqIdleTimeout.increment();
    }

    /** A request outlived its {@code max_stream_duration} and was ended: {@code downstream_rq_max_duration_reached}. */
    public void maxDurationReached() {
        rqMaxDurationReached.increment();
    }

    /**
     * A connection the proxy closed was closed by its {@code delayed_close_timeout}, its writes or the client's close
     * still awaited: {@code downstream_cx_delayed_close_timeout}.
     */
    public void delayedCloseTimeout() {
        cxDelayedCloseTimeout.increment();
    }

    /**
     * The codec ended a connection for a protocol error of its client (an HTTP/1 head it refused, an HTTP/2
     * connection error, an invalid message where invalid messages cost their connection):
     * {@code downstream_cx_protocol_error}.
     */
    public void protocolError() {
        cxProtocolError.increment();
    }

    /** A request was not whole within its connection manager's {@code request_timeout}: downstream_rq_timeout. */
    public void requestTimeout() {
        rqTimeout.increment();
    }

    /**
     * A request's head was not whole within the connection manager's {@code request_headers_timeout}:
     * {@code downstream_rq_header_timeout}.
     */
    public void requestHeaderTimeout() {
        rqHeaderTimeout.increment();
    }

    /**
     * A request was answered 413 because its body outgrew a filter's buffer (the ext_authz filter's
     * {@code with_request_body} without {@code allow_partial_message}): {@code downstream_rq_too_large}.
     */
    public void requestTooLarge() {
        rqTooLarge.increment();
    }

    /**
     * A response was answered 500 because its body outgrew a filter's buffer before its headers went on (a Lua
     * response script's {@code body()}): {@code rs_too_large}, as Envoy's connection manager counts it.
     */
    public void responseTooLarge() {
        rsTooLarge.increment();
    }

    /**
     * A request's path was refused by the connection manager's path settings (400 {@code path_normalization_failed}:
     * {@code path_with_escaped_slashes_action: REJECT_REQUEST}, a path normalization could not make sense of, or a
     * gRPC request that {@code UNESCAPE_AND_REDIRECT} would have redirected):
     * {@code downstream_rq_failed_path_normalization}.
     */
    public void failedPathNormalization() {
        rqFailedPathNormalization.increment();
    }

    /**
     * A request was answered with a redirect to its unescaped, normalized path ({@code UNESCAPE_AND_REDIRECT}):
     * {@code downstream_rq_redirected_with_normalized_path}.
     */
    public void redirectedWithNormalizedPath() {
        rqRedirectedWithNormalizedPath.increment();
    }

    /**
     * An original IP detection extension found no client address and its {@code reject_with_status} answered the
     * request: {@code downstream_rq_rejected_via_ip_detection}.
     */
    public void rejectedViaIpDetection() {
        rqRejectedViaIpDetection.increment();
    }

    /**
     * A request whose target is not a path was answered 404 ({@code absolute_path_rejected}: an absolute URL under
     * {@code allow_absolute_url: false}): {@code downstream_rq_non_relative_path}.
     */
    public void nonRelativePath() {
        rqNonRelativePath.increment();
    }

    /**
     * An upgrade the connection manager's {@code upgrade_configs} do not take (or a {@code CONNECT}) matched a route
     * and was answered 403: {@code downstream_rq_ws_on_non_ws_route}.
     */
    public void upgradeOnNonUpgradeRoute() {
        rqWsOnNonWsRoute.increment();
    }

    /**
     * An upgraded stream began (its filter chain made for the upgrade, before the upstream answered):
     * {@code downstream_cx_upgrades_total}, and {@code downstream_cx_upgrades_active} until {@link #upgradeEnded}.
     */
    public void upgradeStarted() {
        cxUpgradesTotal.increment();
        cxUpgradesActive.incrementAndGet();
    }

    /** An upgraded stream {@link #upgradeStarted} counted ended: {@code downstream_cx_upgrades_active}. */
    public void upgradeEnded() {
        cxUpgradesActive.decrementAndGet();
    }

    /** The router found no route (404, NR): {@code no_route}. */
    public void noRoute() {
        noRoute.increment();
    }

    /** The route's cluster does not exist (503, NC): {@code no_cluster}. */
    public void noCluster() {
        noCluster.increment();
    }

    /** The route answered a redirect: {@code rq_redirect}. */
    public void redirect() {
        rqRedirect.increment();
    }

    /**
     * The router passed an upstream redirect on rather than follow it ({@code internal_redirect_policy}) for
     * {@code reason}: {@code passthrough_internal_redirect_<reason>} ({@code bad_location}, {@code unsafe_scheme},
     * {@code too_many_redirects}, {@code no_route}, {@code predicate}), each registered on first use.
     */
    public void internalRedirectPassedThrough(String reason) {
        internalRedirects.computeIfAbsent(reason, r -> {
            LongAdder a = new LongAdder();
            adder("passthrough_internal_redirect_" + r, a);
            return a;
        }).increment();
    }

    /** The route answered directly: {@code rq_direct_response}. */
    public void directResponse() {
        rqDirectResponse.increment();
    }

    /** The fault filter's {@code active_faults}, which its {@code max_active_faults} limits. */
    public AtomicLong activeFaults() {
        return activeFaults;
    }

    /**
     * The fault filter injected an abort: {@code fault.aborts_injected}, and, for a request from a downstream cluster
     * (null: none), {@code fault.<downstream_cluster>.aborts_injected}.
     */
    public void abortInjected(String downstreamCluster) {
        abortsInjected.increment();
        faultCluster(downstreamCluster, 0);
    }

    /** The fault filter limits a response's rate: {@code fault.response_rl_injected}. */
    public void responseRateLimitInjected() {
        responseRlInjected.increment();
    }

    /**
     * The fault filter injected a delay: {@code fault.delays_injected}, and, for a request from a downstream cluster
     * (null: none), {@code fault.<downstream_cluster>.delays_injected}.
     */
    public void delayInjected(String downstreamCluster) {
        delaysInjected.increment();
        faultCluster(downstreamCluster, 1);
    }

    /**
     * Counts a fault under the request's downstream cluster: Envoy's {@code fault.<downstream_cluster>.STAT}, scraped
     * as Istio's proxies scrape it (no tag extracts the cluster), {@code envoy_http_fault_<cluster>_STAT} flattened
     * as {@link RbacStats#meter}. The cluster comes from a request header: past {@link #MAX_FAULT_CLUSTERS} of them,
     * a new one is not counted, so that callers cannot grow the registry without end.
     */
    private void faultCluster(String downstreamCluster, int stat) {
        if (downstreamCluster == null) {
            return;
        }
        LongAdder[] c = faultClusters.get(downstreamCluster);
        if (c == null) {
            if (faultClusters.size() >= MAX_FAULT_CLUSTERS) {
                return;
            }
            c = faultClusters.computeIfAbsent(downstreamCluster, k -> {
                LongAdder[] a = {new LongAdder(), new LongAdder()};
                adder("fault_" + RbacStats.meter(k, "aborts_injected"), a[0]);
                adder("fault_" + RbacStats.meter(k, "delays_injected"), a[1]);
                return a;
            });
        }
        c[stat].increment();
    }

    /** The downstream clusters a fault is counted under, at most (Envoy has no bound). */
    static final int MAX_FAULT_CLUSTERS = 1024;

    /** A fault was not injected, {@code max_active_faults} being active: {@code fault.faults_overflow}. */
    public void faultOverflow() {
        faultsOverflow.increment();
    }

    /** The CORS filter saw an Origin, allowed or not: {@code cors.origin_valid} or {@code cors.origin_invalid}. */
    public void corsOrigin(boolean valid) {
        (valid ? originValid : originInvalid).increment();
    }

    /**
     * The counters of the RBAC filters with a stat prefix ({@code rules_stat_prefix}, or
     * {@code shadow_rules_stat_prefix} for the shadow rules), registered on first use: Envoy's
     * {@code http.<stat_prefix>.rbac.<prefix>.allowed} and {@code denied}, or {@code shadow_allowed} and
     * {@code shadow_denied} (no dot after an empty prefix or one ending with a dot, as Envoy joins them), scraped as
     * {@code envoy_http_rbac_<prefix>_allowed} and so on. Filters with the same prefix share them, as Envoy's
     * statistics are shared by name.
     */
    public RbacCounters rbac(String prefix, boolean shadow) {
        String key = (shadow ? "shadow:" : "rules:") + prefix;
        RbacCounters c = rbac.get(key);
        return c != null ? c : rbac.computeIfAbsent(key, k -> new RbacCounters(prefix, shadow));
    }

    @Override
    public void rbacDecision(String prefix, boolean shadow, boolean allowed) {
        rbac(prefix, shadow).count(allowed);
    }

    /**
     * The statistics of the local rate limit filters with this {@code stat_prefix} (their own or a route's config's),
     * registered on first use: Envoy's {@code <stat_prefix>.http_local_rate_limit.enabled}, {@code enforced},
     * {@code rate_limited} and {@code ok}, scraped as {@code envoy_http_local_rate_limit_enabled} and so on with the
     * prefix in the tag {@code local_http_ratelimit_prefix}. They are not the connection manager's: filters with the
     * same prefix share them wherever they are, as Envoy's statistics are shared by name.
     */
    public LocalRateLimitCounters localRateLimit(String prefix) {
        LocalRateLimitCounters c = localRateLimits.get(prefix);
        return c != null ? c : localRateLimits.computeIfAbsent(prefix, p -> new LocalRateLimitCounters(registry, p));
    }

    /**
     * Registers the statistics of the local rate limit configs of {@code routes}' virtual hosts and routes (their
     * {@code typed_per_filter_config}), as Envoy makes each with its config when the route configuration loads,
     * before a request uses it.
     */
    public DownstreamStats withRouteConfiguration(dev.inmesh.api.config.route.RouteConfiguration routes) {
        for (var vh : routes.virtualHosts()) {
            vh.localRateLimit().values().forEach(c -> localRateLimit(c.statPrefix()));
            for (var r : vh.routes()) {
                r.localRateLimit().values().forEach(c -> localRateLimit(c.statPrefix()));
            }
        }
        return this;
    }

    /**
     * The JWT authentication filter's statistics, registered on first use: Envoy's
     * {@code http.<prefix>.jwt_authn.allowed}, {@code denied} and {@code cors_preflight_bypassed}.
     */
    public JwtAuthnCounters jwtAuthn() {
        JwtAuthnCounters c = jwtAuthn;
        if (c == null) {
            synchronized (this) {
                c = jwtAuthn;
                if (c == null) {
                    c = new JwtAuthnCounters();
                    jwtAuthn = c;
                }
            }
        }
        return c;
    }

    /**
     * The external authorization filters' statistics, registered on first use: Envoy's
     * {@code http.<prefix>.ext_authz.ok}, {@code denied}, {@code error} and {@code failure_mode_allowed}, shared by
     * the connection manager's ext_authz filters as Envoy's are by name.
     */
    public ExtAuthzCounters extAuthz() {
        ExtAuthzCounters c = extAuthz;
        if (c == null) {
            synchronized (this) {
                c = extAuthz;
                if (c == null) {
                    c = new ExtAuthzCounters();
                    extAuthz = c;
                }
            }
        }
        return c;
    }

    /**
     * The compressor filter's statistics for its gzip library named {@code library}, registered on first use: Envoy's
     * {@code http.<prefix>.compressor.<library>.gzip.} then, when the config has a {@code response_direction_config}
     * ({@code responseDirection}), {@code response.}: {@code compressed}, {@code not_compressed},
     * {@code total_uncompressed_bytes}, {@code total_compressed_bytes} and {@code content_length_too_small}; and,
     * without {@code response.}, as Envoy roots them, {@code no_accept_header}, {@code header_identity},
     * {@code header_compressor_used}, {@code header_compressor_overshadowed}, {@code header_wildcard},
     * {@code header_not_valid} and {@code not_compressed_etag}; and the request direction's five under
     * {@code request.}, which Envoy's filter makes whether or not it compresses requests. Scraped as
     * {@code envoy_http_compressor_<library>_gzip_response_compressed} and so on.
     */
    public CompressorCounters compressor(String library, boolean responseDirection) {
        // looked up for each response: by the library's name as it is, no key string made per response
        var byLibrary = responseDirection ? responseCompressors : legacyCompressors;
        CompressorCounters c = byLibrary.get(library);
        return c != null ? c : byLibrary.computeIfAbsent(library, k -> new CompressorCounters(library,
                responseDirection));
    }

    /**
     * The counters of the compressor filters with one library name that both kinds of config share (with a
     * {@code response_direction_config} and without): those of the request's {@code accept-encoding}, and the request
     * direction's.
     */
    private final class CompressorLibrary {
        private final LongAdder noAcceptHeader = new LongAdder();
        private final LongAdder headerIdentity = new LongAdder();
        private final LongAdder headerUsed = new LongAdder();
        private final LongAdder headerOvershadowed = new LongAdder();
        private final LongAdder headerWildcard = new LongAdder();
        private final LongAdder headerNotValid = new LongAdder();
        private final LongAdder notCompressedEtag = new LongAdder();
        private final LongAdder requestNotCompressed = new LongAdder();

        CompressorLibrary(String root) {
            adder(root + "no_accept_header", noAcceptHeader);
            adder(root + "header_identity", headerIdentity);
            adder(root + "header_compressor_used", headerUsed);
            // another compressor filter's encoding was chosen: a connection manager runs one compressor filter
            // here, so it stays 0, as Envoy's does with one filter
            adder(root + "header_compressor_overshadowed", headerOvershadowed);
            adder(root + "header_wildcard", headerWildcard);
            adder(root + "header_not_valid", headerNotValid);
            adder(root + "not_compressed_etag", notCompressedEtag);
            // Envoy's request direction: Inmesh compresses no request (a request_direction_config is refused), so
            // every request the filter sees is not compressed and the other four stay 0, as Envoy's without one
            adder(root + "request_compressed", new LongAdder());
            adder(root + "request_not_compressed", requestNotCompressed);
            adder(root + "request_total_uncompressed_bytes", new LongAdder());
            adder(root + "request_total_compressed_bytes", new LongAdder());
            adder(root + "request_content_length_too_small", new LongAdder());
        }
    }

    /** A compressor filter's counters ({@link #compressor}). */
    public final class CompressorCounters {
        private final LongAdder compressed = new LongAdder();
        private final LongAdder notCompressed = new LongAdder();
        private final LongAdder uncompressedBytes = new LongAdder();
        private final LongAdder compressedBytes = new LongAdder();
        private final LongAdder tooSmall = new LongAdder();
        private final CompressorLibrary library;

        CompressorCounters(String library, boolean responseDirection) {
            String root = RbacStats.meter("compressor." + library + ".gzip", "");
            String direction = root + (responseDirection ? "response_" : "");
            adder(direction + "compressed", compressed);
            adder(direction + "not_compressed", notCompressed);
            adder(direction + "total_uncompressed_bytes", uncompressedBytes);
            adder(direction + "total_compressed_bytes", compressedBytes);
            adder(direction + "content_length_too_small", tooSmall);
            this.library = compressorLibraries.computeIfAbsent(library, k -> new CompressorLibrary(root));
        }

        /**
         * The filter saw a request, which it does not compress (Envoy's {@code request.not_compressed}, counted for
         * each request its filter decodes).
         */
        public void requestNotCompressed() {
            library.requestNotCompressed.increment();
        }

        public long requestNotCompressedCount() {
            return library.requestNotCompressed.sum();
        }

        /** A response is compressed, or not. */
        public void compressed(boolean yes) {
            (yes ? compressed : notCompressed).increment();
        }

        /** A compressed response's body: {@code in} bytes went in, {@code out} came out. */
        public void bytes(long in, long out) {
            uncompressedBytes.add(in);
            compressedBytes.add(out);
        }

        /** Its {@code content-length} was below {@code min_content_length}. */
        public void contentLengthTooSmall() {
            tooSmall.increment();
        }

        /** Its {@code etag} kept it uncompressed ({@code disable_on_etag_header}). */
        public void notCompressedEtag() {
            library.notCompressedEtag.increment();
        }

        /** The request had no {@code accept-encoding}. */
        public void noAcceptHeader() {
            library.noAcceptHeader.increment();
        }

        /** What the request's {@code accept-encoding} chose: identity, gzip, {@code *} or nothing valid. */
        public void header(Header h) {
            (switch (h) {
                case IDENTITY -> library.headerIdentity;
                case COMPRESSOR_USED -> library.headerUsed;
                case WILDCARD -> library.headerWildcard;
                case NOT_VALID -> library.headerNotValid;
            }).increment();
        }

        public long compressedCount() {
            return compressed.sum();
        }

        public long notCompressedCount() {
            return notCompressed.sum();
        }

        public long totalUncompressedBytes() {
            return uncompressedBytes.sum();
        }

        public long totalCompressedBytes() {
            return compressedBytes.sum();
        }
    }

    /** What a request's {@code accept-encoding} chose, as Envoy's compressor counts it. */
    public enum Header { IDENTITY, COMPRESSOR_USED, WILDCARD, NOT_VALID }

    /**
     * An external authorization filter's counters: checks the authorizer allowed, denied, could not answer (an error,
     * a timeout, a 5xx), errors let through by {@code failure_mode_allow} (also counted as errors), and requests its
     * {@code filter_enabled_metadata} did not pick ({@code disabled}, as Envoy counts them).
     */
    public final class ExtAuthzCounters {
        private final LongAdder ok = new LongAdder();
        private final LongAdder denied = new LongAdder();
        private final LongAdder error = new LongAdder();
        private final LongAdder failureModeAllowed = new LongAdder();
        private final LongAdder disabled = new LongAdder();

        ExtAuthzCounters() {
            adder("ext_authz_ok", ok);
            adder("ext_authz_denied", denied);
            adder("ext_authz_error", error);
            adder("ext_authz_failure_mode_allowed", failureModeAllowed);
            adder("ext_authz_disabled", disabled);
        }

        public void ok() {
            ok.increment();
        }

        public void denied() {
            denied.increment();
        }

        /** An error; {@code allowed}: the request went on all the same ({@code failure_mode_allow}). */
        public void error(boolean allowed) {
            error.increment();
            if (allowed) {
                failureModeAllowed.increment();
            }
        }

        public long okCount() {
            return ok.sum();
        }

        public long deniedCount() {
            return denied.sum();
        }

        public long errorCount() {
            return error.sum();
        }

        public long failureModeAllowedCount() {
            return failureModeAllowed.sum();
        }

        /** A request the filter did not check: its {@code filter_enabled_metadata} did not match. */
        public void disabled() {
            disabled.increment();
        }

        public long disabledCount() {
            return disabled.sum();
        }
    }

    /** The JWT authentication filter's counters: requests it let through, refused, and CORS preflights it skipped. */
    public final class JwtAuthnCounters {
        private final LongAdder allowed = new LongAdder();
        private final LongAdder denied = new LongAdder();
        private final LongAdder corsPreflightBypassed = new LongAdder();

        JwtAuthnCounters() {
            adder("jwt_authn_allowed", allowed);
            adder("jwt_authn_denied", denied);
            adder("jwt_authn_cors_preflight_bypassed", corsPreflightBypassed);
        }

        /** Counts one request the filter let through, or refused. */
        public void count(boolean allow) {
            (allow ? allowed : denied).increment();
        }

        /** Counts a CORS preflight that went on unchecked (it counts as allowed too, as Envoy's). */
        public void corsPreflightBypassed() {
            corsPreflightBypassed.increment();
            allowed.increment();
        }

        /** The requests let through so far. */
        public long allowed() {
            return allowed.sum();
        }

        /** The requests refused so far. */
        public long denied() {
            return denied.sum();
        }
    }

    /** A local rate limit filter's counters: the requests it checked, found a token for, found none for, refused. */
    public static final class LocalRateLimitCounters {
        static final String PREFIX = "envoy_http_local_rate_limit_";
        static final String TAG = "local_http_ratelimit_prefix";
        private final LongAdder enabled = new LongAdder();
        private final LongAdder enforced = new LongAdder();
        private final LongAdder rateLimited = new LongAdder();
        private final LongAdder ok = new LongAdder();

        LocalRateLimitCounters(MeterRegistry registry, String prefix) {
            UpstreamStatsImpl.adder(registry, PREFIX + "enabled", TAG, prefix, enabled);
            UpstreamStatsImpl.adder(registry, PREFIX + "enforced", TAG, prefix, enforced);
            UpstreamStatsImpl.adder(registry, PREFIX + "rate_limited", TAG, prefix, rateLimited);
            UpstreamStatsImpl.adder(registry, PREFIX + "ok", TAG, prefix, ok);
        }

        /** The filter checked a request ({@code filter_enabled}). */
        public void enabled() {
            enabled.increment();
        }

        /** It refused one that found no token ({@code filter_enforced}). */
        public void enforced() {
            enforced.increment();
        }

        /** A checked request found no token. */
        public void rateLimited() {
            rateLimited.increment();
        }

        /** A checked request took a token. */
        public void ok() {
            ok.increment();
        }

        public long enabledCount() {
            return enabled.sum();
        }

        public long enforcedCount() {
            return enforced.sum();
        }

        public long rateLimitedCount() {
            return rateLimited.sum();
        }

        public long okCount() {
            return ok.sum();
        }
    }

    /** The {@code allowed} and {@code denied} counters (or their shadow twins) of RBAC filters with one prefix. */
    public final class RbacCounters {
        private final LongAdder allowed = new LongAdder();
        private final LongAdder denied = new LongAdder();

        RbacCounters(String prefix, boolean shadow) {
            String kind = shadow ? "shadow_" : "";
            adder("rbac_" + RbacStats.meter(prefix, kind + "allowed"), allowed);
            adder("rbac_" + RbacStats.meter(prefix, kind + "denied"), denied);
        }

        /** Counts one decision. */
        public void count(boolean allow) {
            (allow ? allowed : denied).increment();
        }

        /** The requests allowed so far. */
        public long allowed() {
            return allowed.sum();
        }

        /** The requests denied so far. */
        public long denied() {
            return denied.sum();
        }
    }

    /** A downstream connection came to this connection manager: {@code downstream_cx_total}, one more active. */
    public void connectionOpened() {
        cxTotal.increment();
        cxActive.incrementAndGet();
    }

    /**
     * The connection's codec was chosen: {@code downstream_cx_http2_total} or {@code downstream_cx_http1_total}, one
     * more active of that protocol until it closes.
     */
    public void codecChosen(boolean http2) {
        (http2 ? cxHttp2 : cxHttp1).increment();
        (http2 ? cxHttp2Active : cxHttp1Active).incrementAndGet();
    }

    /**
     * A downstream connection closed: {@code downstream_cx_destroy}, one fewer active, and its length in the
     * histogram {@code downstream_cx_length_ms}.
     *
     * @param codec 0 when it closed before its codec was chosen, 1 HTTP/1, 2 HTTP/2
     * @param lengthMillis the milliseconds since the connection came
     */
    public void connectionClosed(int codec, long lengthMillis) {
        // the rest first: whoever sees one fewer active sees the closed connection's length and destroy count too
        cxLengthMs.record(Math.max(0, lengthMillis));
        cxDestroy.increment();
        if (codec != 0) {
            (codec == 2 ? cxHttp2Active : cxHttp1Active).decrementAndGet();
        }
        cxActive.decrementAndGet();
    }

    /** A connection had no active request for the connection manager's {@code idle_timeout}: it drains. */
    public void connectionIdleTimeout() {
        cxIdleTimeout.increment();
    }

    /** A connection reached the connection manager's {@code max_connection_duration}: it drains. */
    public void connectionMaxDurationReached() {
        cxMaxDurationReached.increment();
    }

    /** A connection took the connection manager's {@code max_requests_per_connection}-th request: it drains. */
    public void connectionMaxRequestsReached() {
        cxMaxRequestsReached.increment();
    }

    /** Bytes read from a downstream connection, as they come: {@code downstream_cx_rx_bytes_total}. */
    public void received(long bytes) {
        cxRxBytes.add(bytes);
    }

    /** Bytes written to a downstream connection, as they go: {@code downstream_cx_tx_bytes_total}. */
    public void sent(long bytes) {
        cxTxBytes.add(bytes);
    }
}
