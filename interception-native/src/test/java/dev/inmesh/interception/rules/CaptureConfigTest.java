package dev.inmesh.interception.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;

class CaptureConfigTest {

    private static String rejection(UnaryOperator<CaptureConfig.Builder> flags) {
        return assertThrows(IllegalArgumentException.class, () -> flags.apply(CaptureConfig.builder()).build())
                .getMessage();
    }

    @Test
    void startsFromIstioIptablesDefaults() {
        CaptureConfig cfg = CaptureConfig.builder().build();
        assertEquals(15001, cfg.proxyPort());
        assertEquals(15006, cfg.inboundCapturePort());
        assertEquals(15008, cfg.inboundTunnelPort());
        assertEquals(List.of("1337"), cfg.proxyUids());
        assertEquals(List.of("1337"), cfg.proxyGids());
        assertEquals(InterceptionMode.REDIRECT, cfg.interceptionMode());
        assertEquals(1337, cfg.inboundTproxyMark());
        assertEquals(133, cfg.inboundTproxyRouteTable());
        assertEquals("127.0.0.1/32", cfg.hostIpv4LoopbackCidr().toString());
        assertFalse(cfg.enableIpv6());
    }

    @Test
    void usesTheProxyUidsAsGidsWhenNoGidIsGiven() {
        assertEquals(List.of("3", "4"), CaptureConfig.builder().proxyUid("3,4").build().proxyGids());
    }

    @Test
    void rejectsAPortOutOfRangeNamingTheFlag() {
        assertEquals("inbound-capture-port: 70000 (expected: 1..65535)",
                rejection(b -> b.inboundCapturePort("70000")));
        assertEquals("envoy-port: abc (expected: 1..65535)", rejection(b -> b.proxyPort("abc")));
        assertEquals("istio-inbound-ports: 0 (expected: 1..65535)", rejection(b -> b.inboundPorts("80,0")));
    }

    @Test
    void readsEveryModeButTproxyAsRedirectAsIstioIptables() {
        assertEquals(InterceptionMode.REDIRECT, CaptureConfig.builder().interceptionMode("tproxy").build()
                .interceptionMode());
        assertEquals(InterceptionMode.TPROXY, CaptureConfig.builder().interceptionMode("TPROXY").build()
                .interceptionMode());
        assertFalse(InterceptionMode.isKnown("tproxy"));
    }

    @Test
    void skipsAndReportsARangeListEntryThatIsNoRangeAsIstioIptables() {
        List<String> ignored = new ArrayList<>();
        CaptureConfig cfg = CaptureConfig.builder().onIgnored(ignored::add)
                .serviceCidr("10.0.0.0/8,10.0.0.300/32,example.com/32").serviceExcludeCidr("2001:db8::/129,10.1.0.0/16")
                .build();
        assertEquals("[10.0.0.0/8]", cfg.outboundIpRangesInclude().cidrs().toString());
        assertEquals("[10.1.0.0/16]", cfg.outboundIpRangesExclude().toString());
        assertEquals(3, ignored.size(), ignored.toString());
        assertTrue(ignored.get(0).startsWith("ignoring istio-service-cidr: 10.0.0.300/32 (expected:"), ignored.get(0));
        assertTrue(ignored.get(2).startsWith("ignoring istio-service-exclude-cidr: 2001:db8::/129"), ignored.get(2));
    }

    @Test
    void theLoopbackRangeMustBeIpv4LoopbackWithAMaskOf8To32Bits() {
        for (String bad : List.of("10.0.0.1/32", "127.0.0.1/7", "::1/128")) {
            assertTrue(rejection(b -> b.hostIpv4LoopbackCidr(bad))
                    .startsWith("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: "), bad);
        }
        assertEquals("127.0.0.1/8", CaptureConfig.builder().hostIpv4LoopbackCidr("127.0.0.1/8").build()
                .hostIpv4LoopbackCidr().toString());
    }

    @Test
    void readsTheMarkAndTableAsIptablesAndIpDoHexAndOctalToo() {
        CaptureConfig cfg = CaptureConfig.builder().inboundTproxyMark("0x10").inboundTproxyRouteTable("010").build();
        assertEquals(16, cfg.inboundTproxyMark());
        assertEquals(8, cfg.inboundTproxyRouteTable());
        assertEquals(1337, CaptureConfig.builder().inboundTproxyMark(" 1337 ").build().inboundTproxyMark());
        for (String bad : List.of("0x", "0xg", "09", "-1", "+5", "0", "4294967296", "0xFFFFFFFFFF", "mark")) {
            assertTrue(rejection(b -> b.inboundTproxyMark(bad)).startsWith("istio-inbound-tproxy-mark: "), bad);
        }
    }

    @Test
    void rejectsAWildcardExclusionOfEveryDestination() {
        assertTrue(rejection(b -> b.serviceExcludeCidr("*")).startsWith("istio-service-exclude-cidr: *"));
    }

    @Test
    void takesUserAndGroupNamesAsIptablesDoes() {
        CaptureConfig cfg = CaptureConfig.builder().proxyUid("istio-proxy").proxyGid("proxy,1337").build();
        assertEquals(List.of("istio-proxy"), cfg.proxyUids());
        assertEquals(List.of("proxy", "1337"), cfg.proxyGids());
        assertTrue(rejection(b -> b.proxyUid("a b")).startsWith("proxy-uid: a b (expected:"));
        assertTrue(rejection(b -> b.proxyUid("4294967295")).startsWith("proxy-uid: 4294967295 (expected:"));
    }

    @Test
    void rejectsADnsServerOfTheWrongFamily() {
        assertEquals("dns-servers-v4: ::1 (expected: an IPv4 address)",
                rejection(b -> b.dnsServersV4(List.of("::1"))));
    }

    @Test
    void rejectsInterfaceNamesIptablesCannotTake() {
        assertTrue(rejection(b -> b.excludeInterfaces("a-very-long-interface-name"))
                .startsWith("istio-exclude-interfaces: a-very-long-interface-name"));
    }

    @Test
    void ignoresEmptyItemsInLists() {
        assertEquals(List.of(6000, 7000), CaptureConfig.builder().inboundPortsExclude("6000,7000,").build()
                .inboundPortsExclude());
    }
}
