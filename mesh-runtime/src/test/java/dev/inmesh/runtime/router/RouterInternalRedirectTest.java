package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static com.github.tomakehurst.wiremock.client.WireMock.urlPathEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.stubbing.ServeEvent;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.http.HttpMethod;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Envoy's internal redirects ({@code internal_redirect_policy}): the router follows an upstream's redirect itself. */
class RouterInternalRedirectTest {
    private final RouterRig rig = new RouterRig();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
    private final DownstreamStats downstream = metrics.connectionManager(HttpConnectionManager.of("ingress", "r",
            List.of()));
    private WireMockServer wm;

    @AfterEach
    void close() {
    }

    /**
     * Routes {@code /a} (route {@code a}, with {@code policy} as its {@code internal_redirect_policy}) and {@code /b}
     * and {@code /c} (routes {@code b} and {@code c}) of {@code svc.local} to cluster {@code c}; {@code /a} answers
     * {@code aStatus} to {@code location}, {@code /b} 200 {@code from b}.
     */
    private RouteTable redirecting(String policy, int aStatus, String location) {
        wm = rig.wiremock();
        var redirect = aResponse().withStatus(aStatus).withHeader("x-token", "t1").withBody("moved");
        if (location != null) {
            redirect = redirect.withHeader("Location", location);
        }
        wm.stubFor(any(urlEqualTo("/a")).willReturn(redirect));
        wm.stubFor(any(urlPathEqualTo("/b")).willReturn(ok("from b")));
        wm.stubFor(any(urlEqualTo("/c")).willReturn(aResponse().withStatus(302)
                .withHeader("Location", "http://svc.local/b")));
        return RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["svc.local", "svc.local:80"]
                  routes:
                  - name: a
                    match: {path: /a}
                    route: {cluster: c, internal_redirect_policy: %s}
                  - name: c
                    match: {path: /c}
                    route: {cluster: c, internal_redirect_policy: %s}
                  - name: b
                    match: {prefix: /b}
                    route: {cluster: c}
                """.formatted(policy, policy));
    }

    private ClusterManager clusters() {
        return rig.clusters(cluster("c", wm.port()));
    }

    private RouterRig.Result call(RouterRequest req, RouteTable table) {
        Router router = rig.router();
        router.upstreamStats(metrics::upstream);
        return rig.call(router, req.downstreamStats(downstream), table, clusters());
    }

    /** The requests the upstream got, in order. */
    private List<LoggedRequest> received() {
        List<LoggedRequest> out = new ArrayList<>();
        for (ServeEvent e : wm.getAllServeEvents()) {
            out.add(e.getRequest());
        }
        Collections.reverse(out);
        return out;
    }

    /** A statistic's value: a gauge that only goes up, or a counter for a name ending in {@code _total}. */
    private double counter(String name) {
        if (name.endsWith("_total")) {
            var c = registry.find(name).functionCounter();
            return c == null ? 0 : c.count();
        }
        var g = registry.find(name).gauge();
        return g == null ? 0 : g.value();
    }

    @Test
    void aFollowedRedirectSendsTheRequestWithItsBodyToTheLocationAndAnswersWithWhatItGets() {
        var table = redirecting("{}", 302, "http://svc.local/b?x=1#frag");
        var r = call(RouterRig.request(HttpMethod.POST, "/a", "payload", "x-user", "u1"), table);
        assertEquals(200, r.status());
        assertEquals("from b", r.body());
        List<LoggedRequest> up = received();
        assertEquals(2, up.size());
        assertEquals("/b?x=1", up.get(1).getUrl(), "the fragment is left out");
        assertEquals("POST", up.get(1).getMethod().getName());
        assertEquals("payload", up.get(1).getBodyAsString(), "a 302 keeps the method and the body");
        assertEquals("u1", up.get(1).getHeader("x-user"));
        assertEquals("http://svc.local/a", up.get(1).getHeader("x-envoy-original-url"));
        assertEquals("/b?x=1", r.info().path(), "the request that answered is logged");
        assertEquals(1.0, counter("envoy_cluster_upstream_internal_redirect_succeeded_total"));
    }

    /**
     * As Envoy's router, which rewrites the request's own Host under {@code auto_host_rewrite} and builds
     * {@code x-envoy-original-url} from the request as it went upstream: the original URL has the endpoint's hostname.
     */
    @Test
    void theOriginalUrlHasTheHostAutoHostRewriteSentUpstream() {
        // the policy's placeholder ends the route's mapping with auto_host_rewrite beside it
        var table = redirecting("{}, auto_host_rewrite: true", 302, "http://svc.local/b");
        Router router = rig.router();
        var r = rig.call(router, RouterRig.request(HttpMethod.GET, "/a", null), table,
                rig.clusters(RouterRig.clusterWithHostname("c", wm.port(), "backend-1.internal")));
        assertEquals(200, r.status());
        List<LoggedRequest> up = received();
        assertEquals("backend-1.internal", up.get(0).getHeader("host"));
        assertEquals("http://backend-1.internal/a", up.get(1).getHeader("x-envoy-original-url"));
    }

    @Test
    void a303MakesANonGetRequestABodilessGet() {
        var table = redirecting("{redirect_response_codes: [303]}", 303, "http://svc.local/b");
        var r = call(RouterRig.request(HttpMethod.PUT, "/a", "payload", "content-length", "7"), table);
        assertEquals(200, r.status());
        LoggedRequest second = received().get(1);
        assertEquals("GET", second.getMethod().getName());
        assertEquals("", second.getBodyAsString());
        assertNull(second.getHeader("content-length"));
    }

    @Test
    void aCodeThePolicyDoesNotNameIsPassedOnAsItCame() {
        var table = redirecting("{}", 301, "http://svc.local/b");
        var r = call(get("/a"), table);
        assertEquals(301, r.status(), "by default only a 302 is followed");
        assertEquals("http://svc.local/b", r.header("location"));
        assertEquals("moved", r.body());
        assertEquals(1, received().size());
    }

    @Test
    void aSecondRedirectPastMaxInternalRedirectsIsPassedOnAndCounted() {
        // /a -> /c (followed, the first); /c -> /b would be the second: past the default maximum of one
        var table = redirecting("{}", 302, "http://svc.local/c");
        var r = call(get("/a"), table);
        assertEquals(302, r.status());
        assertEquals("http://svc.local/b", r.header("location"));
        assertEquals(2, received().size());
        assertEquals(1.0, counter("envoy_http_passthrough_internal_redirect_too_many_redirects"));
        assertEquals(1.0, counter("envoy_cluster_upstream_internal_redirect_failed_total"));
        // with a maximum of two, both are followed
        var two = call(get("/a"), redirecting("{max_internal_redirects: 2}", 302, "http://svc.local/c"));
        assertEquals(200, two.status());
        assertEquals("from b", two.body());
    }

    @Test
    void aRelativeLocationACrossSchemeOneAndOneWithoutARouteArePassedOnWithTheirReasons() {
        assertEquals(302, call(get("/a"), redirecting("{}", 302, "/b")).status());
        assertEquals(1.0, counter("envoy_http_passthrough_internal_redirect_bad_location"));
        assertEquals(302, call(get("/a"), redirecting("{}", 302, "https://svc.local/b")).status());
        assertEquals(1.0, counter("envoy_http_passthrough_internal_redirect_unsafe_scheme"));
        assertEquals(302, call(get("/a"), redirecting("{}", 302, "http://elsewhere.local/b")).status());
        assertEquals(1.0, counter("envoy_http_passthrough_internal_redirect_no_route"));
        assertEquals(3.0, counter("envoy_cluster_upstream_internal_redirect_failed_total"));
    }

    @Test
    void predicatesDecideOnTheTargetRoute() {
        String allowListed = "{predicates: [{name: allow, typed_config: {\"@type\": type.googleapis.com/envoy"
                + ".extensions.internal_redirect.allow_listed_routes.v3.AllowListedRoutesConfig, "
                + "allowed_route_names: [c]}}]}";
        assertEquals(302, call(get("/a"), redirecting(allowListed, 302, "http://svc.local/b")).status());
        assertEquals(1.0, counter("envoy_http_passthrough_internal_redirect_predicate"));
        // safe_cross_scheme with cross-scheme redirects allowed: from http, not to https
        String safe = "{allow_cross_scheme_redirect: true, predicates: [{name: safe, typed_config: {\"@type\": "
                + "type.googleapis.com/envoy.extensions.internal_redirect.safe_cross_scheme.v3.SafeCrossSchemeConfig}}]}";
        assertEquals(302, call(get("/a"), redirecting(safe, 302, "https://svc.local/b")).status());
        assertEquals(2.0, counter("envoy_http_passthrough_internal_redirect_predicate"));
    }

    @Test
    void responseHeadersToCopyGoOntoTheRedirectedRequest() {
        var table = redirecting("{response_headers_to_copy: [x-token, x-absent]}", 302, "http://svc.local/b");
        call(get("/a", "x-token", "old", "x-absent", "gone"), table);
        LoggedRequest second = received().get(1);
        assertEquals("t1", second.getHeader("x-token"), "the response's value replaces the request's");
        assertNull(second.getHeader("x-absent"), "one the response lacks is taken off");
    }

    /**
     * As Envoy's connection manager, which runs mutateRequestHeaders on a stream's first pass only
     * ({@code is_internally_created_}, conn_manager_impl.cc): the stream it recreates for the redirect keeps the
     * headers it made, this hop's {@code x-forwarded-client-cert} element and {@code via} once.
     */
    @Test
    void theRedirectedRequestCarriesTheConnectionManagersHeadersOnce() {
        var table = redirecting("{}", 302, "http://svc.local/b");
        RouterRequest req = get("/a", "x-forwarded-client-cert", "Hash=caller")
                .clientCertificate(true, "Hash=hop")
                .serverHeader(new dev.inmesh.api.config.listener.ServerHeader("envoy",
                        dev.inmesh.api.config.listener.ServerHeader.Transformation.OVERWRITE, "proxy"));
        req.forwardClientCert = dev.inmesh.api.config.listener.ForwardClientCert.Mode.APPEND_FORWARD;
        assertEquals(200, call(req, table).status());
        for (LoggedRequest up : received()) {
            assertEquals("Hash=caller,Hash=hop", up.getHeader("x-forwarded-client-cert"), up.getUrl());
            assertEquals("proxy", up.getHeader("via"), up.getUrl());
        }
        // nor is its scheme read again from the x-forwarded-proto the first pass set: it is the location's
        RouterRequest crossing = get("/a");
        assertEquals(200, call(crossing, redirecting("{allow_cross_scheme_redirect: true}", 302,
                "https://svc.local/b")).status());
        assertEquals("https", crossing.scheme);
    }

    @Test
    void aStreamedBodyIsSentAgainWholeOnceItEnded() throws Exception {
        var table = redirecting("{}", 302, "http://svc.local/b");
        RouterRequest req = RouterRig.request(HttpMethod.POST, "/a", null);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        rig.ctx.runOnContext(v -> {
            body.write(io.vertx.core.buffer.Buffer.buffer("part1-"));
            body.write(io.vertx.core.buffer.Buffer.buffer("part2"));
            body.end();
        });
        Router router = rig.router();
        var r = RouterRig.await(rig.start(router, req.downstreamStats(downstream), table, clusters()));
        assertEquals(200, r.status());
        assertEquals("part1-part2", received().get(1).getBodyAsString());
    }
}
