package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.stats.UpstreamStats;
import io.vertx.core.Future;
import io.vertx.core.VertxException;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.impl.Http1xClientConnection;
import io.vertx.core.internal.VertxInternal;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * One host's HTTP/2 connections, opened as Envoy's HTTP/2 pool opens them: a request takes a stream on the first
 * connection with one to spare, each connection carrying at most {@code max_concurrent_streams} streams at once (fewer
 * when the server's {@code SETTINGS_MAX_CONCURRENT_STREAMS} says so); when every connection is at its cap, another is
 * opened, up to the pool's connection limit (the cluster's {@code max_connections}); beyond it the request waits
 * here for a stream. As in Envoy's pool, a request that finds no connection with a stream to spare is pending, whether
 * it waits here or for the connection being opened for it: at most {@code max_pending_requests} are, and one more is
 * refused with {@link ConnectionPoolTooBusyException} (the router's 503 UO). A waiting request whose caller gives up
 * on it leaves the queue at once ({@link #cancel}), as Envoy's pool cancels a pending stream.
 *
 * <p>As Envoy counts the streams a connection being opened will take, no connection is opened for requests that
 * those being opened can carry: five requests at once with a cap of two open three connections, not five (Vert.x's
 * own pool, given several HTTP/2 connections, would open one for each request that finds no connected one with a
 * stream to spare). The requests wait here until their connection is up and has told its limit, so that a server
 * whose limit is below the cap gets the others on further connections: until the server has answered a PING sent once
 * the connection is up (every SETTINGS frame it sent as it started then read), answered a stream's head or ended a
 * stream, for {@link #SETTLE_MILLIS} at most, the connection carries one stream, and counts as one being opened for
 * the others. Each connection is a lane: a
 * Vert.x client with one HTTP/2 connection (Vert.x holds there a request beyond the server's current limit, should the
 * server lower it later). A request's stream counts from the moment it is given a lane until its response has ended,
 * or its request or response failed (a reset, sent or not, the connection closed).
 *
 * <p>As Envoy's pool under {@code max_requests_per_connection}, a connection that was given that many streams takes no
 * more: its lane leaves the pool, which opens another for the next request (the lane's connection counting to the
 * limit until then), and closes once those streams are done. So does a connection that got the upstream's GOAWAY or
 * reached its {@code max_connection_duration} ({@link ConnectionTimers}), as Envoy's pool drains it: it takes no new
 * stream and the pool closes it once its last stream is done, at once when it has none (Vert.x's client only stops
 * giving it requests, and would leave it open until its idle timeout).
 *
 * <p>For a host of a cluster of several hosts whose limits are tight ({@link HostPool.Settings#clusterWide()}), the
 * limits are the cluster's, as in Envoy's pools: a connection is opened only while the cluster's connections, open or
 * being opened, are under {@code max_connections}, or when this pool has none at all (Envoy always lets a host's pool
 * open its first, so that its waiting requests are not stranded). Such a pool also
 * carries HTTP/1.1 lanes, each one connection carrying one request at a time.
 */
final class Http2Pool implements HttpClient, PendingRequest.Queue {
    private final VertxInternal vertx;
    private final int maxStreams;
    private final int maxConnections;
    private final int maxPending;
    /** Streams one connection is given in its life ({@code max_requests_per_connection}); 0: no limit. */
    private final long maxRequests;
    /** Told, outside the lock, when a connection is given its last stream under {@link #maxRequests}. */
    private volatile Runnable lastStreamGiven = () -> { };
    private final Function<Lane, HttpClient> lanes;
    /** The cluster's breakers whose connection and pending limits this pool follows, or null for its own. */
    private final CircuitBreakerState cluster;
    private final List<Lane> open = new ArrayList<>(); // guarded by this
    private final ArrayDeque<PendingRequest> waiting = new ArrayDeque<>(); // guarded by this
    /**
     * The pending requests not yet over (those that found no connection ready): waiting, or given a lane whose
     * connection is being opened.
     */
    private final java.util.Set<PendingRequest> pending = new java.util.HashSet<>(); // guarded by this; by identity
    /**
     * Lanes out of {@link #open} whose streams are not all done: their connections still count to the limit, and a
     * shutdown drains them with the others.
     */
    private final List<Lane> retired = new ArrayList<>(0); // guarded by this
    private boolean closed; // guarded by this
    /** The host left its cluster ({@link #closeWhenDone}): lanes close once idle, the pool once done. */
    private boolean draining; // guarded by this
    /** Callers handed this pool that have not yet asked for their request ({@link #handedOut}). */
    private int handedOut; // guarded by this

    /**
     * @param maxStreams the streams one connection carries at once ({@code max_concurrent_streams})
     * @param maxConnections the most connections (lanes) this pool opens
     * @param maxPending how many requests may wait for a stream; negative: no limit
     * @param maxRequests how many streams one connection is given in its life; 0 or less: no limit
     * @param lanes makes a lane's client, which reports its connections to the lane
     */
    Http2Pool(VertxInternal vertx, int maxStreams, int maxConnections, int maxPending, long maxRequests,
              Function<Lane, HttpClient> lanes) {
        this(vertx, maxStreams, maxConnections, maxPending, maxRequests, lanes, null);
    }

    /**
     * A pool that, with {@code cluster}, opens connections and lets requests wait under the cluster's
     * {@code max_connections} and {@code max_pending_requests} (read from its counts) rather than under its own
     * {@code maxPending}; its {@code maxConnections} still caps its own connections.
     */
    Http2Pool(VertxInternal vertx, int maxStreams, int maxConnections, int maxPending, long maxRequests,
              Function<Lane, HttpClient> lanes, CircuitBreakerState cluster) {
        this.cluster = cluster;
        this.vertx = vertx;
        this.maxStreams = maxStreams;
        this.maxConnections = Math.max(1, maxConnections);
        this.maxPending = maxPending;
        this.maxRequests = Math.max(0, maxRequests);
        this.lanes = lanes;
    }

    /**
     * How long a new connection carries one stream at most, waiting for its server to tell its limit
     * ({@link Lane#settled}).
     */
    static final long SETTLE_MILLIS = 1_000;

    /** One connection's client, and the streams counted on it. */
    final class Lane implements HostPool.Connections {
        private final HttpClient client;
        private int active; // guarded by Http2Pool.this
        private long limit = maxStreams; // guarded by Http2Pool.this
        private HttpConnection connection; // guarded by Http2Pool.this
        /**
         * Whether the connection has told its limit: the server answered a PING sent once it was up (so every
         * SETTINGS frame it sent as it started, before it read that PING, has been read), answered a stream's head,
         * or one of its streams ended; or {@link #SETTLE_MILLIS} passed (a server that answers none of these soon,
         * its first stream long). Until then it carries one stream.
         */
        private volatile boolean settled; // written under Http2Pool.this; read without it by send
        /** Streams given to the lane's connection so far, for {@code max_requests_per_connection}. */
        private long given; // guarded by Http2Pool.this
        /**
         * Out of the pool for good (its connection was given its last stream, or got GOAWAY): closes once its streams
         * are done.
         */
        private boolean retired; // guarded by Http2Pool.this
        /** The connection that drained (Vert.x's client no longer holds one that got GOAWAY), or null. */
        private HttpConnection goneAway; // guarded by Http2Pool.this

        private Lane() {
            this.client = lanes.apply(this);
        }

        /**
         * The lane's connection is up: its cap becomes the lower of {@code max_concurrent_streams} and the server's
         * limit, which a later SETTINGS frame may change; an HTTP/1.1 connection carries one request at a time (none
         * comes over TLS: HostPool closes a connection whose ALPN gave no h2 before a lane hears of it). Vert.x hands the connection over at the server's first SETTINGS frame, and a server may
         * lower its limit in a second one right after (Python's h2 does, when told its limit): until the server has
         * answered a PING, the connection carries one stream, so that the requests beyond the server's limit wait here
         * for further connections rather than in the lane's client for one of its streams to end.
         */
        @Override
        public void opened(HttpConnection c) {
            synchronized (Http2Pool.this) {
                connection = c;
                settled = c instanceof Http1xClientConnection;
            }
            if (c instanceof Http1xClientConnection) {
                limit(c, 1);
                return;
            }
            limit(c, c.remoteSettings().getMaxConcurrentStreams());
            c.remoteSettingsHandler(s -> limit(c, s.getMaxConcurrentStreams()));
            // the connection's closing, should the PING fail, gives the lane's streams back on its own; Vert.x
            // neither fails nor times out a PING the server leaves unanswered
            c.ping(Buffer.buffer(new byte[8])).onComplete(ar -> settle(c));
            io.vertx.core.Context context = io.vertx.core.Vertx.currentContext();
            if (context != null) {
                context.owner().setTimer(SETTLE_MILLIS, id -> settle(c));
            }
        }

        /** A stream of the lane's connection got its answer's head: its server's SETTINGS came before. */
        private void answered() {
            HttpConnection c;
            synchronized (Http2Pool.this) {
                c = settled ? null : connection;
            }
            if (c != null) {
                settle(c);
            }
        }

        /** The server has told its limit: the connection carries as many streams as it allows. */
        private void settle(HttpConnection c) {
            List<Runnable> sends;
            synchronized (Http2Pool.this) {
                if (connection != c || settled) {
                    return;
                }
                settled = true;
                limit = Math.min(maxStreams, Math.max(1, c.remoteSettings().getMaxConcurrentStreams()));
                sends = dispatch();
            }
            sends.forEach(Runnable::run);
        }

        /** The lane's connection is gone: the next request opens another, which starts from the full cap again. */
        @Override
        public void closed(HttpConnection c) {
            List<Runnable> sends;
            synchronized (Http2Pool.this) {
                if (connection != c) {
                    return; // an older connection of the lane, which drained
                }
                connection = null;
                settled = false;
                limit = maxStreams;
                given = 0;
                sends = dispatch();
            }
            sends.forEach(Runnable::run);
        }

        /**
         * The lane's connection got the upstream's GOAWAY, or reached its {@code max_connection_duration} or its
         * last request: as Envoy's pool, it drains, taking no new stream, and is closed once its last stream is done,
         * at once when it has none; the next request takes another lane.
         */
        @Override
        public void drain(HttpConnection c) {
            List<Runnable> sends;
            boolean close;
            synchronized (Http2Pool.this) {
                if (connection != c || retired) {
                    return; // an older connection of the lane, or one already draining
                }
                retire(this);
                goneAway = c;
                close = active == 0;
                if (close) {
                    Http2Pool.this.retired.remove(this);
                }
                sends = dispatch();
            }
            sends.forEach(Runnable::run);
            if (close) {
                shutdown(HostPool.DRAIN_SECONDS, TimeUnit.SECONDS);
            }
        }

        @Override
        public boolean closeIdle(HttpConnection c) {
            synchronized (Http2Pool.this) {
                if (connection != c || retired || active > 0) {
                    return false; // given a stream meanwhile (or already closing)
                }
            }
            drain(c); // no stream: closes at once
            return true;
        }

        /**
         * Closes the lane's connections once their streams are done, for {@code timeout} at most: its client's, and
         * the one that drained, which Vert.x's client let go of if it got GOAWAY.
         */
        private Future<Void> shutdown(long timeout, TimeUnit unit) {
            HttpConnection c;
            synchronized (Http2Pool.this) {
                c = goneAway;
            }
            Future<Void> closed = client.shutdown(timeout, unit);
            return c == null ? closed : Future.all(closed, c.shutdown(timeout, unit)).mapEmpty();
        }

        private void limit(HttpConnection c, long serverLimit) {
            List<Runnable> sends;
            synchronized (Http2Pool.this) {
                if (connection != c) {
                    return; // an older connection of the lane, draining
                }
                limit = Math.min(maxStreams, Math.max(1, serverLimit));
                sends = dispatch();
            }
            sends.forEach(Runnable::run);
        }
    }

    @Override
    public Future<HttpClientRequest> request(RequestOptions options) {
        return request(options, null, null);
    }

    @Override
    public Future<HttpClientRequest> request(RequestOptions options, CircuitBreakerState breakers,
                                             UpstreamStats stats) {
        PendingRequest w;
        List<Runnable> sends;
        synchronized (this) {
            if (handedOut > 0) {
                handedOut--;
            }
            if (closed) {
                return vertx.getOrCreateContext().failedFuture(new VertxException("connection pool closed", true));
            }
            if (ready() != null) {
                w = PendingRequest.of(vertx, options); // a stream to spare on a connection: not pending
            } else {
                // as Envoy's pool: no connection ready, so the request is pending (waiting here, or for the
                // connection being opened for it) and counts under max_pending_requests: its caller's breakers,
                // else the cluster's (its limits held across its hosts), else this pool's own
                CircuitBreakerState limit = breakers != null ? breakers : cluster;
                if (limit != null ? !limit.tryStartPending() : maxPending >= 0 && pending.size() >= maxPending) {
                    return vertx.getOrCreateContext().failedFuture(new ConnectionPoolTooBusyException(
                            "Connection pool reached max pending requests of "
                                    + (limit != null ? limit.maxPendingRequests() : maxPending)));
                }
                w = PendingRequest.counted(vertx, options, this, limit, stats);
                pending.add(w);
            }
            waiting.add(w);
            sends = dispatch();
        }
        sends.forEach(Runnable::run);
        return w.future();
    }

    @Override
    public boolean cancel(Future<HttpClientRequest> waiting) {
        return PendingRequest.cancel(this, this.waiting, pending, waiting);
    }

    @Override
    public synchronized void pendingOver(PendingRequest w) {
        pending.remove(w);
    }

    @Override
    public synchronized void handedOut() {
        handedOut++;
    }

    @Override
    public synchronized boolean idle() {
        if (handedOut > 0 || !waiting.isEmpty() || !retired.isEmpty()) {
            return false; // a retired lane leaves once its streams are done
        }
        for (Lane l : open) {
            if (l.active > 0) {
                return false;
            }
        }
        return true;
    }

    /**
     * {@code counted} is told each time a connection is given its last stream under
     * {@code max_requests_per_connection} ({@code upstream_cx_max_requests}).
     */
    void onLastStreamGiven(Runnable counted) {
        lastStreamGiven = counted;
    }

    /**
     * Gives waiting requests the streams there are now: on a connected lane with one to spare, else, unless the
     * connections being opened will carry them, on a lane whose connection is to be opened (the request opens it).
     * Each is sent on its caller's context. Under the lock.
     */
    private List<Runnable> dispatch() {
        List<Runnable> sends = new ArrayList<>(0);
        while (!waiting.isEmpty() && !closed) {
            Lane l = ready();
            if (l == null && waiting.size() > connecting()) {
                l = unconnected();
            }
            if (l == null) {
                break;
            }
            boolean opens = cluster != null && l.connection == null && l.active == 0;
            l.active++;
            if (maxRequests > 0 && ++l.given >= maxRequests) {
                retire(l); // the connection's last stream: the next request takes another lane
                sends.add(lastStreamGiven);
            }
            Lane lane = l;
            PendingRequest w = waiting.poll();
            sends.add(() -> w.send(options -> send(lane, options, opens)));
        }
        return sends;
    }

    /** Takes a lane out of the pool for good: it closes once its streams are done. Under the lock. */
    private void retire(Lane l) {
        open.remove(l);
        l.retired = true;
        retired.add(l);
    }

    /** A connected lane with a stream to spare, or null. Under the lock. */
    private Lane ready() {
        for (Lane l : open) {
            if (l.connection != null && l.active < (l.settled ? l.limit : 1)) {
                return l;
            }
        }
        return null;
    }

    /**
     * The streams that the connections being opened (lanes with requests and no connection yet, or whose server has
     * not yet told its limit) will take.
     */
    private long connecting() {
        long spare = 0;
        for (Lane l : open) {
            if ((l.connection == null || !l.settled) && l.active > 0) {
                spare += Math.max(0, l.limit - l.active);
            }
        }
        return spare;
    }

    /**
     * A lane with neither a connection nor a request, a new one while there is room for it, or null; with the
     * cluster's limits, only when the cluster lets a connection be opened. Under the lock.
     */
    private Lane unconnected() {
        Lane idle = null;
        for (Lane l : open) {
            if (l.connection == null && l.active == 0) {
                idle = l;
                break;
            }
        }
        if (idle == null && open.size() + retired.size() >= maxConnections) {
            return null;
        }
        if (cluster != null && !cluster.tryStartConnect(!connected())) {
            return null;
        }
        if (idle == null) {
            idle = new Lane();
            open.add(idle);
        }
        return idle;
    }

    /** Whether a lane has a connection, or is opening one. Under the lock. */
    private boolean connected() {
        for (List<Lane> lanes : List.of(open, retired)) {
            for (Lane l : lanes) {
                if (l.connection != null || l.active > 0) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * Sends a request on the lane that counted it, and counts it off once its exchange is over; {@code opens}: the
     * request opens the lane's connection, counted in the cluster's connections being opened until it has it.
     */
    private Future<HttpClientRequest> send(Lane lane, RequestOptions options, boolean opens) {
        Future<HttpClientRequest> sent;
        try {
            sent = lane.client.request(options);
        } catch (RuntimeException e) {
            sent = Future.failedFuture(e); // the lane's client is closed
        }
        if (opens) {
            sent = sent.andThen(ar -> cluster.connectEnded());
        }
        PendingRequest.whenOver(sent, t -> release(lane,
                t instanceof IllegalArgumentException || t instanceof ConnectionPoolTooBusyException ? null : t));
        if (!lane.settled) {
            // a connection not yet settled is once its server answers a head (a stale read only adds this)
            sent.onSuccess(req -> req.response().onSuccess(resp -> lane.answered()));
        }
        return sent;
    }

    /**
     * Counts a request's stream off its lane. When the request failed for want of a connection (the lane's did not
     * open), the requests waiting for it fail with it, as Envoy fails the pending requests of a connection that could
     * not be made, but for those the other connections being opened will carry.
     */
    private void release(Lane lane, Throwable failure) {
        List<Runnable> sends;
        List<PendingRequest> failed = new ArrayList<>(0);
        boolean close;
        HttpConnection settles;
        List<Lane> idle;
        synchronized (this) {
            lane.active--;
            // a stream that ended tells the server's limit as its PING would: its SETTINGS came before
            settles = failure == null && !lane.settled ? lane.connection : null;
            close = lane.retired && lane.active == 0;
            if (close) {
                retired.remove(lane);
            }
            if (failure != null && lane.connection == null) {
                long carried = connecting();
                while (waiting.size() > carried) {
                    failed.add(waiting.pollLast());
                }
            }
            sends = dispatch();
            // a drained pool's lanes that carry nothing now (after what dispatch gave them)
            idle = draining ? closeIdle() : List.of();
        }
        failed.forEach(w -> w.fail(failure));
        sends.forEach(Runnable::run);
        if (settles != null) {
            lane.settle(settles);
        }
        if (close) {
            lane.shutdown(HostPool.DRAIN_SECONDS, TimeUnit.SECONDS); // its streams are done: closes now
        }
        idle.forEach(l -> l.shutdown(HostPool.DRAIN_SECONDS, TimeUnit.SECONDS));
    }

    /**
     * The host left its cluster: from now on each lane closes once it carries no stream and no request waits, and the
     * pool once nothing is under way, waiting or handed out; until then requests are taken as before.
     */
    @Override
    public void closeWhenDone() {
        List<Lane> idle;
        synchronized (this) {
            draining = true;
            idle = closeIdle();
        }
        idle.forEach(l -> l.shutdown(HostPool.DRAIN_SECONDS, TimeUnit.SECONDS));
    }

    /**
     * Under the lock, while draining and no request waits: takes the lanes that carry no stream out of the pool for
     * good (a request asked later opens another), and closes the pool once no lane is left and none is handed out.
     * Returns the lanes to close, outside the lock.
     */
    private List<Lane> closeIdle() {
        if (closed || !waiting.isEmpty()) {
            return List.of();
        }
        List<Lane> idle = new ArrayList<>(0);
        for (Lane l : open) {
            if (l.active == 0) {
                l.retired = true;
                idle.add(l);
            }
        }
        open.removeAll(idle);
        closed = open.isEmpty() && retired.isEmpty() && handedOut == 0;
        return idle;
    }

    /** Closes every lane once its requests are done (for {@code timeout} at most); the waiting requests fail. */
    @Override
    public Future<Void> shutdown(long timeout, TimeUnit unit) {
        List<Lane> all;
        List<PendingRequest> dropped;
        synchronized (this) {
            closed = true;
            all = new ArrayList<>(open);
            all.addAll(retired);
            dropped = List.copyOf(waiting);
            waiting.clear();
        }
        dropped.forEach(w -> w.fail(new VertxException("connection pool closed", true)));
        return Future.all(all.stream().map(l -> l.shutdown(timeout, unit)).toList()).mapEmpty();
    }
}
