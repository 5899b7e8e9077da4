package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * One listener's statistics, as Envoy keeps them under {@code listener.<address>.} (the address as Envoy writes it,
 * a colon made an underscore: {@code 0.0.0.0_15006}, {@code [__]_8080}): {@code downstream_cx_total},
 * {@code downstream_cx_active}, {@code downstream_cx_destroy}, the histogram {@code downstream_cx_length_ms},
 * {@code no_filter_chain_match}, the connections its
 * listener filters are reading ({@code downstream_pre_cx_active}) and ran out of time on
 * ({@code downstream_pre_cx_timeout}), and the TLS its
 * filter chains terminate under {@code ssl.}: {@code handshake}, {@code connection_error}, {@code no_certificate},
 * {@code fail_verify_no_cert}, {@code fail_verify_error} and {@code fail_verify_san}, kept only for a listener with a
 * chain that terminates TLS ({@link #terminatesTls}), as Envoy makes them with the TLS context of such a chain's
 * transport socket: a plaintext listener has none. Scraped with the
 * address in the tag {@code listener_address}, as {@code envoy_listener_downstream_cx_total{listener_address=
 * "0.0.0.0_15006"}}. Only the standalone proxy has listeners that accept connections. Thread-safe.
 */
public final class ListenerStats {
    static final String PREFIX = "envoy_listener_";
    static final String TAG = "listener_address";

    private final LongAdder cxTotal = new LongAdder();
    private final AtomicLong cxActive = new AtomicLong();
    private final LongAdder cxDestroy = new LongAdder();
    private final LongAdder noFilterChainMatch = new LongAdder();
    private final AtomicLong preCxActive = new AtomicLong();
    private final LongAdder preCxTimeout = new LongAdder();
    /** The {@code ssl.*} statistics' names, in the order of {@link #ssl}'s counters. */
    private static final String[] SSL = {"ssl_handshake", "ssl_connection_error", "ssl_no_certificate",
        "ssl_fail_verify_no_cert", "ssl_fail_verify_error", "ssl_fail_verify_san"};
    /** The {@code ssl.*} counters, named as {@link #SSL}, once {@link #terminatesTls} registered them. */
    private final java.util.concurrent.atomic.AtomicReference<LongAdder[]> ssl =
            new java.util.concurrent.atomic.AtomicReference<>();
    private final MeterRegistry registry;
    private final String address;
    private final DistributionSummary cxLengthMs;
    private final java.util.function.Function<String, ProxyProtocolStats> proxyProtocol;

    ListenerStats(MeterRegistry registry, String address,
                  java.util.function.Function<String, ProxyProtocolStats> proxyProtocol) {
        this.proxyProtocol = proxyProtocol;
        this.registry = registry;
        this.address = address;
        FunctionCounter.builder(PREFIX + "downstream_cx_total", cxTotal, LongAdder::doubleValue).tag(TAG, address)
                .register(registry);
        Gauge.builder(PREFIX + "downstream_cx_active", cxActive, AtomicLong::doubleValue).tag(TAG, address)
                .strongReference(true).register(registry);
        Gauge.builder(PREFIX + "downstream_cx_destroy", cxDestroy, LongAdder::doubleValue).tag(TAG, address)
                .strongReference(true).register(registry);
        Gauge.builder(PREFIX + "no_filter_chain_match", noFilterChainMatch, LongAdder::doubleValue)
                .tag(TAG, address).strongReference(true).register(registry);
        Gauge.builder(PREFIX + "downstream_pre_cx_active", preCxActive, AtomicLong::doubleValue).tag(TAG, address)
                .strongReference(true).register(registry);
        counter(registry, address, "downstream_pre_cx_timeout", preCxTimeout);
        cxLengthMs = MeshMetrics.histogram(registry, PREFIX + "downstream_cx_length_ms",
                "Connection length milliseconds", io.micrometer.core.instrument.Tags.of(TAG, address));
    }

    private static void counter(MeterRegistry registry, String address, String name, LongAdder value) {
        Gauge.builder(PREFIX + name, value, LongAdder::doubleValue).tag(TAG, address).strongReference(true)
                .register(registry);
    }

    /**
     * Keeps the listener's {@code ssl.*} statistics, at 0 until something is counted, once: for a listener one of
     * whose filter chains terminates TLS, as Envoy makes them in the listener's scope with the TLS context of such a
     * chain's transport socket (source/common/tls/stats.cc {@code generateSslStats}), and for no other listener.
     * Returns this.
     */
    public ListenerStats terminatesTls() {
        ssl();
        return this;
    }

    /** The {@code ssl.*} counters, registered now if they were not. */
    private LongAdder[] ssl() {
        return UpstreamStatsImpl.once(ssl, () -> UpstreamStatsImpl.adders(registry, PREFIX, TAG, address, SSL));
    }

    /**
     * The statistics of the listener's PROXY protocol filter with this {@code stat_prefix}: not the listener's own,
     * Envoy keeps them in its root scope, shared by every filter with the prefix.
     */
    public ProxyProtocolStats proxyProtocol(String statPrefix) {
        return proxyProtocol.apply(statPrefix);
    }

    /** The listener's name in Envoy's statistics for {@code ip} and {@code port}: {@code 0.0.0.0_15006}. */
    public static String address(String ip, int port) {
        String a = ip.indexOf(':') >= 0 && !ip.startsWith("[") ? "[" + ip + "]" : ip;
        return (a + ":" + port).replace(':', '_');
    }

    /** The listener took a connection: {@code downstream_cx_total} and {@code downstream_cx_active}. */
    public void connectionOpened() {
        cxTotal.increment();
        cxActive.incrementAndGet();
    }

    /**
     * A connection the listener took closed: {@code downstream_cx_destroy}, one fewer active, and its length in the
     * histogram {@code downstream_cx_length_ms}.
     */
    public void connectionClosed(long lengthMillis) {
        // the rest first: whoever sees one fewer active sees the closed connection's length and destroy count too
        cxLengthMs.record(Math.max(0, lengthMillis));
        cxDestroy.increment();
        cxActive.decrementAndGet();
    }

    /**
     * A TLS handshake of a filter chain succeeded: {@code ssl.handshake}, and {@code ssl.no_certificate} when the
     * client presented no certificate.
     */
    public void tlsHandshake(boolean clientCertificate) {
        LongAdder[] a = ssl();
        a[0].increment();
        if (!clientCertificate) {
            a[2].increment();
        }
    }

    /** Why a TLS handshake of a filter chain failed, as Envoy's {@code ssl.*} statistics tell it. */
    public enum TlsFailure {
        /** {@code ssl.connection_error}: a TLS error other than a failed certificate check. */
        CONNECTION_ERROR,
        /** {@code ssl.fail_verify_no_cert}: a required client certificate was not sent. */
        NO_CERTIFICATE,
        /** {@code ssl.fail_verify_error}: the client's chain does not lead to the trusted CAs. */
        VERIFY_ERROR,
        /** {@code ssl.fail_verify_san}: no SAN of the client's certificate matches the SAN matchers. */
        VERIFY_SAN
    }

    /** A TLS handshake of a filter chain failed. */
    public void tlsFailed(TlsFailure why) {
        ssl()[switch (why) {
            case CONNECTION_ERROR -> 1;
            case NO_CERTIFICATE -> 3;
            case VERIFY_ERROR -> 4;
            case VERIFY_SAN -> 5;
        }].increment();
    }

    /** A connection's listener filters began to read it: one more {@code downstream_pre_cx_active}. */
    public void inspectionStarted() {
        preCxActive.incrementAndGet();
    }

    /** A connection's listener filters are done with it, whatever the outcome: one fewer being inspected. */
    public void inspectionEnded() {
        preCxActive.decrementAndGet();
    }

    /**
     * A connection's listener filters ran out of {@code listener_filters_timeout}, whether it then goes on or is
     * closed: {@code downstream_pre_cx_timeout}.
     */
    public void inspectionTimedOut() {
        preCxTimeout.increment();
    }

    /** No filter chain matched a connection, which was closed: {@code no_filter_chain_match}. */
    public void noFilterChainMatch() {
        noFilterChainMatch.increment();
    }
}
