package dev.inmesh.interception.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.CombinedChannelDuplexHandler;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpRequestDecoder;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseEncoder;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpStatusClass;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Queue;

/**
 * The proxy's HTTP/1 server codec: Netty's request decoder and response encoder, paired so that the encoder knows
 * which request each response answers (a response to {@code HEAD} has no body; a {@code 2xx} to {@code CONNECT}
 * starts a tunnel), as Netty's {@code HttpServerCodec} pairs them. It is ours for what that codec does not let
 * decide: a request with both {@code Content-Length} and {@code Transfer-Encoding: chunked}. Netty drops the length
 * and reads the chunked body (RFC 9112 6.3), which Envoy does only with {@code allow_chunked_length}; by default
 * Envoy refuses such a request with 400, since two framings of one body are how requests are smuggled past a proxy
 * that reads the other one. Without the option the head goes on marked with a failed decoder result, which the
 * exchange answers 400 before closing the connection.
 *
 * <p>An interim response ({@code 100 Continue}) does not use up its request: the final response that follows is
 * the one matched with it.
 */
final class Http1ServerCodec extends CombinedChannelDuplexHandler<HttpRequestDecoder, HttpResponseEncoder> {
    /** The methods of the requests decoded and not yet answered, oldest first. */
    private final Queue<HttpMethod> methods = new ArrayDeque<>();

    Http1ServerCodec(HttpDecoderConfig config, boolean allowChunkedLength) {
        init(new Decoder(config, allowChunkedLength, methods), new Encoder(methods));
    }

    private static final class Decoder extends HttpRequestDecoder {
        private final boolean allowChunkedLength;
        private final Queue<HttpMethod> methods;

        Decoder(HttpDecoderConfig config, boolean allowChunkedLength, Queue<HttpMethod> methods) {
            super(config);
            this.allowChunkedLength = allowChunkedLength;
            this.methods = methods;
        }

        @Override
        protected void decode(ChannelHandlerContext ctx, ByteBuf buffer, List<Object> out) throws Exception {
            int before = out.size();
            super.decode(ctx, buffer, out);
            for (int i = before; i < out.size(); i++) {
                if (out.get(i) instanceof HttpRequest r) {
                    methods.add(r.method());
                }
            }
        }

        @Override
        protected void handleTransferEncodingChunkedWithContentLength(HttpMessage message) {
            if (allowChunkedLength) {
                super.handleTransferEncodingChunkedWithContentLength(message);
            } else {
                message.setDecoderResult(DecoderResult.failure(new HttpBridge.RefusedHead(
                        HttpResponseStatus.BAD_REQUEST, "http1.content_length_and_chunked_not_allowed",
                        "content-length and chunked transfer-encoding together (allow_chunked_length is off)")));
            }
        }
    }

    private static final class Encoder extends HttpResponseEncoder {
        private final Queue<HttpMethod> methods;
        /** The method of the request the response being encoded answers. */
        private HttpMethod method;

        Encoder(Queue<HttpMethod> methods) {
            this.methods = methods;
        }

        @Override
        protected boolean isContentAlwaysEmpty(HttpResponse msg) {
            int code = msg.status().code();
            if (msg.status().codeClass() == HttpStatusClass.INFORMATIONAL && code != 101) {
                return super.isContentAlwaysEmpty(msg); // interim: the request's own answer is still to come
            }
            method = methods.poll();
            return HttpMethod.HEAD.equals(method) || super.isContentAlwaysEmpty(msg);
        }

        @Override
        protected void sanitizeHeadersBeforeEncode(HttpResponse msg, boolean isAlwaysEmpty) {
            if (!isAlwaysEmpty && HttpMethod.CONNECT.equals(method)
                    && msg.status().codeClass() == HttpStatusClass.SUCCESS) {
                msg.headers().remove(HttpHeaderNames.TRANSFER_ENCODING); // a tunnel: the bytes that follow are raw
                return;
            }
            super.sanitizeHeadersBeforeEncode(msg, isAlwaysEmpty);
        }
    }
}
