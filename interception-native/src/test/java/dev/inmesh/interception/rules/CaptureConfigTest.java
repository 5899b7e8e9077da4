package dev.inmesh.interception.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
    void rejectsAnUnknownInterceptionMode() {
        assertEquals("istio-inbound-interception-mode: tproxy (expected: REDIRECT or TPROXY)",
                rejection(b -> b.interceptionMode("tproxy")));
    }

    @Test
    void rejectsABadCidr() {
        assertTrue(rejection(b -> b.serviceCidr("10.0.0.0/8,10.0.0.300/32"))
                .startsWith("istio-service-cidr: 10.0.0.300/32 (expected:"));
        assertTrue(rejection(b -> b.serviceExcludeCidr("2001:db8::/129"))
                .startsWith("istio-service-exclude-cidr: 2001:db8::/129 (expected:"));
        assertTrue(rejection(b -> b.serviceCidr("example.com/32")).startsWith("istio-service-cidr: example.com/32"));
    }

    @Test
    void rejectsAWildcardExclusionOfEveryDestination() {
        assertTrue(rejection(b -> b.serviceExcludeCidr("*")).startsWith("istio-service-exclude-cidr: *"));
    }

    @Test
    void rejectsNonNumericProxyIds() {
        assertTrue(rejection(b -> b.proxyUid("istio-proxy")).startsWith("proxy-uid: istio-proxy (expected:"));
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
