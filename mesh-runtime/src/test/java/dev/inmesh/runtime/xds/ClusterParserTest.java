package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.util.JsonFormat;
import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.CircuitBreakers.RoutingPriority;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.DnsLookupFamily;
import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.core.TcpKeepalive;
import io.envoyproxy.envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ClusterParserTest {
    static final JsonFormat.TypeRegistry TYPES = JsonFormat.TypeRegistry.newBuilder()
            .add(UpstreamTlsContext.getDescriptor())
            .add(RawBuffer.getDescriptor())
            .add(HttpProtocolOptions.getDescriptor())
            .add(com.github.udpa.udpa.type.v1.TypedStruct.getDescriptor())
            .add(io.envoyproxy.envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig.getDescriptor())
            .add(io.envoyproxy.envoy.extensions.network.dns_resolver.getaddrinfo.v3.GetAddrInfoDnsResolverConfig
                    .getDescriptor())
            .build();
    private static final ClusterParser PARSER = new ClusterParser();
    private static final Map<String, Cluster> ISTIO = new HashMap<>();

    @BeforeAll
    static void parseIstiosClusters() throws Exception {
        String json;
        try (InputStream in = ClusterParserTest.class.getResourceAsStream("/istio/clusters.json")) {
            json = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        var array = com.fasterxml.jackson.databind.json.JsonMapper.builder().build().readTree(json);
        for (var node : array) {
            var builder = io.envoyproxy.envoy.config.cluster.v3.Cluster.newBuilder();
            JsonFormat.parser().usingTypeRegistry(TYPES).merge(node.toString(), builder);
            Cluster c = PARSER.parse(builder.build());
            ISTIO.put(c.name(), c);
        }
    }

    static io.envoyproxy.envoy.config.cluster.v3.Cluster proto(String json) throws Exception {
        var builder = io.envoyproxy.envoy.config.cluster.v3.Cluster.newBuilder();
        JsonFormat.parser().usingTypeRegistry(TYPES).merge(json, builder);
        return builder.build();
    }

    private static String error(String json) throws Exception {
        var p = proto(json);
        return assertThrows(InvalidResourceException.class, () -> PARSER.parse(p)).getMessage();
    }

    @Test
    void aStaticClustersHostMustBeAnIpAddressWhereADnsClustersMayBeAName() throws Exception {
        String cluster = """
                {"name": "c", "type": "%s", "connect_timeout": "1s", "load_assignment": {"cluster_name": "c",
                 "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address":
                   {"address": "api.example.com", "port_value": 443}}}}]}]}}""";
        assertEquals("Cluster \"c\": load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address."
                + "address: malformed IP address: api.example.com (expected: an IP address; a name is resolved only"
                + " by a STRICT_DNS or LOGICAL_DNS cluster)", error(cluster.formatted("STATIC")));
        assertEquals("api.example.com", PARSER.parse(proto(cluster.formatted("STRICT_DNS"))).loadAssignment()
                .endpoints().get(0).lbEndpoints().get(0).address().address());
        assertEquals(DiscoveryType.LOGICAL_DNS, PARSER.parse(proto(cluster.formatted("LOGICAL_DNS"))).type());
    }

    @Test
    void parsesIstiosOutboundEdsCluster() {
        Cluster c = ISTIO.get("outbound|9080||reviews.default.svc.cluster.local");
        assertEquals(DiscoveryType.EDS, c.type());
        assertEquals("outbound|9080||reviews.default.svc.cluster.local", c.serviceName());
        assertEquals(LbPolicy.LEAST_REQUEST, c.lbPolicy());
        assertEquals(LbConfig.LeastRequest.DEFAULTS, c.lbConfig());
        assertEquals(Duration.ofSeconds(10), c.connectTimeout());
        assertEquals(4_294_967_295L, c.circuitBreakers().forPriority(RoutingPriority.DEFAULT).maxRequests());
        assertEquals(4_294_967_295L, c.circuitBreakers().forPriority(RoutingPriority.DEFAULT).maxRetries());
        assertEquals(1024, c.circuitBreakers().forPriority(RoutingPriority.HIGH).maxRequests());
        assertEquals(50.0, c.commonLbConfig().healthyPanicThreshold());
        assertEquals(9080.0, c.metadata().get("istio", "default_original_port"));
        assertFalse(c.http2());
        assertNull(c.outlierDetection());
    }

    @Test
    void parsesIstiosPassthroughClusters() {
        Cluster out = ISTIO.get("PassthroughCluster");
        assertEquals(DiscoveryType.ORIGINAL_DST, out.type());
        assertEquals(LbPolicy.CLUSTER_PROVIDED, out.lbPolicy());
        Cluster in = ISTIO.get("InboundPassthroughCluster");
        assertEquals(new SocketAddress("127.0.0.6", 0), in.upstreamBindAddress());
    }

    @Test
    void parsesIstiosStaticClusters() {
        assertNull(ISTIO.get("BlackHoleCluster").loadAssignment());
        Cluster inbound = ISTIO.get("inbound|9080||");
        assertEquals(DiscoveryType.STATIC, inbound.type());
        assertEquals(new SocketAddress("127.0.0.1", 9080),
                inbound.loadAssignment().endpoints().get(0).lbEndpoints().get(0).address());
        assertEquals(new SocketAddress("127.0.0.6", 0), inbound.upstreamBindAddress());
    }

    @Test
    void istiosPassthroughClustersUseTheDownstreamsProtocol() {
        for (String name : new String[] {"PassthroughCluster", "InboundPassthroughCluster"}) {
            assertTrue(ISTIO.get(name).useDownstreamProtocol(), name);
            assertFalse(ISTIO.get(name).http2(), name);
        }
        assertFalse(ISTIO.get("outbound|9080||reviews.default.svc.cluster.local").useDownstreamProtocol());
    }

    @Test
    void explicitHttp2ProtocolOptionsSelectH2c() {
        Cluster istiod = ISTIO.get("outbound|15010||istiod.istio-system.svc.cluster.local");
        assertTrue(istiod.http2());
        assertFalse(istiod.useDownstreamProtocol());
        assertTrue(istiod.commonLbConfig().localityWeighted());
    }

    @Test
    void theHttp2ProtocolOptionsAreReadWhereverTheySelectHttp2WithEnvoysDefaults() throws Exception {
        // Istio writes a DestinationRule's connectionPool.http.maxConcurrentStreams as max_concurrent_streams
        assertEquals(new Http2ProtocolOptions(4096, 1_073_741_824, null, null),
                ISTIO.get("outbound|15010||istiod.istio-system.svc.cluster.local").http2ProtocolOptions());
        String typed = """
                {"name": "c", "type": "STATIC",
                 "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                   "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                   "%s": {"http2_protocol_options": {"max_concurrent_streams": 2, "hpack_table_size": 0,
                     "initial_stream_window_size": 65535, "initial_connection_window_size": 2147483647}}}}}
                """;
        Http2ProtocolOptions set = new Http2ProtocolOptions(0, 2, 65_535, Integer.MAX_VALUE);
        assertEquals(set, PARSER.parse(proto(typed.formatted("explicit_http_config"))).http2ProtocolOptions());
        // under use_downstream_protocol_config they tune the pool of the requests that go over HTTP/2
        assertEquals(set, PARSER.parse(proto(typed.formatted("use_downstream_protocol_config")))
                .http2ProtocolOptions());
        // the deprecated cluster field
        assertEquals(new Http2ProtocolOptions(4096, 100, null, null), PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "http2_protocol_options": {"max_concurrent_streams": 100}}
                """)).http2ProtocolOptions());
        // unset: Envoy's defaults but for the windows, which keep HTTP/2's
        assertEquals(Http2ProtocolOptions.DEFAULTS, PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "http2_protocol_options": {}}
                """)).http2ProtocolOptions());
        assertEquals(new Http2ProtocolOptions(4096, Integer.MAX_VALUE, null, null), Http2ProtocolOptions.DEFAULTS);
        // the outbound flood limits and the choice of codec change nothing a well-behaved upstream sees; what an
        // invalid message costs is read (a connection manager applies it)
        assertEquals(new Http2ProtocolOptions(4096, Integer.MAX_VALUE, null, null, true), PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "http2_protocol_options": {"max_outbound_frames": 10000,
                 "max_outbound_control_frames": 1000, "max_consecutive_inbound_frames_with_empty_payload": 1,
                 "max_inbound_priority_frames_per_stream": 100,
                 "max_inbound_window_update_frames_per_data_frame_sent": 10, "use_oghttp2_codec": true,
                 "max_metadata_size": 1024, "override_stream_error_on_invalid_http_message": true,
                 "stream_error_on_invalid_http_messaging": true}}
                """)).http2ProtocolOptions());
        // the inbound flood limits are read (a connection manager applies them to its clients)
        assertEquals(new Http2ProtocolOptions(4096, Integer.MAX_VALUE, null, null, false, 5, 3, 0),
                PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "http2_protocol_options": {"max_inbound_priority_frames_per_stream": 5,
                 "max_inbound_window_update_frames_per_data_frame_sent": 3,
                 "max_consecutive_inbound_frames_with_empty_payload": 0}}
                """)).http2ProtocolOptions());
    }

    @Test
    void http2ProtocolOptionsOutOfRangeOrNotAppliedAreRejectedByName() throws Exception {
        String typed = staticWithHttpProtocolOptions("\"explicit_http_config\": {\"http2_protocol_options\": {%s}}");
        String at = "Cluster \"x\": typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3."
                + "HttpProtocolOptions\"].explicit_http_config.http2_protocol_options.";
        assertEquals(at + "max_concurrent_streams: 0 (expected: 1..2147483647)",
                error(typed.formatted("\"max_concurrent_streams\": 0")));
        assertEquals(at + "max_concurrent_streams: 2147483648 (expected: <= 2147483647)",
                error(typed.formatted("\"max_concurrent_streams\": 2147483648")));
        assertEquals(at + "initial_stream_window_size: 65534 (expected: 65535..2147483647)",
                error(typed.formatted("\"initial_stream_window_size\": 65534")));
        assertEquals(at + "initial_connection_window_size: 4294967295 (expected: <= 2147483647)",
                error(typed.formatted("\"initial_connection_window_size\": 4294967295")));
        for (String field : new String[] {"\"allow_connect\": true", "\"allow_metadata\": true",
                "\"connection_keepalive\": {\"timeout\": \"5s\"}",
                "\"custom_settings_parameters\": [{\"identifier\": 9, \"value\": 1}]"}) {
            String name = field.substring(1, field.indexOf('"', 1));
            assertTrue(error(typed.formatted(field)).startsWith(at + name + ": not supported"), field);
        }
        assertEquals("Cluster \"x\": http2_protocol_options.max_concurrent_streams: 0 (expected: 1..2147483647)",
                error("{\"name\": \"x\", \"type\": \"STATIC\", \"http2_protocol_options\": "
                        + "{\"max_concurrent_streams\": 0}}"));
    }

    /** A cluster whose typed protocol options' {@code %s} (a way to give them) has {@code %s} as HTTP/1 options. */
    private static final String TYPED_HTTP1 = """
            {"name": "c", "type": "EDS", "eds_cluster_config": {"eds_config": {"ads": {}}},
             "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
               "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
               "%s": {"http_protocol_options": %s}}}}
            """;

    @Test
    void upstreamHttp1OptionsInmeshDoesNotApplyAreRefusedByName() throws Exception {
        String typed = TYPED_HTTP1;
        // Istio's empty options, its preserveHttp1HeaderCase, and server-side options that change nothing upstream
        PARSER.parse(proto(typed.formatted("use_downstream_protocol_config", "{}")));
        PARSER.parse(proto(typed.formatted("explicit_http_config", """
                {"header_key_format": {"stateful_formatter": {"name": "preserve_case"}}, "accept_http_10": true}""")));
        String[][] refused = {{"send_fully_qualified_url", "true"},
                {"allow_chunked_length", "true"}, {"header_key_format", "{\"proper_case_words\": {}}"}};
        for (String[] f : refused) {
            String options = "{\"" + f[0] + "\": " + f[1] + "}";
            var e = assertThrows(InvalidResourceException.class,
                    () -> PARSER.parse(proto(typed.formatted("explicit_http_config", options))));
            assertTrue(e.getMessage().contains("explicit_http_config.http_protocol_options." + f[0]), e.getMessage());
            var deprecated = assertThrows(InvalidResourceException.class, () -> PARSER.parse(proto("""
                    {"name": "c", "type": "STATIC", "http_protocol_options": %s}
                    """.formatted(options))));
            assertTrue(deprecated.getMessage().contains("http_protocol_options." + f[0]), deprecated.getMessage());
        }
    }

    @Test
    void enableTrailersKeepsAnHttp1HostsTrailersWhicheverWayTheOptionsCome() throws Exception {
        String typed = TYPED_HTTP1;
        for (String how : new String[] {"explicit_http_config", "use_downstream_protocol_config"}) {
            assertTrue(PARSER.parse(proto(typed.formatted(how, "{\"enable_trailers\": true}"))).http1Trailers(), how);
            assertFalse(PARSER.parse(proto(typed.formatted(how, "{}"))).http1Trailers(), how);
        }
        assertTrue(PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "http_protocol_options": {"enable_trailers": true}}
                """)).http1Trailers());
        // Envoy's default, and Istio's: dropped
        assertFalse(PARSER.parse(proto("{\"name\": \"c\", \"type\": \"STATIC\"}")).http1Trailers());
    }

    @Test
    void upstreamResponseLimitsInmeshDoesNotImplementAreRefusedByName() throws Exception {
        // at the values that change nothing they load
        PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "common_http_protocol_options": {"max_stream_duration": "0s",
                 "max_headers_count": 100, "max_response_headers_kb": 60, "headers_with_underscores_action": "ALLOW"}}
                """));
        String[][] refused = {{"max_headers_count", "50"},
                {"max_response_headers_kb", "96"}, {"headers_with_underscores_action", "\"REJECT_REQUEST\""}};
        for (String[] f : refused) {
            var e = assertThrows(InvalidResourceException.class, () -> PARSER.parse(proto("""
                    {"name": "c", "type": "EDS", "eds_cluster_config": {"eds_config": {"ads": {}}},
                     "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                       "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                       "common_http_protocol_options": {"%s": %s},
                       "explicit_http_config": {"http_protocol_options": {}}}}}
                    """.formatted(f[0], f[1]))));
            assertTrue(e.getMessage().contains("common_http_protocol_options." + f[0]), e.getMessage());
        }
    }

    @Test
    void theUpstreamConnectionLifetimesAreReadWithEnvoysDefaults() throws Exception {
        // Istio writes a DestinationRule's idleTimeout, maxConnectionDuration and maxRequestsPerConnection here
        Cluster dr = PARSER.parse(proto("""
                {"name": "c", "type": "EDS", "eds_cluster_config": {"eds_config": {"ads": {}}},
                 "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                   "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                   "common_http_protocol_options": {"idle_timeout": "30s", "max_connection_duration": "600s",
                     "max_requests_per_connection": 1},
                   "use_downstream_protocol_config": {"http_protocol_options": {}, "http2_protocol_options": {}}}}}
                """));
        assertEquals(new CommonHttpProtocolOptions(Duration.ofSeconds(30), Duration.ofMinutes(10), 1),
                dr.commonHttpProtocolOptions());
        Cluster limited = PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "common_http_protocol_options": {"max_stream_duration": "2.5s"}}
                """));
        assertEquals(Duration.ofMillis(2500), limited.commonHttpProtocolOptions().maxStreamDuration());
        assertEquals(new CommonHttpProtocolOptions(Duration.ofHours(1), Duration.ZERO, 0),
                ISTIO.get("outbound|9080||reviews.default.svc.cluster.local").commonHttpProtocolOptions());
        Cluster deprecated = PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "common_http_protocol_options": {"idle_timeout": "0s"}}
                """));
        assertEquals(Duration.ZERO, deprecated.commonHttpProtocolOptions().idleTimeout());
        Cluster unset = PARSER.parse(proto("""
                {"name": "c", "type": "STATIC"}
                """));
        assertEquals(CommonHttpProtocolOptions.DEFAULTS, unset.commonHttpProtocolOptions());
        assertEquals(Duration.ofHours(1), CommonHttpProtocolOptions.DEFAULTS.idleTimeout());
    }

    @Test
    void theClustersDeprecatedMaxRequestsPerConnectionIsTakenUnlessTheProtocolOptionsSetOne() throws Exception {
        // as Envoy's ClusterInfoImpl (and Istio before 1.14, which wrote it there)
        Cluster old = PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "max_requests_per_connection": 3,
                 "common_http_protocol_options": {"idle_timeout": "5s"}}
                """));
        assertEquals(new CommonHttpProtocolOptions(Duration.ofSeconds(5), Duration.ZERO, 3),
                old.commonHttpProtocolOptions());
        Cluster typed = PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "max_requests_per_connection": 4,
                 "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                   "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                   "common_http_protocol_options": {"idle_timeout": "30s"},
                   "explicit_http_config": {"http_protocol_options": {}}}}}
                """));
        assertEquals(new CommonHttpProtocolOptions(Duration.ofSeconds(30), Duration.ZERO, 4),
                typed.commonHttpProtocolOptions());
        var both = assertThrows(InvalidResourceException.class, () -> PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "max_requests_per_connection": 4,
                 "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                   "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                   "common_http_protocol_options": {"max_requests_per_connection": 2},
                   "explicit_http_config": {"http_protocol_options": {}}}}}
                """)));
        assertTrue(both.getMessage().contains("max_requests_per_connection: set beside"), both.getMessage());
    }

    @Test
    void waitForWarmOnInitTrueIsEnvoysDefaultAndTakenWhileFalseIsRefusedByName() throws Exception {
        assertEquals("c", PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "wait_for_warm_on_init": true}
                """)).name());
        var refused = assertThrows(InvalidResourceException.class, () -> PARSER.parse(proto("""
                {"name": "c", "type": "STATIC", "wait_for_warm_on_init": false}
                """)));
        assertTrue(refused.getMessage().contains("wait_for_warm_on_init: false is not supported"),
                refused.getMessage());
    }

    @Test
    void theTcpKeepaliveOfTheUpstreamConnectionOptionsIsRead() throws Exception {
        // as Istio writes a DestinationRule's connectionPool.tcp.tcpKeepalive (time and interval in seconds)
        String cluster = "{\"name\": \"x\", \"type\": \"STATIC\"%s}";
        assertEquals(null, PARSER.parse(proto(cluster.formatted(""))).tcpKeepalive());
        assertEquals(new TcpKeepalive(3, 300, 75), PARSER.parse(proto(cluster.formatted("""
                , "upstreamConnectionOptions": {"tcpKeepalive": {"keepaliveProbes": 3, "keepaliveTime": 300,
                 "keepaliveInterval": 75}}"""))).tcpKeepalive());
        // empty: SO_KEEPALIVE with the system's values
        assertEquals(TcpKeepalive.SYSTEM_DEFAULTS, PARSER.parse(proto(cluster.formatted("""
                , "upstreamConnectionOptions": {"tcpKeepalive": {}}"""))).tcpKeepalive());
        // options without tcp_keepalive: none; the interface name only serves Envoy's extensions
        assertEquals(null, PARSER.parse(proto(cluster.formatted("""
                , "upstreamConnectionOptions": {"setLocalInterfaceNameOnUpstreamConnections": true}""")))
                .tcpKeepalive());
    }

    @Test
    void aTcpKeepaliveTheKernelWouldRefuseAndHappyEyeballsAreRejectedByName() throws Exception {
        String cluster = "{\"name\": \"x\", \"type\": \"STATIC\", \"upstreamConnectionOptions\": %s}";
        assertEquals("Cluster \"x\": upstream_connection_options.tcp_keepalive.keepalive_time: 0 "
                + "(expected: 1..32767 seconds)",
                error(cluster.formatted("{\"tcpKeepalive\": {\"keepaliveTime\": 0}}")));
        assertEquals("Cluster \"x\": upstream_connection_options.tcp_keepalive.keepalive_interval: 40000 "
                + "(expected: 1..32767 seconds)",
                error(cluster.formatted("{\"tcpKeepalive\": {\"keepaliveInterval\": 40000}}")));
        assertEquals("Cluster \"x\": upstream_connection_options.tcp_keepalive.keepalive_probes: 128 "
                + "(expected: 1..127)", error(cluster.formatted("{\"tcpKeepalive\": {\"keepaliveProbes\": 128}}")));
        assertEquals("Cluster \"x\": upstream_connection_options.tcp_keepalive.keepalive_probes: 4294967295 "
                + "(expected: <= 2147483647)",
                error(cluster.formatted("{\"tcpKeepalive\": {\"keepaliveProbes\": 4294967295}}")));
        assertTrue(error(cluster.formatted("{\"happyEyeballsConfig\": {\"firstAddressFamilyVersion\": \"V4\"}}"))
                .startsWith("Cluster \"x\": upstream_connection_options.happy_eyeballs_config: not supported"));
    }

    @Test
    void istiodsDnsClusterWithItsJitterAndCaresResolverLoadsAndOtherResolverSettingsAreRefusedByName()
            throws Exception {
        // the shape istiod (1.22 and later) writes for a ServiceEntry with resolution: DNS
        String dns = """
                {"name": "outbound|80||svc.example", "type": "STRICT_DNS", "connect_timeout": "10s",
                 "dns_refresh_rate": "60s", "respect_dns_ttl": true, "dns_lookup_family": "V4_ONLY", %s
                 "load_assignment": {"cluster_name": "outbound|80||svc.example", "endpoints":
                 [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "svc.example",
                 "port_value": 80}}}}]}]}}""";
        String istiod = """
                "dns_jitter": "0.100s",
                "typed_dns_resolver_config": {"name": "envoy.network.dns_resolver.cares", "typed_config": {
                  "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
                  "udp_max_queries": 100}},""";
        Cluster c = PARSER.parse(proto(dns.formatted(istiod)));
        assertEquals(Duration.ofMillis(100), c.dnsJitter());
        assertTrue(c.respectDnsTtl());
        assertEquals(Duration.ZERO, PARSER.parse(proto(dns.formatted(""))).dnsJitter());

        assertEquals("Cluster \"outbound|80||svc.example\": typed_dns_resolver_config.typed_config.resolvers: "
                + "not supported by Inmesh (field of CaresDnsResolverConfig); remove it or leave it unset",
                error(dns.formatted("""
                "typed_dns_resolver_config": {"name": "envoy.network.dns_resolver.cares", "typed_config": {
                  "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
                  "resolvers": [{"socket_address": {"address": "127.0.0.53", "port_value": 53}}]}},""")));
        assertTrue(error(dns.formatted("""
                "typed_dns_resolver_config": {"name": "envoy.network.dns_resolver.getaddrinfo", "typed_config": {
                  "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.getaddrinfo.v3.GetAddrInfoDnsResolverConfig"}},"""))
                .startsWith("Cluster \"outbound|80||svc.example\": typed_dns_resolver_config.typed_config: "
                        + "envoy.extensions.network.dns_resolver.getaddrinfo.v3.GetAddrInfoDnsResolverConfig"));
        assertTrue(error(dns.formatted("\"dns_jitter\": \"-1s\",")).contains("dns_jitter"));
    }

    @Test
    void aDnsFailureRefreshRateIsReadWithItsMaxTenTimesItsBaseByDefaultAndBadIntervalsAreRefusedByName()
            throws Exception {
        String dns = """
                {"name": "d", "type": "LOGICAL_DNS", "dns_refresh_rate": "30s", "dns_failure_refresh_rate": %s,
                 "load_assignment": {"cluster_name": "d", "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
                 {"socket_address": {"address": "svc.example", "port_value": 80}}}}]}]}}""";
        assertEquals(new Cluster.RefreshRate(Duration.ofSeconds(2), Duration.ofSeconds(30)),
                PARSER.parse(proto(dns.formatted("{\"base_interval\": \"2s\", \"max_interval\": \"30s\"}")))
                        .dnsFailureRefreshRate());
        assertEquals(Duration.ofMillis(5_000), PARSER.parse(proto(dns.formatted("{\"base_interval\": \"0.5s\"}")))
                .dnsFailureRefreshRate().maxInterval());
        assertEquals(Duration.ofSeconds(2), PARSER.parse(proto(dns.formatted("{\"base_interval\": \"2s\", "
                + "\"max_interval\": \"2s\"}"))).dnsFailureRefreshRate().maxInterval());
        // Envoy's validation and its prepareDnsRefreshStrategy: base_interval required and above 1 ms, max_interval
        // above 1 ms and not below the base
        assertEquals("Cluster \"d\": dns_failure_refresh_rate.base_interval: missing (required)",
                error(dns.formatted("{\"max_interval\": \"2s\"}")));
        assertTrue(error(dns.formatted("{\"base_interval\": \"0.001s\"}"))
                .contains("dns_failure_refresh_rate.base_interval"));
        assertTrue(error(dns.formatted("{\"base_interval\": \"7s\", \"max_interval\": \"2s\"}"))
                .contains("dns_failure_refresh_rate.max_interval"));
        assertNull(PARSER.parse(proto(dns.formatted("null"))).dnsFailureRefreshRate());
    }

    @Test
    void anOriginalDstClustersUpstreamPortOverrideAndHeaderSettingsAreRead() throws Exception {
        // istiod's passthrough cluster of a Service whose port 80 targets 8080 (its PassthroughTargetPorts)
        String od = """
                {"name": "outbound|80||headless.default.svc.cluster.local", "type": "ORIGINAL_DST",
                 "lb_policy": "CLUSTER_PROVIDED", "connect_timeout": "10s", "original_dst_lb_config": %s}""";
        Cluster c = PARSER.parse(proto(od.formatted("{\"upstream_port_override\": 8080}")));
        assertEquals(new dev.inmesh.api.config.cluster.LbConfig.OriginalDst(8080), c.lbConfig());
        assertEquals(new dev.inmesh.api.config.cluster.LbConfig.Default(), PARSER.parse(proto(od.formatted("{}")))
                .lbConfig());
        assertEquals(new dev.inmesh.api.config.cluster.LbConfig.OriginalDst(0, "x-envoy-original-dst-host"),
                PARSER.parse(proto(od.formatted("{\"use_http_header\": true}"))).lbConfig());
        assertEquals(new dev.inmesh.api.config.cluster.LbConfig.OriginalDst(8080, "x-target"),
                PARSER.parse(proto(od.formatted("{\"use_http_header\": true, \"http_header_name\": \"X-Target\","
                        + " \"upstream_port_override\": 8080}"))).lbConfig());
        // as Envoy's ORIGINAL_DST cluster: a header name without use_http_header is refused
        assertTrue(error(od.formatted("{\"http_header_name\": \"x-target\"}"))
                .contains("original_dst_lb_config.http_header_name: x-target (set use_http_header to true"));
        assertTrue(error(od.formatted("{\"upstream_port_override\": 70000}"))
                .contains("original_dst_lb_config.upstream_port_override: 70000 (expected: 0 to 65535)"));
    }

    @Test
    void theDnsLookupFamilyIsReadWithEnvoysDefault() throws Exception {
        String dns = """
                {"name": "dns", "type": "STRICT_DNS", %s "load_assignment": {"cluster_name": "dns", "endpoints":
                 [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "svc.example",
                 "port_value": 80}}}}]}]}}""";
        assertEquals(DnsLookupFamily.AUTO, PARSER.parse(proto(dns.formatted(""))).dnsLookupFamily());
        // Istio's DNS clusters: a minute's refresh rate, the records' TTLs respected
        Cluster istio = PARSER.parse(proto(dns.formatted("\"dns_refresh_rate\": \"60s\", \"respect_dns_ttl\": true,")));
        assertTrue(istio.respectDnsTtl());
        assertEquals(Duration.ofSeconds(60), istio.dnsRefreshRate());
        assertFalse(PARSER.parse(proto(dns.formatted(""))).respectDnsTtl());
        for (DnsLookupFamily f : DnsLookupFamily.values()) {
            String field = "\"dns_lookup_family\": \"" + f + "\",";
            assertEquals(f, PARSER.parse(proto(dns.formatted(field))).dnsLookupFamily());
        }
    }

    @Test
    void theHealthyPanicThresholdIsRoundedToAWholePercentAsEnvoyRoundsIt() throws Exception {
        for (double[] given : new double[][] {{0.4, 0}, {50.5, 51}, {33.3, 33}, {100, 100}}) {
            Cluster c = PARSER.parse(proto("""
                    {"name": "x", "type": "STATIC", "commonLbConfig": {"healthyPanicThreshold": {"value": %s}}}"""
                    .formatted(given[0])));
            assertEquals(given[1], c.commonLbConfig().healthyPanicThreshold(), "healthy_panic_threshold " + given[0]);
        }
    }

    @Test
    void readsEveryOutlierDetectionFieldWithEnvoysDefaults() throws Exception {
        Cluster c = PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "outlierDetection": {"consecutive5xx": 3,
                 "baseEjectionTime": "10s", "maxEjectionPercent": 50, "splitExternalLocalOriginErrors": true}}"""));
        var od = c.outlierDetection();
        assertEquals(3, od.consecutive5xx());
        assertEquals(Duration.ofSeconds(10), od.baseEjectionTime());
        assertEquals(Duration.ofSeconds(300), od.maxEjectionTime());
        assertEquals(50, od.maxEjectionPercent());
        assertEquals(0, od.enforcingConsecutiveGatewayFailure());
        assertEquals(Duration.ofSeconds(10), od.interval());
        assertTrue(od.splitExternalLocalOriginErrors());
        assertFalse(od.alwaysEjectOneHost());
        assertTrue(od.successfulActiveHealthCheckUnejectHost());
        assertFalse(PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "outlierDetection": {"successfulActiveHealthCheckUnejectHost": false}}
                """)).outlierDetection().successfulActiveHealthCheckUnejectHost());
    }

    @Test
    void useHostnameForHashingLoadsOnAStrictDnsClusterOnlyAndAHashBalanceFactorIsRefused() throws Exception {
        assertTrue(PARSER.parse(proto("""
                {"name": "x", "type": "STRICT_DNS", "lbPolicy": "RING_HASH",
                 "loadAssignment": {"clusterName": "x", "endpoints": [{"lbEndpoints": [{"endpoint": {"address":
                   {"socketAddress": {"address": "a.example", "portValue": 80}}}}]}]},
                 "commonLbConfig": {"consistentHashingLbConfig": {"useHostnameForHashing": true}}}"""))
                .commonLbConfig().useHostnameForHashing());
        assertEquals("Cluster \"x\": common_lb_config.consistent_hashing_lb_config.use_hostname_for_hashing: true "
                + "on a EDS cluster (expected: a STRICT_DNS cluster)", error("""
                {"name": "x", "type": "EDS", "edsClusterConfig": {"edsConfig": {"ads": {}}}, "lbPolicy": "MAGLEV",
                 "commonLbConfig": {"consistentHashingLbConfig": {"useHostnameForHashing": true}}}"""));
        assertTrue(error("""
                {"name": "x", "type": "STRICT_DNS", "lbPolicy": "RING_HASH",
                 "commonLbConfig": {"consistentHashingLbConfig": {"hashBalanceFactor": 150}}}""")
                .startsWith("Cluster \"x\": common_lb_config.consistent_hashing_lb_config.hash_balance_factor: "
                        + "not supported"));
    }

    @Test
    void zoneAwareLbConfigLoadsWithFailTrafficOnPanicAndItsZoneRoutingSettingsWhichNeedALocalClusterChangeNothing()
            throws Exception {
        assertTrue(PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "commonLbConfig": {"zoneAwareLbConfig": {"failTrafficOnPanic": true,
                 "routingEnabled": {"value": 50}, "minClusterSize": "3"}}}""")).commonLbConfig().failTrafficOnPanic());
        assertFalse(PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "commonLbConfig": {"zoneAwareLbConfig": {}}}"""))
                .commonLbConfig().failTrafficOnPanic());
    }

    @Test
    void maxEjectionTimeJitterIsReadAndNoneByDefault() throws Exception {
        assertEquals(Duration.ofMillis(1500), PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "outlierDetection": {"maxEjectionTimeJitter": "1.5s"}}"""))
                .outlierDetection().maxEjectionTimeJitter());
        assertEquals(Duration.ZERO, PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "outlierDetection": {}}""")).outlierDetection().maxEjectionTimeJitter());
        assertEquals("Cluster \"x\": outlier_detection.max_ejection_time_jitter: PT-1S (expected: >= 0s)", error("""
                {"name": "x", "type": "STATIC", "outlierDetection": {"maxEjectionTimeJitter": "-1s"}}"""));
    }

    @Test
    void alwaysEjectOneHostIsReadTrueOrFalse() throws Exception {
        for (boolean given : new boolean[] {true, false}) {
            Cluster c = PARSER.parse(proto("""
                    {"name": "x", "type": "STATIC", "outlierDetection": {"alwaysEjectOneHost": %s}}"""
                    .formatted(given)));
            assertEquals(given, c.outlierDetection().alwaysEjectOneHost());
        }
    }

    @Test
    void readsRingHashAndMaglevSettings() throws Exception {
        assertEquals(new LbConfig.RingHash(2048, 4096), PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "RING_HASH",
                 "ringHashLbConfig": {"minimumRingSize": "2048", "maximumRingSize": "4096"}}""")).lbConfig());
        assertEquals(new LbConfig.RingHash(1024, 8_388_608, LbConfig.RingHash.HashFunction.MURMUR_HASH_2),
                PARSER.parse(proto("""
                        {"name": "x", "type": "STATIC", "lbPolicy": "RING_HASH",
                         "ringHashLbConfig": {"hashFunction": "MURMUR_HASH_2"}}""")).lbConfig());
        assertEquals(new LbConfig.Maglev(251), PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "MAGLEV", "maglevLbConfig": {"tableSize": "251"}}"""))
                .lbConfig());
    }

    @Test
    void aRingSizeOfZeroLoadsAsEnvoysSchemaAllowsIt() throws Exception {
        // ring_hash_lb_config's sizes are bounded by 8388608 only; a ring of 0 entries then picks no host
        assertEquals(new LbConfig.RingHash(0, 8_388_608), PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "RING_HASH",
                 "ringHashLbConfig": {"minimumRingSize": "0"}}""")).lbConfig());
        assertEquals(new LbConfig.RingHash(0, 0), PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "RING_HASH",
                 "ringHashLbConfig": {"minimumRingSize": "0", "maximumRingSize": "0"}}""")).lbConfig());
        // a maximum of 0 under the default minimum of 1024 is Envoy's minimum_ring_size > maximum_ring_size
        assertEquals("Cluster \"x\": ring_hash_lb_config.minimum_ring_size: 1024 (expected: <= maximum_ring_size "
                + "0)", error("""
                {"name": "x", "type": "STATIC", "lbPolicy": "RING_HASH",
                 "ringHashLbConfig": {"maximumRingSize": "0"}}"""));
    }

    @Test
    void ringHashAndMaglevSettingsOutOfRangeAreRejectedByTheirPathOnce() throws Exception {
        assertEquals("Cluster \"x\": ring_hash_lb_config.minimum_ring_size: 4096 (expected: <= maximum_ring_size "
                + "1024)", error("""
                {"name": "x", "type": "STATIC", "lbPolicy": "RING_HASH",
                 "ringHashLbConfig": {"minimumRingSize": "4096", "maximumRingSize": "1024"}}"""));
        assertEquals("Cluster \"x\": maglev_lb_config.table_size: 100 (expected: a prime up to 5000011)", error("""
                {"name": "x", "type": "STATIC", "lbPolicy": "MAGLEV", "maglevLbConfig": {"tableSize": "100"}}"""));
    }

    @Test
    void aNegativeActiveRequestBiasOrAnAggressionOfZeroOrLessLoadsAsOneAsEnvoyTakesThem() throws Exception {
        // Envoy's load balancers log such a value and use 1.0; the cluster loads
        assertEquals(new LbConfig.LeastRequest(2, 1.0), PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "LEAST_REQUEST",
                 "leastRequestLbConfig": {"activeRequestBias": {"defaultValue": -1, "runtimeKey": "k"}}}"""))
                .lbConfig());
        for (String aggression : new String[] {"-1", "0", "\"NaN\""}) {
            assertEquals(new LbConfig.RoundRobin(new LbConfig.SlowStart(Duration.ofSeconds(60), 1.0, 10.0)),
                    PARSER.parse(proto("""
                            {"name": "x", "type": "STATIC", "roundRobinLbConfig": {"slowStartConfig": {
                             "slowStartWindow": "60s", "aggression": {"defaultValue": %s, "runtimeKey": "k"}}}}"""
                            .formatted(aggression))).lbConfig(), aggression);
        }
        // a bias of 0 is Envoy's round robin by weight, kept
        assertEquals(new LbConfig.LeastRequest(2, 0.0), PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "LEAST_REQUEST",
                 "leastRequestLbConfig": {"activeRequestBias": {"defaultValue": 0}}}""")).lbConfig());
    }

    @Test
    void readsIstiosWarmupDurationAsASlowStartOfRoundRobinOrLeastRequest() throws Exception {
        // what Istio writes for a DestinationRule's loadBalancer {simple: ROUND_ROBIN, warmupDurationSecs: 60s}
        assertEquals(new LbConfig.RoundRobin(new LbConfig.SlowStart(Duration.ofSeconds(60), 1.0, 10.0)),
                PARSER.parse(proto("""
                        {"name": "x", "type": "STATIC", "lbPolicy": "ROUND_ROBIN",
                         "roundRobinLbConfig": {"slowStartConfig": {"slowStartWindow": "60s"}}}""")).lbConfig());
        // and for LEAST_REQUEST (Istio's default policy) from a DestinationRule's warmup {duration, aggression,
        // minimumPercent}: Istio writes the runtime key "(", which names nothing
        assertEquals(new LbConfig.LeastRequest(2, 1.0,
                        new LbConfig.SlowStart(Duration.ofSeconds(120), 2.5, 25.0)),
                PARSER.parse(proto("""
                        {"name": "x", "type": "STATIC", "lbPolicy": "LEAST_REQUEST",
                         "leastRequestLbConfig": {"slowStartConfig": {"slowStartWindow": "120s",
                           "aggression": {"defaultValue": 2.5, "runtimeKey": "("},
                           "minWeightPercent": {"value": 25}}}}""")).lbConfig());
        // no window, or a window of zero, is no slow start (Envoy's rule), and an empty round_robin_lb_config too
        for (String rr : new String[] {"{}", "{\"slowStartConfig\": {}}",
                "{\"slowStartConfig\": {\"slowStartWindow\": \"0s\"}}"}) {
            assertEquals(new LbConfig.Default(), PARSER.parse(proto(
                    "{\"name\": \"x\", \"type\": \"STATIC\", \"roundRobinLbConfig\": " + rr + "}")).lbConfig(),
                    rr);
        }
    }

    @Test
    void aSlowStartOutOfRangeIsRejectedByPath() throws Exception {
        assertEquals("Cluster \"x\": least_request_lb_config.slow_start_config.min_weight_percent.value: 150.0 "
                + "(expected: 0 to 100)", error("""
                {"name": "x", "type": "STATIC", "lbPolicy": "LEAST_REQUEST", "leastRequestLbConfig":
                 {"slowStartConfig": {"slowStartWindow": "60s", "minWeightPercent": {"value": 150}}}}"""));
    }

    @Test
    void anLbConfigOfAnotherPolicyLoadsAndChangesNothingAsInEnvoy() throws Exception {
        // Envoy's load balancer reads only its own policy's settings; the others are never looked at
        Cluster random = PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "RANDOM",
                 "roundRobinLbConfig": {"slowStartConfig": {"slowStartWindow": "60s"}}}"""));
        assertEquals(LbPolicy.RANDOM, random.lbPolicy());
        assertEquals(new LbConfig.Default(), random.lbConfig());
        assertEquals(new LbConfig.Default(), PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "ROUND_ROBIN",
                 "ringHashLbConfig": {"minimumRingSize": "4096", "maximumRingSize": "1024"}}""")).lbConfig());
        assertEquals(LbConfig.RingHash.DEFAULTS, PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "RING_HASH", "maglevLbConfig": {"tableSize": "100"}}"""))
                .lbConfig());
        assertEquals(LbConfig.Maglev.DEFAULTS, PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "lbPolicy": "MAGLEV",
                 "originalDstLbConfig": {"upstreamPortOverride": 8080}}""")).lbConfig());
    }

    private static final String POLICIES = "type.googleapis.com/envoy.extensions.load_balancing_policies.";

    /** A cluster read from YAML as a configuration file is (types Inmesh has no class for kept as TypedStructs). */
    private static io.envoyproxy.envoy.config.cluster.v3.Cluster yaml(String yaml) throws Exception {
        return EnvoyJson.toMessage(EnvoyJson.tree(yaml), io.envoyproxy.envoy.config.cluster.v3.Cluster.class);
    }

    /** A cluster {@code x} of {@code type} whose load_balancing_policy lists {@code policies} (YAML list items). */
    private static io.envoyproxy.envoy.config.cluster.v3.Cluster typed(String type, String extra, String... policies)
            throws Exception {
        StringBuilder b = new StringBuilder("name: x\ntype: " + type + "\n" + extra
                + "load_balancing_policy:\n  policies:\n");
        for (String p : policies) {
            b.append("  - typed_extension_config: ").append(p).append('\n');
        }
        return yaml(b.toString());
    }

    private static String typedError(String type, String extra, String... policies) throws Exception {
        var p = typed(type, extra, policies);
        return assertThrows(InvalidResourceException.class, () -> PARSER.parse(p)).getMessage();
    }

    @Test
    void theFirstLoadBalancingPolicyOfATypeEnvoyKnowsIsTheClustersAndLbPolicyIsNotRead() throws Exception {
        // an entry of a type Envoy has no load balancer for (here a TypedStruct of one) is skipped, as Envoy does
        Cluster c = PARSER.parse(typed("STATIC", "lb_policy: LOAD_BALANCING_POLICY_CONFIG\n",
                "{name: mine, typed_config: {'@type': type.googleapis.com/xds.type.v3.TypedStruct, "
                        + "type_url: type.googleapis.com/com.example.MyBalancer, value: {spread: 3}}}",
                "{name: rr, typed_config: {'@type': " + POLICIES + "round_robin.v3.RoundRobin, "
                        + "slow_start_config: {slow_start_window: 60s}, "
                        + "locality_lb_config: {locality_weighted_lb_config: {}}}}",
                "{name: lr, typed_config: {'@type': " + POLICIES + "least_request.v3.LeastRequest}}"));
        assertEquals(LbPolicy.ROUND_ROBIN, c.lbPolicy());
        assertEquals(new LbConfig.RoundRobin(new LbConfig.SlowStart(Duration.ofSeconds(60), 1.0, 10.0)),
                c.lbConfig());
        assertTrue(c.commonLbConfig().localityWeighted());
        // lb_policy and the lb_config of the enum's policy are not read once load_balancing_policy is set
        c = PARSER.parse(typed("STATIC", "lb_policy: RING_HASH\nring_hash_lb_config: {minimum_ring_size: 9999999}\n"
                        + "common_lb_config: {healthy_panic_threshold: {value: 20}}\n",
                "{name: lr, typed_config: {'@type': " + POLICIES + "least_request.v3.LeastRequest, "
                        + "choice_count: 3, active_request_bias: {default_value: 0.5, runtime_key: k}, "
                        + "locality_lb_config: {zone_aware_lb_config: {fail_traffic_on_panic: true, "
                        + "min_cluster_size: 3}}}}"));
        assertEquals(LbPolicy.LEAST_REQUEST, c.lbPolicy());
        assertEquals(new LbConfig.LeastRequest(3, 0.5), c.lbConfig());
        assertEquals(dev.inmesh.api.config.cluster.CommonLbConfig.DEFAULTS.withHealthyPanicThreshold(20)
                .withFailTrafficOnPanic(true), c.commonLbConfig());
    }

    @Test
    void envoysTypedPoliciesMapOntoTheirLbPolicyAndSettings() throws Exception {
        Cluster random = PARSER.parse(typed("STATIC", "", "{typed_config: {'@type': " + POLICIES
                + "random.v3.Random}}"));
        assertEquals(LbPolicy.RANDOM, random.lbPolicy());
        assertEquals(dev.inmesh.api.config.cluster.CommonLbConfig.DEFAULTS, random.commonLbConfig());
        Cluster ring = PARSER.parse(typed("STATIC", "", "{typed_config: {'@type': " + POLICIES
                + "ring_hash.v3.RingHash, hash_function: MURMUR_HASH_2, minimum_ring_size: 64, "
                + "maximum_ring_size: 128, locality_weighted_lb_config: {}}}"));
        assertEquals(LbPolicy.RING_HASH, ring.lbPolicy());
        assertEquals(new LbConfig.RingHash(64, 128, LbConfig.RingHash.HashFunction.MURMUR_HASH_2), ring.lbConfig());
        assertTrue(ring.commonLbConfig().localityWeighted());
        // DEFAULT_HASH is xxHash, as Envoy documents it; the defaults are the ring_hash_lb_config's
        for (String function : new String[] {"DEFAULT_HASH", "XX_HASH"}) {
            assertEquals(LbConfig.RingHash.DEFAULTS, PARSER.parse(typed("STATIC", "", "{typed_config: {'@type': "
                    + POLICIES + "ring_hash.v3.RingHash, hash_function: " + function + "}}")).lbConfig());
        }
        Cluster maglev = PARSER.parse(typed("STRICT_DNS", "load_assignment: {cluster_name: x, endpoints: "
                        + "[{lb_endpoints: [{endpoint: {address: {socket_address: {address: a.example, "
                        + "port_value: 80}}}}]}]}\n",
                "{typed_config: {'@type': " + POLICIES + "maglev.v3.Maglev, table_size: 251, "
                        + "consistent_hashing_lb_config: {use_hostname_for_hashing: true}}}"));
        assertEquals(LbPolicy.MAGLEV, maglev.lbPolicy());
        assertEquals(new LbConfig.Maglev(251), maglev.lbConfig());
        assertTrue(maglev.commonLbConfig().useHostnameForHashing());
        // in a TypedStruct (udpa's or xDS's), as an EnvoyFilter may write one
        Cluster inStruct = PARSER.parse(typed("STATIC", "", "{typed_config: {'@type': "
                + "type.googleapis.com/udpa.type.v1.TypedStruct, type_url: " + POLICIES + "least_request.v3"
                + ".LeastRequest, value: {choice_count: 4, slow_start_config: {slow_start_window: 10s}}}}"));
        assertEquals(new LbConfig.LeastRequest(4, 1.0, new LbConfig.SlowStart(Duration.ofSeconds(10), 1.0, 10.0)),
                inStruct.lbConfig());
        // an ORIGINAL_DST cluster's own original_dst_lb_config still applies under cluster_provided
        Cluster passthrough = PARSER.parse(typed("ORIGINAL_DST", "lb_policy: CLUSTER_PROVIDED\n"
                        + "original_dst_lb_config: {upstream_port_override: 8080}\n",
                "{typed_config: {'@type': " + POLICIES + "cluster_provided.v3.ClusterProvided}}"));
        assertEquals(LbPolicy.CLUSTER_PROVIDED, passthrough.lbPolicy());
        assertEquals(new LbConfig.OriginalDst(8080), passthrough.lbConfig());
    }

    @Test
    void aTypedPolicyMakesTheSameClusterAsItsEnumPolicyWithTheSameSettings() throws Exception {
        String hosts = "load_assignment: {cluster_name: x, endpoints: [{lb_endpoints: [{endpoint: {address: "
                + "{socket_address: {address: 10.0.0.1, port_value: 80}}}}]}]}\n";
        assertEquals(PARSER.parse(yaml("name: x\ntype: STATIC\n" + hosts + "lb_policy: RING_HASH\n"
                        + "ring_hash_lb_config: {minimum_ring_size: 16, hash_function: MURMUR_HASH_2}\n"
                        + "common_lb_config: {healthy_panic_threshold: {value: 30}, locality_weighted_lb_config: {}}")),
                PARSER.parse(typed("STATIC", hosts + "common_lb_config: {healthy_panic_threshold: {value: 30}}\n",
                        "{typed_config: {'@type': " + POLICIES + "ring_hash.v3.RingHash, minimum_ring_size: 16, "
                                + "hash_function: MURMUR_HASH_2, locality_weighted_lb_config: {}}}")));
        assertEquals(PARSER.parse(yaml("name: x\ntype: STATIC\n" + hosts + "lb_policy: LEAST_REQUEST\n"
                        + "least_request_lb_config: {choice_count: 3, slow_start_config: {slow_start_window: 5s}}\n"
                        + "common_lb_config: {zone_aware_lb_config: {fail_traffic_on_panic: true}}")),
                PARSER.parse(typed("STATIC", hosts, "{typed_config: {'@type': " + POLICIES
                        + "least_request.v3.LeastRequest, choice_count: 3, slow_start_config: {slow_start_window: 5s},"
                        + " locality_lb_config: {zone_aware_lb_config: {fail_traffic_on_panic: true}}}}")));
    }

    @Test
    void aPolicyEnvoyWouldBalanceWithButInmeshDoesNotImplementIsRefusedByName() throws Exception {
        // skipping it would balance otherwise than Envoy: refused, even with a policy Inmesh serves after it
        String rr = "{typed_config: {'@type': " + POLICIES + "round_robin.v3.RoundRobin}}";
        assertEquals("Cluster \"x\": load_balancing_policy.policies[0].typed_extension_config.typed_config: "
                + "envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3"
                + ".ClientSideWeightedRoundRobin is not supported by Inmesh (one of Envoy's load balancing policies, "
                + "which Envoy would balance with: expected round_robin, least_request, random, ring_hash, maglev "
                + "or cluster_provided first)", typedError("STATIC", "",
                "{name: wrr, typed_config: {'@type': " + POLICIES
                        + "client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin}}", rr));
        assertTrue(typedError("STATIC", "", "{typed_config: {'@type': " + POLICIES + "wrr_locality.v3.WrrLocality, "
                + "endpoint_picking_policy: {policies: [{typed_extension_config: " + rr + "}]}}}", rr)
                .contains("wrr_locality.v3.WrrLocality is not supported"));
        // one newer than Inmesh's protos, in the TypedStruct a configuration file makes of it
        assertTrue(typedError("STATIC", "", "{typed_config: {'@type': " + POLICIES + "override_host.v3.OverrideHost,"
                + " override_host_sources: [{header: x-host}]}}", rr).contains("policies[0].typed_extension_config"
                + ".typed_config: envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost is not "
                + "supported"));
        // none of a type Envoy knows: the cluster fails, naming them
        assertEquals("Cluster \"x\": load_balancing_policy.policies: no policy of a type Envoy has a load balancer "
                + "for, among [mine, ] (expected: one of Envoy's envoy.extensions.load_balancing_policies.*)",
                typedError("STATIC", "", "{name: mine, typed_config: {'@type': type.googleapis.com/com.example.Lb}}",
                        "{}"));
    }

    @Test
    void aTypedPolicysFieldInmeshDoesNotImplementAndWhatEnvoyRefusesAreRefusedByPath() throws Exception {
        String at = "Cluster \"x\": load_balancing_policy.policies[0].typed_extension_config.typed_config.";
        assertTrue(typedError("STATIC", "", "{typed_config: {'@type': " + POLICIES + "ring_hash.v3.RingHash, "
                + "consistent_hashing_lb_config: {hash_balance_factor: 150}}}").startsWith(at
                + "consistent_hashing_lb_config.hash_balance_factor: not supported"));
        assertTrue(typedError("STATIC", "", "{typed_config: {'@type': " + POLICIES + "ring_hash.v3.RingHash, "
                + "hash_balance_factor: 150}}").startsWith(at + "hash_balance_factor: not supported"));
        assertEquals(at + "minimum_ring_size: 0 (expected: 1 to 8388608)", typedError("STATIC", "",
                "{typed_config: {'@type': " + POLICIES + "ring_hash.v3.RingHash, minimum_ring_size: 0}}"));
        assertTrue(typedError("STATIC", "", "{typed_config: {'@type': " + POLICIES + "least_request.v3.LeastRequest, "
                + "selection_method: FULL_SCAN}}").startsWith(at + "selection_method: not supported"));
        assertEquals(at + "choice_count: 1 (expected: >= 2)", typedError("STATIC", "", "{typed_config: {'@type': "
                + POLICIES + "least_request.v3.LeastRequest, choice_count: 1}}"));
        assertEquals(at + "consistent_hashing_lb_config.use_hostname_for_hashing: true on a STATIC cluster "
                + "(expected: a STRICT_DNS cluster)", typedError("STATIC", "", "{typed_config: {'@type': " + POLICIES
                + "maglev.v3.Maglev, consistent_hashing_lb_config: {use_hostname_for_hashing: true}}}"));
        assertEquals(at.substring(0, at.length() - 1) + ": envoy.extensions.load_balancing_policies.cluster_provided"
                + ".v3.ClusterProvided on a STATIC "
                + "cluster (expected: an ORIGINAL_DST cluster, the one type that provides its load balancer)",
                typedError("STATIC", "", "{typed_config: {'@type': " + POLICIES
                        + "cluster_provided.v3.ClusterProvided}}"));
        // as Envoy: the field is required with LOAD_BALANCING_POLICY_CONFIG, and takes the place of common_lb_config's
        // locality and hashing settings
        assertEquals("Cluster \"x\": load_balancing_policy: required with lb_policy LOAD_BALANCING_POLICY_CONFIG",
                error("{\"name\": \"x\", \"type\": \"STATIC\", \"lbPolicy\": \"LOAD_BALANCING_POLICY_CONFIG\"}"));
        assertEquals("Cluster \"x\": common_lb_config.locality_weighted_lb_config: cannot be combined with "
                + "load_balancing_policy (set it in the policy's own config, as Envoy requires)", typedError("STATIC",
                "common_lb_config: {locality_weighted_lb_config: {}}\n",
                "{typed_config: {'@type': " + POLICIES + "random.v3.Random}}"));
        // an ORIGINAL_DST cluster takes lb_policy CLUSTER_PROVIDED and the cluster provided policy only
        assertEquals("Cluster \"x\": lb_policy: LOAD_BALANCING_POLICY_CONFIG (expected: CLUSTER_PROVIDED for an "
                + "ORIGINAL_DST cluster, with load_balancing_policy too)", typedError("ORIGINAL_DST",
                "lb_policy: LOAD_BALANCING_POLICY_CONFIG\n",
                "{typed_config: {'@type': " + POLICIES + "cluster_provided.v3.ClusterProvided}}"));
        assertTrue(typedError("ORIGINAL_DST", "lb_policy: CLUSTER_PROVIDED\n", "{typed_config: {'@type': " + POLICIES
                + "round_robin.v3.RoundRobin}}").endsWith("round_robin.v3.RoundRobin on an ORIGINAL_DST cluster "
                + "(expected: envoy.extensions.load_balancing_policies.cluster_provided.v3.ClusterProvided)"));
    }

    @Test
    void clusterProvidedOutsideOriginalDstIsRejected() throws Exception {
        assertEquals("Cluster \"x\": lb_policy: CLUSTER_PROVIDED (expected: not CLUSTER_PROVIDED for a STATIC "
                + "cluster)", error("{\"name\": \"x\", \"type\": \"STATIC\", \"lbPolicy\": \"CLUSTER_PROVIDED\"}"));
    }

    @Test
    void aNegativeOrZeroConnectTimeoutIsRejected() throws Exception {
        assertEquals("Cluster \"x\": connect_timeout: PT0S (expected: > 0s)",
                error("{\"name\": \"x\", \"type\": \"STATIC\", \"connectTimeout\": \"0s\"}"));
    }

    @Test
    void anUnsupportedFieldIsRejectedWithItsPath() throws Exception {
        assertTrue(error("{\"name\": \"x\", \"type\": \"STATIC\", \"preconnectPolicy\": "
                + "{\"perUpstreamPreconnectRatio\": 1.5}}")
                .startsWith("Cluster \"x\": preconnect_policy: not supported"));
        // Envoy closes the tcp_proxy connections of a host outlier detection ejects: not implemented
        assertTrue(error("{\"name\": \"x\", \"type\": \"STATIC\", \"closeConnectionsOnHostHealthFailure\": true}")
                .startsWith("Cluster \"x\": close_connections_on_host_health_failure: not supported"));
        // with health checks, a host that leaves goes at once rather than when its checks fail it
        assertTrue(PARSER.parse(proto("{\"name\": \"x\", \"type\": \"STATIC\", "
                + "\"ignoreHealthOnHostRemoval\": true}")).ignoreHealthOnHostRemoval());
        assertFalse(PARSER.parse(proto("{\"name\": \"x\", \"type\": \"STATIC\"}")).ignoreHealthOnHostRemoval());
    }

    @Test
    void readsMaxConnectionPoolsPerPriorityUnlimitedWhenUnset() throws Exception {
        Cluster c = PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "circuitBreakers": {"thresholds": [
                  {"maxConnectionPools": 2}, {"priority": "HIGH", "maxConnectionPools": 4294967295}
                ]}}"""));
        assertEquals(2, c.circuitBreakers().forPriority(RoutingPriority.DEFAULT).maxConnectionPools());
        assertEquals(4294967295L, c.circuitBreakers().forPriority(RoutingPriority.HIGH).maxConnectionPools());
        Cluster unset = PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "circuitBreakers": {"thresholds": [{"maxConnections": 5}]}}"""));
        assertEquals(CircuitBreakers.Thresholds.NO_LIMIT,
                unset.circuitBreakers().forPriority(RoutingPriority.DEFAULT).maxConnectionPools());
        assertEquals(CircuitBreakers.Thresholds.NO_LIMIT,
                unset.circuitBreakers().forPriority(RoutingPriority.HIGH).maxConnectionPools());
    }

    @Test
    void readsTrackRemainingAsIstioWritesIt() throws Exception {
        Cluster c = PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "circuitBreakers": {"thresholds": [
                  {"maxConnections": 4294967295, "maxPendingRequests": 4294967295, "maxRequests": 4294967295,
                   "maxRetries": 4294967295, "trackRemaining": true}
                ]}}"""));
        assertTrue(c.circuitBreakers().forPriority(RoutingPriority.DEFAULT).trackRemaining());
        assertFalse(c.circuitBreakers().forPriority(RoutingPriority.HIGH).trackRemaining());
    }

    @Test
    void readsARetryBudgetWithEnvoysDefaultsForItsUnsetFields() throws Exception {
        Cluster c = PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "circuitBreakers": {"thresholds": [
                  {"retryBudget": {}},
                  {"priority": "HIGH", "retryBudget": {"budgetPercent": {"value": 25.5}, "minRetryConcurrency": 10}}
                ]}}"""));
        assertEquals(new CircuitBreakers.RetryBudget(20, 3),
                c.circuitBreakers().forPriority(RoutingPriority.DEFAULT).retryBudget());
        assertEquals(new CircuitBreakers.RetryBudget(25.5, 10),
                c.circuitBreakers().forPriority(RoutingPriority.HIGH).retryBudget());
        assertEquals(null, PARSER.parse(proto("""
                {"name": "x", "type": "STATIC", "circuitBreakers": {"thresholds": [{"maxRetries": 5}]}}"""))
                .circuitBreakers().forPriority(RoutingPriority.DEFAULT).retryBudget());
    }

    @Test
    void anEdsClusterNeedsItsEdsConfigOverAds() throws Exception {
        assertEquals("Cluster \"x\": eds_cluster_config: required for an EDS cluster",
                error("{\"name\": \"x\", \"type\": \"EDS\"}"));
        assertEquals("Cluster \"x\": eds_cluster_config.eds_config.config_source_specifier: only ads is supported",
                error("{\"name\": \"x\", \"type\": \"EDS\", \"edsClusterConfig\": {\"edsConfig\": "
                        + "{\"resourceApiVersion\": \"V3\"}}}"));
    }

    @Test
    void aTlsTransportSocketWithoutItsUpstreamTlsContextIsRejected() throws Exception {
        assertTrue(error("""
                {"name": "x", "type": "STATIC", "transportSocket": {"name": "envoy.transport_sockets.tls"}}""")
                .startsWith("Cluster \"x\": transport_socket.typed_config: an envoy.extensions.transport_sockets.tls"
                        + ".v3.UpstreamTlsContext is required"));
    }

    @Test
    void anUnknownUpstreamNetworkFilterIsRejected() throws Exception {
        assertTrue(error("{\"name\": \"x\", \"type\": \"STATIC\", \"filters\": [{\"name\": \"my.filter\"}]}")
                .startsWith("Cluster \"x\": filters[0].name: \"my.filter\" is not supported"));
    }

    @Test
    void aLowMaximumEjectionTimeIsRejected() throws Exception {
        assertEquals("Cluster \"x\": outlier_detection.max_ejection_time: PT5S (expected: >= base_ejection_time "
                + "PT30S)", error("""
                {"name": "x", "type": "STATIC", "outlierDetection": {"maxEjectionTime": "5s"}}"""));
    }

    @Test
    void aStrictDnsClusterWithoutALoadAssignmentIsAnEmptyOneWhereALogicalDnsClusterNeedsItsOneEndpoint()
            throws Exception {
        // as Envoy, which initializes a DNS cluster without endpoints at once, empty
        Cluster none = PARSER.parse(proto("{\"name\": \"x\", \"type\": \"STRICT_DNS\"}"));
        Cluster empty = PARSER.parse(proto("""
                {"name": "x", "type": "STRICT_DNS", "load_assignment": {"cluster_name": "x"}}"""));
        assertEquals(empty.loadAssignment(), none.loadAssignment());
        assertTrue(none.loadAssignment().endpoints().isEmpty());
        assertEquals("Cluster \"x\": load_assignment: null (expected: hosts for a LOGICAL_DNS cluster)",
                error("{\"name\": \"x\", \"type\": \"LOGICAL_DNS\"}"));
        assertEquals("Cluster \"x\": load_assignment: 0 endpoints in 0 localities (expected: a single locality with "
                + "a single endpoint for a LOGICAL_DNS cluster)", error("""
                {"name": "x", "type": "LOGICAL_DNS", "load_assignment": {"cluster_name": "x"}}"""));
    }

    @Test
    void anOriginalDstClusterWithALoadAssignmentIsRejectedAsEnvoyRejectsIt() throws Exception {
        String cluster = """
                {"name": "x", "type": "ORIGINAL_DST", "lb_policy": "CLUSTER_PROVIDED"%s}""";
        assertEquals(dev.inmesh.api.config.cluster.DiscoveryType.ORIGINAL_DST,
                PARSER.parse(proto(cluster.formatted(""))).type());
        String endpoints = """
                , "load_assignment": {"cluster_name": "x", "endpoints": [{"lb_endpoints": [{"endpoint": {"address":
                  {"socket_address": {"address": "127.0.0.1", "port_value": 8000}}}}]}]}""";
        assertEquals("Cluster \"x\": load_assignment: ORIGINAL_DST clusters must have no load assignment configured",
                error(cluster.formatted(endpoints)));
        assertEquals("Cluster \"x\": load_assignment: ORIGINAL_DST clusters must have no load assignment configured",
                error(cluster.formatted(", \"load_assignment\": {\"cluster_name\": \"x\"}")));
    }

    @Test
    void aSourceAddressWithAPortIsRefusedWhereAnyPortLoads() throws Exception {
        String cluster = """
                {"name": "x", "type": "STATIC", "upstream_bind_config": {"source_address": {"address": "127.0.0.6",
                 "port_value": %d}%s}}""";
        assertEquals(new SocketAddress("127.0.0.6", 0),
                PARSER.parse(proto(cluster.formatted(0, ""))).upstreamBindAddress());
        assertEquals("Cluster \"x\": upstream_bind_config.source_address.port_value: 40000 is not supported by "
                + "Inmesh (expected: 0, any port: the upstream connections do not bind a source port)",
                error(cluster.formatted(40000, "")));
        assertEquals("Cluster \"x\": upstream_bind_config.extra_source_addresses[0].address.port_value: 40001 is not "
                + "supported by Inmesh (expected: 0, any port: the upstream connections do not bind a source port)",
                error(cluster.formatted(0, ", \"extra_source_addresses\": [{\"address\": {\"address\": \"::6\", "
                        + "\"port_value\": 40001}}]")));
    }

    /** A STATIC cluster "x" whose typed HttpProtocolOptions have these {@code fields} (JSON members). */
    private static String staticWithHttpProtocolOptions(String fields) {
        return """
                {"name": "x", "type": "STATIC",
                 "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                   "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                   %s}}}
                """.formatted(fields);
    }

    @Test
    void typedHttpProtocolOptionsMustChooseTheUpstreamProtocol() throws Exception {
        // as Envoy's proto: upstream_protocol_options and explicit_http_config's protocol_config are required oneofs
        String cluster = staticWithHttpProtocolOptions(
                "\"common_http_protocol_options\": {\"idle_timeout\": \"30s\"}%s");
        String at = "Cluster \"x\": typed_extension_protocol_options[\"envoy.extensions.upstreams.http.v3."
                + "HttpProtocolOptions\"].";
        assertEquals(at + "upstream_protocol_options: none set (expected: explicit_http_config or "
                + "use_downstream_protocol_config, as Envoy requires one)", error(cluster.formatted("")));
        assertEquals(at + "explicit_http_config: no protocol set (expected: http_protocol_options or "
                + "http2_protocol_options, as Envoy requires one)",
                error(cluster.formatted(", \"explicit_http_config\": {}")));
        assertFalse(PARSER.parse(proto(cluster.formatted(
                ", \"explicit_http_config\": {\"http_protocol_options\": {}}"))).http2());
        assertTrue(PARSER.parse(proto(cluster.formatted(
                ", \"explicit_http_config\": {\"http2_protocol_options\": {}}"))).http2());
    }

    @Test
    void readsALogicalDnsClusterAsIstioWritesItForADnsRoundRobinServiceEntry() throws Exception {
        Cluster c = PARSER.parse(proto("""
                {"name": "outbound|443||api.example.com", "type": "LOGICAL_DNS", "connectTimeout": "10s",
                 "lbPolicy": "LEAST_REQUEST", "dnsRefreshRate": "60s", "respectDnsTtl": true,
                 "dnsLookupFamily": "V4_ONLY",
                 "loadAssignment": {"clusterName": "outbound|443||api.example.com", "endpoints": [{"locality": {},
                   "lbEndpoints": [{"endpoint": {"address": {"socketAddress": {"address": "api.example.com",
                   "portValue": 443}}}, "loadBalancingWeight": 1}], "loadBalancingWeight": 1}]}}"""));
        assertEquals(dev.inmesh.api.config.cluster.DiscoveryType.LOGICAL_DNS, c.type());
        assertEquals("api.example.com", c.loadAssignment().endpoints().get(0).lbEndpoints().get(0).address()
                .address());
        assertEquals(java.time.Duration.ofSeconds(60), c.dnsRefreshRate());
    }
}
