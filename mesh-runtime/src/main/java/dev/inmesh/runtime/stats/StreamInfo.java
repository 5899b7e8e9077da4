package dev.inmesh.runtime.stats;

import java.time.Instant;
import java.util.Set;

/**
 * Everything known about one finished HTTP request, from which metrics and the access log are written. The router
 * (in-JVM and standalone alike) fills it; values that are not known are null (or -1 for numbers).
 *
 * @param direction INBOUND (reporter {@code destination}) or OUTBOUND (reporter {@code source})
 * @param startTime when the request arrived
 * @param method the request method
 * @param path the original path (before rewrites)
 * @param protocol {@code HTTP/1.0}, {@code HTTP/1.1} or {@code HTTP/2}
 * @param responseCode the status sent downstream, 0 when none was sent
 * @param responseFlags Envoy's response flags, printed in the set's order (an EnumSet's: the constants' order)
 * @param responseCodeDetails Envoy's response code details, such as {@code via_upstream} or {@code route_not_found}
 * @param bytesReceived request body bytes
 * @param bytesSent response body bytes
 * @param durationMillis total time until the last byte was sent
 * @param upstreamServiceTimeMillis the {@code x-envoy-upstream-service-time} value: from the whole request to the
 *     headers of the response passed on, earlier attempts and back-offs included; -1 for a local reply
 * @param requestId {@code x-request-id}
 * @param authority the Host header
 * @param userAgent the User-Agent header
 * @param forwardedFor the X-Forwarded-For header
 * @param upstreamHost the address of the last upstream host tried, or null
 * @param upstreamCluster the cluster name, or null
 * @param upstreamLocalAddress the local address of the upstream connection, or null
 * @param downstreamLocalAddress the address the request arrived at
 * @param downstreamRemoteAddress the peer's address
 * @param requestedServerName the TLS SNI, or null
 * @param routeName the name of the route that matched, or null
 * @param attemptCount upstream attempts made (1 without retries)
 * @param peer the workload at the other end, or {@link WorkloadInfo#UNKNOWN}
 * @param destinationService the destination service's host name, such as
 *     {@code reviews.default.svc.cluster.local}, or null
 * @param destinationServiceName the service's short name, or null
 * @param destinationServiceNamespace the service's namespace, or null
 * @param grpcStatus for a gRPC request, the status it ended with: the {@code grpc-status} of the response trailers,
 *     else of its headers, else the one its HTTP status maps to (empty when no response was sent); null for other
 *     requests
 * @param downstreamMutualTls whether the request came over TLS the proxy terminated, from a client whose certificate
 *     it verified (the attribute {@code connection.mtls}; Istio's {@code connection_security_policy} reads the
 *     principals instead)
 * @param downstreamPeerPrincipal the first URI SAN of the certificate the client presented in TLS the proxy
 *     terminated (Istio's {@code source_principal} inbound), or null
 * @param downstreamLocalPrincipal the first URI SAN of the proxy's own certificate in that TLS (Istio's
 *     {@code destination_principal} inbound), or null
 * @param upstreamTransportFailureReason why the final attempt's upstream connect failed: the socket's error or its TLS
 *     handshake's ({@link dev.inmesh.runtime.upstream.ConnectFailure#transportFailureReason()}, Envoy's
 *     {@code %UPSTREAM_TRANSPORT_FAILURE_REASON%}), or null
 * @param upstreamPeerPrincipal the first URI SAN of the server's certificate in the upstream TLS the proxy
 *     originated for the final attempt (Istio's {@code destination_principal} outbound), or null
 * @param requestMessages for a gRPC request whose connection manager's gRPC statistics filter emits its filter state,
 *     the gRPC messages the caller sent (Istio's {@code istio_request_messages_total}); -1 when not counted
 * @param responseMessages likewise, the gRPC messages sent to the caller (Istio's
 *     {@code istio_response_messages_total}); -1 when not counted
 * @param upstreamLocalPrincipal the first URI SAN of the certificate the proxy presented in that upstream TLS (Istio's
 *     {@code source_principal} outbound), or null
 * @param hostHeaderFallback whether Istio's stats label the request by its Host when its cluster names no service
 *     (false where the connection manager's {@code istio.stats} filter sets {@code disable_host_header_fallback})
 * @param log the access logs of the connection manager the request came through, with the request's and response's
 *     headers for them; null when not known
 * @param upstreamClusterObservabilityName the cluster's observability name, its {@code alt_stat_name} when it has
 *     one (Envoy's {@code %UPSTREAM_CLUSTER%}); {@link #upstreamCluster} when null
 * @param requestHeadBytes the request's head as it arrived, in bytes as HTTP/1.1 writes it ({@link HeadSize#request});
 *     with {@link #bytesReceived}, Istio's {@code istio_request_bytes}; -1 when not known
 * @param responseHeadBytes the head and trailers of the response sent to the caller, in bytes as HTTP/1.1 writes them
 *     ({@link HeadSize#response}), 0 when none was sent; with {@link #bytesSent}, Istio's
 *     {@code istio_response_bytes}; -1 when not known
 * @param statsOverrides the metric overrides of the connection manager's Istio stats filter, compiled with its
 *     snapshot: what Istio's metrics drop and which labels they are recorded without ({@link StatsOverrides#NONE}
 *     when null; {@link StatsOverrides#OFF}: none recorded, the connection manager has no such filter)
 * @param downstreamDirectRemoteAddress the connection's physical peer, Envoy's {@code directRemoteAddress}: the
 *     balancer when a PROXY header made {@link #downstreamRemoteAddress} its source; that address when null
 * @param downstreamDirectLocalAddress the address the connection physically arrived at, Envoy's
 *     {@code directLocalAddress}: the listener's socket (such as {@code :15006}) when the original destination or a
 *     PROXY header made {@link #downstreamLocalAddress} another; that address when null
 */
public record StreamInfo(
        Direction direction,
        Instant startTime,
        String method,
        String path,
        String protocol,
        int responseCode,
        Set<ResponseFlag> responseFlags,
        String responseCodeDetails,
        long bytesReceived,
        long bytesSent,
        long durationMillis,
        long upstreamServiceTimeMillis,
        String requestId,
        String authority,
        String userAgent,
        String forwardedFor,
        String upstreamHost,
        String upstreamCluster,
        String upstreamLocalAddress,
        String downstreamLocalAddress,
        String downstreamRemoteAddress,
        String requestedServerName,
        String routeName,
        int attemptCount,
        WorkloadInfo peer,
        String destinationService,
        String destinationServiceName,
        String destinationServiceNamespace,
        String grpcStatus,
        boolean downstreamMutualTls,
        String downstreamPeerPrincipal,
        String downstreamLocalPrincipal,
        String upstreamTransportFailureReason,
        String upstreamPeerPrincipal,
        long requestMessages,
        long responseMessages,
        String upstreamLocalPrincipal,
        boolean hostHeaderFallback,
        dev.inmesh.runtime.accesslog.RequestLog log,
        String upstreamClusterObservabilityName,
        long requestHeadBytes,
        long responseHeadBytes,
        StatsOverrides statsOverrides,
        String downstreamDirectRemoteAddress,
        String downstreamDirectLocalAddress) {

    /** A request whose connection manager's Istio stats filter overrides no metric. */
    public StreamInfo(Direction direction, Instant startTime, String method, String path, String protocol,
                      int responseCode, Set<ResponseFlag> responseFlags, String responseCodeDetails, long bytesReceived,
                      long bytesSent, long durationMillis, long upstreamServiceTimeMillis, String requestId,
                      String authority, String userAgent, String forwardedFor, String upstreamHost,
                      String upstreamCluster, String upstreamLocalAddress, String downstreamLocalAddress,
                      String downstreamRemoteAddress, String requestedServerName, String routeName, int attemptCount,
                      WorkloadInfo peer, String destinationService, String destinationServiceName,
                      String destinationServiceNamespace, String grpcStatus, boolean downstreamMutualTls,
                      String downstreamPeerPrincipal, String downstreamLocalPrincipal,
                      String upstreamTransportFailureReason, String upstreamPeerPrincipal, long requestMessages,
                      long responseMessages, String upstreamLocalPrincipal, boolean hostHeaderFallback,
                      dev.inmesh.runtime.accesslog.RequestLog log, String upstreamClusterObservabilityName,
                      long requestHeadBytes, long responseHeadBytes) {
        this(direction, startTime, method, path, protocol, responseCode, responseFlags, responseCodeDetails,
                bytesReceived, bytesSent, durationMillis, upstreamServiceTimeMillis, requestId, authority, userAgent,
                forwardedFor, upstreamHost, upstreamCluster, upstreamLocalAddress, downstreamLocalAddress,
                downstreamRemoteAddress, requestedServerName, routeName, attemptCount, peer, destinationService,
                destinationServiceName, destinationServiceNamespace, grpcStatus, downstreamMutualTls,
                downstreamPeerPrincipal, downstreamLocalPrincipal, upstreamTransportFailureReason,
                upstreamPeerPrincipal, requestMessages, responseMessages, upstreamLocalPrincipal, hostHeaderFallback,
                log, upstreamClusterObservabilityName, requestHeadBytes, responseHeadBytes, null, null, null);
    }

    /**
     * A request whose connection manager's access logs and heads' sizes are not known, its cluster observed by its
     * name.
     */
    public StreamInfo(Direction direction, Instant startTime, String method, String path, String protocol,
                      int responseCode, Set<ResponseFlag> responseFlags, String responseCodeDetails, long bytesReceived,
                      long bytesSent, long durationMillis, long upstreamServiceTimeMillis, String requestId,
                      String authority, String userAgent, String forwardedFor, String upstreamHost,
                      String upstreamCluster, String upstreamLocalAddress, String downstreamLocalAddress,
                      String downstreamRemoteAddress, String requestedServerName, String routeName, int attemptCount,
                      WorkloadInfo peer, String destinationService, String destinationServiceName,
                      String destinationServiceNamespace, String grpcStatus, boolean downstreamMutualTls,
                      String downstreamPeerPrincipal, String downstreamLocalPrincipal,
                      String upstreamTransportFailureReason, String upstreamPeerPrincipal, long requestMessages,
                      long responseMessages, String upstreamLocalPrincipal, boolean hostHeaderFallback) {
        this(direction, startTime, method, path, protocol, responseCode, responseFlags, responseCodeDetails,
                bytesReceived, bytesSent, durationMillis, upstreamServiceTimeMillis, requestId, authority, userAgent,
                forwardedFor, upstreamHost, upstreamCluster, upstreamLocalAddress, downstreamLocalAddress,
                downstreamRemoteAddress, requestedServerName, routeName, attemptCount, peer, destinationService,
                destinationServiceName, destinationServiceNamespace, grpcStatus, downstreamMutualTls,
                downstreamPeerPrincipal, downstreamLocalPrincipal, upstreamTransportFailureReason,
                upstreamPeerPrincipal, requestMessages, responseMessages, upstreamLocalPrincipal, hostHeaderFallback,
                null, null, -1, -1);
    }

    /** Which side of the workload the request crossed. */
    public enum Direction {
        INBOUND("destination"),
        OUTBOUND("source");

        private final String reporter;

        Direction(String reporter) {
            this.reporter = reporter;
        }

        /** Istio's {@code reporter} label value. */
        public String reporter() {
            return reporter;
        }
    }

    public StreamInfo {
        responseFlags = ResponseFlag.copyInOrder(responseFlags);
        peer = peer == null ? WorkloadInfo.UNKNOWN : peer;
        upstreamClusterObservabilityName = upstreamClusterObservabilityName == null ? upstreamCluster
                : upstreamClusterObservabilityName;
        statsOverrides = statsOverrides == null ? StatsOverrides.NONE : statsOverrides;
        downstreamDirectRemoteAddress = downstreamDirectRemoteAddress == null ? downstreamRemoteAddress
                : downstreamDirectRemoteAddress;
        downstreamDirectLocalAddress = downstreamDirectLocalAddress == null ? downstreamLocalAddress
                : downstreamDirectLocalAddress;
    }

    /** A request that did not come over mutual TLS. */
    public StreamInfo(Direction direction, Instant startTime, String method, String path, String protocol,
                      int responseCode, Set<ResponseFlag> responseFlags, String responseCodeDetails, long bytesReceived,
                      long bytesSent, long durationMillis, long upstreamServiceTimeMillis, String requestId,
                      String authority, String userAgent, String forwardedFor, String upstreamHost,
                      String upstreamCluster, String upstreamLocalAddress, String downstreamLocalAddress,
                      String downstreamRemoteAddress, String requestedServerName, String routeName, int attemptCount,
                      WorkloadInfo peer, String destinationService, String destinationServiceName,
                      String destinationServiceNamespace, String grpcStatus) {
        this(direction, startTime, method, path, protocol, responseCode, responseFlags, responseCodeDetails,
                bytesReceived, bytesSent, durationMillis, upstreamServiceTimeMillis, requestId, authority, userAgent,
                forwardedFor, upstreamHost, upstreamCluster, upstreamLocalAddress, downstreamLocalAddress,
                downstreamRemoteAddress, requestedServerName, routeName, attemptCount, peer, destinationService,
                destinationServiceName, destinationServiceNamespace, grpcStatus, false, null, null, null, null, -1, -1,
                null, true);
    }
}
