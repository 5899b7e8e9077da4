package dev.inmesh.runtime.router;

/**
 * What route selection reads of a request. Header names are asked for in lower case; a header sent several times is
 * answered with its values joined by {@code ","}, as Envoy matches them.
 */
public interface RouteRequest {
    /** The Host header ({@code :authority}). */
    String authority();

    /** The path with its query, as sent. */
    String path();

    String method();

    /** {@code http} or {@code https}. */
    String scheme();

    /** The value of a header (name in lower case), or null when absent. */
    String header(String lowerCaseName);

    /** The request's protocol as Envoy names it ({@code HTTP/1.0}, {@code HTTP/1.1}, {@code HTTP/2}); null: unknown. */
    default String protocol() {
        return null;
    }

    /** When the request arrived (Envoy's stream start: an authorizer's {@code request.time}); null: unknown. */
    /**
     * The IP of the stream's downstream remote address as the connection manager found it, or null when the caller's
     * {@code x-forwarded-for} and the connection's peer are to be read as with {@code use_remote_address: false} and
     * no trusted hops.
     */
    default byte[] downstreamRemoteIp() {
        return null;
    }

    /**
     * Whether {@link #downstreamRemoteIp()} is what the connection manager found, a null there then meaning an address
     * that is no IP (a Unix socket's), which Envoy's {@code remote_ip} finds in no range; false when the reader is to
     * find it from the caller's {@code x-forwarded-for} and the connection's peer.
     */
    default boolean foundDownstreamRemoteAddress() {
        return false;
    }

    default java.time.Instant startTime() {
        return null;
    }

    /**
     * The first value of a header (name in lower case), or null when absent: what Envoy reads of a header it does not
     * trust to come once, as a {@code cluster_header} (later values are not read, nor joined to the first).
     */
    default String firstHeader(String lowerCaseName) {
        return header(lowerCaseName);
    }

    /**
     * The JWT authentication filter's dynamic metadata as it is when the route is chosen (the verified payloads by
     * their {@code payload_in_metadata} key), which a route's {@code dynamic_metadata} conditions read. Empty: Inmesh
     * chooses the route before its filters run, as Envoy does on a sidecar, where istiod leaves the JWT filter's
     * {@code clear_route_cache} off (its outbound connection managers, where VirtualService routes are, have no JWT
     * filter at all).
     */
    default java.util.Map<String, Object> jwtMetadata() {
        return java.util.Map.of();
    }

    /**
     * The request's body as a filter that waits for it reads it ({@link RequestBody#hold}); {@link RequestBody#NONE}
     * for a request whose body is not read before it goes on.
     */
    default RequestBody requestBody() {
        return RequestBody.NONE;
    }

    /**
     * A header of a request as route matching reads it, for requests whose headers are a Vert.x map: the
     * pseudo-headers {@code :authority}, {@code :path}, {@code :method} and {@code :scheme} from the request line (as
     * Envoy keeps the Host header as {@code :authority}, and reads {@code host} as another name of it, whatever the
     * protocol), any other header's values joined by {@code ","}; null when absent.
     */
    static String headerOf(RouteRequest req, io.vertx.core.MultiMap headers, String lowerCaseName) {
        if (lowerCaseName.equals("host")) {
            return req.authority();
        }
        if (lowerCaseName.startsWith(":")) {
            return switch (lowerCaseName) {
                case ":authority" -> req.authority();
                case ":path" -> req.path();
                case ":method" -> req.method();
                case ":scheme" -> req.scheme();
                default -> null;
            };
        }
        return HeaderValues.joined(headers, lowerCaseName);
    }

    /**
     * A request as another with another path (query kept): what the filters after Envoy's JWT authentication filter
     * read once it took a token's query parameter out of {@code :path}; the rest, {@code :path} aside, is the other's.
     */
    static RouteRequest withPath(RouteRequest req, String path) {
        return new RouteRequest() {
            @Override
            public String authority() {
                return req.authority();
            }

            @Override
            public String path() {
                return path;
            }

            @Override
            public String method() {
                return req.method();
            }

            @Override
            public String scheme() {
                return req.scheme();
            }

            @Override
            public String header(String lowerCaseName) {
                return lowerCaseName.equals(":path") ? path : req.header(lowerCaseName);
            }

            @Override
            public String firstHeader(String lowerCaseName) {
                return lowerCaseName.equals(":path") ? path : req.firstHeader(lowerCaseName);
            }

            @Override
            public String protocol() {
                return req.protocol();
            }

            @Override
            public java.time.Instant startTime() {
                return req.startTime();
            }

            @Override
            public byte[] downstreamRemoteIp() {
                return req.downstreamRemoteIp();
            }

            @Override
            public boolean foundDownstreamRemoteAddress() {
                return req.foundDownstreamRemoteAddress();
            }

            @Override
            public java.util.Map<String, Object> jwtMetadata() {
                return req.jwtMetadata();
            }

            @Override
            public RequestBody requestBody() {
                return req.requestBody();
            }
        };
    }

    /** As {@link #headerOf}, but only the first value of a header sent several times ({@link #firstHeader}). */
    static String firstOf(RouteRequest req, io.vertx.core.MultiMap headers, String lowerCaseName) {
        return lowerCaseName.startsWith(":") || lowerCaseName.equals("host") ? headerOf(req, headers, lowerCaseName)
                : headers.get(lowerCaseName);
    }
}
