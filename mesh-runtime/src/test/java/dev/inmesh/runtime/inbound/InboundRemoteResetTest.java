package dev.inmesh.runtime.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpVersion;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * An HTTP/2 caller of {@code mesh.inbound} that resets its stream (RST_STREAM) is logged as Envoy's connection manager
 * logs it when its codec reads the reset: DR, {@code http2.remote_reset}; one whose connection closes stays DC.
 */
class InboundRemoteResetTest {
    private Vertx vertx;
    private SnapshotHolder snapshots;
    private final List<StreamInfo> logged = new CopyOnWriteArrayList<>();
    private int port;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(InboundHandlerTest.INBOUND));
        port = vertx.createHttpServer().requestHandler(new InboundHandler(this::serve, snapshots, logged::add))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void stop() throws Exception {
        snapshots.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * The service: {@code /stall} sends its head and a first chunk, and neither answers further; {@code /later}
     * answers 50 ms after it had the request.
     */
    private void serve(HttpServerRequest req) {
        if (req.path().equals("/stall")) {
            req.response().setChunked(true).write("first");
        }
        if (req.path().equals("/later")) {
            vertx.setTimer(50, t -> req.response().end("later"));
        }
    }

    /**
     * An answer ended outside the read of its request, whose stream then closes within the end (Vert.x runs the
     * response's close handler before its end handler there), is logged as answered: no DC.
     */
    @Test
    void anAnswerEndedAfterTheRequestWasReadWholeIsLoggedAsAnsweredNotDc() throws Exception {
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setDefaultHost("127.0.0.1").setDefaultPort(port));
        var severe = new dev.inmesh.runtime.testing.SevereLogs();
        String body = sent(client, "/later").response().compose(r -> r.body()).await(10, TimeUnit.SECONDS)
                .toString();
        assertEquals("later", body);
        assertLogged(1, 200, Set.of(), "via_upstream");
        severe.close();
        assertEquals(List.of(), severe.records());
    }

    @Test
    void aStreamTheCallerResetsIsLoggedDrWithTheCodecsDetailsAndAClosedConnectionDc() throws Exception {
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setDefaultHost("127.0.0.1").setDefaultPort(port));
        var severe = new dev.inmesh.runtime.testing.SevereLogs();
        // before the answer, and after it began
        HttpClientRequest held = sent(client, "/hold");
        Thread.sleep(200); // the service has it
        held.reset(8); // CANCEL
        assertLogged(1, 0, Set.of(ResponseFlag.DOWNSTREAM_REMOTE_RESET), "http2.remote_reset");
        HttpClientRequest stalled = sent(client, "/stall");
        stalled.response().await(10, TimeUnit.SECONDS).exceptionHandler(e -> { });
        stalled.reset(8);
        assertLogged(2, 200, Set.of(ResponseFlag.DOWNSTREAM_REMOTE_RESET), "http2.remote_reset");
        // the connection closed: DC
        HttpClientRequest gone = sent(client, "/hold");
        Thread.sleep(200);
        gone.connection().close();
        assertLogged(3, 0, Set.of(ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION), "downstream_remote_disconnect");
        severe.close();
        assertEquals(List.of(), severe.records(), "a caller's reset is no error of the mesh's");
    }

    /** A GET of {@code path}, sent whole, whose reset is not reported to the test's client. */
    private static HttpClientRequest sent(HttpClient client, String path) throws Exception {
        HttpClientRequest req = client.request(io.vertx.core.http.HttpMethod.GET, path).await(10, TimeUnit.SECONDS);
        req.exceptionHandler(e -> { }).end();
        return req;
    }

    /** The {@code n}th request logged (waiting up to 5 s for it) had this code, these flags and these details. */
    private void assertLogged(int n, int code, Set<ResponseFlag> flags, String details) throws InterruptedException {
        for (int i = 0; i < 250 && logged.size() < n; i++) {
            Thread.sleep(20);
        }
        assertEquals(n, logged.size(), logged.toString());
        StreamInfo info = logged.get(n - 1);
        assertEquals(code, info.responseCode());
        assertEquals(flags, info.responseFlags());
        assertEquals(details, info.responseCodeDetails());
    }
}
