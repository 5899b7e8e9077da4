package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static dev.inmesh.runtime.router.RouterRig.sequence;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import com.github.tomakehurst.wiremock.verification.LoggedRequest;
import com.github.tomakehurst.wiremock.stubbing.ServeEvent;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class RouterHeadersTest {
    private static final String UUID_V4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private ClusterManager one(WireMockServer wm) {
        return rig.clusters(cluster("c", wm.port()));
    }

    /** The requests the server received, oldest first. */
    private static List<LoggedRequest> received(WireMockServer wm) {
        List<LoggedRequest> out = new ArrayList<>();
        for (ServeEvent e : wm.getAllServeEvents()) {
            out.add(e.getRequest());
        }
        Collections.reverse(out);
        return out;
    }

    private static String header(LoggedRequest r, String name) {
        return r.containsHeader(name) ? r.getHeader(name) : null;
    }

    private static final String THREE_LEVELS = """
            name: r
            request_headers_to_add:
            - {header: {key: x-config, value: c}}
            - {header: {key: x-level, value: config}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
            request_headers_to_remove: [x-drop-config]
            response_headers_to_add:
            - {header: {key: x-resp-config, value: c}}
            - {header: {key: x-resp-level, value: config}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
            response_headers_to_remove: [x-secret-config]
            virtual_hosts:
            - name: vh
              domains: ["*"]
              request_headers_to_add:
              - {header: {key: x-vh, value: v}}
              - {header: {key: x-level, value: vh}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
              request_headers_to_remove: [x-drop-vh]
              response_headers_to_add:
              - {header: {key: x-resp-vh, value: v}}
              - {header: {key: x-resp-level, value: vh}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
              response_headers_to_remove: [x-secret-vh]
              routes:
              - match: {prefix: /direct}
                direct_response: {status: 200, body: {inline_string: hi}}
                response_headers_to_add:
                - {header: {key: x-resp-route, value: direct}}
              - match: {prefix: /}
                route: {cluster: c}
                request_headers_to_add:
                - {header: {key: x-route, value: r}}
                - {header: {key: x-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                - {header: {key: x-app, value: route}, append_action: ADD_IF_ABSENT}
                request_headers_to_remove: [x-drop-route]
                response_headers_to_add:
                - {header: {key: x-resp-route, value: r}}
                - {header: {key: x-resp-level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                response_headers_to_remove: [x-secret-route]
            """;

    @Test
    void requestHeaderRulesApplyAtRouteVirtualHostAndConfigurationLevelsWithTheLeastSpecificWinning() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        rig.call(rig.router(), get("/x", "x-drop-route", "1", "x-drop-vh", "1", "x-drop-config", "1",
                "x-app", "mine", "x-level", "app"), RouterRig.table(THREE_LEVELS), one(wm));
        LoggedRequest up = received(wm).get(0);
        assertEquals("r", header(up, "x-route"));
        assertEquals("v", header(up, "x-vh"));
        assertEquals("c", header(up, "x-config"));
        assertEquals("config", header(up, "x-level"));
        assertEquals("mine", header(up, "x-app"), "ADD_IF_ABSENT keeps the caller's value");
        assertNull(header(up, "x-drop-route"));
        assertNull(header(up, "x-drop-vh"));
        assertNull(header(up, "x-drop-config"));
    }

    @Test
    void responseHeaderRulesApplyAtRouteVirtualHostAndConfigurationLevels() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok().withHeader("x-secret-route", "s").withHeader("x-secret-vh", "s")
                .withHeader("x-secret-config", "s").withHeader("x-kept", "k")));
        var r = rig.call(rig.router(), get("/x"), RouterRig.table(THREE_LEVELS), one(wm));
        assertEquals("r", r.header("x-resp-route"));
        assertEquals("v", r.header("x-resp-vh"));
        assertEquals("c", r.header("x-resp-config"));
        assertEquals("config", r.header("x-resp-level"));
        assertEquals("k", r.header("x-kept"));
        assertNull(r.header("x-secret-route"));
        assertNull(r.header("x-secret-vh"));
        assertNull(r.header("x-secret-config"));
    }

    @Test
    void aDirectResponseGetsTheResponseHeaderRulesOfItsLevels() {
        var r = rig.call(rig.router(), get("/direct"), RouterRig.table(THREE_LEVELS), rig.clusters());
        assertEquals("hi", r.body());
        assertEquals("direct", r.header("x-resp-route"));
        assertEquals("v", r.header("x-resp-vh"));
        assertEquals("c", r.header("x-resp-config"));
    }

    /**
     * Header values are Envoy's substitution format strings (header_parser.cc): formatted when the router finalizes
     * the request's headers (the caller's address, its headers, the protocol, the host name; no upstream host yet) and
     * the response's (its status, its headers, the upstream host that answered); an unknown value is nothing, and a
     * value that comes out empty adds no header unless kept; {@code %%} is a {@code %}.
     */
    @Test
    void formattedHeaderValuesReadTheRequestWhenItGoesUpstreamAndTheResponseWhenItComesBack() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok().withHeader("x-up", "u")));
        RouteTable t = RouterRig.table("""
                name: r
                request_headers_to_add:
                - {header: {key: x-peer, value: "%DOWNSTREAM_REMOTE_ADDRESS%"}}
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  request_headers_to_add:
                  - {header: {key: x-host, value: "%HOSTNAME%"}}
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c}
                    request_headers_to_add:
                    - {header: {key: x-copy, value: "%REQ(x-foo)%"}}
                    - {header: {key: x-wrapped, value: "prefix %PROTOCOL% 100%% suffix"}}
                    - {header: {key: x-upstream, value: "%UPSTREAM_REMOTE_ADDRESS%"}}
                    - {header: {key: x-upstream-kept, value: "%UPSTREAM_REMOTE_ADDRESS%"}, keep_empty_value: true}
                    - {header: {key: x-absent, value: "%REQ(x-none)%"}}
                    - {header: {key: x-literal, value: "50%% off"}}
                    response_headers_to_add:
                    - {header: {key: x-code, value: "%RESPONSE_CODE%"}}
                    - {header: {key: x-answered-by, value: "%UPSTREAM_REMOTE_ADDRESS%"}}
                    - {header: {key: x-echo, value: "%RESP(x-up)%/%REQ(x-foo)%"}}
                """);
        var r = rig.call(rig.router(), get("/x", "x-foo", "bar"), t, one(wm));
        LoggedRequest up = received(wm).get(0);
        assertEquals("127.0.0.1:50000", header(up, "x-peer"));
        assertEquals(dev.inmesh.runtime.accesslog.CommandFormat.headerValue("%HOSTNAME%")
                .format(dev.inmesh.runtime.accesslog.AccessLogEntry.NOTHING), header(up, "x-host"));
        assertEquals("bar", header(up, "x-copy"));
        assertEquals("prefix HTTP/1.1 100% suffix", header(up, "x-wrapped"));
        assertNull(header(up, "x-upstream"), "no upstream host is known when the request's headers are finalized");
        assertEquals("", header(up, "x-upstream-kept"), "an empty value is added under keep_empty_value");
        assertNull(header(up, "x-absent"));
        assertEquals("50% off", header(up, "x-literal"));
        assertEquals("200", r.header("x-code"));
        assertEquals("127.0.0.1:" + wm.port(), r.header("x-answered-by"));
        assertEquals("u/bar", r.header("x-echo"));
    }

    /**
     * {@code %UPSTREAM_METADATA(...)%} reads the endpoint metadata of the host that answered, on the response (Envoy's
     * header formatter; nothing on the request, whose host is not chosen yet); the legacy JSON-array parameter is
     * translated as Envoy's header parser translates it; a value that is not a string is JSON.
     */
    @Test
    void upstreamMetadataOnTheResponseIsTheAnsweringHostsEndpointMetadataAndClusterMetadataItsClusters() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        dev.inmesh.api.config.core.Metadata metadata = new dev.inmesh.api.config.core.Metadata(Map.of("istio",
                Map.of("workload", "reviews-v1", "weight", 3.0, "labels", Map.of("app", "reviews"))));
        RouteTable t = RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c}
                    request_headers_to_add:
                    - {header: {key: x-workload-asked, value: "%UPSTREAM_METADATA(istio:workload)%"}}
                    response_headers_to_add:
                    - {header: {key: x-workload, value: "%UPSTREAM_METADATA(istio:workload)%"}}
                    - {header: {key: x-legacy, value: '%UPSTREAM_METADATA(["istio", "workload"])%'}}
                    - {header: {key: x-weight, value: "%UPSTREAM_METADATA(istio:weight)%"}}
                    - {header: {key: x-labels, value: "%UPSTREAM_METADATA(istio:labels)%"}}
                    - {header: {key: x-missing, value: "%UPSTREAM_METADATA(istio:nothing)%"}}
                    - {header: {key: x-cluster, value: "%CLUSTER_METADATA(istio:services)%"}}
                """);
        var r = rig.call(rig.router(), get("/x"), t, rig.clusters(RouterRig.clusterWithMetadata("c", wm.port(),
                metadata)));
        assertEquals("[{\"name\":\"reviews\"}]", r.header("x-cluster"), "the cluster's own metadata");
        assertEquals("reviews-v1", r.header("x-workload"));
        assertEquals("reviews-v1", r.header("x-legacy"));
        assertEquals("3", r.header("x-weight"), "a number as protobuf's JSON prints it");
        assertEquals("{\"app\":\"reviews\"}", r.header("x-labels"));
        assertNull(r.header("x-missing"));
        assertNull(header(received(wm).get(0), "x-workload-asked"), "no host is chosen when the request's are");
    }

    /** A local reply (a direct response) formats its route's response header values with its own status. */
    @Test
    void aDirectResponsesFormattedHeaderValuesReadItsStatus() {
        var r = rig.call(rig.router(), get("/", "x-foo", "bar"), RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                  - match: {prefix: /}
                    direct_response: {status: 418, body: {inline_string: tea}}
                    response_headers_to_add:
                    - {header: {key: x-code, value: "%RESPONSE_CODE% %REQ(x-foo)%"}}
                """), rig.clusters());
        assertEquals(418, r.status());
        assertEquals("418 bar", r.header("x-code"));
    }

    @Test
    void generatesAUuidV4RequestIdWhenAbsentAndSendsItUpstream() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        String id = header(received(wm).get(0), "x-request-id");
        assertNotNull(id);
        assertTrue(id.matches(UUID_V4), id);
        assertEquals(id, r.info().requestId());
    }

    @Test
    void anApplicationsForwardedClientCertIsNotSentUpstreamAsEnvoysDefaultSanitizeDoesWithoutMtls() {
        // Envoy's forward_client_cert_details defaults to SANITIZE, and Istio's outbound connection managers leave
        // it so: on a plaintext connection the header never reaches the next hop, whoever wrote it
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        var r = rig.call(rig.router(), get("/x", "x-forwarded-client-cert",
                "By=spiffe://cluster.local/ns/default/sa/reviews;URI=spiffe://cluster.local/ns/default/sa/admin"),
                routeToC(""), one(wm));
        assertEquals(200, r.status());
        assertNull(header(received(wm).get(0), "x-forwarded-client-cert"));
    }

    @Test
    void theResponseCarriesTheRequestIdWhenTheConnectionManagerAlwaysSetsItOrATrustedCallerForcesATrace() {
        WireMockServer wm = rig.wiremock();
        // the upstream's own id is replaced, as Envoy's connection manager writes the request's over it
        wm.stubFor(any(anyUrl()).willReturn(ok().withHeader("x-request-id", "upstream-id")));
        ClusterManager c = one(wm);
        assertEquals("upstream-id", rig.call(rig.router(), get("/x", "x-request-id", "abc"), routeToC(""), c)
                .header("x-request-id"), "Envoy's default: the response is left as it came");

        var always = rig.call(rig.router(), get("/x", "x-request-id", "abc").alwaysSetRequestIdInResponse(true),
                routeToC(""), c);
        assertEquals("abc", always.header("x-request-id"));
        var generated = rig.call(rig.router(), get("/x").alwaysSetRequestIdInResponse(true), routeToC(""), c);
        assertEquals(generated.info().requestId(), generated.header("x-request-id"), "the id made for the request");
        assertTrue(generated.header("x-request-id").matches(UUID_V4));
        var local = rig.call(rig.router(), get("/none", "x-request-id", "abc").alwaysSetRequestIdInResponse(true),
                RouterRig.table("""
                        name: r
                        virtual_hosts:
                        - {name: vh, domains: ["*"], routes: [{match: {prefix: /x}, route: {cluster: c}}]}
                        """), c);
        assertEquals(404, local.status());
        assertEquals("abc", local.header("x-request-id"), "a local reply too");

        var forced = rig.call(rig.router(RouterRig.trusted(), null), get("/x", "x-request-id", "abc",
                "x-envoy-force-trace", "true"), routeToC(""), c);
        assertEquals("abc", forced.header("x-request-id"), "x-envoy-force-trace from a trusted caller");
        var untrusted = rig.call(rig.router(), get("/x", "x-request-id", "abc", "x-envoy-force-trace", "true"),
                routeToC(""), c);
        assertEquals("upstream-id", untrusted.header("x-request-id"), "an untrusted caller's control header counts not");
    }

    @Test
    void propagatesTheCallersRequestIdUnchangedToEveryAttempt() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok());
        var r = rig.call(rig.router(), get("/x", "x-request-id", "abc-123"),
                routeToC("retry_policy: {retry_on: 5xx, num_retries: 1}"), one(wm));
        assertEquals(200, r.status());
        for (LoggedRequest up : received(wm)) {
            assertEquals("abc-123", header(up, "x-request-id"));
        }
        assertEquals("abc-123", r.info().requestId());
    }

    @Test
    void sendsTheAttemptCountUpstreamAndDownstreamWhenTheVirtualHostAsks() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok());
        var t = RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  include_request_attempt_count: true
                  include_attempt_count_in_response: true
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c, retry_policy: {retry_on: 5xx, num_retries: 1}}
                """);
        var r = rig.call(rig.router(), get("/x", "x-envoy-attempt-count", "7"), t, one(wm));
        List<LoggedRequest> ups = received(wm);
        assertEquals("1", header(ups.get(0), "x-envoy-attempt-count"));
        assertEquals("2", header(ups.get(1), "x-envoy-attempt-count"));
        assertEquals("2", r.header("x-envoy-attempt-count"));
    }

    @Test
    void theRoutesHeaderRulesTakeTheFirstAttemptsRouterHeadersAndARetrySetsItsOwnOverThem() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok());
        var t = RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  include_request_attempt_count: true
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c, timeout: 3s, retry_policy: {retry_on: 5xx, num_retries: 1}}
                    request_headers_to_add:
                    - header: {key: x-envoy-attempt-count, value: mine}
                      append_action: OVERWRITE_IF_EXISTS_OR_ADD
                    request_headers_to_remove: [x-envoy-expected-rq-timeout-ms]
                """);
        var r = rig.call(rig.router(), get("/x"), t, one(wm));
        assertEquals(200, r.status());
        List<LoggedRequest> ups = received(wm);
        // as Envoy's router: the first attempt's headers are set before the route's rules, which then apply
        assertEquals("mine", header(ups.get(0), "x-envoy-attempt-count"));
        assertNull(header(ups.get(0), "x-envoy-expected-rq-timeout-ms"));
        // a retry's are set over the rules'
        assertEquals("2", header(ups.get(1), "x-envoy-attempt-count"));
        long told = Long.parseLong(header(ups.get(1), "x-envoy-expected-rq-timeout-ms"));
        assertTrue(told > 0 && told <= 3000, "what is left of the route timeout: " + told);
    }

    @Test
    void sendsNoAttemptCountWhenTheVirtualHostDoesNotAsk() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        assertNull(header(received(wm).get(0), "x-envoy-attempt-count"));
        assertNull(r.header("x-envoy-attempt-count"));
    }

    @Test
    void addsTheUpstreamServiceTimeToProxiedResponses() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("x").withFixedDelay(120)));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        long t = Long.parseLong(r.header("x-envoy-upstream-service-time"));
        assertTrue(t >= 110 && t <= r.elapsedMillis(), "service time " + t + " of " + r.elapsedMillis());
        assertEquals(t, r.info().upstreamServiceTimeMillis());
    }

    @Test
    void theUpstreamServiceTimeRunsFromTheRequestSoItCoversEarlierAttemptsAndBackOffs() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503).withFixedDelay(300), ok("fine"));
        var r = rig.call(rig.router(), get("/x"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1}"), one(wm));
        assertEquals(200, r.status());
        long t = Long.parseLong(r.header("x-envoy-upstream-service-time"));
        assertTrue(t >= 300 && t <= r.elapsedMillis(), "service time " + t + " of " + r.elapsedMillis());
        assertEquals(t, r.info().upstreamServiceTimeMillis(), "the access log's value is the header's");
    }

    @Test
    void withinALevelEntriesAreJudgedOnTheHeadersBeforeItThenOverwrittenThenAppended() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        var t = RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c}
                    request_headers_to_remove: [x-gone]
                    request_headers_to_add:
                    - {header: {key: x-a, value: "1"}}
                    - {header: {key: x-a, value: "2"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
                    - {header: {key: x-b, value: "1"}}
                    - {header: {key: x-b, value: "2"}, append_action: ADD_IF_ABSENT}
                    - {header: {key: x-c, value: "1"}}
                    - {header: {key: x-c, value: "2"}, append_action: OVERWRITE_IF_EXISTS}
                    - {header: {key: x-d, value: "new"}, append_action: OVERWRITE_IF_EXISTS}
                    - {header: {key: x-d, value: "more"}}
                    - {header: {key: x-e, value: "1"}, append: false}
                    - {header: {key: x-e, value: "2"}, append: false}
                    - {header: {key: x-gone, value: "back"}, append_action: OVERWRITE_IF_EXISTS}
                    - {header: {key: x-empty, value: ""}, keep_empty_value: true}
                    - {header: {key: x-dropped, value: ""}}
                """);
        rig.call(rig.router(), get("/x", "x-d", "old", "x-gone", "old"), t, rig.clusters(cluster("c", wm.port())));
        LoggedRequest up = received(wm).get(0);
        assertEquals(List.of("2", "1"), up.header("x-a").values(), "overwrites first, then appends");
        assertEquals(List.of("1", "2"), up.header("x-b").values(), "x-b was absent before the level");
        assertEquals(List.of("1"), up.header("x-c").values(), "x-c was absent before the level");
        assertEquals(List.of("new", "more"), up.header("x-d").values());
        assertEquals(List.of("2"), up.header("x-e").values(), "append: false overwrites; the last one wins");
        assertNull(header(up, "x-gone"), "removed before the level's entries are judged");
        assertEquals("", header(up, "x-empty"));
        assertNull(header(up, "x-dropped"), "an empty value without keep_empty_value is not added");
    }

    @Test
    void rewritesThePrefixAndTheHostAndKeepsTheOriginalPath() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        var r = rig.call(rig.router(), get("/api/items?q=1"),
                apiRoute("prefix_rewrite: /v1/, host_rewrite_literal: backend.internal"), one(wm));
        assertEquals(200, r.status());
        LoggedRequest up = received(wm).get(0);
        assertEquals("/v1/items?q=1", up.getUrl());
        assertEquals("backend.internal", header(up, "host"));
        assertEquals("/api/items?q=1", header(up, "x-envoy-original-path"));
        assertEquals("/api/items?q=1", r.info().path(), "the access log shows the original path");
    }

    /** A route forwarding {@code /api/} to cluster {@code c} with {@code action} added to its route action. */
    private static RouteTable apiRoute(String action) {
        return RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                  - match: {prefix: /api/}
                    route: {cluster: c, %s}
                """.formatted(action));
    }

    /**
     * Envoy's {@code host_rewrite_header}: the header's first value becomes the Host; absent or empty, the Host stays;
     * with {@code append_x_forwarded_host} the Host replaced is appended to {@code x-forwarded-host}, unless it is
     * already its last value.
     */
    @Test
    void hostRewriteHeaderTakesTheHeadersFirstValueAndAppendXForwardedHostKeepsTheOldHost() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        RouteTable t = apiRoute("host_rewrite_header: X-Target-Host, append_x_forwarded_host: true");
        rig.call(rig.router(), get("/api/a", "x-target-host", "one.internal", "x-target-host", "two.internal"), t,
                one(wm));
        rig.call(rig.router(), get("/api/b", "x-target-host", ""), t, one(wm));
        rig.call(rig.router(), get("/api/c", "x-target-host", "one.internal", "x-forwarded-host", "edge,svc.local"),
                t, one(wm));
        List<LoggedRequest> up = received(wm);
        assertEquals("one.internal", header(up.get(0), "host"));
        assertEquals("svc.local", header(up.get(0), "x-forwarded-host"));
        assertEquals("svc.local", header(up.get(1), "host"), "an empty value leaves the Host");
        assertNull(header(up.get(1), "x-forwarded-host"), "no rewrite, nothing appended");
        assertEquals("one.internal", header(up.get(2), "host"));
        assertEquals("edge,svc.local", header(up.get(2), "x-forwarded-host"), "already the last value");
    }

    /**
     * Envoy's {@code auto_host_rewrite}: the Host is the picked endpoint's hostname (none: left as it is); with
     * {@code append_x_forwarded_host} the Host replaced goes to {@code x-forwarded-host}.
     */
    @Test
    void autoHostRewriteSendsTheEndpointsHostnameAndAppendsTheOldHost() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        var clusters = rig.clusters(RouterRig.clusterWithHostname("c", wm.port(), "backend-1.internal"));
        rig.call(rig.router(), get("/api/a"), apiRoute("auto_host_rewrite: true, append_x_forwarded_host: true"),
                clusters);
        rig.call(rig.router(), get("/api/b"), apiRoute("auto_host_rewrite: true"), clusters);
        List<LoggedRequest> up = received(wm);
        assertEquals("backend-1.internal", header(up.get(0), "host"));
        assertEquals("svc.local", header(up.get(0), "x-forwarded-host"));
        assertEquals("backend-1.internal", header(up.get(1), "host"));
        assertNull(header(up.get(1), "x-forwarded-host"));
    }

    /**
     * Under {@code auto_host_rewrite} each attempt takes its own endpoint's hostname, and a retry to another endpoint
     * still tells the downstream's Host in {@code x-forwarded-host}, once: the Host the route replaced, not the one
     * the attempt before it went with.
     */
    @Test
    void aRetryToAnotherHostnameForwardsTheDownstreamsHostOnce() {
        List<WireMockServer> servers = List.of(rig.wiremock(), rig.wiremock());
        servers.forEach(s -> s.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(503))));
        var clusters = rig.clusters(RouterRig.clusterWithHostnames("c", Map.of(
                servers.get(0).port(), "backend-1.internal", servers.get(1).port(), "backend-2.internal")));
        var r = rig.call(rig.router(), get("/api/a"), apiRoute("auto_host_rewrite: true, append_x_forwarded_host: "
                + "true, retry_policy: {retry_on: 5xx, num_retries: 1, "
                + "retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}]}"), clusters);
        assertEquals(2, r.info().attemptCount());
        for (int i = 0; i < 2; i++) {
            LoggedRequest up = received(servers.get(i)).get(0);
            assertEquals("backend-" + (i + 1) + ".internal", header(up, "host"));
            assertEquals("svc.local", header(up, "x-forwarded-host"));
        }
    }

    /** Envoy's {@code host_rewrite_path_regex}: the path without its query, rewritten by the regex, is the Host. */
    @Test
    void hostRewritePathRegexMakesTheHostFromThePathWithoutItsQuery() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        RouteTable t = apiRoute("prefix_rewrite: /, host_rewrite_path_regex: {pattern: {regex: \"^/api/([^/]+)/.*$\"}, "
                + "substitution: \"\\\\1.example.internal\"}");
        rig.call(rig.router(), get("/api/tenant-7/items?x=/api/q/r"), t, one(wm));
        LoggedRequest up = received(wm).get(0);
        assertEquals("tenant-7.example.internal", header(up, "host"));
        assertEquals("/tenant-7/items?x=/api/q/r", up.getUrl(), "the path is rewritten after the Host, as Envoy's");
        assertNull(header(up, "x-forwarded-host"), "without append_x_forwarded_host");
    }

    @Test
    void aRouterThatSuppressesEnvoyHeadersSendsNoOriginalPathAndLogsTheRewrittenOne() {
        // Envoy's router adds x-envoy-original-path only without suppress_envoy_headers; its access log's
        // %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% then reads the rewritten :path
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        var r = rig.call(rig.router(), get("/api/items?q=1").suppressEnvoyHeaders(true),
                routeToC("prefix_rewrite: /v1/", "", ""), one(wm));
        assertEquals(200, r.status());
        LoggedRequest up = received(wm).get(0);
        assertEquals("/v1/api/items?q=1", up.getUrl());
        assertNull(header(up, "x-envoy-original-path"));
        assertEquals("/v1/api/items?q=1", r.info().path());
    }

    @Test
    void sendsTheCallersAuthorityWhenNotRewritten() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        assertEquals("svc.local", header(received(wm).get(0), "host"));
    }

    @Test
    void neverForwardsEnvoyControlHeadersFromTheCaller() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        String[] control = {"x-envoy-retry-on", "5xx", "x-envoy-upstream-rq-timeout-ms", "5000",
            "x-envoy-upstream-rq-per-try-timeout-ms", "100", "x-envoy-max-retries", "2",
            "x-envoy-retriable-status-codes", "503", "x-envoy-retry-grpc-on", "unavailable"};
        rig.call(rig.router(), get("/x", control), routeToC(""), one(wm));
        rig.call(rig.router(RouterRig.trusted(), null), get("/x", control), routeToC(""), one(wm));
        for (LoggedRequest up : received(wm)) {
            for (int i = 0; i < control.length; i += 2) {
                assertNull(header(up, control[i]), control[i]);
            }
        }
    }

    @Test
    void dropsHopByHopHeadersButKeepsTeTrailers() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        rig.call(rig.router(), get("/x", "keep-alive", "timeout=5", "proxy-connection", "keep-alive",
                "te", "trailers", "x-plain", "p"), routeToC(""), one(wm));
        LoggedRequest up = received(wm).get(0);
        assertNull(header(up, "keep-alive"));
        assertNull(header(up, "proxy-connection"));
        assertEquals("trailers", header(up, "te"), "gRPC needs te: trailers end to end");
        assertEquals("p", header(up, "x-plain"));
        assertEquals("http", header(up, "x-forwarded-proto"));
    }

    @Test
    void aTeListingTrailersAmongOthersGoesOnAsTrailersAloneAndAnyOtherTeIsTakenOff() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        rig.call(rig.router(), get("/x", "te", "gzip, trailers"), routeToC(""), one(wm));
        rig.call(rig.router(), get("/x", "te", "gzip, deflate"), routeToC(""), one(wm));
        List<LoggedRequest> up = received(wm);
        assertEquals("trailers", header(up.get(0), "te"), "as Envoy: trailers kept, the other codings dropped");
        assertNull(header(up.get(1), "te"));
    }

    @Test
    void proxyAuthorizationAndTrailerAreNotHopByHopForEnvoyAndGoUpstream() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        rig.call(rig.router(), get("/x", "proxy-authorization", "Basic dTpw", "trailer", "x-checksum"),
                routeToC(""), one(wm));
        LoggedRequest up = received(wm).get(0);
        assertEquals("Basic dTpw", header(up, "proxy-authorization"));
        assertEquals("x-checksum", header(up, "trailer"));
    }

    @Test
    void anUpstreamsOfferToUpgradeItsConnectionIsNotPassedToTheCaller() {
        // an HTTP/1.1 server advertising h2c on a plain response (Apache's "Protocols h2 h2c" does): Envoy's connection
        // manager takes upgrade and connection off a response that is not an upgrade's
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("x").withHeader("Upgrade", "h2,h2c")
                .withHeader("x-kept", "k")));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        assertEquals(200, r.status());
        assertNull(r.header("upgrade"));
        assertEquals("k", r.header("x-kept"));
    }

    @Test
    void theObserverSeesClusterHostAttemptsAndFlagsOfAProxiedExchange() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503), ok("body!"));
        var r = rig.call(rig.router(), get("/x", "user-agent", "tests"),
                routeToC("retry_policy: {retry_on: 5xx, num_retries: 1}"), one(wm));
        assertEquals(1, rig.observed().size());
        var info = rig.observed().get(0);
        assertEquals(r.info(), info);
        assertEquals(200, info.responseCode());
        assertEquals(2, info.attemptCount());
        assertEquals("c", info.upstreamCluster());
        assertEquals("127.0.0.1:" + wm.port(), info.upstreamHost());
        assertEquals(5, info.bytesSent());
        assertEquals("GET", info.method());
        assertEquals("tests", info.userAgent());
        assertEquals("svc.local", info.authority());
        assertTrue(info.responseFlags().isEmpty());
        assertFalse(r.response().isLocalReply());
    }
    @Test
    void theObserverSeesTheLocalAddressOfTheUpstreamConnectionAsEnvoysUpstreamLocalAddress() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("hi")));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        String local = r.info().upstreamLocalAddress();
        assertNotNull(local, "%UPSTREAM_LOCAL_ADDRESS% of a proxied request");
        assertTrue(local.matches("127\\.0\\.0\\.1:[1-9][0-9]*"), local);
    }

    @Test
    void countsTheRequestsInFlightOfAClusterInUpstreamRqActive() throws Exception {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/slow")).willReturn(ok("slow").withFixedDelay(800)));
        sequence(wm, "/retried", aResponse().withStatus(503), ok("again"));
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics metrics = MeshMetrics.create(reg, WorkloadInfo.UNKNOWN);
        Router router = rig.router();
        router.upstreamStats(metrics::upstream);
        ClusterManager clusters = one(wm);

        var pending = rig.start(router, get("/slow"), routeToC(""), clusters);
        double during = 0;
        long deadline = System.currentTimeMillis() + 5000;
        while (during < 1 && !pending.isDone() && System.currentTimeMillis() < deadline) {
            var g = reg.find("envoy_cluster_upstream_rq_active").tag("cluster_name", "c").gauge();
            during = g == null ? 0 : g.value();
            Thread.sleep(5);
        }
        assertEquals(1.0, during, "one request in flight");
        assertEquals(200, RouterRig.await(pending).status());
        assertEquals(0.0, reg.find("envoy_cluster_upstream_rq_active").tag("cluster_name", "c").gauge().value(),
                "none once it completed");

        assertEquals(200, rig.call(router, get("/retried"), routeToC("retry_policy: {retry_on: 5xx, num_retries: 1}"),
                clusters).status());
        assertEquals(0.0, reg.find("envoy_cluster_upstream_rq_active").tag("cluster_name", "c").gauge().value(),
                "none after a retried exchange");
    }

    @Test
    void countsAClustersUpstreamConnectionsInUpstreamCxTotalAndActive() throws Exception {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(urlEqualTo("/keep")).willReturn(ok("k")));
        wm.stubFor(any(urlEqualTo("/close")).willReturn(ok("c").withHeader("Connection", "close")));
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics metrics = MeshMetrics.create(reg, WorkloadInfo.UNKNOWN);
        Router router = rig.router();
        router.upstreamStats(metrics::upstream);
        ClusterManager clusters = one(wm);

        assertEquals(200, rig.call(router, get("/keep"), routeToC(""), clusters).status());
        assertEquals(200, rig.call(router, get("/keep"), routeToC(""), clusters).status());
        assertEquals(1.0, reg.find("envoy_cluster_upstream_cx_total").tag("cluster_name", "c").functionCounter()
                .count(), "one keep-alive connection for both requests");
        assertEquals(1.0, reg.find("envoy_cluster_upstream_cx_active").tag("cluster_name", "c").gauge().value());

        assertEquals(200, rig.call(router, get("/close"), routeToC(""), clusters).status());
        double active = 1;
        long deadline = System.currentTimeMillis() + 5000;
        while (active != 0 && System.currentTimeMillis() < deadline) {
            active = reg.find("envoy_cluster_upstream_cx_active").tag("cluster_name", "c").gauge().value();
            Thread.sleep(5);
        }
        assertEquals(0.0, active, "the connection the upstream closed is no longer active");
        assertEquals(1.0, reg.find("envoy_cluster_upstream_cx_total").tag("cluster_name", "c").functionCounter()
                .count());
    }

    @Test
    void aBodyReadLongAfterTheResponseArrivedIsWhole() throws Exception {
        WireMockServer wm = rig.wiremock();
        String big = "x".repeat(200_000);
        wm.stubFor(any(anyUrl()).willReturn(ok(big)));
        Router router = rig.router();
        // Forwarded from a plain thread, the body asked for 200 ms after the response was committed.
        RouterResponse resp = router.forward(get("/x"), routeToC(""), one(wm)).toCompletionStage()
                .toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS);
        Thread.sleep(200);
        String body = resp.body().toCompletionStage().toCompletableFuture()
                .get(10, java.util.concurrent.TimeUnit.SECONDS).toString();
        assertEquals(big.length(), body.length());
        router.complete(resp, body.length());
    }
    @Test
    void aLocalReplyAfterAttemptsCarriesTheAttemptCountWhenTheVirtualHostAsks() {
        var t = RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  include_attempt_count_in_response: true
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c, retry_policy: {retry_on: connect-failure, num_retries: 1}}
                """);
        var r = rig.call(rig.router(), get("/x"), t, rig.clusters(cluster("c", RouterRig.closedPort())));
        assertEquals(503, r.status());
        assertEquals("2", r.header("x-envoy-attempt-count"));
        var none = rig.call(rig.router(), get("/x"), t, rig.clusters());
        assertEquals(503, none.status(), "no cluster: no attempt");
        assertNull(none.header("x-envoy-attempt-count"));
    }
    @Test
    void aRouterThatSuppressesEnvoyHeadersAddsNoneOfItsOwn() {
        // Istio's proxyHeaders.envoyDebugHeaders.disabled: the router filter's suppress_envoy_headers
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("x")));
        var r = rig.call(rig.router(), get("/x").suppressEnvoyHeaders(true), routeToC("timeout: 3s"), one(wm));
        assertEquals(200, r.status());
        assertNull(r.header("x-envoy-upstream-service-time"));
        assertNull(header(received(wm).get(0), "x-envoy-expected-rq-timeout-ms"));
        // an overflow's answer: no x-envoy-overloaded (max_requests 0: every request overflows)
        var full = rig.call(rig.router(), get("/x").suppressEnvoyHeaders(true), routeToC(""), rig.clusters(
                cluster("c", dev.inmesh.api.config.cluster.LbPolicy.ROUND_ROBIN, RouterRig.breakers(1024, 1024, 0, 3),
                        null, wm.port())));
        assertEquals(503, full.status());
        assertNull(full.header("x-envoy-overloaded"));
        // the same without it: the router's headers are there
        var plain = rig.call(rig.router(), get("/x"), routeToC("timeout: 3s"), one(wm));
        assertNotNull(plain.header("x-envoy-upstream-service-time"));
        assertNotNull(header(received(wm).get(1), "x-envoy-expected-rq-timeout-ms"));
    }

    @Test
    void tellsTheUpstreamHowLongTheRouterWillWait() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok()));
        var clusters = one(wm);
        rig.call(rig.router(), get("/a", "x-envoy-expected-rq-timeout-ms", "1"), routeToC("timeout: 3s"), clusters);
        rig.call(rig.router(), get("/b"), routeToC("timeout: 3s, retry_policy: {retry_on: 5xx, "
                + "per_try_timeout: 0.5s}"), clusters);
        rig.call(rig.router(), get("/c"), routeToC("timeout: 0s"), clusters);
        List<LoggedRequest> ups = received(wm);
        assertEquals("3000", header(ups.get(0), "x-envoy-expected-rq-timeout-ms"),
                "the first attempt is told the whole route timeout, as Envoy's router tells it");
        assertEquals("500", header(ups.get(1), "x-envoy-expected-rq-timeout-ms"), "the shorter per-try timeout");
        assertNull(header(ups.get(2), "x-envoy-expected-rq-timeout-ms"), "no timeout, no header");
    }

    @Test
    void aRetryIsToldWhatRemainsOfTheRouteTimeout() {
        WireMockServer wm = rig.wiremock();
        sequence(wm, "/x", aResponse().withStatus(503).withFixedDelay(300), ok());
        var r = rig.call(rig.router(), get("/x"), routeToC("timeout: 3s, retry_policy: {retry_on: 5xx}"), one(wm));
        assertEquals(200, r.status());
        List<LoggedRequest> ups = received(wm);
        assertEquals("3000", header(ups.get(0), "x-envoy-expected-rq-timeout-ms"));
        long retry = Long.parseLong(header(ups.get(1), "x-envoy-expected-rq-timeout-ms"));
        assertTrue(retry > 0 && retry <= 2700, "the route timeout less the first attempt's 300 ms: " + retry);
    }

    /** A gRPC call to an upstream that answers trailers-only with {@code grpcStatus}. */
    private RouterRig.Result grpcCall(WireMockServer wm, String grpcStatus) {
        wm.stubFor(any(anyUrl()).willReturn(ok().withHeader("content-type", "application/grpc")
                .withHeader("grpc-status", grpcStatus)));
        return rig.call(rig.router(), get("/pkg.Svc/M", "content-type", "application/grpc"), routeToC(""),
                rig.clusters(cluster("c", wm.port())));
    }

    @Test
    void aGrpcRequestsStatusIsTakenFromATrailersOnlyResponse() {
        WireMockServer wm = rig.wiremock();
        var r = grpcCall(wm, "5");
        assertEquals("5", r.info().grpcStatus());
        var http = rig.call(rig.router(), get("/x"), routeToC(""), rig.clusters(cluster("c", wm.port())));
        assertNull(http.info().grpcStatus(), "not a gRPC request");
    }

    @Test
    void aGrpcRequestsStatusIsTakenFromTheTrailersWhenTheyCome() throws Exception {
        var server = rig.vertx.createHttpServer().requestHandler(req -> req.response().setChunked(true)
                        .putHeader("content-type", "application/grpc").putHeader("grpc-status", "0")
                        .putTrailer("grpc-status", "13").end("x"))
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        // gRPC's HTTP/2 to the upstream (an HTTP/1 upstream's trailers are dropped, as Envoy's codec drops them)
        var r = rig.call(rig.router(), get("/pkg.Svc/M", "content-type", "application/grpc"), routeToC(""),
                rig.clusters(cluster("c", server.actualPort()).toBuilder().http2(true).build()));
        assertEquals("13", r.info().grpcStatus(), "the trailers win over the headers");
    }

    @Test
    void aGrpcRequestThroughTheRouterIsCountedWithTheGrpcProtocolAndStatus() {
        var r = grpcCall(rig.wiremock(), "0");
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics.create(reg, WorkloadInfo.UNKNOWN).record(r.info());
        String scrape = reg.scrape();
        assertTrue(scrape.contains("request_protocol=\"grpc\""), scrape);
        assertTrue(scrape.contains("grpc_response_status=\"0\""), scrape);
    }

    @Test
    void istiosRequestAndResponseBytesCountTheHeadsAsWellAsTheBodies() throws Exception {
        // as Istio's stats read Envoy's downstream bytes meter: the stream's wire bytes, not only its body
        var server = rig.vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> req.response()
                        .putHeader("x-a", "b").end("hello")))
                .listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        var r = rig.call(rig.router(), RouterRig.request(io.vertx.core.http.HttpMethod.POST, "/x", "abc",
                "user-agent", "tests"), routeToC(""), rig.clusters(cluster("c", server.actualPort())));
        assertEquals(200, r.status());
        assertEquals(3, r.info().bytesReceived(), "the access log's %BYTES_RECEIVED% stays the body's");
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics.create(reg, WorkloadInfo.UNKNOWN).record(r.info());
        // "POST /x HTTP/1.1\r\n" 18, "user-agent: tests\r\n" 19, "host: svc.local\r\n" 17, "\r\n" 2, the body 3
        assertEquals(59.0, sum(reg, "istio_request_bytes_sum"), reg.scrape());
        // at least "HTTP/1.1 200 OK\r\n" 17, "x-a: b\r\n" 8, "content-length: 5\r\n" 19, "\r\n" 2 and the body 5
        double response = sum(reg, "istio_response_bytes_sum");
        assertTrue(response >= 51, reg.scrape());
    }

    /** The value of the one sample of {@code name} in the registry's scrape. */
    private static double sum(PrometheusMeterRegistry reg, String name) {
        return reg.scrape().lines().filter(l -> l.startsWith(name + "{")).mapToDouble(l -> Double.parseDouble(
                l.substring(l.lastIndexOf(' ') + 1))).sum();
    }

    @Test
    void theUpstreamsPeerMetadataInTheResponseIsNotPassedToTheCaller() {
        // an inbound side (Istio's sidecar, mesh.inbound) answers the caller's metadata exchange with its own; as
        // Istio's outbound side, the client takes it off the response
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("x").withHeader("x-envoy-peer-metadata", "Cg0KC...")
                .withHeader("x-envoy-peer-metadata-id", "sidecar~10.1.0.9~reviews-v1-abc.default~default.svc")));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        assertEquals(200, r.status());
        assertNull(r.header("x-envoy-peer-metadata"));
        assertNull(r.header("x-envoy-peer-metadata-id"));
    }
    @Test
    void theUpstreamsPeerMetadataInTheResponseNamesTheDestinationOfTheOutboundRequest() {
        // as Istio's client sidecar: the upstream's metadata exchange answer labels destination_* of the metrics
        // (reporter=source), ahead of what the cluster and endpoint metadata say
        WorkloadInfo reviews = new WorkloadInfo("reviews-v2", "bookinfo", "reviews", "v2", "reviews", "v2", "east");
        String header = dev.inmesh.runtime.stats.PeerMetadata.encode(reviews, "east");
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("x").withHeader("x-envoy-peer-metadata", header)
                .withHeader("x-envoy-peer-metadata-id", "sidecar~10.1.0.9~reviews-v2-abc.bookinfo~bookinfo.svc")));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        assertEquals(200, r.status());
        assertNull(r.header("x-envoy-peer-metadata"), "still taken off what the application sees");
        assertEquals(reviews, r.info().peer());
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics.create(reg, WorkloadInfo.UNKNOWN).record(r.info());
        String scrape = reg.scrape();
        assertTrue(scrape.contains("destination_workload=\"reviews-v2\""), scrape);
        assertTrue(scrape.contains("destination_workload_namespace=\"bookinfo\""), scrape);
        assertTrue(scrape.contains("destination_version=\"v2\""), scrape);
        assertTrue(scrape.contains("destination_canonical_revision=\"v2\""), scrape);
        assertTrue(scrape.contains("destination_cluster=\"east\""), scrape);
    }

    @Test
    void withoutPeerMetadataInTheResponseTheDestinationComesFromTheClusterAsBefore() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("x").withHeader("x-envoy-peer-metadata", "not base64 at all!")));
        var r = rig.call(rig.router(), get("/x"), routeToC(""), one(wm));
        assertEquals(WorkloadInfo.UNKNOWN, r.info().peer(), "an unreadable header is no identity");
    }
}
