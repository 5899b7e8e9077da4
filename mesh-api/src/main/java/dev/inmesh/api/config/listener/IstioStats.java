package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * The metric overrides of Istio's stats filter ({@code istio.stats}, HTTP or network; config
 * {@code stats.PluginConfig}), which istiod writes from the Telemetry API's metrics {@code overrides}: its
 * {@code metrics} entries, and the config's {@code definitions} (new metrics).
 *
 * <p>A connection manager or filter chain with such a filter has one ({@link #NONE} when its config overrides
 * nothing); one without has none (null): where a configuration has the filter somewhere, Istio's metrics are recorded
 * only where it is, as Envoy runs it only there.
 *
 * @param metrics the {@code metrics} entries, in their order
 * @param definitions the {@code definitions} entries, in their order
 */
public record IstioStats(List<MetricOverride> metrics, List<MetricDefinition> definitions) {
    /** A stats filter that overrides nothing: Istio's metrics recorded as they are. */
    public static final IstioStats NONE = new IstioStats(List.of(), List.of());

    public IstioStats {
        metrics = Checks.list(metrics, "metrics");
        definitions = Checks.list(definitions, "definitions");
    }

    /** Whether it overrides nothing: no {@code metrics} entries, no {@code definitions}. */
    public boolean isEmpty() {
        return metrics.isEmpty() && definitions.isEmpty();
    }

    /** A config with {@code metrics} entries and no definitions. */
    public IstioStats(List<MetricOverride> metrics) {
        this(metrics, List.of());
    }

    /**
     * One {@code definitions} entry ({@code stats.MetricDefinition}): a metric of its own, {@code istio_<name>},
     * recorded for each request (and each TCP connection at its close) with the value of an expression.
     *
     * @param name the metric's name without the {@code istio_} prefix; one of Istio's standard metrics' names is
     *     refused (Istio's stats skip the definition)
     * @param value the CEL expression of the value recorded, an unsigned integer (anything else records 0)
     * @param type how the value is recorded
     */
    public record MetricDefinition(String name, String value, Type type) {
        public MetricDefinition {
            name = name == null ? "" : name;
            value = value == null ? "" : value;
            type = type == null ? Type.COUNTER : type;
        }

        /** {@code stats.MetricType}: the value added to a counter, set in a gauge, or recorded in a histogram. */
        public enum Type { COUNTER, GAUGE, HISTOGRAM }
    }

    /**
     * One {@code metrics} entry ({@code stats.MetricConfig}).
     *
     * @param name the Istio metric it applies to, without the {@code istio_} prefix (such as {@code requests_total}
     *     or {@code request_duration_milliseconds}); empty: every metric, for {@code tags_to_remove} (Istio's stats
     *     drop only a named metric)
     * @param tagsToRemove the standard labels the metric is recorded without ({@code tags_to_remove})
     * @param drop whether the metric is not recorded at all ({@code drop}); its {@code tags_to_remove} then do nothing
     * @param dimensions labels and the CEL expressions of their values ({@code dimensions}; a Telemetry
     *     {@code tagOverrides} value): a standard label takes the expression's value, another label is added
     */
    public record MetricOverride(String name, List<String> tagsToRemove, boolean drop,
                                 java.util.Map<String, String> dimensions) {
        public MetricOverride {
            name = name == null ? "" : name;
            tagsToRemove = Checks.list(tagsToRemove, "metrics.tags_to_remove");
            dimensions = dimensions == null ? java.util.Map.of()
                    : java.util.Collections.unmodifiableMap(new java.util.TreeMap<>(dimensions));
        }

        /** An entry without dimensions. */
        public MetricOverride(String name, List<String> tagsToRemove, boolean drop) {
            this(name, tagsToRemove, drop, null);
        }
    }
}
