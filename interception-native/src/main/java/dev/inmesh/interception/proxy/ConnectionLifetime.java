package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.ConnectionLifetimes;
import dev.inmesh.runtime.stats.DownstreamStats;
import io.netty.channel.Channel;
import io.netty.handler.codec.http2.DefaultHttp2GoAwayFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * How long one downstream HTTP connection lives, as Envoy's connection manager keeps it by its
 * {@link ConnectionLifetimes}: the idle timer runs while no request is active (from the accept, stopped by a request,
 * started again when the last one ends; an HTTP/1 request is active from its first byte, as Envoy's codec begins its
 * stream there), the duration timer from the accept, and requests are counted. On the idle
 * timeout ({@code downstream_cx_idle_timeout}), the maximum duration ({@code downstream_cx_max_duration_reached}) or
 * an HTTP/2 connection's last allowed request ({@code downstream_cx_max_requests_reached}) the connection drains:
 * before its codec was chosen it closes at once; HTTP/2 gets a GOAWAY that still takes new streams, then after the
 * drain timeout a final GOAWAY, closing once its streams are done; HTTP/1 answers carry {@code connection: close} and
 * end the connection, and an idle one closes after the drain timeout. An HTTP/1 connection's last allowed request
 * ends it: its answer carries {@code connection: close}. A request costs a count and a clock read, not a timer: the
 * idle timer, when due, looks at whether a request is active and when the last one ended, and waits for the rest (or,
 * with a request active, for the last one to end). Runs on the connection's event loop only (an h2c stream's channel
 * shares its connection's).
 */
final class ConnectionLifetime {
    /** A connection's lifetime, on its channel once it reached its connection manager. */
    private static final AttributeKey<ConnectionLifetime> LIFETIME = AttributeKey.valueOf("inmesh.lifetime");

    private final ConnectionLifetimes limits;
    /** The idle timeout in nanoseconds, 0 for none. */
    private final long idleNanos;
    private Channel channel;
    private DownstreamStats stats;
    private ScheduledFuture<?> idleTimer;
    private ScheduledFuture<?> durationTimer;
    private ScheduledFuture<?> drainTimer;
    /** 0 before the codec is chosen, 1 HTTP/1, 2 HTTP/2. */
    private int codec;
    private int active;
    /**
     * An HTTP/1 request's head is arriving, not read whole yet ({@link #headBegan}): its stream is active, as Envoy's
     * HTTP/1 codec began it with the request's first byte, until the exchange takes it ({@link #streamStarted}).
     */
    private boolean head;
    /** When the last request ended (or the connection was taken): the idle time runs from here. */
    private long idleSinceNanos;
    private long requests;
    private boolean draining;
    /** An HTTP/2 connection sent its final GOAWAY: it closes once its last stream ends. */
    private boolean closing;

    ConnectionLifetime(ConnectionLifetimes limits) {
        this.limits = limits;
        this.idleNanos = nanos(limits.idleTimeout());
    }

    /**
     * The connection reached its connection manager: the idle and duration timers start, and stop when it closes.
     *
     * @param stats the connection manager's statistics, or null when none are kept
     */
    void start(Channel ch, DownstreamStats stats) {
        this.channel = ch;
        this.stats = stats;
        ch.attr(LIFETIME).set(this);
        idleSinceNanos = System.nanoTime();
        armIdle(idleNanos);
        if (limits.maxConnectionDuration() != null) {
            durationTimer = schedule(nanos(limits.maxConnectionDuration()), this::durationReached);
        }
        ch.closeFuture().addListener(f -> {
            cancel(idleTimer);
            cancel(durationTimer);
            cancel(drainTimer);
        });
    }

    void codecChosen(boolean http2) {
        codec = http2 ? 2 : 1;
    }

    /**
     * A request (an HTTP/1 request, an h2c stream) began: the connection is not idle, and the request counts against
     * {@code max_requests_per_connection}. An HTTP/1 connection's last allowed request drains it (its answer ends it);
     * an HTTP/2 connection's starts its drain.
     */
    void streamStarted() {
        head = false;
        active++;
        int max = limits.maxRequestsPerConnection();
        if (max > 0 && ++requests >= max) {
            if (stats != null) {
                stats.connectionMaxRequestsReached();
            }
            if (codec == 2) {
                drain();
            } else {
                draining = true; // its answer carries connection: close and ends the connection
            }
        }
    }

    /**
     * An HTTP/1 request's first byte was read: the connection is not idle, nor does a drain close it, until the
     * request its head makes ends ({@link #streamStarted}, then {@link #streamEnded}), or the connection closes.
     */
    void headBegan() {
        head = true;
    }

    /** A request ended: once none is active, the idle time starts over (a timer only if none is pending). */
    void streamEnded() {
        if (active > 0 && --active == 0) {
            if (closing) {
                channel.close(); // the last stream the final GOAWAY let finish is done
                return;
            }
            idleSinceNanos = System.nanoTime();
            if (idleTimer == null) {
                armIdle(idleNanos);
            }
        }
    }

    /**
     * Whether the connection drains: an HTTP/1 answer carries {@code connection: close} and ends the connection. A
     * field read, once per answer.
     */
    boolean draining() {
        return draining;
    }

    private void armIdle(long nanos) {
        if (idleNanos > 0 && !draining && channel.isActive()) {
            idleTimer = schedule(nanos, this::idleTimeout);
        }
    }

    private void idleTimeout() {
        idleTimer = null;
        if (active > 0 || head || draining) {
            return; // a request is active: the last one to end starts the wait again
        }
        long left = idleNanos - (System.nanoTime() - idleSinceNanos);
        if (left > 0) {
            armIdle(left); // requests came and went since it was set: the rest of the wait
            return;
        }
        if (stats != null) {
            stats.connectionIdleTimeout();
        }
        drain();
    }

    private void durationReached() {
        durationTimer = null;
        if (stats != null) {
            stats.connectionMaxDurationReached();
        }
        drain();
    }

    /**
     * Starts the drain sequence of an HTTP/2 connection whose listener or filter chain drains (or the whole proxy),
     * as Envoy's connection manager does when its drain decision says close: the shutdown notice, which still takes
     * the streams racing with it, then after the connection manager's {@code drain_timeout} the final GOAWAY. A
     * connection with no lifetime is closed (its codec's GOAWAY).
     */
    static void drain(Channel ch) {
        ConnectionLifetime l = ch.attr(LIFETIME).get();
        if (l == null) {
            ch.close();
        } else if (ch.eventLoop().inEventLoop()) {
            l.drain();
        } else {
            ch.eventLoop().execute(l::drain);
        }
    }

    /** Envoy's drain sequence, once. */
    private void drain() {
        if (draining && drainTimer != null) {
            return;
        }
        draining = true;
        if (codec == 0) {
            channel.close(); // no request was read: nothing to drain
            return;
        }
        if (codec == 2) {
            // the shutdown notice: a GOAWAY with the highest stream id, so that streams racing with it still count
            channel.writeAndFlush(new DefaultHttp2GoAwayFrame(Http2Error.NO_ERROR)
                    .setExtraStreamIds(Integer.MAX_VALUE));
        }
        drainTimer = schedule(Math.max(1, nanos(limits.drainTimeout())), this::drainTimeout);
    }

    private void drainTimeout() {
        if (codec == 2) {
            // the final GOAWAY, with the last stream taken (none after it is); the streams it leaves open finish,
            // and the connection closes when the last one ends (streamEnded), as Envoy's connection manager closes
            // it once it has no stream left (Netty's frame codec would cut them on a close: it waits for none)
            channel.writeAndFlush(new DefaultHttp2GoAwayFrame(Http2Error.NO_ERROR));
            closing = true;
            if (active == 0) {
                channel.close();
            }
        } else if (active == 0 && !head) {
            channel.close();
        }
        // an HTTP/1 request still active, or its head arriving: its answer carries connection: close and ends the
        // connection
    }

    private ScheduledFuture<?> schedule(long nanos, Runnable task) {
        return channel.eventLoop().schedule(task, nanos, TimeUnit.NANOSECONDS);
    }

    /** A duration in nanoseconds, saturated (a timeout of centuries is none in practice). */
    private static long nanos(Duration d) {
        return d.getSeconds() >= Long.MAX_VALUE / 1_000_000_000L ? Long.MAX_VALUE : d.toNanos();
    }

    private static void cancel(ScheduledFuture<?> f) {
        if (f != null) {
            f.cancel(false);
        }
    }
}
