package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.atomic.LongAdder;

/**
 * The downstream statistics of the TCP proxy filters with one {@code stat_prefix}, named as Envoy names them under
 * {@code tcp.<stat_prefix>.}: the connections the filter took ({@code downstream_cx_total}), those it found no
 * cluster for ({@code downstream_cx_no_route}), the bytes read from and written to their clients
 * ({@code downstream_cx_rx_bytes_total}, {@code downstream_cx_tx_bytes_total}), the times reading from a client
 * stopped because its upstream could take no more, and started again
 * ({@code downstream_flow_control_paused_reading_total}, {@code downstream_flow_control_resumed_reading_total}), and
 * the connections its {@code idle_timeout} and its {@code max_downstream_connection_duration} closed
 * ({@code idle_timeout}, {@code max_downstream_connection_duration}). Scraped as {@code envoy_tcp_<name>} with the
 * prefix in Istio's tag {@code tcp_prefix}; as with {@link UpstreamStats}, a counter whose name does not end in
 * {@code _total} is a gauge that only goes up. Filters with the same prefix share them, as Envoy's statistics are
 * shared by name. Only the standalone proxy relays TCP. Thread-safe and allocation-free.
 */
public final class TcpProxyStats {
    static final String PREFIX = "envoy_tcp_";
    /** The tag that carries the stat prefix: Istio's tag name (Envoy's default: envoy.tcp_prefix). */
    static final String TAG = "tcp_prefix";

    private final LongAdder cxTotal = new LongAdder();
    private final LongAdder cxNoRoute = new LongAdder();
    private final LongAdder rxBytes = new LongAdder();
    private final LongAdder txBytes = new LongAdder();
    private final LongAdder pausedReading = new LongAdder();
    private final LongAdder resumedReading = new LongAdder();
    private final LongAdder idleTimeout = new LongAdder();
    private final LongAdder maxDuration = new LongAdder();

    TcpProxyStats(MeterRegistry registry, String statPrefix) {
        adder(registry, "downstream_cx_total", statPrefix, cxTotal);
        adder(registry, "downstream_cx_no_route", statPrefix, cxNoRoute);
        adder(registry, "downstream_cx_rx_bytes_total", statPrefix, rxBytes);
        adder(registry, "downstream_cx_tx_bytes_total", statPrefix, txBytes);
        adder(registry, "downstream_flow_control_paused_reading_total", statPrefix, pausedReading);
        adder(registry, "downstream_flow_control_resumed_reading_total", statPrefix, resumedReading);
        adder(registry, "idle_timeout", statPrefix, idleTimeout);
        adder(registry, "max_downstream_connection_duration", statPrefix, maxDuration);
    }

    private static void adder(MeterRegistry registry, String name, String statPrefix, LongAdder a) {
        UpstreamStatsImpl.adder(registry, PREFIX + name, TAG, statPrefix, a);
    }

    /** A connection reached the filter. */
    public void connection() {
        cxTotal.increment();
    }

    /** A connection's cluster does not exist: the filter closed it. */
    public void noRoute() {
        cxNoRoute.increment();
    }

    /** Bytes read from a client. */
    public void received(long bytes) {
        rxBytes.add(bytes);
    }

    /** Bytes written to a client. */
    public void sent(long bytes) {
        txBytes.add(bytes);
    }

    /** Reading from a client stopped: its upstream takes no more for now. */
    public void pausedReading() {
        pausedReading.increment();
    }

    /** Reading from a client started again. */
    public void resumedReading() {
        resumedReading.increment();
    }

    /** The idle timeout closed a connection. */
    public void idleTimeout() {
        idleTimeout.increment();
    }

    /** A connection lasted its longest and was closed. */
    public void maxDurationReached() {
        maxDuration.increment();
    }

    /** The connections the filter took so far. */
    public long connections() {
        return cxTotal.sum();
    }

    /** The bytes read from clients so far. */
    public long receivedBytes() {
        return rxBytes.sum();
    }

    /** The bytes written to clients so far. */
    public long sentBytes() {
        return txBytes.sum();
    }
}
