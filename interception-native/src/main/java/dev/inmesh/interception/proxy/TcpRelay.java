package dev.inmesh.interception.proxy;

import dev.inmesh.runtime.stats.TcpProxyStats;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.ReferenceCountUtil;
import java.time.Duration;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Relays bytes between two connected channels, byte for byte, whatever the protocol. Back-pressure: a side stops
 * reading while the other cannot take more. Half-close: when one side ends its output, the other side's output is
 * shut down once the bytes before are written; when both directions have ended, both channels close once their bytes
 * are written. As Envoy's tcp_proxy: a side the peer closed or reset has the other side closed once the bytes before
 * are written (a flush the idle timeout bounds: without one, it waits as long as the peer takes), and the upstream
 * closed at once if it sends more then; a side closed here (the idle timeout, a connection's longest duration, an
 * error, a drain) has the other closed at once, without writing what is left. Both channels need
 * {@code ALLOW_HALF_CLOSURE} and should start with auto-read off.
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
    private Side downSide;
    private Side upSide;
    private boolean downstreamEnded;
    private boolean upstreamEnded;
    /** The idle timeout in nanoseconds, 0 for none. */
    private long idleNanos;
    /** When bytes were last read from or written to either side, in {@link System#nanoTime()}. */
    private long lastActivity;
    /** Whether the idle timeout fired: once. */
    private boolean timedOut;
    /** The idle check due next, or null; cancelled once both sides are closed. */
    private ScheduledFuture<?> idleCheck;
    private static final Duration CENTURY = Duration.ofDays(36_525);
    /** Each write's listener when an idle timeout is kept: a write done is activity; a failed one an error. */
    private final ChannelFutureListener written = f -> {
        if (f.isSuccess()) {
            lastActivity = System.nanoTime();
        } else {
            f.channel().pipeline().fireExceptionCaught(f.cause());
        }
    };

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
     * @param idleTimeout close both at once, without flushing, when nothing was read from or written to either side
     *                    for this long (a flush after one side closed included); zero or null: never
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
        relay.downSide = relay.new Side(true);
        relay.upSide = relay.new Side(false);
        downstream.pipeline().addLast("relay", relay.downSide);
        upstream.pipeline().addLast("relay", relay.upSide);
        if (idleTimeout != null && !idleTimeout.isZero()) {
            // Envoy's idle timer: reset by bytes read from and written to either side, kept while either is open
            relay.idleNanos = saturatedNanos(idleTimeout);
            relay.lastActivity = System.nanoTime();
            relay.checkIdleIn(relay.idleNanos);
        }
        // both closed: the idle check goes (it would hold the relay and both channels until it came due), then
        // onClose; both may close while joining (one already closed, the other's input ended): not from within this
        // call
        downstream.closeFuture().addListener(f -> upstream.closeFuture().addListener(g -> later(downstream, () -> {
            ScheduledFuture<?> check = relay.idleCheck;
            if (check != null) {
                check.cancel(false);
            }
            if (onClose != null) {
                onClose.run();
            }
        })));
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

    private void checkIdleIn(long nanos) {
        idleCheck = downstream.eventLoop().schedule(this::checkIdle, nanos, TimeUnit.NANOSECONDS);
    }

    /** {@code d} in nanoseconds, at most a century (a longer one, which {@link Duration#toNanos} cannot hold, never). */
    private static long saturatedNanos(Duration d) {
        return d.compareTo(CENTURY) >= 0 ? CENTURY.toNanos() : d.toNanos();
    }

    private void checkIdle() {
        if (!downstream.isOpen() && !upstream.isOpen()) {
            return;
        }
        long left = lastActivity + idleNanos - System.nanoTime();
        if (left > 0) {
            checkIdleIn(left);
            return;
        }
        if (!timedOut) {
            // as Envoy's: counted once, both sides closed without flushing (also when a flush was under way)
            timedOut = true;
            counters.idleTimedOut = true;
            if (onIdle != null) {
                onIdle.run();
            }
        }
        closeNow();
    }

    /** Closes both channels at once, what is left to write dropped: Envoy's close without flush. */
    private void closeNow() {
        downstream.close();
        upstream.close();
    }

    /** Closes both channels once what was written to each is flushed. */
    private void closeBoth() {
        closeFlushed(downstream);
        closeFlushed(upstream);
    }

    /**
     * Closes a side of the relay once what was written to it is flushed (Envoy's close with FlushWrite), which leaves
     * the other side to be flushed too; the idle timeout, if any, bounds how long that waits.
     */
    private void closeFlushed(Channel ch) {
        Side side = ch == downstream ? downSide : upSide;
        if (ch instanceof DuplexChannel d && d.isOutputShutdown()) {
            // its output was shut down once what was written to it was flushed (the other side's input ended):
            // nothing is left to flush, and a write would fail as if the flush had (which would close the other side
            // at once, dropping what is still to be written to it)
            side.flushed = true;
            ch.close();
        } else if (ch.isActive()) {
            ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(f -> {
                // failed for the output's shutdown, the other side's input having ended just before: that shutdown
                // came once what was written before it was flushed, and failed only this empty write queued behind
                // it, so nothing was lost (taken for a failed flush, it closed the other side at once, cutting what
                // was still to be written to it)
                side.flushed = f.isSuccess() || ch instanceof DuplexChannel d && d.isOutputShutdown();
                ch.close();
            });
        } else {
            ch.close();
        }
    }

    /** Closes {@code ch} once what was written to it is flushed. */
    static void flushAndClose(Channel ch) {
        if (ch.isActive()) {
            ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        } else {
            ch.close();
        }
    }

    /** One side's handler: what it reads goes to the other side. */
    private final class Side extends ChannelDuplexHandler {
        private final boolean isDownstream;
        /** Whether this side was closed here other than once flushed: the other side is then closed at once. */
        private boolean closedHere;
        /** Whether this side closes for having been flushed ({@link #closeFlushed}). */
        private boolean flushed;

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
                if (!isDownstream && !downstream.isOpen()) {
                    // as Envoy's drain of an upstream whose client left: bytes from it have nowhere to go, it is
                    // closed as the kernel would reset a socket closed for reading
                    ctx.close();
                }
                return;
            }
            lastActivity = System.nanoTime();
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
            other.write(msg, idleNanos > 0 ? other.newPromise().addListener(written) : other.voidPromise());
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
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void close(ChannelHandlerContext ctx, ChannelPromise promise) throws Exception {
            // a close asked of this channel (a peer's close or reset does not pass here): Envoy's local close
            closedHere = !flushed;
            ctx.close(promise);
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (closedHere) {
                other().close();
            } else {
                closeFlushed(other());
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
            if (cause instanceof java.io.IOException) {
                // the socket's error (the peer's reset, a failed write): a remote close, as Envoy's closes a socket
                // on one; the other side gets what was left for it (bounded by the idle timeout), then closes
                closeFlushed(other());
            } else {
                other().close();
            }
        }
    }
}
