package dev.inmesh.interception.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.util.ReferenceCountUtil;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The upstream's answer to an upgrade the proxy relays as bytes: it reads the answer's head, and passes it on as it
 * came when it is {@code 101 Switching Protocols}; any other answer goes to the client with {@code connection: close}
 * and the client's connection carries nothing more upstream (its {@link Gate} drops what it sends), so that a refused
 * upgrade does not leave a byte relay behind, through which further requests would reach the same upstream host without
 * routing or the connection manager's filters (Envoy goes back to HTTP after a refused upgrade).
 */
final class UpgradeStatus extends ChannelInboundHandlerAdapter {
    /** {@code HTTP/1.x NNN}: the status line up to its code. */
    private static final int PREFIX = 12;
    /** The largest answer head read: larger, and the relay is closed. */
    private static final int MAX_HEAD = 64 * 1024;

    private final Gate gate;
    private ByteBuf head;
    private int code;

    UpgradeStatus(Gate gate) {
        this.gate = gate;
    }

    /** The status code the upstream answered with; 0 while (or when) none came or it was not an HTTP/1 status line. */
    int code() {
        return code;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (!(msg instanceof ByteBuf b)) {
            ctx.fireChannelRead(msg);
            return;
        }
        if (head == null) {
            head = ctx.alloc().buffer(b.readableBytes());
        }
        head.writeBytes(b);
        b.release();
        int headEnd = -1;
        for (int i = head.readerIndex(); i + 3 < head.writerIndex(); i++) {
            if (head.getByte(i) == '\r' && head.getByte(i + 1) == '\n' && head.getByte(i + 2) == '\r'
                    && head.getByte(i + 3) == '\n') {
                headEnd = i + 4;
                break;
            }
        }
        if (headEnd < 0) {
            if (head.readableBytes() > MAX_HEAD) {
                gate.drop();
                ctx.close();
            }
            return;
        }
        byte[] line = new byte[Math.min(PREFIX, head.readableBytes())];
        head.getBytes(head.readerIndex(), line);
        code = line.length == PREFIX ? parse(line) : 0;
        ByteBuf answer = head;
        head = null;
        ctx.pipeline().remove(this);
        if (code == 101) {
            gate.open();
            ctx.fireChannelRead(answer);
            return;
        }
        // refused: the client gets the answer, told that the connection closes, and sends nothing more upstream
        gate.drop();
        String text = answer.toString(answer.readerIndex(), headEnd - answer.readerIndex(), StandardCharsets.ISO_8859_1);
        StringBuilder out = new StringBuilder(text.length() + 20);
        for (String l : text.substring(0, text.length() - 4).split("\r\n", -1)) {
            if (!l.toLowerCase(Locale.ROOT).startsWith("connection:")) {
                out.append(l).append("\r\n");
            }
        }
        out.append("connection: close\r\n\r\n");
        ByteBuf rewritten = ctx.alloc().buffer(out.length() + answer.writerIndex() - headEnd);
        rewritten.writeCharSequence(out, StandardCharsets.ISO_8859_1);
        rewritten.writeBytes(answer, headEnd, answer.writerIndex() - headEnd);
        answer.release();
        ctx.fireChannelRead(rewritten);
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
     * and everything after it ({@link #drop}).
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
                held.add(evt); // after the bytes before it
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
                if (m instanceof ChannelInputShutdownEvent e) {
                    ctx.fireUserEventTriggered(e);
                } else {
                    ctx.fireChannelRead(m);
                }
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
            held.forEach(m -> {
                if (!(m instanceof ChannelInputShutdownEvent)) {
                    ReferenceCountUtil.release(m);
                }
            });
            held.clear();
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            drop();
        }
    }
}
