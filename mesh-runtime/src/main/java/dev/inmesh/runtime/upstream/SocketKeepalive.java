package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.core.TcpKeepalive;
import io.netty.channel.Channel;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.nio.NioChannelOption;
import java.util.logging.Level;
import java.util.logging.Logger;
import jdk.net.ExtendedSocketOptions;

/**
 * Sets a cluster's TCP keep-alive ({@code upstream_connection_options.tcp_keepalive}) on an upstream socket, as Envoy
 * does on each socket it opens for the cluster: {@code SO_KEEPALIVE}, and {@code TCP_KEEPCNT}, {@code TCP_KEEPIDLE}
 * and {@code TCP_KEEPINTVL} for the values that are set (the others keep the system's). The socket is Netty's: an
 * epoll or io_uring one when Vert.x runs on that native transport, else a JDK one (whose extended options carry the
 * same three values). It is a few {@code setsockopt} calls, which do not block.
 */
public final class SocketKeepalive {
    private static final Logger LOG = Logger.getLogger(SocketKeepalive.class.getName());

    private SocketKeepalive() {}

    /**
     * Applies {@code keepalive} to {@code channel}, before it connects (as Envoy, whose options are set before the
     * socket binds) or once connected, when the channel is not made here (Vert.x's pools): the kernel then counts the
     * idle time from that point. Null does nothing. A value the socket refuses is logged and left at the system's.
     */
    public static void apply(Channel channel, TcpKeepalive keepalive) {
        if (keepalive == null) {
            return;
        }
        ChannelConfig config = channel.config();
        set(config, ChannelOption.SO_KEEPALIVE, true);
        String type = channel.getClass().getName();
        // each transport's own options (the classes of another one may be missing)
        boolean epoll = type.startsWith("io.netty.channel.epoll.");
        boolean uring = type.startsWith("io.netty.channel.uring.");
        if (keepalive.keepaliveProbes() != null) {
            set(config, epoll ? Epoll.COUNT : uring ? IoUring.COUNT : Nio.COUNT, keepalive.keepaliveProbes());
        }
        if (keepalive.keepaliveTime() != null) {
            set(config, epoll ? Epoll.IDLE : uring ? IoUring.IDLE : Nio.IDLE, keepalive.keepaliveTime());
        }
        if (keepalive.keepaliveInterval() != null) {
            set(config, epoll ? Epoll.INTERVAL : uring ? IoUring.INTERVAL : Nio.INTERVAL,
                    keepalive.keepaliveInterval());
        }
    }

    private static <T> void set(ChannelConfig config, ChannelOption<T> option, T value) {
        try {
            if (!config.setOption(option, value)) {
                LOG.warning(() -> "TCP keep-alive: " + option.name() + " is not supported on this socket");
            }
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "TCP keep-alive: " + option.name() + " " + value + " refused", e);
        }
    }

    /** The epoll options, loaded only for an epoll channel (the classes are then there). */
    private static final class Epoll {
        static final ChannelOption<Integer> COUNT = io.netty.channel.epoll.EpollChannelOption.TCP_KEEPCNT;
        static final ChannelOption<Integer> IDLE = io.netty.channel.epoll.EpollChannelOption.TCP_KEEPIDLE;
        static final ChannelOption<Integer> INTERVAL = io.netty.channel.epoll.EpollChannelOption.TCP_KEEPINTVL;
    }

    /** The io_uring options, loaded only for an io_uring channel. */
    private static final class IoUring {
        static final ChannelOption<Integer> COUNT = io.netty.channel.uring.IoUringChannelOption.TCP_KEEPCNT;
        static final ChannelOption<Integer> IDLE = io.netty.channel.uring.IoUringChannelOption.TCP_KEEPIDLE;
        static final ChannelOption<Integer> INTERVAL = io.netty.channel.uring.IoUringChannelOption.TCP_KEEPINTVL;
    }

    /** The JDK's options, for Netty's NIO channels. */
    private static final class Nio {
        static final ChannelOption<Integer> COUNT = NioChannelOption.of(ExtendedSocketOptions.TCP_KEEPCOUNT);
        static final ChannelOption<Integer> IDLE = NioChannelOption.of(ExtendedSocketOptions.TCP_KEEPIDLE);
        static final ChannelOption<Integer> INTERVAL = NioChannelOption.of(ExtendedSocketOptions.TCP_KEEPINTERVAL);
    }
}
