package dev.inmesh.interception.proxy;

import dev.inmesh.runtime.router.ReasonPhrases;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.upstream.Http1BodyEnd;
import dev.inmesh.runtime.upstream.Http1ResponseFraming;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.MultiMap;
import io.vertx.core.http.impl.headers.HeadersMultiMap;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The upstream's answer to an upgrade the proxy relays as bytes: it reads the answer's head, and passes it on, as its
 * {@link ResponseHeads} encode it, when it is {@code 101 Switching Protocols}; any other answer goes to the client with
 * {@code connection: close}, a 4xx's or 5xx's body framed by its own length or chunks ({@link Http1BodyEnd}), a 2xx or
 * 3xx without one, and then both connections close, nothing after that answer passed on; the client's connection carries nothing more upstream (its
 * {@link Gate} drops what it sends), so that a refused upgrade does not leave a byte relay behind, through which
 * further requests would reach the same upstream host without routing or the connection manager's filters. An
 * interim answer (a 1xx but 101) before the final one goes no further.
 *
 * <p>When no answer comes (the upstream closes, or sends what is not an HTTP/1 answer head) or the stream ends before
 * it (its idle timeout, its longest duration), the client is answered in the upstream's place as Envoy's router and
 * connection manager answer a request whose response has not begun ({@link #answerLocally}).
 */
final class UpgradeStatus extends ChannelInboundHandlerAdapter {
    /** Encodes a local answer to the client: its status and body, the router's headers, {@code connection: close}. */
    @FunctionalInterface
    interface LocalReplies {
        ByteBuf encode(int status, String body);
    }

    /**
     * The filters' response side over the upstream's answer head: its status, and its headers, which they may change
     * (Envoy's Lua filters see an upgrade's response headers).
     */
    @FunctionalInterface
    interface ResponseHeads {
        void encode(int status, MultiMap headers);
    }


    /** {@code HTTP/1.x NNN}: the status line up to its code. */
    private static final int PREFIX = 12;
    /** The largest answer head read: larger, and the relay is closed. */
    private static final int MAX_HEAD = 64 * 1024;

    private final Gate gate;
    private final Channel downstream;
    private final LocalReplies replies;
    /** What encodes the upstream's answer head before it goes on (the router's, filters' and connection manager's). */
    private final ResponseHeads heads;
    /** The HTTP version of the upgrade request, which the answer's status line says. */
    private final HttpVersion version;
    private ByteBuf head;
    /** The body of the refusal being passed on (its head went on); null before a refusal's head, and after a 101. */
    private Http1BodyEnd refusal;
    private int code;
    /** Whether the client has its answer: the upstream's head, or one the proxy gave in its place. */
    private boolean answered;
    /**
     * Whether the answer switched protocols: a 101 that is an upgrade ({@code connection: upgrade} and an
     * {@code upgrade}), as Envoy's HTTP/1 codec switches only on such a response ({@code Utility::isUpgrade}).
     */
    private boolean switched;
    private String localDetails;
    private ResponseFlag localFlag;
    private long localBytes;
    /** The bytes of the upstream's answer head as it went on to the client (0: none went). */
    private long headBytes;

    /**
     * The answer of the upstream to the upgrade of {@code downstream}, whose {@code gate} it opens or closes, its head
     * through {@code heads}, its status line that of {@code version}.
     */
    UpgradeStatus(Gate gate, Channel downstream, LocalReplies replies, ResponseHeads heads, HttpVersion version) {
        this.gate = gate;
        this.downstream = downstream;
        this.replies = replies;
        this.heads = heads;
        this.version = version;
    }

    /**
     * The status code the client was answered with: the upstream's, or the proxy's in its place; 0 while (or when)
     * there was none (the client went away first).
     */
    int code() {
        return code;
    }

    /** The response code details of the answer the proxy gave in the upstream's place; null: none. */
    String localDetails() {
        return localDetails;
    }

    /** The response flag of the answer the proxy gave in the upstream's place; null: none, or none applies. */
    ResponseFlag localFlag() {
        return localFlag;
    }

    /**
     * The body bytes of the answer the proxy gave in the upstream's place (0: none): its head is not counted, as Envoy
     * counts a response's body bytes only in {@code %BYTES_SENT%}.
     */
    long localBytes() {
        return localBytes;
    }

    /**
     * The bytes of the upstream's answer head as it went on to the client, among those the relay counted sent (0:
     * none), which Envoy does not count in {@code %BYTES_SENT%}.
     */
    long headBytes() {
        return headBytes;
    }

    /** The bytes of an encoded answer after its head (its body). */
    static long bodyBytes(ByteBuf answer) {
        int end = headEnd(answer);
        return end < 0 ? 0 : answer.writerIndex() - end;
    }

    /**
     * Answers the client in the upstream's place, when no answer reached it yet and it is still connected: the
     * status, a text body, the router's local reply headers and {@code connection: close}, as Envoy answers a request
     * whose response had not begun; nothing more the client sends goes upstream. Must run on the channels' event loop.
     *
     * @return whether it answered (false: the upstream's answer, or another, came first, or the client left)
     */
    boolean answerLocally(int status, String body, String details, ResponseFlag flag) {
        if (answered || !downstream.isActive()) {
            return false;
        }
        answered = true;
        code = status;
        localDetails = details;
        localFlag = flag;
        gate.drop();
        if (head != null) {
            head.release();
            head = null;
        }
        ByteBuf reply = replies.encode(status, body);
        localBytes = bodyBytes(reply);
        downstream.writeAndFlush(reply);
        return true;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof ByteBuf b)) {
            ctx.fireChannelRead(msg);
            return;
        }
        if (refusal != null) {
            refused(ctx, b);
            return;
        }
        if (answered) {
            b.release(); // the client was answered in the upstream's place: what the upstream sends now goes nowhere
            return;
        }
        if (head == null) {
            head = ctx.alloc().buffer(b.readableBytes());
        }
        head.writeBytes(b);
        b.release();
        for (int headEnd; (headEnd = headEnd(head)) >= 0; ) {
            byte[] line = new byte[Math.min(PREFIX, head.readableBytes())];
            head.getBytes(head.readerIndex(), line);
            int status = line.length == PREFIX ? parse(line) : 0;
            if (status < 100) {
                protocolError(ctx); // not an HTTP/1 answer: Envoy's codec fails it
                return;
            }
            String text = head.toString(head.readerIndex(), headEnd - head.readerIndex(),
                    StandardCharsets.ISO_8859_1);
            List<String> read = List.of(text.substring(0, text.length() - 4).split("\r\n", -1));
            HeadersMultiMap headers = headers(read);
            // a header line Envoy's codec cannot read, or a framing it refuses (of a refusal, or an interim answer)
            // (relayed raw: no decoder's int limits its chunks)
            Http1BodyEnd body = headers == null || status < 200 ? null
                    : Http1BodyEnd.of(status, headers, Http1BodyEnd.RELAYED_MAX_CHUNK);
            if (headers == null || status != 101 && Http1ResponseFraming.refusal(status, headers) != null
                    || status >= 200 && body == null) {
                protocolError(ctx);
                return;
            }
            if (status >= 200 || status == 101) {
                answered(ctx, status, text, headers, body, headEnd);
                return;
            }
            // an interim answer (100 Continue, 103 Early Hints, ...) is not the upgrade's: it goes no further and the
            // final one is awaited, as Envoy's router drops the 1xx it does not relay (UpstreamRequest::decodeHeaders,
            // source/common/router/upstream_request.cc); the proxy relays none before an upgrade's answer
            head.readerIndex(headEnd);
        }
        if (head.readableBytes() > MAX_HEAD) {
            protocolError(ctx);
        }
    }

    /** Where the first answer head in {@code b} ends (after its blank line); -1 while it has not ended. */
    private static int headEnd(ByteBuf b) {
        for (int i = b.readerIndex(); i + 3 < b.writerIndex(); i++) {
            if (b.getByte(i) == '\r' && b.getByte(i + 1) == '\n' && b.getByte(i + 2) == '\r'
                    && b.getByte(i + 3) == '\n') {
                return i + 4;
            }
        }
        return -1;
    }

    /**
     * The upstream's final answer, whose head ({@code text}, its {@code headers}) ends at {@code headEnd} in what was
     * read: a 101 opens the relay; any other refuses the upgrade, and goes on with its {@code body} when it is a 4xx
     * or a 5xx; a 2xx or a 3xx is answered as Envoy's router answers a WebSocket handshake that did not switch
     * protocols, with the upstream's status and headers and no body (a local reply, upstream_codec_filter.cc,
     * {@code websocket_handshake_unsuccessful}), where a 4xx or 5xx goes through as it came.
     */
    private void answered(ChannelHandlerContext ctx, int status, String text, HeadersMultiMap headers,
                          Http1BodyEnd body, int headEnd) {
        code = status;
        answered = true;
        // read on the upstream's own head, before any filter changed it: a 101 without an upgrade is no switch, and
        // its codec reads it as a whole answer without a body
        switched = code == 101 && dev.inmesh.runtime.router.Http1Admission.upgradeType(headers) != null;
        ByteBuf answer = head;
        head = null;
        boolean handshakeFailed = code != 101 && code < 400;
        if (handshakeFailed) {
            localDetails = "websocket_handshake_unsuccessful";
        }
        StringBuilder out = new StringBuilder(text.length() + 40);
        for (String l : encoded(headers)) {
            out.append(l).append("\r\n");
        }
        out.append("\r\n");
        headBytes = out.length(); // one byte a character (ISO-8859-1)
        ByteBuf rewritten = ctx.alloc().buffer(out.length() + answer.writerIndex() - headEnd);
        rewritten.writeCharSequence(out, StandardCharsets.ISO_8859_1);
        if (switched) {
            ctx.pipeline().remove(this);
            gate.open();
            rewritten.writeBytes(answer, headEnd, answer.writerIndex() - headEnd);
            answer.release();
            ctx.fireChannelRead(rewritten);
            return;
        }
        // refused: the client gets the answer, told that the connection closes, and sends nothing more upstream
        gate.drop();
        ctx.fireChannelRead(rewritten);
        if (handshakeFailed || code == 101) {
            answer.release();
            ctx.close(); // nothing of the upstream's body goes on (a 101 has none)
            return;
        }
        refusal = body;
        refused(ctx, answer.skipBytes(headEnd - answer.readerIndex()));
    }

    /**
     * Bytes of the upstream after its refusal's head: those of its body go on to the client until it ends, then the
     * upstream's connection closes, and the client's with it (the relay closes it once what it was sent is written);
     * nothing after the body goes on. Envoy's pool closes an HTTP/1 connection whose response came before its request
     * ended, as an upgrade's never ends (StreamWrapper::onDecodeComplete, source/common/http/http1/conn_pool.cc),
     * counted with its request active; and its connection manager closes the client's after a response to a request
     * not ended.
     */
    private void refused(ChannelHandlerContext ctx, ByteBuf b) {
        int n = refusal.take(b);
        if (n > 0) {
            ctx.fireChannelRead(b.retainedSlice(b.readerIndex(), n));
        }
        b.release();
        if (n < 0 || refusal.ended()) {
            ctx.close(); // its end; or broken chunks, a protocol error that ends the stream as Envoy's codec ends it
        }
    }

    /**
     * The headers of an answer head's lines (its status line first), in their order, each value without the blanks
     * around it; a line folded onto the one before it (obs-fold) joins that header's value with one space, as RFC 9112
     * asks of a proxy that passes it on. Null when a line is no header (no name, or no colon), which Envoy's codec
     * refuses as a protocol error.
     */
    static HeadersMultiMap headers(List<String> lines) {
        HeadersMultiMap headers = HeadersMultiMap.caseInsensitive();
        String name = null;
        String value = null;
        for (String l : lines.subList(1, lines.size())) {
            if (!l.isEmpty() && (l.charAt(0) == ' ' || l.charAt(0) == '\t')) {
                if (name == null) {
                    return null; // folded onto nothing
                }
                String more = l.strip();
                value = more.isEmpty() ? value : value.isEmpty() ? more : value + " " + more;
                continue;
            }
            if (name != null) {
                headers.add(name, value);
            }
            int colon = l.indexOf(':');
            if (colon <= 0 || !l.substring(0, colon).strip().equals(l.substring(0, colon))) {
                return null; // no name, or blanks before its colon (RFC 9112 refuses those too)
            }
            name = l.substring(0, colon);
            value = l.substring(colon + 1).strip();
        }
        if (name != null) {
            headers.add(name, value);
        }
        return headers;
    }

    /**
     * The head's lines: its status line with Envoy's reason phrase for the code, as Envoy's codec writes it, then
     * {@code headers} after {@link #heads} encoded them, in their order, less what Envoy's connection manager takes off
     * every response (the hop-by-hop {@code keep-alive} and {@code proxy-connection}; {@code transfer-encoding} from a
     * {@code 101} that switched, whose relay has no body to frame; {@code upgrade} from a refusal (a 101 that did not
     * switch too), which is no upgrade, as Envoy's connection manager takes {@code connection} and {@code upgrade} off
     * a response that is none, and whose {@code connection} says {@code close}; a 2xx or 3xx refusal has no body, its
     * length 0, and a 101 no length).
     */
    private List<String> encoded(MultiMap headers) {
        heads.encode(code, headers);
        headers.remove("keep-alive");
        headers.remove("proxy-connection");
        if (switched) {
            headers.remove("transfer-encoding");
        } else {
            headers.remove("upgrade");
            headers.set("connection", "close");
            if (code < 400) {
                headers.remove("transfer-encoding");
                if (code >= 200) {
                    headers.set("content-length", "0");
                }
            }
        }
        List<String> out = new ArrayList<>(headers.size() + 1);
        out.add(version.text() + " " + code + " " + ReasonPhrases.of(code));
        headers.forEach(e -> out.add(e.getKey() + ": " + e.getValue()));
        return out;
    }

    /**
     * The upstream's answer was not an HTTP/1 answer head (or too long a one): 502, as Envoy's router answers an
     * upstream protocol error, and the upstream is closed.
     */
    private void protocolError(ChannelHandlerContext ctx) {
        answerLocally(502, Router.upstreamResetBody("protocol error"),
                "upstream_reset_before_response_started{protocol_error}", ResponseFlag.UPSTREAM_PROTOCOL_ERROR);
        gate.drop();
        ctx.close();
    }

    /** The upstream closed (or ended its output) before its answer: 503 {@code connection termination} (UC). */
    private void terminated() {
        answerLocally(503, Router.upstreamResetBody("connection termination"),
                "upstream_reset_before_response_started{connection_termination}",
                ResponseFlag.UPSTREAM_CONNECTION_TERMINATION);
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
        if (evt instanceof ChannelInputShutdownEvent && !answered) {
            terminated();
            ctx.close(); // nothing more goes either way: the client has its answer
            return;
        }
        if (evt instanceof ChannelInputShutdownEvent && refusal != null) {
            ctx.close(); // the refusal's body ends with the upstream's output (or is cut short): both connections close
            return;
        }
        ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (!answered) {
            terminated(); // before the relay closes the client's connection (it writes after this)
        }
        ctx.fireChannelInactive();
    }

    @Override
    public void handlerRemoved(ChannelHandlerContext ctx) {
        if (head != null) {
            head.release();
            head = null;
        }
    }

    static int parse(byte[] line) {
        String s = new String(line, StandardCharsets.US_ASCII);
        if (!s.startsWith("HTTP/1.") || s.charAt(8) != ' ') {
            return 0;
        }
        int c = 0;
        for (int i = 9; i < PREFIX; i++) {
            char d = s.charAt(i);
            if (d < '0' || d > '9') {
                return 0;
            }
            c = c * 10 + (d - '0');
        }
        return c;
    }

    /**
     * On the client's connection: holds what the client sends after its upgrade request until the upstream's answer
     * (a WebSocket client waits for the {@code 101} before it sends), then lets it through ({@link #open}) or drops it,
     * and everything after it ({@link #drop}); the connection is read meanwhile, so that a client that leaves before
     * the answer is seen at once (up to {@link #MAX_HELD} held).
     */
    static final class Gate extends ChannelInboundHandlerAdapter {
        /** Held past this, the client's connection is no longer read until the answer comes. */
        private static final int MAX_HELD = 1 << 20;
        private final List<Object> held = new ArrayList<>();
        private long heldBytes;
        private ChannelHandlerContext ctx;
        private boolean open;
        private boolean dropping;

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (dropping) {
                ReferenceCountUtil.release(msg);
            } else if (open) {
                ctx.fireChannelRead(msg);
            } else {
                held.add(msg);
                if (msg instanceof ByteBuf b && (heldBytes += b.readableBytes()) > MAX_HELD) {
                    ctx.channel().config().setAutoRead(false);
                }
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent && !open && !dropping) {
                // the client went away (or ended its output, which Envoy's connection manager takes as the same, its
                // connections having no half-close) before the upstream's answer: as Envoy resets the stream on a
                // downstream close, the connection closes now, and the relay closes the upstream's with it (reported
                // 0 DC); held, the client's socket stayed half-closed and the upstream's open until the upstream
                // answered or closed
                drop();
                ctx.close();
                return;
            }
            ctx.fireUserEventTriggered(evt);
        }

        /** The upgrade was accepted: what was held goes on, in order, and so does what follows. */
        void open() {
            if (open || dropping) {
                return;
            }
            open = true;
            for (Object m : held) {
                ctx.fireChannelRead(m);
            }
            held.clear();
            ctx.fireChannelReadComplete();
            ctx.channel().config().setAutoRead(true);
        }

        /** The upgrade was refused: nothing the client sent after its request goes upstream. */
        void drop() {
            if (dropping) {
                return;
            }
            dropping = true;
            open = false;
            held.forEach(ReferenceCountUtil::release);
            held.clear();
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            drop();
        }
    }
}
