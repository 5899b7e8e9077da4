package dev.inmesh.interception.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class RuleGeneratorTest {

    private static CaptureConfig.Builder istioDefaults() {
        return CaptureConfig.builder().proxyPort("15001").inboundCapturePort("15006").inboundTunnelPort("15008")
                .proxyUid("1337").proxyGid("1337");
    }

    private static List<String> lines(CaptureConfig cfg, IpFamily family) {
        return RuleGenerator.generate(cfg).restoreInput(family).lines().toList();
    }

    @Test
    void producesTheRestoreInputOfIstiosDefaultFlagSet() {
        String expected = """
                * nat
                -N ISTIO_INBOUND
                -N ISTIO_REDIRECT
                -N ISTIO_IN_REDIRECT
                -N ISTIO_OUTPUT
                -A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
                -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
                -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
                -A OUTPUT -j ISTIO_OUTPUT
                -A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
                -A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
                -A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
                -A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
                -A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
                -A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
                -A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
                -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
                COMMIT
                """;
        RuleSet rules = RuleGenerator.generate(istioDefaults().build());
        assertEquals(expected, rules.restoreInput(IpFamily.V4));
        assertEquals("", rules.restoreInput(IpFamily.V6), "IPv6 is off unless enabled");
    }

    @Test
    void excludesTheProxyUidFromOutboundCapture() {
        List<String> v4 = lines(istioDefaults().proxyUid("3,4").proxyGid("1").serviceCidr("*").build(), IpFamily.V4);
        int uid3 = v4.indexOf("-A ISTIO_OUTPUT -m owner --uid-owner 3 -j RETURN");
        int uid4 = v4.indexOf("-A ISTIO_OUTPUT -m owner --uid-owner 4 -j RETURN");
        int capture = v4.indexOf("-A ISTIO_OUTPUT -j ISTIO_REDIRECT");
        assertTrue(uid3 > 0 && uid4 > uid3 && capture > uid4, "the proxy's RETURNs come before the capture: " + v4);
        assertTrue(v4.contains("-A ISTIO_OUTPUT -m owner --gid-owner 1 -j RETURN"));
    }

    @Test
    void sendsTheProxysCallsToItselfThroughAServiceAddressToTheInboundSide() {
        List<String> v4 = lines(istioDefaults().build(), IpFamily.V4);
        assertTrue(v4.contains("-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008"
                + " -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT"));
    }

    @Test
    void letsThePassthroughSourceAddressThroughUncaptured() {
        CaptureConfig cfg = istioDefaults().enableIpv6(true).build();
        assertTrue(lines(cfg, IpFamily.V4).contains("-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN"));
        assertTrue(lines(cfg, IpFamily.V6).contains("-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN"));
    }

    @Test
    void redirectsEveryInboundPortExceptTheExcludedOnesWithAWildcard() {
        List<String> v4 = lines(istioDefaults().inboundPorts("*").inboundPortsExclude("15020,15021").build(),
                IpFamily.V4);
        assertEquals(List.of(
                "-A PREROUTING -p tcp -j ISTIO_INBOUND",
                "-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN",
                "-A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN",
                "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT"),
                v4.subList(v4.indexOf("-A PREROUTING -p tcp -j ISTIO_INBOUND"),
                        v4.indexOf("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT") + 1));
    }

    @Test
    void redirectsOnlyTheListedInboundPorts() {
        List<String> v4 = lines(istioDefaults().inboundPorts("9080,9443").inboundPortsExclude("15020").build(),
                IpFamily.V4);
        assertTrue(v4.contains("-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT"));
        assertTrue(v4.contains("-A ISTIO_INBOUND -p tcp --dport 9443 -j ISTIO_IN_REDIRECT"));
        assertFalse(v4.contains("-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN"),
                "excluded ports only matter with the wildcard");
    }

    @Test
    void capturesNoInboundTrafficWhenNoPortIsListed() {
        List<String> v4 = lines(istioDefaults().build(), IpFamily.V4);
        assertFalse(v4.stream().anyMatch(l -> l.startsWith("-A PREROUTING")), v4.toString());
    }

    @Test
    void tproxyModeMarksInboundPacketsInTheMangleTableInsteadOfRewritingThem() {
        RuleSet rules = RuleGenerator.generate(istioDefaults().interceptionMode("TPROXY").inboundPorts("*").build());
        String v4 = rules.restoreInput(IpFamily.V4);
        assertTrue(v4.startsWith("* mangle\n-N ISTIO_DIVERT\n-N ISTIO_TPROXY\n-N ISTIO_INBOUND\n"), v4);
        assertTrue(v4.contains("-A ISTIO_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --tproxy-mark 1337/0xffffffff"
                + " --on-port 15006\n"));
        assertTrue(v4.contains("-A ISTIO_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT\n"
                + "-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY\n"));
        assertTrue(v4.contains("-I ISTIO_INBOUND 1 -p tcp -m mark --mark 1337 -j RETURN\n"
                + "-I ISTIO_INBOUND 2 -p tcp -s 127.0.0.6/32 -i lo -j RETURN\n"
                + "-I ISTIO_INBOUND 3 -p tcp -i lo -m mark ! --mark 1338 -j RETURN\n"));
        assertFalse(v4.contains("-A PREROUTING -p tcp -j ISTIO_INBOUND\n-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT"),
                "no nat redirect for inbound in TPROXY mode");
    }

    @Test
    void usesTheConfiguredTproxyMark() {
        String v4 = RuleGenerator.generate(istioDefaults().interceptionMode("TPROXY").inboundPorts("80")
                .inboundTproxyMark("77").build()).restoreInput(IpFamily.V4);
        assertTrue(v4.contains("-A ISTIO_DIVERT -j MARK --set-mark 77\n"));
        assertTrue(v4.contains("--tproxy-mark 77/0xffffffff"));
        assertTrue(v4.contains("-A ISTIO_INBOUND -p tcp --dport 80 -m conntrack --ctstate RELATED,ESTABLISHED"
                + " -j ISTIO_DIVERT\n"));
    }

    @Test
    void redirectsDnsToTheListedServersOnlyAndSplitsConntrackZones() {
        CaptureConfig cfg = istioDefaults().redirectDns(true).dnsServersV4(List.of("10.0.0.53")).build();
        List<String> v4 = lines(cfg, IpFamily.V4);
        assertTrue(v4.contains("-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS"));
        assertTrue(v4.contains("-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 10.0.0.53/32 -j REDIRECT --to-port 15053"));
        assertTrue(v4.contains("-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d 10.0.0.53/32 -j REDIRECT --to-ports 15053"));
        assertTrue(v4.contains("-A ISTIO_OUTPUT_DNS -p udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1"));
        assertTrue(v4.contains("-A ISTIO_INBOUND -p udp --sport 53 -s 10.0.0.53/32 -j CT --zone 1"));
        assertTrue(v4.contains("-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008"
                + " -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT"), "DNS to a local resolver is not looped back");
    }

    @Test
    void captureAllDnsRedirectsEveryPort53Packet() {
        List<String> v4 = lines(istioDefaults().redirectDns(true).captureAllDns(true).build(), IpFamily.V4);
        assertTrue(v4.contains("-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j REDIRECT --to-port 15053"));
        assertTrue(v4.contains("-A ISTIO_OUTPUT_DNS -p udp --dport 53 -j CT --zone 2"));
    }

    @Test
    void dnsRedirectionWithoutServersOrCaptureAllInstallsNothingForDns() {
        List<String> v4 = lines(istioDefaults().redirectDns(true).build(), IpFamily.V4);
        assertFalse(v4.stream().anyMatch(l -> l.contains("DNS") || l.contains(" 53")), v4.toString());
    }

    @Test
    void keepsIpv4RangesOutOfTheIpv6RulesAndViceVersa() {
        CaptureConfig cfg = istioDefaults().serviceCidr("10.0.0.0/8,2001:db8::/32")
                .serviceExcludeCidr("10.1.0.0/16").enableIpv6(true).build();
        List<String> v4 = lines(cfg, IpFamily.V4);
        List<String> v6 = lines(cfg, IpFamily.V6);
        assertTrue(v4.contains("-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT"));
        assertTrue(v4.contains("-A ISTIO_OUTPUT -d 10.1.0.0/16 -j RETURN"));
        assertTrue(v6.contains("-A ISTIO_OUTPUT -d 2001:db8::/32 -j ISTIO_REDIRECT"));
        assertTrue(v6.contains("-A ISTIO_OUTPUT -d ::1/128 -j RETURN"));
        assertFalse(v6.stream().anyMatch(l -> l.contains("10.")), v6.toString());
        assertFalse(v4.stream().anyMatch(l -> l.contains("2001:")), v4.toString());
    }

    @Test
    void appliesOutboundExclusionsBeforeInclusions() {
        List<String> v4 = lines(istioDefaults().serviceCidr("*").serviceExcludeCidr("10.0.0.0/8")
                .outboundPortsExclude("5555").build(), IpFamily.V4);
        assertTrue(v4.indexOf("-A ISTIO_OUTPUT -d 10.0.0.0/8 -j RETURN") < v4.indexOf("-A ISTIO_OUTPUT -j ISTIO_REDIRECT"));
        assertEquals(v4.indexOf("-A OUTPUT -j ISTIO_OUTPUT") + 1, v4.indexOf("-A ISTIO_OUTPUT -p tcp --dport 5555 -j RETURN"),
                "port exclusions come first in ISTIO_OUTPUT");
        assertTrue(v4.contains("-A ISTIO_OUTPUT -p udp --dport 5555 -j RETURN"));
    }

    @Test
    void aLoopbackRangeInTheIncludeListKeepsAppToAppLoopbackTrafficCapturable() {
        List<String> v4 = lines(istioDefaults().serviceCidr("127.1.2.3/32").build(), IpFamily.V4);
        assertFalse(v4.contains("-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN"));
        assertTrue(v4.contains("-A ISTIO_OUTPUT -d 127.1.2.3/32 -j ISTIO_REDIRECT"));
    }

    @Test
    void shortCircuitsExcludedInterfacesInNatAndInMangleForTproxy() {
        List<String> v4 = lines(istioDefaults().excludeInterfaces("eth9").interceptionMode("TPROXY").build(),
                IpFamily.V4);
        assertEquals(2, v4.stream().filter(l -> l.equals("-A PREROUTING -i eth9 -j RETURN")).count(),
                "once in mangle, once in nat");
        assertEquals(2, v4.stream().filter(l -> l.equals("-A OUTPUT -o eth9 -j RETURN")).count());
    }

    @Test
    void treatsKubeVirtInterfaceTrafficAsOutbound() {
        List<String> v4 = lines(istioDefaults().kubeVirtInterfaces("eth1").serviceCidr("10.0.0.0/8").build(),
                IpFamily.V4);
        assertTrue(v4.contains("-I PREROUTING 1 -i eth1 -j RETURN"));
        assertTrue(v4.contains("-I PREROUTING 1 -i eth1 -d 10.0.0.0/8 -j ISTIO_REDIRECT"));
    }

    @Test
    void capturesOnlyTheIncludedOwnerGroupsInOneRule() {
        List<String> v4 = lines(istioDefaults().ownerGroupsInclude("java,202").build(), IpFamily.V4);
        assertTrue(v4.contains("-A ISTIO_OUTPUT -m owner ! --gid-owner java -m owner ! --gid-owner 202 -j RETURN"));
    }

    @Test
    void returnsTheExcludedOwnerGroupsEachInTheirOwnRule() {
        List<String> v4 = lines(istioDefaults().ownerGroupsExclude("888,ftp").build(), IpFamily.V4);
        assertTrue(v4.contains("-A ISTIO_OUTPUT -m owner --gid-owner 888 -j RETURN"));
        assertTrue(v4.contains("-A ISTIO_OUTPUT -m owner --gid-owner ftp -j RETURN"));
    }

    @Test
    void dropsInvalidPacketsThroughItsOwnChain() {
        String v4 = RuleGenerator.generate(istioDefaults().dropInvalid(true).build()).restoreInput(IpFamily.V4);
        assertTrue(v4.startsWith("* mangle\n-N ISTIO_DROP\n-A PREROUTING -m conntrack --ctstate INVALID -j ISTIO_DROP\n"
                + "-A ISTIO_DROP -j DROP\nCOMMIT\n* nat\n"), v4);
    }

    @Test
    void usesTheConfiguredLoopbackRangeForLocalhost() {
        List<String> v4 = lines(istioDefaults().hostIpv4LoopbackCidr("127.0.0.1/8").build(), IpFamily.V4);
        assertTrue(v4.contains("-A ISTIO_OUTPUT -d 127.0.0.1/8 -j RETURN"));
    }

    @Test
    void listsTablesByNameAndDeclaresChainsBeforeRules() {
        RuleSet rules = RuleGenerator.generate(istioDefaults().interceptionMode("TPROXY").inboundPorts("*")
                .redirectDns(true).captureAllDns(true).build());
        List<String> tables = rules.restoreInput(IpFamily.V4).lines().filter(l -> l.startsWith("* ")).toList();
        assertEquals(List.of("* mangle", "* nat", "* raw"), tables);
        assertEquals(List.of("ISTIO_OUTPUT_DNS", "ISTIO_INBOUND"), rules.createdChains(IpFamily.V4).get(Table.RAW));
    }
}
