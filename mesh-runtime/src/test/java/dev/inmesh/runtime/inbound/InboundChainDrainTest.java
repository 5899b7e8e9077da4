package dev.inmesh.runtime.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.Context;
import io.vertx.core.Promise;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import java.net.Socket;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A connection of {@code mesh.inbound} keeps the {@code virtualInbound} chain it took, as Envoy's connection keeps the
 * chain it was accepted with: a configuration that keeps the chain equal leaves it be, one that removes or changes it
 * drains it, as Envoy's listener manager drains the connections of such a chain (a filter chain only update): its next
 * answer, still the old chain's, says {@code connection: close} and ends it (HTTP/1), or the connection is sent
 * GOAWAY (HTTP/2); a new connection takes the new chain. Before, a connection served on forever, each request taking
 * whatever chain the newest configuration had for it.
 */
class InboundChainDrainTest extends InboundMeshFixture {
    private static final String GET = "GET / HTTP/1.1\r\nhost: reviews\r\n\r\n";

    /** Istio's HTTP chain answering {@code body} itself. */
    private static String httpChain(String body) {
        return InboundNetworkFiltersTest.HTTP_CHAIN.replace("inline_string: http}", "inline_string: " + body + "}");
    }

    /** A TCP chain for HTTP/1.0 (which Istio's HTTP chain does not match), to Istio's inbound passthrough cluster. */
    private static final String TCP_CHAIN = InboundNetworkFiltersTest.tcpChain(null, "InboundPassthroughClusterIpv4");

    private static String config(String chains) {
        return InboundNetworkFiltersTest.config(chains, "");
    }

    @Test
    void anHttp1ConnectionWhoseChainIsChangedIsAnsweredByItOnceMoreWithConnectionCloseAndEnded() throws Exception {
        serve(config(httpChain("old")));
        try (Socket open = connect("127.0.0.1")) {
            String first = request(open, GET);
            assertTrue(first.endsWith("old") && !first.toLowerCase().contains("connection: close"), first);
            push(config(httpChain("old") + TCP_CHAIN));
            String kept = request(open, GET);
            assertTrue(kept.endsWith("old") && !kept.toLowerCase().contains("connection: close"),
                    "a chain the update keeps equal keeps its connections: " + kept);
            push(config(httpChain("new") + TCP_CHAIN));
            String drained = request(open, GET);
            assertTrue(drained.startsWith("HTTP/1.1 200") && drained.endsWith("old"),
                    "still answered by the chain it took: " + drained);
            assertTrue(drained.toLowerCase().contains("connection: close"), drained);
            assertEquals(-1, open.getInputStream().read(), "and ended");
        }
        try (Socket fresh = connect("127.0.0.1")) {
            String answer = request(fresh, GET);
            assertTrue(answer.endsWith("new") && !answer.toLowerCase().contains("connection: close"), answer);
        }
    }

    @Test
    void anH2cConnectionWhoseChainIsRemovedIsSentGoawayAfterItsNextStreamIsAnswered() throws Exception {
        serve(config(httpChain("old")));
        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setDefaultHost("127.0.0.1").setDefaultPort(port),
                new PoolOptions().setHttp2MaxSize(1));
        try {
            Context context = vertx.getOrCreateContext();
            HttpClientResponse first = get(context, client, "old");
            CountDownLatch goAway = new CountDownLatch(1);
            CountDownLatch closed = new CountDownLatch(1);
            first.request().connection().goAwayHandler(g -> goAway.countDown());
            first.request().connection().closeHandler(v -> closed.countDown());
            push(config(httpChain("new")));
            HttpClientResponse last = get(context, client, "old");
            assertTrue(last.request().connection() == first.request().connection(), "on the same connection");
            assertTrue(goAway.await(30, TimeUnit.SECONDS), "GOAWAY");
            // and, its last stream answered, ended: the client's pool lets the connection go only after it ran the
            // GOAWAY handler, so a request sent straight from that handler's signal could still take it
            assertTrue(closed.await(30, TimeUnit.SECONDS), "closed once its streams are done");
            HttpClientResponse next = get(context, client, "new");
            assertFalse(next.request().connection() == first.request().connection(), "a new connection");
        } finally {
            client.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A GET through {@code client}, whose answer must be 200 with {@code body}, sent from {@code context}: all of a
     * test's requests from one context, whose event loop is that of the connection the first one opened, so that
     * the response reaches {@code body()} in the same turn of the loop as its head. Sent from this thread, each request
     * would take a new context, and the answer would come to the test a task later: when the server ends the
     * connection right after it (the drain), the response can end in between, and Vert.x's {@code body()} on an ended
     * response never completes (one run in about twenty hung for 30 s).
     */
    private static HttpClientResponse get(Context context, HttpClient client, String body) throws Exception {
        HttpClientResponse[] got = {null};
        Promise<Buffer> read = Promise.promise();
        context.runOnContext(v -> client.request(HttpMethod.GET, "/").compose(r -> r.send())
                .compose(resp -> {
                    got[0] = resp;
                    return resp.body();
                }).onComplete(read));
        String answer = read.future().await(30, TimeUnit.SECONDS).toString();
        assertEquals(200, got[0].statusCode());
        assertEquals(body, answer);
        return got[0];
    }
}
