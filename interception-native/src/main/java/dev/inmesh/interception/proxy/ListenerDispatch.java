package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.ProxyProtocol;
import dev.inmesh.runtime.listener.ConnectionInfo;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.net.IpLiterals;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;

/**
 * Which listener and filter chain take an accepted connection, as Envoy decides: a listener with
 * {@code use_original_dst} hands the connection to the listener bound to the original {@code ip:port}, else to the
 * one on {@code 0.0.0.0:port}, else keeps it (its own chains, then its default chain); the original destination is
 * the one its original_dst and PROXY protocol filters restored, in their order. The listener that ends up with
 * the connection runs its listener filters (the inspectors) and picks the chain by {@link FilterChainSelector}.
 */
final class ListenerDispatch {
    static final String ORIGINAL_DST = "envoy.filters.listener.original_dst";
    static final String TLS_INSPECTOR = "envoy.filters.listener.tls_inspector";
    static final String HTTP_INSPECTOR = "envoy.filters.listener.http_inspector";

    private ListenerDispatch() {}

    /**
     * Whether the accepting listener recovers the original destination: use_original_dst (which implies the filter),
     * or an original_dst filter that its {@code filter_disabled} leaves on for the port the connection was accepted on.
     */
    static boolean restoresOriginalDestination(Listener l, int localPort) {
        return l.useOriginalDst() || l.listenerFilterRuns(ORIGINAL_DST, localPort)
                || l.listenerFilterRuns("istio.filters.listener.original_dst", localPort);
    }

    /**
     * The listener's PROXY protocol filter when it runs on a connection to {@code destinationPort} (its
     * {@code filter_disabled} does not match), else null.
     */
    static ProxyProtocol proxyProtocol(Listener l, int destinationPort) {
        return l.listenerFilterRuns(Listener.PROXY_PROTOCOL, destinationPort) ? l.proxyProtocol() : null;
    }

    /**
     * Whether the listener's original_dst filter comes after its PROXY protocol filter: both restore the connection's
     * local address, and as Envoy runs them in order, the last one's stands. A {@code use_original_dst} listener
     * without the filter restores it first.
     */
    static boolean originalDestinationAfterProxyProtocol(Listener l) {
        List<String> order = l.listenerFilters();
        return Math.max(order.indexOf(ORIGINAL_DST), order.indexOf("istio.filters.listener.original_dst"))
                > order.indexOf(Listener.PROXY_PROTOCOL);
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

    /**
     * The inspectors a listener runs on the first bytes of a connection to {@code destinationPort} (the original
     * destination's): each of its inspectors whose {@code filter_disabled} does not match that port, as Envoy decides.
     */
    static ProtocolDetector detector(Listener l, int destinationPort) {
        return new ProtocolDetector(l.listenerFilterRuns(TLS_INSPECTOR, destinationPort),
                l.listenerFilterRuns(HTTP_INSPECTOR, destinationPort));
    }

    /** What chain selection knows of a connection. */
    static ConnectionInfo connectionInfo(InetSocketAddress destination, InetSocketAddress source,
                                         ProtocolDetector.Detection detection) {
        String dstIp = ip(destination);
        String srcIp = ip(source);
        return new ConnectionInfo(dstIp, destination.getPort(), detection.serverName(),
                detection.transportProtocol(), detection.applicationProtocols(), srcIp, source.getPort(),
                ConnectionInfo.sameIpOrLoopback(srcIp, dstIp));
    }

    /** The chain for a connection on {@code listener}, or null (the connection is closed). */
    static FilterChain chain(FilterChainSelector listener, ConnectionInfo info) {
        return listener.select(info);
    }

    /**
     * The IP of a connection's physical peer (its channel's) when a PROXY header made its downstream remote address
     * ({@code source}) another, which RBAC's {@code direct_remote_ip} matches; null when it is that address (RBAC then
     * reads the downstream one: nothing is made on a connection without a header) or unknown.
     */
    static String physicalPeer(io.netty.channel.Channel ch, InetSocketAddress source) {
        InetSocketAddress peer = physical(ch.remoteAddress(), source);
        return peer == null ? null : ip(peer);
    }

    /**
     * The {@code ip:port} of a connection's physical peer and of the address it physically arrived at (its socket's),
     * Envoy's {@code directRemoteAddress} and {@code directLocalAddress}, each null when it is the connection's
     * downstream one (what a PROXY header or the original destination made it).
     */
    record PhysicalAddresses(String remote, String local) {
        static final PhysicalAddresses SAME = new PhysicalAddresses(null, null);

        /** The addresses {@code peer} and {@code local} of a socket whose downstream ones are these. */
        static PhysicalAddresses of(java.net.SocketAddress peer, java.net.SocketAddress local, InetSocketAddress source,
                                    InetSocketAddress destination) {
            InetSocketAddress remote = physical(peer, source);
            InetSocketAddress arrived = physical(local, destination);
            return remote == null && arrived == null ? SAME : new PhysicalAddresses(
                    remote == null ? null : hostPort(remote), arrived == null ? null : hostPort(arrived));
        }
    }

    private static InetSocketAddress physical(java.net.SocketAddress physical, InetSocketAddress restored) {
        return physical instanceof InetSocketAddress a && !a.equals(restored) ? a : null;
    }

    /** The literal IP of an address, without brackets or scope; IPv4-mapped IPv6 addresses as IPv4. */
    static String ip(InetSocketAddress a) {
        InetAddress addr = a.getAddress();
        if (addr == null) {
            return a.getHostString();
        }
        return IpLiterals.format(IpLiterals.unmapped(addr.getAddress()));
    }

    /** {@code ip:port}, with brackets for IPv6. */
    static String hostPort(InetSocketAddress a) {
        return IpLiterals.withPort(ip(a), a.getPort());
    }

    static List<String> none() {
        return List.of();
    }
}
