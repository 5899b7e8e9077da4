package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.listener.Compressor;
import dev.inmesh.api.config.route.CompressorPerRoute;
import io.envoyproxy.envoy.extensions.compression.gzip.compressor.v3.Gzip;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * Envoy's compressor HTTP filter config ({@code Compressor}), typed or, as Istio's EnvoyFilters often write it, in a
 * {@code TypedStruct}, with the gzip library ({@code Gzip}). Its response direction is read, from
 * {@code response_direction_config} or, without one, the deprecated top-level fields as Envoy reads them then; request
 * compression ({@code request_direction_config}) and the brotli and zstd libraries are refused by name. Of the gzip
 * parameters, {@code compression_level} and {@code compression_strategy} (but {@code RLE} and {@code FIXED}, which
 * {@code java.util.zip.Deflater} has not) are honoured; {@code memory_level}, {@code window_bits} and
 * {@code chunk_size} only tune zlib's memory and buffers (any gzip reader reads the output alike), and are checked and
 * accepted. The {@code enabled} flag's {@code runtime_key} is not read (the runtime feeds routes only): its
 * {@code default_value} decides.
 */
final class CompressorParser {
    static final String NAME = "envoy.filters.http.compressor";
    static final String TYPE = "envoy.extensions.filters.http.compressor.v3.Compressor";
    static final String GZIP_TYPE = "envoy.extensions.compression.gzip.compressor.v3.Gzip";
    static final String PER_ROUTE_TYPE = "envoy.extensions.filters.http.compressor.v3.CompressorPerRoute";

    private CompressorParser() {}

    /**
     * A virtual host's or route's {@code CompressorPerRoute} (typed, or in a TypedStruct), as Envoy's filter reads it:
     * {@code disabled} (which must be true) turns response compression off; {@code overrides} with a
     * {@code response_direction_config} turns it on (whatever the filter's {@code enabled} says) and may set
     * {@code remove_accept_encoding_header}; {@code overrides} without one changes nothing.
     */
    static CompressorPerRoute perRoute(Any any) {
        var p = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.compressor.v3
                .CompressorPerRoute.class, io.envoyproxy.envoy.extensions.filters.http.compressor.v3.CompressorPerRoute
                .newBuilder(), PER_ROUTE_TYPE);
        return switch (p.getOverrideCase()) {
            case DISABLED -> {
                if (!p.getDisabled()) {
                    throw new FieldError("disabled", "false (expected: true, as Envoy requires, or overrides)");
                }
                yield CompressorPerRoute.DISABLED;
            }
            case OVERRIDES -> Fields.at("overrides", () -> {
                var o = p.getOverrides();
                Fields.onlyKnown(o, Set.of("response_direction_config"), Set.of());
                if (!o.hasResponseDirectionConfig()) {
                    return new CompressorPerRoute(null, null);
                }
                var r = o.getResponseDirectionConfig();
                Fields.onlyKnown(r, Set.of("remove_accept_encoding_header"), Set.of());
                return new CompressorPerRoute(true, r.hasRemoveAcceptEncodingHeader()
                        ? r.getRemoveAcceptEncodingHeader().getValue() : null);
            });
            case OVERRIDE_NOT_SET -> throw new FieldError("override", "unset (expected: disabled or overrides)");
        };
    }

    static Compressor parse(Any any) {
        var c = LocalRateLimitParser.typed(any, io.envoyproxy.envoy.extensions.filters.http.compressor.v3.Compressor
                .class, io.envoyproxy.envoy.extensions.filters.http.compressor.v3.Compressor.newBuilder(), TYPE);
        Fields.onlyKnown(c, Set.of("compressor_library", "response_direction_config", "content_length",
                "content_type", "disable_on_etag_header", "remove_accept_encoding_header", "runtime_enabled",
                "request_direction_config"),
                // the compressor Envoy picks when the q-values tie among several filters: Inmesh runs one
                Set.of("choose_first"));
        if (c.hasRequestDirectionConfig()) {
            throw new FieldError("request_direction_config", "request compression is not supported by Inmesh "
                    + "(expected: unset; responses only)");
        }
        if (!c.hasCompressorLibrary()) {
            throw new FieldError("compressor_library", "unset (expected: the gzip library)");
        }
        var library = c.getCompressorLibrary();
        Gzip gzip = Fields.at("compressor_library", () -> gzip(library));
        int level = Fields.at("compressor_library.typed_config", () -> level(gzip));
        Compressor.Strategy strategy = Fields.at("compressor_library.typed_config", () -> strategy(gzip));
        if (c.hasResponseDirectionConfig()) {
            // Envoy then ignores the deprecated top-level fields
            var r = c.getResponseDirectionConfig();
            return Fields.at("response_direction_config", () -> {
                Fields.onlyKnown(r, Set.of("common_config", "disable_on_etag_header", "remove_accept_encoding_header",
                        "uncompressible_response_codes"), Set.of());
                var common = r.getCommonConfig();
                Fields.at("common_config", () -> {
                    Fields.onlyKnown(common, Set.of("enabled", "min_content_length", "content_type"), Set.of());
                    return null;
                });
                Set<Integer> codes = new LinkedHashSet<>();
                for (int i = 0; i < r.getUncompressibleResponseCodesCount(); i++) {
                    int code = r.getUncompressibleResponseCodes(i);
                    if (code < 200 || code >= 600 || !codes.add(code)) {
                        throw new FieldError("uncompressible_response_codes[" + i + "]",
                                Integer.toUnsignedString(code) + " (expected: unique codes from 200 to 599)");
                    }
                }
                boolean enabled = !common.hasEnabled() || Fields.at("common_config.enabled",
                        () -> enabled(common.getEnabled()));
                return Fields.record("", () -> new Compressor(library.getName(), true, enabled,
                        minContentLength(common.hasMinContentLength(), common.getMinContentLength()),
                        Set.copyOf(common.getContentTypeList()), r.getDisableOnEtagHeader(),
                        r.getRemoveAcceptEncodingHeader(), codes, level, strategy));
            });
        }
        boolean enabled = !c.hasRuntimeEnabled() || Fields.at("runtime_enabled", () -> enabled(c.getRuntimeEnabled()));
        return Fields.record("", () -> new Compressor(library.getName(), false, enabled,
                minContentLength(c.hasContentLength(), c.getContentLength()), Set.copyOf(c.getContentTypeList()),
                c.getDisableOnEtagHeader(), c.getRemoveAcceptEncodingHeader(), Set.of(), level, strategy));
    }

    /** {@code min_content_length} (or {@code content_length}): unset or 0 is Envoy's 30. */
    private static long minContentLength(boolean has, com.google.protobuf.UInt32Value v) {
        long n = has ? Integer.toUnsignedLong(v.getValue()) : 0;
        return n > 0 ? n : Compressor.DEFAULT_MIN_CONTENT_LENGTH;
    }

    /**
     * A {@code RuntimeFeatureFlag}: its {@code default_value}, required as Envoy requires it; its
     * {@code runtime_key} is not read (the runtime feeds routes only).
     */
    static boolean enabled(io.envoyproxy.envoy.config.core.v3.RuntimeFeatureFlag f) {
        Fields.onlyKnown(f, Set.of("default_value", "runtime_key"), Set.of());
        if (!f.hasDefaultValue()) {
            throw new FieldError("default_value", "unset (expected: true or false)");
        }
        return f.getDefaultValue().getValue();
    }

    /** The library's config: gzip's, typed or in a TypedStruct; brotli, zstd and any other refused by name. */
    private static Gzip gzip(io.envoyproxy.envoy.config.core.v3.TypedExtensionConfig library) {
        String type = CoreParsers.configType(library.getTypedConfig());
        if (!type.equals(GZIP_TYPE)) {
            throw new FieldError("typed_config", (type.isEmpty() ? "no config type" : type) + " is not supported by "
                    + "Inmesh (expected: " + GZIP_TYPE + "; brotli and zstd are not implemented)");
        }
        Gzip g = Fields.at("typed_config", () -> LocalRateLimitParser.typed(library.getTypedConfig(), Gzip.class,
                Gzip.newBuilder(), GZIP_TYPE));
        Fields.at("typed_config", () -> {
            Fields.onlyKnown(g, Set.of("compression_level", "compression_strategy"),
                    // zlib's memory and buffer sizes: the output is gzip any reader reads alike
                    Set.of("memory_level", "window_bits", "chunk_size"));
            range(g.hasMemoryLevel(), g.getMemoryLevel(), 1, 9, "memory_level");
            range(g.hasWindowBits(), g.getWindowBits(), 9, 15, "window_bits");
            range(g.hasChunkSize(), g.getChunkSize(), 4096, 65536, "chunk_size");
            return null;
        });
        return g;
    }

    private static void range(boolean has, com.google.protobuf.UInt32Value v, long min, long max, String field) {
        long n = Integer.toUnsignedLong(v.getValue());
        if (has && (n < min || n > max)) {
            throw new FieldError(field, n + " (expected: " + min + " to " + max + ")");
        }
    }

    /** {@code compression_level}: DEFAULT_COMPRESSION is zlib's default (-1, level 6), the others their number. */
    private static int level(Gzip g) {
        int n = g.getCompressionLevelValue();
        if (n < 0 || n > 9) {
            throw new FieldError("compression_level", n + " (expected: a defined CompressionLevel)");
        }
        return n == 0 ? -1 : n;
    }

    private static Compressor.Strategy strategy(Gzip g) {
        return switch (g.getCompressionStrategy()) {
            case DEFAULT_STRATEGY -> Compressor.Strategy.DEFAULT_STRATEGY;
            case FILTERED -> Compressor.Strategy.FILTERED;
            case HUFFMAN_ONLY -> Compressor.Strategy.HUFFMAN_ONLY;
            default -> throw new FieldError("compression_strategy", g.getCompressionStrategy() + " is not supported "
                    + "by Inmesh (expected: DEFAULT_STRATEGY, FILTERED or HUFFMAN_ONLY: java.util.zip.Deflater has "
                    + "no RLE or FIXED strategy)");
        };
    }
}
