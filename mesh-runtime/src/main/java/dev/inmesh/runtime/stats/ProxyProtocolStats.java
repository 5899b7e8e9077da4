package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.atomic.LongAdder;

/**
 * The statistics of the PROXY protocol listener filters with one {@code stat_prefix}, named as Envoy names them in
 * its root scope (its listener filters count in the server's scope, not the listener's):
 * {@code proxy_proto.[<stat_prefix>.]not_found_allowed} and {@code not_found_disallowed} (no header), and for each
 * version {@code proxy_proto.[<stat_prefix>.]versions.v1.found}, {@code disallowed} (found, of a version the filter
 * disallows) and {@code error} (malformed); plus the legacy {@code downstream_cx_proxy_proto_error}, which Envoy
 * still counts for every error, whatever the prefix. Scraped as {@code envoy_proxy_proto_versions_v1_found} and so on
 * with the prefix in the tag {@code proxy_proto_prefix} (empty for none), as Inmesh always extracts a stat prefix
 * (Envoy's Prometheus output keeps this one in the name), and {@code envoy_downstream_cx_proxy_proto_error}; admin's
 * {@code /stats} prints Envoy's names. Counters whose name does not end in {@code _total} are gauges that
 * only go up, as with {@link UpstreamStats}. Filters with the same prefix share them. Only the standalone proxy
 * accepts connections. Thread-safe.
 */
public final class ProxyProtocolStats {
    static final String PREFIX = "envoy_proxy_proto_";
    static final String TAG = "proxy_proto_prefix";
    /** Each version's statistics, in the order of their slots in {@link #versions}. */
    private static final java.util.List<String> VERSION_STATS = java.util.List.of("found", "disallowed", "error");

    private final LongAdder notFoundAllowed = new LongAdder();
    private final LongAdder notFoundDisallowed = new LongAdder();
    /** found, disallowed, error of v1, then of v2. */
    private final LongAdder[] versions = new LongAdder[6];
    private final LongAdder legacyError;

    ProxyProtocolStats(MeterRegistry registry, String statPrefix, LongAdder legacyError) {
        this.legacyError = legacyError;
        UpstreamStatsImpl.adder(registry, PREFIX + "not_found_allowed", TAG, statPrefix, notFoundAllowed);
        UpstreamStatsImpl.adder(registry, PREFIX + "not_found_disallowed", TAG, statPrefix, notFoundDisallowed);
        for (int i = 0; i < versions.length; i++) {
            versions[i] = UpstreamStatsImpl.adder(registry,
                    PREFIX + "versions_v" + (1 + i / 3) + "_" + VERSION_STATS.get(i % 3),
                    TAG, statPrefix, new LongAdder());
        }
    }

    /** Registers the legacy counter, in no scope, once per registry. */
    static LongAdder legacyError(MeterRegistry registry) {
        LongAdder a = new LongAdder();
        io.micrometer.core.instrument.Gauge.builder("envoy_downstream_cx_proxy_proto_error", a,
                LongAdder::doubleValue).strongReference(true).register(registry);
        return a;
    }

    /** A connection without a header went on ({@code allow_requests_without_proxy_protocol}). */
    public void notFoundAllowed() {
        notFoundAllowed.increment();
    }

    /** A connection without a header was closed: {@code not_found_disallowed} and the legacy error. */
    public void notFoundDisallowed() {
        notFoundDisallowed.increment();
        legacyError.increment();
    }

    /** A header of this version (1 or 2) was read and its addresses taken. */
    public void found(int version) {
        versions[(version - 1) * 3].increment();
    }

    /** A header of a version the filter disallows closed the connection: counted as found and disallowed. */
    public void disallowed(int version) {
        versions[(version - 1) * 3].increment();
        versions[(version - 1) * 3 + 1].increment();
    }

    /** A malformed header of this version closed the connection: its {@code error} and the legacy error. */
    public void error(int version) {
        versions[(version - 1) * 3 + 2].increment();
        legacyError.increment();
    }

    /** The connections counted so far under {@code versions.v<version>.<name>} ({@code found}, ...). */
    public long count(int version, String name) {
        int i = VERSION_STATS.indexOf(name);
        return versions[(version - 1) * 3 + i].sum();
    }

    /** The connections without a header that went on ({@code true}) or were closed. */
    public long notFound(boolean allowed) {
        return (allowed ? notFoundAllowed : notFoundDisallowed).sum();
    }

    /** Every connection a filter closed on an error or a missing header: the legacy counter. */
    public long legacyErrors() {
        return legacyError.sum();
    }
}
