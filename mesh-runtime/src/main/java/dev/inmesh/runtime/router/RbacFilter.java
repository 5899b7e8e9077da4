package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.extauthz.NetworkExtAuthz;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.ratelimit.NetworkLocalRateLimit;
import dev.inmesh.api.config.rbac.NetworkRbac;
import dev.inmesh.api.config.rbac.Permission;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.runtime.listener.Cidrs;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.NetworkLocalRateLimitStats;
import dev.inmesh.runtime.stats.RbacStats;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.Future;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Predicate;
import java.util.function.Supplier;
import javax.security.auth.x500.X500Principal;

/**
 * Envoy's RBAC HTTP filter ({@code envoy.filters.http.rbac}), compiled once per snapshot from its {@link Rbac} config
 * into matchers that read a request without parsing anything of the config again (header matchers and RE2 regexes are
 * compiled here). A filter's enforced rules decide: ALLOW lets through only a request that matches a policy, DENY
 * stops one that does, LOG never stops one; its shadow rules are evaluated for their statistics only. The filters of a
 * connection manager run in their chain order ({@link Chain}); the first that denies answers {@code 403}
 * {@code RBAC: access denied}, with the response code details {@code rbac_access_denied_matched_policy[NAME]}
 * ({@code [none]} when an ALLOW policy matched nothing), and the request goes no further. As Envoy's, the filter sets
 * no response flag. Immutable and thread-safe.
 */
public final class RbacFilter {
    /** The body of Envoy's answer to a denied request. */
    public static final String DENIED_BODY = "RBAC: access denied";
    /** The namespace of the dynamic metadata the filter writes: its canonical name, whatever the filter is called. */
    public static final String METADATA_NAMESPACE = "envoy.filters.http.rbac";
    /** The namespace of the dynamic metadata the RBAC network filter writes. */
    public static final String NETWORK_METADATA_NAMESPACE = "envoy.filters.network.rbac";
    /** The key, after the shadow stat prefix, of the shadow policy a request matched. */
    static final String SHADOW_EFFECTIVE_POLICY_ID = "shadow_effective_policy_id";
    /** The key, after the shadow stat prefix, of the shadow rules' decision ({@code allowed} or {@code denied}). */
    static final String SHADOW_ENGINE_RESULT = "shadow_engine_result";

    private final String name;
    private final Engine rules;
    private final Engine shadow;
    private final String rulesStatPrefix;
    private final String shadowStatPrefix;

    private RbacFilter(String name, Rbac config) {
        this.name = name;
        this.rules = config.rules() == null ? null : new Engine(config.rules());
        this.shadow = config.shadowRules() == null ? null : new Engine(config.shadowRules());
        this.rulesStatPrefix = config.rulesStatPrefix();
        this.shadowStatPrefix = config.shadowRulesStatPrefix();
    }

    /** One filter, compiled. */
    public static RbacFilter compile(String filterName, Rbac config) {
        return new RbacFilter(filterName, config);
    }

    /**
     * The response code details of a request denied by {@code policy} (null: no policy matched), its whitespace
     * characters underscores, as Envoy writes them so that an access log line keeps one field.
     */
    public static String details(String policy) {
        return "rbac_access_denied_matched_policy[" + (policy == null ? "none" : policy.replaceAll("\\s", "_"))
                + "]";
    }

    /**
     * Runs the filter: counts the shadow rules' decision ({@code rbac.<shadow prefix>shadow_allowed} or
     * {@code shadow_denied}) and the enforced rules' ({@code rbac.<prefix>allowed} or {@code denied}).
     *
     * @return null when the request may go on, else the response code details of its denial
     */
    String check(Subject s, RbacStats stats) {
        return check(s, stats, this, null);
    }

    /**
     * Runs this config's rules, counting under the stat prefixes of {@code counted}: as Envoy's, a filter whose
     * config an {@code RBACPerRoute} replaced keeps counting in its own {@code rules_stat_prefix} and
     * {@code shadow_rules_stat_prefix} (the per-route ones name the dynamic metadata). As Envoy's, the shadow rules
     * write their decision into {@code metadata} (when not null): {@code <shadow prefix>shadow_engine_result}
     * ({@code allowed} or {@code denied}) and, when a policy matched, {@code <shadow prefix>shadow_effective_policy_id}
     * (its name), which Istio's ext_authz filter reads to check only the requests of its CUSTOM policies.
     */
    private String check(Subject s, RbacStats stats, RbacFilter counted, Map<String, Object> metadata) {
        if (shadow != null) {
            String[] matched = {null};
            boolean allowed = shadow.allows(s, matched);
            if (stats != null) {
                stats.rbacDecision(counted.shadowStatPrefix, true, allowed);
            }
            if (metadata != null) {
                if (matched[0] != null) {
                    metadata.put(shadowStatPrefix + SHADOW_EFFECTIVE_POLICY_ID, matched[0]);
                }
                metadata.put(shadowStatPrefix + SHADOW_ENGINE_RESULT, allowed ? "allowed" : "denied");
            }
        }
        if (rules == null) {
            return null; // no rules: Envoy has no engine and lets the request through, counting nothing
        }
        String[] policy = {null};
        boolean allowed = rules.allows(s, policy);
        if (stats != null) {
            stats.rbacDecision(counted.rulesStatPrefix, false, allowed);
        }
        return allowed ? null : details(policy[0]);
    }

    /**
     * The RBAC network filters of one filter chain ({@link FilterChain#rbac}), its external authorization network
     * filters ({@link FilterChain#extAuthz}) and its local rate limit network filters
     * ({@link FilterChain#localRateLimit}, {@link NetworkLocalRateLimitFilter}), in their chain order, compiled. They
     * check a connection once, before its chain's terminal filter (a TCP proxy or a connection manager) sees it, as
     * Envoy's {@code ONE_TIME_ON_FIRST_BYTE} (the rate limit filter's {@code onNewConnection} runs no later); the
     * first that denies closes it, and the filters after it do not run (a connection an RBAC filter before a rate
     * limit filter denies takes no token). Immutable, but for the rate limit filters' buckets.
     */
    public static final class Network {
        /**
         * Why a local rate limit filter closed a connection without a token (Envoy's connection termination details;
         * Envoy's filter also sets the response flag URX).
         */
        public static final String RATE_LIMITED = NetworkLocalRateLimitFilter.DETAILS;

        /** No RBAC network filter: every connection goes on. */
        public static final Network NONE = new Network(List.of(), List.of());

        /**
         * The RBAC network filters ({@link RbacFilter}), external authorization ones ({@link ExtAuthzFilter}) and local
         * rate limit ones ({@link NetworkLocalRateLimitFilter}).
         */
        private final List<Object> filters;
        /** The stat prefix of each filter, by its place in {@link #filters}. */
        private final List<String> statPrefixes;
        private final boolean external;

        private Network(List<Object> filters, List<String> statPrefixes) {
            this.filters = filters;
            this.statPrefixes = statPrefixes;
            this.external = filters.stream().anyMatch(f -> f instanceof ExtAuthzFilter);
        }

        /**
         * The network filters of a chain, compiled, in chain order, each local rate limit filter with a full bucket of
         * its own: a chain compiled outside a snapshot (one connection's) limits nothing.
         */
        public static Network compile(FilterChain chain) {
            return compile(chain, new LocalRateLimitFilter.Buckets().session(), "");
        }

        /**
         * The network filters of a chain, compiled, in chain order, the local rate limit filters' buckets from
         * {@code buckets} at {@code where} (the chain's place: its listener and index).
         */
        public static Network compile(FilterChain chain, LocalRateLimitFilter.Buckets.Session buckets, String where) {
            if (chain == null || !chain.checksConnections()) {
                return NONE;
            }
            List<Object> out = new ArrayList<>();
            List<String> prefixes = new ArrayList<>();
            for (int i = 0; i <= chain.rbac().size(); i++) {
                for (NetworkExtAuthz e : chain.extAuthz()) {
                    if (e.after() == i) {
                        out.add(ExtAuthzFilter.compile(e.asFilter()));
                        prefixes.add(e.statPrefix());
                    }
                }
                if (i < chain.rbac().size()) {
                    NetworkRbac r = chain.rbac().get(i);
                    out.add(new RbacFilter("envoy.filters.network.rbac", r.rbac()));
                    prefixes.add(r.statPrefix());
                }
            }
            // each rate limit filter after the RBAC and ext_authz filters before it, and the rate limit ones before it
            for (int i = 0; i < chain.localRateLimit().size(); i++) {
                NetworkLocalRateLimit l = chain.localRateLimit().get(i);
                out.add(l.after() + i, new NetworkLocalRateLimitFilter(l, buckets, where + "/local_ratelimit/" + i));
                prefixes.add(l.after() + i, l.statPrefix());
            }
            return new Network(List.copyOf(out), List.copyOf(prefixes));
        }

        /** Whether no RBAC or external authorization network filter runs. */
        public boolean isEmpty() {
            return filters.isEmpty();
        }

        /** Whether an external authorization network filter runs: deciding may then wait for its authorizer. */
        public boolean external() {
            return external;
        }

        /**
         * Runs the RBAC filters in order until one denies the connection, each counting under its {@code stat_prefix}
         * (a chain with an external authorization filter is decided by
         * {@link #authorize(Subject, java.util.function.Function, ClusterManager)}).
         *
         * @param s the connection ({@link Subject#connection})
         * @param stats the statistics of a {@code stat_prefix}; null, or answering null, to count nothing
         * @return null when the connection may go on, else why it is closed
         *     ({@code rbac_access_denied_matched_policy[NAME|none]}, Envoy's connection termination details)
         */
        public String check(Subject s, java.util.function.Function<String, ? extends RbacStats> stats) {
            return check(s, stats, null);
        }

        /**
         * As {@link #check(Subject, java.util.function.Function)}, the local rate limit filters taking a token each,
         * counting a connection they close under their {@code stat_prefix} in {@code limitStats} (null, or answering
         * null: nothing counted); a connection they close has the details {@code local_ratelimit_close_over_limit}.
         */
        public String check(Subject s, java.util.function.Function<String, ? extends RbacStats> stats,
                            java.util.function.Function<String, NetworkLocalRateLimitStats> limitStats) {
            if (external) {
                throw new IllegalStateException("an external authorization filter runs: authorize with clusters");
            }
            return run(0, s, stats, limitStats, null, null).result();
        }

        /**
         * Runs every filter in chain order: an RBAC filter as {@link #check} does, writing its shadow rules' dynamic
         * metadata, an external authorization filter (when its {@code filter_enabled_metadata} picks the connection)
         * by asking its gRPC authorizer about the connection, waiting for it.
         *
         * @return null when the connection may go on, else why it is closed (an RBAC denial's details, or
         *     {@code ext_authz_denied} or {@code ext_authz_error}); never failed
         */
        public Future<String> authorize(Subject s, java.util.function.Function<String, ? extends RbacStats> stats,
                                        ClusterManager clusters) {
            return authorize(s, stats, null, clusters);
        }

        /**
         * As {@link #authorize(Subject, java.util.function.Function, ClusterManager)}, the local rate limit filters
         * counting in {@code limitStats}, as {@link #check(Subject, java.util.function.Function,
         * java.util.function.Function)}.
         */
        public Future<String> authorize(Subject s, java.util.function.Function<String, ? extends RbacStats> stats,
                                        java.util.function.Function<String, NetworkLocalRateLimitStats> limitStats,
                                        ClusterManager clusters) {
            return run(0, s, stats, limitStats, clusters, new java.util.HashMap<>());
        }

        private Future<String> run(int from, Subject s,
                                   java.util.function.Function<String, ? extends RbacStats> stats,
                                   java.util.function.Function<String, NetworkLocalRateLimitStats> limitStats,
                                   ClusterManager clusters, Map<String, Object> metadata) {
            for (int i = from; i < filters.size(); i++) {
                Object f = filters.get(i);
                if (f instanceof RbacFilter r) {
                    String denied = r.check(s, stats == null ? null : stats.apply(statPrefixes.get(i)), r, metadata);
                    if (denied != null) {
                        return Future.succeededFuture(denied);
                    }
                } else if (f instanceof NetworkLocalRateLimitFilter l) {
                    if (!l.allows(limitStats)) {
                        return Future.succeededFuture(NetworkLocalRateLimitFilter.DETAILS);
                    }
                } else if (clusters != null && f instanceof ExtAuthzFilter e && e.enabled(s, metadata)) {
                    int next = i + 1;
                    return e.check(s, null, clusters, null).compose(o -> o.denial() != null
                            ? Future.succeededFuture(o.denial().details())
                            : run(next, s, stats, limitStats, clusters, metadata));
                }
            }
            return Future.succeededFuture(null);
        }
    }

    /**
     * The authentication and authorization filters of one connection manager, compiled: its JWT authentication filter
     * ({@link JwtAuthnFilter}), if any, then its RBAC and external authorization filters ({@link ExtAuthzFilter}) in
     * their chain order, as Istio writes them (the parser refuses a JWT filter after them); per route, an RBAC
     * filter's config may be replaced (Envoy's {@code RBACPerRoute}, by the filter's name). The RBAC filters'
     * {@code metadata} principals read what the JWT filter verified; an external authorization filter's
     * {@code filter_enabled_metadata} what the RBAC filters before it wrote (Istio's CUSTOM action: a shadow RBAC
     * filter marks the requests its ext_authz filter checks). Immutable.
     */
    public static final class Chain {
        /** No such filter: every request goes on. */
        public static final Chain NONE = new Chain(null, List.of(), null, false);

        private final JwtAuthnFilter jwt;
        /** The RBAC filters ({@link RbacFilter}) and external authorization filters ({@link ExtAuthzFilter}). */
        private final List<Object> filters;
        /** The global rate limit filter, after them; null for none. */
        private final RateLimitFilter rateLimit;
        /** Whether {@link #rateLimit} runs after the fault and CORS filters ({@link #lateRateLimit}). */
        private final boolean rateLimitLast;
        private final boolean external;

        private Chain(JwtAuthnFilter jwt, List<Object> filters, RateLimitFilter rateLimit, boolean rateLimitLast) {
            this.jwt = jwt;
            this.filters = filters;
            this.rateLimit = rateLimit;
            this.rateLimitLast = rateLimit != null && rateLimitLast;
            this.external = rateLimit != null && !rateLimitLast
                    || filters.stream().anyMatch(f -> f instanceof ExtAuthzFilter) || jwt != null && jwt.fetches();
        }

        /**
         * The JWT authentication filter ({@link HttpConnectionManager#jwtAuthnFilter}), RBAC filters and external
         * authorization filters ({@link HttpConnectionManager#authorizationFilters}) of a connection manager, and its
         * global rate limit filter ({@link HttpConnectionManager#globalRateLimitFilter}), which runs after them (the
         * parser refuses it before them): right after them, or after the fault and CORS filters when it stands there
         * ({@link HttpConnectionManager#globalRateLimitLast}, {@link #lateRateLimit}), compiled.
         */
        public static Chain compile(HttpConnectionManager hcm) {
            List<HttpFilter> configs = hcm == null ? List.of() : hcm.authorizationFilters();
            HttpFilter jwtConfig = hcm == null ? null : hcm.jwtAuthnFilter();
            HttpFilter rateLimitConfig = hcm == null ? null : hcm.globalRateLimitFilter();
            if (configs.isEmpty() && rateLimitConfig == null) {
                return NONE;
            }
            List<Object> out = new ArrayList<>(configs.size());
            for (HttpFilter f : configs) {
                if (f.rbac() != null) {
                    out.add(new RbacFilter(f.name(), f.rbac()));
                } else if (f.extAuthz() != null) {
                    out.add(ExtAuthzFilter.compile(f.name(), f.extAuthz()));
                }
            }
            return new Chain(jwtConfig == null ? null : JwtAuthnFilter.compile(jwtConfig.name(), jwtConfig.jwtAuthn()),
                    List.copyOf(out), rateLimitConfig == null ? null
                            : RateLimitFilter.compile(rateLimitConfig.name(), rateLimitConfig.globalRateLimit()),
                    hcm.globalRateLimitLast());
        }

        /**
         * Whether neither a JWT authentication filter nor an RBAC, external authorization or global rate limit filter
         * runs.
         */
        public boolean isEmpty() {
            return jwt == null && filters.isEmpty() && rateLimit == null;
        }

        /**
         * Whether an external authorization filter, a global rate limit filter that runs right after the
         * authorization filters, or a JWT authentication filter that fetches key sets runs: deciding may then wait
         * for its service.
         */
        public boolean external() {
            return external;
        }

        /**
         * Runs the RBAC filters in order until one denies the request (the external authorization filters, which
         * only {@link #authorize(Subject, MutableHeaders, Consumer, RouteTable, RouteResult, DownstreamStats,
         * ClusterManager)} runs, are skipped).
         *
         * @param table the route table that routed the request, whose routes and virtual hosts may replace a
         *     filter's config ({@code RBACPerRoute}, by the filter's name: the route's, else its virtual host's)
         * @param result what the table decided for the request
         * @return null when the request may go on, else the response code details of its denial
         */
        public String check(Subject s, RouteTable table, RouteResult result, DownstreamStats stats) {
            Map<String, RbacFilter> perRoute = perRoute(table, result);
            for (Object f : filters) {
                if (f instanceof RbacFilter r) {
                    String denied = rbac(r, s, perRoute, stats, null);
                    if (denied != null) {
                        return denied;
                    }
                }
            }
            return null;
        }

        private static Map<String, RbacFilter> perRoute(RouteTable table, RouteResult result) {
            return table == null || result == null ? Map.of() : table.rbacPerRoute(result);
        }

        private static String rbac(RbacFilter f, Subject s, Map<String, RbacFilter> perRoute, DownstreamStats stats,
                                   Map<String, Object> metadata) {
            RbacFilter effective = perRoute.isEmpty() ? f : perRoute.getOrDefault(f.name, f);
            return effective.check(s, stats, f, metadata);
        }

        /**
         * Runs the JWT authentication filter, if any, then the RBAC filters with what it verified
         * ({@link #check}); the first that refuses answers. A chain with an external authorization filter is decided
         * by {@link #authorize(Subject, MutableHeaders, Consumer, RouteTable, RouteResult, DownstreamStats,
         * ClusterManager)}.
         *
         * @param headers the request's headers, which the JWT filter changes (the token's header removed, payload and
         *     claim headers added) before the RBAC filters read them
         * @param tokenParameters takes the query parameters the JWT filter's verified tokens leave (their providers
         *     do not {@code forward} them) out of the path the request goes on with, as Envoy's filter changes its
         *     {@code :path} ({@link JwtAuthnFilter#withoutParameters}); the filters after it see the path without them
         * @return null when the request may go on, else the answer that refuses it
         */
        public Denial authorize(Subject s, MutableHeaders headers, Consumer<Set<String>> tokenParameters,
                                RouteTable table, RouteResult result, DownstreamStats stats) {
            if (external) {
                throw new IllegalStateException("an external authorization filter runs: authorize with clusters");
            }
            Object jwtOutcome = authenticated(s, headers, tokenParameters, stats);
            if (jwtOutcome instanceof Denial d) {
                return d;
            }
            String denied = check((Subject) jwtOutcome, table, result, stats);
            return denied == null ? null : new Denial(403, DENIED_BODY, denied, null);
        }

        /**
         * Runs every filter in the chain's order: the JWT authentication filter, then the RBAC and external
         * authorization filters, an external one only on a request its {@code filter_enabled_metadata} picks, waiting
         * for its authorizer. The first that refuses answers.
         *
         * @param headers the request's headers, which the JWT filter and an allowing authorizer change
         * @param tokenParameters takes the query parameters of the JWT filter's verified tokens out of the request's
         *     path, as in {@link #authorize(Subject, MutableHeaders, Consumer, RouteTable, RouteResult,
         *     DownstreamStats)}
         * @param clusters where an external authorization filter finds its authorizer's cluster
         * @return what was decided (an unexpected failure inside the chain refuses the request): the denial, or the
         *     headers the response gets; failed ({@link RequestBody.Gone}) only when the caller left while an
         *     authorizer waited for the request's body
         */
        public Future<Verdict> authorize(Subject s, MutableHeaders headers, Consumer<Set<String>> tokenParameters,
                                         RouteTable table, RouteResult result, DownstreamStats stats,
                                         ClusterManager clusters) {
            if (!external) {
                Denial d = authorize(s, headers, tokenParameters, table, result, stats);
                return Future.succeededFuture(d == null ? Verdict.ALLOWED : new Verdict(d, List.of(), false));
            }
            if (jwt != null && jwt.fetches()) {
                // the key sets its tokens need first, then every filter as below
                Future<Void> keys;
                try {
                    keys = jwt.fetchKeys(s.request(), headers, clusters);
                } catch (RuntimeException e) {
                    return Future.succeededFuture(failed(e));
                }
                return keys.transform(ignored -> authorizeWithKeys(s, headers, tokenParameters, table, result, stats,
                        clusters));
            }
            return authorizeWithKeys(s, headers, tokenParameters, table, result, stats, clusters);
        }

        /** The rest of the asynchronous {@code authorize}, once the JWT filter has the key sets it needs. */
        private Future<Verdict> authorizeWithKeys(Subject s, MutableHeaders headers,
                                                  Consumer<Set<String>> tokenParameters, RouteTable table,
                                                  RouteResult result, DownstreamStats stats,
                                                  ClusterManager clusters) {
            try {
                Object jwtOutcome = authenticated(s, headers, tokenParameters, stats);
                if (jwtOutcome instanceof Denial d) {
                    return Future.succeededFuture(new Verdict(d, List.of(), false));
                }
                // as Envoy's ext_authz filter: a request no route matched is not checked (its router answers 404)
                boolean routed = result != null && !(result instanceof RouteResult.NoRoute);
                Subject subject = (Subject) jwtOutcome;
                Future<Verdict> authorized = run(0, subject, headers, perRoute(table, result), stats, clusters,
                        new java.util.HashMap<>(), Verdict.ALLOWED, routed ? result : null);
                if (rateLimit != null && !rateLimitLast) {
                    // the global rate limit filter, once the others let the request through
                    // (with the path an authorizer gave the request, as the filters after it see it in Envoy)
                    authorized = authorized.compose(v -> v.denial() != null ? Future.succeededFuture(v)
                            : rateLimit.check(v.path() == null ? subject : subject.withPath(v.path()), headers, table,
                                    result, clusters).map(o -> o.denial() != null
                                    ? new Verdict(o.denial(), List.of(), false) : v.and(o)));
                }
                // a caller that left while an authorizer waited for its body: nothing is decided (nor answered)
                return authorized.recover(e -> e instanceof RequestBody.Gone ? Future.failedFuture(e)
                        : Future.succeededFuture(failed(e)));
            } catch (RuntimeException e) {
                return Future.succeededFuture(failed(e));
            }
        }

        /**
         * Whether a value of the global rate limit filter's {@code response_headers_to_add} is a format: one that
         * reads the request.
         */
        public boolean formatsHeaders() {
            return rateLimit != null && rateLimit.formatsHeaders();
        }

        /** Whether the global rate limit filter runs after the fault and CORS filters ({@link #lateRateLimit}). */
        public boolean hasLateRateLimit() {
            return rateLimitLast;
        }

        /**
         * The global rate limit filter where Istio's {@code INSERT_BEFORE} the router puts it, after the fault and
         * CORS filters: {@link #authorize} leaves it to the router, which calls this once those let the request
         * through (a fault's abort and a CORS preflight answer are then not checked, as in Envoy). Null when it does
         * not run there.
         *
         * @return what it decided, never failed (an unexpected failure refuses the request, as in {@link #authorize})
         */
        public Future<Verdict> lateRateLimit(Subject s, MutableHeaders headers, RouteTable table, RouteResult result,
                                             ClusterManager clusters) {
            if (!rateLimitLast) {
                return null;
            }
            try {
                return rateLimit.check(s, headers, table, result, clusters).map(o -> o.denial() != null
                                ? new Verdict(o.denial(), List.of(), false) : Verdict.ALLOWED.and(o))
                        .recover(e -> Future.succeededFuture(failed(e)));
            } catch (RuntimeException e) {
                return Future.succeededFuture(failed(e));
            }
        }

        /**
         * What an unexpected failure inside the chain decides: a refusal, as an authorizer's error is under Envoy's
         * default {@code status_on_error} (403, UAEX, {@code ext_authz_error}), never a request let through unchecked.
         */
        private static Verdict failed(Throwable e) {
            System.getLogger(Chain.class.getName()).log(System.Logger.Level.WARNING,
                    "the authorization filters failed; the request is refused", e);
            return new Verdict(new Denial(403, "", ExtAuthzFilter.ERROR_DETAILS, null, List.of(), true), List.of(),
                    false);
        }

        /** @param routed what the route table decided for a routed request; null when no route matched it */
        private Future<Verdict> run(int from, Subject s, MutableHeaders headers, Map<String, RbacFilter> perRoute,
                                    DownstreamStats stats, ClusterManager clusters, Map<String, Object> metadata,
                                    Verdict sofar, RouteResult routed) {
            for (int i = from; i < filters.size(); i++) {
                Object f = filters.get(i);
                if (f instanceof RbacFilter r) {
                    String denied = rbac(r, s, perRoute, stats, metadata);
                    if (denied != null) {
                        return Future.succeededFuture(new Verdict(new Denial(403, DENIED_BODY, denied, null),
                                List.of(), false));
                    }
                } else if (f instanceof ExtAuthzFilter e && routed != null) {
                    ExtAuthzFilter.RouteSettings route = e.settings(routed);
                    if (route.disabled()) {
                        continue; // as Envoy's: the route's ExtAuthzPerRoute turns it off before anything is counted
                    }
                    if (!e.enabled(s, metadata)) {
                        if (stats != null) {
                            stats.extAuthz().disabled(); // Envoy's ext_authz.disabled
                        }
                        continue;
                    }
                    int next = i + 1;
                    return e.check(s, headers, clusters, stats, route).compose(o -> {
                        if (o.denial() != null) {
                            return Future.succeededFuture(new Verdict(o.denial(), List.of(), false));
                        }
                        Verdict v = sofar.and(o);
                        // the filters after it see the path the authorizer gave the request, as in Envoy
                        Subject then = o.path() == null ? s : s.withPath(o.path());
                        return run(next, then, headers, perRoute, stats, clusters, metadata, v, routed);
                    });
                }
            }
            return Future.succeededFuture(sofar);
        }

        /**
         * The request after the JWT authentication filter (a {@link Subject}: with the metadata it wrote, and the path
         * it left, its tokens' query parameters handed to {@code tokenParameters}), or its refusal (a {@link Denial}).
         */
        private Object authenticated(Subject s, MutableHeaders headers, Consumer<Set<String>> tokenParameters,
                                     DownstreamStats stats) {
            if (jwt == null) {
                return s;
            }
            JwtAuthnFilter.Outcome o = jwt.authenticate(s.request(), headers, stats);
            if (o.denied()) {
                return new Denial(o.code(), o.body(), o.details(), o.wwwAuthenticate());
            }
            Subject out = o.metadata().isEmpty() ? s : s.withJwtMetadata(o.metadata());
            if (o.tokenParameters().isEmpty()) {
                return out;
            }
            tokenParameters.accept(o.tokenParameters());
            return out.withPath(JwtAuthnFilter.withoutParameters(s.request().path(), o.tokenParameters()));
        }
    }

    /**
     * What a connection manager's authorization filters decided: the {@code denial} that answers the request (null:
     * it goes on), the headers its response gets from an allowing authorizer (names and values in pairs), whether
     * the request is routed again ({@code clear_route_cache}: an authorizer changed its headers or query), and the
     * request's new {@code path} when an authorizer changed its query parameters (null: unchanged).
     */
    public record Verdict(Denial denial, List<ExtAuthzFilter.ResponseHeader> responseHeaders, boolean reroute,
                          String path) {
        /** Nothing refused, nothing changed. */
        public static final Verdict ALLOWED = new Verdict(null, List.of(), false);

        public Verdict {
            responseHeaders = List.copyOf(responseHeaders);
        }

        /** A verdict that leaves the request's path as it is. */
        public Verdict(Denial denial, List<ExtAuthzFilter.ResponseHeader> responseHeaders, boolean reroute) {
            this(denial, responseHeaders, reroute, null);
        }

        /**
         * This verdict and another allowing one: the response headers of both, rerouted when either is, the other's
         * path when it changed it.
         */
        Verdict with(Verdict other) {
            return and(other.responseHeaders, other.reroute, other.path);
        }

        /** This verdict and an allowing authorizer's answer. */
        Verdict and(ExtAuthzFilter.Outcome o) {
            return and(o.responseHeaders(), o.reroute(), o.path());
        }

        private Verdict and(List<ExtAuthzFilter.ResponseHeader> headers, boolean rerouted, String changedPath) {
            if (headers.isEmpty() && !rerouted && changedPath == null) {
                return this;
            }
            return new Verdict(null, ExtAuthzFilter.ResponseHeader.concat(responseHeaders, headers),
                    reroute || rerouted, changedPath != null ? changedPath : path);
        }
    }

    /**
     * A filter's refusal of a request: its status, body and response code details, for the JWT authentication
     * filter its {@code www-authenticate} header (null for none), for the external authorization filter the headers
     * of its answer (names and values in pairs; they replace the local reply's) and {@code external}, for the
     * global rate limit filter its service's headers the same way; {@code flag} the response flag (UAEX for an
     * external authorizer's, RL or RLSE for the rate limit filter's, null for none); {@code replyHeaders} the refusing
     * filter's own {@code response_headers_to_add} (the global rate limit filter's), applied over the reply's headers
     * once made, formatted from the request with the reply's status (null for none). Envoy's RBAC filter answers
     * {@code 403 RBAC: access denied}; its JWT filter {@code 401} (or {@code 403}) with jwt_verify_lib's words; its
     * ext_authz filter the authorizer's denial, or {@code status_on_error}; its rate limit filter {@code 429} (or
     * {@code rate_limited_status}), or {@code 500} when its service failed under {@code failure_mode_deny}.
     */
    public record Denial(int status, String body, String details, String wwwAuthenticate, List<String> headers,
                         boolean external, dev.inmesh.runtime.stats.ResponseFlag flag, ReplyHeadersToAdd replyHeaders) {
        public Denial {
            headers = headers == null ? List.of() : List.copyOf(headers);
        }

        /** A refusal without headers of the filter's own to add. */
        public Denial(int status, String body, String details, String wwwAuthenticate, List<String> headers,
                      boolean external, dev.inmesh.runtime.stats.ResponseFlag flag) {
            this(status, body, details, wwwAuthenticate, headers, external, flag, null);
        }

        /** A refusal with response flag UAEX when {@code external} (an external authorizer's), else none. */
        public Denial(int status, String body, String details, String wwwAuthenticate, List<String> headers,
                      boolean external) {
            this(status, body, details, wwwAuthenticate, headers, external,
                    external ? dev.inmesh.runtime.stats.ResponseFlag.UNAUTHORIZED_EXTERNAL_SERVICE : null);
        }

        /** The answer of a JWT authentication or RBAC filter. */
        public Denial(int status, String body, String details, String wwwAuthenticate) {
            this(status, body, details, wwwAuthenticate, List.of(), false);
        }
    }

    /**
     * What the filter reads of a request and of the connection it came on.
     *
     * @param request the request: its headers (with {@code :method}, {@code :path}, {@code :authority}) and path
     * @param localIp the address the request came to (the original destination of a captured connection)
     * @param localPort the port it came to
     * @param peerIp the connection's peer address: the downstream remote address (a PROXY header's source, when the
     *     listener's PROXY protocol filter read one)
     * @param serverName the SNI of the connection's TLS, or null (plaintext, or none sent)
     * @param peer the peer certificate's identities, read when a principal asks for them; null or answering null
     *     when the connection has no TLS, {@link PeerIdentity#NO_CERTIFICATE} when its TLS peer presented none
     * @param jwtMetadata the dynamic metadata of the JWT authentication filter ({@link JwtAuthnFilter#NAME}): the
     *     verified payloads by their {@code payload_in_metadata} key; empty when none was verified
     * @param peerPort the connection's peer port, or -1 when unknown: only an external authorizer gets it (the
     *     {@code source.address} of Envoy's check request)
     * @param local the identities of the certificate this side presented in the connection's TLS, read when an
     *     external authorizer asks for them (the {@code destination.principal} of Envoy's check request); null or
     *     answering null when the connection has no TLS this side terminated
     * @param directPeerIp the connection's physical peer, which Envoy's {@code direct_remote_ip} matches, when it is
     *     not {@code peerIp} (a PROXY header gave that); null when it is
     */
    public record Subject(RouteRequest request, String localIp, int localPort, String peerIp, String serverName,
                          Supplier<PeerIdentity> peer, Map<String, Object> jwtMetadata, int peerPort,
                          Supplier<PeerIdentity> local, String directPeerIp) {
        public Subject {
            jwtMetadata = jwtMetadata == null ? Map.of() : jwtMetadata;
        }

        /** A request or connection whose physical peer is its peer. */
        public Subject(RouteRequest request, String localIp, int localPort, String peerIp, String serverName,
                       Supplier<PeerIdentity> peer, Map<String, Object> jwtMetadata, int peerPort,
                       Supplier<PeerIdentity> local) {
            this(request, localIp, localPort, peerIp, serverName, peer, jwtMetadata, peerPort, local, null);
        }

        /**
         * This request or connection from the physical peer {@code ip} (null: its peer), as Envoy's
         * {@code direct_remote_ip} sees it when a PROXY header gave the connection another remote address.
         */
        public Subject withDirectPeer(String ip) {
            return new Subject(request, localIp, localPort, peerIp, serverName, peer, jwtMetadata, peerPort, local,
                    ip);
        }

        /** The connection's physical peer: Envoy's {@code direct_remote_ip}. */
        String directPeer() {
            return directPeerIp != null ? directPeerIp : peerIp;
        }

        /** A request or connection with the peer's and the JWT filter's identities, this side's unknown. */
        public Subject(RouteRequest request, String localIp, int localPort, String peerIp, String serverName,
                       Supplier<PeerIdentity> peer, Map<String, Object> jwtMetadata, int peerPort) {
            this(request, localIp, localPort, peerIp, serverName, peer, jwtMetadata, peerPort, null);
        }

        /** A request before any JWT authentication filter ran: no metadata; its peer port unknown. */
        public Subject(RouteRequest request, String localIp, int localPort, String peerIp, String serverName,
                       Supplier<PeerIdentity> peer) {
            this(request, localIp, localPort, peerIp, serverName, peer, Map.of(), -1);
        }

        /** A request before any JWT authentication filter ran, from {@code peerIp}:{@code peerPort}. */
        public Subject(RouteRequest request, String localIp, int localPort, String peerIp, int peerPort,
                       String serverName, Supplier<PeerIdentity> peer) {
            this(request, localIp, localPort, peerIp, serverName, peer, Map.of(), peerPort);
        }

        /** This request with what the JWT authentication filter verified. */
        Subject withJwtMetadata(Map<String, Object> metadata) {
            return new Subject(request, localIp, localPort, peerIp, serverName, peer, metadata, peerPort, local,
                    directPeerIp);
        }


        /** This request or connection with the identities of the certificate this side presented ({@link #local}). */
        public Subject withLocal(Supplier<PeerIdentity> local) {
            return new Subject(request, localIp, localPort, peerIp, serverName, peer, jwtMetadata, peerPort, local,
                    directPeerIp);
        }

        /** The identities of this side's certificate ({@link #local}), or null. */
        PeerIdentity localIdentity() {
            return local == null ? null : local.get();
        }

        /**
         * This request with {@code path} (with its query) in place of its own, its other properties as they are: the
         * JWT authentication filter took its tokens' parameters out, or an authorizer changed its query.
         */
        public Subject withPath(String path) {
            return new Subject(RouteRequest.withPath(request, path), localIp, localPort, peerIp, serverName, peer,
                    jwtMetadata, peerPort, local, directPeerIp);
        }

        /**
         * A connection without a request, for the RBAC network filters: header matchers see no header (as Envoy's
         * network filter matches them against empty headers) and no path matches.
         */
        public static Subject connection(String localIp, int localPort, String peerIp, String serverName,
                                         Supplier<PeerIdentity> peer) {
            return new Subject(null, localIp, localPort, peerIp, serverName, peer);
        }

        /** A connection without a request from {@code peerIp}:{@code peerPort}, as {@link #connection}. */
        public static Subject connection(String localIp, int localPort, String peerIp, int peerPort,
                                         String serverName, Supplier<PeerIdentity> peer) {
            return new Subject(null, localIp, localPort, peerIp, peerPort, serverName, peer);
        }

        /** The path without its query and fragment, or null when the request has none. */
        String pathOnly() {
            String p = request == null ? null : request.path();
            if (p == null) {
                return null;
            }
            int end = p.length();
            int q = p.indexOf('?');
            if (q >= 0) {
                end = q;
            }
            int h = p.indexOf('#');
            if (h >= 0 && h < end) {
                end = h;
            }
            return end == p.length() ? p : p.substring(0, end);
        }

        /**
         * The stream's downstream remote address as Envoy's connection manager sets it: the one the request carries
         * ({@link RouteRequest#downstreamRemoteIp}), null when the address it found is no IP (a Unix socket's, which
         * Envoy's CIDR ranges never hold: the caller's {@code x-forwarded-for} is not read in its place); else as with
         * {@code use_remote_address: false} and no trusted hops: the last address of {@code x-forwarded-for} when it
         * is an IP, else the connection's peer.
         */
        byte[] remoteIp() {
            byte[] found = request == null ? null : request.downstreamRemoteIp();
            if (found != null || request != null && request.foundDownstreamRemoteAddress()) {
                return found;
            }
            byte[] ip = request == null ? null : RouterRequest.lastForwardedIp(request.header("x-forwarded-for"));
            return ip != null ? ip : Cidrs.bytes(peerIp);
        }

        PeerIdentity peerIdentity() {
            return peer == null ? null : peer.get();
        }
    }

    /**
     * The identities of a peer certificate that {@code authenticated} principals match, in Envoy's order: its URI
     * SANs, its DNS SANs, its subject (RFC 2253).
     */
    public record PeerIdentity(List<String> uriSans, List<String> dnsSans, String subject) {
        public PeerIdentity {
            uriSans = List.copyOf(uriSans);
            dnsSans = List.copyOf(dnsSans);
        }

        /**
         * A TLS peer that presented no certificate: Envoy's connection still has TLS, so {@code authenticated}
         * without {@code principal_name} matches it, and a {@code principal_name} is matched against an empty subject.
         */
        public static final PeerIdentity NO_CERTIFICATE = new PeerIdentity(List.of(), List.of(), "");

        /**
         * The identities of a connection's peer: null when the connection has no TLS (plaintext, or TLS it did not
         * terminate), {@link #NO_CERTIFICATE} when its TLS peer presented no certificate.
         */
        public static PeerIdentity of(boolean tls, Certificate[] chain) {
            if (!tls) {
                return null;
            }
            PeerIdentity id = of(chain);
            return id == null ? NO_CERTIFICATE : id;
        }

        /** The identities of the first certificate of a peer's chain; null when there is none. */
        public static PeerIdentity of(Certificate[] chain) {
            if (chain == null || chain.length == 0 || !(chain[0] instanceof X509Certificate c)) {
                return null;
            }
            return new PeerIdentity(ForwardedClientCert.sans(c, ForwardedClientCert.SAN_URI),
                    ForwardedClientCert.sans(c, ForwardedClientCert.SAN_DNS),
                    c.getSubjectX500Principal().getName(X500Principal.RFC2253));
        }
    }

    /** A compiled condition on a request. */
    private interface Match {
        boolean matches(Subject s);
    }

    /** A policy set ({@code config.rbac.v3.RBAC}): its action and its policies, in name order. */
    private static final class Engine {
        private final Rbac.Action action;
        private final String[] names;
        private final Match[] policies;

        Engine(Rbac.Rules r) {
            this.action = r.action();
            this.names = new String[r.policies().size()];
            this.policies = new Match[names.length];
            int i = 0;
            for (Map.Entry<String, Rbac.Policy> e : r.policies().entrySet()) {
                names[i] = e.getKey();
                Match permission = any(e.getValue().permissions().stream().map(RbacFilter::permission).toList());
                Match principal = any(e.getValue().principals().stream().map(RbacFilter::principal).toList());
                policies[i++] = s -> permission.matches(s) && principal.matches(s);
            }
        }

        boolean allows(Subject s) {
            return allows(s, new String[1]);
        }

        /** Whether the request goes on; {@code policy[0]} is set to the first policy it matched, if any. */
        boolean allows(Subject s, String[] policy) {
            boolean matched = false;
            for (int i = 0; i < policies.length; i++) {
                if (policies[i].matches(s)) {
                    policy[0] = names[i];
                    matched = true;
                    break;
                }
            }
            return switch (action) {
                case ALLOW -> matched;
                case DENY -> !matched;
                case LOG -> true;
            };
        }
    }

    private static Match any(List<Match> ms) {
        Match[] all = ms.toArray(Match[]::new);
        if (all.length == 1) {
            return all[0];
        }
        return s -> {
            for (Match m : all) {
                if (m.matches(s)) {
                    return true;
                }
            }
            return false;
        };
    }

    private static Match all(List<Match> ms) {
        Match[] all = ms.toArray(Match[]::new);
        return s -> {
            for (Match m : all) {
                if (!m.matches(s)) {
                    return false;
                }
            }
            return true;
        };
    }

    static Match permission(Permission p) {
        if (p instanceof Permission.Any) {
            return s -> true;
        } else if (p instanceof Permission.And a) {
            return all(a.rules().stream().map(RbacFilter::permission).toList());
        } else if (p instanceof Permission.Or o) {
            return any(o.rules().stream().map(RbacFilter::permission).toList());
        } else if (p instanceof Permission.Not n) {
            Match m = permission(n.rule());
            return s -> !m.matches(s);
        } else if (p instanceof Permission.Header h) {
            return header(HeaderMatchers.compile(h.header()));
        } else if (p instanceof Permission.UrlPath u) {
            return urlPath(StringMatchers.compile(u.path()));
        } else if (p instanceof Permission.UriTemplate t) {
            com.google.re2j.Pattern template = com.google.re2j.Pattern.compile(UriTemplates.regex(t.pathTemplate()));
            return urlPath(template::matches);
        } else if (p instanceof Permission.DestinationIp d) {
            return cidr(d.range(), s -> Cidrs.bytes(s.localIp()));
        } else if (p instanceof Permission.DestinationPort d) {
            int port = d.port();
            return s -> s.localPort() == port;
        } else if (p instanceof Permission.DestinationPortRange r) {
            int start = r.start();
            int end = r.end();
            return s -> s.localPort() >= start && s.localPort() < end;
        } else if (p instanceof Permission.RequestedServerName n) {
            Predicate<String> m = StringMatchers.compile(n.name());
            return s -> m.test(s.serverName() == null ? "" : s.serverName());
        }
        throw new IllegalArgumentException("unknown permission " + p);
    }

    static Match principal(Principal p) {
        if (p instanceof Principal.Any) {
            return s -> true;
        } else if (p instanceof Principal.And a) {
            return all(a.ids().stream().map(RbacFilter::principal).toList());
        } else if (p instanceof Principal.Or o) {
            return any(o.ids().stream().map(RbacFilter::principal).toList());
        } else if (p instanceof Principal.Not n) {
            Match m = principal(n.id());
            return s -> !m.matches(s);
        } else if (p instanceof Principal.Header h) {
            return header(HeaderMatchers.compile(h.header()));
        } else if (p instanceof Principal.UrlPath u) {
            return urlPath(StringMatchers.compile(u.path()));
        } else if (p instanceof Principal.RemoteAddress r) {
            // as Envoy: source_ip honours a PROXY header but not x-forwarded-for, direct_remote_ip neither
            return switch (r.kind()) {
                case REMOTE_IP -> cidr(r.range(), Subject::remoteIp);
                case SOURCE_IP -> cidr(r.range(), s -> Cidrs.bytes(s.peerIp()));
                case DIRECT_REMOTE_IP -> cidr(r.range(), s -> Cidrs.bytes(s.directPeer()));
            };
        } else if (p instanceof Principal.Authenticated a) {
            return authenticated(a.principalName() == null ? null : StringMatchers.compile(a.principalName()));
        } else if (p instanceof Principal.Metadata m) {
            return metadata(m.metadata());
        }
        throw new IllegalArgumentException("unknown principal " + p);
    }

    /**
     * Envoy's {@code metadata} principal on the JWT authentication filter's metadata (the only namespace the parser
     * lets through): the value at the path (none when a key is missing or a step is not a struct) matches, or with
     * {@code invert} does not.
     */
    private static Match metadata(MetadataMatcher m) {
        Predicate<Object> matcher = metadataMatcher(m);
        return s -> matcher.test(s.jwtMetadata());
    }

    /**
     * A metadata matcher compiled, on the struct of its filter's namespace (a map; null or empty when the filter wrote
     * none): the value at the path (none when a key is missing or a step is not a struct) matches, or with
     * {@code invert} does not.
     */
    static Predicate<Object> metadataMatcher(MetadataMatcher m) {
        String[] path = m.path().toArray(String[]::new);
        Predicate<Object> value = value(m.value());
        boolean invert = m.invert();
        return namespace -> {
            Object v = namespace;
            for (String key : path) {
                v = v instanceof Map<?, ?> map ? map.get(key) : null;
            }
            return value.test(v) != invert;
        };
    }

    /** A value matcher on a JSON value (string, number, boolean, list, map; null: none), compiled. */
    static Predicate<Object> value(MetadataMatcher.ValueMatcher m) {
        if (m instanceof MetadataMatcher.ValueMatcher.StringMatch sm) {
            Predicate<String> p = StringMatchers.compile(sm.matcher());
            return v -> v instanceof String str && p.test(str);
        } else if (m instanceof MetadataMatcher.ValueMatcher.ListOneOf l) {
            Predicate<Object> one = value(l.oneOf());
            return v -> v instanceof List<?> list && list.stream().anyMatch(one);
        } else if (m instanceof MetadataMatcher.ValueMatcher.Or o) {
            List<Predicate<Object>> all = o.matchers().stream().map(RbacFilter::value).toList();
            return v -> all.stream().anyMatch(p -> p.test(v));
        } else if (m instanceof MetadataMatcher.ValueMatcher.Present pr) {
            boolean present = pr.present();
            return v -> present && v != null; // as Envoy's: present_match false matches nothing
        }
        boolean b = ((MetadataMatcher.ValueMatcher.Bool) m).value();
        return v -> v instanceof Boolean x && x == b;
    }

    private static Match header(HeaderMatchers.Compiled m) {
        return s -> m.matches(s.request() == null ? name -> null : s.request()::header);
    }

    private static Match urlPath(Predicate<String> m) {
        return s -> {
            String path = s.pathOnly();
            return path != null && m.test(path);
        };
    }

    private static Match cidr(CidrRange range, java.util.function.Function<Subject, byte[]> address) {
        byte[] net = Cidrs.bytes(range.addressPrefix());
        int len = range.prefixLen();
        return s -> Cidrs.contains(net, len, address.apply(s));
    }

    /**
     * Envoy's {@code authenticated}: a connection without TLS never matches; without {@code principal_name} any TLS
     * peer does (a certificate or not); else the name is matched against each URI SAN, each DNS SAN, then the subject
     * (empty without a certificate).
     */
    private static Match authenticated(Predicate<String> name) {
        return s -> {
            PeerIdentity id = s.peerIdentity();
            if (id == null) {
                return false;
            }
            if (name == null) {
                return true;
            }
            for (String uri : id.uriSans()) {
                if (name.test(uri)) {
                    return true;
                }
            }
            for (String dns : id.dnsSans()) {
                if (name.test(dns)) {
                    return true;
                }
            }
            return name.test(id.subject());
        };
    }
}
