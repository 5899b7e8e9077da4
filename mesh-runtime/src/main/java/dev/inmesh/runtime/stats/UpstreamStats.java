package dev.inmesh.runtime.stats;

/**
 * One upstream cluster's statistics, named as Envoy names them ({@code cluster.<name>.upstream_rq_total} and so on,
 * scraped as {@code envoy_cluster_upstream_rq_total{cluster_name="<name>"}} as Istio's proxy exports them). The
 * cluster manager and router update them as things happen; every method is thread-safe and allocation-free.
 *
 * <p>Envoy's counters are exported without a {@code _total} suffix; the Prometheus client Micrometer uses appends one
 * to every counter, so those whose Envoy name does not end in {@code _total} (such as {@code upstream_rq_retry}) are
 * exported as gauges that only go up, which keeps Envoy's exact names (PromQL's {@code rate()} reads them the same).
 * Envoy's {@code upstream_rq_2xx} and {@code upstream_rq_200}, which Istio's stats tags make one family
 * {@code envoy_cluster_upstream_rq} with a {@code response_code_class} or a {@code response_code} label, are registered
 * as {@code upstream_rq_xx} and {@code upstream_rq_code} (Micrometer gives a name one set of tags) and served under
 * Envoy's name by the admin's {@code /stats/prometheus}.
 */
public interface UpstreamStats {

    /**
     * The clusters of these statistics are gone (a configuration removed them): as Envoy frees a removed cluster's
     * scope, their meters leave the registry and {@code /stats}, and a cluster of the same name added later starts at
     * 0. Their requests and connections in flight may count on: into meters that no registry holds any more.
     */
    static void release(java.util.Collection<? extends UpstreamStats> gone) {
        UpstreamStatsImpl.releaseAll(gone);
    }

    /** A request was sent upstream (each attempt, retries included): {@code upstream_rq_total}. */
    void requestStarted();

    /**
     * A request finished with this status: {@code upstream_rq_completed} and {@code upstream_rq_xx} by class. The
     * status is the upstream's, or, as Envoy charges it, the router's own answer when the last attempt ended without
     * one (503 after a connect failure, reset or overflow, or with no healthy host; 504 after a timeout).
     */
    void requestCompleted(int status);

    /**
     * An upstream response that was retried away, not passed on: {@code retry.upstream_rq_completed} and
     * {@code retry.upstream_rq_<class>xx}, as Envoy charges it apart from the answer's own {@code upstream_rq_*}
     * (scraped as {@code envoy_cluster_retry_upstream_rq_completed} and
     * {@code envoy_cluster_retry_upstream_rq{response_code_class="5xx"}}, Istio's stats tags).
     */
    void retriedResponse(int status);

    /**
     * A retry was made: {@code upstream_rq_retry}, and {@code upstream_rq_retry_backoff_ratelimited} when it waits the
     * interval a retried response's reset header set ({@code rate_limited_retry_back_off}), else
     * {@code upstream_rq_retry_backoff_exponential} (the jittered exponential back-off).
     */
    void retry(boolean rateLimitedBackOff);

    /**
     * After a retry, an attempt ended in an outcome that is not retried (an answer or a failure the policy does not
     * retry): {@code upstream_rq_retry_success}, as Envoy infers a successful retry.
     */
    void retrySuccess();

    /** A retriable outcome found no retry left: {@code upstream_rq_retry_limit_exceeded}. */
    void retryLimitExceeded();

    /** A retry was not made: the {@code max_retries} circuit breaker was full ({@code upstream_rq_retry_overflow}). */
    void retryOverflow();

    /**
     * A request's body outgrew the router's retry buffer, so the request is no longer retried:
     * {@code retry_or_shadow_abandoned}.
     */
    void retryOrShadowAbandoned();

    /**
     * The router met an upstream redirect its route follows ({@code internal_redirect_policy}):
     * {@code upstream_internal_redirect_succeeded_total} when it followed it, else
     * {@code upstream_internal_redirect_failed_total} (registered on first use).
     */
    void internalRedirect(boolean followed);

    /**
     * The route timeout ended an upstream request (one awaiting its response, or one whose response was still
     * streaming; not a retry's back-off): {@code upstream_rq_timeout}.
     */
    void timeout();

    /**
     * An attempt reached its per-try timeout, retried or not: {@code upstream_rq_per_try_timeout}, or its per-try idle
     * timeout: {@code upstream_rq_per_try_idle_timeout}.
     */
    void perTryTimeout(boolean idle);

    /** An upstream request reached its {@code max_stream_duration}: {@code upstream_rq_max_duration_reached}. */
    void maxDurationReached();

    /** A request was refused by a circuit breaker: {@code upstream_rq_pending_overflow}. */
    void overflow();

    /**
     * A request was refused by the {@code max_requests} breaker as it was to be attached to its connection (or a relay
     * started): {@code upstream_rq_active_overflow}, which Envoy counts since 1.38. Its {@link #overflow} is counted
     * too, as Envoy counts it with {@code envoy.reloadable_features.skip_pending_overflow_count_on_active_rq} off and
     * as Envoy before 1.38 counted it alone, so that dashboards and Istio's circuit breaking task that read
     * {@code upstream_rq_pending_overflow} keep seeing every refusal.
     */
    default void activeOverflow() {
    }

    /** A new upstream connection was refused by the {@code max_connections} breaker: {@code upstream_cx_overflow}. */
    void connectionOverflow();

    /**
     * Where the gauges {@code membership_healthy}, {@code membership_degraded}, {@code membership_excluded} and
     * {@code membership_total} read the cluster's host counts, in that order: the cluster in force (a new one replaces
     * the old); null when the cluster is gone (all 0).
     */
    void membershipFrom(java.util.function.Supplier<int[]> counts);

    /** Hosts joined or left the cluster: {@code membership_change}. */
    void membershipChanged();

    /**
     * A DNS cluster began to resolve one of its names: {@code update_attempt}, one of Envoy's cluster config update
     * statistics, which a DNS cluster counts for each lookup of each name (strict_dns_cluster.cc,
     * logical_dns_cluster.cc). The first call registers them all: {@code update_attempt}, {@code update_success},
     * {@code update_failure}, {@code update_no_rebuild} and {@code update_empty} (which only Envoy's EDS counts, so it
     * stays 0 here), as only a DNS cluster counts them (Envoy's EDS subscription counts them too; Inmesh's does not
     * yet, so an EDS cluster has none rather than zeros).
     */
    void updateAttempt();

    /** How the resolution {@link #updateAttempt} counted ended, in its counters. */
    void updateOutcome(UpdateOutcome outcome);

    /** How a DNS cluster's lookup of one of its names ended, as Envoy's DNS clusters count it. */
    enum UpdateOutcome {
        /** An answer that moved the name's hosts: {@code update_success}. */
        SUCCESS,
        /** An answer that left the name's hosts as they were: {@code update_success} and {@code update_no_rebuild}. */
        NO_REBUILD,
        /**
         * The lookup failed (no answer, a server failure), or, for a LOGICAL_DNS cluster, answered no address:
         * {@code update_failure}.
         */
        FAILURE
    }

    /**
     * A host had no connection pool for a request and none could be made or freed under {@code max_connection_pools}:
     * {@code upstream_cx_pool_overflow}.
     */
    void connectionPoolOverflow();

    /** The load balancer found no host for a request or connection: {@code upstream_cx_none_healthy}. */
    void noHealthyHost();

    /**
     * An ORIGINAL_DST cluster's {@code use_http_header} found no {@code IP:PORT} in the request's header:
     * {@code original_dst_host_invalid}.
     */
    void originalDstHostInvalid();

    /** The load balancer picked in a priority in panic (among all its hosts): {@code lb_healthy_panic}. */
    void healthyPanic();

    /**
     * A TCP relay gave up after {@code max_connect_attempts} failed connects:
     * {@code upstream_cx_connect_attempts_exceeded}.
     */
    void connectAttemptsExceeded();

    /** A connection was opened: {@code upstream_cx_total} and {@code upstream_cx_active} up by one. */
    void connectionOpened();

    /**
     * A connection was established this many milliseconds after its attempt began: the histogram
     * {@code upstream_cx_connect_ms}.
     */
    void connectTime(long millis);

    /**
     * A connection closed: {@code upstream_cx_active} down by one, its length, from its opening, in the histogram
     * {@code upstream_cx_length_ms}, and {@code upstream_cx_destroy} with {@code upstream_cx_destroy_local} when the
     * proxy closed it ({@code local}), else {@code upstream_cx_destroy_remote}; and, when it closed with a request
     * not done ({@code activeRequest}: its response not whole, a relay it carried), as Envoy's pools count it
     * (source/common/conn_pool/conn_pool_base.cc {@code ConnPoolImplBase::onConnectionEvent}, the TCP pool's
     * {@code ActiveTcpClient::onEvent}), {@code upstream_cx_destroy_with_active_rq} with
     * {@code upstream_cx_destroy_local_with_active_rq} or {@code upstream_cx_destroy_remote_with_active_rq}.
     */
    void connectionClosed(long lengthMillis, boolean local, boolean activeRequest);

    /**
     * A stream of an HTTP/2 connection was reset before its response ended, as Envoy's HTTP/2 pool counts it
     * (source/common/http/conn_pool_base.cc {@code MultiplexedActiveClientBase::onStreamReset}):
     * {@code upstream_rq_rx_reset} when the upstream reset it ({@code remote}: its RST_STREAM, but a refused stream's),
     * else {@code upstream_rq_tx_reset} (the proxy reset a stream it sent: a per-try timeout, a caller gone, a retry
     * or hedge giving up an attempt, an answer the codec refused for that stream alone).
     */
    void streamReset(boolean remote);

    /**
     * A request's response came whole from the upstream this many milliseconds after the request was whole (retries
     * and their back-off included), as Envoy's router measures it: the histogram {@code upstream_rq_time}.
     */
    void requestTime(long millis);

    /**
     * A connection attempt failed: {@code upstream_cx_connect_fail}, and {@code upstream_cx_total}, which Envoy's pool
     * counts as it makes a connection, before it connects ({@link #connectionOpened} counts those that connected); and,
     * as Envoy counts the close of a connection that never connected, {@code upstream_cx_destroy} with
     * {@code upstream_cx_destroy_local} when the proxy gave it up ({@code local}: its connect timeout, a failed TLS
     * handshake), else {@code upstream_cx_destroy_remote} (refused, reset).
     */
    void connectFailed(boolean local);

    /**
     * A connection was given its last request under {@code max_requests_per_connection} (it takes no more, and closes
     * once that one is done): {@code upstream_cx_max_requests}, as Envoy's pool counts it when it starts to drain.
     */
    void connectionMaxRequests();

    /**
     * A connection reached its cluster's {@code max_connection_duration} (it takes no more requests, and closes once
     * those it carries are done): {@code upstream_cx_max_duration_reached}, as Envoy's pool counts it when its
     * connection's duration timer fires.
     */
    void connectionMaxDuration();

    /**
     * A connection carried no request for its cluster's {@code idle_timeout} and is closed:
     * {@code upstream_cx_idle_timeout}, as Envoy's codec client counts it when its idle timer fires.
     */
    void connectionIdleTimeout();

    /**
     * An upstream told that it closes a connection, with an HTTP/2 GOAWAY: {@code upstream_cx_close_notify}. The
     * connection takes no new request and is closed once its requests are done.
     */
    void connectionCloseNotify();

    /** A connect the cluster's {@code connect_timeout} ended: {@code upstream_cx_connect_timeout}. */
    void connectTimeout();

    /**
     * An upstream connection failed to speak HTTP (an answer its codec could not read, a body cut in the middle of
     * its framing, a header value HTTP/2 forbids): {@code upstream_cx_protocol_error}.
     */
    void protocolError();

    /**
     * A TLS handshake of a connection to the cluster's upstream succeeded: {@code ssl.handshake}, as Envoy's TLS
     * transport socket counts it under {@code cluster.<name>.ssl.} (scraped as {@code envoy_cluster_ssl_handshake}).
     * The {@code ssl.*} statistics are registered on the first handshake, as only a TLS cluster makes one.
     */
    void tlsHandshake();

    /**
     * A TLS handshake of a connection to the cluster's upstream failed: {@code ssl.fail_verify_error} (the server's
     * chain does not lead to the trusted CAs), {@code ssl.fail_verify_san} (no SAN matches) or
     * {@code ssl.connection_error} (any other TLS error, such as the server refusing the client certificate).
     */
    void tlsFailed(ListenerStats.TlsFailure why);

    /**
     * The cluster's outlier detection statistics, registered on the first call (Envoy keeps them only for a cluster
     * with outlier detection, so only such a cluster asks).
     */
    OutlierStats outlierDetection();

    /**
     * The cluster's active health check statistics ({@code health_check.*}), registered on the first call (Envoy
     * keeps them only for a cluster with health checks, so only such a cluster asks).
     */
    HealthCheckStats healthCheck();

    /** Requests in flight: {@code upstream_rq_active} up ({@code +1}) or down ({@code -1}). */
    void activeRequests(int delta);

    /**
     * A request found no connection ready and waits for one (a new connection, or one in use):
     * {@code upstream_rq_pending_total} and {@code upstream_rq_pending_active} up by one.
     */
    void pendingStarted();

    /**
     * A request stopped waiting for a connection: {@code upstream_rq_pending_active} down by one, and, when the
     * connection it waited for failed, {@code upstream_rq_pending_failure_eject}.
     */
    void pendingEnded(boolean connectionFailed);

    /**
     * A request waiting for a connection was given up before it had one (a route timeout, its caller gone):
     * {@code upstream_rq_cancelled}. Its wait ends too ({@link #pendingEnded}).
     */
    void pendingCancelled();

    /**
     * Publishes a routing priority's circuit breakers ({@code "default"} or {@code "high"}) as Envoy's gauges
     * {@code circuit_breakers.<priority>.cx_open}, {@code rq_pending_open}, {@code rq_open}, {@code rq_retry_open} and
     * {@code cx_pool_open} (1 while the breaker is at its limit), and {@code remaining_cx}, {@code remaining_pending},
     * {@code remaining_rq}, {@code remaining_retries} and {@code remaining_cx_pools} when the thresholds track what
     * remains. The gauges read {@code readings} from now
     * on (a cluster made again points them at its new state).
     */
    void circuitBreakers(String priority, BreakerReadings readings);

    /**
     * What the global rate limit filter ({@code envoy.filters.http.ratelimit}) counts for a request's route's
     * cluster, as Envoy counts it under {@code cluster.<name>.ratelimit.}: the service's answer ({@code ok},
     * {@code over_limit}, {@code error}) and a request that went on after an error ({@code failure_mode_allowed}).
     * Registered on first use, as only a cluster whose requests are checked has them.
     */
    void rateLimit(RateLimitStat stat);

    /** The global rate limit filter's statistics of a cluster, by their Envoy names after {@code ratelimit.}. */
    enum RateLimitStat {
        OK("ok"), OVER_LIMIT("over_limit"), ERROR("error"), FAILURE_MODE_ALLOWED("failure_mode_allowed");

        private final String envoyName;

        RateLimitStat(String envoyName) {
            this.envoyName = envoyName;
        }

        /** Envoy's name of the statistic, after {@code cluster.<name>.ratelimit.}. */
        public String envoyName() {
            return envoyName;
        }
    }
}
