package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's gRPC-Web filter ({@code envoy.filters.http.grpc_web}) as istiod writes it in the connection manager of a
 * port whose protocol is gRPC-Web: the listener (here Istio's {@code virtualInbound}, which one such port refused
 * whole) is taken, the filter runs; a disabled one does not, and a config with a field is refused by name.
 */
class GrpcWebParserTest {

    /**
     * Istio's virtualInbound, as istioctl prints it, with the chain of a Kubernetes port named {@code grpc-web}
     * (8080: {@code filters} among its HTTP filters) and the HTTP passthrough chain.
     */
    private static String virtualInbound(String grpcWebFilter) {
        return """
                {"name": "virtualInbound", "address": {"socketAddress": {"address": "0.0.0.0", "portValue": 15006}},
                 "useOriginalDst": true, "trafficDirection": "INBOUND",
                 "filterChains": [
                  {"name": "0.0.0.0_8080",
                   "filterChainMatch": {"destinationPort": 8080, "transportProtocol": "raw_buffer"},
                   "filters": [{"name": "envoy.filters.network.http_connection_manager", "typedConfig": {
                     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                     "statPrefix": "inbound_0.0.0.0_8080",
                     "routeConfig": {"name": "inbound|8080||", "validateClusters": false, "virtualHosts": [{
                       "name": "inbound|http|8080", "domains": ["*"], "routes": [{"name": "default",
                         "match": {"prefix": "/"}, "route": {"cluster": "inbound|8080||", "timeout": "0s",
                         "maxStreamDuration": {"maxStreamDuration": "0s", "grpcTimeoutHeaderMax": "0s"}}}]}]},
                     "httpFilters": [
                      {"name": "istio.metadata_exchange", "typedConfig": {
                        "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                        "typeUrl": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                        "value": {"config": {"vmConfig": {"runtime": "envoy.wasm.runtime.null",
                          "code": {"local": {"inlineString": "envoy.wasm.metadata_exchange"}}}}}}},
                      %s,
                      {"name": "envoy.filters.http.grpc_stats", "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
                        "emitFilterState": true, "statsForAllMethods": false}},
                      {"name": "envoy.filters.http.fault", "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                      {"name": "envoy.filters.http.cors", "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
                      {"name": "istio.stats", "typedConfig": {"@type": "type.googleapis.com/stats.PluginConfig"}},
                      {"name": "envoy.filters.http.router", "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                     "streamIdleTimeout": "0s", "normalizePath": true}}]},
                  {"name": "virtualInbound-catchall-http",
                   "filterChainMatch": {"prefixRanges": [{"addressPrefix": "0.0.0.0", "prefixLen": 0}],
                     "transportProtocol": "raw_buffer", "applicationProtocols": ["http/1.1", "h2c"]},
                   "filters": [{"name": "envoy.filters.network.http_connection_manager", "typedConfig": {
                     "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                     "statPrefix": "inbound_0.0.0.0_15006",
                     "routeConfig": {"name": "InboundPassthroughClusterIpv4", "virtualHosts": [{
                       "name": "inbound|http|0", "domains": ["*"], "routes": [{"name": "default",
                         "match": {"prefix": "/"}, "route": {"cluster": "InboundPassthroughClusterIpv4"}}]}]},
                     "httpFilters": [{"name": "envoy.filters.http.router", "typedConfig": {
                       "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}
                """.formatted(grpcWebFilter);
    }

    /** The filter as istiod writes it: its name, and its config type with no field. */
    private static final String ISTIO_FILTER = """
            {"name": "envoy.filters.http.grpc_web", "typedConfig": {
              "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"}}""";

    private static List<FilterChain> chains(String listener) throws EnvoyConfigReader.ConfigReadException {
        return EnvoyConfigReader.read(listener).listeners().get("virtualInbound").filterChains();
    }

    @Test
    void istiosGrpcWebFilterOnAVirtualInboundChainLoadsTheListenerAndRunsOnThatChainOnly() throws Exception {
        List<FilterChain> chains = chains(virtualInbound(ISTIO_FILTER));
        assertEquals(2, chains.size(), "the whole listener is taken, not only the chain without the filter");
        HttpConnectionManager grpcWeb = assertInstanceOf(HttpConnectionManager.class, chains.get(0).filter());
        assertTrue(grpcWeb.grpcWebFilter());
        HttpFilter f = grpcWeb.httpFilters().get(1);
        assertEquals("envoy.filters.http.grpc_web", f.name());
        assertEquals("envoy.extensions.filters.http.grpc_web.v3.GrpcWeb", f.typeUrl());
        assertTrue(f.grpcWeb());
        assertTrue(grpcWeb.corsFilter(), "the CORS filter after it still runs");
        assertFalse(assertInstanceOf(HttpConnectionManager.class, chains.get(1).filter()).grpcWebFilter());
    }

    @Test
    void theFilterNamedWithoutAConfigIsTakenAsEnvoyTakesIt() throws Exception {
        HttpConnectionManager hcm = (HttpConnectionManager) chains(virtualInbound(
                "{\"name\": \"envoy.filters.http.grpc_web\"}")).get(0).filter();
        assertTrue(hcm.grpcWebFilter());
    }

    @Test
    void aDisabledGrpcWebFilterIsTakenButDoesNotRun() throws Exception {
        HttpConnectionManager hcm = (HttpConnectionManager) chains(virtualInbound(
                ISTIO_FILTER.replace("{\"name\"", "{\"disabled\": true, \"name\""))).get(0).filter();
        assertEquals("envoy.filters.http.grpc_web", hcm.httpFilters().get(1).name());
        assertFalse(hcm.grpcWebFilter());
    }

    @Test
    void aGrpcWebConfigWithAnUnknownFieldIsRefusedByName() {
        String message = assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(
                virtualInbound(ISTIO_FILTER.replace("GrpcWeb\"", "GrpcWeb\", \"someNewField\": true"))))
                .getMessage();
        assertTrue(message.contains("filterChains[0].filters[0].typedConfig.httpFilters[1].typedConfig.someNewField: "
                + "unknown field"), message);
    }
}
