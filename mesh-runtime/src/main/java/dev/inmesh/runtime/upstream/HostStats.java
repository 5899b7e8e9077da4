package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.stats.UpstreamStats;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * A host's statistics, Envoy's per-host set. The router calls {@link #requestStarted()} when a request to the host
 * got its connection (as Envoy's pool counts {@code rq_total} and {@code rq_active} when it attaches a stream) and
 * {@link #requestFinished()} when that request ends, however it ends; LEAST_REQUEST reads
 * {@link #activeRequests()}. The rest is counted where the events happen: the host's connection pool counts the
 * connections it opens and closes, the host's {@link OutlierMonitor} counts the timeouts and failed connects the
 * router reports to it, and the router charges each request's outcome as Envoy's router does ({@link #requestFailed},
 * {@link #requestSucceeded}). The counters belong to the host and survive EDS
 * updates that keep it. The count of active requests lives in the {@link Host} object itself, so that a
 * LEAST_REQUEST pick reads it without following another reference.
 */
public final class HostStats {
    private final Host host;
    private final LongAdder total = new LongAdder();
    private final LongAdder success = new LongAdder();
    private final LongAdder error = new LongAdder();
    private final LongAdder timeout = new LongAdder();
    private final LongAdder cxTotal = new LongAdder();
    private final LongAdder cxConnectFail = new LongAdder();
    private final AtomicInteger cxActive = new AtomicInteger();
    /**
     * The statistics of the host's cluster, in which its connections count too ({@code upstream_cx_total},
     * {@code upstream_cx_active}); null until the router, which keeps them, sends the host a request.
     */
    private volatile UpstreamStats cluster;

    /** One statistic by its Envoy name; a gauge ({@code *_active}) or a counter. */
    public record Stat(String name, long value, boolean gauge) {}

    HostStats(Host host) {
        this.host = host;
    }

    public void requestStarted() {
        host.addActive(1);
        total.increment();
    }

    public void requestFinished() {
        host.addActive(-1);
    }

    /** The cluster statistics this host's connections also count in, from now on ({@code null}: none). */
    public void clusterStats(UpstreamStats stats) {
        if (cluster != stats) {
            cluster = stats;
        }
    }

    /** The cluster statistics this host's connections count in, or null. */
    UpstreamStats clusterStats() {
        return cluster;
    }

    /** Requests in flight now. */
    public int activeRequests() {
        return host.activeRequests();
    }

    /** Requests sent since the host was first seen. */
    public long totalRequests() {
        return total.sum();
    }

    /**
     * An answer the router passed on that is no 5xx (for gRPC, whose {@code grpc-status} maps to none): Envoy's
     * {@code rq_success}.
     */
    public void requestSucceeded() {
        success.increment();
    }

    /**
     * Envoy's {@code rq_error}: the router passed on a 5xx (for gRPC, a {@code grpc-status} that maps to one, or no
     * status at all), retried an attempt to the host away or dropped its answer, or answered for it (a connect failure,
     * a reset, a timeout before the answer).
     */
    public void requestFailed() {
        error.increment();
    }

    void timedOut() {
        timeout.increment();
    }

    /** A connection to the host opened: its {@code cx_total} and {@code cx_active}. */
    public void connectionOpened() {
        cxTotal.increment();
        cxActive.incrementAndGet();
    }

    /** A connection to the host closed: its {@code cx_active}. */
    public void connectionClosed() {
        cxActive.decrementAndGet();
    }

    /**
     * A connect to the host failed: its {@code cx_connect_fail} ({@link OutlierMonitor} counts those it judges), and
     * its {@code cx_total}, which Envoy counts as it makes a connection, before it connects.
     */
    public void connectFailed() {
        cxConnectFail.increment();
        cxTotal.increment();
    }

    /** Every statistic, sorted by name as Envoy's {@code /clusters} prints them. */
    public List<Stat> all() {
        return List.of(new Stat("cx_active", cxActive.get(), true),
                new Stat("cx_connect_fail", cxConnectFail.sum(), false),
                new Stat("cx_total", cxTotal.sum(), false),
                new Stat("rq_active", activeRequests(), true),
                new Stat("rq_error", error.sum(), false),
                new Stat("rq_success", success.sum(), false),
                new Stat("rq_timeout", timeout.sum(), false),
                new Stat("rq_total", total.sum(), false));
    }
}
