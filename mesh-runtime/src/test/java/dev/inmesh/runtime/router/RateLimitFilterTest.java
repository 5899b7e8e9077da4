package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.core.HeaderValueOption.AppendAction;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.ratelimit.GlobalRateLimit;
import dev.inmesh.api.config.route.QueryParameterMatcher;
import dev.inmesh.api.config.route.RateLimit;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteMatch;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.stats.UpstreamStats;
import io.envoyproxy.envoy.extensions.common.ratelimit.v3.RateLimitDescriptor;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitResponse;
import io.vertx.core.MultiMap;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
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
        RouteAction action = RouteAction.toCluster("c").withRateLimits(route, include);
        Route r = Route.of(RouteMatch.prefix("/"), action).withName("r").withVhRateLimits(routeOption);
        VirtualHost v = VirtualHost.of("v", List.of("*"), List.of(r)).withRateLimits(vh, vhOption);
        return sent(stage, v, r, new Routes.Req("svc", "/"), "10.0.0.1");
    }

    /** The descriptors of {@code request} from {@code peerIp} on route {@code r} of {@code v}, as text. */
    private static List<String> sent(int stage, VirtualHost v, Route r, Routes.Req request, String peerIp) {
        RbacFilter.Subject s = new RbacFilter.Subject(request, "10.0.0.2", 9080, peerIp, null, () -> null);
        return filter(stage).descriptors(RateLimitFilter.Policy.compile(v, r), s, "outbound|9080||c").stream()
                .map(RateLimitFilterTest::text).toList();
    }

    /** The descriptors of {@code request} from {@code peerIp} on a route whose only entry has {@code actions}. */
    private static List<String> sent(List<RateLimit.Action> actions, Routes.Req request, String peerIp) {
        RouteAction action = RouteAction.toCluster("c").withRateLimits(List.of(new RateLimit(0, "", actions)), false);
        Route r = Route.of(RouteMatch.prefix("/"), action).withName("r");
        VirtualHost v = VirtualHost.of("v", List.of("*"), List.of(r));
        return sent(0, v, r, request, peerIp);
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
    void theRemoteAddressEntryIsTheTrustedDownstreamAddressTheLastXForwardedForAddressElseThePeersAsEnvoysAction() {
        List<RateLimit.Action> remote = List.of(new RateLimit.RemoteAddress());
        assertEquals(List.of("remote_address=198.51.100.9"), sent(remote, new Routes.Req("svc", "/")
                .with("x-forwarded-for", "203.0.113.7, 198.51.100.9"), "10.0.0.1"),
                "use_remote_address false, no trusted hops: Envoy's remote address is the last x-forwarded-for one");
        assertEquals(List.of("remote_address=10.0.0.1"), sent(remote, new Routes.Req("svc", "/"), "10.0.0.1"),
                "without x-forwarded-for: the connection's peer");
        assertEquals(List.of("remote_address=10.0.0.1"), sent(remote, new Routes.Req("svc", "/")
                .with("x-forwarded-for", "unknown"), "10.0.0.1"), "a last entry that is no address: the peer");
        assertEquals(List.of("remote_address=2001:db8::7"), sent(remote, new Routes.Req("svc", "/")
                .with("x-forwarded-for", "2001:DB8:0:0:0:0:0:7"), "10.0.0.1"), "IPv6 printed as Envoy prints it");
        assertEquals(List.of(), sent(remote, new Routes.Req("svc", "/"), null),
                "no IP address at all (an in-JVM caller): the descriptor is left out");
    }

    @Test
    void theMaskedRemoteAddressEntryIsTheTrustedDownstreamAddresssNetworkAtEachFamilysPrefixLength() {
        List<RateLimit.Action> masked = List.of(new RateLimit.MaskedRemoteAddress(16, 48));
        assertEquals(List.of("masked_remote_address=198.51.0.0/16"), sent(masked, new Routes.Req("svc", "/")
                .with("x-forwarded-for", "203.0.113.7, 198.51.100.9"), "10.0.0.1"),
                "the address remote_address takes (the last x-forwarded-for one), its first 16 bits kept");
        assertEquals(List.of("masked_remote_address=2001:db8:85a3::/48"), sent(masked, new Routes.Req("svc", "/"),
                "2001:db8:85a3:8d3:1319:8a2e:370:7348"), "IPv6 at its own length, printed as Envoy's CidrRange");
        assertEquals(List.of("masked_remote_address=10.1.2.3/32"), sent(List.of(
                new RateLimit.MaskedRemoteAddress(32, 128)), new Routes.Req("svc", "/"), "10.1.2.3"),
                "Envoy's defaults keep the whole address");
        assertEquals(List.of("masked_remote_address=192.168.0.0/13"), sent(List.of(
                new RateLimit.MaskedRemoteAddress(13, 128)), new Routes.Req("svc", "/"), "192.175.255.255"),
                "a length within a byte clears that byte's low bits");
        assertEquals(List.of("masked_remote_address=0.0.0.0/0"), sent(List.of(
                new RateLimit.MaskedRemoteAddress(0, 0)), new Routes.Req("svc", "/"), "10.1.2.3"));
        assertEquals(List.of(), sent(masked, new Routes.Req("svc", "/"), null),
                "no IP address: the descriptor is left out, as remote_address's");
    }

    @Test
    void aQueryParameterValueMatchEntryReadsTheQueryPercentDecodedAndDropsTheDescriptorWhenItDoesNotHoldAsExpected() {
        List<QueryParameterMatcher> tier = List.of(new QueryParameterMatcher("tier", new StringMatcher.Exact("free plan", false)));
        List<RateLimit.Action> match = List.of(new RateLimit.QueryParameterValueMatch(null, "free", true, tier));
        assertEquals(List.of("query_match=free"), sent(match, new Routes.Req("svc", "/a?x=1&tier=free%20plan"),
                "10.0.0.1"), "the value decoded, as Envoy's parseAndDecodeQueryString; query_match the default key");
        assertEquals(List.of("query_match=free"), sent(match, new Routes.Req("svc", "/a?t%69er=free%20plan"),
                "10.0.0.1"), "the name decoded too");
        assertEquals(List.of(), sent(match, new Routes.Req("svc", "/a?tier=paid&tier=free%20plan"), "10.0.0.1"),
                "the first value is the one compared");
        assertEquals(List.of(), sent(match, new Routes.Req("svc", "/a"), "10.0.0.1"), "no query: no match");
        List<RateLimit.Action> notPaid = List.of(new RateLimit.QueryParameterValueMatch("plan", "other", false,
                List.of(new QueryParameterMatcher("paid", null))));
        assertEquals(List.of("plan=other"), sent(notPaid, new Routes.Req("svc", "/a?x"), "10.0.0.1"),
                "expect_match false: the entry when the parameter is absent");
        assertEquals(List.of(), sent(notPaid, new Routes.Req("svc", "/a?paid"), "10.0.0.1"),
                "a bare name is present");
    }

    @Test
    void anEntryWhoseSkipIfAbsentHeadersAreAllMissingIsStillSentAsAnEmptyDescriptorAsEnvoySendsIt() {
        List<RateLimit.Action> skipped = List.of(new RateLimit.RequestHeaders("x-user", "user", true));
        assertEquals(List.of(""), sent(skipped, new Routes.Req("svc", "/"), "10.0.0.1"),
                "every action skipped: Envoy keeps the descriptor, with no entry, and calls the service");
        assertEquals(List.of("user=u1"), sent(skipped, new Routes.Req("svc", "/").with("x-user", "u1"), "10.0.0.1"));
        assertEquals(List.of(), sent(List.of(new RateLimit.RequestHeaders("x-user", "user", false)),
                new Routes.Req("svc", "/"), "10.0.0.1"), "without skip_if_absent the descriptor is dropped");
    }

    @Test
    void aRequestHeadersEntryOfAHeaderSentTwiceIsItsFirstValueAsEnvoysActionSoASecondValueEscapesNoRule() {
        assertEquals(List.of("user=bob"), sent(List.of(new RateLimit.RequestHeaders("x-user", "user", false)),
                new Routes.Req("svc", "/").with("x-user", "bob").with("x-user", "alice"), "10.0.0.1"),
                "a rule for user=bob still limits a request that also says x-user: alice");
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

        List<String> longWindows = new ArrayList<>();
        RateLimitFilter.xRateLimitHeaders(List.of(
                status(1000, RateLimitResponse.RateLimit.Unit.WEEK, "", 900, 10),
                status(5000, RateLimitResponse.RateLimit.Unit.MONTH, "", 800, 20),
                status(9000, RateLimitResponse.RateLimit.Unit.YEAR, "", 700, 30)), longWindows);
        assertEquals(List.of("x-ratelimit-limit", "9000, 1000;w=604800, 5000;w=2592000, 9000;w=31536000",
                "x-ratelimit-remaining", "700", "x-ratelimit-reset", "30"), longWindows,
                "weeks, months (30 days) and years (365 days) have windows too, as Envoy's headers give them");

        List<String> none = new ArrayList<>();
        RateLimitFilter.xRateLimitHeaders(List.of(RateLimitResponse.DescriptorStatus.getDefaultInstance()), none);
        assertEquals(List.of(), none, "no status with a current limit: no headers");
    }

    @Test
    void aRefusalGetsTheServicesHeadersThenTheFiltersOwnResponseHeadersToAddByTheirAppendActions() {
        RateLimitFilter f = RateLimitFilter.compile(RateLimitFilter.NAME, new GlobalRateLimit("d", 0, null, null,
                false, "rl", null, false, true, 0, 0, List.of(
                        new HeaderValueOption("x-reason", "quota", AppendAction.OVERWRITE_IF_EXISTS_OR_ADD, false),
                        new HeaderValueOption("x-team", "mesh", AppendAction.ADD_IF_ABSENT, false),
                        new HeaderValueOption("x-extra", "1", AppendAction.APPEND_IF_EXISTS_OR_ADD, false),
                        new HeaderValueOption("x-missing", "m", AppendAction.OVERWRITE_IF_EXISTS, false))));
        RateLimitResponse over = RateLimitResponse.newBuilder().setOverallCode(RateLimitResponse.Code.OVER_LIMIT)
                .addResponseHeadersToAdd(header("x-reason", "service"))
                .addResponseHeadersToAdd(header("x-team", "ratelimit")).build();
        ExtAuthzFilter.Outcome o = f.answer(over, new MultiMapHeaders(MultiMap.caseInsensitiveMultiMap()), null);
        assertEquals(429, o.denial().status());
        assertEquals(Map.of("x-reason", List.of("service"), "x-team", List.of("ratelimit"),
                "x-envoy-ratelimited", List.of("true")), byName(o.denial().headers()),
                "the service's headers, then x-envoy-ratelimited");
        // the reply: the service's over its own, then the filter's, as Envoy's modify_headers applies them last
        MultiMap reply = MultiMap.caseInsensitiveMultiMap().add("x-team", "route");
        Router.replaceHeaders(reply, o.denial().headers());
        o.denial().replyHeaders().applyOn(reply, o.denial().status(), null);
        List<String> pairs = new ArrayList<>();
        reply.forEach((name, value) -> {
            pairs.add(name);
            pairs.add(value);
        });
        assertEquals(Map.of("x-reason", List.of("quota"), "x-team", List.of("ratelimit"), "x-extra", List.of("1"),
                "x-envoy-ratelimited", List.of("true")), byName(pairs),
                "the filter's headers are evaluated over the reply's, as Envoy's local reply applies them last");
    }

    @Test
    void aRefusalIsChargedToTheRoutesClusterAsACompletedRequestOfItsStatusAsEnvoysFilterChargesIt() {
        RateLimitFilter f = filter(0);
        List<String> over = new ArrayList<>();
        f.answer(RateLimitResponse.newBuilder().setOverallCode(RateLimitResponse.Code.OVER_LIMIT).build(),
                new MultiMapHeaders(MultiMap.caseInsensitiveMultiMap()), recording(over));
        assertEquals(List.of("rateLimit[OVER_LIMIT]", "requestCompleted[429]"), over,
                "ratelimit.over_limit, and upstream_rq_completed and upstream_rq_4xx for the 429");
        List<String> ok = new ArrayList<>();
        f.answer(RateLimitResponse.newBuilder().setOverallCode(RateLimitResponse.Code.OK).build(),
                new MultiMapHeaders(MultiMap.caseInsensitiveMultiMap()), recording(ok));
        assertEquals(List.of("rateLimit[OK]"), ok, "a request let through is charged by its upstream answer");
    }

    /** Cluster statistics that record the calls made to them. */
    private static UpstreamStats recording(List<String> calls) {
        return (UpstreamStats) Proxy.newProxyInstance(UpstreamStats.class.getClassLoader(),
                new Class<?>[] {UpstreamStats.class}, (proxy, method, args) -> {
                    calls.add(method.getName() + (args == null ? "" : Arrays.toString(args)));
                    return null;
                });
    }

    private static io.envoyproxy.envoy.config.core.v3.HeaderValue header(String name, String value) {
        return io.envoyproxy.envoy.config.core.v3.HeaderValue.newBuilder().setKey(name).setValue(value).build();
    }

    private static Map<String, List<String>> byName(List<String> pairs) {
        Map<String, List<String>> out = new java.util.LinkedHashMap<>();
        for (int i = 0; i + 1 < pairs.size(); i += 2) {
            out.computeIfAbsent(pairs.get(i), k -> new ArrayList<>()).add(pairs.get(i + 1));
        }
        return out;
    }

    private static RateLimitResponse.DescriptorStatus status(int limit, RateLimitResponse.RateLimit.Unit unit,
                                                             String name, int remaining, long reset) {
        return RateLimitResponse.DescriptorStatus.newBuilder().setCode(RateLimitResponse.Code.OK)
                .setCurrentLimit(RateLimitResponse.RateLimit.newBuilder().setRequestsPerUnit(limit).setUnit(unit)
                        .setName(name)).setLimitRemaining(remaining)
                .setDurationUntilReset(com.google.protobuf.Duration.newBuilder().setSeconds(reset)).build();
    }
}
