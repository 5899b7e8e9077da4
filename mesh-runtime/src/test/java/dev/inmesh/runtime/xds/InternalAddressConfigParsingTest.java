package dev.inmesh.runtime.xds;

import static dev.inmesh.runtime.xds.IstioSecurityTelemetryShapesTest.inbound;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The connection manager's {@code internal_address_config}, as istiod writes it from the mesh networks' {@code fromCidr}
 * ({@code ENABLE_HCM_INTERNAL_NETWORKS}): its ranges are read, {@code unix_sockets} too, one without ranges is
 * Envoy's private ranges, and a range that is no address is refused by its path.
 */
class InternalAddressConfigParsingTest {

    private static HttpConnectionManager hcm(String hcmFields) throws Exception {
        var l = new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound(hcmFields, "", "")),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
        return assertInstanceOf(HttpConnectionManager.class, l.filterChains().get(0).filter());
    }

    @Test
    void theRangesAndUnixSocketsAreRead() throws Exception {
        HttpConnectionManager h = hcm("""
                internal_address_config:
                  unix_sockets: true
                  cidr_ranges:
                  - {address_prefix: 10.0.0.0, prefix_len: 8}
                  - {address_prefix: "fd00::", prefix_len: 8}
                """);
        assertEquals(List.of(new CidrRange("10.0.0.0", 8), new CidrRange("fd00::", 8)), h.internalAddresses());
        assertEquals(List.of(), hcm("").internalAddresses(), "none: no address is internal (Envoy 1.33 and later)");
        assertTrue(h.remoteAddressOptions().unixSocketsInternal());
        assertFalse(hcm("").remoteAddressOptions().unixSocketsInternal());
    }

    @Test
    void aConfigWithoutRangesTakesEnvoysPrivateRanges() throws Exception {
        // Envoy's InternalAddressConfig falls back to Network::Utility::isInternalAddress when it has no cidr_ranges
        assertEquals(List.of(new CidrRange("10.0.0.0", 8), new CidrRange("172.16.0.0", 12),
                new CidrRange("192.168.0.0", 16), new CidrRange("127.0.0.1", 32), new CidrRange("fd00::", 8),
                new CidrRange("::1", 128)),
                hcm("internal_address_config: {unix_sockets: true}\n").internalAddresses());
        assertEquals(List.of(), hcm("").internalAddresses());
    }

    @Test
    void withoutRangesTheIpv6LoopbackAddressIsInternalAsTheIpv4One() throws Exception {
        // Network::Utility::isInternalAddress: RFC 1918, 127.0.0.1, fd00::/8 and in6addr_loopback (::1); no other
        List<CidrRange> ranges = hcm("internal_address_config: {}\n").internalAddresses();
        for (String ip : List.of("::1", "127.0.0.1", "10.1.2.3", "fd12::1")) {
            assertTrue(internal(ranges, ip), ip);
        }
        for (String ip : List.of("::2", "127.0.0.2", "fc00::1", "8.8.8.8")) {
            assertFalse(internal(ranges, ip), ip);
        }
    }

    private static boolean internal(List<CidrRange> ranges, String ip) {
        byte[] a = dev.inmesh.runtime.net.IpLiterals.parse(ip);
        return ranges.stream().anyMatch(r -> dev.inmesh.runtime.listener.Cidrs.contains(r, a));
    }

    @Test
    void aRangeThatIsNoAddressIsRefusedByItsPath() {
        String m = assertThrows(InvalidResourceException.class, () -> hcm("""
                internal_address_config:
                  cidr_ranges: [{address_prefix: ten, prefix_len: 8}]
                """)).getMessage();
        assertTrue(m.contains("internal_address_config.cidr_ranges[0].address_prefix"), m);
    }
}
