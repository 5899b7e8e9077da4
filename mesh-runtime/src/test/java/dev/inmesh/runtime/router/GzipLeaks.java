package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;

/** What a test of the compressor filter checks of a caller that leaves while its answer is being gzipped. */
public final class GzipLeaks {
    private GzipLeaks() {}

    /**
     * Asks 127.0.0.1:{@code port} for {@code path}, taking gzip, reads the answer's head (gzipped: one more gzip
     * stream open), leaves, and asserts that the gzip stream is freed within 5 s ({@link CompressorFilter.Gzip#open}).
     */
    public static void leaveMidResponse(int port, String path) throws Exception {
        long before = CompressorFilter.Gzip.open();
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nhost: svc\r\naccept-encoding: gzip\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            StringBuilder head = new StringBuilder();
            while (head.indexOf("\r\n\r\n") < 0) {
                head.append((char) s.getInputStream().read());
            }
            assertTrue(head.toString().contains("content-encoding: gzip"), head.toString());
            assertEquals(before + 1, CompressorFilter.Gzip.open(), "the answer's gzip stream");
        }
        for (int i = 0; i < 200 && CompressorFilter.Gzip.open() > before; i++) {
            Thread.sleep(25);
        }
        assertEquals(before, CompressorFilter.Gzip.open(), "freed once the caller left");
    }
}
