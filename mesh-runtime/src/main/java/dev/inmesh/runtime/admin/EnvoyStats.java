package dev.inmesh.runtime.admin;

import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Measurement;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * The registry's Envoy statistics under Envoy's own names, for {@code /stats}: a per-cluster meter
 * {@code envoy_cluster_STAT{cluster_name="C"}} is Envoy's {@code cluster.C.STAT}, C the cluster's {@code alt_stat_name}
 * when it has one (and
 * {@code envoy_cluster_upstream_rq_xx{response_code_class="2xx"}} its {@code cluster.C.upstream_rq_2xx},
 * {@code envoy_cluster_retry_upstream_rq{response_code_class="5xx"}} its {@code cluster.C.retry.upstream_rq_5xx});
 * a connection manager's {@code envoy_http_STAT{http_conn_manager_prefix="P"}} is {@code http.P.STAT}
 * ({@code envoy_http_fault_aborts_injected} {@code http.P.fault.aborts_injected}, {@code envoy_http_rbac_denied}
 * {@code http.P.rbac.denied}, {@code envoy_http_tracing_random_sampling} {@code http.P.tracing.random_sampling},
 * {@code envoy_http_compressor_L_gzip_response_compressed}
 * {@code http.P.compressor.L.gzip.response.compressed}) and a listener's
 * {@code envoy_listener_STAT{listener_address="A"}} {@code listener.A.STAT}, a TCP proxy's
 * {@code envoy_tcp_STAT{tcp_prefix="P"}} {@code tcp.P.STAT}; an RBAC network filter's
 * {@code envoy_rbac_STAT{rbac_stat_prefix="P"}} is {@code P.rbac.STAT}, and a local rate limit filter's
 * {@code envoy_http_local_rate_limit_STAT{local_http_ratelimit_prefix="P"}} {@code P.http_local_rate_limit.STAT}, a
 * local rate limit network filter's {@code envoy_local_rate_limit_STAT{local_network_ratelimit_prefix="P"}}
 * {@code local_rate_limit.P.STAT}; the downstream codecs' {@code envoy_http1_STAT} and {@code envoy_http2_STAT}, in
 * no scope, are {@code http1.STAT} and {@code http2.STAT}, the Zipkin tracer's {@code envoy_tracing_zipkin_STAT}, in
 * no scope, is {@code tracing.zipkin.STAT}, and the
 * OpenTelemetry tracer's {@code envoy_tracing_opentelemetry_STAT} {@code tracing.opentelemetry.STAT}; a PROXY protocol
 * filter's {@code envoy_proxy_proto_versions_v1_found{proxy_proto_prefix="P"}} is
 * {@code proxy_proto.P.versions.v1.found} ({@code proxy_proto.versions.v1.found} without a prefix); the cluster
 * manager's {@code envoy_cluster_manager_cds_update_success} is {@code cluster_manager.cds.update_success}, the
 * listener manager's {@code envoy_listener_manager_lds_update_rejected} {@code listener_manager.lds.update_rejected}
 * and {@code envoy_control_plane_connected_state} {@code control_plane.connected_state}.
 * Istio's {@code istio_*} metrics and the meters an application adds to the mesh's registry are not Envoy
 * statistics; {@code /stats/prometheus} serves them. Envoy's histograms ({@code envoy_cluster_upstream_rq_time},
 * ...) are named alike ({@code cluster.C.upstream_rq_time}) and served as {@link EnvoyHistogram}s.
 */
final class EnvoyStats {
    /**
     * One tree of Envoy statistics: the start of its meters' names, the tag that names the scope (the cluster, stat
     * prefix or address; null for a tree in no scope), the root of its Envoy names, its inner scopes by the start of their Prometheus name (which
     * flattens a scope's dot to an underscore) and the start of their Envoy name, and the series that carry a
     * response class in a tag, each with the Envoy name the class is a suffix of.
     */
    private record Tree(String prefix, String tag, String root, Map<String, String> scopes,
                        Map<String, String> classSeries) {}

    private static final String PROXY_PROTO = "envoy_proxy_proto_";
    private static final List<Tree> TREES = List.of(
            // retry_or_shadow_abandoned is in no scope
            new Tree("envoy_cluster_", "cluster_name", "cluster.", Map.of("retry_upstream_rq", "retry.upstream_rq",
                    "outlier_detection_", "outlier_detection.", "ssl_", "ssl.", "circuit_breakers_default_",
                    "circuit_breakers.default.", "circuit_breakers_high_", "circuit_breakers.high.", "ratelimit_",
                    "ratelimit.", "health_check_", "health_check."),
                    Map.of("upstream_rq_xx", "upstream_rq_", "upstream_rq_code", "upstream_rq_", "retry.upstream_rq",
                            "retry.upstream_rq_", "retry.upstream_rq_code", "retry.upstream_rq_")),
            new Tree("envoy_http_", "http_conn_manager_prefix", "http.", Map.of("fault_", "fault.", "cors_",
                    "cors.", "rbac_", "rbac.", "jwt_authn_", "jwt_authn.", "ext_authz_", "ext_authz.", "compressor_",
                    "compressor.", "tracing_", "tracing."), Map.of("downstream_rq_xx", "downstream_rq_")),
            new Tree("envoy_listener_", "listener_address", "listener.", Map.of("ssl_", "ssl."), Map.of()),
            // a TCP proxy filter's downstream statistics
            new Tree("envoy_tcp_", "tcp_prefix", "tcp.", Map.of(), Map.of()),
            // an RBAC network filter's: the scope is its stat_prefix, and every statistic is in its rbac. scope
            new Tree("envoy_rbac_", "rbac_stat_prefix", "", Map.of("", "rbac."), Map.of()),
            // a local rate limit filter's: its stat_prefix, then http_local_rate_limit.
            new Tree("envoy_http_local_rate_limit_", "local_http_ratelimit_prefix", "",
                    Map.of("", "http_local_rate_limit."), Map.of()),
            // a local rate limit network filter's: local_rate_limit., then its stat_prefix
            new Tree("envoy_local_rate_limit_", "local_network_ratelimit_prefix", "local_rate_limit.", Map.of(),
                    Map.of()),
            // the Zipkin and OpenTelemetry tracers': in no scope
            new Tree("envoy_tracing_zipkin_", null, "tracing.zipkin.", Map.of(), Map.of()),
            new Tree("envoy_tracing_opentelemetry_", null, "tracing.opentelemetry.", Map.of(), Map.of()),
            // the server's: its state, and whether its workers started (in no scope)
            new Tree("envoy_server_", null, "server.", Map.of(), Map.of()),
            // the downstream codecs' (in no scope)
            new Tree("envoy_http1_", null, "http1.", Map.of(), Map.of()),
            new Tree("envoy_http2_", null, "http2.", Map.of(), Map.of()),
            // the cluster and listener managers' (in no scope), with their CDS and LDS subscriptions', and the
            // control plane's
            new Tree("envoy_listener_manager_", null, "listener_manager.", Map.of("lds_", "lds."), Map.of()),
            new Tree("envoy_cluster_manager_", null, "cluster_manager.", Map.of("cds_", "cds."), Map.of()),
            new Tree("envoy_control_plane_", null, "control_plane.", Map.of(), Map.of()),
            // the PROXY protocol listener filters': proxy_proto.[<stat_prefix>.], and the legacy error in no scope
            new Tree(PROXY_PROTO, "proxy_proto_prefix", "proxy_proto.", Map.of("versions_v1_", "versions.v1.",
                    "versions_v2_", "versions.v2."), Map.of()),
            new Tree("envoy_downstream_cx_proxy_proto_", null, "downstream_cx_proxy_proto_", Map.of(), Map.of()));

    /**
     * The server's gauges and the cluster manager's, set when it starts: used whatever their value, as Envoy's
     * {@code usedonly} keeps them ({@code server.state} is 0 when {@code LIVE}).
     */
    static final java.util.Set<String> ALWAYS_USED = java.util.Set.of("server.state", "server.live", "server.uptime",
            "server.days_until_first_cert_expiring", "listener_manager.workers_started", "cluster_manager.active_clusters",
            "cluster_manager.warming_clusters");

    private EnvoyStats() {}

    /**
     * The statistics whose Envoy name the filter accepts, sorted by name; {@code clusterStatName} gives the name a
     * cluster's statistics are under (its {@code alt_stat_name}, else its name).
     */
    static Map<String, Long> collect(MeterRegistry registry, Predicate<String> filter,
                                     UnaryOperator<String> clusterStatName) {
        Map<String, Long> out = new TreeMap<>();
        forEach(registry, filter, clusterStatName, false, (name, m) -> {
            for (Measurement v : m.measure()) {
                out.put(name, uint64(v.getValue()));
                break;
            }
        });
        return out;
    }

    /**
     * A meter's value as Envoy's uint64 statistics hold it, in a {@code long}'s bits: from 2^63 on (Envoy's largest
     * uint64, {@code remaining_cx_pools} with no {@code max_connection_pools}) the unsigned value, at most the largest
     * uint64; {@link #text} and {@link #json} print every value unsigned, as Envoy's.
     */
    static long uint64(double v) {
        if (v < 0x1p63) {
            return Math.round(v);
        }
        return v >= 0x1p64 ? -1L : new java.math.BigDecimal(v).toBigInteger().longValue();
    }

    /** The histograms whose Envoy name the filter accepts, sorted by name, as {@link #collect} the statistics. */
    static Map<String, EnvoyHistogram> histograms(MeterRegistry registry, Predicate<String> filter,
                                                  UnaryOperator<String> clusterStatName) {
        Map<String, EnvoyHistogram> out = new TreeMap<>();
        forEach(registry, filter, clusterStatName, true, (name, m) -> out.put(name,
                EnvoyHistogram.of(((DistributionSummary) m).takeSnapshot())));
        return out;
    }

    /** Each meter of Envoy's trees whose Envoy name the filter accepts, its histograms or its other meters. */
    private static void forEach(MeterRegistry registry, Predicate<String> filter,
                                UnaryOperator<String> clusterStatName, boolean histograms,
                                java.util.function.BiConsumer<String, Meter> each) {
        if (registry == null) {
            return;
        }
        for (Meter m : registry.getMeters()) {
            if (m instanceof DistributionSummary != histograms) {
                continue;
            }
            String envoyName = envoyName(m.getId(), clusterStatName);
            if (envoyName != null && filter.test(envoyName)) {
                each.accept(envoyName, m);
            }
        }
    }

    /**
     * The Envoy name of a meter ({@code cluster.C.upstream_rq_total} for
     * {@code envoy_cluster_upstream_rq_total{cluster_name="C"}}), or null for one that is no Envoy statistic (Istio's
     * metrics, an application's); {@code clusterStatName} gives the name a cluster's statistics are under.
     */
    static String envoyName(Meter.Id id, UnaryOperator<String> clusterStatName) {
        String name = id.getName();
        for (Tree t : TREES) {
            String scope = t.tag == null ? "" : id.getTag(t.tag);
            if (!name.startsWith(t.prefix) || scope == null) {
                continue;
            }
            if (t.root.equals("cluster.")) {
                scope = clusterStatName.apply(scope);
            }
            return envoyName(t, id, name.substring(t.prefix.length()), scope);
        }
        return null;
    }

    /** The Envoy name of meter {@code id} of tree {@code t}, {@code stat} its name after the tree's prefix. */
    private static String envoyName(Tree t, Meter.Id id, String stat, String scope) {
        for (Map.Entry<String, String> inner : t.scopes.entrySet()) {
            // cluster.C.retry.upstream_rq_completed, cluster.C.outlier_detection.ejections_active, ...
            if (stat.startsWith(inner.getKey())) {
                stat = inner.getValue() + stat.substring(inner.getKey().length());
            }
        }
        if (stat.startsWith("rbac.")) {
            stat = rbacStat(stat);
        } else if (stat.startsWith("fault.")) {
            stat = faultStat(stat);
        } else if (stat.startsWith(COMPRESSOR)) {
            stat = compressorStat(stat);
        }
        String classPrefix = t.classSeries.get(stat);
        if (classPrefix != null) {
            // a class (2xx) or, for upstream_rq_code, a code (200)
            String cls = id.getTag("response_code_class");
            if (cls == null) {
                cls = id.getTag("response_code");
            }
            if (cls == null) {
                return null;
            }
            stat = classPrefix + cls;
        }
        if (t.prefix.equals(PROXY_PROTO) && scope.isEmpty()) {
            return t.root + stat; // a filter without a stat_prefix: no empty segment
        }
        return t.tag == null ? t.root + stat : t.root + scope + "." + stat;
    }

    /** The counters of an RBAC filter, the shadow ones first (their names end with the others'). */
    private static final List<String> RBAC_COUNTERS = List.of("shadow_allowed", "shadow_denied", "allowed", "denied");

    /**
     * An RBAC statistic ({@code rbac.<prefix>.<counter>}) from its meter's flattened name: Envoy joins a rules or
     * shadow rules stat prefix and the counter with a dot ({@code rbac.istio_dry_run_allow_.shadow_denied}), which the
     * meter's name flattened to an underscore ({@link dev.inmesh.runtime.stats.RbacStats#meter}); the prefix's own
     * dots stay underscores.
     */
    private static String rbacStat(String stat) {
        for (String counter : RBAC_COUNTERS) {
            if (stat.endsWith(counter)) {
                int dot = stat.length() - counter.length() - 1;
                return dot > "rbac.".length() && stat.charAt(dot) == '_'
                        ? stat.substring(0, dot) + "." + counter : stat;
            }
        }
        return stat;
    }

    /**
     * A fault filter statistic by downstream cluster ({@code fault.<downstream_cluster>.delays_injected}) from its
     * meter's flattened name ({@code fault.<cluster>_delays_injected},
     * {@link dev.inmesh.runtime.stats.RbacStats#meter}); the cluster's own dots stay underscores. The filter's own
     * ({@code fault.delays_injected}) are left as they are.
     */
    private static String faultStat(String stat) {
        for (String counter : FAULT_CLUSTER_COUNTERS) {
            int dot = stat.length() - counter.length() - 1;
            if (stat.endsWith(counter) && dot > "fault.".length() && stat.charAt(dot) == '_') {
                return stat.substring(0, dot) + "." + counter;
            }
        }
        return stat;
    }

    private static final String COMPRESSOR = "compressor.";
    /** Where a compressor filter's statistics go after its library's name: its gzip library's own stat prefix. */
    private static final String GZIP = "_gzip_";

    /**
     * A compressor filter statistic ({@code compressor.<library>.gzip.response.compressed},
     * {@code compressor.<library>.gzip.header_identity}, ...) from its meter's flattened name
     * ({@code compressor.<library>_gzip_response_compressed}, {@link dev.inmesh.runtime.stats.RbacStats#meter}):
     * Envoy puts the library's name, then its gzip library's stat prefix, then the {@code request.} or
     * {@code response.} direction (none for the response's when the config has no {@code response_direction_config},
     * nor for the counters of the request's {@code accept-encoding}), each after a dot. The last {@code _gzip_} ends
     * the library's name, whose own dots stay underscores.
     */
    private static String compressorStat(String stat) {
        int gzip = stat.lastIndexOf(GZIP);
        if (gzip < COMPRESSOR.length()) {
            return stat;
        }
        String counter = stat.substring(gzip + GZIP.length());
        for (String direction : List.of("request_", "response_")) {
            if (counter.startsWith(direction)) {
                counter = direction.substring(0, direction.length() - 1) + "." + counter.substring(direction.length());
            }
        }
        return stat.substring(0, gzip) + ".gzip." + counter;
    }

    /** The fault filter's counters that it also keeps by downstream cluster. */
    private static final List<String> FAULT_CLUSTER_COUNTERS = List.of("aborts_injected", "delays_injected");

    /** The values of Envoy's {@code /stats?type=} parameter. */
    static final java.util.Set<String> TYPES = java.util.Set.of("Counters", "Gauges", "Histograms", "TextReadouts",
            "All");
    /**
     * The statistics that are Envoy gauges, by the end of their name, and every one in a circuit_breakers. scope;
     * every other one is a counter.
     */
    private static final List<String> GAUGES = List.of(".upstream_rq_active", ".upstream_cx_active",
            ".upstream_rq_pending_active", ".outlier_detection.ejections_active", ".downstream_rq_active",
            ".downstream_cx_active", ".downstream_cx_http1_active", ".downstream_cx_http2_active",
            ".downstream_pre_cx_active", ".health_check.healthy", ".health_check.degraded",
            ".fault.active_faults", ".membership_healthy", ".membership_degraded", ".membership_excluded",
            ".membership_total", ".active_clusters", ".warming_clusters", ".total_listeners_active",
            ".total_listeners_draining", ".downstream_cx_upgrades_active", ".streams_active", ".connected_state",
            ".update_time");

    /** {@link #GAUGES} as the end of a Prometheus family's name, whose scopes' dots are underscores. */
    private static final List<String> GAUGE_FAMILIES = GAUGES.stream().map(g -> g.replace('.', '_')).toList();

    /** {@link #ALWAYS_USED}, the server's and the managers' gauges, as Prometheus families. */
    private static final java.util.Set<String> ALWAYS_USED_FAMILIES = ALWAYS_USED.stream()
            .map(n -> "envoy_" + n.replace('.', '_')).collect(java.util.stream.Collectors.toUnmodifiableSet());

    /**
     * The statistics of one of Envoy's {@link #TYPES} (the histograms apart, Inmesh has no text readouts), and with
     * {@code usedOnly} only those written since the start, as Envoy's {@code usedonly}: those not zero (a gauge that
     * rose and fell back to zero is left out, where Envoy keeps it).
     */
    static Map<String, Long> select(Map<String, Long> stats, String type, boolean usedOnly) {
        Map<String, Long> out = new TreeMap<>();
        stats.forEach((name, value) -> {
            boolean gauge = gauge(name);
            boolean typed = switch (type) {
                case "All" -> true;
                case "Counters" -> !gauge;
                case "Gauges" -> gauge;
                default -> false;
            };
            if (typed && (!usedOnly || value != 0 || ALWAYS_USED.contains(name))) {
                out.put(name, value);
            }
        });
        return out;
    }

    private static boolean gauge(String name) {
        return GAUGES.stream().anyMatch(name::endsWith) || name.contains(".circuit_breakers.")
                || ALWAYS_USED.contains(name);
    }

    /**
     * Whether the Prometheus family {@code envoy_*} of one of Envoy's statistics is an Envoy gauge, by the same
     * names as {@link #gauge}; every other is an Envoy counter, whatever Micrometer meter keeps it (a gauge that only
     * rises, where Envoy's name does not end in {@code _total}).
     */
    static boolean gaugeFamily(String family) {
        return GAUGE_FAMILIES.stream().anyMatch(family::endsWith) || family.contains("_circuit_breakers_")
                || ALWAYS_USED_FAMILIES.contains(family);
    }

    /** The counters of {@code stats}, as {@code /reset_counters} keeps them to count from. */
    static Map<String, Long> counters(Map<String, Long> stats) {
        Map<String, Long> out = new TreeMap<>();
        stats.forEach((name, value) -> {
            if (!gauge(name)) {
                out.put(name, value);
            }
        });
        return out;
    }

    /**
     * The statistics with each counter counted from its value in {@code reset} (what {@code /reset_counters} kept),
     * as Envoy's counters count from zero after it; a counter now below that value was made anew since, and counts
     * from zero.
     */
    static Map<String, Long> since(Map<String, Long> stats, Map<String, Long> reset) {
        if (reset.isEmpty()) {
            return stats;
        }
        Map<String, Long> out = new TreeMap<>(stats);
        reset.forEach((name, at) -> out.computeIfPresent(name, (n, v) -> v >= at ? v - at : v));
        return out;
    }

    /**
     * The histograms of one of Envoy's {@link #TYPES} ({@code All} or {@code Histograms}), and with
     * {@code usedOnly} only those with a value recorded, as Envoy's.
     */
    static Map<String, EnvoyHistogram> selectHistograms(Map<String, EnvoyHistogram> histograms, String type,
                                                        boolean usedOnly) {
        Map<String, EnvoyHistogram> out = new TreeMap<>();
        if (type.equals("All") || type.equals("Histograms")) {
            histograms.forEach((name, h) -> {
                if (!usedOnly || h.used()) {
                    out.put(name, h);
                }
            });
        }
        return out;
    }

    /**
     * Envoy's text form: {@code name: value} a line, then the histograms' lines in the {@code histogram_buckets}
     * mode (null: none).
     */
    static String text(Map<String, Long> stats, Map<String, EnvoyHistogram> histograms, String buckets) {
        StringBuilder b = new StringBuilder();
        stats.forEach((n, v) -> b.append(n).append(": ").append(Long.toUnsignedString(v)).append('\n'));
        histograms.forEach((n, h) -> b.append(h.text(n, buckets)).append('\n'));
        return b.toString();
    }

    /**
     * Envoy's JSON form: {@code {"stats":[{"name":...,"value":...}]}}, the histograms in one last element when there
     * are any (see {@link EnvoyHistogram#json}).
     */
    static String json(Map<String, Long> stats, Map<String, EnvoyHistogram> histograms, String buckets) {
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        var root = mapper.createObjectNode();
        var list = root.putArray("stats");
        stats.forEach((n, v) -> list.addObject().put("name", n).put("value",
                v >= 0 ? java.math.BigInteger.valueOf(v) : new java.math.BigInteger(Long.toUnsignedString(v))));
        if (!histograms.isEmpty()) {
            list.add(EnvoyHistogram.json(histograms, buckets));
        }
        return root.toString();
    }
}
