package dev.inmesh.runtime.admin;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.runtime.router.StringMatchers;
import dev.inmesh.runtime.xds.CoreParsers;
import dev.inmesh.runtime.xds.FieldError;
import dev.inmesh.runtime.xds.Fields;
import io.envoyproxy.envoy.config.metrics.v3.HistogramBucketSettings;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.distribution.DistributionStatisticConfig;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Predicate;

/**
 * A bootstrap's {@code stats_config.histogram_bucket_settings}: the bucket bounds of the histograms whose Envoy name
 * a rule's {@code match} matches, the first rule that does, else Envoy's default bounds
 * ({@link dev.inmesh.runtime.stats.MeshMetrics#BUCKETS}), as Envoy's {@code HistogramSettingsImpl}
 * ({@code source/common/stats/histogram_impl.cc}) sorts and applies them when it makes a histogram. Envoy's
 * histograms are matched by their Envoy name ({@code cluster.C.upstream_rq_time}, a cluster's under its name,
 * {@code http.P.downstream_rq_time}, {@code listener.A.downstream_cx_length_ms}), Istio's by theirs in its stats
 * filter's {@code istiocustom} namespace ({@code istiocustom.istio_request_duration_milliseconds}: Istio's
 * {@code sidecar.istio.io/statsHistogramBuckets} annotation writes a rule matching the prefix {@code istiocustom}).
 * Both {@code /stats} and {@code /stats/prometheus} serve the buckets; an application's histograms are left as they
 * are.
 */
public final class HistogramBuckets {
    private HistogramBuckets() {}

    private record Rule(Predicate<String> match, double[] buckets) {}

    /** The bucket settings of the bootstrap of configuration {@code config} (null: none, or no bootstrap). */
    public static MeterFilter ofFile(java.nio.file.Path config) throws FieldError {
        JsonNode root = StatsMatcher.bootstrap(config);
        return root == null ? null : of(root);
    }

    /**
     * A filter of a registry's meters that gives the Envoy and Istio histograms of a bootstrap (JSON or YAML tree) the
     * bounds of its first bucket setting that matches their Envoy name; null when it has none. A setting without a
     * {@code match}, without buckets, or with a bound not above zero or given twice is refused, as Envoy's
     * validation refuses it.
     */
    public static MeterFilter of(JsonNode bootstrap) throws FieldError {
        List<HistogramBucketSettings> parsed = StatsMatcher.statsConfig(bootstrap).getHistogramBucketSettingsList();
        List<Rule> rules = new ArrayList<>();
        for (int i = 0; i < parsed.size(); i++) {
            rules.add(rule(parsed.get(i), "stats_config.histogram_bucket_settings[" + i + "]"));
        }
        return rules.isEmpty() ? null : meterFilter(rules);
    }

    private static Rule rule(HistogramBucketSettings s, String at) {
        if (!s.hasMatch()) {
            throw new FieldError(at + ".match", "required (the statistics the buckets are for)");
        }
        Predicate<String> match = StringMatchers.compile(Fields.at(at + ".match",
                () -> CoreParsers.stringMatcher(s.getMatch())));
        double[] buckets = s.getBucketsList().stream().mapToDouble(Double::doubleValue).sorted().toArray();
        if (buckets.length == 0) {
            throw new FieldError(at + ".buckets", "empty (expected: at least one upper bound)");
        }
        for (int i = 0; i < buckets.length; i++) {
            if (!(buckets[i] > 0)) {
                throw new FieldError(at + ".buckets", buckets[i] + " (expected: an upper bound above 0)");
            }
            if (i > 0 && buckets[i] == buckets[i - 1]) {
                throw new FieldError(at + ".buckets", buckets[i] + " twice (expected: each bound once)");
            }
        }
        return new Rule(match, buckets);
    }

    private static MeterFilter meterFilter(List<Rule> rules) {
        return new MeterFilter() {
            @Override
            public DistributionStatisticConfig configure(Meter.Id id, DistributionStatisticConfig config) {
                if (id.getType() != Meter.Type.DISTRIBUTION_SUMMARY) {
                    return config;
                }
                String name = envoyName(id);
                for (Rule r : name == null ? List.<Rule>of() : rules) {
                    if (r.match.test(name)) {
                        return DistributionStatisticConfig.builder()
                                .serviceLevelObjectives(Arrays.copyOf(r.buckets, r.buckets.length)).build()
                                .merge(config);
                    }
                }
                return config;
            }
        };
    }

    /**
     * The Envoy name of a histogram: an Envoy statistic's ({@link EnvoyStats#envoyName}), an Istio metric's in the
     * {@code istiocustom} namespace (without the marks of its meters named apart), null for another (an
     * application's).
     */
    private static String envoyName(Meter.Id id) {
        String envoy = EnvoyStats.envoyName(id, c -> c);
        if (envoy != null || !id.getName().startsWith("istio_")) {
            return envoy;
        }
        return "istiocustom." + PrometheusText.unmarked(id.getName());
    }
}
