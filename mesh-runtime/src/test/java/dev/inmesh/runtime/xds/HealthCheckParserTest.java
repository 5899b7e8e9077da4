package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.HealthCheck;
import dev.inmesh.api.config.core.HeaderValueOption;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class HealthCheckParserTest {
    private static final ClusterParser PARSER = new ClusterParser();
    private static final String CLUSTER = """
            {"name": "x", "type": "STATIC", "healthChecks": [%s]}""";
    private static final String REQUIRED = "\"timeout\": \"1s\", \"interval\": \"5s\", \"unhealthyThreshold\": 3, "
            + "\"healthyThreshold\": 2";

    private static Cluster parse(String check) throws Exception {
        return PARSER.parse(ClusterParserTest.proto(CLUSTER.formatted(check)));
    }

    private static String error(String check) throws Exception {
        var p = ClusterParserTest.proto(CLUSTER.formatted(check));
        return assertThrows(InvalidResourceException.class, () -> PARSER.parse(p)).getMessage();
    }

    @Test
    void anHttpCheckTakesEnvoysDefaultsForWhatItLeavesUnset() throws Exception {
        HealthCheck hc = parse("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/healthz\"}}").healthCheck();
        assertEquals(Duration.ofSeconds(1), hc.timeout());
        assertEquals(Duration.ofSeconds(5), hc.interval());
        assertEquals(3, hc.unhealthyThreshold());
        assertEquals(2, hc.healthyThreshold());
        assertEquals(Duration.ofSeconds(60), hc.noTrafficInterval());
        assertEquals(Duration.ofSeconds(60), hc.noTrafficHealthyInterval());
        // unhealthy_interval defaults to interval, unhealthy_edge_interval to unhealthy_interval, healthy_edge to
        // interval
        assertEquals(Duration.ofSeconds(5), hc.unhealthyInterval());
        assertEquals(Duration.ofSeconds(5), hc.unhealthyEdgeInterval());
        assertEquals(Duration.ofSeconds(5), hc.healthyEdgeInterval());
        assertEquals(Duration.ZERO, hc.intervalJitter());
        assertEquals(Duration.ZERO, hc.initialJitter());
        assertTrue(hc.reuseConnection());
        var http = (HealthCheck.Http) hc.checker();
        assertEquals("", http.host());
        assertEquals("GET", http.method());
        assertEquals(List.of(new HealthCheck.StatusRange(200, 201)), http.expectedStatuses());
        assertEquals(List.of(), http.retriableStatuses());
        assertEquals(false, http.http2());
    }

    /**
     * Envoy's health checkers configure their headers with the router's header parser: a command is kept as the
     * format it is; an operator Envoy does not know is refused by path.
     */
    @Test
    void aChecksHeaderValuesAreFormatStrings() throws Exception {
        var http = (HealthCheck.Http) parse("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/h\", "
                + "\"requestHeadersToAdd\": [{\"header\": {\"key\": \"x\", \"value\": \"%HOSTNAME%\"}}]}}")
                .healthCheck().checker();
        assertTrue(http.requestHeadersToAdd().get(0).formatted());
        String m = error("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/h\", \"requestHeadersToAdd\": "
                + "[{\"header\": {\"key\": \"x\", \"value\": \"%NOT_ENVOYS%\"}}]}}");
        assertTrue(m.contains("http_health_check.request_headers_to_add[0].header.value"), m);
    }

    @Test
    void everyImplementedFieldIsRead() throws Exception {
        HealthCheck hc = parse("{" + REQUIRED + """
                , "intervalJitter": "0.1s", "intervalJitterPercent": 10, "initialJitter": "2s",
                "noTrafficInterval": "30s", "noTrafficHealthyInterval": "40s", "unhealthyInterval": "7s",
                "unhealthyEdgeInterval": "3s", "healthyEdgeInterval": "4s", "reuseConnection": false,
                "alwaysLogHealthCheckFailures": true,
                "httpHealthCheck": {"host": "svc.local", "path": "/ready", "method": "HEAD",
                  "requestHeadersToAdd": [{"header": {"key": "x-probe", "value": "1"}}],
                  "requestHeadersToRemove": ["user-agent"],
                  "expectedStatuses": [{"start": 200, "end": 300}], "retriableStatuses": [{"start": 503, "end": 504}],
                  "codecClientType": "HTTP2"}}""").healthCheck();
        assertEquals(Duration.ofMillis(100), hc.intervalJitter());
        assertEquals(10, hc.intervalJitterPercent());
        assertEquals(Duration.ofSeconds(2), hc.initialJitter());
        assertEquals(Duration.ofSeconds(30), hc.noTrafficInterval());
        assertEquals(Duration.ofSeconds(40), hc.noTrafficHealthyInterval());
        assertEquals(Duration.ofSeconds(7), hc.unhealthyInterval());
        assertEquals(Duration.ofSeconds(3), hc.unhealthyEdgeInterval());
        assertEquals(Duration.ofSeconds(4), hc.healthyEdgeInterval());
        assertEquals(false, hc.reuseConnection());
        var http = (HealthCheck.Http) hc.checker();
        assertEquals(new HealthCheck.Http("svc.local", "/ready", "HEAD",
                List.of(new HeaderValueOption("x-probe", "1", HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD,
                        false)), List.of("user-agent"), List.of(new HealthCheck.StatusRange(200, 300)),
                List.of(new HealthCheck.StatusRange(503, 504)), true), http);
        assertEquals(new HealthCheck.Tcp(),
                parse("{" + REQUIRED + ", \"tcpHealthCheck\": {}}").healthCheck().checker());
        assertNull(parse("").healthCheck());
    }

    @Test
    void whatIsNotImplementedOrMissingIsRefusedByItsPath() throws Exception {
        String at = "Cluster \"x\": health_checks[0].";
        assertTrue(error("{" + REQUIRED + ", \"customHealthCheck\": {\"name\": \"envoy.health_checkers.redis\"}}")
                .startsWith(at + "custom_health_check: not supported"));
        assertEquals(at + "tcp_health_check.send.text: \"010\" (expected: a hex string of whole bytes, as Envoy "
                + "decodes it)", error("{" + REQUIRED + ", \"tcpHealthCheck\": {\"send\": {\"text\": \"010\"}}}"));
        assertEquals(at + "tcp_health_check.receive[0].payload: required (text or binary)",
                error("{" + REQUIRED + ", \"tcpHealthCheck\": {\"receive\": [{}]}}"));
        assertTrue(error("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/\", \"method\": \"POST\", "
                + "\"send\": {\"text\": \"6f6b\"}}}").startsWith(at + "http_health_check.send: not supported"));
        assertTrue(error("{" + REQUIRED + ", \"eventLogPath\": \"/tmp/hc\", \"tcpHealthCheck\": {}}")
                .startsWith(at + "event_log_path: not supported"));
        assertEquals(at + "http_health_check.codec_client_type: HTTP3 (expected: HTTP1 or HTTP2)",
                error("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/\", \"codecClientType\": \"HTTP3\"}}"));
        assertEquals(at + "http_health_check.path: required", error("{" + REQUIRED + ", \"httpHealthCheck\": {}}"));
        assertEquals(at + "http_health_check.expected_statuses[0].start: [99, 200) (expected: 100 <= start < end "
                + "<= 600, as Envoy requires)", error("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/\", "
                + "\"expectedStatuses\": [{\"start\": 99, \"end\": 200}]}}"));
        // an end past 600, or not past the start, is the end's fault
        assertEquals(at + "http_health_check.retriable_statuses[0].end: [500, 601) (expected: 100 <= start < end "
                + "<= 600, as Envoy requires)", error("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/\", "
                + "\"retriableStatuses\": [{\"start\": 500, \"end\": 601}]}}"));
        assertTrue(error("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/\", \"expectedStatuses\": [{"
                + "\"start\": 200, \"end\": 200}]}}").startsWith(at + "http_health_check.expected_statuses[0].end: "));
        assertEquals(at + "timeout: required", error("{\"interval\": \"5s\", \"unhealthyThreshold\": 3, "
                + "\"healthyThreshold\": 2, \"tcpHealthCheck\": {}}"));
        assertEquals(at + "health_checker: required (http_health_check, tcp_health_check or grpc_health_check)",
                error("{" + REQUIRED + "}"));
        assertEquals(at + "unhealthy_threshold: required", error("{\"timeout\": \"1s\", \"interval\": "
                + "\"5s\", \"healthyThreshold\": 2, \"tcpHealthCheck\": {}}"));
        assertEquals(at + "interval: PT0S (expected: > 0s)", error("{\"timeout\": \"1s\", \"interval\": "
                + "\"0s\", \"unhealthyThreshold\": 3, \"healthyThreshold\": 2, \"tcpHealthCheck\": {}}"));
        assertEquals("Cluster \"x\": health_checks: 2 health checks (expected: at most one)",
                error("{" + REQUIRED + ", \"tcpHealthCheck\": {}}, {" + REQUIRED + ", \"tcpHealthCheck\": {}}"));
    }

    @Test
    void zeroThresholdsAndSubMillisecondDurationsLoadAsEnvoysValidationLetsThem() throws Exception {
        // Envoy only requires the thresholds, and its durations be above zero
        HealthCheck hc = parse("{\"timeout\": \"0.0005s\", \"interval\": \"0.0001s\", \"unhealthyThreshold\": 0, "
                + "\"healthyThreshold\": 0, \"noTrafficInterval\": \"0.0002s\", \"tcpHealthCheck\": {}}").healthCheck();
        assertEquals(0, hc.unhealthyThreshold());
        assertEquals(0, hc.healthyThreshold());
        assertEquals(Duration.ofNanos(500_000), hc.timeout());
        assertEquals(Duration.ofNanos(100_000), hc.interval());
        assertEquals(Duration.ofNanos(200_000), hc.noTrafficInterval());
    }

    @Test
    void aGrpcCheckLoadsOnAClusterWithHttp2ToItsHosts() throws Exception {
        var p = ClusterParserTest.proto("""
                {"name": "x", "type": "STATIC", "healthChecks": [{%s, "grpcHealthCheck": {"serviceName": "svc",
                   "authority": "grpc.local", "initialMetadata": [{"header": {"key": "x-probe", "value": "1"}}]}}],
                 "http2ProtocolOptions": {}}""".formatted(REQUIRED));
        assertEquals(new HealthCheck.Grpc("svc", "grpc.local", List.of(new HeaderValueOption("x-probe", "1",
                HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD, false))),
                PARSER.parse(p).healthCheck().checker());
        assertEquals(new HealthCheck.Grpc("", "", List.of()), parse2("{" + REQUIRED + ", \"grpcHealthCheck\": {}}"));
    }

    /**
     * As Envoy's HealthCheckerFactory ("cluster must support HTTP/2 for gRPC healthchecking"), where
     * use_downstream_protocol_config gives the HTTP2 feature only with http2_protocol_options.
     */
    @Test
    void aGrpcCheckIsRefusedOnAClusterWithoutHttp2() throws Exception {
        String at = "Cluster \"x\": health_checks[0].grpc_health_check: on a cluster without HTTP/2";
        String e = error("{" + REQUIRED + ", \"grpcHealthCheck\": {}}");
        assertTrue(e.startsWith(at), e);
        String downstream = """
                {"name": "x", "type": "STATIC", "healthChecks": [{%s, "grpcHealthCheck": {}}],
                 "typedExtensionProtocolOptions": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                   "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                   "useDownstreamProtocolConfig": {%s}}}}""";
        var h1Only = ClusterParserTest.proto(downstream.formatted(REQUIRED, "\"httpProtocolOptions\": {}"));
        e = assertThrows(InvalidResourceException.class, () -> PARSER.parse(h1Only)).getMessage();
        assertTrue(e.startsWith(at), e);
        var both = ClusterParserTest.proto(downstream.formatted(REQUIRED, "\"http2ProtocolOptions\": {}"));
        assertEquals(new HealthCheck.Grpc("", "", List.of()), PARSER.parse(both).healthCheck().checker());
    }

    private static HealthCheck.Checker parse2(String check) throws Exception {
        var p = ClusterParserTest.proto("""
                {"name": "x", "type": "STATIC", "healthChecks": [%s], "typedExtensionProtocolOptions": {
                  "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicitHttpConfig": {"http2ProtocolOptions": {}}}}}""".formatted(check));
        return PARSER.parse(p).healthCheck().checker();
    }

    @Test
    void aClusterWithTlsToItsHostsRefusesHealthChecksWhichSpeakPlaintext() throws Exception {
        var p = ClusterParserTest.proto("""
                {"name": "x", "type": "STATIC", "healthChecks": [{%s, "tcpHealthCheck": {}}],
                 "transportSocket": {"name": "envoy.transport_sockets.tls", "typedConfig": {
                   "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"}}}
                """.formatted(REQUIRED));
        String e = assertThrows(InvalidResourceException.class, () -> PARSER.parse(p)).getMessage();
        assertTrue(e.startsWith("Cluster \"x\": health_checks: a health check on a cluster with TLS"), e);
    }

    @Test
    void payloadsAreReadAsHexOrBytesForTcpAndHttpChecks() throws Exception {
        HealthCheck.Tcp tcp = (HealthCheck.Tcp) parse("{" + REQUIRED + ", \"tcpHealthCheck\": {\"send\": {\"text\": "
                + "\"50494E470D0A\"}, \"receive\": [{\"text\": \"2b4f4b\"}, {\"binary\": \"bWFzdGVy\"}]}}")
                .healthCheck().checker();
        assertEquals("PING\r\n", new String(tcp.send().bytes(), java.nio.charset.StandardCharsets.US_ASCII));
        assertEquals(List.of(new HealthCheck.Payload("2b4f4b"), HealthCheck.Payload.of("master".getBytes())),
                tcp.receive());
        HealthCheck.Http http = (HealthCheck.Http) parse("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/\", "
                + "\"receive\": [{\"text\": \"6f6b\"}], \"responseBufferSize\": 0}}").healthCheck().checker();
        assertEquals(List.of(new HealthCheck.Payload("6f6b")), http.receive());
        assertEquals(0, http.responseBufferSize());
        HealthCheck.Http plain = (HealthCheck.Http) parse("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/\"}}")
                .healthCheck().checker();
        assertEquals(List.of(), plain.receive());
        assertEquals(1024, plain.responseBufferSize(), "Envoy's default");
        // as Envoy: blocks longer than the buffer they are looked for in are refused; a binary send writes nothing;
        // an empty binary block is found anywhere; a non-ASCII digit is no hex
        assertEquals("Cluster \"x\": health_checks[0].http_health_check.receive: 3 bytes (expected: at most "
                + "response_buffer_size, 2)", error("{" + REQUIRED + ", \"httpHealthCheck\": {\"path\": \"/\", "
                + "\"receive\": [{\"text\": \"6f6b\"}, {\"text\": \"21\"}], \"responseBufferSize\": 2}}"));
        HealthCheck.Tcp binary = (HealthCheck.Tcp) parse("{" + REQUIRED + ", \"tcpHealthCheck\": {\"send\": "
                + "{\"binary\": \"UElORw==\"}, \"receive\": [{\"binary\": \"\"}]}}").healthCheck().checker();
        assertNull(binary.send());
        assertEquals(List.of(new HealthCheck.Payload("")), binary.receive());
        assertTrue(error("{" + REQUIRED + ", \"tcpHealthCheck\": {\"receive\": [{\"text\": \"\u0661\u0662\"}]}}")
                .contains("tcp_health_check.receive[0].text"));
    }
}
