package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.RawHttp1Upstream;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The trailers of an HTTP/1.1 upstream's chunked response: dropped by default, as Envoy's HTTP/1 codec drops them,
 * kept when the cluster's HTTP/1 options have {@code enable_trailers}. The body arrives whole either way.
 */
@Timeout(30)
class RouterUpstreamTrailersTest {
    private static final String CHUNKED_WITH_TRAILERS = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
            + "trailer: x-checksum\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n";

    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private RouterRig.Result call(boolean enableTrailers) throws Exception {
        try (RawHttp1Upstream server = new RawHttp1Upstream(CHUNKED_WITH_TRAILERS)) {
            ClusterManager clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC)
                    .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofSeconds(2))
                    .loadAssignment(hosts("c", server.port())).http1Trailers(enableTrailers).build());
            return rig.call(rig.router(), get("/"), routeToC(""), clusters);
        }
    }

    @Test
    void anHttp1UpstreamsTrailersAreDroppedAsEnvoysCodecDropsThem() throws Exception {
        RouterRig.Result r = call(false);

        assertEquals(200, r.status());
        assertEquals("hello", r.body());
        assertTrue(r.response().upstream.trailers().isEmpty(), r.response().upstream.trailers().toString());
        // the head's own headers are not trailers: they go on as they came
        assertEquals("x-checksum", r.headers().get("trailer"));
    }

    @Test
    void enableTrailersKeepsThem() throws Exception {
        RouterRig.Result r = call(true);

        assertEquals(200, r.status());
        assertEquals("hello", r.body());
        assertEquals("abc", r.response().upstream.trailers().get("x-checksum"));
    }
}
