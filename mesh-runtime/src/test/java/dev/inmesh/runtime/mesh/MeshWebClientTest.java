package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.core.buffer.Buffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MeshWebClientTest {
    Vertx vertx;
    /** A plain client (not the mesh's), held for the whole test: Vert.x closes a client no longer referenced. */
    WebClient plain;
    List<HttpServer> servers = new ArrayList<>();
    Mesh mesh;
    List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    @TempDir
    Path dir;

    @BeforeEach
    void setUp() {
        vertx = Vertx.vertx();
        plain = WebClient.create(vertx);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A server on 127.0.0.1 that answers {@code status} with its own name in the body and echoes some headers. */
    int server(String name, int status) throws Exception {
        HttpServer s = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> req.response()
                .setStatusCode(status)
                .putHeader("x-served-by", name)
                .putHeader("x-seen-host", String.valueOf(req.authority()))
                .putHeader("x-seen-path", req.uri())
                .putHeader("x-seen-attempt", String.valueOf(req.getHeader("x-envoy-attempt-count")))
                .putHeader("x-seen-request-id", String.valueOf(req.getHeader("x-request-id")))
                .end(name + ":" + body.length())));
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(s);
        return s.actualPort();
    }

    /** A server on 127.0.0.1 that answers the names of the headers it got, sorted, comma-separated. */
    int headerNamesServer() throws Exception {
        HttpServer s = vertx.createHttpServer().requestHandler(req -> req.response()
                .end(String.join(",", new java.util.TreeSet<>(req.headers().names()))));
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(s);
        return s.actualPort();
    }

    Mesh mesh(String config) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, config);
        DefaultMesh m = (DefaultMesh) Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1")
                .setApp("productpage").setVersion("v1").setConfigFile(file.toString()).setAdminPort(-1));
        m.addObserver(recorded::add);
        m.start().await(10, TimeUnit.SECONDS);
        mesh = m;
        return m;
    }

    /** {@code config} with these fields of its outbound connection manager, each a line after its stat_prefix. */
    static String withManagerFields(String config, String... fields) {
        StringBuilder lines = new StringBuilder("stat_prefix: outbound_0.0.0.0_9080\n");
        for (String f : fields) {
            lines.append("          ").append(f).append('\n');
        }
        return config.replace("stat_prefix: outbound_0.0.0.0_9080\n", lines);
    }

    static String config(String retry, int... ports) {
        StringBuilder endpoints = new StringBuilder();
        for (int p : ports) {
            endpoints.append("          - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ")
                    .append(p).append("}}}\n");
        }
        return """
                static_resources:
                  listeners:
                  - name: 0.0.0.0_9080
                    address: {socket_address: {address: 0.0.0.0, port_value: 9080}}
                    bind_to_port: false
                    traffic_direction: OUTBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: outbound_0.0.0.0_9080
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                          route_config:
                            name: "9080"
                            ignore_port_in_host_matching: true
                            virtual_hosts:
                            - name: reviews.default.svc.cluster.local:9080
                              domains: [reviews, reviews.default.svc.cluster.local]
                              include_request_attempt_count: true
                              routes:
                              - name: default
                                match: {prefix: /}
                                route:
                                  cluster: outbound|9080||reviews.default.svc.cluster.local
                                  timeout: 0s
                """ + retry + """
                  clusters:
                  - name: outbound|9080||reviews.default.svc.cluster.local
                    type: STATIC
                    connect_timeout: 1s
                    lb_policy: ROUND_ROBIN
                    load_assignment:
                      cluster_name: outbound|9080||reviews.default.svc.cluster.local
                      endpoints:
                      - lb_endpoints:
                """ + endpoints;
    }

    /**
     * A {@code virtualInbound} listener with one HTTP chain: {@code hcmField} one more line of its connection
     * manager (or empty), {@code virtualHostRest} the lines of its one virtual host after its domains.
     */
    static String virtualInbound(String hcmField, String virtualHostRest) {
        return """
                static_resources:
                  listeners:
                  - name: virtualInbound
                    address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                    use_original_dst: true
                    traffic_direction: INBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: inbound_0.0.0.0_9080
                          %s
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                          route_config:
                            name: inbound|9080||
                            validate_clusters: false
                            virtual_hosts:
                            - name: inbound|http|9080
                              domains: ["*"]
                """.formatted(hcmField) + virtualHostRest;
    }

    static final String ISTIO_RETRY = """
                                  retry_policy:
                                    retry_on: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes
                                    num_retries: 2
                                    retriable_status_codes: [503]
                                    retry_host_predicate:
                                    - name: envoy.retry_host_predicates.previous_hosts
                                    host_selection_retry_max_attempts: 5
                """;

    @Test
    void aRequestToAServiceNameIsRoutedToAnEndpointOfItsCluster() throws Exception {
        int a = server("reviews-a", 200);
        mesh(config("", a));
        WebClient client = mesh.webClient();
        HttpResponse<Buffer> r = client.get(9080, "reviews", "/reviews/0").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("reviews-a:0", r.bodyAsString());
        assertEquals("reviews:9080", r.getHeader("x-seen-host"));
        assertEquals("1", r.getHeader("x-seen-attempt"));
        assertNotNull(r.getHeader("x-envoy-upstream-service-time"));
        assertEquals(36, r.getHeader("x-seen-request-id").length());
    }

    @Test
    void aVirtualServicesCorsPolicyAnswersPreflightsAndMarksAnswersAsItsSidecarWould() throws Exception {
        int a = server("reviews-a", 200);
        // as istiod writes a VirtualService's corsPolicy: the CORS filter before the router, the policy in the route
        String policy = "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy, "
                + "allow_origin_string_match: [{exact: \"https://shop.example\"}], allow_methods: \"GET,POST\", "
                + "max_age: \"600\", filter_enabled: {default_value: {numerator: 100}}}";
        String corsFilter = "          - {name: envoy.filters.http.cors, typed_config: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}\n";
        mesh(config("                typed_per_filter_config: {envoy.filters.http.cors: " + policy + "}\n", a)
                .replace("          http_filters:\n", "          http_filters:\n" + corsFilter));
        WebClient client = mesh.webClient();
        HttpResponse<Buffer> preflight = client.request(io.vertx.core.http.HttpMethod.OPTIONS, 9080, "reviews", "/")
                .putHeader("origin", "https://shop.example").putHeader("access-control-request-method", "POST")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals(200, preflight.statusCode());
        assertEquals("https://shop.example", preflight.getHeader("access-control-allow-origin"));
        assertEquals("GET,POST", preflight.getHeader("access-control-allow-methods"));
        assertEquals("600", preflight.getHeader("access-control-max-age"));
        assertNull(preflight.getHeader("x-served-by")); // answered by the mesh, not the service
        HttpResponse<Buffer> actual = client.get(9080, "reviews", "/").putHeader("origin", "https://shop.example")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals("reviews-a", actual.getHeader("x-served-by"));
        assertEquals("https://shop.example", actual.getHeader("access-control-allow-origin"));
        HttpResponse<Buffer> other = client.get(9080, "reviews", "/").putHeader("origin", "https://evil.example")
                .send().await(10, TimeUnit.SECONDS);
        assertNull(other.getHeader("access-control-allow-origin"));
        for (int i = 0; i < 100 && recorded.size() < 3; i++) {
            Thread.sleep(20);
        }
        assertEquals(List.of("cors_response", "via_upstream", "via_upstream"), recorded.stream()
                .map(s -> s.responseCodeDetails()).toList());
        assertEquals("outbound|9080||reviews.default.svc.cluster.local", recorded.get(0).upstreamCluster());
    }

    @Test
    void aVirtualServicesFaultDelaysAndAbortsTheApplicationsCallsAsItsSidecarWould() throws Exception {
        int a = server("reviews-a", 200);
        // as istiod writes a VirtualService's fault: an empty fault filter before the router, the fault in the route
        mesh(config("""
                                typed_per_filter_config:
                                  envoy.filters.http.fault:
                                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                                    headers: [{name: end-user, string_match: {exact: jason}}]
                                    delay: {fixed_delay: 0.3s, percentage: {numerator: 1000000, denominator: MILLION}}
                                    abort: {http_status: 500, percentage: {numerator: 1000000, denominator: MILLION}}
                """, a).replace("          http_filters:\n", """
                          http_filters:
                          - name: envoy.filters.http.fault
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                """));
        WebClient client = mesh.webClient();
        assertEquals(200, client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS).statusCode());
        long t0 = System.nanoTime();
        HttpResponse<Buffer> jason = client.get(9080, "reviews", "/").putHeader("end-user", "jason").send()
                .await(10, TimeUnit.SECONDS);
        long took = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(500, jason.statusCode());
        assertEquals("fault filter abort", jason.bodyAsString());
        assertNull(jason.getHeader("x-served-by"));
        assertTrue(took >= 300 && took < 4_000, "took " + took + " ms");
        for (int i = 0; i < 100 && recorded.size() < 2; i++) {
            Thread.sleep(20);
        }
        assertEquals(List.of("-", "DI,FI"), recorded.stream().map(s -> ResponseFlag.format(s.responseFlags()))
                .toList());
        assertEquals("outbound|9080||reviews.default.svc.cluster.local", recorded.get(1).upstreamCluster());
    }

    @Test
    void aConnectionManagerWithGenerateRequestIdOffSendsNoneOfItsOwn() throws Exception {
        int a = server("reviews-a", 200);
        mesh(withManagerFields(config("", a), "generate_request_id: false"));
        WebClient client = mesh.webClient();
        assertEquals("null", client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS)
                .getHeader("x-seen-request-id"));
        // the caller's own still goes through
        assertEquals("mine", client.get(9080, "reviews", "/").putHeader("x-request-id", "mine").send()
                .await(10, TimeUnit.SECONDS).getHeader("x-seen-request-id"));
    }

    @Test
    void aConnectionManagerThatAlwaysSetsTheRequestIdInTheResponseDoesSoOutboundAndInbound() throws Exception {
        int a = server("reviews-a", 200);
        mesh(withManagerFields(config("", a), "always_set_request_id_in_response: true"));
        var out = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(out.getHeader("x-seen-request-id"), out.getHeader("x-request-id"), "the id the upstream saw");
        assertEquals(36, out.getHeader("x-request-id").length());

        Mesh m = inboundMesh("inbound-always.yaml", "always_set_request_id_in_response: true");
        try {
            int port = requestIdEchoingService(m);
            var in = plain.get(port, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS);
            assertEquals(in.bodyAsString(), in.getHeader("x-request-id"), "the id the service saw, over its own");
            assertEquals("mine", plain.get(port, "127.0.0.1", "/").putHeader("x-request-id", "mine")
                    .send().await(10, TimeUnit.SECONDS).getHeader("x-request-id"));
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theOutboundConnectionManagersStreamIdleTimeoutCutsIdleStreamsNotTrickles() throws Exception {
        HttpServer app = vertx.createHttpServer().requestHandler(req -> {
            if (req.path().equals("/slow")) {
                vertx.setTimer(3000, t -> req.response().end("late"));
                return;
            }
            // ten chunks 100 ms apart: a second of body, each chunk activity
            req.response().setChunked(true).write("0");
            int[] n = {1};
            vertx.setPeriodic(100, id -> {
                req.response().write(Integer.toString(n[0]++));
                if (n[0] == 10) {
                    vertx.cancelTimer(id);
                    req.response().end();
                }
            });
        });
        app.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(app);
        mesh(withManagerFields(config("", app.actualPort()), "stream_idle_timeout: 0.4s"));
        WebClient client = mesh.webClient();
        HttpResponse<Buffer> slow = client.get(9080, "reviews", "/slow").send().await(10, TimeUnit.SECONDS);
        assertEquals(504, slow.statusCode(), "a whole request: Envoy's 504, not 408");
        assertEquals("stream timeout", slow.bodyAsString());
        HttpResponse<Buffer> trickle = client.get(9080, "reviews", "/trickle").send().await(10, TimeUnit.SECONDS);
        assertEquals("0123456789", trickle.bodyAsString());
        for (int i = 0; i < 100 && recorded.size() < 2; i++) {
            Thread.sleep(20);
        }
        assertEquals("SI", ResponseFlag.format(recorded.get(0).responseFlags()));
        assertEquals("-", ResponseFlag.format(recorded.get(1).responseFlags()));
    }

    @Test
    void theOutboundConnectionManagersPathNormalizationAppliesBeforeRoutingAndUpstream() throws Exception {
        int a = server("reviews-a", 200);
        mesh(withManagerFields(config("", a), "normalize_path: true", "merge_slashes: true"));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/public/%2e%2e//reviews/./0?q=/../")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("/reviews/0?q=/../", r.getHeader("x-seen-path"));
    }

    @Test
    void unescapeAndRedirectAnswersAnEscapedSlash307ToTheNormalizedPathOnBothSides() throws Exception {
        // as Envoy Gateway writes its listeners: the client asks again with the path every party reads alike
        int a = server("reviews-a", 200);
        String field = "path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT";
        mesh(withManagerFields(config("", a), "normalize_path: true", field));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/reviews%2F0?q=%2F").followRedirects(false)
                .send().await(10, TimeUnit.SECONDS);
        assertEquals(307, r.statusCode());
        assertEquals("/reviews/0?q=%2F", r.getHeader("location"));
        assertNull(r.getHeader("x-served-by"), "not routed");
        HttpResponse<Buffer> followed = mesh.webClient().get(9080, "reviews", "/reviews%2F0?q=%2F").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, followed.statusCode());
        assertEquals("/reviews/0?q=%2F", followed.getHeader("x-seen-path"));
        HttpResponse<Buffer> grpc = mesh.webClient().post(9080, "reviews", "/pkg.Svc%2FCall")
                .putHeader("content-type", "application/grpc").followRedirects(false).send()
                .await(10, TimeUnit.SECONDS);
        assertNull(grpc.getHeader("location"), "a gRPC client cannot follow it: refused");
        assertEquals("13", grpc.getHeader("grpc-status"), "a 400, as gRPC's INTERNAL");
        // counted as Envoy's connection manager counts them: the two redirects, the gRPC request refused
        assertEquals(2, hcmStat(mesh, "outbound_0.0.0.0_9080", "downstream_rq_redirected_with_normalized_path"));
        assertEquals(1, hcmStat(mesh, "outbound_0.0.0.0_9080", "downstream_rq_failed_path_normalization"));
        mesh.close().await(10, TimeUnit.SECONDS);

        mesh = inboundMesh("inbound.yaml", field);
        int inbound = inboundService(mesh, req -> req.response().putHeader("x-seen-path", req.uri()).end());
        HttpResponse<Buffer> in = plain.get(inbound, "127.0.0.1", "/x%2fy").followRedirects(false)
                .send().await(10, TimeUnit.SECONDS);
        assertEquals(307, in.statusCode());
        assertEquals("/x/y", in.getHeader("location"));
        assertNull(in.getHeader("x-seen-path"), "the service never saw it");
        assertEquals("/x/y", plain.get(inbound, "127.0.0.1", "/x/y").send()
                .await(10, TimeUnit.SECONDS).getHeader("x-seen-path"));
        assertEquals("13", plain.post(inbound, "127.0.0.1", "/x%2Fy").putHeader("content-type", "application/grpc")
                .send().await(10, TimeUnit.SECONDS).getHeader("grpc-status"), "a gRPC request is refused (400)");
        assertEquals(1, hcmStat(mesh, "inbound_0.0.0.0_9080", "downstream_rq_redirected_with_normalized_path"));
        assertEquals(1, hcmStat(mesh, "inbound_0.0.0.0_9080", "downstream_rq_failed_path_normalization"));
    }

    /** The connection manager {@code statPrefix}'s counter {@code envoy_http_<name>} of the mesh {@code m}. */
    static long hcmStat(Mesh m, String statPrefix, String name) {
        return dev.inmesh.runtime.testing.HcmStats.get(((DefaultMesh) m).registry(), statPrefix, name);
    }

    @Test
    void theOutboundConnectionManagersHostNormalizationAppliesBeforeRoutingAndUpstream() throws Exception {
        // as a gateway's connection manager with strip_matching_host_port (Istio's ISTIO_GATEWAY_STRIP_HOST_PORT
        // strips any), routes whose domains name no port: the destination's port goes, another stays
        int a = server("reviews-a", 200);
        mesh(withManagerFields(config("", a).replace("ignore_port_in_host_matching: true",
                "ignore_port_in_host_matching: false"), "strip_matching_host_port: true",
                "strip_trailing_host_dot: true"));
        WebClient client = mesh.webClient();
        HttpResponse<Buffer> r = client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("reviews", r.getHeader("x-seen-host"));
        HttpResponse<Buffer> dotted = client.get(9080, "reviews", "/").putHeader("host", "reviews.:9080").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(200, dotted.statusCode());
        assertEquals("reviews", dotted.getHeader("x-seen-host"));
        HttpResponse<Buffer> otherPort = client.get(9080, "reviews", "/").putHeader("host", "reviews:9081").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(404, otherPort.statusCode(), "only the port the request was sent to is taken off");
    }

    @Test
    void theInboundConnectionManagersHostNormalizationIsWhatTheServiceReads() throws Exception {
        mesh = inboundMesh("inbound.yaml", "strip_any_host_port: true\n          strip_trailing_host_dot: true");
        int inbound = inboundService(mesh, req -> req.response()
                .putHeader("x-seen-host", String.valueOf(req.authority()))
                .putHeader("x-seen-host-header", String.valueOf(req.getHeader("host"))).end());
        HttpResponse<Buffer> r = plain.get(inbound, "127.0.0.1", "/").putHeader("host", "reviews.:7")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("reviews", r.getHeader("x-seen-host"));
        assertEquals("reviews", r.getHeader("x-seen-host-header"));
    }

    @Test
    void theOutboundConnectionManagersUnderscoreActionRefusesOrDropsBeforeRouting() throws Exception {
        // the server echoes the names it got; Envoy Gateway's listeners say REJECT_REQUEST
        HttpServer s = vertx.createHttpServer().requestHandler(req -> req.response()
                .putHeader("x-seen", String.valueOf(req.getHeader("x_user")) + "|" + req.getHeader("x-user")).end());
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(s);
        String options = "common_http_protocol_options: {headers_with_underscores_action: %s}";
        mesh(withManagerFields(config("", s.actualPort()), options.formatted("REJECT_REQUEST")));
        HttpResponse<Buffer> refused = mesh.webClient().get(9080, "reviews", "/").putHeader("x_user", "mallory")
                .send().await(10, TimeUnit.SECONDS);
        assertEquals(400, refused.statusCode());
        assertNull(refused.getHeader("x-seen"), "never routed");
        for (int i = 0; i < 100 && recorded.isEmpty(); i++) {
            Thread.sleep(20);
        }
        assertEquals("http1.unexpected_underscore", recorded.get(0).responseCodeDetails());
        assertEquals("DPE", ResponseFlag.format(recorded.get(0).responseFlags()));
        assertEquals("null|alice", mesh.webClient().get(9080, "reviews", "/").putHeader("x-user", "alice").send()
                .await(10, TimeUnit.SECONDS).getHeader("x-seen"));
        assertEquals(1.0, ((DefaultMesh) mesh).registry()
                .get("envoy_http1_requests_rejected_with_underscores_in_headers").gauge().value());
        mesh.close().await(10, TimeUnit.SECONDS);
        mesh(withManagerFields(config("", s.actualPort()), options.formatted("DROP_HEADER")));
        HttpResponse<Buffer> dropped = mesh.webClient().get(9080, "reviews", "/").putHeader("x_user", "mallory")
                .putHeader("x-user", "alice").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, dropped.statusCode());
        assertEquals("null|alice", dropped.getHeader("x-seen"));
        assertEquals(1.0, ((DefaultMesh) mesh).registry().get("envoy_http1_dropped_headers_with_underscores").gauge()
                .value());
    }

    @Test
    void theInboundConnectionManagersUnderscoreActionRefusesOrDropsBeforeTheService() throws Exception {
        for (String action : new String[] {"REJECT_REQUEST", "DROP_HEADER"}) {
            Mesh m = inboundMesh(action + ".yaml", "common_http_protocol_options: {headers_with_underscores_action: "
                    + action + "}");
            ((DefaultMesh) m).addObserver(recorded::add);
            int inbound = inboundService(m, req -> req.response()
                    .putHeader("x-seen", String.valueOf(req.getHeader("x_user")) + "|" + req.getHeader("x-user"))
                    .end());
            for (HttpVersion v : new HttpVersion[] {HttpVersion.HTTP_1_1, HttpVersion.HTTP_2}) {
                var client = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions().setProtocolVersion(v)
                        .setHttp2ClearTextUpgrade(false));
                var answer = client.request(new io.vertx.core.http.RequestOptions().setPort(inbound)
                                .setHost("127.0.0.1").setURI("/").putHeader("x_user", "mallory")
                                .putHeader("x-user", "alice"))
                        .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode() + " "
                                + resp.getHeader("x-seen"))));
                try {
                    String got = answer.await(10, TimeUnit.SECONDS);
                    if (action.equals("DROP_HEADER")) {
                        assertEquals("200 null|alice", got, v.toString());
                    } else {
                        assertEquals(HttpVersion.HTTP_1_1, v, "HTTP/2's stream is reset, not answered: " + got);
                        assertEquals("400 null", got);
                    }
                } catch (io.vertx.core.http.StreamResetException e) {
                    assertEquals("REJECT_REQUEST " + HttpVersion.HTTP_2, action + " " + v);
                } finally {
                    client.close();
                }
            }
            if (action.equals("REJECT_REQUEST")) {
                for (int i = 0; i < 100 && recorded.size() < 2; i++) {
                    Thread.sleep(20);
                }
                assertEquals(400, recorded.get(0).responseCode());
                assertEquals("http1.unexpected_underscore", recorded.get(0).responseCodeDetails());
                assertEquals(0, recorded.get(1).responseCode());
                assertEquals("http2.unexpected_underscore", recorded.get(1).responseCodeDetails());
                assertEquals("DPE", ResponseFlag.format(recorded.get(1).responseFlags()));
            }
            // counted by codec, as Envoy's codecs count them
            String counted = action.equals("DROP_HEADER") ? "dropped_headers_with_underscores"
                    : "requests_rejected_with_underscores_in_headers";
            for (String codec : new String[] {"http1_", "http2_"}) {
                assertEquals(1.0, ((DefaultMesh) m).registry().get("envoy_" + codec + counted).gauge().value(),
                        codec + counted);
            }
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void moreHeadersThanTheConnectionManagerTakesAreAnswered431() throws Exception {
        int a = server("reviews-a", 200);
        mesh(withManagerFields(config("", a), "common_http_protocol_options: {max_headers_count: 5}"));
        WebClient client = mesh.webClient();
        // two of the caller's own, with what the WebClient adds (its user-agent): within 5
        assertEquals(200, client.get(9080, "reviews", "/").putHeader("a", "1").putHeader("b", "2").send()
                .await(10, TimeUnit.SECONDS).statusCode());
        var six = client.get(9080, "reviews", "/");
        for (int i = 0; i < 6; i++) {
            six.putHeader("h" + i, "v");
        }
        HttpResponse<Buffer> r = six.send().await(10, TimeUnit.SECONDS);
        assertEquals(431, r.statusCode());
        assertEquals(null, r.getHeader("x-served-by"));
    }

    @Test
    void theOutboundConnectionManagersMaxStreamDurationEndsASlowRequest() throws Exception {
        HttpServer slow = vertx.createHttpServer().requestHandler(req -> vertx.setTimer(1500,
                t -> req.response().end("late")));
        slow.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(slow);
        mesh(withManagerFields(config("", slow.actualPort()),
                "common_http_protocol_options: {max_stream_duration: 0.2s}"));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(504, r.statusCode());
        assertEquals("downstream duration timeout", r.bodyAsString());
    }

    @Test
    void responsesCarryTheConnectionManagersServerHeaderAsEnvoyWritesIt() throws Exception {
        HttpServer app = vertx.createHttpServer().requestHandler(req -> {
            if (req.path().equals("/named")) {
                req.response().putHeader("server", "app");
            }
            req.response().end("ok");
        });
        app.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(app);
        String base = config("", app.actualPort());
        String[][] cases = {
            // Envoy's defaults (Istio's sidecars): server: envoy, whatever the upstream says
            {"", "envoy", "envoy"},
            {"server_name: inmesh\nserver_header_transformation: APPEND_IF_ABSENT", "app", "inmesh"},
            {"server_header_transformation: PASS_THROUGH", "app", null},
        };
        for (String[] c : cases) {
            if (mesh != null) {
                mesh.close().await(10, TimeUnit.SECONDS);
            }
            mesh(withManagerFields(base, c[0].isEmpty() ? new String[0] : c[0].split("\n")));
            WebClient client = mesh.webClient();
            assertEquals(c[1], client.get(9080, "reviews", "/named").send().await(10, TimeUnit.SECONDS)
                    .getHeader("server"), c[0]);
            assertEquals(c[2], client.get(9080, "reviews", "/plain").send().await(10, TimeUnit.SECONDS)
                    .getHeader("server"), c[0]);
            // a local reply too
            HttpResponse<Buffer> local = client.get(9080, "nowhere.example", "/").send().await(10, TimeUnit.SECONDS);
            assertEquals(c[2], local.getHeader("server"), c[0]);
            // and each a date, as Envoy's connection manager writes one on every response without
            assertNotNull(local.getHeader("date"), c[0]);
            assertNotNull(client.get(9080, "reviews", "/plain").send().await(10, TimeUnit.SECONDS)
                    .getHeader("date"), c[0]);
        }
    }

    @Test
    void theConnectionManagersViaIsAppendedToRequestsAndResponsesLocalRepliesToo() throws Exception {
        HttpServer app = vertx.createHttpServer().requestHandler(req -> {
            if (req.path().equals("/via")) {
                req.response().putHeader("via", "1.1 app");
            }
            req.response().end(String.valueOf(req.getHeader("via")));
        });
        app.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(app);
        mesh(withManagerFields(config("", app.actualPort()), "via: inmesh-a"));
        WebClient client = mesh.webClient();
        HttpResponse<Buffer> plain = client.get(9080, "reviews", "/plain").send().await(10, TimeUnit.SECONDS);
        assertEquals("inmesh-a", plain.bodyAsString(), "the request's");
        assertEquals("inmesh-a", plain.getHeader("via"));
        HttpResponse<Buffer> appended = client.get(9080, "reviews", "/via").putHeader("via", List.of("1.1 caller",
                "1.1 other")).send().await(10, TimeUnit.SECONDS);
        assertEquals("1.1 caller,1.1 other, inmesh-a", appended.bodyAsString(), "two lines joined, then this one");
        assertEquals("1.1 app, inmesh-a", appended.getHeader("via"));
        HttpResponse<Buffer> local = client.get(9080, "nowhere.example", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(404, local.statusCode());
        assertEquals("inmesh-a", local.getHeader("via"));
    }

    @Test
    void aClusterWithIstiosUnlimitedCircuitBreakersServesRequests() throws Exception {
        int a = server("reviews-a", 200);
        mesh(config("", a).replace("    lb_policy: ROUND_ROBIN\n", """
                    lb_policy: ROUND_ROBIN
                    circuit_breakers:
                      thresholds:
                      - {max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295,
                         max_retries: 4294967295, track_remaining: true}
                """));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("reviews-a", r.getHeader("x-served-by"));
    }

    /**
     * A host's pool has max_connections connections, no more (the requests beyond wait in the pool) and no fewer:
     * the server answers only once two requests are outstanding at once, which one connection without pipelining
     * never gives it, and then both; sixteen requests, two connections, reused throughout.
     */
    @Test
    void aHostPoolOpensMaxConnectionsAndReusesThem() throws Exception {
        java.util.concurrent.atomic.AtomicInteger connections = new java.util.concurrent.atomic.AtomicInteger();
        List<io.vertx.core.http.HttpServerRequest> held = new ArrayList<>();
        HttpServer s = vertx.createHttpServer()
                .connectionHandler(c -> connections.incrementAndGet())
                .requestHandler(req -> {
                    synchronized (held) {
                        held.add(req);
                        if (held.size() == 2) {
                            held.forEach(r -> r.response().end("ok"));
                            held.clear();
                        }
                    }
                });
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(s);
        mesh(config("", s.actualPort()).replace("    lb_policy: ROUND_ROBIN\n", """
                    lb_policy: ROUND_ROBIN
                    circuit_breakers:
                      thresholds:
                      - {max_connections: 2, max_pending_requests: 1000, max_requests: 1000}
                """));
        WebClient client = mesh.webClient();
        List<io.vertx.core.Future<HttpResponse<Buffer>>> all = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            all.add(client.get(9080, "reviews", "/reviews/" + i).send());
        }
        io.vertx.core.Future.all(all).await(10, TimeUnit.SECONDS);
        for (var f : all) {
            assertEquals("ok", f.result().bodyAsString());
        }
        assertEquals(2, connections.get());
    }

    /**
     * The router drops the upstream's hop-by-hop headers from the response it hands over, but from a copy: the
     * upstream connection still sees its "connection: close" and is not reused.
     */
    @Test
    void anUpstreamConnectionCloseIsHonouredAndNotPassedOn() throws Exception {
        java.util.concurrent.atomic.AtomicInteger connections = new java.util.concurrent.atomic.AtomicInteger();
        HttpServer s = vertx.createHttpServer()
                .connectionHandler(c -> connections.incrementAndGet())
                .requestHandler(req -> req.response().putHeader("connection", "close")
                        .putHeader("keep-alive", "timeout=5").putHeader("x-kept", "yes").end("ok"));
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(s);
        mesh(config("", s.actualPort()));
        WebClient client = mesh.webClient();
        for (int i = 0; i < 3; i++) {
            HttpResponse<Buffer> r = client.get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
            assertEquals("ok", r.bodyAsString());
            assertEquals("yes", r.getHeader("x-kept"));
            assertEquals(null, r.getHeader("connection"));
            assertEquals(null, r.getHeader("keep-alive"));
        }
        assertEquals(3, connections.get());
    }

    /**
     * As Envoy's connection manager takes the hop-by-hop headers and a caller's {@code x-forwarded-client-cert}
     * (SANITIZE, Istio's outbound default) off before it picks the route: the application cannot steer its own calls
     * with them.
     */
    @Test
    void theApplicationsHopByHopHeadersAndForwardedClientCertSteerNoRouteOfItsCalls() throws Exception {
        int a = server("reviews-a", 200);
        String[] names = {"connection", "keep-alive", "proxy-connection", "upgrade", "x-forwarded-client-cert",
            "x-steer"};
        StringBuilder steered = new StringBuilder();
        for (String name : names) {
            steered.append("              - match: {prefix: /, headers: [{name: ").append(name)
                    .append(", present_match: true}]}\n")
                    .append("                direct_response: {status: 418}\n");
        }
        mesh(config("", a).replace("              routes:\n", "              routes:\n" + steered));
        WebClient client = mesh.webClient();
        assertEquals(418, client.get(9080, "reviews", "/").putHeader("x-steer", "1").send()
                .await(10, TimeUnit.SECONDS).statusCode(), "any other header steers");
        String[][] sent = {{"connection", "close"}, {"connection", "keep-alive"}, {"keep-alive", "timeout=5"},
            {"proxy-connection", "keep-alive"}, {"upgrade", "foo"},
            {"x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/default/sa/admin"}};
        for (String[] header : sent) {
            HttpResponse<Buffer> r = client.get(9080, "reviews", "/").putHeader(header[0], header[1]).send()
                    .await(10, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), header[0] + ": " + header[1]);
            assertEquals("reviews-a:0", r.bodyAsString());
        }
    }

    @Test
    void manyRequestsFromAThreadOutsideVertxEachGetTheirBody() throws Exception {
        int a = server("reviews-a", 200);
        mesh(config("", a));
        WebClient client = mesh.webClient();
        for (int i = 0; i < 300; i++) {
            HttpResponse<Buffer> r = client.get(9080, "reviews", "/reviews/" + i).send()
                    .await(10, TimeUnit.SECONDS);
            assertEquals("reviews-a:0", r.bodyAsString(), "request " + i);
        }
    }

    @Test
    void aResponseIsInTheCallersProtocolWhateverTheClusterSpeaksUpstream() throws Exception {
        HttpServer h2c = vertx.createHttpServer().requestHandler(req -> req.response().end(req.version().name()));
        h2c.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(h2c);
        mesh(config("", h2c.actualPort()).replace("    connect_timeout: 1s\n", """
                    connect_timeout: 1s
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        explicit_http_config: {http2_protocol_options: {}}
                """));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals("HTTP_2", r.bodyAsString()); // the cluster's protocol upstream
        // the application's HTTP/1.1 exchange with its sidecar, as a plain client sees it
        assertEquals(HttpVersion.HTTP_1_1, r.version());
    }

    @Test
    void aPostBodyReachesTheUpstream() throws Exception {
        int a = server("reviews-a", 200);
        mesh(config("", a));
        HttpResponse<Buffer> r = mesh.webClient().post(9080, "reviews", "/reviews")
                .sendBuffer(Buffer.buffer("x".repeat(5000))).await(10, TimeUnit.SECONDS);
        assertEquals("reviews-a:5000", r.bodyAsString());
    }

    @Test
    void istiosMirrorSendsACopyWithAShadowHostToTheMirrorClusterWhoseSlowFailureTheCallerNeverSees()
            throws Exception {
        int primary = server("reviews-v1", 200);
        java.util.concurrent.CompletableFuture<String> copy = new java.util.concurrent.CompletableFuture<>();
        HttpServer mirror = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
            copy.complete(req.method() + " " + req.uri() + " " + req.authority() + " " + body);
            vertx.setTimer(5000, t -> req.response().setStatusCode(500).end("mirror"));
        }));
        mirror.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(mirror);
        String v2 = "outbound|9080|v2|reviews.default.svc.cluster.local";
        // Istio's route for mirror: {host: reviews, subset: v2} and mirrorPercentage: {value: 100}
        mesh(config("""
                                  request_mirror_policies:
                                  - cluster: %s
                                    runtime_fraction: {default_value: {numerator: 1000000, denominator: MILLION}}
                                    trace_sampled: false
                """.formatted(v2), primary) + """
                  - name: %s
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: %s
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(v2, v2, mirror.actualPort()));
        long t0 = System.nanoTime();
        HttpResponse<Buffer> r = mesh.webClient().post(9080, "reviews", "/reviews/1")
                .sendBuffer(Buffer.buffer("rating")).await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("reviews-v1:6", r.bodyAsString());
        assertTrue((System.nanoTime() - t0) / 1_000_000 < 4000, "the caller did not wait for the mirror");
        assertEquals("POST /reviews/1 reviews-shadow:9080 rating", copy.get(10, TimeUnit.SECONDS));
        for (int i = 0; i < 100 && recorded.isEmpty(); i++) {
            Thread.sleep(20);
        }
        assertEquals(1, recorded.size(), "the copy is not in the caller's access log or metrics");
        assertEquals("-", ResponseFlag.format(recorded.get(0).responseFlags()));
    }

    @Test
    void istiosDefaultRetryHidesAFailingInstance() throws Exception {
        int bad = server("reviews-bad", 503);
        int good = server("reviews-good", 200);
        mesh(config(ISTIO_RETRY, bad, good));
        WebClient client = mesh.webClient();
        Map<String, Integer> seen = new HashMap<>();
        for (int i = 0; i < 20; i++) {
            HttpResponse<Buffer> r = client.get(9080, "reviews", "/reviews/0").send().await(10, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), "request " + i);
            seen.merge(r.getHeader("x-served-by"), 1, Integer::sum);
        }
        assertEquals(Map.of("reviews-good", 20), seen);
        assertTrue(recorded.stream().anyMatch(s -> s.attemptCount() == 2));
    }

    @Test
    void withoutARetryConditionA503GoesBackAsItIs() throws Exception {
        int bad = server("reviews-bad", 503);
        mesh(config("", bad));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(503, r.statusCode());
        assertEquals("reviews-bad", r.getHeader("x-served-by"));
    }

    @Test
    void anUnknownHostOnAKnownPortHasNoRoute() throws Exception {
        int a = server("reviews-a", 200);
        mesh(config("", a));
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "ratings", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals(404, r.statusCode());
        StreamInfo info = recorded.get(recorded.size() - 1);
        assertEquals(java.util.Set.of(ResponseFlag.NO_ROUTE_FOUND), info.responseFlags());
        assertEquals(StreamInfo.Direction.OUTBOUND, info.direction());
    }

    @Test
    void aPassthroughRequestGoesAsTheApplicationSentItAsASidecarsTcpProxyRelaysIt() throws Exception {
        // a port without listener (ALLOW_ANY): a sidecar's tcp_proxy to PassthroughCluster copies bytes, so the
        // upstream gets no request id, forwarded proto or this workload's peer metadata, the caller no service time
        int echo = headerNamesServer();
        mesh(config("", server("reviews", 200)));
        HttpResponse<Buffer> r = mesh.webClient().get(echo, "127.0.0.1", "/x")
                .putHeader("x-envoy-retry-on", "5xx").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("host,user-agent,x-envoy-retry-on", r.bodyAsString().toLowerCase(java.util.Locale.ROOT));
        assertNull(r.getHeader("x-envoy-upstream-service-time"));
        assertEquals("PassthroughCluster", recorded.get(recorded.size() - 1).upstreamCluster());
        // through the listener's connection manager, the same client's request has them
        HttpResponse<Buffer> routed = mesh.webClient().get(9080, "reviews", "/").send()
                .await(10, TimeUnit.SECONDS);
        assertTrue(routed.getHeader("x-seen-request-id").length() > 30, routed.headers().toString());
        assertTrue(routed.getHeader("x-envoy-upstream-service-time") != null, routed.headers().toString());
    }

    @Test
    void aRedirectFollowedIsAFreshRequestThatCarriesOnlyTheApplicationsHeadersAsBehindASidecar() throws Exception {
        // the mesh adds its headers to the request upstream, never to the application's: a redirect followed (Vert.x
        // copies the request's headers into the next one) is a request of its own, as each hop through a sidecar is
        int echo = headerNamesServer();
        List<String> ids = new CopyOnWriteArrayList<>();
        HttpServer reviews = vertx.createHttpServer().requestHandler(req -> {
            ids.add(req.getHeader("x-request-id"));
            if (req.path().equals("/moved")) {
                req.response().setStatusCode(302).putHeader("location", req.getParam("to")).end();
            } else {
                req.response().end("there");
            }
        });
        reviews.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(reviews);
        mesh(config("", reviews.actualPort()));
        // to a destination outside the mesh (a port without listener, passed through as bytes): none of its headers
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/moved")
                .addQueryParam("to", "http://127.0.0.1:" + echo + "/out").putHeader("x-app", "1").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals("host,user-agent,x-app", r.bodyAsString());
        assertEquals("PassthroughCluster", recorded.get(recorded.size() - 1).upstreamCluster());
        // within it: each hop its own request id, as each is a request of its own to the sidecar
        ids.clear();
        assertEquals("there", mesh.webClient().get(9080, "reviews", "/moved").addQueryParam("to", "/there").send()
                .await(10, TimeUnit.SECONDS).bodyAsString());
        assertEquals(2, ids.size(), ids.toString());
        assertTrue(ids.get(0) != null && ids.get(1) != null && !ids.get(0).equals(ids.get(1)), ids.toString());
        // mesh.httpClient(): the request's headers after it went are still the application's only
        io.vertx.core.http.HttpClientRequest sent = mesh.httpClient()
                .request(io.vertx.core.http.HttpMethod.GET, 9080, "reviews", "/there").await(10, TimeUnit.SECONDS);
        sent.putHeader("x-app", "1").send().compose(io.vertx.core.http.HttpClientResponse::body)
                .await(10, TimeUnit.SECONDS);
        assertEquals(List.of("x-app"), new ArrayList<>(sent.headers().names()));
    }

    @Test
    void aConnectThroughAListenersConnectionManagerFindsNoRouteAndIsAnswered404AsTheStandaloneProxyAnswersIt()
            throws Exception {
        AtomicInteger reached = new AtomicInteger();
        HttpServer s = vertx.createHttpServer().requestHandler(req -> {
            reached.incrementAndGet();
            req.response().end("upstream");
        });
        s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(s);
        mesh(config("", s.actualPort()));
        HttpResponse<Buffer> r = mesh.webClient().request(io.vertx.core.http.HttpMethod.CONNECT, 9080, "reviews",
                "/x").send().await(10, TimeUnit.SECONDS);
        // Envoy's route matchers pass over a request without a path (only a connect_matcher takes a CONNECT), so the
        // upgrade its upgrade_configs do not enable is not refused 403 but falls to the router: 404 NR
        assertEquals(404, r.statusCode());
        assertEquals(0, reached.get(), "not forwarded");
        assertEquals("route_not_found", recorded.get(recorded.size() - 1).responseCodeDetails());
        assertTrue(recorded.get(recorded.size() - 1).responseFlags().contains(ResponseFlag.NO_ROUTE_FOUND),
                recorded.get(recorded.size() - 1).responseFlags().toString());
    }

    @Test
    void aPortWithoutListenerPassesThroughUnderAllowAny() throws Exception {
        int a = server("direct", 200);
        mesh(config("", a));
        HttpResponse<Buffer> r = mesh.webClient().get(a, "127.0.0.1", "/x").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, r.statusCode());
        assertEquals("direct", r.getHeader("x-served-by"));
        assertEquals("PassthroughCluster", recorded.get(recorded.size() - 1).upstreamCluster());
    }

    @Test
    void aPortWithoutListenerIsRefusedUnderRegistryOnly() throws Exception {
        int a = server("direct", 200);
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, config("", a));
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1)
                .setOutboundTrafficPolicy(MeshOptions.OutboundTrafficPolicy.REGISTRY_ONLY));
        ((DefaultMesh) mesh).addObserver(recorded::add);
        mesh.start().await(10, TimeUnit.SECONDS);
        // as Istio's virtualOutbound sends such a connection to its BlackHoleCluster, whose tcp_proxy closes it: no
        // HTTP answer, the connection closed under the request, as the application behind a sidecar sees it
        Throwable t = assertThrows(Throwable.class, () -> mesh.webClient().get(a, "127.0.0.1", "/x").send()
                .await(10, TimeUnit.SECONDS));
        assertInstanceOf(io.vertx.core.http.HttpClosedException.class, t);
        StreamInfo info = recorded.get(recorded.size() - 1);
        assertEquals("BlackHoleCluster", info.upstreamCluster());
        // no response went to the caller: code 0, as Envoy's tcp_proxy logs a connection, the details kept
        assertEquals(0, info.responseCode(), info.toString());
        assertEquals("blackhole", info.responseCodeDetails());
    }

    @Test
    void aPassedThroughRequestWhoseConnectFailsFailsAsAPlainClientsWithNoHttpAnswer() throws Exception {
        // a sidecar's tcp_proxy answers no HTTP: it closes the connection when its upstream's fails
        // (tcp_proxy.cc, Filter::onInitFailure); the request was never sent, which the plain client's exceptions say
        mesh(config("", server("reviews", 200)));
        int closed;
        try (var socket = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            closed = socket.getLocalPort();
        }
        int port = closed;
        Throwable refused = assertThrows(Throwable.class, () -> mesh.webClient().get(port, "127.0.0.1", "/x").send()
                .await(10, TimeUnit.SECONDS));
        assertInstanceOf(java.net.ConnectException.class, refused);
        StreamInfo info = recorded.get(recorded.size() - 1);
        assertEquals("PassthroughCluster", info.upstreamCluster());
        assertTrue(info.responseFlags().contains(ResponseFlag.UPSTREAM_CONNECTION_FAILURE), info.toString());
        // no HTTP response was sent: recorded with code 0 (Envoy's %RESPONSE_CODE% of a tcp_proxy's connection), the
        // router's details of why kept
        assertEquals(0, info.responseCode(), info.toString());
        assertTrue(info.responseCodeDetails().startsWith("upstream_reset_before_response_started{remote_connection_"
                + "failure"), info.responseCodeDetails());
        Throwable unknown = assertThrows(Throwable.class, () -> mesh.webClient().get(port, "no-such-host.invalid",
                "/x").send().await(10, TimeUnit.SECONDS));
        assertInstanceOf(java.net.UnknownHostException.class, unknown);
    }

    @Test
    void theInboundSideRecordsTheCallerFromPeerMetadata() throws Exception {
        java.util.concurrent.atomic.AtomicReference<io.vertx.core.Handler<io.vertx.core.http.HttpServerRequest>>
                handler = new java.util.concurrent.atomic.AtomicReference<>();
        HttpServer inbound = vertx.createHttpServer().requestHandler(req -> handler.get().handle(req));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        mesh(config("", inbound.actualPort()));
        handler.set(mesh.inbound(req -> req.response().end("hi")));
        // the mesh's own client sends its identity through its listener's connection manager (a port without
        // listener is a sidecar's tcp_proxy, which sends none)
        HttpResponse<Buffer> r = mesh.webClient().get(9080, "reviews", "/").send().await(10, TimeUnit.SECONDS);
        assertEquals("hi", r.bodyAsString());
        long deadline = System.currentTimeMillis() + 5000;
        while (recorded.stream().noneMatch(s -> s.direction() == StreamInfo.Direction.INBOUND)
                && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        StreamInfo in = recorded.stream().filter(s -> s.direction() == StreamInfo.Direction.INBOUND).findFirst()
                .orElseThrow();
        assertEquals("productpage-v1", in.peer().workload());
        assertEquals("productpage", in.peer().app());
        assertEquals(200, in.responseCode());
    }

    @Test
    void theInboundSideRecordsAnHttp10RequestsProtocolAsHttp10() throws Exception {
        mesh(config("", server("reviews-a", 200)));
        HttpServer inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().end("hi")));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", inbound.actualPort())) {
            s.setSoTimeout(5000);
            s.getOutputStream().write("GET /old HTTP/1.0\r\nHost: reviews\r\n\r\n"
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            String answer = new String(s.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII);
            assertTrue(answer.endsWith("hi"), answer);
        }
        long deadline = System.currentTimeMillis() + 5000;
        while (recorded.stream().noneMatch(i -> i.direction() == StreamInfo.Direction.INBOUND)
                && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        StreamInfo in = recorded.stream().filter(i -> i.direction() == StreamInfo.Direction.INBOUND).findFirst()
                .orElseThrow();
        assertEquals("HTTP/1.0", in.protocol(), "Envoy's %PROTOCOL%");
    }

    @Test
    void theInboundSideRecordsIpv6AddressesAsEnvoyPrintsThemInBrackets() throws Exception {
        mesh(config("", server("reviews-a", 200)));
        HttpServer inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().end("hi")));
        inbound.listen(0, "::1").await(10, TimeUnit.SECONDS);
        try (java.net.Socket s = new java.net.Socket("::1", inbound.actualPort())) {
            s.setSoTimeout(5000);
            s.getOutputStream().write("GET /v6 HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n"
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            String answer = new String(s.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII);
            assertTrue(answer.endsWith("hi"), answer);
        }
        long deadline = System.currentTimeMillis() + 5000;
        while (recorded.stream().noneMatch(i -> i.direction() == StreamInfo.Direction.INBOUND)
                && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        StreamInfo in = recorded.stream().filter(i -> i.direction() == StreamInfo.Direction.INBOUND).findFirst()
                .orElseThrow();
        assertEquals("[::1]:" + inbound.actualPort(), in.downstreamLocalAddress());
        assertTrue(in.downstreamRemoteAddress().matches("\\[::1]:[1-9][0-9]*"), in.downstreamRemoteAddress());
        assertEquals("inbound|" + inbound.actualPort() + "||", in.upstreamCluster());
    }

    @Test
    void theAdminServerShowsConfigMetricsAndClustersOfTheMesh() throws Exception {
        int a = server("reviews-a", 200);
        Path file = dir.resolve("mesh.yaml");
        // with outlier detection, whose statistics the cluster keeps itself
        Files.writeString(file, config("", a).replace("    lb_policy: ROUND_ROBIN\n",
                "    lb_policy: ROUND_ROBIN\n    outlier_detection: {consecutive_5xx: 5}\n"));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage")
                .setVersion("v1").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        assertTrue(mesh.isReady());
        mesh.webClient().get(9080, "reviews", "/reviews/0").send().await(10, TimeUnit.SECONDS);
        int admin = mesh.adminPort();
        assertEquals(200, plain.get(admin, "127.0.0.1", "/healthz/ready").send().await(10, TimeUnit.SECONDS)
                .statusCode());
        String dump = plain.get(admin, "127.0.0.1", "/config_dump").send().await(10, TimeUnit.SECONDS)
                .bodyAsString();
        assertTrue(dump.contains("0.0.0.0_9080"), dump);
        String clusters = plain.get(admin, "127.0.0.1", "/clusters").send().await(10, TimeUnit.SECONDS)
                .bodyAsString();
        assertTrue(clusters.contains("outbound|9080||reviews.default.svc.cluster.local::127.0.0.1:" + a
                + "::rq_total::1"), clusters);
        assertTrue(clusters.contains("outbound|9080||reviews.default.svc.cluster.local::127.0.0.1:" + a
                + "::rq_success::1"), clusters);
        assertTrue(clusters.contains("outbound|9080||reviews.default.svc.cluster.local::127.0.0.1:" + a
                + "::cx_total::1"), clusters);
        var json = plain.get(admin, "127.0.0.1", "/clusters?format=json").send().await(10, TimeUnit.SECONDS);
        assertEquals("application/json", json.getHeader("content-type"));
        assertTrue(json.bodyAsString().contains("\"cluster_statuses\"")
                && json.bodyAsString().contains("\"port_value\": " + a), json.bodyAsString());
        String stats = "";
        long deadline = System.currentTimeMillis() + 5000;
        while (!stats.contains("istio_requests_total") && System.currentTimeMillis() < deadline) {
            stats = plain.get(admin, "127.0.0.1", "/stats/prometheus").send().await(10, TimeUnit.SECONDS)
                    .bodyAsString();
        }
        String line = stats.lines().filter(l -> l.startsWith("istio_requests_total{")).findFirst().orElse("");
        assertTrue(line.contains("reporter=\"source\""), line);
        assertTrue(line.contains("source_workload=\"productpage-v1\""), line);
        // the cluster has no istio metadata: as Istio's client side (which never reads the cluster's name), the Host
        assertTrue(line.contains("destination_service=\"reviews:9080\""), line);
        assertTrue(line.contains("response_code=\"200\""), line);
        assertTrue(stats.contains("upstream_rq_total"), stats);
        // a bootstrap without stats_config: Envoy's default tags name the tags of Envoy's statistics
        String cluster = "envoy_cluster_name=\"outbound|9080||reviews.default.svc.cluster.local\"";
        assertTrue(stats.contains("envoy_cluster_outlier_detection_ejections_active{" + cluster + "} 0\n"), stats);
        assertTrue(stats.contains("envoy_cluster_upstream_rq_xx{" + cluster
                + ",envoy_response_code_class=\"2\"} 1\n"), stats);
        assertTrue(stats.contains("envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="
                + "\"outbound_0.0.0.0_9080\"} 1\n"), stats);
        // /stats, which has no tags, as it was
        String text = plain.get(admin, "127.0.0.1", "/stats?filter=reviews.*upstream_rq_2xx").send()
                .await(10, TimeUnit.SECONDS).bodyAsString();
        assertEquals("cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_2xx: 1\n", text);
    }

    @Test
    void theInboundRouteOfVirtualInboundAnswersLocallyOrCallsTheService() throws Exception {
        Path file = dir.resolve("inbound.yaml");
        Files.writeString(file, virtualInbound("", """
                              response_headers_to_add: [{header: {key: x-inbound, value: "yes"}}]
                              routes:
                              - {match: {prefix: /blocked}, direct_response: {status: 403, body: {inline_string: denied}}}
                              - {match: {prefix: /made}, direct_response: {status: 201}}
                              - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setConfigFile(file.toString())
                .setAdminPort(-1));
        ((DefaultMesh) mesh).addObserver(recorded::add);
        mesh.start().await(10, TimeUnit.SECONDS);
        HttpServer inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().end("app")));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        HttpResponse<Buffer> ok = plain.get(inbound.actualPort(), "127.0.0.1", "/reviews/0").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals("app", ok.bodyAsString());
        assertEquals("yes", ok.getHeader("x-inbound"));
        HttpResponse<Buffer> blocked = plain.get(inbound.actualPort(), "127.0.0.1", "/blocked").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(403, blocked.statusCode());
        assertEquals("denied", blocked.bodyAsString());
        assertNull(blocked.getHeader("location"));
        HttpResponse<Buffer> made = plain.get(inbound.actualPort(), "127.0.0.1", "/made?id=1").send()
                .await(10, TimeUnit.SECONDS);
        assertEquals(201, made.statusCode());
        assertEquals("http://127.0.0.1:" + inbound.actualPort() + "/made?id=1", made.getHeader("location"));
        long deadline = System.currentTimeMillis() + 5000;
        while (recorded.size() < 3 && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(List.of(200, 403, 201), recorded.stream().map(StreamInfo::responseCode).toList());
        assertTrue(recorded.stream().allMatch(i -> i.direction() == StreamInfo.Direction.INBOUND));
    }

    @Test
    void theInboundChainsGenerateRequestIdDecidesWhetherTheServiceSeesAnIdItWasNotSent() throws Exception {
        for (boolean generate : new boolean[] {true, false}) {
            Mesh m = inboundMesh("inbound-" + generate + ".yaml", "generate_request_id: " + generate);
            try {
                int port = requestIdEchoingService(m);
                String seen = plain.get(port, "127.0.0.1", "/").send().await(10, TimeUnit.SECONDS).bodyAsString();
                assertEquals(generate ? 36 : 4, seen.length(), seen);
            } finally {
                m.close().await(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void theInboundChainsStatsFilterWithoutHostHeaderFallbackKeepsTheHostOutOfTheServiceLabels() throws Exception {
        // istiod's inbound istio.stats filter: a request whose inbound cluster names no service is labelled with
        // this workload's canonical service, not its Host
        for (boolean disabled : new boolean[] {true, false}) {
            List<StreamInfo> seen = new CopyOnWriteArrayList<>();
            DefaultMesh m = statsFilterMesh("stats-" + disabled + ".yaml",
                    "disable_host_header_fallback: " + disabled + "\n", seen);
            try {
                callInboundOnce(m, seen);
                assertEquals(!disabled, seen.get(0).hostHeaderFallback());
                String service = m.registry().get("istio_requests").counter().getId().getTag("destination_service");
                assertEquals(disabled ? "reviews" : "10.1.2.3:8000", service, "the Host, its port included");
            } finally {
                m.close().await(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void theStatsFiltersMetricOverridesDropAMetricAndEmptyTheLabelsTheyRemove() throws Exception {
        // istiod's istio.stats for Telemetry overrides: REQUEST_COUNT disabled, request_protocol removed from
        // REQUEST_DURATION; every other metric recorded as before
        List<StreamInfo> seen = new CopyOnWriteArrayList<>();
        DefaultMesh m = statsFilterMesh("stats-overrides.yaml", """
                metrics:
                - {name: requests_total, drop: true}
                - {name: request_duration_milliseconds, tags_to_remove: [request_protocol]}
                - {name: request_messages_total, dimensions: {request_host: request.host}}
                """, seen);
        try {
            callInboundOnce(m, seen);
            assertEquals(1, seen.size());
            assertTrue(m.registry().find("istio_requests").counters().isEmpty());
            assertEquals("", m.registry().get("istio_request_duration_milliseconds").summary().getId()
                    .getTag("request_protocol"));
            assertEquals(1, m.registry().get("istio_request_duration_milliseconds").summary().count());
            assertEquals("http", m.registry().get("istio_request_bytes").summary().getId()
                    .getTag("request_protocol"));
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void telemetryTagOverridesWithExpressionsLabelTheRequestsInTheAdminsScrape() throws Exception {
        // istiod's istio.stats for a Telemetry tagOverrides with values (Istio's "customize metrics" task): a
        // request_host label on every metric, a caller's header on requests_total, response_code rewritten
        List<StreamInfo> seen = new CopyOnWriteArrayList<>();
        DefaultMesh m = statsFilterMesh("stats-dimensions.yaml", """
                metrics:
                - {dimensions: {request_host: request.host}}
                - {name: requests_total, dimensions: {caller: "request.headers['x-caller']",
                   response_code: "string(response.code) + '_' + request.method"}}
                """, seen, 0);
        try {
            callInboundOnce(m, seen);
            String scrape = plain.get(m.adminPort(), "127.0.0.1", "/stats/prometheus").send()
                    .await(10, TimeUnit.SECONDS).bodyAsString();
            List<String> requests = scrape.lines().filter(l -> l.startsWith("istio_requests_total{")).toList();
            assertEquals(1, requests.size(), scrape);
            for (String label : List.of("request_host=\"10.1.2.3:8000\"", "caller=\"unknown\"",
                    "response_code=\"200_GET\"", "reporter=\"destination\"")) {
                assertTrue(requests.get(0).contains(label), label + " in " + requests.get(0));
            }
            assertTrue(scrape.lines().anyMatch(l -> l.startsWith("istio_request_duration_milliseconds_count{")
                    && l.contains("request_host=\"10.1.2.3:8000\"") && l.contains("response_code=\"200\"")),
                    scrape);
            assertFalse(scrape.contains(dev.inmesh.runtime.stats.MeshMetrics.DIMENSIONS_MARK), scrape);
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aStatsFiltersDefinitionsAreServedInTheAdminsScrapeUnderIstiosNames() throws Exception {
        // stats.PluginConfig definitions: Istio's istio_<name> metrics, labelled by the entries that name them
        List<StreamInfo> seen = new CopyOnWriteArrayList<>();
        DefaultMesh m = statsFilterMesh("stats-definitions.yaml", """
                definitions:
                - {name: host_hits, value: "1"}
                - {name: last_status, value: response.code, type: GAUGE}
                metrics:
                - {name: host_hits, dimensions: {host: request.host}}
                """, seen, 0);
        try {
            callInboundOnce(m, seen);
            String scrape = plain.get(m.adminPort(), "127.0.0.1", "/stats/prometheus").send()
                    .await(10, TimeUnit.SECONDS).bodyAsString();
            assertTrue(scrape.lines().toList().contains("istio_host_hits{host=\"10.1.2.3:8000\"} 1"), scrape);
            assertTrue(scrape.lines().toList().contains("istio_last_status 200"), scrape);
            assertTrue(scrape.lines().anyMatch(l -> l.startsWith("istio_requests_total{")), "the others go on");
        } finally {
            m.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A started mesh for workload reviews-v1 whose virtualInbound routes all to {@code inbound|9080||} with an
     * {@code istio.stats} filter of the config fields {@code statsFields}; its finished requests go to {@code seen}.
     */
    private DefaultMesh statsFilterMesh(String name, String statsFields, List<StreamInfo> seen) throws Exception {
        return statsFilterMesh(name, statsFields, seen, -1);
    }

    /** The same, with its admin server on {@code adminPort} (0: any, -1: none). */
    private DefaultMesh statsFilterMesh(String name, String statsFields, List<StreamInfo> seen, int adminPort)
            throws Exception {
        Path file = dir.resolve(name);
        Files.writeString(file, virtualInbound("", """
                              routes:
                              - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """).replace("          http_filters:\n", "          http_filters:\n"
                + "          - name: istio.stats\n"
                + "            typed_config:\n"
                + "              \"@type\": type.googleapis.com/stats.PluginConfig\n"
                + statsFields.indent(14)));
        DefaultMesh m = (DefaultMesh) Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1")
                .setApp("reviews").setConfigFile(file.toString()).setAdminPort(adminPort));
        m.addObserver(seen::add);
        m.start().await(10, TimeUnit.SECONDS);
        return m;
    }

    /** Sends one request for host 10.1.2.3:8000 to a server behind {@code m.inbound} and waits until it is seen. */
    private void callInboundOnce(DefaultMesh m, List<StreamInfo> seen) throws Exception {
        HttpServer inbound = vertx.createHttpServer().requestHandler(m.inbound(req -> req.response().end()));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(inbound);
        plain.get(inbound.actualPort(), "127.0.0.1", "/").putHeader("host", "10.1.2.3:8000").send()
                .await(10, TimeUnit.SECONDS);
        long deadline = System.currentTimeMillis() + 5000;
        while (seen.isEmpty() && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
    }

    /** A started mesh whose config file {@code name} has a virtualInbound with {@code hcmOptions}, routing all. */
    private Mesh inboundMesh(String name, String hcmOptions) throws Exception {
        Path file = dir.resolve(name);
        Files.writeString(file, virtualInbound(hcmOptions, """
                              routes:
                              - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """));
        Mesh m = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1")
                .setConfigFile(file.toString()).setAdminPort(-1));
        m.start().await(10, TimeUnit.SECONDS);
        return m;
    }

    /** The port of {@code service} behind {@code m.inbound}, listening on 127.0.0.1. */
    private int inboundService(Mesh m, io.vertx.core.Handler<io.vertx.core.http.HttpServerRequest> service)
            throws Exception {
        HttpServer inbound = vertx.createHttpServer().requestHandler(m.inbound(service));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        servers.add(inbound);
        return inbound.actualPort();
    }

    /**
     * The port of a service behind {@code m.inbound} that answers with the {@code x-request-id} it saw, and an
     * {@code x-request-id} of its own ({@code service-id}) on the response.
     */
    private int requestIdEchoingService(Mesh m) throws Exception {
        return inboundService(m, req -> req.response().putHeader("x-request-id", "service-id")
                .end(String.valueOf(req.getHeader("x-request-id"))));
    }

    @Test
    void theMeshHttpClientRoutesLikeTheWebClient() throws Exception {
        int a = server("reviews-a", 200);
        mesh(config("", a));
        io.vertx.core.http.HttpClient client = mesh.httpClient();
        String body = client.request(io.vertx.core.http.HttpMethod.PUT, 9080, "reviews", "/reviews/7")
                .compose(req -> req.putHeader("x-test", "1").send(Buffer.buffer("abc")))
                .compose(resp -> {
                    assertEquals(200, resp.statusCode());
                    assertEquals("reviews-a", resp.getHeader("x-served-by"));
                    return resp.body();
                })
                .await(10, TimeUnit.SECONDS).toString();
        assertEquals("reviews-a:3", body);
        // a request written in chunks, then ended
        String chunked = client.request(io.vertx.core.http.HttpMethod.POST, 9080, "reviews", "/reviews")
                .compose(req -> {
                    req.setChunked(true);
                    req.write("12");
                    req.write("345");
                    req.end("6789");
                    return req.response();
                })
                .compose(io.vertx.core.http.HttpClientResponse::body)
                .await(10, TimeUnit.SECONDS).toString();
        assertEquals("reviews-a:9", chunked);
    }
}
