package dev.inmesh.runtime.stats;

/**
 * Who one proxied TCP connection is between, for Istio's TCP metrics: the direction it crossed the workload in, the
 * workload at the other end, and the destination service when known.
 *
 * @param direction INBOUND (reporter {@code destination}) or OUTBOUND (reporter {@code source})
 * @param peer the workload at the other end, or {@link WorkloadInfo#UNKNOWN}
 * @param destinationService the destination service's host name, or null
 * @param destinationServiceName the service's short name, or null
 * @param destinationServiceNamespace the service's namespace, or null
 * @param downstreamMutualTls whether the connection is TLS the proxy terminated, from a client whose certificate it
 *     verified (the attribute {@code connection.mtls}; Istio's {@code connection_security_policy} reads the
 *     principals instead)
 * @param downstreamPeerPrincipal the first URI SAN of the client's certificate in that TLS, or null
 * @param downstreamLocalPrincipal the first URI SAN of the proxy's own certificate in it, or null
 * @param upstreamPeerPrincipal the first URI SAN of the server's certificate in the upstream TLS the proxy originated
 *     (Istio's {@code destination_principal} outbound), or null
 * @param upstreamLocalPrincipal the first URI SAN of the certificate the proxy presented in it (Istio's
 *     {@code source_principal} outbound), or null
 * @param statsOverrides the metric overrides of the filter chain's Istio stats filter, compiled
 *     ({@link StatsOverrides#NONE} for none; {@link StatsOverrides#OFF}: none recorded, the chain has no such
 *     filter)
 * @param connection the connection's addresses, SNI and upstream when it is counted, from which the overrides'
 *     dimensions are evaluated ({@link #attributes}); null when not known (they are then {@code unknown})
 */
public record TcpConnectionInfo(StreamInfo.Direction direction, WorkloadInfo peer, String destinationService,
                                String destinationServiceName, String destinationServiceNamespace,
                                boolean downstreamMutualTls, String downstreamPeerPrincipal,
                                String downstreamLocalPrincipal, String upstreamPeerPrincipal,
                                String upstreamLocalPrincipal, StatsOverrides statsOverrides,
                                TcpStreamInfo connection) {
    public TcpConnectionInfo {
        if (direction == null) {
            throw new IllegalArgumentException("direction: null (expected: INBOUND or OUTBOUND)");
        }
        peer = peer == null ? WorkloadInfo.UNKNOWN : peer;
        statsOverrides = statsOverrides == null ? StatsOverrides.NONE : statsOverrides;
    }

    /** A connection whose filter chain's Istio stats filter overrides no metric. */
    public TcpConnectionInfo(StreamInfo.Direction direction, WorkloadInfo peer, String destinationService,
                             String destinationServiceName, String destinationServiceNamespace,
                             boolean downstreamMutualTls, String downstreamPeerPrincipal,
                             String downstreamLocalPrincipal, String upstreamPeerPrincipal,
                             String upstreamLocalPrincipal) {
        this(direction, peer, destinationService, destinationServiceName, destinationServiceNamespace,
                downstreamMutualTls, downstreamPeerPrincipal, downstreamLocalPrincipal, upstreamPeerPrincipal,
                upstreamLocalPrincipal, StatsOverrides.NONE, null);
    }

    /** The same connection under its filter chain's metric overrides. */
    public TcpConnectionInfo withStatsOverrides(StatsOverrides overrides) {
        return new TcpConnectionInfo(direction, peer, destinationService, destinationServiceName,
                destinationServiceNamespace, downstreamMutualTls, downstreamPeerPrincipal, downstreamLocalPrincipal,
                upstreamPeerPrincipal, upstreamLocalPrincipal, overrides, connection);
    }

    /**
     * The same connection under its filter chain's metric overrides and, when their dimensions evaluate expressions,
     * with its values now ({@code connection}, asked only then), as Istio's network filter evaluates them once, when
     * it first counts the connection.
     */
    public TcpConnectionInfo withStatsOverrides(StatsOverrides overrides,
                                                java.util.function.Supplier<TcpStreamInfo> connection) {
        TcpConnectionInfo info = withStatsOverrides(overrides);
        return info.statsOverrides.evaluated() ? info.withConnection(connection.get()) : info;
    }

    /** The same connection, with its addresses, SNI and upstream when counted. */
    public TcpConnectionInfo withConnection(TcpStreamInfo values) {
        return new TcpConnectionInfo(direction, peer, destinationService, destinationServiceName,
                destinationServiceNamespace, downstreamMutualTls, downstreamPeerPrincipal, downstreamLocalPrincipal,
                upstreamPeerPrincipal, upstreamLocalPrincipal, statsOverrides, values);
    }

    /**
     * The attributes Istio's stats evaluate a connection's dimensions with, labelled with {@code flags}: as Envoy's for
     * a connection whose stream has not completed, its addresses and ports, {@code connection.*}, {@code upstream.*},
     * {@code xds.cluster_name}, its bytes so far and {@code response.flags}; no request headers, method, protocol nor
     * duration, and no response code.
     */
    StreamInfo attributes(java.util.Set<ResponseFlag> flags) {
        TcpStreamInfo c = connection;
        TcpStreamInfo now = c == null ? new TcpStreamInfo(null, flags, 0, 0, -1, null, null, null, null, null, null)
                : c.whileOpen(flags);
        return now.asStreamInfo(downstreamMutualTls, downstreamPeerPrincipal, downstreamLocalPrincipal);
    }

    /** A connection that is not mutual TLS. */
    public TcpConnectionInfo(StreamInfo.Direction direction, WorkloadInfo peer, String destinationService,
                             String destinationServiceName, String destinationServiceNamespace) {
        this(direction, peer, destinationService, destinationServiceName, destinationServiceNamespace, false);
    }

    /** A connection whose upstream is not TLS the proxy originated. */
    public TcpConnectionInfo(StreamInfo.Direction direction, WorkloadInfo peer, String destinationService,
                             String destinationServiceName, String destinationServiceNamespace,
                             boolean downstreamMutualTls, String downstreamPeerPrincipal,
                             String downstreamLocalPrincipal) {
        this(direction, peer, destinationService, destinationServiceName, destinationServiceNamespace,
                downstreamMutualTls, downstreamPeerPrincipal, downstreamLocalPrincipal, null, null);
    }

    /** A connection with no principals known (no client certificate). */
    public TcpConnectionInfo(StreamInfo.Direction direction, WorkloadInfo peer, String destinationService,
                             String destinationServiceName, String destinationServiceNamespace,
                             boolean downstreamMutualTls) {
        this(direction, peer, destinationService, destinationServiceName, destinationServiceNamespace,
                downstreamMutualTls, null, null);
    }
}
