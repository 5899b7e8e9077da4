package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.ratelimit.NetworkLocalRateLimit;
import dev.inmesh.api.config.route.LocalRateLimit;
import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.admin.ConfigDumpBuilder;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's local rate limit network filter ({@code envoy.filters.network.local_ratelimit}) as an Istio EnvoyFilter
 * inserts it on a listener's chains (where the listener was refused as having an unknown network filter): its
 * {@code stat_prefix}, {@code token_bucket} ({@code tokens_per_fill} 1 when unset, {@code fill_interval} at least
 * 50 ms), {@code runtime_enabled} (its {@code default_value}; the runtime key is not read) and {@code share_key}; its
 * place among the RBAC filters; what Envoy's validation refuses is refused with the field's path.
 */
class NetworkLocalRateLimitParserTest {

    private static final String FILTER = """
            - name: envoy.filters.network.local_ratelimit
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit
                stat_prefix: tcp_cap
                token_bucket: {max_tokens: 2, fill_interval: 60s}
            """;

    private static List<FilterChain> chains(String filters) throws EnvoyConfigReader.ConfigReadException {
        return EnvoyConfigReader.read(NetworkRbacParserTest.virtualInbound(filters)).listeners().get("virtualInbound")
                .filterChains();
    }

    private static String refused(String filters) {
        return RbacParserTest.refused(NetworkRbacParserTest.virtualInbound(filters));
    }

    @Test
    void anEnvoyFiltersLocalRateLimitIsTakenBeforeATcpProxyAndAConnectionManagerWithEnvoysDefaults()
            throws Exception {
        List<FilterChain> chains = chains(FILTER);
        NetworkLocalRateLimit expected = new NetworkLocalRateLimit(0, "tcp_cap",
                new LocalRateLimit.TokenBucket(2, 1, Duration.ofSeconds(60)), true, "");
        assertEquals(List.of(expected), chains.get(0).localRateLimit(), "tokens_per_fill 1 and enabled by default");
        assertEquals(List.of(expected), chains.get(1).localRateLimit(), "before a connection manager too");
        assertTrue(chains(FILTER.replace("envoy.filters.network.local_ratelimit", "my_cap")).get(0).localRateLimit()
                .size() == 1, "known by its config type, whatever its name");
    }

    @Test
    void everyFieldIsReadTheRuntimeKeyIgnoredAsElsewhere() throws Exception {
        NetworkLocalRateLimit l = chains(FILTER.replace("fill_interval: 60s}",
                "fill_interval: 0.5s, tokens_per_fill: 3}\n    share_key: per_node\n"
                        + "    runtime_enabled: {default_value: false, runtime_key: tcp_cap.enabled}"))
                .get(0).localRateLimit().get(0);
        assertEquals(new NetworkLocalRateLimit(0, "tcp_cap", new LocalRateLimit.TokenBucket(2, 3,
                Duration.ofMillis(500)), false, "per_node"), l);
    }

    @Test
    void aTypedStructCarryingTheConfigIsReadAsTheMessageItNames() throws Exception {
        String typedStruct = """
                - name: envoy.filters.network.local_ratelimit
                  typed_config:
                    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit
                    value:
                      stat_prefix: tcp_cap
                      token_bucket: {max_tokens: 5, tokens_per_fill: 5, fill_interval: 1s}
                """;
        assertEquals(new LocalRateLimit.TokenBucket(5, 5, Duration.ofSeconds(1)),
                chains(typedStruct).get(0).localRateLimit().get(0).tokenBucket());
    }

    @Test
    void itsPlaceAmongTheRbacFiltersIsKeptAsTheCountOfThoseBeforeIt() throws Exception {
        FilterChain before = chains(FILTER + IstioRbac.TCP_DENY_THEN_ALLOW).get(0);
        assertEquals(0, before.localRateLimit().get(0).after());
        assertEquals(2, before.rbac().size());
        FilterChain after = chains(IstioRbac.TCP_DENY_THEN_ALLOW + FILTER).get(0);
        assertEquals(2, after.localRateLimit().get(0).after(), "after both RBAC filters");
    }

    @Test
    void whatEnvoyValidatesIsRefusedWithTheFieldsPath() {
        String prefix = refused(FILTER.replace("stat_prefix: tcp_cap", "stat_prefix: \"\""));
        assertTrue(prefix.contains("Listener \"virtualInbound\": filter_chains[0].filters[0].typed_config.stat_prefix: "
                + "\"\" (expected: a non-empty prefix"), prefix);
        String bucket = refused(FILTER.replace("    token_bucket: {max_tokens: 2, fill_interval: 60s}\n", ""));
        assertTrue(bucket.contains("filter_chains[0].filters[0].typed_config.token_bucket: unset"), bucket);
        String interval = refused(FILTER.replace("fill_interval: 60s", "fill_interval: 0.01s"));
        assertTrue(interval.contains("filter_chains[0].filters[0].typed_config.token_bucket.fill_interval"),
                interval);
        String noInterval = refused(FILTER.replace(", fill_interval: 60s", ""));
        assertTrue(noInterval.contains("filter_chains[0].filters[0].typed_config.token_bucket.fill_interval: unset"),
                noInterval);
        String zero = refused(FILTER.replace("max_tokens: 2", "max_tokens: 0"));
        assertTrue(zero.contains("filter_chains[0].filters[0].typed_config.token_bucket.max_tokens"), zero);
        String flag = refused(FILTER + "    runtime_enabled: {runtime_key: tcp_cap.enabled}\n");
        assertTrue(flag.contains("filter_chains[0].filters[0].typed_config.runtime_enabled.default_value: unset"),
                flag);
    }

    @Test
    void configDumpShowsTheFilterInItsChainAndReadsBackTheSame() throws Exception {
        ResourceBundle original = EnvoyConfigReader.read(NetworkRbacParserTest.virtualInbound(FILTER
                + "    share_key: node\n    runtime_enabled: {default_value: true, runtime_key: k}\n"));
        String dump = ConfigDumpBuilder.json(original, "node-1", Instant.EPOCH);
        assertTrue(dump.contains("\"name\": \"envoy.filters.network.local_ratelimit\""), dump);
        assertTrue(dump.contains("\"@type\": \"type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3"
                + ".LocalRateLimit\""), dump);
        assertEquals(original.listeners(), EnvoyConfigReader.read(dump).listeners());
    }
}
