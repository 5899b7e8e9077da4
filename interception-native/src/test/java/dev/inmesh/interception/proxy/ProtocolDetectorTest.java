package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class ProtocolDetectorTest {
    private final ProtocolDetector both = new ProtocolDetector(true, true);

    private static ProtocolDetector.Detection detect(ProtocolDetector d, String s) {
        byte[] b = s.getBytes(StandardCharsets.ISO_8859_1);
        return d.detect(b, b.length);
    }

    @Test
    void aClientHelloIsTlsWithItsServerNameAndAlpn() throws Exception {
        byte[] hello = ClientHelloTest.clientHello("ratings.default.svc.cluster.local", "istio-http/1.1", "h2");
        ProtocolDetector.Detection d = both.detect(hello, hello.length);
        assertTrue(d.done());
        assertEquals("tls", d.transportProtocol());
        assertEquals("ratings.default.svc.cluster.local", d.serverName());
        assertEquals(List.of("istio-http/1.1", "h2"), d.applicationProtocols());
        byte[] upper = ClientHelloTest.clientHello("Ratings.Default.SVC", "h2");
        assertEquals("ratings.default.svc", both.detect(upper, upper.length).serverName(),
                "in lower case, as Envoy keeps a requested server name");
    }

    @Test
    void theHttp2PrefaceIsH2c() {
        ProtocolDetector.Detection d = detect(both, ProtocolDetector.H2_PREFACE + "\0\0\0\4");
        assertEquals(new ProtocolDetector.Detection(true, "raw_buffer", "", List.of("h2c")), d);
        assertFalse(detect(both, "PRI * HTTP/2").done());
    }

    @Test
    void anHttp1RequestLineIsHttp11OrHttp10() {
        assertEquals(List.of("http/1.1"), detect(both, "GET /reviews/1 HTTP/1.1\r\nHost: x\r\n")
                .applicationProtocols());
        assertEquals(List.of("http/1.0"), detect(both, "POST / HTTP/1.0\r\n").applicationProtocols());
        assertEquals(List.of("http/1.1"), detect(both, "DELETE /x HTTP/1.1\n").applicationProtocols());
    }

    @Test
    void aRequestLineOfAnotherVersionOrOfNoneIsHttp10AsEnvoysParsersReadIt() {
        assertEquals(List.of("http/1.0"), detect(both, "GET / HTTP/1.2\r\n").applicationProtocols());
        assertEquals(List.of("http/1.0"), detect(both, "GET / HTTP/2.0\r\n").applicationProtocols());
        assertEquals(List.of("http/1.0"), detect(both, "GET /index.html\r\n").applicationProtocols());
        for (String s : List.of("GET / HTTP/x.y\r\n", "GET / http/1.1\r\n", "GET \r\n", "GET  HTTP/1.1\r\n")) {
            assertEquals(List.of(), detect(both, s).applicationProtocols(), s);
        }
    }

    @Test
    void waitsWhileTheBytesCouldStillBeARequestLine() {
        assertFalse(detect(both, "").done());
        assertFalse(detect(both, "GE").done());
        assertFalse(detect(both, "GET /a-long-path").done());
        assertFalse(detect(both, "P").done());
    }

    @Test
    void anythingElseIsRawAtOnce() {
        for (String s : List.of("SSH-2.0-OpenSSH_9.2\r\n", "hello", "\u0000\u0001", "FOO / HTTP/1.1\r\n",
                "GET / SPDY/3\r\n")) {
            ProtocolDetector.Detection d = detect(both, s);
            assertTrue(d.done(), s);
            assertEquals("raw_buffer", d.transportProtocol(), s);
            assertEquals(List.of(), d.applicationProtocols(), s);
        }
    }

    @Test
    void onlyTheConfiguredInspectorsRun() {
        ProtocolDetector tlsOnly = new ProtocolDetector(true, false);
        assertEquals(ProtocolDetector.Detection.RAW, detect(tlsOnly, "GET / HTTP/1.1\r\n"));
        ProtocolDetector httpOnly = new ProtocolDetector(false, true);
        assertEquals(List.of("http/1.1"), detect(httpOnly, "GET / HTTP/1.1\r\n").applicationProtocols());
        assertFalse(new ProtocolDetector(false, false).enabled());
    }

    @Test
    void anUnfinishedRequestLineIsReadUpTo64KibThenDropped() {
        assertFalse(detect(both, "GET /" + "a".repeat(9000)).done());
        assertFalse(detect(both, "GET /" + "a".repeat(64 * 1024 - 6)).done());
        assertEquals(ProtocolDetector.Detection.DROP, detect(both, "GET /" + "a".repeat(64 * 1024 - 5)));
        assertEquals(List.of("http/1.1"), detect(both, "GET /" + "a".repeat(60_000) + " HTTP/1.1\r\n")
                .applicationProtocols());
    }
}
