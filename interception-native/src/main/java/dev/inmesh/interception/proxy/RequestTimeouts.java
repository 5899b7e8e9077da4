package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.ConnectionLifetimes;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.util.ByteProcessor;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Where each request of one HTTP/1 connection begins, and its connection manager's {@code request_timeout},
 * {@code request_headers_timeout} and {@code stream_idle_timeout} until its head is read, as Envoy's connection manager
 * arms them with each request's stream, which its HTTP/1 codec begins at the request's first byte: all run from
 * there, {@code request_headers_timeout} and {@code stream_idle_timeout} until its head is read (the bytes of a head
 * not whole yet are no stream activity; from the head on the router times the stream's idleness), {@code
 * request_timeout} until the whole request is read or its answer begins. From its first byte the request is the
 * connection's stream ({@link ConnectionLifetime#headBegan}): the connection is not idle. A request costs two clock
 * reads and a few field writes, not a timer: the connection has one timer at most, set when a request begins and none
 * is pending; when due it looks at the request being read then, and waits for the rest of its time or ends it
 * through the exchange ({@link HttpBridge.Exchange#requestTimedOut}). A request read while the one before it is still
 * being answered is timed from that answer on, as Envoy's HTTP/1 codec reads the next request only then. Runs on the
 * connection's event loop only.
 */
final class RequestTimeouts {
    /** Which timeout ended a request. */
    enum Expired {
        /** {@code request_headers_timeout}. */
        HEADERS,
        /** {@code request_timeout}. */
        REQUEST,
        /** {@code stream_idle_timeout}, before the head was read. */
        IDLE
    }

    /** {@code request_timeout} in nanoseconds, 0 for none. */
    private final long requestNanos;
    /** {@code request_headers_timeout} in nanoseconds, 0 for none. */
    private final long headersNanos;
    /** {@code stream_idle_timeout} in nanoseconds, 0 for none. */
    private final long idleNanos;
    private final ConnectionLifetime lifetime;
    private Channel channel;
    private HttpBridge.Exchange exchange;
    private ScheduledFuture<?> timer;
    /** When {@link #timer} is due, in {@link System#nanoTime} terms. */
    private long timerDue;
    /** When the request being read began (its first byte, or the answer before it), -1 when none is timed. */
    private long start = -1;
    /** When the request being read began, timed or not. */
    private long began;
    private boolean headRead;
    /** The last request was read whole (or none came yet): the next byte begins a request. */
    private boolean between = true;

    private RequestTimeouts(long requestNanos, long headersNanos, long idleNanos, ConnectionLifetime lifetime) {
        this.requestNanos = requestNanos;
        this.headersNanos = headersNanos;
        this.idleNanos = idleNanos;
        this.lifetime = lifetime;
    }

    /**
     * The requests of an HTTP/1 connection of a connection manager with lifetimes {@code l} and
     * {@code stream_idle_timeout} {@code streamIdle} (null or zero: none), whose lifetime is {@code lifetime}.
     */
    static RequestTimeouts of(ConnectionLifetimes l, Duration streamIdle, ConnectionLifetime lifetime) {
        return new RequestTimeouts(nanos(l.requestTimeout()), nanos(l.requestHeadersTimeout()), nanos(streamIdle),
                lifetime);
    }

    /** The connection's HTTP/1 exchange took the connection: the timer stops when it closes. */
    void start(Channel ch, HttpBridge.Exchange ex) {
        this.channel = ch;
        this.exchange = ex;
        ch.closeFuture().addListener(f -> {
            start = -1; // (began stays: the exchange logs a head the close cut short)
            if (timer != null) {
                timer.cancel(false);
            }
        });
    }

    /**
     * The bytes the decoder skips before a request (Netty's {@code HttpObjectDecoder}: control characters and
     * whitespace, {@code 0x00} to {@code 0x20}), which begin none: a byte found by this processor does.
     */
    private static final ByteProcessor FIND_REQUEST_BYTE = b -> b >= 0 && b <= ' ';

    /**
     * The decoder has bytes to read: between requests, they begin one, unless they are only the line ends, or other
     * whitespace and control bytes, a client may send after a request (which the decoder skips, as Envoy's codec
     * begins no stream with a line end).
     */
    void bytesRead(ByteBuf in) {
        if (between && in.forEachByte(FIND_REQUEST_BYTE) >= 0) {
            between = false;
            headRead = false;
            start = System.nanoTime();
            began = start;
            lifetime.headBegan();
            long window = window();
            if (window > 0) {
                arm(window);
            } else {
                start = -1; // nothing to time
            }
        }
    }

    /** Whether a request's head is arriving: it began, and its head is not whole yet. */
    boolean headArriving() {
        return !between && !headRead;
    }

    /** When the request being read began ({@link System#nanoTime}): its first byte, or the answer before it. */
    long began() {
        return began;
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
        if (!between) {
            began = System.nanoTime();
        }
        if (start >= 0) {
            start = began;
            arm(window());
        }
    }

    /**
     * How long the request being read may take from its start: the earliest of the timeouts that apply to it (0 for
     * none).
     */
    private long window() {
        return headRead ? requestNanos : earliest(earliest(requestNanos, headersNanos), idleNanos);
    }

    /** The earlier of two timeouts, 0 for none. */
    private static long earliest(long a, long b) {
        return a == 0 ? b : b == 0 ? a : Math.min(a, b);
    }

    /** Whether timeout {@code nanos} (0: none) ran out {@code elapsed} nanoseconds after the request began. */
    private static boolean expired(long nanos, long elapsed) {
        return nanos > 0 && elapsed >= nanos;
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
        long from = start;
        if (from < 0) {
            return;
        }
        long elapsed = System.nanoTime() - from;
        long window = window();
        if (elapsed < window) {
            arm(window - elapsed); // the request began after the timer was set: the rest of its wait
            return;
        }
        Expired which = headRead || !expired(headersNanos, elapsed) && expired(requestNanos, elapsed)
                ? Expired.REQUEST : expired(headersNanos, elapsed) ? Expired.HEADERS : Expired.IDLE;
        if (exchange.requestTimedOut(headRead, which, from)) {
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
