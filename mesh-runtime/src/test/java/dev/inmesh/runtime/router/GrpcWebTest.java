package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import org.junit.jupiter.api.Test;

/** Envoy's gRPC-Web filter's translation of one request and its response ({@link GrpcWeb}). */
class GrpcWebTest {

    private static MultiMap headers(String contentType) {
        return MultiMap.caseInsensitiveMultiMap().set("content-type", contentType).set("content-length", "12")
                .set("x-grpc-web", "1").set("x-user-agent", "grpc-web-javascript/0.1");
    }

    /** A gRPC message frame: flag 0, 4-byte length, the bytes. */
    private static Buffer frame(String message) {
        byte[] m = message.getBytes(StandardCharsets.UTF_8);
        return Buffer.buffer().appendByte((byte) 0).appendInt(m.length).appendBytes(m);
    }

    @Test
    void theFourGrpcWebContentTypesBecomeGrpcUpstreamWithTeTrailersAndNoLength() {
        for (String ct : new String[] {"application/grpc-web", "application/grpc-web+proto",
            "application/grpc-web-text", "application/grpc-web-text+proto"}) {
            MultiMap h = headers(ct);
            GrpcWeb web = GrpcWeb.request(h);
            assertNotNull(web, ct);
            assertEquals("application/grpc", h.get("content-type"));
            assertEquals("trailers", h.get("te"));
            assertEquals("identity,deflate,gzip", h.get("grpc-accept-encoding"), "Envoy's default, as it sets it");
            assertFalse(h.contains("content-length"));
            assertEquals("1", h.get("x-grpc-web"), "passed on as it came, as Envoy's filter does");
            assertEquals("grpc-web-javascript/0.1", h.get("x-user-agent"));
            assertEquals(ct.contains("-text"), web.textRequest(), ct);
            assertFalse(web.textResponse(), "the response is text only when accept asks for it");
        }
        MultiMap own = headers("application/grpc-web").set("grpc-accept-encoding", "gzip");
        GrpcWeb.request(own);
        assertEquals("gzip", own.get("grpc-accept-encoding"), "a request's own accepted encodings are kept");
    }

    @Test
    void otherContentTypesAndOtherSubTypesPassUntouched() {
        for (String ct : new String[] {"application/grpc-web+json", "application/grpc", "text/plain",
            "Application/grpc-web", "application/grpc-web; charset=utf-8"}) {
            MultiMap h = headers(ct);
            assertNull(GrpcWeb.request(h), ct);
            assertEquals(ct, h.get("content-type"));
            assertEquals("12", h.get("content-length"));
            assertFalse(h.contains("te"));
        }
        assertNull(GrpcWeb.request(MultiMap.caseInsensitiveMultiMap()));
    }

    @Test
    void aTextResponseIsAskedForByAcceptAlone() {
        assertTrue(GrpcWeb.request(headers("application/grpc-web").set("accept", "application/grpc-web-text"))
                .textResponse());
        assertTrue(GrpcWeb.request(headers("application/grpc-web-text")
                .set("accept", "application/grpc-web-text+proto")).textResponse());
        assertFalse(GrpcWeb.request(headers("application/grpc-web-text").set("accept", "*/*")).textResponse());
    }

    @Test
    void aTextBodyIsDecodedWhateverItsChunkBoundaries() {
        byte[] body = Buffer.buffer().appendBuffer(frame("hello, gRPC-Web")).appendBuffer(frame("!")).getBytes();
        byte[] text = Base64.getEncoder().encode(body);
        for (int size = 1; size <= text.length; size++) {
            GrpcWeb web = GrpcWeb.request(headers("application/grpc-web-text"));
            Buffer out = Buffer.buffer();
            for (int at = 0; at < text.length; at += size) {
                int end = Math.min(text.length, at + size);
                Buffer d = web.decode(Buffer.buffer(java.util.Arrays.copyOfRange(text, at, end)), end == text.length);
                assertNotNull(d, "chunks of " + size);
                out.appendBuffer(d);
            }
            assertArrayEquals(body, out.getBytes(), "chunks of " + size);
        }
        // a body whose parts were encoded one by one, padding and all, decodes too
        GrpcWeb web = GrpcWeb.request(headers("application/grpc-web-text"));
        Buffer joined = Buffer.buffer(Base64.getEncoder().encode(frame("a").getBytes()))
                .appendBytes(Base64.getEncoder().encode(frame("bc").getBytes()));
        assertEquals(frame("a").appendBuffer(frame("bc")), web.decodeWhole(joined));
    }

    @Test
    void aTextBodyThatIsNotBase64IsRefusedWithEnvoysDetails() {
        GrpcWeb bad = GrpcWeb.request(headers("application/grpc-web-text"));
        assertNotNull(bad.decode(Buffer.buffer("AAAA"), false));
        assertNull(bad.decode(Buffer.buffer("AA*A"), false));
        assertEquals(GrpcWeb.DECODE_FAILED, bad.failure());
        assertNull(bad.decode(Buffer.buffer("AAAA"), true), "and stays refused");

        GrpcWeb padding = GrpcWeb.request(headers("application/grpc-web-text"));
        assertNull(padding.decodeWhole(Buffer.buffer("A=AA")), "padding before the end of a group");
        assertEquals(GrpcWeb.DECODE_FAILED, padding.failure());

        GrpcWeb size = GrpcWeb.request(headers("application/grpc-web-text"));
        assertNotNull(size.decode(Buffer.buffer("AAAAA"), false), "a fifth character waits for its group");
        assertNull(size.decode(Buffer.buffer("AA"), true));
        assertEquals(GrpcWeb.DECODE_FAILED_BAD_SIZE, size.failure());

        GrpcWeb binary = GrpcWeb.request(headers("application/grpc-web"));
        Buffer raw = Buffer.buffer("not base64 *");
        assertEquals(raw, binary.decodeWhole(raw), "a binary body is not decoded");
        assertNull(binary.failure());
    }

    @Test
    void aGrpcResponseGetsTheGrpcWebTypeAndItsTrailersBecomeTheLastFrame() {
        GrpcWeb web = GrpcWeb.request(headers("application/grpc-web"));
        MultiMap h = MultiMap.caseInsensitiveMultiMap().set("content-type", "application/grpc")
                .set("content-length", "20");
        web.responseHeaders(200, h);
        assertFalse(web.buffersResponse());
        assertEquals("application/grpc-web+proto", h.get("content-type"));
        assertFalse(h.contains("content-length"));
        assertEquals(frame("x"), web.encode(frame("x")));
        Buffer t = web.trailers(MultiMap.caseInsensitiveMultiMap().add("Grpc-Status", "0")
                .add("grpc-message", "ok").add("x-extra", "1"));
        String lines = "grpc-status:0\r\ngrpc-message:ok\r\nx-extra:1\r\n";
        assertEquals(0x80, t.getUnsignedByte(0));
        assertEquals(lines.length(), t.getInt(1));
        assertEquals(lines, t.getString(5, t.length()));
        assertNull(web.trailers(MultiMap.caseInsensitiveMultiMap()), "no trailers, no frame");
    }

    @Test
    void aTextResponseIsBase64OneWholeFrameAtATime() {
        GrpcWeb web = GrpcWeb.request(headers("application/grpc-web-text")
                .set("accept", "application/grpc-web-text"));
        MultiMap h = MultiMap.caseInsensitiveMultiMap().set("content-type", "application/grpc+proto");
        web.responseHeaders(200, h);
        assertEquals("application/grpc-web-text+proto", h.get("content-type"));
        Buffer two = frame("first").appendBuffer(frame("second"));
        Buffer out = Buffer.buffer();
        for (int i = 0; i < two.length(); i += 3) {
            out.appendBuffer(web.encode(two.getBuffer(i, Math.min(two.length(), i + 3))));
        }
        String expected = Base64.getEncoder().encodeToString(frame("first").getBytes())
                + Base64.getEncoder().encodeToString(frame("second").getBytes());
        assertEquals(expected, out.toString());
        Buffer t = web.trailers(MultiMap.caseInsensitiveMultiMap().add("grpc-status", "5"));
        byte[] decoded = Base64.getDecoder().decode(t.getBytes());
        assertEquals("grpc-status:5\r\n", new String(decoded, 5, decoded.length - 5, StandardCharsets.US_ASCII));
    }

    @Test
    void aNonGrpcResponseBecomesHeadersWithItsStatusMappedAndItsBodyAsTheMessage() {
        GrpcWeb web = GrpcWeb.request(headers("application/grpc-web"));
        MultiMap h = MultiMap.caseInsensitiveMultiMap().set("content-type", "text/plain").set("content-length", "19");
        web.responseHeaders(503, h);
        assertTrue(web.buffersResponse());
        web.keep(Buffer.buffer("no healthy "));
        web.keep(Buffer.buffer("upstream\n"));
        web.endNonGrpc(503, h, MultiMap.caseInsensitiveMultiMap());
        assertEquals("14", h.get("grpc-status"));
        assertEquals("no healthy upstream%0A", h.get("grpc-message"));
        assertEquals("0", h.get("content-length"));
        assertEquals("application/grpc-web+proto", h.get("content-type"));

        GrpcWeb big = GrpcWeb.request(headers("application/grpc-web"));
        MultiMap bh = MultiMap.caseInsensitiveMultiMap();
        big.responseHeaders(500, bh);
        big.keep(Buffer.buffer("x".repeat(GrpcWeb.MAX_MESSAGE_BYTES - 1)));
        big.keep(Buffer.buffer("yz"));
        big.endNonGrpc(500, bh, null);
        assertEquals("x".repeat(GrpcWeb.MAX_MESSAGE_BYTES - 1) + "y", bh.get("grpc-message"), "the first 16 KiB");
        assertEquals("2", bh.get("grpc-status"));
    }

    /**
     * Envoy's filter sets a non-gRPC answer's {@code grpc-status} from its HTTP status whatever it carried: a local
     * rate limit refusal with {@code rate_limited_as_resource_exhausted} (429, grpc-status 8, a body) reaches a
     * gRPC-Web caller as 14 UNAVAILABLE, as Envoy's local reply to a request it does not see as gRPC carries no
     * gRPC status for its filter to keep; an upstream's 500 with a text body and a grpc-status 3 as 2 UNKNOWN.
     */
    @Test
    void aNonGrpcAnswersGrpcStatusIsMappedFromItsHttpStatusEvenWhenItCarriesOne() {
        GrpcWeb web = GrpcWeb.request(headers("application/grpc-web"));
        MultiMap h = MultiMap.caseInsensitiveMultiMap().set("content-type", "text/plain").set("grpc-status", "8");
        Buffer body = web.localReply(429, h, Buffer.buffer(LocalRateLimitFilter.BODY));
        assertEquals(0, body.length());
        assertEquals("14", h.get("grpc-status"));
        assertEquals("local_rate_limited", h.get("grpc-message"));

        GrpcWeb upstream = GrpcWeb.request(headers("application/grpc-web"));
        MultiMap uh = MultiMap.caseInsensitiveMultiMap().set("content-type", "text/plain").set("grpc-status", "3");
        upstream.responseHeaders(500, uh);
        upstream.keep(Buffer.buffer("oops"));
        upstream.endNonGrpc(500, uh, null);
        assertEquals("2", uh.get("grpc-status"));
        assertEquals("oops", uh.get("grpc-message"));
    }

    @Test
    void aTrailersOnlyAnswerAndABodilessOneStayHeaders() {
        GrpcWeb web = GrpcWeb.request(headers("application/grpc-web"));
        MultiMap h = MultiMap.caseInsensitiveMultiMap().set("grpc-status", "7").set("grpc-message", "denied");
        web.responseHeaders(200, h); // no content type: Envoy would see its end of stream; here, no body comes
        web.endNonGrpc(200, h, MultiMap.caseInsensitiveMultiMap());
        assertEquals("7", h.get("grpc-status"));
        assertEquals("denied", h.get("grpc-message"));
        assertEquals("0", h.get("content-length"));
    }

    @Test
    void aLocalReplyIsTranslatedAsAnUpstreamAnswer() {
        GrpcWeb web = GrpcWeb.request(headers("application/grpc-web-text"));
        MultiMap h = MultiMap.caseInsensitiveMultiMap().set("content-type", "text/plain").set("content-length", "3");
        Buffer body = web.localReply(404, h, Buffer.buffer("nf%"));
        assertEquals(0, body.length());
        assertEquals("12", h.get("grpc-status"));
        assertEquals("nf%25", h.get("grpc-message"));
        assertEquals("0", h.get("content-length"));
        assertEquals("application/grpc-web+proto", h.get("content-type"));
    }
}
