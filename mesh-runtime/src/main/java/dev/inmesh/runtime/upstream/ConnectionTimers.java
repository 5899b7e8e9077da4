package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.stats.UpstreamStats;
import io.netty.channel.Channel;
import io.netty.util.AttributeKey;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.impl.HttpClientConnectionInternal;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * One upstream connection's lifetimes, each a timer of its own on the connection's event loop, as Envoy arms them for
 * each connection: {@code idle_timeout} runs while the connection carries no request, and closes it
 * ({@code upstream_cx_idle_timeout}, as Envoy's codec client, {@code CodecClient::onIdleTimeout} in
 * {@code source/common/http/codec_client.cc}); {@code max_connection_duration} runs from the connect, and drains the
 * connection: it takes no new request and closes once those it carries are done
 * ({@code upstream_cx_max_duration_reached}, as {@code ActiveClient::onConnectionDurationTimeout} in
 * {@code source/common/conn_pool/conn_pool_base.cc}). So does
 * {@link #drain} for {@code max_requests_per_connection}. The connection's pool ({@link HostPool.Connections}) stops
 * giving it requests and closes it.
 */
final class ConnectionTimers {
    private static final AttributeKey<ConnectionTimers> KEY = AttributeKey.valueOf("dev.inmesh.connection-timers");

    private final HttpConnection connection;
    private final Channel channel;
    private final HostPool.Connections pool;
    private final long idleMillis;
    private final Supplier<UpstreamStats> stats;
    /** Requests that have the connection and whose exchange is not over. */
    private int requests; // guarded by this
    private ScheduledFuture<?> idle; // guarded by this
    private ScheduledFuture<?> duration; // guarded by this
    /** When the connection's last request ended (or it connected), {@link System#nanoTime()}. */
    private long idleSince = System.nanoTime(); // guarded by this
    /** Taking no new request: closes once its requests are done. */
    private boolean draining; // guarded by this

    private ConnectionTimers(HttpConnection connection, Channel channel, HostPool.Connections pool, long idleMillis,
                             Supplier<UpstreamStats> stats) {
        this.connection = connection;
        this.channel = channel;
        this.pool = pool;
        this.idleMillis = idleMillis;
        this.stats = stats;
    }

    /**
     * Arms the timers of {@code connection}, just connected, whose pool is {@code pool}: {@code idleMillis} and
     * {@code maxDurationMillis}, 0 for none; counted in the cluster's {@code stats} (which may give null). Null for a
     * connection of no pool; the connection's close handler calls {@link #closed}.
     */
    static ConnectionTimers install(HttpConnection connection, HostPool.Connections pool, long idleMillis,
                                    long maxDurationMillis, Supplier<UpstreamStats> stats) {
        if (!(connection instanceof HttpClientConnectionInternal internal) || pool == null) {
            return null;
        }
        Channel channel = internal.channelHandlerContext().channel();
        ConnectionTimers timers = new ConnectionTimers(connection, channel, pool, idleMillis, stats);
        channel.attr(KEY).set(timers);
        synchronized (timers) {
            if (maxDurationMillis > 0) {
                timers.duration = channel.eventLoop().schedule(timers::durationReached, maxDurationMillis,
                        TimeUnit.MILLISECONDS);
            }
            timers.armIdle();
        }
        return timers;
    }

    /** The timers of a connection of a host's pool, or null. */
    static ConnectionTimers of(HttpConnection connection) {
        return connection instanceof HttpClientConnectionInternal internal
                ? internal.channelHandlerContext().channel().attr(KEY).get() : null;
    }

    /**
     * A request has the connection: the idle timer stops counting. It is not cancelled: when it is due it finds the
     * request, or the time since the last one ended too short, and waits again (a timer cancelled and scheduled anew
     * for every request cost 0.5% of the proxy's event loop samples).
     */
    synchronized void requestStarted() {
        requests++;
    }

    /** A request's exchange on the connection is over: with none left, the idle timer runs again. */
    synchronized void requestEnded() {
        if (--requests == 0) {
            idleSince = System.nanoTime();
            armIdle();
        }
    }

    /**
     * The connection takes no new request and closes once those it carries are done, at once with none (Envoy's
     * pool drains it); its idle timer no longer runs.
     */
    void drain() {
        synchronized (this) {
            if (draining) {
                return;
            }
            draining = true;
            cancel(idle);
            idle = null;
        }
        pool.drain(connection);
    }

    private void durationReached() {
        UpstreamStats s = stats.get();
        if (s != null) {
            s.connectionMaxDuration();
        }
        drain();
    }

    private void idleReached() {
        synchronized (this) {
            idle = null;
            // a request given the connection just now, whose start is on its way, keeps it open; one under way arms
            // the timer again when it is over
            if (requests > 0 || draining) {
                return;
            }
            if (((HttpClientConnectionInternal) connection).activeStreams() > 0) {
                // a stream whose exchange is over but not yet its stream (a reset on its way): the wait again
                idle = channel.eventLoop().schedule(this::idleReached, idleMillis, TimeUnit.MILLISECONDS);
                return;
            }
            long idleFor = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - idleSince);
            if (idleFor < idleMillis) { // a request came and went since it was armed: the rest of the wait
                idle = channel.eventLoop().schedule(this::idleReached, idleMillis - idleFor, TimeUnit.MILLISECONDS);
                return;
            }
            draining = true;
        }
        if (pool.closeIdle(connection)) {
            UpstreamStats s = stats.get();
            if (s != null) {
                s.connectionIdleTimeout();
            }
        } else {
            synchronized (this) {
                draining = false; // a request came: it arms the timer again when it is over (or came and went)
                armIdle();
            }
        }
    }

    /**
     * Under the lock: the idle timer, unless there is none, or the connection carries a request or drains, or it is
     * pending already (it then waits the rest when it is due).
     */
    private void armIdle() {
        if (idleMillis > 0 && requests == 0 && !draining && idle == null) {
            idle = channel.eventLoop().schedule(this::idleReached, idleMillis, TimeUnit.MILLISECONDS);
        }
    }

    /** The connection closed: its timers stop. */
    synchronized void closed() {
        cancel(idle);
        cancel(duration);
        idle = null;
        duration = null;
    }

    private static void cancel(ScheduledFuture<?> timer) {
        if (timer != null) {
            timer.cancel(false);
        }
    }
}
