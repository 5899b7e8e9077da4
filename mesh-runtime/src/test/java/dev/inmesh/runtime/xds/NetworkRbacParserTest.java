package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.rbac.NetworkRbac;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.runtime.router.IstioRbac;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's RBAC network filter ({@code envoy.filters.network.rbac}) as istiod writes it on the TCP chains of
 * {@code virtualInbound}: the listener is taken (where the filter's name refused it, and with it every chain), the
 * filters read in chain order with their stat prefixes; a policy reading an HTTP request ({@code header},
 * {@code url_path}, {@code uri_template}), a missing {@code stat_prefix} and {@code CONTINUOUS} enforcement are
 * refused by name.
 */
class NetworkRbacParserTest {

    /** Istio's virtualInbound: a TCP chain for port 3306 and the passthrough chain, both led by {@code filters}. */
    static String virtualInbound(String filters) {
        String f = filters.stripTrailing().indent(2);
        return """
                name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                use_original_dst: true
                traffic_direction: INBOUND
                filter_chains:
                - name: 0.0.0.0_3306
                  filter_chain_match: {destination_port: 3306, transport_protocol: raw_buffer}
                  filters:
                %s
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: inbound|3306||
                      cluster: inbound|3306||
                - name: virtualInbound
                  filter_chain_match: {prefix_ranges: [{address_prefix: 0.0.0.0, prefix_len: 0}]}
                  filters:
                %s
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: InboundPassthroughCluster
                      route_config: {name: passthrough, virtual_hosts: [{name: all, domains: ["*"]}]}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                """.formatted(f.stripTrailing(), f.stripTrailing());
    }

    private static List<FilterChain> chains(String listener) throws EnvoyConfigReader.ConfigReadException {
        return EnvoyConfigReader.read(listener).listeners().get("virtualInbound").filterChains();
    }

    private static String refused(String text) {
        return RbacParserTest.refused(text);
    }

    /** One network RBAC filter, stat prefix {@code tcp.}, whose one policy has this permission and principal. */
    private static String policy(String permission, String principal) {
        return RbacParserTest.policy(permission, principal).replace("filters.http.rbac", "filters.network.rbac")
                .replace("    rules:\n", "    stat_prefix: tcp.\n    rules:\n");
    }

    @Test
    void istiosDenyAndAllowNetworkFiltersOnTheTcpAndPassthroughChainsAreTakenInOrderWhereTheListenerWasRefused()
            throws Exception {
        List<FilterChain> chains = chains(virtualInbound(IstioRbac.TCP_DENY_THEN_ALLOW));
        FilterChain tcp = chains.get(0);
        assertInstanceOf(TcpProxy.class, tcp.filter());
        assertEquals(2, tcp.rbac().size());
        NetworkRbac deny = tcp.rbac().get(0);
        assertEquals("tcp.", deny.statPrefix());
        assertEquals(Rbac.Action.DENY, deny.rbac().rules().action());
        assertEquals("istio_dry_run_allow_", deny.rbac().shadowRulesStatPrefix());
        assertEquals("", deny.rbac().rulesStatPrefix(), "the network filter has no rules_stat_prefix");
        Principal blocked = deny.rbac().rules().policies().get("ns[default]-policy[deny-blocked]-rule[0]")
                .principals().get(0);
        assertEquals(new Principal.And(List.of(new Principal.Or(List.of(new Principal.RemoteAddress(
                Principal.AddressKind.REMOTE_IP, new CidrRange("127.0.0.2", 32)))))), blocked);
        NetworkRbac allow = tcp.rbac().get(1);
        assertEquals(Rbac.Action.ALLOW, allow.rbac().rules().action(), "ALLOW is the default, which istiod omits");
        assertEquals(List.of("ns[default]-policy[allow-local]-rule[0]", "ns[default]-policy[allow-productpage]-rule[0]"),
                List.copyOf(allow.rbac().rules().policies().keySet()));
        assertEquals(Rbac.Action.DENY, allow.rbac().shadowRules().action());
        assertEquals("istio_dry_run_deny_", allow.rbac().shadowRulesStatPrefix());

        FilterChain passthrough = chains.get(1);
        assertInstanceOf(HttpConnectionManager.class, passthrough.filter(),
                "before a connection manager too");
        assertEquals(tcp.rbac(), passthrough.rbac());
    }

    @Test
    void aChainWithoutNetworkRbacHasNone() throws Exception {
        assertTrue(chains(virtualInbound("")).get(0).rbac().isEmpty());
    }

    @Test
    void headerUrlPathAndUriTemplateWhichOnlyAnHttpRequestHasAreRefusedByNameWithTheirPath() {
        String header = refused(virtualInbound(policy(
                "{and_rules: {rules: [{header: {name: \":method\", string_match: {exact: GET}}}]}}", "{any: true}")));
        assertTrue(header.contains("Listener \"virtualInbound\": filter_chains[0].filters[0].typed_config.rules"
                + ".policies[p].permissions[0].and_rules.rules[0].header: is not supported by Inmesh in a network "
                + "RBAC filter"), header);
        String path = refused(virtualInbound(policy("{any: true}",
                "{not_id: {or_ids: {ids: [{any: true}, {url_path: {path: {prefix: /admin}}}]}}}")));
        assertTrue(path.contains("filter_chains[0].filters[0].typed_config.rules.policies[p].principals[0].not_id"
                + ".or_ids.ids[1].url_path: is not supported by Inmesh in a network RBAC filter"), path);
        String shadow = refused(virtualInbound(policy("{url_path: {path: {exact: /}}}", "{any: true}")
                .replace("    rules:\n", "    shadow_rules:\n")));
        assertTrue(shadow.contains("filter_chains[0].filters[0].typed_config.shadow_rules.policies[p].permissions[0]"
                + ".url_path: is not supported by Inmesh in a network RBAC filter"), shadow);
        String template = refused(virtualInbound(policy(RbacParserTest.uriTemplate("/static/**"), "{any: true}")));
        assertTrue(template.contains("filter_chains[0].filters[0].typed_config.rules.policies[p].permissions[0]"
                + ".uri_template: is not supported by Inmesh in a network RBAC filter"), template);
    }

    @Test
    void aMissingStatPrefixIsRefusedAsEnvoyRefusesIt() {
        String m = refused(virtualInbound(policy("{any: true}", "{any: true}").replace("    stat_prefix: tcp.\n",
                "")));
        assertTrue(m.contains("filter_chains[0].filters[0].typed_config.stat_prefix: \"\" (expected: a non-empty "
                + "prefix"), m);
    }

    @Test
    void continuousEnforcementIsRefusedByNameAndOneTimeOnFirstByteTaken() throws Exception {
        String p = policy("{any: true}", "{any: true}");
        String m = refused(virtualInbound(p.replace("stat_prefix: tcp.",
                "stat_prefix: tcp.\n    enforcement_type: CONTINUOUS")));
        assertTrue(m.contains("filter_chains[0].filters[0].typed_config.enforcement_type: CONTINUOUS is not "
                + "supported by Inmesh"), m);
        assertEquals(1, chains(virtualInbound(p.replace("stat_prefix: tcp.",
                "stat_prefix: tcp.\n    enforcement_type: ONE_TIME_ON_FIRST_BYTE"))).get(0).rbac().size());
    }

    @Test
    void whatTheNetworkFilterCannotEvaluateHereIsRefusedByName() {
        String m = refused(virtualInbound(policy("{any: true}", "{any: true}").replace("stat_prefix: tcp.",
                "stat_prefix: tcp.\n    delay_deny: 1s")));
        assertTrue(m.contains("filter_chains[0].filters[0].typed_config.delay_deny"), m);
    }
}
