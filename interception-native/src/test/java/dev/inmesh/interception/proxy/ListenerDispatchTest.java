package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import java.net.InetSocketAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

class ListenerDispatchTest {
    private static final String TCP = """
              filters:
              - name: envoy.filters.network.tcp_proxy
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                  stat_prefix: s
                  cluster: %s
            """;

    private static String listener(String name, String ip, int port, String extra, String chains) {
        return """
              - name: %s
                address: {socket_address: {address: %s, port_value: %d}}
            %s
                filter_chains:
            %s
            """.formatted(name, ip, port, extra.indent(4).stripTrailing(), chains.indent(4).stripTrailing());
    }

    private static String chain(String name, String match, String cluster) {
        return ("- name: " + name + "\n" + (match.isEmpty() ? "" : "  filter_chain_match: " + match + "\n")
                + TCP.formatted(cluster).stripIndent().indent(0));
    }

    private static MeshSnapshot snapshot() throws Exception {
        String yaml = "static_resources:\n  listeners:\n"
                + listener("virtualOutbound", "0.0.0.0", 15001, "use_original_dst: true",
                        chain("catchall", "", "PassthroughCluster"))
                + listener("10.0.0.9_8080", "10.0.0.9", 8080, "bind_to_port: false", chain("svc", "", "svc"))
                + listener("0.0.0.0_8080", "0.0.0.0", 8080, "bind_to_port: false", chain("any8080", "", "any"))
                + listener("virtualInbound", "0.0.0.0", 15006, """
                        listener_filters:
                        - name: envoy.filters.listener.original_dst
                        - name: envoy.filters.listener.tls_inspector
                        - name: envoy.filters.listener.http_inspector""",
                        chain("http9080", "{destination_port: 9080, application_protocols: [http/1.1, h2c]}", "in")
                        + chain("tls9080", "{destination_port: 9080, transport_protocol: tls}", "in")
                        + chain("sni", "{server_names: [\"*.example.com\"]}", "in")
                        + chain("other9080", "{destination_port: 9080}", "in"))
                + """
                  clusters:
                  - {name: PassthroughCluster, type: ORIGINAL_DST, lb_policy: CLUSTER_PROVIDED}
                  - {name: svc, type: STATIC}
                  - {name: any, type: STATIC}
                  - {name: in, type: ORIGINAL_DST, lb_policy: CLUSTER_PROVIDED}
                """;
        SnapshotHolder holder = new SnapshotHolder();
        return holder.apply(EnvoyConfigReader.read(yaml));
    }

    private static InetSocketAddress at(String ip, int port) {
        return new InetSocketAddress(ip, port);
    }

    @Test
    void useOriginalDstHandsAConnectionToTheListenerOfItsExactAddressThenOfItsPort() throws Exception {
        MeshSnapshot s = snapshot();
        FilterChainSelector outbound = s.listener("virtualOutbound");
        assertEquals("10.0.0.9_8080", ListenerDispatch.target(s, outbound, at("10.0.0.9", 8080)).listener().name());
        assertEquals("0.0.0.0_8080", ListenerDispatch.target(s, outbound, at("10.0.0.7", 8080)).listener().name());
    }

    @Test
    void withoutAListenerForTheDestinationTheConnectionStaysOnItsOwnChains() throws Exception {
        MeshSnapshot s = snapshot();
        FilterChainSelector outbound = s.listener("virtualOutbound");
        FilterChainSelector target = ListenerDispatch.target(s, outbound, at("93.184.216.34", 443));
        assertEquals("virtualOutbound", target.listener().name());
        var info = ListenerDispatch.connectionInfo(at("93.184.216.34", 443), at("10.0.0.5", 40000),
                ProtocolDetector.Detection.RAW);
        assertEquals("catchall", ListenerDispatch.chain(target, info).name());
    }

    @Test
    void aListenerWithoutUseOriginalDstKeepsItsConnections() throws Exception {
        MeshSnapshot s = snapshot();
        FilterChainSelector inbound = s.listener("virtualInbound");
        assertEquals("virtualInbound", ListenerDispatch.target(s, inbound, at("10.0.0.9", 8080)).listener().name());
        assertTrue(ListenerDispatch.restoresOriginalDestination(inbound.listener(), 15006));
        assertTrue(ListenerDispatch.restoresOriginalDestination(s.listener("virtualOutbound").listener(), 15001));
        assertFalse(ListenerDispatch.restoresOriginalDestination(s.listener("0.0.0.0_8080").listener(), 8080));
    }

    @Test
    void inboundChainsAreChosenByPortThenTransportThenApplicationProtocol() throws Exception {
        MeshSnapshot s = snapshot();
        FilterChainSelector inbound = s.listener("virtualInbound");
        InetSocketAddress pod = at("10.0.0.5", 9080);
        InetSocketAddress peer = at("10.0.0.6", 51000);
        var http = ListenerDispatch.connectionInfo(pod, peer, ProtocolDetector.Detection.raw(List.of("http/1.1")));
        var tls = ListenerDispatch.connectionInfo(pod, peer,
                new ProtocolDetector.Detection(true, "tls", "a.example.com", List.of("h2")));
        var raw = ListenerDispatch.connectionInfo(pod, peer, ProtocolDetector.Detection.RAW);
        assertEquals("http9080", ListenerDispatch.chain(inbound, http).name());
        assertEquals("tls9080", ListenerDispatch.chain(inbound, tls).name());
        assertEquals("other9080", ListenerDispatch.chain(inbound, raw).name());
        var sniOnOtherPort = ListenerDispatch.connectionInfo(at("10.0.0.5", 7000), peer,
                new ProtocolDetector.Detection(true, "tls", "b.example.com", List.of()));
        assertEquals("sni", ListenerDispatch.chain(inbound, sniOnOtherPort).name());
        var nothing = ListenerDispatch.connectionInfo(at("10.0.0.5", 7000), peer, ProtocolDetector.Detection.RAW);
        assertNull(ListenerDispatch.chain(inbound, nothing));
    }

    @Test
    void inspectorsRunOnlyWhereTheListenerNamesThem() throws Exception {
        MeshSnapshot s = snapshot();
        assertTrue(ListenerDispatch.detector(s.listener("virtualInbound").listener(), 9080).enabled());
        assertFalse(ListenerDispatch.detector(s.listener("virtualOutbound").listener(), 9080).enabled());
    }

    @Test
    void anInspectorIsSkippedOnTheDestinationPortsItsFilterDisabledMatches() throws Exception {
        // as Istio writes virtualInbound: no HTTP inspector on the ports declared TCP (3306, 5000..5009), and the TLS
        // inspector only where some chain wants TLS (a not_match of those ports)
        String yaml = "static_resources:\n  listeners:\n" + listener("virtualInbound", "0.0.0.0", 15006, """
                listener_filters:
                - name: envoy.filters.listener.original_dst
                  filter_disabled: {destination_port_range: {start: 15006, end: 15007}}
                - name: envoy.filters.listener.tls_inspector
                  filter_disabled: {not_match: {destination_port_range: {start: 9080, end: 9081}}}
                - name: envoy.filters.listener.http_inspector
                  filter_disabled:
                    or_match:
                      rules:
                      - destination_port_range: {start: 3306, end: 3307}
                      - destination_port_range: {start: 5000, end: 5010}""",
                chain("all", "", "in")) + """
                  clusters:
                  - {name: in, type: ORIGINAL_DST, lb_policy: CLUSTER_PROVIDED}
                """;
        var l = new SnapshotHolder().apply(EnvoyConfigReader.read(yaml)).listener("virtualInbound").listener();
        assertTrue(ListenerDispatch.detector(l, 8080).enabled());
        assertFalse(ListenerDispatch.detector(l, 3306).enabled());
        assertFalse(ListenerDispatch.detector(l, 5009).enabled());
        assertTrue(ListenerDispatch.detector(l, 5010).enabled());
        assertTrue(ListenerDispatch.detector(l, 9080).enabled());
        // the start of a TLS record: the TLS inspector (on for 9080 only) waits for the rest of the ClientHello, while
        // the HTTP inspector alone, on 8080, sees at once that it is not HTTP
        byte[] record = {0x16, 0x03, 0x01};
        assertFalse(ListenerDispatch.detector(l, 9080).detect(record, record.length).done());
        assertEquals(ProtocolDetector.Detection.RAW, ListenerDispatch.detector(l, 8080).detect(record, record.length));
        assertFalse(ListenerDispatch.restoresOriginalDestination(l, 15006));
        assertTrue(ListenerDispatch.restoresOriginalDestination(l, 15001));
    }

    @Test
    void addressesAreWrittenAsTheSnapshotIndexesThem() {
        assertEquals("10.1.2.3", ListenerDispatch.ip(at("::ffff:10.1.2.3", 1)));
        assertEquals("[::1]:80", ListenerDispatch.hostPort(at("::1", 80)));
        assertEquals("::", ListenerDispatch.ip(at("::", 0)));
        assertEquals("fd00::6", ListenerDispatch.ip(at("fd00:0:0:0:0:0:0:6", 0)));
        assertEquals("2001:db8::1:0:0:1", ListenerDispatch.ip(at("2001:db8:0:0:1:0:0:1", 0)));
        assertEquals("2001:db8:0:1:1:1:1:1", ListenerDispatch.ip(at("2001:db8:0:1:1:1:1:1", 0)));
        assertTrue(ListenerDispatch.connectionInfo(at("10.0.0.5", 1), at("127.0.0.1", 2),
                ProtocolDetector.Detection.RAW).sourceIsLocal());
        assertTrue(ListenerDispatch.connectionInfo(at("10.0.0.5", 1), at("10.0.0.5", 2),
                ProtocolDetector.Detection.RAW).sourceIsLocal());
    }

    @Test
    void aSourceIsLocalAsEnvoysSameIpOrLoopbackSaysOnlyFromTheLoopbackAddressItselfOrTheDestinationsAddress() {
        // Envoy's loopback is 127.0.0.1 and ::1: Istio's 127.0.0.6 to a pod address is an external source
        assertFalse(ListenerDispatch.connectionInfo(at("10.0.0.5", 9080), at("127.0.0.6", 2),
                ProtocolDetector.Detection.RAW).sourceIsLocal());
        assertFalse(ListenerDispatch.connectionInfo(at("127.0.0.1", 9080), at("127.0.0.6", 2),
                ProtocolDetector.Detection.RAW).sourceIsLocal());
        assertTrue(ListenerDispatch.connectionInfo(at("127.0.0.6", 9080), at("127.0.0.6", 2),
                ProtocolDetector.Detection.RAW).sourceIsLocal());
        assertTrue(ListenerDispatch.connectionInfo(at("fd00::5", 9080), at("::1", 2),
                ProtocolDetector.Detection.RAW).sourceIsLocal());
        assertTrue(ListenerDispatch.connectionInfo(at("10.0.0.5", 9080), at("::ffff:127.0.0.1", 2),
                ProtocolDetector.Detection.RAW).sourceIsLocal());
    }
}
