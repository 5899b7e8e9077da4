package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import com.google.protobuf.DescriptorProtos;
import com.google.protobuf.Descriptors;
import com.google.protobuf.Duration;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.Message;
import com.google.protobuf.Struct;
import com.google.protobuf.Timestamp;
import com.google.protobuf.UInt32Value;
import com.google.protobuf.UInt64Value;
import io.envoyproxy.envoy.config.accesslog.v3.AccessLog;
import io.envoyproxy.envoy.config.accesslog.v3.AccessLogFilter;
import io.envoyproxy.envoy.config.accesslog.v3.ResponseFlagFilter;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.config.core.v3.DnsResolutionConfig;
import io.envoyproxy.envoy.config.core.v3.HealthCheck;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.config.core.v3.RequestMethod;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.core.v3.TypedExtensionConfig;
import io.envoyproxy.envoy.config.core.v3.UpstreamHttpProtocolOptions;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.listener.v3.ListenerFilter;
import io.envoyproxy.envoy.config.listener.v3.ListenerFilterChainMatchPredicate;
import io.envoyproxy.envoy.config.route.v3.DirectResponseAction;
import io.envoyproxy.envoy.config.route.v3.InternalRedirectPolicy;
import io.envoyproxy.envoy.config.route.v3.RateLimit;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteAction;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.type.v3.Percent;
import io.envoyproxy.pgv.validate.Validate;
import org.junit.jupiter.api.Test;

/** Envoy's proto constraints, checked on Envoy's own messages: one test per kind of rule. */
class ProtoConstraintCheckTest {

    static String violation(Message m) {
        FieldError e = ProtoConstraintCheck.find(m);
        return e == null ? null : e.getMessage();
    }

    static Cluster.Builder cluster() {
        return Cluster.newBuilder().setName("c1").setType(Cluster.DiscoveryType.STATIC)
                .setConnectTimeout(Duration.newBuilder().setSeconds(1));
    }

    static HealthCheck.Builder healthCheck() {
        return HealthCheck.newBuilder().setTimeout(Duration.newBuilder().setSeconds(1))
                .setInterval(Duration.newBuilder().setSeconds(5))
                .setUnhealthyThreshold(UInt32Value.of(2)).setHealthyThreshold(UInt32Value.of(1))
                .setHttpHealthCheck(HealthCheck.HttpHealthCheck.newBuilder().setPath("/healthz"));
    }

    static RouteConfiguration routes(Route.Builder route) {
        return RouteConfiguration.newBuilder().setName("9080").addVirtualHosts(VirtualHost.newBuilder()
                .setName("reviews").addDomains("reviews").addRoutes(route)).build();
    }

    static Route.Builder route() {
        return Route.newBuilder().setMatch(RouteMatch.newBuilder().setPrefix("/"))
                .setRoute(RouteAction.newBuilder().setCluster("c1"));
    }

    static Listener.Builder listener() {
        return Listener.newBuilder().setName("l1").setAddress(Address.newBuilder().setSocketAddress(
                SocketAddress.newBuilder().setAddress("0.0.0.0").setPortValue(9080)));
    }

    @Test
    void aValidResourceAndFieldsLeftUnsetPass() {
        assertNull(violation(cluster().build()));
        // unset: neither connect_timeout's gt nor the health check's rules apply
        assertNull(violation(Cluster.newBuilder().setName("c1").build()));
        assertNull(violation(cluster().addHealthChecks(healthCheck()).build()));
        assertNull(violation(routes(route())));
        assertNull(violation(listener().build()));
    }

    @Test
    void aDurationMustBeAboveItsBound() {
        assertEquals("connect_timeout: 0s (expected: > 0s)",
                violation(cluster().setConnectTimeout(Duration.getDefaultInstance()).build()));
        assertEquals("dns_failure_refresh_rate.base_interval: 0.0005s (expected: > 0.001s)",
                violation(cluster().setDnsFailureRefreshRate(Cluster.RefreshRate.newBuilder()
                        .setBaseInterval(Duration.newBuilder().setNanos(500_000))).build()));
    }

    @Test
    void everyDurationMustBeOneEnvoyTakesWithRulesOrNot() {
        assertEquals("connect_timeout: {seconds: 0, nanos: 1500000000} (expected: a duration, nanos <= 999999999 and "
                + "seconds <= 9223372035)", violation(cluster().setConnectTimeout(Duration.newBuilder()
                .setNanos(1_500_000_000)).build()));
        assertEquals("connect_timeout: {seconds: 2, nanos: -1} (expected: a duration, neither seconds nor nanos "
                + "negative)", violation(cluster().setConnectTimeout(Duration.newBuilder().setSeconds(2).setNanos(-1))
                .build()));
        // RouteAction.timeout has no rules: Envoy checks it all the same
        assertEquals("virtual_hosts[0].routes[0].route.timeout: {seconds: -5, nanos: 0} (expected: a duration, neither "
                + "seconds nor nanos negative)", violation(routes(route().setRoute(RouteAction.newBuilder()
                .setCluster("c1").setTimeout(Duration.newBuilder().setSeconds(-5))))));
        assertEquals("virtual_hosts[0].routes[0].route.timeout: {seconds: 9223372036, nanos: 0} (expected: a duration, "
                + "nanos <= 999999999 and seconds <= 9223372035)", violation(routes(route().setRoute(RouteAction
                .newBuilder().setCluster("c1").setTimeout(Duration.newBuilder().setSeconds(9_223_372_036L))))));
        assertNull(violation(routes(route().setRoute(RouteAction.newBuilder().setCluster("c1")
                .setTimeout(Duration.newBuilder().setSeconds(9_223_372_035L).setNanos(999_999_999))))));
    }

    /** A message of one Timestamp field {@code at} with {@code rules}: no Envoy message has timestamp rules. */
    static Descriptors.Descriptor timestamped(Validate.TimestampRules rules) throws Exception {
        DescriptorProtos.FileDescriptorProto file = DescriptorProtos.FileDescriptorProto.newBuilder()
                .setName("timestamped.proto").setPackage("test").setSyntax("proto3")
                .addDependency(Timestamp.getDescriptor().getFile().getName())
                .addDependency(Validate.getDescriptor().getName())
                .addMessageType(DescriptorProtos.DescriptorProto.newBuilder().setName("Timestamped")
                        .addField(DescriptorProtos.FieldDescriptorProto.newBuilder().setName("at").setNumber(1)
                                .setType(DescriptorProtos.FieldDescriptorProto.Type.TYPE_MESSAGE)
                                .setTypeName(".google.protobuf.Timestamp")
                                .setOptions(DescriptorProtos.FieldOptions.newBuilder().setExtension(Validate.rules,
                                        Validate.FieldRules.newBuilder().setTimestamp(rules).build()))))
                .build();
        return Descriptors.FileDescriptor.buildFrom(file, new Descriptors.FileDescriptor[] {
                Timestamp.getDescriptor().getFile(), Validate.getDescriptor()}).findMessageTypeByName("Timestamped");
    }

    @Test
    void aTimestampIsCheckedAgainstItsBounds() throws Exception {
        Descriptors.Descriptor type = timestamped(Validate.TimestampRules.newBuilder()
                .setLt(Timestamp.newBuilder().setSeconds(100)).build());
        Descriptors.FieldDescriptor at = type.findFieldByName("at");
        assertEquals("at: 1970-01-01T00:02:00Z (expected: < 1970-01-01T00:01:40Z)", violation(DynamicMessage
                .newBuilder(type).setField(at, Timestamp.newBuilder().setSeconds(120).build()).build()));
        assertNull(violation(DynamicMessage.newBuilder(type).setField(at, Timestamp.newBuilder().setSeconds(99)
                .build()).build()));
    }

    @Test
    void aRequiredDurationOrMessageMustBeSet() {
        assertEquals("health_checks[0].timeout: required",
                violation(cluster().addHealthChecks(healthCheck().clearTimeout()).build()));
        assertEquals("health_checks[0].unhealthy_threshold: required",
                violation(cluster().addHealthChecks(healthCheck().clearUnhealthyThreshold()).build()));
        assertEquals("dns_failure_refresh_rate.base_interval: required",
                violation(cluster().setDnsFailureRefreshRate(Cluster.RefreshRate.getDefaultInstance()).build()));
    }

    @Test
    void anUnsignedNumberIsCheckedAgainstItsBoundsAsUnsigned() {
        assertEquals("policy.overprovisioning_factor: 0 (expected: > 0)",
                violation(ClusterLoadAssignment.newBuilder().setClusterName("c1").setPolicy(
                        ClusterLoadAssignment.Policy.newBuilder().setOverprovisioningFactor(UInt32Value.of(0)))
                        .build()));
        assertEquals("address.socket_address.port_value: 70000 (expected: <= 65535)",
                violation(listener().setAddress(Address.newBuilder().setSocketAddress(SocketAddress.newBuilder()
                        .setAddress("0.0.0.0").setPortValue(70_000))).build()));
        assertEquals("ring_hash_lb_config.maximum_ring_size: 18446744073709551615 (expected: <= 8388608)",
                violation(cluster().setRingHashLbConfig(Cluster.RingHashLbConfig.newBuilder()
                        .setMaximumRingSize(UInt64Value.of(-1))).build()));
    }

    @Test
    void aNumberBetweenTwoBoundsIsInsideThem() {
        Route.Builder answer = Route.newBuilder().setMatch(RouteMatch.newBuilder().setPrefix("/"));
        assertEquals("virtual_hosts[0].routes[0].direct_response.status: 600 (expected: >= 200 and < 600)",
                violation(routes(answer.setDirectResponse(DirectResponseAction.newBuilder().setStatus(600)))));
        assertEquals("virtual_hosts[0].routes[0].direct_response.status: 199 (expected: >= 200 and < 600)",
                violation(routes(answer.setDirectResponse(DirectResponseAction.newBuilder().setStatus(199)))));
        assertNull(violation(routes(answer.setDirectResponse(DirectResponseAction.newBuilder().setStatus(599)))));
    }

    @Test
    void aDoubleIsCheckedAgainstItsBounds() {
        assertEquals("common_lb_config.healthy_panic_threshold.value: 100.5 (expected: >= 0 and <= 100)",
                violation(cluster().setCommonLbConfig(Cluster.CommonLbConfig.newBuilder()
                        .setHealthyPanicThreshold(Percent.newBuilder().setValue(100.5))).build()));
        assertNull(violation(cluster().setCommonLbConfig(Cluster.CommonLbConfig.newBuilder()
                .setHealthyPanicThreshold(Percent.newBuilder().setValue(100))).build()));
    }

    @Test
    void aBoolMustEqualItsConst() {
        Listener l = listener().addListenerFilters(ListenerFilter.newBuilder().setName("envoy.filters.listener.tls")
                .setFilterDisabled(ListenerFilterChainMatchPredicate.newBuilder().setAnyMatch(false))).build();
        assertEquals("listener_filters[0].filter_disabled.any_match: false (expected: true)", violation(l));
    }

    @Test
    void aStringHasAMinimumLength() {
        assertEquals("name: \"\" (expected: at least 1 character)", violation(cluster().setName("").build()));
    }

    @Test
    void aStringHasAMaximumLengthInBytes() {
        String key = "x".repeat(16_385);
        RouteConfiguration r = routes(route().addRequestHeadersToAdd(HeaderValueOption.newBuilder()
                .setHeader(HeaderValue.newBuilder().setKey(key).setValue("1"))));
        assertEquals("virtual_hosts[0].routes[0].request_headers_to_add[0].header.key: \"" + "x".repeat(64)
                + "\"... (16385 bytes) (expected: at most 16384 bytes)", violation(r));
    }

    @Test
    void aLongStringShowsItsLengthInTheRulesUnitAndIsCutBetweenCharacters() {
        // "x" and 4096 emoji: 8193 UTF-16 units, 4097 characters, 16385 bytes
        String key = "x" + "\uD83D\uDE00".repeat(4096);
        RouteConfiguration r = routes(route().addRequestHeadersToAdd(HeaderValueOption.newBuilder()
                .setHeader(HeaderValue.newBuilder().setKey(key).setValue("1"))));
        assertEquals("virtual_hosts[0].routes[0].request_headers_to_add[0].header.key: \"x" + "\uD83D\uDE00".repeat(63)
                + "\"... (16385 bytes) (expected: at most 16384 bytes)", violation(r));
    }

    @Test
    void aHeaderValueWithALineBreakFailsTheLooseHeaderRule() {
        RouteConfiguration r = routes(route().addRequestHeadersToAdd(HeaderValueOption.newBuilder()
                .setHeader(HeaderValue.newBuilder().setKey("x-a").setValue("1\r\nx-b: 2"))));
        assertEquals("virtual_hosts[0].routes[0].request_headers_to_add[0].header.value: \"1\\r\\nx-b: 2\" "
                + "(expected: no NUL, CR or LF)", violation(r));
        // loose: other control characters pass
        assertNull(violation(routes(route().addRequestHeadersToAdd(HeaderValueOption.newBuilder()
                .setHeader(HeaderValue.newBuilder().setKey("x-a").setValue("1\u0001"))))));
    }

    @Test
    void aStrictHeaderRuleRefusesWhatTheLooseOneTakesAndIgnoreEmptyLetsEmptyPass() {
        assertEquals("upstream_http_protocol_options.override_auto_sni_header: \"bad name\" (expected: an HTTP header "
                + "name)", violation(cluster().setUpstreamHttpProtocolOptions(UpstreamHttpProtocolOptions.newBuilder()
                .setOverrideAutoSniHeader("bad name")).build()));
        assertNull(violation(cluster().setUpstreamHttpProtocolOptions(UpstreamHttpProtocolOptions.newBuilder()
                .setOverrideAutoSniHeader("")).build()));
        assertEquals("health_checks[0].http_health_check.host: \"a\\u0001b\" (expected: an HTTP header value, without "
                + "control characters)", violation(cluster().addHealthChecks(healthCheck().setHttpHealthCheck(
                HealthCheck.HttpHealthCheck.newBuilder().setPath("/healthz").setHost("a\u0001b"))).build()));
    }

    @Test
    void aStringMustMatchItsPattern() {
        assertEquals("virtual_hosts[0].routes[0].match.path_separated_prefix: \"/api/\" (expected: a match of the RE2 "
                + "expression ^[^?#]+[^?#/]$)", violation(routes(route().setMatch(RouteMatch.newBuilder()
                .setPathSeparatedPrefix("/api/")))));
        assertNull(violation(routes(route().setMatch(RouteMatch.newBuilder().setPathSeparatedPrefix("/api")))));
    }

    static RouteConfiguration hitsAddend(String format) {
        return routes(route().setRoute(RouteAction.newBuilder().setCluster("c1").addRateLimits(RateLimit.newBuilder()
                .addActions(RateLimit.Action.newBuilder().setGenericKey(RateLimit.Action.GenericKey.newBuilder()
                        .setDescriptorValue("v")))
                .setHitsAddend(RateLimit.HitsAddend.newBuilder().setFormat(format)))));
    }

    @Test
    void aStringMustHaveItsPrefixAndSuffix() {
        String at = "virtual_hosts[0].routes[0].route.rate_limits[0].hits_addend.format: ";
        assertEquals(at + "\"BYTES_RECEIVED%\" (expected: starting with \"%\")",
                violation(hitsAddend("BYTES_RECEIVED%")));
        assertEquals(at + "\"%BYTES_RECEIVED\" (expected: ending with \"%\")",
                violation(hitsAddend("%BYTES_RECEIVED")));
        assertNull(violation(hitsAddend("%BYTES_RECEIVED%")));
        assertNull(violation(hitsAddend("")), "ignore_empty");
    }

    @Test
    void aStringMustBeOneOfItsList() {
        Listener l = listener().addAccessLog(AccessLog.newBuilder().setName("envoy.access_loggers.stdout")
                .setFilter(AccessLogFilter.newBuilder().setResponseFlagFilter(ResponseFlagFilter.newBuilder()
                        .addFlags("UH").addFlags("XX")))).build();
        String v = violation(l);
        assertEquals("access_log[0].filter.response_flag_filter.flags[1]: \"XX\" (expected: one of LH, UH, ",
                v.substring(0, v.indexOf("UH, ") + 4));
    }

    @Test
    void bytesHaveAMaximumLength() {
        RouteConfiguration r = routes(route().addRequestHeadersToAdd(HeaderValueOption.newBuilder()
                .setHeader(HeaderValue.newBuilder().setKey("x-a").setRawValue(ByteString.copyFrom(new byte[16_385])))));
        assertEquals("virtual_hosts[0].routes[0].request_headers_to_add[0].header.raw_value: 16385 bytes (expected: at "
                + "most 16384 bytes)", violation(r));
    }

    @Test
    void anEnumMustBeDefinedAndNotExcluded() {
        assertEquals("type: 99 (expected: one of STATIC, STRICT_DNS, LOGICAL_DNS, EDS or ORIGINAL_DST)",
                violation(cluster().setTypeValue(99).build()));
        assertEquals("health_checks[0].http_health_check.method: CONNECT (expected: none of CONNECT)",
                violation(cluster().addHealthChecks(healthCheck().setHttpHealthCheck(HealthCheck.HttpHealthCheck
                        .newBuilder().setPath("/healthz").setMethod(RequestMethod.CONNECT))).build()));
    }

    @Test
    void aRepeatedFieldHasAMinimumAndAMaximumCount() {
        assertEquals("dns_resolution_config.resolvers: 0 items (expected: at least 1 item)",
                violation(cluster().setDnsResolutionConfig(DnsResolutionConfig.getDefaultInstance()).build()));
        RouteConfiguration.Builder many = routes(route()).toBuilder();
        for (int i = 0; i <= 1000; i++) {
            many.addRequestHeadersToAdd(HeaderValueOption.newBuilder().setHeader(HeaderValue.newBuilder()
                    .setKey("x-" + i).setValue("1")));
        }
        assertEquals("request_headers_to_add: 1001 items (expected: at most 1000 items)", violation(many.build()));
    }

    @Test
    void aRepeatedFieldMayHaveToHoldUniqueItems() {
        Route.Builder r = route().setRoute(RouteAction.newBuilder().setCluster("c1").setInternalRedirectPolicy(
                InternalRedirectPolicy.newBuilder().addResponseHeadersToCopy("x-a").addResponseHeadersToCopy("x-a")));
        assertEquals("virtual_hosts[0].routes[0].route.internal_redirect_policy.response_headers_to_copy[1]: \"x-a\" "
                + "(expected: unique items; [0] is the same)", violation(routes(r)));
    }

    @Test
    void eachItemOfARepeatedFieldIsChecked() {
        RouteConfiguration r = RouteConfiguration.newBuilder().setName("9080").addVirtualHosts(VirtualHost
                .newBuilder().setName("reviews").addDomains("reviews").addDomains("a\nb").addRoutes(route())).build();
        assertEquals("virtual_hosts[0].domains[1]: \"a\\nb\" (expected: no NUL, CR or LF)", violation(r));
    }

    @Test
    void aMapsKeysAndPairsAreCheckedAndItsMessagesWalkedInto() {
        assertEquals("metadata.filter_metadata: key \"\" (expected: at least 1 character)",
                violation(cluster().setMetadata(Metadata.newBuilder().putFilterMetadata("", Struct
                        .getDefaultInstance())).build()));
        var tree = com.github.xds.type.matcher.v3.Matcher.MatcherTree.newBuilder()
                .setInput(com.github.xds.core.v3.TypedExtensionConfig.newBuilder().setName("port")
                        .setTypedConfig(Any.pack(Struct.getDefaultInstance())));
        assertEquals("filter_chain_matcher.matcher_tree.exact_match_map.map: 0 pairs (expected: at least 1 pair)",
                violation(listener().setFilterChainMatcher(com.github.xds.type.matcher.v3.Matcher.newBuilder()
                        .setMatcherTree(tree.setExactMatchMap(com.github.xds.type.matcher.v3.Matcher.MatcherTree
                                .MatchMap.getDefaultInstance()))).build()));
        assertEquals("filter_chain_matcher.matcher_tree.exact_match_map.map[\"9080\"]: one of matcher or action is "
                + "required", violation(listener().setFilterChainMatcher(com.github.xds.type.matcher.v3.Matcher
                .newBuilder().setMatcherTree(tree.setExactMatchMap(com.github.xds.type.matcher.v3.Matcher
                        .MatcherTree.MatchMap.newBuilder().putMap("9080", com.github.xds.type.matcher.v3.Matcher
                                .OnMatch.getDefaultInstance())))).build()));
    }

    @Test
    void aRequiredOneofMustHaveAFieldSet() {
        assertEquals("eds_cluster_config.eds_config: one of path, path_config_source, api_config_source, ads or self "
                + "is required", violation(cluster().setType(Cluster.DiscoveryType.EDS).setEdsClusterConfig(
                Cluster.EdsClusterConfig.newBuilder().setEdsConfig(ConfigSource.getDefaultInstance())).build()));
    }

    @Test
    void aRequiredAnyMustBeSetButWhatItPacksIsNotWalkedInto() {
        assertEquals("typed_dns_resolver_config.typed_config: required", violation(cluster().setTypedDnsResolverConfig(
                TypedExtensionConfig.newBuilder().setName("envoy.network.dns_resolver.cares")).build()));
        // an empty stat_prefix fails the connection manager's rules, which Envoy checks when its factory reads it
        Listener l = listener().addFilterChains(FilterChain.newBuilder().addFilters(Filter.newBuilder()
                .setName("envoy.filters.network.http_connection_manager")
                .setTypedConfig(Any.pack(HttpConnectionManager.newBuilder().setStatPrefix("").build())))).build();
        assertNull(violation(l));
    }
}
