package dev.inmesh.interception.rules;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * One iptables rule: its table, its chain, where it goes (appended, or inserted at a 1-based position) and its match
 * and target arguments, exactly as they are passed to iptables.
 */
public record Rule(Table table, String chain, int position, List<String> spec) {

    /** The chains every table is born with; the generator never creates or deletes them. */
    public static final Set<String> BUILT_IN_CHAINS = Set.of("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING");

    /** The prefix of every chain the generator creates. */
    public static final String CHAIN_PREFIX = "ISTIO_";

    public Rule {
        Objects.requireNonNull(table, "table");
        Objects.requireNonNull(chain, "chain");
        if (position < 0) {
            throw new IllegalArgumentException("position: " + position + " (expected: >= 0, 0 to append)");
        }
        spec = List.copyOf(spec);
    }

    /** A rule appended to its chain. */
    public static Rule append(Table table, String chain, List<String> spec) {
        return new Rule(table, chain, 0, spec);
    }

    /** A rule inserted at a 1-based position of its chain. */
    public static Rule insert(Table table, String chain, int position, List<String> spec) {
        if (position < 1) {
            throw new IllegalArgumentException("position: " + position + " (expected: >= 1)");
        }
        return new Rule(table, chain, position, spec);
    }

    public boolean isInsert() {
        return position > 0;
    }

    /** True when the rule lives in one of the kernel's built-in chains rather than in a chain we create. */
    public boolean inBuiltInChain() {
        return BUILT_IN_CHAINS.contains(chain);
    }

    /** The chain this rule jumps to when it is one of ours ({@code -j ISTIO_...} at the end), else null. */
    public String jumpTarget() {
        int n = spec.size();
        if (n >= 2 && spec.get(n - 2).equals("-j") && spec.get(n - 1).startsWith(CHAIN_PREFIX)) {
            return spec.get(n - 1);
        }
        return null;
    }

    /** The rule as an iptables-restore line: {@code -A CHAIN ...} or {@code -I CHAIN N ...}. */
    public String restoreLine() {
        StringBuilder sb = new StringBuilder(isInsert() ? "-I " : "-A ").append(chain);
        if (isInsert()) {
            sb.append(' ').append(position);
        }
        for (String s : spec) {
            sb.append(' ').append(s);
        }
        return sb.toString();
    }

    /** Arguments for {@code iptables} that apply {@code op} ({@code -C} or {@code -D}) to this rule. */
    public List<String> commandArgs(String op) {
        List<String> args = new ArrayList<>(List.of("-t", table.iptablesName(), op, chain));
        args.addAll(spec);
        return args;
    }

    @Override
    public String toString() {
        return table + " " + restoreLine();
    }
}
