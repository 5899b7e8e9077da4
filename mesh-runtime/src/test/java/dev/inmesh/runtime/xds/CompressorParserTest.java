package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.Compressor;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Envoy's compressor filter with its gzip library as an Istio EnvoyFilter puts it (HTTP_FILTER, INSERT_BEFORE the
 * router, on SIDECAR_INBOUND), typed or in a TypedStruct: the listener is taken and the filter runs with its config;
 * request compression, the brotli and zstd libraries and a strategy Deflater has not are refused by name.
 */
class CompressorParserTest {

    private static String inbound(String compressorFilter) {
        return """
                {"name": "virtualInbound", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 15006}},
                 "useOriginalDst": true, "trafficDirection": "INBOUND",
                 "filterChains": [
                  {"name": "0.0.0.0_9080",
                   "filterChainMatch": {"destinationPort": 9080, "transportProtocol": "raw_buffer"},
                   "filters": [{"name": "envoy.filters.network.http_connection_manager", "typedConfig": {
                     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                     "statPrefix": "inbound_0.0.0.0_9080",
                     "routeConfig": {"name": "inbound|9080||", "virtualHosts": [{
                       "name": "inbound|http|9080", "domains": ["*"], "routes": [{"name": "default",
                         "match": {"prefix": "/"}, "route": {"cluster": "inbound|9080||"}}]}]},
                     "httpFilters": [
                      {"name": "envoy.filters.http.fault", "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                      %s,
                      {"name": "envoy.filters.http.router", "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}
                """.formatted(compressorFilter);
    }

    /** The typed filter, as Envoy's docs write it, with {@code library}'s config. */
    private static String typed(String fields, String library) {
        return """
                {"name": "envoy.filters.http.compressor", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
                  %s
                  "compressorLibrary": {"name": "text_optimized", "typedConfig": %s}}}"""
                .formatted(fields, library);
    }

    private static final String GZIP = """
            {"@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip",
             "memoryLevel": 3, "windowBits": 10, "compressionLevel": "BEST_COMPRESSION",
             "compressionStrategy": "DEFAULT_STRATEGY", "chunkSize": 4096}""";

    private static Compressor compressor(String filter) throws EnvoyConfigReader.ConfigReadException {
        HttpConnectionManager hcm = (HttpConnectionManager) EnvoyConfigReader.read(inbound(filter)).listeners()
                .get("virtualInbound").filterChains().get(0).filter();
        return hcm.compressorFilter();
    }

    private static String refusal(String filter) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class,
                () -> EnvoyConfigReader.read(inbound(filter))).getMessage();
    }

    @Test
    void aTypedResponseDirectionConfigIsTakenWithItsFields() throws Exception {
        Compressor c = compressor(typed("""
                "responseDirectionConfig": {"commonConfig": {"minContentLength": 100,
                  "contentType": ["text/html", "Application/JSON"],
                  "enabled": {"defaultValue": true, "runtimeKey": "response_compressor_enabled"}},
                  "disableOnEtagHeader": true, "removeAcceptEncodingHeader": true},""", GZIP));
        assertEquals("text_optimized", c.libraryName());
        assertTrue(c.responseDirection());
        assertTrue(c.enabled());
        assertEquals(100, c.minContentLength());
        assertEquals(Set.of("text/html", "application/json"), c.contentTypes());
        assertTrue(c.disableOnEtagHeader());
        assertTrue(c.removeAcceptEncodingHeader());
        assertEquals(9, c.level());
        assertEquals(Compressor.Strategy.DEFAULT_STRATEGY, c.strategy());
    }

    @Test
    void theDeprecatedTopLevelFieldsAreReadWithoutAResponseDirectionConfig() throws Exception {
        Compressor c = compressor(typed("""
                "contentLength": 0, "contentType": ["text/plain"], "disableOnEtagHeader": true,""", GZIP));
        assertFalse(c.responseDirection());
        assertEquals(Compressor.DEFAULT_MIN_CONTENT_LENGTH, c.minContentLength(), "0 is Envoy's default, 30");
        assertEquals(Set.of("text/plain"), c.contentTypes());
        assertTrue(c.disableOnEtagHeader());
    }

    @Test
    void anIstioEnvoyFiltersTypedStructIsReadAsTheCompressorItNames() throws Exception {
        Compressor c = compressor("""
                {"name": "envoy.filters.http.compressor", "typedConfig": {
                  "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                  "typeUrl": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
                  "value": {"response_direction_config": {"common_config": {"min_content_length": 1024,
                      "content_type": ["application/json"]}, "disable_on_etag_header": true},
                    "compressor_library": {"name": "gzip", "typed_config": {
                      "@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip",
                      "compression_level": "BEST_SPEED", "compression_strategy": "FILTERED"}}}}}""");
        assertEquals("gzip", c.libraryName());
        assertEquals(1024, c.minContentLength());
        assertEquals(Set.of("application/json"), c.contentTypes());
        assertEquals(1, c.level());
        assertEquals(Compressor.Strategy.FILTERED, c.strategy());
    }

    @Test
    void withoutFieldsEnvoysDefaultsApply() throws Exception {
        Compressor c = compressor(typed("", """
                {"@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip"}"""));
        assertEquals(Compressor.defaults("text_optimized"), c);
        assertTrue(c.contentTypes().contains("application/json"));
        assertEquals(-1, c.level(), "zlib's default level");
    }

    @Test
    void aDisabledCompressorIsCheckedButDoesNotRun() throws Exception {
        assertNull(compressor(typed("", GZIP).replaceFirst("\\{\"name\"", "{\"disabled\": true, \"name\"")));
    }

    @Test
    void brotliAndZstdAreRefusedByName() {
        String brotli = refusal(typed("", """
                {"@type": "type.googleapis.com/envoy.extensions.compression.brotli.compressor.v3.Brotli"}"""));
        assertTrue(brotli.contains("compressor_library.typed_config: envoy.extensions.compression.brotli.compressor.v3"
                + ".Brotli is not supported by Inmesh"), brotli);
        String zstd = refusal(typed("", """
                {"@type": "type.googleapis.com/envoy.extensions.compression.zstd.compressor.v3.Zstd"}"""));
        assertTrue(zstd.contains("envoy.extensions.compression.zstd.compressor.v3.Zstd is not supported by Inmesh"),
                zstd);
    }

    @Test
    void aStrategyDeflaterHasNotIsRefusedByName() {
        String rle = refusal(typed("", GZIP.replace("DEFAULT_STRATEGY", "RLE")));
        assertTrue(rle.contains("compression_strategy: RLE is not supported by Inmesh"), rle);
    }

    @Test
    void requestCompressionIsRefusedByName() {
        String m = refusal(typed("\"requestDirectionConfig\": {\"commonConfig\": {}},", GZIP));
        assertTrue(m.contains("request_direction_config: request compression is not supported by Inmesh"), m);
    }

    @Test
    void aSecondCompressorIsRefused() {
        String m = refusal(typed("", GZIP) + ", " + typed("", GZIP));
        assertTrue(m.contains("a second compressor filter is not supported by Inmesh"), m);
    }

    /** A route configuration whose one route carries a CompressorPerRoute with {@code fields} (flow YAML). */
    private static String routeWithPerRoute(String fields) {
        return EnvoyValidationTest.oneRoute("route: {cluster: c}\ntyped_per_filter_config:\n"
                + "  envoy.filters.http.compressor: {\"@type\": type.googleapis.com/envoy.extensions.filters.http"
                + ".compressor.v3.CompressorPerRoute" + (fields.isEmpty() ? "" : ", " + fields) + "}");
    }

    private static dev.inmesh.api.config.route.CompressorPerRoute perRoute(String fields) throws Exception {
        return EnvoyConfigReader.read(routeWithPerRoute(fields)).routes().values().iterator().next().virtualHosts()
                .get(0).routes().get(0).compressor().get("envoy.filters.http.compressor");
    }

    @Test
    void aCompressorPerRouteIsReadAsEnvoysFilterReadsIt() throws Exception {
        assertEquals(dev.inmesh.api.config.route.CompressorPerRoute.DISABLED, perRoute("disabled: true"));
        assertEquals(new dev.inmesh.api.config.route.CompressorPerRoute(true, false), perRoute(
                "overrides: {response_direction_config: {remove_accept_encoding_header: false}}"));
        assertEquals(new dev.inmesh.api.config.route.CompressorPerRoute(true, null), perRoute(
                "overrides: {response_direction_config: {}}"), "its presence enables response compression");
        assertEquals(new dev.inmesh.api.config.route.CompressorPerRoute(null, null), perRoute("overrides: {}"),
                "no response_direction_config: nothing changes");
    }

    @Test
    void aCompressorPerRouteThatDisablesNothingOrSetsNoOverrideIsRefusedByItsPath() {
        String at = "virtual_hosts[0].routes[0].typed_per_filter_config[envoy.filters.http.compressor].";
        String m = assertThrows(EnvoyConfigReader.ConfigReadException.class,
                () -> EnvoyConfigReader.read(routeWithPerRoute("disabled: false"))).getMessage();
        assertTrue(m.contains(at + "disabled: false (expected: true"), m);
        m = assertThrows(EnvoyConfigReader.ConfigReadException.class,
                () -> EnvoyConfigReader.read(routeWithPerRoute(""))).getMessage();
        assertTrue(m.contains(at + "override: unset (expected: disabled or overrides)"), m);
    }
}
