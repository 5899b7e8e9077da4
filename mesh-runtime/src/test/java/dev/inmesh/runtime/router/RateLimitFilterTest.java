package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.ratelimit.GlobalRateLimit;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.RateLimit;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteMatch;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.api.config.core.HeaderMutations;
import io.envoyproxy.envoy.extensions.common.ratelimit.v3.RateLimitDescriptor;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * Which {@code rate_limits} entries Envoy's global rate limit filter sends, and the {@code x-ratelimit-*} headers it
 * makes of the service's statuses: the route's own entries of the filter's stage, its virtual host's only with
 * {@code include_vh_rate_limits} or when the route has none at all.
 */
class RateLimitFilterTest {
    private static final RateLimit VH = new RateLimit(0, "", List.of(new RateLimit.GenericKey("vh", null)));
    private static final RateLimit ROUTE = new RateLimit(0, "", List.of(new RateLimit.GenericKey("route", null)));
    private static final RateLimit ROUTE_STAGE_1 = new RateLimit(1, "",
            List.of(new RateLimit.DestinationCluster()));

    private static RateLimitFilter filter(int stage) {
        return filter(stage, null);
    }

    private static RateLimitFilter filter(int stage, GlobalRateLimit.RequestType type) {
        return RateLimitFilter.compile(RateLimitFilter.NAME, new GlobalRateLimit("d", stage, type, null, false, "rl",
                null, false, true, 0, 0, List.of()));
    }

    private static List<String> sent(int stage, List<RateLimit> route, boolean include, List<RateLimit> vh) {
        return sent(stage, route, include, vh, Map.of(), Map.of());
    }

    /** As {@link #sent}, with the route's and the virtual host's {@code vh_rate_limits} by filter name. */
    private static List<String> sent(int stage, List<RateLimit> route, boolean include, List<RateLimit> vh,
                                     Map<String, RateLimit.VhRateLimits> routeOption,
                                     Map<String, RateLimit.VhRateLimits> vhOption) {
        RouteAction action = new RouteAction(new ClusterSpecifier.Named("c"), null, null, null, null, null, null,
                false, List.of(), null, include, false, null, List.of(), null, route);
        Route r = new Route("r", RouteMatch.prefix("/"), action, null, HeaderMutations.NONE, null, null, null, null,
                null, routeOption);
        VirtualHost v = new VirtualHost("v", List.of("*"), List.of(r), null, false, false, HeaderMutations.NONE,
                null, null, null, null, null, vh, vhOption);
        RbacFilter.Subject s = new RbacFilter.Subject(new Routes.Req("svc", "/"), "10.0.0.2", 9080, "10.0.0.1",
                null, () -> null);
        return filter(stage).descriptors(RateLimitFilter.Policy.compile(v, r), s, "outbound|9080||c").stream()
                .map(RateLimitFilterTest::text).toList();
    }

    private static String text(RateLimitDescriptor d) {
        return d.getEntriesList().stream().map(e -> e.getKey() + "=" + e.getValue())
                .collect(Collectors.joining(","));
    }

    @Test
    void theRoutesOwnEntriesReplaceItsVirtualHostsUnlessItIncludesThem() {
        assertEquals(List.of("generic_key=route"), sent(0, List.of(ROUTE), false, List.of(VH)));
        assertEquals(List.of("generic_key=route", "generic_key=vh"), sent(0, List.of(ROUTE), true, List.of(VH)),
                "include_vh_rate_limits: the route's, then the virtual host's");
        assertEquals(List.of("generic_key=vh"), sent(0, List.of(), false, List.of(VH)),
                "a route without rate_limits takes its virtual host's");
    }

    @Test
    void aRateLimitPerRoutesVhRateLimitsOfTheFilterIncludesOrIgnoresTheVirtualHostsTheRoutesOwnFirst() {
        String filter = RateLimitFilter.NAME;
        assertEquals(List.of("generic_key=route", "generic_key=vh"), sent(0, List.of(ROUTE), false, List.of(VH),
                Map.of(), Map.of(filter, RateLimit.VhRateLimits.INCLUDE)), "the virtual host's INCLUDE");
        assertEquals(List.of(), sent(0, List.of(), false, List.of(VH), Map.of(filter,
                RateLimit.VhRateLimits.IGNORE), Map.of(filter, RateLimit.VhRateLimits.INCLUDE)),
                "the route's IGNORE over its virtual host's INCLUDE: nothing, though the route has no rate_limits");
        assertEquals(List.of("generic_key=route", "generic_key=vh"), sent(0, List.of(ROUTE), true, List.of(VH),
                Map.of(filter, RateLimit.VhRateLimits.IGNORE), Map.of()), "include_vh_rate_limits wins");
        assertEquals(List.of("generic_key=vh"), sent(0, List.of(), false, List.of(VH),
                Map.of("another.ratelimit", RateLimit.VhRateLimits.IGNORE), Map.of()),
                "another filter's config changes nothing for this one");
    }

    @Test
    void onlyTheEntriesOfTheFiltersStageAreSentAndARouteWithEntriesOfAnotherStageStillReplacesItsVirtualHosts() {
        assertEquals(List.of(), sent(0, List.of(ROUTE_STAGE_1), false, List.of(VH)),
                "the route has rate_limits (of stage 1): its virtual host's are not read");
        assertEquals(List.of("destination_cluster=outbound|9080||c"),
                sent(1, List.of(ROUTE_STAGE_1, ROUTE), false, List.of(VH)));
    }

    @Test
    void requestTypeInternalChecksOnlyRequestsWithXEnvoyInternalAndExternalOnlyThoseWithout() {
        Routes.Req sidecar = new Routes.Req("svc", "/");
        Routes.Req internal = new Routes.Req("svc", "/").with("x-envoy-internal", "true");
        RateLimitFilter onlyInternal = filter(0, GlobalRateLimit.RequestType.INTERNAL);
        RateLimitFilter onlyExternal = filter(0, GlobalRateLimit.RequestType.EXTERNAL);
        RateLimitFilter both = filter(0, null);
        assertEquals(List.of(false, true), List.of(onlyInternal.ofRequestType(sidecar),
                onlyInternal.ofRequestType(internal)));
        assertEquals(List.of(true, false), List.of(onlyExternal.ofRequestType(sidecar),
                onlyExternal.ofRequestType(internal)), "a sidecar's request is external");
        assertEquals(List.of(true, true), List.of(both.ofRequestType(sidecar), both.ofRequestType(internal)));
    }

    @Test
    void theXRateLimitHeadersComeFromTheStatusWithTheFewestRemainingWithEveryLimitsQuotaPolicy() {
        List<String> out = new ArrayList<>();
        RateLimitFilter.xRateLimitHeaders(List.of(
                status(10, RateLimitResponse.RateLimit.Unit.MINUTE, "per-path", 7, 30),
                status(100, RateLimitResponse.RateLimit.Unit.HOUR, "", 3, 1200),
                RateLimitResponse.DescriptorStatus.newBuilder().setLimitRemaining(0).build()), out);
        assertEquals(List.of("x-ratelimit-limit", "100, 10;w=60;name=\"per-path\", 100;w=3600",
                "x-ratelimit-remaining", "3", "x-ratelimit-reset", "1200"), out);

        List<String> none = new ArrayList<>();
        RateLimitFilter.xRateLimitHeaders(List.of(RateLimitResponse.DescriptorStatus.getDefaultInstance()), none);
        assertEquals(List.of(), none, "no status with a current limit: no headers");
    }

    private static RateLimitResponse.DescriptorStatus status(int limit, RateLimitResponse.RateLimit.Unit unit,
                                                             String name, int remaining, long reset) {
        return RateLimitResponse.DescriptorStatus.newBuilder().setCode(RateLimitResponse.Code.OK)
                .setCurrentLimit(RateLimitResponse.RateLimit.newBuilder().setRequestsPerUnit(limit).setUnit(unit)
                        .setName(name)).setLimitRemaining(remaining)
                .setDurationUntilReset(com.google.protobuf.Duration.newBuilder().setSeconds(reset)).build();
    }
}
