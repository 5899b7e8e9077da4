package dev.inmesh.runtime.listener;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.Listener;
import java.util.Objects;

/**
 * What a listener update keeps of a connection's filter chain, as Envoy's listener manager decides it: an update that
 * changes no more than the listener's filter chains (a filter chain only update) keeps the connections of each chain
 * that stays equal, and drains those of a chain it removes or changes; any other update drains all of the listener's
 * connections. The standalone proxy's drains and {@code mesh.inbound}'s connections follow it.
 */
public final class FilterChainUpdate {
    private FilterChainUpdate() {}

    /** Whether two configurations of a listener differ at most in their filter chains (a filter chain only update). */
    public static boolean sameApartFromChains(Listener a, Listener b) {
        return a.name().equals(b.name()) && a.address().equals(b.address()) && a.useOriginalDst() == b.useOriginalDst()
                && a.trafficDirection() == b.trafficDirection() && a.bindToPort() == b.bindToPort()
                && a.listenerFilters().equals(b.listenerFilters())
                && Objects.equals(a.listenerFiltersTimeout(), b.listenerFiltersTimeout())
                && a.continueOnListenerFiltersTimeout() == b.continueOnListenerFiltersTimeout()
                && a.transparent() == b.transparent()
                && Objects.equals(a.listenerFiltersDisabled(), b.listenerFiltersDisabled())
                && Objects.equals(a.proxyProtocol(), b.proxyProtocol())
                && Objects.equals(a.originalSrc(), b.originalSrc());
    }

    /**
     * The chain of {@code listener} equal to {@code chain} (one of its filter chains, or its default chain), the
     * instance itself when it is one of them; null when the listener has no such chain.
     */
    public static FilterChain find(Listener listener, FilterChain chain) {
        for (FilterChain c : listener.filterChains()) {
            if (c == chain) {
                return c;
            }
        }
        if (listener.defaultFilterChain() == chain) {
            return chain;
        }
        if (chain.equals(listener.defaultFilterChain())) {
            return listener.defaultFilterChain();
        }
        for (FilterChain c : listener.filterChains()) {
            if (c.equals(chain)) {
                return c;
            }
        }
        return null;
    }

    /**
     * The chain a connection that took {@code chain} of {@code before} keeps once {@code after} (null: the listener
     * is gone) applies: that chain of {@code after} when the update keeps it, else null (the connection drains).
     */
    public static FilterChain kept(Listener before, FilterChain chain, Listener after) {
        return after == null || !sameApartFromChains(before, after) ? null : find(after, chain);
    }
}
