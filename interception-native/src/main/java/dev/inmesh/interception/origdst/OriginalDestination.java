package dev.inmesh.interception.origdst;

import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;

/**
 * The original destination of an accepted TCP connection: {@code SO_ORIGINAL_DST} on {@code SOL_IP} for IPv4,
 * {@code IP6T_SO_ORIGINAL_DST} (also 80) on {@code SOL_IPV6} for IPv6. The kernel answers only for connections
 * conntrack tracked (NATed by REDIRECT, or seen by rules that track them); for others it fails with ENOENT, and
 * {@link #resolve} takes the local address only from a socket with {@code IP_TRANSPARENT} (TPROXY). A connection that
 * was neither has no original destination, as Envoy's {@code Utility::getOriginalDst} has none for it.
 */
public final class OriginalDestination {
    static final int SOL_IP = 0;
    static final int SOL_IPV6 = 41;
    static final int SO_ORIGINAL_DST = 80;
    static final int IP6T_SO_ORIGINAL_DST = 80;
    static final int AF_INET = 2;
    static final int AF_INET6 = 10;
    static final int IP_TRANSPARENT = 19;
    static final int IPV6_TRANSPARENT = 75;

    private OriginalDestination() {}

    /** The libc call this needs. */
    interface Libc extends Library {
        Libc INSTANCE = Native.load("c", Libc.class);

        int getsockopt(int fd, int level, int name, Pointer value, IntByReference length);
    }

    /**
     * The NAT original destination of a socket, or null when the kernel has none (not redirected, or not a TCP
     * socket of the right family).
     *
     * @param fd the accepted socket's descriptor
     * @param ipv6 whether the socket is an IPv6 socket (then IPv6 is asked first, then IPv4 for mapped addresses)
     */
    public static InetSocketAddress query(int fd, boolean ipv6) {
        if (ipv6) {
            InetSocketAddress a = query(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST);
            if (a != null) {
                return a;
            }
        }
        return query(fd, SOL_IP, SO_ORIGINAL_DST);
    }

    /**
     * Envoy's original_dst filter ({@code Utility::getOriginalDst}): the conntrack original destination if there is
     * one (REDIRECT), else the socket's local address when the socket is transparent (TPROXY: an accepted socket
     * inherits its listener's {@code IP_TRANSPARENT}), else null: the filter then restores nothing, and the connection
     * has no original destination (an ORIGINAL_DST cluster finds no host for it, rather than the proxy's own listener).
     */
    public static InetSocketAddress resolve(int fd, InetSocketAddress localAddress) {
        if (fd < 0) {
            return null;
        }
        boolean ipv6 = localAddress != null && localAddress.getAddress() instanceof java.net.Inet6Address;
        InetSocketAddress a = query(fd, ipv6);
        return a != null ? a : transparent(fd, ipv6) ? localAddress : null;
    }

    /** Whether the socket has {@code IP_TRANSPARENT} ({@code IPV6_TRANSPARENT} for an IPv6 one) set. */
    static boolean transparent(int fd, boolean ipv6) {
        Memory flag = new Memory(4);
        flag.clear();
        IntByReference length = new IntByReference(4);
        return Libc.INSTANCE.getsockopt(fd, ipv6 ? SOL_IPV6 : SOL_IP, ipv6 ? IPV6_TRANSPARENT : IP_TRANSPARENT,
                flag, length) == 0 && flag.getInt(0) != 0;
    }

    private static InetSocketAddress query(int fd, int level, int name) {
        Memory address = new Memory(28); // sizeof(struct sockaddr_in6)
        address.clear();
        IntByReference length = new IntByReference(28);
        if (Libc.INSTANCE.getsockopt(fd, level, name, address, length) != 0) {
            return null;
        }
        return decode(address.getByteArray(0, length.getValue()));
    }

    /** A {@code struct sockaddr_in} or {@code sockaddr_in6} (family in host order, port in network order). */
    static InetSocketAddress decode(byte[] sa) {
        if (sa.length < 8) {
            return null;
        }
        int family = (sa[0] & 0xff) | ((sa[1] & 0xff) << 8); // little-endian hosts (x86_64, aarch64)
        int port = ((sa[2] & 0xff) << 8) | (sa[3] & 0xff);
        byte[] ip;
        if (family == AF_INET && sa.length >= 8) {
            ip = new byte[] {sa[4], sa[5], sa[6], sa[7]};
        } else if (family == AF_INET6 && sa.length >= 24) {
            ip = java.util.Arrays.copyOfRange(sa, 8, 24);
        } else {
            return null;
        }
        try {
            return new InetSocketAddress(InetAddress.getByAddress(ip), port);
        } catch (UnknownHostException e) {
            return null;
        }
    }
}
