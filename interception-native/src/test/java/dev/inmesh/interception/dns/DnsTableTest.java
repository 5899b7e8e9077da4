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
    private static NameTable.NameInfo k8s(String shortname, String namespace, String... ips) {
        return new NameTable.NameInfo(List.of(ips), "Kubernetes", shortname, namespace, List.of());
    }

    /** istiod's table for a proxy of namespace default: a service of its own, one of another, a ServiceEntry. */
    private static NameTable istiodTable() {
        java.util.Map<String, NameTable.NameInfo> t = new java.util.LinkedHashMap<>();
        t.put("reviews.default.svc.cluster.local", k8s("reviews", "default", "10.96.10.141"));
        t.put("ratings.prod.svc.cluster.local", k8s("ratings", "prod", "10.96.0.7", "fd00::7"));
        t.put("api.example.com", new NameTable.NameInfo(List.of("240.240.0.1"), "External", "", "", List.of()));
        t.put("*.wild.example.com", new NameTable.NameInfo(List.of("240.240.0.2"), "External", "", "", List.of()));
        t.put("broken.example.com", new NameTable.NameInfo(List.of("not-an-ip"), "External", "", "", List.of()));
        t.put("db.other.svc.remote.domain", k8s("db", "other", "10.1.0.9"));
        return new NameTable(t);
    }

    @Test
    void istiodsNameTableNamesAKubernetesServiceByItsShortFormsAsIstiosAgentDoes() throws Exception {
        // read back from its wire form, as it comes from istiod
        NameTable nt = NameTable.parse(istiodTable().toByteString());
        assertEquals(istiodTable(), nt);
        DnsTable table = DnsTable.of(nt, SEARCH, "default", "cluster.local");

        assertEquals(Set.of("reviews.default.svc.cluster.local.", "reviews.default.", "reviews.",
                "reviews.default.svc.", "ratings.prod.svc.cluster.local.", "ratings.prod.", "ratings.prod.svc.",
                "api.example.com.", "*.wild.example.com.", "db.other.svc.remote.domain."), table.names());
        assertEquals(new DnsTable.Answer(null, "reviews.", ips("10.96.10.141")),
                table.lookup("reviews.", DnsRecordType.A));
        // a service of another namespace: not by its name alone
        assertNull(table.lookup("ratings.", DnsRecordType.A));
        assertEquals(new DnsTable.Answer(null, "ratings.prod.", ips("fd00::7")),
                table.lookup("ratings.prod.", DnsRecordType.AAAA));
        // a ServiceEntry's host, and the alias the first search domain makes of it
        assertEquals(new DnsTable.Answer("api.example.com.default.svc.cluster.local.", "api.example.com.",
                ips("240.240.0.1")), table.lookup("api.example.com.default.svc.cluster.local.", DnsRecordType.A));
        // a host whose addresses do not parse names nothing; a service outside the proxy's cluster domain only by
        // its host name
        assertNull(table.lookup("broken.example.com.", DnsRecordType.A));
        assertNull(table.lookup("db.other.", DnsRecordType.A));
        assertEquals(ips("10.1.0.9"), table.lookup("db.other.svc.remote.domain.", DnsRecordType.A).addresses());
    }

    @Test
    void aWildcardHostOfTheNameTableAnswersEveryNameBelowItUnderTheNameAsked() throws Exception {
        DnsTable table = DnsTable.of(istiodTable(), SEARCH, "default", "cluster.local");

        assertEquals(new DnsTable.Answer(null, "a.wild.example.com.", ips("240.240.0.2")),
                table.lookup("A.Wild.Example.Com", DnsRecordType.A));
        assertEquals(new DnsTable.Answer(null, "x.y.wild.example.com.", ips("240.240.0.2")),
                table.lookup("x.y.wild.example.com.", DnsRecordType.A));
        assertEquals(new DnsTable.Answer(null, "a.wild.example.com.", List.of()),
                table.lookup("a.wild.example.com.", DnsRecordType.AAAA));
        // the name followed by the first search domain, what a resolver asks first: an alias (CNAME) of the
        // wildcard, whose addresses follow under its own name, as Istio's agent answers it
        assertEquals(new DnsTable.Answer("a.wild.example.com.default.svc.cluster.local.", "*.wild.example.com.",
                ips("240.240.0.2")), table.lookup("a.wild.example.com.default.svc.cluster.local.", DnsRecordType.A));
        assertEquals(new DnsTable.Answer("a.wild.example.com.default.svc.cluster.local.", "*.wild.example.com.",
                List.of()), table.lookup("a.wild.example.com.default.svc.cluster.local.", DnsRecordType.AAAA));
        assertNull(table.lookup("a.wild.example.com.default.svc.cluster.local.", DnsRecordType.TXT));
        // not under another search domain, which makes no alias
        assertNull(table.lookup("a.wild.example.com.svc.cluster.local.", DnsRecordType.A));
        // not the name above it, nor another domain
        assertNull(table.lookup("wild.example.com.", DnsRecordType.A));
        assertNull(table.lookup("a.example.com.", DnsRecordType.A));
    }

    @Test
    void aNameTableThatIsNotWellFormedIsRefusedNamingItsField() {
        com.google.protobuf.ByteString bad = com.google.protobuf.ByteString.copyFrom(new byte[] {0x0a, 0x05, 0x0a});
        var e = org.junit.jupiter.api.Assertions.assertThrows(
                com.google.protobuf.InvalidProtocolBufferException.class, () -> NameTable.parse(bad));
        assertTrue(e.getMessage().startsWith("NameTable.table: "), e.getMessage());
    }
}
