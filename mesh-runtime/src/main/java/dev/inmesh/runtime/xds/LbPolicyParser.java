package dev.inmesh.runtime.xds;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.inmesh.api.config.cluster.CommonLbConfig;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.extensions.load_balancing_policies.common.v3.ConsistentHashingLbConfig;
import io.envoyproxy.envoy.extensions.load_balancing_policies.common.v3.LocalityLbConfig;
import io.envoyproxy.envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest;
import io.envoyproxy.envoy.extensions.load_balancing_policies.maglev.v3.Maglev;
import io.envoyproxy.envoy.extensions.load_balancing_policies.random.v3.Random;
import io.envoyproxy.envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash;
import io.envoyproxy.envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A cluster's {@code load_balancing_policy} (or {@code lb_policy: LOAD_BALANCING_POLICY_CONFIG}), as Envoy takes it:
 * the first of its {@code policies} whose type Envoy has a load balancer for is the cluster's policy, and
 * {@code lb_policy} and the policies' settings of {@code lb_config} are not read. Entries of a type Envoy knows no
 * load balancer for are skipped; none left fails the cluster. It cannot be combined with
 * {@code common_lb_config}'s {@code zone_aware_lb_config}, {@code locality_weighted_lb_config} or
 * {@code consistent_hashing_lb_config}: the typed policies carry those themselves.
 *
 * <p>Envoy's round robin, least request, random, ring hash, Maglev and cluster provided policies map onto
 * {@link LbPolicy} and {@link LbConfig} (their locality and hashing settings onto {@link CommonLbConfig}); a field of
 * theirs Inmesh does not implement is refused by its path. A policy of Envoy's that Inmesh does not implement (any
 * other {@code envoy.extensions.load_balancing_policies} type: client side weighted round robin, WRR locality, pick
 * first, subset, override host, ...) is refused by name when it comes first, since Envoy would balance with it.
 */
final class LbPolicyParser {
    static final String ENVOY_POLICIES = "envoy.extensions.load_balancing_policies.";
    private static final String PREFIX = "load_balancing_policy";

    private LbPolicyParser() {
    }

    /** The policy a cluster's {@code load_balancing_policy} selects, with its settings. */
    record Typed(LbPolicy policy, LbConfig config, boolean localityWeighted, boolean failTrafficOnPanic,
                 boolean useHostnameForHashing) {

        /** {@code common} (the cluster's {@code common_lb_config}) with this policy's locality and hashing. */
        CommonLbConfig onto(CommonLbConfig common) {
            CommonLbConfig c = common == null ? CommonLbConfig.DEFAULTS : common;
            return new CommonLbConfig(c.healthyPanicThreshold(), localityWeighted,
                    c.closeConnectionsOnHostSetChange(), c.overrideHostStatus(), useHostnameForHashing,
                    failTrafficOnPanic);
        }
    }

    /** Whether the cluster's policy comes from {@code load_balancing_policy}, as Envoy decides it. */
    static boolean typed(Cluster c) {
        return c.hasLoadBalancingPolicy() || c.getLbPolicy() == Cluster.LbPolicy.LOAD_BALANCING_POLICY_CONFIG;
    }

    /** The policy of a cluster for which {@link #typed} holds; errors name their path from the cluster. */
    static Typed parse(Cluster c, DiscoveryType type) {
        if (!c.hasLoadBalancingPolicy()) {
            throw new FieldError(PREFIX, "required with lb_policy LOAD_BALANCING_POLICY_CONFIG");
        }
        var common = c.getCommonLbConfig();
        for (var f : List.of("zone_aware_lb_config", "locality_weighted_lb_config", "consistent_hashing_lb_config")) {
            if (common.hasField(common.getDescriptorForType().findFieldByName(f))) {
                throw new FieldError("common_lb_config." + f, "cannot be combined with load_balancing_policy (set it "
                        + "in the policy's own config, as Envoy requires)");
            }
        }
        if (type == DiscoveryType.ORIGINAL_DST && c.getLbPolicy() != Cluster.LbPolicy.CLUSTER_PROVIDED) {
            // Envoy's ORIGINAL_DST cluster reads lb_policy itself, whatever load_balancing_policy says
            throw new FieldError("lb_policy", c.getLbPolicy() + " (expected: CLUSTER_PROVIDED for an ORIGINAL_DST "
                    + "cluster, with load_balancing_policy too)");
        }
        var policies = c.getLoadBalancingPolicy().getPoliciesList();
        List<String> skipped = new ArrayList<>();
        for (int i = 0; i < policies.size(); i++) {
            var extension = policies.get(i).getTypedExtensionConfig();
            String name = CoreParsers.configType(extension.getTypedConfig());
            String path = PREFIX + ".policies[" + i + "].typed_extension_config.typed_config";
            if (name.startsWith(ENVOY_POLICIES)) {
                Typed t = Fields.at(path, () -> policy(name, extension.getTypedConfig(), type));
                if (t.policy() == LbPolicy.CLUSTER_PROVIDED) {
                    return new Typed(t.policy(), ClusterParser.originalDst(c), false, false, false);
                }
                if (type == DiscoveryType.ORIGINAL_DST) {
                    throw new FieldError(path, name + " on an ORIGINAL_DST cluster (expected: " + ENVOY_POLICIES
                            + "cluster_provided.v3.ClusterProvided)");
                }
                return t;
            }
            skipped.add(extension.getName());
        }
        throw new FieldError(PREFIX + ".policies", "no policy of a type Envoy has a load balancer for, among "
                + skipped + " (expected: one of Envoy's " + ENVOY_POLICIES + "*)");
    }

    /** One of Envoy's policies, by its config type {@code name}. */
    private static Typed policy(String name, com.google.protobuf.Any any, DiscoveryType type) {
        String kind = name.substring(ENVOY_POLICIES.length());
        return switch (kind) {
            case "round_robin.v3.RoundRobin" -> {
                RoundRobin rr = unpack(any, RoundRobin.class, RoundRobin.newBuilder(), name);
                Fields.onlyKnown(rr, Set.of("slow_start_config", "locality_lb_config"), Set.of());
                // its slow_start_config is the cluster's round_robin_lb_config's, field for field
                LbConfig config = ClusterParser.roundRobin(legacy(rr.toBuilder().clearLocalityLbConfig().build(),
                        Cluster.RoundRobinLbConfig.parser()));
                yield locality(LbPolicy.ROUND_ROBIN, config, rr.hasLocalityLbConfig(), rr.getLocalityLbConfig());
            }
            case "least_request.v3.LeastRequest" -> {
                LeastRequest lr = unpack(any, LeastRequest.class, LeastRequest.newBuilder(), name);
                Fields.onlyKnown(lr, Set.of("choice_count", "active_request_bias", "slow_start_config",
                        "locality_lb_config", "enable_full_scan"), Set.of());
                if (lr.getEnableFullScan().getValue()) {
                    throw new FieldError("enable_full_scan", "true is not supported by Inmesh (a full scan of the "
                            + "hosts; leave it unset or false)");
                }
                // its first three fields are the cluster's least_request_lb_config's, field for field
                LbConfig config = ClusterParser.leastRequest(legacy(lr.toBuilder().clearLocalityLbConfig()
                        .clearEnableFullScan().build(), Cluster.LeastRequestLbConfig.parser()));
                yield locality(LbPolicy.LEAST_REQUEST, config, lr.hasLocalityLbConfig(), lr.getLocalityLbConfig());
            }
            case "random.v3.Random" -> {
                Random r = unpack(any, Random.class, Random.newBuilder(), name);
                Fields.onlyKnown(r, Set.of("locality_lb_config"), Set.of());
                yield locality(LbPolicy.RANDOM, new LbConfig.Default(), r.hasLocalityLbConfig(),
                        r.getLocalityLbConfig());
            }
            case "ring_hash.v3.RingHash" -> ringHash(unpack(any, RingHash.class, RingHash.newBuilder(), name), type);
            case "maglev.v3.Maglev" -> {
                Maglev m = unpack(any, Maglev.class, Maglev.newBuilder(), name);
                Fields.onlyKnown(m, Set.of("table_size", "consistent_hashing_lb_config",
                        "locality_weighted_lb_config"), Set.of());
                LbConfig config = ClusterParser.maglev(legacy(m.toBuilder().clearConsistentHashingLbConfig()
                        .clearLocalityWeightedLbConfig().build(), Cluster.MaglevLbConfig.parser()));
                boolean hostname = m.hasConsistentHashingLbConfig()
                        && hostname(m.getConsistentHashingLbConfig(), type);
                yield new Typed(LbPolicy.MAGLEV, config, m.hasLocalityWeightedLbConfig(), false, hostname);
            }
            case "cluster_provided.v3.ClusterProvided" -> {
                unpack(any, io.envoyproxy.envoy.extensions.load_balancing_policies.cluster_provided.v3
                        .ClusterProvided.class, io.envoyproxy.envoy.extensions.load_balancing_policies
                        .cluster_provided.v3.ClusterProvided.newBuilder(), name);
                if (type != DiscoveryType.ORIGINAL_DST) {
                    throw new FieldError("", name + " on a " + type + " cluster (expected: an ORIGINAL_DST "
                            + "cluster, the one type that provides its load balancer)");
                }
                yield new Typed(LbPolicy.CLUSTER_PROVIDED, new LbConfig.Default(), false, false, false);
            }
            default -> throw new FieldError("", name + " is not supported by Inmesh (one of Envoy's load balancing "
                    + "policies, which Envoy would balance with: expected round_robin, least_request, random, "
                    + "ring_hash, maglev or cluster_provided first)");
        };
    }

    /** RING_HASH: its sizes (a minimum of 1 or more, as Envoy's validation requires), hash function and hashing. */
    private static Typed ringHash(RingHash rh, DiscoveryType type) {
        Fields.onlyKnown(rh, Set.of("hash_function", "minimum_ring_size", "maximum_ring_size",
                "use_hostname_for_hashing", "consistent_hashing_lb_config", "locality_weighted_lb_config"), Set.of());
        LbConfig.RingHash.HashFunction function = switch (rh.getHashFunction()) {
            case DEFAULT_HASH, XX_HASH -> LbConfig.RingHash.HashFunction.XX_HASH;
            case MURMUR_HASH_2 -> LbConfig.RingHash.HashFunction.MURMUR_HASH_2;
            case UNRECOGNIZED -> throw new FieldError("hash_function", "unknown value " + rh.getHashFunctionValue());
        };
        if (rh.hasMinimumRingSize() && rh.getMinimumRingSize().getValue() == 0) {
            throw new FieldError("minimum_ring_size", "0 (expected: 1 to 8388608)");
        }
        LbConfig config = ClusterParser.ringHash(rh.hasMinimumRingSize(), rh.getMinimumRingSize(),
                rh.hasMaximumRingSize(), rh.getMaximumRingSize(), function);
        // as Envoy: the deprecated use_hostname_for_hashing counts only without consistent_hashing_lb_config
        @SuppressWarnings("deprecation")
        boolean hostname = rh.hasConsistentHashingLbConfig() ? hostname(rh.getConsistentHashingLbConfig(), type)
                : rh.getUseHostnameForHashing() && checkedHostname("use_hostname_for_hashing", type);
        return new Typed(LbPolicy.RING_HASH, config, rh.hasLocalityWeightedLbConfig(), false, hostname);
    }

    /**
     * A policy with a {@code locality_lb_config}: locality weighted, or zone aware (of which only
     * {@code fail_traffic_on_panic} does anything without a local cluster, as in {@link ClusterParser}).
     */
    private static Typed locality(LbPolicy policy, LbConfig config, boolean has, LocalityLbConfig l) {
        if (!has) {
            return new Typed(policy, config, false, false, false);
        }
        return Fields.at("locality_lb_config", () -> {
            Fields.onlyKnown(l, Set.of("zone_aware_lb_config", "locality_weighted_lb_config"), Set.of());
            var zoneAware = l.getZoneAwareLbConfig();
            Fields.at("zone_aware_lb_config", () -> {
                Fields.onlyKnown(zoneAware, Set.of("fail_traffic_on_panic"),
                        Set.of("routing_enabled", "min_cluster_size", "force_locality_direct_routing"));
                return null;
            });
            return new Typed(policy, config, l.hasLocalityWeightedLbConfig(), zoneAware.getFailTrafficOnPanic(),
                    false);
        });
    }

    /** A {@code consistent_hashing_lb_config}'s {@code use_hostname_for_hashing}; bounded loads are refused. */
    private static boolean hostname(ConsistentHashingLbConfig h, DiscoveryType type) {
        return Fields.at("consistent_hashing_lb_config", () -> {
            Fields.onlyKnown(h, Set.of("use_hostname_for_hashing"), Set.of());
            return h.getUseHostnameForHashing() && checkedHostname("use_hostname_for_hashing", type);
        });
    }

    /** True, if the cluster resolves names (as Envoy: a host's hostname is its name only in a STRICT_DNS one). */
    private static boolean checkedHostname(String field, DiscoveryType type) {
        if (type != DiscoveryType.STRICT_DNS) {
            throw new FieldError(field, "true on a " + type + " cluster (expected: a STRICT_DNS cluster)");
        }
        return true;
    }

    private static <T extends Message> T unpack(com.google.protobuf.Any any, Class<T> type, Message.Builder builder,
                                                String name) {
        return LocalRateLimitParser.typed(any, type, builder, name);
    }

    /** A typed policy's message read as the cluster's {@code lb_config} message of the same field numbers. */
    private static <T extends Message> T legacy(Message typed, com.google.protobuf.Parser<T> parser) {
        try {
            return parser.parseFrom(typed.toByteString());
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalStateException("the same fields do not read as " + parser, e);
        }
    }
}
