package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.router.Http2HeaderValidator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameListener;
import io.netty.handler.codec.http2.Http2FrameListenerDecorator;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2Stream;

/**
 * Envoy's HTTP/2 codec rules for the header blocks an HTTP/2 upstream answers with, before Vert.x's client reads them.
 *
 * <p>A head or trailers that break HTTP/2's messaging rules as Envoy's codec finds them ({@link Http2HeaderValidator}:
 * no {@code :status}, a status that is not three digits or is 101, another pseudo-header, a control character in a
 * value, a pseudo-header in trailers; what Netty's HPACK decoder refuses itself, an upper-case name, a
 * connection-specific header, a {@code te} but {@code trailers}, never gets here and costs its stream) are a protocol
 * error, as Envoy's codec reports an invalid frame (source/common/http/http2/codec_impl.cc onInvalidFrame): by default
 * the whole connection ends (GOAWAY PROTOCOL_ERROR), each of its requests failing with the error, which the router
 * answers 502 UPE {@code protocol_error} (source/common/http/codec_client.cc counts it in
 * {@code upstream_cx_protocol_error}); under the cluster's {@code override_stream_error_on_invalid_http_message} only
 * the stream is reset.
 *
 * <p>And the interim answers {@link Http1ResponseFraming#passedOver} passes over on an HTTP/1 connection: a HEADERS
 * frame with a 1xx status but 100 and 103 that does not end its stream goes no further than the connection's decoder,
 * as Envoy's HTTP/2 codec never takes one for the final answer. Vert.x's HTTP/2 client takes the first HEADERS of a
 * stream that is neither a 100 nor a 103 for the response head: the caller got the 102 as the status and lost the
 * final answer's headers.
 *
 * <p>And the count of the connection's streams reset before their response ended, as Envoy's HTTP/2 pool counts them
 * (source/common/http/conn_pool_base.cc {@code MultiplexedActiveClientBase::onStreamReset}): by the upstream, its
 * RST_STREAM ({@code upstream_rq_rx_reset}; not one that refuses the stream, {@code REFUSED_STREAM}, nor a
 * {@code CONNECT_ERROR}, which Envoy tells apart), or by the proxy, a stream it sent ({@code upstream_rq_tx_reset});
 * and the streams still open as the connection goes down, which its close cuts short
 * ({@link CloseSide#requestActive}).
 */
final class Http2ResponseHeads extends Http2FrameListenerDecorator {
    private final Http2Connection connection;
    /** Marks a stream whose final answer's head came: a later header block is its trailers. */
    private final Http2Connection.PropertyKey answered;
    /** Marks a stream whose response ended (the upstream's END_STREAM): a reset no longer cuts it short. */
    private final Http2Connection.PropertyKey ended;
    private final boolean streamError;
    /** The cluster's statistics, or null when none are kept. */
    private final java.util.function.Supplier<dev.inmesh.runtime.stats.UpstreamStats> stats;

    private Http2ResponseHeads(Http2FrameListener listener, Http2Connection connection, boolean streamError,
                               java.util.function.Supplier<dev.inmesh.runtime.stats.UpstreamStats> stats) {
        super(listener);
        this.connection = connection;
        this.answered = connection.newKey();
        this.ended = connection.newKey();
        this.streamError = streamError;
        this.stats = stats;
    }

    /**
     * Puts the rules on an HTTP/2 connection Vert.x just opened (its settings read, so its frame listener is the one
     * that serves its streams); an HTTP/1 connection is left as it is.
     *
     * @param streamError the cluster's {@code override_stream_error_on_invalid_http_message}: an invalid answer
     *     resets its stream only, rather than ending the connection
     * @param stats where the connection's stream resets are counted: the cluster's statistics, or null
     */
    static void install(Channel channel, boolean streamError,
                        java.util.function.Supplier<dev.inmesh.runtime.stats.UpstreamStats> stats) {
        Http2ConnectionHandler handler = channel.pipeline().get(Http2ConnectionHandler.class);
        if (handler == null) {
            return;
        }
        Http2FrameListener listener = handler.decoder().frameListener();
        if (listener != null && !(listener instanceof Http2ResponseHeads)) {
            Http2ResponseHeads heads = new Http2ResponseHeads(listener, handler.connection(), streamError, stats);
            handler.decoder().frameListener(heads);
            handler.connection().addListener(heads.new Closes(channel));
        }
    }

    /** How the connection's streams close: reset by the proxy, or cut short by the connection's end. */
    private final class Closes extends Http2ConnectionAdapter {
        private final Channel channel;

        Closes(Channel channel) {
            this.channel = channel;
        }

        @Override
        public void onStreamHalfClosed(Http2Stream stream) {
            if (stream.state() == Http2Stream.State.HALF_CLOSED_REMOTE) {
                stream.setProperty(ended, Boolean.TRUE);
            }
        }

        @Override
        public void onStreamClosed(Http2Stream stream) {
            if (!channel.isActive()) {
                // Netty closes the streams still open once the connection is down
                CloseSide.requestActive(channel, true);
            } else if (stream.isResetSent() && stream.isHeadersSent() && !ended(stream)) {
                count(false);
            }
        }
    }

    /** Whether {@code stream}'s response ended. */
    private boolean ended(Http2Stream stream) {
        return stream.getProperty(ended) != null;
    }

    /** A stream reset: {@code upstream_rq_rx_reset} ({@code remote}) or {@code upstream_rq_tx_reset}. */
    private void count(boolean remote) {
        var s = stats == null ? null : stats.get();
        if (s != null) {
            s.streamReset(remote);
        }
    }

    @Override
    public void onRstStreamRead(ChannelHandlerContext ctx, int streamId, long errorCode) throws Http2Exception {
        // Envoy's codec tells a refused stream and a CONNECT error apart from a remote reset, and its pool counts
        // neither; nor a reset after the response ended, which Envoy's codec client no longer reports
        Http2Stream stream = connection.stream(streamId);
        if (errorCode != Http2Error.REFUSED_STREAM.code() && errorCode != Http2Error.CONNECT_ERROR.code()
                && (stream == null || !ended(stream))) {
            count(true);
        }
        super.onRstStreamRead(ctx, streamId, errorCode);
    }

    /** Whether the answer's header block goes on: an invalid one throws, an interim answer passed over does not. */
    private boolean passes(int streamId, Http2Headers headers, boolean endOfStream) throws Http2Exception {
        var stream = connection.stream(streamId);
        boolean trailers = stream != null && stream.getProperty(answered) != null;
        String details = trailers ? Http2HeaderValidator.trailers(headers) : Http2HeaderValidator.response(headers);
        if (details != null) {
            throw streamError ? Http2Exception.streamError(streamId, Http2Error.PROTOCOL_ERROR, details)
                    : Http2Exception.connectionError(Http2Error.PROTOCOL_ERROR, "stream %d: %s", streamId, details);
        }
        if (trailers) {
            return true;
        }
        int status = Integer.parseInt(headers.status().toString()); // three digits
        if (status >= 200 && stream != null) {
            stream.setProperty(answered, Boolean.TRUE);
        }
        return endOfStream || !Http1ResponseFraming.passedOver(status);
    }

    @Override
    public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int padding,
                              boolean endOfStream) throws Http2Exception {
        if (passes(streamId, headers, endOfStream)) {
            super.onHeadersRead(ctx, streamId, headers, padding, endOfStream);
        }
    }

    @Override
    public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int streamDependency,
                              short weight, boolean exclusive, int padding, boolean endOfStream)
            throws Http2Exception {
        if (passes(streamId, headers, endOfStream)) {
            super.onHeadersRead(ctx, streamId, headers, streamDependency, weight, exclusive, padding, endOfStream);
        }
    }
}
