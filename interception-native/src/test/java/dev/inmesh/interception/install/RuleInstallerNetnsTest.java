package dev.inmesh.interception.install;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.interception.rules.CaptureConfig;
import dev.inmesh.interception.rules.RuleGenerator;
import dev.inmesh.interception.testing.NetnsSupport;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("netns")
class RuleInstallerNetnsTest {
    private static final CaptureConfig REDIRECT = CaptureConfig.builder().inboundPorts("*").serviceCidr("*").build();
    private static final CaptureConfig TPROXY = CaptureConfig.builder().interceptionMode("TPROXY").inboundPorts("*")
            .serviceCidr("*").build();
    /** Uses every table and both families: TPROXY (mangle), DNS (raw), drop-invalid, IPv6. */
    private static final CaptureConfig EVERYTHING = everything(true);

    private NetnsSupport ns;

    private static CaptureConfig everything(boolean ipv6) {
        return CaptureConfig.builder().interceptionMode("TPROXY").inboundPorts("*").inboundPortsExclude("15020,15021")
                .serviceCidr("*").serviceExcludeCidr("10.9.0.0/16").excludeInterfaces("eth9").redirectDns(true)
                .dnsServersV4(List.of("10.0.0.53")).dnsServersV6(List.of("fd00::53")).dropInvalid(true)
                .enableIpv6(ipv6).build();
    }

    @BeforeEach
    void createNamespace() {
        NetnsSupport.assumeAvailable();
        ns = NetnsSupport.create("inm-inst");
    }

    @AfterEach
    void deleteNamespace() {
        if (ns != null) {
            ns.close();
        }
    }

    private RuleInstaller installer(CaptureConfig cfg) {
        return installer(cfg, ProcessCommandRunner.inNamespace(ns.name()));
    }

    private static RuleInstaller installer(CaptureConfig cfg, CommandRunner runner) {
        return new RuleInstaller(runner, cfg, RuleGenerator.generate(cfg), line -> { });
    }

    @Test
    void installsTheRulesIntoAFreshNamespace() throws Exception {
        assertEquals(RuleInstaller.Outcome.APPLIED, installer(REDIRECT).install(true));

        String save = ns.iptablesSave();
        assertTrue(save.contains(":ISTIO_INBOUND - [0:0]"), save);
        assertTrue(save.contains("-A PREROUTING -p tcp -j ISTIO_INBOUND"), save);
        assertTrue(save.contains("-A OUTPUT -j ISTIO_OUTPUT"), save);
        assertTrue(save.contains("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"), save);
        assertTrue(save.contains("-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"), save);
        assertTrue(installer(REDIRECT).isInstalled());
    }

    @Test
    void aSecondInstallChangesNothing() throws Exception {
        installer(EVERYTHING).install(true);
        String v4 = ns.iptablesSave();
        String v6 = ns.ip6tablesSave();
        String rules = ns.exec("ip", "rule") + ns.exec("ip", "-6", "rule");

        assertEquals(RuleInstaller.Outcome.UNCHANGED, installer(EVERYTHING).install(true));

        assertEquals(v4, ns.iptablesSave());
        assertEquals(v6, ns.ip6tablesSave());
        assertEquals(rules, ns.exec("ip", "rule") + ns.exec("ip", "-6", "rule"));
        assertTrue(rules.contains("fwmark 0x539 lookup 133"), rules);
    }

    @Test
    void cleanupOnlyRemovesEveryIstioChainAndKeepsOtherRules() throws Exception {
        ns.exec("iptables", "-t", "nat", "-A", "OUTPUT", "-d", "10.1.2.3/32", "-p", "tcp", "-j", "RETURN");
        ns.exec("iptables", "-t", "mangle", "-A", "PREROUTING", "-i", "lo", "-j", "ACCEPT");
        ns.exec("ip6tables", "-t", "nat", "-A", "OUTPUT", "-d", "fd00::1/128", "-j", "RETURN");
        String v4Before = ns.iptablesSave();
        installer(EVERYTHING).install(true);
        assertTrue(ns.iptablesSave().contains("ISTIO_"));

        installer(EVERYTHING).cleanup();

        String v4 = ns.iptablesSave();
        String v6 = ns.ip6tablesSave();
        assertFalse(v4.contains("ISTIO_"), v4);
        assertFalse(v6.contains("ISTIO_"), v6);
        assertTrue(v4.contains("-A OUTPUT -d 10.1.2.3/32 -p tcp -j RETURN"), v4);
        assertTrue(v4.contains("-A PREROUTING -i lo -j ACCEPT"), v4);
        assertTrue(v6.contains("-A OUTPUT -d fd00::1/128 -j RETURN"), v6);
        assertFalse(v4.contains("CONNMARK") || v4.contains("eth9"), "our rules in built-in chains are gone: " + v4);
        assertEquals(withoutEmptyTables(v4Before), withoutEmptyTables(v4));
        assertFalse(ns.exec("ip", "rule").contains("lookup 133"));
        assertFalse(ns.exec("ip", "-6", "rule").contains("lookup 133"));
    }

    @Test
    void reconcilingATproxyInstallToRedirectLeavesWhatAFreshRedirectInstallLeaves() throws Exception {
        String fresh = withoutEmptyTables(ns.iptablesSave());
        installer(REDIRECT).install(true);
        String redirectOnly = withoutEmptyTables(ns.iptablesSave());
        installer(REDIRECT).cleanup();
        assertEquals(fresh, withoutEmptyTables(ns.iptablesSave()));
        installer(TPROXY).install(true);
        assertTrue(ns.exec("ip", "rule").contains("lookup 133"), ns.exec("ip", "rule"));

        assertEquals(RuleInstaller.Outcome.RECONCILED, installer(REDIRECT).install(true));

        assertEquals(redirectOnly, withoutEmptyTables(ns.iptablesSave()));
        assertFalse(ns.exec("ip", "rule").contains("lookup 133"), ns.exec("ip", "rule"));
        assertEquals("", ns.exec("ip", "route", "show", "table", "133").strip());
    }

    @Test
    void reconcilingDropsTcpAndUdpUntilTheNewRulesAreInPlaceAsIstioGuardrails() throws Exception {
        installer(TPROXY).install(true);
        CommandRunner real = ProcessCommandRunner.inNamespace(ns.name());
        List<String> filterWhileApplying = new ArrayList<>();
        CommandRunner watching = (command, stdin) -> {
            if (command.get(0).endsWith("-restore")) {
                filterWhileApplying.add(real.run(List.of("iptables-save", "-t", "filter")).stdout());
            }
            return real.run(command, stdin);
        };

        assertEquals(RuleInstaller.Outcome.RECONCILED, installer(REDIRECT, watching).install(true));

        assertEquals(1, filterWhileApplying.size());
        for (String chain : List.of("INPUT", "FORWARD", "OUTPUT")) {
            for (String protocol : List.of("tcp", "udp")) {
                String drop = "-A " + chain + " -p " + protocol + " -m comment --comment inmesh-guardrail -j DROP";
                assertTrue(filterWhileApplying.get(0).contains(drop), filterWhileApplying.get(0));
            }
        }
        assertFalse(ns.iptablesSave().contains("DROP"), ns.iptablesSave());
    }

    @Test
    void theDropsOfAnInstallKilledWhileReconcilingAreRemovedByTheNextOne() throws Exception {
        installer(REDIRECT).install(true);
        ns.exec("iptables", "-t", "filter", "-I", "OUTPUT", "1", "-p", "tcp", "-m", "comment", "--comment",
                "inmesh-guardrail", "-j", "DROP");
        ns.exec("iptables", "-t", "filter", "-A", "INPUT", "-p", "udp", "-j", "DROP"); // the namespace's own

        assertEquals(RuleInstaller.Outcome.UNCHANGED, installer(REDIRECT).install(true));

        String filter = ns.exec("iptables-save", "-t", "filter");
        assertFalse(filter.contains("inmesh-guardrail"), filter);
        assertTrue(filter.contains("-A INPUT -p udp -j DROP"), filter);
    }

    @Test
    void cleanupWithTheInstallsFlagsButTheOtherModeStillRemovesEverything() throws Exception {
        String before = withoutEmptyTables(ns.iptablesSave());
        installer(TPROXY).install(true);

        installer(REDIRECT).cleanup();

        assertEquals(before, withoutEmptyTables(ns.iptablesSave()));
        assertFalse(ns.exec("ip", "rule").contains("lookup 133"), ns.exec("ip", "rule"));
        assertEquals("", ns.exec("ip", "route", "show", "table", "133").strip());
    }

    @Test
    void cleanupWithoutIpv6StillRemovesTheIpv6RulesOfAnEarlierInstall() throws Exception {
        String v6Before = withoutEmptyTables(ns.ip6tablesSave());
        installer(EVERYTHING).install(true);

        installer(everything(false)).cleanup();

        assertEquals(v6Before, withoutEmptyTables(ns.ip6tablesSave()));
        assertFalse(ns.exec("ip", "-6", "rule").contains("lookup 133"), ns.exec("ip", "-6", "rule"));
        assertFalse(ns.exec("ip", "-6", "addr", "show", "dev", "lo").contains("::6/128"));
    }

    @Test
    void reconcilingToIpv4OnlyRemovesTheIpv6RulesOfAnEarlierInstall() throws Exception {
        installer(EVERYTHING).install(true);
        String v4 = withoutEmptyTables(ns.iptablesSave());

        assertEquals(RuleInstaller.Outcome.RECONCILED, installer(everything(false)).install(true));

        assertEquals(v4, withoutEmptyTables(ns.iptablesSave()));
        assertFalse(ns.ip6tablesSave().contains("ISTIO_"), ns.ip6tablesSave());
        assertEquals(RuleInstaller.Outcome.UNCHANGED, installer(everything(false)).install(true));
    }

    @Test
    void aFailedInstallLeavesNoIstioChain() {
        CommandRunner real = ProcessCommandRunner.inNamespace(ns.name());
        CommandRunner failingRouteStep = (command, stdin) -> String.join(" ", command).startsWith("ip -f inet rule add")
                ? CommandRunner.Result.failure(2, "RTNETLINK answers: injected failure")
                : real.run(command, stdin);

        InstallException e = assertThrows(InstallException.class,
                () -> installer(EVERYTHING, failingRouteStep).install(true));

        assertTrue(e.getMessage().contains("injected failure"), e.getMessage());
        assertFalse(ns.iptablesSave().contains("ISTIO_"), ns.iptablesSave());
        assertFalse(ns.ip6tablesSave().contains("ISTIO_"), ns.ip6tablesSave());
    }

    @Test
    void aStepTheKernelRefusesPartWayLeavesNoIstioChain() {
        // With IPv6 off on lo, adding ::6 fails after both iptables-restore steps have succeeded.
        ns.exec("sysctl", "-q", "-w", "net.ipv6.conf.lo.disable_ipv6=1");

        InstallException e = assertThrows(InstallException.class, () -> installer(EVERYTHING).install(true));

        assertTrue(e.getMessage().startsWith("step 3 of 7 failed: add ::6/128 to lo"), e.getMessage());
        assertFalse(ns.iptablesSave().contains("ISTIO_"), ns.iptablesSave());
        assertFalse(ns.ip6tablesSave().contains("ISTIO_"), ns.ip6tablesSave());
    }

    /** iptables-save lists a table once it has been touched; compare the rules, not which empty tables exist. */
    private static String withoutEmptyTables(String save) {
        StringBuilder out = new StringBuilder();
        for (String table : save.split("(?m)^COMMIT\n")) {
            if (table.lines().anyMatch(l -> l.startsWith("-A"))) {
                out.append(table).append("COMMIT\n");
            }
        }
        return out.toString();
    }
}
