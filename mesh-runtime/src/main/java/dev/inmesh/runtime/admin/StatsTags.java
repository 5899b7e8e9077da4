package dev.inmesh.runtime.admin;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.runtime.xds.FieldError;
import io.envoyproxy.envoy.config.metrics.v3.StatsConfig;
import io.envoyproxy.envoy.config.metrics.v3.TagSpecifier;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * The names {@code /stats/prometheus} gives the tags of Envoy's statistics, from a bootstrap's
 * {@code stats_config.use_all_default_tags} and {@code stats_tags}, as Envoy's tag producer
 * ({@code source/common/stats/tag_producer_impl.cc}) names them: with the default tags (unless
 * {@code use_all_default_tags} is false) under Envoy's names ({@code source/common/config/well_known_names.h}:
 * {@code envoy.cluster_name}, printed {@code envoy_cluster_name}; a response class {@code 2}, not {@code 2xx}, in
 * {@code envoy_cluster_upstream_rq_xx}), then under each {@code stats_tags} entry that names one of the tags Inmesh
 * extracts, by Istio's name ({@code cluster_name}, with Istio's regex) or Envoy's (without a regex, its default regex).
 * Inmesh does not run the entries' regexes: it extracts its tags itself (a whole name as the value, where Envoy's
 * default regexes stop at its first dot) and takes an entry's regex to extract what its name says. A tag the
 * bootstrap does not extract (Envoy would leave its value in the stat's name) keeps Inmesh's own label, Istio's name.
 * A {@code fixed_value} entry is a label on every Envoy statistic. An entry Inmesh cannot honour (a tag it does not
 * extract; a name without a regex and without a default one, which Envoy refuses) is left out with a warning.
 * Without a bootstrap, Inmesh's tags keep Istio's names, as Istio's bootstrap, for which Inmesh's default stands,
 * names them ({@link #ISTIO}). Istio's {@code istio_*} metrics are not named by tag extraction and keep their labels.
 */
public final class StatsTags {
    private static final Logger LOG = Logger.getLogger(StatsTags.class.getName());

    /** The tags of Envoy's statistics Inmesh extracts: the label its meters carry, and Envoy's default tag. */
    private enum Tag {
        CLUSTER_NAME("cluster_name", "envoy.cluster_name"),
        RESPONSE_CODE("response_code", "envoy.response_code"),
        RESPONSE_CODE_CLASS("response_code_class", "envoy.response_code_class"),
        HTTP_CONN_MANAGER_PREFIX("http_conn_manager_prefix", "envoy.http_conn_manager_prefix"),
        LISTENER_ADDRESS("listener_address", "envoy.listener_address"),
        TCP_PREFIX("tcp_prefix", "envoy.tcp_prefix"),
        LOCAL_HTTP_RATELIMIT_PREFIX("local_http_ratelimit_prefix", "envoy.local_http_ratelimit_prefix"),
        LOCAL_NETWORK_RATELIMIT_PREFIX("local_network_ratelimit_prefix", "envoy.local_network_ratelimit_prefix"),
        // Envoy has no default tag for these prefixes: its Prometheus output keeps them in the name
        RBAC_STAT_PREFIX("rbac_stat_prefix", null),
        PROXY_PROTO_PREFIX("proxy_proto_prefix", null);

        /** The label of Inmesh's meters: Istio's bootstrap's tag name where it has one. */
        final String label;
        /** Envoy's default tag of the same value, null where Envoy has none. */
        final String envoy;

        Tag(String label, String envoy) {
            this.label = label;
            this.envoy = envoy;
        }

        static Tag named(String name) {
            for (Tag t : values()) {
                if (t.label.equals(name) || name.equals(t.envoy)) {
                    return t;
                }
            }
            return null;
        }
    }

    /**
     * The tags of Istio's bootstrap that no statistic Inmesh keeps has (a listener's own connection manager
     * statistics, Mongo's, a cache's, a component's, Wasm filters'): honoured by having nothing to extract.
     */
    private static final Set<String> NOTHING_TO_EXTRACT = Set.of("http_conn_manager_listener_prefix", "mongo_prefix",
            "cache", "component", "tag", "wasm_filter");

    /** Inmesh's tags under Istio's names, as Istio's bootstrap names them: Inmesh's default, without a bootstrap. */
    public static final StatsTags ISTIO = new StatsTags(new EnumMap<>(Tag.class), false, List.of());

    /** Each tag's labels, in order; a tag not in it keeps its own. */
    private final Map<Tag, List<String>> labels;
    /** Whether response classes are Envoy's default tag's ({@code 2} in {@code _rq_xx}), not Istio's. */
    private final boolean envoyClasses;
    /** The {@code fixed_value} labels, {@code NAME="VALUE"}, in order. */
    private final List<String> fixed;

    private StatsTags(Map<Tag, List<String>> labels, boolean envoyClasses, List<String> fixed) {
        this.labels = labels;
        this.envoyClasses = envoyClasses;
        this.fixed = fixed;
    }

    /**
     * The tags of the bootstrap of configuration {@code config} ({@link StatsMatcher#bootstrap}), each entry Inmesh
     * cannot honour logged as a warning; {@link #ISTIO} when there is no bootstrap.
     */
    public static StatsTags ofFile(java.nio.file.Path config) throws FieldError {
        JsonNode root = StatsMatcher.bootstrap(config);
        return root == null ? ISTIO : of(root, LOG::warning);
    }

    /** The tags of a bootstrap (JSON or YAML tree), each entry Inmesh cannot honour told to {@code warn}. */
    static StatsTags of(JsonNode bootstrap, Consumer<String> warn) throws FieldError {
        StatsConfig config = StatsMatcher.statsConfig(bootstrap);
        Map<Tag, List<String>> labels = new EnumMap<>(Tag.class);
        if (!config.hasUseAllDefaultTags() || config.getUseAllDefaultTags().getValue()) {
            for (Tag t : Tag.values()) {
                if (t.envoy != null) {
                    add(labels, t, t.envoy);
                }
            }
        }
        boolean classRegex = false;
        List<String> fixed = new ArrayList<>();
        for (int i = 0; i < config.getStatsTagsCount(); i++) {
            TagSpecifier s = config.getStatsTags(i);
            String name = s.getTagName();
            if (s.getTagValueCase() == TagSpecifier.TagValueCase.FIXED_VALUE) {
                fixed.add(sanitized(name) + "=\"" + escaped(s.getFixedValue()) + "\"");
                continue;
            }
            String at = "stats_config.stats_tags[" + i + "] (tag_name " + name + ")";
            Tag t = Tag.named(name);
            if (t == null) {
                if (!NOTHING_TO_EXTRACT.contains(name) && !istioLabel(name, s.getRegex())) {
                    warn.accept(at + ": Inmesh extracts no such tag from its statistics; left out");
                }
            } else if (s.getRegex().isEmpty() && !name.equals(t.envoy)) {
                warn.accept(at + ": no regex, and Envoy has no default regex of that name (Envoy refuses it); left out");
            } else {
                add(labels, t, name);
                classRegex |= t == Tag.RESPONSE_CODE_CLASS && !s.getRegex().isEmpty();
            }
        }
        return new StatsTags(labels, labels.containsKey(Tag.RESPONSE_CODE_CLASS) && !classRegex, List.copyOf(fixed));
    }

    private static void add(Map<Tag, List<String>> labels, Tag t, String name) {
        List<String> names = labels.computeIfAbsent(t, k -> new ArrayList<>());
        String label = sanitized(name);
        if (!names.contains(label)) {
            names.add(label);
        }
    }

    /**
     * Whether {@code regex} is the one Istio's bootstrap gives a label of its metrics ({@code (NAME=\.=(.*?);\.;)},
     * its stat names' encoding of the label), which Inmesh's {@code istio_*} metrics carry as labels already.
     */
    private static boolean istioLabel(String name, String regex) {
        return regex.equals("(" + name + "=\\.=(.*?);\\.;)") || regex.equals("(" + name + "=\\.=(.+?);\\.;)");
    }

    /** A tag name as Envoy's Prometheus output prints it: each character other than [a-zA-Z0-9_] an underscore. */
    private static String sanitized(String name) {
        String s = name.replaceAll("[^a-zA-Z0-9_]", "_");
        return !s.isEmpty() && Character.isDigit(s.charAt(0)) ? "_" + s : s;
    }

    /** A label value in Prometheus' text format: a backslash, a quote and a line end escaped. */
    private static String escaped(String value) {
        return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }

    /**
     * Whether response classes are named by Envoy's default tag: {@code envoy_response_code_class="2"} in its own
     * family ({@code envoy_cluster_upstream_rq_xx}), where Istio's regex ({@code _rq(_(\dxx))$}) makes
     * {@code response_code_class="2xx"} in the family of the codes ({@code envoy_cluster_upstream_rq}).
     */
    boolean envoyClasses() {
        return envoyClasses;
    }

    /**
     * Label {@code name="value"} of an Envoy statistic's sample (the value as printed, escapes and all), as this
     * names it: once under each name the bootstrap gives its tag, joined with commas.
     */
    String label(String name, String value) {
        Tag t = Tag.named(name);
        List<String> names = t == null || !t.label.equals(name) ? null : labels.get(t);
        if (names == null) {
            return name + "=\"" + value + "\"";
        }
        String v = t == Tag.RESPONSE_CODE_CLASS && envoyClasses && value.endsWith("xx")
                ? value.substring(0, value.length() - 2) : value;
        StringBuilder b = new StringBuilder();
        for (String n : names) {
            b.append(b.length() == 0 ? "" : ",").append(n).append("=\"").append(v).append('"');
        }
        return b.toString();
    }

    /** The {@code fixed_value} labels ({@code NAME="VALUE"}) every Envoy statistic has, in order. */
    List<String> fixed() {
        return fixed;
    }
}
