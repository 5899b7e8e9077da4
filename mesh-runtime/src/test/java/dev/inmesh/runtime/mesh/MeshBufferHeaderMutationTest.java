package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServer;
import io.vertx.ext.web.client.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The in-JVM client's connection manager under a header mutation filter and a buffer filter an Istio EnvoyFilter put
 * before its router: the upstream gets the request's headers as the mutations left them, the caller the response's,
 * and a body over {@code max_request_bytes} is answered 413 without the upstream.
 */
class MeshBufferHeaderMutationTest {
    Vertx vertx;
    Mesh mesh;
    int served;
    @TempDir
    Path dir;

    @BeforeEach
    void setUp() throws Exception {
        vertx = Vertx.vertx();
        HttpServer s = vertx.createHttpServer().requestHandler(req -> {
            served++;
            req.body().onSuccess(b -> req.response().end("body " + b + ", x-mutated " + req.getHeader("x-mutated")));
        });
        int port = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, MeshWebClientTest.config("", port).replace("          http_filters:\n", """
                          http_filters:
                          - name: envoy.filters.http.header_mutation
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
                              mutations:
                                request_mutations: [{append: {header: {key: x-mutated, value: request}}}]
                                response_mutations: [{append: {header: {key: x-mutated, value: response}}}]
                          - name: envoy.filters.http.buffer
                            typed_config:
                              "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
                              max_request_bytes: 8
                """));
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()));
        mesh.start().await(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void tearDown() throws Exception {
        mesh.close().await(10, TimeUnit.SECONDS);
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private HttpResponse<Buffer> post(String body) throws Exception {
        return mesh.webClient().post(9080, "reviews", "/").sendBuffer(Buffer.buffer(body))
                .await(10, TimeUnit.SECONDS);
    }

    @Test
    void theUpstreamGetsTheMutatedHeadersAndTheCallerTheResponses() throws Exception {
        HttpResponse<Buffer> r = post("hello");
        assertEquals(200, r.statusCode());
        assertEquals("body hello, x-mutated request", r.bodyAsString());
        assertEquals("response", r.getHeader("x-mutated"));
    }

    @Test
    void aBodyOverMaxRequestBytesIsAnswered413WithoutTheUpstream() throws Exception {
        HttpResponse<Buffer> r = post("hello world");
        assertEquals(413, r.statusCode());
        assertEquals("Payload Too Large", r.bodyAsString());
        assertEquals(0, served);
    }
}
