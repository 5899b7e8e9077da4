package dev.inmesh.runtime.upstream;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameListener;
import io.netty.handler.codec.http2.Http2FrameListenerDecorator;
import io.netty.handler.codec.http2.Http2Headers;

/**
 * On an HTTP/2 upstream connection, the interim answers {@link Http1ResponseFraming#passedOver} passes over on an
 * HTTP/1 one: a HEADERS frame with a 1xx status but 100 and 103 that does not end its stream goes no further than the
 * connection's decoder, as Envoy's HTTP/2 codec never takes one for the final answer. Vert.x's HTTP/2 client takes the
 * first HEADERS of a stream that is neither a 100 nor a 103 for the response head: the caller got the 102 as the
 * status and lost the final answer's headers.
 */
final class Http2InterimAnswers extends Http2FrameListenerDecorator {
    private Http2InterimAnswers(Http2FrameListener listener) {
        super(listener);
    }

    /**
     * Puts the rule on an HTTP/2 connection Vert.x just opened (its settings read, so its frame listener is the one
     * that serves its streams); an HTTP/1 connection is left as it is.
     */
    static void install(Channel channel) {
        Http2ConnectionHandler handler = channel.pipeline().get(Http2ConnectionHandler.class);
        if (handler == null) {
            return;
        }
        Http2FrameListener listener = handler.decoder().frameListener();
        if (listener != null && !(listener instanceof Http2InterimAnswers)) {
            handler.decoder().frameListener(new Http2InterimAnswers(listener));
        }
    }

    private static boolean passedOver(Http2Headers headers, boolean endOfStream) {
        if (endOfStream || headers.status() == null) {
            return false; // trailers, or a final answer however odd its status
        }
        try {
            return Http1ResponseFraming.passedOver(Integer.parseInt(headers.status().toString()));
        } catch (NumberFormatException e) {
            return false; // Vert.x refuses it
        }
    }

    @Override
    public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int padding,
                              boolean endOfStream) throws Http2Exception {
        if (!passedOver(headers, endOfStream)) {
            super.onHeadersRead(ctx, streamId, headers, padding, endOfStream);
        }
    }

    @Override
    public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int streamDependency,
                              short weight, boolean exclusive, int padding, boolean endOfStream)
            throws Http2Exception {
        if (!passedOver(headers, endOfStream)) {
            super.onHeadersRead(ctx, streamId, headers, streamDependency, weight, exclusive, padding, endOfStream);
        }
    }
}
