package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.interception.install.CommandRunner;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
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
        CommandLine cl = IptablesCommand.configure(new CommandLine(new IptablesCommand(env::get, ns -> recording)));
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        return cl.execute(args);
    }

    @Test
    void aBadPortExitsOneWithAClearMessageAndAppliesNothing() {
        assertEquals(1, run(Map.of(), "-z", "70000"));
        assertEquals("inmesh iptables: inbound-capture-port: 70000 (expected: 1..65535)\n", err.toString());
        assertTrue(ran.isEmpty());
    }

    @Test
    void aModeOtherThanTproxyIsRedirectAsInIstioIptablesWithAWarning() {
        assertEquals(0, run(Map.of(), "-n", "-m", "TPROXYY", "-b", "9080", "--enable-ipv6=false"));
        assertTrue(err.toString().contains("istio-inbound-interception-mode: TPROXYY is neither REDIRECT nor TPROXY;"
                + " using REDIRECT"), err.toString());
        assertTrue(out.toString().contains("-A ISTIO_INBOUND -p tcp --dport 9080 -j ISTIO_IN_REDIRECT\n"));
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
    void aBadEnvironmentBooleanIsIgnoredWithAWarningAsIstioIptablesIgnoresIt() {
        assertEquals(0, run(Map.of("DROP_INVALID", "maybe"), "-n", "--enable-ipv6=false"));
        assertTrue(err.toString().contains("DROP_INVALID=maybe is not a boolean"), err.toString());
        assertFalse(out.toString().contains("INVALID"), "the default, off");
    }

    @Test
    void istiosExtraVariablesWinOverTheFlagsOwnAsInIstioIptables() {
        assertEquals(0, run(Map.of("DROP_INVALID", "false", "INVALID_DROP", "true"), "-n", "--enable-ipv6=false"));
        assertTrue(out.toString().contains("--ctstate INVALID"), out.toString());
        out.getBuffer().setLength(0);
        assertEquals(0, run(Map.of("REDIRECT_DNS", "true", "ISTIO_META_DNS_CAPTURE", "false"), "-n",
                "--capture-all-dns", "--enable-ipv6=false"));
        assertFalse(out.toString().contains("ISTIO_OUTPUT_DNS"), out.toString());
        out.getBuffer().setLength(0);
        assertEquals(0, run(Map.of("INVALID_DROP", "true"), "-n", "--drop-invalid=false", "--enable-ipv6=false"));
        assertFalse(out.toString().contains("--ctstate INVALID"), "the command line wins over both");
    }

    @Test
    void booleanFlagsTakeGosSpellings() {
        assertEquals(0, run(Map.of(), "-n", "--drop-invalid=1", "--enable-ipv6=F"));
        assertTrue(out.toString().contains("--ctstate INVALID"), out.toString());
        assertFalse(out.toString().contains("::6/128"), out.toString());
        assertEquals(2, run(Map.of(), "-n", "--drop-invalid=yes", "--enable-ipv6=false"));
    }

    @Test
    void aRepeatedFlagKeepsItsLastValueAsIstioIptables() {
        assertEquals(0, run(Map.of(), "-n", "-p", "16001", "-p", "17001", "--enable-ipv6=false"));
        assertTrue(out.toString().contains("--to-ports 17001\n"), out.toString());
        CommandLine inmesh = dev.inmesh.cli.InmeshCommand.commandLine();
        inmesh.setOut(new PrintWriter(out, true));
        out.getBuffer().setLength(0);
        assertEquals(0, inmesh.execute("iptables", "-n", "-p", "16001", "-p", "18001", "--enable-ipv6=false"));
        assertTrue(out.toString().contains("--to-ports 18001\n"), out.toString());
    }

    @Test
    void aServiceRangeEntryThatIsNoRangeIsSkippedWithAWarningAsIstioIptables() {
        assertEquals(0, run(Map.of(), "-n", "-i", "10.0.0.0/8,10.0.0.1", "-x", "bad", "--enable-ipv6=false"));
        assertTrue(out.toString().contains("-A ISTIO_OUTPUT -d 10.0.0.0/8 -j ISTIO_REDIRECT\n"), out.toString());
        assertTrue(err.toString().contains("ignoring istio-service-cidr: 10.0.0.1 (expected:"), err.toString());
        assertTrue(err.toString().contains("ignoring istio-service-exclude-cidr: bad (expected:"), err.toString());
    }

    @Test
    void aLoopbackRangeThatIsNotLoopbackExitsOne() {
        assertEquals(1, run(Map.of("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR", "10.0.0.1/32"), "-n", "--enable-ipv6=false"));
        assertTrue(err.toString().contains("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: 10.0.0.1/32 (expected: an IPv4"
                + " loopback range"), err.toString());
        assertEquals("", out.toString());
    }

    @Test
    void passesUserNamesAndReadsHexMarks() {
        assertEquals(0, run(Map.of(), "-n", "-u", "istio-proxy", "-m", "TPROXY", "-t", "0x10", "-b", "*",
                "--enable-ipv6=false"));
        assertTrue(out.toString().contains("-m owner --uid-owner istio-proxy"), out.toString());
        assertTrue(out.toString().contains("--tproxy-mark 16/0xffffffff"), out.toString());
    }

    @Test
    void dryRunAlsoWritesToDryRunFilePath(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("dry-run.txt");
        assertEquals(0, run(Map.of("DRY_RUN_FILE_PATH", file.toString()), "-n", "-b", "9080",
                "--enable-ipv6=false"));
        assertEquals(out.toString(), Files.readString(file));
        assertTrue(ran.isEmpty());
    }

    @Test
    void refusesNativeNftablesRatherThanWritingIptablesRules() {
        assertEquals(1, run(Map.of(), "-n", "--native-nftables", "--enable-ipv6=false"));
        assertTrue(err.toString().contains("native-nftables: native nftables rules are not supported"),
                err.toString());
        assertEquals("", out.toString());
        assertEquals(1, run(Map.of("NATIVE_NFTABLES", "true"), "-n", "--enable-ipv6=false"));
    }

    @Test
    void forcesTheIptablesVariantAndAcceptsCniMode() {
        assertEquals(1, run(Map.of(), "-b", "*", "--enable-ipv6=false", "--force-iptables-binary", "nft",
                "--cni-mode"));
        assertTrue(err.toString().contains("no usable iptables-nft (--force-iptables-binary=nft)"), err.toString());
        assertEquals(List.of("iptables-nft-save"), ran, "no other variant is tried");
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
        assertEquals(1, run(Map.of(), "-n", "--probe-timeout", "soon", "--enable-ipv6=false"));
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
