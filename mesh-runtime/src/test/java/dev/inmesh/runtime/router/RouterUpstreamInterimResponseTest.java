package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;

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
 * An HTTP/1 upstream's interim (1xx) answers before its final one: none is taken for the final answer, as none is by
 * Envoy's codec. A 102 or 104 is passed over (Vert.x took it for the final answer: the caller got a 102 with no
 * body and the real answer was left on the connection); 100 and 103 are Vert.x's continue and early hints.
 */
@Timeout(30)
class RouterUpstreamInterimResponseTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private RouterRig.Result call(String answer) throws Exception {
        try (RawHttp1Upstream server = new RawHttp1Upstream(answer)) {
            ClusterManager clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC)
                    .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofSeconds(2))
                    .loadAssignment(hosts("c", server.port())).build());
            return rig.call(rig.router(), get("/"), routeToC(""), clusters);
        }
    }

    @Test
    void theFinalAnswerAfterInterimOnesIsTheResponse() throws Exception {
        String ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-final: yes\r\n\r\nok";
        for (String interim : new String[] {
            "HTTP/1.1 102 Processing\r\n\r\n",
            "HTTP/1.1 104 Upload Resumption Supported\r\nx-interim: 1\r\n\r\n",
            "HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n",
            "HTTP/1.1 199 Whatever\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n",
            "HTTP/1.1 100 Continue\r\n\r\n"}) {
            RouterRig.Result r = call(interim + ok);
            String what = interim.substring(0, interim.indexOf('\r'));
            assertEquals(200, r.status(), what);
            assertEquals("ok", r.body(), what);
            assertEquals("yes", r.headers().get("x-final"), what);
            assertEquals(null, r.headers().get("x-interim"), what);
        }
        // an upstream that closes after an interim answer gave no answer: the end of input before the final head
        RouterRig.Result cut = call("HTTP/1.1 102 Processing\r\n\r\n");
        assertEquals(503, cut.status());
    }
}
