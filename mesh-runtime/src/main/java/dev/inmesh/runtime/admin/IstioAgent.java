package dev.inmesh.runtime.admin;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import io.vertx.core.net.NetClient;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.common.GrpcMessageDecoder;
import io.vertx.grpc.common.GrpcMessageEncoder;
import io.vertx.grpc.common.ServiceMethod;
import io.vertx.grpc.common.ServiceName;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Pattern;

/**
 * What Istio's agent (pilot-agent) does on its port 15020 for the application beside the proxy, which a standalone
 * proxy in a pod must do in its place:
 * <ul>
 *   <li><b>metrics merging</b>: Istio's injector moves a pod's {@code prometheus.io/port} and {@code /path}
 *       annotations into {@code ISTIO_PROMETHEUS_ANNOTATIONS} ({@code {"scrape":"true","port":"8080",
 *       "path":"/metrics"}}) and points Prometheus at 15020, so the agent's {@code /stats/prometheus} (and
 *       {@code /metrics}) answer the proxy's metrics (as its {@code /stats/prometheus} answers the scrape's query,
 *       which the agent passes on to Envoy's) followed by the application's, fetched from
 *       {@code http://localhost:PORT/PATH} (path {@code /metrics} and port 80 by default) with the scrape's
 *       {@code Accept}, {@code User-Agent} and {@code X-Prometheus-Scrape-Timeout-Seconds}, in the format the
 *       application answered (OpenMetrics or Prometheus text). An application that fails to answer (or answers other
 *       than 200) leaves its part out, and {@code istio_agent_scrape_failures_total{type="application"}} counts it;
 *       {@code istio_agent_scrapes_total} counts the scrapes;</li>
 *   <li><b>application probes</b>: the injector rewrites the containers' HTTP, TCP and gRPC probes to
 *       {@code /app-health/CONTAINER/livez|readyz|startupz} on 15020 and passes the originals in
 *       {@code ISTIO_KUBE_APP_PROBERS}; the agent probes the application at the pod's IP ({@code INSTANCE_IP}) from
 *       source address 127.0.0.6 (which the capture rules let through) and answers the probe's outcome: an HTTP
 *       probe's status (its redirects on the pod's own host followed as the kubelet follows them, ten requests at
 *       most; a redirect elsewhere as 200) and at most 10 KiB of its body, 200 or 500 for a TCP connect or a gRPC
 *       health check ({@code SERVING} is 200); 400 for a path no prober is configured for.</li>
 * </ul>
 * Probes use the prober's {@code timeoutSeconds} (Kubernetes' default of 1 s when absent); a scrape of the application
 * without Prometheus' timeout header is bounded at {@value #DEFAULT_SCRAPE_TIMEOUT_SECONDS} s.
 */
public final class IstioAgent {
    private static final Logger LOG = Logger.getLogger(IstioAgent.class.getName());

    /** The environment variable with the application's Prometheus annotations, as Istio's injector sets it. */
    public static final String PROMETHEUS_ANNOTATIONS_ENV = "ISTIO_PROMETHEUS_ANNOTATIONS";
    /** The environment variable with the application's rewritten probes, as Istio's injector sets it. */
    public static final String APP_PROBERS_ENV = "ISTIO_KUBE_APP_PROBERS";
    /** The pod's IP, which application probes go to. */
    public static final String INSTANCE_IP_ENV = "INSTANCE_IP";

    static final int DEFAULT_SCRAPE_TIMEOUT_SECONDS = 30;
    private static final int MAX_PROBE_BODY = 10 * 1024;
    /** The most requests an HTTP probe sends when it follows redirects, as the kubelet's (Go's client's) ten. */
    private static final int MAX_PROBE_REQUESTS = 10;
    private static final Pattern PROBE_PATH =
            Pattern.compile("/(app-health|app-lifecycle)/[^/]+/(livez|readyz|startupz|prestopz|poststartz)");
    private static final String TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8";
    /**
     * {@code grpc.health.v1.Health/Check}. Its request has one string field numbered 1 ({@code service}) and its
     * response one enum field numbered 1 ({@code status}), the wire forms of protobuf's {@code StringValue} and
     * {@code Int32Value}, which therefore carry them.
     */
    private static final ServiceMethod<com.google.protobuf.Int32Value, com.google.protobuf.StringValue> HEALTH_CHECK =
            ServiceMethod.client(ServiceName.create("grpc.health.v1", "Health"), "Check",
                    GrpcMessageEncoder.encoder(),
                    GrpcMessageDecoder.decoder(com.google.protobuf.Int32Value.newBuilder()));
    private static final int SERVING = 1;

    /** Where the application's metrics are scraped. */
    public record MetricsScrape(int port, String path) {}

    /** An application probe, as Kubernetes describes it; {@code timeoutSeconds} 0 means Kubernetes' default, 1. */
    public sealed interface Prober {
        int timeoutSeconds();

        default long timeoutMillis() {
            return TimeUnit.SECONDS.toMillis(timeoutSeconds() > 0 ? timeoutSeconds() : 1);
        }
    }

    /** An {@code httpGet} probe. */
    public record HttpGet(String path, int port, boolean https, int timeoutSeconds) implements Prober {}

    /** A {@code tcpSocket} probe. */
    public record TcpSocket(int port, int timeoutSeconds) implements Prober {}

    /** A {@code grpc} probe (the gRPC health protocol; {@code service} empty for the server as a whole). */
    public record Grpc(int port, String service, int timeoutSeconds) implements Prober {}

    /**
     * What the agent serves for the application.
     *
     * @param scrape where the application's metrics are, or null for none
     * @param probers the application probes by their path on the agent port
     * @param podIp the address probes go to
     */
    public record Settings(MetricsScrape scrape, Map<String, Prober> probers, String podIp) {
        public static final Settings NONE = new Settings(null, Map.of(), "127.0.0.1");

        public Settings {
            probers = Map.copyOf(probers);
            podIp = podIp == null || podIp.isEmpty() ? "127.0.0.1" : podIp;
        }

        /**
         * The settings Istio's injector passes in the environment ({@value #PROMETHEUS_ANNOTATIONS_ENV},
         * {@value #APP_PROBERS_ENV}, {@value #INSTANCE_IP_ENV}).
         *
         * @param agentPort the agent's port: the application's metrics cannot be scraped there (a loop)
         * @throws IllegalArgumentException naming the variable and what is wrong in it
         */
        public static Settings fromEnvironment(Map<String, String> env, int agentPort) {
            return new Settings(parseScrape(env.get(PROMETHEUS_ANNOTATIONS_ENV), agentPort),
                    parseProbers(env.get(APP_PROBERS_ENV)), env.get(INSTANCE_IP_ENV));
        }

        /** Whether there is anything to serve. */
        public boolean isEmpty() {
            return scrape == null && probers.isEmpty();
        }
    }

    /** Parses {@value #PROMETHEUS_ANNOTATIONS_ENV}: null when absent or {@code "scrape": "false"}. */
    static MetricsScrape parseScrape(String json, int agentPort) {
        if (json == null) {
            return null;
        }
        JsonObject o = parse(PROMETHEUS_ANNOTATIONS_ENV, json);
        if ("false".equals(string(o, "scrape"))) {
            return null;
        }
        String path = string(o, "path");
        String port = string(o, "port");
        int p;
        try {
            p = port == null || port.isEmpty() ? 80 : Integer.parseInt(port);
        } catch (NumberFormatException e) {
            p = -1;
        }
        if (p < 1 || p > 65535) {
            throw new IllegalArgumentException(PROMETHEUS_ANNOTATIONS_ENV + ": port \"" + port
                    + "\" (expected: a port number)");
        }
        if (p == agentPort) {
            throw new IllegalArgumentException(PROMETHEUS_ANNOTATIONS_ENV + ": port " + p + " is the agent's own "
                    + "port, which would scrape itself (check the pod's prometheus.io/port annotation)");
        }
        path = path == null || path.isEmpty() ? "/metrics" : path.startsWith("/") ? path : "/" + path;
        return new MetricsScrape(p, path);
    }

    /** Parses {@value #APP_PROBERS_ENV}: the probes by their path on the agent port. */
    static Map<String, Prober> parseProbers(String json) {
        if (json == null || json.isBlank()) {
            return Map.of();
        }
        JsonObject o = parse(APP_PROBERS_ENV, json);
        Map<String, Prober> probers = new LinkedHashMap<>();
        for (String path : o.fieldNames()) {
            String where = APP_PROBERS_ENV + " \"" + path + "\": ";
            if (!PROBE_PATH.matcher(path).matches()) {
                throw new IllegalArgumentException(where + "not a probe path (expected: /app-health/CONTAINER/"
                        + "livez|readyz|startupz or /app-lifecycle/CONTAINER/prestopz|poststartz)");
            }
            if (!(o.getValue(path) instanceof JsonObject p)) {
                throw new IllegalArgumentException(where + "expected an object");
            }
            int timeout = p.getValue("timeoutSeconds") instanceof Number n ? n.intValue() : 0;
            int kinds = (p.containsKey("httpGet") ? 1 : 0) + (p.containsKey("tcpSocket") ? 1 : 0)
                    + (p.containsKey("grpc") ? 1 : 0);
            if (kinds != 1) {
                throw new IllegalArgumentException(where + "expected exactly one of httpGet, tcpSocket or grpc");
            }
            Prober prober;
            if (p.getValue("httpGet") instanceof JsonObject h) {
                String probePath = h.getString("path", "/");
                prober = new HttpGet(probePath.startsWith("/") ? probePath : "/" + probePath, port(where, h),
                        "HTTPS".equalsIgnoreCase(h.getString("scheme", "HTTP")), timeout);
            } else if (p.getValue("tcpSocket") instanceof JsonObject t) {
                prober = new TcpSocket(port(where, t), timeout);
            } else if (p.getValue("grpc") instanceof JsonObject g) {
                prober = new Grpc(port(where, g), g.getString("service", ""), timeout);
            } else {
                throw new IllegalArgumentException(where + "the probe must be an object");
            }
            probers.put(path, prober);
        }
        return probers;
    }

    private static int port(String where, JsonObject probe) {
        Object port = probe.getValue("port");
        if (!(port instanceof Number n) || n.intValue() < 1 || n.intValue() > 65535) {
            throw new IllegalArgumentException(where + "port "
                    + (port instanceof String ? "\"" + port + "\"" : port)
                    + " (expected: a port number; a named port must be resolved to its number)");
        }
        return n.intValue();
    }

    private static JsonObject parse(String variable, String json) {
        try {
            return new JsonObject(json);
        } catch (RuntimeException e) {
            throw new IllegalArgumentException(variable + ": not a JSON object: " + e.getMessage(), e);
        }
    }

    private static String string(JsonObject o, String key) {
        Object v = o.getValue(key);
        return v == null ? null : v.toString();
    }

    /** What the application answered a scrape: its metrics and their content type, or nothing. */
    record AppMetrics(String body, String contentType) {
        static final AppMetrics NONE = new AppMetrics("", TEXT_FORMAT);
    }

    private final Vertx vertx;
    private final Settings settings;
    private final Counter scrapes;
    private final Counter appScrapeFailures;
    private final Counter proxyScrapeFailures;
    private HttpClient metricsClient;
    private HttpClient probeClient;
    private NetClient tcpClient;
    /** The gRPC clients of the probes under way: one per probe, closed when it ends or the agent closes. */
    private final java.util.Set<GrpcClient> grpcClients = new java.util.HashSet<>(); // guarded by this
    private boolean closed; // guarded by this

    /** The agent's own metrics, which only its port serves, before the proxy's; null for none. */
    private final io.micrometer.prometheusmetrics.PrometheusMeterRegistry own;

    /**
     * An agent that counts its scrapes ({@code istio_agent_scrapes_total}, {@code istio_agent_scrape_failures_total})
     * in metrics of its own, which its port serves and the proxy's own ports do not, as Istio's agent keeps them.
     */
    public IstioAgent(Vertx vertx, Settings settings) {
        this(vertx, settings, new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT));
    }

    /**
     * @param registry where the agent's scrape counters go, which its port serves before the proxy's metrics (it
     *                 must not be the proxy's own: those of 15090 are the proxy's alone), or null for none; the
     *                 agent's other metrics (its DNS proxy's {@code istio_agent_dns_*}) belong there too
     */
    public IstioAgent(Vertx vertx, Settings settings,
                      io.micrometer.prometheusmetrics.PrometheusMeterRegistry registry) {
        this.vertx = vertx;
        this.settings = settings == null ? Settings.NONE : settings;
        this.own = registry;
        if (registry != null) {
            scrapes = Counter.builder("istio_agent_scrapes").description("The total number of scrapes.")
                    .register(registry);
            appScrapeFailures = failures(registry, "application");
            proxyScrapeFailures = failures(registry, "envoy");
        } else {
            scrapes = null;
            appScrapeFailures = null;
            proxyScrapeFailures = null;
        }
    }

    private static Counter failures(MeterRegistry registry, String type) {
        return Counter.builder("istio_agent_scrape_failures").description("The total number of failed scrapes.")
                .tag("type", type).register(registry);
    }

    public Settings settings() {
        return settings;
    }

    /** Whether {@code path} is one the agent answers probes on (whether or not a prober is configured for it). */
    static boolean probePath(String path) {
        return path.startsWith("/app-health/") || path.startsWith("/app-lifecycle/");
    }

    /**
     * Answers a scrape of the agent port: {@code proxyMetrics} (the proxy's own, in Prometheus' text format)
     * followed by the application's, as Istio's agent concatenates them (the application's last: OpenMetrics ends
     * with {@code # EOF}).
     */
    void mergedStats(HttpServerRequest req, java.util.function.Supplier<Future<String>> proxyMetrics) {
        if (scrapes != null) {
            scrapes.increment();
        }
        // as Istio's agent: its own metrics first, then the proxy's, then the application's
        String agentMetrics = own == null ? "" : PrometheusText.envoy(own.scrape());
        Future<String> proxy = proxyMetrics.get().map(p -> agentMetrics + p).recover(e -> {
            LOG.log(Level.WARNING, "cannot scrape the proxy's metrics", e);
            increment(proxyScrapeFailures);
            return Future.succeededFuture(agentMetrics);
        });
        Future<AppMetrics> app = appMetrics(req.headers());
        Future.join(proxy, app).onComplete(ignored -> req.response().setStatusCode(200)
                .putHeader("content-type", app.result().contentType())
                .end(proxy.result() + app.result().body()));
    }

    /** The application's metrics, or {@link AppMetrics#NONE} when it has none or fails to answer (never fails). */
    Future<AppMetrics> appMetrics(MultiMap scrapeHeaders) {
        MetricsScrape s = settings.scrape();
        if (s == null) {
            return Future.succeededFuture(AppMetrics.NONE);
        }
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.GET).setHost("localhost").setPort(s.port())
                .setURI(s.path())
                .setTimeout(scrapeTimeoutMillis(scrapeHeaders.get("x-prometheus-scrape-timeout-seconds")));
        for (String h : new String[] {"accept", "user-agent", "x-prometheus-scrape-timeout-seconds"}) {
            String v = scrapeHeaders.get(h);
            if (v != null && !v.isEmpty()) {
                o.putHeader(h, v);
            }
        }
        return metricsClient().request(o)
                .compose(r -> r.send())
                .compose(resp -> resp.statusCode() != 200
                        ? resp.body().transform(ignored -> Future.failedFuture("status code " + resp.statusCode()))
                        : resp.body().map(b -> new AppMetrics(b.toString(), format(resp.getHeader("content-type")))))
                .recover(e -> {
                    LOG.warning(() -> "cannot scrape the application's metrics at http://localhost:" + s.port()
                            + s.path() + ": " + e.getMessage());
                    increment(appScrapeFailures);
                    return Future.succeededFuture(AppMetrics.NONE);
                });
    }

    /** Prometheus' timeout header (seconds, may have a fraction) in milliseconds, else the default bound. */
    static long scrapeTimeoutMillis(String header) {
        if (header != null) {
            try {
                double seconds = Double.parseDouble(header.trim());
                if (seconds > 0 && seconds < 3600) {
                    return Math.max(1, (long) (seconds * 1000));
                }
            } catch (NumberFormatException e) {
                // the default below, as Istio's agent ignores a timeout it cannot read
            }
        }
        return TimeUnit.SECONDS.toMillis(DEFAULT_SCRAPE_TIMEOUT_SECONDS);
    }

    /**
     * The exposition format of the merged answer, from the application's content type: OpenMetrics 1.0.0 or 0.0.1
     * when the application used it, else Prometheus' text format.
     */
    static String format(String contentType) {
        if (contentType != null) {
            String[] parts = contentType.split(";");
            if (parts[0].trim().equalsIgnoreCase("application/openmetrics-text")) {
                String version = "";
                for (int i = 1; i < parts.length; i++) {
                    String[] kv = parts[i].trim().split("=", 2);
                    if (kv.length == 2 && kv[0].trim().equalsIgnoreCase("version")) {
                        version = kv[1].trim().replace("\"", "");
                    }
                }
                if (version.equals("1.0.0")) {
                    return "application/openmetrics-text; version=1.0.0; charset=utf-8";
                }
                if (version.equals("0.0.1") || version.isEmpty()) {
                    return "application/openmetrics-text; version=0.0.1; charset=utf-8";
                }
            }
        }
        return TEXT_FORMAT;
    }

    /** Answers a request for {@code /app-health/...} or {@code /app-lifecycle/...}. */
    void probe(HttpServerRequest req) {
        String path = req.path();
        Prober prober = settings.probers().get(path);
        if (prober == null) {
            req.response().setStatusCode(400).putHeader("content-type", "text/plain; charset=utf-8")
                    .end("app prober config does not exists for " + path);
            return;
        }
        Future<Void> done;
        if (prober instanceof HttpGet h) {
            done = httpProbe(req, h);
        } else if (prober instanceof TcpSocket t) {
            done = tcpClient().connect(new io.vertx.core.net.ConnectOptions().setHost(settings.podIp())
                            .setPort(t.port()).setTimeout((int) t.timeoutMillis()))
                    .compose(socket -> socket.close())
                    .transform(ar -> status(req, ar.succeeded() ? 200 : 500, ar.cause(), path));
        } else {
            done = grpcProbe((Grpc) prober).transform(ar -> {
                boolean serving = ar.succeeded() && ar.result() == SERVING;
                Throwable cause = ar.failed() ? ar.cause()
                        : serving ? null : new IllegalStateException("health status " + ar.result());
                return status(req, serving ? 200 : 500, cause, path);
            });
        }
        done.onFailure(e -> LOG.log(Level.FINE, "probe answer not written", e));
    }

    private Future<Void> httpProbe(HttpServerRequest req, HttpGet h) {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.GET).setHost(settings.podIp())
                .setPort(h.port()).setURI(h.path()).setSsl(h.https()).setTimeout(h.timeoutMillis());
        // the kubelet's headers go to the application, the Host too (its port the probe's when it named the agent's)
        MultiMap headers = MultiMap.caseInsensitiveMultiMap().addAll(req.headers());
        for (String hop : new String[] {"connection", "keep-alive", "transfer-encoding", "content-length", "te",
            "upgrade"}) {
            headers.remove(hop);
        }
        o.setHeaders(headers);
        String authority = req.authority() != null ? req.authority().toString() : null;
        if (authority != null) {
            o.putHeader("host", req.authority().port() == req.localAddress().port()
                    ? hostOnly(req.authority().host()) + ":" + h.port() : authority);
        }
        return probeRequest(o, 1)
                .transform(ar -> {
                    if (ar.failed()) {
                        return status(req, 500, ar.cause(), req.path());
                    }
                    HttpClientResponse resp = ar.result().response();
                    int code = resp.statusCode();
                    if (code >= 300 && code < 400) {
                        // a redirect without its Location would be no valid answer: 200, as Istio's agent answers
                        return req.response().setStatusCode(200).end();
                    }
                    return req.response().setStatusCode(code).end(ar.result().body());
                });
    }

    private record Answer(HttpClientResponse response, Buffer body) {}

    /**
     * Sends the {@code sent}th request of an HTTP probe and follows its redirects as the kubelet does, which Istio's
     * agent copies: a 301, 302, 303, 307 or 308 whose {@code Location} is on the probe's own host is followed (at most
     * {@value #MAX_PROBE_REQUESTS} requests in all, else the probe fails), one to another host is not (the redirect is
     * the answer).
     */
    private Future<Answer> probeRequest(RequestOptions o, int sent) {
        return probeClient().request(o)
                .compose(r -> r.send())
                .compose(resp -> {
                    RequestOptions next;
                    try {
                        next = redirect(o, resp);
                    } catch (IllegalArgumentException e) {
                        return readAtMost(resp).transform(ignored -> Future.failedFuture(e));
                    }
                    if (next == null) {
                        return readAtMost(resp).map(b -> new Answer(resp, b));
                    }
                    if (sent >= MAX_PROBE_REQUESTS) {
                        return readAtMost(resp).transform(ignored -> Future.failedFuture(
                                "stopped after " + MAX_PROBE_REQUESTS + " redirects"));
                    }
                    return readAtMost(resp).transform(ignored -> probeRequest(next, sent + 1));
                });
    }

    /**
     * The first {@value #MAX_PROBE_BODY} bytes of a probe's answer, as Istio's agent reads no more: once they came,
     * the rest is not waited for (the connection, never reused by probes, is closed), so that a large or endless body
     * is neither held in memory nor keeps the probe from answering.
     */
    private static Future<Buffer> readAtMost(HttpClientResponse resp) {
        io.vertx.core.Promise<Buffer> read = io.vertx.core.Promise.promise();
        Buffer kept = Buffer.buffer();
        resp.exceptionHandler(read::tryFail);
        resp.endHandler(ignored -> read.tryComplete(kept));
        resp.handler(chunk -> {
            if (kept.length() < MAX_PROBE_BODY) {
                kept.appendBuffer(chunk, 0, Math.min(chunk.length(), MAX_PROBE_BODY - kept.length()));
                if (kept.length() == MAX_PROBE_BODY && read.tryComplete(kept)) {
                    resp.request().reset();
                }
            }
        });
        return read.future();
    }

    /**
     * The request a probe's redirect leads to, or null when it is not followed: not a redirect the kubelet follows,
     * no {@code Location}, or one on another host than the pod's. The kubelet's {@code Host} is kept for a relative
     * {@code Location}, and an absolute one names its own.
     *
     * @throws IllegalArgumentException a {@code Location} that cannot be followed (unreadable, not http or https)
     */
    private RequestOptions redirect(RequestOptions o, HttpClientResponse resp) {
        int code = resp.statusCode();
        String location = resp.getHeader("location");
        if (code != 301 && code != 302 && code != 303 && code != 307 && code != 308
                || location == null || location.isEmpty()) {
            return null;
        }
        java.net.URI target;
        java.net.URI to;
        try {
            target = new java.net.URI(location);
            to = new java.net.URI(Boolean.TRUE.equals(o.isSsl()) ? "https" : "http", null, o.getHost(),
                    o.getPort(), "/", null, null).resolve(o.getURI()).resolve(target);
        } catch (java.net.URISyntaxException | IllegalArgumentException e) {
            throw new IllegalArgumentException("cannot follow the redirect to " + location + ": " + e.getMessage(),
                    e);
        }
        String scheme = to.getScheme() == null ? "" : to.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https") || to.getHost() == null) {
            throw new IllegalArgumentException("cannot follow the redirect to " + location);
        }
        java.net.URI pod;
        try {
            pod = new java.net.URI("http", null, settings.podIp(), 80, "/", null, null);
        } catch (java.net.URISyntaxException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
        if (!to.getHost().equalsIgnoreCase(pod.getHost())) {
            return null;
        }
        String host = to.getHost().startsWith("[") ? to.getHost().substring(1, to.getHost().length() - 1)
                : to.getHost();
        boolean https = scheme.equals("https");
        String path = to.getRawPath() == null || to.getRawPath().isEmpty() ? "/" : to.getRawPath();
        RequestOptions next = new RequestOptions(o).setHost(host).setSsl(https)
                .setPort(to.getPort() > 0 ? to.getPort() : https ? 443 : 80)
                .setURI(to.getRawQuery() == null ? path : path + "?" + to.getRawQuery());
        if (target.isAbsolute()) {
            next.removeHeader("host");
        }
        return next;
    }

    private static String hostOnly(String host) {
        return host.indexOf(':') >= 0 && !host.startsWith("[") ? "[" + host + "]" : host;
    }

    /**
     * A gRPC health check within the probe's timeout, connecting included (as the kubelet's deadline covers the
     * whole call): Vert.x's gRPC client only sends the deadline, so a server that ignores it, or a connection that
     * does not open, is cut here. Each probe dials anew, as the kubelet's: its client, and so its connection, is
     * closed when the probe ends, also one still waiting for a silent server's HTTP/2 settings.
     */
    private Future<Integer> grpcProbe(Grpc g) {
        GrpcClient client = grpcClient();
        if (client == null) {
            return Future.failedFuture("the agent is closed");
        }
        return grpcProbe(client, g).andThen(ar -> release(client));
    }

    private Future<Integer> grpcProbe(GrpcClient client, Grpc g) {
        java.util.concurrent.atomic.AtomicReference<io.vertx.grpc.client.GrpcClientRequest<?, ?>> call =
                new java.util.concurrent.atomic.AtomicReference<>();
        return client.request(SocketAddress.inetSocketAddress(g.port(), settings.podIp()), HEALTH_CHECK)
                .compose(r -> {
                    call.set(r);
                    r.timeout(g.timeoutMillis(), TimeUnit.MILLISECONDS);
                    r.end(com.google.protobuf.StringValue.of(g.service()));
                    return r.response().compose(resp -> resp.last());
                })
                .map(com.google.protobuf.Int32Value::getValue)
                .timeout(g.timeoutMillis(), TimeUnit.MILLISECONDS)
                .onFailure(e -> {
                    var r = call.get();
                    if (r != null) {
                        r.cancel();
                    }
                });
    }

    private static Future<Void> status(HttpServerRequest req, int code, Throwable cause, String path) {
        if (cause != null) {
            LOG.info(() -> "application probe " + path + " failed: " + cause.getMessage());
        }
        return req.response().setStatusCode(code).end();
    }

    private static void increment(Counter c) {
        if (c != null) {
            c.increment();
        }
    }

    /** The address probes leave from: 127.0.0.6, or ::6 for an IPv6 pod, which the capture rules let pass. */
    private String probeSource() {
        return settings.podIp().indexOf(':') >= 0 ? "::6" : "127.0.0.6";
    }

    private synchronized HttpClient metricsClient() {
        if (metricsClient == null) {
            metricsClient = vertx.createHttpClient(new HttpClientOptions());
        }
        return metricsClient;
    }

    private synchronized HttpClient probeClient() {
        if (probeClient == null) {
            // a connection per probe, as the kubelet probes; any certificate, as the kubelet accepts any
            probeClient = vertx.createHttpClient(new HttpClientOptions().setKeepAlive(false)
                    .setLocalAddress(probeSource()).setTrustAll(true).setVerifyHost(false));
        }
        return probeClient;
    }

    private synchronized NetClient tcpClient() {
        if (tcpClient == null) {
            tcpClient = vertx.createNetClient(new NetClientOptions().setLocalAddress(probeSource()));
        }
        return tcpClient;
    }

    /** A new client for one probe, or null once the agent is closed. */
    private synchronized GrpcClient grpcClient() {
        if (closed) {
            return null;
        }
        GrpcClient client = GrpcClient.client(vertx, new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setLocalAddress(probeSource()));
        grpcClients.add(client);
        return client;
    }

    private void release(GrpcClient client) {
        synchronized (this) {
            if (!grpcClients.remove(client)) {
                return; // the agent's close closes it
            }
        }
        client.close();
    }

    /** Closes the clients the agent opened. */
    public synchronized Future<Void> close() {
        java.util.List<Future<?>> closes = new java.util.ArrayList<>();
        if (metricsClient != null) {
            closes.add(metricsClient.close());
        }
        if (probeClient != null) {
            closes.add(probeClient.close());
        }
        if (tcpClient != null) {
            closes.add(tcpClient.close());
        }
        closed = true;
        for (GrpcClient c : grpcClients) {
            closes.add(c.close());
        }
        grpcClients.clear();
        return Future.join(closes).mapEmpty();
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "IstioAgent[scrape=%s, probers=%s]", settings.scrape(),
                settings.probers().keySet());
    }
}
