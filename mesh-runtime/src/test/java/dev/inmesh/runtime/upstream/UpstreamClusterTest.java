package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonLbConfig;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.DnsLookupFamily;
import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.lb.Xxhash;
import io.vertx.core.Future;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class UpstreamClusterTest {
    private final Fixtures f = new Fixtures();

    private static Map<String, Integer> picks(UpstreamCluster c, int n) {
        Map<String, Integer> counts = new HashMap<>();
        for (int i = 0; i < n; i++) {
            Host h = c.chooseHost(LbContext.NONE);
            counts.merge(h == null ? "none" : h.addressString(), 1, Integer::sum);
        }
        return counts;
    }

    @Test
    void aChangedClustersTlsIsCompiledBeforeItTakesTheClustersLockWhichPicksAndRebuildsOfHostsWaitFor() {
        Cluster plain = Fixtures.eds("c");
        UpstreamCluster c = f.manager(plain, Fixtures.cla("c", 2)).cluster("c");
        // a record made in code with a CA that is no PEM: its compilation warns, on the thread that compiles it
        UpstreamTlsContext tls = new UpstreamTlsContext("", null, null, "not a certificate", false, List.of(),
                List.of(), null, null);
        Cluster withTls = Cluster.builder("c", DiscoveryType.EDS).lbPolicy(LbPolicy.ROUND_ROBIN)
                .metadata(Metadata.EMPTY).tls(tls).build();
        List<Boolean> lockHeld = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(UpstreamCluster.class.getName());
        java.util.logging.Handler compiling = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                if (r.getMessage().contains("TLS not usable")) {
                    lockHeld.add(Thread.holdsLock(c));
                }
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        log.addHandler(compiling);
        try {
            c.apply(withTls, null, false);
        } finally {
            log.removeHandler(compiling);
        }
        assertEquals(List.of(false), lockHeld, "compiled once, without the cluster's lock");
        assertThrows(IllegalStateException.class, () -> c.tls(c.chooseHost(LbContext.NONE)),
                "the compiled TLS is in force");
    }

    @Test
    void unhealthyAndDrainingHostsAreNotPickedButUnknownAndDegradedAre() {
        ClusterLoadAssignment cla = Fixtures.cla("c", new LocalityLbEndpoints(null, List.of(
                Fixtures.endpoint(1, HealthStatus.UNHEALTHY), Fixtures.endpoint(2, HealthStatus.DRAINING),
                Fixtures.endpoint(3, HealthStatus.HEALTHY), Fixtures.endpoint(4, HealthStatus.UNKNOWN),
                Fixtures.endpoint(5, HealthStatus.DEGRADED), Fixtures.endpoint(6, HealthStatus.HEALTHY)), 1, 0));
        UpstreamCluster c = f.manager(Fixtures.eds("c"), cla).cluster("c");
        assertEquals(Set.of("10.0.0.3:8080", "10.0.0.4:8080", "10.0.0.5:8080", "10.0.0.6:8080"),
                picks(c, 400).keySet());
    }

    @Test
    void degradedHostsGetNoTrafficWhileHealthyOnesSuffice() {
        // 4 healthy of 5: 140 x 4/5 caps at 100, nothing is left for the degraded host
        ClusterLoadAssignment cla = Fixtures.cla("c", new LocalityLbEndpoints(null, List.of(
                Fixtures.endpoint(1, HealthStatus.HEALTHY), Fixtures.endpoint(2, HealthStatus.HEALTHY),
                Fixtures.endpoint(3, HealthStatus.HEALTHY), Fixtures.endpoint(4, HealthStatus.HEALTHY),
                Fixtures.endpoint(5, HealthStatus.DEGRADED)), 1, 0));
        UpstreamCluster c = f.manager(Fixtures.eds("c"), cla).cluster("c");
        assertEquals(0, c.prioritySet().degradedLoad(0));
        assertNull(picks(c, 1000).get("10.0.0.5:8080"));
        // 1 healthy and 1 degraded: 70% to the healthy host, 30% to the degraded one
        ClusterLoadAssignment half = Fixtures.cla("d", new LocalityLbEndpoints(null, List.of(
                Fixtures.endpoint(1, HealthStatus.HEALTHY), Fixtures.endpoint(2, HealthStatus.DEGRADED)), 1, 0));
        UpstreamCluster d = f.manager(Fixtures.eds("d"), half).cluster("d");
        assertEquals(30, d.prioritySet().degradedLoad(0));
        assertEquals(0.30, picks(d, 10_000).get("10.0.0.2:8080") / 10_000.0, 0.02);
    }

    @Test
    void hashingPoliciesWeighLocalitiesIntoTheirRingOrTable() {
        // locality a (weight 1) holds one host, b (weight 9) one, c (weight 0) one: keys go 10% / 90% / none
        ClusterLoadAssignment cla = Fixtures.cla("c",
                Fixtures.locality("a", 0, 1, 1, 2, HealthStatus.HEALTHY),
                Fixtures.locality("b", 0, 9, 2, 3, HealthStatus.HEALTHY),
                Fixtures.locality("c", 0, 0, 3, 4, HealthStatus.HEALTHY));
        for (LbPolicy policy : List.of(LbPolicy.RING_HASH, LbPolicy.MAGLEV)) {
            UpstreamCluster c = f.manager(Fixtures.eds("c", policy, null,
                    CommonLbConfig.DEFAULTS.withLocalityWeighted(true)), cla).cluster("c");
            Random keys = new Random(1);
            Map<String, Integer> counts = new HashMap<>();
            for (int i = 0; i < 10_000; i++) {
                counts.merge(c.chooseHost(LbContext.ofHash(keys.nextLong())).addressString(), 1, Integer::sum);
            }
            assertEquals(0.10, counts.get("10.0.0.1:8080") / 10_000.0, 0.03, policy + " " + counts);
            assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080"), counts.keySet(), policy.toString());
        }
    }

    @Test
    void aLocalityWeightedTableTakesEnvoysNormalisedWeights() {
        // locality a (weight 1): hosts of weight 1 and 1; b (weight 2): 2 and 9. Envoy gives a host its weight times
        // its locality's share, over its locality's host weights, in that order of floating point operations
        List<LbEndpoint> a = List.of(weighted(1, 1), weighted(2, 1));
        List<LbEndpoint> b = List.of(weighted(3, 2), weighted(4, 9));
        ClusterLoadAssignment cla = Fixtures.cla("c", new LocalityLbEndpoints(new Locality("r", "a", ""), a, 1, 0),
                new LocalityLbEndpoints(new Locality("r", "b", ""), b, 2, 0));
        LbConfig.Maglev config = new LbConfig.Maglev(17);
        Cluster cluster = Cluster.builder("c", DiscoveryType.EDS).lbPolicy(LbPolicy.MAGLEV).lbConfig(config)
                .circuitBreakers(CircuitBreakers.DEFAULTS)
                .commonLbConfig(CommonLbConfig.DEFAULTS.withLocalityWeighted(true)).metadata(Metadata.EMPTY).build();
        UpstreamCluster c = f.manager(cluster, cla).cluster("c");
        List<Host> hosts = c.prioritySet().hostSets().get(0).hosts();
        double[] envoys = {1 * (1 / 3.0) / 2, 1 * (1 / 3.0) / 2, 2 * (2 / 3.0) / 11, 9 * (2 / 3.0) / 11};
        var table = dev.inmesh.runtime.lb.LoadBalancer.of(LbPolicy.MAGLEV, config, new Random(1))
                .newSelector(hosts, envoys, null);
        for (int i = 0; i < 17; i++) {
            assertEquals(table.pick(true, i, 0), c.chooseHost(LbContext.ofHash(i)), "slot " + i);
        }
    }

    private static LbEndpoint weighted(int i, int weight) {
        return new LbEndpoint(new SocketAddress("10.0.0." + i, 8080), "", HealthStatus.HEALTHY, weight,
                Metadata.EMPTY);
    }

    @Test
    void hashingPoliciesKeepToHealthyHostsAsEnvoysDo() {
        // 1 healthy, 1 degraded: 30% of the load is the degraded hosts', but a ring is built from healthy hosts
        ClusterLoadAssignment cla = Fixtures.cla("c", new LocalityLbEndpoints(null, List.of(
                Fixtures.endpoint(1, HealthStatus.HEALTHY), Fixtures.endpoint(2, HealthStatus.DEGRADED)), 1, 0));
        UpstreamCluster c = f.manager(Fixtures.eds("c", LbPolicy.RING_HASH, null, null), cla).cluster("c");
        Random keys = new Random(1);
        for (int i = 0; i < 1000; i++) {
            assertEquals("10.0.0.1:8080", c.chooseHost(LbContext.ofHash(keys.nextLong())).addressString());
        }
    }

    @Test
    void aRingOfMinimumSizeZeroIsEmptyAndPicksNoHostAsEnvoys() {
        // Envoy's scale is ceil(lightest share x minimum_ring_size) over that share: 0 entries, and its empty ring
        // gives no host (503 no healthy upstream)
        ClusterLoadAssignment cla = Fixtures.cla("c", 3);
        for (long[] sizes : new long[][] {{0, 8_388_608}, {0, 0}}) {
            Cluster cluster = Cluster.builder("c", DiscoveryType.EDS).lbPolicy(LbPolicy.RING_HASH)
                    .lbConfig(new LbConfig.RingHash(sizes[0], sizes[1])).circuitBreakers(CircuitBreakers.DEFAULTS)
                    .metadata(Metadata.EMPTY).build();
            UpstreamCluster c = f.manager(cluster, cla).cluster("c");
            assertEquals(3, c.prioritySet().hostSets().get(0).hosts().size());
            assertEquals(Map.of("none", 20), picks(c, 20), java.util.Arrays.toString(sizes));
            assertNull(c.chooseHost(LbContext.ofHash(42)));
        }
        // a minimum of 1 still gives every host its entry
        Cluster one = Cluster.builder("c", DiscoveryType.EDS).lbPolicy(LbPolicy.RING_HASH)
                .lbConfig(new LbConfig.RingHash(1, 1024)).circuitBreakers(CircuitBreakers.DEFAULTS)
                .metadata(Metadata.EMPTY).build();
        assertEquals(3, picks(f.manager(one, cla).cluster("c"), 300).size());
    }

    @Test
    void drainingHostsDoNotCountSoTheyCannotPushAPriorityIntoPanic() {
        ClusterLoadAssignment cla = Fixtures.cla("c", new LocalityLbEndpoints(null, List.of(
                Fixtures.endpoint(1, HealthStatus.HEALTHY), Fixtures.endpoint(2, HealthStatus.DRAINING),
                Fixtures.endpoint(3, HealthStatus.DRAINING), Fixtures.endpoint(4, HealthStatus.DRAINING)), 1, 0));
        UpstreamCluster c = f.manager(Fixtures.eds("c"), cla).cluster("c");
        assertFalse(c.prioritySet().panic(0));
        assertEquals(Map.of("10.0.0.1:8080", 1000), picks(c, 1000));
    }

    @Test
    void aFirstPriorityAtHalfHealthTakesSeventyPercent() {
        ClusterLoadAssignment cla = Fixtures.cla("c",
                Fixtures.locality("a", 0, 1, 1, 6, HealthStatus.HEALTHY),
                Fixtures.locality("a", 0, 1, 6, 11, HealthStatus.UNHEALTHY),
                Fixtures.locality("b", 1, 1, 11, 21, HealthStatus.HEALTHY));
        UpstreamCluster c = f.manager(Fixtures.eds("c"), cla).cluster("c");
        assertEquals(70, c.prioritySet().load(0));
        int p0 = 0;
        int n = 20_000;
        for (int i = 0; i < n; i++) {
            if (c.chooseHost(LbContext.NONE).priority() == 0) {
                p0++;
            }
        }
        assertEquals(0.70, p0 / (double) n, 0.02);
    }

    /**
     * Priority 0: host 1 of weight {@code w1}, healthy, and host 2 of weight {@code w2}, not; priority 1, unless
     * {@code alone}: host 3, healthy.
     */
    private UpstreamCluster weightedPriorities(int w1, int w2, boolean weightedPriorityHealth, boolean alone) {
        List<LocalityLbEndpoints> groups = new java.util.ArrayList<>(List.of(new LocalityLbEndpoints(null, List.of(
                new LbEndpoint(new SocketAddress("10.0.0.1", 8080), "", HealthStatus.HEALTHY, w1, Metadata.EMPTY),
                new LbEndpoint(new SocketAddress("10.0.0.2", 8080), "", HealthStatus.UNHEALTHY, w2, Metadata.EMPTY)),
                1, 0)));
        if (!alone) {
            groups.add(Fixtures.locality("b", 1, 1, 3, 4, HealthStatus.HEALTHY));
        }
        return f.manager(Fixtures.eds("c"), new ClusterLoadAssignment("c", groups, 140, weightedPriorityHealth))
                .cluster("c");
    }

    @Test
    void underWeightedPriorityHealthAPrioritysAvailabilityIsTheHealthyShareOfItsHostsWeight() {
        // half the hosts are healthy: availability 70 either way round by count
        assertEquals(70, weightedPriorities(3, 1, false, false).prioritySet().load(0));
        assertEquals(70, weightedPriorities(1, 3, false, false).prioritySet().load(0));
        // by weight: 3 of 4 healthy is 105, capped at 100; 1 of 4 is 35
        assertEquals(100, weightedPriorities(3, 1, true, false).prioritySet().load(0));
        assertEquals(35, weightedPriorities(1, 3, true, false).prioritySet().load(0));
        // panic is still judged by count, as Envoy's: half the hosts healthy is not under 50%, though a quarter of
        // the weight is (the only priority, availability 35: under 100, so panic is judged)
        UpstreamCluster alone = weightedPriorities(1, 3, true, true);
        assertFalse(alone.prioritySet().panic(0));
        assertEquals(Map.of("10.0.0.1:8080", 20), picks(alone, 20));
    }

    @Test
    void underThePanicThresholdAllHostsArePicked() {
        ClusterLoadAssignment cla = Fixtures.cla("c",
                Fixtures.locality("a", 0, 1, 1, 2, HealthStatus.HEALTHY),
                Fixtures.locality("a", 0, 1, 2, 5, HealthStatus.UNHEALTHY));
        UpstreamCluster c = f.manager(Fixtures.eds("c"), cla).cluster("c");
        assertTrue(c.prioritySet().panic(0));
        assertEquals(4, picks(c, 400).size());
    }

    @Test
    void underFailTrafficOnPanicAPriorityInPanicGetsNoHostButRingHashAndMaglevStillPickAsEnvoys() {
        // one healthy host of four: 25% < 50%, panic
        ClusterLoadAssignment cla = Fixtures.cla("c",
                Fixtures.locality("a", 0, 1, 1, 2, HealthStatus.HEALTHY),
                Fixtures.locality("a", 0, 1, 2, 5, HealthStatus.UNHEALTHY));
        CommonLbConfig fail = CommonLbConfig.DEFAULTS.withFailTrafficOnPanic(true);
        for (LbPolicy policy : new LbPolicy[] {LbPolicy.ROUND_ROBIN, LbPolicy.LEAST_REQUEST, LbPolicy.RANDOM}) {
            UpstreamCluster c = f.manager(Fixtures.eds("c", policy, null, fail), cla).cluster("c");
            assertTrue(c.prioritySet().panic(0));
            assertEquals(Map.of("none", 100), picks(c, 100), policy.toString());
        }
        for (LbPolicy policy : new LbPolicy[] {LbPolicy.RING_HASH, LbPolicy.MAGLEV}) {
            UpstreamCluster c = f.manager(Fixtures.eds("c", policy, null, fail), cla).cluster("c");
            assertEquals(4, picks(c, 400).size(), policy.toString());
        }
        // out of panic (three healthy of four), requests go on as ever
        ClusterLoadAssignment healthier = Fixtures.cla("c",
                Fixtures.locality("a", 0, 1, 1, 4, HealthStatus.HEALTHY),
                Fixtures.locality("a", 0, 1, 4, 5, HealthStatus.UNHEALTHY));
        UpstreamCluster c = f.manager(Fixtures.eds("c", LbPolicy.ROUND_ROBIN, null, fail), healthier).cluster("c");
        assertEquals(Set.of("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"), picks(c, 30).keySet());
    }

    @Test
    void underFailTrafficOnPanicOnlyTheRequestsThatFallOnAPriorityInPanicFail() {
        // priority 0: one healthy of five (20%, availability 28); priority 1: one of two (50%, availability 70); the
        // total, 98, is under 100, so priority 0 is in panic and priority 1 not
        ClusterLoadAssignment cla = Fixtures.cla("c",
                Fixtures.locality("a", 0, 1, 1, 2, HealthStatus.HEALTHY),
                Fixtures.locality("a", 0, 1, 2, 6, HealthStatus.UNHEALTHY),
                Fixtures.locality("b", 1, 1, 6, 7, HealthStatus.HEALTHY),
                Fixtures.locality("b", 1, 1, 7, 8, HealthStatus.UNHEALTHY));
        UpstreamCluster c = f.manager(Fixtures.eds("c", LbPolicy.ROUND_ROBIN, null,
                CommonLbConfig.DEFAULTS.withFailTrafficOnPanic(true)), cla).cluster("c");
        assertTrue(c.prioritySet().panic(0));
        assertFalse(c.prioritySet().panic(1));
        Map<String, Integer> got = picks(c, 2000);
        assertEquals(Set.of("none", "10.0.0.6:8080"), got.keySet());
        // priority 0 takes 29% of the load (28 of 98, and the rounding's leftover), priority 1 the other 71%
        assertEquals(29, c.prioritySet().load(0));
        assertEquals(580, got.get("none"), 100);
    }

    private final io.micrometer.prometheusmetrics.PrometheusMeterRegistry reg =
            new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                    io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
    /** An environment whose clusters keep their statistics in {@link #reg}, as the mesh and the proxy wire them. */
    private final UpstreamEnvironment withStats = new UpstreamEnvironment(null, f.ticker, new Random(42), null,
            dev.inmesh.runtime.stats.MeshMetrics.create(reg, dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN)
                    ::upstream);

    /** Cluster {@code cluster}'s statistic {@code name} (after {@code envoy_cluster_}) in {@link #reg}. */
    private double stat(String name, String cluster) {
        return reg.get("envoy_cluster_" + name).tag("cluster_name", cluster).meter().measure().iterator().next()
                .getValue();
    }

    /** Cluster c's membership gauges (healthy, degraded, excluded, total) and membership_change. */
    private List<Double> membership() {
        return java.util.stream.Stream.of("healthy", "degraded", "excluded", "total", "change")
                .map(s -> stat("membership_" + s, "c")).toList();
    }

    @Test
    void theMembershipGaugesCountTheHostsByHealthAndMembershipChangeTheirComingsAndGoings() {
        List<LbEndpoint> eps = new java.util.ArrayList<>();
        HealthStatus[] health = {HealthStatus.HEALTHY, HealthStatus.UNKNOWN, HealthStatus.DEGRADED,
            HealthStatus.DRAINING, HealthStatus.UNHEALTHY};
        for (int i = 0; i < health.length; i++) {
            eps.add(Fixtures.endpoint(i + 1, health[i]));
        }
        ClusterLoadAssignment five = Fixtures.cla("c", new LocalityLbEndpoints(null, eps, 1, 0));
        ClusterManager m = ClusterManager.create(withStats, Map.of("c", Fixtures.eds("c")), Map.of("c", five));
        assertEquals(List.of(2.0, 1.0, 1.0, 5.0, 1.0), membership());
        m = m.update(Map.of("c", Fixtures.eds("c")), Map.of("c", five)); // the same hosts: no change
        assertEquals(1.0, stat("membership_change", "c"));
        m = m.update(Map.of("c", Fixtures.eds("c")), Map.of("c", Fixtures.cla("c", 3)));
        assertEquals(List.of(3.0, 0.0, 0.0, 3.0, 2.0), membership());
        m.update(Map.of(), Map.of()); // the cluster is gone, and its statistics with it, as Envoy's
        assertEquals(null, reg.find("envoy_cluster_membership_total").tag("cluster_name", "c").meter());
    }

    @Test
    void theCircuitBreakerGaugesExistWithTheClusterBeforeItsFirstRequestAsEnvoys() {
        ClusterManager.create(withStats, Map.of("c", Fixtures.eds("c")), Map.of("c", Fixtures.cla("c", 2)));
        for (String priority : List.of("default", "high")) {
            for (String gauge : List.of("cx_open", "rq_pending_open", "rq_open", "rq_retry_open")) {
                assertEquals(0.0, stat("circuit_breakers_" + priority + "_" + gauge, "c"), priority + " " + gauge);
            }
        }
    }

    @Test
    void picksInPanicCountInLbHealthyPanicAndPicksThatFindNoHostInUpstreamCxNoneHealthy() {
        UpstreamEnvironment env = withStats;
        ClusterLoadAssignment panicking = Fixtures.cla("p",
                Fixtures.locality("a", 0, 1, 1, 2, HealthStatus.HEALTHY),
                Fixtures.locality("a", 0, 1, 2, 5, HealthStatus.UNHEALTHY));
        Cluster failing = Cluster.builder("f", DiscoveryType.EDS).edsServiceName("p").lbPolicy(LbPolicy.ROUND_ROBIN)
                .commonLbConfig(CommonLbConfig.DEFAULTS.withFailTrafficOnPanic(true)).build();
        Cluster emptyNoPanic = Cluster.builder("z", DiscoveryType.EDS).edsServiceName("e")
                .lbPolicy(LbPolicy.ROUND_ROBIN).commonLbConfig(CommonLbConfig.DEFAULTS.withHealthyPanicThreshold(0))
                .build();
        ClusterManager m = ClusterManager.create(env, Map.of("p", Fixtures.eds("p"), "f", failing,
                "e", Fixtures.eds("e"), "z", emptyNoPanic), Map.of("p", panicking, "e", Fixtures.cla("e")));
        for (int i = 0; i < 10; i++) {
            assertNotNull(m.cluster("p").chooseHost(LbContext.NONE)); // in panic: any of its four hosts
            assertNull(m.cluster("f").chooseHost(LbContext.NONE));    // in panic, failing its traffic
            assertNull(m.cluster("e").chooseHost(LbContext.NONE));    // no host at all
            assertNull(m.cluster("z").chooseHost(LbContext.NONE));    // no host, and no panic
        }
        assertEquals(10.0, stat("lb_healthy_panic", "p"));
        assertEquals(0.0, stat("upstream_cx_none_healthy", "p"));
        assertEquals(10.0, stat("lb_healthy_panic", "f"));
        assertEquals(10.0, stat("upstream_cx_none_healthy", "f"));
        // as Envoy's: an empty priority 0 has no healthy host, so it is in panic under a threshold above 0
        assertEquals(10.0, stat("lb_healthy_panic", "e"));
        assertEquals(10.0, stat("upstream_cx_none_healthy", "e"));
        assertEquals(0.0, stat("lb_healthy_panic", "z"));
        assertEquals(10.0, stat("upstream_cx_none_healthy", "z"));
    }

    @Test
    void aZeroPanicThresholdLeavesNoHealthyUpstream() {
        ClusterLoadAssignment cla = Fixtures.cla("c", Fixtures.locality("a", 0, 1, 1, 5, HealthStatus.UNHEALTHY));
        Cluster cluster = Fixtures.eds("c", LbPolicy.ROUND_ROBIN, null,
                CommonLbConfig.DEFAULTS.withHealthyPanicThreshold(0));
        UpstreamCluster c = f.manager(cluster, cla).cluster("c");
        assertNull(c.chooseHost(LbContext.NONE));
    }

    @Test
    void localityWeightsScaleWithAvailability() {
        // zone a: weight 1, all healthy; zone b: weight 2, half healthy -> 2 x min(100, 1.4 x 50) = 140 vs 100
        ClusterLoadAssignment cla = Fixtures.cla("c", Fixtures.locality("a", 0, 1, 1, 5, HealthStatus.HEALTHY),
                new LocalityLbEndpoints(new dev.inmesh.api.config.endpoint.Locality("r", "b", ""), List.of(
                        Fixtures.endpoint(5, HealthStatus.HEALTHY), Fixtures.endpoint(6, HealthStatus.HEALTHY),
                        Fixtures.endpoint(7, HealthStatus.UNHEALTHY), Fixtures.endpoint(8, HealthStatus.UNHEALTHY)),
                        2, 0));
        Cluster cluster = Fixtures.eds("c", LbPolicy.ROUND_ROBIN, null,
                CommonLbConfig.DEFAULTS.withLocalityWeighted(true));
        UpstreamCluster c = f.manager(cluster, cla).cluster("c");
        int zoneB = 0;
        int n = 24_000;
        for (int i = 0; i < n; i++) {
            if (c.chooseHost(LbContext.NONE).locality().zone().equals("b")) {
                zoneB++;
            }
        }
        assertEquals(140.0 / 240, zoneB / (double) n, 0.001);
    }

    @Test
    void anEdsUpdateKeepsTheStateOfHostsThatStay() {
        ClusterManager m1 = f.manager(Fixtures.eds("c", LbPolicy.ROUND_ROBIN, OutlierDetection.DEFAULTS, null),
                Fixtures.cla("c", 10));
        UpstreamCluster c = m1.cluster("c");
        Host stays = c.chooseHost(LbContext.NONE);
        stays.stats().requestStarted();
        for (int i = 0; i < 5; i++) {
            stays.outlier().reportHttpStatus(503);
        }
        assertTrue(stays.outlier().ejected());
        assertTrue(c.circuitBreakers().tryStartRequest());

        ClusterLoadAssignment next = Fixtures.cla("c", Fixtures.locality("a", 0, 1, 1, 21, HealthStatus.HEALTHY));
        ClusterManager m2 = m1.update(Map.of("c", Fixtures.eds("c", LbPolicy.ROUND_ROBIN, OutlierDetection.DEFAULTS,
                null)), Map.of("c", next));
        UpstreamCluster c2 = m2.cluster("c");
        Host same = c2.hosts().stream().filter(h -> h.addressString().equals(stays.addressString())).findFirst()
                .orElseThrow();
        assertSame(stays, same);
        assertEquals(1, same.stats().activeRequests());
        assertTrue(same.outlier().ejected());
        assertEquals(1, c2.circuitBreakers().activeRequests());
        assertEquals(20, c2.hosts().size());
        for (int i = 0; i < 200; i++) {
            assertNotEquals(stays, c2.chooseHost(LbContext.NONE));
        }
    }

    @Test
    void roundRobinContinuesWhereItWasAcrossAnEdsUpdate() {
        ClusterManager m1 = f.manager(Fixtures.eds("c"), Fixtures.cla("c", 5));
        UpstreamCluster c = m1.cluster("c");
        List<Host> order = c.prioritySet().hostSets().get(0).hosts();
        int last = order.indexOf(c.chooseHost(LbContext.NONE));
        ClusterManager m2 = m1.update(Map.of("c", Fixtures.eds("c")), Map.of("c", Fixtures.cla("c", 5)));
        Host next = m2.cluster("c").chooseHost(LbContext.NONE);
        assertEquals((last + 1) % 5, order.indexOf(next));
    }

    @Test
    void aHostThatEdsAddsRampsUpOverTheSlowStartWindowWhileTheHostsThatStayKeepTheirAge() {
        Cluster slow = Cluster.builder("c", DiscoveryType.EDS).lbPolicy(LbPolicy.ROUND_ROBIN)
                .lbConfig(new LbConfig.RoundRobin(new LbConfig.SlowStart(Duration.ofSeconds(60), 1.0, 10.0)))
                .circuitBreakers(CircuitBreakers.DEFAULTS).metadata(Metadata.EMPTY).build();
        ClusterManager m = f.manager(slow, Fixtures.cla("c", 4));
        f.ticker.advance(Duration.ofMinutes(5));
        m = m.update(Map.of("c", slow), Map.of("c", Fixtures.cla("c", 5)));
        String young = "10.0.0.5:8080";
        // 0.1 of a weight against four hosts of weight 1
        assertEquals(100, picks(m.cluster("c"), 4_100).getOrDefault(young, 0), 2);
        f.ticker.advance(Duration.ofSeconds(30));
        // an update that changes nothing rebuilds the selectors; the young host is still 30 s old, not new again
        m = m.update(Map.of("c", slow), Map.of("c", Fixtures.cla("c", 5)));
        assertEquals(500, picks(m.cluster("c"), 4_500).getOrDefault(young, 0), 3);
        f.ticker.advance(Duration.ofSeconds(30));
        assertEquals(Map.of("10.0.0.1:8080", 1_000, "10.0.0.2:8080", 1_000, "10.0.0.3:8080", 1_000,
                "10.0.0.4:8080", 1_000, young, 1_000), picks(m.cluster("c"), 5_000));
    }

    @Test
    void aHostThatJoinsUnhealthyStartsItsSlowStartWhenItIsFirstFoundHealthy() {
        Cluster slow = Cluster.builder("c", DiscoveryType.EDS).lbPolicy(LbPolicy.LEAST_REQUEST)
                .lbConfig(new LbConfig.LeastRequest(2, 1.0, new LbConfig.SlowStart(Duration.ofSeconds(60), 1.0, 10.0)))
                .circuitBreakers(CircuitBreakers.DEFAULTS).metadata(Metadata.EMPTY).build();
        List<LbEndpoint> four = new java.util.ArrayList<>();
        for (int i = 1; i <= 4; i++) {
            four.add(Fixtures.endpoint(i, HealthStatus.HEALTHY));
        }
        List<LbEndpoint> sick = new java.util.ArrayList<>(four);
        sick.add(Fixtures.endpoint(5, HealthStatus.UNHEALTHY));
        List<LbEndpoint> well = new java.util.ArrayList<>(four);
        well.add(Fixtures.endpoint(5, HealthStatus.HEALTHY));
        ClusterManager m = f.manager(slow, Fixtures.cla("c", new LocalityLbEndpoints(null, sick, 1, 0)));
        f.ticker.advance(Duration.ofMinutes(5));
        m = m.update(Map.of("c", slow), Map.of("c", Fixtures.cla("c", new LocalityLbEndpoints(null, well, 1, 0))));
        // five minutes in the cluster, but healthy only now: it ramps from 0.1 of a weight
        assertEquals(100, picks(m.cluster("c"), 4_100).getOrDefault("10.0.0.5:8080", 0), 2);
    }

    @Test
    void aRetryPredicateSteersAwayFromPreviousHostsWithinItsAttempts() {
        UpstreamCluster c = f.manager(Fixtures.eds("c", LbPolicy.RANDOM, null, null), Fixtures.cla("c", 3))
                .cluster("c");
        Host first = c.chooseHost(LbContext.NONE);
        LbContext ctx = LbContext.NONE.withRejectHost(h -> h == first, 5);
        int again = 0;
        int n = 10_000;
        for (int i = 0; i < n; i++) {
            if (c.chooseHost(ctx) == first) {
                again++;
            }
        }
        // the last of five picks is used even when refused: (1/3)^5 = 0.4% of the time, as in Envoy
        assertEquals(1 / 243.0, again / (double) n, 0.002);
    }

    @Test
    void ringHashSendsTheSameHashToTheSameHost() {
        UpstreamCluster c = f.manager(Fixtures.eds("c", LbPolicy.RING_HASH, null, null), Fixtures.cla("c", 10))
                .cluster("c");
        LbContext ctx = LbContext.ofHash(Xxhash.hash64("user-7"));
        Host h = c.chooseHost(ctx);
        for (int i = 0; i < 50; i++) {
            assertSame(h, c.chooseHost(ctx));
        }
    }

    /** Which host key each of {@code n} request hashes goes to. */
    private static List<String> keysPicked(UpstreamCluster c, int n) {
        List<String> out = new java.util.ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(c.chooseHost(LbContext.ofHash(Xxhash.hash64("user-" + i))).hashKey());
        }
        return out;
    }

    /** Three hosts whose envoy.lb hash_key is k1, k2, k3, the first at {@code firstAddress}. */
    private static ClusterLoadAssignment hashKeyed(String firstAddress) {
        List<LbEndpoint> eps = new java.util.ArrayList<>();
        String[] addresses = {firstAddress, "10.0.0.2", "10.0.0.3"};
        for (int i = 0; i < 3; i++) {
            eps.add(new LbEndpoint(new SocketAddress(addresses[i], 8080), "", HealthStatus.HEALTHY, 1,
                    new Metadata(Map.of("envoy.lb", Map.of("hash_key", "k" + (i + 1))))));
        }
        return Fixtures.cla("c", new LocalityLbEndpoints(null, eps, 1, 0));
    }

    @Test
    void ringHashAndMaglevPlaceAHostByItsEndpointsHashKeySoThatItsReplacementAtAnotherAddressTakesItsKeys() {
        for (LbPolicy policy : new LbPolicy[] {LbPolicy.RING_HASH, LbPolicy.MAGLEV}) {
            Cluster cluster = Fixtures.eds("c", policy, null, null);
            ClusterManager m = f.manager(cluster, hashKeyed("10.0.0.1"));
            List<String> before = keysPicked(m.cluster("c"), 500);
            assertEquals(Set.of("k1", "k2", "k3"), Set.copyOf(before), policy.toString());
            // the pod behind k1 is replaced: a new address, the same hash key
            m = m.update(Map.of("c", cluster), Map.of("c", hashKeyed("10.0.0.9")));
            assertEquals(before, keysPicked(m.cluster("c"), 500), policy + ": every request keeps its host's key");
            assertEquals("10.0.0.9:8080", m.cluster("c").chooseHost(LbContext.ofHash(Xxhash.hash64(
                    "user-" + before.indexOf("k1")))).addressString(), policy.toString());
        }
    }

    @Test
    void underUseHostnameForHashingAStrictDnsHostIsPlacedByItsNameSoThatANewAddressKeepsItsRequests() {
        Map<String, List<String>> dns = new HashMap<>(Map.of("a.example", List.of("10.1.1.1"),
                "b.example", List.of("10.2.2.1"), "c.example", List.of("10.3.3.1")));
        UpstreamEnvironment env = new UpstreamEnvironment(null, new FakeTicker(), new Random(1),
                (name, family) -> Future.succeededFuture(dns.get(name)));
        List<LbEndpoint> targets = new java.util.ArrayList<>();
        for (String name : List.of("a.example", "b.example", "c.example")) {
            targets.add(new LbEndpoint(new SocketAddress(name, 80), "", null, 1, null));
        }
        Cluster cluster = Cluster.builder("dns", DiscoveryType.STRICT_DNS).lbPolicy(LbPolicy.RING_HASH)
                .commonLbConfig(CommonLbConfig.DEFAULTS.withUseHostnameForHashing(true))
                .loadAssignment(Fixtures.cla("dns", new LocalityLbEndpoints(null, targets, 1, 0))).build();
        UpstreamCluster c = ClusterManager.create(env, Map.of("dns", cluster), Map.of()).cluster("dns");
        List<String> before = keysPicked(c, 500);
        assertEquals(Set.of("a.example", "b.example", "c.example"), Set.copyOf(before));
        dns.put("a.example", List.of("10.1.1.7"));
        c.resolve();
        assertEquals(before, keysPicked(c, 500));
        assertTrue(addresses(c).contains("10.1.1.7:80"));
    }

    @Test
    void anOriginalDstClusterConnectsToTheOriginalDestinationAndForgetsUnusedHosts() {
        Cluster od = Cluster.builder("PassthroughCluster", DiscoveryType.ORIGINAL_DST)
                .lbPolicy(LbPolicy.CLUSTER_PROVIDED).circuitBreakers(CircuitBreakers.DEFAULTS)
                .cleanupInterval(Duration.ofSeconds(5)).metadata(Metadata.EMPTY).build();
        UpstreamCluster c = ClusterManager.create(f.env, Map.of(od.name(), od), Map.of()).cluster(od.name());
        SocketAddress dst = new SocketAddress("10.9.8.7", 9080);
        Host h = c.chooseHost(LbContext.ofOriginalDestination(dst));
        assertEquals(dst, h.address());
        // named as Envoy names it, the cluster's name and the address (its /clusters hostname::)
        assertEquals("PassthroughCluster10.9.8.7:9080", h.hostname());
        assertEquals("PassthroughCluster[fd00::7]:443",
                c.chooseHost(LbContext.ofOriginalDestination(new SocketAddress("fd00:0:0::7", 443))).hostname());
        assertSame(h, c.chooseHost(LbContext.ofOriginalDestination(dst)));
        assertNull(c.chooseHost(LbContext.NONE));
        c.cleanupOriginalDestinations(); // used since the last sweep: kept
        assertEquals(2, c.hosts().size());
        c.cleanupOriginalDestinations(); // unused for a whole interval: dropped
        assertEquals(0, c.hosts().size());
    }

    @Test
    void anOriginalDstClusterWithAnUpstreamPortOverrideConnectsToTheOriginalAddressOnThatPort() {
        // istiod's cluster for a headless Service whose port 80 targets the pods' 8080
        Cluster od = Cluster.builder("outbound|80||headless.default.svc.cluster.local", DiscoveryType.ORIGINAL_DST)
                .lbPolicy(LbPolicy.CLUSTER_PROVIDED)
                .lbConfig(new dev.inmesh.api.config.cluster.LbConfig.OriginalDst(8080))
                .circuitBreakers(CircuitBreakers.DEFAULTS).metadata(Metadata.EMPTY).build();
        UpstreamCluster c = ClusterManager.create(f.env, Map.of(od.name(), od), Map.of()).cluster(od.name());
        Host h = c.chooseHost(LbContext.ofOriginalDestination(new SocketAddress("10.9.8.7", 80)));
        assertEquals(new SocketAddress("10.9.8.7", 8080), h.address());
        assertSame(h, c.chooseHost(LbContext.ofOriginalDestination(new SocketAddress("10.9.8.7", 80))));
    }

    @Test
    void anOriginalDstClusterWithUseHttpHeaderTakesTheHeadersAddressElseTheConnectionsAndCountsAnInvalidOne() {
        Cluster od = Cluster.builder("od", DiscoveryType.ORIGINAL_DST).lbPolicy(LbPolicy.CLUSTER_PROVIDED)
                .lbConfig(new dev.inmesh.api.config.cluster.LbConfig.OriginalDst(0, "x-envoy-original-dst-host"))
                .circuitBreakers(CircuitBreakers.DEFAULTS).metadata(Metadata.EMPTY).build();
        UpstreamCluster c = ClusterManager.create(f.env, Map.of(od.name(), od), Map.of()).cluster(od.name());
        SocketAddress connection = new SocketAddress("10.0.0.1", 80);
        Map<String, String> headers = new java.util.HashMap<>();
        assertEquals(connection, c.requestDestination(headers::get, connection), "no header: the connection's");
        headers.put("x-envoy-original-dst-host", "10.9.8.7:9080");
        assertEquals(new SocketAddress("10.9.8.7", 9080), c.requestDestination(headers::get, connection));
        headers.put("x-envoy-original-dst-host", "[fd00::7]:9443");
        assertEquals(new SocketAddress("fd00::7", 9443), c.requestDestination(headers::get, connection));
        // as Envoy's parseInternetAddressAndPortNoThrow: the address in its printed form, the port as absl::SimpleAtoi
        // reads it (blanks around it, a +, any number of leading zeros)
        Map<String, SocketAddress> valid = Map.of("[FD00:0:0:0:0:0:0:7]:9443", new SocketAddress("fd00::7", 9443),
                "[::ffff:10.9.8.7]:80", new SocketAddress("::ffff:10.9.8.7", 80),
                "10.9.8.7:+80", new SocketAddress("10.9.8.7", 80),
                "10.9.8.7:0000000080", new SocketAddress("10.9.8.7", 80),
                "10.9.8.7: 80", new SocketAddress("10.9.8.7", 80),
                "10.9.8.7:0", new SocketAddress("10.9.8.7", 0));
        valid.forEach((value, address) -> {
            headers.put("x-envoy-original-dst-host", value);
            assertEquals(address, c.requestDestination(headers::get, connection), value);
        });
        // inet_pton refuses an IPv4 part with a leading zero; the port is decimal, 0 to 65535
        for (String invalid : new String[] {"reviews:9080", "10.9.8.7", "10.9.8.7:99999", "fd00::7:80", "10.9.8.7:x",
            "[10.9.8.7]:80", "127.0.0.03:25010", "010.9.8.7:80", "10.9.8.7:", "10.9.8.7:-1", "10.9.8.7:-0",
            "10.9.8.7:0x50", "10.9.8.7:65536", "[fd00::7]", "[fd00::7]9443", ""}) {
            headers.put("x-envoy-original-dst-host", invalid);
            assertEquals(connection, c.requestDestination(headers::get, connection), invalid);
        }
        // a cluster without use_http_header never reads it
        Cluster plain = Cluster.builder("plain", DiscoveryType.ORIGINAL_DST).lbPolicy(LbPolicy.CLUSTER_PROVIDED)
                .circuitBreakers(CircuitBreakers.DEFAULTS).metadata(Metadata.EMPTY).build();
        headers.put("x-envoy-original-dst-host", "10.9.8.7:9080");
        assertEquals(connection, ClusterManager.create(f.env, Map.of("plain", plain), Map.of()).cluster("plain")
                .requestDestination(headers::get, connection));
    }

    /**
     * As Envoy's detector watches every host its cluster adds: an ORIGINAL_DST host made for a destination is ejected
     * after consecutive 5xx (its statistics move), and its load balancer, ignoring health, still picks it.
     */
    @Test
    void outlierDetectionWatchesTheHostsAnOriginalDstClusterMakes() {
        Cluster od = Cluster.builder("pt", DiscoveryType.ORIGINAL_DST).lbPolicy(LbPolicy.CLUSTER_PROVIDED)
                .circuitBreakers(CircuitBreakers.DEFAULTS).outlierDetection(OutlierDetection.DEFAULTS)
                .metadata(Metadata.EMPTY).build();
        UpstreamCluster c = ClusterManager.create(f.env, Map.of(od.name(), od), Map.of()).cluster(od.name());
        List<Host> made = new java.util.ArrayList<>();
        for (int i = 1; i <= 10; i++) {
            made.add(c.chooseHost(LbContext.ofOriginalDestination(new SocketAddress("10.9.8." + i, 9080))));
        }
        Host bad = made.get(0);
        for (int i = 0; i < 5; i++) {
            bad.outlier().reportHttpStatus(503);
        }
        assertTrue(bad.outlier().ejected(), "ejected after five 5xx");
        assertEquals(1, c.outlierDetector().activeEjections());
        assertSame(bad, c.chooseHost(LbContext.ofOriginalDestination(new SocketAddress("10.9.8.1", 9080))));
    }

    @Test
    void aStrictDnsClusterUsesEveryAddressItsNamesResolveToInItsLookupFamily() {
        Map<String, List<String>> dns = Map.of("svc.example", List.of("10.1.1.1", "10.1.1.2"));
        List<DnsLookupFamily> families = new java.util.ArrayList<>();
        UpstreamEnvironment env = new UpstreamEnvironment(null, f.ticker, new Random(1), (name, family) -> {
            families.add(family);
            return Future.succeededFuture(dns.get(name));
        });
        ClusterLoadAssignment inline = Fixtures.cla("dns", new LocalityLbEndpoints(null, List.of(
                new LbEndpoint(new SocketAddress("svc.example", 80), "", null, 1, null)), 1, 0));
        Cluster cluster = Cluster.builder("dns", DiscoveryType.STRICT_DNS).lbPolicy(LbPolicy.ROUND_ROBIN)
                .loadAssignment(inline).dnsLookupFamily(DnsLookupFamily.V4_ONLY).build();
        UpstreamCluster c = ClusterManager.create(env, Map.of("dns", cluster), Map.of()).cluster("dns");
        assertEquals(Set.of("10.1.1.1:80", "10.1.1.2:80"), picks(c, 10).keySet());
        assertEquals(List.of(DnsLookupFamily.V4_ONLY), families);
    }

    @Test
    void aStaticClusterWithoutHostsHasNoUpstream() {
        Cluster blackHole = Cluster.builder("BlackHoleCluster", DiscoveryType.STATIC).build();
        UpstreamCluster c = ClusterManager.create(f.env, Map.of(blackHole.name(), blackHole), Map.of())
                .cluster("BlackHoleCluster");
        assertNotNull(c);
        assertNull(c.chooseHost(LbContext.NONE));
    }

    @Test
    void anEdsClusterWithoutAnAssignmentYetHasNoUpstream() {
        ClusterManager m = ClusterManager.create(f.env, Map.of("c", Fixtures.eds("c")), Map.of());
        assertNull(m.cluster("c").chooseHost(LbContext.NONE));
        assertNull(m.cluster("unknown"));
    }

    @Test
    void aClusterUpdateWithoutANewAssignmentKeepsItsHosts() {
        ClusterManager m1 = f.manager(Fixtures.eds("c"), Fixtures.cla("c", 3));
        Cluster changed = Fixtures.eds("c", LbPolicy.RANDOM, null, null);
        ClusterManager m2 = m1.update(Map.of("c", changed), Map.of());
        assertEquals(3, m2.cluster("c").hosts().size());
        assertNotNull(m2.cluster("c").chooseHost(LbContext.NONE));
    }

    @Test
    void aRemovedClusterIsGoneFromTheNextManager() {
        ClusterManager m1 = f.manager(Fixtures.eds("c"), Fixtures.cla("c", 3));
        ClusterManager m2 = m1.update(Map.of("d", Fixtures.eds("d")), Map.of("d", Fixtures.cla("d", 2)));
        assertNull(m2.cluster("c"));
        assertEquals(2, m2.cluster("d").hosts().size());
        m1.close(); // retired: does nothing
        assertNotNull(m2.cluster("d").chooseHost(LbContext.NONE));
    }

    @Test
    void aFailedDnsRefreshKeepsTheLastResolution() {
        Map<String, List<String>> dns = new HashMap<>(Map.of("svc.example", List.of("10.1.1.1")));
        UpstreamEnvironment env = new UpstreamEnvironment(null, f.ticker, new Random(1),
                (name, family) -> dns.containsKey(name) ? Future.succeededFuture(dns.get(name))
                        : Future.failedFuture("NXDOMAIN"));
        ClusterLoadAssignment inline = Fixtures.cla("dns", new LocalityLbEndpoints(null, List.of(
                new LbEndpoint(new SocketAddress("svc.example", 80), "", null, 1, null)), 1, 0));
        Cluster cluster = Cluster.builder("dns", DiscoveryType.STRICT_DNS).lbPolicy(LbPolicy.ROUND_ROBIN)
                .loadAssignment(inline).build();
        UpstreamCluster c = ClusterManager.create(env, Map.of("dns", cluster), Map.of()).cluster("dns");
        dns.clear();
        c.resolve();
        assertEquals("10.1.1.1:80", c.chooseHost(LbContext.NONE).addressString());
        dns.put("svc.example", List.of("10.1.1.2"));
        c.resolve();
        assertEquals("10.1.1.2:80", c.chooseHost(LbContext.NONE).addressString());
    }

    private static UpstreamCluster strictDns(Map<String, List<String>> dns, LbEndpoint... targets) {
        UpstreamEnvironment env = new UpstreamEnvironment(null, new FakeTicker(), new Random(1),
                (name, family) -> dns.containsKey(name) ? Future.succeededFuture(dns.get(name))
                        : Future.failedFuture("SERVFAIL"));
        ClusterLoadAssignment inline = Fixtures.cla("dns", new LocalityLbEndpoints(null, List.of(targets), 1, 0));
        Cluster cluster = Cluster.builder("dns", DiscoveryType.STRICT_DNS).lbPolicy(LbPolicy.ROUND_ROBIN)
                .loadAssignment(inline).build();
        return ClusterManager.create(env, Map.of("dns", cluster), Map.of()).cluster("dns");
    }

    private static Set<String> addresses(UpstreamCluster c) {
        Set<String> out = new java.util.TreeSet<>();
        c.hosts().forEach(h -> out.add(h.addressString()));
        return out;
    }

    @Test
    void eachDnsNameKeepsItsOwnLastResolutionWhileTheOthersRefresh() {
        Map<String, List<String>> dns = new HashMap<>(Map.of("b.example", List.of("10.2.2.1")));
        UpstreamCluster c = strictDns(dns, new LbEndpoint(new SocketAddress("a.example", 80), "", null, 1, null),
                new LbEndpoint(new SocketAddress("b.example", 80), "", null, 1, null));
        // a.example failed on the first lookup: b.example's hosts are there alone
        assertEquals(Set.of("10.2.2.1:80"), addresses(c));
        dns.put("a.example", List.of("10.1.1.1"));
        dns.remove("b.example");
        c.resolve(); // a.example resolves now, b.example fails: a's host joins, b keeps its last one
        assertEquals(Set.of("10.1.1.1:80", "10.2.2.1:80"), addresses(c));
        dns.remove("a.example");
        dns.put("b.example", List.of("10.2.2.2"));
        c.resolve(); // a fails, b moves: b's new address replaces its old one, a keeps its host
        assertEquals(Set.of("10.1.1.1:80", "10.2.2.2:80"), addresses(c));
        dns.put("a.example", List.of());
        c.resolve(); // a resolves to no address at all: its host goes
        assertEquals(Set.of("10.2.2.2:80"), addresses(c));
    }

    /** A resolver whose every lookup finds the next address (10.1.1.N, N counted in {@code lookups}), with a TTL. */
    private static DnsResolver counting(java.util.concurrent.atomic.AtomicInteger lookups, long ttlSeconds) {
        return new DnsResolver() {
            @Override
            public Future<List<String>> resolve(String name, DnsLookupFamily family) {
                return resolveWithTtl(name, family).map(DnsResolver.Answer::addresses);
            }

            @Override
            public Future<DnsResolver.Answer> resolveWithTtl(String name, DnsLookupFamily family) {
                return Future.succeededFuture(new DnsResolver.Answer(
                        List.of("10.1.1." + lookups.incrementAndGet()), ttlSeconds));
            }
        };
    }

    /** A STRICT_DNS cluster of {@code svc.example:80} refreshed every minute, respecting its records' TTLs or not. */
    private static Cluster minutelyDns(boolean respectDnsTtl) {
        ClusterLoadAssignment inline = Fixtures.cla("dns", new LocalityLbEndpoints(null, List.of(
                new LbEndpoint(new SocketAddress("svc.example", 80), "", null, 1, null)), 1, 0));
        return Cluster.builder("dns", DiscoveryType.STRICT_DNS).lbPolicy(LbPolicy.ROUND_ROBIN).loadAssignment(inline)
                .dnsRefreshRate(Duration.ofMinutes(1)).respectDnsTtl(respectDnsTtl).build();
    }

    @Test
    void aClusterThatRespectsDnsTtlResolvesAgainWhenItsRecordsExpireRatherThanAtItsRefreshRate() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            // each lookup finds the next address, with a TTL of 1 s
            java.util.concurrent.atomic.AtomicInteger lookups = new java.util.concurrent.atomic.AtomicInteger();
            DnsResolver oneSecond = counting(lookups, 1);
            UpstreamEnvironment env = new UpstreamEnvironment(vertx, null, new Random(1), oneSecond);
            ClusterManager respecting = ClusterManager.create(env, Map.of("dns", minutelyDns(true)), Map.of());
            long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
            while (lookups.get() < 3 && System.nanoTime() < end) {
                Thread.sleep(20);
            }
            assertTrue(lookups.get() >= 3, "looked up again as each TTL ran out: " + lookups.get());
            // a lookup is counted before the cluster takes its answer: wait for the hosts to follow
            while (!addresses(respecting.cluster("dns")).equals(Set.of("10.1.1." + lookups.get() + ":80"))
                    && System.nanoTime() < end) {
                Thread.sleep(20);
            }
            assertEquals(Set.of("10.1.1." + lookups.get() + ":80"), addresses(respecting.cluster("dns")));
            respecting.close();

            // the same answers without respect_dns_ttl: once, then not before the minute is up
            lookups.set(0);
            ClusterManager minutely = ClusterManager.create(env, Map.of("dns", minutelyDns(false)), Map.of());
            Thread.sleep(2_500);
            assertEquals(1, lookups.get());
            assertEquals(Set.of("10.1.1.1:80"), addresses(minutely.cluster("dns")));
            minutely.close();
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    /** {@link #minutelyDns} with a refresh rate and a {@code dns_jitter}. */
    private static Cluster dnsWithJitter(boolean respectDnsTtl, Duration refresh, Duration jitter) {
        Cluster m = minutelyDns(respectDnsTtl);
        return Cluster.builder(m.name(), m.type()).lbPolicy(m.lbPolicy()).loadAssignment(m.loadAssignment())
                .dnsRefreshRate(refresh).respectDnsTtl(respectDnsTtl).dnsJitter(jitter).build();
    }

    @Test
    void aDnsJitterDelaysEachRefreshByARandomTimeBelowItAndNoneWithoutOne() {
        Cluster c = dnsWithJitter(false, Duration.ofSeconds(5), Duration.ofMillis(100));
        Random seeded = new Random(7);
        long min = Long.MAX_VALUE;
        long max = Long.MIN_VALUE;
        for (int i = 0; i < 1000; i++) {
            long next = UpstreamCluster.nextResolveMillis(c, List.of()) + UpstreamCluster.jitterMillis(c, seeded);
            min = Math.min(min, next);
            max = Math.max(max, next);
        }
        assertTrue(min >= 5_000 && min < 5_010, "the refresh rate plus a draw from [0, 100) ms: min " + min);
        assertTrue(max > 5_090 && max < 5_100, "the refresh rate plus a draw from [0, 100) ms: max " + max);
        assertEquals(0, UpstreamCluster.jitterMillis(minutelyDns(false), seeded));
        // as Envoy, only a completed resolution's refresh is jittered: after every lookup failed, the refresh rate
        for (int i = 0; i < 100; i++) {
            assertEquals(5_000, UpstreamCluster.nextDelayMillis(c, List.of(Future.failedFuture("SERVFAIL")), seeded));
        }
        Future<DnsResolver.Answer> found = Future.succeededFuture(new DnsResolver.Answer(List.of("10.1.1.1"), 0));
        long withJitter = 0;
        for (int i = 0; i < 100; i++) {
            long d = UpstreamCluster.nextDelayMillis(c, List.of(Future.failedFuture("SERVFAIL"), found), seeded);
            assertTrue(d >= 5_000 && d < 5_100, "the refresh rate plus the jitter: " + d);
            withJitter = Math.max(withJitter, d);
        }
        assertTrue(withJitter > 5_050, "some draw above half the jitter: " + withJitter);
        // without respect_dns_ttl the records' TTLs do not set the next refresh
        Future<DnsResolver.Answer> oneSecond = Future.succeededFuture(new DnsResolver.Answer(List.of("10.1.1.1"), 1));
        assertEquals(5_000, UpstreamCluster.nextResolveMillis(c, List.of(oneSecond)));
    }

    @Test
    void aClusterWithIstiodsDnsJitterKeepsRefreshingAtItsRateWithTheJitterAdded() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            java.util.concurrent.atomic.AtomicInteger lookups = new java.util.concurrent.atomic.AtomicInteger();
            UpstreamEnvironment env = new UpstreamEnvironment(vertx, null, new Random(3), counting(lookups, 3600));
            // every 200 ms plus up to 100 ms: about 9 lookups in 2.2 s, fewer on a slow machine (a chain of timers
            // that stopped after one lookup would make 1)
            ClusterManager cm = ClusterManager.create(env, Map.of("dns",
                    dnsWithJitter(false, Duration.ofMillis(200), Duration.ofMillis(100))), Map.of());
            Thread.sleep(2_200);
            int n = lookups.get();
            assertEquals(1, addresses(cm.cluster("dns")).size());
            cm.close();
            assertTrue(n >= 4 && n <= 12, "lookups in 2.2 s: " + n);
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void aDnsFailureRefreshRateBacksOffExponentiallyAfterFailedResolutionsAndASuccessGoesBackToTheRefreshRate()
            throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            List<Long> at = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
            java.util.concurrent.atomic.AtomicInteger lookups = new java.util.concurrent.atomic.AtomicInteger();
            DnsResolver failingSixTimes = new DnsResolver() {
                @Override
                public Future<List<String>> resolve(String name, DnsLookupFamily family) {
                    return resolveWithTtl(name, family).map(DnsResolver.Answer::addresses);
                }

                @Override
                public Future<DnsResolver.Answer> resolveWithTtl(String name, DnsLookupFamily family) {
                    at.add(System.nanoTime());
                    return lookups.incrementAndGet() <= 6 ? Future.failedFuture("SERVFAIL")
                            : Future.succeededFuture(new DnsResolver.Answer(List.of("10.1.1.1"), 0));
                }
            };
            // every draw at the top of its range, so that each wait is its interval less 1 ms
            java.util.random.RandomGenerator top = new java.util.random.RandomGenerator() {
                @Override
                public long nextLong() {
                    return Long.MAX_VALUE;
                }

                @Override
                public long nextLong(long bound) {
                    return bound - 1;
                }
            };
            UpstreamEnvironment env = new UpstreamEnvironment(vertx, null, top, failingSixTimes);
            // refresh once a minute; after a failure 20 ms, doubled with each one after it, up to 160 ms
            Cluster c = minutelyDns(false).toBuilder()
                    .dnsFailureRefreshRate(new Cluster.RefreshRate(Duration.ofMillis(20), Duration.ofMillis(160)))
                    .build();
            ClusterManager cm = ClusterManager.create(env, Map.of("dns", c), Map.of());
            long end = System.nanoTime() + 10_000_000_000L;
            while (addresses(cm.cluster("dns")).isEmpty() && System.nanoTime() < end) {
                Thread.sleep(10);
            }
            assertEquals(Set.of("10.1.1.1:80"), addresses(cm.cluster("dns")), "resolved after six failures");
            // the success starts the refresh rate again: no lookup for the next half second
            Thread.sleep(500);
            cm.close();
            assertEquals(7, lookups.get());
            // Envoy's JitteredExponentialBackOffStrategy: intervals 20, 40, 80, then 160 ms (doubling 80 would pass
            // half the max), kept at the max
            long[] waits = {19, 39, 79, 159, 159, 159};
            for (int i = 0; i < waits.length; i++) {
                long gap = (at.get(i + 1) - at.get(i)) / 1_000_000;
                assertTrue(gap >= waits[i] - 2, "wait " + (i + 1) + " after a failure: " + gap + " ms");
            }
            long lastTwo = (at.get(6) - at.get(4)) / 1_000_000;
            assertTrue(lastTwo < 2 * 319, "the interval stops growing at the max: " + lastTwo + " ms");
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void aRespectedTtlIsTheSmallestOfTheNamesAnswersAndNoTtlLeavesTheRefreshRate() {
        Cluster c = minutelyDns(true);
        var answer = (java.util.function.LongFunction<Future<DnsResolver.Answer>>) ttl -> Future.succeededFuture(
                new DnsResolver.Answer(List.of("10.1.1.1"), ttl));
        assertEquals(30_000, UpstreamCluster.nextResolveMillis(c, List.of(answer.apply(300), answer.apply(30),
                answer.apply(0), Future.failedFuture("SERVFAIL"))));
        assertEquals(60_000, UpstreamCluster.nextResolveMillis(c, List.of(answer.apply(0))));
        assertEquals(60_000, UpstreamCluster.nextResolveMillis(c, List.of(Future.failedFuture("SERVFAIL"))));
    }

    @Test
    void aDnsHostIsNamedByItsEndpointsHostnameElseByTheNameResolved() {
        Map<String, List<String>> dns = Map.of("a.example", List.of("10.1.1.1"), "b.example", List.of("10.2.2.1"));
        UpstreamCluster c = strictDns(dns,
                new LbEndpoint(new SocketAddress("a.example", 80), "api.example.com", null, 1, null),
                new LbEndpoint(new SocketAddress("b.example", 80), "", null, 1, null));
        Map<String, String> names = new HashMap<>();
        c.hosts().forEach(h -> names.put(h.addressString(), h.hostname()));
        assertEquals(Map.of("10.1.1.1:80", "api.example.com", "10.2.2.1:80", "b.example"), names);
    }

    @Test
    void aLogicalDnsClusterHasOneHostTheFirstAddressItsNameResolvesTo() {
        Map<String, List<String>> dns = new HashMap<>(Map.of("svc.example", List.of("10.1.1.1", "10.1.1.2")));
        UpstreamCluster c = oneName(DiscoveryType.LOGICAL_DNS, dns);
        assertEquals(Set.of("10.1.1.1:443"), addresses(c));
        assertEquals("svc.example", c.chooseHost(LbContext.NONE).hostname());
        dns.put("svc.example", List.of("10.1.1.3", "10.1.1.1"));
        c.resolve(); // the answer's order decides: the first address now is another
        assertEquals(Set.of("10.1.1.3:443"), addresses(c));
        dns.clear();
        c.resolve(); // a failed lookup keeps the host
        assertEquals(Set.of("10.1.1.3:443"), addresses(c));
    }

    /** A cluster of type {@code type} with the one endpoint {@code svc.example:443}, resolved by {@code dns}. */
    private UpstreamCluster oneName(DiscoveryType type, Map<String, List<String>> dns) {
        UpstreamEnvironment env = new UpstreamEnvironment(null, f.ticker, new Random(1),
                (name, family) -> dns.containsKey(name) ? Future.succeededFuture(dns.get(name))
                        : Future.failedFuture("SERVFAIL"));
        ClusterLoadAssignment inline = Fixtures.cla("dns", new LocalityLbEndpoints(null, List.of(
                new LbEndpoint(new SocketAddress("svc.example", 443), "", null, 1, null)), 1, 0));
        Cluster cluster = Cluster.builder("dns", type).lbPolicy(LbPolicy.ROUND_ROBIN).loadAssignment(inline).build();
        return ClusterManager.create(env, Map.of("dns", cluster), Map.of()).cluster("dns");
    }

    @Test
    void aLogicalDnsClusterKeepsItsHostWhenItsNameNoLongerResolvesWhereAStrictDnsClusterDropsIt() {
        Map<String, List<String>> dns = new HashMap<>(Map.of("svc.example", List.of("10.1.1.1")));
        UpstreamCluster logical = oneName(DiscoveryType.LOGICAL_DNS, dns);
        UpstreamCluster strict = oneName(DiscoveryType.STRICT_DNS, dns);
        // the name is gone (NXDOMAIN) or has no address of the family: an answer with no address
        dns.put("svc.example", List.of());
        logical.resolve();
        strict.resolve();
        // as Envoy's logical DNS cluster, which takes only an answer with an address: its host stays
        assertEquals(Set.of("10.1.1.1:443"), addresses(logical));
        assertEquals("10.1.1.1:443", logical.chooseHost(LbContext.NONE).addressString());
        // a strict DNS cluster follows the answer to no host
        assertEquals(Set.of(), addresses(strict));
        dns.put("svc.example", List.of("10.1.1.2"));
        logical.resolve();
        assertEquals(Set.of("10.1.1.2:443"), addresses(logical));
        // the first answer with no address leaves a new logical cluster without a host, as Envoy's has none yet
        dns.put("svc.example", List.of());
        assertEquals(Set.of(), addresses(oneName(DiscoveryType.LOGICAL_DNS, dns)));
    }

    @Test
    void aLogicalDnsClustersEmptyAnswerIsAFailureWhoseNextRefreshHasNoJitter() {
        ClusterLoadAssignment inline = Fixtures.cla("dns", new LocalityLbEndpoints(null, List.of(
                new LbEndpoint(new SocketAddress("svc.example", 443), "", null, 1, null)), 1, 0));
        Cluster logical = Cluster.builder("dns", DiscoveryType.LOGICAL_DNS).lbPolicy(LbPolicy.ROUND_ROBIN)
                .loadAssignment(inline).dnsRefreshRate(Duration.ofSeconds(5)).dnsJitter(Duration.ofSeconds(1))
                .build();
        Future<DnsResolver.Answer> none = Future.succeededFuture(new DnsResolver.Answer(List.of(), 0));
        Random seeded = new Random(7);
        for (int i = 0; i < 100; i++) {
            assertEquals(5_000, UpstreamCluster.nextDelayMillis(logical, List.of(none), seeded));
        }
        Future<DnsResolver.Answer> found = Future.succeededFuture(new DnsResolver.Answer(List.of("10.1.1.1"), 0));
        long max = 0;
        for (int i = 0; i < 100; i++) {
            max = Math.max(max, UpstreamCluster.nextDelayMillis(logical, List.of(found), seeded));
        }
        assertTrue(max > 5_500 && max < 6_000, "the refresh rate plus the jitter: " + max);
    }

    /** Cluster {@code cluster}'s update statistics, attempt, success, failure, no_rebuild and empty. */
    private List<Double> updates(String cluster) {
        return java.util.stream.Stream.of("attempt", "success", "failure", "no_rebuild", "empty")
                .map(s -> stat("update_" + s, cluster)).toList();
    }

    @Test
    void eachLookupOfADnsClustersNamesCountsInItsUpdateStatisticsAsEnvoys() {
        Map<String, List<String>> dns = new HashMap<>(Map.of("a.example", List.of("10.1.1.1"),
                "b.example", List.of("10.2.2.1"), "svc.example", List.of("10.3.3.1", "10.3.3.2")));
        UpstreamEnvironment env = new UpstreamEnvironment(null, f.ticker, new Random(1),
                (name, family) -> dns.containsKey(name) ? Future.succeededFuture(dns.get(name))
                        : Future.failedFuture("SERVFAIL"), withStats.stats());
        Cluster strict = Cluster.builder("s", DiscoveryType.STRICT_DNS).lbPolicy(LbPolicy.ROUND_ROBIN)
                .loadAssignment(Fixtures.cla("s", new LocalityLbEndpoints(null, List.of(
                        new LbEndpoint(new SocketAddress("a.example", 80), "", null, 1, null),
                        new LbEndpoint(new SocketAddress("b.example", 80), "", null, 1, null)), 1, 0))).build();
        Cluster logical = Cluster.builder("l", DiscoveryType.LOGICAL_DNS).lbPolicy(LbPolicy.ROUND_ROBIN)
                .loadAssignment(Fixtures.cla("l", new LocalityLbEndpoints(null, List.of(
                        new LbEndpoint(new SocketAddress("svc.example", 80), "", null, 1, null)), 1, 0))).build();
        ClusterManager m = ClusterManager.create(env, Map.of("s", strict, "l", logical, "e", Fixtures.eds("e")),
                Map.of("e", Fixtures.cla("e", 2)));
        UpstreamCluster s = m.cluster("s");
        UpstreamCluster l = m.cluster("l");
        // a STRICT_DNS cluster: each name's lookup is an attempt; an answer a success, one that leaves the name's
        // hosts as they were a success without a rebuild; a failure a failure
        assertEquals(List.of(2.0, 2.0, 0.0, 0.0, 0.0), updates("s"));
        s.resolve();
        assertEquals(List.of(4.0, 4.0, 0.0, 2.0, 0.0), updates("s"));
        dns.remove("a.example");
        dns.put("b.example", List.of());
        s.resolve(); // a fails (its host stays), b answers no address (its host goes: a rebuild)
        assertEquals(List.of(6.0, 5.0, 1.0, 2.0, 0.0), updates("s"));
        s.resolve();
        assertEquals(List.of(8.0, 6.0, 2.0, 3.0, 0.0), updates("s"));

        // a LOGICAL_DNS cluster: a success with an address; the same answer again, no rebuild
        assertEquals(List.of(1.0, 1.0, 0.0, 0.0, 0.0), updates("l"));
        l.resolve();
        assertEquals(List.of(2.0, 2.0, 0.0, 1.0, 0.0), updates("l"));
        dns.put("svc.example", List.of("10.3.3.1")); // the answer's list moved, its first address did not
        l.resolve();
        assertEquals(List.of(3.0, 3.0, 0.0, 1.0, 0.0), updates("l"));
        dns.put("svc.example", List.of()); // an answer without address is a failure for it
        l.resolve();
        dns.remove("svc.example");
        l.resolve();
        assertEquals(List.of(5.0, 3.0, 2.0, 1.0, 0.0), updates("l"));
        assertEquals(Set.of("10.3.3.1:80"), addresses(l));

        // an EDS cluster counts none of them here
        assertNull(reg.find("envoy_cluster_update_attempt").tag("cluster_name", "e").meter());
    }

    @Test
    void aLogicalDnsClusterTakesOneEndpointInOneLocalityAsEnvoyRequires() {
        LbEndpoint a = new LbEndpoint(new SocketAddress("a.example", 80), "", null, 1, null);
        LbEndpoint b = new LbEndpoint(new SocketAddress("b.example", 80), "", null, 1, null);
        ClusterLoadAssignment two = Fixtures.cla("dns", new LocalityLbEndpoints(null, List.of(a, b), 1, 0));
        var e = assertThrows(IllegalArgumentException.class,
                () -> Cluster.builder("dns", DiscoveryType.LOGICAL_DNS).lbPolicy(LbPolicy.ROUND_ROBIN)
                        .loadAssignment(two).build());
        assertTrue(e.getMessage().contains("a single locality with a single endpoint"), e.getMessage());
    }

    @Test
    void theClusterRecordRefusesWhatTheXdsParserRefusesByName() {
        LbEndpoint a = new LbEndpoint(new SocketAddress("10.0.0.1", 80), "", null, 1, null);
        ClusterLoadAssignment one = Fixtures.cla("od", new LocalityLbEndpoints(null, List.of(a), 1, 0));
        var hosts = assertThrows(IllegalArgumentException.class, () -> Cluster.builder("od", DiscoveryType.ORIGINAL_DST)
                .lbPolicy(LbPolicy.CLUSTER_PROVIDED).loadAssignment(one).build());
        assertTrue(hosts.getMessage().startsWith("load_assignment: "), hosts.getMessage());
        var port = assertThrows(IllegalArgumentException.class, () -> Cluster.builder("s", DiscoveryType.STATIC)
                .loadAssignment(one).upstreamBindAddress(new SocketAddress("127.0.0.6", 15001)).build());
        assertTrue(port.getMessage().startsWith("upstream_bind_config.source_address.port_value: 15001 "),
                port.getMessage());
        // what they take: no hosts, and a source address on any port
        Cluster.builder("od", DiscoveryType.ORIGINAL_DST).lbPolicy(LbPolicy.CLUSTER_PROVIDED).build();
        Cluster.builder("s", DiscoveryType.STATIC).loadAssignment(one)
                .upstreamBindAddress(new SocketAddress("127.0.0.6", 0)).build();
    }
}
