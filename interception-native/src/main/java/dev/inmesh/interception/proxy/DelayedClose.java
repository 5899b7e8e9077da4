package dev.inmesh.interception.proxy;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * How the proxy ends an HTTP/1 connection it closes (a {@code connection: close} answer, a refused request, an
 * upstream body that failed), as Envoy's connection manager does with its {@code delayed_close_timeout} (default 1 s):
 * the close waits for what was written to go out, up to the timeout, the wait starting again whenever some of it went
 * out. Then the connection closes, unless the request was not all read (an answer before the end of its body, a
 * refused request): then it waits for the client to close first, up to the timeout again, so that a client still
 * sending reads the answer rather than a reset (Envoy skips this wait for a request read whole since 1.22). Meanwhile
 * what the client sends is read and dropped, and its close (or half-close) ends the connection at once. A timeout
 * that runs out closes the connection and counts {@code downstream_cx_delayed_close_timeout}. A timeout of zero
 * closes the connection once what was written went out, however long that takes, as Envoy does with
 * {@code delayed_close_timeout: 0s}.
 *
 * <p>Envoy stops reading during the wait and watches the socket for the client's close; Netty learns of a close only
 * by reading, so the proxy reads and drops the bytes instead (which also keeps the client's writes from blocking).
 * Envoy restarts the timer on each write that made progress; the proxy looks for progress when the timer fires, so a
 * slow reader's connection closes between one and two timeouts after its last progress.
 */
final class DelayedClose extends ChannelInboundHandlerAdapter {
    /** The handler's name, first in the pipeline while the connection closes. */
    static final String NAME = "delayed-close";

    private final Channel channel;
    private final long timeoutNanos;
    private final Runnable timedOut;
    /** The bytes still to write, as the connection's outbound buffer holds them. */
    private final LongSupplier unwritten;
    /** Whether the client's close is awaited once the writes went out (a request not read whole). */
    private final boolean awaitClient;
    private long unwrittenAtArm;
    private boolean flushed;
    private ScheduledFuture<?> timer;

    DelayedClose(Channel channel, Duration timeout, Runnable timedOut, LongSupplier unwritten, boolean awaitClient) {
        this.channel = channel;
        this.awaitClient = awaitClient;
        this.timeoutNanos = timeout.toNanos();
        this.timedOut = timedOut;
        this.unwritten = unwritten;
    }

    /**
     * Closes {@code channel} once {@code written} (its last write) went out, as the class comment says; called on its
     * event loop. A connection already closing this way is left as it is.
     *
     * @param timedOut what counts a timeout that ran out, or null
     * @param requestRead whether the client's request was read whole: its close is then not awaited
     */
    static void close(Channel channel, ChannelFuture written, Duration timeout, Runnable timedOut,
                      boolean requestRead) {
        if (timeout.isZero() || !channel.isActive() || requestRead && written.isDone()) {
            written.addListener(ChannelFutureListener.CLOSE); // nothing to wait for
            return;
        }
        if (channel.pipeline().get(NAME) != null) {
            return;
        }
        DelayedClose d = new DelayedClose(channel, timeout, timedOut, () -> unwritten(channel), !requestRead);
        channel.pipeline().addFirst(NAME, d);
        d.start(written);
    }

    private static long unwritten(Channel channel) {
        ChannelOutboundBuffer buffer = channel.unsafe().outboundBuffer();
        return buffer == null ? 0 : buffer.totalPendingWriteBytes();
    }

    /** Arms the timer and waits for {@code written}. */
    void start(ChannelFuture written) {
        arm();
        written.addListener(f -> {
            if (!f.isSuccess() || !awaitClient) {
                cancel();
                channel.close();
                return;
            }
            flushed = true;
            arm(); // the wait for the client's close, a whole timeout from now
            // the client's bytes are read (and dropped) from now on, so that its close is seen (turning autoRead on
            // starts a read)
            channel.config().setAutoRead(true);
        });
    }

    private void cancel() {
        if (timer != null) {
            timer.cancel(false);
            timer = null;
        }
    }

    private void arm() {
        cancel();
        unwrittenAtArm = unwritten.getAsLong();
        timer = channel.eventLoop().schedule(this::fire, timeoutNanos, TimeUnit.NANOSECONDS);
    }

    private void fire() {
        timer = null;
        if (!channel.isActive()) {
            return;
        }
        if (!flushed && unwritten.getAsLong() < unwrittenAtArm) {
            arm(); // some went out since: the wait starts again
            return;
        }
        if (timedOut != null) {
            timedOut.run();
        }
        channel.close();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        ReferenceCountUtil.release(msg); // nothing the client sends now is handled
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent) {
            ctx.close(); // the client closed its side: the connection ends now
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        cancel();
        ctx.fireChannelInactive();
    }
}
