package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.route.ClusterSpecifier;
import java.time.Duration;
import java.util.List;

/**
 * Envoy's TCP proxy: relays bytes to one cluster, or to weighted clusters.
 *
 * @param statPrefix the stat prefix
 * @param cluster a {@link ClusterSpecifier.Named} or {@link ClusterSpecifier.Weighted} cluster
 * @param idleTimeout the idle timeout (Envoy's default 1 h; zero disables)
 * @param maxConnectAttempts how many upstream connects are tried, each failed one followed by another to a host
 *     picked again, before the connection is given up ({@code max_connect_attempts}; Envoy's default 1)
 * @param hashSourceIp whether the host is picked by the hash of the downstream connection's source IP
 *     ({@code hash_policy} {@code source_ip}, which istiod writes for a DestinationRule's
 *     {@code consistentHash.useSourceIp} on a TCP port): a RING_HASH or MAGLEV cluster then sends every connection of
 *     one source to one host
 * @param accessLogs its {@code access_log}: the file, stdout and stderr loggers its connections are logged by; empty
 *     when it names none (the proxy's own access log setting then applies)
 * @param maxDownstreamConnectionDuration how long a connection may last from when the TCP proxy takes it, after which
 *     it is closed, flagged DT ({@code max_downstream_connection_duration}, which istiod writes for a
 *     DestinationRule's {@code connectionPool.tcp.maxConnectionDuration}); null: no limit, Envoy's default
 */
public record TcpProxy(String statPrefix, ClusterSpecifier cluster, Duration idleTimeout, int maxConnectAttempts,
                       boolean hashSourceIp, List<AccessLogConfig> accessLogs, Duration maxDownstreamConnectionDuration)
        implements NetworkFilter {
    public TcpProxy {
        Checks.check(maxDownstreamConnectionDuration == null
                        || maxDownstreamConnectionDuration.compareTo(Duration.ofMillis(1)) >= 0,
                "max_downstream_connection_duration", String.valueOf(maxDownstreamConnectionDuration), ">= 1ms");
        accessLogs = accessLogs == null ? List.of() : List.copyOf(accessLogs);
        statPrefix = statPrefix == null ? "" : statPrefix;
        Checks.nonNull(cluster, "cluster_specifier");
        Checks.check(!(cluster instanceof ClusterSpecifier.FromHeader), "cluster_specifier", "cluster_header",
                "cluster or weighted_clusters");
        idleTimeout = idleTimeout == null ? Duration.ofHours(1) : idleTimeout;
        maxConnectAttempts = maxConnectAttempts == 0 ? 1 : maxConnectAttempts;
        Checks.check(maxConnectAttempts >= 1, "max_connect_attempts", Integer.toUnsignedString(maxConnectAttempts),
                ">= 1");
    }

    /**
     * A TCP proxy to {@code cluster} with Envoy's defaults: an idle timeout of one hour, one connect attempt, no
     * hashing of the source IP, no access log and no limit on a connection's duration.
     */
    public static TcpProxy of(String statPrefix, ClusterSpecifier cluster) {
        return new TcpProxy(statPrefix, cluster, null, 0, false, null, null);
    }
}
