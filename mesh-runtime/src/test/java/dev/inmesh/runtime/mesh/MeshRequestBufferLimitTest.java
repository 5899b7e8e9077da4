package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The in-JVM client keeps a request's body for retries up to its buffer limit, as Envoy's router: the route's or
 * virtual host's {@code per_request_buffer_limit_bytes}, capped by the {@code per_connection_buffer_limit_bytes} of
 * the outbound listener the request goes through.
 */
class MeshRequestBufferLimitTest {
    private Vertx vertx;
    private DefaultMesh mesh;
    private final List<StreamInfo> recorded = new CopyOnWriteArrayList<>();
    /** Requests the upstream saw, by path: the first of each path is answered 503, the others 200. */
    private final Map<String, AtomicInteger> hits = new ConcurrentHashMap<>();
    /** The server's port. */
    private int port;
    @TempDir
    Path dir;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        HttpServer server = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(body -> {
            int n = hits.computeIfAbsent(req.path(), p -> new AtomicInteger()).incrementAndGet();
            req.response().setStatusCode(n == 1 ? 503 : 200).end(Integer.toString(body.length()));
        }));
        port = server.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * A mesh whose Istio-style outbound listener {@code 0.0.0.0_9080} routes {@code reviews} to the server, retrying
     * 5xx once, with these buffer limits (null: none set) on the listener, the virtual host and the route.
     */
    private void mesh(Long listener, Long virtualHost, Long route) throws Exception {
        String routeFields = "                  retry_policy: {retry_on: 5xx, num_retries: 1}\n"
                + (route == null ? "" : "                per_request_buffer_limit_bytes: " + route + "\n");
        String yaml = MeshWebClientTest.config(routeFields, port);
        if (virtualHost != null) {
            yaml = yaml.replace("              routes:\n", "              per_request_buffer_limit_bytes: "
                    + virtualHost + "\n              routes:\n");
        }
        if (listener != null) {
            yaml = yaml.replace("    traffic_direction: OUTBOUND\n", "    traffic_direction: OUTBOUND\n"
                    + "    per_connection_buffer_limit_bytes: " + listener + "\n");
        }
        mesh = MeshGrpcClientTest.start(vertx, dir, yaml, recorded);
    }

    /** POSTs {@code bytes} bytes to {@code reviews:9080} at {@code path}; the answer's status and attempts. */
    private int[] post(String path, int bytes) throws Exception {
        HttpClientResponse resp = mesh.httpClient().request(HttpMethod.POST, 9080, "reviews", path)
                .compose(req -> req.send(Buffer.buffer(new byte[bytes]))).await(10, TimeUnit.SECONDS);
        resp.body().await(10, TimeUnit.SECONDS);
        for (int i = 0; i < 100 && recorded.isEmpty(); i++) {
            Thread.sleep(20);
        }
        StreamInfo info = recorded.remove(recorded.size() - 1);
        return new int[] {resp.statusCode(), info.attemptCount()};
    }

    @Test
    void aBodyOverTheRoutesLimitIsNotRetriedAndOneWithinItIs() throws Exception {
        mesh(null, null, 1024L);
        int[] big = post("/big", 2048);
        assertEquals(503, big[0]); // answered as it is: not kept, so not retried
        assertEquals(1, big[1]);
        int[] small = post("/small", 512);
        assertEquals(200, small[0]);
        assertEquals(2, small[1]);
    }

    @Test
    void theVirtualHostsLimitAppliesToARouteWithoutOne() throws Exception {
        mesh(null, 1024L, null);
        int[] big = post("/big", 2048);
        assertEquals(503, big[0]);
        assertEquals(1, big[1]);
        assertEquals(200, post("/small", 512)[0]);
    }

    @Test
    void theRoutesLimitWinsOverTheVirtualHosts() throws Exception {
        mesh(null, 1024L, 4096L);
        int[] r = post("/big", 2048);
        assertEquals(200, r[0]);
        assertEquals(2, r[1]);
    }

    @Test
    void theOutboundListenersSmallerLimitWinsOverTheRoutes() throws Exception {
        mesh(1024L, null, 4096L);
        int[] big = post("/big", 2048);
        assertEquals(503, big[0]);
        assertEquals(1, big[1]);
        assertEquals(200, post("/small", 1024)[0]);
    }
}
