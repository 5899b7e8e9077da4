package dev.inmesh.runtime.admin;

import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.EnvoyJson;
import io.envoyproxy.envoy.admin.v3.ServerInfo;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import java.net.BindException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

/**
 * Envoy's admin server and Istio's health and stats ports, on Vert.x. Each {@link Mount} binds one host and port and
 * serves a chosen set of {@link Endpoint}s, so that one server can lay out Istio's ports:
 * {@link Mount#admin()} (127.0.0.1:15000, every endpoint), {@link Mount#health()} (15021, {@code /healthz/ready}),
 * {@link Mount#prometheus()} (15090, {@code /stats/prometheus}) and {@link Mount#agent()} (15020, merged stats and
 * readiness).
 *
 * <pre>{@code
 * AdminServer admin = AdminServer.builder(vertx)
 *         .snapshots(holder)
 *         .registry(prometheusRegistry)
 *         .clusterStatus(clusterManager)
 *         .nodeId("sidecar~10.244.0.194~productpage-v1-6b746f74dc-9stvs.default~default.svc.cluster.local")
 *         .mount(AdminServer.Mount.admin())
 *         .mount(AdminServer.Mount.health())
 *         .build();
 * admin.start().onSuccess(v -> ...);
 * }</pre>
 *
 * <p>Requests are answered without blocking the event loop: the Prometheus scrape, the config dump's JSON printing
 * and the cluster status run on worker threads. As Envoy's, an unknown path answers 404 with the list of what the
 * port serves, and an endpoint that changes state answers 405 to any method but POST. An endpoint not mounted on a
 * port is unknown there.
 */
public final class AdminServer {

    /** What the server can serve, by Envoy's (and Istio's) paths. */
    public enum Endpoint {
        /**
         * {@code /config_dump}: Envoy's v3 ConfigDump of the current snapshot and the SDS secrets it names, as JSON;
         * the endpoints only with {@code ?include_eds}, and {@code ?resource=}, {@code ?mask=} and
         * {@code ?name_regex=} as Envoy (see {@link ConfigDumpBuilder.Query}).
         */
        CONFIG_DUMP("/config_dump"),
        /**
         * {@code /stats/prometheus}: the Micrometer registry's Prometheus scrape, its numbers printed as Envoy's
         * ({@link PrometheusText}); as Envoy's, {@code ?filter=} keeps the series of the Envoy statistics whose Envoy
         * name a regular expression finds ({@code cluster\.C\.}), and the other families (Istio's metrics, an
         * application's) whose name it finds; {@code ?usedonly} the series written.
         */
        STATS_PROMETHEUS("/stats/prometheus"),
        /**
         * {@code /ready}: Envoy's server state, 200 {@code LIVE}, or 503 {@code PRE_INITIALIZING} before the first
         * snapshot's clusters are initialized, {@code INITIALIZING} while its listeners wait for their routes and
         * {@code DRAINING} while {@code /healthcheck/fail} holds.
         */
        READY("/ready"),
        /**
         * {@code /healthz/ready}: Istio's readiness probe, 503 until a probe finds the server {@code LIVE} (the first
         * snapshot applied and its clusters initialized, health checks not failed), then 200 from that probe on, as
         * Istio's agent caches its Envoy's readiness (a later {@code /healthcheck/fail} does not fail it).
         */
        HEALTHZ_READY("/healthz/ready"),
        /** {@code /healthcheck/fail} (POST): the server fails its health checks, {@code DRAINING}, as Envoy's. */
        HEALTHCHECK_FAIL("/healthcheck/fail", true),
        /** {@code /healthcheck/ok} (POST): the server passes its health checks again, as Envoy's. */
        HEALTHCHECK_OK("/healthcheck/ok", true),
        /**
         * {@code /clusters}: Envoy's text form of upstream cluster and host state, or with {@code ?format=json}
         * Envoy's {@code admin.v3.Clusters} as JSON; any other format is the text form, as Envoy's.
         */
        CLUSTERS("/clusters"),
        /** {@code /debug/xds_status}: the ADS client's state per type (what {@code inmesh proxy-status} reads). */
        XDS_STATUS("/debug/xds_status"),
        /**
         * {@code /stats}: the Envoy statistics by Envoy's names, as {@code name: value} lines or with
         * {@code ?format=json} as Envoy's JSON, the histograms last, in the form {@code ?histogram_buckets=} chooses
         * (see {@link EnvoyHistogram}); {@code ?filter=} keeps the names a regular expression finds, {@code ?type=}
         * the counters, the gauges or the histograms, {@code ?usedonly} those written (not zero).
         */
        STATS("/stats"),
        /**
         * {@code /server_info}: Envoy's {@code admin.v3.ServerInfo} as JSON (version, state, uptime, command line
         * options, and the node presented to the xDS server).
         */
        SERVER_INFO("/server_info"),
        /** {@code /listeners}: the listeners' names and addresses, or with {@code ?format=json} Envoy's Listeners. */
        LISTENERS("/listeners"),
        /** {@code /help}: the endpoints served on this port, one a line. */
        HELP("/help"),
        /** {@code /}: the same list as {@code /help}. */
        ROOT("/"),
        /**
         * {@code /quitquitquit} (POST): answers {@code OK} and then runs the {@link Builder#quit quit action}; not
         * served without one. A peer that is not on loopback gets 403, as from Istio's agent on 15020.
         */
        QUITQUITQUIT("/quitquitquit", true),
        /**
         * {@code /drain_listeners} (POST): Envoy's listener drain, with {@code ?inboundonly}, {@code ?graceful} and
         * {@code ?skip_exit} (which needs {@code graceful}, else 400); answers {@code OK} once the
         * {@link Builder#drainListeners drain action} has started; not served without one.
         */
        DRAIN_LISTENERS("/drain_listeners", true),
        /**
         * Istio's agent port: {@code /drain} (POST, from loopback only), which Kubernetes' native sidecars call as the
         * pod starts to stop: answers {@code OK}, then the {@link DrainListeners#agentDrain agent's drain} of the
         * {@link Builder#drainListeners drain action}; not served without one.
         */
        AGENT_DRAIN("/drain", true),
        /**
         * {@code /logging} (POST): Envoy's log levels, Inmesh's loggers by package (see {@link LogLevels}): with no
         * parameter lists them, {@code ?level=LEVEL}, {@code ?NAME=LEVEL} or {@code ?paths=NAME:LEVEL,...} changes
         * them first (400 with what it takes for anything else).
         */
        LOGGING("/logging", true),
        /**
         * {@code /reset_counters} (POST): the counters of {@code /stats} count from zero again, as Envoy's; the
         * registry itself, and so {@code /stats/prometheus}, keeps counting.
         */
        RESET_COUNTERS("/reset_counters", true),
        /** {@code /certs}: Envoy's {@code admin.v3.Certificates}, the certificates of the TLS contexts in use. */
        CERTS("/certs"),
        /** {@code /memory}: Envoy's {@code admin.v3.Memory}, from the JVM's heap. */
        MEMORY("/memory"),
        /**
         * {@code /runtime}: Envoy's runtime layers and values ({@link RuntimeJson}): those of the configuration's
         * {@code layered_runtime}, the admin layer's those {@code /runtime_modify} set.
         */
        RUNTIME("/runtime"),
        /**
         * {@code /runtime_modify} (POST): sets values of the runtime's admin layer, as Envoy's: {@code ?KEY=VALUE&...}
         * or the same as form values, each value YAML, an empty one removing the key's value; the next request takes
         * them. 400 with Envoy's usage without parameters; 503 with why when the runtime has no admin layer
         * ({@code No admin layer specified}) or a value is no YAML.
         */
        RUNTIME_MODIFY("/runtime_modify", true),
        /** {@code /hot_restart_version}: {@code disabled}, as an Envoy built without hot restart answers. */
        HOT_RESTART_VERSION("/hot_restart_version"),
        /**
         * {@code /cpuprofiler} (POST): as an Envoy built without gperftools' profiler: {@code ?enable=y} answers 500
         * {@code failure to start the profiler}, {@code ?enable=n} {@code OK}, anything else 400 {@code ?enable=<y|n>}.
         * (A JVM is profiled with its own tools: JFR, {@code jcmd}.)
         */
        CPU_PROFILER("/cpuprofiler", true),
        /** {@code /heapprofiler} (POST): 501, as an Envoy built without a heap profiler. */
        HEAP_PROFILER("/heapprofiler", true),
        /**
         * {@code /reopen_logs} (POST): the configuration's access log files are opened again by their paths before
         * their next lines (see {@link dev.inmesh.runtime.accesslog.AccessLogs#reopen}), as Envoy's; {@code OK}.
         */
        REOPEN_LOGS("/reopen_logs", true),
        /**
         * {@code /stats/recentlookups}: Envoy's answer with its recent lookups tracking off (its default): Inmesh
         * tracks no lookups of statistic names.
         */
        STATS_RECENT_LOOKUPS("/stats/recentlookups"),
        /**
         * Istio's agent port: {@code /metrics}, and {@code /stats/prometheus} on the same port, answer the registry's
         * scrape followed by the application's metrics (see {@link IstioAgent}); the query ({@code filter},
         * {@code usedonly}) goes to the registry's scrape, as Istio's agent passes it on to Envoy's.
         */
        APP_METRICS("/metrics"),
        /**
         * Istio's agent port: {@code /app-health/CONTAINER/livez|readyz|startupz} and {@code /app-lifecycle/...},
         * the application's probes as Istio's injector rewrites them (see {@link IstioAgent}).
         */
        APP_PROBES("/app-health/");

        private final String path;
        private final boolean mutates;

        Endpoint(String path) {
            this(path, false);
        }

        Endpoint(String path, boolean mutates) {
            this.path = path;
            this.mutates = mutates;
        }

        public String path() {
            return path;
        }

        /** Whether the endpoint changes the server's state, so that it answers POST only, as Envoy's. */
        public boolean mutates() {
            return mutates;
        }

        /** What the endpoint answers, for {@code /help}. */
        String help() {
            return switch (this) {
                case CONFIG_DUMP -> "the current configuration as Envoy's ConfigDump "
                        + "(params: include_eds, resource, mask, name_regex)";
                case STATS_PROMETHEUS -> "Istio's metrics and the Envoy statistics in Prometheus' text format "
                        + "(params: filter, usedonly)";
                case READY -> "the server state, 200 if LIVE, otherwise 503";
                case HEALTHZ_READY -> "200 while the server is LIVE, 503 otherwise";
                case HEALTHCHECK_FAIL -> "cause the server to fail health checks";
                case HEALTHCHECK_OK -> "cause the server to pass health checks";
                case CLUSTERS -> "upstream clusters and hosts (param: format=json)";
                case XDS_STATUS -> "the ADS client's state per resource type";
                case STATS -> "the Envoy statistics (params: format=json, filter, type, usedonly, histogram_buckets)";
                case SERVER_INFO -> "version, state, uptime and node as Envoy's ServerInfo";
                case LISTENERS -> "the listeners and their addresses (param: format=json)";
                case HELP -> "this list";
                case ROOT -> "this list";
                case QUITQUITQUIT -> "exit the server";
                case DRAIN_LISTENERS -> "drain listeners (params: inboundonly, graceful, skip_exit)";
                case AGENT_DRAIN -> "drain the inbound listeners now, a later stop then not waiting for a drain";
                case LOGGING -> "list the log levels, or change them (params: level, paths, or NAME=LEVEL)";
                case RESET_COUNTERS -> "reset the counters of /stats to zero";
                case CERTS -> "the certificates of the listeners' and clusters' TLS, as Envoy's Certificates";
                case MEMORY -> "the JVM's heap as Envoy's Memory (allocated: used, heap_size: committed)";
                case RUNTIME -> "the runtime layers and values of the configuration's layered_runtime";
                case RUNTIME_MODIFY -> "set the runtime's admin layer values (params: KEY=VALUE, an empty VALUE "
                        + "removing KEY's)";
                case HOT_RESTART_VERSION -> "the hot restart compatibility version (disabled)";
                case CPU_PROFILER -> "the CPU profiler, which this build has not (param: enable=y|n)";
                case HEAP_PROFILER -> "the heap profiler, which this build has not";
                case REOPEN_LOGS -> "open the access log files again (after a log rotation)";
                case STATS_RECENT_LOOKUPS -> "recent lookups of statistic names (not tracked)";
                case APP_METRICS -> "the proxy's metrics followed by the application's (Istio's metrics merging)";
                case APP_PROBES -> "the application's probes as Istio's injector rewrites them "
                        + "(/app-health/CONTAINER/livez|readyz|startupz)";
            };
        }

        static Endpoint ofPath(String path) {
            for (Endpoint e : values()) {
                if (e.path.equals(path)) {
                    return e;
                }
            }
            return null;
        }
    }

    /**
     * One listening address and the endpoints served on it.
     *
     * @param host the address to bind, such as {@code 127.0.0.1}
     * @param port the port, or 0 for an ephemeral one (see {@link AdminServer#port(int)})
     * @param endpoints what is served there
     */
    public record Mount(String host, int port, Set<Endpoint> endpoints) {
        public Mount {
            if (host == null || host.isEmpty()) {
                throw new IllegalArgumentException("host: '" + host + "' (expected: an address to bind)");
            }
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("port: " + port + " (expected: 0-65535)");
            }
            if (endpoints == null || endpoints.isEmpty()) {
                throw new IllegalArgumentException("endpoints: " + endpoints + " (expected: at least one)");
            }
            endpoints = Collections.unmodifiableSet(EnumSet.copyOf(endpoints));
        }

        public static Mount of(String host, int port, Endpoint first, Endpoint... rest) {
            return new Mount(host, port, EnumSet.of(first, rest));
        }

        /** Envoy's admin port: every endpoint but the agent's application ones on 127.0.0.1:15000. */
        public static Mount admin() {
            return new Mount("127.0.0.1", 15000, EnumSet.complementOf(EnumSet.of(Endpoint.APP_METRICS,
                    Endpoint.APP_PROBES, Endpoint.AGENT_DRAIN)));
        }

        /** Istio's health port: {@code /healthz/ready} on 0.0.0.0:15021. */
        public static Mount health() {
            return of("0.0.0.0", 15021, Endpoint.HEALTHZ_READY);
        }

        /** Istio's proxy stats port: {@code /stats/prometheus} on 0.0.0.0:15090. */
        public static Mount prometheus() {
            return of("0.0.0.0", 15090, Endpoint.STATS_PROMETHEUS);
        }

        /**
         * Istio's agent port: the merged {@code /stats/prometheus} and {@code /metrics} (the application's metrics
         * appended when the server's {@link IstioAgent} scrapes them; in-JVM, the proxy's and the application's
         * metrics share one registry), {@code /healthz/ready}, the application's probes, {@code /quitquitquit}
         * (when the server has a quit action) and {@code /drain} (when it has a drain action) on 0.0.0.0:15020.
         */
        public static Mount agent() {
            return of("0.0.0.0", 15020, Endpoint.STATS_PROMETHEUS, Endpoint.HEALTHZ_READY, Endpoint.QUITQUITQUIT,
                    Endpoint.AGENT_DRAIN, Endpoint.APP_METRICS, Endpoint.APP_PROBES);
        }
    }

    private final Vertx vertx;
    private final SnapshotHolder snapshots;
    private final PrometheusMeterRegistry registry;
    /** The names {@code /stats/prometheus} gives the tags of Envoy's statistics. */
    private final StatsTags statsTags;
    private final ClusterStatusSource clusterStatus;
    private final String nodeId;
    private final java.util.function.Supplier<io.envoyproxy.envoy.config.core.v3.Node> node;
    private final String configPath;
    private final java.util.function.Supplier<String> xdsStatus;
    private final java.util.function.Supplier<DynamicState> dynamicState;
    private final WorkloadIdentity identity;
    /** The SDS client whose secrets {@code /config_dump} lists, or null. */
    private final dev.inmesh.runtime.xds.sds.SdsSecretManager sds;
    private final Runnable quit;
    private final DrainListeners drainListeners;
    private final IstioAgent agent;
    private final List<Mount> mounts;
    private final Instant startedAt = Instant.now();
    /** Set by {@code /healthcheck/fail}, cleared by {@code /healthcheck/ok}, as Envoy's server keeps it. */
    private volatile boolean healthCheckFailed;
    /**
     * A {@code /healthz/ready} probe found the server {@code LIVE}: every later one answers 200, as Istio's agent
     * caches its readiness once its Envoy was ready ({@code atleastOnceReady}).
     */
    private volatile boolean readyOnce;
    /** The counters' values when {@code /reset_counters} was last called, which {@code /stats} counts from. */
    private volatile java.util.Map<String, Long> counterBaseline = java.util.Map.of();
    private final List<HttpServer> servers = new ArrayList<>();
    /** Envoy's server gauges in the registry, removed when the server closes. */
    private final List<io.micrometer.core.instrument.Meter> serverGauges;
    /**
     * Removes the snapshots' cluster manager, listener manager and subscription statistics
     * ({@link SnapshotHolder#stats()}) from the registry, where the server registered them.
     */
    private final Runnable configStats;

    private AdminServer(Builder b) {
        this.vertx = b.vertx;
        this.snapshots = b.snapshots;
        this.registry = b.registry;
        this.statsTags = b.statsTags;
        this.clusterStatus = b.clusterStatus;
        this.nodeId = b.nodeId;
        this.node = b.node;
        this.configPath = b.configPath;
        this.xdsStatus = b.xdsStatus;
        this.dynamicState = b.dynamicState;
        this.identity = b.identity;
        this.sds = b.sds;
        this.quit = b.quit;
        this.drainListeners = b.drainListeners;
        this.agent = b.agent != null ? b.agent : new IstioAgent(b.vertx, IstioAgent.Settings.NONE, null);
        this.mounts = List.copyOf(b.mounts);
        this.serverGauges = serverGauges();
        this.configStats = registry == null ? () -> { } : snapshots.stats().bind(registry);
    }

    public static Builder builder(Vertx vertx) {
        return new Builder(vertx);
    }

    /** Binds every mount; fails (closing what was bound) if any cannot be bound. */
    public synchronized Future<Void> start() {
        if (!servers.isEmpty()) {
            return Future.failedFuture(new IllegalStateException("already started"));
        }
        List<Future<HttpServer>> binds = new ArrayList<>();
        for (Mount m : mounts) {
            // HTTP/1.1 only: an "Upgrade: h2c" request is answered in HTTP/1.1, as Envoy's admin and Istio's agent
            // answer it (Vert.x's one switch would also take h2c upgrades, which the JDK client sends by default)
            HttpServer server = vertx.createHttpServer(new HttpServerOptions().setHost(m.host()).setPort(m.port())
                    .setHttp2ClearTextEnabled(false));
            server.requestHandler(req -> handle(m, req));
            binds.add(server.listen().recover(e -> Future.failedFuture(bindFailure(m, e))));
        }
        return Future.join(binds).transform(ar -> {
            synchronized (this) {
                for (Future<HttpServer> f : binds) {
                    if (f.succeeded()) {
                        servers.add(f.result());
                    }
                }
            }
            if (ar.succeeded()) {
                return Future.succeededFuture();
            }
            return close().transform(ignored -> Future.failedFuture(ar.cause()));
        });
    }

    /**
     * Why mount {@code m} could not be bound, naming its address as Envoy does ({@code cannot bind
     * '127.0.0.1:15000': Address already in use}), without the native transport's {@code bind(..) failed} prefix.
     */
    private static BindException bindFailure(Mount m, Throwable e) {
        String host = m.host().contains(":") ? "[" + m.host() + "]" : m.host();
        BindException b = new BindException("admin server: cannot bind '" + host + ":" + m.port() + "': "
                + dev.inmesh.runtime.net.BindFailures.reason(e));
        b.initCause(e);
        return b;
    }

    /** The port mount {@code index} (in builder order) is bound to; useful with port 0. */
    public synchronized int port(int index) {
        return servers.get(index).actualPort();
    }

    /** Unbinds every mount. */
    public Future<Void> close() {
        List<HttpServer> toClose;
        synchronized (this) {
            toClose = new ArrayList<>(servers);
            servers.clear();
        }
        List<Future<Void>> closes = new ArrayList<>();
        for (HttpServer s : toClose) {
            closes.add(s.close());
        }
        closes.add(agent.close());
        serverGauges.forEach(g -> registry.remove(g));
        configStats.run();
        return Future.join(closes).mapEmpty();
    }

    private void handle(Mount mount, HttpServerRequest req) {
        if (IstioAgent.probePath(req.path()) && serves(mount, Endpoint.APP_PROBES)) {
            agent.probe(req);
            return;
        }
        boolean agentPort = mount.endpoints().contains(Endpoint.APP_PROBES);
        io.vertx.core.MultiMap query = params(req.query());
        if (!agentPort && query.isEmpty() && FORM.equals(req.getHeader("content-type"))) {
            formParams(req).onSuccess(params -> answer(mount, req, agentPort, params));
            return;
        }
        answer(mount, req, agentPort, query);
    }

    /**
     * The parameters of a query string (or a form's body) as Envoy's admin reads them
     * ({@code parseAndDecodeQueryString}): split at {@code &} and the first {@code =}, names and values
     * percent-decoded as Envoy's {@code PercentEncoding::decode} decodes them, so that a {@code +} stays a {@code +}
     * (a filter's {@code .+} is a regex's) and an escape that is not one stays as it came; none for null.
     */
    static io.vertx.core.MultiMap params(String query) {
        io.vertx.core.MultiMap decoded = io.vertx.core.MultiMap.caseInsensitiveMultiMap();
        if (query != null) {
            dev.inmesh.runtime.router.QueryParameters.parse(query, dev.inmesh.runtime.router.QueryParameters::decode)
                    .forEach(decoded::add);
        }
        return decoded;
    }

    /** The content type of a form, whose body Envoy's admin reads as the parameters when the query has none. */
    private static final String FORM = "application/x-www-form-urlencoded";
    /** The most of a form's body read: parameters are short; a body beyond it answers 413. */
    static final int FORM_LIMIT = 64 * 1024;

    /**
     * The parameters of a form's body, as Envoy's admin takes them when the query string has none ({@code curl -d
     * level=debug}), decoded as a query string; read without blocking, up to {@link #FORM_LIMIT} bytes. A longer
     * body is answered 413 {@code Payload Too Large}, as Envoy's connection manager answers a body over its buffer,
     * and the connection closed; the future then never completes.
     */
    private static Future<io.vertx.core.MultiMap> formParams(HttpServerRequest req) {
        io.vertx.core.Promise<io.vertx.core.MultiMap> params = io.vertx.core.Promise.promise();
        io.vertx.core.buffer.Buffer body = io.vertx.core.buffer.Buffer.buffer();
        boolean[] tooLarge = {false};
        req.handler(chunk -> {
            if (tooLarge[0]) {
                return;
            }
            if (body.length() + chunk.length() > FORM_LIMIT) {
                tooLarge[0] = true;
                // the rest of the body is not read: the connection ends with the answer
                req.response().setStatusCode(413).putHeader("content-type", "text/plain")
                        .putHeader("connection", "close").end("Payload Too Large")
                        .onComplete(v -> req.connection().close());
                return;
            }
            body.appendBuffer(chunk);
        });
        req.exceptionHandler(params::tryFail);
        req.endHandler(v -> {
            if (tooLarge[0]) {
                return;
            }
            params.tryComplete(params(body.toString(java.nio.charset.StandardCharsets.UTF_8)));
        });
        return params.future();
    }

    /** Answers the request with its parameters, from its query or its form's body. */
    private void answer(Mount mount, HttpServerRequest req, boolean agentPort, io.vertx.core.MultiMap params) {
        Endpoint e = Endpoint.ofPath(req.path());
        boolean listenerPort = EnumSet.of(Endpoint.HEALTHZ_READY, Endpoint.STATS_PROMETHEUS)
                .containsAll(mount.endpoints());
        boolean served = e != null && serves(mount, e);
        // /healthz/ready is Istio's agent's answer, an empty one, and so is an unknown path on the health and
        // Prometheus ports, their Envoy listeners' route finding none: no header added to those
        if (e != Endpoint.HEALTHZ_READY && (served || !listenerPort)) {
            req.response().headersEndHandler(v -> defaultHeaders(req.response(), agentPort));
        }
        if (!served) {
            if (agentPort) {
                text(req, 404, "404 page not found\n"); // Istio's agent, a Go server
            } else if (listenerPort) {
                // the health and Prometheus ports, Envoy listeners of Istio's bootstrap routing one path each
                req.response().setStatusCode(404).end();
            } else {
                // as Envoy's admin: the list of what is served, after a sentence of its own
                text(req, 404, "invalid path. " + help(mount));
            }
            return;
        }
        if (e.mutates() && req.method() != HttpMethod.POST) {
            text(req, 405, agentPort ? "Method Not Allowed\n"
                    : "Method " + req.method().name() + " not allowed, POST required.");
            return;
        }
        switch (e) {
            case READY -> {
                ServerInfo.State state = state();
                text(req, state == ServerInfo.State.LIVE ? 200 : 503, state.name() + "\n");
            }
            case HEALTHZ_READY -> {
                readyOnce = readyOnce || state() == ServerInfo.State.LIVE;
                req.response().setStatusCode(readyOnce ? 200 : 503).end();
            }
            case HEALTHCHECK_FAIL, HEALTHCHECK_OK -> {
                healthCheckFailed = e == Endpoint.HEALTHCHECK_FAIL;
                if (drainListeners != null) {
                    drainListeners.healthCheckFailed(healthCheckFailed);
                }
                text(req, 200, "OK\n");
            }
            case CONFIG_DUMP -> configDump(req, params);
            case STATS_PROMETHEUS, APP_METRICS -> {
                if (serves(mount, Endpoint.APP_METRICS)) {
                    // as Istio's agent, which passes the scrape's query on to Envoy's /stats/prometheus: the proxy's
                    // metrics filtered as there, or left out (a failed scrape of the proxy) when Envoy answers 400
                    StatsQuery query = statsQuery(params);
                    agent.mergedStats(req, () -> query.error() != null
                            ? Future.failedFuture("/stats/prometheus answered 400: " + query.error().strip())
                            : vertx.executeBlocking(prometheusScrape(params, query.filter()), false));
                } else {
                    java.util.function.Predicate<String> filter = statsParams(req, params);
                    if (filter != null) {
                        prometheus(req, params, filter);
                    }
                }
            }
            case CLUSTERS -> {
                // as Envoy's (clusters_handler.cc): JSON for json, the text form for any other format or none
                if ("json".equals(params.get("format"))) {
                    offLoop(req, "application/json", () -> EnvoyJson.print(clusterStatus.clusters()) + "\n");
                    return;
                }
                offLoop(req, TEXT, () -> {
                    StringBuilder b = new StringBuilder();
                    for (String line : clusterStatus.clusterStatusLines()) {
                        b.append(line).append('\n');
                    }
                    return b.toString();
                });
            }
            case XDS_STATUS -> {
                String json = xdsStatus.get();
                if (json == null) {
                    text(req, 404, "no xDS client: the configuration comes from a file\n");
                } else {
                    req.response().setStatusCode(200).putHeader("content-type", "application/json").end(json);
                }
            }
            case STATS -> stats(req, params);
            case SERVER_INFO -> offLoop(req, "application/json", () -> ServerInfoJson.print(serverInfo()) + "\n");
            case LISTENERS -> {
                var listeners = snapshots.current().resources().listeners().values();
                if ("json".equals(params.get("format"))) {
                    offLoop(req, "application/json", () -> EnvoyJson.print(ListenersStatus.json(listeners)) + "\n");
                } else {
                    text(req, 200, ListenersStatus.text(listeners));
                }
            }
            case HELP, ROOT -> text(req, 200, help(mount));
            case QUITQUITQUIT -> quit(req);
            case DRAIN_LISTENERS -> drainListeners(req, params);
            case AGENT_DRAIN -> agentDrain(req);
            case CERTS -> offLoop(req, "application/json", () -> ServerInfoJson.print(
                    CertsJson.certificates(snapshots.current(), java.time.Instant.now())) + "\n");
            case MEMORY -> offLoop(req, "application/json", () -> ServerInfoJson.print(memory()) + "\n");
            case RUNTIME -> offLoop(req, "application/json",
                    () -> EnvoyJson.print(RuntimeJson.of(snapshots.current().runtime())) + "\n");
            case RUNTIME_MODIFY -> runtimeModify(req, params);
            case HOT_RESTART_VERSION -> text(req, 200, "disabled");
            case CPU_PROFILER -> cpuProfiler(req, params);
            case HEAP_PROFILER -> text(req, 501, "The current build does not support heap profiler");
            case REOPEN_LOGS -> {
                dev.inmesh.runtime.accesslog.AccessLogs.reopen();
                text(req, 200, "OK\n");
            }
            case STATS_RECENT_LOOKUPS -> text(req, 200,
                    "Lookup tracking is not enabled. Use /stats/recentlookups/enable to enable.\n\ntotal: 0\n");
            case LOGGING -> logging(req, params);
            case RESET_COUNTERS -> offLoop(req, TEXT, () -> {
                counterBaseline = EnvoyStats.counters(EnvoyStats.collect(registry, n -> true, clusterStatNames()));
                return "OK\n";
            });
            default -> text(req, 404, "invalid path. " + help(mount));
        }
    }

    /** Whether the mount serves the endpoint: it names it, and what the endpoint needs was given. */
    private boolean serves(Mount mount, Endpoint e) {
        return mount.endpoints().contains(e) && (e != Endpoint.QUITQUITQUIT || quit != null)
                && (e != Endpoint.DRAIN_LISTENERS && e != Endpoint.AGENT_DRAIN || drainListeners != null);
    }

    /** Envoy's help: the paths served here in alphabetical order, those that mutate marked {@code (POST)}. */
    private String help(Mount mount) {
        StringBuilder b = new StringBuilder("admin commands are:\n");
        Endpoint[] sorted = Endpoint.values();
        java.util.Arrays.sort(sorted, java.util.Comparator.comparing(Endpoint::path));
        for (Endpoint each : sorted) {
            if (serves(mount, each)) {
                b.append("  ").append(each.path).append(each.mutates ? " (POST)" : "").append(": ")
                        .append(each.help()).append('\n');
            }
        }
        return b.toString();
    }

    /** {@code /quitquitquit}: OK, then the quit action, once the answer is written; from loopback only. */
    private void quit(HttpServerRequest req) {
        if (!fromLoopback(req)) {
            text(req, 403, "Only requests from localhost are allowed\n");
            return;
        }
        text(req, 200, "OK\n").onComplete(ar -> quit.run());
    }

    /**
     * {@code /cpuprofiler}: as Envoy's (profiling_handler.cc) built without a CPU profiler: {@code enable} alone, of
     * {@code y} or {@code n}, else 400; starting it fails (500), stopping it, not running, is {@code OK}.
     */
    private static void cpuProfiler(HttpServerRequest req, io.vertx.core.MultiMap params) {
        String enable = params.get("enable");
        if (params.names().size() != 1 || !"y".equals(enable) && !"n".equals(enable)) {
            text(req, 400, "?enable=<y|n>\n");
        } else if (enable.equals("y")) {
            text(req, 500, "failure to start the profiler");
        } else {
            text(req, 200, "OK\n");
        }
    }

    /** Istio's agent's {@code /drain}: from loopback only; {@code OK}, then the agent's drain. */
    private void agentDrain(HttpServerRequest req) {
        if (!fromLoopback(req)) {
            text(req, 403, "Only requests from localhost are allowed\n");
            return;
        }
        text(req, 200, "OK").onComplete(ar -> drainListeners.agentDrain());
    }

    /**
     * {@code /drain_listeners}: as Envoy's, {@code skip_exit} without {@code graceful} is refused with 400; otherwise
     * the drain starts and the answer is {@code OK}.
     */
    private void drainListeners(HttpServerRequest req, io.vertx.core.MultiMap params) {
        boolean graceful = params.contains("graceful");
        boolean skipExit = params.contains("skip_exit");
        if (skipExit && !graceful) {
            text(req, 400, "skip_exit requires graceful\n");
            return;
        }
        drainListeners.drain(params.contains("inboundonly"), graceful, skipExit);
        text(req, 200, "OK\n");
    }

    /**
     * What {@code POST /drain_listeners} does, as Envoy's listener manager and drain manager: called on an event
     * loop, so it must not block.
     */
    @FunctionalInterface
    public interface DrainListeners {
        /**
         * @param inboundOnly only the listeners whose {@code traffic_direction} is {@code INBOUND}
         * @param graceful discourage requests for the drain time (HTTP/1 {@code connection: close}, HTTP/2 GOAWAY)
         *                 while still accepting, then stop the listeners; otherwise stop them at once
         * @param skipExit with {@code graceful}: do not stop the listeners when the drain time is over
         */
        void drain(boolean inboundOnly, boolean graceful, boolean skipExit);

        /**
         * What {@code POST /healthcheck/fail} ({@code true}) and {@code /healthcheck/ok} ({@code false}) tell the
         * listeners: while the health checks fail, Envoy's connection managers discourage requests as in a drain
         * (HTTP/1 answers close their connection, HTTP/2 connections get GOAWAY). Nothing by default.
         */
        default void healthCheckFailed(boolean failed) {
        }

        /**
         * How long a graceful drain discourages requests before the listeners stop, which {@code /server_info}
         * reports as Envoy's {@code drain_time} option; null (the default) for Envoy's default, 600 s.
         */
        default java.time.Duration drainTime() {
            return null;
        }

        /**
         * What Istio's agent does on {@code POST /drain} (its {@code DrainNow}, for Kubernetes' native sidecars,
         * which get no SIGTERM until the application has stopped): a sidecar's graceful drain of its inbound
         * listeners that never stops them ({@code drain_listeners?inboundonly&graceful&skip_exit}), after which a
         * stop skips its termination drain. By default the drain alone.
         */
        default void agentDrain() {
            drain(true, true, true);
        }
    }

    private static boolean fromLoopback(HttpServerRequest req) {
        return req.remoteAddress() != null && loopback(req.remoteAddress().hostAddress());
    }

    /** Whether a peer's address literal is a loopback address (127.0.0.0/8, ::1). */
    static boolean loopback(String address) {
        byte[] ip = dev.inmesh.runtime.net.IpLiterals.parse(address);
        if (ip == null) {
            return false;
        }
        try {
            return java.net.InetAddress.getByAddress(dev.inmesh.runtime.net.IpLiterals.unmapped(ip))
                    .isLoopbackAddress();
        } catch (java.net.UnknownHostException e) {
            return false;
        }
    }

    /**
     * {@code /stats} with Envoy's {@code filter}, {@code histogram_buckets}, {@code type}, {@code usedonly} and
     * {@code format} parameters (see {@link #statsParams}).
     */
    private void stats(HttpServerRequest req, io.vertx.core.MultiMap params) {
        java.util.function.Predicate<String> filter = statsParams(req, params);
        if (filter == null) {
            return;
        }
        String format = params.get("format");
        if ("prometheus".equals(format)) {
            prometheus(req, params, filter);
            return;
        }
        String type = params.get("type") == null ? "All" : params.get("type");
        boolean usedOnly = params.contains("usedonly");
        String buckets = params.get("histogram_buckets");
        boolean json = "json".equals(format);
        offLoop(req, json ? "application/json" : TEXT, () -> {
            var names = clusterStatNames();
            var stats = EnvoyStats.select(EnvoyStats.since(EnvoyStats.collect(registry, filter, names),
                    counterBaseline), type, usedOnly);
            var histograms = EnvoyStats.selectHistograms(EnvoyStats.histograms(registry, filter, names), type,
                    usedOnly);
            return json ? EnvoyStats.json(stats, histograms, buckets) : EnvoyStats.text(stats, histograms, buckets);
        });
    }

    /** The names the current snapshot's clusters have in {@code /stats}: {@code alt_stat_name}, else their name. */
    private java.util.function.UnaryOperator<String> clusterStatNames() {
        var snapshot = snapshots.current();
        return name -> ClusterManagerStatus.statName(snapshot, name);
    }

    /**
     * {@code /logging}: as Envoy's, the parameters change the levels first, a bad one answering 400 with the error
     * and what the endpoint takes; the list of loggers and their levels follows either way. An empty {@code level}
     * or {@code paths} is no parameter.
     */
    private void logging(HttpServerRequest req, io.vertx.core.MultiMap query) {
        java.util.Map<String, List<String>> params = new java.util.LinkedHashMap<>();
        for (String name : query.names()) {
            params.put(name, query.getAll(name));
        }
        // as Envoy's: an empty level or paths (what its admin page's form sends unfilled) counts as none
        for (String optional : List.of("level", "paths")) {
            if (params.containsKey(optional) && params.get(optional).get(0).isEmpty()) {
                params.remove(optional);
            }
        }
        String error = "";
        if (!params.isEmpty()) {
            try {
                LogLevels.JVM.change(params);
            } catch (LogLevels.LevelException e) {
                error = "error: " + e.getMessage() + "\n\n" + LogLevels.usage();
            }
        }
        text(req, error.isEmpty() ? 200 : 400, error + LogLevels.JVM.list());
    }

    /**
     * The parameters {@code /stats} and {@code /stats/prometheus} share, checked as Envoy's {@code StatsParams} checks
     * them for both, in its order, each failure a 400 with Envoy's text: {@code filter}, a regular expression found
     * anywhere in a name ({@code Invalid re2 regex}), {@code histogram_buckets} ({@code cumulative},
     * {@code disjoint}, {@code detailed}, {@code summary} or {@code none}), {@code type} ({@link EnvoyStats#TYPES}) and
     * {@code format} ({@code json}, {@code prometheus} or {@code text}; Inmesh has no HTML form), an empty value
     * being none but for {@code filter} and {@code type}. Answers the filter, or null having answered 400.
     */
    private static java.util.function.Predicate<String> statsParams(HttpServerRequest req,
            io.vertx.core.MultiMap params) {
        StatsQuery query = statsQuery(params);
        if (query.error() != null) {
            text(req, 400, query.error());
            return null;
        }
        return query.filter();
    }

    /** The parameters of {@code /stats} read: their filter, or Envoy's 400 text when one is refused. */
    private record StatsQuery(java.util.function.Predicate<String> filter, String error) {}

    /** {@link #statsParams} without an answer: the filter, or the error Envoy answers with 400. */
    private static StatsQuery statsQuery(io.vertx.core.MultiMap params) {
        java.util.function.Predicate<String> filter = n -> true;
        String regex = params.get("filter");
        if (regex != null && !regex.isEmpty()) {
            try {
                // RE2, as Envoy's, found anywhere in a name
                filter = AdminRegex.compile(regex, false);
            } catch (com.google.re2j.PatternSyntaxException e) {
                return new StatsQuery(null, "Invalid re2 regex");
            }
        }
        String type = params.get("type");
        String error = !noneOrOneOf(params.get("histogram_buckets"), HISTOGRAM_BUCKETS)
                ? "usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary)\n"
                : type != null && !EnvoyStats.TYPES.contains(type) ? "invalid &type= param"
                : !noneOrOneOf(params.get("format"), STATS_FORMATS)
                ? "usage: /stats?format=(json|prometheus|text)\n\n" : null;
        return new StatsQuery(error == null ? filter : null, error);
    }

    /** Whether a parameter's value is none (absent or empty, as Envoy reads it) or one of {@code values}. */
    private static boolean noneOrOneOf(String value, Set<String> values) {
        return value == null || value.isEmpty() || values.contains(value);
    }

    /**
     * The values of Envoy's {@code histogram_buckets} parameter ({@code utils.cc} histogramBucketsParam):
     * {@code none} is the older name of {@code summary}, the quantiles.
     */
    private static final Set<String> HISTOGRAM_BUCKETS = Set.of("cumulative", "disjoint", "detailed", "summary",
            "none");
    /** The values of the {@code format} parameter of {@code /stats} that Inmesh serves. */
    private static final Set<String> STATS_FORMATS = Set.of("json", "prometheus", "text");

    /**
     * The registry's scrape, as Envoy's {@code /stats/prometheus}: with {@code ?filter=} the metric families whose
     * name the expression finds, with {@code ?usedonly} their series written (see {@link PrometheusText}).
     */
    private void prometheus(HttpServerRequest req, io.vertx.core.MultiMap params,
            java.util.function.Predicate<String> filter) {
        // as Envoy's: its text scrape names no content type, so the admin's default is given
        offLoop(req, TEXT, prometheusScrape(params, filter));
    }

    /**
     * The registry's scrape as {@code /stats/prometheus} with these parameters and their filter answers it: as
     * Envoy's, the filter is matched against Envoy's names of its statistics ({@code cluster.C.upstream_rq_total},
     * see {@link PrometheusText#selectByEnvoyName}).
     */
    private Callable<String> prometheusScrape(io.vertx.core.MultiMap params,
            java.util.function.Predicate<String> filter) {
        boolean usedOnly = params.contains("usedonly");
        boolean filtered = params.get("filter") != null && !params.get("filter").isEmpty();
        return registry == null ? () -> ""
                : filtered ? () -> PrometheusText.selectByEnvoyName(registry.scrape(), filter, usedOnly, statsTags,
                        clusterStatNames())
                : usedOnly ? () -> PrometheusText.select(registry.scrape(), n -> true, true, statsTags)
                : () -> PrometheusText.envoy(registry.scrape(), statsTags);
    }

    /** Envoy's Memory from the JVM's heap: what is used as allocated, what is committed as the heap's size. */
    static io.envoyproxy.envoy.admin.v3.Memory memory() {
        java.lang.management.MemoryUsage heap =
                java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
        return io.envoyproxy.envoy.admin.v3.Memory.newBuilder().setAllocated(heap.getUsed())
                .setHeapSize(heap.getCommitted()).setPageheapFree(Math.max(0, heap.getCommitted() - heap.getUsed()))
                .setTotalPhysicalBytes(heap.getCommitted()).build();
    }

    /**
     * Envoy's ServerInfo: what Inmesh has of it. Its command line options, always there as Envoy's, say what Inmesh
     * does: no hot restart ({@code disable_hot_restart}, as Istio starts its sidecars), the configuration file when
     * there is one, and, where {@code /drain_listeners} is served, the drain it runs: {@code Immediate}, as Istio's
     * sidecars' {@code --drain-strategy immediate} (Envoy's default, {@code Gradual}, it never runs), and how long
     * ({@link DrainListeners#drainTime}); the others Envoy's defaults, as Envoy prints them. Its node is
     * Envoy's local node, the one presented to the xDS server (see {@link Builder#node}).
     */
    ServerInfo serverInfo() {
        long up = Math.max(0, Instant.now().getEpochSecond() - startedAt.getEpochSecond());
        ServerInfo.Builder b = ServerInfo.newBuilder()
                .setVersion(version())
                .setHotRestartVersion("disabled")
                .setState(state())
                .setUptimeCurrentEpoch(com.google.protobuf.Duration.newBuilder().setSeconds(up))
                .setUptimeAllEpochs(com.google.protobuf.Duration.newBuilder().setSeconds(up));
        // Envoy's defaults where proto's zero is not one: its log level, a worker a core, its file flush interval
        // and hot restart times (Inmesh has no hot restart)
        var options = b.getCommandLineOptionsBuilder().setDisableHotRestart(true).setLogLevel("info")
                .setConcurrency(Runtime.getRuntime().availableProcessors())
                .setFileFlushInterval(seconds(10)).setParentShutdownTime(seconds(900)).setDrainTime(seconds(600));
        if (configPath != null) {
            options.setConfigPath(configPath);
        }
        if (drainListeners != null) {
            options.setDrainStrategy(io.envoyproxy.envoy.admin.v3.CommandLineOptions.DrainStrategy.Immediate);
            java.time.Duration drainTime = drainListeners.drainTime();
            if (drainTime != null) {
                options.setDrainTime(com.google.protobuf.Duration.newBuilder().setSeconds(drainTime.getSeconds())
                        .setNanos(drainTime.getNano()));
            }
        }
        return b.setNode(presentedNode()).build();
    }

    private static com.google.protobuf.Duration seconds(long seconds) {
        return com.google.protobuf.Duration.newBuilder().setSeconds(seconds).build();
    }

    /**
     * The node the proxy presents to its xDS server, else one with the {@link Builder#nodeId} and the proxy's user
     * agent and version: Envoy's local node, which its {@code /server_info} and its config dump's bootstrap both show.
     */
    private io.envoyproxy.envoy.config.core.v3.Node presentedNode() {
        io.envoyproxy.envoy.config.core.v3.Node presented = node.get();
        return presented != null ? presented : dev.inmesh.runtime.xds.ads.NodeBuilder.local(nodeId);
    }

    /**
     * Envoy's {@code server.state} (the state's number: 0 {@code LIVE}, 1 {@code DRAINING}, 2
     * {@code PRE_INITIALIZING}, 3 {@code INITIALIZING}), {@code server.live} (1 while {@code LIVE}),
     * {@code server.uptime} (seconds), {@code server.days_until_first_cert_expiring} and
     * {@code listener_manager.workers_started} (1 once the first snapshot's
     * clusters are initialized, as Envoy starts its workers), as the registry's {@code envoy_server_*} and
     * {@code envoy_listener_manager_workers_started} gauges: what Istio's agent reads for its readiness
     * ({@code /stats?usedonly&filter=^(server.state|listener_manager.workers_started)}).
     */
    private List<io.micrometer.core.instrument.Meter> serverGauges() {
        if (registry == null) {
            return List.of();
        }
        java.util.Map<String, java.util.function.ToDoubleFunction<AdminServer>> gauges =
                new java.util.LinkedHashMap<>();
        gauges.put("envoy_server_state", s -> s.state().getNumber());
        gauges.put("envoy_server_live", s -> s.state() == ServerInfo.State.LIVE ? 1 : 0);
        gauges.put("envoy_server_uptime", s -> Math.max(0, Instant.now().getEpochSecond()
                - s.startedAt.getEpochSecond()));
        gauges.put("envoy_listener_manager_workers_started", s -> s.snapshots.initialized().isComplete() ? 1 : 0);
        gauges.put("envoy_server_days_until_first_cert_expiring", AdminServer::daysUntilFirstCertExpiring);
        List<io.micrometer.core.instrument.Meter> out = new ArrayList<>();
        gauges.forEach((name, value) -> out.add(io.micrometer.core.instrument.Gauge.builder(name, this, value)
                .register(registry)));
        return List.copyOf(out);
    }

    /** The snapshot and the hour {@link #daysUntilFirstCertExpiring} last read its certificates in, and the days. */
    private record CertDays(MeshSnapshot snapshot, long hour, long days) {}

    private final java.util.concurrent.atomic.AtomicReference<CertDays> certDays =
            new java.util.concurrent.atomic.AtomicReference<>();

    /**
     * Envoy's {@code server.days_until_first_cert_expiring} ({@link CertsJson#daysUntilFirstCertExpiring}), the
     * certificates read again for a new snapshot and otherwise once an hour (a file rotated meanwhile shows within it).
     */
    private double daysUntilFirstCertExpiring() {
        MeshSnapshot snapshot = snapshots.current();
        Instant now = Instant.now();
        long hour = now.getEpochSecond() / 3600;
        CertDays known = certDays.get();
        if (known == null || known.snapshot() != snapshot || known.hour() != hour) {
            known = new CertDays(snapshot, hour, snapshot == null ? 0xFFFFFFFFL
                    : CertsJson.daysUntilFirstCertExpiring(snapshot, now));
            certDays.set(known);
        }
        return known.days();
    }

    /**
     * Envoy's server state ({@code Server::Utility::serverState} of its init manager's state): {@code PRE_INITIALIZING}
     * until a snapshot is applied whose clusters are initialized (those with health checks had their first round) with
     * no cluster held back, as Envoy's server initializes its init manager only once its cluster manager has;
     * {@code INITIALIZING} while the initialization waits on for the listeners held back for their route
     * configurations ({@link SnapshotHolder#clustersInitialized()}); then {@code DRAINING} while the health checks fail
     * ({@code /healthcheck/fail}), else {@code LIVE}.
     */
    private ServerInfo.State state() {
        if (!snapshots.initialized().isComplete()) {
            return snapshots.clustersInitialized() ? ServerInfo.State.INITIALIZING
                    : ServerInfo.State.PRE_INITIALIZING;
        }
        return healthCheckFailed ? ServerInfo.State.DRAINING : ServerInfo.State.LIVE;
    }

    /** {@code inmesh/VERSION} (the jar's implementation version, {@code dev} when run from classes). */
    static String version() {
        String v = AdminServer.class.getPackage().getImplementationVersion();
        return "inmesh/" + (v == null ? "dev" : v);
    }

    /**
     * {@code /config_dump} with Envoy's {@code include_eds}, {@code resource}, {@code mask} and {@code name_regex}
     * parameters.
     */
    private void configDump(HttpServerRequest req, io.vertx.core.MultiMap params) {
        ConfigDumpBuilder.Query query = new ConfigDumpBuilder.Query(params.contains("include_eds"),
                params.get("resource"), params.get("mask"), params.get("name_regex"));
        vertx.<Object>executeBlocking(() -> {
            try {
                DynamicState dynamic = dynamicState.get();
                MeshSnapshot snapshot = snapshots.current();
                // the clusters not in use until their first health checks are warming ones, as Envoy's
                return ConfigDumpBuilder.json(snapshot.resources(), (dynamic == null ? DynamicState.NONE : dynamic)
                        .withClustersWarmingInUse(snapshot.clusterManager().warming().keySet())
                        .withDrainingListeners(snapshots.drainingListeners())
                        .withSdsSecrets(sds), identity,
                        presentedNode(), startedAt, query, query.includeEds()
                                ? ClusterManagerStatus.hostHealth(snapshot.clusterManager())
                                : ConfigDumpBuilder.HostHealth.NONE) + "\n";
            } catch (ConfigDumpBuilder.QueryException e) {
                return e;
            }
        }, false).onComplete(ar -> {
            if (ar.failed()) {
                text(req, 500, "error: " + ar.cause() + "\n");
            } else if (ar.result() instanceof ConfigDumpBuilder.QueryException e) {
                // as Envoy's: plain text without a charset, and a nosniff of the endpoint's own
                req.response().putHeader("x-content-type-options", "nosniff").putHeader("content-type", "text/plain");
                text(req, e.status(), e.getMessage());
            } else {
                req.response().setStatusCode(200).putHeader("content-type", "application/json")
                        .end((String) ar.result());
            }
        });
    }

    private void offLoop(HttpServerRequest req, String contentType, Callable<String> body) {
        vertx.executeBlocking(body, false).onComplete(ar -> {
            if (ar.succeeded()) {
                req.response().setStatusCode(200).putHeader("content-type", contentType).end(ar.result());
            } else {
                text(req, 500, "error: " + ar.cause() + "\n");
            }
        });
    }

    /** A text answer, its content type left to {@link #defaultHeaders}. */
    private static Future<Void> text(HttpServerRequest req, int status, String body) {
        return req.response().setStatusCode(status).end(body);
    }

    /** The content type of Envoy's admin answers that name none, and of its text ones. */
    static final String TEXT = "text/plain; charset=UTF-8";

    /**
     * {@code /runtime_modify}: the parameters (each one's first value) set in the runtime's admin layer, off the event
     * loop (the configuration is compiled again); {@code OK}, or as Envoy's, 400 with its usage when there are none
     * and 503 with why they cannot be set.
     */
    private void runtimeModify(HttpServerRequest req, io.vertx.core.MultiMap params) {
        if (params.isEmpty()) {
            text(req, 400, "usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n"
                    + "       or send the parameters as form values\n"
                    + "use an empty value to remove a previously added override");
            return;
        }
        java.util.Map<String, String> values = new java.util.LinkedHashMap<>();
        for (String name : params.names()) {
            values.put(name, params.get(name));
        }
        vertx.executeBlocking(() -> {
            snapshots.modifyRuntime(values);
            return "OK\n";
        }, false).onComplete(ar -> text(req, ar.succeeded() ? 200 : 503,
                ar.succeeded() ? ar.result() : String.valueOf(ar.cause().getMessage())));
    }

    /**
     * The headers a response gets as its headers are written. As Envoy's admin adds them to each of its answers: the
     * content type, if the endpoint set none, {@link #TEXT}; {@code cache-control: no-cache, max-age=0} if the
     * endpoint set none (a page to be asked again, yet one a browser can go back to); and always an
     * {@code x-content-type-options: nosniff} more (Envoy appends it even where the endpoint put one, as its config
     * dump's errors do). On Istio's agent port, a Go server's: a text answer's content type, Go's
     * {@code text/plain; charset=utf-8}, and nothing else.
     */
    private static void defaultHeaders(io.vertx.core.http.HttpServerResponse response, boolean agentPort) {
        io.vertx.core.MultiMap headers = response.headers();
        if (agentPort) {
            if (!headers.contains("content-type")) {
                headers.set("content-type", "text/plain; charset=utf-8");
            }
            return;
        }
        if (!headers.contains("content-type")) {
            headers.set("content-type", TEXT);
        }
        if (!headers.contains("cache-control")) {
            headers.set("cache-control", "no-cache, max-age=0");
        }
        headers.add("x-content-type-options", "nosniff");
    }

    /** Builds an {@link AdminServer}; {@link #snapshots} and at least one {@link #mount} are required. */
    public static final class Builder {
        private final Vertx vertx;
        private SnapshotHolder snapshots;
        private PrometheusMeterRegistry registry;
        private StatsTags statsTags = StatsTags.ISTIO;
        private ClusterStatusSource clusterStatus = ClusterStatusSource.NONE;
        private String nodeId = "";
        private java.util.function.Supplier<io.envoyproxy.envoy.config.core.v3.Node> node = () -> null;
        private String configPath;
        private java.util.function.Supplier<String> xdsStatus = () -> null;
        private java.util.function.Supplier<DynamicState> dynamicState = () -> DynamicState.NONE;
        private WorkloadIdentity identity;
        private dev.inmesh.runtime.xds.sds.SdsSecretManager sds;
        private Runnable quit;
        private DrainListeners drainListeners;
        private IstioAgent agent;
        private final List<Mount> mounts = new ArrayList<>();

        private Builder(Vertx vertx) {
            if (vertx == null) {
                throw new IllegalArgumentException("vertx: null (expected: a Vertx instance)");
            }
            this.vertx = vertx;
        }

        /** Where the current snapshot (for {@code /config_dump}) and readiness come from. */
        public Builder snapshots(SnapshotHolder holder) {
            this.snapshots = holder;
            return this;
        }

        /** The registry {@code /stats/prometheus} scrapes; without one it answers an empty page. */
        public Builder registry(PrometheusMeterRegistry registry) {
            this.registry = registry;
            return this;
        }

        /**
         * The names {@code /stats/prometheus} gives the tags of Envoy's statistics: a bootstrap's
         * ({@link StatsTags#ofFile}); Istio's ({@link StatsTags#ISTIO}) by default.
         */
        public Builder statsTags(StatsTags tags) {
            this.statsTags = tags == null ? StatsTags.ISTIO : tags;
            return this;
        }

        /** The source of {@code /clusters}; none by default. */
        public Builder clusterStatus(ClusterStatusSource source) {
            this.clusterStatus = source == null ? ClusterStatusSource.NONE : source;
            return this;
        }

        /** The node id the config dump's bootstrap names. */
        public Builder nodeId(String nodeId) {
            this.nodeId = nodeId == null ? "" : nodeId;
            return this;
        }

        /**
         * The node the proxy presents to its xDS server, asked at each {@code /config_dump} and {@code /server_info},
         * which show it (its metadata's {@code ISTIO_VERSION}, its user agent), as Envoy's do; when it answers null
         * (no xDS server), their node has the {@link #nodeId} and the proxy's user agent and version.
         */
        public Builder node(java.util.function.Supplier<io.envoyproxy.envoy.config.core.v3.Node> node) {
            this.node = node == null ? () -> null : node;
            return this;
        }

        /** The configuration file, which {@code /server_info} reports as the {@code config_path} option; none. */
        public Builder configPath(String path) {
            this.configPath = path;
            return this;
        }

        /** The JSON {@code /debug/xds_status} answers (null: no xDS client); none by default. */
        public Builder xdsStatus(java.util.function.Supplier<String> json) {
            this.xdsStatus = json == null ? () -> null : json;
            return this;
        }

        /**
         * What the xDS client holds beside the snapshot, which {@code /config_dump} shows as Envoy does: warming
         * listeners and clusters, and listeners' {@code error_state}; none by default (null: none).
         */
        public Builder dynamicState(java.util.function.Supplier<DynamicState> state) {
            this.dynamicState = state == null ? () -> DynamicState.NONE : state;
            return this;
        }

        /**
         * The workload identity directory the configuration's Istio SDS secrets {@code default} and {@code ROOTCA}
         * are read from, which {@code /config_dump} shows with the other secrets; none by default (null: none).
         */
        public Builder identity(WorkloadIdentity identity) {
            this.identity = identity;
            return this;
        }

        /**
         * The SDS client whose secrets {@code /config_dump} lists as Envoy's: taken ones among
         * {@code dynamic_active_secrets}, those not arrived among {@code dynamic_warming_secrets}.
         */
        public Builder sds(dev.inmesh.runtime.xds.sds.SdsSecretManager sds) {
            this.sds = sds;
            return this;
        }

        /**
         * What {@code POST /quitquitquit} runs once its {@code OK} is written, on an event loop (it must not
         * block), such as telling the process to stop; without one (the default) {@code /quitquitquit} is not
         * served.
         */
        public Builder quit(Runnable action) {
            this.quit = action;
            return this;
        }

        /**
         * What {@code POST /drain_listeners} runs (on an event loop, it must not block); without one (the default)
         * {@code /drain_listeners} is not served.
         */
        public Builder drainListeners(DrainListeners action) {
            this.drainListeners = action;
            return this;
        }

        /**
         * What Istio's agent port does for the application (metrics merging, probes) on the mounts that serve
         * {@link Endpoint#APP_METRICS} and {@link Endpoint#APP_PROBES}; the server closes it. By default nothing:
         * those mounts answer the registry's metrics alone, and 400 to every probe.
         */
        public Builder agent(IstioAgent agent) {
            this.agent = agent;
            return this;
        }

        /** Adds a listening address with its endpoints (null: nothing); mounts are numbered in the order added. */
        public Builder mount(Mount mount) {
            if (mount != null) {
                mounts.add(mount);
            }
            return this;
        }

        public AdminServer build() {
            if (snapshots == null) {
                throw new IllegalStateException("snapshots: not set (expected: the SnapshotHolder to serve)");
            }
            if (mounts.isEmpty()) {
                throw new IllegalStateException("mounts: none (expected: at least one, such as Mount.admin())");
            }
            return new AdminServer(this);
        }
    }
}
