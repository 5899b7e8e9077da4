package dev.inmesh.api.config.listener;

/**
 * The HTTP/1 options of an HTTP connection manager that change which requests it takes (Envoy's
 * {@code http_protocol_options}, {@code Http1ProtocolOptions}).
 *
 * @param acceptHttp10 whether HTTP/1.0 requests are served; when false (Envoy's default) they are answered 426
 * @param defaultHostForHttp10 the Host of an HTTP/1.0 request that has none ("" for none: such a request is answered
 *                             400, as any request without a Host)
 * @param allowAbsoluteUrl whether a request line in absolute form ({@code GET http://host/path}) is taken as its host
 *                         and path (Envoy's default: true); when false, it is answered 404
 * @param allowChunkedLength whether a request with both {@code Content-Length} and {@code Transfer-Encoding: chunked}
 *                           is taken, its {@code Content-Length} dropped and its chunked body read (RFC 9112 6.3);
 *                           when false (Envoy's default) it is answered 400, as a possible request smuggling attempt
 * @param allowCustomMethods whether a request method outside the list Envoy's HTTP/1 codec knows (GET, POST, the
 *                           WebDAV methods, ...) is taken, if it is a token; when false (Envoy's default) such a
 *                           request is answered 400
 * @param enableTrailers whether the trailers of a response go to an HTTP/1.1 caller at the end of its chunked body
 *                       ({@code enable_trailers}); when false (Envoy's default) its HTTP/1 codec drops them
 * @param preserveHeaderCase whether the header names written to an HTTP/1 caller keep the case they came with (a
 *                           {@code header_key_format} with a {@code stateful_formatter}, as Istio's
 *                           {@code preserveHttp1HeaderCase} writes it); when false (Envoy's default) its HTTP/1
 *                           codec writes them in lower case
 */
public record Http1Options(boolean acceptHttp10, String defaultHostForHttp10, boolean allowAbsoluteUrl,
                           boolean allowChunkedLength, boolean allowCustomMethods, boolean enableTrailers,
                           boolean preserveHeaderCase) {
    /**
     * Envoy's defaults: no HTTP/1.0, absolute URLs taken, no Content-Length beside a chunked body, known methods, no
     * trailers, header names in lower case.
     */
    public static final Http1Options DEFAULTS = new Http1Options(false, "", true, false, false, false, false);

    public Http1Options {
        defaultHostForHttp10 = defaultHostForHttp10 == null ? "" : defaultHostForHttp10;
    }

    /** The options with header names written in lower case (Envoy's default). */
    public Http1Options(boolean acceptHttp10, String defaultHostForHttp10, boolean allowAbsoluteUrl,
                        boolean allowChunkedLength, boolean allowCustomMethods, boolean enableTrailers) {
        this(acceptHttp10, defaultHostForHttp10, allowAbsoluteUrl, allowChunkedLength, allowCustomMethods,
                enableTrailers, false);
    }

    /** The options with only the methods Envoy's HTTP/1 codec knows taken, and no trailers (its defaults). */
    public Http1Options(boolean acceptHttp10, String defaultHostForHttp10, boolean allowAbsoluteUrl,
                        boolean allowChunkedLength) {
        this(acceptHttp10, defaultHostForHttp10, allowAbsoluteUrl, allowChunkedLength, false, false);
    }
}
