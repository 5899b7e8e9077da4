package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A connection manager's {@code access_log} (Envoy's file logger, its text or JSON format and its filter) writes the
 * requests of the in-JVM mesh client and of the inbound handler, as an Envoy sidecar writes them.
 */
public class MeshAccessLogTest {
    private Vertx vertx;
    private Mesh mesh;
    private HttpServer upstream;

    @TempDir
    Path dir;

    @BeforeEach
    void setUp() throws Exception {
        vertx = Vertx.vertx();
        upstream = vertx.createHttpServer().requestHandler(req -> req.response()
                .setStatusCode(req.path().startsWith("/fail") ? 503 : 200).putHeader("x-served-by", "reviews-a")
                .end("ok"));
        upstream.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void anOutboundConnectionManagersFileLoggersWriteTheirFormatsForTheRequestsTheirFiltersTake() throws Exception {
        Path text = dir.resolve("text.log");
        Path json = dir.resolve("json.log");
        String accessLog = textLogger(text, "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% "
                + "%RESP(X-SERVED-BY)% %REQ(X-TEST):3% %UPSTREAM_CLUSTER% 100%% %ROUTE_NAME% "
                + "%UPSTREAM_REQUEST_ATTEMPT_COUNT%")
                + celFileLogger("response.code >= 500 && request.headers['x-test'] == 'abcdef'", json) + """
                              log_format:
                                omit_empty_values: true
                                json_format:
                                  code: "%RESPONSE_CODE%"
                                  path: "%REQ(:PATH)%"
                                  flags: "%RESPONSE_FLAGS%"
                                  sni: "%REQUESTED_SERVER_NAME%"
                                  where: {cluster: "cluster=%UPSTREAM_CLUSTER%"}
                """;
        String config = MeshWebClientTest.config("", upstream.actualPort())
                .replace("          stat_prefix: outbound_0.0.0.0_9080\n",
                        "          stat_prefix: outbound_0.0.0.0_9080\n" + accessLog);
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, config);
        // the mesh's own access log setting is off: the configuration's loggers write all the same
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        WebClient client = mesh.webClient();
        assertEquals(200, client.get(9080, "reviews", "/ok").putHeader("x-test", "abcdef").send()
                .await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(503, client.get(9080, "reviews", "/fail").putHeader("x-test", "abcdef").send()
                .await(10, TimeUnit.SECONDS).statusCode());
        assertEquals(503, client.get(9080, "reviews", "/fail").putHeader("x-test", "other").send()
                .await(10, TimeUnit.SECONDS).statusCode());

        String cluster = "outbound|9080||reviews.default.svc.cluster.local";
        List<String> lines = lines(text, 3);
        assertEquals(List.of(
                "GET /ok 200 reviews-a abc " + cluster + " 100% default 1",
                "GET /fail 503 reviews-a abc " + cluster + " 100% default 1",
                "GET /fail 503 reviews-a oth " + cluster + " 100% default 1"), lines);
        // only the 5xx request whose x-test the CEL filter names, keys sorted, numbers typed, unknowns left out
        List<String> jsonLines = lines(json, 1);
        JsonNode j = new ObjectMapper().readTree(jsonLines.get(0));
        assertEquals(503, j.get("code").intValue());
        assertTrue(j.get("code").isNumber());
        assertEquals("/fail", j.get("path").textValue());
        assertEquals("-", j.get("flags").textValue());
        assertTrue(!j.has("sni"), jsonLines.get(0));
        assertEquals("cluster=" + cluster, j.get("where").get("cluster").textValue());
        assertEquals(List.of("code", "flags", "path", "where"), fieldNames(j));
        Thread.sleep(200);
        assertEquals(1, Files.readAllLines(json).size(), "the other requests did not pass the filter");
    }

    @Test
    void theInboundConnectionManagersFileLoggerWritesEnvoysDefaultFormatForTheRequestsItsStatusFilterTakes()
            throws Exception {
        Path log = dir.resolve("inbound.log");
        Path file = dir.resolve("inbound.yaml");
        Files.writeString(file, MeshWebClientTest.virtualInbound("""
                access_log:
                          - name: envoy.access_loggers.file
                            filter: {status_code_filter: {comparison: {op: GE, value: {default_value: 400, runtime_key: k}}}}
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                              path: %s
                """.formatted(log), """
                              routes:
                              - {name: all, match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setConfigFile(file.toString())
                .setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        HttpServer inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response()
                .setStatusCode(req.path().equals("/missing") ? 404 : 200).putHeader("x-envoy-upstream-service-time", "7")
                .end()));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        WebClient plain = WebClient.create(vertx);
        try {
            plain.get(inbound.actualPort(), "127.0.0.1", "/found").putHeader("user-agent", "curl/8")
                    .send().await(10, TimeUnit.SECONDS);
            plain.get(inbound.actualPort(), "127.0.0.1", "/missing").putHeader("user-agent", "curl/8")
                    .putHeader("x-request-id", "rid-1").send().await(10, TimeUnit.SECONDS);
            List<String> lines = lines(log, 1);
            // Envoy's default format: [start] "METHOD PATH PROTOCOL" code flags received sent duration
            // upstream-service-time "xff" "user-agent" "request-id" "authority" "upstream host"
            assertTrue(lines.get(0).matches("\\[\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z] \"GET /missing "
                    + "HTTP/1.1\" 404 - 0 0 \\d+ 7 \"-\" \"curl/8\" \"rid-1\" \"127.0.0.1:" + inbound.actualPort()
                    + "\" \"[^\"]+\""), lines.get(0));
            Thread.sleep(200);
            assertEquals(1, Files.readAllLines(log).size(), "the 200 is filtered out");
        } finally {
            plain.close();
            inbound.close();
        }
    }

    @Test
    void anInboundRequestsDownstreamRemoteAddressIsItsLastForwardedForIpAndItsDirectOneTheConnectionsPeer()
            throws Exception {
        // Envoy's connection manager (use_remote_address false): the last x-forwarded-for address when it is an IP,
        // port 0, else the peer; the direct address is always the peer. The forwarded addresses get no traffic
        Path log = dir.resolve("xff.log");
        Path file = dir.resolve("xff.yaml");
        Path cel = dir.resolve("cel.log");
        // and CEL's source.address and source.port, which Envoy's read from the same address
        Files.writeString(file, MeshWebClientTest.virtualInbound(textLogger(log, "%DOWNSTREAM_REMOTE_ADDRESS% "
                + "%DOWNSTREAM_REMOTE_PORT% %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%").strip() + "\n"
                + celFileLogger("source.port == 0 && source.address != '192.0.2.7:0'", cel) + """
                              log_format: {text_format_source: {inline_string: "%DOWNSTREAM_REMOTE_ADDRESS%\\n"}}
                """.stripTrailing(), """
                              routes:
                              - {name: all, match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """));
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        HttpServer inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response().end()));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        try {
            List<String> expected = new java.util.ArrayList<>();
            for (String xff : List.of("10.1.2.3, 192.0.2.7", "10.1.2.3, unknown", "2001:DB8::7", "")) {
                try (java.net.Socket s = new java.net.Socket("127.0.0.1", inbound.actualPort())) {
                    s.setSoTimeout(10_000);
                    s.getOutputStream().write(("GET / HTTP/1.1\r\nhost: svc\r\nx-forwarded-for: " + xff
                            + "\r\nconnection: close\r\n\r\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                    s.getInputStream().readAllBytes();
                    String peer = "127.0.0.1:" + s.getLocalPort();
                    expected.add(switch (xff) {
                        case "10.1.2.3, 192.0.2.7" -> "192.0.2.7:0 0 " + peer;
                        case "2001:DB8::7" -> "[2001:db8::7]:0 0 " + peer;
                        default -> peer + " " + s.getLocalPort() + " " + peer; // no IP last: the peer's
                    });
                }
                lines(log, expected.size());
            }
            assertEquals(expected, lines(log, expected.size()));
            assertEquals(List.of("[2001:db8::7]:0"), lines(cel, 1));
        } finally {
            inbound.close();
        }
    }

    @Test
    void upstreamClusterIsTheClustersAltStatNameAndUpstreamClusterRawItsNameAsEnvoyPrintsThem() throws Exception {
        Path text = dir.resolve("names.log");
        String accessLog = textLogger(text, "%UPSTREAM_CLUSTER% %UPSTREAM_CLUSTER_RAW%");
        String cluster = "outbound|9080||reviews.default.svc.cluster.local";
        String config = MeshWebClientTest.config("", upstream.actualPort())
                .replace("          stat_prefix: outbound_0.0.0.0_9080\n",
                        "          stat_prefix: outbound_0.0.0.0_9080\n" + accessLog)
                .replace("    type: STATIC\n", "    type: STATIC\n    alt_stat_name: reviews_9080\n");
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, config);
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        assertEquals(200, mesh.webClient().get(9080, "reviews", "/ok").send().await(10, TimeUnit.SECONDS)
                .statusCode());
        assertEquals(List.of("reviews_9080 " + cluster), lines(text, 1));
    }

    /** A connection manager's {@code access_log} with one file logger writing {@code format} lines to {@code log}. */
    /** A file logger writing {@code file} behind a CEL filter of {@code expression}, up to its {@code log_format}. */
    private static String celFileLogger(String expression, Path file) {
        return """
                          - name: envoy.access_loggers.file
                            filter:
                              extension_filter:
                                name: envoy.access_loggers.extension_filters.cel
                                typed_config:
                                  "@type": type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter
                                  expression: "%s"
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                              path: %s
                """.formatted(expression, file);
    }

    /** An {@code access_log} field with a file logger of {@code format} to {@code log}, indented by 10. */
    public static String textLogger(Path log, String format) {
        return """
                          access_log:
                          - name: envoy.access_loggers.file
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                              path: %s
                              log_format:
                                text_format_source:
                                  inline_string: "%s\\n"
                """.formatted(log, format);
    }

    private static List<String> fieldNames(JsonNode j) {
        List<String> names = new java.util.ArrayList<>();
        j.fieldNames().forEachRemaining(names::add);
        return names;
    }

    /** The file's lines once it has {@code n} (the writer thread writes behind the requests), within 5 s. */
    static List<String> lines(Path file, int n) throws Exception {
        long deadline = System.currentTimeMillis() + 5000;
        while (System.currentTimeMillis() < deadline) {
            if (Files.exists(file)) {
                List<String> lines = Files.readAllLines(file);
                if (lines.size() >= n) {
                    return lines;
                }
            }
            Thread.sleep(10);
        }
        throw new AssertionError(file + " did not get " + n + " lines: "
                + (Files.exists(file) ? Files.readAllLines(file) : "no file"));
    }
}
