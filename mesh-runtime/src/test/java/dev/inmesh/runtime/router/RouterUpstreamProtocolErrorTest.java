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
 * An HTTP/1 upstream whose response head cannot be read, or whose framing Envoy's codec refuses (a
 * {@code Transfer-Encoding} beside a {@code Content-Length}, a coding other than {@code chunked}), whose status is
 * outside 100-999, or whose header name has whitespace in it, is a protocol error, as Envoy's codec reports it (502
 * UPE, {@code protocol error}), and so is one that closes in the middle of its status line or headers; one that closes
 * before any answer is a connection termination (503 UC). A first chunk size Netty would read wrapped cuts the
 * response after its head (a reset after the response started).
 */
@Timeout(30)
class RouterUpstreamProtocolErrorTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private final io.micrometer.core.instrument.simple.SimpleMeterRegistry registry =
            new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
    private final dev.inmesh.runtime.stats.MeshMetrics metrics = dev.inmesh.runtime.stats.MeshMetrics.create(
            registry, dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN);

    private RouterRig.Result call(String answer) throws Exception {
        return call(answer, get("/"));
    }

    private RouterRig.Result call(String answer, RouterRequest request) throws Exception {
        try (RawHttp1Upstream server = new RawHttp1Upstream(answer)) {
            ClusterManager clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC)
                    .lbPolicy(LbPolicy.ROUND_ROBIN).connectTimeout(Duration.ofSeconds(2))
                    .loadAssignment(hosts("c", server.port())).build());
            Router router = rig.router();
            router.upstreamStats(metrics::upstream);
            return rig.call(router, request, routeToC(""), clusters);
        }
    }

    /** Cluster c's statistic {@code name} (with a tag {@code k=v} when given), 0 before it was kept. */
    private double stat(String name, String... tag) {
        var search = registry.find("envoy_cluster_" + name).tag("cluster_name", "c");
        if (tag.length == 2) {
            search = search.tag(tag[0], tag[1]);
        }
        var g = search.gauge();
        return g == null ? 0 : g.value();
    }

    @Test
    void aResponseHeadTheCodecCannotReadIsAProtocolErrorAsEnvoysCodecReportsIt() throws Exception {
        for (String answer : new String[] {
            "HTTX/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nokk",
            "HTTP/1.1 200 OK\r\nx-bad: a\rb\r\ncontent-length: 2\r\n\r\nok",
            "HTTP/1.1 200 OK\r\nx-big: " + "a".repeat(70_000) + "\r\ncontent-length: 2\r\n\r\nok",
            // two framings of one body, which Envoy's codec refuses (without allow_chunked_length), in either order
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\ncontent-length: 2\r\n\r\nok",
            // a coding other than chunked alone
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nok",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            // a 204 with a body's framing, which Envoy's client codec refuses (a length of 0 it takes off)
            "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\nhello",
            "HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            // a status code outside 100-999, which Envoy's HTTP/1 parser refuses (Netty reads any number)
            "HTTP/1.1 2000 OK\r\ncontent-length: 2\r\n\r\nok",
            "HTTP/1.1 1000 Nope\r\ncontent-length: 2\r\n\r\nok",
            "HTTP/1.1 99 Nope\r\ncontent-length: 2\r\n\r\nok",
            // whitespace in a header name, which Envoy's parser refuses (Netty reads the name up to it: "X")
            "HTTP/1.1 200 OK\r\nX Bad: 1\r\ncontent-length: 2\r\n\r\nok",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx\tbad: 1\r\n\r\nok",
            // more header lines than the cluster's max_headers_count (Envoy's default, 100, the one Inmesh takes)
            "HTTP/1.1 200 OK\r\n" + "x-h: 1\r\n".repeat(100) + "content-length: 2\r\n\r\nok",
            // the same, and a body's framing, in an interim answer the codec passes over: Envoy's codec checks every
            // head
            "HTTP/1.1 102 Processing\r\n" + "x-h: 1\r\n".repeat(101)
                + "\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            "HTTP/1.1 102 Processing\r\ncontent-length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            // a switch of protocols the request did not ask for: the connection is no HTTP/1 any more, and must not
            // go back to the pool
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\nraw bytes",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            // the connection closed in the middle of the headers: the end of input in the middle of a message
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n",
            // or in its status line (which Netty's decoder drops at the close without a word)
            "HTTP/1.1 20", "\r\nHTTP/1.1 200 OK"}) {
            double before = stat("upstream_cx_protocol_error");
            double charged = stat("upstream_rq_code", "response_code", "502");
            RouterRig.Result r = call(answer);
            String what = answer.substring(0, Math.min(60, answer.length()));
            // as Envoy's router answers an upstream protocol error (502, not the 503 of other resets), and counts it
            assertEquals(502, r.status(), what);
            assertEquals("UPE", r.flags(), what);
            assertEquals(before + 1, stat("upstream_cx_protocol_error"), what);
            assertEquals(charged + 1, stat("upstream_rq_code", "response_code", "502"), what);
            assertEquals("upstream connect error or disconnect/reset before headers. reset reason: protocol error",
                    r.body(), what);
            assertEquals("upstream_reset_before_response_started{protocol_error}", r.info().responseCodeDetails(),
                    what);
        }
        // a chunk size Netty's int would wrap (4 GiB + 5 read as 5), though in the read of the head: the head goes
        // on, as Envoy's codec passes it before it parses a chunk, then the response is cut
        for (String size : new String[] {"100000005", "80000000"}) {
            double before = stat("upstream_cx_protocol_error");
            RouterRig.Result r = call("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + size
                    + "\r\nhello\r\n0\r\n\r\n");
            assertEquals(200, r.status(), size);
            assertEquals("UPE", r.flags(), size);
            assertEquals("upstream_reset_after_response_started{protocol_error}", r.info().responseCodeDetails(),
                    size);
            assertEquals(before + 1, stat("upstream_cx_protocol_error"), size);
        }
        // a three-digit status past 599 is read, as Envoy's HTTP/1 parser reads it
        for (int status : new int[] {600, 999}) {
            RouterRig.Result r = call("HTTP/1.1 " + status + " Odd\r\ncontent-length: 2\r\n\r\nok");
            assertEquals(status, r.status());
            assertEquals("ok", r.body());
        }
        // chunked alone is read, whatever its case
        RouterRig.Result chunked = call("HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
        assertEquals(200, chunked.status());
        assertEquals("ok", chunked.body());
        // the largest chunk size Netty reads right, an obs-folded value and a name's case are taken (the size is
        // only announced: the connection closes in its data, after the head went on)
        RouterRig.Result big = call("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7fffffff\r\nok");
        assertEquals(200, big.status());
        RouterRig.Result hundred = call("HTTP/1.1 200 OK\r\n" + "x-h: 1\r\n".repeat(99)
                + "content-length: 2\r\n\r\nok");
        assertEquals(200, hundred.status(), "100 header lines are within the limit");
        RouterRig.Result folded = call("HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 2\r\n\r\nok");
        assertEquals(200, folded.status());
        assertEquals("ok", folded.body());
        // a 204 whose length is 0 is taken, the length taken off
        RouterRig.Result empty = call("HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
        assertEquals(204, empty.status());
        assertEquals("", empty.body());
        // closed before any answer: a connection termination
        double before = stat("upstream_cx_protocol_error");
        RouterRig.Result closed = call("");
        assertEquals(503, closed.status());
        assertEquals("UC", closed.flags());
        assertEquals(before, stat("upstream_cx_protocol_error"), "not a protocol error");
        assertEquals("upstream_reset_before_response_started{connection_termination}",
                closed.info().responseCodeDetails());
        // closed after a whole interim answer (100 Continue, 103 Early Hints), before the final one: the codec is
        // between messages, as before any answer, so a connection termination too
        for (String interim : new String[] {"HTTP/1.1 100 Continue\r\n\r\n",
            "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"}) {
            RouterRig.Result cut = call(interim);
            assertEquals(503, cut.status(), interim);
            assertEquals("UC", cut.flags(), interim);
            assertEquals(before, stat("upstream_cx_protocol_error"), interim);
        }
    }

    @Test
    void aBodyCutAfterItsHeadCountsAsACompletedRequestOfItsClassAsEnvoysConnectionManagerCountsItAtTheHeaders()
            throws Exception {
        var hcm = dev.inmesh.api.config.listener.HttpConnectionManager.of("outbound_0.0.0.0_9080", "9080",
                java.util.List.of(dev.inmesh.api.config.listener.HttpFilter.of("envoy.filters.http.router", "")));
        RouterRequest request = get("/").downstreamStats(metrics.connectionManager(hcm));
        // 1000 bytes of the 100000 the head promised, then the upstream closes the connection
        RouterRig.Result r = call("HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n" + "a".repeat(1000), request);
        assertEquals(200, r.status());
        assertEquals("UPE", r.flags());
        assertEquals("upstream_reset_after_response_started{protocol_error}", r.info().responseCodeDetails());
        java.util.function.ToDoubleFunction<String> downstream = name -> registry.get("envoy_http_" + name)
                .tag("http_conn_manager_prefix", "outbound_0.0.0.0_9080").gauge().value();
        // Envoy's chargeStats counts the class and downstream_rq_completed together as the headers go out: completed
        // is the sum of the classes, the response cut after them (downstream_rq_tx_reset) or not
        assertEquals(1, downstream.applyAsDouble("downstream_rq_completed"));
        assertEquals(1, registry.get("envoy_http_downstream_rq_xx").tag("response_code_class", "2xx").gauge().value());
        assertEquals(1, downstream.applyAsDouble("downstream_rq_tx_reset"));
        // timed only once the response ended, as Envoy's request_response_timespan_ is
        assertEquals(0, registry.get("envoy_http_downstream_rq_time").summary().count());
    }
}
