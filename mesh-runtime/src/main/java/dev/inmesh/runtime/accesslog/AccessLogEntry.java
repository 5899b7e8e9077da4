package dev.inmesh.runtime.accesslog;

import dev.inmesh.runtime.router.Grpc;
import dev.inmesh.runtime.router.HeaderValues;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.TcpStreamInfo;
import io.vertx.core.MultiMap;

/**
 * What an access log line is made from: the finished request's {@link StreamInfo} and its headers as the connection
 * manager left them (Envoy's {@code %REQ(...)%} reads the request headers after the router's changes), or a finished
 * {@code tcp_proxy} connection, whose HTTP values are not known.
 *
 * @param info the request (for a connection: its values, the HTTP ones unknown)
 * @param requestHeaders the request's headers, or null
 * @param responseHeaders the headers of the response sent, or null when none was sent
 * @param responseTrailers the response's trailers, or null
 * @param path the request's {@code :path} as it went upstream (after a rewrite), or null
 * @param scheme the request's {@code :scheme}, or null
 * @param terminationDetails Envoy's connection termination details, or null
 * @param traced whether the request was traced (a sampled span)
 * @param tcp whether this is a {@code tcp_proxy} connection rather than a request
 * @param filterChainName the name of the filter chain that took the downstream connection ({@code null}: none, or
 *     one with no name), Envoy's {@code %FILTER_CHAIN_NAME%}
 * @param localReplyBody the body of the local reply being formatted ({@code %LOCAL_REPLY_BODY%}, see
 *     {@link LocalReply}); null for an access log's entry, where it is not known
 * @param log what the finished request carried for its access logs (its downstream TLS, upstream protocol, request
 *     duration, ...), or null when not known
 */
public record AccessLogEntry(StreamInfo info, MultiMap requestHeaders, MultiMap responseHeaders,
                             MultiMap responseTrailers, String path, String scheme, String terminationDetails,
                             boolean traced, boolean tcp, String filterChainName, String localReplyBody,
                             RequestLog log) {
    public AccessLogEntry {
        filterChainName = filterChainName == null || filterChainName.isEmpty() ? null : filterChainName;
    }

    /**
     * An entry of nothing: every value unknown. What a header value's command operators read where no request is
     * known.
     */
    public static final AccessLogEntry NOTHING = new AccessLogEntry(null, null, null, null, null, null, null, false,
            false, null, null, null);

    /**
     * A request still in flight, read as an access log reads it: by the connection manager's
     * {@code local_reply_config} when it answers the request itself ({@link LocalReply}), and by the command operators
     * of the header values its route adds ({@code dev.inmesh.runtime.router.HeaderMutator}).
     */
    public interface Source {
        /**
         * The request so far, with the {@code status} of its response ({@code 0}: none yet), that response's
         * {@code headers} so far (null: none yet) and a local reply's {@code body} (null: not a local reply).
         */
        AccessLogEntry entry(int status, MultiMap headers, String body);
    }

    /**
     * A health check's request, as Envoy's HTTP and gRPC health checkers' stream info has it when they format its
     * headers ({@code source/extensions/health_checkers/http/health_checker_impl.cc}, {@code onInterval}): started
     * now, over {@code protocol}, its connection's addresses both 127.0.0.1 port 0, the checked host its upstream
     * host ({@code upstreamHost}, {@code ip:port}, its endpoint's {@code metadata}); no request headers, no response.
     */
    public static AccessLogEntry healthCheck(String protocol, String upstreamHost,
                                             dev.inmesh.api.config.core.Metadata metadata) {
        String loopback = "127.0.0.1:0";
        StreamInfo info = new StreamInfo(null, java.time.Instant.now(), null, null, protocol, 0, null, null, 0, 0, -1,
                -1, null, null, null, null, upstreamHost, null, null, loopback, loopback, null, null, 0, null, null,
                null, null, null, false, null, null, null, null, -1, -1, null, false);
        RequestLog log = new RequestLog(null, null, null, null, null, null, false, null, null, -1, null, -1, -1, null,
                metadata, null, null);
        return new AccessLogEntry(info, null, null, null, null, null, null, false, false, null, null, log);
    }

    /** The same entry, of the connection filter chain {@code name} took. */
    public AccessLogEntry withFilterChainName(String name) {
        return new AccessLogEntry(info, requestHeaders, responseHeaders, responseTrailers, path, scheme,
                terminationDetails, traced, tcp, name, localReplyBody, log);
    }

    /** A finished request with the headers it had. */
    public static AccessLogEntry of(StreamInfo info, RequestLog log) {
        return log == null ? new AccessLogEntry(info, null, null, null, null, null, null, false, false, null, null, null)
                : new AccessLogEntry(info, log.requestHeaders(), log.responseHeaders(), log.responseTrailers(),
                        log.path(), log.scheme(), null, log.traced(), false, null, null, log);
    }

    /** The TLS of the request's downstream connection ({@code %DOWNSTREAM_TLS_VERSION%}, ...), or null. */
    TlsDetails tls() {
        return log == null ? null : log.tls();
    }

    /** A finished {@code tcp_proxy} connection. */
    public static AccessLogEntry of(TcpStreamInfo c) {
        StreamInfo s = c.asStreamInfo(false, c.downstreamPeerPrincipal(), c.downstreamLocalPrincipal());
        return new AccessLogEntry(s, null, null, null, null, null, c.connectionTerminationDetails(), false, true,
                null, null, null);
    }

    /**
     * A local reply about to be sent ({@link LocalReply}): the request so far ({@code info}, with the reply's status
     * and no bytes sent), its headers, the reply's headers so far, and its body.
     */
    public static AccessLogEntry localReply(StreamInfo info, MultiMap requestHeaders, MultiMap responseHeaders,
                                            String path, String scheme, String body) {
        return new AccessLogEntry(info, requestHeaders, responseHeaders, null, path, scheme, null, false, false, null,
                body, info.log());
    }

    /**
     * A request header as Envoy's {@code %REQ(name)%} reads it: the pseudo-headers {@code :method}, {@code :path},
     * {@code :authority} and {@code :scheme} from the request (the path and authority as they went upstream, after a
     * route's rewrites), others from its header map (the first line of one sent on several); null when absent.
     */
    String requestHeader(String lowerName) {
        return requestHeader(lowerName, false);
    }

    /**
     * A request header as Envoy's {@code header_filter} and CEL's {@code request.headers[...]} read it: as
     * {@link #requestHeader}, but a header sent on several lines is all their values joined with {@code ,}.
     */
    String requestHeaderJoined(String lowerName) {
        return requestHeader(lowerName, true);
    }

    private String requestHeader(String lowerName, boolean joined) {
        switch (lowerName) {
            case ":method":
                return info.method();
            case ":path":
                return path != null ? path : info.path();
            case ":authority":
            case "host":
                if (log != null && log.rewrittenAuthority() != null) {
                    return log.rewrittenAuthority();
                }
                return info.authority() != null ? info.authority()
                        : requestHeaders == null ? null : requestHeaders.get("host");
            case ":scheme":
                return scheme;
            default:
                if (requestHeaders != null) {
                    return joined ? HeaderValues.joined(requestHeaders, lowerName) : requestHeaders.get(lowerName);
                }
                return switch (lowerName) {
                    // without the map (a request handed over without it): the headers its info keeps
                    case "x-request-id" -> info.requestId();
                    case "user-agent" -> info.userAgent();
                    case "x-forwarded-for" -> info.forwardedFor();
                    default -> null;
                };
        }
    }

    /**
     * A response header as Envoy's {@code %RESP(...)%} reads it ({@code :status} is the response code; one sent on
     * several lines: the first); null when absent or no response was sent.
     */
    String responseHeader(String lowerName) {
        return responseHeader(lowerName, false);
    }

    /**
     * A response header as CEL's {@code response.headers[...]} reads it: as {@link #responseHeader}, but one sent on
     * several lines is all their values joined with {@code ,}.
     */
    String responseHeaderJoined(String lowerName) {
        return responseHeader(lowerName, true);
    }

    private String responseHeader(String lowerName, boolean joined) {
        if (lowerName.equals(":status")) {
            return info.responseCode() == 0 || tcp ? null : Integer.toString(info.responseCode());
        }
        if (responseHeaders == null) {
            return lowerName.equals("x-envoy-upstream-service-time") && info.upstreamServiceTimeMillis() >= 0
                    ? Long.toString(info.upstreamServiceTimeMillis()) : null;
        }
        return joined ? HeaderValues.joined(responseHeaders, lowerName) : responseHeaders.get(lowerName);
    }

    /**
     * The gRPC status as Envoy's {@code grpc_status_filter} and CEL's {@code response.grpc_status} read it
     * ({@code Grpc::Common::getGrpcStatus(trailers, headers, info)}), whether or not the request was gRPC: the
     * response's {@code grpc-status} (its trailers', else its headers'; one that is no known status is
     * {@link Grpc#INVALID_STATUS}), else the one its HTTP status maps to; null when no response was sent.
     */
    Integer grpcStatus() {
        Integer n = CommandFormat.grpcNumber(info);
        if (n == null && responseTrailers != null) {
            n = Grpc.parseStatus(responseTrailers.get("grpc-status"));
        }
        if (n == null && responseHeaders != null) {
            n = Grpc.parseStatus(responseHeaders.get("grpc-status"));
        }
        return n != null || info.responseCode() == 0 ? n : Grpc.fromHttp(info.responseCode());
    }

    /** A response trailer as Envoy's {@code %TRAILER(...)%} reads it: its first value; null when absent. */
    String responseTrailer(String lowerName) {
        return responseTrailers == null ? null : responseTrailers.get(lowerName);
    }

    /** A response trailer as CEL reads it: the values of one sent several times joined with {@code ,}, or null. */
    String responseTrailerJoined(String lowerName) {
        return responseTrailers == null ? null : HeaderValues.joined(responseTrailers, lowerName);
    }
}
