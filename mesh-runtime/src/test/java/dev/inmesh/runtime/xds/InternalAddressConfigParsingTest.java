package dev.inmesh.runtime.xds;

import static dev.inmesh.runtime.xds.IstioSecurityTelemetryShapesTest.inbound;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The connection manager's {@code internal_address_config}, as istiod writes it from the mesh networks' {@code fromCidr}
 * ({@code ENABLE_HCM_INTERNAL_NETWORKS}): its ranges are read, {@code unix_sockets} changes nothing with
 * {@code use_remote_address: false}, and a range that is no address is refused by its path.
 */
class InternalAddressConfigParsingTest {

    private static HttpConnectionManager hcm(String hcmFields) throws Exception {
        var l = new ListenerParser().parse(EnvoyJson.toMessage(EnvoyJson.tree(inbound(hcmFields, "", "")),
                io.envoyproxy.envoy.config.listener.v3.Listener.class));
        return assertInstanceOf(HttpConnectionManager.class, l.filterChains().get(0).filter());
    }

    @Test
    void theRangesAreReadAndUnixSocketsLoads() throws Exception {
        HttpConnectionManager h = hcm("""
                internal_address_config:
                  unix_sockets: true
                  cidr_ranges:
                  - {address_prefix: 10.0.0.0, prefix_len: 8}
                  - {address_prefix: "fd00::", prefix_len: 8}
                """);
        assertEquals(List.of(new CidrRange("10.0.0.0", 8), new CidrRange("fd00::", 8)), h.internalAddresses());
        assertEquals(List.of(), hcm("").internalAddresses(), "none: no address is internal (Envoy 1.33 and later)");
        assertEquals(List.of(), hcm("internal_address_config: {}\n").internalAddresses());
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
