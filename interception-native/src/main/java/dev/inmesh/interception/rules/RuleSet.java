package dev.inmesh.interception.rules;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The rules of one configuration, in the order they are applied, for each IP family; the IPv6 list is empty when
 * IPv6 is off. Renders itself as iptables-restore input: per table (by name), the chains it creates ({@code -N}), then
 * its rules, then {@code COMMIT}.
 */
public record RuleSet(List<Rule> ipv4, List<Rule> ipv6) {

    public RuleSet {
        ipv4 = List.copyOf(ipv4);
        ipv6 = List.copyOf(ipv6);
    }

    public List<Rule> rules(IpFamily family) {
        return family == IpFamily.V4 ? ipv4 : ipv6;
    }

    /**
     * The chains this rule set creates in each table, in the order iptables-restore declares them: first the chains
     * that hold rules, in order of their first rule, then chains that are only jumped to.
     */
    public Map<Table, List<String>> createdChains(IpFamily family) {
        Map<Table, Set<String>> chains = new EnumMap<>(Table.class);
        List<Rule> rules = rules(family);
        for (Rule r : rules) {
            if (!r.inBuiltInChain()) {
                chains.computeIfAbsent(r.table(), t -> new LinkedHashSet<>()).add(r.chain());
            }
        }
        for (Rule r : rules) {
            String target = r.jumpTarget();
            if (target != null) {
                chains.computeIfAbsent(r.table(), t -> new LinkedHashSet<>()).add(target);
            }
        }
        Map<Table, List<String>> out = new EnumMap<>(Table.class);
        chains.forEach((t, c) -> out.put(t, List.copyOf(c)));
        return out;
    }

    /** The iptables-restore input for one family; empty when the family has no rules. */
    public String restoreInput(IpFamily family) {
        Objects.requireNonNull(family, "family");
        Map<Table, List<String>> created = createdChains(family);
        StringBuilder sb = new StringBuilder();
        for (Table table : Table.values()) {
            List<String> lines = new ArrayList<>();
            for (String chain : created.getOrDefault(table, List.of())) {
                lines.add("-N " + chain);
            }
            for (Rule r : rules(family)) {
                if (r.table() == table) {
                    lines.add(r.restoreLine());
                }
            }
            if (lines.isEmpty()) {
                continue;
            }
            sb.append("* ").append(table.iptablesName()).append('\n');
            lines.forEach(l -> sb.append(l).append('\n'));
            sb.append("COMMIT\n");
        }
        return sb.toString();
    }
}
