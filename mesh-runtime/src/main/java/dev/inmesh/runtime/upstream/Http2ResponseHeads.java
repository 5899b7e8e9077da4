package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.router.Http2HeaderValidator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameListener;
import io.netty.handler.codec.http2.Http2FrameListenerDecorator;
import io.netty.handler.codec.http2.Http2Headers;

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
 */
final class Http2ResponseHeads extends Http2FrameListenerDecorator {
    private final Http2Connection connection;
    /** Marks a stream whose final answer's head came: a later header block is its trailers. */
    private final Http2Connection.PropertyKey answered;
    private final boolean streamError;

    private Http2ResponseHeads(Http2FrameListener listener, Http2Connection connection, boolean streamError) {
        super(listener);
        this.connection = connection;
        this.answered = connection.newKey();
        this.streamError = streamError;
    }

    /**
     * Puts the rules on an HTTP/2 connection Vert.x just opened (its settings read, so its frame listener is the one
     * that serves its streams); an HTTP/1 connection is left as it is.
     *
     * @param streamError the cluster's {@code override_stream_error_on_invalid_http_message}: an invalid answer
     *     resets its stream only, rather than ending the connection
     */
    static void install(Channel channel, boolean streamError) {
        Http2ConnectionHandler handler = channel.pipeline().get(Http2ConnectionHandler.class);
        if (handler == null) {
            return;
        }
        Http2FrameListener listener = handler.decoder().frameListener();
        if (listener != null && !(listener instanceof Http2ResponseHeads)) {
            handler.decoder().frameListener(new Http2ResponseHeads(listener, handler.connection(), streamError));
        }
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
