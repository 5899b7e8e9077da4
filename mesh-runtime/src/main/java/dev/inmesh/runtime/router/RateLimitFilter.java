package dev.inmesh.runtime.router;

import dev.inmesh.api.config.ratelimit.GlobalRateLimit;
import dev.inmesh.api.config.route.RateLimit;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.net.IpLiterals;
import dev.inmesh.runtime.router.RbacFilter.Subject;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.UpstreamStats;
import dev.inmesh.runtime.stats.UpstreamStats.RateLimitStat;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.envoyproxy.envoy.extensions.common.ratelimit.v3.RateLimitDescriptor;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitRequest;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitResponse;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Envoy's global rate limit HTTP filter ({@code envoy.filters.http.ratelimit}), compiled once per snapshot from its
 * {@link GlobalRateLimit} config. For a request of its {@code request_type} whose route forwards, it builds one
 * descriptor from each of the route's {@code rate_limits} entries of its {@code stage} (and the virtual host's: with
 * {@code include_vh_rate_limits} or {@code vh_rate_limits: INCLUDE}, or when the route has no {@code rate_limits} at
 * all and no {@code vh_rate_limits: IGNORE}), each
 * action adding its entry ({@code remote_address} the trusted downstream address: the last
 * {@code x-forwarded-for} address, else the peer's), and a descriptor one of whose actions cannot produce its entry
 * is left out (one whose {@code skip_if_absent} headers are all missing is sent without entries). With at least
 * one descriptor, it asks the rate limit service {@code envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit}
 * ({@code domain}, the descriptors) through the named cluster, never blocking, waiting at most {@code timeout} (0:
 * as long as the service takes, as Envoy's filter):
 * <ul>
 *   <li>{@code OVER_LIMIT}: the request is refused with {@code rate_limited_status} (429), the service's
 *       {@code raw_body}, its response headers and {@code x-envoy-ratelimited: true}, then the filter's
 *       {@code response_headers_to_add} by their {@code append_action} over the reply's headers, response flag RL and
 *       details {@code request_rate_limited};</li>
 *   <li>{@code OK}: the request goes on with the service's request headers added, and its response gets the
 *       service's response headers;</li>
 *   <li>no answer in time, no host, a failed call: an error; the request goes on, or with {@code failure_mode_deny}
 *       is refused with {@code status_on_error} (500), response flag RLSE and details {@code rate_limiter_error}.</li>
 * </ul>
 * With {@code enable_x_ratelimit_headers} the response (a refusal or not) gets {@code x-ratelimit-limit},
 * {@code -remaining} and {@code -reset} from the descriptor status with the fewest requests remaining. Every answer
 * is counted for the route's cluster as Envoy counts it: {@code cluster.<name>.ratelimit.ok}, {@code over_limit},
 * {@code error} and {@code failure_mode_allowed}. Unlike Envoy, which skips a request whose route's cluster it does
 * not know, such a request is checked (uncounted): {@code mesh.inbound(...)} configs often name an inbound cluster
 * they do not define.
 *
 * <p>The values of {@code response_headers_to_add} are Envoy's substitution format strings: Envoy's filter configures
 * them with the router's header parser ({@code source/extensions/filters/http/ratelimit/ratelimit.h},
 * {@code HeaderParser::configure}) and evaluates them in its over-limit reply's {@code modify_headers}
 * ({@code ratelimit.cc}, {@code complete}) with the request's headers, the reply's and the stream info. They are
 * compiled with the filter, once per snapshot ({@link ReplyHeadersToAdd}), and the refusal carries them
 * ({@link RbacFilter.Denial#replyHeaders}) to where its reply is made, which formats them from the request with the
 * reply's status and headers. The service's own headers, request's and response's, are copied as they come, as
 * Envoy's filter copies them. Immutable and thread-safe.
 */
public final class RateLimitFilter {
    /** The filter's canonical name. */
    public static final String NAME = "envoy.filters.http.ratelimit";
    /** The response code details of a refused request, as Envoy's. */
    public static final String RATE_LIMITED_DETAILS = "request_rate_limited";
    /** The response code details of a request refused because the service failed, as Envoy's. */
    public static final String ERROR_DETAILS = "rate_limiter_error";
    static final String SHOULD_RATE_LIMIT_PATH = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

    private final String name;
    private final GlobalRateLimit config;
    /** Its {@code response_headers_to_add}, compiled; null for none. */
    private final ReplyHeadersToAdd responseHeaders;

    private RateLimitFilter(String name, GlobalRateLimit config) {
        this.name = name;
        this.config = config;
        this.responseHeaders = ReplyHeadersToAdd.compile(config.responseHeadersToAdd());
    }

    /** One filter, compiled; {@code name} is how routes name their {@code RateLimitPerRoute} for it. */
    public static RateLimitFilter compile(String name, GlobalRateLimit config) {
        return new RateLimitFilter(name, config);
    }

    /** The filter's config. */
    public GlobalRateLimit config() {
        return config;
    }

    /** Whether a value of its {@code response_headers_to_add} is a format: one that reads the request. */
    boolean formatsHeaders() {
        return responseHeaders != null && responseHeaders.formatsHeaders();
    }

    /**
     * The {@code rate_limits} of one route and its virtual host, compiled with the route table: the route's entries,
     * its virtual host's, whether the route includes its virtual host's too ({@code include_vh_rate_limits}, which
     * wins), and else each filter's {@code vh_rate_limits} for the route (its {@code RateLimitPerRoute}, else its
     * virtual host's; by filter name). Without either, the virtual host's count only where the route has none
     * ({@code OVERRIDE}).
     */
    record Policy(List<Descriptor> route, List<Descriptor> virtualHost, boolean includeVirtualHost,
                  Map<String, RateLimit.VhRateLimits> vhRateLimits) {
        /** The policy of a route in its virtual host, or null when neither has {@code rate_limits}. */
        static Policy compile(VirtualHost vh, Route r) {
            List<RateLimit> own = r.action() instanceof RouteAction a ? a.rateLimits() : List.of();
            if (own.isEmpty() && vh.rateLimits().isEmpty()) {
                return null;
            }
            boolean include = r.action() instanceof RouteAction a && a.includeVhRateLimits();
            Map<String, RateLimit.VhRateLimits> options = new HashMap<>(vh.vhRateLimits());
            options.putAll(r.vhRateLimits());
            return new Policy(own.stream().map(Descriptor::new).toList(),
                    vh.rateLimits().stream().map(Descriptor::new).toList(), include, Map.copyOf(options));
        }

        /** Whether the filter {@code filterName} sends the virtual host's entries too. */
        boolean virtualHostsToo(String filterName) {
            return virtualHostsToo(vhRateLimits.getOrDefault(filterName, RateLimit.VhRateLimits.OVERRIDE));
        }

        /**
         * Whether a filter whose {@code vh_rate_limits} is {@code option} reads the virtual host's entries too: the
         * route's {@code include_vh_rate_limits} wins.
         */
        boolean virtualHostsToo(RateLimit.VhRateLimits option) {
            if (includeVirtualHost) {
                return true;
            }
            return switch (option) {
                case INCLUDE -> true;
                case IGNORE -> false;
                case OVERRIDE -> route.isEmpty();
            };
        }

        /**
         * Adds to {@code out} the descriptors of a request on this route from the entries of {@code stage}: the
         * route's, then its virtual host's where {@code virtualHostsToo}; with {@code skipDisabled}, an entry with a
         * {@code disable_key} makes none (Envoy's local rate limit filter skips it).
         */
        void addTo(List<RateLimitDescriptor> out, int stage, boolean virtualHostsToo, boolean skipDisabled,
                   Subject s, String cluster) {
            add(route, out, stage, skipDisabled, s, cluster);
            if (virtualHostsToo) {
                add(virtualHost, out, stage, skipDisabled, s, cluster);
            }
        }

        private static void add(List<Descriptor> entries, List<RateLimitDescriptor> out, int stage,
                                boolean skipDisabled, Subject s, String cluster) {
            for (Descriptor d : entries) {
                if (d.stage == stage && !(skipDisabled && d.disabled)) {
                    d.addTo(out, s, cluster);
                }
            }
        }
    }

    /** One {@code rate_limits} entry, compiled: its stage and its actions, each producing one entry. */
    static final class Descriptor {
        private final int stage;
        /** Whether it has a {@code disable_key}, which Envoy's local rate limit filter takes to turn it off. */
        private final boolean disabled;
        private final List<Producer> actions;

        Descriptor(RateLimit config) {
            this.stage = config.stage();
            this.disabled = !config.disableKey().isEmpty();
            this.actions = config.actions().stream().map(Descriptor::producer).toList();
        }

        /**
         * Adds one action's entry to {@code out}; false when it cannot produce it (the descriptor is dropped). A
         * {@code request_headers} action with {@code skip_if_absent} adds nothing and is true.
         */
        private interface Producer {
            boolean produce(Subject s, String cluster, RateLimitDescriptor.Builder out);
        }

        private static Producer producer(RateLimit.Action action) {
            if (action instanceof RateLimit.DestinationCluster) {
                return (s, cluster, out) -> {
                    if (cluster == null) {
                        return false; // as Envoy's action for a request without a route entry
                    }
                    out.addEntries(entry("destination_cluster", cluster));
                    return true;
                };
            }
            if (action instanceof RateLimit.RemoteAddress) {
                return (s, cluster, out) -> {
                    // Envoy's downstream remote address, as its connection manager found it (from x-forwarded-for
                    // with use_remote_address false, the peer with true), as the RBAC remote_ip reads it
                    byte[] ip = s.remoteIp();
                    if (ip == null) {
                        return false; // Envoy's action: only an IP address has an entry to send
                    }
                    out.addEntries(entry("remote_address", IpLiterals.format(ip)));
                    return true;
                };
            }
            if (action instanceof RateLimit.MaskedRemoteAddress m) {
                return (s, cluster, out) -> {
                    byte[] ip = s.remoteIp();
                    if (ip == null) {
                        return false; // as remote_address: only an IP address has a network
                    }
                    int length = ip.length == 4 ? m.v4PrefixMaskLen() : m.v6PrefixMaskLen();
                    out.addEntries(entry("masked_remote_address", IpLiterals.format(masked(ip, length)) + "/"
                            + length));
                    return true;
                };
            }
            if (action instanceof RateLimit.QueryParameterValueMatch m) {
                QueryConditions query = QueryConditions.compile(m.queryParameters(), true);
                return whenMatched(r -> query.matches(QueryConditions.of(r.path())), m.expectMatch(),
                        entry(m.descriptorKey(), m.descriptorValue()));
            }
            if (action instanceof RateLimit.GenericKey g) {
                RateLimitDescriptor.Entry e = entry(g.descriptorKey(), g.descriptorValue());
                return (s, cluster, out) -> {
                    out.addEntries(e);
                    return true;
                };
            }
            if (action instanceof RateLimit.RequestHeaders h) {
                String name = h.headerName().toLowerCase(Locale.ROOT);
                return (s, cluster, out) -> {
                    // as Envoy's action, the first value of a header sent more than once: joined, the values would
                    // make a descriptor no rule for the first names, and the request would escape that rule's limit
                    String value = s.request() == null ? null : s.request().firstHeader(name);
                    if (value == null) {
                        return h.skipIfAbsent();
                    }
                    out.addEntries(entry(h.descriptorKey(), value));
                    return true;
                };
            }
            RateLimit.HeaderValueMatch m = (RateLimit.HeaderValueMatch) action;
            HeaderMatchers.Compiled headers = HeaderMatchers.compileAll(m.headers());
            return whenMatched(r -> headers.matches(r::header), m.expectMatch(),
                    entry(m.descriptorKey(), m.descriptorValue()));
        }

        /**
         * The {@code header_value_match} and {@code query_parameter_value_match} actions: entry {@code e} when the
         * request matches as {@code expectMatch} says (no request matches nothing), else the descriptor is dropped.
         */
        private static Producer whenMatched(java.util.function.Predicate<RouteRequest> matches, boolean expectMatch,
                                            RateLimitDescriptor.Entry e) {
            return (s, cluster, out) -> {
                boolean matched = s.request() != null && matches.test(s.request());
                if (matched != expectMatch) {
                    return false;
                }
                out.addEntries(e);
                return true;
            };
        }

        /**
         * Adds this entry's descriptor to {@code out} when every action produced its entry; as Envoy, also when
         * {@code skip_if_absent} actions left it without any entry (the service is still called).
         */
        void addTo(List<RateLimitDescriptor> out, Subject s, String cluster) {
            RateLimitDescriptor.Builder d = RateLimitDescriptor.newBuilder();
            for (Producer p : actions) {
                if (!p.produce(s, cluster, d)) {
                    return;
                }
            }
            out.add(d.build());
        }
    }

    /** {@code ip} with the bits past its first {@code length} cleared: the network of Envoy's {@code CidrRange}. */
    static byte[] masked(byte[] ip, int length) {
        byte[] out = ip.clone();
        for (int i = 0; i < out.length; i++) {
            int kept = Math.max(0, Math.min(8, length - 8 * i));
            out[i] &= (byte) (0xff00 >> kept);
        }
        return out;
    }

    private static RateLimitDescriptor.Entry entry(String key, String value) {
        return RateLimitDescriptor.Entry.newBuilder().setKey(key).setValue(value).build();
    }

    /**
     * The descriptors of a request on its route, from the entries of the filter's stage: the route's, and its
     * virtual host's where the route's {@code include_vh_rate_limits} or {@code vh_rate_limits} says so
     * ({@link Policy#virtualHostsToo}).
     */
    List<RateLimitDescriptor> descriptors(Policy p, Subject s, String cluster) {
        List<RateLimitDescriptor> out = new ArrayList<>();
        p.addTo(out, config.stage(), p.virtualHostsToo(name), false, s, cluster);
        return out;
    }

    /**
     * Whether a request is of the filter's {@code request_type}: internal when it carries
     * {@code x-envoy-internal: true} (what Envoy's connection manager sets on a request from an internal address),
     * external otherwise.
     */
    boolean ofRequestType(RouteRequest r) {
        boolean internal = "true".equals(r.header("x-envoy-internal"));
        return switch (config.requestType()) {
            case INTERNAL -> internal;
            case EXTERNAL -> !internal;
            case BOTH -> true;
        };
    }

    /**
     * Asks the rate limit service about a request, if the filter checks it, and applies the answer to the request's
     * headers.
     *
     * @param s the request and its connection
     * @param headers the request's headers, to which an {@code OK} answer's request headers are added
     * @param table the route table that routed the request
     * @param result what it decided: only a forwarded request is checked
     * @param clusters where the service's cluster and the route's are found
     * @return what was decided ({@link ExtAuthzFilter.Outcome#ALLOWED} for a request not checked); never failed
     */
    Future<ExtAuthzFilter.Outcome> check(Subject s, MutableHeaders headers, RouteTable table, RouteResult result,
                                         ClusterManager clusters) {
        if (!(result instanceof RouteResult.Forward f) || table == null || clusters == null || s.request() == null) {
            return Future.succeededFuture(ExtAuthzFilter.Outcome.ALLOWED);
        }
        if (!ofRequestType(s.request())) {
            return Future.succeededFuture(ExtAuthzFilter.Outcome.ALLOWED);
        }
        Policy policy = table.rateLimitPolicy(f.route());
        List<RateLimitDescriptor> descriptors = policy == null ? List.of() : descriptors(policy, s, f.cluster());
        if (descriptors.isEmpty()) {
            return Future.succeededFuture(ExtAuthzFilter.Outcome.ALLOWED);
        }
        UpstreamCluster routed = clusters.cluster(f.cluster());
        UpstreamStats stats = routed == null ? null : routed.stats();
        RateLimitRequest request = RateLimitRequest.newBuilder().setDomain(config.domain())
                .addAllDescriptors(descriptors).build();
        // as Envoy's filter, a timeout of 0 is none: the call waits for the service's answer
        Duration timeout = config.timeout().isZero() ? null : config.timeout();
        return ClusterCall.grpc(clusters, config.cluster(), config.authority(), SHOULD_RATE_LIMIT_PATH, request,
                timeout).transform(ar -> {
                    RateLimitResponse r = ar.succeeded()
                            ? ClusterCall.message(ar.result(), RateLimitResponse.parser()) : null;
                    return Future.succeededFuture(r == null ? error(stats) : answer(r, headers, stats));
                });
    }

    /** The service could not answer: the request goes on, or under {@code failure_mode_deny} is refused. */
    private ExtAuthzFilter.Outcome error(UpstreamStats stats) {
        count(stats, RateLimitStat.ERROR);
        if (!config.failureModeDeny()) {
            count(stats, RateLimitStat.FAILURE_MODE_ALLOWED);
            return ExtAuthzFilter.Outcome.ALLOWED;
        }
        return new ExtAuthzFilter.Outcome(new RbacFilter.Denial(config.statusOnError(), "", ERROR_DETAILS, null,
                List.of(), false, ResponseFlag.RATE_LIMIT_SERVICE_ERROR), List.of(), false);
    }

    ExtAuthzFilter.Outcome answer(RateLimitResponse r, MutableHeaders headers, UpstreamStats stats) {
        // as Envoy's client: anything but OVER_LIMIT lets the request through
        boolean over = r.getOverallCode() == RateLimitResponse.Code.OVER_LIMIT;
        count(stats, over ? RateLimitStat.OVER_LIMIT : RateLimitStat.OK);
        List<String> toClient = new ArrayList<>();
        for (var h : r.getResponseHeadersToAddList()) {
            toClient.add(h.getKey().toLowerCase(Locale.ROOT));
            toClient.add(value(h));
        }
        if (config.xRateLimitHeaders()) {
            xRateLimitHeaders(r.getStatusesList(), toClient);
        }
        if (over) {
            if (stats != null) {
                // as Envoy's filter charges its refusal to the cluster: upstream_rq_completed and upstream_rq_4xx
                stats.requestCompleted(config.rateLimitedStatus());
            }
            return new ExtAuthzFilter.Outcome(new RbacFilter.Denial(config.rateLimitedStatus(),
                    r.getRawBody().toStringUtf8(), RATE_LIMITED_DETAILS, null, refusalHeaders(toClient), true,
                    ResponseFlag.RATE_LIMITED, responseHeaders), List.of(), false);
        }
        for (var h : r.getRequestHeadersToAddList()) {
            headers.add(h.getKey().toLowerCase(Locale.ROOT), value(h));
        }
        if (toClient.isEmpty()) {
            return ExtAuthzFilter.Outcome.ALLOWED;
        }
        List<ExtAuthzFilter.ResponseHeader> response = new ArrayList<>();
        for (int i = 0; i + 1 < toClient.size(); i += 2) {
            response.add(new ExtAuthzFilter.ResponseHeader(toClient.get(i), toClient.get(i + 1),
                    ExtAuthzFilter.ResponseHeader.Action.ADD));
        }
        return new ExtAuthzFilter.Outcome(null, List.copyOf(response), false);
    }

    /**
     * The service's headers of a refusal, as Envoy's local reply gets them before the filter's own
     * {@code response_headers_to_add} (which the refusal carries apart): the service's and the {@code x-ratelimit-*}
     * ones ({@code toClient}), then {@code x-envoy-ratelimited: true}; names and values in pairs.
     */
    private List<String> refusalHeaders(List<String> toClient) {
        if (!config.xEnvoyRateLimitedHeader()) {
            return toClient;
        }
        List<String> pairs = new ArrayList<>(toClient.size() + 2);
        pairs.addAll(toClient);
        pairs.add(HeaderNames.X_ENVOY_RATELIMITED.toString());
        pairs.add("true");
        return pairs;
    }

    private static String value(io.envoyproxy.envoy.config.core.v3.HeaderValue h) {
        return h.getRawValue().isEmpty() ? h.getValue() : h.getRawValue().toStringUtf8();
    }

    /**
     * The {@code x-ratelimit-*} headers of draft 03 as Envoy makes them: the limit, remaining requests and seconds
     * to reset of the status with the fewest remaining, the limit followed by each status's quota policy
     * ({@code , <requests>;w=<window seconds>}, with {@code ;name="<name>"} when the limit has one). Nothing when no
     * status has a current limit.
     */
    static void xRateLimitHeaders(List<RateLimitResponse.DescriptorStatus> statuses, List<String> out) {
        RateLimitResponse.DescriptorStatus min = null;
        StringBuilder policy = new StringBuilder();
        for (RateLimitResponse.DescriptorStatus st : statuses) {
            if (!st.hasCurrentLimit()) {
                continue;
            }
            if (min == null || Integer.compareUnsigned(st.getLimitRemaining(), min.getLimitRemaining()) < 0) {
                min = st;
            }
            long window = switch (st.getCurrentLimit().getUnit()) {
                case SECOND -> 1;
                case MINUTE -> 60;
                case HOUR -> 3600;
                case DAY -> 86400;
                case WEEK -> 7 * 86400;
                case MONTH -> 30 * 86400; // as Envoy counts a month and a year
                case YEAR -> 365 * 86400;
                default -> 0;
            };
            if (window > 0) {
                policy.append(", ").append(Integer.toUnsignedString(st.getCurrentLimit().getRequestsPerUnit()))
                        .append(";w=").append(window);
                if (!st.getCurrentLimit().getName().isEmpty()) {
                    policy.append(";name=\"").append(st.getCurrentLimit().getName()).append('"');
                }
            }
        }
        if (min == null) {
            return;
        }
        out.add("x-ratelimit-limit");
        out.add(Integer.toUnsignedString(min.getCurrentLimit().getRequestsPerUnit()) + policy);
        out.add("x-ratelimit-remaining");
        out.add(Integer.toUnsignedString(min.getLimitRemaining()));
        out.add("x-ratelimit-reset");
        out.add(Long.toString(min.getDurationUntilReset().getSeconds()));
    }

    private static void count(UpstreamStats stats, RateLimitStat stat) {
        if (stats != null) {
            stats.rateLimit(stat);
        }
    }
}
