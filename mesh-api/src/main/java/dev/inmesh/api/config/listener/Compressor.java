package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import java.util.Locale;
import java.util.Set;

/**
 * The config of Envoy's compressor HTTP filter ({@code envoy.filters.http.compressor}, {@code Compressor}) with the
 * gzip library ({@code envoy.compression.gzip.compressor}, {@code Gzip}), which compresses responses for callers whose
 * {@code accept-encoding} takes gzip. Its response direction only: request compression is not implemented.
 *
 * @param libraryName the {@code compressor_library}'s name, which Envoy's statistics carry
 *     ({@code <stat_prefix>.compressor.<name>.gzip.*})
 * @param responseDirection whether the config said {@code response_direction_config} (its statistics then say
 *     {@code .response.} after {@code gzip.}, as Envoy's) rather than the deprecated top-level fields
 * @param enabled the {@code enabled} flag's default value: false makes the filter pass everything through
 * @param minContentLength the least {@code content-length} compressed (Envoy's default 30)
 * @param contentTypes the media types compressed, lower case, without parameters (Envoy's default list when the
 *     config has none)
 * @param disableOnEtagHeader whether a response with an {@code etag} is never compressed; otherwise a strong one is
 *     removed from a compressed response, a weak one kept
 * @param removeAcceptEncodingHeader whether the request's {@code accept-encoding} is taken off before it goes on
 * @param uncompressibleResponseCodes statuses never compressed
 * @param level zlib's compression level, 1 to 9, or -1 for zlib's default (6)
 * @param strategy zlib's compression strategy
 */
public record Compressor(String libraryName, boolean responseDirection, boolean enabled, long minContentLength,
                         Set<String> contentTypes, boolean disableOnEtagHeader, boolean removeAcceptEncodingHeader,
                         Set<Integer> uncompressibleResponseCodes, int level, Strategy strategy) {
    /** Envoy's default {@code min_content_length}. */
    public static final long DEFAULT_MIN_CONTENT_LENGTH = 30;

    /** The media types Envoy compresses when the config lists none ({@code compressor_filter.cc}). */
    public static final Set<String> DEFAULT_CONTENT_TYPES = Set.of("text/html", "text/plain", "text/css",
            "application/javascript", "application/x-javascript", "text/javascript", "text/x-javascript",
            "text/ecmascript", "text/js", "text/jscript", "text/x-js", "application/ecmascript", "application/x-json",
            "application/xml", "application/json", "image/svg+xml", "text/xml", "application/xhtml+xml",
            "application/grpc-web", "application/grpc-web+proto");

    /** The zlib strategies {@code java.util.zip.Deflater} has. */
    public enum Strategy { DEFAULT_STRATEGY, FILTERED, HUFFMAN_ONLY }

    public Compressor {
        libraryName = libraryName == null ? "" : libraryName;
        Checks.check(minContentLength >= 0, "min_content_length", minContentLength, ">= 0");
        contentTypes = contentTypes == null || contentTypes.isEmpty() ? DEFAULT_CONTENT_TYPES
                : Set.copyOf(contentTypes.stream().map(t -> t.strip().toLowerCase(Locale.ROOT)).toList());
        uncompressibleResponseCodes = uncompressibleResponseCodes == null ? Set.of()
                : Set.copyOf(uncompressibleResponseCodes);
        Checks.check(level == -1 || level >= 1 && level <= 9, "compression_level", level, "-1, or 1 to 9");
        strategy = strategy == null ? Strategy.DEFAULT_STRATEGY : strategy;
    }

    /** Envoy's defaults for a gzip library named {@code libraryName}. */
    public static Compressor defaults(String libraryName) {
        return new Compressor(libraryName, false, true, DEFAULT_MIN_CONTENT_LENGTH,
                DEFAULT_CONTENT_TYPES, false, false, Set.of(), -1, Strategy.DEFAULT_STRATEGY);
    }
}
