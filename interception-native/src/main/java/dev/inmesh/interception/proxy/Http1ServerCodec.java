package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.Http1Options;
import dev.inmesh.runtime.upstream.Http1BodyEnd;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.CombinedChannelDuplexHandler;
import io.netty.handler.codec.DecoderResult;
import dev.inmesh.interception.proxy.HttpBridge.RefusedHead;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpRequestDecoder;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseEncoder;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpStatusClass;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.AsciiString;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Queue;

/**
 * The proxy's HTTP/1 server codec: Netty's request decoder and response encoder, paired so that the encoder knows
 * which request each response answers (a response to {@code HEAD} has no body; a {@code 2xx} to {@code CONNECT}
 * starts a tunnel), as Netty's {@code HttpServerCodec} pairs them. It is ours for what that codec does not let
 * decide: a request's framing, refused as Envoy's codec refuses it (see {@code Decoder.framing}), and a request
 * with both {@code Content-Length} and {@code Transfer-Encoding: chunked}. Netty drops the length and reads the
 * chunked body (RFC 9112 6.3), which Envoy does only with {@code allow_chunked_length}; by default
 * Envoy refuses such a request with 400, since two framings of one body are how requests are smuggled past a proxy
 * that reads the other one. Without the option the head goes on marked with a failed decoder result, which the
 * exchange answers 400 before closing the connection.
 *
 * <p>An upgrade's head (or a {@code CONNECT}'s) is the last thing it decodes, with no body: the bytes after it are the
 * upgrade's payload, held undecoded until the codec is taken off the connection, which hands them on.
 *
 * <p>An interim response ({@code 100 Continue}) does not use up its request: the final response that follows is
 * the one matched with it.
 */
final class Http1ServerCodec extends CombinedChannelDuplexHandler<HttpRequestDecoder, HttpResponseEncoder> {
    /** The methods of the requests decoded and not yet answered, oldest first. */
    private final Queue<HttpMethod> methods = new ArrayDeque<>();

    /**
     * @param timeouts the connection's request timeouts, told where each request begins, where its head ends and
     *                 where it ends
     */
    Http1ServerCodec(HttpDecoderConfig config, Http1Options options, RequestTimeouts timeouts) {
        init(new Decoder(config, options.allowChunkedLength(), options.preserveHeaderCase(), methods, timeouts),
                new Encoder(methods, options.preserveHeaderCase()));
    }

    private static final class Decoder extends HttpRequestDecoder {
        private final boolean allowChunkedLength;
        /** Whether the names keep the case they came in (a stateful formatter); else they are read in lower case. */
        private final boolean preserveHeaderCase;
        private final Queue<HttpMethod> methods;
        private final RequestTimeouts timeouts;
        /**
         * An upgrade's (or a {@code CONNECT}'s) head was read: what follows is its payload, left undecoded for the
         * relay, to which the codec's removal hands it (Netty's decoder passes on the bytes it holds).
         */
        private boolean upgraded;
        /**
         * The chunks of the request body being read, mirrored over the bytes the decoder takes so that each size line
         * is checked before Netty's decoder reads it ({@link #chunkTooLarge}); null outside a chunked body.
         */
        private Http1BodyEnd chunks;
        /** A chunk size was refused: nothing more on the connection is read, as after any message Netty refused. */
        private boolean refusedChunk;

        Decoder(HttpDecoderConfig config, boolean allowChunkedLength, boolean preserveHeaderCase,
                Queue<HttpMethod> methods, RequestTimeouts timeouts) {
            super(config);
            this.allowChunkedLength = allowChunkedLength;
            this.preserveHeaderCase = preserveHeaderCase;
            this.methods = methods;
            this.timeouts = timeouts;
        }

        /**
         * A header's (or a trailer's) name in lower case, as Envoy's HTTP/1 codec reads every name, unless a stateful
         * formatter keeps the case it came in: the router then finds the request's names in lower case already and
         * sends them upstream so without rewriting its map ({@code HeaderCase}). A name in lower case already is
         * read as Netty reads it; the names most clients capitalize ({@code Host}, {@code User-Agent}) become
         * constants, any other one copy.
         */
        @Override
        protected AsciiString splitHeaderName(byte[] sb, int start, int length) {
            if (preserveHeaderCase) {
                return super.splitHeaderName(sb, start, length);
            }
            int upper = start;
            int end = start + length;
            while (upper < end && (sb[upper] < 'A' || sb[upper] > 'Z')) {
                upper++;
            }
            if (upper == end) {
                return super.splitHeaderName(sb, start, length); // in lower case already
            }
            for (AsciiString common : COMMON) {
                if (common.length() == length && equalsIgnoreCase(common, sb, start)) {
                    return common;
                }
            }
            byte[] lower = new byte[length];
            for (int i = 0; i < length; i++) {
                byte b = sb[start + i];
                lower[i] = b >= 'A' && b <= 'Z' ? (byte) (b + ('a' - 'A')) : b;
            }
            return new AsciiString(lower, false);
        }

        /** Whether the lower-case {@code name} is the bytes of {@code sb} from {@code start} on, in any case. */
        private static boolean equalsIgnoreCase(AsciiString name, byte[] sb, int start) {
            for (int i = 0; i < name.length(); i++) {
                byte b = sb[start + i];
                if ((b >= 'A' && b <= 'Z' ? b + ('a' - 'A') : b) != name.byteAt(i)) {
                    return false;
                }
            }
            return true;
        }

        /** Names most clients send capitalized, whose lower case is a constant rather than a copy per request. */
        private static final AsciiString[] COMMON = {HttpHeaderNames.HOST, HttpHeaderNames.USER_AGENT,
            HttpHeaderNames.ACCEPT, HttpHeaderNames.CONTENT_TYPE, HttpHeaderNames.CONTENT_LENGTH,
            HttpHeaderNames.CONNECTION, HttpHeaderNames.ACCEPT_ENCODING};

        @Override
        protected void decode(ChannelHandlerContext ctx, ByteBuf buffer, List<Object> out) throws Exception {
            if (upgraded) {
                return; // the upgrade's payload: not a body, nor a request
            }
            if (refusedChunk) {
                buffer.skipBytes(buffer.readableBytes()); // as Netty's decoder after a message it could not read
                return;
            }
            int before = out.size();
            if (timeouts != null && buffer.isReadable()) {
                timeouts.bytesRead(buffer);
            }
            if (chunks != null && chunks.atSizeLine() && chunkTooLarge(buffer)) {
                refuseChunks(buffer, out, "a chunk size over " + Integer.MAX_VALUE);
                return;
            }
            int from = buffer.readerIndex();
            super.decode(ctx, buffer, out);
            if (chunks != null && chunks.take(buffer.slice(from, buffer.readerIndex() - from)) < 0
                    && out.subList(before, out.size()).stream().noneMatch(LastHttpContent.class::isInstance)) {
                // framing Netty read and Envoy's codec would not (a bare CR in a size line): refused, since past it
                // the mirror could not tell the size lines any more
                refuseChunks(buffer, out, "the chunks' framing is broken");
                return;
            }
            for (int i = before; i < out.size(); i++) {
                Object o = out.get(i);
                if (o instanceof HttpRequest r) {
                    methods.add(r.method());
                    checkFraming(r); // (an upgrade's was checked already, and passes again)
                    // a chunked body follows the head, which the call that read it read alone
                    chunks = r.decoderResult().isSuccess() && !upgraded && HttpUtil.isTransferEncodingChunked(r)
                            ? Http1BodyEnd.chunked() : null;
                    if (timeouts != null) {
                        timeouts.headRead();
                    }
                }
                if (o instanceof LastHttpContent) {
                    chunks = null;
                    if (timeouts != null) {
                        timeouts.requestRead();
                    }
                }
            }
        }

        /**
         * Ends the request with a body Netty's decoder had not refused, as it ends one whose chunk it cannot read: its
         * last content failed, and nothing more on the connection read.
         */
        private void refuseChunks(ByteBuf buffer, List<Object> out, String why) {
            refusedChunk = true;
            chunks = null;
            buffer.skipBytes(buffer.readableBytes());
            LastHttpContent refused = new DefaultLastHttpContent();
            refused.setDecoderResult(DecoderResult.failure(new NumberFormatException(why)));
            out.add(refused);
        }

        /**
         * Whether the size line at {@code buffer}'s reader index holds a size beyond what Netty's decoder reads right
         * (an {@code int}: a larger size wraps, {@code 100000005} read as 5, so that the rest of the body would be read
         * as another request). Envoy's codec reads sizes up to 64 bits, and refuses a larger one; a chunk of 2 GiB or
         * more is refused here, as one Netty cannot read.
         */
        private static boolean chunkTooLarge(ByteBuf buffer) {
            long size = 0;
            int i = buffer.readerIndex();
            while (i < buffer.writerIndex() && (buffer.getByte(i) == ' ' || buffer.getByte(i) == '\t')) {
                i++; // as Netty's decoder skips them
            }
            for (; i < buffer.writerIndex(); i++) {
                int digit = Character.digit((char) (buffer.getByte(i) & 0xff), 16);
                if (digit < 0) {
                    return false;
                }
                size = size * 16 + digit;
                if (size > Integer.MAX_VALUE) {
                    return true;
                }
            }
            return false;
        }

        /**
         * Once the payload is held, the decoder asks for no read of its own (Netty's asks for one after a read that
         * made no message, while auto-read is off): the connection is read as the exchange and then the relay say,
         * so that what is held while the upgrade waits its turn or the router's decision stays bounded.
         */
        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) throws Exception {
            if (upgraded) {
                ctx.fireChannelReadComplete();
                return;
            }
            super.channelReadComplete(ctx);
        }

        /**
         * An upgrade's or a {@code CONNECT}'s head has no body, as Envoy's codec reads one: every byte after it is
         * the upgrade's payload, whatever its {@code Content-Length} or {@code Transfer-Encoding} say (the codec
         * returns {@code NoBodyData} in onHeadersCompleteImpl when {@code handling_upgrade_}, source/common/http/
         * http1/codec_impl.cc), and nothing after it is decoded any more. Its framing is checked first, as Envoy's
         * codec checks it (Netty's decoder takes {@code chunked} off a head without a body).
         */
        @Override
        protected boolean isContentAlwaysEmpty(HttpMessage msg) {
            if (!(msg instanceof HttpRequest r) || !Http1Requests.upgradeOrConnect(r)) {
                return super.isContentAlwaysEmpty(msg);
            }
            upgraded = true;
            if (HttpUtil.isTransferEncodingChunked(r) && r.headers().contains(HttpHeaderNames.CONTENT_LENGTH)) {
                handleTransferEncodingChunkedWithContentLength(r);
            }
            checkFraming(r);
            return true;
        }

        /** Marks a request head whose framing Envoy's codec refuses ({@link #framing}) with a failed decoder result. */
        private static void checkFraming(HttpRequest r) {
            RefusedHead refused = r.decoderResult().isSuccess() ? framing(r) : null;
            if (refused != null) {
                r.setDecoderResult(DecoderResult.failure(refused));
            }
        }

        /**
         * The framing rules Envoy's codec applies to a request head, beyond Netty's: a {@code Transfer-Encoding}
         * beside a {@code Content-Length} is refused (400) whatever its coding (Netty takes only chunked as one
         * framing against the other, and what is left of a chunked one with {@code allow_chunked_length} has no
         * length any more); a {@code Transfer-Encoding} other than one {@code chunked} (two lines of it, another
         * coding, chunked not alone) or on {@code CONNECT} is refused with 501; {@code CONNECT} with a body length
         * other than 0 is refused (400), its length 0 dropped. Null when the head may go on.
         */
        private static RefusedHead framing(HttpRequest r) {
            HttpHeaders h = r.headers();
            List<String> codings = h.getAll(HttpHeaderNames.TRANSFER_ENCODING);
            boolean connect = HttpMethod.CONNECT.equals(r.method());
            if (!codings.isEmpty()) {
                if (h.contains(HttpHeaderNames.CONTENT_LENGTH)) {
                    return new RefusedHead(HttpResponseStatus.BAD_REQUEST,
                            "http1.content_length_and_chunked_not_allowed", "content-length beside transfer-encoding");
                }
                if (connect || codings.size() != 1
                        || !HttpHeaderValues.CHUNKED.contentEqualsIgnoreCase(codings.get(0).trim())) {
                    return new RefusedHead(HttpResponseStatus.NOT_IMPLEMENTED, "http1.invalid_transfer_encoding",
                            "transfer-encoding other than chunked: " + codings);
                }
            } else if (connect && h.contains(HttpHeaderNames.CONTENT_LENGTH)) {
                if (!"0".equals(h.get(HttpHeaderNames.CONTENT_LENGTH))) {
                    return new RefusedHead(HttpResponseStatus.BAD_REQUEST, "http1.body_disallowed",
                            "a body on CONNECT");
                }
                h.remove(HttpHeaderNames.CONTENT_LENGTH);
            }
            return null;
        }

        @Override
        protected void handleTransferEncodingChunkedWithContentLength(HttpMessage message) {
            if (allowChunkedLength) {
                super.handleTransferEncodingChunkedWithContentLength(message);
            } else {
                message.setDecoderResult(DecoderResult.failure(new RefusedHead(
                        HttpResponseStatus.BAD_REQUEST, "http1.content_length_and_chunked_not_allowed",
                        "content-length and chunked transfer-encoding together (allow_chunked_length is off)")));
            }
        }
    }

    private static final class Encoder extends HttpResponseEncoder {
        private final Queue<HttpMethod> methods;
        private static final int COLON_SPACE = ':' << 8 | ' ';
        private static final int CRLF_SHORT = '\r' << 8 | '\n';
        private final boolean preserveHeaderCase;
        /** The method of the request the response being encoded answers. */
        private HttpMethod method;

        Encoder(Queue<HttpMethod> methods, boolean preserveHeaderCase) {
            this.methods = methods;
            this.preserveHeaderCase = preserveHeaderCase;
        }

        /**
         * The head's and the trailers' lines: each name in lower case, as Envoy's HTTP/1 codec writes the names it
         * holds (lower case) unless a stateful formatter keeps the case they came with.
         */
        @Override
        protected void encodeHeaders(HttpHeaders headers, ByteBuf buf) {
            if (preserveHeaderCase) {
                super.encodeHeaders(headers, buf);
                return;
            }
            Iterator<Map.Entry<CharSequence, CharSequence>> it = headers.iteratorCharSequence();
            while (it.hasNext()) {
                Map.Entry<CharSequence, CharSequence> h = it.next();
                CharSequence name = h.getKey();
                if (name instanceof AsciiString a) {
                    ByteBufUtil.copy(a.toLowerCase(), buf); // itself when it has no upper case
                } else if (dev.inmesh.runtime.router.HeaderCase.hasUpperCase(name)) {
                    for (int i = 0; i < name.length(); i++) {
                        char c = name.charAt(i);
                        buf.writeByte(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
                    }
                } else {
                    ByteBufUtil.writeAscii(buf, name);
                }
                buf.writeShort(COLON_SPACE);
                ByteBufUtil.writeAscii(buf, h.getValue());
                buf.writeShort(CRLF_SHORT);
            }
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
