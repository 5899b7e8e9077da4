package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.route.LocalRateLimit;
import dev.inmesh.api.config.route.RateLimit;
import dev.inmesh.api.config.route.RouteConfiguration;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's local rate limit filter ({@code envoy.filters.http.local_ratelimit}) as Istio's "Enabling Rate Limits using
 * Envoy" task writes it (a {@code TypedStruct} in the connection manager with only a stat prefix, the bucket in the
 * virtual host's {@code typed_per_filter_config}), and the fields and places Inmesh refuses by name.
 */
class LocalRateLimitParserTest {

    static final String RBAC = """
            - name: envoy.filters.http.rbac
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC}
            """;
    static final String FAULT = """
            - name: envoy.filters.http.fault
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
            """;

    static String refused(String text) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(text))
                .getMessage();
    }

    private static String refusedFilter(String config) {
        return refused(EnvoyValidationTest.listenerWithHttpFilters(IstioRateLimit.filter(config)
                + EnvoyValidationTest.ROUTER));
    }

    private static String vhost(String config) {
        return vhost(config, "", "");
    }

    /**
     * A route configuration of one virtual host whose fields are {@code config} and whose one route has
     * {@code actionFields} (flow YAML) and the route fields {@code routeConfig}.
     */
    static String vhost(String config, String actionFields, String routeConfig) {
        return """
                name: "9080"
                virtual_hosts:
                - name: "inbound|http|9080"
                  domains: ["*"]
                """ + config.stripTrailing().indent(2) + """
                  routes:
                  - match: {prefix: /}
                    route: {cluster: "inbound|9080||"%s}
                """.formatted(actionFields.isEmpty() ? "" : ", " + actionFields) + routeConfig.indent(4);
    }

    @Test
    void istiosRateLimitTaskLoadsWithTheBucketInTheVirtualHostAndTheFilterFirst() throws Exception {
        HttpConnectionManager h = IstioRateLimit.hcm(IstioRateLimit.FILTER + RBAC + EnvoyValidationTest.ROUTER);
        LocalRateLimit own = h.localRateLimitFilter().localRateLimit();
        assertEquals("envoy.filters.http.local_ratelimit", h.localRateLimitFilter().name());
        assertEquals("http_local_rate_limiter", own.statPrefix());
        assertNull(own.tokenBucket()); // the filter's own limits nothing: not even enabled
        assertNull(own.filterEnabled());
        assertTrue(h.localRateLimitFirst(), "INSERT_BEFORE the connection manager puts it before the RBAC filter");

        RouteConfiguration rc = EnvoyConfigReader.read(vhost(IstioRateLimit.VIRTUAL_HOST_CONFIG)).routes()
                .get("9080");
        LocalRateLimit vh = rc.virtualHosts().get(0).localRateLimit().get("envoy.filters.http.local_ratelimit");
        assertEquals(new LocalRateLimit.TokenBucket(4, 4, Duration.ofSeconds(60)), vh.tokenBucket());
        FractionalPercent all = new FractionalPercent(100, FractionalPercent.Denominator.HUNDRED);
        assertEquals(all, vh.filterEnabled());
        assertEquals(all, vh.filterEnforced());
        assertEquals(429, vh.status());
        assertEquals(List.of(new HeaderValueOption("x-local-rate-limit", "true",
                HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD, false)), vh.responseHeadersToAdd());
        assertFalse(vh.rateLimitedAsResourceExhausted());
        assertFalse(vh.xRateLimitHeaders());
    }

    @Test
    void theFilterBeforeTheRouterRunsAfterTheOthersAndItsOwnBucketIsRead() throws Exception {
        HttpConnectionManager h = IstioRateLimit.hcm(RBAC + FAULT + """
                - name: envoy.filters.http.local_ratelimit
                  typed_config:
                    "@type": type.googleapis.com/xds.type.v3.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    value:
                      stat_prefix: rl
                      token_bucket: {max_tokens: 10, fill_interval: 0.5s}
                      filter_enabled: %s
                      status: {code: ServiceUnavailable}
                      enable_x_ratelimit_headers: DRAFT_VERSION_03
                      rate_limited_as_resource_exhausted: true
                """.formatted(IstioRateLimit.ALL) + EnvoyValidationTest.ROUTER);
        assertFalse(h.localRateLimitFirst());
        LocalRateLimit c = h.localRateLimitFilter().localRateLimit();
        assertEquals(new LocalRateLimit.TokenBucket(10, 1, Duration.ofMillis(500)), c.tokenBucket());
        assertNull(c.filterEnforced()); // absent: nothing is refused, Envoy's default
        assertEquals(503, c.status());
        assertTrue(c.xRateLimitHeaders());
        assertTrue(c.rateLimitedAsResourceExhausted());
    }

    @Test
    void aTypedStructsDurationAndWrapperWrittenAsObjectsAreReadAsEnvoyReadsThem() throws Exception {
        // Envoy reads a TypedStruct's value as JSON, in protobuf's legacy syntax (MessageUtil::jsonConvert)
        HttpConnectionManager h = IstioRateLimit.hcm(RBAC + FAULT + """
                - name: envoy.filters.http.local_ratelimit
                  typed_config:
                    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    value:
                      stat_prefix: rl
                      token_bucket: {max_tokens: 10, tokens_per_fill: {value: 5}, fill_interval: {seconds: 60}}
                """ + EnvoyValidationTest.ROUTER);
        assertEquals(new LocalRateLimit.TokenBucket(10, 5, Duration.ofSeconds(60)),
                h.localRateLimitFilter().localRateLimit().tokenBucket());
        String m = refused(EnvoyValidationTest.listenerWithHttpFilters("""
                - name: envoy.filters.http.local_ratelimit
                  typed_config:
                    "@type": type.googleapis.com/xds.type.v3.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    value: {stat_prefix: rl, token_bucket: {max_tokens: 1, fill_interval: {seconds: 1, minutes: 2}}}
                """ + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("http_filters[0].typed_config.value") && m.contains("LocalRateLimit"), m);
    }

    @Test
    void aDisabledFilterRunsNowhereButItsConfigIsStillChecked() throws Exception {
        String disabled = IstioRateLimit.FILTER + "  disabled: true\n";
        assertNull(IstioRateLimit.hcm(disabled + EnvoyValidationTest.ROUTER).localRateLimitFilter());
        String m = refused(EnvoyValidationTest.listenerWithHttpFilters(disabled.replace("{stat_prefix: "
                + "http_local_rate_limiter}", "{stat_prefix: x, stage: 11}") + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("http_filters[0].typed_config.stage"), m);
    }

    @Test
    void badBucketsAreRefusedByTheirFieldPath() {
        String m = refusedFilter("stat_prefix: x\ntoken_bucket: {max_tokens: 0, fill_interval: 1s}");
        assertTrue(m.contains("http_filters[0].typed_config.token_bucket.max_tokens"), m);
        m = refusedFilter("stat_prefix: x\ntoken_bucket: {max_tokens: 1, fill_interval: 0.01s}");
        assertTrue(m.contains("http_filters[0].typed_config.token_bucket.fill_interval") && m.contains(">= 50ms"), m);
        m = refusedFilter("stat_prefix: x\ntoken_bucket: {max_tokens: 1}");
        assertTrue(m.contains("token_bucket.fill_interval: unset"), m);
        m = refusedFilter("stat_prefix: x\ntoken_bucket: {max_tokens: 1, tokens_per_fill: 0, fill_interval: 1s}");
        assertTrue(m.contains("token_bucket.tokens_per_fill"), m);
        m = refusedFilter("token_bucket: {max_tokens: 1, fill_interval: 1s}");
        assertTrue(m.contains("http_filters[0].typed_config.stat_prefix"), m);
    }

    @Test
    void whatInmeshDoesNotImplementIsRefusedByName() {
        for (String field : List.of("local_rate_limit_per_downstream_connection: true",
                "local_cluster_rate_limit: {}")) {
            String name = field.substring(0, field.indexOf(':'));
            String m = refusedFilter("stat_prefix: x\n" + field);
            assertTrue(m.contains("http_filters[0].typed_config." + name) && m.contains("not supported by Inmesh"),
                    m);
        }
    }

    @Test
    void anIstioEnvoyFilterGivingAPathItsOwnBucketLoadsWithItsDescriptor() throws Exception {
        // the EnvoyFilter Istio users write: the route's rate_limits make a path descriptor from :path, the route's
        // config for the filter gives one path a bucket of its own
        RouteConfiguration rc = EnvoyConfigReader.read(vhost("", IstioRateLimit.PATH_RATE_LIMITS,
                IstioRateLimit.PATH_DESCRIPTOR_CONFIG)).routes().get("9080");
        var route = rc.virtualHosts().get(0).routes().get(0);
        LocalRateLimit c = route.localRateLimit().get("envoy.filters.http.local_ratelimit");
        assertEquals(List.of(new LocalRateLimit.Descriptor(List.of(new LocalRateLimit.Entry("path",
                "/reviews/1")), new LocalRateLimit.TokenBucket(1, 1, Duration.ofSeconds(60)))), c.descriptors());
        assertEquals(0, c.stage());
        assertEquals(RateLimit.VhRateLimits.OVERRIDE, c.vhRateLimits());
        assertTrue(c.alwaysConsumeDefaultTokenBucket(), "Envoy's default");
        assertEquals(List.of(new RateLimit(0, "", List.of(new RateLimit.RequestHeaders(":path", "path", false)))),
                ((dev.inmesh.api.config.route.RouteAction) route.action()).rateLimits());
    }

    @Test
    void theFiltersOwnStageVirtualHostOptionDefaultBucketRuleRateLimitsAndWildcardsAreRead() throws Exception {
        HttpConnectionManager h = IstioRateLimit.hcm(IstioRateLimit.filter("""
                stat_prefix: rl
                token_bucket: {max_tokens: 10, fill_interval: 1s}
                stage: 3
                vh_rate_limits: INCLUDE
                always_consume_default_token_bucket: false
                max_dynamic_descriptors: 5
                rate_limits:
                - actions: [{generic_key: {descriptor_value: v}}]
                descriptors:
                - entries: [{key: generic_key, value: v}, {key: user}]
                  token_bucket: {max_tokens: 1, fill_interval: 2s}
                """) + EnvoyValidationTest.ROUTER);
        LocalRateLimit c = h.localRateLimitFilter().localRateLimit();
        assertEquals(3, c.stage());
        assertEquals(RateLimit.VhRateLimits.INCLUDE, c.vhRateLimits());
        assertFalse(c.alwaysConsumeDefaultTokenBucket());
        assertEquals(5, c.maxDynamicDescriptors());
        assertEquals(List.of(new RateLimit(0, "", List.of(new RateLimit.GenericKey("v", null)))), c.rateLimits());
        assertTrue(c.descriptors().get(0).wildcard(), "an entry without a value matches any");
    }

    @Test
    void aBadDescriptorOrOwnRateLimitIsRefusedByItsFieldPath() {
        String bucket = "token_bucket: {max_tokens: 1, fill_interval: 1s}";
        String m = refusedFilter("stat_prefix: x\ndescriptors: [{entries: [{key: path, value: /a}]}]");
        assertTrue(m.contains("http_filters[0].typed_config.descriptors[0].token_bucket: unset"), m);
        m = refusedFilter("stat_prefix: x\ndescriptors: [{entries: [{value: /a}], " + bucket + "}]");
        assertTrue(m.contains("http_filters[0].typed_config.descriptors[0].entries[0].key"), m);
        m = refusedFilter("stat_prefix: x\ndescriptors: [{entries: [], " + bucket + "}]");
        assertTrue(m.contains("http_filters[0].typed_config.descriptors[0].entries"), m);
        m = refusedFilter("stat_prefix: x\ndescriptors: [{entries: [{key: k, value: v}], token_bucket: "
                + "{max_tokens: 1, fill_interval: 0.01s}}]");
        assertTrue(m.contains("http_filters[0].typed_config.descriptors[0].token_bucket.fill_interval"), m);
        m = refusedFilter("stat_prefix: x\ndescriptors: [{entries: [{key: k, value: v}], " + bucket
                + "}, {entries: [{key: k, value: v}], " + bucket + "}]");
        assertTrue(m.contains("http_filters[0].typed_config.descriptors[1].entries") && m.contains("duplicate"), m);
        m = refusedFilter("stat_prefix: x\nrate_limits: [{stage: 1, actions: [{remote_address: {}}]}]");
        assertTrue(m.contains("http_filters[0].typed_config.rate_limits[0].stage"), m);
        m = refusedFilter("stat_prefix: x\nrate_limits: [{actions: [{source_cluster: {}}]}]");
        assertTrue(m.contains("http_filters[0].typed_config.rate_limits[0].actions[0].source_cluster"), m);
    }

    /**
     * The config record, as code builds it, names the field of its own {@code rate_limits} that Envoy refuses, with its
     * index: a {@code disable_key} is no {@code stage}. Before, both were named {@code rate_limits.stage}, with the
     * stage's value.
     */
    @Test
    void theConfigRecordNamesTheOwnRateLimitsFieldItRefuses() {
        LocalRateLimit.TokenBucket b = new LocalRateLimit.TokenBucket(1, 1, Duration.ofSeconds(1));
        List<RateLimit.Action> key = List.of(new RateLimit.GenericKey("v", null));
        java.util.function.Function<RateLimit, String> refusedRecord = r -> assertThrows(
                IllegalArgumentException.class, () -> new LocalRateLimit("x", b, null, null, 0, List.of(), List.of(),
                        false, false, List.of(), 0, null, true, List.of(new RateLimit(0, "", key), r), 20))
                .getMessage();
        String m = refusedRecord.apply(new RateLimit(0, "off", key));
        assertTrue(m.startsWith("rate_limits[1].disable_key: off"), m);
        m = refusedRecord.apply(new RateLimit(2, "", key));
        assertTrue(m.startsWith("rate_limits[1].stage: 2"), m);
    }

    /**
     * A {@code max_dynamic_descriptors} beyond Java's int (a uint32 up to 4294967295, as Envoy takes it) keeps that
     * many, which no map reaches. Before, it read as a negative number and NACKed the filter.
     */
    @Test
    void aMaxDynamicDescriptorsBeyondAnIntIsTaken() throws Exception {
        HttpConnectionManager h = IstioRateLimit.hcm(IstioRateLimit.filter("""
                stat_prefix: rl
                max_dynamic_descriptors: 3000000000
                """) + EnvoyValidationTest.ROUTER);
        assertEquals(Integer.MAX_VALUE, h.localRateLimitFilter().localRateLimit().maxDynamicDescriptors());
    }

    @Test
    void aVirtualHostOrRouteConfigWithoutABucketIsRefusedAsEnvoyRefusesIt() {
        String m = refused(vhost("""
                typed_per_filter_config:
                  envoy.filters.http.local_ratelimit:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    stat_prefix: x
                """));
        assertTrue(m.contains("virtual_hosts[0].typed_per_filter_config[envoy.filters.http.local_ratelimit]"
                + ".token_bucket"), m);
    }

    @Test
    void aRateLimitFilterBetweenTheRbacAndFaultFiltersOrASecondOneIsRefusedByName() {
        String m = refused(EnvoyValidationTest.listenerWithHttpFilters(RBAC + IstioRateLimit.FILTER + FAULT
                + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("http_filters[1].name") && m.contains("between the JWT authentication, RBAC, external authorization, fault and CORS filters"), m);
        m = refused(EnvoyValidationTest.listenerWithHttpFilters(IstioRateLimit.FILTER + IstioRateLimit.FILTER
                + EnvoyValidationTest.ROUTER));
        assertTrue(m.contains("http_filters[1].name") && m.contains("a second local rate limit filter"), m);
    }
}
