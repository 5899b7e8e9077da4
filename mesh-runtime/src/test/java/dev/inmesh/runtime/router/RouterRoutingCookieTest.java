package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.lb.Xxhash;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpMethod;
import java.util.HashSet;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Istio's sticky sessions ({@code consistentHash.httpCookie} in a DestinationRule): a cookie hash policy with a
 * {@code ttl} whose cookie the request lacks makes one up, hashes it, and hands it to the client on the upstream's
 * response, as Envoy's router does.
 */
class RouterRoutingCookieTest {
    private static final Pattern COOKIE = Pattern.compile("session=\"([0-9a-f]{16})\"(.*)");

    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private static RouterRequest from(String remote, String... headerPairs) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i + 1 < headerPairs.length; i += 2) {
            h.add(headerPairs[i], headerPairs[i + 1]);
        }
        return new RouterRequest(StreamInfo.Direction.OUTBOUND, HttpMethod.GET, "/cart", "svc.local", "http", h,
                null, remote, "127.0.0.1:15001", null, "HTTP/1.1");
    }

    private WireMockServer answering(String name) {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok(name)));
        return wm;
    }

    @Test
    void aRequestWithoutTheCookieGetsOneMadeFromItsConnectionsAddressesWithEnvoysAttributes() {
        WireMockServer wm = answering("a");
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.RING_HASH, null, null, wm.port()));
        RouteTable table = routeToC("hash_policy: [{cookie: {name: session, ttl: 3600s, path: /cart,"
                + " attributes: [{name: SameSite, value: Strict}, {name: Secure}]}}]");

        RouterRig.Result r = rig.call(rig.router(), from("127.0.0.1:50000"), table, clusters);

        assertEquals(200, r.status());
        String expected = String.format("%016x", Xxhash.hash64("127.0.0.1:50000" + "127.0.0.1:15001"));
        assertEquals("session=\"" + expected + "\"; Max-Age=3600; Path=/cart; SameSite=Strict; Secure; HttpOnly",
                r.header("set-cookie"));
    }

    @Test
    void aZeroTtlMakesASessionCookieAndARequestCarryingTheCookieGetsNone() {
        WireMockServer wm = answering("a");
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.MAGLEV, null, null, wm.port()));
        RouteTable table = routeToC("hash_policy: [{cookie: {name: session, ttl: 0s}}]");

        RouterRig.Result fresh = rig.call(rig.router(), from("127.0.0.1:50001"), table, clusters);
        Matcher m = COOKIE.matcher(fresh.header("set-cookie"));
        assertTrue(m.matches(), fresh.header("set-cookie"));
        assertEquals("; HttpOnly", m.group(2), "no Max-Age and no Path: a session cookie for every path");

        RouterRig.Result back = rig.call(rig.router(), from("127.0.0.1:50001", "cookie", "session=" + m.group(1)),
                table, clusters);
        assertNull(back.header("set-cookie"));
    }

    @Test
    void noCookieIsMadeWithoutATtlOrForAClusterThatDoesNotBalanceByHash() {
        WireMockServer wm = answering("a");
        RouteTable withTtl = routeToC("hash_policy: [{cookie: {name: session, ttl: 60s}}]");
        ClusterManager roundRobin = rig.clusters(cluster("c", LbPolicy.ROUND_ROBIN, null, null, wm.port()));
        assertNull(rig.call(rig.router(), from("127.0.0.1:50002"), withTtl, roundRobin).header("set-cookie"));

        ClusterManager ring = rig.clusters(cluster("c", LbPolicy.RING_HASH, null, null, wm.port()));
        RouteTable withoutTtl = routeToC("hash_policy: [{cookie: {name: session}}]");
        assertNull(rig.call(rig.router(), from("127.0.0.1:50002"), withoutTtl, ring).header("set-cookie"));
    }

    @Test
    void theMadeUpCookieChoseTheHostThatTheClientIsThenStuckTo() {
        WireMockServer a = answering("a");
        WireMockServer b = answering("b");
        WireMockServer c = answering("c");
        ClusterManager clusters = rig.clusters(cluster("c", LbPolicy.RING_HASH, null, null, a.port(), b.port(),
                c.port()));
        RouteTable table = routeToC("hash_policy: [{cookie: {name: session, ttl: 60s}}]");
        Set<String> hostsSeen = new HashSet<>();
        for (int port = 40000; port < 40012; port++) {
            RouterRig.Result first = rig.call(rig.router(), from("127.0.0.1:" + port), table, clusters);
            Matcher m = COOKIE.matcher(first.header("set-cookie"));
            assertTrue(m.matches(), first.header("set-cookie"));
            hostsSeen.add(first.body());
            for (int i = 0; i < 3; i++) {
                // later requests come on other connections, with the cookie
                RouterRig.Result later = rig.call(rig.router(),
                        from("127.0.0.1:" + (port + 1000 + i), "cookie", "other=1; session=\"" + m.group(1) + "\""),
                        table, clusters);
                assertEquals(first.body(), later.body(), "the cookie " + m.group(1) + " keeps its host");
                assertNull(later.header("set-cookie"));
            }
        }
        assertTrue(hostsSeen.size() > 1, "clients on different connections spread over the hosts: " + hostsSeen);
    }
}
