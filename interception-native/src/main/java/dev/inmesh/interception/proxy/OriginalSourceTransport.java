package dev.inmesh.interception.proxy;

import dev.inmesh.runtime.upstream.OriginalSrcBind;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOutboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.ServerChannel;
import io.netty.channel.socket.DatagramChannel;
import io.netty.channel.socket.InternetProtocolFamily;
import io.netty.util.AttributeKey;
import io.vertx.core.datagram.DatagramSocketOptions;
import io.vertx.core.net.ClientOptionsBase;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.transport.Transport;
import java.net.InetAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.util.concurrent.ThreadFactory;

/**
 * The proxy's Vert.x transport: epoll, io_uring or NIO, whose clients can leave from an original source. The HTTP
 * clients of the shared router's pools take their local address as a string and Vert.x 5 has no hook to set a socket
 * option before a client's socket binds (a {@link Bootstrap} option it cannot set is only logged): a pool made for a
 * request from an original source ({@code original_src}) names it as its local address
 * ({@link OriginalSrcBind#localAddress()}); this transport binds the source's IP in its place and, before the socket
 * binds and connects, sets {@link OriginalSource}'s options, failing the connection attempt with the reason when the
 * socket refuses one, as the proxy's own {@code tcp_proxy} connections do.
 */
final class OriginalSourceTransport implements Transport {
    /** The original source a client's channel is to leave from, set by {@link Implementation#configure}. */
    private static final AttributeKey<OriginalSource> SOURCE = AttributeKey.valueOf("inmesh.original-source-bind");

    private final Transport transport;
    private final Implementation implementation;

    private OriginalSourceTransport(Transport transport) {
        this.transport = transport;
        this.implementation = new Implementation(transport.implementation());
    }

    /** {@code transport}, whose clients read an original source's local address. */
    static Transport wrap(Transport transport) {
        return new OriginalSourceTransport(transport);
    }

    /** The transport {@code implementation} wraps, or itself. */
    static io.vertx.core.spi.transport.Transport unwrap(io.vertx.core.spi.transport.Transport implementation) {
        return implementation instanceof Implementation i ? i.delegate : implementation;
    }

    @Override
    public String name() {
        return transport.name();
    }

    @Override
    public boolean available() {
        return transport.available();
    }

    @Override
    public Throwable unavailabilityCause() {
        return transport.unavailabilityCause();
    }

    @Override
    public io.vertx.core.spi.transport.Transport implementation() {
        return implementation;
    }

    /**
     * Sets the original source's socket options when its channel connects (it binds the source as it connects), then
     * leaves the pipeline; a channel of no original source passes.
     */
    @ChannelHandler.Sharable
    private static final class Apply extends ChannelOutboundHandlerAdapter {
        static final Apply INSTANCE = new Apply();

        @Override
        public void connect(ChannelHandlerContext ctx, SocketAddress remote, SocketAddress local,
                            ChannelPromise promise) {
            OriginalSource source = ctx.channel().attr(SOURCE).getAndSet(null);
            try {
                if (source != null) {
                    source.apply(ctx.channel());
                }
                ctx.connect(remote, local, promise);
            } catch (OriginalSource.OriginalSourceException e) {
                promise.tryFailure(e);
                ctx.close();
            } finally {
                ctx.pipeline().remove(this);
            }
        }
    }

    /** Vert.x's transport, with the clients' original sources. */
    static final class Implementation implements io.vertx.core.spi.transport.Transport {
        private final io.vertx.core.spi.transport.Transport delegate;

        Implementation(io.vertx.core.spi.transport.Transport delegate) {
            this.delegate = delegate;
        }

        /**
         * As the transport's, except for a client made for an original source: its channels bind the source's IP
         * with port 0, and get its options as they connect.
         */
        @Override
        public void configure(ClientOptionsBase options, int connectTimeout, boolean domainSocket,
                              Bootstrap bootstrap) {
            OriginalSrcBind bind = OriginalSrcBind.parse(options.getLocalAddress());
            if (bind == null) {
                delegate.configure(options, connectTimeout, domainSocket, bootstrap);
                return;
            }
            OriginalSource source;
            try {
                source = new OriginalSource(InetAddress.getByName(bind.ip()), bind.mark()); // a literal: no lookup
            } catch (UnknownHostException e) {
                throw new IllegalArgumentException("original_src: not an IP address: " + bind.ip(), e);
            }
            delegate.configure(new NetClientOptions(options).setLocalAddress(null), connectTimeout, domainSocket,
                    bootstrap);
            bootstrap.localAddress(source.bindAddress()).attr(SOURCE, source);
        }

        @Override
        public ChannelFactory<? extends Channel> channelFactory(boolean domainSocket) {
            ChannelFactory<? extends Channel> channels = delegate.channelFactory(domainSocket);
            return () -> {
                Channel ch = channels.newChannel();
                ch.pipeline().addFirst(Apply.INSTANCE);
                return ch;
            };
        }

        @Override
        public boolean supportsDomainSockets() {
            return delegate.supportsDomainSockets();
        }

        @Override
        public boolean supportFileRegion() {
            return delegate.supportFileRegion();
        }

        @Override
        public boolean isAvailable() {
            return delegate.isAvailable();
        }

        @Override
        public Throwable unavailabilityCause() {
            return delegate.unavailabilityCause();
        }

        @Override
        public SocketAddress convert(io.vertx.core.net.SocketAddress address) {
            return delegate.convert(address);
        }

        @Override
        public io.vertx.core.net.SocketAddress convert(SocketAddress address) {
            return delegate.convert(address);
        }

        @Override
        public IoHandlerFactory ioHandlerFactory() {
            return delegate.ioHandlerFactory();
        }

        @Override
        public EventLoopGroup eventLoopGroup(int type, int nThreads, ThreadFactory threadFactory, int ioRatio) {
            return delegate.eventLoopGroup(type, nThreads, threadFactory, ioRatio);
        }

        @Override
        public DatagramChannel datagramChannel() {
            return delegate.datagramChannel();
        }

        @Override
        public DatagramChannel datagramChannel(InternetProtocolFamily family) {
            return delegate.datagramChannel(family);
        }

        @Override
        public ChannelFactory<? extends ServerChannel> serverChannelFactory(boolean domainSocket) {
            return delegate.serverChannelFactory(domainSocket);
        }

        @Override
        public void configure(DatagramChannel channel, DatagramSocketOptions options) {
            delegate.configure(channel, options);
        }

        @Override
        public void configure(NetServerOptions options, boolean domainSocket, ServerBootstrap bootstrap) {
            delegate.configure(options, domainSocket, bootstrap);
        }
    }
}
