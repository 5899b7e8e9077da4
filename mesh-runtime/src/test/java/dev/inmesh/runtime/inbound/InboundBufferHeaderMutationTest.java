package dev.inmesh.runtime.inbound;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@code mesh.inbound(handler)} under a header mutation filter and a buffer filter an Istio EnvoyFilter put before the
 * router of {@code virtualInbound}: the service gets a chunked body whole with its {@code content-length} and the
 * request's headers and query parameters as the mutations left them, the caller the response's; a body over {@code max_request_bytes} is
 * answered 413 without the service; a route that turns the buffer filter off lets its body through streaming.
 */
class InboundBufferHeaderMutationTest {
    private static final String CONFIG = """
            static_resources:
              listeners:
              - name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                use_original_dst: true
                traffic_direction: INBOUND
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: inbound_0.0.0.0_9080
                      http_filters:
                      - name: envoy.filters.http.header_mutation
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation
                          mutations:
                            request_mutations:
                            - append: {header: {key: x-mutated, value: request}}
                            - remove: x-secret
                            query_parameter_mutations:
                            - remove: drop
                            - append: {record: {key: m, value: v 1}}
                            response_mutations:
                            - append: {header: {key: x-mutated, value: response}}
                      - name: envoy.filters.http.buffer
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer
                          max_request_bytes: 8
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                      route_config:
                        name: inbound|9080||
                        validate_clusters: false
                        virtual_hosts:
                        - name: inbound|http|9080
                          domains: ["*"]
                          routes:
                          - name: streaming
                            match: {prefix: /streaming}
                            route: {cluster: "inbound|9080||", timeout: 0s}
                            typed_per_filter_config:
                              envoy.filters.http.buffer:
                                "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                                disabled: true
                          - name: rewritten
                            match: {prefix: /old/}
                            route: {cluster: "inbound|9080||", timeout: 0s, prefix_rewrite: /new/}
                          - name: default
                            match: {prefix: /}
                            route: {cluster: "inbound|9080||", timeout: 0s}
                            typed_per_filter_config:
                              envoy.filters.http.header_mutation:
                                "@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute
                                mutations:
                                  query_parameter_mutations:
                                  - append: {record: {key: lvl, value: route}, action: ADD_IF_ABSENT}
            """;

    Vertx vertx;
    SnapshotHolder snapshots;
    HttpClient client;
    int port;
    int served;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(CONFIG));
        port = vertx.createHttpServer().requestHandler(new InboundHandler(this::serve, snapshots, i -> { }))
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        client = vertx.createHttpClient();
    }

    @AfterEach
    void stop() throws Exception {
        snapshots.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * The service: answers with the body, its content-length and transfer-encoding, and the headers it got; the path
     * it got in x-uri.
     */
    private void serve(HttpServerRequest req) {
        served++;
        req.response().putHeader("x-uri", req.uri());
        req.body().onSuccess(b -> req.response().end("body " + b + ", content-length "
                + req.getHeader("content-length") + ", transfer-encoding " + req.getHeader("transfer-encoding")
                + ", x-mutated " + req.getHeader("x-mutated") + ", x-secret " + req.getHeader("x-secret")));
    }

    private record Answer(int status, MultiMap headers, String body) {}

    /** A POST whose body goes in {@code chunks}, chunked, with an x-secret header. */
    private Answer post(String path, String... chunks) throws Exception {
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.POST).setHost("127.0.0.1").setPort(port)
                .setURI(path).putHeader("x-secret", "s");
        return onEventLoop(vertx, () -> client.request(o).compose(r -> {
            r.setChunked(true);
            List.of(chunks).forEach(r::write);
            r.end();
            return r.response();
        }).compose(r -> r.body().map(b -> new Answer(r.statusCode(), r.headers(), b.toString()))))
                .await(10, TimeUnit.SECONDS);
    }

    @Test
    void theServiceGetsTheBodyWholeWithItsLengthAndTheMutatedHeaders() throws Exception {
        Answer a = post("/a", "hel", "lo");
        assertEquals(200, a.status());
        assertEquals("body hello, content-length 5, transfer-encoding null, x-mutated request, x-secret null",
                a.body());
        assertEquals("response", a.headers().get("x-mutated"));
    }

    /**
     * The filter's own query parameter mutations (drop removed, m added as v%201), then the route's (lvl added), the
     * query written by name as Envoy writes it: each level decodes it again (b's x%2Fy, and m's v%201 too, as each of
     * Envoy's Mutations parses and decodes the path the level before wrote).
     */
    @Test
    void theServiceGetsThePathWithTheMutatedQuery() throws Exception {
        Answer a = post("/a?drop=1&b=x%2Fy", "hi");
        assertEquals(200, a.status());
        assertEquals("/a?b=x/y&lvl=route&m=v 1", a.headers().get("x-uri"));
    }

    /**
     * A fragment the caller sent (which Envoy's connection manager strips under Istio, so its filter never sees one)
     * is not read as part of b's value, which put the parameters after b into the fragment the service got.
     */
    @Test
    void theMutatedQueryLeavesTheCallersFragmentOut() throws Exception {
        Answer a = post("/a?b=1#frag", "hi");
        assertEquals(200, a.status());
        assertEquals("/a?b=1&lvl=route&m=v 1", a.headers().get("x-uri"));
    }

    /** As Envoy's route rewrites the :path the filters left, a prefix_rewrite keeps the query they made. */
    @Test
    void aRewrittenPathKeepsTheMutatedQuery() throws Exception {
        Answer a = post("/old/x?drop=1", "hi");
        assertEquals(200, a.status());
        assertEquals("/new/x?m=v%201", a.headers().get("x-uri")); // one level: m encoded once
    }

    @Test
    void aBodyOverMaxRequestBytesIsAnswered413WithoutTheService() throws Exception {
        Answer a = post("/a", "hello ", "world");
        assertEquals(413, a.status());
        assertEquals("Payload Too Large", a.body());
        assertEquals("response", a.headers().get("x-mutated"), "the local reply passes the header mutation filter");
        assertEquals(0, served);
    }

    @Test
    void aRouteThatTurnsTheBufferOffLetsItsBodyThroughStreaming() throws Exception {
        Answer a = post("/streaming", "hello ", "world");
        assertEquals(200, a.status());
        assertEquals("body hello world, content-length null, transfer-encoding chunked, x-mutated request, "
                + "x-secret null", a.body());
    }

    /**
     * Over HTTP/2 a GET's HEADERS end its stream: Envoy's filter holds nothing and adds no content-length; a body
     * without one still gets its length.
     */
    @Test
    void anHttp2RequestThatEndsWithItsHeadGetsNoContentLengthAndOneWithABodyGetsItsLength() throws Exception {
        HttpClient h2 = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
        RequestOptions o = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/a");
        String get = onEventLoop(vertx, () -> h2.request(new RequestOptions(o).setMethod(HttpMethod.GET))
                .compose(r -> r.send()).compose(r -> r.body())).await(10, TimeUnit.SECONDS).toString();
        assertEquals("body , content-length null, transfer-encoding null, x-mutated request, x-secret null", get);
        String post = onEventLoop(vertx, () -> h2.request(new RequestOptions(o).setMethod(HttpMethod.POST))
                .compose(r -> {
                    r.setChunked(true);
                    r.write("hel");
                    r.end("lo");
                    return r.response();
                }).compose(r -> r.body())).await(10, TimeUnit.SECONDS).toString();
        assertEquals("body hello, content-length 5, transfer-encoding null, x-mutated request, x-secret null", post);
    }

    /**
     * Over HTTP/2, HEADERS without END_STREAM then an empty DATA frame that ends the stream: Envoy's buffer filter
     * (decodeData with end_stream) sets the length it held, content-length 0, where a GET's HEADERS that end the
     * stream get none; without the filter (a route that turns it off) the service gets the request as it came, with
     * no length, as Envoy's HTTP/2 encoder forwards it.
     */
    @Test
    void anHttp2RequestEndedByAnEmptyDataFrameGetsContentLength0FromTheBufferFilter() throws Exception {
        HttpClient h2 = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
        for (String[] c : new String[][] {{"/a", "0"}, {"/streaming", "null"}}) {
            String answer = onEventLoop(vertx, () -> h2.request(new RequestOptions().setHost("127.0.0.1")
                    .setPort(port).setURI(c[0]).setMethod(HttpMethod.POST)).compose(r -> {
                        r.setChunked(true);
                        return r.sendHead().compose(v -> r.end()).compose(v -> r.response());
                    }).compose(r -> r.body())).await(10, TimeUnit.SECONDS).toString();
            assertEquals("body , content-length " + c[1] + ", transfer-encoding null, x-mutated request, x-secret null",
                    answer, c[0]);
        }
    }
}
