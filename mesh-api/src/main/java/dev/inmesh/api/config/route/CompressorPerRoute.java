package dev.inmesh.api.config.route;

/**
 * A virtual host's or route's override of a compressor filter ({@code typed_per_filter_config}
 * {@code CompressorPerRoute}); the most specific one (the route's, else its virtual host's) replaces the filter's own
 * settings where it sets them.
 *
 * @param enabled whether responses are compressed ({@code disabled: true}: false; {@code overrides} with a
 *     {@code response_direction_config}: true, as Envoy enables response compression then), or null to keep the
 *     filter's own
 * @param removeAcceptEncodingHeader {@code overrides.response_direction_config.remove_accept_encoding_header}, or
 *     null to keep the filter's own
 */
public record CompressorPerRoute(Boolean enabled, Boolean removeAcceptEncodingHeader) {
    /** An override that turns response compression off. */
    public static final CompressorPerRoute DISABLED = new CompressorPerRoute(false, null);
}
