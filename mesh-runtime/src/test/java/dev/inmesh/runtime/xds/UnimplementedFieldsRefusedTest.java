package dev.inmesh.runtime.xds;

import static dev.inmesh.runtime.xds.IstioSecurityTelemetryShapesTest.inbound;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.route.Route;
import org.junit.jupiter.api.Test;

/**
 * Fields that loaded and whose behaviour Inmesh does not implement: each is refused with its path now, and the shapes
 * istiod writes keep loading.
 */
class UnimplementedFieldsRefusedTest {

    private static Route route(String routeFields) throws Exception {
        var rc = new RouteConfigurationParser().parse(EnvoyJson.toMessage(EnvoyJson.tree("""
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: ["*"]
                  routes:
                  - match: {prefix: /}
                """ + routeFields.indent(4)), io.envoyproxy.envoy.config.route.v3.RouteConfiguration.class));
        return rc.virtualHosts().get(0).routes().get(0);
    }

    private static String refusal(org.junit.jupiter.api.function.Executable parse) {
        return assertThrows(InvalidResourceException.class, parse).getMessage();
    }

    @Test
    void aDecoratorThatDoesNotPropagateIsRefused() throws Exception {
        assertEquals("op", route("""
                route: {cluster: c}
                decorator: {operation: op, propagate: true}
                """).decorator());
        String m = refusal(() -> route("""
                route: {cluster: c}
                decorator: {operation: op, propagate: false}
                """));
        assertTrue(m.contains("virtual_hosts[0].routes[0].decorator.propagate"), m);
    }

    @Test
    void aRoutesOwnTracingIsRefused() {
        // its sampling and tags would override the connection manager's for the route; istiod writes none
        String m = refusal(() -> route("""
                route: {cluster: c}
                tracing: {random_sampling: {numerator: 0}}
                """));
        assertTrue(m.contains("virtual_hosts[0].routes[0].tracing"), m);
    }

    @Test
    void aRoutesOwnUpgradeConfigIsReadAndAConnectConfigRefused() throws Exception {
        var action = (dev.inmesh.api.config.route.RouteAction) route("""
                route: {cluster: c, upgrade_configs: [{upgrade_type: websocket}, {upgrade_type: websocket, enabled: true}]}
                """).action();
        assertEquals(Boolean.TRUE, action.websocketUpgrade());
        // as Envoy: a route's entry that turns its upgrade off decides over the connection manager's (it was refused)
        action = (dev.inmesh.api.config.route.RouteAction) route("""
                route: {cluster: c, upgrade_configs: [{upgrade_type: WebSocket, enabled: false}]}
                """).action();
        assertEquals(Boolean.FALSE, action.websocketUpgrade());
        assertEquals(null, ((dev.inmesh.api.config.route.RouteAction) route("route: {cluster: c}").action())
                .websocketUpgrade(), "no entry: the connection manager's decide");
        String m = refusal(() -> route("""
                route: {cluster: c, upgrade_configs: [{upgrade_type: websocket, connect_config: {}}]}
                """));
        assertTrue(m.contains("routes[0].route.upgrade_configs[0].connect_config"), m);
    }

    @Test
    void aFilterInmeshRunsWhoseConfigComesOverEcdsIsRefused() throws Exception {
        String ecdsFault = """
                - name: envoy.filters.http.fault
                  config_discovery:
                    config_source: {ads: {}}
                    type_urls: [type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault]
                """;
        String m = refusal(() -> new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(
                inbound("", ecdsFault, "")), io.envoyproxy.envoy.config.listener.v3.Listener.class)));
        assertTrue(m.contains("http_filters[0].config_discovery"), m);
        // an observing filter's config over ECDS changes nothing Inmesh does
        new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound("", """
                - name: istio.stats
                  config_discovery:
                    config_source: {ads: {}}
                    type_urls: [type.googleapis.com/stats.PluginConfig]
                """, "")), io.envoyproxy.envoy.config.listener.v3.Listener.class));
    }

    @Test
    void connectionManagerHeaderRewritesInmeshDoesNotMakeAreRefused() throws Exception {
        new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound("""
                add_user_agent: false
                scheme_header_transformation: {}
                """, "", "")), io.envoyproxy.envoy.config.listener.v3.Listener.class));
        String m = refusal(() -> new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound(
                "add_user_agent: true\n", "", "")), io.envoyproxy.envoy.config.listener.v3.Listener.class)));
        assertTrue(m.contains("typed_config.add_user_agent"), m);
        m = refusal(() -> new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound(
                "scheme_header_transformation: {scheme_to_overwrite: https}\n", "", "")),
                io.envoyproxy.envoy.config.listener.v3.Listener.class)));
        assertTrue(m.contains("scheme_header_transformation.scheme_to_overwrite"), m);
        // match_upstream: what Inmesh's upstream :scheme is anyway (DownstreamTlsTest)
        new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound(
                "scheme_header_transformation: {match_upstream: true}\n", "", "")),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
    }

    @Test
    void properCaseHeaderNamesAreRefusedOnAConnectionManager() throws Exception {
        new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound("""
                http_protocol_options:
                  header_key_format:
                    stateful_formatter:
                      name: preserve_case
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig}
                """, "", "")), io.envoyproxy.envoy.config.listener.v3.Listener.class));
        String m = refusal(() -> new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound(
                "http_protocol_options: {header_key_format: {proper_case_words: {}}}\n", "", "")),
                io.envoyproxy.envoy.config.listener.v3.Listener.class)));
        assertTrue(m.contains("http_protocol_options.header_key_format.proper_case_words"), m);
    }
}
