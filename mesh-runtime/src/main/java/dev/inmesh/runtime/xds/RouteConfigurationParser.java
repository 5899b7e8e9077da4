package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.route.Action;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.CorsPolicy;
import dev.inmesh.api.config.route.DirectResponseAction;
import dev.inmesh.api.config.route.HashPolicy;
import dev.inmesh.api.config.route.HedgePolicy;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.api.config.route.InternalRedirectPolicy;
import dev.inmesh.api.config.route.PathMatcher;
import dev.inmesh.api.config.route.QueryParameterMatcher;
import dev.inmesh.api.config.route.RedirectAction;
import dev.inmesh.api.config.route.RegexRewrite;
import dev.inmesh.api.config.route.RequestMirrorPolicy;
import dev.inmesh.api.config.route.RetryPolicy;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.RouteMatch;
import dev.inmesh.api.config.route.VirtualHost;
import io.envoyproxy.envoy.config.route.v3.WeightedCluster;
import io.envoyproxy.envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** Parses RDS resources ({@code envoy.config.route.v3.RouteConfiguration}) into {@link RouteConfiguration}. */
public final class RouteConfigurationParser
        implements ResourceParser<io.envoyproxy.envoy.config.route.v3.RouteConfiguration, RouteConfiguration> {

    private static final Set<String> HEADER_FIELDS = Set.of("request_headers_to_add", "request_headers_to_remove",
            "response_headers_to_add", "response_headers_to_remove");

    @Override
    public ResourceType type() {
        return ResourceType.ROUTE;
    }

    @Override
    public Class<io.envoyproxy.envoy.config.route.v3.RouteConfiguration> messageClass() {
        return io.envoyproxy.envoy.config.route.v3.RouteConfiguration.class;
    }

    @Override
    public String name(io.envoyproxy.envoy.config.route.v3.RouteConfiguration m) {
        return m.getName();
    }

    /**
     * An RDS resource: {@code validate_clusters} unset means false, Envoy's default for a route table loaded through
     * RDS.
     */
    @Override
    public RouteConfiguration parseFields(io.envoyproxy.envoy.config.route.v3.RouteConfiguration m) {
        return parseFields(m, false);
    }

    /**
     * A route configuration, {@code validate_clusters} taken as {@code validateClustersDefault} when unset: Envoy's
     * default is true for a route table inline in the HTTP connection manager ({@code route_config}) and false for
     * one loaded through RDS.
     */
    static RouteConfiguration parseFields(io.envoyproxy.envoy.config.route.v3.RouteConfiguration m,
                                          boolean validateClustersDefault) {
        Fields.onlyKnown(m, union(HEADER_FIELDS, "name", "virtual_hosts", "validate_clusters",
                "ignore_port_in_host_matching", "max_direct_response_body_size_bytes", "typed_per_filter_config",
                "internal_only_headers", "most_specific_header_mutations_wins"),
                Set.of());
        checkDomains(m.getVirtualHostsList());
        checkDirectResponseBodies(m);
        List<VirtualHost> vhosts = Fields.each("virtual_hosts", m.getVirtualHostsList(),
                RouteConfigurationParser::virtualHost);
        boolean validateClusters = m.hasValidateClusters() ? m.getValidateClusters().getValue()
                : validateClustersDefault;
        return new RouteConfiguration(m.getName(), vhosts, validateClusters,
                m.getIgnorePortInHostMatching(), CoreParsers.headerMutations(m.getRequestHeadersToAddList(),
                        m.getRequestHeadersToRemoveList(), m.getResponseHeadersToAddList(),
                        m.getResponseHeadersToRemoveList()),
                PerFilterConfigs.routeConfiguration(m.getTypedPerFilterConfigMap()),
                Fields.each("internal_only_headers", m.getInternalOnlyHeadersList(), n -> headerName("", n)),
                m.getMostSpecificHeaderMutationsWins());
    }

    /**
     * Envoy's virtual host rules, checked here so that the error names the domain by its index: unique names, a
     * domain (compared without case) in one virtual host only, and {@code *} at most once in a route configuration. The records check the same
     * as a backstop.
     */
    static void checkDomains(List<io.envoyproxy.envoy.config.route.v3.VirtualHost> vhosts) {
        Map<String, String> owner = new HashMap<>();
        Map<String, Integer> names = new HashMap<>();
        for (int i = 0; i < vhosts.size(); i++) {
            var v = vhosts.get(i);
            Integer same = names.putIfAbsent(v.getName(), i);
            if (same != null) {
                throw new FieldError("virtual_hosts[" + i + "].name", "\"" + v.getName() + "\" (expected: unique "
                        + "virtual host names; virtual_hosts[" + same + "] has it)");
            }
            for (int j = 0; j < v.getDomainsCount(); j++) {
                String d = v.getDomains(j);
                String prev = owner.putIfAbsent(d.toLowerCase(Locale.ROOT), v.getName());
                if (prev == null) {
                    continue;
                }
                String at = "virtual_hosts[" + i + "].domains[" + j + "]";
                if (d.equals("*")) {
                    throw new FieldError(at, "\"*\" (expected: a single wildcard domain in a route configuration; "
                            + "virtual host \"" + prev + "\" has it)");
                }
                throw new FieldError(at, "\"" + d + "\" (expected: each domain in one virtual host only, once; "
                        + "virtual host \"" + prev + "\" has it)");
            }
        }
    }

    /** Envoy's limit on a direct response's body when the route configuration sets none. */
    static final long DEFAULT_MAX_DIRECT_RESPONSE_BODY_SIZE = 4096;

    /**
     * As Envoy: a direct response's body may be at most {@code max_direct_response_body_size_bytes} long (4096 bytes
     * when unset; istiod sets 1 MiB on its route configurations).
     */
    static void checkDirectResponseBodies(io.envoyproxy.envoy.config.route.v3.RouteConfiguration m) {
        boolean set = m.hasMaxDirectResponseBodySizeBytes();
        long max = set ? m.getMaxDirectResponseBodySizeBytes().getValue() & 0xFFFFFFFFL
                : DEFAULT_MAX_DIRECT_RESPONSE_BODY_SIZE;
        for (int i = 0; i < m.getVirtualHostsCount(); i++) {
            var routes = m.getVirtualHosts(i).getRoutesList();
            for (int j = 0; j < routes.size(); j++) {
                var body = routes.get(j).getDirectResponse().getBody();
                int at = i;
                int route = j;
                // a file by its size first, as Envoy checks it before reading it (a huge one is never read)
                long size = body.hasInlineBytes() ? body.getInlineBytes().size()
                        : body.hasInlineString() || !routes.get(j).getDirectResponse().hasBody()
                        ? body.getInlineString().getBytes(java.nio.charset.StandardCharsets.UTF_8).length
                        : body.hasFilename() ? fileSize(body.getFilename())
                        : Fields.at("virtual_hosts[" + at + "].routes[" + route + "].direct_response.body",
                                () -> CoreParsers.dataSource(body)).getBytes(java.nio.charset.StandardCharsets.UTF_8)
                                .length;
                if (size > max) {
                    throw new FieldError("virtual_hosts[" + i + "].routes[" + j + "].direct_response.body", size
                            + " bytes (expected: at most " + max + ", the route configuration's "
                            + "max_direct_response_body_size_bytes" + (set ? "" : ", 4096 when unset") + ")");
                }
            }
        }
    }

    /** A file's size, 0 when it cannot be read (its read, later, names why). */
    private static long fileSize(String file) {
        try {
            return java.nio.file.Files.size(java.nio.file.Path.of(file));
        } catch (java.io.IOException | RuntimeException e) {
            return 0;
        }
    }

    static VirtualHost virtualHost(io.envoyproxy.envoy.config.route.v3.VirtualHost v) {
        Fields.onlyKnown(v, union(HEADER_FIELDS, "name", "domains", "routes", "retry_policy",
                "include_request_attempt_count", "include_attempt_count_in_response", "typed_per_filter_config",
                "cors", "per_request_buffer_limit_bytes", "rate_limits", "hedge_policy",
                "include_is_timeout_retry_header", "require_tls"), Set.of("metadata"));
        List<Route> routes = Fields.each("routes", v.getRoutesList(), RouteConfigurationParser::route);
        RetryPolicy retry = v.hasRetryPolicy() ? Fields.at("retry_policy", () -> retryPolicy(v.getRetryPolicy()))
                : null;
        PerFilterConfigs perFilter = PerFilterConfigs.parse(v.getTypedPerFilterConfigMap());
        CorsPolicy cors = perFilter.cors() != null ? perFilter.cors()
                : v.hasCors() ? Fields.at("cors", () -> CorsParser.legacy(v.getCors())) : null;
        return new VirtualHost(v.getName(), v.getDomainsList(), routes, retry, v.getIncludeRequestAttemptCount(),
                v.getIncludeAttemptCountInResponse(), CoreParsers.headerMutations(v.getRequestHeadersToAddList(),
                        v.getRequestHeadersToRemoveList(), v.getResponseHeadersToAddList(),
                        v.getResponseHeadersToRemoveList()), perFilter.fault(), cors,
                Fields.uint32OrNull(v.hasPerRequestBufferLimitBytes(), v.getPerRequestBufferLimitBytes()),
                perFilter.rbac(), perFilter.localRateLimit(), RateLimitParser.rateLimits(v.getRateLimitsList()),
                perFilter.vhRateLimits(), perFilter.statefulSession(), perFilter.lua(), perFilter.extAuthz(),
                perFilter.compressor(), perFilter.filters(),
                v.hasHedgePolicy() ? Fields.at("hedge_policy", () -> hedgePolicy(v.getHedgePolicy())) : null,
                v.getIncludeIsTimeoutRetryHeader(), switch (v.getRequireTls()) {
                    case NONE -> VirtualHost.TlsRequirement.NONE;
                    case EXTERNAL_ONLY -> VirtualHost.TlsRequirement.EXTERNAL_ONLY;
                    case ALL -> VirtualHost.TlsRequirement.ALL;
                    default -> throw new FieldError("require_tls", v.getRequireTlsValue()
                            + " (expected: NONE, EXTERNAL_ONLY or ALL)");
                });
    }

    /**
     * A route's or virtual host's {@code hedge_policy}. Envoy implements {@code hedge_on_per_try_timeout} only: it
     * never reads {@code initial_requests} (at least 1 by its validation) nor {@code additional_request_chance}
     * (both marked not implemented), so a value other than their defaults, which would not do what it says, is
     * refused.
     */
    static HedgePolicy hedgePolicy(io.envoyproxy.envoy.config.route.v3.HedgePolicy h) {
        Fields.onlyKnown(h, Set.of("initial_requests", "additional_request_chance", "hedge_on_per_try_timeout"),
                Set.of());
        if (h.hasInitialRequests()) {
            int n = h.getInitialRequests().getValue();
            if (n == 0) {
                throw new FieldError("initial_requests", "0 (expected: at least 1)");
            }
            if (n != 1) {
                throw new FieldError("initial_requests", Integer.toUnsignedString(n) + " is not supported by Inmesh "
                        + "(expected: 1, the default; Envoy does not implement more)");
            }
        }
        if (h.hasAdditionalRequestChance() && h.getAdditionalRequestChance().getNumerator() != 0) {
            throw new FieldError("additional_request_chance", "not supported by Inmesh (expected: 0, the default; "
                    + "Envoy does not implement it)");
        }
        return new HedgePolicy(h.getHedgeOnPerTryTimeout());
    }

    static Route route(io.envoyproxy.envoy.config.route.v3.Route r) {
        Fields.onlyKnown(r, union(HEADER_FIELDS, "name", "match", "route", "redirect", "direct_response",
                "decorator", "typed_per_filter_config", "per_request_buffer_limit_bytes"), Set.of("metadata",
                "stat_prefix"));
        RouteMatch match = Fields.at("match", () -> routeMatch(r.getMatch()));
        Action action = switch (r.getActionCase()) {
            case ROUTE -> Fields.at("route", () -> routeAction(r.getRoute()));
            case REDIRECT -> Fields.at("redirect", () -> redirect(r.getRedirect()));
            case DIRECT_RESPONSE -> Fields.at("direct_response", () -> directResponse(r.getDirectResponse()));
            case FILTER_ACTION, NON_FORWARDING_ACTION, ACTION_NOT_SET ->
                    throw new FieldError("action", "one of route, redirect or direct_response is required");
        };
        String decorator = r.hasDecorator() ? Fields.at("decorator", () -> decorator(r.getDecorator())) : null;
        PerFilterConfigs perFilter = PerFilterConfigs.parse(r.getTypedPerFilterConfigMap());
        CorsPolicy cors = perFilter.cors() != null ? perFilter.cors() : r.hasRoute() && r.getRoute().hasCors()
                ? Fields.at("route.cors", () -> CorsParser.legacy(r.getRoute().getCors())) : null;
        return new Route(r.getName(), match, action, decorator, CoreParsers.headerMutations(
                r.getRequestHeadersToAddList(), r.getRequestHeadersToRemoveList(), r.getResponseHeadersToAddList(),
                r.getResponseHeadersToRemoveList()), perFilter.fault(), cors,
                Fields.uint32OrNull(r.hasPerRequestBufferLimitBytes(), r.getPerRequestBufferLimitBytes()),
                perFilter.rbac(), perFilter.localRateLimit(), perFilter.vhRateLimits(), perFilter.statefulSession(),
                perFilter.lua(), perFilter.extAuthz(), perFilter.compressor(), perFilter.filters());
    }

    /**
     * A route's {@code decorator}: its {@code operation} names the span and is sent on as
     * {@code x-envoy-decorator-operation}; {@code propagate: false} (not sending it) is not implemented and refused.
     */
    private static String decorator(io.envoyproxy.envoy.config.route.v3.Decorator d) {
        Fields.onlyKnown(d, Set.of("operation", "propagate"), Set.of());
        if (d.hasPropagate() && !d.getPropagate().getValue()) {
            throw new FieldError("propagate", "false is not supported by Inmesh (expected: true, the default: the "
                    + "operation is sent on in x-envoy-decorator-operation)");
        }
        return d.getOperation();
    }

    static RouteMatch routeMatch(io.envoyproxy.envoy.config.route.v3.RouteMatch m) {
        Fields.onlyKnown(m, Set.of("prefix", "path", "safe_regex", "path_separated_prefix", "case_sensitive",
                "headers", "query_parameters", "runtime_fraction", "grpc", "dynamic_metadata"), Set.of());
        PathMatcher path = switch (m.getPathSpecifierCase()) {
            case PREFIX -> new PathMatcher.Prefix(m.getPrefix());
            case PATH -> new PathMatcher.Path(m.getPath());
            case SAFE_REGEX -> new PathMatcher.SafeRegex(Fields.at("safe_regex",
                    () -> CoreParsers.regex(m.getSafeRegex())));
            case PATH_SEPARATED_PREFIX -> new PathMatcher.PathSeparatedPrefix(m.getPathSeparatedPrefix());
            case CONNECT_MATCHER, PATH_MATCH_POLICY, PATHSPECIFIER_NOT_SET -> throw new FieldError("path_specifier",
                    "one of prefix, path, safe_regex or path_separated_prefix is required");
        };
        List<HeaderMatcher> headers = Fields.each("headers", m.getHeadersList(), RouteConfigurationParser::header);
        List<QueryParameterMatcher> query = Fields.each("query_parameters", m.getQueryParametersList(),
                RouteConfigurationParser::queryParameter);
        var fraction = m.hasRuntimeFraction()
                ? Fields.at("runtime_fraction", () -> runtimeFraction(m.getRuntimeFraction())) : null;
        if (m.hasGrpc()) {
            Fields.onlyKnown(m.getGrpc(), Set.of(), Set.of());
        }
        // istiod's @request.auth.claims matches: the JWT filter's metadata, the only one Inmesh keeps
        List<MetadataMatcher> metadata = Fields.each("dynamic_metadata", m.getDynamicMetadataList(),
                d -> RbacParser.metadataMatcher(d, Set.of(JwtAuthnParser.NAME), "the only filter whose dynamic "
                        + "metadata Inmesh keeps"));
        return new RouteMatch(path, !m.hasCaseSensitive() || m.getCaseSensitive().getValue(), headers, query,
                fraction, m.hasGrpc(), metadata, m.getRuntimeFraction().getRuntimeKey());
    }

    /**
     * A route's or a mirror policy's {@code runtime_fraction}: its {@code default_value}; its {@code runtime_key}, read
     * by the caller, names the runtime value that replaces it when the runtime has one.
     */
    private static FractionalPercent runtimeFraction(io.envoyproxy.envoy.config.core.v3.RuntimeFractionalPercent r) {
        Fields.onlyKnown(r, Set.of("default_value", "runtime_key"), Set.of());
        return Fields.at("default_value", () -> CoreParsers.fractionalPercent(r.getDefaultValue()));
    }

    /** A query parameter condition: its name, and a {@code string_match}, or presence ({@code present_match} or unset). */
    static QueryParameterMatcher queryParameter(io.envoyproxy.envoy.config.route.v3.QueryParameterMatcher q) {
        Fields.onlyKnown(q, Set.of("name", "string_match", "present_match"), Set.of());
        StringMatcher sm = q.hasStringMatch()
                ? Fields.at("string_match", () -> CoreParsers.stringMatcher(q.getStringMatch())) : null;
        return Fields.record("query_parameters.", () -> new QueryParameterMatcher(q.getName(), sm));
    }

    /** Parses one header matcher (also used by tools that read Envoy's matchers). */
    public static HeaderMatcher headerMatcher(io.envoyproxy.envoy.config.route.v3.HeaderMatcher h) {
        return header(h);
    }

    static HeaderMatcher header(io.envoyproxy.envoy.config.route.v3.HeaderMatcher h) {
        Fields.onlyKnown(h, Set.of("name", "exact_match", "safe_regex_match", "range_match", "present_match",
                "prefix_match", "suffix_match", "contains_match", "string_match", "invert_match",
                "treat_missing_header_as_empty"), Set.of());
        HeaderMatcher.Rule rule = switch (h.getHeaderMatchSpecifierCase()) {
            // Envoy: an empty legacy exact_match matches any value (string_match's exact "" matches only "")
            case EXACT_MATCH -> h.getExactMatch().isEmpty() ? new HeaderMatcher.AnyValue()
                    : new HeaderMatcher.Value(new StringMatcher.Exact(h.getExactMatch(), false));
            case SAFE_REGEX_MATCH -> new HeaderMatcher.Value(Fields.at("safe_regex_match",
                    () -> Fields.record("safe_regex.", () -> new StringMatcher.SafeRegex(
                            CoreParsers.regex(h.getSafeRegexMatch())))));
            case RANGE_MATCH -> Fields.at("range_match", () -> new HeaderMatcher.Range(h.getRangeMatch().getStart(),
                    h.getRangeMatch().getEnd()));
            case PRESENT_MATCH -> new HeaderMatcher.Present(h.getPresentMatch());
            case PREFIX_MATCH -> new HeaderMatcher.Value(new StringMatcher.Prefix(h.getPrefixMatch(), false));
            case SUFFIX_MATCH -> new HeaderMatcher.Value(new StringMatcher.Suffix(h.getSuffixMatch(), false));
            case CONTAINS_MATCH -> new HeaderMatcher.Value(new StringMatcher.Contains(h.getContainsMatch(), false));
            case STRING_MATCH -> new HeaderMatcher.Value(Fields.at("string_match",
                    () -> CoreParsers.stringMatcher(h.getStringMatch())));
            // Envoy: a matcher with no specifier matches when the header is present.
            case HEADERMATCHSPECIFIER_NOT_SET -> new HeaderMatcher.Present(true);
        };
        // the record's checks say headers.name; the caller's path is already at headers[i]
        return Fields.record("headers.", () -> new HeaderMatcher(h.getName(), rule, h.getInvertMatch(),
                h.getTreatMissingHeaderAsEmpty()));
    }

    static RouteAction routeAction(io.envoyproxy.envoy.config.route.v3.RouteAction a) {
        Fields.onlyKnown(a, Set.of("cluster", "cluster_header", "weighted_clusters", "timeout", "idle_timeout",
                "retry_policy", "prefix_rewrite", "regex_rewrite", "host_rewrite_literal", "auto_host_rewrite",
                "hash_policy", "max_grpc_timeout", "max_stream_duration", "request_mirror_policies", "cors",
                "rate_limits", "include_vh_rate_limits", "host_rewrite_header", "host_rewrite_path_regex",
                "append_x_forwarded_host", "internal_redirect_policy", "internal_redirect_action",
                "max_internal_redirects", "hedge_policy", "grpc_timeout_offset"),
                Set.of("upgrade_configs", "cluster_not_found_response_code"));
        ClusterSpecifier cluster = switch (a.getClusterSpecifierCase()) {
            case CLUSTER -> new ClusterSpecifier.Named(a.getCluster());
            case CLUSTER_HEADER -> new ClusterSpecifier.FromHeader(a.getClusterHeader());
            case WEIGHTED_CLUSTERS -> Fields.at("weighted_clusters", () -> weighted(a.getWeightedClusters()));
            case CLUSTER_SPECIFIER_PLUGIN, INLINE_CLUSTER_SPECIFIER_PLUGIN, CLUSTERSPECIFIER_NOT_SET ->
                    throw new FieldError("cluster_specifier", "one of cluster, cluster_header or weighted_clusters "
                            + "is required");
        };
        int clusterNotFound = switch (a.getClusterNotFoundResponseCode()) {
            case SERVICE_UNAVAILABLE -> 503;
            case NOT_FOUND -> 404;
            case INTERNAL_SERVER_ERROR -> 500; // istiod's, for Gateway API HTTPRoutes
            case UNRECOGNIZED -> throw new FieldError("cluster_not_found_response_code",
                    a.getClusterNotFoundResponseCodeValue()
                            + " (expected: SERVICE_UNAVAILABLE, NOT_FOUND or INTERNAL_SERVER_ERROR)");
        };
        Boolean websocketUpgrade = null; // no entry of the route's own: the connection manager's decide
        for (int i = 0; i < a.getUpgradeConfigsCount(); i++) {
            var u = a.getUpgradeConfigs(i);
            Fields.at("upgrade_configs[" + i + "]", () -> {
                Fields.onlyKnown(u, Set.of("upgrade_type", "enabled"), Set.of());
                return null;
            });
            String type = u.getUpgradeType();
            if (!type.equalsIgnoreCase("websocket")) {
                throw new FieldError("upgrade_configs[" + i + "].upgrade_type", type + " (expected: websocket)");
            }
            // the route's entry decides over the connection manager's, either way (enabled defaults to true); of
            // several, the first, as Envoy's map keeps the first it was given
            if (websocketUpgrade == null) {
                websocketUpgrade = !u.hasEnabled() || u.getEnabled().getValue();
            }
        }
        Duration maxGrpc = a.hasMaxGrpcTimeout() ? Fields.duration(a.getMaxGrpcTimeout()) : null;
        // the deprecated grpc_timeout_offset, of max_grpc_timeout; max_stream_duration's own offset replaces it
        Duration grpcOffset = Fields.durationOrNull(a.hasGrpcTimeoutOffset(), a.getGrpcTimeoutOffset());
        Duration streamDuration = null;
        if (a.hasMaxStreamDuration()) {
            var msd = a.getMaxStreamDuration();
            Fields.at("max_stream_duration", () -> {
                Fields.onlyKnown(msd, Set.of("max_stream_duration", "grpc_timeout_header_max",
                        "grpc_timeout_header_offset"), Set.of());
                return null;
            });
            // As Envoy: with max_stream_duration, max_grpc_timeout is not used; grpc_timeout_header_max caps instead
            maxGrpc = msd.hasGrpcTimeoutHeaderMax() ? Fields.duration(msd.getGrpcTimeoutHeaderMax()) : null;
            grpcOffset = Fields.durationOrNull(msd.hasGrpcTimeoutHeaderOffset(), msd.getGrpcTimeoutHeaderOffset());
            // replaces the connection manager's max_stream_duration for the route's requests (0s: none), as in Envoy
            streamDuration = Fields.durationOrNull(msd.hasMaxStreamDuration(), msd.getMaxStreamDuration());
        }
        RetryPolicy retry = a.hasRetryPolicy() ? Fields.at("retry_policy", () -> retryPolicy(a.getRetryPolicy()))
                : null;
        RegexRewrite regexRewrite = a.hasRegexRewrite() ? regexRewrite(a.getRegexRewrite()) : null;
        if (!a.getHostRewriteHeader().isEmpty()) {
            headerName("host_rewrite_header", a.getHostRewriteHeader());
        }
        RegexRewrite hostRegex = !a.hasHostRewritePathRegex() ? null : Fields.at("host_rewrite_path_regex",
                () -> Fields.record("regex_rewrite.", () -> new RegexRewrite(Fields.at("pattern",
                        () -> CoreParsers.regex(a.getHostRewritePathRegex().getPattern())),
                        a.getHostRewritePathRegex().getSubstitution())));
        List<HashPolicy> hash = Fields.each("hash_policy", a.getHashPolicyList(),
                h -> Fields.record("hash_policy.", () -> hashPolicy(h))).stream()
                .filter(java.util.Objects::nonNull).toList();
        List<RequestMirrorPolicy> mirrors = Fields.each("request_mirror_policies",
                a.getRequestMirrorPoliciesList(), RouteConfigurationParser::mirrorPolicy);
        return new RouteAction(cluster, a.hasTimeout() ? Fields.duration(a.getTimeout()) : null,
                a.hasIdleTimeout() ? Fields.duration(a.getIdleTimeout()) : null, retry,
                a.getPrefixRewrite().isEmpty() ? null : a.getPrefixRewrite(), regexRewrite,
                a.getHostRewriteLiteral().isEmpty() ? null : a.getHostRewriteLiteral(),
                a.hasAutoHostRewrite() && a.getAutoHostRewrite().getValue(), hash, maxGrpc,
                a.hasIncludeVhRateLimits() && a.getIncludeVhRateLimits().getValue(), a.hasMaxStreamDuration(),
                grpcOffset, mirrors, streamDuration, RateLimitParser.rateLimits(a.getRateLimitsList()),
                clusterNotFound, a.getHostRewriteHeader().toLowerCase(Locale.ROOT), hostRegex,
                a.getAppendXForwardedHost(), internalRedirectPolicy(a),
                a.hasHedgePolicy() ? Fields.at("hedge_policy", () -> hedgePolicy(a.getHedgePolicy())) : null,
                websocketUpgrade);
    }

    /**
     * A route action's internal redirects: its {@code internal_redirect_policy}, else, as Envoy reads the deprecated
     * fields, Envoy's default policy (with {@code max_internal_redirects}) under {@code internal_redirect_action:
     * HANDLE_INTERNAL_REDIRECT}; null for none.
     */
    private static InternalRedirectPolicy internalRedirectPolicy(io.envoyproxy.envoy.config.route.v3.RouteAction a) {
        if (a.hasInternalRedirectPolicy()) {
            var p = a.getInternalRedirectPolicy();
            return Fields.at("internal_redirect_policy", () -> {
                Fields.onlyKnown(p, Set.of("max_internal_redirects", "redirect_response_codes", "predicates",
                        "allow_cross_scheme_redirect", "response_headers_to_copy"), Set.of());
                var predicates = Fields.each("predicates", p.getPredicatesList(),
                        RouteConfigurationParser::internalRedirectPredicate);
                return Fields.record("", () -> new InternalRedirectPolicy(p.hasMaxInternalRedirects()
                        ? (int) Math.min(Integer.MAX_VALUE, Integer.toUnsignedLong(p.getMaxInternalRedirects()
                        .getValue())) : 1, Set.copyOf(p.getRedirectResponseCodesList()), predicates,
                        p.getAllowCrossSchemeRedirect(), p.getResponseHeadersToCopyList()));
            });
        }
        if (a.getInternalRedirectAction()
                != io.envoyproxy.envoy.config.route.v3.RouteAction.InternalRedirectAction.HANDLE_INTERNAL_REDIRECT) {
            return null;
        }
        int max = a.hasMaxInternalRedirects()
                ? (int) Math.min(Integer.MAX_VALUE, Integer.toUnsignedLong(a.getMaxInternalRedirects().getValue())) : 1;
        return new InternalRedirectPolicy(max, Set.of(302), List.of(), false, List.of());
    }

    /** One of an internal redirect policy's predicates, by its typed config's type (else its name). */
    private static InternalRedirectPolicy.Predicate internalRedirectPredicate(
            io.envoyproxy.envoy.config.core.v3.TypedExtensionConfig c) {
        String type = c.getTypedConfig().getTypeUrl();
        String name = c.getName();
        if (type.endsWith(".allow_listed_routes.v3.AllowListedRoutesConfig")) {
            var config = unpack(c.getTypedConfig(), io.envoyproxy.envoy.extensions.internal_redirect
                    .allow_listed_routes.v3.AllowListedRoutesConfig.class, "typed_config");
            return Fields.at("typed_config", () -> Fields.record("", () ->
                    new InternalRedirectPolicy.AllowListedRoutes(Set.copyOf(config.getAllowedRouteNamesList()))));
        }
        if (type.endsWith(".previous_routes.v3.PreviousRoutesConfig")
                || type.isEmpty() && name.equals("envoy.internal_redirect_predicates.previous_routes")) {
            return new InternalRedirectPolicy.PreviousRoutes();
        }
        if (type.endsWith(".safe_cross_scheme.v3.SafeCrossSchemeConfig")
                || type.isEmpty() && name.equals("envoy.internal_redirect_predicates.safe_cross_scheme")) {
            return new InternalRedirectPolicy.SafeCrossScheme();
        }
        throw new FieldError("typed_config", (type.isEmpty() ? name : type) + " (expected: an AllowListedRoutesConfig, "
                + "PreviousRoutesConfig or SafeCrossSchemeConfig)");
    }

    /**
     * A {@code RequestMirrorPolicy}: an unset {@code trace_sampled} is null, the copy's span then sampled as the
     * request's.
     */
    static RequestMirrorPolicy mirrorPolicy(io.envoyproxy.envoy.config.route.v3.RouteAction.RequestMirrorPolicy p) {
        Fields.onlyKnown(p, Set.of("cluster", "cluster_header", "runtime_fraction",
                "disable_shadow_host_suffix_append", "trace_sampled"), Set.of());
        var fraction = p.hasRuntimeFraction()
                ? Fields.at("runtime_fraction", () -> runtimeFraction(p.getRuntimeFraction())) : null;
        return Fields.record("", () -> new RequestMirrorPolicy(p.getCluster(), p.getClusterHeader(), fraction,
                p.getDisableShadowHostSuffixAppend(), p.hasTraceSampled() ? p.getTraceSampled().getValue() : null,
                p.getRuntimeFraction().getRuntimeKey()));
    }

    /**
     * A route's {@code weighted_clusters}: the deprecated {@code total_weight} is ignored, as Envoy ignores it (its
     * route configuration rejects only weights that sum to 0): the sum of the weights decides. With a
     * {@code runtime_key_prefix} the runtime may give each cluster another weight.
     */
    static ClusterSpecifier.Weighted weighted(WeightedCluster w) {
        Fields.onlyKnown(w, Set.of("clusters", "runtime_key_prefix"), Set.of("total_weight"));
        List<ClusterSpecifier.ClusterWeight> clusters = Fields.each("clusters", w.getClustersList(), c -> {
            Fields.onlyKnown(c, union(HEADER_FIELDS, "name", "cluster_header", "weight", "host_rewrite_literal"),
                    Set.of("metadata"));
            var headers = CoreParsers.headerMutations(c.getRequestHeadersToAddList(),
                    c.getRequestHeadersToRemoveList(), c.getResponseHeadersToAddList(),
                    c.getResponseHeadersToRemoveList());
            return Fields.record(WEIGHTED_RECORD_PREFIX, () -> new ClusterSpecifier.ClusterWeight(c.getName(),
                    c.getClusterHeader(), c.hasWeight() ? c.getWeight().getValue() & 0xFFFFFFFFL : 0, headers,
                    c.getHostRewriteLiteral()));
        });
        return weighted(clusters, w.getRuntimeKeyPrefix());
    }

    /** The path prefix of the weighted-cluster records' checks, which the parser's own path already carries. */
    static final String WEIGHTED_RECORD_PREFIX = "weighted_clusters.";

    /**
     * A weighted split of parsed clusters, its checks reported under {@code clusters} (the caller is at
     * {@code weighted_clusters}): weights that sum to 0, or past a uint32. {@code runtimeKeyPrefix}: see
     * {@link ClusterSpecifier.Weighted}.
     */
    static ClusterSpecifier.Weighted weighted(List<ClusterSpecifier.ClusterWeight> clusters,
                                              String runtimeKeyPrefix) {
        return Fields.record(WEIGHTED_RECORD_PREFIX, () -> new ClusterSpecifier.Weighted(clusters, runtimeKeyPrefix));
    }

    static RetryPolicy retryPolicy(io.envoyproxy.envoy.config.route.v3.RetryPolicy p) {
        Fields.onlyKnown(p, Set.of("retry_on", "num_retries", "per_try_timeout", "per_try_idle_timeout",
                "retry_host_predicate", "host_selection_retry_max_attempts", "retriable_status_codes",
                "retry_back_off", "retriable_headers", "retriable_request_headers", "retry_priority",
                "rate_limited_retry_back_off"), Set.of());
        // As Envoy's route config: a condition it does not know is ignored (its parse keeps the known ones and drops
        // the rest), so that a control plane newer than the data plane does not get the whole route refused.
        Set<String> on = new LinkedHashSet<>();
        for (String c : p.getRetryOn().split(",")) {
            if (RetryPolicy.KNOWN_CONDITIONS.contains(c.trim())) {
                on.add(c.trim());
            }
        }
        List<String> predicates = new ArrayList<>();
        Map<String, Object> omitHostMetadata = Map.of();
        for (int i = 0; i < p.getRetryHostPredicateCount(); i++) {
            var pred = p.getRetryHostPredicate(i);
            String predicate = retryHostPredicate(pred.getName(), pred.getTypedConfig().getTypeUrl());
            if (predicate == null) {
                throw new FieldError("retry_host_predicate[" + i + "].name", pred.getName() + " (expected: "
                        + RetryPolicy.PREVIOUS_HOSTS + ", " + RetryPolicy.OMIT_CANARY_HOSTS + " or "
                        + RetryPolicy.OMIT_HOST_METADATA + ")");
            }
            if (predicate.equals(RetryPolicy.OMIT_HOST_METADATA) && pred.hasTypedConfig()) {
                omitHostMetadata = Fields.at("retry_host_predicate[" + i + "]",
                        () -> omitHostMetadata(pred.getTypedConfig()));
            }
            predicates.add(predicate);
        }
        int updateFrequency = p.hasRetryPriority() ? Fields.at("retry_priority",
                () -> previousPriorities(p.getRetryPriority())) : 0;
        Duration base = null;
        Duration max = null;
        if (p.hasRetryBackOff()) {
            base = Fields.duration(p.getRetryBackOff().getBaseInterval());
            max = p.getRetryBackOff().hasMaxInterval() ? Fields.duration(p.getRetryBackOff().getMaxInterval()) : null;
        }
        List<HeaderMatcher> retriableHeaders = Fields.each("retriable_headers", p.getRetriableHeadersList(),
                RouteConfigurationParser::header);
        List<HeaderMatcher> retriableRequestHeaders = Fields.each("retriable_request_headers",
                p.getRetriableRequestHeadersList(), RouteConfigurationParser::header);
        RetryPolicy.RateLimitedBackOff rateLimited = p.hasRateLimitedRetryBackOff()
                ? Fields.at("rate_limited_retry_back_off", () -> rateLimitedBackOff(p.getRateLimitedRetryBackOff()))
                : null;
        return new RetryPolicy(on, p.hasNumRetries() ? p.getNumRetries().getValue() : 1,
                p.hasPerTryTimeout() ? Fields.duration(p.getPerTryTimeout()) : null,
                p.hasPerTryIdleTimeout() ? Fields.duration(p.getPerTryIdleTimeout()) : null,
                Set.copyOf(p.getRetriableStatusCodesList()), retriableHeaders, retriableRequestHeaders, base, max,
                predicates, p.getHostSelectionRetryMaxAttempts(), updateFrequency, rateLimited, omitHostMetadata);
    }

    /** A header name a route's field gives (an HTTP token, as Envoy validates it), lower-cased; else refused. */
    static String headerName(String field, String name) {
        if (!name.matches("[!#$%&'*+.^_`|~0-9A-Za-z-]+")) {
            throw new FieldError(field, "\"" + name + "\" (expected: an HTTP header name)");
        }
        return name.toLowerCase(Locale.ROOT);
    }

    /** The retry host predicate a name or a typed config's type names, or null for one Inmesh does not know. */
    private static String retryHostPredicate(String name, String typeUrl) {
        if (name.equals(RetryPolicy.PREVIOUS_HOSTS)
                || typeUrl.endsWith("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate")) {
            return RetryPolicy.PREVIOUS_HOSTS;
        }
        if (name.equals(RetryPolicy.OMIT_CANARY_HOSTS)
                || typeUrl.endsWith("envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate")) {
            return RetryPolicy.OMIT_CANARY_HOSTS;
        }
        if (name.equals(RetryPolicy.OMIT_HOST_METADATA)
                || typeUrl.endsWith("envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig")) {
            return RetryPolicy.OMIT_HOST_METADATA;
        }
        return null;
    }

    /**
     * The labels of an {@code OmitHostMetadataConfig}: its {@code metadata_match}'s {@code envoy.lb} entries, the only
     * filter Envoy's predicate reads (another filter's entries are passed over, as Envoy's).
     */
    private static Map<String, Object> omitHostMetadata(Any any) {
        var c = unpack(any, io.envoyproxy.envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig
                .class, "typed_config");
        Map<String, Object> labels = CoreParsers.metadata(c.getMetadataMatch()).filterMetadata().get("envoy.lb");
        return labels == null ? Map.of() : labels;
    }

    /**
     * A retry policy's {@code rate_limited_retry_back_off}: its reset headers (at least one, each a header name and
     * the format {@code SECONDS} or {@code UNIX_TIMESTAMP}) and {@code max_interval} (Envoy's default 300 s).
     */
    private static RetryPolicy.RateLimitedBackOff rateLimitedBackOff(
            io.envoyproxy.envoy.config.route.v3.RetryPolicy.RateLimitedRetryBackOff b) {
        var headers = Fields.each("reset_headers", b.getResetHeadersList(), h -> {
            Fields.onlyKnown(h, Set.of("name", "format"), Set.of());
            boolean unix = switch (h.getFormat()) {
                case SECONDS -> false;
                case UNIX_TIMESTAMP -> true;
                default -> throw new FieldError("format", h.getFormat() + " (expected: SECONDS or UNIX_TIMESTAMP)");
            };
            return new RetryPolicy.ResetHeader(headerName("name", h.getName()), unix);
        });
        Duration max = b.hasMaxInterval() ? Fields.at("max_interval", () -> Fields.duration(b.getMaxInterval()))
                : null;
        return Fields.record("", () -> new RetryPolicy.RateLimitedBackOff(headers, max));
    }

    /**
     * The retry priority, which must be {@code envoy.retry_priorities.previous_priorities} (the only one Envoy ships,
     * and what Istio's {@code retryRemoteLocalities} sets) with its {@code PreviousPrioritiesConfig}: its
     * {@code update_frequency}, above 0 as Envoy validates it.
     */
    private static int previousPriorities(io.envoyproxy.envoy.config.route.v3.RetryPolicy.RetryPriority r) {
        Fields.onlyKnown(r, Set.of("name", "typed_config"), Set.of());
        String type = r.getTypedConfig().getTypeUrl();
        boolean previous = r.getName().equals(RetryPolicy.PREVIOUS_PRIORITIES)
                || type.endsWith("/" + PreviousPrioritiesConfig.getDescriptor().getFullName());
        if (!previous) {
            throw new FieldError("name", r.getName() + " (expected: " + RetryPolicy.PREVIOUS_PRIORITIES + ")");
        }
        if (!r.hasTypedConfig()) {
            throw new FieldError("typed_config", "none (expected: a " + PreviousPrioritiesConfig.getDescriptor()
                    .getFullName() + " with its update_frequency)");
        }
        PreviousPrioritiesConfig c = unpack(r.getTypedConfig(), PreviousPrioritiesConfig.class, "typed_config");
        if (c.getUpdateFrequency() <= 0) {
            throw new FieldError("typed_config.update_frequency", c.getUpdateFrequency() + " (expected: > 0)");
        }
        return c.getUpdateFrequency();
    }

    /** A regex rewrite, at {@code regex_rewrite}; the pattern is checked to compile. */
    static RegexRewrite regexRewrite(io.envoyproxy.envoy.type.matcher.v3.RegexMatchAndSubstitute r) {
        return Fields.at("regex_rewrite", () -> Fields.record("regex_rewrite.", () -> new RegexRewrite(
                Fields.at("pattern", () -> CoreParsers.regex(r.getPattern())), r.getSubstitution())));
    }

    /**
     * One of a route's hash policies, or null for one that hashes nothing: {@code connection_properties} without
     * {@code source_ip}, which Envoy leaves out of the list (its {@code terminal} then stops nothing).
     * {@code filter_state} (an object Envoy's filters put in the request's filter state) is refused by name.
     */
    static HashPolicy hashPolicy(io.envoyproxy.envoy.config.route.v3.RouteAction.HashPolicy h) {
        Fields.onlyKnown(h, Set.of("header", "cookie", "connection_properties", "query_parameter", "terminal"),
                Set.of());
        boolean terminal = h.getTerminal();
        return switch (h.getPolicySpecifierCase()) {
            case HEADER -> {
                var header = h.getHeader();
                Fields.at("header", () -> {
                    Fields.onlyKnown(header, Set.of("header_name", "regex_rewrite"), Set.of());
                    return null;
                });
                yield new HashPolicy.Header(header.getHeaderName(), header.hasRegexRewrite()
                        ? Fields.at("header", () -> regexRewrite(header.getRegexRewrite())) : null, terminal);
            }
            case COOKIE -> {
                var c = h.getCookie();
                Fields.onlyKnown(c, Set.of("name", "ttl", "path", "attributes"), Set.of());
                List<HashPolicy.CookieAttribute> attributes = new ArrayList<>();
                for (int i = 0; i < c.getAttributesCount(); i++) {
                    var a = c.getAttributes(i);
                    int at = i;
                    attributes.add(Fields.at("cookie.attributes[" + at + "]", () -> {
                        Fields.onlyKnown(a, Set.of("name", "value"), Set.of());
                        return new HashPolicy.CookieAttribute(a.getName(), a.getValue());
                    }));
                }
                yield new HashPolicy.Cookie(c.getName(), c.getPath(),
                        c.hasTtl() ? Fields.duration(c.getTtl()) : null, attributes, terminal);
            }
            case CONNECTION_PROPERTIES -> h.getConnectionProperties().getSourceIp() ? new HashPolicy.SourceIp(terminal)
                    : null;
            case QUERY_PARAMETER -> new HashPolicy.QueryParameter(h.getQueryParameter().getName(), terminal);
            case FILTER_STATE -> throw new FieldError("filter_state", "not supported by Inmesh");
            case POLICYSPECIFIER_NOT_SET -> throw new FieldError("policy_specifier",
                    "one of header, cookie, connection_properties or query_parameter is required");
        };
    }

    static RedirectAction redirect(io.envoyproxy.envoy.config.route.v3.RedirectAction r) {
        Fields.onlyKnown(r, Set.of("https_redirect", "scheme_redirect", "host_redirect", "port_redirect",
                "path_redirect", "prefix_rewrite", "regex_rewrite", "response_code", "strip_query"), Set.of());
        String scheme = r.getHttpsRedirect() ? "https" : r.getSchemeRedirect().isEmpty() ? null
                : r.getSchemeRedirect();
        RegexRewrite regex = r.hasRegexRewrite() ? regexRewrite(r.getRegexRewrite()) : null;
        int code = switch (r.getResponseCode()) {
            case MOVED_PERMANENTLY -> 301;
            case FOUND -> 302;
            case SEE_OTHER -> 303;
            case TEMPORARY_REDIRECT -> 307;
            case PERMANENT_REDIRECT -> 308;
            case UNRECOGNIZED -> throw new FieldError("response_code", r.getResponseCodeValue() + " (expected: "
                    + "MOVED_PERMANENTLY, FOUND, SEE_OTHER, TEMPORARY_REDIRECT or PERMANENT_REDIRECT)");
        };
        return new RedirectAction(scheme, r.getHostRedirect().isEmpty() ? null : r.getHostRedirect(),
                r.getPortRedirect(), r.getPathRedirect().isEmpty() ? null : r.getPathRedirect(),
                r.getPrefixRewrite().isEmpty() ? null : r.getPrefixRewrite(), regex, code, r.getStripQuery());
    }

    static DirectResponseAction directResponse(io.envoyproxy.envoy.config.route.v3.DirectResponseAction d) {
        Fields.onlyKnown(d, Set.of("status", "body"), Set.of());
        // as Envoy, a file or an environment variable is read with the configuration
        String b = d.hasBody() ? Fields.at("body", () -> CoreParsers.dataSource(d.getBody())) : null;
        return Fields.record("direct_response.", () -> new DirectResponseAction(d.getStatus(), b));
    }

    static Set<String> union(Set<String> base, String... more) {
        Set<String> s = new LinkedHashSet<>(base);
        s.addAll(List.of(more));
        return s;
    }

    /** Unpacks an Any into a message type, naming the field when the type is not the expected one. */
    static <T extends com.google.protobuf.Message> T unpack(Any any, Class<T> type, String field) {
        try {
            return any.unpack(type);
        } catch (InvalidProtocolBufferException e) {
            throw new FieldError(field, any.getTypeUrl() + " (expected: " + type.getSimpleName() + ")");
        }
    }
}
