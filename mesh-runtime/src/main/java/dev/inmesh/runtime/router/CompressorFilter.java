package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.Compressor;
import dev.inmesh.api.config.route.CompressorPerRoute;
import dev.inmesh.runtime.stats.DownstreamStats;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import java.util.Locale;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

/**
 * Envoy's compressor HTTP filter ({@code envoy.filters.http.compressor}) with its gzip library, for one response: it
 * decides from the request's {@code accept-encoding} and the response's head whether the body is gzipped, as Envoy's
 * {@code compressor_filter.cc} decides, and then gzips it chunk by chunk as it streams, each chunk flushed
 * ({@code SYNC_FLUSH}) as Envoy flushes each data frame, so that nothing waits for the rest of the body.
 *
 * <p>Skipped: a caller without {@code accept-encoding}, or whose list (with its q-values, {@code *} and
 * {@code identity}) does not choose gzip; a response with no body (to {@code HEAD}, 1xx, 204, 304), an upgrade, one
 * already encoded ({@code content-encoding}, or a compressing {@code transfer-encoding}), with
 * {@code cache-control: no-transform}, a media type not in the config's list, a {@code content-length} below
 * {@code min_content_length}, a status the config lists as uncompressible, or an {@code etag} under
 * {@code disable_on_etag_header}. Compressed: {@code content-encoding: gzip}, no {@code content-length}, a strong
 * {@code etag} removed (a weak one kept). {@code vary: accept-encoding} is added to every response that could have
 * been compressed for another {@code accept-encoding}, compressed or not, as Envoy adds it for caches in front. A
 * header sent on several lines is read, as Envoy's header map holds it, with its values joined by {@code ,}.
 */
public final class CompressorFilter {
    private static final String GZIP = "gzip";

    private CompressorFilter() {}

    /**
     * The filter's config for a request routed by {@code result} (null, or no route: the filter's own), as Envoy's
     * filter resolves it: the most specific {@code CompressorPerRoute} for the filter's {@code name} (the route's, else
     * its virtual host's) replaces {@code enabled} and {@code remove_accept_encoding_header} where it sets them.
     */
    public static Compressor forRoute(Compressor config, String name, RouteResult result) {
        if (config == null || result == null) {
            return config;
        }
        dev.inmesh.api.config.route.Route route = RouteResult.routeOf(result);
        CompressorPerRoute p = route == null ? null : route.compressor().get(name);
        if (p == null && result.virtualHost() != null) {
            p = result.virtualHost().compressor().get(name);
        }
        if (p == null) {
            return config;
        }
        boolean enabled = p.enabled() != null ? p.enabled() : config.enabled();
        boolean remove = p.removeAcceptEncodingHeader() != null ? p.removeAcceptEncodingHeader()
                : config.removeAcceptEncodingHeader();
        return enabled == config.enabled() && remove == config.removeAcceptEncodingHeader() ? config
                : new Compressor(config.libraryName(), config.responseDirection(), enabled, config.minContentLength(),
                        config.contentTypes(), config.disableOnEtagHeader(), remove,
                        config.uncompressibleResponseCodes(), config.level(), config.strategy());
    }

    /**
     * Takes the request's {@code accept-encoding} off before it goes on, when the config says
     * {@code remove_accept_encoding_header}; returns what it was (all its values joined), or null for none, which the
     * response's decision reads.
     */
    public static String acceptEncoding(Compressor config, MultiMap requestHeaders) {
        String value = acceptEncoding(requestHeaders);
        removeAcceptEncoding(config, requestHeaders);
        return value;
    }

    /** The request's {@code accept-encoding} (all its values joined), or null for none. */
    public static String acceptEncoding(MultiMap requestHeaders) {
        return HeaderValues.joined(requestHeaders, "accept-encoding");
    }

    /** Takes the request's {@code accept-encoding} off when the config says {@code remove_accept_encoding_header}. */
    public static void removeAcceptEncoding(Compressor config, MultiMap requestHeaders) {
        if (config.enabled() && config.removeAcceptEncodingHeader()) {
            requestHeaders.remove("accept-encoding");
        }
    }

    /**
     * Decides for one response, whose {@code headers} it changes as Envoy's filter does: a {@link Gzip} to pass its
     * body through when it is compressed, else null.
     *
     * @param head whether it answers a {@code HEAD} request (so has no body)
     * @param acceptEncoding the request's {@code accept-encoding} ({@link #acceptEncoding}), or null for none
     * @param counters where it counts, or null for nowhere
     */
    public static Gzip response(Compressor config, boolean head, String acceptEncoding, int status, MultiMap headers,
                                DownstreamStats.CompressorCounters counters) {
        boolean bodyless = head || status < 200 || status == 204 || status == 304;
        boolean bigEnough = config.enabled() && minimumLength(config, headers, counters);
        boolean compressible = bigEnough && !upgrade(status, headers)
                && !config.uncompressibleResponseCodes().contains(status) && contentTypeAllowed(config, headers)
                && !noTransform(headers) && etagAllowed(config, headers, counters)
                && !headers.contains("content-encoding");
        boolean compress = !bodyless && acceptsGzip(bigEnough, config, acceptEncoding, headers, counters)
                && compressible && transferEncodingAllowed(headers);
        Gzip gzip = null;
        if (compress) {
            String etag = HeaderValues.joined(headers, "etag");
            if (etag != null && etag.length() > 2 && !(etag.startsWith("W/") || etag.startsWith("w/"))) {
                headers.remove("etag"); // a strong validator does not survive the transformation
            }
            headers.remove("content-length");
            headers.set("content-encoding", GZIP);
            gzip = new Gzip(config, counters);
        }
        if (counters != null) {
            counters.compressed(compress);
        }
        if (compressible) {
            addVary(headers);
        }
        return gzip;
    }

    /** True unless a {@code content-length} says fewer bytes than {@code min_content_length} (or is no number). */
    private static boolean minimumLength(Compressor config, MultiMap headers,
                                         DownstreamStats.CompressorCounters counters) {
        String length = headers.get("content-length");
        if (length == null) {
            return true;
        }
        boolean ok;
        try {
            ok = Long.parseLong(length.strip()) >= config.minContentLength();
        } catch (NumberFormatException e) {
            ok = false;
        }
        if (!ok && counters != null) {
            counters.contentLengthTooSmall();
        }
        return ok;
    }

    /** A switch of protocols: 101, or an {@code upgrade} that the {@code connection} names. */
    private static boolean upgrade(int status, MultiMap headers) {
        return status == 101
                || headers.contains("upgrade") && hasToken(HeaderValues.joined(headers, "connection"), "upgrade");
    }

    /** No {@code content-type}, or one (parameters off) in the config's list. */
    private static boolean contentTypeAllowed(Compressor config, MultiMap headers) {
        String type = HeaderValues.joined(headers, "content-type");
        if (type == null) {
            return true;
        }
        int semi = type.indexOf(';');
        return config.contentTypes().contains((semi < 0 ? type : type.substring(0, semi)).strip()
                .toLowerCase(Locale.ROOT));
    }

    private static boolean noTransform(MultiMap headers) {
        return hasToken(HeaderValues.joined(headers, "cache-control"), "no-transform");
    }

    private static boolean etagAllowed(Compressor config, MultiMap headers,
                                       DownstreamStats.CompressorCounters counters) {
        boolean allowed = !(config.disableOnEtagHeader() && headers.contains("etag"));
        if (!allowed && counters != null) {
            counters.notCompressedEtag();
        }
        return allowed;
    }

    /** No {@code transfer-encoding} that already compresses (gzip, br, deflate, compress, zstd). */
    private static boolean transferEncodingAllowed(MultiMap headers) {
        String te = HeaderValues.joined(headers, "transfer-encoding");
        if (te == null) {
            return true;
        }
        for (String coding : te.split(",")) {
            switch (coding.strip().toLowerCase(Locale.ROOT)) {
                case "gzip", "br", "deflate", "compress", "zstd" -> {
                    return false;
                }
                default -> { }
            }
        }
        return true;
    }

    /** Whether the comma-separated {@code value} has {@code token}, without case. */
    private static boolean hasToken(String value, String token) {
        if (value == null) {
            return false;
        }
        for (String t : value.split(",")) {
            if (t.strip().equalsIgnoreCase(token)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Appends {@code accept-encoding} to the {@code vary} (its lines joined into one, as Envoy sends it), unless it has
     * it.
     */
    private static void addVary(MultiMap headers) {
        String vary = HeaderValues.joined(headers, "vary");
        if (vary == null) {
            headers.set("vary", "Accept-Encoding");
        } else if (!hasToken(vary, "accept-encoding")) {
            headers.set("vary", vary + ", Accept-Encoding");
        }
    }

    /**
     * Whether the caller's {@code accept-encoding} chooses gzip, as Envoy's {@code chooseEncoding} with one gzip
     * compressor: gzip is offered when the response's media type is one it compresses; each coding's q-value (1
     * without one; a coding whose q-value is no number is left out) ranks it, the first of the highest wins, among
     * gzip, {@code identity} and {@code *} (which picks gzip); q=0 on gzip takes gzip out, even from {@code *}. Codings
     * compare exactly, as Envoy's. Counted only when {@code maybe} (Envoy decides nothing for a response it would not
     * compress anyway).
     */
    private static boolean acceptsGzip(boolean maybe, Compressor config, String acceptEncoding, MultiMap headers,
                                       DownstreamStats.CompressorCounters counters) {
        if (!maybe) {
            return false;
        }
        if (acceptEncoding == null) {
            if (counters != null) {
                counters.noAcceptHeader();
            }
            return false;
        }
        boolean offered = contentTypeAllowed(config, headers);
        boolean any = false;
        String choice = "identity";
        float best = 0;
        for (String token : acceptEncoding.split(",")) {
            if (token.isEmpty()) {
                continue;
            }
            int semi = token.indexOf(';');
            String coding = (semi < 0 ? token : token.substring(0, semi)).strip();
            float q = 1;
            if (semi >= 0) {
                String params = token.substring(semi + 1);
                int eq = params.indexOf('=');
                if (eq >= 0 && params.substring(0, eq).strip().equalsIgnoreCase("q")) {
                    Float parsed = qValue(params.substring(eq + 1).strip());
                    if (parsed == null) {
                        continue;
                    }
                    q = parsed;
                }
            }
            any = true;
            if (q == 0 && coding.equals(GZIP)) {
                offered = false;
            }
            boolean candidate = coding.equals(GZIP) ? offered : coding.equals("identity") || coding.equals("*");
            if (candidate && q > best) {
                choice = coding;
                best = q;
            }
        }
        DownstreamStats.Header stat;
        if (!any || !offered || best == 0) {
            stat = DownstreamStats.Header.NOT_VALID;
        } else if (choice.equals("identity")) {
            stat = DownstreamStats.Header.IDENTITY;
        } else {
            stat = choice.equals("*") ? DownstreamStats.Header.WILDCARD : DownstreamStats.Header.COMPRESSOR_USED;
        }
        if (counters != null) {
            counters.header(stat);
        }
        return stat == DownstreamStats.Header.WILDCARD || stat == DownstreamStats.Header.COMPRESSOR_USED;
    }

    /** A q-value as a decimal number, or null when it is none. */
    private static Float qValue(String s) {
        if (s.isEmpty() || !s.chars().allMatch(c -> c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E'
                || c == '+' || c == '-')) {
            return null;
        }
        try {
            return Float.parseFloat(s);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /**
     * One response body gzipped as it streams (RFC 1952: a header, the deflated bytes, the CRC-32 and length): each
     * {@link #compress} flushes what it took, {@link #finish} ends the stream. Not thread-safe: one response's
     * chunks, in order. {@link #finish} or {@link #release} frees the deflater's native memory.
     */
    public static final class Gzip {
        private static final byte[] HEADER = {0x1f, (byte) 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        /**
         * The gzip streams whose deflater is not ended yet: what {@link #open()} reads. An adder, as every event loop
         * counts in it for each compressed response and only tests read it.
         */
        private static final java.util.concurrent.atomic.LongAdder OPEN = new java.util.concurrent.atomic.LongAdder();
        private final Deflater deflater;
        private final CRC32 crc = new CRC32();
        private final DownstreamStats.CompressorCounters counters;
        private final byte[] out = new byte[8192];
        private boolean headerSent;
        private boolean done;

        Gzip(Compressor config, DownstreamStats.CompressorCounters counters) {
            this.deflater = new Deflater(config.level(), true);
            deflater.setStrategy(switch (config.strategy()) {
                case DEFAULT_STRATEGY -> Deflater.DEFAULT_STRATEGY;
                case FILTERED -> Deflater.FILTERED;
                case HUFFMAN_ONLY -> Deflater.HUFFMAN_ONLY;
            });
            this.counters = counters;
            OPEN.increment();
        }

        /**
         * How many gzip streams hold a deflater's native memory now: each response being compressed, until it ended
         * ({@link #finish}) or was given up ({@link #release}). A number that stays up after the responses ended
         * tells of a path that left a deflater to the garbage collector.
         */
        public static long open() {
            return OPEN.sum();
        }

        /**
         * The gzipped bytes for {@code chunk}, flushed: what a reader can inflate so far. Nothing once the stream
         * ended or was released (a write after the response closed goes nowhere anyway).
         */
        public Buffer compress(Buffer chunk) {
            if (done) {
                return Buffer.buffer();
            }
            byte[] in = chunk.getBytes();
            crc.update(in);
            Buffer result = start();
            deflater.setInput(in);
            drain(result, Deflater.SYNC_FLUSH);
            count(in.length, result.length());
            return result;
        }

        /** The end of the gzip stream: what the deflater still holds, then the trailer. */
        public Buffer finish() {
            Buffer result = start();
            if (done) {
                return result;
            }
            done = true;
            deflater.finish();
            while (!deflater.finished()) {
                int n = deflater.deflate(out);
                result.appendBytes(out, 0, n);
            }
            long length = deflater.getBytesRead();
            deflater.end();
            OPEN.decrement();
            result.appendIntLE((int) crc.getValue()).appendIntLE((int) length);
            count(0, result.length());
            return result;
        }

        /** Frees the deflater of a body that will not end (its stream was reset). */
        public void release() {
            if (!done) {
                done = true;
                deflater.end();
                OPEN.decrement();
            }
        }

        private Buffer start() {
            Buffer b = Buffer.buffer();
            if (!headerSent) {
                headerSent = true;
                b.appendBytes(HEADER);
            }
            return b;
        }

        private void drain(Buffer result, int flush) {
            int n;
            do {
                n = deflater.deflate(out, 0, out.length, flush);
                result.appendBytes(out, 0, n);
            } while (n == out.length || !deflater.needsInput());
        }

        private void count(long in, long outBytes) {
            if (counters != null) {
                counters.bytes(in, outBytes);
            }
        }
    }
}
