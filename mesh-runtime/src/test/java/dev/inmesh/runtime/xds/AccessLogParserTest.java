package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.AccessLogConfig;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.TcpProxy;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A connection manager's and a TCP proxy's {@code access_log} as istiod writes it (meshConfig's accessLogFile, the
 * Telemetry API's filter expression), what loads and writes nothing here (loggers to a service), and what is refused
 * by path: a command operator Envoy or Inmesh does not know, a filter Inmesh cannot evaluate.
 */
class AccessLogParserTest {
    /** Istio's default text format as istioctl prints it (JSON-escaped). */
    private static final String ISTIO_FORMAT = "[%START_TIME%] \\\"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% "
            + "%PROTOCOL%\\\" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
            + "\\\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\\\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
            + "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \\\"%REQ(X-FORWARDED-FOR)%\\\" \\\"%REQ(USER-AGENT)%\\\" "
            + "\\\"%REQ(X-REQUEST-ID)%\\\" \\\"%REQ(:AUTHORITY)%\\\" \\\"%UPSTREAM_HOST%\\\" %UPSTREAM_CLUSTER_RAW% "
            + "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% "
            + "%ROUTE_NAME%\\n";

    private static final String FILE_LOG = """
            {"name": "envoy.access_loggers.file",
             "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
               "path": "/dev/stdout",
               "log_format": {"text_format_source": {"inline_string": "%s"}}}}""".formatted(ISTIO_FORMAT);

    /** A listener list, as istioctl prints it, whose HTTP chain's connection manager has these access logs. */
    private static String http(String accessLogs) {
        return """
                [{"name": "0.0.0.0_9080", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 9080}},
                  "filterChains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                    "typedConfig": {
                      "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                      "statPrefix": "outbound_0.0.0.0_9080", "rds": {"routeConfigName": "9080",
                        "configSource": {"ads": {}, "resourceApiVersion": "V3"}},
                      "httpFilters": [{"name": "envoy.filters.http.router", "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                      "accessLog": [%s]}}]}]}]""".formatted(accessLogs);
    }

    private static HttpConnectionManager hcm(String accessLogs) throws Exception {
        return (HttpConnectionManager) EnvoyConfigReader.read(http(accessLogs)).listeners().values().iterator()
                .next().filterChains().get(0).filter();
    }

    private static String refused(String accessLogs) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class,
                () -> EnvoyConfigReader.read(http(accessLogs))).getMessage();
    }

    @Test
    void istiodsFileLoggerWithItsTextFormatAndATelemetryFilterLoads() throws Exception {
        String withFilter = FILE_LOG.replace("{\"name\": \"envoy.access_loggers.file\",", """
                {"name": "envoy.access_loggers.file", "filter": {"extensionFilter": {
                  "name": "envoy.access_loggers.extension_filters.cel", "typedConfig": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                    "expression": "response.code >= 400"}}},""");
        List<AccessLogConfig> logs = hcm(withFilter).accessLogs();
        assertEquals(1, logs.size());
        assertEquals("/dev/stdout", logs.get(0).path());
        assertTrue(((AccessLogConfig.Text) logs.get(0).format()).format().startsWith("[%START_TIME%] \"%REQ(:METHOD)%"));
        assertEquals(new AccessLogConfig.Cel("response.code >= 400"), logs.get(0).filter());
    }

    @Test
    void aRuntimeFilterKeepsItsFractionAndUseIndependentRandomness() throws Exception {
        String sampled = FILE_LOG.replace("{\"name\": \"envoy.access_loggers.file\",", """
                {"name": "envoy.access_loggers.file", "filter": {"runtimeFilter": {"runtimeKey": "log.sample",
                  "percentSampled": {"numerator": 5, "denominator": "TEN_THOUSAND"},
                  "useIndependentRandomness": true}},""");
        assertEquals(new AccessLogConfig.Sampled("log.sample", 5, 10_000, true),
                hcm(sampled).accessLogs().get(0).filter());
    }

    @Test
    void jsonFormatsStdoutAndStderrLoggersAndTheDefaultFormatLoad() throws Exception {
        List<AccessLogConfig> logs = hcm("""
                {"name": "envoy.access_loggers.stdout", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                  "logFormat": {"jsonFormat": {"code": "%RESPONSE_CODE%", "n": {"d": "%DURATION%"}},
                                "omitEmptyValues": true}}},
                {"name": "envoy.access_loggers.stderr", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog"},
                 "filter": {"andFilter": {"filters": [
                   {"statusCodeFilter": {"comparison": {"op": "GE", "value": {"defaultValue": 500, "runtimeKey": "k"}}}},
                   {"responseFlagFilter": {"flags": ["UH", "UF"]}}]}}},
                {"name": "envoy.access_loggers.file", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                  "path": "/tmp/inmesh-access.log"}},
                {"name": "envoy.access_loggers.open_telemetry", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig",
                  "commonConfig": {"logName": "otel_envoy_accesslog", "transportApiVersion": "V3",
                    "grpcService": {"envoyGrpc": {"clusterName": "outbound|4317||otel.istio-system.svc.cluster.local"}}}}}
                """).accessLogs();
        assertEquals(3, logs.size(), "the OpenTelemetry logger loads and writes nothing here");
        assertEquals(new AccessLogConfig("envoy.access_loggers.stdout", "/dev/stdout", new AccessLogConfig.Json(
                Map.of("code", "%RESPONSE_CODE%", "n", Map.of("d", "%DURATION%")), true), null), logs.get(0));
        assertEquals("/dev/stderr", logs.get(1).path());
        assertEquals(new AccessLogConfig.And(List.of(new AccessLogConfig.StatusCode(AccessLogConfig.Op.GE, 500),
                new AccessLogConfig.ResponseFlags(java.util.Set.of("UH", "UF")))), logs.get(1).filter());
        assertEquals(new AccessLogConfig.Text(AccessLogConfig.ENVOY_DEFAULT_FORMAT, false), logs.get(1).format());
        assertEquals("/tmp/inmesh-access.log", logs.get(2).path());
        assertEquals(new AccessLogConfig.Text(AccessLogConfig.ENVOY_DEFAULT_FORMAT, false), logs.get(2).format());
    }

    @Test
    void anEmptyFormatStringIsAnEmptyLineWhereOnlyTheLegacyFormatFieldFallsBackToTheDefault() throws Exception {
        // Envoy's substitution format string takes an empty text as it is (each entry writes nothing); only the file
        // logger's deprecated "format", and no format at all, mean its default format
        List<AccessLogConfig> logs = hcm("""
                {"name": "a", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                  "path": "/tmp/a.log", "logFormat": {"textFormatSource": {"inlineString": ""}}}},
                {"name": "b", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                  "logFormat": {"textFormat": ""}}},
                {"name": "c", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                  "path": "/tmp/c.log", "format": ""}}
                """).accessLogs();
        assertEquals(new AccessLogConfig.Text("", false), logs.get(0).format());
        assertEquals(new AccessLogConfig.Text("", false), logs.get(1).format());
        assertEquals(new AccessLogConfig.Text(AccessLogConfig.ENVOY_DEFAULT_FORMAT, false), logs.get(2).format());
    }

    @Test
    void aTcpProxysAccessLogLoads() throws Exception {
        String listener = """
                [{"name": "0.0.0.0_3306", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 3306}},
                  "filterChains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typedConfig": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "statPrefix": "outbound|3306||mysql", "cluster": "outbound|3306||mysql",
                    "accessLog": [%s]}}]}]}]""".formatted(FILE_LOG);
        TcpProxy tcp = (TcpProxy) EnvoyConfigReader.read(listener).listeners().values().iterator().next()
                .filterChains().get(0).filter();
        assertEquals(1, tcp.accessLogs().size());
    }

    @Test
    void aListenersOwnAccessLogWithIstiosNrFilterLoads() throws Exception {
        String listener = http("").replace("\"filterChains\":", "\"accessLog\": [" + FILE_LOG.replace(
                "{\"name\": \"envoy.access_loggers.file\",", "{\"name\": \"envoy.access_loggers.file\", "
                        + "\"filter\": {\"responseFlagFilter\": {\"flags\": [\"NR\"]}},") + "], \"filterChains\":");
        var l = EnvoyConfigReader.read(listener).listeners().values().iterator().next();
        assertEquals(1, l.accessLogs().size());
        assertEquals(new AccessLogConfig.ResponseFlags(java.util.Set.of("NR")), l.accessLogs().get(0).filter());
    }

    @Test
    void unknownOperatorsAndFiltersInmeshCannotEvaluateAreRefusedByPath() throws Exception {
        String bad = FILE_LOG.replace("%ROUTE_NAME%", "%ROUTE_NAM%");
        String m = refused(bad);
        assertTrue(m.contains("access_log[0].typed_config.log_format.text_format_source"), m);
        assertTrue(m.contains("%ROUTE_NAM%"), m);
        // an operator Envoy knows and Inmesh does not fill loads (written as unknown) rather than taking the
        // listener down
        assertEquals(1, hcm(FILE_LOG.replace("%ROUTE_NAME%", "%DYNAMIC_METADATA(istio.mixer:status)%"))
                .accessLogs().size());
        m = refused(FILE_LOG.replace("{\"name\": \"envoy.access_loggers.file\",",
                "{\"name\": \"envoy.access_loggers.file\", \"filter\": {\"metadataFilter\": {}},"));
        assertTrue(m.contains("access_log[0].filter.metadata_filter"), m);
        m = refused(FILE_LOG.replace("{\"name\": \"envoy.access_loggers.file\",", """
                {"name": "envoy.access_loggers.file", "filter": {"extensionFilter": {
                  "name": "envoy.access_loggers.extension_filters.cel", "typedConfig": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter",
                    "expression": "response.code >="}}},"""));
        assertTrue(m.contains("access_log[0].filter.extension_filter.typed_config.expression"), m);
        m = refused(FILE_LOG.replace("{\"text_format_source\": {\"inline_string\": \"" + ISTIO_FORMAT + "\"}}",
                "{\"json_format\": {\"code\": \"%RESPONSE_CODE%\", \"n\": {\"x\": null, \"l\": [1, \"%NOPE%\"]}}}"));
        assertTrue(m.contains("json_format.n.l[1]") && m.contains("%NOPE%"), m);
        m = refused(FILE_LOG.replace("\"path\": \"/dev/stdout\",", "\"path\": \"\","));
        assertTrue(m.contains("path"), m);
        m = refused(FILE_LOG.replace("{\"name\": \"envoy.access_loggers.file\",",
                "{\"name\": \"envoy.access_loggers.file\", \"filter\": {\"responseFlagFilter\": {\"flags\": [\"XX\"]}},"));
        assertTrue(m.contains("XX"), m);
    }

    /** A logger with this {@code filter} (JSON). */
    private static String filtered(String filter) {
        return FILE_LOG.replace("{\"name\": \"envoy.access_loggers.file\",",
                "{\"name\": \"envoy.access_loggers.file\", \"filter\": " + filter + ",");
    }

    /**
     * What Envoy's proto validation refuses: a filter with none of its kinds (AccessLogFilter.filter_specifier is
     * validate.required), a runtime_filter without its runtime_key, and a comparison whose value (RuntimeUInt32) has
     * no runtime_key (both min_len 1).
     */
    @Test
    void filtersEnvoysProtoValidationRefusesAreRefused() throws Exception {
        String m = refused(filtered("{}"));
        assertTrue(m.contains("access_log[0].filter") && m.contains("filter_specifier"), m);
        m = refused(filtered("{\"runtimeFilter\": {\"percentSampled\": {\"numerator\": 5}}}"));
        assertTrue(m.contains("access_log[0].filter.runtime_filter.runtime_key"), m);
        m = refused(filtered("{\"statusCodeFilter\": {\"comparison\": {\"op\": \"GE\", "
                + "\"value\": {\"defaultValue\": 400}}}}"));
        assertTrue(m.contains("access_log[0].filter.status_code_filter.comparison.value.runtime_key"), m);
        m = refused(filtered("{\"durationFilter\": {\"comparison\": {\"op\": \"GE\", "
                + "\"value\": {\"defaultValue\": 10}}}}"));
        assertTrue(m.contains("access_log[0].filter.duration_filter.comparison.value.runtime_key"), m);
        assertEquals(new AccessLogConfig.StatusCode(AccessLogConfig.Op.GE, 400), hcm(filtered(
                "{\"statusCodeFilter\": {\"comparison\": {\"op\": \"GE\", "
                        + "\"value\": {\"defaultValue\": 400, \"runtimeKey\": \"log.min_status\"}}}}"))
                .accessLogs().get(0).filter());
    }

    /** A bad text format is named once by its field: text_format_source, or the deprecated text_format. */
    @Test
    void aBadTextFormatIsRefusedUnderItsOwnFieldOnce() {
        String m = refused(FILE_LOG.replace("%ROUTE_NAME%", "%X%"));
        assertTrue(m.contains("access_log[0].typed_config.log_format.text_format_source: %X%"), m);
        assertTrue(!m.contains("text_format_source.text_format_source"), m);
        m = refused(FILE_LOG.replace("{\"text_format_source\": {\"inline_string\": \"" + ISTIO_FORMAT + "\"}}",
                "{\"text_format\": \"%X%\"}"));
        assertTrue(m.contains("access_log[0].typed_config.log_format.text_format: %X%"), m);
    }
}
