package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Int32Value;
import com.google.protobuf.StringValue;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.grpc.MethodDescriptor;
import io.grpc.Server;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.protobuf.ProtoUtils;
import io.grpc.stub.ServerCalls;
import io.micrometer.core.instrument.Counter;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Istio's agent port for the application beside a standalone proxy: metrics merging and rewritten probes, through an
 * {@link AdminServer} mounted as the agent (15020) and as the proxy's own Prometheus port (15090), on loopback.
 */
class IstioAgentTest {
    private static final String OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8";

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    /** The agent's own metrics, apart from the proxy's. */
    private final PrometheusMeterRegistry agentRegistry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final List<HttpServerRequest> appRequests = new CopyOnWriteArrayList<>();
    private Vertx vertx;
    private HttpServer app;
    private AdminServer admin;

    @BeforeEach
    void start() {
        vertx = Vertx.vertx();
        Counter.builder("envoy_cluster_upstream_rq").register(registry).increment(3);
    }

    @AfterEach
    void stop() throws Exception {
        if (admin != null) {
            admin.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** The application: answers every request with {@code handler}, noting each request. */
    private int app(String host, Consumer<HttpServerRequest> handler) throws Exception {
        app = vertx.createHttpServer().requestHandler(req -> {
            appRequests.add(req);
            handler.accept(req);
        }).listen(0, host).await(10, TimeUnit.SECONDS);
        return app.actualPort();
    }

    /** Mount 0: the agent port's endpoints; mount 1: the proxy's own Prometheus port. */
    private void admin(IstioAgent.Settings settings) throws Exception {
        admin = AdminServer.builder(vertx).snapshots(new SnapshotHolder()).registry(registry)
                .agent(new IstioAgent(vertx, settings, agentRegistry))
                .mount(new AdminServer.Mount("127.0.0.1", 0, AdminServer.Mount.agent().endpoints()))
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.STATS_PROMETHEUS))
                .build();
        admin.start().await(10, TimeUnit.SECONDS);
    }

    private HttpResponse<String> get(int mount, String path, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + admin.port(mount) + path))
                .timeout(Duration.ofSeconds(10));
        if (headers.length > 0) {
            b.headers(headers);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    private static IstioAgent.Settings scrape(int port) {
        return new IstioAgent.Settings(new IstioAgent.MetricsScrape(port, "/app/metrics"), Map.of(), null);
    }

    @Test
    void agentPortAppendsTheApplicationsMetricsInItsFormatAndPassesPrometheusHeaders() throws Exception {
        int port = app("localhost", req -> req.response().putHeader("content-type", OPENMETRICS)
                .end("# TYPE app_orders counter\napp_orders_total 7.0\n# TYPE app_sizes histogram\n"
                        + "app_sizes_bucket{le=\"25.0\"} 1.0\n# EOF\n"));
        admin(scrape(port));

        for (String path : new String[] {"/stats/prometheus", "/metrics"}) {
            HttpResponse<String> r = get(0, path, "Accept", "application/openmetrics-text; version=1.0.0",
                    "User-Agent", "Prometheus/2.53.0", "X-Prometheus-Scrape-Timeout-Seconds", "4.5");

            assertEquals(200, r.statusCode());
            assertEquals(OPENMETRICS, r.headers().firstValue("content-type").orElseThrow());
            String body = r.body();
            assertTrue(body.contains("envoy_cluster_upstream_rq_total 3\n"), body);
            // the application's last, as it answered (Istio's agent does not rewrite it): its # EOF ends it
            assertTrue(body.endsWith("app_orders_total 7.0\n# TYPE app_sizes histogram\n"
                    + "app_sizes_bucket{le=\"25.0\"} 1.0\n# EOF\n"), body);
        }
        HttpServerRequest seen = appRequests.get(0);
        assertEquals("/app/metrics", seen.path());
        assertEquals("application/openmetrics-text; version=1.0.0", seen.getHeader("accept"));
        assertEquals("Prometheus/2.53.0", seen.getHeader("user-agent"));
        assertEquals("4.5", seen.getHeader("x-prometheus-scrape-timeout-seconds"));
        assertTrue(get(0, "/metrics").body().contains("istio_agent_scrapes_total 3\n"));

        // the proxy's own port (15090) keeps Envoy's metrics alone
        HttpResponse<String> own = get(1, "/stats/prometheus");
        assertTrue(own.body().contains("envoy_cluster_upstream_rq_total 3\n"));
        assertTrue(!own.body().contains("app_orders_total"), own.body());
        assertTrue(!own.body().contains("istio_agent"), "the agent's own metrics are its port's: " + own.body());
        assertEquals(3, appRequests.size());
    }

    @Test
    void theAgentPortAnswersWhatItDoesNotServeAsIstiosAgentAGoServer() throws Exception {
        admin = AdminServer.builder(vertx).snapshots(new SnapshotHolder()).registry(registry)
                .agent(new IstioAgent(vertx, IstioAgent.Settings.NONE, agentRegistry)).quit(() -> { })
                .mount(new AdminServer.Mount("127.0.0.1", 0, AdminServer.Mount.agent().endpoints()))
                .build();
        admin.start().await(10, TimeUnit.SECONDS);
        HttpResponse<String> unknown = get(0, "/config_dump");
        assertEquals(404, unknown.statusCode());
        assertEquals("404 page not found\n", unknown.body());
        HttpResponse<String> quit = get(0, "/quitquitquit");
        assertEquals(405, quit.statusCode());
        assertEquals("Method Not Allowed\n", quit.body());
    }

    @Test
    void anApplicationThatFailsLeavesItsPartOutAndIsCounted() throws Exception {
        int port = app("localhost", req -> req.response().setStatusCode(500).end("boom"));
        admin(scrape(port));

        HttpResponse<String> r = get(0, "/stats/prometheus");

        assertEquals(200, r.statusCode());
        assertEquals("text/plain; version=0.0.4; charset=utf-8", r.headers().firstValue("content-type").orElseThrow());
        assertTrue(r.body().contains("envoy_cluster_upstream_rq_total 3\n"), r.body());
        assertTrue(!r.body().contains("boom"), r.body());
        assertEquals(1.0, agentRegistry.get("istio_agent_scrape_failures").tag("type", "application").counter().count());
        // in the next scrape's exposition (1 or 2: its own failure may be counted before the registry is read)
        assertTrue(get(0, "/stats/prometheus").body().matches(
                "(?s).*istio_agent_scrape_failures_total\\{type=\"application\"} [12]\n.*"));
    }

    @Test
    void theScrapesQueryGoesOnToTheProxysMetricsAsIstiosAgentPassesItToEnvoy() throws Exception {
        Counter.builder("envoy_http_ingress_downstream_rq").register(registry).increment();
        Counter.builder("envoy_cluster_upstream_cx").register(registry); // never counted
        int port = app("localhost", req -> req.response().end("# TYPE app_orders counter\napp_orders_total 7.0\n"));
        admin(scrape(port));

        String body = get(0, "/stats/prometheus?filter=upstream_").body();
        assertTrue(body.contains("envoy_cluster_upstream_rq_total 3\n"), body);
        assertTrue(!body.contains("envoy_http_ingress"), "filtered out as by Envoy's /stats/prometheus: " + body);
        assertTrue(body.contains("app_orders_total 7.0\n"), "the application's unfiltered: " + body);
        assertTrue(body.contains("istio_agent_scrapes_total"), "the agent's own unfiltered: " + body);
        String used = get(0, "/metrics?usedonly").body();
        assertTrue(!used.contains("envoy_cluster_upstream_cx"), used);
        assertTrue(used.contains("envoy_http_ingress_downstream_rq_total 1\n"), used);

        // a query Envoy answers 400: the proxy's part is a failed scrape, the rest is served
        HttpResponse<String> bad = get(0, "/stats/prometheus?filter=(?%3D");
        assertEquals(200, bad.statusCode());
        assertTrue(!bad.body().contains("envoy_cluster_upstream_rq_total"), bad.body());
        assertTrue(bad.body().contains("app_orders_total 7.0\n"), bad.body());
        assertEquals(1.0, agentRegistry.get("istio_agent_scrape_failures").tag("type", "envoy").counter().count());
    }

    @Test
    void withoutAnApplicationScrapeTheAgentPortAnswersTheProxysMetrics() throws Exception {
        admin(IstioAgent.Settings.NONE);

        HttpResponse<String> r = get(0, "/metrics");

        assertEquals(200, r.statusCode());
        assertTrue(r.body().contains("envoy_cluster_upstream_rq_total 3\n"), r.body());
        assertEquals(400, get(0, "/app-health/app/livez").statusCode());
    }

    @Test
    void httpProbeAnswersTheApplicationsStatusFromSource127006WithTheKubeletsHeaders() throws Exception {
        int[] status = {503};
        int port = app("127.0.0.1", req -> {
            if (status[0] == 302) {
                req.response().setStatusCode(302).putHeader("location", "http://login.example/elsewhere").end();
            } else {
                req.response().setStatusCode(status[0]).end("not yet: " + "x".repeat(20_000));
            }
        });
        admin(new IstioAgent.Settings(null, Map.of(
                "/app-health/web/readyz", new IstioAgent.HttpGet("/ready", port, false, 2),
                "/app-health/web/livez", new IstioAgent.HttpGet("/live", port, false, 0)), "127.0.0.1"));

        HttpResponse<String> notReady = get(0, "/app-health/web/readyz", "X-Probe", "kubelet");

        assertEquals(503, notReady.statusCode());
        assertTrue(notReady.body().startsWith("not yet: xxx"), notReady.body());
        assertEquals(10 * 1024, notReady.body().length()); // at most 10 KiB of the body
        HttpServerRequest seen = appRequests.get(0);
        assertEquals("/ready", seen.path());
        assertEquals("127.0.0.6", seen.remoteAddress().hostAddress());
        assertEquals("kubelet", seen.getHeader("x-probe"));
        // the kubelet named the agent's port: the application sees its own
        assertEquals("127.0.0.1:" + port, seen.getHeader("host"));

        status[0] = 200;
        assertEquals(200, get(0, "/app-health/web/livez").statusCode());
        assertEquals("/live", appRequests.get(1).path());
        status[0] = 302;
        // a redirect to another host is not followed: it counts as success
        assertEquals(200, get(0, "/app-health/web/readyz").statusCode());
        assertEquals(3, appRequests.size());

        HttpResponse<String> unknown = get(0, "/app-health/other/readyz");
        assertEquals(400, unknown.statusCode());
        assertEquals("app prober config does not exists for /app-health/other/readyz", unknown.body());
    }

    @Test
    void httpProbeFollowsRedirectsOnThePodsHostAsTheKubeletDoes() throws Exception {
        int port = app("127.0.0.1", req -> {
            switch (req.path()) {
                case "/healthz" -> req.response().setStatusCode(301).putHeader("location", "/healthz/").end();
                case "/healthz/" -> req.response().setStatusCode(307)
                        .putHeader("location", "http://127.0.0.1:" + req.localAddress().port() + "/status?deep=1")
                        .end();
                case "/status" -> req.response().setStatusCode(503).end("db down");
                default -> req.response().setStatusCode(302).putHeader("location", "/loop").end();
            }
        });
        admin(new IstioAgent.Settings(null, Map.of(
                "/app-health/web/readyz", new IstioAgent.HttpGet("/healthz", port, false, 2),
                "/app-health/web/livez", new IstioAgent.HttpGet("/loop", port, false, 2)), "127.0.0.1"));

        HttpResponse<String> ready = get(0, "/app-health/web/readyz", "X-Probe", "kubelet");

        // the answer at the end of the redirects, not the first redirect's 200
        assertEquals(503, ready.statusCode());
        assertEquals("db down", ready.body());
        assertEquals(List.of("/healthz", "/healthz/", "/status"), appRequests.stream().map(r -> r.path()).toList());
        HttpServerRequest last = appRequests.get(2);
        assertEquals("deep=1", last.query());
        assertEquals("kubelet", last.getHeader("x-probe"));
        assertEquals("127.0.0.6", last.remoteAddress().hostAddress());
        // a relative Location keeps the kubelet's Host, an absolute one names its own
        assertEquals("127.0.0.1:" + port, appRequests.get(1).getHeader("host"));
        assertEquals("127.0.0.1:" + port, last.getHeader("host"));

        appRequests.clear();
        // ten requests at most, as the kubelet's client: a redirect loop fails the probe
        assertEquals(500, get(0, "/app-health/web/livez").statusCode());
        assertEquals(10, appRequests.size());
    }

    @Test
    void httpProbeAnswersOnceItHasTheFirst10KibOfAnEndlessBody() throws Exception {
        int port = app("127.0.0.1", req -> {
            req.response().setChunked(true).setStatusCode(200);
            long[] timer = new long[1];
            timer[0] = vertx.setPeriodic(20, id -> {
                if (req.response().closed()) {
                    vertx.cancelTimer(timer[0]);
                } else {
                    req.response().write("y".repeat(1024));
                }
            });
        });
        // (a 5 s probe timeout: 10 writes 20 ms apart come well within it on a loaded machine; the body never ends)
        admin(new IstioAgent.Settings(null, Map.of(
                "/app-health/web/livez", new IstioAgent.HttpGet("/live", port, false, 5)), "127.0.0.1"));

        HttpResponse<String> r = get(0, "/app-health/web/livez");

        assertEquals(200, r.statusCode());
        assertEquals("y".repeat(10 * 1024), r.body());
    }

    @Test
    void httpProbeOfAnApplicationThatIsDownAnswers500() throws Exception {
        int closed = closedPort();
        admin(new IstioAgent.Settings(null, Map.of("/app-health/web/livez",
                new IstioAgent.HttpGet("/live", closed, false, 1)), "127.0.0.1"));

        assertEquals(500, get(0, "/app-health/web/livez").statusCode());
    }

    @Test
    void tcpProbeAnswers200WhenTheApplicationAcceptsElse500() throws Exception {
        int open = app("127.0.0.1", req -> req.response().end());
        int closed = closedPort();
        admin(new IstioAgent.Settings(null, Map.of(
                "/app-health/db/livez", new IstioAgent.TcpSocket(open, 1),
                "/app-health/db/readyz", new IstioAgent.TcpSocket(closed, 1)), "127.0.0.1"));

        assertEquals(200, get(0, "/app-health/db/livez").statusCode());
        assertEquals(500, get(0, "/app-health/db/readyz").statusCode());
    }

    @Test
    void grpcProbeOfAServerThatNeverAnswersFailsWithinItsTimeout() throws Exception {
        // a socket that accepts connections (the kernel's backlog) and never speaks: no HTTP/2 settings, no answer
        try (ServerSocket silent = new ServerSocket(0, 5, java.net.InetAddress.getByName("127.0.0.1"))) {
            admin(new IstioAgent.Settings(null, Map.of("/app-health/api/livez",
                    new IstioAgent.Grpc(silent.getLocalPort(), "", 1)), "127.0.0.1"));

            long start = System.nanoTime();
            assertEquals(500, get(0, "/app-health/api/livez").statusCode());
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
            assertTrue(millis < 5_000, "answered after " + millis + " ms, the probe's timeout is 1 s");
        }
    }

    @Test
    void grpcProbeOfAServerThatNeverAnswersLeavesNoConnectionOpen() throws Exception {
        // the kubelet dials each probe anew: the connection to a server that accepts and never speaks is closed once
        // it has heard nothing for the probe's timeout, not held (and waited on by every later probe)
        try (ServerSocket silent = new ServerSocket(0, 5, java.net.InetAddress.getByName("127.0.0.1"))) {
            admin(new IstioAgent.Settings(null, Map.of("/app-health/api/livez",
                    new IstioAgent.Grpc(silent.getLocalPort(), "", 1)), "127.0.0.1"));

            assertEquals(500, get(0, "/app-health/api/livez").statusCode());
            silent.setSoTimeout(5_000);
            try (java.net.Socket s = silent.accept()) {
                s.setSoTimeout(10_000);
                java.io.InputStream in = s.getInputStream();
                byte[] buf = new byte[4096];
                int n;
                do {
                    n = in.read(buf); // the client's preface and settings, then its close
                } while (n > 0);
                assertEquals(-1, n);
            }
        }
    }

    @Test
    void grpcProbeAnswers200ForServingElse500() throws Exception {
        List<String> services = new CopyOnWriteArrayList<>();
        Map<String, Integer> statuses = Map.of("", 1, "payments", 2); // SERVING, NOT_SERVING
        MethodDescriptor<StringValue, Int32Value> check = MethodDescriptor.<StringValue, Int32Value>newBuilder()
                .setType(MethodDescriptor.MethodType.UNARY)
                .setFullMethodName("grpc.health.v1.Health/Check")
                .setRequestMarshaller(ProtoUtils.marshaller(StringValue.getDefaultInstance()))
                .setResponseMarshaller(ProtoUtils.marshaller(Int32Value.getDefaultInstance()))
                .build();
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(ServerServiceDefinition.builder("grpc.health.v1.Health")
                        .addMethod(check, ServerCalls.asyncUnaryCall((request, response) -> {
                            services.add(request.getValue());
                            response.onNext(Int32Value.of(statuses.get(request.getValue())));
                            response.onCompleted();
                        })).build())
                .build().start();
        try {
            int port = server.getPort();
            // (5 s probe timeouts: a first gRPC connection and call come well within them on a loaded machine)
            admin(new IstioAgent.Settings(null, Map.of(
                    "/app-health/api/livez", new IstioAgent.Grpc(port, "", 5),
                    "/app-health/api/readyz", new IstioAgent.Grpc(port, "payments", 5),
                    "/app-health/api/startupz", new IstioAgent.Grpc(closedPort(), "", 1)), "127.0.0.1"));

            assertEquals(200, get(0, "/app-health/api/livez").statusCode());
            assertEquals(500, get(0, "/app-health/api/readyz").statusCode());
            assertEquals(500, get(0, "/app-health/api/startupz").statusCode());
            assertEquals(List.of("", "payments"), services);
        } finally {
            server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void settingsFromIstiosInjectorEnvironment() {
        IstioAgent.Settings s = IstioAgent.Settings.fromEnvironment(Map.of(
                "ISTIO_PROMETHEUS_ANNOTATIONS", "{\"scrape\":\"true\",\"path\":\"/stats\",\"port\":\"9100\"}",
                "ISTIO_KUBE_APP_PROBERS", "{\"/app-health/web/livez\":{\"httpGet\":{\"path\":\"/healthz\","
                        + "\"port\":8080,\"scheme\":\"HTTPS\"},\"timeoutSeconds\":3},"
                        + "\"/app-health/db/readyz\":{\"tcpSocket\":{\"port\":5432}},"
                        + "\"/app-health/api/startupz\":{\"grpc\":{\"port\":9090,\"service\":\"api\"},"
                        + "\"timeoutSeconds\":5}}",
                "INSTANCE_IP", "10.244.0.12"), 15020);

        assertEquals(new IstioAgent.MetricsScrape(9100, "/stats"), s.scrape());
        assertEquals(new IstioAgent.HttpGet("/healthz", 8080, true, 3), s.probers().get("/app-health/web/livez"));
        assertEquals(new IstioAgent.TcpSocket(5432, 0), s.probers().get("/app-health/db/readyz"));
        assertEquals(1000, s.probers().get("/app-health/db/readyz").timeoutMillis()); // Kubernetes' default
        assertEquals(new IstioAgent.Grpc(9090, "api", 5), s.probers().get("/app-health/api/startupz"));
        assertEquals("10.244.0.12", s.podIp());

        // Istio's defaults: port 80, path /metrics; scrape "false" turns merging off; nothing set, nothing served
        assertEquals(new IstioAgent.MetricsScrape(80, "/metrics"), IstioAgent.parseScrape("{}", 15020));
        assertNull(IstioAgent.parseScrape("{\"scrape\":\"false\",\"port\":\"9100\"}", 15020));
        assertTrue(IstioAgent.Settings.fromEnvironment(Map.of(), 15020).isEmpty());
        assertEquals("127.0.0.1", IstioAgent.Settings.fromEnvironment(Map.of(), 15020).podIp());
    }

    @Test
    void badSettingsAreRefusedNamingTheVariable() {
        assertMessage("ISTIO_PROMETHEUS_ANNOTATIONS: port 15020 is the agent's own port",
                () -> IstioAgent.parseScrape("{\"port\":\"15020\"}", 15020));
        assertMessage("ISTIO_PROMETHEUS_ANNOTATIONS: port \"http\" (expected: a port number)",
                () -> IstioAgent.parseScrape("{\"port\":\"http\"}", 15020));
        assertMessage("ISTIO_PROMETHEUS_ANNOTATIONS: not a JSON object",
                () -> IstioAgent.parseScrape("scrape=true", 15020));
        assertMessage("ISTIO_KUBE_APP_PROBERS \"/healthz\": not a probe path",
                () -> IstioAgent.parseProbers("{\"/healthz\":{\"tcpSocket\":{\"port\":80}}}"));
        assertMessage("ISTIO_KUBE_APP_PROBERS \"/app-health/web/livez\": port \"http\" (expected: a port number",
                () -> IstioAgent.parseProbers("{\"/app-health/web/livez\":{\"httpGet\":{\"port\":\"http\"}}}"));
        assertMessage("ISTIO_KUBE_APP_PROBERS \"/app-health/web/livez\": expected exactly one of httpGet, "
                + "tcpSocket or grpc", () -> IstioAgent.parseProbers("{\"/app-health/web/livez\":{\"httpGet\":"
                + "{\"port\":80},\"tcpSocket\":{\"port\":80}}}"));
    }

    @Test
    void mergedFormatFollowsTheApplicationsContentType() {
        assertEquals(OPENMETRICS, IstioAgent.format("application/openmetrics-text; version=1.0.0; charset=utf-8"));
        assertEquals("application/openmetrics-text; version=0.0.1; charset=utf-8",
                IstioAgent.format("application/openmetrics-text"));
        assertEquals("text/plain; version=0.0.4; charset=utf-8", IstioAgent.format("text/plain; version=0.0.4"));
        assertEquals("text/plain; version=0.0.4; charset=utf-8", IstioAgent.format(null));
        assertEquals(4500, IstioAgent.scrapeTimeoutMillis("4.5"));
        assertEquals(30_000, IstioAgent.scrapeTimeoutMillis("soon"));
    }

    private static void assertMessage(String start, org.junit.jupiter.api.function.Executable e) {
        IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class, e);
        assertTrue(thrown.getMessage().startsWith(start), thrown.getMessage());
    }

    private static int closedPort() throws Exception {
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1"))) {
            return s.getLocalPort();
        }
    }
}
