package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.PeerMetadata;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.RequestOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The standalone proxy speaks Istio's metadata exchange with its workload's identity, as the in-JVM mode does. */
@Timeout(30)
class StandaloneProxyIdentityTest {
    static final WorkloadInfo LOCAL = new WorkloadInfo("legacy-v1", "shop", "legacy", "v1");
    static final String ID = "sidecar~10.1.0.5~legacy-v1.shop~shop.svc.cluster.local";

    @TempDir
    Path dir;

    private StandaloneProxy start(String listeners, int backend) throws Exception {
        Path config = dir.resolve("proxy.yaml");
        Files.writeString(config, "static_resources:\n  listeners:\n" + listeners + Http1RequestsTest.clusterC(backend));
        return StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, null, AdminHook.NONE)
                .withIdentity(LOCAL, PeerMetadata.encode(LOCAL, "east"), ID));
    }

    @Test
    void anOutboundRequestCarriesTheWorkloadsPeerMetadataUpstream() throws Exception {
        Vertx backends = Vertx.vertx();
        StandaloneProxy proxy = null;
        try {
            // the upstream answers with the metadata exchange headers it was sent
            HttpServer s = backends.createHttpServer().requestHandler(req -> req.response()
                    .putHeader("seen-id", String.valueOf(req.getHeader("x-envoy-peer-metadata-id")))
                    .end(String.valueOf(req.getHeader("x-envoy-peer-metadata"))));
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int port = LoopbackProxy.freePort();
            proxy = start(Http1RequestsTest.listener("out", port, "").replace("    filter_chains:\n",
                    "    traffic_direction: OUTBOUND\n    filter_chains:\n"), backend);
            io.vertx.core.http.HttpClient client = backends.createHttpClient();
            String[] body = new String[1];
            HttpClientResponse r = onEventLoop(backends, () -> client.request(new RequestOptions()
                    .setHost("127.0.0.1").setPort(port).setURI("/x").putHeader("host", "svc"))
                    .compose(req -> req.send())
                    .compose(resp -> resp.body().map(b -> {
                        body[0] = b.toString();
                        return resp;
                    }))).await(10, TimeUnit.SECONDS);
            assertEquals(ID, r.getHeader("seen-id"));
            WorkloadInfo sent = PeerMetadata.decode(body[0]);
            assertEquals("legacy-v1", sent.workload());
            assertEquals("shop", sent.namespace());
            assertEquals("east", sent.cluster());
            client.close().await(10, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A WebSocket upgrade the proxy relays outbound carries the metadata exchange headers upstream as a plain outbound
     * request does (Istio's metadata exchange runs on upgrades too). It carried neither.
     */
    @Test
    void anOutboundUpgradeCarriesTheWorkloadsPeerMetadataUpstream() throws Exception {
        Vertx backends = Vertx.vertx();
        StandaloneProxy proxy = null;
        try {
            // the upstream answers the upgrade 200 (no switch) with the metadata exchange headers it was sent
            HttpServer s = backends.createHttpServer().requestHandler(req -> req.response()
                    .putHeader("seen-id", String.valueOf(req.getHeader("x-envoy-peer-metadata-id")))
                    .putHeader("seen-metadata", String.valueOf(req.getHeader("x-envoy-peer-metadata"))).end());
            int backend = s.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int port = LoopbackProxy.freePort();
            proxy = start(Http1RequestsTest.listener("out", port, "upgrade_configs: [{upgrade_type: websocket}]")
                    .replace("    filter_chains:\n", "    traffic_direction: OUTBOUND\n    filter_chains:\n"), backend);
            String answer = ProxyLocalRateLimitTest.upgrade(port, "/ws", "", got -> true);
            assertTrue(answer.contains("\r\nseen-id: " + ID + "\r\n"), answer);
            int at = answer.indexOf("\r\nseen-metadata: ") + 17;
            WorkloadInfo sent = PeerMetadata.decode(answer.substring(at, answer.indexOf("\r\n", at)));
            assertEquals("legacy-v1", sent.workload());
            assertEquals("shop", sent.namespace());
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void anInboundCallerThatSentItsOwnMetadataIsAnsweredWithTheWorkloadsAndOneThatDidNotIsNot() throws Exception {
        Vertx backends = Vertx.vertx();
        StandaloneProxy proxy = null;
        try {
            HttpServer app = backends.createHttpServer().requestHandler(req -> req.response().end("hi"));
            int appPort = app.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
            int port = LoopbackProxy.freePort();
            proxy = start(Http1RequestsTest.listener("in", port, "").replace("    filter_chains:\n",
                    "    traffic_direction: INBOUND\n    filter_chains:\n"), appPort);
            io.vertx.core.http.HttpClient client = backends.createHttpClient();
            WorkloadInfo caller = new WorkloadInfo("productpage-v1", "default", "productpage", "v1");
            HttpClientResponse r = onEventLoop(backends, () -> client.request(new RequestOptions()
                            .setHost("127.0.0.1").setPort(port).setURI("/x").putHeader("host", "svc")
                            .putHeader("x-envoy-peer-metadata", PeerMetadata.encode(caller, "Kubernetes"))
                            .putHeader("x-envoy-peer-metadata-id", "sidecar~10.1.0.7~productpage-v1.default~default"))
                    .compose(req -> req.send()).compose(resp -> resp.body().map(b -> resp)))
                    .await(10, TimeUnit.SECONDS);
            assertEquals(LOCAL.workload(), PeerMetadata.decode(r.getHeader("x-envoy-peer-metadata")).workload());
            assertEquals(ID, r.getHeader("x-envoy-peer-metadata-id"));
            HttpClientResponse plain = onEventLoop(backends, () -> client.request(new RequestOptions()
                    .setHost("127.0.0.1").setPort(port).setURI("/x").putHeader("host", "svc"))
                    .compose(req -> req.send()).compose(resp -> resp.body().map(b -> resp)))
                    .await(10, TimeUnit.SECONDS);
            assertNull(plain.getHeader("x-envoy-peer-metadata"));
            assertNull(plain.getHeader("x-envoy-peer-metadata-id"));
            client.close().await(10, TimeUnit.SECONDS); // held until here: Vert.x closes a client no longer referenced
        } finally {
            if (proxy != null) {
                proxy.close();
            }
            backends.close().await(10, TimeUnit.SECONDS);
        }
    }
}
