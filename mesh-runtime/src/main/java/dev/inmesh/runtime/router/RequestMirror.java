package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.route.RequestMirrorPolicy;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.runtime.stats.UpstreamStats;
import dev.inmesh.runtime.tracing.ActiveSpan;
import dev.inmesh.runtime.upstream.CircuitBreakerState;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LbContext;
import dev.inmesh.runtime.upstream.LocalOriginFailure;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.HostAndPort;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.random.RandomGenerator;

/**
 * Envoy's request mirroring ({@code RouteAction.request_mirror_policies}, Istio's {@code mirror}): copies of a
 * request, as the router sends it upstream (after the route's rewrites and header rules), sent to other clusters and
 * forgotten. Each policy whose {@code runtime_fraction} takes the request (decided with the request's random value, as
 * the route's own fractions are, its {@code runtime_key}'s value in the runtime replacing its default) sends its own
 * copy once the request is complete, with its whole body, as Envoy does when it buffers shadows; its Host gets Envoy's
 * {@code -shadow} suffix on the host name ({@code ratings:9080} becomes {@code ratings-shadow:9080}) unless the policy
 * disables it.
 *
 * <p>A copy goes through the mirror cluster's host selection, circuit breakers and connection pools, and counts in
 * that cluster's upstream statistics (an overflow just drops it); it is bounded by the route timeout. Its answer is
 * read and dropped: it never reaches the caller, nor changes the caller's response, timing, retries or flags, and it
 * is not in the access log or the Istio request metrics (Envoy sends it outside the connection manager). A cluster
 * that does not exist, or a {@code cluster_header} the request lacks, sends nothing. {@code CONNECT} is never mirrored.
 * Everything runs on the exchange's context; nothing waits for a copy.
 *
 * <p>A traced request's copy carries a span of its own, as Envoy's router gives each copy a child of the request's
 * span ({@link ActiveSpan#mirror}), sampled as its policy's {@code trace_sampled} says.
 */
final class RequestMirror {
    private static final String SHADOW_SUFFIX = "-shadow";

    private final Router router;
    private final Vertx vertx;
    private final ClusterManager clusters;
    private final RouterRequest request;
    private final String path;
    private final String authority;
    private final MultiMap headers;
    private final long timeoutMillis;
    private final List<Shadow> shadows;

    /**
     * One copy to send: its cluster, whether its Host gets the {@code -shadow} suffix, and its span (null when the
     * request has none).
     */
    private record Shadow(String cluster, boolean suffixed, ActiveSpan span) {}

    private RequestMirror(Router router, Vertx vertx, ClusterManager clusters, RouterRequest request, String path,
                          String authority, long timeoutMillis, List<Shadow> shadows) {
        this.router = router;
        this.vertx = vertx;
        this.clusters = clusters;
        this.request = request;
        this.path = path;
        this.authority = authority;
        this.timeoutMillis = timeoutMillis;
        this.shadows = shadows;
        // the request as it goes upstream now; the primary's attempts change their own copies of it, not this one
        this.headers = MultiMap.caseInsensitiveMultiMap().addAll(request.headers);
    }

    /**
     * The mirrors of a request the router is about to send upstream, with its headers as they go ({@code path} and
     * {@code authority} after the route's rewrites); null when no policy takes it.
     *
     * @param table the route table of {@code action}, whose runtime values its policies' shares are
     * @param timeout the route timeout, which bounds each copy (null or zero: none)
     * @param span the request's span, whose children the copies' spans are (null: the request has none)
     * @param ids draws the copies' span ids
     */
    static RequestMirror select(Router router, Vertx vertx, ClusterManager clusters, RouterRequest request,
                                String path, String authority, RouteAction action, RouteTable table,
                                long random, Duration timeout, ActiveSpan span, RandomGenerator ids) {
        List<RequestMirrorPolicy> policies = action.requestMirrorPolicies();
        if (policies.isEmpty() || request.method == HttpMethod.CONNECT) {
            return null;
        }
        List<Shadow> shadows = null;
        for (RequestMirrorPolicy p : policies) {
            if (!sampled(table.mirrorFraction(p), random)) {
                continue;
            }
            String cluster = p.cluster() != null ? p.cluster() : request.headers.get(p.clusterHeader());
            if (cluster == null || cluster.isEmpty()) {
                continue; // as Envoy: no cluster named in the header, no copy
            }
            if (shadows == null) {
                shadows = new ArrayList<>(policies.size());
            }
            shadows.add(new Shadow(cluster, !p.disableShadowHostSuffixAppend(),
                    span == null ? null : span.mirror(p.traceSampled(), ids)));
        }
        if (shadows == null) {
            return null;
        }
        long millis = timeout == null || timeout.isZero() ? 0 : Math.max(1, timeout.toMillis());
        RequestMirror m = new RequestMirror(router, vertx, clusters, request, path, authority, millis, shadows);
        // as Envoy, whose copy is taken from the request headers the router has finished (the first attempt's count
        // among them, unless the route's header rules took it off) and told the route timeout it is given
        if (millis > 0 && !request.routerFilter.suppressEnvoyHeaders()) {
            m.headers.set(HeaderNames.X_ENVOY_EXPECTED_RQ_TIMEOUT_MS, Long.toString(millis));
        }
        return m;
    }

    /** Envoy's runtime feature check on a default value: {@code random % denominator < numerator}; null: always. */
    static boolean sampled(FractionalPercent fraction, long random) {
        return fraction == null
                || Long.remainderUnsigned(random, fraction.denominator().value()) < fraction.numerator();
    }

    /**
     * A host's authority with Envoy's {@code -shadow} suffix on its host name, before any port; null for none. Built,
     * not parsed, so that the suffixed name need not be a valid host to be sent.
     */
    static HostAndPort shadowAuthority(String authority, boolean suffix) {
        HostAndPort hp = dev.inmesh.runtime.net.Authorities.parse(authority);
        if (hp == null || !suffix) {
            return hp == null ? null : Router.sentAuthority(authority); // as it came, as the request's goes
        }
        // the port as it came too (Vert.x leaves out a port 80 it was given apart)
        return HostAndPort.create(hp.host() + SHADOW_SUFFIX + (hp.port() >= 0 ? ":" + hp.port() : ""), -1);
    }

    /** Sends every copy with the request's whole body (null: none). */
    void send(Buffer body) {
        for (Shadow s : shadows) {
            sendTo(s, body);
        }
    }

    private void sendTo(Shadow shadow, Buffer body) {
        String name = shadow.cluster();
        UpstreamCluster cluster = clusters.cluster(name);
        if (cluster == null) {
            return; // as Envoy's shadow writer: a mirror cluster that does not exist is skipped
        }
        UpstreamStats st = router.upstreamStats(name);
        CircuitBreakerState breakers = cluster.circuitBreakers();
        Host host = cluster.chooseHost(new LbContext(false, 0, null, 1,
                cluster.requestDestination(headers::get, request.originalDestination)));
        if (host == null) {
            if (st != null) {
                st.requestCompleted(503); // no healthy upstream, as the router charges it
            }
            return;
        }
        MultiMap sent = headers;
        if (shadow.span() != null) {
            sent = MultiMap.caseInsensitiveMultiMap().addAll(headers);
            shadow.span().inject(sent, null); // the copy's own span, as Envoy's async client injects it
        }
        new Copy(cluster, host, st, breakers, sent).start(shadowAuthority(authority, shadow.suffixed()), body);
    }

    /** One copy in flight; its outcome counts in the mirror cluster's statistics and outlier detection only. */
    private final class Copy {
        final UpstreamCluster cluster;
        final Host host;
        final UpstreamStats st;
        final CircuitBreakerState breakers;
        /** The copy's headers: the request's, with its span's context. */
        final MultiMap headers;
        long timer = -1;
        /** Gives up the copy's wait for a connection, while it waits; null otherwise. */
        Runnable cancelWait;
        HttpClientRequest inflight;
        /** Whether the copy holds one of the cluster's {@code max_requests}: from its connection on. */
        boolean slotHeld;
        boolean responded;
        boolean done;

        Copy(UpstreamCluster cluster, Host host, UpstreamStats st, CircuitBreakerState breakers, MultiMap headers) {
            this.cluster = cluster;
            this.host = host;
            this.st = st;
            this.breakers = breakers;
            this.headers = headers;
        }

        void start(HostAndPort hp, Buffer body) {
            if (st != null) {
                host.stats().clusterStats(st); // the connections the host's pool opens count in the cluster's
            }
            HttpClient client;
            try {
                // as Envoy's copy, which a router of its own sends: auto_sni and auto_san_validation take its host
                client = cluster.httpClient(host, "HTTP/2".equals(request.protocol), hp == null ? null : hp.host());
            } catch (RuntimeException e) {
                failed(503);
                return;
            }
            if (client == null) { // max_connection_pools: as the router, no healthy upstream
                if (st != null) {
                    st.connectionPoolOverflow();
                }
                failed(503);
                return;
            }
            if (timeoutMillis > 0) {
                timer = vertx.setTimer(timeoutMillis, id -> timedOut());
            }
            RequestOptions ro = Router.upstreamOptions(request.method, path, Router.upstreamHeaders(request, headers),
                    host);
            Router.connect(client, ro, breakers, st, cancel -> cancelWait = cancel).onComplete(ar -> {
                cancelWait = null;
                if (ar.failed()) {
                    if (!done) {
                        Router.poolFailed(host, st, ar.cause());
                        if (Router.hostFailure(ar.cause())) {
                            host.stats().requestFailed();
                        }
                    }
                    failed(503);
                    return;
                }
                HttpClientRequest up = ar.result();
                if (done) {
                    up.reset();
                    return;
                }
                if (!Router.attach(breakers, up, host, st)) {
                    // max_requests, once it has its connection: the router's overflow, a 503 never sent
                    if (st != null) {
                        st.overflow();
                    }
                    failed(503);
                    return;
                }
                slotHeld = true;
                host.outlier().reportConnectSuccess();
                inflight = up;
                if (hp != null) {
                    up.authority(hp);
                }
                cluster.countRequestOnConnection(host, up);
                RequestBodyStream.forward(up, body, null).onComplete(rr -> {
                    if (rr.failed()) {
                        if (!done) {
                            host.outlier().reportLocalOriginFailure(LocalOriginFailure.RESET);
                            host.stats().requestFailed();
                        }
                        failed(503);
                        return;
                    }
                    var resp = rr.result();
                    if (done) {
                        resp.request().reset();
                        return;
                    }
                    responded = true;
                    int status = resp.statusCode();
                    if (status >= 500) {
                        host.outlier().reportHttpStatus(status);
                    } else {
                        host.outlier().reportSuccess();
                    }
                    // as the copy's own router charges it: a gRPC copy's by the grpc-status its trailers end with
                    boolean deferred = Router.chargeAnswer(host, Grpc.isRequest(headers), status, resp.headers());
                    if (st != null) {
                        st.requestCompleted(status);
                    }
                    // no handler: Vert.x drops the body's chunks; the connection is free once it ended
                    resp.exceptionHandler(x -> { });
                    resp.end().onComplete(e -> {
                        if (deferred) {
                            Router.chargeGrpcEnd(host, e.succeeded() ? resp.trailers().get("grpc-status") : null);
                        }
                        release();
                    });
                });
            });
        }

        /** The copy ended without an answer: the router's code for it is charged, as for an attempt. */
        void failed(int status) {
            if (done) {
                return;
            }
            if (st != null && !responded) {
                st.requestCompleted(status);
            }
            release();
        }

        /** The route timeout passed: the copy is reset ({@code upstream_rq_timeout}, 504 if it had no answer). */
        void timedOut() {
            timer = -1;
            if (done) {
                return;
            }
            if (st != null) {
                st.timeout();
            }
            if (!responded) {
                if (cancelWait == null) {
                    // only a copy that had its connection: as the router's attempt, no host while it is pending
                    host.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
                    host.stats().requestFailed();
                }
                failed(504);
            } else {
                release();
            }
            Runnable waiting = cancelWait;
            cancelWait = null;
            if (waiting != null) {
                waiting.run(); // as the router's attempt: the pending request is cancelled
            }
            HttpClientRequest r = inflight;
            if (r != null) {
                r.reset();
            }
        }

        void release() {
            if (done) {
                return;
            }
            done = true;
            if (timer >= 0) {
                vertx.cancelTimer(timer);
                timer = -1;
            }
            if (slotHeld) {
                Router.detach(breakers, host, st);
            }
        }
    }
}
