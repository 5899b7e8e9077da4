package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.HealthCheck;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import dev.inmesh.runtime.router.Grpc;
import dev.inmesh.runtime.router.HeaderFormats;
import dev.inmesh.runtime.router.HeaderMutator;
import dev.inmesh.runtime.router.MultiMapHeaders;
import dev.inmesh.runtime.stats.HealthCheckStats;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.HostAndPort;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * A cluster's active health checker, as Envoy's: one session per host, each on its own timer, all on one Vert.x
 * context (so a session's state is only touched there, as Envoy runs its checks on its main thread). A new host of a
 * cluster with health checks starts failed ({@code FAILED_ACTIVE_HC}) and is checked at once (after a random
 * {@code initial_jitter} if set); its first success makes it healthy, later ones count toward
 * {@code healthy_threshold}. A host that passes when its check starts (the check was added or changed) is decided
 * by its first result too, a failure failing it at once. A network failure or timeout counts toward
 * {@code unhealthy_threshold}, as does an HTTP status among the {@code retriable_statuses}; any other unexpected
 * status, or a gRPC answer other than {@code SERVING} with {@code grpc-status: 0}, fails the host at once. The next
 * check waits the interval Envoy's {@code HealthCheckerImplBase::interval} picks for the result and the transition it
 * made (see {@link #intervalMillis}). A host that leaves the cluster has its session stopped; its check in flight is
 * dropped and the connection its checks kept is closed.
 *
 * <p>Checks are not requests: they count only in {@code health_check.*}, not in the cluster's or host's request
 * statistics, and are not reported to outlier detection as results (Envoy keeps the two apart); but a check that
 * finds a host healthy returns it from an ejection, under {@code successful_active_health_check_uneject_host}.
 *
 * <p>Without Vert.x nothing runs; tests drive a session's results by hand ({@link Session#onResult}).
 */
final class HealthChecker {
    /** The user agent of Envoy's HTTP and gRPC checks. */
    static final String USER_AGENT = "Envoy/HC";
    /** The header with which an Envoy upstream failing its health checks asks to be excluded at once. */
    static final String IMMEDIATE_FAIL = "x-envoy-immediate-health-check-fail";
    /** The header with which a check's answer says the host is degraded. */
    static final String DEGRADED_HEADER = "x-envoy-degraded";
    /** The path of a gRPC check: the {@code Check} method of the {@code grpc.health.v1.Health} service. */
    static final String GRPC_PATH = "/grpc.health.v1.Health/Check";
    private static final String GRPC_CONTENT_TYPE = "application/grpc";
    private static final String GRPC_STATUS = "grpc-status";

    /** What one check came to, as Envoy's checkers classify it. */
    enum Result {
        SUCCESS,
        /** A success whose answer said {@code x-envoy-degraded}: the host is degraded. */
        DEGRADED,
        /** An HTTP status neither expected nor retriable, or a failed gRPC answer: the host fails at once. */
        FAILED,
        /** A retriable HTTP status: counts toward {@code unhealthy_threshold}. */
        RETRIABLE,
        /** No connection, a reset or a closed connection: counts toward {@code unhealthy_threshold}. */
        NETWORK,
        /** The {@code timeout} passed: a network failure that also marks the failed host timed out. */
        TIMEOUT;

        boolean network() {
            return this == NETWORK || this == TIMEOUT;
        }
    }

    /** Envoy's {@code HealthTransition}: whether a result changed the host's health, or moved it toward a change. */
    enum Transition { UNCHANGED, CHANGE_PENDING, CHANGED }

    /** What the cluster hears of its checks, as Envoy's host check complete callbacks. */
    interface Callbacks {
        /**
         * A check of {@code host} completed (on the checkers' context, outside the checker's lock).
         *
         * @param changed whether it changed the host's health (the cluster rebuilds its hosts)
         */
        void checked(Host host, boolean changed);
    }

    private final String clusterName;
    private final HealthCheck config;
    private final UpstreamEnvironment env;
    private final Callbacks callbacks;
    private final HealthCheckStats stats;
    /** Whether the cluster has had traffic: before it has, checks run at {@code no_traffic_interval}. */
    private final BooleanSupplier traffic;
    /** The context every session runs on; null without Vert.x. */
    private final Context context;
    private final Map<Host, Session> sessions = new HashMap<>(); // guarded by this
    private HttpClient httpClient; // on the context
    /**
     * How long the checks' HTTP client keeps an idle connection, in seconds: 0, for ever. Envoy's session keeps its
     * client ({@code reuse_connection}) until the upstream closes it, an answer asks to close it or a check times out,
     * with no idle timeout; Vert.x's client would close it after 60 s idle (its default keep-alive timeouts), and a
     * check after a longer interval connected anew. Only tests shorten it.
     */
    private final int idleTimeoutSeconds;
    private NetClient netClient; // on the context
    /** The formatted values of the check's request headers (HTTP) or initial metadata (gRPC), compiled. */
    private final HeaderFormats formats;
    private volatile boolean closed;

    /**
     * @param callbacks told of every completed check (on the checkers' context)
     * @param stats the cluster's {@code health_check.*}, or null to keep none
     */
    HealthChecker(String clusterName, HealthCheck config, UpstreamEnvironment env, Callbacks callbacks,
                  HealthCheckStats stats, BooleanSupplier traffic) {
        this(clusterName, config, env, callbacks, stats, traffic, 0);
    }

    /** @param idleTimeoutSeconds see {@link #idleTimeoutSeconds} */
    HealthChecker(String clusterName, HealthCheck config, UpstreamEnvironment env, Callbacks callbacks,
                  HealthCheckStats stats, BooleanSupplier traffic, int idleTimeoutSeconds) {
        this.idleTimeoutSeconds = idleTimeoutSeconds;
        this.clusterName = clusterName;
        this.config = config;
        this.env = env;
        this.callbacks = callbacks;
        this.stats = stats;
        this.traffic = traffic;
        this.context = env.vertx() == null ? null : env.vertx().getOrCreateContext();
        this.formats = HeaderFormats.compile(config.checker() instanceof HealthCheck.Http h
                ? List.of(h.requestHeadersToAdd())
                : config.checker() instanceof HealthCheck.Grpc g ? List.of(g.initialMetadata()) : List.of());
        if (stats != null) {
            stats.hostsFrom(() -> count(false), () -> count(true));
        }
    }

    HealthCheck config() {
        return config;
    }

    /** The options of the checks' HTTP client: HTTP/2 (prior knowledge) or HTTP/1.1, no idle timeout by default. */
    HttpClientOptions clientOptions(boolean http2) {
        HttpClientOptions options = new HttpClientOptions()
                .setConnectTimeout(ConnectFailure.timeoutMillis(config.timeout()))
                .setKeepAlive(config.reuseConnection()).setKeepAliveTimeout(idleTimeoutSeconds)
                .setHttp2KeepAliveTimeout(idleTimeoutSeconds);
        if (http2) {
            options.setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false);
        }
        return options;
    }

    /**
     * The hosts checked now whose checks have passed ({@code health_check.healthy}), or the ones whose last successful
     * check said degraded ({@code health_check.degraded}): as Envoy's gauges follow the two flags apart, a degraded
     * host that its checks then fail stays counted degraded (a failure leaves the flag) until a check passes without
     * it.
     */
    private synchronized int count(boolean degraded) {
        int n = 0;
        for (Host h : sessions.keySet()) {
            n += (degraded ? h.degradedActiveHc : !h.failedActiveHc) ? 1 : 0;
        }
        return n;
    }

    /**
     * Starts checking the hosts not checked yet and stops checking those that are not in {@code hosts}. A host whose
     * endpoint disables active health checks is not checked, and nothing checks said of it stands.
     *
     * @return how many of the sessions stopped had not completed a first check: Envoy's checker runs its callbacks
     *     for such a session as it deletes it, so that what waits for its first check (a warming cluster) does not
     *     wait for one that will never come
     */
    synchronized int setHosts(Collection<Host> hosts) {
        if (closed) {
            return 0;
        }
        Set<Host> keep = new HashSet<>();
        for (Host h : hosts) {
            if (h.healthCheckConfig().disableActiveHealthCheck()) {
                h.clearActiveHealthCheck();
            } else {
                keep.add(h);
            }
        }
        int[] unchecked = {0};
        sessions.entrySet().removeIf(e -> {
            if (!keep.contains(e.getKey())) {
                unchecked[0] += e.getValue().firstCheck ? 1 : 0;
                // its connection goes with it, as Envoy's session closes its client, unless a host that stays is
                // checked at the same address (one pool of the checker's client holds both's connection)
                Host gone = e.getKey();
                gone.clearHealthCheckSession(e.getValue());
                e.getValue().stop(keep.stream().noneMatch(k -> k.address().address().equals(gone.address().address())
                        && port(k.address(), k.healthCheckConfig()) == port(gone.address(), gone.healthCheckConfig())));
                return true;
            }
            return false;
        });
        for (Host h : keep) {
            if (!sessions.containsKey(h)) {
                Session s = new Session(h);
                sessions.put(h, s);
                h.healthCheckSession = s;
                s.start();
            }
        }
        return unchecked[0];
    }

    /** The session of a host, or null when it is not checked. */
    synchronized Session session(Host host) {
        return sessions.get(host);
    }

    /** Stops every check; the hosts keep the health they have. */
    synchronized void close() {
        closed = true;
        sessions.forEach((h, s) -> {
            h.clearHealthCheckSession(s);
            s.stop(false); // the client's close below closes every connection
        });
        sessions.clear();
        if (context != null) {
            context.runOnContext(v -> {
                if (httpClient != null) {
                    httpClient.close();
                }
                if (netClient != null) {
                    netClient.close();
                }
            });
        }
    }

    /** The port checks of an endpoint at {@code address} go to: its health check port, else its own. */
    static int port(dev.inmesh.api.config.core.SocketAddress address,
                    dev.inmesh.api.config.endpoint.HealthCheckConfig config) {
        return config.portValue() == 0 ? address.port() : config.portValue();
    }

    /**
     * The wait before a host's next check, as Envoy's {@code HealthCheckerImplBase::interval}: while the cluster has
     * had no traffic, {@code no_traffic_healthy_interval} after a success that left the host healthy, else
     * {@code no_traffic_interval}; once it has, {@code unhealthy_edge_interval} after a failure that moved a healthy
     * host toward unhealthy, {@code unhealthy_interval} after any other failure, {@code healthy_edge_interval} after a
     * success that moved an unhealthy host toward healthy, {@code interval} after any other success. Then a random
     * part below {@code interval_jitter_percent} of that and another below {@code interval_jitter} are added; the
     * result is at least 1 ms.
     */
    static long intervalMillis(HealthCheck c, boolean hadTraffic, boolean success, Transition t,
                               java.util.random.RandomGenerator random) {
        long base;
        if (hadTraffic) {
            if (success) {
                base = (t == Transition.CHANGE_PENDING ? c.healthyEdgeInterval() : c.interval()).toMillis();
            } else {
                base = (t == Transition.CHANGE_PENDING ? c.unhealthyEdgeInterval() : c.unhealthyInterval())
                        .toMillis();
            }
        } else {
            base = (success && t != Transition.CHANGE_PENDING ? c.noTrafficHealthyInterval() : c.noTrafficInterval())
                    .toMillis();
        }
        return withJitter(c, base, c.intervalJitter().toMillis(), random);
    }

    private static long withJitter(HealthCheck c, long base, long jitter, java.util.random.RandomGenerator random) {
        long percentBound = c.intervalJitterPercent() * base / 100;
        long out = base;
        if (percentBound > 0) {
            out += random.nextLong(percentBound);
        }
        if (jitter > 0) {
            out += random.nextLong(jitter);
        }
        return Math.max(1, out);
    }

    /** One host's checks. Runs on the checker's context; {@link #onResult} may be called by tests without one. */
    final class Session {
        private final Host host;
        private int numHealthy;
        private int numUnhealthy;
        private boolean firstCheck = true;
        /** Counts attempts: a result or timeout of an earlier attempt than the current one is dropped. */
        private long attempt;
        private long intervalTimer = -1;
        private long timeoutTimer = -1;
        private HttpClientRequest inFlight;
        /** The connection of the session's last HTTP or gRPC check, which it keeps with {@code reuse_connection}. */
        private io.vertx.core.http.HttpConnection connection;
        /** The connection of a TCP check with blocks to receive, kept with {@code reuse_connection}; else null. */
        private io.vertx.core.net.NetSocket tcpSocket;
        /** What it brought since the last match; the attempt waiting for a match, 0 for none. */
        private io.vertx.core.buffer.Buffer tcpReceived;
        private long tcpWaiting;
        private volatile boolean stopped;

        Session(Host host) {
            this.host = host;
        }

        private void start() {
            if (context == null) {
                return;
            }
            context.runOnContext(v -> {
                long jitter = config.initialJitter().toMillis();
                if (jitter == 0) {
                    check();
                } else {
                    schedule(withJitter(config, 0, jitter, env.random()));
                }
            });
        }

        private void schedule(long delayMillis) {
            if (!stopped) {
                intervalTimer = env.vertx().setTimer(delayMillis, id -> check());
            }
        }

        private void check() {
            if (stopped) {
                return;
            }
            long id = ++attempt;
            if (stats != null) {
                stats.attempt();
            }
            // a timeout under 1 ms is 0 ms to Envoy, whose timer then fires on its loop's next turn; Vert.x's
            // timers wait at least 1 ms
            timeoutTimer = env.vertx().setTimer(Math.max(1, config.timeout().toMillis()), t -> {
                if (id == attempt) {
                    timeoutTimer = -1;
                    HttpClientRequest r = inFlight;
                    inFlight = null;
                    // first the timeout, so that the failure the reset gives the request is dropped
                    complete(id, Result.TIMEOUT);
                    if (config.checker() instanceof HealthCheck.Tcp) {
                        closeTcp(); // as Envoy's TCP session on a timeout: the connection goes
                    }
                    if (r != null) {
                        r.reset();
                        if (config.checker() instanceof HealthCheck.Http) {
                            // as Envoy's HTTP session closes its client on a timeout, reuse_connection or not (an
                            // HTTP/2 stream's reset leaves its connection); its gRPC session resets the stream alone
                            r.connection().close();
                        }
                    }
                }
            });
            if (config.checker() instanceof HealthCheck.Http http) {
                http(id, http);
            } else if (config.checker() instanceof HealthCheck.Grpc grpc) {
                grpc(id, grpc);
            } else {
                tcp(id, (HealthCheck.Tcp) config.checker());
            }
        }

        /**
         * The request of a check, on the checker's one client (made on first use: one connection per host, as
         * Envoy's session keeps one client), or a failed future when the check is no longer the current one.
         */
        private Future<HttpClientRequest> request(long id, HttpMethod method, String path, boolean http2,
                                                  String configuredAuthority) {
            if (httpClient == null) {
                HttpClientOptions options = clientOptions(http2);
                httpClient = env.vertx().httpClientBuilder().with(options).with(PoolCheckerGuard.guarded(options,
                        new PoolOptions().setHttp1MaxSize(1).setHttp2MaxSize(1))).build();
            }
            RequestOptions o = new RequestOptions().setMethod(method)
                    .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(port(), host.address().address()))
                    .setURI(path);
            // as Envoy's getHostname: the endpoint's health check hostname, else the check's, else the cluster's name
            String endpointName = host.healthCheckConfig().hostname();
            String authority = !endpointName.isEmpty() ? endpointName
                    : !configuredAuthority.isEmpty() ? configuredAuthority : clusterName;
            return httpClient.request(o).compose(req -> {
                req.exceptionHandler(e -> { });
                if (id != attempt || stopped) {
                    req.reset();
                    return Future.failedFuture("stale");
                }
                inFlight = req;
                connection = req.connection();
                // as sent, unchecked: Envoy's default is the cluster's name, which Istio's (outbound|9080||...) make
                // no hostname of (HostAndPort.authority would refuse it)
                req.authority(HostAndPort.create(authority, -1));
                return Future.succeededFuture(req);
            });
        }

        private void http(long id, HealthCheck.Http h) {
            request(id, HttpMethod.valueOf(h.method()), h.path(), h.http2(), h.host()).compose(req -> {
                headers(req.headers(), h, formats, () -> AccessLogEntry.healthCheck(h.http2() ? "HTTP/2" : "HTTP/1.1",
                        host.addressString(), host.metadata()));
                // the body is read to its end; of it only what receive is looked for in is kept (its first
                // response_buffer_size bytes): no check holds an answer whole
                return req.send().compose(resp -> {
                    io.vertx.core.buffer.Buffer kept = h.receive().isEmpty() ? null
                            : io.vertx.core.buffer.Buffer.buffer();
                    if (kept != null) {
                        long limit = h.responseBufferSize() == 0 ? Long.MAX_VALUE : h.responseBufferSize();
                        resp.handler(chunk -> {
                            long room = limit - kept.length();
                            if (room > 0) {
                                kept.appendBuffer(chunk.length() <= room ? chunk : chunk.getBuffer(0, (int) room));
                            }
                        });
                    }
                    return resp.end().map(v -> httpResult(h, resp.statusCode(),
                            resp.headers().contains(IMMEDIATE_FAIL), resp.headers().contains(DEGRADED_HEADER),
                            kept));
                }).andThen(ar -> closeUnlessReused(req));
            }).onComplete(ar -> {
                if (id != attempt) {
                    return;
                }
                inFlight = null;
                complete(id, ar.failed() ? Result.NETWORK : ar.result());
            });
        }

        /**
         * A gRPC check, as Envoy's {@code GrpcActiveHealthCheckSession}: a unary {@code grpc.health.v1.Health/Check}
         * over h2c (see {@link #grpcHeaders}); it passes when the answer is HTTP 200 with a gRPC content type, one
         * {@code HealthCheckResponse} saying {@code SERVING} and trailers with {@code grpc-status: 0}. Any other
         * complete answer (another status, a trailers-only answer, a body that is not one such message) is an active
         * failure, which fails the host at once; a reset or a lost connection is a network failure. As Envoy, an
         * answer that cannot pass any more ends the check there (its stream reset), and without
         * {@code reuse_connection} the connection is closed after each check.
         */
        private void grpc(long id, HealthCheck.Grpc g) {
            request(id, HttpMethod.POST, GRPC_PATH, true, g.authority()).compose(req -> {
                grpcHeaders(req.headers(), g, config.timeout().toMillis(), formats,
                        () -> AccessLogEntry.healthCheck("HTTP/2", host.addressString(), host.metadata()));
                GrpcHealthMessages.ResponseReader reader = new GrpcHealthMessages.ResponseReader();
                return req.send(GrpcHealthMessages.request(g.serviceName())).compose(resp -> {
                    if (resp.statusCode() != 200 || !Grpc.isContentType(resp.headers().get(HttpHeaders.CONTENT_TYPE))) {
                        // the status (or grpc-status of a trailers-only answer) cannot be OK with a SERVING message
                        req.reset();
                        return Future.succeededFuture(Result.FAILED);
                    }
                    io.vertx.core.Promise<Result> done = io.vertx.core.Promise.promise();
                    resp.exceptionHandler(done::tryFail);
                    resp.handler(chunk -> {
                        if (!reader.feed(chunk) && done.tryComplete(Result.FAILED)) {
                            req.reset();
                        }
                    });
                    resp.endHandler(v -> done.tryComplete("0".equals(resp.trailers().get(GRPC_STATUS))
                            && reader.serving() ? Result.SUCCESS : Result.FAILED));
                    return done.future();
                }).andThen(ar -> closeUnlessReused(req));
            }).onComplete(ar -> {
                if (id != attempt) {
                    return;
                }
                inFlight = null;
                complete(id, ar.failed() ? Result.NETWORK : ar.result());
            });
        }

        /**
         * Without {@code reuse_connection}, closes the connection of a check that ended, as Envoy's sessions close
         * their client after each check; over HTTP/2 the client's keep-alive setting alone would keep it.
         */
        private void closeUnlessReused(HttpClientRequest req) {
            if (!config.reuseConnection()) {
                req.connection().close();
            }
        }

        /**
         * A TCP check, as Envoy's {@code TcpActiveHealthCheckSession}: with nothing to receive, a connection accepted
         * passes and is closed at once; else {@code send} is written (on the connection kept from the last check,
         * with {@code reuse_connection}, or a new one) and the check passes once what came back holds every
         * {@code receive} block in order (what came is then forgotten, and without {@code reuse_connection} the
         * connection closed); a connection that fails or closes first is a network failure, the timeout a timeout.
         */
        private void tcp(long id, HealthCheck.Tcp t) {
            if (netClient == null) {
                netClient = env.vertx().createNetClient(new NetClientOptions()
                        .setConnectTimeout(ConnectFailure.timeoutMillis(config.timeout())));
            }
            if (t.receive().isEmpty()) {
                netClient.connect(port(), host.address().address()).onComplete(ar -> {
                    if (ar.succeeded()) {
                        // nothing to receive: the connection is the check, and is not kept (Envoy closes it at once,
                        // so nothing it was to send goes either)
                        ar.result().close();
                    }
                    complete(id, ar.succeeded() ? Result.SUCCESS : Result.NETWORK);
                });
                return;
            }
            Future<io.vertx.core.net.NetSocket> socket = tcpSocket != null ? Future.succeededFuture(tcpSocket)
                    : netClient.connect(port(), host.address().address()).map(this::kept);
            socket.onComplete(ar -> {
                if (id != attempt || stopped) {
                    if (ar.succeeded()) {
                        closeTcp(); // the connection of a check that timed out goes, as Envoy's
                    }
                    return;
                }
                if (ar.failed()) {
                    complete(id, Result.NETWORK);
                    return;
                }
                tcpWaiting = id;
                if (t.send() != null) {
                    ar.result().write(io.vertx.core.buffer.Buffer.buffer(t.send().bytes()));
                }
                tcpMatch(t);
            });
        }

        /** A new TCP check connection: what it brings is gathered, and its close ends a check waiting on it. */
        private io.vertx.core.net.NetSocket kept(io.vertx.core.net.NetSocket s) {
            if (stopped) {
                s.close();
                throw new IllegalStateException("stopped");
            }
            tcpSocket = s;
            tcpReceived = io.vertx.core.buffer.Buffer.buffer();
            s.exceptionHandler(e -> { });
            s.handler(data -> {
                if (tcpSocket == s) {
                    int room = MAX_TCP_RECEIVED - tcpReceived.length();
                    if (room <= 0) {
                        return;
                    }
                    tcpReceived.appendBuffer(data.length() <= room ? data : data.getBuffer(0, room));
                    tcpMatch((HealthCheck.Tcp) config.checker());
                }
            });
            s.closeHandler(v -> {
                if (tcpSocket != s) {
                    return;
                }
                tcpSocket = null;
                long waiting = tcpWaiting;
                tcpWaiting = 0;
                if (waiting != 0) {
                    complete(waiting, Result.NETWORK);
                }
            });
            return s;
        }

        /** Passes the waiting check when what came holds every block to receive. */
        private void tcpMatch(HealthCheck.Tcp t) {
            long waiting = tcpWaiting;
            if (waiting == 0 || waiting != attempt || !payloadsFound(t.receive(), tcpReceived)) {
                return;
            }
            tcpWaiting = 0;
            tcpReceived = io.vertx.core.buffer.Buffer.buffer();
            if (!config.reuseConnection()) {
                closeTcp();
            }
            complete(waiting, Result.SUCCESS);
        }

        private void closeTcp() {
            io.vertx.core.net.NetSocket s = tcpSocket;
            tcpSocket = null;
            tcpWaiting = 0;
            if (s != null) {
                s.close();
            }
        }

        /**
         * What an HTTP check's answer comes to, as Envoy's: an expected status with {@code x-envoy-degraded} is a
         * degraded success; an unexpected status with {@code x-envoy-immediate-health-check-fail} also excludes the
         * host (without rebuilding its cluster's hosts when the host was failed already, as Envoy).
         */
        Result httpResult(HealthCheck.Http h, int status, boolean immediateFail, boolean degraded) {
            return httpResult(h, status, immediateFail, degraded, null);
        }

        /**
         * The same, with the part of the body {@code receive} is looked for in (null when there is nothing to find).
         * As Envoy's checker, the body is judged before the status: a body that lacks a block fails the host at once
         * whatever the status, a retriable or an expected one alike (and, with
         * {@code x-envoy-immediate-health-check-fail}, excludes the host too); only a body that holds them all has
         * its status judged.
         */
        Result httpResult(HealthCheck.Http h, int status, boolean immediateFail, boolean degraded,
                          io.vertx.core.buffer.Buffer body) {
            if (body != null && !payloadsFound(h.receive(), body)) {
                if (immediateFail) {
                    host.excludedViaImmediateHcFail = true;
                }
                return Result.FAILED;
            }
            if (HealthCheck.Http.in(h.expectedStatuses(), status)) {
                return degraded ? Result.DEGRADED : Result.SUCCESS;
            }
            if (immediateFail) {
                host.excludedViaImmediateHcFail = true;
            }
            return HealthCheck.Http.in(h.retriableStatuses(), status) ? Result.RETRIABLE : Result.FAILED;
        }

        private int port() {
            return HealthChecker.port(host.address(), host.healthCheckConfig());
        }

        private void complete(long id, Result r) {
            if (stopped || id != attempt) {
                return;
            }
            attempt++; // a late answer of this attempt is dropped
            if (timeoutTimer >= 0) {
                env.vertx().cancelTimer(timeoutTimer);
                timeoutTimer = -1;
            }
            schedule(onResult(r));
        }

        /**
         * Applies one check's result to the host, as Envoy's {@code handleSuccess} and {@code handleFailure}, and
         * returns the wait before the next check (ms). A result of a session stopped meanwhile (its host left, or its
         * cluster's check changed, went or was closed, on the config thread) changes nothing: whoever stopped it may
         * have cleared what checks said of the host already, and nothing would check the host again to undo it. The
         * checker's lock makes the two exclusive; the outlier detector and the cluster's rebuild are called after it,
         * as the cluster's lock is taken before the checker's by an update.
         */
        long onResult(Result r) {
            boolean success = r == Result.SUCCESS || r == Result.DEGRADED;
            Transition t;
            boolean passed;
            synchronized (HealthChecker.this) {
                if (stopped) {
                    return intervalMillis(config, traffic.getAsBoolean(), success, Transition.UNCHANGED, env.random());
                }
                t = success ? succeeded(r == Result.DEGRADED) : failed(r);
                firstCheck = false;
                passed = success && !host.failedActiveHc;
            }
            if (passed) {
                host.outlier().activeHealthCheckPassed();
            }
            if (t == Transition.CHANGED && !success && host.failedActiveHc) {
                // as Envoy's cluster manager on a host's health failure: its connections take no new requests
                // (those in flight finish), so that traffic that finds it healthy again does so on new ones
                host.pool.drain();
            }
            callbacks.checked(host, t == Transition.CHANGED);
            return intervalMillis(config, traffic.getAsBoolean(), success, t, env.random());
        }

        /**
         * An answer to a request sent to the host carried {@code x-envoy-immediate-health-check-fail}: as Envoy's
         * health check host monitor, the host is marked excluded now, on the caller's thread, and the session then
         * fails it on its own context as a passive failure ({@link #passiveFailure}).
         */
        void immediateFailure() {
            synchronized (HealthChecker.this) {
                if (stopped) {
                    return;
                }
                host.excludedViaImmediateHcFail = true;
            }
            if (context == null) {
                passiveFailure();
            } else {
                context.runOnContext(v -> passiveFailure());
            }
        }

        /**
         * Envoy's {@code setUnhealthy} for a passive failure: a healthy host fails at once, whatever
         * {@code unhealthy_threshold}, its passes so far toward {@code healthy_threshold} are forgotten, and, as a
         * result that came, it ends the first check's shortcut (the host needs {@code healthy_threshold} passes to
         * return); counted in {@code failure} and {@code passive_failure}. The checks' schedule is left as it is. A
         * host that fails has its connections drained, as on a failed check.
         */
        void passiveFailure() {
            Transition t = Transition.UNCHANGED;
            synchronized (HealthChecker.this) {
                if (stopped) {
                    return;
                }
                numHealthy = 0;
                if (!host.failedActiveHc) {
                    host.failedActiveHc = true;
                    t = Transition.CHANGED;
                }
                host.activeHcTimeout = false;
                firstCheck = false;
                if (stats != null) {
                    stats.failure(false);
                    stats.passiveFailure();
                }
            }
            if (t == Transition.CHANGED) {
                host.pool.drain();
            }
            callbacks.checked(host, t == Transition.CHANGED);
        }

        /** Envoy's {@code handleSuccess}: the host's flags after a passing check. */
        private Transition succeeded(boolean degraded) {
            Transition t = Transition.UNCHANGED;
            numUnhealthy = 0;
            if (host.failedActiveHc) {
                host.passedActiveHealthCheck(env.ticker().nanoTime());
                // a host's first result decides at once: startup is faster (Envoy's words: at a small cost in
                // reliability)
                if (firstCheck || ++numHealthy == config.healthyThreshold()) {
                    host.activeHcTimeout = false;
                    host.excludedViaImmediateHcFail = false;
                    host.failedActiveHc = false;
                    t = Transition.CHANGED;
                } else {
                    t = Transition.CHANGE_PENDING;
                }
            }
            if (degraded != host.degradedActiveHc) {
                host.degradedActiveHc = degraded;
                t = t == Transition.UNCHANGED ? Transition.CHANGED : t;
            }
            if (stats != null) {
                stats.success();
            }
            return t;
        }

        /**
         * Envoy's {@code setUnhealthy}: the host's flags after a failed check. A host's first check decides at once
         * here too: a host that passes is failed only by a new check (one added to its cluster, or changed), which
         * Envoy runs on a new version of the cluster whose hosts start failed.
         */
        private Transition failed(Result r) {
            Transition t = Transition.UNCHANGED;
            numHealthy = 0;
            if (!host.failedActiveHc) {
                boolean immediate = r == Result.FAILED || firstCheck;
                if (immediate || ++numUnhealthy == config.unhealthyThreshold()) {
                    host.failedActiveHc = true;
                    t = Transition.CHANGED;
                } else {
                    t = Transition.CHANGE_PENDING;
                }
            }
            host.activeHcTimeout = r == Result.TIMEOUT && host.failedActiveHc;
            if (stats != null) {
                stats.failure(r.network());
            }
            return t;
        }

        /**
         * Stops the checks; a check in flight is dropped (its connection reset).
         *
         * @param closeConnection whether to close the connection the session's checks kept, rather than leave it to
         *     the client's idle timeout
         */
        private void stop(boolean closeConnection) {
            stopped = true;
            if (context == null) {
                return;
            }
            context.runOnContext(v -> {
                attempt++;
                for (long timer : new long[] {intervalTimer, timeoutTimer}) {
                    if (timer >= 0) {
                        env.vertx().cancelTimer(timer);
                    }
                }
                if (inFlight != null) {
                    inFlight.reset();
                    inFlight = null;
                }
                if (closeConnection && connection != null) {
                    connection.close();
                }
                connection = null;
                closeTcp();
            });
        }
    }

    /**
     * Whether {@code data} holds every block, in order, each after the end of the one before (not necessarily next to
     * it), as Envoy's {@code PayloadMatcher}; no blocks are always found.
     */
    static boolean payloadsFound(List<HealthCheck.Payload> blocks, io.vertx.core.buffer.Buffer data) {
        int from = 0;
        for (HealthCheck.Payload block : blocks) {
            int at = indexOf(data, block.bytes(), from);
            if (at < 0) {
                return false;
            }
            from = at + block.length();
        }
        return true;
    }

    /** Where {@code block} starts in {@code data} at or after {@code from}, or -1; read in place, nothing copied. */
    private static int indexOf(io.vertx.core.buffer.Buffer data, byte[] block, int from) {
        outer:
        for (int i = from; i <= data.length() - block.length; i++) {
            for (int j = 0; j < block.length; j++) {
                if (data.getByte(i + j) != block[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    /**
     * The most a TCP check's connection gathers while its blocks are not all found: Envoy's default connection buffer
     * limit (1 MiB); what comes past it is dropped, so that a peer that talks on and on costs no more.
     */
    static final int MAX_TCP_RECEIVED = 1 << 20;

    /**
     * Envoy's gRPC check headers: those of a gRPC call ({@code content-type: application/grpc}, {@code te: trailers}),
     * {@code user-agent: Envoy/HC}, then the {@code initial_metadata} as any other level of header rules (their values
     * formatted as the HTTP check's, see {@link #headers}), then a {@code grpc-timeout} of the check's {@code timeout}
     * (set last, as Envoy's, so the metadata does not change it).
     */
    static void grpcHeaders(MultiMap headers, HealthCheck.Grpc g, long timeoutMillis, HeaderFormats formats,
                            Supplier<AccessLogEntry> entry) {
        headers.set(HttpHeaders.CONTENT_TYPE, GRPC_CONTENT_TYPE).set("te", "trailers")
                .set(HttpHeaders.USER_AGENT, USER_AGENT);
        HeaderMutator.apply(List.of(), g.initialMetadata(), new MultiMapHeaders(headers), formats, entry);
        headers.set("grpc-timeout", Grpc.timeoutValue(timeoutMillis));
    }


    /**
     * Envoy's HTTP check headers: {@code user-agent: Envoy/HC}, then {@code request_headers_to_remove} and
     * {@code request_headers_to_add} as any other level of header rules (Envoy's health checker evaluates them with
     * the same header parser as the router's): a value that is a format of {@code formats} reads the check's own stream
     * ({@code entry}, {@link AccessLogEntry#healthCheck}), as Envoy's: {@code %UPSTREAM_HOST%} the checked host,
     * {@code %PROTOCOL%}, {@code %START_TIME%}, {@code %HOSTNAME%}, the loopback addresses as the downstream ones,
     * nothing of a request's headers.
     */
    static void headers(MultiMap headers, HealthCheck.Http h, HeaderFormats formats, Supplier<AccessLogEntry> entry) {
        headers.set(HttpHeaders.USER_AGENT, USER_AGENT);
        HeaderMutator.apply(h.requestHeadersToRemove(), h.requestHeadersToAdd(), new MultiMapHeaders(headers), formats,
                entry);
    }
}
