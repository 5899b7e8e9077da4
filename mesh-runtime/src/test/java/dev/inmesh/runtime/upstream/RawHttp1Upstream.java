package dev.inmesh.runtime.upstream;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * An HTTP/1 upstream on loopback that answers each connection's request with bytes of the test's choosing, written
 * raw (framing a real server would refuse to write), then closes the connection a moment later.
 */
public final class RawHttp1Upstream implements AutoCloseable {
    private final ServerSocket server = new ServerSocket(0, 10, InetAddress.getLoopbackAddress());

    /** Answers with {@code answer}, one byte a char. */
    public RawHttp1Upstream(String answer) throws IOException {
        Thread t = new Thread(() -> {
            while (!server.isClosed()) {
                try (Socket s = server.accept()) {
                    s.setSoTimeout(5_000);
                    s.getInputStream().read(new byte[8192]);
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

    @Override
    public void close() throws IOException {
        server.close();
    }
}
