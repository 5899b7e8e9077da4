package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.ConnectionLifetimes;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.util.ByteProcessor;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The connection manager's {@code request_timeout} and {@code request_headers_timeout} on one HTTP/1 connection, as
 * Envoy's connection manager arms them with each request's stream: both run from the request's first byte,
 * {@code request_headers_timeout} until its head is read, {@code request_timeout} until the whole request is read or
 * its answer begins. A request costs two clock reads and a few field writes, not a timer: the connection has one
 * timer at most, set when a request begins and none is pending; when due it looks at the request being read then,
 * and waits for the rest of its time or ends it through the exchange ({@link HttpBridge.Exchange#requestTimedOut}).
 * A request read while the one before it is still being answered is timed from that answer on, as Envoy's HTTP/1
 * codec reads the next request only then. Runs on the connection's event loop only.
 */
final class RequestTimeouts {
    /** {@code request_timeout} in nanoseconds, 0 for none. */
    private final long requestNanos;
    /** {@code request_headers_timeout} in nanoseconds, 0 for none. */
    private final long headersNanos;
    private Channel channel;
    private HttpBridge.Exchange exchange;
    private ScheduledFuture<?> timer;
    /** When {@link #timer} is due, in {@link System#nanoTime} terms. */
    private long timerDue;
    /** When the request being read began (its first byte, or the answer before it), -1 when none is timed. */
    private long start = -1;
    private boolean headRead;
    /** The last request was read whole (or none came yet): the next byte begins a request. */
    private boolean between = true;

    private RequestTimeouts(long requestNanos, long headersNanos) {
        this.requestNanos = requestNanos;
        this.headersNanos = headersNanos;
    }

    /** The timeouts of a connection manager's connections, or null when it sets neither (nothing to do). */
    static RequestTimeouts of(ConnectionLifetimes l) {
        return l.requestTimeout() == null && l.requestHeadersTimeout() == null ? null
                : new RequestTimeouts(nanos(l.requestTimeout()), nanos(l.requestHeadersTimeout()));
    }

    /** The connection's HTTP/1 exchange took the connection: the timer stops when it closes. */
    void start(Channel ch, HttpBridge.Exchange ex) {
        this.channel = ch;
        this.exchange = ex;
        ch.closeFuture().addListener(f -> {
            start = -1;
            if (timer != null) {
                timer.cancel(false);
            }
        });
    }

    /**
     * The decoder has bytes to read: between requests, they begin one, unless they are only the line ends a client may
     * send after a request (which Envoy's codec skips without beginning a stream).
     */
    void bytesRead(ByteBuf in) {
        if (between && in.forEachByte(ByteProcessor.FIND_NON_CRLF) >= 0) {
            between = false;
            headRead = false;
            start = System.nanoTime();
            arm(window());
        }
    }

    /** The decoder read a request's head. */
    void headRead() {
        headRead = true;
        if (requestNanos == 0) {
            start = -1; // nothing more to time
        }
    }

    /** The decoder read the request's end: it is whole. */
    void requestRead() {
        between = true;
        start = -1;
    }

    /** The answer to the request being read began: as Envoy, its {@code request_timeout} stops. */
    void answered() {
        start = -1;
    }

    /** The request before is answered: a request being read is timed from now, Envoy's stream begins only now. */
    void previousAnswered() {
        if (start >= 0) {
            start = System.nanoTime();
            arm(window());
        }
    }

    /** How long the request being read may take from its start: the earlier of the timeouts that apply to it. */
    private long window() {
        return headRead || headersNanos == 0 ? requestNanos : requestNanos == 0 ? headersNanos
                : Math.min(requestNanos, headersNanos);
    }

    /**
     * Makes sure the timer is due within {@code nanos}: a pending one due by then stays (the usual case, nothing
     * scheduled); one due later (set for a longer wait of an earlier request) is set again.
     */
    private void arm(long nanos) {
        if (channel == null || !channel.isActive()) {
            return;
        }
        long due = System.nanoTime() + Math.max(1, nanos);
        if (timer != null) {
            if (timerDue - due <= 0) {
                return;
            }
            timer.cancel(false);
        }
        timerDue = due;
        timer = channel.eventLoop().schedule(this::due, Math.max(1, nanos), TimeUnit.NANOSECONDS);
    }

    private void due() {
        timer = null;
        long began = start;
        if (began < 0) {
            return;
        }
        long elapsed = System.nanoTime() - began;
        long window = window();
        if (elapsed < window) {
            arm(window - elapsed); // the request began after the timer was set: the rest of its wait
            return;
        }
        boolean headerExpired = !headRead && headersNanos > 0 && elapsed >= headersNanos;
        if (exchange.requestTimedOut(headRead, headerExpired, began)) {
            start = -1;
        }
        // else the exchange is still answering the request before: previousAnswered times this one anew
    }

    /** A duration in nanoseconds, 0 for none, at most a few decades (a longer timeout is none in practice). */
    static long nanos(Duration d) {
        long most = Long.MAX_VALUE / 4; // leaves room to add it to System.nanoTime()
        return d == null ? 0 : d.compareTo(Duration.ofNanos(most)) >= 0 ? most : d.toNanos();
    }
}
