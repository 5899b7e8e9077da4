package dev.inmesh.interception.validation;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The probe on this host's loopback, without any rules: nothing may pass it. */
class CaptureProbeTest {

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    @Test
    void reportsNoCaptureWhenNothingRedirectsTheProbe() throws Exception {
        long started = System.nanoTime();
        CaptureProbe.Result result = CaptureProbe.run(new CaptureProbe.Settings(freePort(),
                List.of(freePort(), freePort()), 1337, 1337, Duration.ofMillis(600), ""));

        assertFalse(result.captured(), result.detail());
        assertTrue(result.detail().startsWith("no connection to 127.0.0.6:"), result.detail());
        assertTrue(Duration.ofNanos(System.nanoTime() - started).toMillis() < 5_000, "bounded by the timeout");
    }

    @Test
    void reportsWhenNoCapturePortCanBeListenedOn() throws Exception {
        try (ServerSocket taken = new ServerSocket()) {
            taken.bind(new java.net.InetSocketAddress("127.0.0.1", 0));
            CaptureProbe.Result result = CaptureProbe.run(new CaptureProbe.Settings(freePort(),
                    List.of(taken.getLocalPort()), 1337, 1337, Duration.ofMillis(300), ""));
            assertFalse(result.captured());
            assertTrue(result.detail().startsWith("cannot listen on any capture port"), result.detail());
        }
    }
}
