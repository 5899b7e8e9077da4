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
import io.vertx.core.impl.transports.NioTransport;
import io.vertx.core.net.ClientOptionsBase;
import io.vertx.core.net.NetClientOptions;
import io.vertx.core.net.NetServerOptions;
import io.vertx.core.transport.Transport;
import java.net.InetAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.util.concurrent.ThreadFactory;
import java.util.function.Consumer;

/**
 * The proxy's Vert.x transport: epoll, io_uring or NIO, whose clients can leave from an original source. The HTTP
 * clients of the shared router's pools take their local address as a string and Vert.x 5 has no hook to set a socket
 * option before a client's socket binds (a {@link Bootstrap} option it cannot set is only logged): a pool made for a
 * request from an original source ({@code original_src}) names it as its local address
 * ({@link OriginalSrcBind#localAddress()}); this transport binds the source's IP in its place and, before the socket
 * binds and connects, sets {@link OriginalSource}'s options, failing the connection attempt with the reason when the
 * socket refuses one, as the proxy's own {@code tcp_proxy} connections do. A connection of no original source (every
 * one but those of a TPROXY inbound's pools) is made by the wrapped transport as it is, nothing added to its channel.
 * NIO's stays a {@link NioTransport}, so that Vert.x still says it is not native
 * ({@link io.vertx.core.Vertx#isNativeTransportEnabled()}).
 */
final class OriginalSourceTransport implements Transport {
    /** The original source a client's channel is to leave from, set by {@link #configure}. */
    private static final AttributeKey<OriginalSource> SOURCE = AttributeKey.valueOf("inmesh.original-source-bind");
    /**
     * Whether the next client channel this thread makes is an original source's: Vert.x 5.0 configures a client's
     * bootstrap ({@code NetClientImpl.connectInternal2}) and then, in the same call, asks the transport for the
     * factory of its channel ({@code ChannelProvider.connect}), which it sets on the bootstrap itself; the factory of
     * a source's channel adds {@link Apply}, every other one is the wrapped transport's.
     */
    private static final ThreadLocal<Boolean> SOURCE_NEXT = new ThreadLocal<>();

    private final Transport transport;
    private final io.vertx.core.spi.transport.Transport implementation;

    private OriginalSourceTransport(Transport transport) {
        this.transport = transport;
        this.implementation = transport.implementation() instanceof NioTransport ? new Nio()
                : new Implementation(transport.implementation());
    }

    /** {@code transport}, whose clients read an original source's local address. */
    static Transport wrap(Transport transport) {
        return new OriginalSourceTransport(transport);
    }

    /** The transport {@code implementation} wraps, or itself. */
    static io.vertx.core.spi.transport.Transport unwrap(io.vertx.core.spi.transport.Transport implementation) {
        return implementation instanceof Implementation i ? i.delegate
                : implementation instanceof Nio ? NioTransport.INSTANCE : implementation;
    }

    /**
     * Configures a client's {@code bootstrap} through {@code configure} (the wrapped transport's), except for a
     * client made for an original source: its channels bind the source's IP with port 0, and get its options as they
     * connect ({@link #channels}).
     */
    private static void configure(ClientOptionsBase options, Bootstrap bootstrap,
                                  Consumer<ClientOptionsBase> configure) {
        OriginalSrcBind bind = OriginalSrcBind.parse(options.getLocalAddress());
        if (bind == null) {
            SOURCE_NEXT.remove();
            configure.accept(options);
            return;
        }
        OriginalSource source;
        try {
            source = new OriginalSource(InetAddress.getByName(bind.ip()), bind.mark()); // a literal: no lookup
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("original_src: not an IP address: " + bind.ip(), e);
        }
        configure.accept(new NetClientOptions(options).setLocalAddress(null));
        bootstrap.localAddress(source.bindAddress()).attr(SOURCE, source);
        SOURCE_NEXT.set(Boolean.TRUE);
    }

    /**
     * The factory of the channel a client just configured is to have: {@code channels}, whose channels get
     * {@link Apply} when it is an original source's.
     */
    private static ChannelFactory<? extends Channel> channels(ChannelFactory<? extends Channel> channels) {
        if (SOURCE_NEXT.get() == null) {
            return channels;
        }
        SOURCE_NEXT.remove();
        return () -> {
            Channel ch = channels.newChannel();
            ch.pipeline().addFirst(Apply.INSTANCE);
            return ch;
        };
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
     * leaves the pipeline; a channel of no original source passes (one made without a client's configuration, such
     * as the DNS resolver's, right after a source's configuration failed before its channel was made).
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

    /**
     * NIO, with the clients' original sources (which its sockets cannot take: their connections fail, saying so),
     * still a {@link NioTransport} for Vert.x.
     */
    static final class Nio extends NioTransport {
        @Override
        public void configure(ClientOptionsBase options, int connectTimeout, boolean domainSocket,
                              Bootstrap bootstrap) {
            OriginalSourceTransport.configure(options, bootstrap,
                    o -> super.configure(o, connectTimeout, domainSocket, bootstrap));
        }

        @Override
        public ChannelFactory<? extends Channel> channelFactory(boolean domainSocket) {
            return channels(super.channelFactory(domainSocket));
        }
    }

    /** A native transport, with the clients' original sources. */
    static final class Implementation implements io.vertx.core.spi.transport.Transport {
        private final io.vertx.core.spi.transport.Transport delegate;

        Implementation(io.vertx.core.spi.transport.Transport delegate) {
            this.delegate = delegate;
        }

        @Override
        public void configure(ClientOptionsBase options, int connectTimeout, boolean domainSocket,
                              Bootstrap bootstrap) {
            OriginalSourceTransport.configure(options, bootstrap,
                    o -> delegate.configure(o, connectTimeout, domainSocket, bootstrap));
        }

        @Override
        public ChannelFactory<? extends Channel> channelFactory(boolean domainSocket) {
            return channels(delegate.channelFactory(domainSocket));
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
