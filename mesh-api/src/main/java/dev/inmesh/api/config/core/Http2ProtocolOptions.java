package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;

/**
 * The HTTP/2 settings of a cluster's upstream connections, from Envoy's {@code core.v3.Http2ProtocolOptions} (Istio
 * writes a DestinationRule's {@code connectionPool.http.maxConcurrentStreams} into {@code max_concurrent_streams}).
 *
 * <p>The stream window keeps HTTP/2's own 65535 bytes when unset (null), not Envoy's 256 MiB: a window is how much
 * a peer may send before the receiver reads, and a JVM holds what it has not read yet in its heap, per stream. The
 * connection's window, unset, is {@link #DEFAULT_CONNECTION_WINDOW_SIZE} (at least the stream window): the streams
 * share it, so at HTTP/2's 65535 bytes one stream whose reader stopped would take all of it and hold every other
 * stream of its connection, where sixteen such streams now must stop before the others wait.
 *
 * @param hpackTableSize the largest header compression table the connection's decoder keeps, advertised as
 *     {@code SETTINGS_HEADER_TABLE_SIZE} (Envoy's default 4096; 0: the peer compresses no header into the table)
 * @param maxConcurrentStreams how many streams one connection carries at once (Envoy's default 2147483647); the
 *     peer's own {@code SETTINGS_MAX_CONCURRENT_STREAMS} still applies when it is lower
 * @param initialStreamWindowSize each stream's receive window, advertised as {@code SETTINGS_INITIAL_WINDOW_SIZE}
 *     (65535 to 2147483647), or null for HTTP/2's 65535
 * @param initialConnectionWindowSize the connection's receive window (65535 to 2147483647), or null for
 *     {@link #connectionWindowSize()}'s default
 * @param streamErrorOnInvalidHttpMessage {@code override_stream_error_on_invalid_http_message}: whether a message that
 *     breaks HTTP/2's rules (a request head without {@code :method}, an upper-case header name, a body longer than
 *     its {@code content-length}, ...) costs only its stream (RST_STREAM) rather than the whole connection (GOAWAY,
 *     Envoy's default); a connection manager applies it to its clients' requests
 * @param maxInboundPriorityFramesPerStream {@code max_inbound_priority_frames_per_stream} (Envoy's default 100): a
 *     connection manager's client that sends more PRIORITY frames than this many times one more than the streams it
 *     opened is flooding, and its connection ends
 * @param maxInboundWindowUpdateFramesPerDataFrameSent {@code max_inbound_window_update_frames_per_data_frame_sent}
 *     (Envoy's default 10): a connection manager's client that sends more WINDOW_UPDATE frames than 5 + 2 x (the
 *     streams it opened + this many times the DATA frames sent to it) is flooding, and its connection ends
 * @param maxConsecutiveInboundFramesWithEmptyPayload {@code max_consecutive_inbound_frames_with_empty_payload}
 *     (Envoy's default 1): a connection manager's client that sends more DATA frames in a row with neither payload
 *     nor END_STREAM is flooding, and its connection ends (at 0, as at 1: the first such frame is taken)
 */
public record Http2ProtocolOptions(long hpackTableSize, int maxConcurrentStreams, Integer initialStreamWindowSize,
                                   Integer initialConnectionWindowSize,
                                   boolean streamErrorOnInvalidHttpMessage, long maxInboundPriorityFramesPerStream,
                                   long maxInboundWindowUpdateFramesPerDataFrameSent,
                                   long maxConsecutiveInboundFramesWithEmptyPayload) {
    /** HTTP/2's initial window, the smallest an {@code initial_*_window_size} may be. */
    public static final int MIN_WINDOW_SIZE = 65_535;
    /** The connection's receive window when {@code initial_connection_window_size} is unset: 1 MiB. */
    public static final int DEFAULT_CONNECTION_WINDOW_SIZE = 1 << 20;
    /** HTTP/2's and Envoy's default {@code hpack_table_size}. */
    public static final long DEFAULT_HPACK_TABLE_SIZE = 4096;
    /** Envoy's options when a cluster sets none: its defaults, with HTTP/2's windows (see above). */
    public static final Http2ProtocolOptions DEFAULTS =
            new Http2ProtocolOptions(DEFAULT_HPACK_TABLE_SIZE, Integer.MAX_VALUE, null, null);

    /** Envoy's default {@code max_inbound_priority_frames_per_stream}. */
    public static final long DEFAULT_MAX_INBOUND_PRIORITY_FRAMES_PER_STREAM = 100;
    /** Envoy's default {@code max_inbound_window_update_frames_per_data_frame_sent}. */
    public static final long DEFAULT_MAX_INBOUND_WINDOW_UPDATE_FRAMES_PER_DATA_FRAME_SENT = 10;
    /** Envoy's default {@code max_consecutive_inbound_frames_with_empty_payload}. */
    public static final long DEFAULT_MAX_CONSECUTIVE_INBOUND_FRAMES_WITH_EMPTY_PAYLOAD = 1;

    /** Options with Envoy's default flood limits. */
    public Http2ProtocolOptions(long hpackTableSize, int maxConcurrentStreams, Integer initialStreamWindowSize,
                                Integer initialConnectionWindowSize, boolean streamErrorOnInvalidHttpMessage) {
        this(hpackTableSize, maxConcurrentStreams, initialStreamWindowSize, initialConnectionWindowSize,
                streamErrorOnInvalidHttpMessage, DEFAULT_MAX_INBOUND_PRIORITY_FRAMES_PER_STREAM,
                DEFAULT_MAX_INBOUND_WINDOW_UPDATE_FRAMES_PER_DATA_FRAME_SENT,
                DEFAULT_MAX_CONSECUTIVE_INBOUND_FRAMES_WITH_EMPTY_PAYLOAD);
    }

    /** Options whose invalid messages cost their whole connection, Envoy's default. */
    public Http2ProtocolOptions(long hpackTableSize, int maxConcurrentStreams, Integer initialStreamWindowSize,
                                Integer initialConnectionWindowSize) {
        this(hpackTableSize, maxConcurrentStreams, initialStreamWindowSize, initialConnectionWindowSize, false);
    }

    public Http2ProtocolOptions {
        Checks.check(hpackTableSize >= 0 && hpackTableSize <= 0xFFFF_FFFFL, "hpack_table_size", hpackTableSize,
                "0..4294967295");
        Checks.check(maxConcurrentStreams >= 1, "max_concurrent_streams", maxConcurrentStreams, "1..2147483647");
        window(initialStreamWindowSize, "initial_stream_window_size");
        window(initialConnectionWindowSize, "initial_connection_window_size");
        Checks.check(maxInboundPriorityFramesPerStream >= 0, "max_inbound_priority_frames_per_stream",
                maxInboundPriorityFramesPerStream, ">= 0");
        Checks.check(maxInboundWindowUpdateFramesPerDataFrameSent >= 1,
                "max_inbound_window_update_frames_per_data_frame_sent", maxInboundWindowUpdateFramesPerDataFrameSent,
                ">= 1");
        Checks.check(maxConsecutiveInboundFramesWithEmptyPayload >= 0,
                "max_consecutive_inbound_frames_with_empty_payload", maxConsecutiveInboundFramesWithEmptyPayload,
                ">= 0");
    }

    private static void window(Integer size, String field) {
        Checks.check(size == null || size >= MIN_WINDOW_SIZE, field, size, MIN_WINDOW_SIZE + "..2147483647");
    }

    /**
     * The connection's receive window the connections advertise: {@code initial_connection_window_size}, else
     * {@link #DEFAULT_CONNECTION_WINDOW_SIZE} or the stream window when that is larger.
     */
    public int connectionWindowSize() {
        if (initialConnectionWindowSize != null) {
            return initialConnectionWindowSize;
        }
        return Math.max(DEFAULT_CONNECTION_WINDOW_SIZE, initialStreamWindowSize == null ? MIN_WINDOW_SIZE
                : initialStreamWindowSize);
    }
}
