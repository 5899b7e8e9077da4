package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An HTTP/1.1 upstream that answers before it has read the request's body (a 413 to an upload, say): the caller
 * gets the answer, and the connection, on which that upstream would read the next request as the rest of the body,
 * is closed rather than used again, as Envoy's connection pool closes it.
 */
class MeshUpstreamEarlyAnswerTest {
    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    Mesh mesh;

    @AfterEach
    void tearDown() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aRequestAfterOneAnsweredBeforeItsBodyEndedIsAnsweredOnAConnectionOfItsOwn() throws Exception {
        AtomicInteger connections = new AtomicInteger();
        var server = vertx.createHttpServer().connectionHandler(c -> connections.incrementAndGet());
        int port = server.requestHandler(req -> {
            if (req.path().equals("/upload")) {
                req.response().setStatusCode(413).end("too big"); // at once, the body unread
            } else {
                req.body().onSuccess(b -> req.response().end("read " + b.length()));
            }
        }).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, MeshWebClientTest.config("", port));
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        var client = mesh.httpClient();
        HttpClientRequest upload = client.request(new RequestOptions().setMethod(HttpMethod.POST).setHost("reviews")
                .setPort(9080).setURI("/upload")).await(10, TimeUnit.SECONDS);
        upload.setChunked(true);
        upload.write(Buffer.buffer(new byte[1000]));
        HttpClientResponse refused = upload.response().await(10, TimeUnit.SECONDS);
        assertEquals(413, refused.statusCode());
        assertEquals("too big", refused.body().await(10, TimeUnit.SECONDS).toString());
        upload.end(Buffer.buffer(new byte[1000])).await(10, TimeUnit.SECONDS); // what comes after goes nowhere
        for (int i = 0; i < 3; i++) {
            Buffer answer = client.request(new RequestOptions().setMethod(HttpMethod.POST).setHost("reviews")
                    .setPort(9080).setURI("/echo")).compose(r -> r.send(Buffer.buffer("abc")))
                    .compose(HttpClientResponse::body).await(10, TimeUnit.SECONDS);
            assertEquals("read 3", answer.toString(), "request " + i);
        }
        assertEquals(2, connections.get(), "the refused request's connection and one for the others");
    }

    /**
     * As Envoy's codec ends a request at the last byte its content-length announced (the data with end_stream): a
     * body written whole before the caller's end() ends the request there, so that an upstream that answers once it
     * read the body gets an answer with x-envoy-upstream-service-time (a request still open has none). The JDK's
     * body publisher signals the body's end apart from its bytes: this answer lost the header when it came first.
     */
    @Test
    void aBodyWrittenToItsContentLengthEndsTheRequestThereBeforeTheCallersEnd() throws Exception {
        int port = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> req.response()
                .end("read " + b.length()))).listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, MeshWebClientTest.config("", port));
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        HttpClientRequest post = mesh.httpClient().request(new RequestOptions().setMethod(HttpMethod.POST)
                .setHost("reviews").setPort(9080).setURI("/upload")).await(10, TimeUnit.SECONDS);
        post.putHeader("content-length", "5");
        post.write(Buffer.buffer("hello"));
        HttpClientResponse answer = post.response().await(10, TimeUnit.SECONDS);
        assertEquals("read 5", answer.body().await(10, TimeUnit.SECONDS).toString());
        assertNotNull(answer.getHeader("x-envoy-upstream-service-time"), "the request ended at its fifth byte");
        post.end().await(10, TimeUnit.SECONDS); // the caller's own end still succeeds, with nothing left to send
    }
}
