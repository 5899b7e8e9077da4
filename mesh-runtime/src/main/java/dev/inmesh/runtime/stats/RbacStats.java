package dev.inmesh.runtime.stats;

/**
 * Where an RBAC filter counts its decisions: an HTTP connection manager's ({@code http.<prefix>.rbac.*},
 * {@link DownstreamStats}) or an RBAC network filter's ({@code <stat_prefix>.rbac.*}, {@link NetworkRbacStats}).
 */
public interface RbacStats {
    /**
     * Counts one decision of the rules with this extra stat prefix: {@code <prefix>allowed} or {@code denied}, or,
     * for shadow rules, {@code <prefix>shadow_allowed} or {@code shadow_denied}.
     */
    void rbacDecision(String prefix, boolean shadow, boolean allowed);
}
