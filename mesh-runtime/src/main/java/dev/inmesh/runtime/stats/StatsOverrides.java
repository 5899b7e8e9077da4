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
 */
public final class StatsOverrides {
    /** No override: every metric recorded with all its labels. */
    public static final StatsOverrides NONE = new StatsOverrides(new boolean[Metric.values().length],
            java.util.Collections.nCopies(Metric.values().length, Set.of()));

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
    private final boolean empty;
    private final int hash;

    private StatsOverrides(boolean[] dropped, List<Set<String>> removed) {
        this.dropped = dropped;
        this.removed = removed;
        boolean none = true;
        for (boolean d : dropped) {
            none &= !d;
        }
        for (Set<String> r : removed) {
            none &= r.isEmpty();
        }
        this.empty = none;
        this.hash = 31 * java.util.Arrays.hashCode(dropped) + removed.hashCode();
    }

    /** The overrides of a stats filter's config; {@link #NONE} for null or for one that changes nothing. */
    public static StatsOverrides compile(IstioStats config) {
        if (config == null) {
            return NONE;
        }
        Metric[] metrics = Metric.values();
        boolean[] dropped = new boolean[metrics.length];
        List<Set<String>> removed = new ArrayList<>();
        for (int i = 0; i < metrics.length; i++) {
            removed.add(new HashSet<>());
        }
        for (IstioStats.MetricOverride o : config.metrics()) {
            for (Metric m : metrics) {
                boolean named = m.configName.equals(o.name());
                if (o.drop()) {
                    dropped[m.ordinal()] |= named;
                } else if (named || o.name().isEmpty()) {
                    o.tagsToRemove().stream().filter(STANDARD_LABELS::contains).forEach(removed.get(m.ordinal())::add);
                }
            }
        }
        StatsOverrides s = new StatsOverrides(dropped, removed.stream().map(Set::copyOf).toList());
        return s.empty ? NONE : s;
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
                && removed.equals(s.removed);
    }

    @Override
    public int hashCode() {
        return hash;
    }

    @Override
    public String toString() {
        return "StatsOverrides[dropped=" + java.util.Arrays.toString(dropped) + ", removed=" + removed + "]";
    }
}
