package dev.inmesh.runtime.upstream;

import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.ptr.IntByReference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Reads the TCP keep-alive options of one of this process's own sockets, found by its ports, from the kernel: its
 * inode in {@code /proc/self/net/tcp} (or {@code tcp6}), the descriptor that holds that inode in
 * {@code /proc/self/fd}, then {@code getsockopt}. It sees a socket whoever made it (Netty's epoll or NIO).
 */
public final class KeepaliveProbe {
    /** What the kernel says of a socket: {@code SO_KEEPALIVE}, {@code TCP_KEEPIDLE}, {@code TCP_KEEPINTVL}, ...CNT. */
    public record Options(boolean keepalive, int idleSeconds, int intervalSeconds, int probes) {}

    private static final int SOL_SOCKET = 1;
    private static final int SO_KEEPALIVE = 9;
    private static final int IPPROTO_TCP = 6;
    private static final int TCP_KEEPIDLE = 4;
    private static final int TCP_KEEPINTVL = 5;
    private static final int TCP_KEEPCNT = 6;

    interface Libc extends Library {
        Libc INSTANCE = Native.load("c", Libc.class);

        int getsockopt(int fd, int level, int name, Memory value, IntByReference length);
    }

    private KeepaliveProbe() {}

    /** The options of the connected socket from {@code localPort} to {@code remotePort} (both on loopback). */
    public static Options of(int localPort, int remotePort) throws IOException {
        String inode = inode(localPort, remotePort);
        if (inode == null) {
            throw new IllegalStateException("no socket " + localPort + " -> " + remotePort);
        }
        String target = "socket:[" + inode + "]";
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            for (Path p : (Iterable<Path>) fds::iterator) {
                try {
                    if (Files.readSymbolicLink(p).toString().equals(target)) {
                        int fd = Integer.parseInt(p.getFileName().toString());
                        return new Options(get(fd, SOL_SOCKET, SO_KEEPALIVE) != 0, get(fd, IPPROTO_TCP, TCP_KEEPIDLE),
                                get(fd, IPPROTO_TCP, TCP_KEEPINTVL), get(fd, IPPROTO_TCP, TCP_KEEPCNT));
                    }
                } catch (IOException gone) {
                    // a descriptor closed meanwhile
                }
            }
        }
        throw new IllegalStateException("no descriptor holds " + target);
    }

    /** The kernel's keep-alive defaults (net.ipv4.tcp_keepalive_*), which a socket has until it sets its own. */
    public static Options system() throws IOException {
        return new Options(false, sysctl("tcp_keepalive_time"), sysctl("tcp_keepalive_intvl"),
                sysctl("tcp_keepalive_probes"));
    }

    private static int sysctl(String name) throws IOException {
        // one read from the start: a sysctl file read on from an offset says nothing more
        return Integer.parseInt(Files.readAllLines(Path.of("/proc/sys/net/ipv4/" + name)).get(0).trim());
    }

    /** The inode of the socket with those ports, from the kernel's tables of IPv4 and IPv6 TCP sockets. */
    private static String inode(int localPort, int remotePort) throws IOException {
        String local = String.format(Locale.ROOT, ":%04X", localPort);
        String remote = String.format(Locale.ROOT, ":%04X", remotePort);
        for (String table : List.of("/proc/self/net/tcp", "/proc/self/net/tcp6")) {
            for (String line : Files.readAllLines(Path.of(table))) {
                String[] f = line.trim().split("\\s+");
                if (f.length > 9 && f[1].endsWith(local) && f[2].endsWith(remote)) {
                    return f[9];
                }
            }
        }
        return null;
    }

    private static int get(int fd, int level, int name) {
        Memory value = new Memory(4);
        IntByReference length = new IntByReference(4);
        if (Libc.INSTANCE.getsockopt(fd, level, name, value, length) != 0) {
            throw new IllegalStateException("getsockopt(" + fd + ", " + level + ", " + name + ") failed: errno "
                    + Native.getLastError());
        }
        return value.getInt(0);
    }
}
