package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.StreamInfos;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AdminServerTest {
    /** HTTP/1.1, as Envoy's admin is asked (curl, Prometheus), without the JDK client's h2c upgrade. */
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    private final SnapshotHolder holder = new SnapshotHolder();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private Vertx vertx;
    private AdminServer admin;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        admin = AdminServer.builder(vertx)
                .snapshots(holder)
                .registry(registry)
                .clusterStatus(() -> List.of(
                        "outbound|9080||reviews.default.svc.cluster.local::added_via_api::true",
                        "outbound|9080||reviews.default.svc.cluster.local::10.244.0.192:9080::cx_active::2",
                        "outbound|9080||reviews.default.svc.cluster.local::10.244.0.192:9080::health_flags::healthy"))
                .nodeId("sidecar~10.244.0.194~productpage-v1.default~default.svc.cluster.local")
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CONFIG_DUMP,
                        AdminServer.Endpoint.STATS_PROMETHEUS, AdminServer.Endpoint.READY,
                        AdminServer.Endpoint.CLUSTERS))
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.HEALTHZ_READY))
                .build();
        admin.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        admin.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    /** A started server of the holder's snapshots serving these endpoints on a port of its own. */
    private AdminServer serving(AdminServer.Endpoint first, AdminServer.Endpoint... rest) throws Exception {
        AdminServer own = AdminServer.builder(vertx).snapshots(holder)
                .mount(AdminServer.Mount.of("127.0.0.1", 0, first, rest))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        return own;
    }

    private HttpResponse<String> get(int mount, String path) throws Exception {
        return at(admin.port(mount), path);
    }

    private HttpResponse<String> at(int port, String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void aPortInUseFailsTheStartNamingTheAddressAsEnvoyDoes() throws Exception {
        java.net.InetAddress loopback = java.net.InetAddress.getLoopbackAddress();
        try (java.net.ServerSocket taken = new java.net.ServerSocket(0, 1, loopback)) {
            int port = taken.getLocalPort();
            AdminServer busy = AdminServer.builder(vertx).snapshots(new SnapshotHolder())
                    .mount(AdminServer.Mount.of("127.0.0.1", port, AdminServer.Endpoint.READY)).build();
            Throwable e = busy.start().toCompletionStage().toCompletableFuture()
                    .handle((v, t) -> t).get(10, TimeUnit.SECONDS);
            assertTrue(e instanceof java.net.BindException, String.valueOf(e));
            assertEquals("admin server: cannot bind '127.0.0.1:" + port + "': Address already in use", e.getMessage());
        }
    }

    @Test
    void anH2cUpgradeIsAnsweredInHttp11AsEnvoysAdmin() throws Exception {
        try (java.net.Socket s = new java.net.Socket(java.net.InetAddress.getLoopbackAddress(), admin.port(0))) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(("GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    + "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                    + "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            String status = new java.io.BufferedReader(new java.io.InputStreamReader(s.getInputStream(),
                    java.nio.charset.StandardCharsets.US_ASCII)).readLine();
            assertEquals("HTTP/1.1 503 Service Unavailable", status);
        }
        HttpClient upgrading = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        HttpResponse<String> r = upgrading.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:"
                + admin.port(0) + "/ready")).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(HttpClient.Version.HTTP_1_1, r.version());
        assertEquals("PRE_INITIALIZING\n", r.body());
    }

    @Test
    void healthzReadyAnswers503UntilTheFirstSnapshotThen200() throws Exception {
        assertEquals(503, get(1, "/healthz/ready").statusCode());

        holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));

        assertEquals(200, get(1, "/healthz/ready").statusCode());
    }

    @Test
    void readyReportsEnvoysServerState() throws Exception {
        HttpResponse<String> before = get(0, "/ready");
        assertEquals(503, before.statusCode());
        assertEquals("PRE_INITIALIZING\n", before.body());

        holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));

        HttpResponse<String> after = get(0, "/ready");
        assertEquals(200, after.statusCode());
        assertEquals("LIVE\n", after.body());
    }

    /**
     * As Envoy's server, whose init manager initializes once its cluster manager has: {@code PRE_INITIALIZING} while a
     * cluster is held back, {@code INITIALIZING} while only listeners wait for their route configurations.
     */
    @Test
    void readyIsInitializingWhileOnlyListenersAreHeldBackAfterTheClusters() throws Exception {
        var bundle = EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES);
        holder.apply(bundle, true, true);
        assertEquals("PRE_INITIALIZING\n", get(0, "/ready").body(), "a cluster held back");
        holder.apply(bundle, true, false);
        HttpResponse<String> initializing = get(0, "/ready");
        assertEquals(503, initializing.statusCode());
        assertEquals("INITIALIZING\n", initializing.body());
        assertEquals(3.0, registry.get("envoy_server_state").gauge().value());
        holder.apply(bundle, true, true);
        assertEquals("INITIALIZING\n", get(0, "/ready").body(), "the init manager is not initialized again");
        holder.apply(bundle, false, false);
        assertEquals("LIVE\n", get(0, "/ready").body());
    }

    @Test
    void healthcheckFailDrainsTheServerStateUntilHealthcheckOkAsEnvoy() throws Exception {
        AdminServer own = serving(AdminServer.Endpoint.HEALTHCHECK_FAIL, AdminServer.Endpoint.HEALTHCHECK_OK,
                AdminServer.Endpoint.READY, AdminServer.Endpoint.SERVER_INFO, AdminServer.Endpoint.HEALTHZ_READY);
        try {
            holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));
            assertEquals("LIVE\n", get(own, "/ready").body());
            assertEquals(200, get(own, "/healthz/ready").statusCode());
            HttpResponse<String> wrong = send(own, "GET", "/healthcheck/fail");
            assertEquals(405, wrong.statusCode());
            assertEquals("Method GET not allowed, POST required.", wrong.body());
            assertEquals(200, get(own, "/ready").statusCode(), "a refused GET changes nothing");

            HttpResponse<String> fail = send(own, "POST", "/healthcheck/fail");

            assertEquals(200, fail.statusCode());
            assertEquals("OK\n", fail.body());
            HttpResponse<String> draining = get(own, "/ready");
            assertEquals(503, draining.statusCode());
            assertEquals("DRAINING\n", draining.body());
            assertEquals("DRAINING", dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/server_info").body())
                    .get("state").asText());
            // Istio's agent caches its readiness once Envoy was LIVE: it does not follow Envoy's DRAINING
            assertEquals(200, get(own, "/healthz/ready").statusCode(), "ready once, ready");

            HttpResponse<String> ok = send(own, "POST", "/healthcheck/ok");

            assertEquals(200, ok.statusCode());
            assertEquals("OK\n", ok.body());
            assertEquals("LIVE\n", get(own, "/ready").body());
            assertEquals(200, get(own, "/healthz/ready").statusCode());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void healthzReadyFailsWhileTheServerDrainsOnlyIfNoProbeHadFoundItLiveAsIstiosAgent() throws Exception {
        AdminServer own = serving(AdminServer.Endpoint.HEALTHCHECK_FAIL, AdminServer.Endpoint.HEALTHCHECK_OK,
                AdminServer.Endpoint.HEALTHZ_READY);
        try {
            holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));
            send(own, "POST", "/healthcheck/fail");
            assertEquals(503, get(own, "/healthz/ready").statusCode(), "not LIVE, and never found ready");
            send(own, "POST", "/healthcheck/ok");
            assertEquals(200, get(own, "/healthz/ready").statusCode());
            send(own, "POST", "/healthcheck/fail");
            assertEquals(200, get(own, "/healthz/ready").statusCode(), "found ready once");
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void healthcheckFailAndOkTellTheListenersAsEnvoysDrainDecision() throws Exception {
        List<Boolean> told = new java.util.concurrent.CopyOnWriteArrayList<>();
        AdminServer own = AdminServer.builder(vertx).snapshots(holder)
                .drainListeners(new AdminServer.DrainListeners() {
                    @Override
                    public void drain(boolean inboundOnly, boolean graceful, boolean skipExit) {
                    }

                    @Override
                    public void healthCheckFailed(boolean failed) {
                        told.add(failed);
                    }
                })
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.HEALTHCHECK_FAIL,
                        AdminServer.Endpoint.HEALTHCHECK_OK))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            send(own, "POST", "/healthcheck/fail");
            send(own, "POST", "/healthcheck/ok");
            assertEquals(List.of(true, false), told);
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void loggingListsAndChangesTheLevelsOfInmeshsLoggersOnAPostAsEnvoy() throws Exception {
        AdminServer own = serving(AdminServer.Endpoint.LOGGING);
        java.util.logging.Logger cluster = java.util.logging.Logger.getLogger(
                "dev.inmesh.runtime.upstream.UpstreamCluster");
        try {
            assertEquals(405, send(own, "GET", "/logging").statusCode());
            HttpResponse<String> list = send(own, "POST", "/logging");
            assertEquals(200, list.statusCode());
            assertTrue(list.body().startsWith("active loggers:\n"), list.body());
            assertTrue(list.body().contains("\n  upstream: info\n"), list.body());
            assertTrue(list.body().endsWith("\n\n"), list.body());
            assertTrue(!cluster.isLoggable(java.util.logging.Level.FINE));

            HttpResponse<String> one = send(own, "POST", "/logging?upstream=debug");

            assertEquals(200, one.statusCode());
            assertTrue(one.body().contains("\n  upstream: debug\n"), one.body());
            assertTrue(one.body().contains("\n  xds: info\n"), "only the logger named: " + one.body());
            assertTrue(cluster.isLoggable(java.util.logging.Level.FINE), "the package's classes log at debug");

            HttpResponse<String> paths = send(own, "POST", "/logging?paths=upstream:critical,xds:trace");
            assertTrue(paths.body().contains("\n  upstream: critical\n"), paths.body());
            assertTrue(paths.body().contains("\n  xds: trace\n"), paths.body());
            assertTrue(!cluster.isLoggable(java.util.logging.Level.WARNING));
            // Envoy's names, which istioctl proxy-config log --level takes, set the loggers doing that work
            HttpResponse<String> rbac = send(own, "POST", "/logging?paths=rbac:debug,pool:error");
            assertEquals(200, rbac.statusCode(), rbac.body());
            assertTrue(rbac.body().contains("\n  router: debug\n"), rbac.body());
            assertTrue(rbac.body().contains("\n  inbound: debug\n"), rbac.body());
            assertTrue(rbac.body().contains("\n  upstream: error\n"), rbac.body());
            assertTrue(rbac.body().contains("\n  rbac: debug\n"), "listed, for istioctl: " + rbac.body());
            // the Lua filters' and health checkers' loggers, as Envoy names them
            HttpResponse<String> lua = send(own, "POST", "/logging?paths=lua:trace,health_checker:debug,misc:error");
            assertEquals(200, lua.statusCode(), lua.body());
            assertTrue(lua.body().contains("\n  router: trace\n") && lua.body().contains("\n  upstream: debug\n")
                    && lua.body().contains("\n  mesh: error\n"), lua.body());
            HttpResponse<String> all = send(own, "POST", "/logging?level=warning");
            assertTrue(all.body().lines().skip(1).filter(l -> !l.isEmpty()).allMatch(l -> l.endsWith(": warning")),
                    all.body());

            for (String bad : List.of("/logging?nosuch=debug", "/logging?upstream=loud", "/logging?level=info&a=b",
                    "/logging?paths=upstream:debug,nosuch:debug", "/logging?paths=upstream:")) {
                HttpResponse<String> r = send(own, "POST", bad);
                assertEquals(400, r.statusCode(), bad);
                assertTrue(r.body().startsWith("error: "), r.body());
                assertTrue(r.body().contains("\nactive loggers:\n  "), "the list follows: " + r.body());
                assertTrue(r.body().contains("\n  upstream: warning\n"), "nothing changed: " + r.body());
            }
            // Envoy's admin page's form, unfilled: empty level and paths are no parameters
            HttpResponse<String> form = send(own, "POST", "/logging?level=&paths=");
            assertEquals(200, form.statusCode(), form.body());
            assertTrue(form.body().startsWith("active loggers:\n"), form.body());
            HttpResponse<String> onePath = send(own, "POST", "/logging?level=&paths=upstream:error");
            assertEquals(200, onePath.statusCode(), onePath.body());
            assertTrue(onePath.body().contains("\n  upstream: error\n"), onePath.body());
            assertTrue(send(own, "POST", "/logging?nosuch=debug").body().startsWith("error: unknown logger name\n"));
            assertTrue(send(own, "POST", "/logging?upstream=loud").body().startsWith("error: unknown logger level\n"));
            assertTrue(send(own, "POST", "/logging?a=debug&b=debug").body().startsWith(
                    "error: invalid number of parameters\n\n"
                    + "usage: /logging?<name>=<level> (change single level)\n"
                    + "usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n"
                    + "usage: /logging?level=<level> (change all levels)\n"
                    + "levels: trace debug info warning error critical off \n"
                    + "active loggers:\n"), "Envoy's usage");

            // each Envoy name keeps the level it was given, as Envoy's loggers; a logger several cover logs at the
            // most verbose of those given since its own name was
            java.util.logging.Logger router = java.util.logging.Logger.getLogger("dev.inmesh.runtime.router");
            send(own, "POST", "/logging?level=info");
            String http = send(own, "POST", "/logging?http=debug").body();
            assertTrue(http.contains("\n  http: debug\n") && http.contains("\n  rbac: info\n")
                    && http.contains("\n  router: debug\n"), http);
            String rbacWarning = send(own, "POST", "/logging?rbac=warning").body();
            assertTrue(rbacWarning.contains("\n  http: debug\n") && rbacWarning.contains("\n  rbac: warning\n")
                    && rbacWarning.contains("\n  router: debug\n"), rbacWarning);
            assertTrue(router.isLoggable(java.util.logging.Level.FINE));
            String httpInfo = send(own, "POST", "/logging?http=info").body();
            assertTrue(httpInfo.contains("\n  http: info\n") && httpInfo.contains("\n  rbac: warning\n")
                    && httpInfo.contains("\n  router: info\n"), httpInfo);
            assertFalse(router.isLoggable(java.util.logging.Level.FINE));
            // the package's own name, given last, decides; named with Envoy names, it counts as given after them
            String routerError = send(own, "POST", "/logging?router=error").body();
            assertTrue(routerError.contains("\n  router: error\n") && routerError.contains("\n  http: info\n"),
                    routerError);
            String both = send(own, "POST", "/logging?paths=rbac:trace,router:warning").body();
            assertTrue(both.contains("\n  router: warning\n") && both.contains("\n  rbac: trace\n"), both);
            String filter = send(own, "POST", "/logging?filter=debug").body();
            assertTrue(filter.contains("\n  router: debug\n") && filter.contains("\n  rbac: trace\n")
                    && filter.contains("\n  http: info\n"), filter);
        } finally {
            send(own, "POST", "/logging?level=info");
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void statsPrometheusServesTheRegistrysScrape() throws Exception {
        MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE).record(StreamInfos.outboundOk());

        HttpResponse<String> r = get(0, "/stats/prometheus");

        assertEquals(200, r.statusCode());
        // as Envoy's: the admin's default content type, and a family's # TYPE line without a # HELP one
        assertEquals(AdminServer.TEXT, r.headers().firstValue("content-type").orElse(""));
        assertTrue(r.body().lines().anyMatch(l -> l.startsWith("istio_requests_total{")
                && l.contains("reporter=\"source\"") && l.endsWith(" 1")), r.body());
        assertTrue(r.body().contains("# TYPE istio_requests_total counter\n"), r.body());
        assertTrue(r.body().lines().noneMatch(l -> l.startsWith("# HELP ")), r.body());
    }

    @Test
    void statsPrometheusPrintsInmeshsNumbersAsEnvoyAndTheApplicationsAsMicrometer() throws Exception {
        MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE).record(StreamInfos.outboundOk());
        registry.counter("app_orders").increment(7);
        AdminServer stats = everything();
        try {
            for (String path : List.of("/stats/prometheus", "/stats/prometheus?usedonly", "/stats?format=prometheus",
                    "/stats/prometheus?filter=duration%7Capp")) {
                List<String> lines = (path.startsWith("/stats?") ? get(stats, path) : get(0, path)).body().lines()
                        .toList();
                // Envoy's integers, le bounds and integral sums (a request of 12 ms)
                java.util.function.BiPredicate<String, String> has = (kind, tail) -> lines.stream().anyMatch(l ->
                        l.startsWith("istio_request_duration_milliseconds_" + kind + "{")
                        && l.contains("reporter=\"source\"") && l.endsWith(tail));
                assertTrue(has.test("bucket", ",le=\"0.5\"} 0") && has.test("bucket", ",le=\"10\"} 0")
                        && has.test("bucket", ",le=\"25\"} 1") && has.test("bucket", ",le=\"3600000\"} 1")
                        && has.test("bucket", ",le=\"+Inf\"} 1") && has.test("sum", "} 12")
                        && has.test("count", "} 1"), path + ": " + lines);
                assertTrue(lines.stream().noneMatch(l -> l.matches("istio_.*(\\.0|le=\"[0-9]+\\.0\"}.*)")), path);
                assertTrue(lines.stream().noneMatch(l -> l.contains("istio_request_duration_milliseconds_max")),
                        "Envoy serves no max of a histogram: " + lines);
                assertTrue(lines.contains("app_orders_total 7.0"), "the application's meter as it is: " + lines);
            }
        } finally {
            stats.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void statsPrometheusTakesEnvoysFilterAndUsedonly() throws Exception {
        registry.counter("test.used", "cluster_name", "a").increment(2);
        registry.counter("test.used", "cluster_name", "b");
        registry.counter("test.unused");
        registry.timer("test.latency", "route", "x").record(Duration.ofMillis(5));
        registry.timer("test.latency", "route", "y");
        registry.timer("test.idle");

        String all = get(0, "/stats/prometheus").body();
        assertTrue(all.contains("# TYPE test_unused_total counter\n"), all);
        assertTrue(all.contains("test_used_total{cluster_name=\"b\"} 0"), all);

        HttpResponse<String> used = get(0, "/stats/prometheus?usedonly");

        assertEquals(200, used.statusCode());
        String u = used.body();
        assertTrue(u.contains("# TYPE test_used_total counter\ntest_used_total{cluster_name=\"a\"} 2"), u);
        assertTrue(!u.contains("cluster_name=\"b\""), "a series never written is left out: " + u);
        assertTrue(!u.contains("test_unused"), "a family with nothing written is left out with its comments: " + u);
        assertTrue(u.contains("test_latency_seconds_count{route=\"x\"} 1"), u);
        assertTrue(u.contains("test_latency_seconds_sum{route=\"x\"} 0.005"), u);
        assertTrue(!u.contains("route=\"y\""), "nor a timer that recorded nothing: " + u);
        assertTrue(!u.contains("test_idle"), u);

        String filtered = get(0, "/stats/prometheus?filter=%5Etest_used").body();
        assertTrue(filtered.startsWith("# HELP test_used_total"), filtered);
        assertTrue(filtered.contains("test_used_total{cluster_name=\"b\"} 0"), filtered);
        assertTrue(filtered.lines().allMatch(l -> l.contains("test_used_total")), filtered);
        assertEquals("", get(0, "/stats/prometheus?filter=%5Etest_used&usedonly").body().lines()
                .filter(l -> l.contains("cluster_name=\"b\"")).findAny().orElse(""));

        HttpResponse<String> bad = get(0, "/stats/prometheus?filter=(");
        assertEquals(400, bad.statusCode());
        assertEquals("Invalid re2 regex", bad.body());
        // what Java's expressions take and RE2 does not: a lookahead, a back-reference
        for (String java : List.of("(%3F=test)", "(a)%5C1")) {
            HttpResponse<String> notRe2 = get(0, "/stats/prometheus?filter=" + java);
            assertEquals(400, notRe2.statusCode(), java);
            assertEquals("Invalid re2 regex", notRe2.body());
        }
    }

    @Test
    void statsAndStatsPrometheusRefuseAHistogramBucketsTypeOrFormatEnvoyDoesNotTake() throws Exception {
        AdminServer own = everything();
        try {
            for (String stats : List.of("/stats?", "/stats/prometheus?")) {
                var port = stats.startsWith("/stats/prometheus") ? admin.port(0) : own.port(0);
                HttpResponse<String> buckets = at(port, stats + "histogram_buckets=quantiles");
                assertEquals(400, buckets.statusCode(), stats);
                assertEquals("usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary)\n",
                        buckets.body());
                HttpResponse<String> type = at(port, stats + "type=counters");
                assertEquals(400, type.statusCode(), stats);
                assertEquals("invalid &type= param", type.body());
                HttpResponse<String> format = at(port, stats + "format=yaml");
                assertEquals(400, format.statusCode(), stats);
                assertEquals("usage: /stats?format=(json|prometheus|text)\n\n", format.body());
                // checked in Envoy's order: the filter first, then histogram_buckets, then type
                assertEquals("Invalid re2 regex", at(port, stats + "filter=(&histogram_buckets=x&type=x").body());
                assertEquals("usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary)\n",
                        at(port, stats + "histogram_buckets=x&type=x").body());
                for (String taken : List.of("histogram_buckets=cumulative", "histogram_buckets=disjoint",
                        "histogram_buckets=detailed", "histogram_buckets=summary", "histogram_buckets=none",
                        "histogram_buckets=", "type=All",
                        "format=text", "format=json", "format=prometheus", "format=")) {
                    assertEquals(200, at(port, stats + taken).statusCode(), stats + taken);
                }
            }
            // /stats/prometheus answers Prometheus' text whatever format it is given, as Envoy's
            // (the server's uptime, in seconds, may tick between the two scrapes)
            String scrape = at(admin.port(0), "/stats/prometheus?format=json").body();
            assertEquals(withoutUptime(at(admin.port(0), "/stats/prometheus").body()), withoutUptime(scrape));
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void clustersPrintsTheClusterManagersLinesInEnvoysTextForm() throws Exception {
        HttpResponse<String> r = get(0, "/clusters");

        assertEquals(200, r.statusCode());
        assertEquals("outbound|9080||reviews.default.svc.cluster.local::added_via_api::true\n"
                + "outbound|9080||reviews.default.svc.cluster.local::10.244.0.192:9080::cx_active::2\n"
                + "outbound|9080||reviews.default.svc.cluster.local::10.244.0.192:9080::health_flags::healthy\n",
                r.body());
        assertEquals(r.body(), get(0, "/clusters?format=text").body());
        // as Envoy's: any format but json, an empty one too, is the text form, never a 400
        for (String other : List.of("xml", "JSON", "")) {
            HttpResponse<String> text = get(0, "/clusters?format=" + other);
            assertEquals(200, text.statusCode(), other);
            assertEquals(r.body(), text.body(), other);
            assertEquals(AdminServer.TEXT, text.headers().firstValue("content-type").orElseThrow(), other);
        }
    }

    @Test
    void clustersInJsonIsEnvoysClustersMessage() throws Exception {
        holder.apply(EnvoyConfigReader.read(ClusterManagerStatusTest.STATIC));
        AdminServer own = AdminServer.builder(vertx).snapshots(holder).clusterStatus(new ClusterManagerStatus(holder))
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CLUSTERS)).build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + own.port(0)
                    + "/clusters?format=json")).build(), HttpResponse.BodyHandlers.ofString());

            assertEquals(200, r.statusCode());
            assertEquals("application/json", r.headers().firstValue("content-type").orElse(""));
            var json = dev.inmesh.runtime.xds.EnvoyJson.tree(r.body());
            assertEquals("agent", json.get("cluster_statuses").get(0).get("name").asText());
            assertEquals("agent.local",
                    json.get("cluster_statuses").get(0).get("host_statuses").get(0).get("hostname").asText());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    /** Cluster {@code checked}, with health checks (which warms until their first round), and {@code unchecked}. */
    private static final String CHECKED_AND_UNCHECKED = """
            resources:
            - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
              name: checked
              type: STATIC
              load_assignment: {cluster_name: checked, endpoints: [{lb_endpoints: [%s]}]}
              health_checks:
              - {timeout: 1s, interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1, tcp_health_check: {}}
            - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
              name: unchecked
              type: STATIC
              load_assignment: {cluster_name: unchecked, endpoints: [{lb_endpoints: [%s]}]}
            """.formatted("{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}",
            "{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 1}}}}");

    /**
     * As Envoy's cluster manager holds a new CDS cluster with health checks among its warming clusters until its
     * first checks complete: {@code /config_dump} has it in {@code dynamic_warming_clusters} and {@code /clusters}
     * (its active clusters) leaves it out. Without Vert.x in the holder, its checks never run.
     */
    @Test
    void aClusterWaitingForItsFirstHealthChecksIsWarmingInTheConfigDumpAndNotInClusters() throws Exception {
        holder.apply(EnvoyConfigReader.read(CHECKED_AND_UNCHECKED));
        assertTrue(holder.current().clusterManager().clusters().get("checked").warming());
        AdminServer own = AdminServer.builder(vertx).snapshots(holder).clusterStatus(new ClusterManagerStatus(holder))
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CLUSTERS,
                        AdminServer.Endpoint.CONFIG_DUMP)).build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            var clusters = dev.inmesh.runtime.xds.EnvoyJson.tree(at(own.port(0), "/config_dump").body())
                    .get("configs").get(1);
            assertEquals(List.of("unchecked"), names(clusters.get("dynamic_active_clusters")));
            assertEquals(List.of("checked"), names(clusters.get("dynamic_warming_clusters")));

            var statuses = dev.inmesh.runtime.xds.EnvoyJson.tree(at(own.port(0), "/clusters?format=json").body())
                    .get("cluster_statuses");
            assertEquals(1, statuses.size());
            assertEquals("unchecked", statuses.get(0).get("name").asText());
            String text = at(own.port(0), "/clusters").body();
            assertFalse(text.lines().anyMatch(l -> l.startsWith("checked::")), text);
            assertTrue(text.lines().anyMatch(l -> l.startsWith("unchecked::")), text);
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    /**
     * The cluster manager's, listener manager's, their subscriptions' and the control plane's statistics under
     * Envoy's names in {@code /stats} ({@code cluster_manager.cds.update_success}) and its Prometheus names in
     * {@code /stats/prometheus} ({@code envoy_cluster_manager_cds_update_success}), what Istio's dashboards and
     * alerts read; a cluster waiting for its first health checks counts in {@code warming_clusters}.
     */
    @Test
    void clusterManagerListenerManagerAndSubscriptionStatisticsHaveEnvoysNames() throws Exception {
        PrometheusMeterRegistry own = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        AdminServer server = AdminServer.builder(vertx).snapshots(holder).registry(own)
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.STATS,
                        AdminServer.Endpoint.STATS_PROMETHEUS)).build();
        server.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            holder.stats().cds().started();
            holder.stats().lds().started();
            holder.stats().connected(true);
            holder.apply(EnvoyConfigReader.read(CHECKED_AND_UNCHECKED));
            holder.stats().cds().accepted(1_700_000_000_123L);
            holder.stats().lds().rejected();

            String stats = get(server, "/stats?filter=%5E(cluster_manager%7Clistener_manager%7Ccontrol_plane)")
                    .body();
            for (String line : List.of("cluster_manager.active_clusters: 1", "cluster_manager.warming_clusters: 1",
                    "cluster_manager.cluster_added: 2", "cluster_manager.cluster_removed: 0",
                    "cluster_manager.cds.update_attempt: 2", "cluster_manager.cds.update_success: 1",
                    "cluster_manager.cds.update_time: 1700000000123", "listener_manager.lds.update_rejected: 1",
                    "listener_manager.total_listeners_active: 0", "control_plane.connected_state: 1")) {
                assertTrue(stats.contains(line + "\n"), line + " in " + stats);
            }
            String gauges = get(server, "/stats?type=Gauges&filter=cluster_manager").body();
            assertTrue(gauges.contains("cluster_manager.warming_clusters: 1\n"), gauges);
            assertFalse(gauges.contains("cluster_added"), gauges);
            assertTrue(get(server, "/stats?usedonly&filter=warming").body().contains("warming_clusters: 1"));
            // Envoy's gauges that go down, not counters
            assertTrue(get(server, "/stats?type=Gauges&filter=listener_manager").body()
                    .contains("listener_manager.total_listeners_draining: 0\n"));
            // as Envoy's admin decodes a query: a + stays (a regex's), an escape that is not one stays as it came
            assertTrue(get(server, "/stats?filter=%5Ecluster_manager%5C.warm.%2Bclusters$").body()
                    .contains("warming_clusters: 1"));
            assertTrue(get(server, "/stats?filter=%5Ecluster_manager%5C.warm.+clusters$").body()
                    .contains("warming_clusters: 1"), "a + in a query is not a space");
            try (var socket = new java.net.Socket("127.0.0.1", server.port(0))) {
                socket.setSoTimeout(10_000);
                socket.getOutputStream().write("GET /stats?filter=%zz HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
                        .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                String answer = new String(socket.getInputStream().readAllBytes(),
                        java.nio.charset.StandardCharsets.US_ASCII);
                assertTrue(answer.startsWith("HTTP/1.1 200 "), "answered, not left hanging: " + answer);
            }
            assertEquals(List.of("%zz", "a+b", "x y"), List.of(AdminServer.params("filter=%zz").get("filter"),
                    AdminServer.params("filter=a+b").get("filter"), AdminServer.params("filter=x%20y").get("filter")));

            String prometheus = get(server, "/stats/prometheus").body();
            for (String line : List.of("envoy_cluster_manager_warming_clusters 1",
                    "envoy_cluster_manager_cluster_added 2", "envoy_cluster_manager_cds_update_success 1",
                    "envoy_listener_manager_lds_update_rejected 1", "envoy_control_plane_connected_state 1",
                    "# TYPE envoy_cluster_manager_warming_clusters gauge",
                    "# TYPE envoy_listener_manager_total_listeners_draining gauge",
                    "# TYPE envoy_server_days_until_first_cert_expiring gauge")) {
                assertTrue(prometheus.contains("\n" + line + "\n"), line + " in " + prometheus);
            }
        } finally {
            server.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
        assertEquals(null, own.find("envoy_cluster_manager_cds_update_success").gauge(), "they go with the server");
    }

    private static List<String> names(com.fasterxml.jackson.databind.JsonNode dynamicClusters) {
        List<String> out = new java.util.ArrayList<>();
        if (dynamicClusters != null) {
            dynamicClusters.forEach(c -> out.add(c.get("cluster").get("name").asText()));
        }
        return out;
    }

    private List<String> types(String json) throws Exception {
        List<String> out = new java.util.ArrayList<>();
        dev.inmesh.runtime.xds.EnvoyJson.tree(json).get("configs").forEach(c -> {
            String t = c.get("@type").asText();
            out.add(t.substring(t.lastIndexOf('.') + 1));
        });
        return out;
    }

    @Test
    void configDumpHasTheEndpointsOnlyWithIncludeEds() throws Exception {
        holder.apply(EnvoyConfigReader.read(ClusterManagerStatusTest.XDS));

        assertEquals(List.of("BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump",
                "ScopedRoutesConfigDump", "RoutesConfigDump", "SecretsConfigDump"),
                types(get(0, "/config_dump").body()));
        HttpResponse<String> eds = get(0, "/config_dump?include_eds");
        assertEquals(List.of("BootstrapConfigDump", "ClustersConfigDump", "EndpointsConfigDump",
                "ListenersConfigDump", "ScopedRoutesConfigDump", "RoutesConfigDump", "SecretsConfigDump"),
                types(eds.body()));
        var back = EnvoyConfigReader.read(eds.body());
        // as Envoy's, each endpoint with its host's health now (EDS sent none: UNKNOWN; the host is healthy)
        var sent = holder.current().resources().endpoints().get("reviews-eds").endpoints().get(0).lbEndpoints().get(0);
        var dumped = back.endpoints().get("reviews-eds").endpoints().get(0).lbEndpoints().get(0);
        assertEquals(dev.inmesh.api.config.endpoint.HealthStatus.UNKNOWN, sent.healthStatus());
        assertEquals(dev.inmesh.api.config.endpoint.HealthStatus.HEALTHY, dumped.healthStatus());
        assertEquals(sent.address(), dumped.address());
        assertEquals(holder.current().resources().clusters(), back.clusters());
        // a host EDS says is draining is, as Envoy's coarse health reads it, unhealthy
        holder.apply(EnvoyConfigReader.read(ClusterManagerStatusTest.XDS.replace(
                "- endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 9080}}}",
                "- endpoint: {address: {socket_address: {address: 10.0.0.1, port_value: 9080}}}\n"
                        + "      health_status: DRAINING")));
        var draining = EnvoyConfigReader.read(get(0, "/config_dump?include_eds").body()).endpoints()
                .get("reviews-eds").endpoints().get(0).lbEndpoints().get(0);
        assertEquals(dev.inmesh.api.config.endpoint.HealthStatus.UNHEALTHY, draining.healthStatus());
    }

    @Test
    void configDumpResourceAnswersTheEntriesOfThatField() throws Exception {
        holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));

        HttpResponse<String> r = get(0, "/config_dump?resource=dynamic_listeners");
        assertEquals(200, r.statusCode());
        assertEquals(List.of("DynamicListener", "DynamicListener"), types(r.body()));
        HttpResponse<String> masked = get(0, "/config_dump?resource=dynamic_route_configs&mask=route_config.name");
        var route = dev.inmesh.runtime.xds.EnvoyJson.tree(masked.body()).get("configs").get(0);
        assertEquals("type.googleapis.com/envoy.admin.v3.RoutesConfigDump.DynamicRouteConfig",
                route.get("@type").asText());
        assertEquals("9080", route.get("route_config").get("name").asText());
        assertEquals(null, route.get("route_config").get("virtual_hosts"));
        assertEquals(null, route.get("version_info"));
        // as Envoy, a mask reaches into the entry's own resource, not into a nested message's
        assertEquals(400, get(0, "/config_dump?resource=dynamic_listeners&mask=active_state.listener.name")
                .statusCode());

        HttpResponse<String> unknown = get(0, "/config_dump?resource=no_such_field");
        assertEquals(404, unknown.statusCode());
        assertEquals("no_such_field not found in config dump", unknown.body());
        HttpResponse<String> single = get(0, "/config_dump?resource=version_info");
        assertEquals(400, single.statusCode());
        assertEquals("version_info is not a repeated field. Use ?mask=version_info to get only this field",
                single.body());
        HttpResponse<String> noEds = get(0, "/config_dump?resource=dynamic_endpoint_configs");
        assertEquals(404, noEds.statusCode(), "the endpoints' fields exist only with include_eds");
    }

    @Test
    void configDumpMaskKeepsTheDumpsItFitsAndTrimsThem() throws Exception {
        holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));

        HttpResponse<String> r = get(0, "/config_dump?mask=dynamic_listeners");
        assertEquals(List.of("ListenersConfigDump"), types(r.body()));
        var listeners = dev.inmesh.runtime.xds.EnvoyJson.tree(r.body()).get("configs").get(0);
        assertEquals(null, listeners.get("version_info"));
        assertEquals(2, listeners.get("dynamic_listeners").size());
        assertEquals(List.of("BootstrapConfigDump"), types(get(0, "/config_dump?mask=bootstrap").body()));

        HttpResponse<String> bad = get(0, "/config_dump?mask=no_such_field");
        assertEquals(400, bad.statusCode());
        assertEquals("text/plain", bad.headers().firstValue("content-type").orElse(""), "as Envoy's, no charset");
        // the endpoint's own nosniff, and the one Envoy's admin appends to every answer
        assertEquals(List.of("nosniff", "nosniff"), bad.headers().allValues("x-content-type-options"));
        assertEquals("FieldMask no_such_field could not be successfully applied to any configs.", bad.body());
    }

    @Test
    void configDumpNameRegexKeepsTheResourcesWhoseWholeNameMatches() throws Exception {
        holder.apply(EnvoyConfigReader.read(ClusterManagerStatusTest.XDS + ConfigDumpBuilderTest.LISTENERS_AND_ROUTES
                .substring("resources:\n".length())));

        HttpResponse<String> r = get(0, "/config_dump?include_eds&name_regex=.*9080.*");

        assertEquals(200, r.statusCode());
        assertEquals(List.of("BootstrapConfigDump", "ClustersConfigDump", "EndpointsConfigDump",
                "ListenersConfigDump", "ScopedRoutesConfigDump", "RoutesConfigDump", "SecretsConfigDump"),
                types(r.body()), "the bootstrap has no name: it stays");
        var configs = dev.inmesh.runtime.xds.EnvoyJson.tree(r.body()).get("configs");
        assertEquals(List.of("outbound|9080||reviews.default.svc.cluster.local"),
                names(configs.get(1).get("dynamic_active_clusters"), "cluster", "name"));
        assertEquals(null, configs.get(2).get("dynamic_endpoint_configs"), "reviews-eds does not match");
        assertEquals(List.of("0.0.0.0_9080"), names(configs.get(3).get("dynamic_listeners"), "name"));
        assertEquals(List.of("9080"), names(configs.get(5).get("dynamic_route_configs"), "route_config", "name"));

        // the whole name, as Envoy's RE2 full match: "9080" is the route configuration's name only
        var whole = dev.inmesh.runtime.xds.EnvoyJson.tree(get(0, "/config_dump?name_regex=9080").body())
                .get("configs");
        assertEquals(null, whole.get(1).get("dynamic_active_clusters"));
        assertEquals(null, whole.get(2).get("dynamic_listeners"));
        assertEquals(List.of("9080"), names(whole.get(4).get("dynamic_route_configs"), "route_config", "name"));

        // with resource and mask: the entries of that field whose resource's name matches
        HttpResponse<String> some = get(0, "/config_dump?resource=dynamic_listeners&mask=name&name_regex=10%5C..*");
        assertEquals(List.of("10.96.0.9_3306"), names(dev.inmesh.runtime.xds.EnvoyJson.tree(some.body())
                .get("configs"), "name"));

        HttpResponse<String> bad = get(0, "/config_dump?name_regex=%5B");
        assertEquals(400, bad.statusCode());
        assertTrue(bad.body().startsWith("INVALID_ARGUMENT: Error while parsing name_regex from [: "), bad.body());
        // RE2's syntax, as Envoy's: what Java's expressions take and RE2 does not is refused (a lookahead, a
        // back-reference, a possessive quantifier, a Java class, an atomic group), RE2's named group taken
        for (String javaOnly : List.of("a(?=b)", "(a)\\1", "a*+", "\\p{javaLowerCase}", "(?>a)")) {
            HttpResponse<String> notRe2 = get(0, "/config_dump?name_regex="
                    + java.net.URLEncoder.encode(javaOnly, java.nio.charset.StandardCharsets.UTF_8));
            assertEquals(400, notRe2.statusCode(), javaOnly);
            assertTrue(notRe2.body().startsWith("INVALID_ARGUMENT: Error while parsing name_regex from " + javaOnly
                    + ": "), notRe2.body());
        }
        HttpResponse<String> named = get(0, "/config_dump?name_regex="
                + java.net.URLEncoder.encode("(?P<port>9080)", java.nio.charset.StandardCharsets.UTF_8));
        assertEquals(200, named.statusCode(), named.body());
        assertEquals(List.of("9080"), names(dev.inmesh.runtime.xds.EnvoyJson.tree(named.body()).get("configs")
                .get(4).get("dynamic_route_configs"), "route_config", "name"));
    }

    private static List<String> names(com.fasterxml.jackson.databind.JsonNode list, String... path) {
        List<String> out = new java.util.ArrayList<>();
        for (var e : list) {
            for (String p : path) {
                e = e.get(p);
            }
            out.add(e.asText());
        }
        return out;
    }

    @Test
    void configDumpTakesAnEmptyParameterForNoneAsEnvoy() throws Exception {
        holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));

        HttpResponse<String> r = get(0, "/config_dump?resource=&mask=&name_regex=");

        assertEquals(200, r.statusCode());
        assertEquals(get(0, "/config_dump").body(), r.body());
    }

    private AdminServer everything() throws Exception {
        AdminServer own = AdminServer.builder(vertx).snapshots(holder).registry(registry)
                .nodeId("sidecar~10.0.0.1~a.default~default.svc.cluster.local").configPath("/etc/inmesh/mesh.yaml")
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.STATS,
                        AdminServer.Endpoint.SERVER_INFO, AdminServer.Endpoint.LISTENERS, AdminServer.Endpoint.HELP,
                        AdminServer.Endpoint.ROOT, AdminServer.Endpoint.READY))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        return own;
    }

    private HttpResponse<String> get(AdminServer server, String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port(0) + path))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void resetCountersCountsStatsCountersFromZeroAndLeavesTheGaugesAsEnvoy() throws Exception {
        var upstream = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE).upstream("outbound|9080||reviews");
        upstream.requestStarted();
        upstream.requestStarted();
        upstream.activeRequests(2);
        upstream.membershipFrom(() -> new int[] {2, 0, 0, 2});
        AdminServer own = AdminServer.builder(vertx).snapshots(holder).registry(registry)
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.RESET_COUNTERS,
                        AdminServer.Endpoint.STATS, AdminServer.Endpoint.STATS_PROMETHEUS))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            String total = "cluster.outbound|9080||reviews.upstream_rq_total: ";
            String active = "cluster.outbound|9080||reviews.upstream_rq_active: ";
            assertTrue(get(own, "/stats").body().contains(total + "2\n"), get(own, "/stats").body());
            assertEquals(405, send(own, "GET", "/reset_counters").statusCode());
            assertTrue(get(own, "/stats").body().contains(total + "2\n"), "a refused GET resets nothing");

            HttpResponse<String> reset = send(own, "POST", "/reset_counters");

            assertEquals(200, reset.statusCode());
            assertEquals("OK\n", reset.body());
            String after = get(own, "/stats").body();
            assertTrue(after.contains(total + "0\n"), after);
            assertTrue(after.contains(active + "2\n"), "a gauge is not a counter: " + after);
            assertTrue(after.contains("cluster.outbound|9080||reviews.membership_total: 2\n"), after);
            String gauges = get(own, "/stats?type=Gauges").body();
            assertTrue(gauges.contains("cluster.outbound|9080||reviews.membership_healthy: 2\n"),
                    "Envoy's membership gauges are gauges: " + gauges);
            assertTrue(!get(own, "/stats?type=Counters").body().contains("membership_total"));
            assertTrue(!get(own, "/stats?usedonly").body().contains(total), "nothing counted since");
            upstream.requestStarted();
            assertTrue(get(own, "/stats").body().contains(total + "1\n"));
            assertTrue(get(own, "/stats?format=json").body().contains(
                    "{\"name\":\"cluster.outbound|9080||reviews.upstream_rq_total\",\"value\":1}"));
            assertTrue(get(own, "/stats/prometheus").body().lines().anyMatch(l -> l.startsWith(
                    "envoy_cluster_upstream_rq_total{") && l.endsWith(" 3")), "the registry counts on");
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void statsHaveEnvoysServerStateAndWorkersStartedWhichIstiosAgentReadsForReadiness() throws Exception {
        PrometheusMeterRegistry own = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        AdminServer server = AdminServer.builder(vertx).snapshots(holder).registry(own)
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.STATS,
                        AdminServer.Endpoint.STATS_PROMETHEUS, AdminServer.Endpoint.HEALTHCHECK_FAIL))
                .build();
        server.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        // what Istio's agent asks for its readiness probe
        String readiness = "/stats?usedonly&filter=%5E(server%5C.state%7Clistener_manager%5C.workers_started)";
        try {
            assertEquals("listener_manager.workers_started: 0\nserver.state: 2\n", get(server, readiness).body(),
                    "PRE_INITIALIZING");
            holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));
            assertEquals("listener_manager.workers_started: 1\nserver.state: 0\n", get(server, readiness).body(),
                    "LIVE, kept by usedonly at zero as Envoy's");
            String stats = get(server, "/stats?type=Gauges&filter=%5Eserver").body();
            // no certificate: Envoy's largest 32-bit number
            assertTrue(stats.startsWith("server.days_until_first_cert_expiring: 4294967295\nserver.live: 1\n"
                    + "server.state: 0\nserver.uptime: "), stats);
            // as Envoy's: the filter finds Envoy's name of the statistic, not its Prometheus name
            String prometheus = get(server, "/stats/prometheus?usedonly&filter=%5Eserver%5C.state%24").body();
            assertEquals("# TYPE envoy_server_state gauge\nenvoy_server_state 0\n", prometheus);
            assertEquals("", get(server, "/stats/prometheus?filter=envoy_server_state").body());

            send(server, "POST", "/healthcheck/fail");
            assertEquals("listener_manager.workers_started: 1\nserver.state: 1\n", get(server, readiness).body(),
                    "DRAINING");
        } finally {
            server.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
        assertEquals(null, own.find("envoy_server_state").gauge(), "the server's gauges go with it");
    }

    @Test
    void statsPrometheusFiltersEnvoysStatisticsByTheirEnvoyNamesAndTheOthersByTheirFamilysName() throws Exception {
        // a cluster whose statistics are under its alt_stat_name, as Envoy names them: cluster.reviews_9080.*
        holder.apply(EnvoyConfigReader.read(ClusterManagerStatusTest.XDS));
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        metrics.upstream("outbound|9080||reviews.default.svc.cluster.local").requestCompleted(200);
        metrics.record(StreamInfos.outboundOk());

        String byEnvoyName = get(0, "/stats/prometheus?filter=" + java.net.URLEncoder.encode(
                "^cluster\\.reviews_9080\\.upstream_rq_total$", java.nio.charset.StandardCharsets.UTF_8)).body();
        List<String> series = byEnvoyName.lines().filter(l -> !l.startsWith("#")).toList();
        assertEquals(1, series.size(), byEnvoyName);
        assertTrue(series.get(0).startsWith("envoy_cluster_upstream_rq_total{"), byEnvoyName);
        assertEquals("", get(0, "/stats/prometheus?filter=envoy_cluster_upstream_rq_total").body(),
                "the Prometheus name of an Envoy statistic is not what Envoy's filter sees");
        assertEquals("", get(0, "/stats/prometheus?filter=" + java.net.URLEncoder.encode("^cluster\\.outbound",
                java.nio.charset.StandardCharsets.UTF_8)).body(), "its statistics are under its alt_stat_name");
        // Istio's metrics, no Envoy statistics of Inmesh's, by their family's name
        String istio = get(0, "/stats/prometheus?filter=%5Eistio_requests_total%24").body();
        assertTrue(istio.startsWith("# TYPE istio_requests_total counter\nistio_requests_total{"), istio);
    }

    @Test
    void responseClassesAndCodesAreServedInOneFamilyAsIstiosProxyServesThem() throws Exception {
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        var upstream = metrics.upstream("outbound|9080||reviews");
        upstream.requestCompleted(200);
        upstream.requestCompleted(200);
        upstream.requestCompleted(503);
        AdminServer own = everything();
        try {
            // Istio's stats tags: cluster.C.upstream_rq_2xx and cluster.C.upstream_rq_200 are both
            // envoy_cluster_upstream_rq, one with response_code_class, the other with response_code
            String prom = get(0, "/stats/prometheus").body();
            String c = "cluster_name=\"outbound|9080||reviews\"";
            assertTrue(prom.contains("envoy_cluster_upstream_rq{" + c + ",response_code_class=\"2xx\"} 2\n"), prom);
            assertTrue(prom.contains("envoy_cluster_upstream_rq{" + c + ",response_code_class=\"5xx\"} 1\n"), prom);
            assertTrue(prom.contains("envoy_cluster_upstream_rq{" + c + ",response_code=\"200\"} 2\n"), prom);
            assertTrue(prom.contains("envoy_cluster_upstream_rq{" + c + ",response_code=\"503\"} 1\n"), prom);
            // a counter, as Istio's proxy types it (a scraper's rate() and metadata expect one)
            assertEquals(1, prom.lines().filter(l -> l.equals("# TYPE envoy_cluster_upstream_rq counter")).count(),
                    "one family");
            List<String> family = prom.lines().filter(l -> l.startsWith("envoy_cluster_upstream_rq{")).toList();
            int first = prom.lines().toList().indexOf(family.get(0));
            assertEquals(family, prom.lines().toList().subList(first, first + family.size()), "its samples together");
            assertTrue(!prom.contains("upstream_rq_xx") && !prom.contains("upstream_rq_code"), prom);
            assertTrue(prom.contains("envoy_cluster_upstream_rq_total{"), "the total is another family");
            // ?filter= sees each series' Envoy name, as Envoy's: cluster.C.upstream_rq_200, ..._2xx
            String filtered = get(0, "/stats/prometheus?filter=" + java.net.URLEncoder.encode(
                    "^cluster\\.outbound\\|9080\\|\\|reviews\\.upstream_rq_[0-9]",
                    java.nio.charset.StandardCharsets.UTF_8)).body();
            assertEquals(5, filtered.lines().count(), filtered); // # TYPE and the four series
            assertEquals("# TYPE envoy_cluster_upstream_rq counter", filtered.lines().findFirst().orElseThrow());
            // and /stats Envoy's own
            String text = get(own, "/stats?filter=" + java.net.URLEncoder.encode("upstream_rq_(200|503|2xx)$",
                    java.nio.charset.StandardCharsets.UTF_8)).body();
            assertEquals("cluster.outbound|9080||reviews.upstream_rq_200: 2\n"
                    + "cluster.outbound|9080||reviews.upstream_rq_2xx: 2\n"
                    + "cluster.outbound|9080||reviews.upstream_rq_503: 1\n", text);
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void statsListsEnvoysStatisticsByEnvoysNames() throws Exception {
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        var upstream = metrics.upstream("outbound|9080||reviews");
        upstream.requestStarted();
        upstream.requestStarted();
        upstream.requestCompleted(200);
        upstream.retriedResponse(503);
        upstream.outlierDetection().enforced("consecutive_5xx");
        upstream.retryOrShadowAbandoned();
        upstream.pendingStarted();
        upstream.tlsHandshake();
        upstream.tlsFailed(dev.inmesh.runtime.stats.ListenerStats.TlsFailure.VERIFY_SAN);
        var breakers = new dev.inmesh.runtime.upstream.CircuitBreakerState(new dev.inmesh.api.config.cluster
                .CircuitBreakers.Thresholds(dev.inmesh.api.config.cluster.CircuitBreakers.RoutingPriority.DEFAULT,
                1024, 1, 1024, 3, null, true));
        breakers.pendingStarted();
        upstream.circuitBreakers("default", breakers);
        metrics.record(StreamInfos.outboundOk());
        AdminServer own = everything();
        try {
            HttpResponse<String> text = get(own, "/stats");
            assertEquals(200, text.statusCode());
            assertTrue(text.body().contains("cluster.outbound|9080||reviews.upstream_rq_total: 2\n"), text.body());
            assertTrue(text.body().contains("cluster.outbound|9080||reviews.upstream_rq_2xx: 1\n"), text.body());
            // a response retried away: Envoy's retry. scope, apart from the answer's own counts
            assertTrue(text.body().contains("cluster.outbound|9080||reviews.retry.upstream_rq_5xx: 1\n"), text.body());
            assertTrue(text.body().contains("cluster.outbound|9080||reviews.retry.upstream_rq_503: 1\n"), text.body());
            // scraped as Istio's proxy serves them: one family, by class and by code
            String prom = get(own, "/stats?format=prometheus").body();
            String c = "cluster_name=\"outbound|9080||reviews\"";
            assertEquals(List.of("# TYPE envoy_cluster_retry_upstream_rq counter",
                    "envoy_cluster_retry_upstream_rq{" + c + ",response_code_class=\"5xx\"} 1",
                    "envoy_cluster_retry_upstream_rq{" + c + ",response_code=\"503\"} 1"),
                    prom.lines().filter(l -> l.matches("(# TYPE )?envoy_cluster_retry_upstream_rq\\b.*")).toList(),
                    prom);
            assertTrue(!text.body().contains("reviews.upstream_rq_5xx"), text.body());
            // a statistic whose name only starts like the retry. scope's is in none
            assertTrue(text.body().contains("cluster.outbound|9080||reviews.retry_or_shadow_abandoned: 1\n"),
                    text.body());
            // and its outlier_detection. scope
            String od = "cluster.outbound|9080||reviews.outlier_detection.";
            assertTrue(text.body().contains(od + "ejections_enforced_consecutive_5xx: 1\n"), text.body());
            assertTrue(text.body().contains(od + "ejections_enforced_total: 1\n"), text.body());
            assertTrue(text.body().contains(od + "ejections_active: 0\n"), text.body());
            // the ssl. scope of the TLS to the cluster's upstream
            String ssl = "cluster.outbound|9080||reviews.ssl.";
            assertTrue(text.body().contains(ssl + "handshake: 1\n"), text.body());
            assertTrue(text.body().contains(ssl + "fail_verify_san: 1\n"), text.body());
            assertTrue(text.body().contains(ssl + "fail_verify_error: 0\n"), text.body());
            assertTrue(text.body().contains(ssl + "connection_error: 0\n"), text.body());
            // the circuit_breakers.<priority>. scope, and the pending requests Istio's circuit breaking task reads
            String cb = "cluster.outbound|9080||reviews.circuit_breakers.default.";
            assertTrue(text.body().contains(cb + "rq_pending_open: 1\n"), text.body());
            assertTrue(text.body().contains(cb + "remaining_pending: 0\n"), text.body());
            assertTrue(text.body().contains(cb + "remaining_rq: 1024\n"), text.body());
            // no max_connection_pools: Envoy's limit is the largest uint64, printed whole in each form
            assertTrue(text.body().contains(cb + "remaining_cx_pools: 18446744073709551615\n"), text.body());
            assertEquals("{\"stats\":[{\"name\":\"" + cb + "remaining_cx_pools\",\"value\":18446744073709551615}]}",
                    get(own, "/stats?format=json&filter=remaining_cx_pools").body());
            assertTrue(prom.contains("envoy_cluster_circuit_breakers_default_remaining_cx_pools{" + c
                    + "} 18446744073709551615\n"), prom);
            assertTrue(text.body().contains("cluster.outbound|9080||reviews.upstream_rq_pending_total: 1\n"),
                    text.body());
            assertTrue(text.body().contains("cluster.outbound|9080||reviews.upstream_rq_pending_active: 1\n"),
                    text.body());
            assertTrue(!text.body().contains("istio_requests_total"), text.body());
            // the counters and gauges sorted by name, then the histograms, as Envoy's
            List<String> names = text.body().lines().map(l -> l.substring(0, l.indexOf(": "))).toList();
            int histograms = (int) text.body().lines().filter(l -> l.endsWith(": No recorded values")
                    || l.contains(": P0(")).count();
            assertTrue(histograms > 0, text.body());
            List<String> plain = names.subList(0, names.size() - histograms);
            assertEquals(plain.stream().sorted().toList(), plain);
            assertTrue(names.subList(plain.size(), names.size()).contains("cluster.outbound|9080||reviews"
                    + ".upstream_rq_time"), text.body());

            HttpResponse<String> json = get(own, "/stats?format=json&filter=rq_total$");
            assertEquals("application/json", json.headers().firstValue("content-type").orElse(""));
            assertEquals("{\"stats\":[{\"name\":\"cluster.outbound|9080||reviews.upstream_rq_total\","
                    + "\"value\":2}]}", json.body());
            assertEquals("cluster.outbound|9080||reviews.retry.upstream_rq_completed: 1\n"
                    + "cluster.outbound|9080||reviews.upstream_rq_completed: 1\n",
                    get(own, "/stats?filter=rq_comp").body());
            HttpResponse<String> bad = get(own, "/stats?filter=(");
            assertEquals(400, bad.statusCode());
            assertEquals("Invalid re2 regex", bad.body());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    /** Statistics, in Envoy's text or Prometheus' form, without the server's uptime (it may tick between two). */
    private static String withoutUptime(String stats) {
        return stats.lines().filter(l -> !l.startsWith("server.uptime:") && !l.startsWith("envoy_server_uptime "))
                .collect(java.util.stream.Collectors.joining("\n"));
    }

    @Test
    void statsTakesEnvoysTypeAndUsedonlyParameters() throws Exception {
        var upstream = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE).upstream("outbound|9080||reviews");
        upstream.requestStarted();
        upstream.activeRequests(1);
        upstream.connectionOpened();
        AdminServer own = everything();
        try {
            String c = "cluster.outbound|9080||reviews.";
            assertEquals(c + "upstream_cx_active: 1\n" + c + "upstream_rq_active: 1\n"
                    + c + "upstream_rq_pending_active: 0\n", get(own, "/stats?type=Gauges&filter=upstream").body());
            upstream.circuitBreakers("default", new dev.inmesh.runtime.upstream.CircuitBreakerState(
                    dev.inmesh.api.config.cluster.CircuitBreakers.Thresholds.defaults(
                            dev.inmesh.api.config.cluster.CircuitBreakers.RoutingPriority.DEFAULT)));
            // the circuit_breakers. scope holds gauges only
            assertEquals(c + "circuit_breakers.default.cx_open: 0\n" + c + "circuit_breakers.default.cx_pool_open: 0\n"
                    + c + "circuit_breakers.default.rq_open: 0\n"
                    + c + "circuit_breakers.default.rq_pending_open: 0\n" + c
                    + "circuit_breakers.default.rq_retry_open: 0\n", get(own, "/stats?type=Gauges&filter=circuit")
                    .body());
            assertEquals("", get(own, "/stats?type=Counters&filter=circuit").body());
            String counters = get(own, "/stats?type=Counters&filter=upstream").body();
            assertTrue(counters.contains(c + "upstream_rq_total: 1\n"), counters);
            assertTrue(counters.contains(c + "upstream_rq_timeout: 0\n"), counters);
            assertTrue(!counters.contains("_active: "), counters); // the gauges (upstream_rq_active_overflow counts)
            assertTrue(counters.contains(c + "upstream_rq_active_overflow: 0\n"), counters);
            assertTrue(get(own, "/stats?type=Histograms").body().lines().allMatch(l -> l.endsWith(
                    ": No recorded values")), "histograms only, none recorded");
            // the same statistics, but server.uptime, which may have gone on a second between the two
            assertEquals(withoutUptime(get(own, "/stats").body()), withoutUptime(get(own, "/stats?type=All").body()));

            // written since the start: the zeros are left out (the cluster manager's gauges are set at its start)
            assertEquals(c + "upstream_cx_active: 1\n" + c + "upstream_cx_total: 1\n" + c + "upstream_rq_active: 1\n"
                    + c + "upstream_rq_total: 1\n", get(own, "/stats?usedonly&filter=%5Ecluster%5C.").body());
            assertEquals("{\"stats\":[{\"name\":\"" + c + "upstream_rq_total\",\"value\":1}]}",
                    get(own, "/stats?usedonly&format=json&type=Counters&filter=rq").body());

            HttpResponse<String> bad = get(own, "/stats?type=counters");
            assertEquals(400, bad.statusCode());
            assertEquals("invalid &type= param", bad.body());
            // as Envoy, an empty format is none
            assertEquals(200, get(own, "/stats?format=").statusCode());
            assertEquals(withoutUptime(get(own, "/stats").body()), withoutUptime(get(own, "/stats?format=").body()));
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void statsServesEnvoysHistogramsAsQuantilesOrBucketsByEnvoysNames() throws Exception {
        var upstream = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE).upstream("outbound|9080||reviews");
        // two values in (1, 5], two in (5, 10]
        for (long millis : new long[] {2, 3, 6, 8}) {
            upstream.requestTime(millis);
        }
        AdminServer own = everything();
        try {
            String c = "cluster.outbound|9080||reviews.";
            String rq = get(own, "/stats?filter=upstream_rq_time$").body();
            // after the counters and gauges, as Envoy's; cumulative quantiles interpolated in the buckets
            assertEquals(c + "upstream_rq_time: P0(nan,1) P25(nan,3) P50(nan,5) P75(nan,7.5) P90(nan,9) "
                    + "P95(nan,9.5) P99(nan,9.9) P99.5(nan,9.95) P99.9(nan,9.99) P100(nan,10)\n", rq);
            assertEquals(c + "upstream_cx_connect_ms: No recorded values\n",
                    get(own, "/stats?filter=upstream_cx_connect_ms").body());
            assertEquals("", get(own, "/stats?usedonly&filter=upstream_cx_connect_ms").body(), "not used");
            assertEquals("", get(own, "/stats?type=Counters&filter=upstream_rq_time$").body());
            assertEquals(rq, get(own, "/stats?type=Histograms&filter=upstream_rq_time$").body());
            // summary (and none, its older name) is the quantiles, as Envoy's
            assertEquals(rq, get(own, "/stats?filter=upstream_rq_time$&histogram_buckets=summary").body());
            assertEquals(get(own, "/stats?format=json&filter=upstream_rq_").body(),
                    get(own, "/stats?format=json&filter=upstream_rq_&histogram_buckets=summary").body());

            String cumulative = get(own, "/stats?filter=upstream_rq_time$&histogram_buckets=cumulative").body();
            assertTrue(cumulative.startsWith(c + "upstream_rq_time: B0.5(0,0) B1(0,0) B5(0,2) B10(0,4) B25(0,4) "),
                    cumulative);
            assertTrue(cumulative.endsWith(" B1.8e+06(0,4) B3.6e+06(0,4)\n"), "bounds as Envoy's %g: " + cumulative);
            String disjoint = get(own, "/stats?filter=upstream_rq_time$&histogram_buckets=disjoint").body();
            assertTrue(disjoint.startsWith(c + "upstream_rq_time: B0.5(0,0) B1(0,0) B5(0,2) B10(0,2) B25(0,0) "),
                    disjoint);
            // Envoy's bins, lower bound and width, with their counts: here the buckets with values
            String detailed = get(own, "/stats?filter=upstream_rq_time$&histogram_buckets=detailed").body();
            assertTrue(detailed.startsWith(c + "upstream_rq_time:\n  totals=1,4:2, 5,5:2\n  intervals=\n"
                    + "  summary=P0(nan,1) P25(nan,3) "), detailed);

            var json = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/stats?format=json&filter=upstream_rq_")
                    .body()).get("stats");
            var last = json.get(json.size() - 1).get("histograms");
            assertEquals("[0,25,50,75,90,95,99,99.5,99.9,100]", last.get("supported_quantiles").toString());
            var rqTime = last.get("computed_quantiles").get(0);
            assertEquals(c + "upstream_rq_time", rqTime.get("name").asText());
            assertEquals("{\"cumulative\":7.5,\"interval\":null}", rqTime.get("values").get(3).toString());
            assertTrue(json.get(0).has("value"), "the counters and gauges first: " + json);
            var buckets = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own,
                    "/stats?format=json&type=Histograms&usedonly&histogram_buckets=disjoint").body()).get("stats");
            assertEquals(1, buckets.size(), buckets.toString());
            var histogram = buckets.get(0).get("histograms").get(0);
            assertEquals(c + "upstream_rq_time", histogram.get("name").asText());
            assertEquals("{\"upper_bound\":10,\"interval\":0,\"cumulative\":2}",
                    histogram.get("buckets").get(3).toString());
            var details = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own,
                    "/stats?format=json&type=Histograms&usedonly&histogram_buckets=detailed").body()).get("stats")
                    .get(0).get("histograms");
            assertEquals("[{\"lower_bound\":1,\"width\":4,\"count\":2},{\"lower_bound\":5,\"width\":5,"
                    + "\"count\":2}]", details.get("details").get(0).get("totals").toString());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void certsListsTheCertificatesOfTheListenersAndClustersTlsAsEnvoysCertificates(@TempDir Path dir)
            throws Exception {
        var ca = TestCertificates.ca("mesh-ca");
        var server = TestCertificates.issue(ca, "web", List.of("web.example.com"), List.of());
        var client = TestCertificates.issue(ca, "client", List.of(), List.of("spiffe://cluster.local/ns/a/sa/b"));
        var rotated = TestCertificates.issue(ca, "client-2", List.of(), List.of("spiffe://cluster.local/ns/a/sa/c"));
        Path serverCert = Files.writeString(dir.resolve("server.pem"), server.certificatePem());
        Path serverKey = Files.writeString(dir.resolve("server-key.pem"), server.keyPem());
        Path clientCert = Files.writeString(dir.resolve("client.pem"), client.certificatePem());
        Path clientKey = Files.writeString(dir.resolve("client-key.pem"), client.keyPem());
        Path root = Files.writeString(dir.resolve("root.pem"), ca.certificatePem());
        String downstream = tlsSocket("DownstreamTlsContext", "tls_certificate_sds_secret_configs: [{name: "
                + "\"file-cert:" + serverCert + "~" + serverKey + "\"}]");
        String upstream = tlsSocket("UpstreamTlsContext", "tls_certificate_sds_secret_configs: [{name: \"file-cert:"
                + clientCert + "~" + clientKey + "\"}], validation_context_sds_secret_config: {name: \"file-root:"
                + root + "\"}");
        holder.apply(EnvoyConfigReader.read("""
                static_resources:
                  listeners:
                  - name: https
                    address: {socket_address: {address: 127.0.0.1, port_value: 8443}}
                    filter_chains:
                    - transport_socket: %s
                      filters: [{name: envoy.filters.network.tcp_proxy, typed_config: {"@type": "%s", cluster: c,
                        stat_prefix: t}}]
                  clusters:
                  - {name: c, type: STATIC, connect_timeout: 1s, transport_socket: %s}
                  - {name: inline, type: STATIC, connect_timeout: 1s, transport_socket: %s}
                """.formatted(downstream, "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                upstream, tlsSocket("UpstreamTlsContext", "validation_context: {trusted_ca: {inline_string: \""
                        + ca.certificatePem().replace("\n", "\\n") + "\"}}"))));
        AdminServer own = AdminServer.builder(vertx).snapshots(holder)
                .mount(new AdminServer.Mount("127.0.0.1", 0, AdminServer.Mount.admin().endpoints())).build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            var certs = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/certs").body()).get("certificates");
            assertEquals(3, certs.size(), certs.toString());
            var listener = certs.get(0);
            assertEquals(0, listener.get("ca_cert").size(), certs.toString());
            var served = listener.get("cert_chain").get(0);
            assertEquals(serverCert.toString(), served.get("path").asText());
            assertEquals(serial(server.certificatePem()), served.get("serial_number").asText());
            assertEquals("web.example.com", served.get("subject_alt_names").get(0).get("dns").asText());
            // the test's certificates are good for a day
            assertEquals("0", served.get("days_until_expiration").asText());
            // Envoy's server.days_until_first_cert_expiring: the fewest days of those shown
            assertEquals(0, CertsJson.daysUntilFirstCertExpiring(holder.current(), java.time.Instant.now()));
            var none = new dev.inmesh.runtime.snapshot.SnapshotHolder();
            none.apply(EnvoyConfigReader.read("static_resources: {}"));
            assertEquals(0xFFFFFFFFL, CertsJson.daysUntilFirstCertExpiring(none.current(), java.time.Instant.now()),
                    "none: the largest 32-bit number, as Envoy's");
            assertTrue(served.get("valid_from").asText().endsWith("Z"), served.toString());
            assertTrue(served.get("expiration_time").asText().endsWith("Z"), served.toString());
            var cluster = certs.get(1);
            assertEquals(root.toString(), cluster.get("ca_cert").get(0).get("path").asText());
            assertEquals(serial(ca.certificatePem()), cluster.get("ca_cert").get(0).get("serial_number").asText());
            assertEquals("spiffe://cluster.local/ns/a/sa/b",
                    cluster.get("cert_chain").get(0).get("subject_alt_names").get(0).get("uri").asText());
            // a PEM not from a file SDS name: no path (an inline one here)
            var inline = certs.get(2).get("ca_cert").get(0);
            assertEquals("", inline.get("path").asText(), certs.toString());
            assertEquals(serial(ca.certificatePem()), inline.get("serial_number").asText());

            // a rotated client certificate is the one listed once the cluster uses it
            Files.writeString(clientKey, rotated.keyPem());
            Files.writeString(clientCert, rotated.certificatePem());
            String want = serial(rotated.certificatePem());
            String listed = null;
            for (int i = 0; i < 100 && !want.equals(listed); i++) {
                Thread.sleep(100);
                listed = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/certs").body()).get("certificates").get(1)
                        .get("cert_chain").get(0).get("serial_number").asText();
            }
            assertEquals(want, listed);
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    /** An envoy.transport_sockets.tls transport socket (YAML flow) with this context type and common_tls_context. */
    private static String tlsSocket(String type, String common) {
        return "{name: envoy.transport_sockets.tls, typed_config: {\"@type\": "
                + "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3." + type + ", common_tls_context: {"
                + common + "}}}";
    }

    /** The serial number of a PEM certificate, in hexadecimal as Envoy prints it. */
    private static String serial(String pem) throws Exception {
        return ((java.security.cert.X509Certificate) java.security.cert.CertificateFactory.getInstance("X.509")
                .generateCertificate(new java.io.ByteArrayInputStream(pem.getBytes()))).getSerialNumber().toString(16);
    }

    @Test
    void certsMemoryRuntimeAndHotRestartVersionAnswerWhatIstioctlBugReportReads() throws Exception {
        AdminServer own = AdminServer.builder(vertx).snapshots(holder)
                .mount(new AdminServer.Mount("127.0.0.1", 0, AdminServer.Mount.admin().endpoints())).build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            HttpResponse<String> certs = get(own, "/certs");
            assertEquals(200, certs.statusCode());
            assertEquals("application/json", certs.headers().firstValue("content-type").orElse(""));
            // no TLS in the configuration: no certificate
            var certList = dev.inmesh.runtime.xds.EnvoyJson.tree(certs.body()).get("certificates");
            assertTrue(certList.isArray() && certList.isEmpty(), certs.body());

            HttpResponse<String> memory = get(own, "/memory");
            assertEquals(200, memory.statusCode());
            assertEquals("application/json", memory.headers().firstValue("content-type").orElse(""));
            var m = dev.inmesh.runtime.xds.EnvoyJson.tree(memory.body());
            assertTrue(Long.parseLong(m.get("allocated").asText()) > 0, memory.body());
            assertTrue(Long.parseLong(m.get("heap_size").asText()) >= Long.parseLong(m.get("allocated").asText()),
                    memory.body());
            assertEquals("0", m.get("total_thread_cache").asText(), memory.body());

            HttpResponse<String> runtime = get(own, "/runtime");
            assertEquals(200, runtime.statusCode());
            var r = dev.inmesh.runtime.xds.EnvoyJson.tree(runtime.body());
            assertTrue(r.get("layers").isArray() && r.get("layers").isEmpty(), runtime.body());
            assertTrue(r.get("entries").isObject() && r.get("entries").isEmpty(), runtime.body());

            assertEquals("disabled", get(own, "/hot_restart_version").body());
            assertEquals("disabled", dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/server_info").body())
                    .get("hot_restart_version").asText());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void serverInfoHasEnvoysDefaultCommandLineOptionsAndTheDrainTimeOfAServerThatDrains() throws Exception {
        AdminServer own = everything();
        AdminServer draining = AdminServer.builder(vertx).snapshots(holder)
                .drainListeners(new AdminServer.DrainListeners() {
                    @Override
                    public void drain(boolean inboundOnly, boolean graceful, boolean skipExit) {
                    }

                    @Override
                    public java.time.Duration drainTime() {
                        return Duration.ofSeconds(45);
                    }
                })
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.SERVER_INFO))
                .build();
        draining.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            String body = get(own, "/server_info").body();
            var options = dev.inmesh.runtime.xds.EnvoyJson.tree(body).get("command_line_options");
            // Envoy's defaults, not proto's zeros
            assertEquals("info", options.get("log_level").asText(), body);
            assertEquals(Runtime.getRuntime().availableProcessors(), options.get("concurrency").asInt(), body);
            assertEquals("10s", options.get("file_flush_interval").asText(), body);
            assertEquals("900s", options.get("parent_shutdown_time").asText(), body);
            assertEquals("600s", options.get("drain_time").asText(), body);
            assertEquals("Serve", options.get("mode").asText(), body);
            String drains = get(draining, "/server_info").body();
            var drainOptions = dev.inmesh.runtime.xds.EnvoyJson.tree(drains).get("command_line_options");
            assertEquals("45s", drainOptions.get("drain_time").asText(), drains);
            assertEquals("Immediate", drainOptions.get("drain_strategy").asText(), drains);
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
            draining.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void serverInfoShowsTheNodePresentedToTheXdsServerAsEnvoysLocalNode() throws Exception {
        var presented = io.envoyproxy.envoy.config.core.v3.Node.newBuilder()
                .setId("sidecar~10.0.0.1~a.default~default.svc.cluster.local").setCluster("a.default")
                .setUserAgentName("inmesh").setMetadata(com.google.protobuf.Struct.newBuilder().putFields(
                        "ISTIO_VERSION", com.google.protobuf.Value.newBuilder().setStringValue("1.24.0").build()))
                .build();
        AdminServer own = AdminServer.builder(vertx).snapshots(holder).nodeId("ignored-when-presented")
                .node(() -> presented)
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.SERVER_INFO,
                        AdminServer.Endpoint.CONFIG_DUMP))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            var node = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/server_info").body()).get("node");
            assertEquals("sidecar~10.0.0.1~a.default~default.svc.cluster.local", node.get("id").asText());
            assertEquals("a.default", node.get("cluster").asText());
            assertEquals("inmesh", node.get("user_agent_name").asText());
            assertEquals("1.24.0", node.get("metadata").get("ISTIO_VERSION").asText());
            // the same node as the config dump's bootstrap
            var bootstrap = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/config_dump?mask=bootstrap").body())
                    .get("configs").get(0).get("bootstrap").get("node");
            assertEquals(bootstrap.get("metadata"), node.get("metadata"));
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    /** Without an xDS server Envoy's local node still names its user agent and version, beside the node id. */
    @Test
    void serverInfoWithoutAnXdsServerShowsTheNodeIdAndTheProxysUserAgent() throws Exception {
        AdminServer own = AdminServer.builder(vertx).snapshots(holder).nodeId("sidecar~127.0.0.1~a.default~x")
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.SERVER_INFO,
                        AdminServer.Endpoint.CONFIG_DUMP))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            var node = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/server_info").body()).get("node");
            assertEquals("sidecar~127.0.0.1~a.default~x", node.get("id").asText());
            assertEquals("inmesh", node.get("user_agent_name").asText());
            // tests run from classes without a jar manifest: the version is "dev", not a semantic version
            assertEquals("dev", node.get("user_agent_version").asText(), node.toString());
            var bootstrap = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/config_dump?mask=bootstrap").body())
                    .get("configs").get(0).get("bootstrap").get("node");
            assertEquals(node.get("id"), bootstrap.get("id"));
            assertEquals(node.get("user_agent_name"), bootstrap.get("user_agent_name"));
            assertEquals(node.get("user_agent_version"), bootstrap.get("user_agent_version"));
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void serverInfoHasCommandLineOptionsWithoutAFileAndTheImmediateDrainOfAServerThatDrains() throws Exception {
        AdminServer own = AdminServer.builder(vertx).snapshots(holder).registry(registry)
                .drainListeners((inbound, graceful, skipExit) -> { })
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.SERVER_INFO))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            String body = get(own, "/server_info").body();
            var options = dev.inmesh.runtime.xds.EnvoyJson.tree(body).get("command_line_options");
            assertTrue(options != null && options.isObject(), "always there, as Envoy's: " + body);
            assertEquals("", options.get("config_path").asText(), body);
            assertTrue(options.get("disable_hot_restart").asBoolean(), body);
            // what /drain_listeners?graceful runs: Istio's --drain-strategy immediate
            assertEquals("Immediate", options.get("drain_strategy").asText(), body);
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void serverInfoListenersAndHelpAnswerAsEnvoys() throws Exception {
        AdminServer own = everything();
        try {
            var before = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/server_info").body());
            assertEquals("PRE_INITIALIZING", before.get("state").asText());
            holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));

            HttpResponse<String> info = get(own, "/server_info");
            assertEquals("application/json", info.headers().firstValue("content-type").orElse(""));
            var json = dev.inmesh.runtime.xds.EnvoyJson.tree(info.body());
            assertEquals("LIVE", json.get("state").asText());
            assertTrue(json.get("version").asText().startsWith("inmesh/"), info.body());
            assertTrue(json.get("uptime_current_epoch").asText().endsWith("s"), info.body());
            assertEquals("/etc/inmesh/mesh.yaml", json.get("command_line_options").get("config_path").asText());
            // Inmesh has no hot restart (as Istio's sidecars' --disable-hot-restart) and drains nothing here
            assertTrue(json.get("command_line_options").get("disable_hot_restart").asBoolean(), info.body());
            assertEquals("Gradual", json.get("command_line_options").get("drain_strategy").asText());
            assertEquals("sidecar~10.0.0.1~a.default~default.svc.cluster.local", json.get("node").get("id").asText());

            assertEquals("0.0.0.0_9080::0.0.0.0:9080\n10.96.0.9_3306::10.96.0.9:3306\n", get(own, "/listeners").body());
            var listeners = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/listeners?format=json").body());
            assertEquals(9080, listeners.get("listener_statuses").get(0).get("local_address").get("socket_address")
                    .get("port_value").asInt());

            String help = get(own, "/help").body();
            assertTrue(help.startsWith("admin commands are:\n"), help);
            assertTrue(help.contains("  /stats: "), help);
            assertTrue(help.contains("  /server_info: "), help);
            assertTrue(!help.contains("/config_dump"), "only what this port serves: " + help);
            assertEquals(help, get(own, "/").body());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void listenersListEveryAddressOfADualStackListenerAsEnvoy() throws Exception {
        // the TCP listener also on an IPv6 address, as istiod writes a dual-stack pod's
        holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES.replace(
                "address: {socket_address: {address: 10.96.0.9, port_value: 3306}}\n",
                "address: {socket_address: {address: 10.96.0.9, port_value: 3306}}\n  additional_addresses: "
                        + "[{address: {socket_address: {address: \"fd00::9\", port_value: 3306}}}]\n")));
        AdminServer own = everything();
        try {
            assertEquals("0.0.0.0_9080::0.0.0.0:9080\n10.96.0.9_3306::10.96.0.9:3306\n"
                    + "10.96.0.9_3306::[fd00::9]:3306\n", get(own, "/listeners").body());
            var status = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/listeners?format=json").body())
                    .get("listener_statuses").get(1);
            assertEquals("10.96.0.9", status.get("local_address").get("socket_address").get("address").asText());
            assertEquals("fd00::9", status.get("additional_local_addresses").get(0).get("socket_address")
                    .get("address").asText(), status.toString());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void configDumpServesTheCurrentSnapshotAndLoadsBack() throws Exception {
        holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));

        HttpResponse<String> r = get(0, "/config_dump");

        assertEquals(200, r.statusCode());
        assertEquals("application/json", r.headers().firstValue("content-type").orElse(""));
        var back = EnvoyConfigReader.read(r.body());
        assertEquals(holder.current().resources().listeners(), back.listeners());
        assertEquals(holder.current().resources().routes(), back.routes());
    }

    @Test
    void anEndpointNotMountedOnAPortIsNotFoundThere() throws Exception {
        assertEquals(404, get(1, "/config_dump").statusCode());
        assertEquals(404, get(0, "/healthz/ready").statusCode());
        assertEquals(404, get(0, "/quitquitquit").statusCode());
    }

    @Test
    void anUnknownPathOnTheHealthPortIsEnvoysListenersEmpty404() throws Exception {
        // mount 1 serves /healthz/ready alone, as Istio's bootstrap listener on 15021 routes it
        HttpResponse<String> r = get(1, "/no_such_thing");
        assertEquals(404, r.statusCode());
        assertEquals("", r.body());
    }

    @Test
    void anUnknownPathAnswers404WithTheListOfWhatThePortServesAsEnvoy() throws Exception {
        HttpResponse<String> r = get(0, "/no_such_thing?x=1");

        assertEquals(404, r.statusCode());
        assertEquals("text/plain; charset=UTF-8", r.headers().firstValue("content-type").orElse(""));
        assertEquals("invalid path. admin commands are:\n"
                + "  /clusters: upstream clusters and hosts (param: format=json)\n"
                + "  /config_dump: the current configuration as Envoy's ConfigDump "
                + "(params: include_eds, resource, mask, name_regex)\n"
                + "  /ready: the server state, 200 if LIVE, otherwise 503\n"
                + "  /stats/prometheus: Istio's metrics and the Envoy statistics in Prometheus' text format "
                + "(params: filter, usedonly)\n",
                r.body());
    }

    @Test
    void everyAdminAnswerHasEnvoysFallbackHeadersAndKeepsTheEndpointsOwn() throws Exception {
        holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));
        for (String path : List.of("/ready", "/clusters", "/config_dump", "/stats/prometheus", "/no_such_thing")) {
            HttpResponse<String> r = get(0, path);
            assertEquals(List.of("no-cache, max-age=0"), r.headers().allValues("cache-control"), path);
            assertEquals(List.of("nosniff"), r.headers().allValues("x-content-type-options"), path);
        }
        // a text answer names no content type of its own: Envoy's default; a JSON one keeps its own
        assertEquals("text/plain; charset=UTF-8", get(0, "/ready").headers().firstValue("content-type").orElse(""));
        assertEquals("text/plain; charset=UTF-8", get(0, "/clusters").headers().firstValue("content-type")
                .orElse(""));
        assertEquals("application/json", get(0, "/config_dump").headers().firstValue("content-type").orElse(""));
        assertEquals("text/plain; charset=UTF-8", get(0, "/stats/prometheus").headers().firstValue("content-type")
                .orElse(""));
        // the health port's /healthz/ready is Istio's agent's empty answer, and an unknown path there Envoy's
        // listener's empty 404: neither is the admin's
        for (String path : List.of("/healthz/ready", "/no_such_thing")) {
            HttpResponse<String> r = get(1, path);
            assertEquals(java.util.Optional.empty(), r.headers().firstValue("cache-control"), path);
            assertEquals(java.util.Optional.empty(), r.headers().firstValue("x-content-type-options"), path);
        }
    }

    private HttpResponse<String> send(AdminServer server, String method, String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port(0) + path))
                .method(method, HttpRequest.BodyPublishers.noBody()).timeout(Duration.ofSeconds(10)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void profilersReopenLogsAndRecentLookupsAnswerAsAnEnvoyBuiltWithoutProfilers() throws Exception {
        AdminServer own = AdminServer.builder(vertx).snapshots(holder)
                .mount(new AdminServer.Mount("127.0.0.1", 0, AdminServer.Mount.admin().endpoints())).build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            // each request with the status and body Envoy answers: GET refused where they change the server's state
            String[][] answers = {
                {"GET", "/cpuprofiler", "405", "Method GET not allowed, POST required."},
                {"GET", "/heapprofiler", "405", "Method GET not allowed, POST required."},
                {"GET", "/reopen_logs", "405", "Method GET not allowed, POST required."},
                {"POST", "/cpuprofiler?enable=y", "500", "failure to start the profiler"},
                {"POST", "/cpuprofiler?enable=n", "200", "OK\n"},
                {"POST", "/cpuprofiler", "400", "?enable=<y|n>\n"},
                {"POST", "/cpuprofiler?enable=yes", "400", "?enable=<y|n>\n"},
                {"POST", "/cpuprofiler?enable=y&x=1", "400", "?enable=<y|n>\n"},
                {"POST", "/heapprofiler?enable=y", "501", "The current build does not support heap profiler"},
                {"POST", "/reopen_logs", "200", "OK\n"},
                {"GET", "/stats/recentlookups", "200",
                    "Lookup tracking is not enabled. Use /stats/recentlookups/enable to enable.\n\ntotal: 0\n"},
            };
            for (String[] a : answers) {
                HttpResponse<String> r = send(own, a[0], a[1]);
                assertEquals(Integer.parseInt(a[2]), r.statusCode(), a[0] + " " + a[1]);
                assertEquals(a[3], r.body(), a[0] + " " + a[1]);
            }
            String help = get(own, "/help").body();
            assertTrue(help.contains("  /cpuprofiler (POST): ") && help.contains("  /reopen_logs (POST): ")
                    && help.contains("  /stats/recentlookups: "), help);
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void quitquitquitAnswersOkToAPostThenRunsTheQuitActionAndRefusesOtherMethodsAsEnvoy() throws Exception {
        java.util.concurrent.CountDownLatch quit = new java.util.concurrent.CountDownLatch(1);
        AdminServer own = AdminServer.builder(vertx).snapshots(holder).quit(quit::countDown)
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.QUITQUITQUIT,
                        AdminServer.Endpoint.READY, AdminServer.Endpoint.HELP))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            HttpResponse<String> wrong = send(own, "GET", "/quitquitquit");
            assertEquals(405, wrong.statusCode());
            assertEquals("Method GET not allowed, POST required.", wrong.body());
            assertEquals(405, send(own, "PUT", "/quitquitquit").statusCode());
            assertEquals(1, quit.getCount(), "a refused request does not quit");
            assertEquals("admin commands are:\n"
                    + "  /help: this list\n"
                    + "  /quitquitquit (POST): exit the server\n"
                    + "  /ready: the server state, 200 if LIVE, otherwise 503\n",
                    get(own, "/help").body());

            HttpResponse<String> ok = send(own, "POST", "/quitquitquit");

            assertEquals(200, ok.statusCode());
            assertEquals("OK\n", ok.body());
            assertTrue(quit.await(10, TimeUnit.SECONDS), "the quit action ran");
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void drainListenersTakesEnvoysParametersOnAPostOnlyAndRefusesSkipExitWithoutGraceful() throws Exception {
        List<String> drains = new java.util.concurrent.CopyOnWriteArrayList<>();
        AdminServer own = drainingServer(drains, AdminServer.Endpoint.HELP);
        try {
            HttpResponse<String> wrong = send(own, "GET", "/drain_listeners?graceful");
            assertEquals(405, wrong.statusCode());
            assertEquals("Method GET not allowed, POST required.", wrong.body());
            HttpResponse<String> refused = send(own, "POST", "/drain_listeners?skip_exit");
            assertEquals(400, refused.statusCode());
            assertEquals("skip_exit requires graceful\n", refused.body());
            assertEquals(List.of(), drains, "a refused request drains nothing");

            HttpResponse<String> ok = send(own, "POST", "/drain_listeners?inboundonly&graceful");
            assertEquals(200, ok.statusCode());
            assertEquals("OK\n", ok.body());
            assertEquals(200, send(own, "POST", "/drain_listeners").statusCode());
            assertEquals(200, send(own, "POST", "/drain_listeners?graceful&skip_exit").statusCode());
            assertEquals(List.of("true true false", "false false false", "false true true"), drains);
            assertTrue(get(own, "/help").body().contains(
                    "  /drain_listeners (POST): drain listeners (params: inboundonly, graceful, skip_exit)\n"));
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theAgentPortsDrainIsASidecarsGracefulInboundDrainThatNeverStopsTheListenersOnAPostOnly() throws Exception {
        // Istio's agent's /drain (Kubernetes native sidecars): drain_listeners?inboundonly&graceful&skip_exit
        List<String> drains = new java.util.concurrent.CopyOnWriteArrayList<>();
        AdminServer own = AdminServer.builder(vertx).snapshots(holder)
                .drainListeners((inbound, graceful, skipExit) -> drains.add(inbound + " " + graceful + " " + skipExit))
                .mount(new AdminServer.Mount("127.0.0.1", 0, AdminServer.Mount.agent().endpoints()))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            HttpResponse<String> wrong = send(own, "GET", "/drain");
            assertEquals(405, wrong.statusCode());
            assertEquals("Method Not Allowed\n", wrong.body());
            HttpResponse<String> ok = send(own, "POST", "/drain");
            assertEquals(200, ok.statusCode());
            assertEquals("OK", ok.body());
            for (int i = 0; i < 100 && drains.isEmpty(); i++) {
                Thread.sleep(20);
            }
            assertEquals(List.of("true true true"), drains);
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    /** A started admin server with /drain_listeners, which records each drain in {@code drains}, and {@code also}. */
    private AdminServer drainingServer(List<String> drains, AdminServer.Endpoint also) throws Exception {
        AdminServer own = AdminServer.builder(vertx).snapshots(holder)
                .drainListeners((inbound, graceful, skipExit) -> drains.add(inbound + " " + graceful + " " + skipExit))
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.DRAIN_LISTENERS, also))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        return own;
    }

    private HttpResponse<String> post(AdminServer server, String path, String contentType, String body)
            throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port(0) + path))
                .header("content-type", contentType).POST(HttpRequest.BodyPublishers.ofString(body))
                .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A configuration with Istio's runtime layers (a static one, then the admin layer) and one route table. */
    private static final String RUNTIME_BOOTSTRAP = """
            layered_runtime:
              layers:
              - {name: global config, static_layer: {re2.max_program_size.error_level: "32768", rk: {zero: 100}}}
              - {name: admin, admin_layer: {}}
            static_resources: {}
            ---
            """;

    @Test
    void runtimeShowsTheLayersAndRuntimeModifySetsTheAdminLayersValuesAsEnvoys() throws Exception {
        holder.apply(EnvoyConfigReader.read(RUNTIME_BOOTSTRAP + ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));
        AdminServer own = serving(AdminServer.Endpoint.RUNTIME, AdminServer.Endpoint.RUNTIME_MODIFY);
        try {
            var before = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/runtime").body());
            assertEquals("[\"global config\",\"admin\"]", before.get("layers").toString());
            assertEquals("{\"layer_values\":[\"100\",\"\"],\"final_value\":\"100\"}",
                    before.get("entries").get("rk.zero").toString());
            assertEquals("32768", before.get("entries").get("re2.max_program_size.error_level").get("final_value")
                    .asText());

            assertEquals(405, send(own, "GET", "/runtime_modify?rk.zero=0").statusCode());
            HttpResponse<String> usage = send(own, "POST", "/runtime_modify");
            assertEquals(400, usage.statusCode());
            assertTrue(usage.body().startsWith("usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n"),
                    usage.body());
            HttpResponse<String> set = send(own, "POST", "/runtime_modify?rk.zero=0&new.key=on");
            assertEquals(200, set.statusCode(), set.body());
            assertEquals("OK\n", set.body());
            var after = dev.inmesh.runtime.xds.EnvoyJson.tree(get(own, "/runtime").body());
            assertEquals("{\"layer_values\":[\"100\",\"0\"],\"final_value\":\"0\"}",
                    after.get("entries").get("rk.zero").toString());
            assertEquals("on", after.get("entries").get("new.key").get("final_value").asText());
            assertEquals(0, holder.current().runtime().integer("rk.zero", 7));
            // as form values, and an empty value removes the admin layer's
            HttpResponse<String> form = post(own, "/runtime_modify", "application/x-www-form-urlencoded",
                    "rk.zero=");
            assertEquals(200, form.statusCode(), form.body());
            assertEquals(100, holder.current().runtime().integer("rk.zero", 7));
            HttpResponse<String> bad = send(own, "POST", "/runtime_modify?k=%7Ba%3A%20%5B%7D");
            assertEquals(503, bad.statusCode());
            assertTrue(bad.body().startsWith("Unable to parse YAML"), bad.body());

            // a configuration without an admin layer: Envoy's 503
            holder.apply(EnvoyConfigReader.read(ConfigDumpBuilderTest.LISTENERS_AND_ROUTES));
            HttpResponse<String> none = send(own, "POST", "/runtime_modify?rk.zero=0");
            assertEquals(503, none.statusCode());
            assertEquals("No admin layer specified", none.body());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aFormsBodyIsTheParametersWhenTheQueryHasNoneAsEnvoysAdmin() throws Exception {
        List<String> drains = new java.util.concurrent.CopyOnWriteArrayList<>();
        AdminServer own = drainingServer(drains, AdminServer.Endpoint.LOGGING);
        String form = "application/x-www-form-urlencoded";
        try {
            // curl -XPOST -d 'upstream=debug' :15000/logging
            HttpResponse<String> logging = post(own, "/logging", form, "upstream=debug");
            assertEquals(200, logging.statusCode(), logging.body());
            assertTrue(logging.body().contains("\n  upstream: debug\n"), logging.body());
            HttpResponse<String> bad = post(own, "/logging", form, "upstream=loud");
            assertEquals(400, bad.statusCode());
            assertTrue(bad.body().startsWith("error: unknown logger level\n"), bad.body());

            assertEquals("skip_exit requires graceful\n", post(own, "/drain_listeners", form, "skip_exit").body());
            assertEquals(200, post(own, "/drain_listeners", form, "inboundonly&graceful").statusCode());
            // a query's parameters, even an empty one, leave the body unread; so does another content type
            assertEquals(200, post(own, "/drain_listeners?graceful", form, "skip_exit").statusCode());
            assertEquals(200, post(own, "/drain_listeners?inboundonly=", form, "graceful").statusCode());
            assertEquals(200, post(own, "/drain_listeners", "text/plain", "skip_exit").statusCode());
            assertEquals(200, post(own, "/drain_listeners", form + "; charset=UTF-8", "skip_exit").statusCode());
            assertEquals(List.of("true true false", "false true false", "true false false", "false false false",
                    "false false false"), drains);

            HttpResponse<String> large = post(own, "/drain_listeners", form,
                    "graceful=" + "x".repeat(AdminServer.FORM_LIMIT));
            assertEquals(413, large.statusCode());
            assertEquals("Payload Too Large", large.body());
            assertEquals(5, drains.size(), "nothing drained");
        } finally {
            send(own, "POST", "/logging?level=info");
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void drainListenersIsNotServedWithoutADrainAction() throws Exception {
        AdminServer own = serving(AdminServer.Endpoint.DRAIN_LISTENERS);
        try {
            assertEquals(404, send(own, "POST", "/drain_listeners").statusCode());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void quitquitquitIsNotServedWithoutAQuitAction() throws Exception {
        AdminServer own = AdminServer.builder(vertx).snapshots(holder)
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.QUITQUITQUIT,
                        AdminServer.Endpoint.HELP))
                .build();
        own.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            HttpResponse<String> r = send(own, "POST", "/quitquitquit");
            assertEquals(404, r.statusCode());
            assertEquals("invalid path. admin commands are:\n  /help: this list\n", r.body());
        } finally {
            own.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void onlyALoopbackPeerMayQuit() {
        assertTrue(AdminServer.loopback("127.0.0.1"));
        assertTrue(AdminServer.loopback("127.0.0.6"));
        assertTrue(AdminServer.loopback("::1"));
        assertTrue(AdminServer.loopback("0:0:0:0:0:0:0:1"));
        assertTrue(AdminServer.loopback("::ffff:127.0.0.1"), "as a dual-stack socket reports an IPv4 peer");
        assertTrue(!AdminServer.loopback("10.244.0.12"));
        assertTrue(!AdminServer.loopback("fd00::1"));
        assertTrue(!AdminServer.loopback("localhost"), "a name, not an address: never resolved");
        assertTrue(!AdminServer.loopback(null));
    }

    @Test
    void aPortInUseFailsTheStartAndReleasesTheOthers() throws Exception {
        AdminServer clash = AdminServer.builder(vertx).snapshots(holder)
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.READY))
                .mount(AdminServer.Mount.of("127.0.0.1", admin.port(0), AdminServer.Endpoint.READY))
                .build();
        var result = clash.start().toCompletionStage().toCompletableFuture();
        try {
            result.get(10, TimeUnit.SECONDS);
            throw new AssertionError("expected the second bind to fail");
        } catch (java.util.concurrent.ExecutionException expected) {
            // the port is taken by the server under test
        }
        assertEquals(200, get(0, "/clusters").statusCode(), "the first server still serves");
    }

    @Test
    void aSlowClusterStatusDoesNotHoldUpOtherRequests() throws Exception {
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        AdminServer slow = AdminServer.builder(vertx).snapshots(holder)
                .clusterStatus(() -> {
                    try {
                        release.await(10, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return List.of("c::added_via_api::true");
                })
                .mount(AdminServer.Mount.of("127.0.0.1", 0, AdminServer.Endpoint.CLUSTERS,
                        AdminServer.Endpoint.READY))
                .build();
        slow.start().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        try {
            String base = "http://127.0.0.1:" + slow.port(0);
            var clusters = http.sendAsync(HttpRequest.newBuilder(URI.create(base + "/clusters")).build(),
                    HttpResponse.BodyHandlers.ofString());
            Thread.sleep(100);

            HttpResponse<String> ready = http.send(HttpRequest.newBuilder(URI.create(base + "/ready"))
                    .timeout(Duration.ofSeconds(2)).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(503, ready.statusCode());
            assertTrue(!clusters.isDone(), "the cluster status is still being gathered");

            release.countDown();
            assertEquals("c::added_via_api::true\n", clusters.get(10, TimeUnit.SECONDS).body());
        } finally {
            release.countDown();
            slow.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void presetMountsUseIstiosPorts() {
        // every endpoint but the agent port's own ones, which Envoy's admin does not serve
        assertEquals(new AdminServer.Mount("127.0.0.1", 15000, java.util.EnumSet.complementOf(java.util.EnumSet.of(
                AdminServer.Endpoint.APP_METRICS, AdminServer.Endpoint.APP_PROBES, AdminServer.Endpoint.AGENT_DRAIN))),
                AdminServer.Mount.admin());
        assertEquals(java.util.Set.of(AdminServer.Endpoint.HEALTHZ_READY), AdminServer.Mount.health().endpoints());
        assertEquals(15021, AdminServer.Mount.health().port());
        assertEquals(15090, AdminServer.Mount.prometheus().port());
        assertEquals(15020, AdminServer.Mount.agent().port());
        assertEquals(java.util.Set.of(AdminServer.Endpoint.STATS_PROMETHEUS, AdminServer.Endpoint.HEALTHZ_READY,
                AdminServer.Endpoint.QUITQUITQUIT, AdminServer.Endpoint.AGENT_DRAIN, AdminServer.Endpoint.APP_METRICS,
                AdminServer.Endpoint.APP_PROBES), AdminServer.Mount.agent().endpoints());
    }
}
