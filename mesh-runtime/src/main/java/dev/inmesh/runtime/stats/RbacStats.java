package dev.inmesh.runtime.stats;

/**
 * Where an RBAC filter counts its decisions: an HTTP connection manager's ({@code http.<prefix>.rbac.*},
 * {@link DownstreamStats}) or an RBAC network filter's ({@code <stat_prefix>.rbac.*}, {@link NetworkRbacStats}).
 */
public interface RbacStats {
    /**
     * Counts one decision of the rules with this extra stat prefix: {@code allowed} or {@code denied}, or, for shadow
     * rules, {@code shadow_allowed} or {@code shadow_denied}, after the prefix and a dot ({@link #meter}).
     */
    void rbacDecision(String prefix, boolean shadow, boolean allowed);

    /**
     * The end of the meter of counter {@code counter} ({@code allowed}, {@code shadow_denied}, ...) of the rules with
     * the extra stat prefix {@code prefix}: Envoy's name after {@code rbac.}, which joins the two with a dot unless
     * the prefix is empty or ends with one ({@code istio_dry_run_allow_.shadow_denied}), flattened as Envoy's
     * Prometheus output flattens it (any character but a letter, digit or underscore an underscore).
     */
    static String meter(String prefix, String counter) {
        String name = prefix.isEmpty() || prefix.endsWith(".") ? prefix + counter : prefix + "." + counter;
        return name.replaceAll("[^A-Za-z0-9_]", "_");
    }
}
