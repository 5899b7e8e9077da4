package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.atomic.LongAdder;

/**
 * The downstream codecs' statistics Envoy keeps in no scope of a listener or connection manager ({@code http1.*} and
 * {@code http2.*}, scraped as {@code envoy_http1_*} and {@code envoy_http2_*}): the headers whose names have an
 * underscore, dropped ({@code dropped_headers_with_underscores}, one a header) or refusing their request
 * ({@code requests_rejected_with_underscores_in_headers}) under a connection manager's
 * {@code headers_with_underscores_action}; and HTTP/2's {@code header_overflow} (a stream reset for request headers
 * over the connection manager's limits), {@code rx_messaging_error} (a request that broke HTTP/2's messaging rules,
 * which cost its stream or its connection), {@code rx_reset} and {@code tx_reset} (RST_STREAM frames received and
 * sent), {@code stream_refused_errors} (a stream beyond {@code max_concurrent_streams}, refused), {@code trailers}
 * (requests that ended with trailers) and the gauge {@code streams_active} (streams open), as Envoy's HTTP/2 codec
 * keeps them (source/common/http/http2/codec_stats.h). One set per registry, shared by every connection
 * manager; thread-safe and allocation-free.
 */
public final class CodecStats {
    private final LongAdder[] dropped = {new LongAdder(), new LongAdder()};
    private final LongAdder[] rejected = {new LongAdder(), new LongAdder()};
    private final LongAdder headerOverflow = new LongAdder();
    private final LongAdder rxMessagingError = new LongAdder();
    private final LongAdder rxReset = new LongAdder();
    private final LongAdder txReset = new LongAdder();
    private final LongAdder streamRefused = new LongAdder();
    private final LongAdder trailers = new LongAdder();
    private final LongAdder priorityFlood = new LongAdder();
    private final LongAdder windowUpdateFlood = new LongAdder();
    private final LongAdder emptyFramesFlood = new LongAdder();
    private final java.util.concurrent.atomic.AtomicLong streamsActive = new java.util.concurrent.atomic.AtomicLong();

    CodecStats(MeterRegistry registry) {
        for (int v = 0; v < 2; v++) {
            String prefix = "envoy_http" + (v + 1) + "_";
            // gauges that only go up, as Envoy's counters whose names do not end in _total are here
            Gauge.builder(prefix + "dropped_headers_with_underscores", dropped[v], LongAdder::doubleValue)
                    .strongReference(true).register(registry);
            Gauge.builder(prefix + "requests_rejected_with_underscores_in_headers", rejected[v],
                    LongAdder::doubleValue).strongReference(true).register(registry);
        }
        Gauge.builder("envoy_http2_header_overflow", headerOverflow, LongAdder::doubleValue).strongReference(true)
                .register(registry);
        for (var counter : java.util.Map.of("rx_messaging_error", rxMessagingError, "rx_reset", rxReset, "tx_reset",
                txReset, "stream_refused_errors", streamRefused, "trailers", trailers,
                "inbound_priority_frames_flood", priorityFlood, "inbound_window_update_frames_flood",
                windowUpdateFlood, "inbound_empty_frames_flood", emptyFramesFlood).entrySet()) {
            Gauge.builder("envoy_http2_" + counter.getKey(), counter.getValue(), LongAdder::doubleValue)
                    .strongReference(true).register(registry);
        }
        Gauge.builder("envoy_http2_streams_active", streamsActive, java.util.concurrent.atomic.AtomicLong::doubleValue)
                .strongReference(true).register(registry);
    }

    /** An HTTP/2 stream reset for request headers over the connection manager's limits. */
    public void headerOverflow() {
        headerOverflow.increment();
    }

    /** An HTTP/2 request broke HTTP/2's messaging rules (its head, its trailers or its body's length). */
    public void rxMessagingError() {
        rxMessagingError.increment();
    }

    /** An HTTP/2 RST_STREAM frame received ({@code rx_reset}), or sent ({@code tx_reset}). */
    public void reset(boolean received) {
        (received ? rxReset : txReset).increment();
    }

    /** An HTTP/2 stream refused for being beyond {@code max_concurrent_streams}. */
    public void streamRefused() {
        streamRefused.increment();
    }

    /** An HTTP/2 connection ended for a flood of PRIORITY frames from its client. */
    public void priorityFlood() {
        priorityFlood.increment();
    }

    /** An HTTP/2 connection ended for a flood of WINDOW_UPDATE frames from its client. */
    public void windowUpdateFlood() {
        windowUpdateFlood.increment();
    }

    /** An HTTP/2 connection ended for too many frames in a row from its client without payload or END_STREAM. */
    public void emptyFramesFlood() {
        emptyFramesFlood.increment();
    }

    /** An HTTP/2 request ended with trailers. */
    public void trailers() {
        trailers.increment();
    }

    /** An HTTP/2 stream opened ({@code 1}) or closed ({@code -1}): {@code streams_active}. */
    public void streamsActive(int delta) {
        streamsActive.addAndGet(delta);
    }

    /** {@code count} headers with an underscore dropped from a request of the HTTP/1 or HTTP/2 codec. */
    public void underscoresDropped(boolean http2, int count) {
        dropped[http2 ? 1 : 0].add(count);
    }

    /** A request of the HTTP/1 or HTTP/2 codec refused for a header name with an underscore. */
    public void underscoreRejected(boolean http2) {
        rejected[http2 ? 1 : 0].increment();
    }
}
