package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.hosts;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.RawHttp1Upstream;
import java.time.Duration;
import java.util.List;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The case of the header names an HTTP/1.1 upstream gets: lower case, as Envoy's header map holds every name and its
 * HTTP/1 codec writes them (the caller's, in whatever case it sent them, and those of the route's header rules), in
 * the order they came; the case they came with under a connection manager whose stateful formatter keeps it (Istio's
 * {@code preserveHttp1HeaderCase}); and as they are for a request relayed as bytes (a {@code tcp_proxy} chain).
 */
@Timeout(30)
class RouterHeaderCaseTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    /** The head the upstream got for a request with mixed-case header names, after {@code prepare}. */
    private List<String> sentHead(Consumer<RouterRequest> prepare) throws Exception {
        try (RawHttp1Upstream server = new RawHttp1Upstream("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")) {
            ClusterManager clusters = rig.clusters(Cluster.builder("c", DiscoveryType.STATIC)
                    .connectTimeout(Duration.ofSeconds(2)).loadAssignment(hosts("c", server.port())).build());
            RouterRequest req = get("/", "User-Agent", "curl/8", "X-Mixed-Case", "a", "x-lower", "b",
                    "X-Mixed-Case", "c");
            prepare.accept(req);
            RouterRig.Result r = rig.call(rig.router(), req, routeToC("", "",
                    "request_headers_to_add: [{header: {key: X-From-Rule, value: r}}]"), clusters);
            assertEquals(200, r.status());
            String got = server.request(0);
            return List.of(got.substring(0, got.indexOf("\r\n\r\n")).split("\r\n"));
        }
    }

    @Test
    void headerNamesGoUpstreamInLowerCaseInTheOrderTheyCame() throws Exception {
        List<String> head = sentHead(req -> { });
        List<String> names = head.stream().skip(1).map(h -> h.substring(0, h.indexOf(':'))).toList();
        assertTrue(names.stream().noneMatch(n -> !n.equals(n.toLowerCase(java.util.Locale.ROOT))), head.toString());
        assertTrue(head.containsAll(List.of("user-agent: curl/8", "x-lower: b", "x-from-rule: r")), head.toString());
        // both values of the repeated name, in their order, after the one before them
        assertEquals(List.of("user-agent: curl/8", "x-mixed-case: a", "x-lower: b", "x-mixed-case: c"),
                head.stream().filter(h -> h.startsWith("user-agent") || h.startsWith("x-mixed") || h.startsWith("x-l"))
                        .toList());
    }

    /**
     * As Envoy's preserve-case formatter: the names the request came with keep their first spelling (a later line of
     * the same name in another case takes it too); the names it did not come with, a header rule's, go in lower case.
     */
    @Test
    void aStatefulFormatterKeepsTheCaseTheyCameWith() throws Exception {
        List<String> head = sentHead(req -> {
            req.headers.add("x-MIXED-case", "d");
            req.headers.add("X-LOWER", "e"); // first spelled in lower case: so it stays
            req.preserveHeaderCase(true);
        });
        assertTrue(head.containsAll(List.of("User-Agent: curl/8", "X-Mixed-Case: a", "X-Mixed-Case: c",
                "X-Mixed-Case: d", "x-lower: b", "x-lower: e", "x-from-rule: r")), head.toString());
    }

    @Test
    void aRequestRelayedAsBytesKeepsThemAsTheyAre() throws Exception {
        List<String> head = sentHead(req -> req.opaque(true));
        assertTrue(head.containsAll(List.of("User-Agent: curl/8", "X-Mixed-Case: a")), head.toString());
    }
}
