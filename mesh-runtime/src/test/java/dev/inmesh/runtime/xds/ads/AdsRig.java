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

    /** A holder check (as the standalone proxy's bind check) refusing the listener {@code name}. */
    void refuse(String name) {
        holder.addCheck(bundle -> {
            if (bundle.listeners().containsKey(name)) {
                throw new dev.inmesh.runtime.xds.InvalidResourceException(
                        dev.inmesh.runtime.xds.ResourceType.LISTENER, name, "address",
                        "cannot bind '0.0.0.0:7000': Address already in use");
            }
        });
    }

    /** The holder's configuration statistics, bound to a registry of their own: each by its Prometheus name. */
    java.util.function.ToLongFunction<String> configStats() {
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        holder.stats().bind(registry);
        return n -> (long) registry.get(n).gauge().value();
    }

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
