package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * A listener filter's {@code filter_disabled} ({@code listener.v3.ListenerFilterChainMatchPredicate}): when it
 * matches a connection, the filter does not run on it. Envoy's only connection property here is the destination port
 * (the original one, once the original destination is restored); Istio uses it to keep the inspectors off the
 * ports of {@code virtualInbound} whose chains do not need them (a port declared TCP, where a server-first protocol
 * would otherwise wait for the inspectors).
 */
public sealed interface ListenerFilterPredicate {
    /** Whether the predicate matches a connection to this destination port. */
    boolean matches(int destinationPort);

    /** {@code any_match}: every connection. */
    record Any() implements ListenerFilterPredicate {
        @Override
        public boolean matches(int destinationPort) {
            return true;
        }
    }

    /**
     * {@code destination_port_range}: ports from {@code start} (included) to {@code end} (excluded).
     *
     * @param start the first port
     * @param end the port after the last
     */
    record DestinationPortRange(int start, int end) implements ListenerFilterPredicate {
        @Override
        public boolean matches(int destinationPort) {
            return destinationPort >= start && destinationPort < end;
        }
    }

    /**
     * {@code or_match} (any of the rules) or {@code and_match} (all of them); at least two rules, as Envoy requires.
     *
     * @param all whether every rule must match ({@code and_match})
     * @param rules the rules
     */
    record MatchSet(boolean all, List<ListenerFilterPredicate> rules) implements ListenerFilterPredicate {
        public MatchSet {
            String field = (all ? "and_match" : "or_match") + ".rules";
            rules = Checks.list(rules, field);
            Checks.check(rules.size() >= 2, field, rules.size() + " rules", "at least 2");
        }

        @Override
        public boolean matches(int destinationPort) {
            return all ? rules.stream().allMatch(r -> r.matches(destinationPort))
                    : rules.stream().anyMatch(r -> r.matches(destinationPort));
        }
    }

    /** {@code not_match}: the rule does not match. */
    record Not(ListenerFilterPredicate rule) implements ListenerFilterPredicate {
        public Not {
            Checks.nonNull(rule, "not_match");
        }

        @Override
        public boolean matches(int destinationPort) {
            return !rule.matches(destinationPort);
        }
    }
}
