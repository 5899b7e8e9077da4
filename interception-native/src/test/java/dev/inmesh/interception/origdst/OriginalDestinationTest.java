package dev.inmesh.interception.origdst;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.epoll.EpollEventLoopGroup;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

class OriginalDestinationTest {

    @Test
    void decodesASockaddrIn() {
        byte[] sa = {2, 0, 0x1f, (byte) 0x90, 10, 77, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0};
        assertEquals(new InetSocketAddress("10.77.9.9", 8080), OriginalDestination.decode(sa));
    }

    @Test
    void decodesASockaddrIn6() {
        byte[] sa = new byte[28];
        sa[0] = 10;
        sa[2] = 0x23;
        sa[3] = (byte) 0x82; // 9090
        sa[8] = (byte) 0xfd;
        sa[23] = 6;
        assertEquals(new InetSocketAddress("fd00::6", 9090), OriginalDestination.decode(sa));
    }

    @Test
    void anUnknownFamilyOrAShortAddressIsNothing() {
        assertNull(OriginalDestination.decode(new byte[] {1, 0, 0, 80}));
        assertNull(OriginalDestination.decode(new byte[16]));
    }

    @Test
    void withoutNatNorTproxyThereIsNoOriginalDestination() {
        InetSocketAddress local = new InetSocketAddress("127.0.0.1", 15006);
        assertNull(OriginalDestination.resolve(-1, local));
        // descriptor 0 is not a socket: the kernel has no original destination for it, nor IP_TRANSPARENT
        assertNull(OriginalDestination.query(0, false));
        assertNull(OriginalDestination.resolve(0, local));
    }

    /**
     * A connection accepted by a transparent (TPROXY) listener: its socket inherits IP_TRANSPARENT, and its local
     * address is its original destination; a plain listener's connection (no conntrack entry on loopback) has none.
     * IP_TRANSPARENT needs CAP_NET_ADMIN, which the tests have as root.
     */
    @Test
    void aTransparentListenersConnectionHasItsLocalAddressAsItsOriginalDestination() throws Exception {
        Assumptions.assumeTrue(Epoll.isAvailable(), "epoll, whose sockets give their descriptor");
        EventLoopGroup loop = new EpollEventLoopGroup(1);
        try {
            for (boolean transparent : new boolean[] {true, false}) {
                CompletableFuture<InetSocketAddress> resolved = new CompletableFuture<>();
                CompletableFuture<InetSocketAddress> local = new CompletableFuture<>();
                Channel server = new ServerBootstrap().group(loop).channel(EpollServerSocketChannel.class)
                        .option(EpollChannelOption.IP_TRANSPARENT, transparent)
                        .childHandler(new ChannelInboundHandlerAdapter() {
                            @Override
                            public void channelActive(ChannelHandlerContext ctx) {
                                EpollSocketChannel ch = (EpollSocketChannel) ctx.channel();
                                local.complete(ch.localAddress());
                                resolved.complete(OriginalDestination.resolve(ch.fd().intValue(), ch.localAddress()));
                                ctx.close();
                            }
                        }).bind("127.0.0.1", 0).sync().channel();
                try (Socket client = new Socket()) {
                    client.connect(server.localAddress());
                    InetSocketAddress found = resolved.get(10, TimeUnit.SECONDS);
                    assertEquals(transparent ? local.get() : null, found, "transparent: " + transparent);
                } finally {
                    server.close().sync();
                }
            }
        } finally {
            loop.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
        }
    }
}
