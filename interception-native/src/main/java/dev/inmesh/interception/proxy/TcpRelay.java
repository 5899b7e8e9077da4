package dev.inmesh.interception.proxy;

import dev.inmesh.runtime.stats.TcpProxyStats;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.handler.timeout.IdleStateHandler;
import io.netty.util.ReferenceCountUtil;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Relays bytes between two connected channels, byte for byte, whatever the protocol. Back-pressure: a side stops
 * reading while the other cannot take more. Half-close: when one side ends its output, the other side's output is
 * shut down once the bytes before are written; when both directions have ended, both channels close. A reset or
 * error on either side closes both. Both channels need {@code ALLOW_HALF_CLOSURE} and should start with auto-read off.
 */
final class TcpRelay {
    /** Counts of one relayed connection, for the TCP metrics. */
    static final class Counters {
        final AtomicLong downstreamToUpstream = new AtomicLong();
        final AtomicLong upstreamToDownstream = new AtomicLong();
        /** Whether the idle timeout closed the relay. */
        volatile boolean idleTimedOut;
        /** Whether its owner closed the relay for having lasted its longest. */
        volatile boolean durationReached;
    }

    private final Channel downstream;
    private final Channel upstream;
    private final Counters counters;
    private final Runnable onIdle;
    /** The TCP proxy's statistics the downstream's bytes and pauses are counted in, or null. */
    private final TcpProxyStats stats;
    private boolean downstreamEnded;
    private boolean upstreamEnded;

    private TcpRelay(Channel downstream, Channel upstream, Counters counters, Runnable onIdle, TcpProxyStats stats) {
        this.downstream = downstream;
        this.upstream = upstream;
        this.counters = counters;
        this.onIdle = onIdle;
        this.stats = stats;
    }

    /**
     * Joins two channels (both on the same event loop) and starts reading both.
     *
     * @param idleTimeout close both when neither side sent anything for this long; zero or null: never
     * @param onClose run once when both are closed, in a task of its own on the downstream's event loop: never
     *                before this returned, so that it finds the counters returned
     */
    static Counters join(Channel downstream, Channel upstream, Duration idleTimeout, Runnable onClose) {
        return join(downstream, upstream, idleTimeout, null, onClose);
    }

    /**
     * As {@link #join(Channel, Channel, Duration, Runnable)}, with {@code onIdle} run when the idle timeout fires, on
     * the event loop, before both channels are closed (null: nothing).
     */
    static Counters join(Channel downstream, Channel upstream, Duration idleTimeout, Runnable onIdle,
                         Runnable onClose) {
        return join(downstream, upstream, idleTimeout, onIdle, null, onClose);
    }

    /**
     * As {@link #join(Channel, Channel, Duration, Runnable, Runnable)}, counting in {@code stats} (null: nowhere) the
     * bytes read from and written to the downstream and each time reading from it stops because the upstream can
     * take no more, and starts again, as Envoy's tcp_proxy counts them.
     */
    static Counters join(Channel downstream, Channel upstream, Duration idleTimeout, Runnable onIdle,
                         TcpProxyStats stats, Runnable onClose) {
        Counters counters = new Counters();
        TcpRelay relay = new TcpRelay(downstream, upstream, counters, onIdle, stats);
        if (idleTimeout != null && !idleTimeout.isZero()) {
            downstream.pipeline().addLast("relay-idle",
                    new IdleStateHandler(0, 0, idleTimeout.toMillis(), TimeUnit.MILLISECONDS));
        }
        downstream.pipeline().addLast("relay", relay.new Side(true));
        upstream.pipeline().addLast("relay", relay.new Side(false));
        if (onClose != null) {
            // both may close while joining (one already closed, the other's input ended): not from within this call
            downstream.closeFuture().addListener(f -> upstream.closeFuture().addListener(g -> later(downstream,
                    onClose)));
        }
        downstream.config().setAutoRead(true);
        upstream.config().setAutoRead(true);
        downstream.read();
        upstream.read();
        return counters;
    }

    /** Runs {@code r} in a task of its own on {@code ch}'s event loop; now when that loop takes no more tasks. */
    private static void later(Channel ch, Runnable r) {
        try {
            ch.eventLoop().execute(r);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            r.run();
        }
    }

    private void closeBoth() {
        flushAndClose(downstream);
        flushAndClose(upstream);
    }

    /** Closes {@code ch} once what was written to it is flushed. */
    static void flushAndClose(Channel ch) {
        if (ch.isActive()) {
            ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        } else {
            ch.close();
        }
    }

    /** One side's inbound handler: what it reads goes to the other side. */
    private final class Side extends ChannelInboundHandlerAdapter {
        private final boolean isDownstream;

        Side(boolean isDownstream) {
            this.isDownstream = isDownstream;
        }

        private Channel other() {
            return isDownstream ? upstream : downstream;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            Channel other = other();
            if (!other.isActive()) {
                ReferenceCountUtil.release(msg);
                return;
            }
            if (msg instanceof io.netty.buffer.ByteBuf b) {
                int n = b.readableBytes();
                (isDownstream ? counters.downstreamToUpstream : counters.upstreamToDownstream).addAndGet(n);
                if (stats != null) {
                    if (isDownstream) {
                        stats.received(n);
                    } else {
                        stats.sent(n);
                    }
                }
            }
            other.write(msg, other.voidPromise());
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            Channel other = other();
            other.flush();
            if (!other.isWritable() && ctx.channel().config().isAutoRead()) {
                ctx.channel().config().setAutoRead(false);
                if (isDownstream && stats != null) {
                    stats.pausedReading();
                }
            }
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            // this side can take more: let the other side read again
            if (ctx.channel().isWritable() && !other().config().isAutoRead()) {
                other().config().setAutoRead(true);
                if (!isDownstream && stats != null) {
                    stats.resumedReading();
                }
            }
            ctx.fireChannelWritabilityChanged();
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                if (isDownstream) {
                    downstreamEnded = true;
                } else {
                    upstreamEnded = true;
                }
                Channel other = other();
                if (downstreamEnded && upstreamEnded) {
                    closeBoth();
                } else if (other.isActive() && other instanceof DuplexChannel d) {
                    other.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> {
                        if (f.isSuccess()) {
                            d.shutdownOutput();
                        } else {
                            closeBoth();
                        }
                    });
                } else {
                    closeBoth();
                }
                return;
            }
            if (evt instanceof IdleStateEvent) {
                counters.idleTimedOut = true;
                if (onIdle != null) {
                    onIdle.run();
                }
                closeBoth();
                return;
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            flushAndClose(other());
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
            other().close();
        }
    }
}
