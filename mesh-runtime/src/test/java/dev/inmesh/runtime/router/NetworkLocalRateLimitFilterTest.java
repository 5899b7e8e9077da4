package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.ratelimit.NetworkLocalRateLimit;
import dev.inmesh.api.config.rbac.NetworkRbac;
import dev.inmesh.api.config.rbac.Permission;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.LocalRateLimit;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * Envoy's local rate limit network filter among a chain's network filters, on a test clock: a connection takes a
 * token, one that finds none is refused ({@code local_ratelimit_close_over_limit}) and counted under its stat prefix;
 * the bucket refills {@code tokens_per_fill} each {@code fill_interval} up to {@code max_tokens}; a connection an
 * RBAC filter before it denies takes no token, one it refuses never reaches an RBAC filter after it; a disabled
 * filter ({@code runtime_enabled} false) refuses nothing; the bucket outlives a snapshot where its place and config
 * are unchanged, and filters with one {@code share_key} and bucket config share one bucket.
 */
class NetworkLocalRateLimitFilterTest {
    private static final LocalRateLimit.TokenBucket TWO_A_SECOND_ONE_BACK =
            new LocalRateLimit.TokenBucket(2, 1, Duration.ofSeconds(1));
    private static final String DENY_BLOCKED = "rbac_access_denied_matched_policy[blocked]";

    private final AtomicLong clock = new AtomicLong(1_000_000_000L);
    private final LocalRateLimitFilter.Buckets buckets = new LocalRateLimitFilter.Buckets(clock::get);
    private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
    private final MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);

    private static FilterChain chain(List<NetworkRbac> rbac, NetworkLocalRateLimit... limits) {
        return FilterChain.of("c", null, TcpProxy.of("tcp", new ClusterSpecifier.Named("backend"))).withRbac(rbac)
                .withLocalRateLimit(List.of(limits));
    }

    /** An RBAC network filter denying connections from 10.1.0.7. */
    private static NetworkRbac denyBlocked() {
        return new NetworkRbac("tcp.", new Rbac(new Rbac.Rules(Rbac.Action.DENY, Map.of("blocked",
                new Rbac.Policy(List.of(new Permission.Any()), List.of(new Principal.RemoteAddress(
                        Principal.AddressKind.DIRECT_REMOTE_IP, new CidrRange("10.1.0.7", 32)))))), "", null, ""));
    }

    private RbacFilter.Network compile(FilterChain chain, String where) {
        LocalRateLimitFilter.Buckets.Session session = buckets.session();
        RbacFilter.Network n = RbacFilter.Network.compile(chain, session, where);
        session.commit();
        return n;
    }

    private String connect(RbacFilter.Network n, String peer) {
        return n.check(RbacFilter.Subject.connection("10.1.0.9", 3306, peer, null, () -> null),
                metrics::networkRbac, metrics::networkLocalRateLimit);
    }

    @Test
    void aConnectionPastTheTokensIsRefusedAndCountedUntilTheNextFill() {
        RbacFilter.Network n = compile(chain(List.of(), new NetworkLocalRateLimit(0, "tcp_cap", TWO_A_SECOND_ONE_BACK,
                true, "")), "listener/l/0");
        assertNull(connect(n, "10.1.0.8"));
        assertNull(connect(n, "10.1.0.8"));
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(n, "10.1.0.8"));
        assertEquals(1, metrics.networkLocalRateLimit("tcp_cap").rateLimitedCount());

        clock.addAndGet(Duration.ofMillis(999).toNanos());
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(n, "10.1.0.8"), "no fill before fill_interval");
        clock.addAndGet(Duration.ofMillis(1).toNanos());
        assertNull(connect(n, "10.1.0.8"), "one token back after fill_interval");
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(n, "10.1.0.8"));
        clock.addAndGet(Duration.ofSeconds(10).toNanos());
        assertNull(connect(n, "10.1.0.8"));
        assertNull(connect(n, "10.1.0.8"));
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(n, "10.1.0.8"), "never more than max_tokens");
        assertEquals(4, metrics.networkLocalRateLimit("tcp_cap").rateLimitedCount());
    }

    @Test
    void theFiltersRunInChainOrderSoAConnectionDeniedBeforeTheLimitTakesNoToken() {
        LocalRateLimit.TokenBucket one = new LocalRateLimit.TokenBucket(1, 1, Duration.ofHours(1));
        RbacFilter.Network after = compile(chain(List.of(denyBlocked()), new NetworkLocalRateLimit(1, "cap", one,
                true, "")), "listener/after/0");
        assertEquals(DENY_BLOCKED, connect(after, "10.1.0.7"));
        assertNull(connect(after, "10.1.0.8"), "the denied connection took no token");
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(after, "10.1.0.8"));

        RbacFilter.Network before = compile(chain(List.of(denyBlocked()), new NetworkLocalRateLimit(0, "cap", one,
                true, "")), "listener/before/0");
        assertEquals(DENY_BLOCKED, connect(before, "10.1.0.7"), "it took the token, then RBAC denied it");
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(before, "10.1.0.7"), "refused before RBAC runs");
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(before, "10.1.0.8"));
        assertEquals(2, metrics.networkRbac("tcp.").denied(), "one denial by each chain's RBAC filter, none after a "
                + "refusal");
    }

    @Test
    void aFilterWhoseRuntimeFlagDefaultsToFalseRefusesNothing() {
        RbacFilter.Network n = compile(chain(List.of(), new NetworkLocalRateLimit(0, "tcp_cap",
                new LocalRateLimit.TokenBucket(1, 1, Duration.ofHours(1)), false, "")), "listener/l/0");
        for (int i = 0; i < 3; i++) {
            assertNull(connect(n, "10.1.0.8"));
        }
        assertEquals(0, metrics.networkLocalRateLimit("tcp_cap").rateLimitedCount());
    }

    @Test
    void theBucketOutlivesASnapshotWhereItsPlaceAndConfigAreTheSameAndIsNewWhereTheyChanged() {
        NetworkLocalRateLimit cap = new NetworkLocalRateLimit(0, "tcp_cap", TWO_A_SECOND_ONE_BACK, true, "");
        RbacFilter.Network first = compile(chain(List.of(), cap), "listener/l/0");
        assertNull(connect(first, "10.1.0.8"));
        assertNull(connect(first, "10.1.0.8"));
        RbacFilter.Network same = compile(chain(List.of(), cap), "listener/l/0");
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(same, "10.1.0.8"), "an unrelated update refills none");
        RbacFilter.Network changed = compile(chain(List.of(), new NetworkLocalRateLimit(0, "tcp_cap",
                new LocalRateLimit.TokenBucket(3, 1, Duration.ofSeconds(1)), true, "")), "listener/l/0");
        assertNull(connect(changed, "10.1.0.8"), "a changed config starts full");
    }

    @Test
    void filtersWithOneShareKeyAndBucketConfigShareOneBucketAcrossListeners() {
        NetworkLocalRateLimit shared = new NetworkLocalRateLimit(0, "tcp_cap", TWO_A_SECOND_ONE_BACK, true, "node");
        LocalRateLimitFilter.Buckets.Session session = buckets.session();
        RbacFilter.Network a = RbacFilter.Network.compile(chain(List.of(), shared), session, "listener/a/0");
        RbacFilter.Network b = RbacFilter.Network.compile(chain(List.of(), shared), session, "listener/b/0");
        RbacFilter.Network own = RbacFilter.Network.compile(chain(List.of(), new NetworkLocalRateLimit(0, "tcp_cap",
                TWO_A_SECOND_ONE_BACK, true, "")), session, "listener/c/0");
        session.commit();
        assertNull(connect(a, "10.1.0.8"));
        assertNull(connect(b, "10.1.0.8"));
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(a, "10.1.0.8"));
        assertEquals(RbacFilter.Network.RATE_LIMITED, connect(b, "10.1.0.8"));
        assertNull(connect(own, "10.1.0.8"), "without a share_key a bucket is the filter's own");
    }
}
