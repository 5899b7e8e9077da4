package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.inmesh.interception.install.ProcessCommandRunner;
import dev.inmesh.interception.testing.NetnsSupport;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code inmesh iptables} end to end, in a namespace of its own: apply, validate, clean up. */
@Tag("netns")
class IptablesCommandNetnsTest {
    private static final String[] CAPTURE_ALL = {"-p", "15001", "-z", "15006", "-u", "1337", "-g", "1337",
        "-b", "*", "-i", "*", "--enable-ipv6=false"};

    private NetnsSupport ns;
    private final StringWriter err = new StringWriter();

    @BeforeEach
    void createNamespace() {
        NetnsSupport.assumeAvailable();
        ns = NetnsSupport.create("inm-cmd");
    }

    @AfterEach
    void deleteNamespace() {
        if (ns != null) {
            ns.close();
        }
    }

    private int iptables(String... args) {
        List<String> argv = new ArrayList<>(List.of("--network-namespace", ns.name()));
        argv.addAll(List.of(args));
        CommandLine cl = IptablesCommand.configure(new CommandLine(new IptablesCommand(Map.<String, String>of()::get,
                ProcessCommandRunner::inNamespace)));
        cl.setOut(new PrintWriter(new StringWriter(), true));
        cl.setErr(new PrintWriter(err, true));
        return cl.execute(argv.toArray(String[]::new));
    }

    private static String[] with(String[] base, String... more) {
        List<String> all = new ArrayList<>(List.of(base));
        all.addAll(List.of(more));
        return all.toArray(String[]::new);
    }

    @Test
    void validationExits126WhenNothingCaptures() {
        assertEquals(126, iptables(with(CAPTURE_ALL, "--skip-rule-apply", "--run-validation",
                "--probe-timeout", "1s")));
        assertTrue(err.toString().contains("no connection to 127.0.0.6:15002 reached the capture ports"),
                err.toString());
    }

    @Test
    void validationPassesWhenTheRulesAreInPlace() {
        assertEquals(0, iptables(with(CAPTURE_ALL, "--run-validation", "--probe-timeout", "5s")), err.toString());
        assertTrue(err.toString().contains("was captured on port 15006"), err.toString());
    }

    @Test
    void validationUsesTheConfiguredProbePort() {
        assertEquals(0, iptables(with(CAPTURE_ALL, "--run-validation", "--iptables-probe-port", "15999")),
                err.toString());
        assertTrue(err.toString().contains("127.0.0.6:15999 was captured"), err.toString());
    }

    @Test
    void cleanupOnlyUndoesTheInstallSoValidationFailsAgain() {
        assertEquals(0, iptables(CAPTURE_ALL));
        assertTrue(ns.iptablesSave().contains("ISTIO_OUTPUT"));

        assertEquals(0, iptables(with(CAPTURE_ALL, "--cleanup-only")));

        assertFalse(ns.iptablesSave().contains("ISTIO_"), ns.iptablesSave());
        assertEquals(126, iptables(with(CAPTURE_ALL, "--skip-rule-apply", "--run-validation",
                "--probe-timeout", "500ms")));
    }

    @Test
    void theRulesGoWhereTheNamespacesOtherRulesAreLegacyIptablesIncluded() {
        NetnsSupport.assumeCommands("iptables-legacy", "iptables-nft");
        NetnsSupport.Output legacyRule = ns.run("iptables-legacy", "-t", "nat", "-A", "OUTPUT", "-d", "10.1.2.3/32",
                "-j", "RETURN");
        assumeTrue(legacyRule.ok(), () -> "needs the kernel's legacy iptables: skipped (" + legacyRule.stderr() + ")");

        assertEquals(0, iptables(CAPTURE_ALL), err.toString());

        String legacy = ns.exec("iptables-legacy-save");
        assertTrue(legacy.contains("-A OUTPUT -j ISTIO_OUTPUT"), legacy);
        assertTrue(legacy.contains("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"), legacy);
        assertFalse(ns.exec("iptables-nft-save").contains("ISTIO_"), ns.exec("iptables-nft-save"));
        assertEquals(0, iptables(CAPTURE_ALL), err.toString());
        assertTrue(err.toString().contains("iptables: unchanged"), err.toString());

        assertEquals(0, iptables(with(CAPTURE_ALL, "--cleanup-only")), err.toString());
        legacy = ns.exec("iptables-legacy-save");
        assertFalse(legacy.contains("ISTIO_"), legacy);
        assertTrue(legacy.contains("-A OUTPUT -d 10.1.2.3/32 -j RETURN"), legacy);
    }

    @Test
    void aBadFlagValueAppliesNothingAndABadRangeInAListIsSkipped() {
        // exit 1, as istio-iptables' validation
        assertEquals(1, iptables(with(CAPTURE_ALL, "-b", "70000")));
        assertFalse(ns.iptablesSave().contains("ISTIO_"));
        // an entry of -x that is not a range is left out with a warning, as istio-iptables does, the rest applied
        assertEquals(0, iptables(with(CAPTURE_ALL, "-x", "10.0.0.0/8,nonsense")), err.toString());
        String rules = ns.iptablesSave();
        assertTrue(rules.contains("-A ISTIO_OUTPUT -d 10.0.0.0/8 -j RETURN"), rules);
        assertTrue(err.toString().contains("nonsense"), err.toString());
    }
}
