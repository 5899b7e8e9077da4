package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.RawHttp1Upstream;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An upstream's interim (1xx) answers before its final one, over HTTP/1 and HTTP/2: none is taken for the final
 * answer, as none is by Envoy's codecs. A 102 or 104 is passed over (Vert.x took it for the final answer: the caller
 * got a 102, over HTTP/1 with no body and the real answer left on the connection, over HTTP/2 without the final
 * answer's headers); 100 and 103 are Vert.x's continue and early hints.
 */
@Timeout(30)
class RouterUpstreamInterimResponseTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private RouterRig.Result call(String answer) throws Exception {
        try (RawHttp1Upstream server = new RawHttp1Upstream(answer)) {
            ClusterManager clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC)
                    .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofSeconds(2))
                    .loadAssignment(hosts("c", server.port())).build());
            return rig.call(rig.router(), get("/"), routeToC(""), clusters);
        }
    }

    /**
     * An h2c upstream (prior knowledge) that answers each request's HEADERS with a HEADERS of {@code interim} status,
     * then a 200 with {@code x-final: yes} and "ok".
     */
    private static Channel h2Upstream(NioEventLoopGroup group, String interim) throws InterruptedException {
        return new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
                .childHandler(new ChannelInitializer<SocketChannel>() {
                    @Override
                    protected void initChannel(SocketChannel ch) {
                        ch.pipeline().addLast(Http2FrameCodecBuilder.forServer().build(),
                                new SimpleChannelInboundHandler<Http2HeadersFrame>() {
                                    @Override
                                    protected void channelRead0(ChannelHandlerContext ctx, Http2HeadersFrame f) {
                                        if (!f.isEndStream()) {
                                            return; // a request with a body: none is sent here
                                        }
                                        var stream = f.stream();
                                        ctx.write(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers()
                                                .status(interim).add("x-interim", "1")).stream(stream));
                                        ctx.write(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers()
                                                .status("200").add("x-final", "yes")).stream(stream));
                                        ctx.writeAndFlush(new DefaultHttp2DataFrame(Unpooled.copiedBuffer("ok",
                                                StandardCharsets.US_ASCII), true).stream(stream));
                                    }
                                });
                    }
                }).bind(new InetSocketAddress("127.0.0.1", 0)).sync().channel();
    }

    @Test
    void anHttp2UpstreamsFinalAnswerAfterAnInterimOneIsTheResponse() throws Exception {
        NioEventLoopGroup group = new NioEventLoopGroup(1);
        try {
            for (String interim : new String[] {"102", "104", "103", "100"}) {
                Channel server = h2Upstream(group, interim);
                int port = ((InetSocketAddress) server.localAddress()).getPort();
                ClusterManager clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC)
                        .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofSeconds(2))
                        .loadAssignment(hosts("c", port)).http2(true).build());
                RouterRig.Result r = rig.call(rig.router(), get("/"), routeToC(""), clusters);
                assertEquals(200, r.status(), interim);
                assertEquals("ok", r.body(), interim);
                assertEquals("yes", r.headers().get("x-final"), interim);
                assertEquals(null, r.headers().get("x-interim"), interim);
                server.close().sync();
            }
        } finally {
            group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).sync();
        }
    }

    @Test
    void theFinalAnswerAfterInterimOnesIsTheResponse() throws Exception {
        String ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-final: yes\r\n\r\nok";
        for (String interim : new String[] {
            "HTTP/1.1 102 Processing\r\n\r\n",
            "HTTP/1.1 104 Upload Resumption Supported\r\nx-interim: 1\r\n\r\n",
            "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n",
            "HTTP/1.1 199 Whatever\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n"}) {
            RouterRig.Result r = call(interim + ok);
            String what = interim.substring(0, interim.indexOf('\r'));
            assertEquals(200, r.status(), what);
            assertEquals("ok", r.body(), what);
            assertEquals("yes", r.headers().get("x-final"), what);
            assertEquals(null, r.headers().get("x-interim"), what);
        }
        // an upstream that closes after an interim answer gave no answer; its codec was between messages (Envoy's
        // reads the end of input there without error): a connection termination, 503 UC, as before any answer
        RouterRig.Result cut = call("HTTP/1.1 102 Processing\r\n\r\n");
        assertEquals(503, cut.status());
        assertEquals("UC", cut.flags());
    }
}
