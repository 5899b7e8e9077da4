package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The JVM options {@code bin/inmesh} starts with: the proxy's sidecar defaults, and the user's
 * {@code INMESH_JAVA_OPTS} after them without a clash. Runs the real script against a {@code java} that prints its
 * arguments.
 */
class LauncherTest {
    private static final Path SCRIPT = Path.of("..", "bin", "inmesh").toAbsolutePath().normalize();
    private static final String TRIM = "-XX:TrimNativeHeapInterval=1000";
    /** The defaults after the heap's: direct memory capped, and an exit when the heap runs out. */
    private static final String LIMITS = "-XX:MaxDirectMemorySize=64m -XX:+ExitOnOutOfMemoryError ";
    /** What bin/java-options prints for every JDK from 17 (JDK 22 and later warn of native access without it). */
    private static final String NATIVE = "--enable-native-access=ALL-UNNAMED ";

    @TempDir
    Path jdk;

    @Test
    void theProxyStartsWithTheSidecarDefaultsAndOtherCommandsWithout() throws Exception {
        assertEquals(NATIVE + "-XX:+UseSerialGC -Xms16m -Xmx256m " + LIMITS + TRIM + " -jar /x.jar proxy -c f",
                launch("", "proxy"));
        assertEquals(NATIVE + "-Dy=1 -jar /x.jar route-check -c f", launch("-Dy=1", "route-check"));
    }

    @Test
    void theUsersOptionsComeAfterTheDefaultsAndItsCollectorReplacesTheirs() throws Exception {
        assertEquals(NATIVE + "-XX:+UseSerialGC -Xms16m -Xmx256m " + LIMITS + TRIM + " -Xmx48m -XX:TieredStopAtLevel=1 -jar"
                + " /x.jar proxy"
                + " -c f", launch("-Xmx48m -XX:TieredStopAtLevel=1", "proxy"));
        assertEquals(NATIVE + "-Xms16m -Xmx256m " + LIMITS + TRIM + " -XX:+UseG1GC -jar /x.jar proxy -c f", launch("-XX:+UseG1GC",
                "proxy"));
    }

    @Test
    void aHeapSizeOfTheUsersThatWouldClashWithTheDefaultsDropsThem() throws Exception {
        // -Xmx8m after -Xms16m, or -Xms512m before -Xmx256m: the JVM would refuse to start
        assertEquals(NATIVE + "-XX:+UseSerialGC -Xmx256m " + LIMITS + TRIM + " -Xmx8m -jar /x.jar proxy -c f",
                launch("-Xmx8m", "proxy"));
        assertEquals(NATIVE + "-XX:+UseSerialGC -Xmx256m " + LIMITS + TRIM + " -Xmx8192k -jar /x.jar proxy -c f",
                launch("-Xmx8192k", "proxy"));
        assertEquals(NATIVE + "-XX:+UseSerialGC " + LIMITS + TRIM + " -Xms512m -jar /x.jar proxy -c f",
                launch("-Xms512m", "proxy"));
        assertEquals(NATIVE + "-XX:+UseSerialGC -Xmx256m " + LIMITS + TRIM + " -Xms32m -jar /x.jar proxy -c f", launch("-Xms32m",
                "proxy"));
        // the last of repeated sizes is the JVM's, and a leading zero is not octal
        assertEquals(NATIVE + "-XX:+UseSerialGC -Xmx256m " + LIMITS + TRIM + " -Xmx512m -Xmx8m -jar /x.jar proxy -c f",
                launch("-Xmx512m -Xmx8m", "proxy"));
        assertEquals(NATIVE + "-XX:+UseSerialGC -Xmx256m " + LIMITS + TRIM + " -Xms08m -jar /x.jar proxy -c f", launch("-Xms08m",
                "proxy"));
        // sizes that fit keep the defaults; a size inside another option is not a heap size
        assertEquals(NATIVE + "-XX:+UseSerialGC -Xms16m -Xmx256m " + LIMITS + TRIM + " -Xmx1g -jar /x.jar proxy -c f",
                launch("-Xmx1g", "proxy"));
        assertEquals(NATIVE + "-XX:+UseSerialGC -Xms16m -Xmx256m " + LIMITS + TRIM + " -Dx=-Xmx1 -jar /x.jar proxy -c f",
                launch("-Dx=-Xmx1", "proxy"));
    }

    @Test
    void onAJdkThatWarnsOfSunMiscUnsafeTheLibrariesUseOfItIsAllowed() throws Exception {
        // JDK 24 and later warn when a library (protobuf, Netty) reads memory through sun.misc.Unsafe; 23 has the
        // option, 17 refuses it
        Files.writeString(jdk.resolve("release"), "IMPLEMENTOR=\"Eclipse Adoptium\"\nJAVA_VERSION=\"25.0.3\"\n");
        assertEquals(NATIVE + "--sun-misc-unsafe-memory-access=allow -jar /x.jar route-check -c f",
                launch("", "route-check"));
        Files.writeString(jdk.resolve("release"), "JAVA_VERSION=\"23\"\n");
        assertEquals(NATIVE + "--sun-misc-unsafe-memory-access=allow -jar /x.jar route-check -c f",
                launch("", "route-check"));
        Files.writeString(jdk.resolve("release"), "JAVA_VERSION=\"17.0.15\"\n");
        assertEquals(NATIVE + "-jar /x.jar route-check -c f", launch("", "route-check"));
        // a JDK too old for the jar is left to say so itself, with no option it would refuse first
        Files.writeString(jdk.resolve("release"), "JAVA_VERSION=\"11.0.2\"\n");
        assertEquals("-jar /x.jar route-check -c f", launch("", "route-check"));
    }

    /** What bin/inmesh passes to java for {@code command -c f} with these INMESH_JAVA_OPTS. */
    private String launch(String javaOpts, String command) throws IOException, InterruptedException {
        Path bin = Files.createDirectories(jdk.resolve("bin"));
        Path java = bin.resolve("java");
        Files.writeString(java, "#!/bin/sh\necho \"$@\"\n");
        Files.setPosixFilePermissions(java, PosixFilePermissions.fromString("rwxr-xr-x"));
        ProcessBuilder pb = new ProcessBuilder("bash", SCRIPT.toString(), command, "-c", "f");
        pb.environment().keySet().removeIf(k -> k.startsWith("INMESH_") || k.equals("MALLOC_ARENA_MAX"));
        pb.environment().put("JAVA_HOME", jdk.toString());
        pb.environment().put("INMESH_NO_BUILD", "1");
        pb.environment().put("INMESH_JAR", "/x.jar");
        pb.environment().put("INMESH_JAVA_OPTS", javaOpts);
        pb.redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException("bin/inmesh did not end");
        }
        assertEquals(0, p.exitValue(), out);
        return out;
    }
}
