package dev.inmesh.benchmarks;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.benchmarks.load.MeshClientLoad;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * One request per operation through a plain Vert.x {@link WebClient} and through the mesh's, to a Vert.x server in
 * the same JVM on loopback answering 1 KB (HTTP/1.1 keep-alive), with the mesh configuration of
 * {@link MeshClientLoad} (a route with a retry policy, a LEAST_REQUEST cluster of one host).
 *
 * <p>Its figure is {@code gc.alloc.rate.norm} with {@code -prof gc}: the bytes allocated per request by every thread
 * of the JVM (JMH sums {@code ThreadMXBean#getThreadAllocatedBytes} over all threads, the event loops included), the
 * upstream's share the same for both clients. Unlike a rate or CPU time, it does not move with what else the
 * machine runs, so the mesh's cost per request can be followed from change to change on a shared machine. The times
 * JMH prints are one request's round trip, sent and awaited in turn, and are as noisy as the machine.
 *
 * <p>{@code sender}: the request is sent from the benchmark's thread ({@code thread}), or from an event loop's
 * context ({@code event-loop}), as a Vert.x service sends it from its handlers and as {@link MeshClientLoad}'s
 * highest-rate loop does.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class MeshClientBenchmark {
    @Param({"thread", "event-loop"})
    public String sender;

    private Vertx vertx;
    private Mesh mesh;
    private Path dir;
    private WebClient plain;
    private WebClient meshed;
    private Context loop;
    private int port;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        System.setProperty("vertx.logger-delegate-factory-class-name", "io.vertx.core.logging.JULLogDelegateFactory");
        java.util.logging.Logger.getLogger("").setLevel(java.util.logging.Level.WARNING);
        vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(2));
        Buffer body = Buffer.buffer("x".repeat(1024));
        HttpServer upstream = vertx.createHttpServer()
                .requestHandler(req -> req.response().putHeader("content-type", "text/plain").end(body))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        port = upstream.actualPort();
        dir = Files.createTempDirectory("inmesh-bench");
        Path config = dir.resolve("mesh.yaml");
        Files.writeString(config, MeshClientLoad.config(port));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("load-v1").setApp("load").setVersion("v1")
                .setConfigFile(config.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        WebClientOptions options = new WebClientOptions().setKeepAlive(true);
        plain = WebClient.create(vertx, options);
        meshed = mesh.webClient(options);
        loop = vertx.getOrCreateContext();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        plain.close();
        mesh.close().await(10, TimeUnit.SECONDS);
        vertx.close().await(10, TimeUnit.SECONDS);
        Files.deleteIfExists(dir.resolve("mesh.yaml"));
        Files.deleteIfExists(dir);
    }

    /** One request through the plain Vert.x WebClient, straight to the upstream. */
    @Benchmark
    public int plain() throws Exception {
        return send(() -> plain.get(port, "127.0.0.1", "/data").send());
    }

    /** One request through the mesh's WebClient: listener, route, cluster, host pool, stats. */
    @Benchmark
    public int mesh() throws Exception {
        return send(() -> meshed.get(8080, "upstream", "/data").send());
    }

    private int send(Supplier<Future<HttpResponse<Buffer>>> call) throws Exception {
        HttpResponse<Buffer> response;
        if (sender.equals("thread")) {
            response = call.get().await(10, TimeUnit.SECONDS);
        } else {
            CompletableFuture<HttpResponse<Buffer>> done = new CompletableFuture<>();
            loop.runOnContext(v -> call.get().onComplete(ar -> {
                if (ar.succeeded()) {
                    done.complete(ar.result());
                } else {
                    done.completeExceptionally(ar.cause());
                }
            }));
            response = done.get(10, TimeUnit.SECONDS);
        }
        if (response.statusCode() != 200) {
            throw new IllegalStateException("status " + response.statusCode());
        }
        return response.body().length();
    }
}
