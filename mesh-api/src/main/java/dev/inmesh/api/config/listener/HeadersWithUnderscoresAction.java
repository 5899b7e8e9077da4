package dev.inmesh.api.config.listener;

/**
 * Envoy's {@code common_http_protocol_options.headers_with_underscores_action}: what a connection manager does with a
 * request header whose name has an underscore ({@code x_user} beside {@code x-user}, which some servers read as the
 * same header).
 */
public enum HeadersWithUnderscoresAction {
    /** Envoy's default: the header goes on. */
    ALLOW,
    /**
     * The request is refused before any filter sees it: an HTTP/1 request answered {@code 400} (its connection then
     * closed, as for any request the codec refuses), an HTTP/2 one's stream reset.
     */
    REJECT_REQUEST,
    /** The header is taken off before any filter sees it, and the request goes on. */
    DROP_HEADER
}
