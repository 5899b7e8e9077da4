package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Envoy's header mutation and buffer filters in the standalone proxy's connection manager, on loopback: the upstream
 * gets a chunked body whole with its {@code content-length} and the request's headers and query parameters as the
 * mutations left them, the caller the response's; a body over {@code max_request_bytes} is answered 413 without the
 * upstream.
 */
@Timeout(30)
class ProxyBufferHeaderMutationTest {
    private Vertx backends;
    private LoopbackProxy proxy;
    private HttpClient client;
    private int served;

    private void answer(HttpServerRequest req) {
        served++;
        req.response().putHeader("x-uri", req.uri());
        req.body().onSuccess(b -> req.response().end("body " + b + ", content-length "
                + req.getHeader("content-length") + ", transfer-encoding " + req.getHeader("transfer-encoding")
                + ", x-mutated " + req.getHeader("x-mutated")));
    }

    @BeforeEach
    void start() throws Exception {
        backends = Vertx.vertx();
        int upstream = backends.createHttpServer().requestHandler(this::answer).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort();
        int proxyPort = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.inboundConfig(proxyPort, upstream, """
                - name: envoy.filters.http.header_mutation
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
                    mutations:
                      request_mutations: [{append: {header: {key: x-mutated, value: request}}}]
                      query_parameter_mutations: [{remove: drop}, {append: {record: {key: m, value: "v 1"}}}]
                      response_mutations: [{append: {header: {key: x-mutated, value: response}}}]
                - name: envoy.filters.http.buffer
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
                    max_request_bytes: 8
                """));
        client = backends.createHttpClient(new HttpClientOptions().setDefaultHost("127.0.0.1")
                .setDefaultPort(proxyPort));
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        backends.close().await(10, TimeUnit.SECONDS);
    }

    private record Answer(int status, MultiMap headers, String body) {}

    /** A POST whose body goes chunked, in {@code chunks}. */
    private Answer post(String... chunks) throws Exception {
        return postTo("/a", chunks);
    }

    private Answer postTo(String path, String... chunks) throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.POST).setURI(path);
        return onEventLoop(backends, () -> client.request(o).compose(r -> {
            r.setChunked(true);
            List.of(chunks).forEach(r::write);
            r.end();
            return r.response();
        }).compose(r -> r.body().map(b -> new Answer(r.statusCode(), r.headers(), b.toString()))))
                .await(10, TimeUnit.SECONDS);
    }

    @Test
    void theUpstreamGetsTheBodyWholeWithItsLengthAndTheMutatedHeaders() throws Exception {
        Answer a = post("hel", "lo");
        assertEquals(200, a.status());
        assertEquals("body hello, content-length 5, transfer-encoding null, x-mutated request", a.body());
        assertEquals("response", a.headers().get("x-mutated"));
    }

    /** drop removed, m added with its value percent-encoded, b's x%2Fy decoded: the query Envoy's filter writes. */
    @Test
    void theUpstreamGetsThePathWithTheMutatedQuery() throws Exception {
        Answer a = postTo("/a?drop=1&b=x%2Fy", "hi");
        assertEquals(200, a.status());
        assertEquals("/a?b=x/y&m=v%201", a.headers().get("x-uri"));
    }

    @Test
    void aBodyOverMaxRequestBytesIsAnswered413WithoutTheUpstream() throws Exception {
        Answer a = post("hello ", "world");
        assertEquals(413, a.status());
        assertEquals("Payload Too Large", a.body());
        assertEquals("response", a.headers().get("x-mutated"));
        assertEquals(0, served);
    }
}
