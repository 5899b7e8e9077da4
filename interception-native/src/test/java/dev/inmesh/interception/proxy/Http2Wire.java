package dev.inmesh.interception.proxy;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * HTTP/2 on a bare socket, for tests that send what a well-behaved client never would: header blocks written as given
 * (any order, any case, any octet; literal fields without Huffman coding or indexing), frames read one by one. A
 * client's connection ({@link #client}) writes the preface and an empty SETTINGS, and acknowledges the peer's (the
 * first before it sends anything else, so that the peer's settings, {@code max_concurrent_streams}, apply to it).
 */
final class Http2Wire implements AutoCloseable {
    static final int DATA = 0;
    static final int HEADERS = 1;
    static final int RST_STREAM = 3;
    static final int SETTINGS = 4;
    static final int GOAWAY = 7;
    static final int END_STREAM = 0x1;
    static final int END_HEADERS = 0x4;
    /** HTTP/2's PROTOCOL_ERROR code. */
    static final long PROTOCOL_ERROR = 1;

    /** A frame read: its type, flags, stream and payload. */
    record Frame(int type, int flags, int stream, byte[] payload) {
        /** The error code of a RST_STREAM or GOAWAY. */
        long errorCode() {
            int at = type == GOAWAY ? 4 : 0;
            return ((payload[at] & 0xffL) << 24) | (payload[at + 1] & 0xff) << 16 | (payload[at + 2] & 0xff) << 8
                    | payload[at + 3] & 0xff;
        }

        /** The last stream id of a GOAWAY. */
        int lastStreamId() {
            return (payload[0] & 0x7f) << 24 | (payload[1] & 0xff) << 16 | (payload[2] & 0xff) << 8
                    | payload[3] & 0xff;
        }

        boolean endsStream() {
            return (type == DATA || type == HEADERS) && (flags & END_STREAM) != 0;
        }

        @Override
        public String toString() {
            return switch (type) {
                case RST_STREAM -> "RST_STREAM " + stream + " " + errorCode();
                case GOAWAY -> "GOAWAY " + errorCode();
                default -> "frame " + type + " on " + stream + (endsStream() ? " END_STREAM" : "");
            };
        }
    }

    private final Socket socket;
    private final DataInputStream in;
    private final OutputStream out;
    private final io.netty.handler.codec.http2.DefaultHttp2HeadersDecoder hpack =
            new io.netty.handler.codec.http2.DefaultHttp2HeadersDecoder(false);

    private Http2Wire(Socket socket) throws IOException {
        this.socket = socket;
        socket.setSoTimeout(10_000);
        this.in = new DataInputStream(socket.getInputStream());
        this.out = socket.getOutputStream();
    }

    /**
     * A client's connection to 127.0.0.1:{@code port}: the preface and an empty SETTINGS written, the server's
     * SETTINGS read and acknowledged.
     */
    static Http2Wire client(int port) throws IOException {
        Http2Wire w = new Http2Wire(new Socket("127.0.0.1", port));
        w.out.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        w.out.write(frame(SETTINGS, 0, 0, new byte[0]));
        w.out.flush();
        for (Frame f; (f = w.read()) != null; ) {
            if (f.type == SETTINGS && (f.flags & 1) == 0) {
                break;
            }
        }
        return w;
    }

    /** A server's side of {@code socket}, whose client's preface is read: an empty SETTINGS written. */
    static Http2Wire server(Socket socket) throws IOException {
        Http2Wire w = new Http2Wire(socket);
        w.in.readFully(new byte[24]);
        w.out.write(frame(SETTINGS, 0, 0, new byte[0]));
        w.out.flush();
        return w;
    }

    /** A HEADERS frame (END_HEADERS) on {@code stream} of the fields given as names and values in turn. */
    Http2Wire headers(int stream, boolean endStream, String... namesAndValues) throws IOException {
        out.write(frame(HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), stream, block(namesAndValues)));
        out.flush();
        return this;
    }

    /** A DATA frame on {@code stream}. */
    Http2Wire data(int stream, boolean endStream, String content) throws IOException {
        out.write(frame(DATA, endStream ? END_STREAM : 0, stream, content.getBytes(StandardCharsets.ISO_8859_1)));
        out.flush();
        return this;
    }

    /** Frames made by {@link #frame}, written at once (so that they arrive in one read, as a burst does). */
    Http2Wire write(byte[]... frames) throws IOException {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        for (byte[] f : frames) {
            all.write(f);
        }
        out.write(all.toByteArray());
        out.flush();
        return this;
    }

    /** A RST_STREAM frame on {@code stream} with {@code code}. */
    Http2Wire reset(int stream, int code) throws IOException {
        out.write(frame(RST_STREAM, 0, stream, java.nio.ByteBuffer.allocate(4).putInt(code).array()));
        out.flush();
        return this;
    }

    /** The next frame but SETTINGS (acknowledged when not an ACK), WINDOW_UPDATE and PING; null at the end. */
    Frame next() throws IOException {
        for (Frame f; (f = read()) != null; ) {
            if (f.type != SETTINGS && f.type != 6 && f.type != 8) {
                return f; // PING (Netty answers them itself), WINDOW_UPDATE
            }
        }
        return null;
    }

    /** The next frame, a SETTINGS that is no ACK acknowledged; null at the end. */
    private Frame read() throws IOException {
        byte[] head = new byte[9];
        try {
            in.readFully(head);
        } catch (EOFException | java.net.SocketException e) {
            return null;
        }
        int length = (head[0] & 0xff) << 16 | (head[1] & 0xff) << 8 | head[2] & 0xff;
        int stream = (head[5] & 0x7f) << 24 | (head[6] & 0xff) << 16 | (head[7] & 0xff) << 8 | head[8] & 0xff;
        byte[] payload = new byte[length];
        in.readFully(payload);
        Frame f = new Frame(head[3], head[4], stream, payload);
        if (f.type == SETTINGS && (f.flags & 1) == 0) {
            out.write(frame(SETTINGS, 1, 0, new byte[0]));
            out.flush();
        }
        return f;
    }

    /**
     * The frames that came until {@code stream} ended (its END_STREAM or RST_STREAM), a GOAWAY, or the connection's
     * end; then, after a GOAWAY, whether the connection ended too: {@code "closed"} is the last element when it did.
     */
    List<Object> until(int stream) throws IOException {
        List<Object> frames = new ArrayList<>();
        for (Frame f; (f = next()) != null; ) {
            frames.add(f);
            if (f.type == GOAWAY) {
                break;
            }
            if (f.stream == stream && (f.endsStream() || f.type == RST_STREAM)) {
                return frames;
            }
        }
        try {
            while (next() != null) {
                // frames after a GOAWAY, until the connection ends
            }
            frames.add("closed");
        } catch (SocketTimeoutException e) {
            // still open
        }
        return frames;
    }

    /** The fields of a HEADERS frame read, decoded (its padding and priority skipped). */
    io.netty.handler.codec.http2.Http2Headers decode(Frame f) throws Exception {
        int from = 0;
        int to = f.payload.length;
        if ((f.flags & 0x8) != 0) { // PADDED
            to -= f.payload[0] & 0xff;
            from++;
        }
        if ((f.flags & 0x20) != 0) { // PRIORITY
            from += 5;
        }
        io.netty.buffer.ByteBuf b = io.netty.buffer.Unpooled.wrappedBuffer(f.payload, from, to - from);
        return hpack.decodeHeaders(f.stream, b);
    }

    /** The {@code :status} of the first HEADERS frame of {@code stream} among {@code frames}, or null. */
    String status(List<Object> frames, int stream) throws Exception {
        for (Object o : frames) {
            if (o instanceof Frame f && f.type == HEADERS && f.stream == stream) {
                CharSequence s = decode(f).status();
                return s == null ? null : s.toString();
            }
        }
        return null;
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }

    /** An HTTP/2 frame: its 9-byte header, then {@code payload}. */
    static byte[] frame(int type, int flags, int stream, byte[] payload) {
        java.nio.ByteBuffer f = java.nio.ByteBuffer.allocate(9 + payload.length);
        f.put((byte) (payload.length >>> 16)).put((byte) (payload.length >>> 8)).put((byte) payload.length)
                .put((byte) type).put((byte) flags).putInt(stream).put(payload);
        return f.array();
    }

    /** A header block of literal fields without indexing, names and values raw (ISO-8859-1) in turn. */
    static byte[] block(String... namesAndValues) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int i = 0; i < namesAndValues.length; i += 2) {
            b.write(0);
            string(b, namesAndValues[i]);
            string(b, namesAndValues[i + 1]);
        }
        return b.toByteArray();
    }

    /** An HPACK string literal without Huffman coding: its length (a 7-bit prefix integer), then its octets. */
    private static void string(ByteArrayOutputStream b, String s) {
        byte[] octets = s.getBytes(StandardCharsets.ISO_8859_1);
        int length = octets.length;
        if (length < 127) {
            b.write(length);
        } else {
            b.write(127);
            for (length -= 127; length >= 128; length >>>= 7) {
                b.write(length & 0x7f | 0x80);
            }
            b.write(length);
        }
        b.write(octets, 0, octets.length);
    }
}
