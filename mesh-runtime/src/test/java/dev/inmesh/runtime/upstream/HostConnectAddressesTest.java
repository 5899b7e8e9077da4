package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.core.SocketAddress;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The order a host's addresses are raced in (Envoy's happy eyeballs): its own first, then alternating families. */
class HostConnectAddressesTest {
    private static SocketAddress a(String ip) {
        return new SocketAddress(ip, 9080);
    }

    @Test
    void aHostOfOneAddressHasOnlyThatOne() {
        assertEquals(List.of(a("10.1.0.7")), Host.happyEyeballsOrder(a("10.1.0.7"), List.of()));
    }

    @Test
    void theHostsOwnAddressComesFirstThenTheFamiliesAlternateEachInItsOrder() {
        assertEquals(List.of(a("10.1.0.7"), a("fd00::7"), a("10.1.0.8"), a("fd00::8"), a("fd00::9")),
                Host.happyEyeballsOrder(a("10.1.0.7"),
                        List.of(a("10.1.0.8"), a("fd00::7"), a("fd00::8"), a("fd00::9"))));
        assertEquals(List.of(a("fd00::7"), a("10.1.0.7"), a("fd00::8"), a("10.1.0.8")),
                Host.happyEyeballsOrder(a("fd00::7"), List.of(a("fd00::8"), a("10.1.0.7"), a("10.1.0.8"))));
    }
}
