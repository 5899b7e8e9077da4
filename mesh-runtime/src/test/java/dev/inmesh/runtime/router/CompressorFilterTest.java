package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.Compressor;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.zip.GZIPInputStream;
import java.util.zip.Inflater;
import org.junit.jupiter.api.Test;

/**
 * Envoy's compressor filter's decision for one response and its gzip stream, as {@code compressor_filter.cc}: what
 * is compressed, what is left as it is, which headers change, what is counted.
 */
class CompressorFilterTest {
    private static final Compressor DEFAULTS = Compressor.defaults("gzip_lib");
    private static final String BIG = "{\"reviews\": [" + "\"a fine book\", ".repeat(20) + "\"ok\"]}";

    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private final DownstreamStats.CompressorCounters counters = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN)
            .connectionManager(HttpConnectionManager.of("inbound_0.0.0.0_9080", "r", List.of()))
            .compressor("gzip_lib", true);

    private static MultiMap json(long length) {
        return MultiMap.caseInsensitiveMultiMap().add("content-type", "application/json; charset=utf-8")
                .add("content-length", Long.toString(length));
    }

    private CompressorFilter.Gzip decide(String acceptEncoding, MultiMap headers) {
        return CompressorFilter.response(DEFAULTS, false, acceptEncoding, 200, headers, counters);
    }

    private static byte[] gunzip(byte[] gz) throws Exception {
        try (var in = new GZIPInputStream(new ByteArrayInputStream(gz))) {
            return in.readAllBytes();
        }
    }

    private double meter(String name) {
        return registry.get("envoy_http_compressor_gzip_lib_gzip_" + name).gauge().value();
    }

    @Test
    void aLargeEnoughResponseToACallerThatTakesGzipIsGzippedWithoutItsLengthAndVaries() throws Exception {
        MultiMap h = json(BIG.length()).add("vary", "Origin");
        CompressorFilter.Gzip gzip = decide("deflate, gzip;q=0.8", h);
        assertNotNull(gzip);
        assertEquals("gzip", h.get("content-encoding"));
        assertNull(h.get("content-length"));
        assertEquals("Origin, Accept-Encoding", h.get("vary"));
        Buffer out = gzip.compress(Buffer.buffer(BIG)).appendBuffer(gzip.finish());
        assertEquals(BIG, new String(gunzip(out.getBytes()), StandardCharsets.UTF_8));
        assertEquals(1, meter("response_compressed"));
        assertEquals(1, meter("header_compressor_used"));
        assertEquals(BIG.length(), meter("response_total_uncompressed_bytes"));
        assertEquals(out.length(), meter("response_total_compressed_bytes"));
    }

    @Test
    void withoutAcceptEncodingTheBodyIsLeftButVaryTellsCachesItCouldBeCompressed() {
        MultiMap h = json(BIG.length());
        assertNull(decide(null, h));
        assertNull(h.get("content-encoding"));
        assertEquals(Integer.toString(BIG.length()), h.get("content-length"));
        assertEquals("Accept-Encoding", h.get("vary"), "as Envoy: the resource could be compressed for another caller");
        assertEquals(1, meter("response_not_compressed"));
        assertEquals(1, meter("no_accept_header"));
    }

    @Test
    void aResponseBelowMinContentLengthIsLeftAsItIs() {
        MultiMap h = json(29);
        assertNull(decide("gzip", h));
        assertEquals(json(29).toString(), h.toString(), "no header changed, no vary");
        assertEquals(1, meter("response_content_length_too_small"));
    }

    @Test
    void anEncodedNoTransformOrUnlistedResponseIsLeftAsItIs() {
        for (MultiMap h : List.of(json(BIG.length()).add("content-encoding", "br"),
                json(BIG.length()).add("cache-control", "public, No-Transform"),
                json(BIG.length()).set("content-type", "image/png"))) {
            MultiMap before = MultiMap.caseInsensitiveMultiMap().addAll(h);
            assertNull(decide("gzip", h), before.toString());
            assertEquals(before.toString(), h.toString());
        }
        // a compressing transfer-encoding: not compressed twice, but Envoy's vary still goes on
        MultiMap transferred = json(BIG.length()).add("transfer-encoding", "gzip, chunked");
        assertNull(decide("gzip", transferred));
        assertNull(transferred.get("content-encoding"));
        assertEquals("Accept-Encoding", transferred.get("vary"));
    }

    /**
     * A header the upstream sent on several lines is read as Envoy's header map holds it, its values joined with
     * {@code ,}: each {@code vary} kept before the appended {@code Accept-Encoding}, a {@code no-transform} on the
     * second {@code cache-control} line honoured, two {@code content-type} lines read up to the first {@code ;} of the
     * joined value, a compressing {@code transfer-encoding} or an upgrade {@code connection} on its second line not
     * compressed, and an {@code etag} read whole.
     */
    @Test
    void aHeaderOnSeveralLinesIsReadWithItsValuesJoinedAsEnvoysHeaderMapJoinsThem() {
        MultiMap varies = json(BIG.length()).add("vary", "Origin").add("vary", "Cookie");
        assertNotNull(decide("gzip", varies));
        assertEquals(List.of("Origin,Cookie, Accept-Encoding"), varies.getAll("vary"));
        MultiMap notCompressed = json(BIG.length()).add("vary", "Origin").add("vary", "Cookie");
        assertNull(decide(null, notCompressed));
        assertEquals(List.of("Origin,Cookie, Accept-Encoding"), notCompressed.getAll("vary"), "vary goes on anyway");
        MultiMap already = json(BIG.length()).add("vary", "Origin").add("vary", "accept-encoding");
        assertNotNull(decide("gzip", already));
        assertEquals(List.of("Origin", "accept-encoding"), already.getAll("vary"), "accept-encoding is there");

        MultiMap noTransform = json(BIG.length()).add("cache-control", "public").add("cache-control", "no-transform");
        assertNull(decide("gzip", noTransform));
        assertNull(noTransform.get("content-encoding"));
        MultiMap twoTypes = json(BIG.length()).set("content-type", "application/json").add("content-type", "text/html");
        assertNull(decide("gzip", twoTypes), "application/json,text/html is no listed type");
        MultiMap withParameters = json(BIG.length()).add("content-type", "text/html");
        assertNotNull(decide("gzip", withParameters), "application/json (up to the first ;) is listed, as Envoy's");
        MultiMap transferred = json(BIG.length()).add("transfer-encoding", "chunked").add("transfer-encoding", "gzip");
        assertNull(decide("gzip", transferred));
        assertNull(transferred.get("content-encoding"));
        MultiMap upgrade = json(BIG.length()).add("upgrade", "websocket").add("connection", "keep-alive")
                .add("connection", "upgrade");
        assertNull(decide("gzip", upgrade));
        assertFalse(upgrade.contains("vary"), "an upgrade is not compressible");
        MultiMap etags = json(BIG.length()).add("etag", "\"\"").add("etag", "\"v1\"");
        assertNotNull(decide("gzip", etags));
        assertFalse(etags.contains("etag"), "\"\",\"v1\" is a strong etag");
    }

    @Test
    void aResponseWithoutABodyIsNotCompressed() {
        for (int status : new int[] {204, 304}) {
            assertNull(CompressorFilter.response(DEFAULTS, false, "gzip", status, json(BIG.length()), counters));
        }
        MultiMap head = json(BIG.length());
        assertNull(CompressorFilter.response(DEFAULTS, true, "gzip", 200, head, counters));
        assertEquals("Accept-Encoding", head.get("vary"), "the GET of the same resource would be");
    }

    @Test
    void qValuesWildcardAndIdentityChooseAsEnvoyChooses() {
        // gzip;q=0 refuses gzip even under *; * with q=0 leaves an explicit gzip; identity first at a higher q
        assertNull(decide("gzip;q=0, *", json(BIG.length())));
        assertNotNull(decide("*;q=0, gzip", json(BIG.length())));
        assertNull(decide("identity, gzip;q=0.5", json(BIG.length())));
        assertNotNull(decide("identity;q=0.5, gzip", json(BIG.length())));
        assertNotNull(decide("*", json(BIG.length())));
        assertNull(decide("br", json(BIG.length())));
        assertNull(decide("gzip;q=abc", json(BIG.length())), "a coding whose q-value is no number is left out");
        assertEquals(1, meter("header_wildcard"));
        assertEquals(1, meter("header_identity"));
        assertEquals(3, meter("header_not_valid"));
        assertEquals(2, meter("header_compressor_used"));
    }

    @Test
    void aStrongEtagIsRemovedFromACompressedResponseAWeakOneKept() {
        MultiMap strong = json(BIG.length()).add("etag", "\"v1\"");
        assertNotNull(decide("gzip", strong));
        assertFalse(strong.contains("etag"));
        MultiMap weak = json(BIG.length()).add("etag", "W/\"v1\"");
        assertNotNull(decide("gzip", weak));
        assertEquals("W/\"v1\"", weak.get("etag"));
        Compressor etagOff = new Compressor("gzip_lib", true, true, 30, Set.of(), true, false, Set.of(), -1, null);
        MultiMap kept = json(BIG.length()).add("etag", "\"v1\"");
        assertNull(CompressorFilter.response(etagOff, false, "gzip", 200, kept, counters));
        assertEquals("\"v1\"", kept.get("etag"));
        assertEquals(1, meter("not_compressed_etag"));
    }

    @Test
    void anUncompressibleStatusOrADisabledFilterLeavesTheResponse() {
        Compressor partial = new Compressor("gzip_lib", true, true, 30, Set.of(), false, false, Set.of(206), -1,
                null);
        assertNull(CompressorFilter.response(partial, false, "gzip", 206, json(BIG.length()), counters));
        Compressor off = new Compressor("gzip_lib", true, false, 30, Set.of(), false, true, Set.of(), -1, null);
        MultiMap h = json(BIG.length());
        assertNull(CompressorFilter.response(off, false, "gzip", 200, h, counters));
        assertFalse(h.contains("vary"));
        MultiMap request = MultiMap.caseInsensitiveMultiMap().add("accept-encoding", "gzip");
        assertEquals("gzip", CompressorFilter.acceptEncoding(off, request));
        assertTrue(request.contains("accept-encoding"), "a disabled filter takes nothing off");
        Compressor removes = new Compressor("gzip_lib", true, true, 30, Set.of(), false, true, Set.of(), -1, null);
        assertEquals("gzip", CompressorFilter.acceptEncoding(removes, request));
        assertFalse(request.contains("accept-encoding"), "remove_accept_encoding_header");
    }

    @Test
    void eachChunkIsFlushedSoThatWhatCameSoFarInflatesBeforeTheBodyEnds() throws Exception {
        CompressorFilter.Gzip gzip = decide("gzip", MultiMap.caseInsensitiveMultiMap().add("content-type",
                "text/plain"));
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        ByteArrayOutputStream original = new ByteArrayOutputStream();
        Inflater reader = new Inflater(true);
        byte[] inflated = new byte[1 << 20];
        int soFar = 0;
        for (int i = 0; i < 40; i++) {
            byte[] chunk = ("chunk " + i + " " + "x".repeat(i * 97) + "\n").getBytes(StandardCharsets.UTF_8);
            original.write(chunk);
            byte[] out = gzip.compress(Buffer.buffer(chunk)).getBytes();
            all.write(out);
            // the deflated bytes of this chunk (the first after the 10-byte header) inflate to all of it now
            reader.setInput(i == 0 ? Arrays.copyOfRange(out, 10, out.length) : out);
            soFar += reader.inflate(inflated, soFar, inflated.length - soFar);
            assertEquals(original.size(), soFar, "chunk " + i + " whole before the next");
        }
        all.write(gzip.finish().getBytes());
        assertArrayEquals(original.toByteArray(), gunzip(all.toByteArray()));
    }
}
