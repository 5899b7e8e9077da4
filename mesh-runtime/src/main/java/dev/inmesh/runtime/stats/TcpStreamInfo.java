package dev.inmesh.runtime.stats;

import java.time.Instant;
import java.util.Set;

/**
 * Everything known about one finished TCP connection of a {@code tcp_proxy} (relayed, or closed without an upstream),
 * from which its access log line is written. It is not an HTTP request: nothing that counts requests takes it. Values
 * that are not known are null.
 *
 * @param startTime when the downstream connection was accepted
 * @param responseFlags Envoy's flags for the connection, such as UH, UO, UF, URX or NC, in the order they were set
 * @param bytesReceived bytes read from the downstream
 * @param bytesSent bytes relayed towards the downstream
 * @param durationMillis from the accept until the connection ended
 * @param upstreamHost the address of the last upstream host tried, or null
 * @param upstreamCluster the cluster name, or null when no such cluster exists
 * @param upstreamLocalAddress the local address of the upstream connection, or null when none was made
 * @param downstreamLocalAddress the address the connection was meant for (the original destination when restored)
 * @param downstreamRemoteAddress the peer's address
 * @param requestedServerName the TLS SNI, or null
 * @param upstreamTransportFailureReason why the last upstream connect failed, when the connection got no upstream
 *     ({@link dev.inmesh.runtime.upstream.ConnectFailure#transportFailureReason()}), or null
 * @param connectionTerminationDetails why the proxy closed the connection at layer 4, Envoy's
 *     {@code %CONNECTION_TERMINATION_DETAILS%}: {@code rbac_access_denied_matched_policy[NAME|none]} for one a network
 *     RBAC filter denied; null otherwise
 * @param attemptCount the upstream connects tcp_proxy made (Envoy's {@code %UPSTREAM_REQUEST_ATTEMPT_COUNT%}): 0 when
 *     it made none (no cluster, no host, a full breaker)
 * @param upstreamClusterObservabilityName the cluster's observability name, its {@code alt_stat_name} when it has
 *     one (Envoy's {@code %UPSTREAM_CLUSTER%}); {@link #upstreamCluster} when null
 * @param downstreamDirectRemoteAddress the connection's physical peer
 *     ({@link StreamInfo#downstreamDirectRemoteAddress}); {@link #downstreamRemoteAddress} when null
 * @param downstreamDirectLocalAddress the address the connection physically arrived at
 *     ({@link StreamInfo#downstreamDirectLocalAddress}); {@link #downstreamLocalAddress} when null
 * @param downstreamPeerPrincipal the first URI SAN of the certificate the client presented in the TLS the chain
 *     terminated, or null (Envoy's {@code %DOWNSTREAM_PEER_URI_SAN%})
 * @param downstreamLocalPrincipal the first URI SAN of the certificate the proxy presented in that TLS, whether or not
 *     the client presented one, or null (Envoy's {@code %DOWNSTREAM_LOCAL_URI_SAN%})
 * @param upstreamPeerPrincipal the first URI SAN of the upstream's certificate in the TLS the relay originated, or null
 * @param upstreamLocalPrincipal the first URI SAN of the certificate the proxy presented in it, or null
 * @param responseCodeDetails Envoy's {@code %RESPONSE_CODE_DETAILS%} of the connection: {@code filter_chain_not_found}
 *     for one no filter chain of its listener took, as Envoy's listener sets it; null otherwise
 */
public record TcpStreamInfo(
        Instant startTime,
        Set<ResponseFlag> responseFlags,
        long bytesReceived,
        long bytesSent,
        long durationMillis,
        String upstreamHost,
        String upstreamCluster,
        String upstreamLocalAddress,
        String downstreamLocalAddress,
        String downstreamRemoteAddress,
        String requestedServerName,
        String upstreamTransportFailureReason,
        String connectionTerminationDetails,
        int attemptCount,
        String upstreamClusterObservabilityName,
        String downstreamDirectRemoteAddress,
        String downstreamDirectLocalAddress,
        String downstreamPeerPrincipal,
        String downstreamLocalPrincipal,
        String upstreamPeerPrincipal,
        String upstreamLocalPrincipal,
        String responseCodeDetails) {

    public TcpStreamInfo {
        responseFlags = ResponseFlag.copyInOrder(responseFlags);
        upstreamClusterObservabilityName = upstreamClusterObservabilityName == null ? upstreamCluster
                : upstreamClusterObservabilityName;
        downstreamDirectRemoteAddress = downstreamDirectRemoteAddress == null ? downstreamRemoteAddress
                : downstreamDirectRemoteAddress;
        downstreamDirectLocalAddress = downstreamDirectLocalAddress == null ? downstreamLocalAddress
                : downstreamDirectLocalAddress;
    }

    /** A connection without response code details. */
    public TcpStreamInfo(Instant startTime, Set<ResponseFlag> responseFlags, long bytesReceived, long bytesSent,
                         long durationMillis, String upstreamHost, String upstreamCluster, String upstreamLocalAddress,
                         String downstreamLocalAddress, String downstreamRemoteAddress, String requestedServerName,
                         String upstreamTransportFailureReason, String connectionTerminationDetails, int attemptCount,
                         String upstreamClusterObservabilityName, String downstreamDirectRemoteAddress,
                         String downstreamDirectLocalAddress, String downstreamPeerPrincipal,
                         String downstreamLocalPrincipal, String upstreamPeerPrincipal, String upstreamLocalPrincipal) {
        this(startTime, responseFlags, bytesReceived, bytesSent, durationMillis, upstreamHost, upstreamCluster,
                upstreamLocalAddress, downstreamLocalAddress, downstreamRemoteAddress, requestedServerName,
                upstreamTransportFailureReason, connectionTerminationDetails, attemptCount,
                upstreamClusterObservabilityName, downstreamDirectRemoteAddress, downstreamDirectLocalAddress,
                downstreamPeerPrincipal, downstreamLocalPrincipal, upstreamPeerPrincipal, upstreamLocalPrincipal, null);
    }

    /**
     * The connection's values in a request's form, its HTTP ones unknown (no method, headers nor response code): what
     * the access log and Istio's stats dimensions read from a connection, as Envoy's attributes of a connection.
     *
     * @param mutualTls whether the connection is TLS the proxy terminated from a client whose certificate it verified
     * @param peerPrincipal the first URI SAN of the client's certificate in that TLS, or null
     * @param localPrincipal the first URI SAN of the proxy's own certificate in it, or null
     */
    public StreamInfo asStreamInfo(boolean mutualTls, String peerPrincipal, String localPrincipal) {
        return new StreamInfo(null, startTime, null, null, null, 0, responseFlags, responseCodeDetails, bytesReceived,
                bytesSent, durationMillis, -1, null, null, null, null, upstreamHost, upstreamCluster, upstreamLocalAddress,
                downstreamLocalAddress, downstreamRemoteAddress, requestedServerName, null, attemptCount, null, null,
                null, null, null, mutualTls, peerPrincipal, localPrincipal, upstreamTransportFailureReason,
                upstreamPeerPrincipal, -1, -1, upstreamLocalPrincipal, true, null, upstreamClusterObservabilityName, -1,
                -1, null, downstreamDirectRemoteAddress, downstreamDirectLocalAddress);
    }

    /** The same connection with {@code flags} and no duration: as it is while it lasts. */
    public TcpStreamInfo whileOpen(Set<ResponseFlag> flags) {
        return new TcpStreamInfo(startTime, flags, bytesReceived, bytesSent, -1, upstreamHost, upstreamCluster,
                upstreamLocalAddress, downstreamLocalAddress, downstreamRemoteAddress, requestedServerName,
                upstreamTransportFailureReason, connectionTerminationDetails, attemptCount,
                upstreamClusterObservabilityName, downstreamDirectRemoteAddress, downstreamDirectLocalAddress,
                downstreamPeerPrincipal, downstreamLocalPrincipal, upstreamPeerPrincipal, upstreamLocalPrincipal,
                responseCodeDetails);
    }

    /** A connection whose upstream connect attempts are not counted, its cluster observed by its name. */
    public TcpStreamInfo(Instant startTime, Set<ResponseFlag> responseFlags, long bytesReceived, long bytesSent,
                         long durationMillis, String upstreamHost, String upstreamCluster, String upstreamLocalAddress,
                         String downstreamLocalAddress, String downstreamRemoteAddress, String requestedServerName,
                         String upstreamTransportFailureReason, String connectionTerminationDetails) {
        this(startTime, responseFlags, bytesReceived, bytesSent, durationMillis, upstreamHost, upstreamCluster,
                upstreamLocalAddress, downstreamLocalAddress, downstreamRemoteAddress, requestedServerName,
                upstreamTransportFailureReason, connectionTerminationDetails, 0, null, null, null, null, null, null,
                null);
    }

    /** A connection the proxy did not close for a layer 4 reason of its own. */
    public TcpStreamInfo(Instant startTime, Set<ResponseFlag> responseFlags, long bytesReceived, long bytesSent,
                         long durationMillis, String upstreamHost, String upstreamCluster, String upstreamLocalAddress,
                         String downstreamLocalAddress, String downstreamRemoteAddress, String requestedServerName,
                         String upstreamTransportFailureReason) {
        this(startTime, responseFlags, bytesReceived, bytesSent, durationMillis, upstreamHost, upstreamCluster,
                upstreamLocalAddress, downstreamLocalAddress, downstreamRemoteAddress, requestedServerName,
                upstreamTransportFailureReason, null);
    }

    /** A connection without a failed upstream TLS handshake. */
    public TcpStreamInfo(Instant startTime, Set<ResponseFlag> responseFlags, long bytesReceived, long bytesSent,
                         long durationMillis, String upstreamHost, String upstreamCluster, String upstreamLocalAddress,
                         String downstreamLocalAddress, String downstreamRemoteAddress, String requestedServerName) {
        this(startTime, responseFlags, bytesReceived, bytesSent, durationMillis, upstreamHost, upstreamCluster,
                upstreamLocalAddress, downstreamLocalAddress, downstreamRemoteAddress, requestedServerName, null, null);
    }
}
