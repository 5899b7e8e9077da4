package dev.inmesh.samples.bookinfo;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Set;
import org.junit.jupiter.api.Test;

/** The launcher's command line: the combinations its usage gives, and a message saying what is wrong otherwise. */
class LaunchTest {
    private static String refused(String... args) {
        return assertThrows(IllegalArgumentException.class, () -> Bookinfo.Launch.parse(args)).getMessage();
    }

    @Test
    void theUsagesCombinationsAreTaken() {
        assertTrue(Bookinfo.Launch.parse("--scenario-only", "--skip=ratings").scenarioOnly());
        assertEquals(Set.of("ratings", "details"), Bookinfo.Launch.parse("--serve-only", "--skip=ratings,details")
                .skip());
        Bookinfo.Launch shift = Bookinfo.Launch.parse("--control-plane", "--shift", "--xds-port=24250");
        assertTrue(shift.controlPlane() && shift.shift());
        assertEquals(24250, shift.xdsPort());
        assertEquals(Set.of("ratings"), Bookinfo.Launch.parse("--control-plane", "--skip=ratings").skip());
    }

    @Test
    void eachRefusalSaysWhatIsWrong() {
        assertEquals("--scenario-only goes without --control-plane, which runs no scenario but --shift's and serves "
                + "with its console", refused("--control-plane", "--scenario-only"));
        assertEquals("--serve-only goes without --control-plane, which runs no scenario but --shift's and serves "
                + "with its console", refused("--control-plane", "--serve-only"));
        assertEquals("--scenario-only and --serve-only: give one (the scenario alone, or serving alone)",
                refused("--scenario-only", "--serve-only"));
        assertEquals("--shift needs --control-plane", refused("--shift"));
        assertEquals("--xds-port needs --control-plane", refused("--xds-port=24250"));
        assertEquals("--xds-port: x (expected: a port, 0 to 65535)", refused("--control-plane", "--xds-port=x"));
        assertEquals("--skip: no app foo (expected: some of ratings, reviews, details, productpage)",
                refused("--skip=foo"));
        assertEquals("unknown argument: --shfit", refused("--control-plane", "--shfit"));
    }
}
