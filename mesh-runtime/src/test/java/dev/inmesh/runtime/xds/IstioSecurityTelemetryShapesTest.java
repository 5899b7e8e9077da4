package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.listener.ForwardClientCert;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.IstioStats;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.PathNormalization;
import dev.inmesh.api.config.listener.ServerHeader;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.api.config.route.DirectResponseAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The Envoy fields istiod writes for a sidecar for the Istio APIs other than DestinationRule and VirtualService
 * (AuthorizationPolicy, RequestAuthentication, PeerAuthentication, Telemetry, Sidecar, ServiceEntry and the
 * MeshConfig / ProxyConfig settings that change listeners), read from istiod's listener, authn, authz, access log and
 * cluster builders, in that shape, through Inmesh's parsers: what loads and what it loads as, and what is still
 * refused by name (so that a refusal of an ordinary Istio setting is a decision written down here, not an accident).
 * See {@link IstioTrafficPolicyShapesTest} for DestinationRule and VirtualService; docs/configuration.md and
 * docs/comparison.md describe the behaviour.
 */
class IstioSecurityTelemetryShapesTest {

    private static Listener listener(String yaml) throws Exception {
        return new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(yaml),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
    }

    private static String refusal(org.junit.jupiter.api.function.Executable parse) {
        return assertThrows(InvalidResourceException.class, parse).getMessage();
    }

    /**
     * istiod's inbound HTTP listener chain on port 9080 ({@code buildHTTPConnectionManager}): the connection
     * manager's own fields (given, at its indentation) and its HTTP filters (given, as a YAML list) before the
     * router, whose config is {@code router}.
     */
    static String inbound(String hcmFields, String filters, String router) {
        return """
                name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                traffic_direction: INBOUND
                listener_filters:
                - name: envoy.filters.listener.original_dst
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst}
                - name: envoy.filters.listener.tls_inspector
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
                - name: envoy.filters.listener.http_inspector
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector}
                listener_filters_timeout: 0s
                continue_on_listener_filters_timeout: true
                use_original_dst: true
                filter_chains:
                - name: 0.0.0.0_9080
                  filter_chain_match: {destination_port: 9080, transport_protocol: raw_buffer}
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      codec_type: AUTO
                      route_config:
                        name: inbound|9080||
                        validate_clusters: false
                        virtual_hosts:
                        - name: inbound|http|9080
                          domains: ["*"]
                          routes:
                          - name: default
                            match: {prefix: /}
                            decorator: {operation: "reviews.default.svc.cluster.local:9080/*"}
                            route: {cluster: "inbound|9080||", timeout: 0s, max_stream_duration: {max_stream_duration: 0s, grpc_timeout_header_max: 0s}}
                """ + hcmFields.stripTrailing().indent(6) + """
                      http_filters:
                """ + filters.stripTrailing().indent(6) + """
                      - name: envoy.filters.http.router
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                """ + router.stripTrailing().indent(10);
    }

    /** The filters istiod puts before the router on every sidecar HTTP chain: peer metadata, gRPC stats, fault, CORS. */
    static final String TELEMETRY_FILTERS = """
            - name: istio.metadata_exchange
              typed_config:
                "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                type_url: type.googleapis.com/io.istio.http.peer_metadata.Config
                value: {upstream_discovery: [{istio_headers: {}}, {workload_discovery: {}}], upstream_propagation: [{istio_headers: {}}]}
            - name: envoy.filters.http.grpc_stats
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig
                emit_filter_state: true
                stats_for_all_methods: false
            - name: envoy.filters.http.fault
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
            - name: envoy.filters.http.cors
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
            - name: istio.stats
              typed_config:
                "@type": type.googleapis.com/stats.PluginConfig
                disable_host_header_fallback: true
                metrics:
                - name: requests
                  dimensions: {request_host: request.host}
                  tags_to_remove: [response_flags]
            """;

    /** The connection manager fields istiod writes on an inbound chain with the mesh's defaults. */
    static final String INBOUND_DEFAULTS = """
            use_remote_address: false
            normalize_path: true
            path_with_escaped_slashes_action: KEEP_UNCHANGED
            upgrade_configs: [{upgrade_type: websocket}]
            stream_idle_timeout: 0s
            forward_client_cert_details: APPEND_FORWARD
            set_current_client_cert_details: {subject: true, dns: true, uri: true}
            server_name: istio-envoy
            request_id_extension:
              typed_config: {"@type": type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig, use_request_id_for_trace_sampling: true}
            """;

    private static HttpConnectionManager hcm(Listener l) {
        return assertInstanceOf(HttpConnectionManager.class, l.filterChains().get(0).filter());
    }

    @Test
    void theInboundConnectionManagerWithTheMeshDefaultsLoadsItsPathNormalizationAndClientCertHeader()
            throws Exception {
        HttpConnectionManager h = hcm(listener(inbound(INBOUND_DEFAULTS, TELEMETRY_FILTERS, "")));
        assertEquals(new PathNormalization(true, false, PathNormalization.EscapedSlashes.KEEP_UNCHANGED),
                h.pathNormalization(), "meshConfig.pathNormalization BASE (the default): normalize_path");
        assertEquals(new ForwardClientCert(ForwardClientCert.Mode.APPEND_FORWARD, false, false, true, true, true),
                h.forwardClientCert(), "proxyHeaders.forwardedClientCert APPEND_FORWARD (the default)");
        assertEquals(new ServerHeader("istio-envoy", ServerHeader.Transformation.OVERWRITE), h.serverHeader());
        assertTrue(h.generateRequestId());
        assertTrue(h.websocketUpgrade());
    }

    @Test
    void theStatsFiltersDisableHostHeaderFallbackOnTheInboundChainIsTheConnectionManagers() throws Exception {
        // istiod writes disable_host_header_fallback: true on its sidecars' inbound chains (TELEMETRY_FILTERS has it)
        assertFalse(hcm(listener(inbound(INBOUND_DEFAULTS, TELEMETRY_FILTERS, ""))).hostHeaderFallback());
        assertTrue(hcm(listener(inbound(INBOUND_DEFAULTS, TELEMETRY_FILTERS.replace(
                "disable_host_header_fallback: true", "disable_host_header_fallback: false"), "")))
                .hostHeaderFallback());
        assertTrue(hcm(listener(inbound(INBOUND_DEFAULTS, "", ""))).hostHeaderFallback(), "no stats filter");
        // over ADS the config comes as the message's bytes: field 6, a bool
        com.google.protobuf.Any set = com.google.protobuf.Any.newBuilder()
                .setTypeUrl("type.googleapis.com/stats.PluginConfig")
                .setValue(com.google.protobuf.UnknownFieldSet.newBuilder().addField(6,
                        com.google.protobuf.UnknownFieldSet.Field.newBuilder().addVarint(1).build()).build()
                        .toByteString()).build();
        assertTrue(ListenerParser.disablesHostHeaderFallback(set));
        assertFalse(ListenerParser.disablesHostHeaderFallback(set.toBuilder()
                .setValue(com.google.protobuf.ByteString.EMPTY).build()));
    }

    @Test
    void theStatsFiltersMetricOverridesAreTheConnectionManagersInBothForms() throws Exception {
        // istiod's config for Telemetry overrides REQUEST_COUNT disabled and request_protocol REMOVE, as the JSON
        // reader keeps it (a TypedStruct's fields) and as ADS sends it (the message's bytes: metrics 8, each with
        // dimensions 1 (map entries of key 1 and value 2), name 2, tags_to_remove 3 and drop 5)
        IstioStats expected = new IstioStats(List.of(
                new IstioStats.MetricOverride("requests_total", List.of(), true),
                new IstioStats.MetricOverride("", List.of("request_protocol"), false,
                        java.util.Map.of("request_host", "request.host"))));
        assertEquals(new IstioStats(List.of(new IstioStats.MetricOverride("requests_total", List.of(), true),
                new IstioStats.MetricOverride("", List.of("request_protocol"), false),
                new IstioStats.MetricOverride("requests", List.of("response_flags"), false,
                        java.util.Map.of("request_host", "request.host")))),
                hcm(listener(inbound(INBOUND_DEFAULTS, TELEMETRY_FILTERS.replace("- name: requests\n",
                        "- {name: requests_total, drop: true}\n    - {tags_to_remove: [request_protocol]}\n"
                                + "    - name: requests\n"), ""))).istioStats());
        assertNull(hcm(listener(inbound(INBOUND_DEFAULTS, "", ""))).istioStats(), "no stats filter");
        com.google.protobuf.UnknownFieldSet drop = com.google.protobuf.UnknownFieldSet.newBuilder()
                .addField(2, com.google.protobuf.UnknownFieldSet.Field.newBuilder()
                        .addLengthDelimited(com.google.protobuf.ByteString.copyFromUtf8("requests_total")).build())
                .addField(5, com.google.protobuf.UnknownFieldSet.Field.newBuilder().addVarint(1).build()).build();
        com.google.protobuf.UnknownFieldSet dimension = com.google.protobuf.UnknownFieldSet.newBuilder()
                .addField(1, com.google.protobuf.UnknownFieldSet.Field.newBuilder()
                        .addLengthDelimited(com.google.protobuf.ByteString.copyFromUtf8("request_host")).build())
                .addField(2, com.google.protobuf.UnknownFieldSet.Field.newBuilder()
                        .addLengthDelimited(com.google.protobuf.ByteString.copyFromUtf8("request.host")).build())
                .build();
        com.google.protobuf.UnknownFieldSet remove = com.google.protobuf.UnknownFieldSet.newBuilder()
                .addField(1, com.google.protobuf.UnknownFieldSet.Field.newBuilder()
                        .addLengthDelimited(dimension.toByteString()).build())
                .addField(3, com.google.protobuf.UnknownFieldSet.Field.newBuilder()
                        .addLengthDelimited(com.google.protobuf.ByteString.copyFromUtf8("request_protocol")).build())
                .build();
        com.google.protobuf.Any binary = com.google.protobuf.Any.newBuilder()
                .setTypeUrl("type.googleapis.com/stats.PluginConfig")
                .setValue(com.google.protobuf.UnknownFieldSet.newBuilder().addField(8,
                        com.google.protobuf.UnknownFieldSet.Field.newBuilder().addLengthDelimited(drop.toByteString())
                                .addLengthDelimited(remove.toByteString()).build()).build().toByteString()).build();
        assertEquals(expected, ListenerParser.istioStats(binary));
        assertNull(ListenerParser.istioStats(binary.toBuilder().setValue(com.google.protobuf.ByteString.EMPTY)
                .build()));
    }

    @Test
    void theStatsFiltersDefinitionsAreReadInBothForms() throws Exception {
        // stats.PluginConfig definitions (field 9, each a MetricDefinition with name 1, value 2 and type 3): a
        // counter by default, GAUGE 1, HISTOGRAM 2; in a TypedStruct the enum's name
        List<IstioStats.MetricDefinition> expected = List.of(
                new IstioStats.MetricDefinition("caller_bytes", "response.size", IstioStats.MetricDefinition.Type
                        .COUNTER),
                new IstioStats.MetricDefinition("last_code", "response.code", IstioStats.MetricDefinition.Type.GAUGE),
                new IstioStats.MetricDefinition("sizes", "request.size", IstioStats.MetricDefinition.Type.HISTOGRAM));
        IstioStats typed = hcm(listener(inbound(INBOUND_DEFAULTS, TELEMETRY_FILTERS.replace("    metrics:\n", """
                    definitions:
                    - {name: caller_bytes, value: response.size}
                    - {name: last_code, value: response.code, type: GAUGE}
                    - {name: sizes, value: request.size, type: HISTOGRAM}
                    metrics:
                """), ""))).istioStats();
        assertEquals(expected, typed.definitions());
        assertEquals(1, typed.metrics().size());

        com.google.protobuf.UnknownFieldSet.Builder message = com.google.protobuf.UnknownFieldSet.newBuilder();
        com.google.protobuf.UnknownFieldSet.Field.Builder entries = com.google.protobuf.UnknownFieldSet.Field
                .newBuilder();
        for (IstioStats.MetricDefinition d : expected) {
            com.google.protobuf.UnknownFieldSet.Builder e = com.google.protobuf.UnknownFieldSet.newBuilder()
                    .addField(1, com.google.protobuf.UnknownFieldSet.Field.newBuilder()
                            .addLengthDelimited(com.google.protobuf.ByteString.copyFromUtf8(d.name())).build())
                    .addField(2, com.google.protobuf.UnknownFieldSet.Field.newBuilder()
                            .addLengthDelimited(com.google.protobuf.ByteString.copyFromUtf8(d.value())).build());
            if (d.type().ordinal() > 0) {
                e.addField(3, com.google.protobuf.UnknownFieldSet.Field.newBuilder()
                        .addVarint(d.type().ordinal()).build());
            }
            entries.addLengthDelimited(e.build().toByteString());
        }
        com.google.protobuf.Any binary = com.google.protobuf.Any.newBuilder()
                .setTypeUrl("type.googleapis.com/stats.PluginConfig")
                .setValue(message.addField(9, entries.build()).build().toByteString()).build();
        assertEquals(new IstioStats(List.of(), expected), ListenerParser.istioStats(binary),
                "definitions without metrics entries are a config");
    }

    @Test
    void aBadTcpReportingDurationIsRefusedAtItsPath() {
        String m = refusal(() -> listener("""
                name: tcp
                address: {socket_address: {address: 127.0.0.1, port_value: 9000}}
                filter_chains:
                - filters:
                  - name: istio.stats
                    typed_config:
                      "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                      type_url: type.googleapis.com/stats.PluginConfig
                      value: {tcp_reporting_duration: soon}
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: tcp
                      cluster: backend
                """));
        assertTrue(m.contains("filters[0].typed_config.tcp_reporting_duration"), m);
        assertFalse(m.contains("typed_config.typed_config"), m);
    }

    @Test
    void theTcpStatsFiltersReportingDurationIsReadFromItsBytes() {
        // over ADS: tcp_reporting_duration is field 7, a google.protobuf.Duration; under a millisecond is none
        java.util.function.LongFunction<com.google.protobuf.Any> config = millis -> com.google.protobuf.Any.newBuilder()
                .setTypeUrl("type.googleapis.com/stats.PluginConfig")
                .setValue(com.google.protobuf.UnknownFieldSet.newBuilder().addField(7,
                        com.google.protobuf.UnknownFieldSet.Field.newBuilder().addLengthDelimited(
                                com.google.protobuf.util.Durations.fromMillis(millis).toByteString()).build()).build()
                        .toByteString()).build();
        assertEquals(java.time.Duration.ofSeconds(10), ListenerParser.tcpReportingDuration(config.apply(10_000)));
        assertNull(ListenerParser.tcpReportingDuration(config.apply(0)));
        assertNull(ListenerParser.tcpReportingDuration(config.apply(0).toBuilder()
                .setValue(com.google.protobuf.ByteString.EMPTY).build()));
    }

    @Test
    void pathNormalizationMergeSlashesAndDecodeAndMergeSlashesAreTheConnectionManagersNormalization()
            throws Exception {
        HttpConnectionManager merge = hcm(listener(inbound("""
                normalize_path: true
                merge_slashes: true
                path_with_escaped_slashes_action: KEEP_UNCHANGED
                """, "", "")));
        assertEquals(new PathNormalization(true, true, PathNormalization.EscapedSlashes.KEEP_UNCHANGED),
                merge.pathNormalization());
        HttpConnectionManager decode = hcm(listener(inbound("""
                normalize_path: true
                merge_slashes: true
                path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD
                """, "", "")));
        assertEquals(new PathNormalization(true, true, PathNormalization.EscapedSlashes.UNESCAPE_AND_FORWARD),
                decode.pathNormalization());
        assertEquals(PathNormalization.NONE, hcm(listener(inbound("normalize_path: false\n", "", "")))
                .pathNormalization(), "pathNormalization NONE");
    }

    /**
     * proxyHeaders' serverHeader, requestId and forwardedClientCert are the connection manager's fields and are read;
     * its envoyDebugHeaders.disabled is the router's {@code suppress_envoy_headers}, read too (the router then adds
     * none of its own {@code x-envoy-*} headers: {@code RouterHeadersTest}).
     */
    @Test
    void proxyHeadersServerHeaderRequestIdAndForwardedClientCertAreTheConnectionManagersFields() throws Exception {
        // serverHeader.disabled, requestId.disabled, forwardedClientCert SANITIZE, envoyDebugHeaders.disabled
        HttpConnectionManager h = hcm(listener(inbound("""
                server_header_transformation: PASS_THROUGH
                generate_request_id: false
                forward_client_cert_details: SANITIZE
                """, "", "suppress_envoy_headers: true\n")));
        assertEquals(ServerHeader.Transformation.PASS_THROUGH, h.serverHeader().transformation());
        assertFalse(h.generateRequestId());
        assertEquals(ForwardClientCert.Mode.SANITIZE, h.forwardClientCert().mode());
        assertTrue(h.suppressEnvoyHeaders());
        assertFalse(hcm(listener(inbound("", "", ""))).suppressEnvoyHeaders());
    }

    @Test
    void proxy100ContinueWhichIstiodWritesOnEveryConnectionManagerSince1Point23Loads() throws Exception {
        // ENABLE_100_CONTINUE_HEADERS (default true): Envoy then passes Expect: 100-continue upstream and relays the
        // application's 100 Continue, and so does Inmesh (MeshProxy100ContinueTest, HttpBridgeTest); the listener
        // loads with the flag read: refusing the field would NACK every listener of an Istio 1.23+ sidecar
        HttpConnectionManager h = hcm(listener(inbound(INBOUND_DEFAULTS + "proxy_100_continue: true\n",
                TELEMETRY_FILTERS, "")));
        assertEquals("inbound_0.0.0.0_9080", h.statPrefix());
        assertTrue(h.proxy100Continue());
        assertFalse(hcm(listener(inbound("", "", ""))).proxy100Continue());
    }

    @Test
    void proxyHeadersXForwardedPortAndSkipXffAppendAreRead() throws Exception {
        // Istio's ProxyHeaders (meshConfig.defaultConfig.proxyHeaders): x-forwarded-port, and a gateway's skipped XFF
        var h = hcm(listener(inbound("append_x_forwarded_port: true\nskip_xff_append: true\n", "", "")));
        assertTrue(h.remoteAddressOptions().appendXForwardedPort());
        assertTrue(h.remoteAddressOptions().skipXffAppend());
        assertFalse(hcm(listener(inbound("", "", ""))).remoteAddressOptions().appendXForwardedPort());
    }

    @Test
    void telemetryAccessLoggingFileTextAndLabelsOtelAlsAndFilterExpressionLoad() throws Exception {
        HttpConnectionManager h = hcm(listener(inbound(INBOUND_DEFAULTS + """
                access_log:
                - name: envoy.access_loggers.file
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                    path: /dev/stdout
                    log_format:
                      text_format_source: {inline_string: "[%START_TIME%] \\"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%\\" %RESPONSE_CODE%\\n"}
                - name: envoy.access_loggers.file
                  filter:
                    extension_filter:
                      name: envoy.access_loggers.extension_filters.cel
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter
                        expression: response.code >= 400
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
                    path: /dev/stdout
                    log_format:
                      json_format: {method: "%REQ(:METHOD)%", code: "%RESPONSE_CODE%"}
                      json_format_options: {sort_properties: false}
                - name: envoy.access_loggers.open_telemetry
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig
                    common_config:
                      log_name: otel_envoy_accesslog
                      transport_api_version: V3
                      grpc_service:
                        envoy_grpc: {cluster_name: "outbound|4317||otel-collector.observability.svc.cluster.local", authority: otel-collector.observability.svc.cluster.local}
                    body: {string_value: "%REQ(:METHOD)% %RESPONSE_CODE%"}
                    attributes:
                      values: [{key: node_name, value: {string_value: "%NODE_NAME%"}}]
                """, TELEMETRY_FILTERS, "")));
        assertEquals("inbound_0.0.0.0_9080", h.statPrefix());
        // the file loggers are applied (MeshAccessLogTest); the OpenTelemetry one loads and writes nothing here
        assertEquals(2, h.accessLogs().size());
        assertEquals(new dev.inmesh.api.config.listener.AccessLogConfig.Cel("response.code >= 400"),
                h.accessLogs().get(1).filter());
    }

    /** istiod's RBAC filters for one ALLOW, one DENY and one AUDIT AuthorizationPolicy with every source kind. */
    static final String AUTHZ_FILTERS = """
            - name: envoy.filters.http.rbac
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                rules:
                  action: LOG
                  policies:
                    ns[default]-policy[audit]-rule[0]:
                      permissions: [{and_rules: {rules: [{or_rules: {rules: [{header: {name: ":method", string_match: {exact: POST}}}]}}]}}]
                      principals: [{and_ids: {ids: [{any: true}]}}]
                shadow_rules_stat_prefix: istio_dry_run_allow_
            - name: envoy.filters.http.rbac
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                rules:
                  action: DENY
                  policies:
                    ns[default]-policy[deny]-rule[0]:
                      permissions:
                      - and_rules:
                          rules:
                          - or_rules: {rules: [{url_path: {path: {prefix: /admin/}}}, {uri_template: {name: uri-template, typed_config: {"@type": type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig, path_template: "/books/*/secret/**"}}}]}
                          - or_rules: {rules: [{destination_port: 9080}]}
                      principals:
                      - and_ids:
                          ids:
                          - or_ids: {ids: [{remote_ip: {address_prefix: 10.0.0.0, prefix_len: 8}}]}
                          - not_id: {or_ids: {ids: [{direct_remote_ip: {address_prefix: 192.168.1.1, prefix_len: 32}}]}}
                          - or_ids: {ids: [{metadata: {filter: envoy.filters.http.jwt_authn, path: [{key: payload}, {key: iss}], value: {string_match: {exact: "https://issuer.example"}}}}]}
            - name: envoy.filters.http.rbac
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                rules:
                  policies:
                    ns[default]-policy[allow]-rule[0]:
                      permissions:
                      - and_rules:
                          rules:
                          - or_rules: {rules: [{header: {name: ":authority", string_match: {exact: reviews.example, ignore_case: true}}}]}
                          - or_rules: {rules: [{header: {name: ":method", string_match: {exact: GET}}}]}
                          - or_rules: {rules: [{url_path: {path: {exact: /reviews}}}]}
                          - or_rules: {rules: [{destination_ip: {address_prefix: 10.1.0.0, prefix_len: 16}}]}
                          - or_rules: {rules: [{requested_server_name: {exact: reviews.example}}]}
                      principals:
                      - and_ids:
                          ids:
                          - or_ids: {ids: [{authenticated: {principal_name: {exact: spiffe://cluster.local/ns/default/sa/productpage}}}]}
                          - not_id: {or_ids: {ids: [{authenticated: {principal_name: {exact: spiffe://cluster.local/ns/default/sa/evil}}}]}}
                          - or_ids: {ids: [{authenticated: {principal_name: {safe_regex: {regex: ".*/ns/default/.*"}}}}]}
                          - or_ids: {ids: [{metadata: {filter: envoy.filters.http.jwt_authn, path: [{key: payload}, {key: groups}], value: {list_match: {one_of: {string_match: {exact: admin}}}}}}]}
                          - or_ids: {ids: [{header: {name: x-token, string_match: {exact: abc}}}]}
                          - or_ids: {ids: [{source_ip: {address_prefix: 10.2.0.0, prefix_len: 16}}]}
                shadow_rules_stat_prefix: istio_dry_run_allow_
            """;

    /** istiod's JWT filter for a RequestAuthentication with one jwtRule using every field (jwks fetched by istiod). */
    static final String JWT_FILTER = """
            - name: envoy.filters.http.jwt_authn
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
                providers:
                  origins-0:
                    issuer: https://issuer.example
                    audiences: [reviews]
                    local_jwks: {inline_string: "{\\"keys\\":[]}"}
                    forward: true
                    from_headers: [{name: x-jwt, value_prefix: "Bearer "}]
                    from_params: [access_token]
                    from_cookies: [session]
                    forward_payload_header: x-jwt-payload
                    payload_in_metadata: https://issuer.example
                    claim_to_headers: [{header_name: x-jwt-sub, claim_name: sub}]
                rules:
                - match: {prefix: /}
                  requires: {requires_any: {requirements: [{provider_name: origins-0}, {allow_missing_or_failed: {}}]}}
                bypass_cors_preflight: true
            """;

    @Test
    void requestAuthenticationAndAuthorizationPoliciesLoadWithEveryFromToAndWhenKind() throws Exception {
        HttpConnectionManager h = hcm(listener(inbound(INBOUND_DEFAULTS, JWT_FILTER + AUTHZ_FILTERS
                + TELEMETRY_FILTERS, "")));
        assertEquals(List.of(Rbac.Action.LOG, Rbac.Action.DENY, Rbac.Action.ALLOW), h.rbacFilters().stream()
                .map(f -> f.rbac().rules().action()).toList(), "AUDIT, DENY and ALLOW, in istiod's order");
        var provider = h.httpFilters().stream().filter(f -> f.jwtAuthn() != null).findFirst().orElseThrow()
                .jwtAuthn().providers().get("origins-0");
        assertEquals(List.of("access_token"), provider.fromParams());
        assertEquals(List.of("session"), provider.fromCookies());
        assertEquals("x-jwt-payload", provider.forwardPayloadHeader());
    }

    @Test
    void anExperimentalEnvoyFiltersWhenKeyIsRefusedByName() {
        // when: experimental.envoy.filters.network.mysql_proxy[db.table]: metadata of a filter Inmesh does not keep
        String m = refusal(() -> listener(inbound("", """
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                    rules:
                      policies:
                        p:
                          permissions: [{any: true}]
                          principals: [{metadata: {filter: envoy.filters.network.mysql_proxy, path: [{key: db.table}], value: {list_match: {one_of: {string_match: {exact: "[update]"}}}}}}]
                """, "")));
        assertTrue(m.contains("metadata.filter"), m);
    }

    @Test
    void sidecarIngressDefaultEndpointOnAUnixSocketIsAStaticInboundClusterOnThatPipe() throws Exception {
        Cluster c = IstioTrafficPolicyShapesTest.cluster("""
                name: inbound|9080||
                type: STATIC
                connect_timeout: 10s
                common_lb_config: {}
                upstream_bind_config: {source_address: {address: 127.0.0.6, port_value: 0}}
                load_assignment:
                  cluster_name: inbound|9080||
                  endpoints:
                  - lb_endpoints:
                    - endpoint: {address: {pipe: {path: /var/run/app.sock}}}
                circuit_breakers:
                  thresholds: [{max_connections: 100, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295, track_remaining: true}]
                """);
        assertEquals(DiscoveryType.STATIC, c.type());
        assertEquals("unix:/var/run/app.sock", c.loadAssignment().endpoints().get(0).lbEndpoints().get(0).address()
                .address());
    }

    @Test
    void sidecarEgressBindIsAnOutboundListenerBoundToThatAddress() throws Exception {
        Listener l = listener("""
                name: 127.0.0.1_9080
                address: {socket_address: {address: 127.0.0.1, port_value: 9080}}
                traffic_direction: OUTBOUND
                bind_to_port: true
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: outbound_127.0.0.1_9080
                      rds: {route_config_name: "127.0.0.1_9080"}
                      forward_client_cert_details: SANITIZE_SET
                      set_current_client_cert_details: {subject: true, dns: true, uri: true}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """);
        assertEquals("127.0.0.1", l.address().address());
        assertTrue(l.bindToPort());
        assertEquals(ForwardClientCert.Mode.SANITIZE_SET, hcm(l).forwardClientCert().mode());
    }

    @Test
    void registryOnlyIsABlockAllVirtualHostAnsweringWith502() throws Exception {
        RouteConfiguration rc = new RouteConfigurationParser().parse(EnvoyJson.toMessage(EnvoyJson.tree("""
                name: "9080"
                validate_clusters: false
                virtual_hosts:
                - name: block_all
                  domains: ["*"]
                  routes:
                  - name: block_all
                    match: {prefix: /}
                    direct_response: {status: 502}
                  include_request_attempt_count: true
                ignore_port_in_host_matching: true
                """), io.envoyproxy.envoy.config.route.v3.RouteConfiguration.class));
        assertEquals(502, assertInstanceOf(DirectResponseAction.class,
                rc.virtualHosts().get(0).routes().get(0).action()).status());
    }

    /** istiod's cluster of a DNS ServiceEntry on port 443 of {@code type}, its endpoints (a YAML list) given. */
    private static Cluster dnsServiceEntry(String type, String endpoints) throws Exception {
        return IstioTrafficPolicyShapesTest.cluster("""
                name: outbound|443||api.example.com
                type: %s
                connect_timeout: 10s
                dns_lookup_family: V4_ONLY
                dns_refresh_rate: 60s
                respect_dns_ttl: true
                lb_policy: LEAST_REQUEST
                metadata:
                  filter_metadata:
                    istio: {services: [{host: api.example.com, name: api.example.com, namespace: default}]}
                load_assignment:
                  cluster_name: outbound|443||api.example.com
                  endpoints:
                """.formatted(type) + endpoints.stripTrailing().indent(2));
    }

    @Test
    void serviceEntryDnsAndDnsRoundRobinEndpointsLoadWithTheirLocalityWeightAndLabels() throws Exception {
        Cluster dns = dnsServiceEntry("STRICT_DNS", """
                - locality: {region: us-east, zone: us-east-1a}
                  load_balancing_weight: 3
                  lb_endpoints:
                  - endpoint: {address: {socket_address: {address: api-1.example.com, port_value: 8443}}}
                    load_balancing_weight: 3
                    metadata:
                      filter_metadata:
                        istio: {workload: api;default;api;v1;Kubernetes}
                        envoy.transport_socket_match: {tlsMode: disabled}
                """);
        assertEquals(DiscoveryType.STRICT_DNS, dns.type());
        var locality = dns.loadAssignment().endpoints().get(0);
        assertEquals("us-east-1a", locality.locality().zone());
        assertEquals(3, locality.lbEndpoints().get(0).loadBalancingWeight());
        Cluster roundRobin = dnsServiceEntry("LOGICAL_DNS", """
                - lb_endpoints:
                  - endpoint: {address: {socket_address: {address: api.example.com, port_value: 443}}}
                """);
        assertEquals(DiscoveryType.LOGICAL_DNS, roundRobin.type());
    }

    @Test
    void peerAuthenticationPermissiveIsAnMtlsChainBesideAPlaintextChainOnThePort() throws Exception {
        // PERMISSIVE (and portLevelMtls per port): istiod's tls chain (Istio's ALPN, its SDS certificate and CA) and
        // raw_buffer chain for the same destination port; STRICT keeps the first alone, DISABLE the second
        String tlsChain = """
                - name: 0.0.0.0_9080
                  filter_chain_match:
                    destination_port: 9080
                    transport_protocol: tls
                    application_protocols: [istio-peer-exchange, istio-http/1.0, istio-http/1.1, istio-h2]
                  transport_socket:
                    name: envoy.transport_sockets.tls
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                      require_client_certificate: true
                      common_tls_context:
                        tls_params: {tls_minimum_protocol_version: TLSv1_2, tls_maximum_protocol_version: TLSv1_3}
                        alpn_protocols: [h2, http/1.1]
                        tls_certificate_sds_secret_configs: [{name: default, sds_config: {api_config_source: {api_type: GRPC, grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}], transport_api_version: V3}, resource_api_version: V3}}]
                        combined_validation_context:
                          default_validation_context: {match_subject_alt_names: [{prefix: "spiffe://cluster.local/"}]}
                          validation_context_sds_secret_config: {name: ROOTCA, sds_config: {api_config_source: {api_type: GRPC, grpc_services: [{envoy_grpc: {cluster_name: sds-grpc}}], transport_api_version: V3}, resource_api_version: V3}}
                  filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      rds: {route_config_name: "inbound|9080||"}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """;
        String yaml = inbound(INBOUND_DEFAULTS, TELEMETRY_FILTERS, "");
        int chains = yaml.indexOf("filter_chains:\n") + "filter_chains:\n".length();
        Listener l = listener(yaml.substring(0, chains) + tlsChain + yaml.substring(chains));
        assertEquals(2, l.filterChains().size());
        assertTrue(l.filterChains().get(0).tls(), "the mTLS chain");
        assertEquals("tls", l.filterChains().get(0).match().transportProtocol());
        assertEquals("raw_buffer", l.filterChains().get(1).match().transportProtocol());
    }
}
