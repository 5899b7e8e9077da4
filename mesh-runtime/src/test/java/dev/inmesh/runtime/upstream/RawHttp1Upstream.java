package dev.inmesh.runtime.upstream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * An HTTP/1 upstream on loopback that answers each connection's request with bytes of the test's choosing, written
 * raw (framing a real server would refuse to write), then closes the connection a moment later. It records each
 * request as it came on the wire ({@link #requests()}): its head, then its body as framed (a {@code content-length}'s
 * bytes, or chunks up to the last one), read for at most 5 s.
 */
public final class RawHttp1Upstream implements AutoCloseable {
    private final ServerSocket server = new ServerSocket(0, 10, InetAddress.getLoopbackAddress());
    private final List<String> requests = new CopyOnWriteArrayList<>();

    /** Answers with {@code answer}, one byte a char. */
    public RawHttp1Upstream(String answer) throws IOException {
        Thread t = new Thread(() -> {
            while (!server.isClosed()) {
                try (Socket s = server.accept()) {
                    s.setSoTimeout(5_000);
                    requests.add(readRequest(s.getInputStream()));
                    s.getOutputStream().write(answer.getBytes(StandardCharsets.ISO_8859_1));
                    s.getOutputStream().flush();
                    Thread.sleep(200);
                } catch (IOException | InterruptedException e) {
                    // closed: the test ended
                }
            }
        }, "raw-http1");
        t.setDaemon(true);
        t.start();
    }

    public int port() {
        return server.getLocalPort();
    }

    /** The requests received so far, one byte a char, in the order they came. */
    public List<String> requests() {
        return requests;
    }

    /** The {@code n}th request received (from 0), waiting up to 10 s for it. */
    public String request(int n) throws InterruptedException {
        for (int i = 0; i < 500 && requests.size() <= n; i++) {
            Thread.sleep(20);
        }
        return requests.get(n);
    }

    /** One request: its head, then as much body as its framing says (bounded by the socket's timeout). */
    private static String readRequest(InputStream in) throws IOException {
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int headEnd = -1;
        while (headEnd < 0) {
            int n = in.read(buf);
            if (n < 0) {
                return got.toString(StandardCharsets.ISO_8859_1);
            }
            got.write(buf, 0, n);
            headEnd = got.toString(StandardCharsets.ISO_8859_1).indexOf("\r\n\r\n");
        }
        String head = got.toString(StandardCharsets.ISO_8859_1).substring(0, headEnd).toLowerCase();
        int length = 0;
        boolean chunked = head.contains("\r\ntransfer-encoding: chunked");
        int at = head.indexOf("\r\ncontent-length: ");
        if (at >= 0) {
            int end = head.indexOf("\r\n", at + 2);
            length = Integer.parseInt(head.substring(at + 18, end < 0 ? head.length() : end).strip());
        }
        for (int i = 0; i < 1000; i++) {
            String all = got.toString(StandardCharsets.ISO_8859_1);
            String body = all.substring(headEnd + 4);
            if (chunked ? body.endsWith("0\r\n\r\n") : body.length() >= length) {
                return all;
            }
            int n = in.read(buf);
            if (n < 0) {
                return all;
            }
            got.write(buf, 0, n);
        }
        return got.toString(StandardCharsets.ISO_8859_1);
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
