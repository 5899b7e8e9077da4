package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/**
 * The statistics of the RBAC network filters with one {@code stat_prefix}, named as Envoy names them:
 * {@code <stat_prefix>.rbac.allowed} and {@code denied}, and {@code <stat_prefix>.rbac.<shadow_rules_stat_prefix>.
 * shadow_allowed} and {@code shadow_denied} (Istio's {@code tcp.rbac.allowed},
 * {@code tcp.rbac.istio_dry_run_allow_.shadow_denied}, ...). Envoy joins the prefix and {@code rbac.}, and the
 * shadow prefix and the counter, with a dot unless the first ends with one (or, for the shadow prefix, is empty).
 * Scraped as {@code envoy_rbac_allowed} and so on, with the prefix (without its last dot) in the tag
 * {@code rbac_stat_prefix}; as with {@link UpstreamStats}, counters whose name does not end in {@code _total} are
 * gauges that only go up. Filters with the same prefix share them, as
 * Envoy's statistics are shared by name. Only the standalone proxy has connections to check. Thread-safe.
 */
public final class NetworkRbacStats implements RbacStats {
    static final String PREFIX = "envoy_rbac_";
    static final String TAG = "rbac_stat_prefix";

    private final MeterRegistry registry;
    private final String scope;
    private final ConcurrentHashMap<String, LongAdder[]> counters = new ConcurrentHashMap<>();

    NetworkRbacStats(MeterRegistry registry, String statPrefix) {
        this.registry = registry;
        this.scope = statPrefix.endsWith(".") ? statPrefix.substring(0, statPrefix.length() - 1) : statPrefix;
        counters("", false); // allowed and denied are there from the start, as Envoy's
    }

    @Override
    public void rbacDecision(String prefix, boolean shadow, boolean allowed) {
        counters(prefix, shadow)[allowed ? 0 : 1].increment();
    }

    /** The connections allowed so far by the enforced rules. */
    public long allowed() {
        return counters("", false)[0].sum();
    }

    /** The connections denied so far by the enforced rules. */
    public long denied() {
        return counters("", false)[1].sum();
    }

    /** The connections the shadow rules with this prefix would have allowed (0) or denied (1) so far. */
    public long shadow(String shadowPrefix, boolean allowed) {
        return counters(shadowPrefix, true)[allowed ? 0 : 1].sum();
    }

    private LongAdder[] counters(String prefix, boolean shadow) {
        String key = (shadow ? "shadow:" : "rules:") + prefix;
        LongAdder[] c = counters.get(key);
        return c != null ? c : counters.computeIfAbsent(key, k -> {
            String kind = shadow ? "shadow_" : "";
            return new LongAdder[] {
                UpstreamStatsImpl.adder(registry, PREFIX + RbacStats.meter(prefix, kind + "allowed"), TAG, scope,
                        new LongAdder()),
                UpstreamStatsImpl.adder(registry, PREFIX + RbacStats.meter(prefix, kind + "denied"), TAG, scope,
                        new LongAdder())};
        });
    }
}
