package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * One listener's statistics, as Envoy keeps them under {@code listener.<address>.} (the address as Envoy writes it,
 * a colon made an underscore: {@code 0.0.0.0_15006}, {@code [__]_8080}): {@code downstream_cx_total},
 * {@code downstream_cx_active}, {@code downstream_cx_destroy} and {@code no_filter_chain_match}. Scraped with the
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

    ListenerStats(MeterRegistry registry, String address) {
        FunctionCounter.builder(PREFIX + "downstream_cx_total", cxTotal, LongAdder::doubleValue).tag(TAG, address)
                .register(registry);
        Gauge.builder(PREFIX + "downstream_cx_active", cxActive, AtomicLong::doubleValue).tag(TAG, address)
                .strongReference(true).register(registry);
        Gauge.builder(PREFIX + "downstream_cx_destroy", cxDestroy, LongAdder::doubleValue).tag(TAG, address)
                .strongReference(true).register(registry);
        Gauge.builder(PREFIX + "no_filter_chain_match", noFilterChainMatch, LongAdder::doubleValue)
                .tag(TAG, address).strongReference(true).register(registry);
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

    /** A connection the listener took closed: {@code downstream_cx_destroy}, one fewer active. */
    public void connectionClosed() {
        cxActive.decrementAndGet();
        cxDestroy.increment();
    }

    /** No filter chain matched a connection, which was closed: {@code no_filter_chain_match}. */
    public void noFilterChainMatch() {
        noFilterChainMatch.increment();
    }
}
