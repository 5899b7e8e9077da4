package dev.inmesh.runtime.xds.ads;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.vertx.core.Vertx;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
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
            try {
                client.close().await(10, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                // the close bounds each of its steps: a close this late means a stuck client context; show where
                Thread.getAllStackTraces().forEach((thread, stack) -> {
                    if (thread.getName().startsWith("vert.x")) {
                        System.err.println(thread.getName() + " " + thread.getState());
                        for (StackTraceElement frame : stack) {
                            System.err.println("    at " + frame);
                        }
                    }
                });
                throw e;
            }
        }
        server.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }
}
