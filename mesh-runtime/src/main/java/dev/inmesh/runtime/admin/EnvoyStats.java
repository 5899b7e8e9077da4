package dev.inmesh.runtime.admin;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Measurement;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;

/**
 * The registry's Envoy statistics under Envoy's own names, for {@code /stats}: a per-cluster meter
 * {@code envoy_cluster_STAT{cluster_name="C"}} is Envoy's {@code cluster.C.STAT} (and
 * {@code envoy_cluster_upstream_rq_xx{response_code_class="2xx"}} its {@code cluster.C.upstream_rq_2xx},
 * {@code envoy_cluster_retry_upstream_rq{response_code_class="5xx"}} its {@code cluster.C.retry.upstream_rq_5xx}).
 * Istio's {@code istio_*} metrics and the JVM's are not Envoy statistics; {@code /stats/prometheus} serves them.
 */
final class EnvoyStats {
    private static final String CLUSTER = "envoy_cluster_";
    /**
     * The statistics in a scope within a cluster's, by the start of their Prometheus name, which flattens the scope's
     * dot to an underscore, and the start of their Envoy name ({@code retry_or_shadow_abandoned} is in no scope).
     */
    private static final Map<String, String> SCOPES = Map.of("retry_upstream_rq", "retry.upstream_rq",
            "outlier_detection_", "outlier_detection.", "circuit_breakers_default_", "circuit_breakers.default.",
            "circuit_breakers_high_", "circuit_breakers.high.");
    /** The series that carry a response class in a tag, and the Envoy name each class is a suffix of. */
    private static final Map<String, String> CLASS_SERIES = Map.of("upstream_rq_xx", "upstream_rq_",
            "retry.upstream_rq", "retry.upstream_rq_");

    private EnvoyStats() {}

    /** The statistics whose Envoy name the filter accepts, sorted by name. */
    static Map<String, Long> collect(MeterRegistry registry, Predicate<String> filter) {
        Map<String, Long> out = new TreeMap<>();
        if (registry == null) {
            return out;
        }
        for (Meter m : registry.getMeters()) {
            String name = m.getId().getName();
            String cluster = m.getId().getTag("cluster_name");
            if (!name.startsWith(CLUSTER) || cluster == null) {
                continue;
            }
            String stat = name.substring(CLUSTER.length());
            for (Map.Entry<String, String> scope : SCOPES.entrySet()) {
                // cluster.C.retry.upstream_rq_completed, cluster.C.outlier_detection.ejections_active, ...
                if (stat.startsWith(scope.getKey())) {
                    stat = scope.getValue() + stat.substring(scope.getKey().length());
                }
            }
            String classPrefix = CLASS_SERIES.get(stat);
            if (classPrefix != null) {
                String cls = m.getId().getTag("response_code_class");
                if (cls == null) {
                    continue;
                }
                stat = classPrefix + cls;
            }
            String envoyName = "cluster." + cluster + "." + stat;
            if (!filter.test(envoyName)) {
                continue;
            }
            for (Measurement v : m.measure()) {
                out.put(envoyName, Math.round(v.getValue()));
                break;
            }
        }
        return out;
    }

    /** The values of Envoy's {@code /stats?type=} parameter. */
    static final java.util.Set<String> TYPES = java.util.Set.of("Counters", "Gauges", "Histograms", "TextReadouts",
            "All");
    /**
     * The statistics that are Envoy gauges, by the end of their name, and every one in a circuit_breakers. scope;
     * every other one is a counter.
     */
    private static final List<String> GAUGES = List.of(".upstream_rq_active", ".upstream_cx_active",
            ".upstream_rq_pending_active", ".outlier_detection.ejections_active");

    /**
     * The statistics of one of Envoy's {@link #TYPES} (Inmesh has no histograms or text readouts), and with
     * {@code usedOnly} only those written since the start, as Envoy's {@code usedonly}: those not zero (a gauge that
     * rose and fell back to zero is left out, where Envoy keeps it).
     */
    static Map<String, Long> select(Map<String, Long> stats, String type, boolean usedOnly) {
        Map<String, Long> out = new TreeMap<>();
        stats.forEach((name, value) -> {
            boolean gauge = GAUGES.stream().anyMatch(name::endsWith) || name.contains(".circuit_breakers.");
            boolean typed = switch (type) {
                case "All" -> true;
                case "Counters" -> !gauge;
                case "Gauges" -> gauge;
                default -> false;
            };
            if (typed && (!usedOnly || value != 0)) {
                out.put(name, value);
            }
        });
        return out;
    }

    /** Envoy's text form: {@code name: value} a line. */
    static String text(Map<String, Long> stats) {
        StringBuilder b = new StringBuilder();
        stats.forEach((n, v) -> b.append(n).append(": ").append(v).append('\n'));
        return b.toString();
    }

    /** Envoy's JSON form: {@code {"stats":[{"name":...,"value":...}]}}. */
    static String json(Map<String, Long> stats) {
        var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
        var root = mapper.createObjectNode();
        var list = root.putArray("stats");
        stats.forEach((n, v) -> list.addObject().put("name", n).put("value", v));
        return root.toString();
    }
}
