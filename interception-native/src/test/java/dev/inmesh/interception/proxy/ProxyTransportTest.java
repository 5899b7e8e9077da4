package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code inmesh proxy --transport}: the proxy on io_uring, and the option's refusals. */
class ProxyTransportTest {
    @TempDir
    Path dir;

    @Test
    void onIoUringTheProxyForwardsRequestsOverItsOwnRings() throws Exception {
        Assumptions.assumeTrue(io.vertx.core.transport.Transport.IO_URING.available(),
                "io_uring is unavailable on this kernel: " + io.vertx.core.transport.Transport.IO_URING
                        .unavailabilityCause());
        Vertx backends = Vertx.vertx();
        StandaloneProxy proxy = null;
        try {
            HttpServer s = backends.createHttpServer().requestHandler(req -> req.response().end("ok " + req.path()));
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int port = LoopbackProxy.freePort();
            Path config = dir.resolve("proxy.yaml");
            Files.writeString(config, "static_resources:\n  listeners:\n" + Http1RequestsTest.listener("plain",
                    port, "") + Http1RequestsTest.clusterC(backend));
            long ringsBefore = ioUringDescriptors();
            proxy = StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 2, null, AdminHook.NONE)
                    .withTransport(IoTransport.IO_URING));
            // an io_uring event loop holds a ring: this JVM has one more per loop while the proxy runs
            assertTrue(ioUringDescriptors() >= ringsBefore + 2, ringsBefore + " rings before, "
                    + ioUringDescriptors() + " with the proxy");
            io.vertx.core.http.HttpClient client = backends.createHttpClient();
            for (int i = 0; i < 3; i++) {
                int n = i;
                String body = onEventLoop(backends, () -> client.request(new io.vertx.core.http.RequestOptions()
                                .setHost("127.0.0.1").setPort(port).setURI("/x" + n).putHeader("host", "svc"))
                        .compose(req -> req.send().compose(r -> r.body())))
                        .await(10, TimeUnit.SECONDS).toString();
                assertEquals("ok /x" + n, body);
            }
            client.close().await(10, TimeUnit.SECONDS);
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aTransportThatIsNoneOfTheThreeIsRefusedByName() {
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = dev.inmesh.cli.InmeshCommand.commandLine();
        cl.setErr(new PrintWriter(err, true));
        int rc = cl.execute("proxy", "-c", dir.resolve("none.yaml").toString(), "--transport", "kqueue");
        assertEquals(2, rc);
        assertTrue(err.toString().contains("'kqueue' (expected: epoll, io_uring or nio)"), err.toString());
    }

    @Test
    void eachTransportIsTakenByItsLowerCaseName() {
        assertEquals(IoTransport.IO_URING, new dev.inmesh.interception.ProxyCommand.TransportConverter()
                .convert("io_uring"));
        assertEquals(IoTransport.EPOLL, new dev.inmesh.interception.ProxyCommand.TransportConverter()
                .convert("epoll"));
        assertEquals(IoTransport.NIO, new dev.inmesh.interception.ProxyCommand.TransportConverter().convert("nio"));
    }

    /** The io_uring instances this process holds (each ring is an anonymous inode). */
    private static long ioUringDescriptors() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).toString().contains("io_uring");
                } catch (IOException e) {
                    return false; // closed since it was listed
                }
            }).count();
        }
    }
}
