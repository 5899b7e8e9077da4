package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * Where Envoy resolves no name, an address must be an IP address ("malformed IP address"): a listener's address and
 * additional addresses, a cluster's bind address (and, in {@link ClusterParserTest} and
 * {@link ClusterLoadAssignmentParserTest}, a STATIC or EDS endpoint).
 */
class IpAddressValidationTest {
    private static final String LISTENER = """
            resources:
            - "@type": type.googleapis.com/envoy.config.listener.v3.Listener
              name: l
              address: {socket_address: {address: %s, port_value: 8080}}
              additional_addresses: [{address: {socket_address: {address: %s, port_value: 8080}}}]
              filter_chains:
              - filters:
                - name: envoy.filters.network.tcp_proxy
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                    stat_prefix: c
                    cluster: c
            """;

    private static String error(String yaml) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(yaml))
                .getMessage();
    }

    @Test
    void aListenersAddressesAreIpAddresses() throws Exception {
        assertTrue(error(LISTENER.formatted("localhost", "\"::1\"")).endsWith("Listener \"l\": address.socket_address"
                + ".address: malformed IP address: localhost (expected: an IP address)"),
                error(LISTENER.formatted("localhost", "\"::1\"")));
        assertTrue(error(LISTENER.formatted("0.0.0.0", "ip6-localhost")).endsWith("Listener \"l\": "
                + "additional_addresses[0].address.socket_address.address: malformed IP address: ip6-localhost "
                + "(expected: an IP address)"), error(LISTENER.formatted("0.0.0.0", "ip6-localhost")));
        assertEquals(1, EnvoyConfigReader.read(LISTENER.formatted("0.0.0.0", "\"::\"")).listeners().size());
    }

    @Test
    void aClustersBindAddressIsAnIpAddress() throws Exception {
        String cluster = """
                resources:
                - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
                  name: c
                  type: STATIC
                  connect_timeout: 1s
                  upstream_bind_config: {source_address: {address: %s, port_value: 0}}
                """;
        assertTrue(error(cluster.formatted("pod.local")).endsWith("Cluster \"c\": upstream_bind_config"
                + ".source_address.address: malformed IP address: pod.local (expected: an IP address)"),
                error(cluster.formatted("pod.local")));
        assertEquals(1, EnvoyConfigReader.read(cluster.formatted("127.0.0.6")).clusters().size());
    }
}
