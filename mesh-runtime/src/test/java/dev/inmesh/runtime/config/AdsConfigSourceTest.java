package dev.inmesh.runtime.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import dev.inmesh.runtime.xds.ads.NodeOptions;
import dev.inmesh.runtime.xds.ads.XdsFixtures;
import dev.inmesh.runtime.xds.ads.XdsTestServer;
import io.envoyproxy.controlplane.cache.v3.Snapshot;
import io.vertx.core.Vertx;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class AdsConfigSourceTest {

    @Test
    void anAdsSourceFeedsTheHolderAndReportsItsStatus() throws Exception {
        Vertx vertx = Vertx.vertx();
        try (XdsTestServer server = XdsTestServer.start()) {
            server.set(Snapshot.create(List.of(), "1", List.of(), "1",
                    List.of(XdsFixtures.listener("0.0.0.0_9080", 9080, "9080")), "1",
                    List.of(XdsFixtures.route("9080", "c1")), "1", List.of(), "1"));
            AdsConfigSource source = new AdsConfigSource(vertx, AdsOptions.of(NodeOptions.of("p", "default",
                    "10.0.0.1"), AdsOptions.XdsServer.plaintext("127.0.0.1", server.port())));
            assertNull(source.status());
            SnapshotHolder holder = new SnapshotHolder();
            ConfigSource s = source;
            s.start(holder).await(10, TimeUnit.SECONDS);
            assertTrue(holder.ready());
            assertEquals("c1", XdsFixtures.clusterFor(holder.current(), "9080", "/"));
            assertTrue(source.status().ready());
            s.close().await(10, TimeUnit.SECONDS);
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }
}
