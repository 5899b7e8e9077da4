package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.runtime.stats.PeerMetadata;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * An HTTP chain of an INBOUND listener of the standalone proxy (what {@code virtualInbound} on 15006 runs), to the
 * application, as Istio's sidecar treats the request on its inbound side.
 */
@Timeout(30)
class InboundListenerTest {
    @Test
    void theCallersPeerMetadataLabelsTheSourceAndNeitherItNorAForwardedClientCertReachesTheApplication()
            throws Exception {
        Vertx backends = Vertx.vertx();
        LoopbackProxy proxy = null;
        try {
            // the application answers with the request headers it was given
            HttpServer app = backends.createHttpServer().requestHandler(req -> {
                JsonObject seen = new JsonObject();
                req.headers().forEach(e -> seen.put(e.getKey().toLowerCase(Locale.ROOT), e.getValue()));
                req.response().end(seen.encode());
            });
            int appPort = app.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int port = LoopbackProxy.freePort();
            String listener = Http1RequestsTest.listener("inbound", port, "").replace(
                    "    filter_chains:\n", "    traffic_direction: INBOUND\n    filter_chains:\n");
            proxy = new LoopbackProxy("static_resources:\n  listeners:\n" + listener
                    + Http1RequestsTest.clusterC(appPort));
            WorkloadInfo caller = new WorkloadInfo("productpage-v1", "default", "productpage", "v1");
            // held until the end: Vert.x closes a client that is no longer referenced
            io.vertx.core.http.HttpClient client = backends.createHttpClient();
            JsonObject seen = onEventLoop(backends, () -> client.request(new RequestOptions().setHost("127.0.0.1")
                            .setPort(port).setURI("/reviews/0").putHeader("host", "svc")
                            .putHeader("x-envoy-peer-metadata", PeerMetadata.encode(caller, "Kubernetes"))
                            .putHeader("x-envoy-peer-metadata-id", "sidecar~10.1.0.7~productpage-v1.default~default")
                            .putHeader("x-forwarded-client-cert", "URI=spiffe://cluster.local/ns/default/sa/admin"))
                    .compose(req -> req.send()).compose(resp -> resp.body()))
                    .await(10, TimeUnit.SECONDS).toJsonObject();
            assertNull(seen.getString("x-envoy-peer-metadata"), seen.encode());
            assertNull(seen.getString("x-envoy-peer-metadata-id"), seen.encode());
            assertNull(seen.getString("x-forwarded-client-cert"), seen.encode());
            for (int i = 0; i < 250 && proxy.requests.isEmpty(); i++) {
                Thread.sleep(20);
            }
            StreamInfo in = proxy.requests.get(0);
            assertEquals(StreamInfo.Direction.INBOUND, in.direction());
            assertEquals("productpage-v1", in.peer().workload());
            assertEquals("productpage", in.peer().app());
            client.close().await(10, TimeUnit.SECONDS);
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }
}
