package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.OriginalIpDetection;
import dev.inmesh.api.config.listener.RemoteAddressOptions;
import dev.inmesh.api.config.rbac.Permission;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.runtime.net.LocalAddress;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpMethod;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's connection manager with {@code use_remote_address: true} (Istio's gateways, an edge proxy), as the router's
 * requests (the standalone proxy's, the in-JVM client's) see it: the downstream address is the connection's peer, or
 * the entry {@code xff_num_trusted_hops} from the right of {@code x-forwarded-for}; the peer is appended to the header;
 * {@code x-forwarded-proto} is the connection's; an external request gets {@code x-envoy-external-address} and loses
 * the {@code x-envoy-*} headers an edge cleans; and {@code append_x_forwarded_port}, with either setting.
 */
class RouterRemoteAddressTest {
    private final RouterRig rig = new RouterRig();
    private final WireMockServer wm = rig.wiremock();

    @AfterEach
    void close() {
        rig.close();
    }

    private static HttpConnectionManager hcm(boolean useRemoteAddress, int hops, List<CidrRange> internal,
                                             RemoteAddressOptions options, HttpFilter... filters) {
        List<HttpFilter> all = new ArrayList<>(List.of(filters));
        all.add(HttpFilter.of("envoy.filters.http.router", ""));
        return new HttpConnectionManager("ingress", "r", null, all, null, useRemoteAddress, hops, true, false, null,
                0, null, null, 0, false, null, null, null, null, null, false, null, false, internal, null, null,
                options, null, null);
    }

    private static HttpConnectionManager edge(int hops) {
        return hcm(true, hops, List.of(), null);
    }

    /** A request from {@code peer} (a PROXY header's source, say) that came in at 127.0.0.1:8443 over TLS. */
    private static RouterRequest from(String peer, HttpConnectionManager hcm, String... headerPairs) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i < headerPairs.length; i += 2) {
            h.add(headerPairs[i], headerPairs[i + 1]);
        }
        return new RouterRequest(StreamInfo.Direction.INBOUND, HttpMethod.GET, "/x", "svc.local", "https", h, null,
                peer, "127.0.0.1:8443", null, "HTTP/1.1").internal(hcm);
    }

    private LoggedRequest sent(RouterRequest req) {
        wm.resetRequests();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        rig.call(rig.router(), req, routeToC(""), rig.clusters(cluster("c", wm.port())));
        return wm.getAllServeEvents().get(0).getRequest();
    }

    private RouterRig.Result call(RouterRequest req) {
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        return rig.call(rig.router(), req, routeToC(""), rig.clusters(cluster("c", wm.port())));
    }

    private static String header(LoggedRequest r, String name) {
        return r.containsHeader(name) ? r.getHeader(name) : null;
    }

    @Test
    void anEdgeRequestIsFromItsPeerWhichIsAppendedAndNamedTheExternalAddress() {
        RouterRequest req = from("203.0.113.5:40000", edge(0), "x-forwarded-for", "198.51.100.1",
                "x-forwarded-proto", "http", "x-request-id", "caller-chosen", "x-envoy-decorator-operation", "op",
                "x-envoy-downstream-service-cluster", "them", "x-envoy-retry-on", "5xx",
                "x-envoy-external-address", "192.0.2.1");
        assertEquals("203.0.113.5:40000", req.remoteAddress, "the peer, XFF ignored");
        LoggedRequest up = sent(req);
        assertEquals("198.51.100.1,203.0.113.5", header(up, "x-forwarded-for"));
        assertEquals("https", header(up, "x-forwarded-proto"), "the connection's, the caller's overwritten");
        assertEquals("203.0.113.5", header(up, "x-envoy-external-address"));
        assertNotEquals("caller-chosen", header(up, "x-request-id"), "an edge request gets a fresh id");
        assertNull(header(up, "x-envoy-decorator-operation"));
        assertNull(header(up, "x-envoy-downstream-service-cluster"));
        assertNull(header(up, "x-envoy-retry-on"));
        assertNull(header(up, "x-envoy-internal"));

        var r = call(from("203.0.113.5:40000", edge(0), "x-forwarded-for", "198.51.100.1"));
        assertEquals("203.0.113.5:40000", r.info().downstreamRemoteAddress(), "what the access log prints");
    }

    @Test
    void preserveExternalRequestIdKeepsTheCallersId() {
        HttpConnectionManager keep = new HttpConnectionManager("ingress", "r", null,
                List.of(HttpFilter.of("envoy.filters.http.router", "")), null, true, 0, true, true, null, 0, null,
                null, 0, false, null, null, null, null, null, false, null, false, List.of(), null, null, null, null, null);
        assertEquals("caller-chosen", header(sent(from("203.0.113.5:40000", keep, "x-request-id", "caller-chosen")),
                "x-request-id"));
    }

    @Test
    void trustedHopsNameTheAddressThatManyEntriesFromTheRightElseThePeer() {
        String xff = "198.51.100.1, 192.0.2.9";
        assertEquals("192.0.2.9:0", from("203.0.113.5:40000", edge(1), "x-forwarded-for", xff).remoteAddress);
        assertEquals("198.51.100.1:0", from("203.0.113.5:40000", edge(2), "x-forwarded-for", xff).remoteAddress);
        assertEquals("203.0.113.5:40000", from("203.0.113.5:40000", edge(3), "x-forwarded-for", xff).remoteAddress,
                "too few entries: the peer, as Envoy falls back");
        LoggedRequest up = sent(from("203.0.113.5:40000", edge(1), "x-forwarded-for", xff, "x-forwarded-proto",
                "http"));
        assertEquals("198.51.100.1, 192.0.2.9,203.0.113.5", header(up, "x-forwarded-for"));
        assertEquals("192.0.2.9", header(up, "x-envoy-external-address"));
        assertEquals("http", header(up, "x-forwarded-proto"), "a trusted hop's x-forwarded-proto is kept");
    }

    @Test
    void aRequestWithoutForwardedForFromAnInternalPeerIsInternal() {
        HttpConnectionManager m = hcm(true, 0, List.of(new CidrRange("10.0.0.0", 8)), null);
        RouterRequest inside = from("10.1.2.3:5000", m, "x-envoy-force-trace", "1");
        assertEquals(true, inside.internal);
        LoggedRequest up = sent(inside);
        assertEquals("true", header(up, "x-envoy-internal"));
        assertEquals("1", header(up, "x-envoy-force-trace"), "an internal request's control headers stay");
        assertNull(header(up, "x-envoy-external-address"));
        assertEquals("10.1.2.3", header(up, "x-forwarded-for"));
        // Envoy: an x-forwarded-for that came with the request makes it external, whatever the peer
        assertFalse(from("10.1.2.3:5000", m, "x-forwarded-for", "10.9.9.9").internal);
        assertFalse(from("192.168.1.1:5000", m).internal);
    }

    @Test
    void skipXffAppendLeavesTheHeaderAsItCame() {
        HttpConnectionManager m = hcm(true, 0, List.of(), new RemoteAddressOptions(true, false, false));
        assertEquals("198.51.100.1", header(sent(from("203.0.113.5:40000", m, "x-forwarded-for", "198.51.100.1")),
                "x-forwarded-for"));
        LoggedRequest none = sent(from("203.0.113.5:40000", m));
        assertNull(header(none, "x-forwarded-for"));
        assertEquals("203.0.113.5", header(none, "x-envoy-external-address"), "the address is found all the same");
    }

    @Test
    void aLoopbackPeerIsAppendedAsThisHostsAddress() {
        assertEquals(LocalAddress.get(), header(sent(from("127.0.0.1:40000", edge(0))), "x-forwarded-for"));
    }

    @Test
    void appendXForwardedPortSetsTheLocalPortWhenAbsentAndAtAnEdgeOverTheCallers() {
        RemoteAddressOptions port = new RemoteAddressOptions(false, true, false);
        assertEquals("8443", header(sent(from("203.0.113.5:40000", hcm(false, 0, List.of(), port))),
                "x-forwarded-port"));
        assertEquals("80", header(sent(from("203.0.113.5:40000", hcm(false, 0, List.of(), port),
                "x-forwarded-port", "80")), "x-forwarded-port"), "a sidecar keeps the caller's");
        assertEquals("8443", header(sent(from("203.0.113.5:40000", hcm(true, 0, List.of(), port),
                "x-forwarded-port", "80")), "x-forwarded-port"), "an edge without trusted hops overwrites it");
        assertNull(header(sent(from("203.0.113.5:40000", edge(0))), "x-forwarded-port"), "off by default");
    }

    @Test
    void rbacRemoteIpReadsTheAddressTheConnectionManagerFound() {
        // allow remote_ip 203.0.113.0/24: the edge's peer, not the caller's x-forwarded-for
        Rbac allow = new Rbac(new Rbac.Rules(Rbac.Action.ALLOW, Map.of("edge", new Rbac.Policy(List.of(
                new Permission.Any()), List.of(new Principal.RemoteAddress(Principal.AddressKind.REMOTE_IP,
                new CidrRange("203.0.113.0", 24)))))), "", null, "");
        HttpConnectionManager m = hcm(true, 0, List.of(), null, HttpFilter.of("envoy.filters.http.rbac",
                "envoy.extensions.filters.http.rbac.v3.RBAC").withRbac(allow));
        RbacFilter.Chain chain = RbacFilter.Chain.compile(m);
        assertEquals(200, call(from("203.0.113.5:40000", m, "x-forwarded-for", "10.9.9.9").rbac(chain, null))
                .status());
        assertEquals(403, call(from("198.51.100.7:40000", m, "x-forwarded-for", "203.0.113.5").rbac(chain, null))
                .status());
    }

    /**
     * As Envoy's: when the address the connection manager found is a Unix socket's (a pipe: the peer, at an edge or
     * when {@code x-forwarded-for} has too few entries past the trusted hops), {@code remote_ip} is in no range, nor is
     * the caller's {@code x-forwarded-for} read in its place; the rate limit's {@code remote_address} has no entry.
     */
    @Test
    void rbacRemoteIpOfAUnixSocketPeerIsInNoRangeWhateverTheForwardedFor() {
        Rbac allow = new Rbac(new Rbac.Rules(Rbac.Action.ALLOW, Map.of("edge", new Rbac.Policy(List.of(
                new Permission.Any()), List.of(new Principal.RemoteAddress(Principal.AddressKind.REMOTE_IP,
                new CidrRange("0.0.0.0", 0)))))), "", null, "");
        for (HttpConnectionManager m : List.of(edge(0), hcm(false, 1, List.of(), null))) {
            HttpConnectionManager rbac = hcm(m.useRemoteAddress(), m.xffNumTrustedHops(), List.of(), null,
                    HttpFilter.of("envoy.filters.http.rbac", "envoy.extensions.filters.http.rbac.v3.RBAC")
                            .withRbac(allow));
            RbacFilter.Chain chain = RbacFilter.Chain.compile(rbac);
            RouterRequest req = from("unix:/run/app.sock", rbac, "x-forwarded-for", "203.0.113.5");
            assertEquals("unix:/run/app.sock", req.remoteAddress);
            assertEquals(403, call(req.rbac(chain, null)).status(), "use_remote_address " + m.useRemoteAddress());
            assertNull(new RbacFilter.Subject(req, "127.0.0.1", 8443, null, null, null).remoteIp());
        }
    }

    @Test
    void anIpv4MappedForwardedAddressStaysIpv6AsEnvoyParsesIt() {
        assertEquals("[::ffff:192.0.2.7]:0", from("127.0.0.1:40000", hcm(false, 0, List.of(), null),
                "x-forwarded-for", "10.0.0.1, ::ffff:192.0.2.7").remoteAddress);
        assertEquals("127.0.0.1:40000", from("127.0.0.1:40000", hcm(false, 0, List.of(), null),
                "x-forwarded-for", "[2001:db8::7]").remoteAddress, "brackets are no address to Envoy");
    }

    @Test
    void withoutRemoteAddressTrustedHopsSkipThatManyMoreEntries() {
        HttpConnectionManager m = hcm(false, 1, List.of(new CidrRange("0.0.0.0", 0)), null);
        RouterRequest req = from("127.0.0.1:40000", m, "x-forwarded-for", "192.0.2.1, 10.0.0.2");
        assertEquals("192.0.2.1:0", req.remoteAddress);
        assertFalse(req.internal, "never a single address past trusted hops");
        assertEquals("127.0.0.1:40000", from("127.0.0.1:40000", m, "x-forwarded-for", "10.0.0.2").remoteAddress);
    }

    private static final String CLIENT_XFF = "203.0.113.128, 203.0.113.10, 203.0.113.1";
    private static final String EDGE_XFF = CLIENT_XFF + ", 192.0.2.5";

    /**
     * Envoy's worked x-forwarded-for examples (headers.rst, examples 1 to 6), as its code does them: the address
     * appended with "," (appendXff), x-envoy-internal never left from the caller, example 5 external (no address in
     * x-forwarded-for to trust, as the current docs say), example 6 internal through internal_address_config.
     */
    @Test
    void envoysWorkedForwardedForExamples() {
        // 1: an edge proxy, no trusted proxy in front
        RouterRequest one = from("192.0.2.5:40000", edge(0), "x-forwarded-for", CLIENT_XFF, "x-envoy-internal", "true");
        assertEquals("192.0.2.5:40000", one.remoteAddress);
        LoggedRequest up = sent(one);
        assertEquals("192.0.2.5", header(up, "x-envoy-external-address"));
        assertEquals(CLIENT_XFF + ",192.0.2.5", header(up, "x-forwarded-for"));
        assertNull(header(up, "x-envoy-internal"));
        // 2: an internal proxy behind the edge of example 1
        List<CidrRange> inside = List.of(new CidrRange("10.0.0.0", 8));
        RouterRequest two = from("10.11.12.13:40000", hcm(false, 0, inside, null), "x-forwarded-for", EDGE_XFF,
                "x-envoy-external-address", "192.0.2.5", "x-envoy-internal", "true");
        assertEquals("192.0.2.5:0", two.remoteAddress);
        up = sent(two);
        assertEquals("192.0.2.5", header(up, "x-envoy-external-address"), "not modified");
        assertEquals(EDGE_XFF, header(up, "x-forwarded-for"));
        assertNull(header(up, "x-envoy-internal"));
        // 3: an edge proxy behind two trusted proxies
        RouterRequest three = from("192.0.2.5:40000", edge(2), "x-forwarded-for", CLIENT_XFF);
        assertEquals("203.0.113.10:0", three.remoteAddress);
        up = sent(three);
        assertEquals("203.0.113.10", header(up, "x-envoy-external-address"));
        assertEquals(CLIENT_XFF + ",192.0.2.5", header(up, "x-forwarded-for"));
        assertNull(header(up, "x-envoy-internal"));
        // 4: an internal proxy behind the edge of example 3
        RouterRequest four = from("10.11.12.13:40000", hcm(false, 2, inside, null), "x-forwarded-for", EDGE_XFF,
                "x-envoy-external-address", "203.0.113.10", "x-envoy-internal", "true");
        assertEquals("203.0.113.10:0", four.remoteAddress);
        up = sent(four);
        assertEquals("203.0.113.10", header(up, "x-envoy-external-address"), "not modified");
        assertNull(header(up, "x-envoy-internal"));
        // 5: an internal proxy, a request from an internal client without x-forwarded-for
        RouterRequest five = from("10.20.30.40:40000", hcm(false, 0, inside, null));
        assertEquals("10.20.30.40:40000", five.remoteAddress);
        assertFalse(five.internal);
        up = sent(five);
        assertNull(header(up, "x-envoy-external-address"));
        assertNull(header(up, "x-envoy-internal"));
        // 6: the internal proxy of example 5, a request another Envoy proxied for that client
        RouterRequest six = from("10.20.30.50:40000", hcm(false, 0, inside, null), "x-forwarded-for", "10.20.30.40");
        assertEquals("10.20.30.40:0", six.remoteAddress);
        up = sent(six);
        assertNull(header(up, "x-envoy-external-address"));
        assertEquals("true", header(up, "x-envoy-internal"));
    }

    /** A sidecar-like connection manager (no use_remote_address) with these original IP detection extensions. */
    private static HttpConnectionManager detecting(OriginalIpDetection... detections) {
        return hcm(false, 0, List.of(new CidrRange("10.0.0.0", 8)),
                new RemoteAddressOptions(false, false, false, List.of(detections)));
    }

    @Test
    void aCustomHeaderDetectionNamesTheAddressAndMayMakeItInternal() {
        HttpConnectionManager trusted = detecting(new OriginalIpDetection.CustomHeader("x-real-ip", true, 0));
        RouterRequest internal = from("203.0.113.5:40000", trusted, "x-real-ip", "10.1.2.3",
                "x-forwarded-for", "192.0.2.9");
        assertEquals("10.1.2.3:0", internal.remoteAddress, "the header's, not x-forwarded-for's");
        assertEquals("true", header(sent(internal), "x-envoy-internal"));
        // not trusted: the same address, external
        RouterRequest untrusted = from("203.0.113.5:40000", detecting(new OriginalIpDetection.CustomHeader(
                "x-real-ip", false, 0)), "x-real-ip", "10.1.2.3");
        assertEquals("10.1.2.3:0", untrusted.remoteAddress);
        assertNull(header(sent(untrusted), "x-envoy-internal"));
        // no address in it, no rejection: the peer's, external, the next extension asked first
        assertEquals("203.0.113.5:40000", from("203.0.113.5:40000", trusted, "x-real-ip", "10.1.2.3:80")
                .remoteAddress);
        RouterRequest second = from("203.0.113.5:40000", detecting(new OriginalIpDetection.CustomHeader("x-real-ip",
                true, 0), new OriginalIpDetection.Xff(0)), "x-forwarded-for", "10.7.7.7");
        assertEquals("10.7.7.7:0", second.remoteAddress, "the XFF extension, a single address");
        assertEquals("true", header(sent(second), "x-envoy-internal"));
    }

    @Test
    void aCustomHeaderDetectionWithRejectWithStatusAnswersARequestWithoutAnAddress() {
        HttpConnectionManager rejecting = detecting(new OriginalIpDetection.CustomHeader("x-real-ip", true, 403),
                new OriginalIpDetection.Xff(0));
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        var stats = dev.inmesh.runtime.stats.MeshMetrics.create(registry,
                dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN).connectionManager(rejecting);
        var r = call(from("203.0.113.5:40000", rejecting, "x-forwarded-for", "10.7.7.7").downstreamStats(stats));
        assertEquals(403, r.status(), "rejected before the next extension is asked");
        assertEquals("rejecting_because_detection_failed", r.info().responseCodeDetails());
        assertEquals(1.0, registry.get("envoy_http_downstream_rq_rejected_via_ip_detection").gauge().value(),
                "counted as Envoy's connection manager counts it");
        wm.resetRequests();
        assertEquals(200, call(from("203.0.113.5:40000", rejecting, "x-real-ip", "2001:db8::1")).status());
        assertEquals(1, wm.getAllServeEvents().size());
    }

    @Test
    void anXffDetectionPastTrustedHopsIsNeverInternal() {
        RouterRequest req = from("203.0.113.5:40000", detecting(new OriginalIpDetection.Xff(1)),
                "x-forwarded-for", "10.1.1.1, 10.2.2.2");
        assertEquals("10.1.1.1:0", req.remoteAddress);
        assertNull(header(sent(req), "x-envoy-internal"));
        assertFalse(from("203.0.113.5:40000", detecting(new OriginalIpDetection.Xff(1)), "x-forwarded-for",
                "10.2.2.2").internal, "too few entries: the peer's");
    }
}
