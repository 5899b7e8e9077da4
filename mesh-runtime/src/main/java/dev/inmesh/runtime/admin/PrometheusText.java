package dev.inmesh.runtime.admin;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The registry's scrape in Prometheus' text format as Envoy's {@code /stats/prometheus} prints it: Inmesh's own
 * families ({@code istio_*}, {@code envoy_*}) under Envoy's names, with Envoy's numbers (see {@link #envoyNumber}),
 * their {@code # TYPE} lines without Micrometer's {@code # HELP} ones and without Micrometer's {@code _max} gauge
 * beside a histogram; and Envoy's {@code filter} and {@code usedonly}:
 * the metric families whose name the filter accepts, and with {@code usedonly} only their series that were written
 * (a counter or gauge not zero, a histogram or summary whose {@code _count} is not zero), a family left with none
 * left out with its {@code # HELP} and {@code # TYPE} lines. The tags of Envoy's statistics ({@code envoy_*}) are
 * named as a bootstrap's {@code stats_config} names them ({@link StatsTags}: Envoy's default tags, Istio's, ...).
 * Other families (the application's meters in an in-JVM mesh's registry) keep Micrometer's form.
 */
final class PrometheusText {

    private PrometheusText() {}

    /** One family: its name, its type ({@code untyped} without a {@code # TYPE} line), its lines in order. */
    private static final class Family {
        final String name;
        String type = "untyped";
        final List<String> comments = new ArrayList<>();
        final List<String> samples = new ArrayList<>();

        Family(String name) {
            this.name = name;
        }
    }

    /**
     * The meters Micrometer cannot register under Envoy's own name, by the family Istio's proxy serves them in: its
     * stats tags ({@code response_code_class} on {@code _rq(_(\dxx))$}, {@code response_code} on
     * {@code _rq(_(\d{3}))$}) make {@code cluster.C.upstream_rq_2xx} and {@code cluster.C.upstream_rq_200} both
     * {@code envoy_cluster_upstream_rq}, with one label or the other, and {@code http.P.downstream_rq_2xx}
     * {@code envoy_http_downstream_rq}. Micrometer takes one set of tag keys per name, and a gauge named
     * {@code envoy_cluster_upstream_rq} beside the counter {@code envoy_cluster_upstream_rq_total} is refused by its
     * Prometheus client, so they are registered apart and renamed in the scrape.
     */
    private static final java.util.Map<String, String> ENVOY_FAMILIES = java.util.Map.of(
            "envoy_cluster_upstream_rq_xx", "envoy_cluster_upstream_rq",
            "envoy_cluster_upstream_rq_code", "envoy_cluster_upstream_rq",
            "envoy_http_downstream_rq_xx", "envoy_http_downstream_rq",
            // cluster.C.retry.upstream_rq_5xx, registered under Envoy's name, and cluster.C.retry.upstream_rq_503
            "envoy_cluster_retry_upstream_rq", "envoy_cluster_retry_upstream_rq",
            "envoy_cluster_retry_upstream_rq_code", "envoy_cluster_retry_upstream_rq");

    /**
     * {@link #ENVOY_FAMILIES} where Envoy's default tags name the response classes ({@link StatsTags#envoyClasses}):
     * its regex {@code _rq_(\d)xx$} takes the class's digit alone out of the name, so
     * {@code cluster.C.upstream_rq_2xx} is {@code envoy_cluster_upstream_rq_xx{envoy_response_code_class="2"}} and
     * only the codes are {@code envoy_cluster_upstream_rq}.
     */
    private static final java.util.Map<String, String> ENVOY_DEFAULT_FAMILIES = java.util.Map.of(
            "envoy_cluster_upstream_rq_code", "envoy_cluster_upstream_rq",
            "envoy_cluster_retry_upstream_rq", "envoy_cluster_retry_upstream_rq_xx",
            "envoy_cluster_retry_upstream_rq_code", "envoy_cluster_retry_upstream_rq");

    /**
     * Envoy's gauges whose name ends in {@code _total}, by the family Micrometer's Prometheus client serves them in:
     * it takes a gauge's trailing {@code _total} off (only a counter may end so), where Envoy's scrape keeps it
     * ({@code # TYPE envoy_cluster_membership_total gauge}). They are given their name back in the scrape.
     */
    private static final java.util.Map<String, String> ENVOY_GAUGES = java.util.Map.of(
            "envoy_cluster_membership", "envoy_cluster_membership_total");

    /**
     * The scrape as Envoy prints it: Inmesh's families with Envoy's numbers and without Micrometer's {@code _max}
     * gauges ({@link #envoyForm(List)}), the families of {@link #ENVOY_FAMILIES} under Envoy's names, those that share
     * a name merged into one family (its first {@code # TYPE}, typed {@code counter} as Envoy's, then the samples of
     * each) where the first stood.
     */
    static String envoy(String scrape) {
        return envoy(scrape, StatsTags.ISTIO);
    }

    /** The scrape as Envoy prints it ({@link #envoy(String)}), the tags of Envoy's statistics named by {@code tags}. */
    static String envoy(String scrape, StatsTags tags) {
        StringBuilder b = new StringBuilder();
        envoyNames(envoyForm(families(scrape), tags), tags).forEach(f -> append(b, f, f.samples));
        return b.toString();
    }

    /** Whether the family is one of Inmesh's own, which Envoy or Istio's proxy serves. */
    private static boolean own(String family) {
        return family.startsWith("istio_") || family.startsWith("envoy_");
    }

    /**
     * Inmesh's families without the {@code NAME_max} gauge Micrometer adds beside a histogram {@code NAME} (Envoy
     * serves only a histogram's buckets, sum and count), their samples with Envoy's numbers ({@link #envoyNumbers}),
     * those of Envoy's statistics with their tags as {@code tags} names them.
     */
    private static List<Family> envoyForm(List<Family> families, StatsTags tags) {
        Set<String> histograms = new HashSet<>();
        for (Family f : families) {
            if (f.type.equals("histogram")) {
                histograms.add(f.name + "_max");
            }
        }
        List<Family> out = new ArrayList<>(families.size());
        for (Family f : families) {
            if (!own(f.name)) {
                out.add(f);
            } else if (!histograms.contains(f.name)) {
                // as Envoy's (prometheus_stats.cc): a family's # TYPE line alone, no # HELP
                f.comments.removeIf(c -> c.startsWith("# HELP "));
                f.samples.replaceAll(PrometheusText::envoyNumbers);
                if (f.name.startsWith("envoy_")) {
                    f.samples.replaceAll(sample -> relabel(sample, tags::label, tags.fixed()));
                }
                out.add(f);
            }
        }
        return out;
    }

    /** Where a metric's meters with added labels are named apart ({@code MeshMetrics.DIMENSIONS_MARK}). */
    private static final java.util.regex.Pattern DIMENSIONS = java.util.regex.Pattern.compile(
            dev.inmesh.runtime.stats.MeshMetrics.DIMENSIONS_MARK + "\\d+");

    /**
     * How a stats filter definition's metric ends after its dimensions are taken out
     * ({@code MeshMetrics.CUSTOM_MARK}, and a counter's {@code _total}).
     */
    private static final java.util.regex.Pattern CUSTOM = java.util.regex.Pattern.compile(
            dev.inmesh.runtime.stats.MeshMetrics.CUSTOM_MARK + "(_total)?$");

    /**
     * The families of meters with labels a Telemetry override adds, under Istio's name: their samples join the
     * family of the metric's standard series (as Istio's proxy serves one family whose series differ in their
     * labels), or make it where it has none. Those of a stats filter's definitions are served as
     * {@code istio_NAME}, a counter's as it is named (Istio's proxy adds no {@code _total}).
     */
    private static List<Family> dimensionsMerged(List<Family> families) {
        java.util.Map<String, Family> byName = new java.util.HashMap<>();
        for (Family f : families) {
            byName.putIfAbsent(f.name, f);
        }
        List<Family> out = new ArrayList<>(families.size());
        for (Family f : families) {
            java.util.regex.Matcher m = DIMENSIONS.matcher(f.name);
            if (!m.find()) {
                out.add(f);
                continue;
            }
            String target = unmarked(f.name);
            Family into = byName.get(target);
            if (into == null) {
                into = underName(f, target);
                byName.put(target, into);
                out.add(into);
            } else {
                for (String sample : f.samples) {
                    into.samples.add(target + sample.substring(f.name.length()));
                }
            }
        }
        return out;
    }

    /**
     * An Istio metric's name without the marks of its meters named apart ({@link #DIMENSIONS}, {@link #CUSTOM}):
     * its name in Istio's proxy.
     */
    static String unmarked(String name) {
        return CUSTOM.matcher(DIMENSIONS.matcher(name).replaceFirst("")).replaceFirst("");
    }

    /**
     * The families of {@link #ENVOY_FAMILIES} (or, with Envoy's default tags, {@link #ENVOY_DEFAULT_FAMILIES}) under
     * Envoy's names ({@link #envoy(String)}).
     */
    private static List<Family> envoyNames(List<Family> families, StatsTags tags) {
        families = dimensionsMerged(families);
        java.util.Map<String, String> classFamilies = tags.envoyClasses() ? ENVOY_DEFAULT_FAMILIES : ENVOY_FAMILIES;
        List<Family> out = new ArrayList<>();
        java.util.Map<String, Family> renamed = new java.util.HashMap<>();
        for (Family f : families) {
            String target = classFamilies.get(f.name);
            String gauge = f.type.equals("gauge") ? ENVOY_GAUGES.get(f.name) : null;
            if (gauge != null) {
                out.add(underName(f, gauge));
                continue;
            }
            if (target == null) {
                out.add(f);
                continue;
            }
            Family into = renamed.get(target);
            if (into == null) {
                // its samples are added below; Envoy's counters, typed so by envoyType
                into = underName(f, target);
                into.samples.clear();
                renamed.put(target, into);
                out.add(into);
            }
            for (String sample : f.samples) {
                into.samples.add(target + sample.substring(f.name.length()));
            }
        }
        out.forEach(PrometheusText::envoyType);
        return out;
    }

    /**
     * Family {@code f} typed as Envoy types it: one of Envoy's counters kept in a Micrometer gauge (its name, as
     * Envoy's, not ending in {@code _total}, which Micrometer's counters must) typed {@code counter}.
     */
    private static void envoyType(Family f) {
        if (f.type.equals("gauge") && f.name.startsWith("envoy_") && !EnvoyStats.gaugeFamily(f.name)) {
            f.type = "counter";
            f.comments.replaceAll(c -> c.equals("# TYPE " + f.name + " gauge") ? "# TYPE " + f.name + " counter" : c);
        }
    }

    /** Family {@code f} (its comments and samples) under the name {@code name}, of the same type. */
    private static Family underName(Family f, String name) {
        Family out = new Family(name);
        out.type = f.type;
        f.comments.forEach(c -> out.comments.add(c.replaceFirst("^(# \\w+ )" + f.name + "\\b", "$1" + name)));
        f.samples.forEach(sample -> out.samples.add(name + sample.substring(f.name.length())));
        return out;
    }

    /**
     * The registry's scrape as Envoy prints it ({@link #envoy(String)}), with only the families whose name
     * {@code names} accepts and, with {@code usedOnly}, their series that were written.
     */
    static String select(String scrape, Predicate<String> names, boolean usedOnly) {
        return select(scrape, names, usedOnly, StatsTags.ISTIO);
    }

    /** {@link #select(String, Predicate, boolean)}, the tags of Envoy's statistics named by {@code tags}. */
    static String select(String scrape, Predicate<String> names, boolean usedOnly, StatsTags tags) {
        return served(envoyNames(envoyForm(families(scrape), tags), tags), f -> names.test(f.name), usedOnly);
    }

    /**
     * The families {@code kept} accepts, with {@code usedOnly} only their series that were written, a family left
     * with none left out.
     */
    private static String served(List<Family> families, Predicate<Family> kept, boolean usedOnly) {
        StringBuilder out = new StringBuilder();
        for (Family f : families) {
            if (!kept.test(f)) {
                continue;
            }
            List<String> samples = usedOnly ? used(f) : f.samples;
            if (samples.isEmpty() && !f.samples.isEmpty()) {
                continue;
            }
            append(out, f, samples);
        }
        return out.toString();
    }

    /**
     * The registry's scrape as Envoy prints it ({@link #envoy(String, StatsTags)}) with Envoy's {@code filter}: as
     * Envoy matches it against each statistic's own name, the series of Envoy's statistics ({@code envoy_*}) whose
     * Envoy name ({@link EnvoyStats#envoyName}, {@code cluster.C.upstream_rq_total}) the filter finds, each other
     * family (Istio's metrics, an application's meters) when the filter finds its name; a family left with no series
     * left out; with {@code usedOnly}, only the series that were written.
     *
     * @param clusterStatName the name a cluster's statistics are under (its {@code alt_stat_name}, else its name)
     */
    static String selectByEnvoyName(String scrape, Predicate<String> filter, boolean usedOnly, StatsTags tags,
                                    java.util.function.UnaryOperator<String> clusterStatName) {
        List<Family> families = families(scrape);
        for (var it = families.iterator(); it.hasNext(); ) {
            Family f = it.next();
            if (f.name.startsWith("envoy_") && !f.samples.isEmpty()) {
                f.samples.removeIf(sample -> !filter.test(envoyName(f.name, sample, clusterStatName)));
                if (f.samples.isEmpty()) {
                    it.remove();
                }
            }
        }
        // Envoy's statistics were chosen by their series above
        return served(envoyNames(envoyForm(families, tags), tags),
                f -> f.name.startsWith("envoy_") || filter.test(f.name), usedOnly);
    }

    /**
     * The Envoy name of a sample of the registry's family {@code family} (its meter's name), from the meter's tags,
     * its labels; the family's name for a meter that is no Envoy statistic {@link EnvoyStats#envoyName} knows.
     */
    private static String envoyName(String family, String sample,
                                    java.util.function.UnaryOperator<String> clusterStatName) {
        List<io.micrometer.core.instrument.Tag> tags = new ArrayList<>();
        relabel(sample, (name, value) -> {
            if (!name.equals("le") && !name.equals("quantile")) {
                tags.add(io.micrometer.core.instrument.Tag.of(name, unescaped(value)));
            }
            return "";
        }, List.of());
        String envoyName = EnvoyStats.envoyName(new io.micrometer.core.instrument.Meter.Id(family,
                io.micrometer.core.instrument.Tags.of(tags), null, null, io.micrometer.core.instrument.Meter.Type.OTHER),
                clusterStatName);
        return envoyName != null ? envoyName : family;
    }

    /** A label's value as printed in the text format ({@code \\}, {@code \"}, {@code \n} escaped) unescaped. */
    private static String unescaped(String value) {
        if (value.indexOf('\\') < 0) {
            return value;
        }
        StringBuilder b = new StringBuilder(value.length());
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (c == '\\' && i + 1 < value.length()) {
                char next = value.charAt(++i);
                b.append(next == 'n' ? '\n' : next);
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    /** A family's comments and {@code samples}, a line each. */
    private static void append(StringBuilder b, Family f, List<String> samples) {
        f.comments.forEach(c -> b.append(c).append('\n'));
        samples.forEach(s -> b.append(s).append('\n'));
    }

    private static List<Family> families(String scrape) {
        List<Family> families = new ArrayList<>();
        Family current = null;
        for (String line : scrape.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            if (line.startsWith("# HELP ") || line.startsWith("# TYPE ")) {
                String[] parts = line.split(" ", 4);
                String name = parts.length > 2 ? parts[2] : "";
                if (current == null || !current.name.equals(name) || !current.samples.isEmpty()) {
                    current = new Family(name);
                    families.add(current);
                }
                if (line.startsWith("# TYPE ") && parts.length > 3) {
                    current.type = parts[3].strip();
                }
                current.comments.add(line);
            } else if (line.startsWith("#")) {
                if (current != null) {
                    current.comments.add(line);
                }
            } else {
                if (current == null) {
                    current = new Family(sampleName(line));
                    families.add(current);
                }
                current.samples.add(line);
            }
        }
        return families;
    }

    /**
     * The families of the server's and the cluster manager's gauges, used whatever their value (see
     * {@link EnvoyStats#ALWAYS_USED}).
     */
    private static final Set<String> ALWAYS_USED = Set.of("envoy_server_state", "envoy_server_live",
            "envoy_server_uptime", "envoy_listener_manager_workers_started", "envoy_cluster_manager_active_clusters",
            "envoy_cluster_manager_warming_clusters");

    /** The family's samples that were written, in order. */
    private static List<String> used(Family f) {
        if (ALWAYS_USED.contains(f.name)) {
            return f.samples;
        }
        boolean grouped = f.type.equals("histogram") || f.type.equals("summary");
        if (!grouped) {
            return f.samples.stream().filter(s -> !zero(value(s))).toList();
        }
        // a histogram's or summary's series is written when its count is
        Set<String> written = new HashSet<>();
        for (String s : f.samples) {
            if (sampleName(s).endsWith("_count") && !zero(value(s))) {
                written.add(series(s));
            }
        }
        return f.samples.stream().filter(s -> written.contains(series(s))).toList();
    }

    private static boolean zero(String value) {
        try {
            return Double.parseDouble(value) == 0;
        } catch (NumberFormatException e) {
            return false;
        }
    }

    private static String sampleName(String sample) {
        int end = 0;
        while (end < sample.length() && sample.charAt(end) != '{' && sample.charAt(end) != ' ') {
            end++;
        }
        return sample.substring(0, end);
    }

    /** Where the sample's labels end: after its closing brace, or after its name when it has none. */
    private static int labelsEnd(String sample) {
        int i = sampleName(sample).length();
        if (i >= sample.length() || sample.charAt(i) != '{') {
            return i;
        }
        boolean quoted = false;
        for (i++; i < sample.length(); i++) {
            char c = sample.charAt(i);
            if (quoted && c == '\\') {
                i++;
            } else if (c == '"') {
                quoted = !quoted;
            } else if (c == '}' && !quoted) {
                return i + 1;
            }
        }
        return sample.length();
    }

    private static String value(String sample) {
        String rest = sample.substring(labelsEnd(sample)).strip();
        int space = rest.indexOf(' ');
        return space < 0 ? rest : rest.substring(0, space);
    }

    /**
     * The series a histogram's or summary's sample belongs to: its name without the suffix, and its labels without
     * {@code le} and {@code quantile}.
     */
    private static String series(String sample) {
        String name = sampleName(sample);
        for (String suffix : List.of("_bucket", "_count", "_sum")) {
            if (name.endsWith(suffix)) {
                name = name.substring(0, name.length() - suffix.length());
                break;
            }
        }
        String labels = sample.substring(sampleName(sample).length(), labelsEnd(sample));
        // a series without other labels has none: {le="+Inf"} is the series of a _count without braces
        return name + labels.replaceAll("(?<=[{,])(le|quantile)=\"[^\"]*\",?", "").replace(",}", "}")
                .replace("{}", "");
    }

    /**
     * The sample with Envoy's numbers: its value, and the bound of its {@code le} label, by {@link #envoyNumber}; the
     * other labels' values as they are, whatever they look like, but a connection manager's stat prefix without the
     * {@code ;} istiod ends it with ({@code outbound_0.0.0.0_9080;}), which Istio's stats tag for
     * {@code http_conn_manager_prefix} leaves out of the label, as it leaves the one of a cluster's
     * {@code alt_stat_name} out of {@code cluster_name}.
     */
    static String envoyNumbers(String sample) {
        String b = relabel(sample, (name, value) -> {
            if (name.equals("le")) {
                value = envoyNumber(value);
            } else if (name.equals(HCM_PREFIX) && value.endsWith(";")) {
                value = value.substring(0, value.length() - 1);
            }
            return name + "=\"" + value + "\"";
        }, List.of());
        // the value, then what follows it (a timestamp)
        int end = labelsEnd(b);
        int start = end;
        while (start < b.length() && b.charAt(start) == ' ') {
            start++;
        }
        int stop = b.indexOf(" ", start);
        stop = stop < 0 ? b.length() : stop;
        return b.substring(0, start) + envoyNumber(b.substring(start, stop)) + b.substring(stop);
    }

    private static final String HCM_PREFIX = "http_conn_manager_prefix";

    /**
     * The sample with each of its labels {@code NAME="VALUE"} (the value as printed, a quote in it escaped with a
     * backslash) replaced by the text {@code label} gives for its name and value, and the labels {@code added} after
     * them; its name, value and what follows as they are.
     */
    private static String relabel(String sample, java.util.function.BinaryOperator<String> label,
                                  List<String> added) {
        String name = sampleName(sample);
        int end = labelsEnd(sample);
        List<String> labels = new ArrayList<>();
        int i = name.length();
        while (i < end) {
            int eq = sample.indexOf("=\"", i);
            if (eq < 0 || eq >= end) {
                break;
            }
            int close = eq + 2;
            while (close < end && sample.charAt(close) != '"') {
                close += sample.charAt(close) == '\\' ? 2 : 1;
            }
            close = Math.min(close, end);
            // after the '{' or ',' before it
            labels.add(label.apply(sample.substring(i + 1, eq).strip(), sample.substring(eq + 2, close)));
            i = close + 1;
        }
        labels.addAll(added);
        if (labels.isEmpty()) {
            return sample;
        }
        return name + "{" + String.join(",", labels) + "}" + sample.substring(end);
    }

    /** A decimal number as Java prints a double: {@code -1}, {@code 2.5}, {@code 3.0E-4}, {@code 1.0E7}. */
    private static final java.util.regex.Pattern DECIMAL =
            java.util.regex.Pattern.compile("-?[0-9]+(\\.[0-9]+)?(E-?[0-9]+)?");

    /**
     * A number as Envoy prints it: an integral one without a fraction ({@code 3}, {@code 25}, {@code 3600000}, as
     * Envoy's integer counters, gauges and bucket counts and its {@code %.32g} bounds and sums; one from 2^53 whole,
     * 2^64 as the largest uint64, {@code 18446744073709551615}, which a double cannot hold), any other in plain
     * decimal form where Envoy's {@code %.32g} is not scientific ({@code 0.5}, {@code 0.00015}, {@code 12345678.5}),
     * else as it is; {@code +Inf}, {@code -Inf}, {@code NaN} and what is not a number as they are.
     */
    static String envoyNumber(String number) {
        if (!DECIMAL.matcher(number).matches()) {
            return number;
        }
        double d = Double.parseDouble(number);
        double magnitude = Math.abs(d);
        if (d == Math.rint(d) && magnitude < 0x1p53) {
            return Long.toString((long) d);
        }
        if (d == Math.rint(d) && d > 0 && d <= 0x1p64) {
            // an integer up to the largest uint64 (remaining_cx_pools with no max_connection_pools), whole as
            // Envoy prints its uint64 statistics
            java.math.BigInteger n = new java.math.BigDecimal(d).toBigInteger();
            return (d == 0x1p64 ? n.subtract(java.math.BigInteger.ONE) : n).toString();
        }
        if (number.indexOf('E') < 0 || magnitude < 1e-4 || magnitude >= 1e32) {
            return number;
        }
        return new java.math.BigDecimal(number).stripTrailingZeros().toPlainString();
    }
}
