package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.HealthCheck;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.admin.ClusterManagerStatus;
import dev.inmesh.runtime.upstream.HealthChecker.Result;
import io.vertx.core.Future;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * How active health checks decide a cluster's membership, as Envoy's: hosts that left but pass their checks
 * ({@code PENDING_DYNAMIC_REMOVAL}), new hosts, and the warming of a new cluster. Driven by hand, without Vert.x.
 */
class HealthCheckMembershipTest {
    private final Fixtures f = new Fixtures();

    /** Two failures in a row fail a host; one success makes it healthy again. */
    private static final HealthCheck CHECK = HealthCheckerTest.check(2, 1);

    private static Cluster checked(Cluster c, boolean ignoreHealthOnHostRemoval) {
        return HealthCheckerTest.withHealthCheck(c, CHECK, ignoreHealthOnHostRemoval);
    }

    private static Host host(UpstreamCluster c, int i) {
        return c.hosts().stream().filter(h -> h.addressString().equals("10.0.0." + i + ":8080")).findFirst()
                .orElse(null);
    }

    private static Set<String> picked(UpstreamCluster c) {
        Set<String> out = new HashSet<>();
        for (int i = 0; i < 100; i++) {
            out.add(c.chooseHost(LbContext.NONE).addressString());
        }
        return out;
    }

    private static void result(UpstreamCluster c, int host, Result r) {
        c.healthCheckSession(host(c, host)).onResult(r);
    }

    /** An EDS cluster "c" of hosts 1..n (of Envoy's ignore_health_on_host_removal or not), each passed by its check. */
    private ClusterManager passing(int n, boolean ignoreHealthOnHostRemoval) {
        ClusterManager m = f.manager(checked(Fixtures.eds("c"), ignoreHealthOnHostRemoval), Fixtures.cla("c", n));
        UpstreamCluster c = m.clusters().get("c");
        for (int i = 1; i <= n; i++) {
            result(c, i, Result.SUCCESS);
        }
        return m;
    }

    /** The next manager, where cluster "c" keeps its configuration and has hosts 1..n. */
    private static ClusterManager assign(ClusterManager m, int n) {
        return m.update(Map.of("c", m.clusters().get("c").config()), Map.of("c", Fixtures.cla("c", n)));
    }

    @Test
    void aHostThatLeavesEdsWhileItsChecksPassKeepsTakingTrafficUntilTheyFailItThenItIsGone() {
        ClusterManager m = passing(3, false);
        UpstreamCluster c = m.cluster("c");
        Host leaving = host(c, 3);
        m = assign(m, 2);

        assertSame(leaving, host(c, 3));
        assertTrue(leaving.pendingDynamicRemoval());
        assertEquals("/pending_dynamic_removal", ClusterManagerStatus.healthFlags(leaving));
        // /clusters?format=json says so too, as Envoy's admin sets health_status.pending_dynamic_removal
        assertTrue(ClusterManagerStatus.healthStatus(leaving).getPendingDynamicRemoval());
        assertFalse(ClusterManagerStatus.healthStatus(host(c, 2)).getPendingDynamicRemoval());
        assertEquals(3, c.hosts().size()); // membership_total counts it, as Envoy's host set holds it
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"), picked(c));
        assertNotNull(c.healthCheckSession(leaving));

        result(c, 3, Result.NETWORK); // one failure of two: still healthy, still there
        assertTrue(picked(c).contains("10.0.0.3:8080"));
        result(c, 3, Result.NETWORK);
        assertNull(host(c, 3));
        assertNull(c.healthCheckSession(leaving));
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080"), picked(c));
        assertFalse(m.cluster("c").hosts().contains(leaving));
    }

    /**
     * A changed cluster (here its EDS service name) is a new cluster in Envoy, whose hosts are its assignment's only:
     * a passing host the new assignment does not have is not kept, where it would otherwise take traffic for as long
     * as its checks pass.
     */
    @Test
    void aHostThatAChangedClusterNoLongerHasIsGoneAtOnceWhileItsChecksPass() {
        ClusterManager m = passing(3, false);
        UpstreamCluster c = m.cluster("c");
        Cluster renamed = checked(Cluster.builder("c", DiscoveryType.EDS).edsServiceName("c-v2")
                .lbPolicy(dev.inmesh.api.config.cluster.LbPolicy.ROUND_ROBIN)
                .circuitBreakers(dev.inmesh.api.config.cluster.CircuitBreakers.DEFAULTS)
                .metadata(dev.inmesh.api.config.core.Metadata.EMPTY).build(), false);
        m = m.update(Map.of("c", renamed), Map.of("c-v2", Fixtures.cla("c-v2", 2)));
        assertSame(c, m.cluster("c"));
        assertNull(host(c, 3));
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080"), picked(c));
    }

    @Test
    void withIgnoreHealthOnHostRemovalAHostThatLeavesIsGoneAtOnce() {
        ClusterManager m = passing(3, true);
        UpstreamCluster c = m.cluster("c");
        assign(m, 2);
        assertNull(host(c, 3));
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080"), picked(c));
    }

    @Test
    void aHostThatLeavesFailedByItsChecksOrByEdsOrNotCheckedYetIsGoneAtOnce() {
        ClusterManager m = passing(3, false);
        UpstreamCluster c = m.cluster("c");
        result(c, 1, Result.FAILED);
        // host 2 now UNHEALTHY by EDS; host 4 new, not checked yet
        ClusterLoadAssignment next = Fixtures.cla("c", Fixtures.locality("a", 0, 1, 1, 2, HealthStatus.HEALTHY),
                Fixtures.locality("a", 0, 1, 2, 3, HealthStatus.UNHEALTHY),
                Fixtures.locality("a", 0, 1, 3, 5, HealthStatus.HEALTHY));
        m = m.update(Map.of("c", c.config()), Map.of("c", next));
        m = m.update(Map.of("c", c.config()), Map.of("c", Fixtures.cla("c",
                Fixtures.locality("a", 0, 1, 3, 4, HealthStatus.HEALTHY))));
        assertEquals(List.of("10.0.0.3:8080"), c.hosts().stream().map(Host::addressString).toList());
    }

    @Test
    void aHostListedAgainBeforeItsChecksFailItIsAHostAsAnyOther() {
        ClusterManager m = passing(3, false);
        Host leaving = host(m.cluster("c"), 3);
        m = assign(assign(m, 2), 3); // gone from one update, back in the next
        UpstreamCluster c = m.cluster("c");
        assertSame(leaving, host(c, 3));
        assertFalse(leaving.pendingDynamicRemoval());

        result(c, 3, Result.NETWORK);
        result(c, 3, Result.NETWORK);
        assertSame(leaving, host(c, 3)); // failed, not removed: it is in the assignment
        assertTrue(leaving.failedActiveHealthCheck());
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080"), picked(c));
    }

    @Test
    void aHostThatLeavesAStrictDnsClusterWhileItsChecksPassGoesWithTheResolutionAfterTheyFailIt() {
        Map<String, List<String>> dns = new HashMap<>(Map.of("svc.example", List.of("10.0.0.1", "10.0.0.2")));
        UpstreamEnvironment env = new UpstreamEnvironment(null, f.ticker, new Random(1),
                (name, family) -> Future.succeededFuture(dns.get(name)));
        ClusterLoadAssignment inline = Fixtures.cla("dns", new LocalityLbEndpoints(null, List.of(
                new LbEndpoint(new SocketAddress("svc.example", 8080), "", null, 1, null)), 1, 0));
        Cluster cluster = checked(Cluster.builder("dns", DiscoveryType.STRICT_DNS).loadAssignment(inline)
                .build(), false);
        ClusterManager m = ClusterManager.create(env, Map.of("dns", cluster), Map.of());
        UpstreamCluster c = m.clusters().get("dns");
        result(c, 1, Result.SUCCESS);
        assertNull(m.cluster("dns")); // warming: its first resolution's hosts have not all had a check
        result(c, 2, Result.SUCCESS);
        assertSame(c, m.cluster("dns"));

        dns.put("svc.example", List.of("10.0.0.1"));
        c.resolve();
        assertTrue(host(c, 2).pendingDynamicRemoval());
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080"), picked(c));
        result(c, 2, Result.FAILED);
        assertNotNull(host(c, 2)); // as Envoy's STRICT_DNS cluster: not before its next resolution
        assertEquals(Set.of("10.0.0.1:8080"), picked(c));
        c.resolve();
        assertNull(host(c, 2));
    }

    /** A STRICT_DNS cluster "dns" of one name, port 8080, with check {@code hc}. */
    private static Cluster strictDns(String name, HealthCheck hc) {
        ClusterLoadAssignment inline = Fixtures.cla("dns", new LocalityLbEndpoints(null, List.of(
                new LbEndpoint(new SocketAddress(name, 8080), "", null, 1, null)), 1, 0));
        return HealthCheckerTest.withHealthCheck(Cluster.builder("dns", DiscoveryType.STRICT_DNS).loadAssignment(inline)
                .build(), hc);
    }

    /**
     * A warming DNS cluster whose names and check change counts the checks of its new names' first resolution, as
     * Envoy's new version of it warms from its own first resolution: the old names' addresses are no resolution of
     * the new ones.
     */
    @Test
    void aWarmingDnsClusterWhoseNamesAndCheckChangeWarmsUntilItsNewNamesHostsHadACheck() {
        Map<String, List<String>> dns = Map.of("a.example", List.of("10.0.0.1"), "b.example", List.of("10.0.0.2"));
        UpstreamEnvironment env = new UpstreamEnvironment(null, f.ticker, new Random(1),
                (name, family) -> Future.succeededFuture(dns.get(name)));
        ClusterManager m = ClusterManager.create(env, Map.of("dns", strictDns("a.example", CHECK)), Map.of());
        UpstreamCluster c = m.clusters().get("dns");
        assertTrue(c.warming());

        m = m.update(Map.of("dns", strictDns("b.example", HealthCheckerTest.check(3, 1))), Map.of());
        assertEquals(List.of("10.0.0.2:8080"), c.hosts().stream().map(Host::addressString).toList());
        assertNull(m.cluster("dns")); // its new name's host has not had a check
        result(c, 2, Result.SUCCESS);
        assertSame(c, m.cluster("dns"));
    }

    @Test
    void aNewClusterWithChecksIsNotInUseUntilEachOfItsHostsHadACheck() {
        ClusterManager m = f.manager(checked(Fixtures.eds("c"), false), Fixtures.cla("c", 2));
        UpstreamCluster c = m.clusters().get("c");
        assertTrue(c.warming());
        assertNull(m.cluster("c")); // a request finds no cluster (NC), as Envoy's for a warming cluster
        result(c, 1, Result.SUCCESS);
        assertNull(m.cluster("c"));
        result(c, 2, Result.NETWORK); // a failed first check completes a host's check too
        assertSame(c, m.cluster("c"));
        assertFalse(c.warming());
        assertEquals(Set.of("10.0.0.1:8080"), picked(c));
    }

    @Test
    void theManagerIsInitializedOnceTheLastOfItsWarmingClustersHadItsFirstChecksAndAtOnceWithoutChecks() {
        ClusterManager m = f.manager(checked(Fixtures.eds("c"), false), Fixtures.cla("c", 2));
        Future<Void> initialized = m.initialized();
        UpstreamCluster c = m.clusters().get("c");
        result(c, 1, Result.SUCCESS);
        assertFalse(initialized.isComplete());
        result(c, 2, Result.NETWORK);
        assertTrue(initialized.succeeded());
        assertTrue(c.initialized().succeeded());

        assertTrue(f.manager(Fixtures.eds("c"), Fixtures.cla("c", 2)).initialized().succeeded());
    }

    @Test
    void aWarmingClusterRemovedByTheNextConfigurationNoLongerHoldsTheInitialization() {
        ClusterManager m = f.manager(checked(Fixtures.eds("c"), false), Fixtures.cla("c", 2));
        Future<Void> initialized = m.initialized();
        assertFalse(initialized.isComplete());
        m.update(Map.of(), Map.of());
        assertTrue(initialized.succeeded()); // as Envoy's init helper lets go of a cluster removed while it warms
    }

    /**
     * A host that leaves a warming cluster before its first check counts as one checked, as Envoy's checker runs its
     * callbacks for a session deleted before its first check: the warming (and the server's initialization) does not
     * wait for a check that will never come, here the only one left.
     */
    @Test
    void aHostThatLeavesAWarmingClusterBeforeItsFirstCheckNoLongerHoldsItsWarming() {
        ClusterManager m = f.manager(checked(Fixtures.eds("c"), false), Fixtures.cla("c", 2));
        Future<Void> initialized = m.initialized();
        UpstreamCluster c = m.clusters().get("c");
        result(c, 1, Result.SUCCESS);
        assertTrue(c.warming());

        m = assign(m, 1); // host 2 leaves EDS, its first check never made
        assertFalse(c.warming());
        assertSame(c, m.cluster("c"));
        assertTrue(initialized.succeeded());
        assertEquals(Set.of("10.0.0.1:8080"), picked(c));
    }

    /**
     * A warming cluster whose configuration changes warms anew, as Envoy's update of a warming cluster replaces it: the
     * old version's checks, done or in flight, count for nothing, and each host of the new version has a check of its
     * own before the cluster (and the initialization) is done.
     */
    @Test
    void aWarmingClusterWhoseConfigurationChangesWarmsAnewTheOldVersionsChecksCountingForNothing() {
        ClusterManager m = f.manager(checked(Fixtures.eds("c"), false), Fixtures.cla("c", 2));
        UpstreamCluster c = m.clusters().get("c");
        HealthChecker.Session old = c.healthCheckSession(host(c, 2));
        result(c, 1, Result.SUCCESS);
        Future<Void> initialized = m.initialized();

        m = m.update(Map.of("c", checked(Fixtures.eds("c"), true)), Map.of("c", Fixtures.cla("c", 2)));
        old.onResult(Result.SUCCESS); // the old version's check in flight: dropped with it
        assertTrue(c.warming());
        assertNull(m.cluster("c"));
        result(c, 2, Result.SUCCESS);
        assertTrue(c.warming()); // host 1's check was the old version's
        assertFalse(initialized.isComplete());
        result(c, 1, Result.SUCCESS);
        assertSame(c, m.cluster("c"));
        assertTrue(initialized.succeeded());
    }

    /**
     * While the server initializes, a cluster that gains health checks warms, and the manager's initialization waits
     * for it, as Envoy's init helper waits for the new version of a cluster updated before it completes; once the
     * server is initialized, the same update leaves the cluster in use (its hosts failed until their first check).
     */
    @Test
    void aClusterThatGainsChecksWhileTheServerInitializesWarmsAndHoldsTheInitializationNotAfter() {
        ClusterManager m = f.manager(Fixtures.eds("c"), Fixtures.cla("c", 1));
        assertTrue(m.initialized().succeeded());
        ClusterManager next = m.update(Map.of("c", checked(Fixtures.eds("c"), false)),
                Map.of("c", Fixtures.cla("c", 1)), true);
        UpstreamCluster c = next.clusters().get("c");
        Future<Void> initialized = next.initialized();
        assertTrue(c.warming());
        assertFalse(initialized.isComplete());
        result(c, 1, Result.SUCCESS);
        assertTrue(initialized.succeeded());

        ClusterManager later = f.manager(Fixtures.eds("d"), Fixtures.cla("d", 1));
        later = later.update(Map.of("d", checked(Fixtures.eds("d"), false)), Map.of("d", Fixtures.cla("d", 1)));
        assertNotNull(later.cluster("d"));
    }

    @Test
    void aNewHostOfAClusterInUseIsNotPickedBeforeItsFirstCheckPassesAndIsAfter() {
        ClusterManager m = passing(2, false);
        UpstreamCluster c = m.cluster("c");
        m = assign(m, 3);
        assertSame(c, m.cluster("c")); // no warming again: an EDS update of a cluster in use
        assertTrue(host(c, 3).failedActiveHealthCheck());
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080"), picked(c));
        result(c, 3, Result.SUCCESS);
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"), picked(c));
    }

    @Test
    void aClusterWithChecksAndNoHostOrNoCheckedHostIsInUseAtOnce() {
        ClusterManager m = f.manager(checked(Fixtures.eds("c"), false), ClusterLoadAssignment.empty("c"));
        assertNotNull(m.cluster("c"));
    }

    @Test
    void aCheckAddedToAClusterInUseLeavesItsHostsHealthUntilTheirFirstCheckDecidesEitherWay() {
        ClusterManager m = f.manager(Fixtures.eds("c"), Fixtures.cla("c", 2));
        UpstreamCluster c = m.cluster("c");
        m = m.update(Map.of("c", checked(Fixtures.eds("c"), false)), Map.of("c", Fixtures.cla("c", 2)));
        assertSame(c, m.cluster("c")); // as Envoy's: the version in use serves while the new one warms
        assertFalse(host(c, 1).failedActiveHealthCheck());
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080"), picked(c));
        result(c, 1, Result.NETWORK); // the first check decides, below the unhealthy threshold
        result(c, 2, Result.SUCCESS);
        assertTrue(host(c, 1).failedActiveHealthCheck());
        assertEquals(Set.of("10.0.0.2:8080"), picked(c));
    }
}
