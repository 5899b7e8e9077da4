package dev.inmesh.runtime.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.inmesh.runtime.stats.EnvoyNumbers;
import io.micrometer.core.instrument.distribution.CountAtBucket;
import io.micrometer.core.instrument.distribution.HistogramSnapshot;
import java.util.ArrayList;
import java.util.List;

/**
 * One of Envoy's histograms in {@code /stats} ({@code cluster.C.upstream_rq_time}, ...), from the buckets the
 * registry keeps for it (Envoy's default bounds, {@link dev.inmesh.runtime.stats.MeshMetrics#BUCKETS}, or those of a
 * bootstrap's {@code histogram_bucket_settings}, {@link HistogramBuckets}), printed in
 * the forms of Envoy's {@code histogram_buckets} modes. Envoy's histograms keep finer bins than these; a quantile
 * here is interpolated linearly within the bucket it falls in, so it is as close as the bucket is narrow. Inmesh
 * flushes no stats interval: the interval figures are those of an interval without values ({@code nan}, no count).
 *
 * @param bounds the upper bounds of the buckets, ascending
 * @param cumulative the number of values at or below each bound
 * @param count the number of values
 */
record EnvoyHistogram(double[] bounds, long[] cumulative, long count) {
    /** Envoy's supported quantiles, as fractions. */
    static final double[] QUANTILES = {0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1};

    static EnvoyHistogram of(HistogramSnapshot snapshot) {
        CountAtBucket[] counts = snapshot.histogramCounts();
        double[] bounds = new double[counts.length];
        long[] cumulative = new long[counts.length];
        for (int i = 0; i < counts.length; i++) {
            bounds[i] = counts[i].bucket();
            cumulative[i] = Math.round(counts[i].count());
        }
        return new EnvoyHistogram(bounds, cumulative, snapshot.count());
    }

    /** Whether a value was recorded, as Envoy's {@code used()}. */
    boolean used() {
        return count > 0;
    }

    /**
     * The value below which fraction {@code q} of the values lie, interpolated within its bucket (the lower bound of
     * the first bucket with a value for 0, the upper bound of the last for 1); NaN when there is none, as Envoy's.
     */
    double quantile(double q) {
        if (count == 0) {
            return Double.NaN;
        }
        double rank = q * count;
        long below = 0;
        double lower = 0;
        for (int i = 0; i < bounds.length; i++) {
            long in = cumulative[i] - below;
            if (in > 0 && cumulative[i] >= rank) {
                return lower + (bounds[i] - lower) * Math.max(0, rank - below) / in;
            }
            below = cumulative[i];
            lower = bounds[i];
        }
        // above the last bound: that bound is all the buckets tell
        return lower;
    }

    /** The number of values in each bucket alone. */
    long[] disjoint() {
        long[] out = new long[cumulative.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = cumulative[i] - (i == 0 ? 0 : cumulative[i - 1]);
        }
        return out;
    }

    /**
     * Envoy's text form of the histogram after {@code NAME: } for a {@code histogram_buckets} mode (null or
     * {@code none}: the quantile summary), with no line end; {@code No recorded values} when none was.
     */
    String text(String name, String mode) {
        if (!used()) {
            return name + ": No recorded values";
        }
        return switch (mode == null ? "none" : mode) {
            case "cumulative" -> name + ": " + buckets(cumulative);
            case "disjoint" -> name + ": " + buckets(disjoint());
            case "detailed" -> name + ":\n  totals=" + String.join(", ", details().stream()
                    .map(d -> EnvoyNumbers.general(d[0]) + "," + EnvoyNumbers.general(d[1]) + ":" + (long) d[2])
                    .toList()) + "\n  intervals=\n  summary=" + quantiles();
            default -> name + ": " + quantiles();
        };
    }

    /** {@code P0(nan,1) P25(nan,2.5) ...}: each quantile's interval and cumulative value. */
    private String quantiles() {
        List<String> out = new ArrayList<>();
        for (double q : QUANTILES) {
            out.add("P" + EnvoyNumbers.general(q * 100) + "(nan," + number(quantile(q)) + ")");
        }
        return String.join(" ", out);
    }

    /** {@code B0.5(0,3) B1(0,4) ...}: each bucket's interval and cumulative count. */
    private String buckets(long[] counts) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < bounds.length; i++) {
            out.add("B" + EnvoyNumbers.general(bounds[i]) + "(0," + counts[i] + ")");
        }
        return String.join(" ", out);
    }

    /** The buckets with values, as Envoy's detailed bins: lower bound, width and count. */
    private List<double[]> details() {
        List<double[]> out = new ArrayList<>();
        long[] counts = disjoint();
        for (int i = 0; i < bounds.length; i++) {
            double lower = i == 0 ? 0 : bounds[i - 1];
            if (counts[i] > 0) {
                out.add(new double[] {lower, bounds[i] - lower, counts[i]});
            }
        }
        return out;
    }

    /** A quantile as Envoy's fmt prints a double: {@code nan}, {@code 25}, {@code 12.5}. */
    private static String number(double v) {
        return Double.isNaN(v) ? "nan" : PrometheusText.envoyNumber(Double.toString(v));
    }

    /**
     * The element Envoy's JSON form of {@code /stats} ends its {@code stats} array with for these histograms in a
     * {@code histogram_buckets} mode: {@code {"histograms":{"supported_quantiles":[...],"computed_quantiles":[...]}}}
     * by default, {@code {"histograms":[{"name":..,"buckets":[...]}]}} for {@code cumulative} and {@code disjoint},
     * {@code {"histograms":{"supported_percentiles":[...],"details":[...]}}} for {@code detailed}.
     */
    static JsonNode json(java.util.Map<String, EnvoyHistogram> histograms, String mode) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode out = f.objectNode();
        String m = mode == null ? "none" : mode;
        if (m.equals("cumulative") || m.equals("disjoint")) {
            var list = out.putArray("histograms");
            histograms.forEach((name, h) -> {
                var buckets = list.addObject().put("name", name).putArray("buckets");
                long[] counts = m.equals("cumulative") ? h.cumulative : h.disjoint();
                for (int i = 0; i < h.bounds.length; i++) {
                    ObjectNode bucket = buckets.addObject();
                    bucket.set("upper_bound", jsonNumber(h.bounds[i]));
                    bucket.put("interval", 0).put("cumulative", counts[i]);
                }
            });
            return out;
        }
        ObjectNode inner = out.putObject("histograms");
        var supported = inner.putArray(m.equals("detailed") ? "supported_percentiles" : "supported_quantiles");
        for (double q : QUANTILES) {
            supported.add(jsonNumber(q * 100));
        }
        var list = inner.putArray(m.equals("detailed") ? "details" : "computed_quantiles");
        histograms.forEach((name, h) -> {
            ObjectNode each = list.addObject().put("name", name);
            if (m.equals("detailed")) {
                var totals = each.putArray("totals");
                for (double[] d : h.details()) {
                    ObjectNode bin = totals.addObject();
                    bin.set("lower_bound", jsonNumber(d[0]));
                    bin.set("width", jsonNumber(d[1]));
                    bin.put("count", (long) d[2]);
                }
                each.putArray("intervals");
            }
            var values = each.putArray(m.equals("detailed") ? "percentiles" : "values");
            for (double q : QUANTILES) {
                ObjectNode v = values.addObject();
                v.set("cumulative", jsonNumber(h.quantile(q)));
                v.putNull("interval");
            }
        });
        return out;
    }

    /** A JSON number as Envoy writes it: an integral one without a fraction, NaN as null. */
    private static JsonNode jsonNumber(double v) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        if (Double.isNaN(v)) {
            return f.nullNode();
        }
        return v == Math.rint(v) && Math.abs(v) < 0x1p53 ? f.numberNode((long) v) : f.numberNode(v);
    }
}
