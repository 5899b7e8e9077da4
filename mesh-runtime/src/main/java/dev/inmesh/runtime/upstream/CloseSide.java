package dev.inmesh.runtime.upstream;

import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.util.AttributeKey;

/**
 * Which side closed an upstream connection, as Envoy tells a local close from a remote one
 * ({@code upstream_cx_destroy_local}, {@code upstream_cx_destroy_remote}), and whether it closed with a request not
 * done ({@link #closedWithActiveRequest}: the {@code _with_active_rq} forms of those). Put first in the connection's
 * pipeline, it sees every close the proxy asks for (an idle timeout, {@code max_requests_per_connection}, a reset
 * HTTP/1 request, a protocol error, a pool drained) while the connection is still open: that close is local. A
 * connection the upstream ended (its FIN, or a read error such as its RST, seen before anything acts on it) is closed
 * by Netty without such a request, or after the error marked it: remote. Used on the HTTP pools' connections, on
 * {@code tcp_proxy}'s and on the standalone proxy's relayed upgrades'.
 */
@ChannelHandler.Sharable
public final class CloseSide extends ChannelDuplexHandler {
    private static final CloseSide INSTANCE = new CloseSide();
    /** TRUE once the proxy asked to close the open connection, FALSE once the upstream's end was seen first. */
    private static final AttributeKey<Boolean> LOCAL = AttributeKey.valueOf("dev.inmesh.closed-locally");
    /** TRUE while the connection carries a request that its close cuts short ({@link #requestActive}). */
    private static final AttributeKey<Boolean> ACTIVE = AttributeKey.valueOf("dev.inmesh.request-active");

    private CloseSide() {}

    /** Watches {@code channel}'s close. */
    public static void install(Channel channel) {
        if (channel.pipeline().get(CloseSide.class) == null) {
            channel.pipeline().addFirst("inmesh-close-side", INSTANCE);
        }
    }

    /** Whether the proxy closed {@code channel} (false: the upstream did, or it is not watched). */
    public static boolean closedLocally(Channel channel) {
        return Boolean.TRUE.equals(channel.attr(LOCAL).get());
    }

    /**
     * Whether the upstream broke {@code channel} off (a read or write error, such as its reset, seen before the proxy
     * asked to close it), as opposed to a clean close (its FIN) or the proxy's own; false when it is not watched.
     */
    public static boolean brokenOff(Channel channel) {
        return Boolean.FALSE.equals(channel.attr(LOCAL).get());
    }

    /**
     * Notes whether {@code channel} carries a request that its close cuts short: a relay (tcp_proxy's, an upgrade's)
     * while it lasts, an HTTP/1 request whose final answer was not whole as the connection went down, an HTTP/2 stream
     * still open then.
     */
    public static void requestActive(Channel channel, boolean active) {
        channel.attr(ACTIVE).set(active);
    }

    /** Whether {@code channel}, once closed, closed with a request not done ({@link #requestActive}). */
    public static boolean closedWithActiveRequest(Channel channel) {
        return Boolean.TRUE.equals(channel.attr(ACTIVE).get());
    }

    @Override
    public void close(ChannelHandlerContext ctx, ChannelPromise promise) throws Exception {
        if (ctx.channel().isActive()) {
            ctx.channel().attr(LOCAL).setIfAbsent(Boolean.TRUE);
        }
        super.close(ctx, promise);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) throws Exception {
        if (cause instanceof java.io.IOException) {
            ctx.channel().attr(LOCAL).setIfAbsent(Boolean.FALSE); // the upstream broke it off
        }
        super.exceptionCaught(ctx, cause);
    }
}
