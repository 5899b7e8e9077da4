package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientOptions;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * A mesh client closed leaves the application's timers alone: a Vert.x 5.0 client without a pool checker (no
 * keep-alive timeout, no lifetime) cancels timer 0 when it closes, whoever made it.
 */
class MeshClientCloseTimerTest {
    @Test
    void closingAMeshClientWithoutKeepAliveTimeoutsCancelsNoTimerOfTheApplications() throws Exception {
        Vertx vertx = Vertx.vertx();
        try {
            AtomicInteger fired = new AtomicInteger();
            long id = vertx.setPeriodic(20, t -> fired.incrementAndGet());
            assumeTrue(id == 0, "the application's periodic is the instance's timer 0");
            Mesh mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(-1));
            mesh.start().await(10, TimeUnit.SECONDS);
            mesh.httpClient(new HttpClientOptions().setKeepAliveTimeout(0).setHttp2KeepAliveTimeout(0)).close()
                    .await(10, TimeUnit.SECONDS);
            int before = fired.get();
            Thread.sleep(300);
            assertTrue(fired.get() > before, "the application's periodic timer goes on");
            mesh.close().await(10, TimeUnit.SECONDS);
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }
}
