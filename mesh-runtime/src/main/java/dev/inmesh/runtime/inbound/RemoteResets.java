package dev.inmesh.runtime.inbound;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http2.Http2ConnectionHandler;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameListenerDecorator;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.util.AttributeKey;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.impl.HttpServerConnection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The streams of a {@code mesh.inbound} HTTP/2 connection that the client reset (RST_STREAM) before their response
 * ended, read off Netty's decoder ahead of Vert.x, which tells such a reset only to the request's or response's
 * exception handler (the service's to set) and then closes the response as it would for a closed connection. Envoy's
 * connection manager logs such a stream DR with its codec's details, a closed connection's DC.
 */
final class RemoteResets extends Http2FrameListenerDecorator {
    private static final AttributeKey<RemoteResets> KEY = AttributeKey.valueOf(RemoteResets.class, "resets");

    private final Http2ConnectionHandler handler;
    /** The error code of each stream reset before its response ended, until its request is logged. */
    private final Map<Integer, Long> reset = new ConcurrentHashMap<>();

    private RemoteResets(Http2ConnectionHandler handler) {
        super(handler.decoder().frameListener());
        this.handler = handler;
    }

    /** Starts noting the resets of {@code req}'s HTTP/2 connection, once per connection. */
    static void watch(HttpServerRequest req) {
        if (!(req.connection() instanceof HttpServerConnection c)) {
            return;
        }
        var channel = c.channelHandlerContext().channel();
        Http2ConnectionHandler h = channel.pipeline().get(Http2ConnectionHandler.class);
        if (h != null && channel.attr(KEY).get() == null) {
            RemoteResets watching = new RemoteResets(h);
            channel.attr(KEY).set(watching);
            h.decoder().frameListener(watching);
        }
    }

    /**
     * The codec's response code details of the client's reset of {@code req}'s stream, as Envoy's HTTP/2 codec gives
     * them ({@code http2.remote_refuse} for REFUSED_STREAM, else {@code http2.remote_reset}), or null when the
     * client did not reset it; forgets it.
     */
    static String take(HttpServerRequest req) {
        RemoteResets watching = req.connection() instanceof HttpServerConnection c
                ? c.channelHandlerContext().channel().attr(KEY).get() : null;
        Long code = watching == null ? null : watching.reset.remove(req.streamId());
        if (code == null) {
            return null;
        }
        return code == Http2Error.REFUSED_STREAM.code() ? "http2.remote_refuse" : "http2.remote_reset";
    }

    @Override
    public void onRstStreamRead(ChannelHandlerContext ctx, int streamId, long errorCode) throws Http2Exception {
        Http2Stream stream = handler.connection().stream(streamId);
        if (stream != null && stream.state() != Http2Stream.State.HALF_CLOSED_LOCAL) {
            reset.put(streamId, errorCode); // its response had not ended: its request is logged once it closes
        }
        super.onRstStreamRead(ctx, streamId, errorCode);
    }
}
