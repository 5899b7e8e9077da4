package dev.inmesh.runtime.accesslog;

import io.vertx.core.MultiMap;

/**
 * What a finished request carries for the access logs of the connection manager it came through: those logs, and
 * the request's and response's headers as they were when it ended (references to the maps, not copies).
 *
 * @param logs the connection manager's access logs ({@link AccessLogs#NONE} when it names none)
 * @param requestHeaders the request's headers, after the router's changes
 * @param responseHeaders the headers of the response sent to the caller, or null when none was sent
 * @param responseTrailers the response's trailers, or null
 * @param path the {@code :path} that went upstream (after a rewrite), or null
 * @param scheme the request's scheme, or null
 * @param traced whether a sampled span traced the request
 * @param tls the TLS the request's downstream connection came over, or null for none
 * @param upstreamProtocol the protocol of the upstream response passed on ({@code HTTP/1.1}, {@code HTTP/2}), Envoy's
 *     {@code %UPSTREAM_PROTOCOL%}; null for none
 * @param requestDurationMillis from the request's start to its last byte received, Envoy's
 *     {@code %REQUEST_DURATION%}; -1 when it did not end or is not known
 * @param upstreamHostName the last upstream host's name (its endpoint's {@code hostname}, a DNS cluster's name), else
 *     its address, Envoy's {@code %UPSTREAM_HOST_NAME%}; null for no host
 * @param responseDurationMillis from the request's start to the upstream response's headers (its first byte
 *     received), Envoy's {@code %RESPONSE_DURATION%}; -1 when no upstream response was passed on
 * @param responseTxDurationMillis from those headers to the response's last byte sent downstream, Envoy's
 *     {@code %RESPONSE_TX_DURATION%}; -1 when not known
 * @param rewrittenAuthority the {@code :authority} that went upstream when the route rewrote it, else null: as
 *     Envoy's router changes the request's own headers, {@code %REQ(:AUTHORITY)%} then reads the rewritten host
 * @param upstreamMetadata the endpoint metadata of the last upstream host, Envoy's {@code %UPSTREAM_METADATA(...)%};
 *     null for no host
 * @param clusterMetadata the metadata of the route's cluster, Envoy's {@code %CLUSTER_METADATA(...)%}; null for none
 * @param span the request's span, sampled or not (Envoy's {@code %TRACE_ID%} is its trace id), or null when the
 *     request was not traced
 */
public record RequestLog(AccessLogs logs, MultiMap requestHeaders, MultiMap responseHeaders,
                         MultiMap responseTrailers, String path, String scheme, boolean traced, TlsDetails tls,
                         String upstreamProtocol, long requestDurationMillis, String upstreamHostName,
                         long responseDurationMillis, long responseTxDurationMillis, String rewrittenAuthority,
                         dev.inmesh.api.config.core.Metadata upstreamMetadata,
                         dev.inmesh.api.config.core.Metadata clusterMetadata,
                         dev.inmesh.runtime.tracing.ActiveSpan span) {
    public RequestLog {
        logs = logs == null ? AccessLogs.NONE : logs;
    }

    /** A request whose downstream connection's TLS, upstream protocol and request duration are not known. */
    public RequestLog(AccessLogs logs, MultiMap requestHeaders, MultiMap responseHeaders, MultiMap responseTrailers,
                      String path, String scheme, boolean traced) {
        this(logs, requestHeaders, responseHeaders, responseTrailers, path, scheme, traced, null, null, -1, null, -1,
                -1, null, null, null, null);
    }
}
