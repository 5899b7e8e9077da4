package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Response trailers through the standalone proxy, as Envoy's codecs pass them: an HTTP/1 codec, the cluster's towards
 * an HTTP/1.1 upstream and the connection manager's towards an HTTP/1.1 caller, drops them unless its
 * {@code http_protocol_options} have {@code enable_trailers}; HTTP/2 carries them on either side.
 */
@Timeout(30)
class ProxyTrailersTest {
    private Vertx vertx;
    private int upstream;
    private LoopbackProxy proxy;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        // HTTP/1.1, and h2c with prior knowledge, on the same port; a body of two writes, so that it has no length
        // (trailers go only at the end of a chunked HTTP/1.1 body)
        upstream = vertx.createHttpServer().requestHandler(req -> {
            var resp = req.response().setChunked(true).putHeader("content-type", "text/plain")
                    .putTrailer("x-checksum", "abc");
            resp.write("hel");
            resp.end("lo");
        })
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    @AfterEach
    void stop() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /**
     * {@code yaml} (a {@link LoopbackProxy#inboundConfig}) with {@code enable_trailers} in its connection manager's
     * HTTP/1 options and in its cluster's, as asked.
     */
    static String enableTrailers(String yaml, boolean connectionManager, boolean cluster) {
        String out = yaml;
        if (connectionManager) {
            out = out.replace("stat_prefix: inbound_0.0.0.0_8080\n",
                    "stat_prefix: inbound_0.0.0.0_8080\n          http_protocol_options: {enable_trailers: true}\n");
        }
        if (cluster) {
            out = out.replace("    connect_timeout: 1s\n",
                    "    connect_timeout: 1s\n    http_protocol_options: {enable_trailers: true}\n");
        }
        return out;
    }

    private record Answer(String body, MultiMap trailers) {}

    private Answer get(String yaml, HttpVersion version) throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        int port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(yaml.replace("%PROXY%", Integer.toString(port)));
        var client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(version)
                .setHttp2ClearTextUpgrade(false));
        try {
            return client.request(HttpMethod.GET, port, "127.0.0.1", "/x")
                    .compose(req -> req.send().compose(resp -> resp.body()
                            .map(b -> new Answer(b.toString(), resp.trailers()))))
                    .await(10, TimeUnit.SECONDS);
        } finally {
            client.close();
        }
    }

    private String config(boolean connectionManager, boolean cluster, boolean h2Upstream) {
        String yaml = enableTrailers(LoopbackProxy.inboundConfig(0, upstream, "").replaceFirst("port_value: 0}",
                "port_value: %PROXY%}"), connectionManager, cluster);
        return h2Upstream ? yaml.replace("    connect_timeout: 1s\n",
                "    connect_timeout: 1s\n    http2_protocol_options: {}\n") : yaml;
    }

    @Test
    void anHttp1UpstreamsTrailersAreDroppedUnlessBothCodecsEnableThem() throws Exception {
        Answer plain = get(config(false, false, false), HttpVersion.HTTP_1_1);
        assertEquals("hello", plain.body());
        assertTrue(plain.trailers().isEmpty(), plain.trailers().toString());

        Answer callerSideOnly = get(config(true, false, false), HttpVersion.HTTP_1_1);
        assertTrue(callerSideOnly.trailers().isEmpty(), "the cluster's codec dropped them");

        Answer upstreamSideOnly = get(config(false, true, false), HttpVersion.HTTP_1_1);
        assertEquals("hello", upstreamSideOnly.body());
        assertTrue(upstreamSideOnly.trailers().isEmpty(), "the connection manager's codec dropped them");

        Answer both = get(config(true, true, false), HttpVersion.HTTP_1_1);
        assertEquals("hello", both.body());
        assertEquals("abc", both.trailers().get("x-checksum"));
    }

    @Test
    void http2CarriesTrailersOnEitherSide() throws Exception {
        // an HTTP/2 upstream's trailers reach an HTTP/2 caller, and an HTTP/1.1 one only with enable_trailers
        assertEquals("abc", get(config(false, false, true), HttpVersion.HTTP_2).trailers().get("x-checksum"));
        Answer http1Caller = get(config(false, false, true), HttpVersion.HTTP_1_1);
        assertEquals("hello", http1Caller.body());
        assertTrue(http1Caller.trailers().isEmpty(), http1Caller.trailers().toString());
        assertEquals("abc", get(config(true, false, true), HttpVersion.HTTP_1_1).trailers().get("x-checksum"));
        // an HTTP/1.1 upstream's trailers, kept by the cluster, reach an HTTP/2 caller
        assertEquals("abc", get(config(false, true, false), HttpVersion.HTTP_2).trailers().get("x-checksum"));
    }
}
