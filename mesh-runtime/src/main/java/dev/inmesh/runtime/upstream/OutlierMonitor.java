package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.OutlierDetection;

/**
 * One host's outlier detection state: the router reports each result here ({@link #reportConnectSuccess} when an
 * attempt has its connection, then {@link #reportHttpStatus} or {@link #reportSuccess} for the answer, or
 * {@link #reportLocalOriginFailure}); the cluster's {@link OutlierDetector} ejects and un-ejects. Counters follow
 * Envoy: a 5xx counts toward consecutive 5xx, a 502, 503 or 504 also toward consecutive gateway failures, anything
 * else resets both. When the cluster has no outlier detection the reports are ignored.
 */
public final class OutlierMonitor {
    private final OutlierDetector detector;
    private Host host;

    // all guarded by this
    private int consecutive5xx;
    private int consecutiveGatewayFailure;
    private int consecutiveLocalOriginFailure;
    private final long[] externalBucket = new long[2]; // {success, total} of the current interval
    private final long[] localBucket = new long[2];
    private final long[] externalLast = new long[2]; // the previous interval, which success rate judges
    private final long[] localLast = new long[2];

    private volatile boolean ejected;
    /** The success rates the detector computed at its last interval (percent), or -1 when it computed none. */
    private volatile double successRate = -1;
    private volatile double localOriginSuccessRate = -1;
    private long lastEjectionNanos;
    /** The jitter drawn for the last ejection. */
    private long jitter;
    private long lastUnejectionNanos = Long.MIN_VALUE;
    private int ejectTimeBackoff;
    private int numEjections;

    OutlierMonitor(OutlierDetector detector) {
        this.detector = detector;
    }

    void attach(Host host) {
        this.host = host;
    }

    /**
     * The HTTP status of the upstream's answer (for gRPC, the one its grpc-status maps to). The host's
     * {@code rq_success} and {@code rq_error} are the router's to charge ({@link HostStats#requestFailed}).
     */
    public void reportHttpStatus(int status) {
        OutlierDetection config = detector.config();
        if (config == null) {
            return;
        }
        boolean gatewayTriggered = false;
        boolean fiveXxTriggered = false;
        synchronized (this) {
            externalBucket[1]++;
            if (status >= 500 && status < 600) {
                if (status >= 502 && status <= 504) {
                    gatewayTriggered = ++consecutiveGatewayFailure == config.consecutiveGatewayFailure();
                } else {
                    consecutiveGatewayFailure = 0;
                }
                fiveXxTriggered = ++consecutive5xx == config.consecutive5xx();
            } else {
                externalBucket[0]++;
                consecutive5xx = 0;
                consecutiveGatewayFailure = 0;
            }
        }
        if (gatewayTriggered) {
            detector.onConsecutiveError(host, OutlierDetector.EjectionType.CONSECUTIVE_GATEWAY_FAILURE);
        }
        if (fiveXxTriggered) {
            detector.onConsecutiveError(host, OutlierDetector.EjectionType.CONSECUTIVE_5XX);
        }
    }

    /** An answer below 500: the same as {@code reportHttpStatus(200)}. */
    public void reportSuccess() {
        reportHttpStatus(200);
    }

    /**
     * An attempt has its connection (Envoy reports this when the pool is ready, before any answer). With
     * {@code split_external_local_origin_errors} it is a local-origin success: it counts in the local-origin success
     * rate and ends a run of consecutive local-origin failures, whatever the answer turns out to be. Without the
     * split it counts for nothing; the answer is reported by its status.
     */
    public void reportConnectSuccess() {
        OutlierDetection config = detector.config();
        if (config == null || !config.splitExternalLocalOriginErrors()) {
            return;
        }
        synchronized (this) {
            localBucket[0]++;
            localBucket[1]++;
            consecutiveLocalOriginFailure = 0;
        }
    }

    /**
     * A TCP connection's connect succeeded, which is all there is to judge of it (Envoy's {@code tcp_proxy} reports
     * {@code LocalOriginConnectSuccessFinal}): without {@code split_external_local_origin_errors} a success, as an
     * answer below 500 (it ends a run of consecutive 5xx and gateway failures); with it, a local-origin success. No
     * request statistic counts it.
     */
    public void reportConnectSuccessFinal() {
        OutlierDetection config = detector.config();
        if (config == null) {
            return;
        }
        if (config.splitExternalLocalOriginErrors()) {
            reportConnectSuccess();
        } else {
            reportHttpStatus(200);
        }
    }

    /**
     * A connect failure, timeout or reset on our side. A timeout also counts in the host's {@code rq_timeout}, a
     * connect failure in its {@code cx_connect_fail}.
     */
    public void reportLocalOriginFailure(LocalOriginFailure kind) {
        if (kind == LocalOriginFailure.TIMEOUT) {
            host.stats().timedOut();
        } else if (kind == LocalOriginFailure.CONNECT_FAILED) {
            host.stats().connectFailed();
        }
        OutlierDetection config = detector.config();
        if (config == null) {
            return;
        }
        if (!config.splitExternalLocalOriginErrors()) {
            reportHttpStatus(kind.httpStatus());
            return;
        }
        boolean triggered;
        synchronized (this) {
            localBucket[1]++;
            triggered = ++consecutiveLocalOriginFailure == config.consecutiveLocalOriginFailure();
        }
        if (triggered) {
            detector.onConsecutiveError(host, OutlierDetector.EjectionType.CONSECUTIVE_LOCAL_ORIGIN_FAILURE);
        }
    }

    /** A check of the cluster's active health checks found the host healthy: see {@link OutlierDetector}. */
    void activeHealthCheckPassed() {
        detector.activeHealthCheckPassed(host);
    }

    /** Whether the host is ejected now. */
    public boolean ejected() {
        return ejected;
    }

    /**
     * The host's success rate (percent, external or local origin) as the detector computed it at its last interval,
     * or -1 when it computed none (too few hosts or requests, or no outlier detection).
     */
    public double successRate(boolean localOrigin) {
        return localOrigin ? localOriginSuccessRate : successRate;
    }

    void successRate(boolean localOrigin, double rate) {
        if (localOrigin) {
            localOriginSuccessRate = rate;
        } else {
            successRate = rate;
        }
    }

    /** How many times the host has been ejected. */
    public synchronized int numEjections() {
        return numEjections;
    }

    // ---- used by the detector, under its lock ----

    synchronized void resetCounter(OutlierDetector.EjectionType type) {
        switch (type) {
            case CONSECUTIVE_5XX -> consecutive5xx = 0;
            case CONSECUTIVE_GATEWAY_FAILURE -> consecutiveGatewayFailure = 0;
            case CONSECUTIVE_LOCAL_ORIGIN_FAILURE -> consecutiveLocalOriginFailure = 0;
            default -> { }
        }
    }

    /** @param jitterNanos how much longer than its time this ejection lasts */
    synchronized void eject(long now, long baseNanos, long maxNanos, long jitterNanos) {
        ejected = true;
        numEjections++;
        lastEjectionNanos = now;
        jitter = jitterNanos;
        if (ejectTimeBackoff * baseNanos < maxNanos + baseNanos) {
            ejectTimeBackoff++;
        }
    }

    /** Whether the ejection has lasted {@code min(base × backoff, max)} and its jitter. */
    synchronized boolean ejectionOver(long now, long baseNanos, long maxNanos) {
        return ejected && now - lastEjectionNanos >= Math.min(baseNanos * ejectTimeBackoff, maxNanos) + jitter;
    }

    synchronized void uneject(long now) {
        ejected = false;
        lastUnejectionNanos = now;
        consecutive5xx = 0;
        consecutiveGatewayFailure = 0;
        consecutiveLocalOriginFailure = 0;
    }

    /** Lowers the backoff of a host that has stayed in for an interval since its last un-ejection. */
    synchronized void decayBackoff(long now, long intervalNanos) {
        if (!ejected && lastUnejectionNanos != Long.MIN_VALUE && now - lastUnejectionNanos >= intervalNanos
                && ejectTimeBackoff > 0) {
            ejectTimeBackoff--;
        }
    }

    synchronized int ejectTimeBackoff() {
        return ejectTimeBackoff;
    }

    /** Ends the interval: the current buckets become the ones success rate judges. */
    synchronized void rollBuckets() {
        System.arraycopy(externalBucket, 0, externalLast, 0, 2);
        System.arraycopy(localBucket, 0, localLast, 0, 2);
        externalBucket[0] = externalBucket[1] = 0;
        localBucket[0] = localBucket[1] = 0;
    }

    /** {success, total} of the last full interval, external or local origin. */
    synchronized long[] lastInterval(boolean local) {
        return (local ? localLast : externalLast).clone();
    }
}
