package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaders;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class Http1BodyEndTest {
    private static HttpHeaders headers(String name, String value) {
        return new DefaultHttpHeaders().add(name, value);
    }

    /** The body of an answer Netty's decoder reads. */
    private static Http1BodyEnd decoded(int status, HttpHeaders headers) {
        return Http1BodyEnd.of(status, headers, Http1BodyEnd.DECODED_MAX_CHUNK);
    }

    private static ByteBuf bytes(String s) {
        return Unpooled.copiedBuffer(s, StandardCharsets.ISO_8859_1);
    }

    @Test
    void aChunkedBodyEndsAfterItsLastChunkAndTrailersHoweverItsBytesAreSplit() {
        String body = "3\r\nnot\r\n6;ext=1\r\n found\r\n0\r\nx-trailer: t\r\n\r\n";
        Http1BodyEnd end = decoded(404, headers("transfer-encoding", "chunked"));
        for (int i = 0; i < body.length(); i++) {
            assertFalse(end.ended(), "ended before byte " + i);
            assertEquals(1, end.take(bytes(body.substring(i, i + 1))));
        }
        assertTrue(end.ended());
        assertEquals(0, end.take(bytes("HTTP/1.1 200 OK")));
    }

    @Test
    void theBytesAfterTheBodyAreNotTheBodys() {
        Http1BodyEnd chunked = decoded(403, headers("transfer-encoding", "chunked"));
        assertEquals("2\nhi\n0\n\n".length(), chunked.take(bytes("2\nhi\n0\n\nmore")));
        assertTrue(chunked.ended());
        Http1BodyEnd length = decoded(403, headers("content-length", "6"));
        assertEquals(6, length.take(bytes("deniedmore")));
        assertTrue(length.ended());
    }

    @Test
    void brokenChunksAreNoBody() {
        assertEquals(-1, decoded(403, headers("transfer-encoding", "chunked")).take(bytes("zz\r\n")));
        assertEquals(-1, decoded(403, headers("transfer-encoding", "chunked")).take(bytes("2\r\nhiX")));
    }

    @Test
    void aChunkSizeNettyWouldReadWrappedBreaksTheChunks() {
        // Netty's decoder reads a size in an int: 100000005 would be 5, the rest of the chunk the next message
        Http1BodyEnd end = Http1BodyEnd.chunked();
        assertEquals(-1, end.take(bytes("2\r\nok\r\n100000005\r\n")));
        assertEquals(7, end.brokenAt(), "where the size line that broke them begins");
        Http1BodyEnd split = Http1BodyEnd.chunked();
        assertEquals(4, split.take(bytes("1000")));
        assertEquals(-1, split.take(bytes("00005\r\n")));
        assertEquals(0, split.brokenAt(), "a size line begun in an earlier read: from the start");
        assertEquals(-1, Http1BodyEnd.chunked().take(bytes("100000005\r\n")));
        assertEquals(-1, Http1BodyEnd.chunked().take(bytes("80000000\r\n")));
        assertEquals(-1, Http1BodyEnd.chunked().take(bytes("00000000080000000;x\r\n")));
        assertEquals(10, Http1BodyEnd.chunked().take(bytes("7fffffff\r\n")));
        assertEquals(12, Http1BodyEnd.chunked().take(bytes("007fffffff\r\n")));
    }

    @Test
    void aBodyRelayedRawTakesChunksUpToItsOwnLimit() {
        // no decoder's int limits the bytes relayed raw (an upgrade's refusal): only a size no chunk reaches breaks
        var chunkedHeaders = headers("transfer-encoding", "chunked");
        assertEquals(11, Http1BodyEnd.of(404, chunkedHeaders, Http1BodyEnd.RELAYED_MAX_CHUNK)
                .take(bytes("100000005\r\n")));
        assertEquals(12, Http1BodyEnd.of(404, chunkedHeaders, Http1BodyEnd.RELAYED_MAX_CHUNK)
                .take(bytes("ffffffffff\r\n")));
        assertEquals(-1, Http1BodyEnd.of(404, chunkedHeaders, Http1BodyEnd.RELAYED_MAX_CHUNK)
                .take(bytes("10000000000\r\n")));
        assertEquals(-1, Http1BodyEnd.of(404, chunkedHeaders, Http1BodyEnd.DECODED_MAX_CHUNK)
                .take(bytes("100000005\r\n")));
    }

    @Test
    void aBodyWithoutLengthEndsWithTheConnectionAndA204sAtOnce() {
        Http1BodyEnd toTheEnd = decoded(500, new DefaultHttpHeaders());
        assertEquals(4, toTheEnd.take(bytes("more")));
        assertFalse(toTheEnd.ended());
        assertTrue(decoded(204, new DefaultHttpHeaders()).ended());
        assertNull(decoded(403, headers("content-length", "six")));
    }
}
