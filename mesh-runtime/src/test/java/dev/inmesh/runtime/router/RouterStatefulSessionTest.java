package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.serviceUnavailable;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonLbConfig;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.route.StatefulSession;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.xds.IstioPersistentSession;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Istio's persistent sessions through the router: the empty stateful session filter istiod puts in the outbound
 * connection manager, the cookie or header session state of the Service's virtual host, and a round-robin cluster of
 * three WireMock hosts on loopback. A request without a session gets the load balancer's host and the cookie (or
 * header) that names it, in Envoy's format; a request carrying it goes to that host while the cluster has it in a
 * health it admits, else to the load balancer's pick (or, strict, to none).
 */
class RouterStatefulSessionTest {
    private static final Pattern SET_COOKIE = Pattern.compile("sugar=\"([A-Za-z0-9+/=]+)\"; Path=/; HttpOnly");

    private final RouterRig rig = new RouterRig();
    private final List<WireMockServer> hosts = new ArrayList<>();

    @AfterEach
    void close() {
        rig.close();
    }

    /** Three hosts, each answering its own name ("h0", "h1", "h2"). */
    private int[] threeHosts() {
        int[] ports = new int[3];
        for (int i = 0; i < 3; i++) {
            WireMockServer wm = rig.wiremock();
            wm.stubFor(any(anyUrl()).willReturn(ok("h" + i)));
            hosts.add(wm);
            ports[i] = wm.port();
        }
        return ports;
    }

    private static Cluster cluster(CommonLbConfig lb, LbEndpoint... endpoints) {
        ClusterLoadAssignment cla = new ClusterLoadAssignment("c", List.of(new LocalityLbEndpoints(Locality.EMPTY,
                List.of(endpoints), 1, 0)), ClusterLoadAssignment.DEFAULT_OVERPROVISIONING_FACTOR);
        return Cluster.builder("c", DiscoveryType.STATIC).lbPolicy(LbPolicy.ROUND_ROBIN)
                .connectTimeout(Duration.ofSeconds(2)).commonLbConfig(lb).loadAssignment(cla).build();
    }

    private static LbEndpoint endpoint(int port, HealthStatus health) {
        return new LbEndpoint(new SocketAddress("127.0.0.1", port), "", health, 1, Metadata.EMPTY);
    }

    private ClusterManager roundRobin(int... ports) {
        LbEndpoint[] eps = new LbEndpoint[ports.length];
        for (int i = 0; i < ports.length; i++) {
            eps[i] = LbEndpoint.of("127.0.0.1", ports[i]);
        }
        return rig.clusters(cluster(null, eps));
    }

    /** istiod's outbound route table: the Service's virtual host with its session config, one route to "c". */
    private static RouteTable table(String virtualHostConfig, String routeFields) {
        return RouterRig.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n"
                + virtualHostConfig.stripTrailing().indent(2) + "  routes:\n  - match: {prefix: /}\n"
                + "    route: {cluster: c, retry_policy: {retry_on: 5xx, num_retries: 2}}\n"
                + routeFields.stripTrailing().indent(4));
    }

    private static RouteTable cookieTable() {
        return table(IstioPersistentSession.cookieVirtualHostConfig("sugar", "/"), "");
    }

    private static RouterRequest request(HttpConnectionManager hcm, String... headers) {
        return RouterRig.get("/cart?item=1", headers).statefulSession(hcm);
    }

    /** What Envoy's cookie session state writes for {@code address} with no ttl: base64 of {@code Cookie{address}}. */
    private static String cookieFor(String address) {
        byte[] a = address.getBytes(StandardCharsets.US_ASCII);
        byte[] proto = new byte[a.length + 2];
        proto[0] = 0x0a; // field 1, length-delimited
        proto[1] = (byte) a.length;
        System.arraycopy(a, 0, proto, 2, a.length);
        return Base64.getEncoder().encodeToString(proto);
    }

    /**
     * The hosts that answer three requests carrying {@code cookie} (none set in return: the filter does nothing for
     * them, or nothing new).
     */
    private Set<String> hostsAnswering(RouteTable table, ClusterManager clusters, String cookie) {
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 3; i++) {
            RouterRig.Result r = rig.call(rig.router(), request(IstioPersistentSession.hcm(), "cookie", cookie),
                    table, clusters);
            seen.add(r.body());
            assertNull(r.header("set-cookie"));
        }
        return seen;
    }

    private static String cookieValue(RouterRig.Result r) {
        String setCookie = r.header("set-cookie");
        assertTrue(setCookie != null, "a Set-Cookie naming the host");
        Matcher m = SET_COOKIE.matcher(setCookie);
        assertTrue(m.matches(), setCookie);
        return m.group(1);
    }

    @Test
    void aFirstRequestGetsEnvoysCookieNamingItsHostAndLaterRequestsWithItStayOnThatHost() {
        int[] ports = threeHosts();
        ClusterManager clusters = roundRobin(ports);
        RouteTable table = cookieTable();
        HttpConnectionManager hcm = IstioPersistentSession.hcm();

        RouterRig.Result first = rig.call(rig.router(), request(hcm), table, clusters);
        assertEquals(200, first.status());
        int port = ports[Integer.parseInt(first.body().substring(1))];
        assertEquals(cookieFor("127.0.0.1:" + port), cookieValue(first),
                "base64 of the protobuf Cookie message with the host's ip:port, as Envoy writes it");

        for (int i = 0; i < 6; i++) {
            // round robin alone would move on to the other two hosts
            RouterRig.Result later = rig.call(rig.router(), request(hcm, "cookie",
                    "other=1; sugar=\"" + cookieValue(first) + "\""), table, clusters);
            assertEquals(first.body(), later.body(), "the session stays on its host");
            assertNull(later.header("set-cookie"), "the request named the host that answered: no new cookie");
        }
    }

    @Test
    void withoutTheFiltersSessionStateNothingSticksAndNoCookieIsSet() {
        int[] ports = threeHosts();
        ClusterManager clusters = roundRobin(ports);
        Set<String> seen = hostsAnswering(table("", ""), clusters, "sugar=" + cookieFor("127.0.0.1:" + ports[0]));
        assertEquals(3, seen.size(), "Istio's empty filter alone changes nothing: " + seen);
    }

    @Test
    void aCookieInEnvoysOlderPlainFormatIsFollowedToo() {
        int[] ports = threeHosts();
        ClusterManager clusters = roundRobin(ports);
        String plain = Base64.getEncoder().encodeToString(("127.0.0.1:" + ports[2]).getBytes(StandardCharsets.US_ASCII));
        for (int i = 0; i < 3; i++) {
            RouterRig.Result r = rig.call(rig.router(), request(IstioPersistentSession.hcm(), "cookie",
                    "sugar=" + plain), cookieTable(), clusters);
            assertEquals("h2", r.body());
            // as Envoy: the request named the host that answered (in whichever format), so no cookie is set
            assertNull(r.header("set-cookie"));
        }
    }

    @Test
    void aCookieNamingAHostTheClusterDoesNotHaveFallsBackToTheLoadBalancerAndGetsANewCookie() {
        int[] ports = threeHosts();
        ClusterManager clusters = roundRobin(ports);
        String gone = cookieFor("127.0.0.1:" + RouterRig.closedPort());
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 3; i++) {
            RouterRig.Result r = rig.call(rig.router(), request(IstioPersistentSession.hcm(), "cookie",
                    "sugar=" + gone), cookieTable(), clusters);
            assertEquals(200, r.status());
            seen.add(r.body());
            int port = ports[Integer.parseInt(r.body().substring(1))];
            assertEquals(cookieFor("127.0.0.1:" + port), cookieValue(r), "the new cookie names the picked host");
        }
        assertEquals(3, seen.size(), "the load balancer picked: " + seen);
    }

    @Test
    void anUnhealthyHostIsNotFollowedButADrainingOneIsWhenTheClusterAdmitsDrainingAsIstioWritesIt() {
        int[] ports = threeHosts();
        RouteTable table = cookieTable();
        ClusterManager defaults = rig.clusters(cluster(null, endpoint(ports[0], HealthStatus.UNHEALTHY),
                endpoint(ports[1], HealthStatus.HEALTHY), endpoint(ports[2], HealthStatus.DRAINING)));
        RouterRig.Result unhealthy = rig.call(rig.router(), request(IstioPersistentSession.hcm(), "cookie",
                "sugar=" + cookieFor("127.0.0.1:" + ports[0])), table, defaults);
        assertEquals("h1", unhealthy.body());
        assertEquals(cookieFor("127.0.0.1:" + ports[1]), cookieValue(unhealthy));
        RouterRig.Result drainingByDefault = rig.call(rig.router(), request(IstioPersistentSession.hcm(), "cookie",
                "sugar=" + cookieFor("127.0.0.1:" + ports[2])), table, defaults);
        assertEquals("h1", drainingByDefault.body(), "Envoy's default override_host_status has no DRAINING");

        CommonLbConfig istio = CommonLbConfig.DEFAULTS.withOverrideHostStatus(Set.of(HealthStatus.HEALTHY,
                HealthStatus.DRAINING, HealthStatus.UNKNOWN, HealthStatus.DEGRADED));
        ClusterManager persistent = rig.clusters(cluster(istio, endpoint(ports[0], HealthStatus.UNHEALTHY),
                endpoint(ports[1], HealthStatus.HEALTHY), endpoint(ports[2], HealthStatus.DRAINING)));
        for (int i = 0; i < 3; i++) {
            RouterRig.Result r = rig.call(rig.router(), request(IstioPersistentSession.hcm(), "cookie",
                    "sugar=" + cookieFor("127.0.0.1:" + ports[2])), table, persistent);
            assertEquals("h2", r.body(), "the session stays on its draining pod");
            assertNull(r.header("set-cookie"));
            RouterRig.Result fresh = rig.call(rig.router(), request(IstioPersistentSession.hcm()), table, persistent);
            assertEquals("h1", fresh.body(), "new sessions never start on the draining or unhealthy host");
        }
    }

    @Test
    void aStrictSessionWhoseHostIsGoneGets503WithNoHealthyUpstreamAndNoCookie() {
        int[] ports = threeHosts();
        ClusterManager clusters = roundRobin(ports);
        HttpConnectionManager strict = IstioPersistentSession.hcm(IstioPersistentSession.filter("strict: true\n"
                + IstioPersistentSession.cookieState("{name: sugar, path: /}")));
        RouteTable filtersOwn = table("", "");
        RouterRig.Result gone = rig.call(rig.router(), request(strict, "cookie",
                "sugar=" + cookieFor("127.0.0.1:" + RouterRig.closedPort())), filtersOwn, clusters);
        assertEquals(503, gone.status());
        assertEquals("UH", gone.flags());
        assertNull(gone.header("set-cookie"));
        for (WireMockServer h : hosts) {
            assertEquals(0, h.countRequestsMatching(anyRequestedFor(anyUrl()).build()).getCount());
        }

        RouterRig.Result there = rig.call(rig.router(), request(strict, "cookie",
                "sugar=" + cookieFor("127.0.0.1:" + ports[1])), filtersOwn, clusters);
        assertEquals("h1", there.body());
        RouterRig.Result none = rig.call(rig.router(), request(strict), filtersOwn, clusters);
        assertEquals(200, none.status(), "strict only refuses a named host it cannot reach");
        assertTrue(none.header("set-cookie").startsWith("sugar=\""), none.header("set-cookie"));
    }

    @Test
    void theHeaderSessionNamesTheHostInItsHeaderAndRequestsCarryingItStick() {
        int[] ports = threeHosts();
        ClusterManager clusters = roundRobin(ports);
        RouteTable table = table(IstioPersistentSession.headerVirtualHostConfig("x-session"), "");
        RouterRig.Result first = rig.call(rig.router(), request(IstioPersistentSession.hcm()), table, clusters);
        int port = ports[Integer.parseInt(first.body().substring(1))];
        String value = first.header("x-session");
        assertEquals(Base64.getEncoder().encodeToString(("127.0.0.1:" + port).getBytes(StandardCharsets.US_ASCII)),
                value, "base64 of ip:port, as Envoy's header session state writes it");
        assertNull(first.header("set-cookie"));
        for (int i = 0; i < 4; i++) {
            RouterRig.Result later = rig.call(rig.router(), request(IstioPersistentSession.hcm(), "X-Session", value),
                    table, clusters);
            assertEquals(first.body(), later.body());
            assertNull(later.header("x-session"), "the request named the host that answered");
        }
    }

    @Test
    void aRouteThatDisablesTheFilterNeitherFollowsNorSetsTheCookie() {
        int[] ports = threeHosts();
        ClusterManager clusters = roundRobin(ports);
        RouteTable table = table(IstioPersistentSession.cookieVirtualHostConfig("sugar", "/"),
                IstioPersistentSession.DISABLED_ROUTE_CONFIG);
        Set<String> seen = hostsAnswering(table, clusters, "sugar=" + cookieFor("127.0.0.1:" + ports[0]));
        assertEquals(3, seen.size(), "round robin, the cookie ignored: " + seen);
    }

    @Test
    void aCookiePathThatDoesNotCoverTheRequestLeavesItToTheLoadBalancer() {
        int[] ports = threeHosts();
        ClusterManager clusters = roundRobin(ports);
        RouteTable table = table(IstioPersistentSession.cookieVirtualHostConfig("sugar", "/api"), "");
        RouterRig.Result r = rig.call(rig.router(), request(IstioPersistentSession.hcm(), "cookie",
                "sugar=" + cookieFor("127.0.0.1:" + ports[0])), table, clusters);
        assertNull(r.header("set-cookie"), "/cart is not under /api");
        RouterRig.Result api = rig.call(rig.router(), RouterRig.get("/api/items")
                .statefulSession(IstioPersistentSession.hcm()), table, clusters);
        assertTrue(api.header("set-cookie").endsWith("; Path=/api; HttpOnly"), api.header("set-cookie"));
    }

    @Test
    void retriesOfASessionStayOnItsHostAsEnvoysClusterPicksTheNamedHostOnEveryAttempt() {
        int[] ports = threeHosts();
        hosts.get(1).resetAll();
        hosts.get(1).stubFor(any(anyUrl()).willReturn(serviceUnavailable()));
        ClusterManager clusters = roundRobin(ports);
        RouterRig.Result r = rig.call(rig.router(), request(IstioPersistentSession.hcm(), "cookie",
                "sugar=" + cookieFor("127.0.0.1:" + ports[1])), cookieTable(), clusters);
        assertEquals(503, r.status());
        assertEquals(3, hosts.get(1).countRequestsMatching(anyRequestedFor(anyUrl()).build()).getCount(),
                "the first attempt and both retries");
        assertEquals(0, hosts.get(0).countRequestsMatching(anyRequestedFor(anyUrl()).build()).getCount());
        assertEquals(0, hosts.get(2).countRequestsMatching(anyRequestedFor(anyUrl()).build()).getCount());
        assertNull(r.header("set-cookie"), "the host that answered is the one the cookie named");
    }

    @Test
    void aCookieWithATtlCarriesMaxAgeAndAnExpiryThatIsHonoured() {
        StatefulSession.Cookie c = new StatefulSession.Cookie("s", "/", Duration.ofSeconds(120));
        assertEquals("s=\"v\"; Max-Age=120; Path=/; HttpOnly", StatefulSessionFilter.setCookie(c, "v"));
        String value = StatefulSessionFilter.cookieValue("10.0.0.1:8080", 1_000);
        assertEquals("10.0.0.1:8080", StatefulSessionFilter.cookieAddress(value, 1_000));
        assertNull(StatefulSessionFilter.cookieAddress(value, 1_001), "expired: the load balancer picks again");
        assertNotEquals(value, StatefulSessionFilter.cookieValue("10.0.0.1:8080", 0));
        assertNull(StatefulSessionFilter.cookieAddress("not base64!", 0));
    }
}
