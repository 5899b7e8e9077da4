package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.runtime.listener.ConnectionInfo;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;

/**
 * Which listener and filter chain take an accepted connection, as Envoy decides: a listener with
 * {@code use_original_dst} hands the connection to the listener bound to the original {@code ip:port}, else to the
 * one on {@code 0.0.0.0:port}, else keeps it (its own chains, then its default chain). The listener that ends up with
 * the connection runs its listener filters (the inspectors) and picks the chain by {@link FilterChainSelector}.
 */
final class ListenerDispatch {
    static final String ORIGINAL_DST = "envoy.filters.listener.original_dst";
    static final String TLS_INSPECTOR = "envoy.filters.listener.tls_inspector";
    static final String HTTP_INSPECTOR = "envoy.filters.listener.http_inspector";

    private ListenerDispatch() {}

    /** Whether the accepting listener recovers the original destination (use_original_dst or original_dst filter). */
    static boolean restoresOriginalDestination(Listener l) {
        return l.useOriginalDst() || l.listenerFilters().contains(ORIGINAL_DST)
                || l.listenerFilters().contains("istio.filters.listener.original_dst");
    }

    /** The listener that handles a connection accepted by {@code accepting} with this original destination. */
    static FilterChainSelector target(MeshSnapshot snapshot, FilterChainSelector accepting,
                                      InetSocketAddress destination) {
        if (!accepting.listener().useOriginalDst() || destination == null) {
            return accepting;
        }
        FilterChainSelector handedTo = snapshot.listenerFor(ip(destination), destination.getPort());
        return handedTo != null ? handedTo : accepting;
    }

    /** The inspectors a listener runs on the first bytes. */
    static ProtocolDetector detector(Listener l) {
        return new ProtocolDetector(l.listenerFilters().contains(TLS_INSPECTOR),
                l.listenerFilters().contains(HTTP_INSPECTOR));
    }

    /** What chain selection knows of a connection. */
    static ConnectionInfo connectionInfo(InetSocketAddress destination, InetSocketAddress source,
                                         ProtocolDetector.Detection detection) {
        String dstIp = ip(destination);
        String srcIp = ip(source);
        InetAddress src = source.getAddress();
        boolean local = src != null && (src.isLoopbackAddress() || srcIp.equals(dstIp));
        return new ConnectionInfo(dstIp, destination.getPort(), detection.serverName(),
                detection.transportProtocol(), detection.applicationProtocols(), srcIp, source.getPort(), local);
    }

    /** The chain for a connection on {@code listener}, or null (the connection is closed). */
    static FilterChain chain(FilterChainSelector listener, ConnectionInfo info) {
        return listener.select(info);
    }

    /** The literal IP of an address, without brackets or scope; IPv4-mapped IPv6 addresses as IPv4. */
    static String ip(InetSocketAddress a) {
        InetAddress addr = a.getAddress();
        if (addr == null) {
            return a.getHostString();
        }
        byte[] b = addr.getAddress();
        if (b.length == 16 && isV4Mapped(b)) {
            return (b[12] & 0xff) + "." + (b[13] & 0xff) + "." + (b[14] & 0xff) + "." + (b[15] & 0xff);
        }
        return b.length == 16 ? ipv6(b) : addr.getHostAddress();
    }

    /** RFC 5952 text: lower case, no leading zeros, the longest run of two or more zero groups as {@code ::}. */
    static String ipv6(byte[] b) {
        int[] g = new int[8];
        for (int i = 0; i < 8; i++) {
            g[i] = ((b[2 * i] & 0xff) << 8) | (b[2 * i + 1] & 0xff);
        }
        int bestStart = -1;
        int bestLen = 1;
        for (int i = 0; i < 8; ) {
            int j = i;
            while (j < 8 && g[j] == 0) {
                j++;
            }
            if (j - i > bestLen) {
                bestStart = i;
                bestLen = j - i;
            }
            i = j == i ? i + 1 : j;
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                sb.append("::");
                i += bestLen - 1;
                continue;
            }
            if (sb.length() > 0 && sb.charAt(sb.length() - 1) != ':') {
                sb.append(':');
            }
            sb.append(Integer.toHexString(g[i]));
        }
        return sb.toString();
    }

    private static boolean isV4Mapped(byte[] b) {
        for (int i = 0; i < 10; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return (b[10] & 0xff) == 0xff && (b[11] & 0xff) == 0xff;
    }

    /** {@code ip:port}, with brackets for IPv6. */
    static String hostPort(InetSocketAddress a) {
        String ip = ip(a);
        return (ip.indexOf(':') >= 0 ? "[" + ip + "]" : ip) + ":" + a.getPort();
    }

    static List<String> none() {
        return List.of();
    }
}
