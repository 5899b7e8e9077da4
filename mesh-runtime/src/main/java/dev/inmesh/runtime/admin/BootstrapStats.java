package dev.inmesh.runtime.admin;

import dev.inmesh.runtime.xds.FieldError;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.config.MeterFilter;
import java.util.function.Predicate;

/**
 * What a bootstrap's {@code stats_config} does to the statistics a registry makes, applied before any meter exists
 * as Envoy applies it when it makes each: its {@code stats_matcher} ({@link StatsMatcher}) and its
 * {@code histogram_bucket_settings} ({@link HistogramBuckets}). Its {@code stats_tags} name the tags in
 * {@code /stats/prometheus} ({@link StatsTags}).
 */
public final class BootstrapStats {
    private BootstrapStats() {}

    /**
     * Applies the {@code stats_config} of the bootstrap of configuration {@code config} (a file or a directory; none:
     * nothing) to {@code registry}; a matcher or bucket setting that does not read is refused by its path.
     */
    public static void configure(MeterRegistry registry, java.nio.file.Path config) throws FieldError {
        Predicate<String> matcher = StatsMatcher.ofFile(config);
        MeterFilter buckets = HistogramBuckets.ofFile(config);
        if (matcher != null) {
            registry.config().meterFilter(StatsMatcher.meterFilter(matcher));
        }
        if (buckets != null) {
            registry.config().meterFilter(buckets);
        }
    }
}
