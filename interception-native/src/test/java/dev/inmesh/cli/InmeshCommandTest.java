package dev.inmesh.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class InmeshCommandTest {

    @Test
    void everyToolPrintsTheVersionOfInmeshAsTheCommandLineDoes() {
        String version = run("--version");
        assertEquals(new InmeshCommand.Version().getVersion()[0] + "\n", version);
        assertTrue(version.startsWith("inmesh "), version);
        for (String tool : new String[] {"route-check", "proxy-config", "proxy-status", "iptables", "proxy"}) {
            assertEquals(version, run(tool, "--version"), tool);
            assertEquals(version, run(tool, "-V"), tool);
        }
    }

    @Test
    void proxyConfigAnswersToIstioctlsShortNamePc() {
        assertEquals(run("proxy-config", "--help"), run("pc", "--help"));
    }

    @Test
    void proxyStatusAnswersToIstioctlsShortNamePs() {
        assertEquals(run("proxy-status", "--help"), run("ps", "--help"));
    }

    @Test
    void theCommandListSaysWhatEachToolDoesInAWholeSentence() {
        // picocli lists each command by the first line of its description
        String help = run("--help");
        String commands = help.substring(help.indexOf("Commands:"));
        for (String entry : commands.split("\n  (?=\\S)")) {
            if (!entry.startsWith("Commands:")) {
                assertTrue(entry.strip().endsWith("."), "the entry ends mid-sentence:\n" + entry);
            }
        }
    }

    @Test
    void aUsageErrorExitsWithTheCodeOfItsTool() {
        CommandLine cl = InmeshCommand.commandLine();
        cl.setErr(new PrintWriter(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
        // as Envoy's router_check_tool, whose command line errors exit 1
        assertEquals(1, cl.execute("route-check", "-c", "routes.yaml", "-t", "tests.yaml", "--no-such-flag"));
        assertEquals(2, cl.execute("proxy-status", "--no-such-flag"));
        assertEquals(2, cl.execute("no-such-tool"));
    }

    private static String run(String... args) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        CommandLine cl = InmeshCommand.commandLine();
        cl.setOut(new PrintWriter(bytes, true, StandardCharsets.UTF_8));
        assertEquals(0, cl.execute(args), String.join(" ", args));
        return bytes.toString(StandardCharsets.UTF_8).replace(System.lineSeparator(), "\n");
    }
}
