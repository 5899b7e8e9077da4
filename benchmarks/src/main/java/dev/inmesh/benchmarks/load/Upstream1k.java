package dev.inmesh.benchmarks.load;

import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import io.vertx.core.buffer.Buffer;
import java.util.concurrent.TimeUnit;

/**
 * A small fast upstream for the load runs when nginx is not at hand: HTTP/1.1 keep-alive, a 1 KB body to every
 * request. {@code java -cp benchmarks.jar dev.inmesh.benchmarks.load.Upstream1k PORT [event-loops]}; prints
 * "listening on PORT" and runs until killed.
 */
public final class Upstream1k {
    private Upstream1k() {}

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        int loops = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        Vertx vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(loops).setPreferNativeTransport(true));
        Buffer body = Buffer.buffer("x".repeat(1024));
        int actual = vertx.createHttpServer()
                .requestHandler(req -> req.response().putHeader("content-type", "text/plain").end(body))
                .listen(port, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        System.out.println("listening on " + actual);
    }
}
