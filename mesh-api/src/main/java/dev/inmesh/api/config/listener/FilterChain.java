package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;

/**
 * A filter chain: when it applies, and the network filter that ends it.
 *
 * @param name the chain's name (Istio names them, such as {@code 0.0.0.0_9080} or {@code inbound|9080||})
 * @param match when it applies
 * @param filter the terminal network filter
 * @param tls whether the chain terminates TLS (its transport socket is TLS)
 */
public record FilterChain(String name, FilterChainMatch match, NetworkFilter filter, boolean tls) {
    public FilterChain {
        name = name == null ? "" : name;
        match = match == null ? FilterChainMatch.ANY : match;
        Checks.nonNull(filter, "filters");
    }
}
