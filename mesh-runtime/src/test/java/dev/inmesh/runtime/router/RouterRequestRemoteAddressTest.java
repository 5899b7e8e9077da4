package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.vertx.core.MultiMap;
import org.junit.jupiter.api.Test;

/**
 * The stream's downstream remote address as Envoy's connection manager takes it from {@code x-forwarded-for} with
 * {@code use_remote_address: false}: its {@code getLastAddressFromXFF} parses the last entry with
 * {@code parseInternetAddressNoThrow} ({@code inet_pton}), which takes a bare IP literal only.
 */
class RouterRequestRemoteAddressTest {
    private static final String PEER = "127.0.0.1:40000";

    private static String remote(String xff) {
        return RouterRequest.remoteAddress(MultiMap.caseInsensitiveMultiMap().add("x-forwarded-for", xff), PEER);
    }

    @Test
    void aBareIpv6LastEntryIsTheRemoteAddressWithPort0() {
        assertEquals("[2001:db8::7]:0", remote("10.1.2.3, 2001:db8::7"));
        assertEquals("192.0.2.7:0", remote(" 192.0.2.7 "));
    }

    @Test
    void aBracketedIpv6LastEntryIsNoAddressSoTheConnectionsPeerStays() {
        assertEquals(PEER, remote("[2001:db8::7]"));
        assertEquals(PEER, remote("10.1.2.3, [2001:db8::7]"));
        assertNull(RouterRequest.lastForwardedIp("10.1.2.3, [2001:db8::7]"));
    }

    @Test
    void anEntryWithAPortIsNoAddressSoTheConnectionsPeerStays() {
        assertEquals(PEER, remote("192.0.2.7:8080"));
    }
}
