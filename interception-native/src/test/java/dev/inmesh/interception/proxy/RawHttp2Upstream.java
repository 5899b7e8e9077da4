package dev.inmesh.interception.proxy;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A bare HTTP/2 server (prior knowledge) on loopback that answers each request stream with the header block
 * {@link #head}, written raw (any name, any octet, any pseudo-header: none of the checks a real server applies), then,
 * unless {@link #trailers} are set, a DATA frame {@code ok} ending the stream, or that DATA frame and the trailers
 * ({@link #headOnly}: the head alone, ending the stream).
 */
final class RawHttp2Upstream implements AutoCloseable {
    private final ServerSocket server = new ServerSocket(0, 10, InetAddress.getLoopbackAddress());
    /** The fields of each answer's head, names and values in turn. */
    volatile String[] head = {":status", "200"};
    /** The fields of each answer's trailers, or null for none. */
    volatile String[] trailers;
    /** Whether each answer is its head alone, ending the stream (no DATA, no trailers). */
    volatile boolean headOnly;
    /** The header blocks received (each request's head, and its trailers), decoded, as {@code name: value, ...}. */
    final java.util.List<String> received = new java.util.concurrent.CopyOnWriteArrayList<>();
    /** The GOAWAY frames with PROTOCOL_ERROR the proxy sent so far: the connections it ended for one. */
    final AtomicInteger protocolErrors = new AtomicInteger();

    RawHttp2Upstream() throws IOException {
        Thread thread = new Thread(this::serve, "raw-h2");
        thread.setDaemon(true);
        thread.start();
    }

    int port() {
        return server.getLocalPort();
    }

    private void serve() {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                Thread t = new Thread(() -> connection(s), "raw-h2-connection");
                t.setDaemon(true);
                t.start();
            } catch (IOException e) {
                // closed: the test ended
            }
        }
    }

    private void connection(Socket socket) {
        try (Http2Wire h2 = Http2Wire.server(socket)) {
            for (Http2Wire.Frame f; (f = h2.next()) != null; ) {
                if (f.type() == Http2Wire.GOAWAY && f.errorCode() == Http2Wire.PROTOCOL_ERROR) {
                    protocolErrors.incrementAndGet();
                }
                if (f.type() == Http2Wire.HEADERS) {
                    StringBuilder fields = new StringBuilder();
                    h2.decode(f).forEach(e -> fields.append(fields.length() == 0 ? "" : ", ").append(e.getKey())
                            .append(": ").append(e.getValue()));
                    received.add(fields.toString());
                }
                if (f.endsStream() && headOnly) {
                    h2.headers(f.stream(), true, head);
                } else if (f.endsStream()) {
                    String[] t = trailers;
                    h2.headers(f.stream(), false, head).data(f.stream(), t == null, "ok");
                    if (t != null) {
                        h2.headers(f.stream(), true, t);
                    }
                }
            }
        } catch (Exception e) {
            // the proxy closed the connection, or the test ended
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
