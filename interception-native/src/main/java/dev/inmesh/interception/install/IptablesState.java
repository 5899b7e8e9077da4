package dev.inmesh.interception.install;

import dev.inmesh.interception.rules.Rule;
import dev.inmesh.interception.rules.Table;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** What {@code iptables-save} reported for one family: per table, the user-defined chains and every rule. */
final class IptablesState {
    private final Map<Table, Set<String>> chains = new EnumMap<>(Table.class);
    private final Map<Table, List<SavedRule>> rules = new EnumMap<>(Table.class);

    /** A rule as iptables-save prints it: its chain and the arguments after {@code -A CHAIN}. */
    public record SavedRule(String chain, List<String> spec) {
        /** The chain it jumps to when that is one of ours, else null. */
        public String istioJumpTarget() {
            int i = spec.indexOf("-j");
            if (i >= 0 && i + 1 < spec.size() && spec.get(i + 1).startsWith(Rule.CHAIN_PREFIX)) {
                return spec.get(i + 1);
            }
            return null;
        }
    }

    private IptablesState() {}

    /** Parses iptables-save output; unknown tables are ignored. */
    public static IptablesState parse(String save) {
        IptablesState state = new IptablesState();
        Table table = null;
        for (String raw : save.split("\n")) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#") || line.equals("COMMIT")) {
                continue;
            }
            if (line.startsWith("*")) {
                table = tableNamed(line.substring(1).strip());
                continue;
            }
            if (table == null) {
                continue;
            }
            if (line.startsWith(":")) {
                String chain = line.substring(1).split("\\s+")[0];
                if (!Rule.BUILT_IN_CHAINS.contains(chain)) {
                    state.chains.computeIfAbsent(table, t -> new LinkedHashSet<>()).add(chain);
                }
                continue;
            }
            List<String> words = words(line);
            if (words.size() >= 2 && words.get(0).equals("-A")) {
                state.rules.computeIfAbsent(table, t -> new ArrayList<>())
                        .add(new SavedRule(words.get(1), List.copyOf(words.subList(2, words.size()))));
            }
        }
        return state;
    }

    /** User-defined chains of a table whose name starts with {@code ISTIO_}. */
    public List<String> istioChains(Table table) {
        return chains.getOrDefault(table, Set.of()).stream().filter(c -> c.startsWith(Rule.CHAIN_PREFIX)).toList();
    }

    public boolean hasIstioChains() {
        for (Table t : Table.values()) {
            if (!istioChains(t).isEmpty()) {
                return true;
            }
        }
        return false;
    }

    public boolean hasChain(Table table, String chain) {
        return chains.getOrDefault(table, Set.of()).contains(chain);
    }

    public List<SavedRule> rules(Table table) {
        return rules.getOrDefault(table, List.of());
    }

    /** Rules of a chain, in order. */
    public List<SavedRule> rules(Table table, String chain) {
        return rules(table).stream().filter(r -> r.chain().equals(chain)).toList();
    }

    /** Rules in built-in chains that jump into one of our chains. */
    public List<SavedRule> jumpsIntoIstioChains(Table table) {
        return rules(table).stream()
                .filter(r -> Rule.BUILT_IN_CHAINS.contains(r.chain()) && r.istioJumpTarget() != null)
                .toList();
    }

    private static Table tableNamed(String name) {
        for (Table t : Table.values()) {
            if (t.iptablesName().equals(name.toLowerCase(Locale.ROOT))) {
                return t;
            }
        }
        return null;
    }

    /** Splits a saved rule into arguments, keeping double-quoted strings (comments) whole. */
    static List<String> words(String line) {
        List<String> out = new ArrayList<>();
        StringBuilder cur = new StringBuilder();
        boolean quoted = false;
        boolean any = false;
        for (int i = 0; i < line.length(); i++) {
            char c = line.charAt(i);
            if (c == '\\' && quoted && i + 1 < line.length()) {
                cur.append(line.charAt(++i));
            } else if (c == '"') {
                quoted = !quoted;
                any = true;
            } else if (Character.isWhitespace(c) && !quoted) {
                if (any) {
                    out.add(cur.toString());
                    cur.setLength(0);
                    any = false;
                }
            } else {
                cur.append(c);
                any = true;
            }
        }
        if (any) {
            out.add(cur.toString());
        }
        return out;
    }
}
