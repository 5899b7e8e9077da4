package dev.inmesh.runtime.upstream;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.DefaultHeaders;
import io.netty.handler.codec.PrematureChannelClosureException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.DefaultHttpHeadersFactory;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpHeadersFactory;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpStatusClass;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.AsciiString;
import io.netty.util.ByteProcessor;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.internal.http.HttpHeadersInternal;
import java.util.List;

/**
 * The framing rules Envoy's HTTP/1 codec applies to an upstream's response head, beyond those of Netty's decoder: a
 * {@code Transfer-Encoding} beside a {@code Content-Length}, and a {@code Transfer-Encoding} other than one
 * {@code chunked}, are protocol errors (Envoy's {@code both 'Content-Length' and 'Transfer-Encoding' are set} and
 * {@code unsupported transfer encoding}; the cluster's {@code allow_chunked_length}, which would let the length go, is
 * refused by {@code ClusterParser}). Netty drops the length beside {@code chunked} and reads the chunks (RFC 9112
 * 6.3), and reads a body of another coding to the connection's close; here such a head goes on to Vert.x with a
 * failed decoder result, as a head Netty cannot read does, which fails the request with an
 * {@link IllegalArgumentException} (the router's protocol error: 502 UPE) and closes the connection, and nothing that
 * follows it on the connection is read.
 *
 * <p>Netty's decoder tells of the length it dropped only by removing it from the head's headers: the connection's
 * codec is replaced (in the pool's connect handler, before a request is written) by one with Vert.x's settings whose
 * headers remember that removal.
 *
 * <p>A connection that closes in the status line of the answer to a request (bytes came, other than CR and LF, but no
 * head, since the last interim answer if any) is the end of input in the middle of a message, a protocol error for Envoy's codec; Netty's decoder drops such
 * a line without a word (Vert.x would see a connection termination): here a head with a failed decoder result, a
 * {@link PrematureChannelClosureException} as Netty gives for a close in the headers, goes on to Vert.x first.
 *
 * <p>The trailers of a chunked response are dropped unless the cluster's HTTP/1 options have {@code enable_trailers},
 * as Envoy's HTTP/1 codec drops them: the caller gets the body and its end, without them.
 *
 * <p>Bytes beyond the answers to the requests written are a protocol error, as for Envoy's HTTP/1 client codec
 * ({@code extraneous data after response complete}, and a response that comes without a request): a body after the
 * answer to a HEAD, more bytes than a {@code Content-Length} said, an answer nobody asked for on an idle connection.
 * The connection is closed and counted ({@code upstream_cx_protocol_error}, except an unasked 408, as Envoy leaves
 * an idle connection's request timeout uncounted); the answer already read whole goes on, and nothing after it does,
 * so that the next request takes another connection where Vert.x would have read those bytes as the start of its
 * answer and failed it. Those found in the read that ended the answer are seen in that read's buffer, which the decoder
 * reads straight from (below).
 *
 * <p>A chunk size of 2 GiB or more is a protocol error: Netty's decoder adds a size's digits in an {@code int} and
 * checks only for a negative result, so that {@code 100000005} (4 GiB + 5) was read as 5 and the rest of the chunk
 * as the next answer on the connection, the answer to another request (Envoy's codec reads the size whole, and refuses
 * what it cannot read). The chunks are followed ({@link Http1BodyEnd}) over each read before the decoder gets it, from
 * where the head ended; the read is made to end where they break, so that the decoder never reads the size. The head
 * goes on, and the chunks before the break, then the body the caller has ends with a failed last content (a reset
 * after the response began, as Envoy's codec passes the head on before it parses a chunk, and the body it read before
 * its error), even when the break is at the body's first size line in the read that ended the head. The connection
 * closes and nothing after the break is read. Broken chunk framing the mirror cannot follow (a size line with a bare
 * CR, bytes other than a line end after a chunk's data), which Netty's decoder takes, is refused the same way, as
 * Envoy's codec refuses it. Only the chunks' size and trailer lines are looked at byte by byte; their data are
 * skipped.
 *
 * <p>A {@code 101} answering a request that has no {@code Upgrade} header is a protocol error: a server may only switch
 * to a protocol the request named (RFC 9110 15.2.2), and a connection that switched must carry no other request.
 *
 * <p>A status outside 100-999 (three digits: Envoy's former http-parser refused one over 999; the range its Balsa
 * parser takes was not confirmed, so a three-digit status past 599 is read), and a header name with whitespace in it
 * ({@code X Bad: 1}, which Netty's decoder reads as {@code X}), are protocol errors too, as Envoy's HTTP/1 parser
 * refuses them; the names are checked in the bytes
 * the decoder read for the head (it finds each line's end as Netty does, then looks at the name's bytes).
 *
 * <p>The decoder keeps the bytes of a line not whole yet at the end of a read; they are taken back from it and put
 * before the next read's (a copy, only then), so that the decoder always reads straight from the buffer of the read
 * being decoded: where it stands in it is where a body begins and a head's lines end, whatever the reads' sizes.
 */
public final class Http1ResponseFraming extends ChannelDuplexHandler {
    /** Heap buffers that need no release (no leak tracking): what Vert.x keeps of an answer's body anyway. */
    private static final io.netty.buffer.ByteBufAllocator HEAP = new UnpooledByteBufAllocator(false, true);
    private static final String NAME = "inmesh-response-framing";
    /**
     * The most header lines a response head may have: a cluster's {@code max_headers_count}, Envoy's default 100, the
     * one value Inmesh takes.
     */
    static final int MAX_HEADERS_COUNT = 100;
    /** Vert.x's setting: header names and values validated unless its system property turns that off. */
    private static final boolean VALIDATE = !HttpHeadersInternal.DISABLE_HTTP_HEADERS_VALIDATION;
    private static final String CHUNKS_BROKEN =
            "invalid chunk size or chunk framing (a size over " + Integer.MAX_VALUE + ", or a broken line)";
    private static final HttpHeadersFactory HEADERS = new NotingFactory(VALIDATE
            ? DefaultHttpHeadersFactory.headersFactory()
            : DefaultHttpHeadersFactory.headersFactory().withValidation(false));

    /** Whether a head was refused: the connection is closing, and nothing after it is passed on. */
    private boolean refused;
    /** Whether a request was written whose final response head (not a 1xx but a 101) was not decoded yet. */
    private boolean awaitingHead;
    /** Whether bytes other than CR and LF came since that request was written. */
    private boolean answerBegun;
    /** Whether an interim answer passed over ({@link #passedOver}) has content still to come (its empty end). */
    private boolean passingOver;
    /** Whether a response's trailers go on ({@code enable_trailers}); else they are dropped. */
    private final boolean keepTrailers;
    /** Counts a connection closed for bytes beyond its answers: the cluster's {@code upstream_cx_protocol_error}. */
    private final Runnable protocolError;
    /** The requests written whose final answer has not ended. */
    private int outstanding;
    /** Whether a final answer's head was read and its end not yet. */
    private boolean inFinal;
    /** Whether a 101 turned the connection into a tunnel: its bytes are not HTTP's any more. */
    private boolean upgraded;
    /** Whether the request written last asked for an upgrade: only then is a 101 an answer to it. */
    private boolean upgradeAsked;
    /**
     * The bytes of the read being decoded, while {@link Received} passes them to the codec; else null. The codec reads
     * straight from them (it holds nothing from an earlier read: {@link #held}), so that their reader index is where
     * it stands.
     */
    private ByteBuf reading;
    /**
     * The bytes at the end of a read that the codec left unread (a line not whole yet), taken back from it and put
     * before the next read's, so that the codec never holds bytes of its own; null when it left none.
     */
    private ByteBuf held;
    /** This handler's context, where a body refused before the codec read it ends. */
    private ChannelHandlerContext context;
    /**
     * The chunks of the chunked body being read, followed over the bytes before the codec gets them (from where its
     * head ended), so that a chunk size it would read wrapped is refused first; null outside a chunked body.
     */
    private Http1BodyEnd chunks;
    /** Whether the chunks broke in the read being decoded, after bytes of the body: it is cut at the read's end. */
    private boolean cutPending;
    /** Where in {@link #reading} the bytes of a head not checked yet begin; -1 in a body (none to check). */
    private int headFrom;
    /** Whether the status line of the head being read was read (in an earlier read): header lines follow. */
    private boolean statusLineRead;
    /** Why the head being read is refused, for a line of it read in an earlier read; else null. */
    private String headRefusal;

    private Http1ResponseFraming(boolean keepTrailers, Runnable protocolError) {
        headFrom = 0;
        this.keepTrailers = keepTrailers;
        this.protocolError = protocolError;
    }

    /**
     * Puts the rules on an HTTP/1 connection Vert.x just opened with {@code options}, before it carries a request,
     * keeping its responses' trailers or not, {@code protocolError} counting a connection closed for bytes beyond its
     * answers; an HTTP/2 connection (no HTTP/1 codec) is left as it is.
     */
    static void install(Channel channel, HttpClientOptions options, boolean keepTrailers, Runnable protocolError) {
        ChannelHandler codec = channel.pipeline().get("codec");
        if (!(codec instanceof HttpClientCodec) || channel.pipeline().get(NAME) != null) {
            return;
        }
        // Vert.x's settings for the codec (HttpChannelConnector's), no failure on a missing response; only the
        // headers are ours
        HttpDecoderConfig config = new HttpDecoderConfig()
                .setMaxInitialLineLength(options.getMaxInitialLineLength())
                .setMaxHeaderSize(options.getMaxHeaderSize())
                .setMaxChunkSize(options.getMaxChunkSize())
                .setInitialBufferSize(options.getDecoderInitialBufferSize())
                .setValidateHeaders(VALIDATE)
                .setHeadersFactory(HEADERS);
        channel.pipeline().replace("codec", "codec", new HttpClientCodec(config, false, false));
        Http1ResponseFraming framing = new Http1ResponseFraming(keepTrailers, protocolError);
        channel.pipeline().addAfter("codec", NAME, framing);
        channel.pipeline().addBefore("codec", NAME + "-bytes", framing.new Received());
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        context = ctx;
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
        if (msg instanceof HttpRequest request) {
            awaitingHead = true;
            answerBegun = false;
            outstanding++;
            upgradeAsked = request.headers().contains(HttpHeaderNames.UPGRADE);
        }
        ctx.write(msg, promise);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (refused) {
            ReferenceCountUtil.release(msg);
            return;
        }
        if (msg instanceof HttpResponse r) {
            String bad = headRead();
            if (bad == null && r.status().code() == 101 && !upgradeAsked) {
                // a switch no request asked for (RFC 9110 15.2.2): what follows on the connection is no HTTP/1 any
                // more, so it must carry no other request
                bad = "101 Switching Protocols to a request without an upgrade";
            }
            if (bad != null && r.decoderResult().isSuccess()) {
                refused = true;
                r.setDecoderResult(DecoderResult.failure(new IllegalArgumentException(bad)));
            }
        }
        if (msg instanceof LastHttpContent && !upgraded) {
            headFrom = reading == null ? -1 : reading.readerIndex(); // a head may follow
        }
        if (msg instanceof HttpResponse r && r.decoderResult().isSuccess()
                && r.status().codeClass() == HttpStatusClass.INFORMATIONAL && r.status().code() != 101) {
            // an interim answer read whole: the codec is between messages again, and a close now comes before the
            // final answer began, a connection termination as before any answer (not the end of input in the
            // middle of a message)
            answerBegun = false;
        }
        if (msg instanceof HttpResponse r && r.decoderResult().isSuccess() && passedOver(r.status().code())) {
            // an interim answer passed over is checked as any head (its header count, a body's framing), as Envoy's
            // codec checks each before it passes it over
            String refusal = refusal(r.status().code(), r.headers());
            if (refusal != null) {
                refused = true;
                r.setDecoderResult(DecoderResult.failure(new IllegalArgumentException(refusal)));
            }
        }
        if (passingOver || msg instanceof HttpResponse r && r.decoderResult().isSuccess()
                && passedOver(r.status().code())) {
            passingOver = !(msg instanceof LastHttpContent);
            ReferenceCountUtil.release(msg);
            return;
        }
        if (msg instanceof HttpResponse r && (r.status().codeClass() != HttpStatusClass.INFORMATIONAL
                || r.status().code() == 101)) {
            awaitingHead = false;
            inFinal = true;
            upgraded |= r.status().code() == 101 && r.decoderResult().isSuccess();
        }
        if (msg instanceof HttpResponse r && r.decoderResult().isSuccess()) {
            String refusal = refusal(r.status().code(), r.headers());
            if (refusal == null && !upgraded && HttpUtil.isTransferEncodingChunked(r)) {
                chunksFollow();
            }
            if (refusal != null) {
                refused = true;
                r.setDecoderResult(DecoderResult.failure(new IllegalArgumentException(refusal)));
            } else if (!upgraded && endsConnection(r.headers())) {
                // Vert.x's pool ends the connection on a Connection header whose whole value is close: a list with
                // close in it (Connection: Upgrade, close) or a Proxy-Connection: close is said to it that way, or it
                // would hand the connection the server is closing to the next request
                r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            }
        }
        if (!keepTrailers && msg instanceof LastHttpContent last && !last.trailingHeaders().isEmpty()) {
            last.trailingHeaders().clear();
        }
        boolean extraneous = false;
        if (msg instanceof LastHttpContent last && inFinal && last.decoderResult().isSuccess()) {
            inFinal = false;
            outstanding = Math.max(0, outstanding - 1);
            // the decoder stands right after this answer's end in the buffer it reads from
            extraneous = outstanding == 0 && !upgraded && !refused && beyondAnswers(reading);
        }
        if (extraneous) {
            // closed before the answer goes on, so that the connection is not handed to another request
            refused = true;
            protocolError.run();
            ctx.channel().close();
        }
        ctx.fireChannelRead(msg instanceof HttpContent content ? unpooled(content) : msg);
    }

    /**
     * {@code content} with its bytes in a heap buffer of its own, its pooled one released. Vert.x's connection copies
     * a pooled chunk so when it handles it ({@code VertxHandler.safeBuffer}), but drops unreleased the chunks it holds
     * while its reading is paused if the connection closes then ({@code VertxConnection}'s pending messages): a proxy
     * whose client went away mid-answer leaked them from the pool. Copied here instead, Vert.x takes the copy as it is
     * (no second copy), and one it drops is the collector's.
     */
    static HttpContent unpooled(HttpContent content) {
        ByteBuf b = content.content();
        if (!b.isReadable() || b.alloc() instanceof UnpooledByteBufAllocator) {
            return content;
        }
        ByteBuf copy = HEAP.heapBuffer(b.readableBytes());
        copy.writeBytes(b, b.readerIndex(), b.readableBytes());
        HttpContent out = content instanceof LastHttpContent last
                ? new DefaultLastHttpContent(copy, last.trailingHeaders()) : new DefaultHttpContent(copy);
        out.setDecoderResult(content.decoderResult());
        content.release();
        return out;
    }

    /**
     * Whether an answer ends its connection by its headers, as Envoy reads them ({@code shouldCloseConnection}):
     * {@code Connection} or {@code Proxy-Connection} lists {@code close}. (An HTTP/1.0 answer without keep-alive ends
     * it too; Vert.x knows that one.)
     */
    static boolean endsConnection(HttpHeaders headers) {
        return headers.containsValue(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE, true)
                || headers.containsValue(HttpHeaderNames.PROXY_CONNECTION, HttpHeaderValues.CLOSE, true);
    }

    /**
     * A chunked body follows the head just read (the codec took the coding off a head without a body): its chunks
     * are followed from where the codec stands, over the rest of the read. Where they break in it, even at the
     * body's first size line, the head goes on and the body is cut at the read's end, as Envoy's codec passes the
     * head on before it parses a chunk, whatever the reads.
     */
    private void chunksFollow() {
        chunks = Http1BodyEnd.chunked();
        if (reading != null && follow(reading)) {
            cutPending = true; // the head, and the chunks before the break, go on first
        }
    }

    /**
     * Follows the chunks over {@code b}'s readable bytes; where they break, {@code b} is made to end there, so that the
     * decoder reads none of the bytes that broke them: then true.
     */
    private boolean follow(ByteBuf b) {
        if (chunks.take(b) >= 0) {
            if (chunks.ended()) {
                chunks = null;
            }
            return false;
        }
        b.writerIndex(chunks.brokenAt());
        chunks = null;
        return true;
    }

    /**
     * A head was read: why Envoy's codec refuses its lines not checked yet (those of the read that ended it, from
     * {@link #headFrom}) or those checked in an earlier read, or null; a body follows it.
     */
    private String headRead() {
        String why = headRefusal;
        if (why == null && headFrom >= 0 && reading != null && !upgraded) {
            why = checkLines(reading, headFrom, reading.readerIndex());
        }
        headRefusal = null;
        statusLineRead = false;
        headFrom = -1;
        return why;
    }

    /**
     * Checks the whole lines of a head in {@code b} from {@code from} to {@code to}, past its status line: a header
     * name with whitespace in it ({@code X Bad: 1}, which Netty's decoder reads as {@code X}) is refused, as Envoy's
     * codec refuses a character no header name has. The line ends are found as Netty finds them; only a name's bytes
     * are looked at one by one (a line that starts with whitespace continues the value before it).
     */
    private String checkLines(ByteBuf b, int from, int to) {
        for (int at = from; at < to; ) {
            int lf = b.indexOf(at, to, (byte) '\n');
            int end = lf < 0 ? to : lf;
            if (!statusLineRead) {
                // the first line with more than control characters and whitespace, which Netty's decoder skips
                for (int i = at; i < end && !statusLineRead; i++) {
                    statusLineRead = (b.getByte(i) & 0xff) > ' ';
                }
            } else if (end > at && !isWhitespace(b.getByte(at)) && b.getByte(at) != '\r') {
                for (int i = at; i < end && b.getByte(i) != ':'; i++) {
                    if (isWhitespace(b.getByte(i))) {
                        return "invalid header name: whitespace in '"
                                + b.toString(at, i - at, java.nio.charset.StandardCharsets.ISO_8859_1) + "...'";
                    }
                }
            }
            at = end + 1;
        }
        return null;
    }

    private static boolean isWhitespace(byte c) {
        return c == ' ' || c == '\t';
    }

    /** Whether {@code buf} (null: not known) still holds bytes other than CR and LF. */
    private static boolean beyondAnswers(ByteBuf buf) {
        return buf != null && buf.refCnt() > 0 && buf.isReadable()
                && buf.forEachByte(buf.readerIndex(), buf.readableBytes(), ByteProcessor.FIND_NON_CRLF) >= 0;
    }

    /** Whether {@code buf}, unasked for, is an answer 408: an idle connection's request timeout, not counted. */
    private static boolean requestTimeout(ByteBuf buf) {
        int at = buf.forEachByte(ByteProcessor.FIND_NON_CRLF);
        if (at < 0 || buf.writerIndex() - at < 12) {
            return false;
        }
        String line = buf.toString(at, 12, java.nio.charset.StandardCharsets.ISO_8859_1);
        return line.startsWith("HTTP/1.") && line.endsWith(" 408");
    }

    /**
     * Whether an interim (1xx) answer is passed over, as Envoy's HTTP/1 codec passes over those it does not relay:
     * all but 100 (the continue handler's), 101 (an upgrade's final answer) and 103 (Vert.x's early hints, which the
     * router does not relay either). Vert.x takes any other 1xx for the final answer, so that the caller got a 102
     * with no body, and the real answer that follows was left on the connection.
     */
    static boolean passedOver(int status) {
        return status >= 102 && status < 200 && status != 103;
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        releaseHeld();
        if (outstanding > 0 || upgraded) {
            // after what the codec's end of input completed (a body the close delimits): a request whose final answer
            // is not whole, or the tunnel of a 101, is cut short by the close
            CloseSide.requestActive(ctx.channel(), true);
        }
        // the codec passed on what its end of input completed first: a head still awaited was cut in its status line
        if (awaitingHead && answerBegun && !refused) {
            awaitingHead = false;
            HttpResponse cut = new DefaultFullHttpResponse(HttpVersion.HTTP_1_0, new HttpResponseStatus(999, "Unknown"),
                    Unpooled.EMPTY_BUFFER);
            cut.setDecoderResult(DecoderResult.failure(
                    new PrematureChannelClosureException("the connection closed in the response's status line")));
            ctx.fireChannelRead(cut);
        }
        ctx.fireChannelInactive();
    }

    private void releaseHeld() {
        if (held != null) {
            held.release();
            held = null;
        }
    }

    /**
     * Before the codec: notes that the answer to the request written began, follows the chunks of a chunked body
     * before the codec reads them, and gives the codec each read whole with what it left of the one before.
     */
    private final class Received extends ChannelInboundHandlerAdapter {
        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            releaseHeld();
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (!(msg instanceof ByteBuf b)) {
                ctx.fireChannelRead(msg);
                return;
            }
            if (refused) {
                b.release();
                return;
            }
            if (outstanding == 0 && !inFinal && !upgraded && b.forEachByte(ByteProcessor.FIND_NON_CRLF) >= 0) {
                // an answer (or anything) on a connection no request is waiting on
                refused = true;
                if (!requestTimeout(b)) {
                    protocolError.run();
                }
                b.release();
                ctx.channel().close();
                return;
            }
            if (awaitingHead && !answerBegun && b.forEachByte(ByteProcessor.FIND_NON_CRLF) >= 0) {
                answerBegun = true;
            }
            if (chunks != null && !upgraded && follow(b)) {
                cutPending = true;
            }
            b = whole(ctx, b);
            if (headFrom >= 0) {
                headFrom = b.readerIndex();
            }
            b.retain(); // to see what the codec left of it
            reading = b;
            try {
                ctx.fireChannelRead(b);
            } finally {
                reading = null;
                try {
                    leftOver(b);
                } finally {
                    b.release();
                }
            }
        }

        /** {@code b} after the bytes the codec left of the read before (a copy only then), in one buffer. */
        private ByteBuf whole(ChannelHandlerContext ctx, ByteBuf b) {
            if (held == null && b.isContiguous()) {
                return b; // most reads
            }
            ByteBuf all = ctx.alloc().buffer((held == null ? 0 : held.readableBytes()) + b.readableBytes());
            if (held != null) {
                all.writeBytes(held);
                releaseHeld();
            }
            all.writeBytes(b);
            b.release();
            return all;
        }

        /**
         * After the codec read {@code b}: checks the lines of a head it read and that did not end yet, and takes back
         * what it left (a line not whole), which it holds in {@code b}, its buffer, to put before the next read.
         */
        private void leftOver(ByteBuf b) {
            if (cutPending) {
                cutPending = false;
                if (!refused) {
                    // the body the caller has ends failed, as after a chunk Netty's decoder cannot read, and the
                    // connection closes
                    refused = true;
                    releaseHeld();
                    LastHttpContent cut = new DefaultLastHttpContent();
                    cut.setDecoderResult(DecoderResult.failure(new IllegalArgumentException(CHUNKS_BROKEN)));
                    context.fireChannelRead(cut);
                    context.channel().close();
                }
                return;
            }
            if (refused || upgraded) {
                return; // (an upgrade's bytes the codec hands on when it is removed)
            }
            if (headFrom >= 0 && headRefusal == null) {
                headRefusal = checkLines(b, headFrom, b.readerIndex());
            }
            if (b.isReadable()) {
                held = b.readRetainedSlice(b.readableBytes());
            }
        }
    }

    /**
     * Why Envoy's codec refuses a response head of this status with these headers, or null when it takes it: a status
     * outside 100-999 (Envoy's HTTP/1 parser refuses one over 999, where Netty reads any number: {@code HTTP/1.1 2000
     * OK} went on as a 2000); besides the framing rules above, a 1xx or a 204 with a {@code Transfer-Encoding}
     * (Netty's decoder takes off the {@code chunked} of a 204's, noted) or a {@code Content-Length} other than {@code 0}, which Envoy's client codec
     * refuses (its {@code onHeadersCompleteBase}: {@code http1.transfer_encoding_not_allowed},
     * {@code http1.content_length_not_allowed}) where Netty would read no body and then take that body's bytes as
     * extraneous, the 204 itself going on. (The standalone proxy reads the answer to an upgrade it relays by these
     * rules too.)
     */
    public static String refusal(int status, HttpHeaders h) {
        if (status < 100 || status > 999) {
            return "invalid response status " + status;
        }
        if (h.size() > MAX_HEADERS_COUNT) {
            return "headers count exceeds limit";
        }
        if (status < 200 || status == 204) {
            if (h.contains(HttpHeaderNames.TRANSFER_ENCODING)
                    || h instanceof LengthNotingHeaders l && l.codingDropped) {
                return "transfer encoding not allowed in 1xx or 204";
            }
            String length = h.get(HttpHeaderNames.CONTENT_LENGTH);
            if (length != null && !length.equals("0")) {
                return "content length not allowed in 1xx or 204";
            }
            return null;
        }
        if (!h.contains(HttpHeaderNames.TRANSFER_ENCODING)) {
            return null; // most heads: no list made for them
        }
        List<String> codings = h.getAll(HttpHeaderNames.TRANSFER_ENCODING);
        if (h.contains(HttpHeaderNames.CONTENT_LENGTH) || h instanceof LengthNotingHeaders l && l.lengthDropped) {
            return "both 'Content-Length' and 'Transfer-Encoding' are set";
        }
        if (codings.size() != 1 || !HttpHeaderValues.CHUNKED.contentEqualsIgnoreCase(codings.get(0).trim())) {
            return "unsupported transfer encoding " + codings;
        }
        return null;
    }

    /** Netty's headers for a response head, made as {@code plain} makes them, that note a length removed. */
    private record NotingFactory(DefaultHttpHeadersFactory plain) implements HttpHeadersFactory {
        @Override
        public HttpHeaders newHeaders() {
            return new LengthNotingHeaders(plain.getNameValidator(), plain.getValueValidator());
        }

        @Override
        public HttpHeaders newEmptyHeaders() {
            return newHeaders();
        }
    }

    /** A response head's headers that remember the decoder removing a {@code Content-Length} or a transfer coding. */
    private static final class LengthNotingHeaders extends DefaultHttpHeaders {
        private boolean lengthDropped;
        private boolean codingDropped;

        LengthNotingHeaders(DefaultHeaders.NameValidator<CharSequence> names,
                            DefaultHeaders.ValueValidator<CharSequence> values) {
            super(names, values);
        }

        @Override
        public HttpHeaders remove(CharSequence name) {
            if (AsciiString.contentEqualsIgnoreCase(HttpHeaderNames.CONTENT_LENGTH, name) && contains(name)) {
                lengthDropped = true;
            }
            if (AsciiString.contentEqualsIgnoreCase(HttpHeaderNames.TRANSFER_ENCODING, name) && contains(name)) {
                codingDropped = true;
            }
            return super.remove(name);
        }
    }
}
