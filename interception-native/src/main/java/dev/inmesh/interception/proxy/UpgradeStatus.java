package dev.inmesh.interception.proxy;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.nio.charset.StandardCharsets;

/**
 * Reads the status code of an upstream's answer to an upgrade the proxy relays as bytes, from the first line
 * ({@code HTTP/1.1 101 ...}), passing every byte on untouched; it leaves the pipeline once it has the code.
 */
final class UpgradeStatus extends ChannelInboundHandlerAdapter {
    /** {@code HTTP/1.x NNN}: the status line up to its code. */
    private static final int PREFIX = 12;

    private final byte[] line = new byte[PREFIX];
    private int have;
    private int code;

    /** The status code the upstream answered with; 0 while (or when) none came or it was not an HTTP/1 status line. */
    int code() {
        return code;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof ByteBuf b) {
            int n = Math.min(PREFIX - have, b.readableBytes());
            b.getBytes(b.readerIndex(), line, have, n);
            have += n;
            if (have == PREFIX) {
                code = parse(line);
                ctx.pipeline().remove(this);
            }
        }
        ctx.fireChannelRead(msg);
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
}
