package dev.inmesh.interception.proxy;

import dev.inmesh.runtime.runtime.RuntimeSnapshot;
import dev.inmesh.runtime.stats.DownstreamStats;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2Stream;

/**
 * The premature reset check of one downstream HTTP/2 connection, Envoy's guard against a client that opens streams
 * only to reset them (the rapid reset of CVE-2023-44487), as its connection manager keeps it
 * (ConnectionManagerImpl::maybeDrainDueToPrematureResets, Envoy 1.27.1 and 1.24.11 on). A stream that closed without
 * a response (its client reset it, or the codec did) no later than
 * {@code overload.premature_reset_min_stream_lifetime_seconds} (default 1) after it opened is premature, its lifetime
 * taken in whole seconds, as Envoy truncates it (so that under the default a stream that lived 1.9 s counts). Until
 * {@code overload.premature_reset_total_stream_count} (default 500) of the connection's streams closed, the connection
 * is closed once half that count were premature; from then on, once half of those closed were. Closed at once, with
 * no GOAWAY and its streams reset, as Envoy aborts it, and counted in {@code downstream_rq_too_many_premature_resets}.
 * The two runtime keys are read once per connection.
 *
 * <p>Streams refused beyond {@code max_concurrent_streams} never open, and so never count, as in Envoy, whose codec
 * refuses them before its connection manager sees them.
 */
final class PrematureResets extends Http2ConnectionAdapter {
    static final String MIN_STREAM_LIFETIME_SECONDS = "overload.premature_reset_min_stream_lifetime_seconds";
    static final String TOTAL_STREAM_COUNT = "overload.premature_reset_total_stream_count";

    private final Http2Connection.PropertyKey opened;
    /** The stream the codec opens and closes at once to mark it refused (0 for none), which counts for nothing. */
    private final java.util.function.IntSupplier marking;
    private final long minLifetimeSeconds;
    private final long totalStreamCount;
    /** The connection manager's statistics, or null when none are kept. */
    private final DownstreamStats stats;
    /** The frame codec's context: a close from it passes the codec by, so that no GOAWAY goes first. */
    private ChannelHandlerContext codec;
    private long closedStreams;
    private long prematureStreams;
    private boolean aborted;

    PrematureResets(Http2Connection connection, java.util.function.IntSupplier marking, RuntimeSnapshot runtime,
                    DownstreamStats stats) {
        this.opened = connection.newKey();
        this.marking = marking;
        this.minLifetimeSeconds = runtime.integer(MIN_STREAM_LIFETIME_SECONDS, 1);
        this.totalStreamCount = runtime.integer(TOTAL_STREAM_COUNT, 500);
        this.stats = stats;
    }

    /** The frame codec's context, given before the first stream opens. */
    void codec(ChannelHandlerContext ctx) {
        this.codec = ctx;
    }

    @Override
    public void onStreamActive(Http2Stream stream) {
        if (stream.id() != marking.getAsInt()) {
            stream.setProperty(opened, System.nanoTime());
        }
    }

    @Override
    public void onStreamClosed(Http2Stream stream) {
        Long since = stream.getProperty(opened);
        if (since == null || aborted || codec == null || !codec.channel().isActive()) {
            return; // not opened, or the connection is ending anyway: its streams count no more
        }
        closedStreams++;
        if (!stream.isHeadersSent() && (System.nanoTime() - since) / 1_000_000_000L <= minLifetimeSeconds) {
            prematureStreams++;
        }
        if (tooMany()) {
            aborted = true;
            if (stats != null) {
                stats.tooManyPrematureResets();
            }
            codec.close();
        }
    }

    private boolean tooMany() {
        // as Envoy compares them: twice the premature ones against the total count, then against the closed ones
        return closedStreams < totalStreamCount ? prematureStreams * 2 >= totalStreamCount
                : prematureStreams * 2 >= closedStreams;
    }
}
