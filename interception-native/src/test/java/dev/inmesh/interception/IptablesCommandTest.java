package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.interception.install.CommandRunner;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class IptablesCommandTest {
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();
    private final List<String> ran = new ArrayList<>();

    private int run(Map<String, String> env, String... args) {
        CommandRunner recording = (command, stdin) -> {
            ran.add(String.join(" ", command));
            return CommandRunner.Result.failure(1, "no commands in this test");
        };
        CommandLine cl = new CommandLine(new IptablesCommand(env::get, ns -> recording));
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        return cl.execute(args);
    }

    @Test
    void aBadPortExitsTwoWithAClearMessageAndAppliesNothing() {
        assertEquals(2, run(Map.of(), "-z", "70000"));
        assertEquals("inmesh iptables: inbound-capture-port: 70000 (expected: 1..65535)\n", err.toString());
        assertTrue(ran.isEmpty());
    }

    @Test
    void aBadModeExitsTwo() {
        assertEquals(2, run(Map.of(), "-m", "TPROXYY", "--enable-ipv6=false"));
        assertTrue(err.toString().contains("istio-inbound-interception-mode: TPROXYY (expected: REDIRECT or TPROXY)"));
        assertTrue(ran.isEmpty());
    }

    @Test
    void anUnknownFlagIsAUsageErrorWithExitTwo() {
        assertEquals(2, run(Map.of(), "--no-such-flag"));
        assertTrue(ran.isEmpty());
    }

    @Test
    void dryRunPrintsTheRestoreInputWithoutRunningAnything() {
        assertEquals(0, run(Map.of(), "--dry-run", "-p", "15001", "-z", "15006", "-u", "1337", "-g", "1337",
                "-b", "9080", "--enable-ipv6"));
        String text = out.toString();
        assertTrue(text.startsWith("* nat\n-N ISTIO_INBOUND\n"), text);
        assertTrue(text.contains("-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT\n"));
        int v6 = text.indexOf("-A ISTIO_OUTPUT -o lo -s ::6/128 -j RETURN");
        assertTrue(v6 > text.indexOf("-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN"), "IPv4 first, then IPv6");
        assertTrue(ran.isEmpty(), ran.toString());
    }

    @Test
    void readsFlagsFromIstiosEnvironmentVariables() {
        assertEquals(0, run(Map.of("ISTIO_SERVICE_CIDR", "10.0.0.0/8", "ISTIO_INBOUND_PORTS", "*",
                "ISTIO_LOCAL_EXCLUDE_PORTS", "15020", "PROXY_UID", "7", "DRY_RUN", "true"), "--enable-ipv6=false"));
        String text = out.toString();
        assertTrue(text.contains("-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT\n"), text);
        assertTrue(text.contains("-A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN\n"), text);
        assertTrue(text.contains("-A ISTIO_OUTPUT -m owner --uid-owner 7 -j RETURN\n"), text);
    }

    @Test
    void aFlagWinsOverItsEnvironmentVariable() {
        assertEquals(0, run(Map.of("ENVOY_PORT", "16001"), "-n", "-p", "17001", "--enable-ipv6=false"));
        assertTrue(out.toString().contains("--to-ports 17001\n"));
    }

    @Test
    void readsTheOwnerGroupsAndLoopbackRangeOnlyFromTheEnvironment() {
        assertEquals(0, run(Map.of("ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE", "888",
                "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR", "127.0.0.1/8"), "-n", "--enable-ipv6=false"));
        assertTrue(out.toString().contains("-A ISTIO_OUTPUT -m owner --gid-owner 888 -j RETURN\n"));
        assertTrue(out.toString().contains("-A ISTIO_OUTPUT -d 127.0.0.1/8 -j RETURN\n"));
    }

    @Test
    void givingEnableIpv6ReadsNoNameServersFromTheHost() {
        assertEquals(0, run(Map.of(), "-n", "--redirect-dns", "--enable-ipv6"));
        assertFalse(out.toString().contains("ISTIO_OUTPUT_DNS"), "no servers given and none read: " + out);
    }

    @Test
    void aBadEnvironmentBooleanExitsTwo() {
        assertEquals(2, run(Map.of("REDIRECT_DNS", "maybe"), "-n", "--enable-ipv6=false"));
        assertTrue(err.toString().contains("REDIRECT_DNS: maybe (expected: true or false)"));
    }

    @Test
    void parsesGoDurations() {
        assertEquals(Duration.ofSeconds(5), IptablesCommand.parseDuration("f", "5s"));
        assertEquals(Duration.ofMillis(1500), IptablesCommand.parseDuration("f", "1500ms"));
        assertEquals(Duration.ofSeconds(90), IptablesCommand.parseDuration("f", "1m30s"));
        assertEquals(Duration.ZERO, IptablesCommand.parseDuration("f", "0"));
        assertEquals(Duration.ZERO, IptablesCommand.parseDuration("f", "0s"));
        assertEquals(Duration.ZERO, IptablesCommand.parseDuration("f", "-3s"));
        assertEquals(Duration.ofMillis(500), IptablesCommand.parseDuration("f", ".5s"));
        assertEquals(Duration.ofMillis(1500), IptablesCommand.parseDuration("f", "1.s.5s"));
        assertEquals(Duration.ofMillis(1500), IptablesCommand.parseDuration("f", "+1.5s"));
        assertEquals(Duration.ofNanos(100_250), IptablesCommand.parseDuration("f", "100us250ns"));
        assertEquals(Duration.ofNanos(3_000), IptablesCommand.parseDuration("f", "3\u00b5s"));
        assertEquals(Duration.ofMinutes(90), IptablesCommand.parseDuration("f", "1.5h"));
        for (String bad : List.of("5", "1m30", "s", "", "1..5s", "1d")) {
            assertThrows(IllegalArgumentException.class, () -> IptablesCommand.parseDuration("f", bad), bad);
        }
        assertEquals(2, run(Map.of(), "-n", "--probe-timeout", "soon", "--enable-ipv6=false"));
    }

    @Test
    void aNetworkNamespaceThatCannotBeEnteredIsNamedWithExitOne() {
        assertEquals(1, run(Map.of(), "-b", "*", "--enable-ipv6=false", "--network-namespace", "nowhere"));
        assertEquals("inmesh iptables: cannot enter the network namespace nowhere: no commands in this test\n",
                err.toString());
        assertEquals(List.of("true"), ran);
    }

    @Test
    void reportsAFailedApplyWithExitOne() {
        assertEquals(1, run(Map.of(), "-b", "*", "--enable-ipv6=false"));
        assertTrue(err.toString().contains("inmesh iptables: no usable iptables: iptables-legacy-save: no commands in"
                + " this test; iptables-nft-save: no commands in this test; iptables-save: no commands in this test"),
                err.toString());
    }
}
