package dev.inmesh.runtime.xds.ads;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.vertx.core.Vertx;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * What every ADS client test starts with: Vert.x, a java-control-plane server on loopback and a snapshot holder;
 * the client a test makes goes in {@link #client} and is closed after it.
 */
abstract class AdsRig {
    Vertx vertx;
    XdsTestServer server;
    SnapshotHolder holder;
    AdsClient client;

    @BeforeEach
    void startRig() throws Exception {
        vertx = Vertx.vertx();
        server = XdsTestServer.start();
        holder = new SnapshotHolder();
    }

    @AfterEach
    void stopRig() throws Exception {
        if (client != null) {
            client.close().await(5, TimeUnit.SECONDS);
        }
        server.close();
        vertx.close().await(5, TimeUnit.SECONDS);
    }
}
