package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * The metric overrides of Istio's stats filter ({@code istio.stats}, HTTP or network; config
 * {@code stats.PluginConfig}), which istiod writes from the Telemetry API's metrics {@code overrides}: its
 * {@code metrics} entries. The config's {@code definitions} (new metrics) are loaded and not read.
 *
 * @param metrics the {@code metrics} entries, in their order
 */
public record IstioStats(List<MetricOverride> metrics) {
    public IstioStats {
        metrics = Checks.list(metrics, "metrics");
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
