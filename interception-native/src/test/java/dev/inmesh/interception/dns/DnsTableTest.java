package dev.inmesh.interception.dns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.netty.handler.codec.dns.DnsRecordType;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The DNS proxy's name table, compiled from a configuration's virtual hosts. */
class DnsTableTest {
    private static final List<String> SEARCH = List.of("default.svc.cluster.local", "svc.cluster.local",
            "cluster.local");

    private static List<InetAddress> ips(String... ips) throws Exception {
        List<InetAddress> out = new java.util.ArrayList<>();
        for (String ip : ips) {
            out.add(InetAddress.getByName(ip));
        }
        return out;
    }

    @Test
    void istiosBookinfoRoutesNameEachServiceByItsHostNamesAndResolveThemToItsClusterIp() throws Exception {
        DnsTable table = DnsTable.of(EnvoyConfigReader.read(Path.of("../mesh-runtime/src/test/resources/istio/"
                + "routes.json")), SEARCH);

        assertEquals(Set.of("details.default.svc.cluster.local.", "details.", "details.default.svc.",
                "details.default.", "productpage.default.svc.cluster.local.", "productpage.",
                "productpage.default.svc.", "productpage.default.", "ratings.default.svc.cluster.local.", "ratings.",
                "ratings.default.svc.", "ratings.default.", "reviews.default.svc.cluster.local.", "reviews.",
                "reviews.default.svc.", "reviews.default."), table.names());
        assertEquals(new DnsTable.Answer(null, "reviews.default.svc.cluster.local.", ips("10.96.10.141")),
                table.lookup("Reviews.Default.Svc.Cluster.Local.", DnsRecordType.A));
        assertEquals(new DnsTable.Answer(null, "reviews.", ips("10.96.10.141")),
                table.lookup("reviews", DnsRecordType.A));
        // a known name with no IPv6 address: known, answered with no record
        assertEquals(new DnsTable.Answer(null, "ratings.default.", List.of()),
                table.lookup("ratings.default.", DnsRecordType.AAAA));
        // the allow_any virtual host ('*') names nothing; other names and types are forwarded
        assertNull(table.lookup("www.example.com.", DnsRecordType.A));
        assertNull(table.lookup("reviews.default.svc.cluster.local.", DnsRecordType.TXT));
        assertNull(table.lookup("10.96.10.141.", DnsRecordType.A));
    }

    @Test
    void aNameFollowedByTheFirstSearchDomainIsAnAliasOfTheName() throws Exception {
        DnsTable table = DnsTable.of(EnvoyConfigReader.read(Path.of("../mesh-runtime/src/test/resources/istio/"
                + "routes.json")), SEARCH);

        assertEquals(new DnsTable.Answer("reviews.default.default.svc.cluster.local.", "reviews.default.",
                ips("10.96.10.141")), table.lookup("reviews.default.default.svc.cluster.local.", DnsRecordType.A));
        assertEquals(new DnsTable.Answer("details.default.svc.cluster.local.default.svc.cluster.local.",
                "details.default.svc.cluster.local.", ips("10.96.171.138")),
                table.lookup("details.default.svc.cluster.local.default.svc.cluster.local", DnsRecordType.A));
        // 'reviews' followed by the first search domain is a name of its own, not an alias
        assertNull(table.lookup("reviews.default.svc.cluster.local.", DnsRecordType.A).alias());
        // only the first search domain makes aliases, as Istio's agent stores only the first
        assertNull(table.lookup("reviews.default.svc.cluster.local.svc.cluster.local.", DnsRecordType.A));
        assertNull(DnsTable.of(EnvoyConfigReader.read(Path.of("../mesh-runtime/src/test/resources/istio/"
                + "routes.json")), List.of()).lookup("reviews.default.default.svc.cluster.local.", DnsRecordType.A));
    }

    @Test
    void theSampleBookinfoConfigurationHasNoClusterIpDomainsSoItNamesNothing() throws Exception {
        DnsTable table = DnsTable.of(EnvoyConfigReader.read(Path.of("../samples/bookinfo/mesh")), SEARCH);

        assertEquals(Set.of(), table.names());
        assertNull(table.lookup("reviews.default.svc.cluster.local.", DnsRecordType.A));
    }

    @Test
    void portsAreStrippedIpv6LiteralsAnswerAaaaWildcardsAreLeftOutAndANameInTwoRouteConfigsHasBothAddresses()
            throws Exception {
        String yaml = """
                resources:
                - "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
                  name: "9080"
                  virtual_hosts:
                  - name: dual.ns.svc.cluster.local:9080
                    domains: ["dual.ns.svc.cluster.local", "dual.ns.svc.cluster.local:9080", "dual.ns:9080",
                              "10.96.0.7", "10.96.0.7:9080", "[fd00:10:96::7]", "[fd00:10:96::7]:9080"]
                    routes: [{match: {prefix: /}, route: {cluster: a}}]
                  - name: wild
                    domains: ["*.example.com", "*.example.com:9080", "240.240.0.1"]
                    routes: [{match: {prefix: /}, route: {cluster: a}}]
                  - name: no-ip.ns.svc.cluster.local:9080
                    domains: ["no-ip.ns.svc.cluster.local", "no-ip.ns.svc.cluster.local:9080"]
                    routes: [{match: {prefix: /}, route: {cluster: a}}]
                - "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
                  name: "8080"
                  virtual_hosts:
                  - name: dual.ns.svc.cluster.local:8080
                    domains: ["dual.ns.svc.cluster.local:8080", "10.96.0.8:8080", "10.96.0.7:8080"]
                    routes: [{match: {prefix: /}, route: {cluster: a}}]
                """;
        DnsTable table = DnsTable.of(EnvoyConfigReader.read(yaml), List.of());

        assertEquals(Set.of("dual.ns.svc.cluster.local.", "dual.ns."), table.names());
        assertEquals(ips("10.96.0.7", "10.96.0.8"),
                table.lookup("dual.ns.svc.cluster.local.", DnsRecordType.A).addresses());
        assertEquals(ips("10.96.0.7"), table.lookup("dual.ns.", DnsRecordType.A).addresses());
        assertEquals(ips("fd00:10:96::7"), table.lookup("dual.ns.", DnsRecordType.AAAA).addresses());
        assertNull(table.lookup("foo.example.com.", DnsRecordType.A));
        assertNull(table.lookup("no-ip.ns.svc.cluster.local.", DnsRecordType.A));
    }

    @Test
    void aListenersInlineRouteConfigurationNamesItsVirtualHostsToo() throws Exception {
        String yaml = """
                static_resources:
                  listeners:
                  - name: inline
                    address: {socket_address: {address: 127.0.0.1, port_value: 18080}}
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: inline
                          route_config:
                            virtual_hosts:
                            - name: echo
                              domains: ["echo.mesh.local", "10.0.0.9:18080"]
                              routes: [{match: {prefix: /}, route: {cluster: a}}]
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                  clusters:
                  - name: a
                    type: STATIC
                    load_assignment:
                      cluster_name: a
                      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1,
                        port_value: 1}}}}]}]
                """;
        DnsTable table = DnsTable.of(EnvoyConfigReader.read(yaml), List.of());

        assertEquals(ips("10.0.0.9"), table.lookup("ECHO.mesh.local", DnsRecordType.A).addresses());
        assertTrue(DnsTable.EMPTY.names().isEmpty());
    }
}
