package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;

/**
 * TCP keep-alive for a socket, as Envoy's {@code core.v3.TcpKeepalive} (Istio writes a DestinationRule's
 * {@code connectionPool.tcp.tcpKeepalive} into a cluster's {@code upstream_connection_options.tcp_keepalive}): the
 * socket gets {@code SO_KEEPALIVE}, and each value that is set replaces the operating system's default for it. A null
 * value keeps the system's (on Linux {@code net.ipv4.tcp_keepalive_probes}, 9; {@code tcp_keepalive_time}, 7200 s;
 * {@code tcp_keepalive_intvl}, 75 s).
 *
 * <p>The values are bounded as Linux bounds them ({@code TCP_KEEPCNT} 1 to 127, {@code TCP_KEEPIDLE} and
 * {@code TCP_KEEPINTVL} 1 to 32767 s): Envoy sets them on each new upstream socket and fails the connection when the
 * kernel refuses one, so a value outside them could never be applied.
 *
 * @param keepaliveProbes how many unanswered probes close the connection ({@code TCP_KEEPCNT}), or null
 * @param keepaliveTime how many seconds a connection stays idle before the first probe ({@code TCP_KEEPIDLE}), or null
 * @param keepaliveInterval how many seconds apart the probes go ({@code TCP_KEEPINTVL}), or null
 */
public record TcpKeepalive(Integer keepaliveProbes, Integer keepaliveTime, Integer keepaliveInterval) {
    /** The largest {@code keepalive_probes} Linux takes. */
    public static final int MAX_PROBES = 127;
    /** The largest {@code keepalive_time} and {@code keepalive_interval} Linux takes, in seconds. */
    public static final int MAX_SECONDS = 32_767;
    /** {@code SO_KEEPALIVE} with the system's defaults for the rest (an empty {@code tcp_keepalive}). */
    public static final TcpKeepalive SYSTEM_DEFAULTS = new TcpKeepalive(null, null, null);

    public TcpKeepalive {
        Checks.check(keepaliveProbes == null || keepaliveProbes >= 1 && keepaliveProbes <= MAX_PROBES,
                "keepalive_probes", keepaliveProbes, "1.." + MAX_PROBES);
        Checks.check(keepaliveTime == null || keepaliveTime >= 1 && keepaliveTime <= MAX_SECONDS,
                "keepalive_time", keepaliveTime, "1.." + MAX_SECONDS + " seconds");
        Checks.check(keepaliveInterval == null || keepaliveInterval >= 1 && keepaliveInterval <= MAX_SECONDS,
                "keepalive_interval", keepaliveInterval, "1.." + MAX_SECONDS + " seconds");
    }
}
