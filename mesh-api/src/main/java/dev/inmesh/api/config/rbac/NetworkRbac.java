package dev.inmesh.api.config.rbac;

import dev.inmesh.api.config.Checks;

/**
 * The config of one RBAC network filter ({@code extensions.filters.network.rbac.v3.RBAC}) on a filter chain, as
 * istiod writes an AuthorizationPolicy for TCP ports: the connection is checked once, before the chain's terminal
 * filter sees it (Envoy's {@code ONE_TIME_ON_FIRST_BYTE}), against connection properties only.
 *
 * @param statPrefix the filter's {@code stat_prefix} (required, as Envoy requires it): its statistics are
 *     {@code <stat_prefix>.rbac.allowed} and so on
 * @param rbac the enforced and shadow rules; its {@code rulesStatPrefix} is always empty (the network filter has
 *     none)
 */
public record NetworkRbac(String statPrefix, Rbac rbac) {
    public NetworkRbac {
        Checks.nonEmpty(statPrefix, "stat_prefix");
        Checks.nonNull(rbac, "rbac");
    }
}
