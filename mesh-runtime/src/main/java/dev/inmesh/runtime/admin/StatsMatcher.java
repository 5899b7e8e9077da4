package dev.inmesh.runtime.admin;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.inmesh.runtime.router.StringMatchers;
import dev.inmesh.runtime.xds.CoreParsers;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.FieldError;
import dev.inmesh.runtime.xds.Fields;
import io.envoyproxy.envoy.type.matcher.v3.ListStringMatcher;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.config.MeterFilterReply;
import java.util.List;
import java.util.function.Predicate;

/**
 * A bootstrap's {@code stats_config.stats_matcher}: which Envoy statistics exist, by their Envoy name, as Envoy
 * creates only those its matcher accepts ({@code reject_all}, an {@code exclusion_list}, or an {@code inclusion_list},
 * which Istio's bootstrap writes: {@code cluster_manager}, {@code listener_manager}, {@code server}, the RBAC
 * counters, ... and not the clusters' or connection managers' statistics unless {@code proxyStatsMatcher} adds them).
 * A statistic it rejects is not kept at all: neither {@code /stats} nor {@code /stats/prometheus} has it. Istio's
 * metrics ({@code istio_*}, Envoy's {@code reporter=} statistics, which Istio's list always includes) and an
 * application's meters are no Envoy statistics and are always kept. A cluster's statistics are matched under its
 * name ({@code cluster.outbound|9080||reviews.default.svc.cluster.local.upstream_rq_total}).
 */
public final class StatsMatcher {
    private StatsMatcher() {}

    /**
     * The matcher of the bootstrap of configuration {@code config}, a file or a directory
     * ({@link dev.inmesh.runtime.xds.EnvoyConfigReader#bootstrapDocument}) (null: none, no such file, one that does not
     * read or is no bootstrap: the configuration's reader says what is wrong with it).
     */
    public static Predicate<String> ofFile(java.nio.file.Path config) throws FieldError {
        JsonNode root = bootstrap(config);
        return root == null ? null : of(root);
    }

    /**
     * The bootstrap of configuration {@code config}, a file or a directory
     * ({@link dev.inmesh.runtime.xds.EnvoyConfigReader#bootstrapDocument}): null when there is none (no such file, one
     * that does not read, a document that is no bootstrap: {@link dev.inmesh.runtime.xds.EnvoyConfigReader#isBootstrap}).
     */
    static JsonNode bootstrap(java.nio.file.Path config) {
        if (config == null || !java.nio.file.Files.exists(config)) {
            return null;
        }
        JsonNode root;
        try {
            root = dev.inmesh.runtime.xds.EnvoyConfigReader.bootstrapDocument(config);
        } catch (dev.inmesh.runtime.xds.EnvoyConfigReader.ConfigReadException e) {
            return null;
        }
        return dev.inmesh.runtime.xds.EnvoyConfigReader.isBootstrap(root) ? root : null;
    }

    /** The matcher of a bootstrap's {@code stats_config} (JSON or YAML tree), or null when it has none. */
    public static Predicate<String> of(JsonNode bootstrap) throws FieldError {
        JsonNode config = field(bootstrap, "stats_config", "statsConfig");
        JsonNode matcher = field(config, "stats_matcher", "statsMatcher");
        if (matcher == null) {
            return null;
        }
        io.envoyproxy.envoy.config.metrics.v3.StatsMatcher m;
        try {
            m = EnvoyJson.toMessage(matcher, io.envoyproxy.envoy.config.metrics.v3.StatsMatcher.class);
        } catch (InvalidProtocolBufferException e) {
            throw new FieldError("stats_config.stats_matcher", e.getMessage());
        }
        return switch (m.getStatsMatcherCase()) {
            case REJECT_ALL -> m.getRejectAll() ? name -> false : name -> true;
            case INCLUSION_LIST -> any(m.getInclusionList(), "stats_config.stats_matcher.inclusion_list");
            case EXCLUSION_LIST -> any(m.getExclusionList(), "stats_config.stats_matcher.exclusion_list").negate();
            case STATSMATCHER_NOT_SET -> null;
        };
    }

    /**
     * A bootstrap's {@code stats_config} (JSON or YAML tree), Envoy's default (empty) when it has none; refused by
     * path when it is no {@code StatsConfig}.
     */
    static io.envoyproxy.envoy.config.metrics.v3.StatsConfig statsConfig(JsonNode bootstrap) throws FieldError {
        JsonNode config = field(bootstrap, "stats_config", "statsConfig");
        try {
            return config == null ? io.envoyproxy.envoy.config.metrics.v3.StatsConfig.getDefaultInstance()
                    : EnvoyJson.toMessage(config, io.envoyproxy.envoy.config.metrics.v3.StatsConfig.class);
        } catch (InvalidProtocolBufferException e) {
            throw new FieldError("stats_config", e.getMessage());
        }
    }

    /**
     * A filter of a registry's meters that denies the Envoy statistics {@code keep} rejects, by their Envoy name; the
     * others it leaves to the next filter.
     */
    public static MeterFilter meterFilter(Predicate<String> keep) {
        return new MeterFilter() {
            @Override
            public MeterFilterReply accept(Meter.Id id) {
                String name = EnvoyStats.envoyName(id, c -> c);
                return name == null || keep.test(name) ? MeterFilterReply.NEUTRAL : MeterFilterReply.DENY;
            }
        };
    }

    private static Predicate<String> any(ListStringMatcher list, String at) {
        List<Predicate<String>> patterns = Fields.at(at, () -> CoreParsers.stringMatchers(list)).stream()
                .map(StringMatchers::compile).toList();
        return name -> {
            for (Predicate<String> p : patterns) {
                if (p.test(name)) {
                    return true;
                }
            }
            return false;
        };
    }

    static JsonNode field(JsonNode node, String snake, String camel) {
        if (node == null || !node.isObject()) {
            return null;
        }
        JsonNode v = node.get(snake);
        return v != null ? v : node.get(camel);
    }
}
