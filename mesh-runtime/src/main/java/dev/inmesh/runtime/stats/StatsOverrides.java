package dev.inmesh.runtime.stats;

import dev.inmesh.api.config.listener.IstioStats;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The metric overrides of a connection manager's or a TCP filter chain's Istio stats filter ({@link IstioStats}),
 * compiled once per snapshot: which of Istio's HTTP or TCP metrics are dropped, and which standard labels each is
 * recorded without. As Istio's stats read them: a dropped metric must be named ({@code drop} on an entry without a
 * name drops nothing) and its entry's {@code tags_to_remove} do nothing; {@code tags_to_remove} on an entry without a
 * name apply to every metric; names of other metrics and labels that are not standard ones are skipped. A removed label
 * is recorded with an empty value, which Prometheus reads as the label being absent (Micrometer's Prometheus registry
 * needs one label set per name).
 *
 * <p>An entry's {@code dimensions} (a Telemetry {@code tagOverrides} value) are CEL expressions evaluated for each
 * request: a standard label takes the expression's value (an expression that does not compile removes it, as Istio's
 * stats do), another label is added (skipped when its expression does not compile), after the standard ones in the
 * order of their names; a value that cannot be evaluated is {@code unknown}. A later entry's expression for a label
 * replaces an earlier one's. They apply to the HTTP metrics (requests, their duration and sizes, gRPC messages),
 * evaluated when the request ends, and to the TCP metrics, evaluated once when the connection is first counted (as
 * Istio's network filter evaluates them, without request headers) so that its series stay the same until its close.
 *
 * <p>The config's {@code definitions} are metrics of its own ({@link Custom}), recorded for each request and, with the
 * values evaluated when it was first counted, for each TCP connection at its close, as Istio's
 * {@code recordCustomMetrics}.
 */
public final class StatsOverrides {
    /** No override: every metric recorded with all its labels. */
    public static final StatsOverrides NONE = new StatsOverrides(new boolean[Metric.values().length],
            java.util.Collections.nCopies(Metric.values().length, Set.of()),
            java.util.Collections.nCopies(Metric.values().length, java.util.Map.of()),
            java.util.Collections.nCopies(Metric.values().length, java.util.Map.of()), List.of());

    /**
     * No Istio stats filter where the configuration has one elsewhere: none of Istio's metrics is recorded, as Envoy
     * runs the filter, which records them, only where it is ({@link #off()}).
     */
    public static final StatsOverrides OFF = new StatsOverrides(all(Metric.values().length),
            java.util.Collections.nCopies(Metric.values().length, Set.of()),
            java.util.Collections.nCopies(Metric.values().length, java.util.Map.of()),
            java.util.Collections.nCopies(Metric.values().length, java.util.Map.of()), List.of());

    private static boolean[] all(int n) {
        boolean[] b = new boolean[n];
        java.util.Arrays.fill(b, true);
        return b;
    }

    /**
     * A metric of a stats filter's {@code definitions}: {@code istio_<name>}, recorded with the value of an expression
     * (Istio's reads it as an unsigned integer: 0 when it cannot be evaluated or is not one) and labelled only with the
     * dimensions of the {@code metrics} entries that name it or name no metric (standard labels among them, given as
     * any other); equal by name, type, expression and labels.
     *
     * @param labels by name; a later entry's expression for a label replaces an earlier one's
     */
    record Custom(String name, IstioStats.MetricDefinition.Type type, Dimension value,
                  java.util.Map<String, Dimension> labels) {
        /** The value recorded for a request (or connection) {@code e}: 0 where it is not an unsigned integer. */
        double amount(Evaluation e) {
            String v = e.valueOf(value);
            if (v == null || v.isEmpty() || !v.chars().allMatch(Character::isDigit)) {
                return 0;
            }
            try {
                long n = Long.parseUnsignedLong(v);
                return n >= 0 ? n : Double.parseDouble(Long.toUnsignedString(n));
            } catch (NumberFormatException tooLarge) {
                return 0;
            }
        }

        /** Its labels for {@code e}, {@code unknown} where an expression cannot be evaluated. */
        Tags tags(Evaluation e) {
            List<Tag> out = new ArrayList<>(labels.size());
            labels.values().forEach(d -> out.add(Tag.of(d.label(), e.labelOf(d))));
            return Tags.of(out);
        }
    }

    /** A label's value from a CEL expression, compiled once; equal by its name and source. */
    record Dimension(String label, String expression, java.util.function.Function<StreamInfo, String> value) {

        @Override
        public boolean equals(Object o) {
            return o instanceof Dimension d && d.label.equals(label) && d.expression.equals(expression);
        }

        @Override
        public int hashCode() {
            return label.hashCode() * 31 + expression.hashCode();
        }
    }

    /**
     * One request's (or connection's) values of the overrides' expressions, each evaluated once, however many metrics
     * it labels, as Istio's stats evaluate every expression once per stream; immutable once made.
     */
    public static final class Evaluation {
        /** By expression (its compiled {@link Dimension}, compared by identity): its value, or null. */
        private final java.util.IdentityHashMap<Dimension, String> values;

        /** The values of {@code o}'s expressions for request (or connection) {@code s}. */
        public Evaluation(StatsOverrides o, StreamInfo s) {
            values = new java.util.IdentityHashMap<>(o.expressions.size());
            for (Dimension d : o.expressions) {
                values.put(d, d.value().apply(s));
            }
        }

        /** The expression's value, or null where it cannot be evaluated. */
        String valueOf(Dimension d) {
            return values.get(d);
        }

        /** The expression's value as a label: {@code unknown} where it cannot be evaluated. */
        String labelOf(Dimension d) {
            String v = values.get(d);
            return v == null ? "unknown" : v;
        }
    }

    /** Istio's HTTP and TCP metrics, by their names in the stats filter's config. */
    enum Metric {
        REQUESTS_TOTAL("requests_total"),
        REQUEST_DURATION_MILLISECONDS("request_duration_milliseconds"),
        REQUEST_BYTES("request_bytes"),
        RESPONSE_BYTES("response_bytes"),
        REQUEST_MESSAGES_TOTAL("request_messages_total"),
        RESPONSE_MESSAGES_TOTAL("response_messages_total"),
        TCP_CONNECTIONS_OPENED_TOTAL("tcp_connections_opened_total"),
        TCP_CONNECTIONS_CLOSED_TOTAL("tcp_connections_closed_total"),
        TCP_SENT_BYTES_TOTAL("tcp_sent_bytes_total"),
        TCP_RECEIVED_BYTES_TOTAL("tcp_received_bytes_total");

        final String configName;

        Metric(String configName) {
            this.configName = configName;
        }
    }

    /** Istio's standard labels, the only ones {@code tags_to_remove} removes. */
    private static final Set<String> STANDARD_LABELS = Set.of("reporter", "source_workload",
            "source_workload_namespace", "source_principal", "source_app", "source_version",
            "source_canonical_service", "source_canonical_revision", "source_cluster", "destination_workload",
            "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
            "destination_service", "destination_service_name", "destination_service_namespace",
            "destination_canonical_service", "destination_canonical_revision", "destination_cluster",
            "request_protocol", "response_flags", "connection_security_policy", "response_code",
            "grpc_response_status");

    private final boolean[] dropped;
    /** By {@link Metric#ordinal}: the labels recorded empty. */
    private final List<Set<String>> removed;
    /** By {@link Metric#ordinal}: the standard labels whose value an expression gives. */
    private final List<java.util.Map<String, Dimension>> replaced;
    /** By {@link Metric#ordinal}: the labels added, by name in their order. */
    private final List<java.util.Map<String, Dimension>> added;
    /** The {@code definitions}' metrics, in their order. */
    private final List<Custom> customs;
    /** Every compiled expression of {@link #replaced}, {@link #added} and {@link #customs}, once. */
    private final List<Dimension> expressions;
    private final boolean empty;
    private final boolean evaluated;
    private final int hash;

    private StatsOverrides(boolean[] dropped, List<Set<String>> removed,
                           List<java.util.Map<String, Dimension>> replaced,
                           List<java.util.Map<String, Dimension>> added, List<Custom> customs) {
        this.dropped = dropped;
        this.removed = removed;
        this.replaced = replaced;
        this.added = added;
        this.customs = customs;
        java.util.Set<Dimension> all = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        replaced.forEach(m -> all.addAll(m.values()));
        added.forEach(m -> all.addAll(m.values()));
        for (Custom c : customs) {
            all.add(c.value());
            all.addAll(c.labels().values());
        }
        this.expressions = List.copyOf(all);
        boolean none = true;
        for (boolean d : dropped) {
            none &= !d;
        }
        for (Set<String> r : removed) {
            none &= r.isEmpty();
        }
        // a label replaced or added, or a definition, has an expression: evaluated exactly when there is one
        this.evaluated = !expressions.isEmpty();
        this.empty = none && !evaluated;
        this.hash = 31 * (31 * (31 * java.util.Arrays.hashCode(dropped) + removed.hashCode()) + replaced.hashCode()
                + added.hashCode()) + customs.hashCode();
    }

    /**
     * What Istio's metrics are for a connection manager or filter chain whose stats filter has {@code config} (null:
     * it has none) in a configuration with ({@code filterConfigured}) or without one anywhere: without, Istio's
     * metrics are recorded everywhere ({@link #NONE}), Inmesh's default for configurations istiod did not write; with,
     * only where a filter is ({@link #OFF} elsewhere), as in Envoy.
     */
    public static StatsOverrides of(IstioStats config, boolean filterConfigured) {
        return config == null && filterConfigured ? OFF : compile(config);
    }

    /** The overrides of a stats filter's config; {@link #NONE} for null or for one that changes nothing. */
    public static StatsOverrides compile(IstioStats config) {
        if (config == null) {
            return NONE;
        }
        Metric[] metrics = Metric.values();
        boolean[] dropped = new boolean[metrics.length];
        List<Set<String>> removed = new ArrayList<>();
        List<java.util.Map<String, Dimension>> replaced = new ArrayList<>();
        List<java.util.Map<String, Dimension>> added = new ArrayList<>();
        for (int i = 0; i < metrics.length; i++) {
            removed.add(new HashSet<>());
            replaced.add(new java.util.HashMap<>());
            added.add(new java.util.TreeMap<>());
        }
        java.util.Map<String, Dimension> compiled = new java.util.HashMap<>();
        java.util.Map<String, Custom> customs = customs(config, compiled);
        for (IstioStats.MetricOverride o : config.metrics()) {
            for (Metric m : metrics) {
                boolean named = m.configName.equals(o.name());
                if (o.drop()) {
                    dropped[m.ordinal()] |= named;
                } else if (named || o.name().isEmpty()) {
                    int i = m.ordinal();
                    for (String tag : o.tagsToRemove()) {
                        if (STANDARD_LABELS.contains(tag)) {
                            removed.get(i).add(tag);
                            replaced.get(i).remove(tag);
                        }
                    }
                    o.dimensions().forEach((tag, expression) -> {
                        Dimension d = compiled.computeIfAbsent(tag + "\n" + expression, k -> dimension(tag,
                                expression));
                        if (STANDARD_LABELS.contains(tag)) {
                            // as Istio's stats: an expression that does not compile removes the label
                            if (d == null) {
                                removed.get(i).add(tag);
                                replaced.get(i).remove(tag);
                            } else {
                                removed.get(i).remove(tag);
                                replaced.get(i).put(tag, d);
                            }
                        } else if (d != null) {
                            added.get(i).put(tag, d);
                        }
                    });
                }
            }
        }
        StatsOverrides s = new StatsOverrides(dropped, removed.stream().map(Set::copyOf).toList(),
                replaced.stream().map(java.util.Map::copyOf).toList(),
                added.stream().map(a -> java.util.Collections.unmodifiableMap(new java.util.TreeMap<>(a))).toList(),
                List.copyOf(customs.values()));
        return s.empty ? NONE : s;
    }

    /**
     * The metrics of the config's {@code definitions}, by name in their order, as Istio's stats make them: one that
     * redefines a standard metric, or whose value does not compile, is skipped (logged), and of two with one name the
     * first is kept; each labelled with the dimensions of the {@code metrics} entries (not dropping) that name it or
     * name no metric, in the entries' order, those whose expression does not compile skipped.
     */
    private static java.util.Map<String, Custom> customs(IstioStats config,
                                                         java.util.Map<String, Dimension> compiled) {
        java.util.Map<String, Custom> customs = new java.util.LinkedHashMap<>();
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(StatsOverrides.class.getName());
        for (IstioStats.MetricDefinition d : config.definitions()) {
            if (java.util.Arrays.stream(Metric.values()).anyMatch(m -> m.configName.equals(d.name()))) {
                log.info(() -> "istio.stats definition " + d.name() + " skipped: a standard metric's name");
                continue;
            }
            Dimension value = compiled.computeIfAbsent("\n" + d.value(), k -> dimension("", d.value()));
            if (value == null || customs.containsKey(d.name())) {
                continue;
            }
            java.util.Map<String, Dimension> labels = new java.util.TreeMap<>();
            for (IstioStats.MetricOverride o : config.metrics()) {
                if (!o.drop() && (o.name().isEmpty() || o.name().equals(d.name()))) {
                    o.dimensions().forEach((tag, expression) -> {
                        Dimension label = compiled.computeIfAbsent(tag + "\n" + expression,
                                k -> dimension(tag, expression));
                        if (label != null) {
                            labels.put(tag, label);
                        }
                    });
                }
            }
            customs.put(d.name(), new Custom(d.name(), d.type(), value,
                    java.util.Collections.unmodifiableMap(labels)));
        }
        return customs;
    }

    /** The {@code definitions}' metrics, in their order. */
    List<Custom> customs() {
        return customs;
    }

    /** A dimension's compiled expression, or null (logged) for one that does not compile. */
    private static Dimension dimension(String tag, String expression) {
        try {
            return new Dimension(tag, expression, dev.inmesh.runtime.accesslog.CelValues.compile(expression));
        } catch (IllegalArgumentException e) {
            java.util.logging.Logger.getLogger(StatsOverrides.class.getName()).info(() -> "istio.stats "
                    + (tag.isEmpty() ? "definition's value" : "dimension " + tag) + " skipped: " + e.getMessage());
            return null;
        }
    }

    /**
     * Whether some label's value comes from an expression evaluated per request or connection (which then needs the
     * connection's attributes, {@link TcpConnectionInfo#withConnection}).
     */
    public boolean evaluated() {
        return evaluated;
    }

    /**
     * The labels added to {@code metric} ({@link #tags(Metric, Tags, Evaluation)} ends with them), in their order;
     * empty for none.
     */
    java.util.Set<String> addedLabels(Metric metric) {
        return added.get(metric.ordinal()).keySet();
    }

    /**
     * The labels {@code metric} is recorded with for a request (or connection) whose expressions' values are {@code e}:
     * {@code tags} with those removed emptied and those an expression gives replaced, then the labels added.
     */
    Tags tags(Metric metric, Tags tags, Evaluation e) {
        java.util.Map<String, Dimension> r = replaced.get(metric.ordinal());
        java.util.Map<String, Dimension> a = added.get(metric.ordinal());
        Tags base = tags(metric, tags);
        if (r.isEmpty() && a.isEmpty()) {
            return base;
        }
        List<Tag> out = new ArrayList<>();
        for (Tag t : base) {
            Dimension d = r.get(t.getKey());
            out.add(d == null ? t : Tag.of(t.getKey(), e.labelOf(d)));
        }
        a.values().forEach(d -> out.add(Tag.of(d.label(), e.labelOf(d))));
        return Tags.of(out);
    }

    /** Whether none of Istio's metrics is recorded: there is no stats filter ({@link #OFF}). */
    public boolean off() {
        return this == OFF;
    }

    /** Whether nothing is dropped nor removed: the metrics are recorded as without a config. */
    boolean isEmpty() {
        return empty;
    }

    /** Whether {@code metric} is not recorded. */
    boolean drops(Metric metric) {
        return dropped[metric.ordinal()];
    }

    /** The labels {@code metric} is recorded with: {@code tags}, those it is recorded without emptied. */
    Tags tags(Metric metric, Tags tags) {
        Set<String> r = removed.get(metric.ordinal());
        if (r.isEmpty()) {
            return tags;
        }
        List<Tag> out = new ArrayList<>();
        for (Tag t : tags) {
            out.add(r.contains(t.getKey()) ? Tag.of(t.getKey(), "") : t);
        }
        return Tags.of(out);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof StatsOverrides s && java.util.Arrays.equals(dropped, s.dropped)
                && removed.equals(s.removed) && replaced.equals(s.replaced) && added.equals(s.added)
                && customs.equals(s.customs);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public String toString() {
        return "StatsOverrides[dropped=" + java.util.Arrays.toString(dropped) + ", removed=" + removed + ", replaced="
                + replaced + ", added=" + added + ", customs=" + customs + "]";
    }
}
