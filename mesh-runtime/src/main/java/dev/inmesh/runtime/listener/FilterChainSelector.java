package dev.inmesh.runtime.listener;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.FilterChainMatch;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.runtime.tls.DownstreamTls;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToIntFunction;

/**
 * Picks a listener's filter chain for a connection as Envoy does: criterion by criterion (destination port,
 * destination IP, server name, transport protocol, application protocols, source type, source IP, source port), the
 * candidates narrow to those that match most specifically (for application protocols: the chains of the first
 * protocol in the client's ALPN order that any chain names), and chains that leave a criterion empty are kept only
 * when no chain names it specifically. There is no backtracking: if a criterion leaves no candidate, the listener's
 * default filter chain applies (or none). The TLS of the chains that terminate it is compiled here, once per
 * snapshot.
 */
public final class FilterChainSelector {
    private final Listener listener;
    private final Map<FilterChain, DownstreamTls> tls = new IdentityHashMap<>();

    /**
     * @throws IllegalArgumentException when a chain's TLS certificate, key or CAs are not usable
     */
    public FilterChainSelector(Listener listener) {
        this.listener = listener;
        List<FilterChain> chains = new ArrayList<>(listener.filterChains());
        if (listener.defaultFilterChain() != null) {
            chains.add(listener.defaultFilterChain());
        }
        for (FilterChain c : chains) {
            if (c.tlsContext() != null) {
                DownstreamTls compiled = DownstreamTls.compile(c.tlsContext());
                compiled.watchSdsFiles("listener " + listener.name());
                tls.put(c, compiled);
            }
        }
    }

    public Listener listener() {
        return listener;
    }

    /** The compiled TLS a chain of this listener terminates, or null (no TLS, or secrets Inmesh cannot serve). */
    public DownstreamTls tls(FilterChain chain) {
        return tls.get(chain);
    }

    /** The chain for a connection, or null when none matches and the listener has no default chain. */
    public FilterChain select(ConnectionInfo c) {
        List<FilterChain> candidates = listener.filterChains();
        byte[] dst = Cidrs.bytes(c.destinationIp());
        byte[] src = Cidrs.bytes(c.sourceIp());
        candidates = narrow(candidates, m -> m.destinationPort() == 0 ? 0 : m.destinationPort() == c.destinationPort()
                ? 1 : -1);
        candidates = narrow(candidates, m -> longestPrefix(m.prefixRanges(), dst));
        candidates = narrow(candidates, m -> serverNameScore(m.serverNames(), c.serverName()));
        candidates = narrow(candidates, m -> m.transportProtocol().isEmpty() ? 0
                : m.transportProtocol().equals(c.transportProtocol()) ? 1 : -1);
        candidates = narrow(candidates, m -> alpnScore(m.applicationProtocols(), c.applicationProtocols()));
        candidates = narrow(candidates, m -> switch (m.sourceType()) {
            case ANY -> 0;
            case SAME_IP_OR_LOOPBACK -> c.sourceIsLocal() ? 1 : -1;
            case EXTERNAL -> c.sourceIsLocal() ? -1 : 1;
        });
        candidates = narrow(candidates, m -> longestPrefix(m.sourcePrefixRanges(), src));
        candidates = narrow(candidates, m -> m.sourcePorts().isEmpty() ? 0
                : m.sourcePorts().contains(c.sourcePort()) ? 1 : -1);
        return candidates.isEmpty() ? listener.defaultFilterChain() : candidates.get(0);
    }

    /**
     * Keeps the candidates with the best non-negative score (-1: does not match, 0: the criterion is empty, higher:
     * more specific).
     */
    private static List<FilterChain> narrow(List<FilterChain> in, ToIntFunction<FilterChainMatch> score) {
        if (in.size() <= 1 && in.stream().allMatch(f -> score.applyAsInt(f.match()) >= 0)) {
            return in;
        }
        int best = -1;
        for (FilterChain f : in) {
            best = Math.max(best, score.applyAsInt(f.match()));
        }
        if (best < 0) {
            return List.of();
        }
        List<FilterChain> out = new ArrayList<>(in.size());
        for (FilterChain f : in) {
            if (score.applyAsInt(f.match()) == best) {
                out.add(f);
            }
        }
        return out;
    }

    /** 0 for no ranges, 1 + the longest matching prefix length, or -1 when ranges are given and none holds. */
    private static int longestPrefix(List<CidrRange> ranges, byte[] ip) {
        if (ranges.isEmpty()) {
            return 0;
        }
        int best = -1;
        for (CidrRange r : ranges) {
            if (Cidrs.contains(r, ip)) {
                best = Math.max(best, r.prefixLen() + 1);
            }
        }
        return best;
    }

    /**
     * The client's ALPN list is walked in its own order: the first protocol some chain names decides, so a chain
     * scores higher the earlier its best protocol comes in that list; 0 for no protocols, -1 when none is offered.
     */
    private static int alpnScore(List<String> names, List<String> offered) {
        if (names.isEmpty()) {
            return 0;
        }
        for (int i = 0; i < offered.size(); i++) {
            if (names.contains(offered.get(i))) {
                return offered.size() - i;
            }
        }
        return -1;
    }

    /** Exact names beat wildcards; longer wildcards beat shorter ones. */
    private static int serverNameScore(List<String> names, String sni) {
        if (names.isEmpty()) {
            return 0;
        }
        int best = -1;
        String lower = sni.toLowerCase(java.util.Locale.ROOT);
        for (String n : names) {
            String name = n.toLowerCase(java.util.Locale.ROOT);
            if (name.equals(lower)) {
                return Integer.MAX_VALUE;
            }
            if (name.startsWith("*.") && lower.length() > name.length() - 1 && lower.endsWith(name.substring(1))) {
                best = Math.max(best, name.length());
            }
        }
        return best;
    }
}
