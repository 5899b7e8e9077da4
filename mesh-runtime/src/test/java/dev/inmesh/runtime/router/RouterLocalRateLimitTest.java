package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static com.github.tomakehurst.wiremock.client.WireMock.urlPathEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.xds.IstioRateLimit;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The router runs Envoy's local rate limit filter on a fake clock: a burst of {@code max_tokens} passes, the next
 * request is refused {@code 429 local_rate_limited} with response flag RL and the config's headers, a fill lets
 * requests through again; a route's config replaces the filter's own with a bucket of its own; a filter that is not
 * enforced lets the request go on; before the RBAC filters it takes a token even for a request they deny.
 */
class RouterLocalRateLimitTest {
    private static final String ROUTER = """
            - name: envoy.filters.http.router
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
            """;

    private final RouterRig rig = new RouterRig();
    private final AtomicLong nanos = new AtomicLong(1_000_000_000L);
    private final LocalRateLimitFilter.Buckets buckets = new LocalRateLimitFilter.Buckets(nanos::get);
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private final MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);

    @AfterEach
    void close() {
        rig.close();
    }

    /** A route table whose buckets are on the fake clock. */
    private RouteTable table(String virtualHostFields) {
        return RouteTable.compile(RouterRig.routeToC("",
                "response_headers_to_add: [{header: {key: x-route, value: r}}]", virtualHostFields).config(),
                buckets.session(), "rds/r", dev.inmesh.runtime.runtime.RuntimeSnapshot.EMPTY);
    }

    /** A route table whose route action has {@code actionFields} (flow YAML) and virtual host the given fields. */
    private RouteTable table(String actionFields, String virtualHostFields) {
        return RouteTable.compile(RouterRig.routeToC(actionFields, "", virtualHostFields).config(),
                buckets.session(), "rds/r", dev.inmesh.runtime.runtime.RuntimeSnapshot.EMPTY);
    }

    /** A filter enforced for all with a default bucket of {@code defaultTokens} a minute and {@code extra}. */
    private static HttpConnectionManager withDescriptors(int defaultTokens, String extra) {
        return IstioRateLimit.hcm(IstioRateLimit.enforced("rl", defaultTokens, extra) + ROUTER);
    }

    /** A descriptor of one entry with a bucket of {@code tokens} a minute, a {@code descriptors} list item. */
    private static String descriptor(String key, String value, int tokens) {
        return "- entries: [{key: " + key + ", value: \"" + value + "\"}]\n  token_bucket: {max_tokens: " + tokens
                + ", fill_interval: 60s}\n";
    }

    /** The clusters: {@code c}, an application that answers 200 to anything. */
    private ClusterManager app() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        return rig.clusters(cluster("c", wm.port()));
    }

    private int status(HttpConnectionManager hcm, RouteTable table, ClusterManager clusters, String path,
                       String... headers) {
        return rig.call(rig.router(), request(hcm, path, headers), table, clusters).status();
    }

    private RouterRequest request(HttpConnectionManager hcm, String path, String... headers) {
        DownstreamStats ds = metrics.connectionManager(hcm);
        return RouterRig.get(path, headers).downstreamStats(ds)
                .localRateLimit(LocalRateLimitFilter.compile(hcm, "listener/l/0", sessionFor(hcm)))
                .rbac(RbacFilter.Chain.compile(hcm), null);
    }

    private LocalRateLimitFilter.Buckets.Session session;

    /** One session for the test: the same filter config at the same place gets the same bucket. */
    private LocalRateLimitFilter.Buckets.Session sessionFor(HttpConnectionManager hcm) {
        if (session == null) {
            session = buckets.session();
        }
        return session;
    }

    private double stat(String prefix, String name) {
        var g = registry.find("envoy_http_local_rate_limit_" + name).tag("local_http_ratelimit_prefix", prefix)
                .gauge();
        return g == null ? -1 : g.value();
    }

    @Test
    void aBurstOfMaxTokensPassesTheNextIsRefused429WithItsHeadersAndAFillLetsRequestsThroughAgain() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        RouteTable table = table("");
        HttpConnectionManager hcm = IstioRateLimit.hcm(IstioRateLimit.filter("""
                stat_prefix: rl
                token_bucket: {max_tokens: 3, tokens_per_fill: 2, fill_interval: 1s}
                filter_enabled: %s
                filter_enforced: %s
                enable_x_ratelimit_headers: DRAFT_VERSION_03
                response_headers_to_add: [{append: false, header: {key: x-local-rate-limit, value: 'true'}}]
                """.formatted(IstioRateLimit.ALL, IstioRateLimit.ALL)) + ROUTER);
        for (int i = 0; i < 3; i++) {
            RouterRig.Result r = rig.call(rig.router(), request(hcm, "/"), table, clusters);
            assertEquals(200, r.status());
            assertEquals("3", r.header("x-ratelimit-limit"));
            assertEquals(Integer.toString(2 - i), r.header("x-ratelimit-remaining"));
            // as Envoy's: 0 while a token is left, else a token's fill time (500 ms at 2 a second) in whole seconds
            assertEquals("0", r.header("x-ratelimit-reset"));
            assertNull(r.header("x-local-rate-limit"), "only a refusal carries response_headers_to_add");
        }
        RouterRig.Result refused = rig.call(rig.router(), request(hcm, "/"), table, clusters);
        assertEquals(429, refused.status());
        assertEquals("local_rate_limited", refused.body());
        assertEquals("local_rate_limited", refused.info().responseCodeDetails());
        assertEquals("RL", refused.flags());
        assertEquals("true", refused.header("x-local-rate-limit"));
        assertEquals("0", refused.header("x-ratelimit-remaining"));
        // as Envoy's local reply: the route entry's response header rules, then the filter's own
        assertEquals("r", refused.header("x-route"));
        assertEquals("c", refused.info().upstreamCluster());
        assertEquals(3, wm.getAllServeEvents().size());
        assertEquals(4, stat("rl", "enabled"));
        assertEquals(3, stat("rl", "ok"));
        assertEquals(1, stat("rl", "rate_limited"));
        assertEquals(1, stat("rl", "enforced"));

        assertEquals("0", refused.header("x-ratelimit-reset"));

        // as Envoy's bucket since 1.32, it fills continuously at tokens_per_fill / fill_interval (2 a second), not
        // tokens_per_fill at the interval's end: the first token is back after 500 ms
        nanos.addAndGet(TimeUnit.MILLISECONDS.toNanos(499));
        assertEquals(429, rig.call(rig.router(), request(hcm, "/"), table, clusters).status(), "no token yet");
        nanos.addAndGet(TimeUnit.MILLISECONDS.toNanos(1));
        assertEquals(200, rig.call(rig.router(), request(hcm, "/"), table, clusters).status());
        assertEquals(429, rig.call(rig.router(), request(hcm, "/"), table, clusters).status());
        // a refused request takes nothing: 500 ms later, one more
        nanos.addAndGet(TimeUnit.MILLISECONDS.toNanos(500));
        assertEquals(200, rig.call(rig.router(), request(hcm, "/"), table, clusters).status());
        assertEquals(429, rig.call(rig.router(), request(hcm, "/"), table, clusters).status());
        nanos.addAndGet(TimeUnit.SECONDS.toNanos(60));
        // many fills: never more than max_tokens
        for (int i = 0; i < 3; i++) {
            assertEquals(200, rig.call(rig.router(), request(hcm, "/"), table, clusters).status());
        }
        assertEquals(429, rig.call(rig.router(), request(hcm, "/"), table, clusters).status());
    }

    /**
     * As Envoy's filter, which reads its bucket when the response headers go ({@code encodeHeaders}): the
     * {@code x-ratelimit-*} headers of a slow upstream's answer show the tokens filled while it worked, not those left
     * when the request took its token.
     */
    @Test
    void theXRateLimitHeadersShowTheBucketAsTheResponseGoes() {
        int slow = rig.vertx.createHttpServer().requestHandler(req -> {
            nanos.addAndGet(TimeUnit.SECONDS.toNanos(1)); // the upstream takes a second (of the fake clock)
            req.response().end("app");
        }).listen(0, "127.0.0.1").await().actualPort();
        ClusterManager clusters = rig.clusters(cluster("c", slow));
        HttpConnectionManager hcm = IstioRateLimit.hcm(IstioRateLimit.filter("""
                stat_prefix: rl
                token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 1s}
                filter_enabled: %s
                filter_enforced: %s
                enable_x_ratelimit_headers: DRAFT_VERSION_03
                """.formatted(IstioRateLimit.ALL, IstioRateLimit.ALL)) + ROUTER);
        RouterRig.Result r = rig.call(rig.router(), request(hcm, "/"), table(""), clusters);
        assertEquals(200, r.status());
        assertEquals("1", r.header("x-ratelimit-limit"));
        assertEquals("1", r.header("x-ratelimit-remaining"), "the token taken filled again meanwhile");
        assertEquals("0", r.header("x-ratelimit-reset"));
    }

    @Test
    void aVirtualHostsConfigReplacesTheFiltersOwnWithABucketOfItsOwn() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        // Istio's task: the filter's own config has only a stat prefix, the virtual host has the bucket
        HttpConnectionManager hcm = IstioRateLimit.hcm(IstioRateLimit.filter("stat_prefix: http_local_rate_limiter")
                + ROUTER);
        RouteTable table = table(IstioRateLimit.VIRTUAL_HOST_CONFIG.indent(2).strip());
        for (int i = 0; i < 4; i++) {
            assertEquals(200, rig.call(rig.router(), request(hcm, "/" + i), table, clusters).status());
        }
        RouterRig.Result refused = rig.call(rig.router(), request(hcm, "/4"), table, clusters);
        assertEquals(429, refused.status());
        assertEquals("true", refused.header("x-local-rate-limit"));
        assertEquals("RL", refused.flags());
        assertEquals(5, stat("http_local_rate_limiter", "enabled"));
        assertEquals(1, stat("http_local_rate_limiter", "enforced"));

        // without the virtual host's config, the filter's own (not enabled) limits nothing
        RouteTable plain = table("");
        for (int i = 0; i < 5; i++) {
            assertEquals(200, rig.call(rig.router(), request(hcm, "/"), plain, clusters).status());
        }
    }

    /** A filter enabled for all, not enforced, of one token a minute, with {@code header} when not enforced. */
    private static HttpConnectionManager shadow(String header) {
        return IstioRateLimit.hcm(IstioRateLimit.filter("""
                stat_prefix: shadow
                token_bucket: {max_tokens: 1, fill_interval: 60s}
                filter_enabled: %s
                request_headers_to_add_when_not_enforced: [%s]
                """.formatted(IstioRateLimit.ALL, header)) + ROUTER);
    }

    @Test
    void aFilterThatIsNotEnforcedLetsTheRequestGoOnWithItsRequestHeaders() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        HttpConnectionManager hcm = shadow("{header: {key: x-rate-limited, value: 'yes'}}");
        RouteTable table = table("");
        assertEquals(200, rig.call(rig.router(), request(hcm, "/"), table, clusters).status());
        RouterRig.Result over = rig.call(rig.router(), request(hcm, "/"), table, clusters);
        assertEquals(200, over.status());
        assertEquals("-", over.flags());
        assertEquals(2, wm.getAllServeEvents().size());
        var seen = wm.getAllServeEvents();
        // newest first
        assertEquals("yes", seen.get(0).getRequest().getHeader("x-rate-limited"));
        assertEquals(false, seen.get(1).getRequest().containsHeader("x-rate-limited"));
        assertEquals(1, stat("shadow", "rate_limited"));
        assertEquals(0, stat("shadow", "enforced"));
    }

    /**
     * As Envoy's filter configures both lists with the router's header parser: their values are substitution format
     * strings, formatted from the request (refused by path before); a virtual host's config's too.
     */
    @Test
    void theHeadersItAddsAreFormattedFromTheRequest() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        HttpConnectionManager shadow = shadow("{header: {key: x-over, value: '%REQ(x-user)% at %REQ(:path)%'}}");
        RouteTable table = table("");
        assertEquals(200, status(shadow, table, clusters, "/p", "x-user", "u1"));
        assertEquals(200, status(shadow, table, clusters, "/q", "x-user", "u2"));
        assertEquals("u2 at /q", wm.getAllServeEvents().get(0).getRequest().getHeader("x-over"));

        HttpConnectionManager hcm = IstioRateLimit.hcm(IstioRateLimit.filter("stat_prefix: http_local_rate_limiter")
                + ROUTER);
        RouteTable limited = table(IstioRateLimit.VIRTUAL_HOST_CONFIG.replace("value: 'true'",
                "value: '%REQ(x-user)% got %RESPONSE_CODE%'").indent(2).strip());
        for (int i = 0; i < 4; i++) {
            assertEquals(200, status(hcm, limited, clusters, "/"));
        }
        RouterRig.Result refused = rig.call(rig.router(), request(hcm, "/", "x-user", "u3"), limited, clusters);
        assertEquals(429, refused.status());
        assertEquals("u3 got 429", refused.header("x-local-rate-limit"));
    }

    @Test
    void firstItTakesATokenEvenForARequestTheRbacFilterDeniesLastItDoesNot() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        RouteTable table = table("");
        String limiter = IstioRateLimit.enforced("rl", 1, "");
        HttpConnectionManager first = IstioRateLimit.hcm(limiter + IstioRbac.DENY_ADMIN + ROUTER);
        assertEquals(403, rig.call(rig.router(), request(first, "/admin"), table, clusters).status());
        assertEquals(429, rig.call(rig.router(), request(first, "/ok"), table, clusters).status(),
                "the denied request took the only token");

        session = null; // another place: a bucket of its own
        HttpConnectionManager last = IstioRateLimit.hcm(IstioRbac.DENY_ADMIN + limiter + ROUTER);
        LocalRateLimitFilter.Buckets.Session s = buckets.session();
        RouterRequest denied = request(last, "/admin").localRateLimit(LocalRateLimitFilter.compile(last, "x", s));
        assertEquals(403, rig.call(rig.router(), denied, table, clusters).status());
        RouterRequest allowed = request(last, "/ok").localRateLimit(LocalRateLimitFilter.compile(last, "x", s));
        assertEquals(200, rig.call(rig.router(), allowed, table, clusters).status(),
                "the RBAC filter answered before the rate limiter");
    }

    /**
     * As Envoy runs a connection manager's filters in their order: a local rate limit filter after an external
     * authorization filter (and no other deciding filter) takes no token for a request the authorizer denies.
     */
    @Test
    void afterAnExternalAuthorizerItTakesNoTokenForARequestTheAuthorizerDenies() {
        WireMockServer app = rig.wiremock();
        app.stubFor(any(anyUrl()).willReturn(ok("app")));
        WireMockServer authorizer = rig.wiremock();
        authorizer.stubFor(any(anyUrl()).willReturn(ok()));
        authorizer.stubFor(any(urlPathEqualTo("/check/denied")).willReturn(aResponse().withStatus(403)));
        ClusterManager clusters = rig.clusters(cluster("c", app.port()),
                cluster(IstioExtAuthz.CLUSTER, authorizer.port()));
        RouteTable table = table("");
        HttpConnectionManager hcm = IstioRateLimit.hcm(IstioExtAuthz.unconditional(IstioExtAuthz.http("5s", false))
                + IstioRateLimit.enforced("rl", 1, "") + ROUTER);

        assertEquals(403, status(hcm, table, clusters, "/denied"));
        assertEquals(200, status(hcm, table, clusters, "/ok"), "the denied request took no token");
        assertEquals(429, status(hcm, table, clusters, "/ok"), "the allowed one took the only token");
    }

    @Test
    void aRefusalAfterTheCorsFilterCarriesItsHeadersForAnAllowedOrigin() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        RouteTable table = RouteTable.compile(RouterRig.routeToC("",
                "typed_per_filter_config: {envoy.filters.http.cors: "
                + "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy, "
                + "allow_origin_string_match: [{exact: \"https://shop.example\"}], expose_headers: x-total}}", "")
                .config(), buckets.session(), "rds/r", dev.inmesh.runtime.runtime.RuntimeSnapshot.EMPTY);
        HttpConnectionManager hcm = IstioRateLimit.hcm("""
                - name: envoy.filters.http.cors
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                """ + IstioRateLimit.enforced("rl", 1, "") + ROUTER);
        assertEquals(200, rig.call(rig.router(), request(hcm, "/", "origin", "https://shop.example").corsFilter(hcm),
                table, clusters).status());
        RouterRig.Result refused = rig.call(rig.router(), request(hcm, "/", "origin", "https://shop.example")
                .corsFilter(hcm), table, clusters);
        assertEquals(429, refused.status());
        assertEquals("https://shop.example", refused.header("access-control-allow-origin"));
        assertEquals("x-total", refused.header("access-control-expose-headers"));
    }

    @Test
    void aRefusedGrpcRequestGetsUnavailableOrResourceExhaustedInATrailersOnlyAnswer() {
        WireMockServer wm = rig.wiremock();
        wm.stubFor(any(anyUrl()).willReturn(ok("app")));
        ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
        RouteTable table = table("");
        for (boolean exhausted : new boolean[] {false, true}) {
            session = null;
            HttpConnectionManager hcm = IstioRateLimit.hcm(IstioRateLimit.enforced("grpc", 1,
                    "rate_limited_as_resource_exhausted: " + exhausted) + ROUTER);
            rig.call(rig.router(), request(hcm, "/pkg.Svc/Call", "content-type", "application/grpc"), table,
                    clusters);
            RouterRig.Result r = rig.call(rig.router(), request(hcm, "/pkg.Svc/Call", "content-type",
                    "application/grpc"), table, clusters);
            assertEquals(200, r.status());
            assertEquals(exhausted ? "8" : "14", r.header("grpc-status"));
            assertEquals("local_rate_limited", r.header("grpc-message"));
            assertEquals("RL", r.flags());
        }
    }

    @Test
    void aPathDescriptorGetsItsOwnBucketSharedByItsRequestsWhileOtherPathsTakeTheDefault() {
        ClusterManager clusters = app();
        RouteTable table = table(IstioRateLimit.PATH_RATE_LIMITS, "");
        HttpConnectionManager hcm = withDescriptors(3, "always_consume_default_token_bucket: false\ndescriptors:\n"
                + descriptor("path", "/api/v1/products/1", 1));
        assertEquals(200, status(hcm, table, clusters, "/api/v1/products/1"));
        assertEquals(429, status(hcm, table, clusters, "/api/v1/products/1"), "its own bucket of one is empty");
        for (int i = 0; i < 3; i++) {
            assertEquals(200, status(hcm, table, clusters, "/api/v1/products/2"), "the default bucket is full");
        }
        assertEquals(429, status(hcm, table, clusters, "/api/v1/products/3"));
    }

    @Test
    void aMatchedRequestTakesFromTheDefaultBucketTooUnlessAlwaysConsumeDefaultTokenBucketIsFalse() {
        ClusterManager clusters = app();
        String descriptors = "descriptors:\n" + descriptor("path", "/a", 5);
        RouteTable table = table(IstioRateLimit.PATH_RATE_LIMITS, "");
        // Envoy's default (true): the descriptor's bucket, then the default one
        HttpConnectionManager always = withDescriptors(2, descriptors);
        assertEquals(200, status(always, table, clusters, "/a"));
        assertEquals(200, status(always, table, clusters, "/a"));
        assertEquals(429, status(always, table, clusters, "/a"), "the default bucket is empty, its own is not");
        assertEquals(429, status(always, table, clusters, "/b"));

        session = null;
        table = table(IstioRateLimit.PATH_RATE_LIMITS, "");
        HttpConnectionManager notAlways = withDescriptors(2, "always_consume_default_token_bucket: false\n"
                + descriptors);
        for (int i = 0; i < 5; i++) {
            assertEquals(200, status(notAlways, table, clusters, "/a"), "its own bucket only");
        }
        assertEquals(429, status(notAlways, table, clusters, "/a"));
        assertEquals(200, status(notAlways, table, clusters, "/b"));
        assertEquals(200, status(notAlways, table, clusters, "/b"));
        assertEquals(429, status(notAlways, table, clusters, "/b"));
    }

    @Test
    void aVirtualHostsRateLimitsMakeTheDescriptorAsItsVhRateLimitsSays() {
        ClusterManager clusters = app();
        String vh = "rate_limits: [{actions: [{request_headers: {header_name: x-user, descriptor_key: user}}, "
                + "{generic_key: {descriptor_value: vh}}]}]";
        String descriptors = "descriptors:\n- entries: [{key: user, value: alice}, {key: generic_key, value: vh}]\n"
                + "  token_bucket: {max_tokens: 1, fill_interval: 60s}\n";
        // the route has no rate_limits: Envoy's default (OVERRIDE) reads its virtual host's
        RouteTable table = table("", vh);
        HttpConnectionManager hcm = withDescriptors(100, descriptors);
        assertEquals(200, status(hcm, table, clusters, "/", "x-user", "alice"));
        assertEquals(429, status(hcm, table, clusters, "/", "x-user", "alice"));
        assertEquals(200, status(hcm, table, clusters, "/", "x-user", "bob"), "another descriptor: the default");
        assertEquals(200, status(hcm, table, clusters, "/"), "no x-user: the whole descriptor is dropped");

        session = null;
        table = table("", vh);
        HttpConnectionManager ignore = withDescriptors(100, "vh_rate_limits: IGNORE\n" + descriptors);
        for (int i = 0; i < 3; i++) {
            assertEquals(200, status(ignore, table, clusters, "/", "x-user", "alice"));
        }

        session = null;
        // the route's own rate_limits hide its virtual host's, unless INCLUDE
        table = table("rate_limits: [{actions: [{generic_key: {descriptor_value: route}}]}]", vh);
        HttpConnectionManager override = withDescriptors(100, descriptors);
        for (int i = 0; i < 3; i++) {
            assertEquals(200, status(override, table, clusters, "/", "x-user", "alice"));
        }
        session = null;
        table = table("rate_limits: [{actions: [{generic_key: {descriptor_value: route}}]}]", vh);
        HttpConnectionManager include = withDescriptors(100, "vh_rate_limits: INCLUDE\n" + descriptors);
        assertEquals(200, status(include, table, clusters, "/", "x-user", "alice"));
        assertEquals(429, status(include, table, clusters, "/", "x-user", "alice"));
    }

    @Test
    void rateLimitsOfAnotherStageMakeNoDescriptor() {
        ClusterManager clusters = app();
        String stage1 = "rate_limits: [{stage: 1, actions: [{request_headers: {header_name: \":path\", "
                + "descriptor_key: path}}]}]";
        String descriptors = "descriptors:\n" + descriptor("path", "/a", 1);
        RouteTable table = table(stage1, "");
        HttpConnectionManager stage0 = withDescriptors(100, descriptors);
        for (int i = 0; i < 3; i++) {
            assertEquals(200, status(stage0, table, clusters, "/a"), "the filter's stage 0 reads none");
        }
        session = null;
        table = table(stage1, "");
        HttpConnectionManager ofStage1 = withDescriptors(100, "stage: 1\n" + descriptors);
        assertEquals(200, status(ofStage1, table, clusters, "/a"));
        assertEquals(429, status(ofStage1, table, clusters, "/a"));
    }

    @Test
    void xRateLimitHeadersShowTheMatchedDescriptorsBucketElseTheDefaultOne() {
        ClusterManager clusters = app();
        RouteTable table = table(IstioRateLimit.PATH_RATE_LIMITS, "");
        HttpConnectionManager hcm = IstioRateLimit.hcm(IstioRateLimit.filter("""
                stat_prefix: rl
                token_bucket: {max_tokens: 10, fill_interval: 1s}
                filter_enabled: %s
                filter_enforced: %s
                enable_x_ratelimit_headers: DRAFT_VERSION_03
                descriptors:
                """.formatted(IstioRateLimit.ALL, IstioRateLimit.ALL) + descriptor("path", "/a", 2)) + ROUTER);
        RouterRig.Result a = rig.call(rig.router(), request(hcm, "/a"), table, clusters);
        assertEquals("2", a.header("x-ratelimit-limit"));
        assertEquals("1", a.header("x-ratelimit-remaining"));
        assertEquals("0", a.header("x-ratelimit-reset"), "a token is left");
        RouterRig.Result b = rig.call(rig.router(), request(hcm, "/b"), table, clusters);
        assertEquals("10", b.header("x-ratelimit-limit"));
        assertEquals("8", b.header("x-ratelimit-remaining"), "/a took a default token too");
        assertEquals("0", b.header("x-ratelimit-reset"));
        rig.call(rig.router(), request(hcm, "/a"), table, clusters);
        RouterRig.Result refused = rig.call(rig.router(), request(hcm, "/a"), table, clusters);
        assertEquals(429, refused.status());
        assertEquals("2", refused.header("x-ratelimit-limit"));
        assertEquals("0", refused.header("x-ratelimit-remaining"));
        assertEquals("60", refused.header("x-ratelimit-reset"), "empty: one token a minute (tokens_per_fill 1)");
    }

    @Test
    void aWildcardDescriptorGivesEachValueABucketOfItsOwnKeepingTheMostRecentlyUsedOnes() {
        ClusterManager clusters = app();
        String userRateLimits = "rate_limits: [{actions: [{request_headers: {header_name: x-user, "
                + "descriptor_key: user}}]}]";
        String wildcard = "descriptors:\n- entries: [{key: user}]\n  token_bucket: {max_tokens: 1, "
                + "fill_interval: 60s}\n";
        RouteTable table = table(userRateLimits, "");
        HttpConnectionManager hcm = withDescriptors(100, wildcard);
        assertEquals(200, status(hcm, table, clusters, "/", "x-user", "alice"));
        assertEquals(200, status(hcm, table, clusters, "/", "x-user", "bob"));
        assertEquals(429, status(hcm, table, clusters, "/", "x-user", "alice"));
        assertEquals(429, status(hcm, table, clusters, "/", "x-user", "bob"));

        session = null;
        table = table(userRateLimits, "");
        HttpConnectionManager one = withDescriptors(100, "max_dynamic_descriptors: 1\n" + wildcard);
        assertEquals(200, status(one, table, clusters, "/", "x-user", "alice"));
        assertEquals(200, status(one, table, clusters, "/", "x-user", "bob"), "alice's bucket is dropped");
        assertEquals(200, status(one, table, clusters, "/", "x-user", "alice"), "a new, full bucket");
        assertEquals(429, status(one, table, clusters, "/", "x-user", "alice"));
    }

    @Test
    void theSlowestFillingMatchedBucketIsTakenFirstAndARefusalLeavesTheOthersAlone() {
        ClusterManager clusters = app();
        // listed fast first: Envoy orders the matched buckets by fill rate, not by the config's order
        RouteTable table = table("rate_limits: [{actions: [{generic_key: {descriptor_value: fast}}]}, "
                + "{actions: [{request_headers: {header_name: x-slow, descriptor_key: slow}}]}]", "");
        HttpConnectionManager hcm = withDescriptors(100, """
                descriptors:
                - entries: [{key: generic_key, value: fast}]
                  token_bucket: {max_tokens: 2, tokens_per_fill: 2, fill_interval: 1s}
                - entries: [{key: slow, value: "yes"}]
                  token_bucket: {max_tokens: 1, fill_interval: 60s}
                """);
        assertEquals(200, status(hcm, table, clusters, "/", "x-slow", "yes"), "both buckets: fast 1 left, slow 0");
        assertEquals(429, status(hcm, table, clusters, "/", "x-slow", "yes"), "refused by the slow one first");
        assertEquals(200, status(hcm, table, clusters, "/"), "the fast bucket still had its token");
        assertEquals(429, status(hcm, table, clusters, "/"));
    }

    @Test
    void theFiltersOwnRateLimitsMakeTheDescriptorsAndTheRoutesAreNotRead() {
        ClusterManager clusters = app();
        RouteTable table = table(IstioRateLimit.PATH_RATE_LIMITS, "");
        HttpConnectionManager hcm = withDescriptors(100, "rate_limits: [{actions: [{destination_cluster: {}}]}]\n"
                + "descriptors:\n" + descriptor("destination_cluster", "c", 1) + descriptor("path", "/a", 5));
        assertEquals(200, status(hcm, table, clusters, "/a"));
        assertEquals(429, status(hcm, table, clusters, "/a"), "the cluster's bucket; the path's is not read");
    }

    @Test
    void aBucketIsKeptByTheNextSnapshotWhereItsConfigAndPlaceAreUnchanged() {
        String config = IstioRateLimit.enforced("rl", 1, "") + ROUTER;
        LocalRateLimitFilter.Buckets.Session one = buckets.session();
        LocalRateLimitFilter a = LocalRateLimitFilter.compile(IstioRateLimit.hcm(config), "listener/l/0", one);
        one.commit();
        LocalRateLimitFilter.Buckets.Session two = buckets.session();
        // parsed anew, as an update re-sends it: equal, not the same
        LocalRateLimitFilter b = LocalRateLimitFilter.compile(IstioRateLimit.hcm(config), "listener/l/0", two);
        LocalRateLimitFilter elsewhere = LocalRateLimitFilter.compile(IstioRateLimit.hcm(config), "listener/l/1",
                two);
        LocalRateLimitFilter changed = LocalRateLimitFilter.compile(IstioRateLimit.hcm(config.replace("max_tokens: 1",
                "max_tokens: 2")), "listener/l/0", two);
        assertEquals(false, a.check(null, null, null, null, null, null, null).refused());
        assertEquals(true, b.check(null, null, null, null, null, null, null).refused(), "the same bucket, its token taken");
        assertEquals(false, elsewhere.check(null, null, null, null, null, null, null).refused());
        assertEquals(false, changed.check(null, null, null, null, null, null, null).refused());
        assertSame(bucketOf(a), bucketOf(b));
        assertNotSame(bucketOf(a), bucketOf(changed));
    }

    private static Object bucketOf(LocalRateLimitFilter f) {
        try {
            var field = LocalRateLimitFilter.class.getDeclaredField("limiter");
            field.setAccessible(true);
            return field.get(f);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }
}
