package dev.inmesh.interception.proxy;

import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.OriginalSrc;
import dev.inmesh.runtime.upstream.OriginalSrcBind;
import io.netty.channel.Channel;
import io.netty.channel.unix.UnixChannel;
import io.netty.util.AttributeKey;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;

/**
 * What the original source listener filter ({@link OriginalSrc}) asks of a connection's upstream sockets, as Envoy's
 * filter builds them from the downstream remote address: bind to that IP with port 0, {@code IP_TRANSPARENT} (and
 * {@code IPV6_TRANSPARENT} for an IPv6 source) so that the kernel lets the proxy bind an address that is not its
 * own, and {@code SO_MARK} when the mark is not 0. The source wins over the cluster's bind address (istiod's
 * 127.0.0.6 on the inbound clusters), as Envoy binds the address the socket options set before its cluster's. The
 * downstream channel carries it ({@link #KEY}); {@link ProxyRuntime#connect} applies it.
 *
 * @param address the downstream remote IP
 * @param mark the {@code SO_MARK}, 0 for none
 */
record OriginalSource(InetAddress address, long mark) {
    /** The original source of a downstream connection whose listener runs the filter. */
    static final AttributeKey<OriginalSource> KEY = AttributeKey.valueOf("inmesh.original-source");

    static final int SOL_SOCKET = 1;
    static final int SO_MARK = 36;
    static final int SOL_IP = 0;
    static final int IP_TRANSPARENT = 19;
    static final int SOL_IPV6 = 41;
    static final int IPV6_TRANSPARENT = 75;

    /** The libc calls this needs. */
    interface Libc extends Library {
        Libc INSTANCE = Native.load("c", Libc.class);

        int setsockopt(int fd, int level, int name, Pointer value, int length);

        String strerror(int errno);
    }

    /**
     * The original source of a connection from {@code source} handled by {@code l}, or null when {@code l} does not
     * run the filter on a connection to {@code destinationPort}, or the source is not an IP address (Envoy's filter
     * leaves those alone).
     */
    static OriginalSource of(Listener l, int destinationPort, java.net.SocketAddress source) {
        if (!l.listenerFilterRuns(Listener.ORIGINAL_SRC, destinationPort)
                || !(source instanceof InetSocketAddress ip) || ip.getAddress() == null) {
            return null;
        }
        return new OriginalSource(ip.getAddress(), l.originalSrc().mark());
    }

    /** What the shared router's pools are given for this source: its IP and mark. */
    OriginalSrcBind bind() {
        return new OriginalSrcBind(address.getHostAddress(), mark);
    }

    /**
     * The original source of the downstream connection {@code ch} belongs to (the connection's channel or one of its
     * HTTP/2 streams), or null.
     */
    static OriginalSource of(Channel ch) {
        for (Channel c = ch; c != null; c = c.parent()) {
            OriginalSource s = c.attr(KEY).get();
            if (s != null) {
                return s;
            }
        }
        return null;
    }

    /** The address upstream sockets bind: the source IP, port 0. */
    InetSocketAddress bindAddress() {
        return new InetSocketAddress(address, 0);
    }

    /**
     * Sets the socket options on an upstream channel before it binds. A failure is not ignored, as Envoy closes a
     * connection whose options it could not set: the connection attempt fails with the reason.
     *
     * @throws OriginalSourceException naming the option and the system's reason (the proxy needs CAP_NET_ADMIN)
     */
    void apply(Channel ch) throws OriginalSourceException {
        if (!(ch instanceof UnixChannel u)) {
            throw new OriginalSourceException("original_src needs the epoll or io_uring transport (not "
                    + ch.getClass().getSimpleName() + ")");
        }
        int fd = u.fd().intValue();
        set(fd, SOL_IP, IP_TRANSPARENT, 1, "IP_TRANSPARENT");
        if (address instanceof Inet6Address) {
            set(fd, SOL_IPV6, IPV6_TRANSPARENT, 1, "IPV6_TRANSPARENT");
        }
        if (mark != 0) {
            set(fd, SOL_SOCKET, SO_MARK, (int) mark, "SO_MARK");
        }
    }

    private static void set(int fd, int level, int name, int value, String option) throws OriginalSourceException {
        Memory v = new Memory(4);
        v.setInt(0, value);
        if (Libc.INSTANCE.setsockopt(fd, level, name, v, 4) != 0) {
            int errno = Native.getLastError();
            throw new OriginalSourceException("original_src: setsockopt(" + option + ") failed: "
                    + Libc.INSTANCE.strerror(errno) + " (the proxy needs CAP_NET_ADMIN)");
        }
    }

    /** An upstream socket that could not take the original source's options. */
    static final class OriginalSourceException extends OriginalSrcBind.Refused {
        OriginalSourceException(String message) {
            super(message);
        }
    }
}
