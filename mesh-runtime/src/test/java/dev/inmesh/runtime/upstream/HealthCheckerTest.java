package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.HealthCheck;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.HealthChecker.Result;
import dev.inmesh.runtime.upstream.HealthChecker.Transition;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.MultiMap;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** Active health checks' state machine and schedule, driven by hand without Vert.x. */
class HealthCheckerTest {
    private final Fixtures f = new Fixtures();

    /** Envoy's example: interval 10 s, thresholds 3 unhealthy and 2 healthy, the other intervals apart. */
    static HealthCheck check(int unhealthyThreshold, int healthyThreshold) {
        return new HealthCheck(Duration.ofSeconds(1), Duration.ofSeconds(10), null, 0, null, unhealthyThreshold,
                healthyThreshold, Duration.ofSeconds(60), Duration.ofSeconds(70), Duration.ofSeconds(20),
                Duration.ofSeconds(5), Duration.ofSeconds(2), true, new HealthCheck.Tcp());
    }

    static Cluster withHealthCheck(Cluster c, HealthCheck hc) {
        return withHealthCheck(c, hc, false);
    }

    /** {@code c} with check {@code hc}, and Envoy's {@code ignore_health_on_host_removal} or not. */
    static Cluster withHealthCheck(Cluster c, HealthCheck hc, boolean ignoreHealthOnHostRemoval) {
        return c.toBuilder().healthCheck(hc).ignoreHealthOnHostRemoval(ignoreHealthOnHostRemoval).build();
    }

    private ClusterManager manager(HealthCheck hc, ClusterLoadAssignment cla) {
        return f.manager(withHealthCheck(Fixtures.eds("c"), hc), cla);
    }

    private static List<Host> hosts(UpstreamCluster c) {
        return new ArrayList<>(c.hosts());
    }

    private static Set<String> picked(UpstreamCluster c) {
        Set<String> out = new HashSet<>();
        for (int i = 0; i < 100; i++) {
            out.add(c.chooseHost(LbContext.NONE).addressString());
        }
        return out;
    }

    private static Host host(UpstreamCluster c, int i) {
        return c.hosts().stream().filter(h -> h.addressString().equals("10.0.0." + i + ":8080")).findFirst()
                .orElseThrow();
    }

    private static long result(UpstreamCluster c, Host h, Result r) {
        return c.healthCheckSession(h).onResult(r);
    }

    @Test
    void aHostOfACheckedClusterIsUnhealthyUntilItsFirstCheckWhoseSuccessMakesItHealthyAtOnce() {
        UpstreamCluster c = manager(check(3, 2), Fixtures.cla("c", 4)).clusters().get("c");
        List<Host> hosts = hosts(c);
        assertTrue(hosts.stream().allMatch(Host::failedActiveHealthCheck));
        assertTrue(c.prioritySet().hostSets().get(0).healthyHosts().isEmpty());
        for (Host h : hosts.subList(0, 3)) {
            result(c, h, Result.SUCCESS); // the first result decides, whatever healthy_threshold says
        }
        assertEquals(3, c.prioritySet().hostSets().get(0).healthyHosts().size());
        assertFalse(picked(c).contains(hosts.get(3).addressString()));
    }

    @Test
    void zeroThresholdsAreCountsNeverReachedAsInEnvoy() {
        UpstreamCluster c = manager(check(0, 0), Fixtures.cla("c", 1)).clusters().get("c");
        Host h = hosts(c).get(0);
        result(c, h, Result.SUCCESS); // the first check still decides at once
        assertFalse(h.failedActiveHealthCheck());
        for (int i = 0; i < 10; i++) {
            result(c, h, i % 2 == 0 ? Result.NETWORK : Result.RETRIABLE);
        }
        assertFalse(h.failedActiveHealthCheck(), "unhealthy_threshold 0: counted failures never fail the host");
        result(c, h, Result.FAILED); // one that fails at once still does
        assertTrue(h.failedActiveHealthCheck());
        for (int i = 0; i < 10; i++) {
            result(c, h, Result.SUCCESS);
        }
        assertTrue(h.failedActiveHealthCheck(), "healthy_threshold 0: past its first check, a host never returns");
    }

    @Test
    void aSubMillisecondIntervalWaitsOneMillisecondAsEnvoysTakesAtLeastOne() {
        HealthCheck hc = new HealthCheck(Duration.ofNanos(500_000), Duration.ofNanos(100_000), null, 0, null, 1, 1,
                null, null, null, null, null, true, new HealthCheck.Tcp());
        assertEquals(1, HealthChecker.intervalMillis(hc, true, true, Transition.UNCHANGED, new Random(1)));
        assertEquals(1, HealthChecker.intervalMillis(hc, true, false, Transition.CHANGE_PENDING, new Random(1)));
    }

    @Test
    void networkFailuresCountTowardTheUnhealthyThresholdAndSuccessesTowardTheHealthyOne() {
        UpstreamCluster c = manager(check(3, 2), Fixtures.cla("c", 2)).clusters().get("c");
        Host h = hosts(c).get(0);
        result(c, hosts(c).get(1), Result.SUCCESS);
        result(c, h, Result.SUCCESS);
        result(c, h, Result.NETWORK);
        result(c, h, Result.RETRIABLE);
        result(c, h, Result.SUCCESS); // a success starts the count again
        result(c, h, Result.TIMEOUT);
        result(c, h, Result.NETWORK);
        assertFalse(h.failedActiveHealthCheck());
        assertFalse(h.activeHealthCheckTimedOut());
        result(c, h, Result.TIMEOUT);
        assertTrue(h.failedActiveHealthCheck());
        assertTrue(h.activeHealthCheckTimedOut()); // failed, and its last check timed out
        assertEquals(Set.of(hosts(c).get(1).addressString()), picked(c));
        result(c, h, Result.SUCCESS);
        assertTrue(h.failedActiveHealthCheck());
        assertTrue(h.activeHealthCheckTimedOut()); // cleared when the host is healthy again, as Envoy's
        result(c, h, Result.SUCCESS);
        assertFalse(h.activeHealthCheckTimedOut());
        assertFalse(h.failedActiveHealthCheck());
        assertEquals(2, picked(c).size());
    }

    @Test
    void anHttpStatusNeitherExpectedNorRetriableFailsAHostAtOnceAsEnvoys() {
        UpstreamCluster c = manager(check(3, 2), Fixtures.cla("c", 2)).clusters().get("c");
        Host h = hosts(c).get(0);
        result(c, h, Result.SUCCESS);
        result(c, h, Result.FAILED);
        assertTrue(h.failedActiveHealthCheck());
        assertFalse(h.activeHealthCheckTimedOut());
    }

    @Test
    void theNextCheckWaitsTheIntervalEnvoyPicksForTheResultAndTheTransition() {
        HealthCheck hc = check(2, 2);
        UpstreamCluster c = manager(hc, Fixtures.cla("c", 1)).clusters().get("c");
        Host h = hosts(c).get(0);
        // no traffic yet: no_traffic_healthy_interval after a success that left the host healthy, else no_traffic
        assertEquals(70_000, result(c, h, Result.SUCCESS));
        assertEquals(60_000, result(c, h, Result.NETWORK));
        h.stats().requestStarted(); // the cluster has had traffic from now on
        assertEquals(20_000, result(c, h, Result.NETWORK)); // the threshold is met: unhealthy_interval
        assertEquals(20_000, result(c, h, Result.NETWORK));
        assertEquals(2_000, result(c, h, Result.SUCCESS)); // toward healthy: healthy_edge_interval
        assertEquals(10_000, result(c, h, Result.SUCCESS)); // healthy again: interval
        assertEquals(5_000, result(c, h, Result.NETWORK)); // toward unhealthy: unhealthy_edge_interval
        assertEquals(10_000, result(c, h, Result.SUCCESS));
    }

    @Test
    void intervalsTakeBothJittersAndAreNeverBelowOneMillisecond() {
        HealthCheck hc = new HealthCheck(Duration.ofSeconds(1), Duration.ofMillis(1000), Duration.ofMillis(50), 10,
                null, 1, 1, null, null, null, null, null, true, new HealthCheck.Tcp());
        Random r = new Random(7);
        long min = Long.MAX_VALUE;
        long max = 0;
        for (int i = 0; i < 2000; i++) {
            long v = HealthChecker.intervalMillis(hc, true, true, Transition.UNCHANGED, r);
            min = Math.min(min, v);
            max = Math.max(max, v);
        }
        // 1000 ms, plus [0, 100) for 10 percent, plus [0, 50)
        assertTrue(min >= 1000 && min < 1010, "min " + min);
        assertTrue(max <= 1148 && max > 1130, "max " + max);
        HealthCheck tiny = new HealthCheck(Duration.ofMillis(1), Duration.ofMillis(1), null, 0, null, 1, 1,
                Duration.ofMillis(1), null, null, null, null, true, new HealthCheck.Tcp());
        assertEquals(1, HealthChecker.intervalMillis(tiny, false, false, Transition.CHANGED, r));
        assertEquals(Duration.ofSeconds(60), hc.noTrafficInterval()); // Envoy's default
    }

    @Test
    void aHostIsHealthyOnlyWhenNeitherEdsNorItsChecksSayOtherwise() {
        ClusterLoadAssignment cla = Fixtures.cla("c", Fixtures.locality("a", 0, 1, 1, 3, HealthStatus.UNHEALTHY),
                Fixtures.locality("b", 0, 1, 3, 5, HealthStatus.HEALTHY));
        UpstreamCluster c = manager(check(1, 1), cla).clusters().get("c");
        for (Host h : hosts(c)) {
            result(c, h, Result.SUCCESS);
        }
        Map<String, Boolean> healthy = new TreeMap<>();
        for (Host h : hosts(c)) {
            healthy.put(h.addressString(), h.healthy());
        }
        // EDS UNHEALTHY stays unhealthy though its checks pass
        assertEquals(Map.of("10.0.0.1:8080", false, "10.0.0.2:8080", false, "10.0.0.3:8080", true,
                "10.0.0.4:8080", true), healthy);
        Host checkedOut = host(c, 3);
        result(c, checkedOut, Result.FAILED);
        // EDS HEALTHY, but its checks failed
        assertFalse(checkedOut.healthy());
        assertEquals(List.of(host(c, 4)), c.prioritySet().hostSets().get(0).healthyHosts());
    }

    @Test
    void anUpdateThatKeepsTheCheckKeepsHostHealthAndARemovedHostsChecksStop() {
        HealthCheck hc = check(1, 1);
        Cluster cluster = withHealthCheck(Fixtures.eds("c"), hc);
        ClusterManager m = f.manager(cluster, Fixtures.cla("c", 3));
        UpstreamCluster c = m.clusters().get("c");
        List<Host> hosts = List.of(host(c, 1), host(c, 2), host(c, 3));
        result(c, hosts.get(0), Result.SUCCESS);
        result(c, hosts.get(1), Result.SUCCESS);
        HealthChecker.Session first = c.healthCheckSession(hosts.get(0));

        // the same check, one host fewer, a new one
        ClusterLoadAssignment next = Fixtures.cla("c", Fixtures.locality("a", 0, 1, 1, 3, HealthStatus.HEALTHY),
                Fixtures.locality("a", 0, 1, 9, 10, HealthStatus.HEALTHY));
        m = m.update(Map.of("c", cluster), Map.of("c", next));
        assertEquals(c, m.clusters().get("c"));
        assertFalse(hosts.get(0).failedActiveHealthCheck());
        assertFalse(hosts.get(1).failedActiveHealthCheck());
        assertEquals(first, c.healthCheckSession(hosts.get(0)));
        assertNull(c.healthCheckSession(hosts.get(2)));
        Host added = host(c, 9);
        assertTrue(added.failedActiveHealthCheck());
        assertNotNull(c.healthCheckSession(added));

        // a changed check keeps the health the hosts have until their first new check
        m = m.update(Map.of("c", withHealthCheck(Fixtures.eds("c"), check(5, 5))), Map.of("c", next));
        assertFalse(hosts.get(0).failedActiveHealthCheck());
        HealthChecker.Session replaced = c.healthCheckSession(hosts.get(0));
        assertTrue(replaced != first);
        replaced.onResult(Result.SUCCESS);
        replaced.onResult(Result.FAILED);
        assertTrue(hosts.get(0).failedActiveHealthCheck());

        // no check: what checks said is forgotten
        m.update(Map.of("c", Fixtures.eds("c")), Map.of("c", next));
        assertTrue(c.hosts().stream().noneMatch(Host::failedActiveHealthCheck));
        assertNull(c.healthCheckSession(hosts.get(0)));
    }

    @Test
    void aResultThatComesAfterItsSessionStoppedChangesNothing() {
        HealthCheck hc = check(1, 1);
        ClusterLoadAssignment cla = Fixtures.cla("c", 2);
        ClusterManager m = f.manager(withHealthCheck(Fixtures.eds("c"), hc), cla);
        UpstreamCluster c = m.clusters().get("c");
        Host h = host(c, 1);
        HealthChecker.Session old = c.healthCheckSession(h);
        old.onResult(Result.SUCCESS);

        // the check goes (the config thread clears what checks said) while a failing check's answer is on its way
        m.update(Map.of("c", Fixtures.eds("c")), Map.of("c", cla));
        old.onResult(Result.FAILED);
        assertFalse(h.failedActiveHealthCheck()); // nothing checks the host any more: it would stay out for good
        assertEquals(2, c.prioritySet().hostSets().get(0).healthyHosts().size());
    }

    @Test
    void aHostsSlowStartCountsFromTheLastCheckItPassedWhileFailedAsEnvoysLastHcPassTime() {
        UpstreamCluster c = manager(check(1, 2), Fixtures.cla("c", 1)).clusters().get("c");
        Host h = hosts(c).get(0);
        f.ticker.advance(Duration.ofSeconds(1));
        result(c, h, Result.SUCCESS);
        long first = h.healthySinceNanos();
        assertEquals(f.ticker.nanoTime(), first);
        f.ticker.advance(Duration.ofSeconds(1));
        result(c, h, Result.SUCCESS); // healthy all along: no new start
        assertEquals(first, h.healthySinceNanos());
        result(c, h, Result.FAILED);
        f.ticker.advance(Duration.ofSeconds(1));
        result(c, h, Result.SUCCESS);
        f.ticker.advance(Duration.ofSeconds(1));
        result(c, h, Result.SUCCESS); // healthy again on its second pass, from which it ramps up
        assertFalse(h.failedActiveHealthCheck());
        assertEquals(f.ticker.nanoTime(), h.healthySinceNanos());
    }

    @Test
    void aCheckThatFindsAnEjectedHostHealthyReturnsItUnlessTheClusterSaysOtherwise() {
        for (boolean uneject : new boolean[] {true, false}) {
            dev.inmesh.api.config.cluster.OutlierDetection d =
                    dev.inmesh.api.config.cluster.OutlierDetection.DEFAULTS;
            var od = new dev.inmesh.api.config.cluster.OutlierDetection(d.consecutive5xx(), d.interval(),
                    d.baseEjectionTime(), d.maxEjectionTime(), 100, d.enforcingConsecutive5xx(),
                    d.enforcingSuccessRate(), d.successRateMinimumHosts(), d.successRateRequestVolume(),
                    d.successRateStdevFactor(), d.consecutiveGatewayFailure(), d.enforcingConsecutiveGatewayFailure(),
                    false, d.consecutiveLocalOriginFailure(), d.enforcingConsecutiveLocalOriginFailure(),
                    d.enforcingLocalOriginSuccessRate(), d.failurePercentageThreshold(),
                    d.enforcingFailurePercentage(), d.enforcingFailurePercentageLocalOrigin(),
                    d.failurePercentageMinimumHosts(), d.failurePercentageRequestVolume(), false, Duration.ZERO,
                    uneject);
            Cluster cluster = withHealthCheck(Fixtures.eds("c", dev.inmesh.api.config.cluster.LbPolicy.ROUND_ROBIN,
                    od, null), check(3, 1));
            UpstreamCluster c = f.manager(cluster, Fixtures.cla("c", 2)).clusters().get("c");
            Host h = hosts(c).get(0);
            result(c, h, Result.SUCCESS);
            for (int i = 0; i < 5; i++) {
                h.outlier().reportHttpStatus(503);
            }
            assertTrue(h.outlier().ejected());
            result(c, h, Result.SUCCESS);
            assertEquals(!uneject, h.outlier().ejected(), "uneject " + uneject);
        }
    }

    @Test
    void anEndpointThatDisablesActiveHealthChecksIsNeitherCheckedNorFailed() {
        var disabled = new dev.inmesh.api.config.endpoint.LbEndpoint(
                new dev.inmesh.api.config.core.SocketAddress("10.0.0.7", 8080), "", HealthStatus.HEALTHY, 1, null,
                List.of(), new dev.inmesh.api.config.endpoint.HealthCheckConfig(0, "", true));
        ClusterLoadAssignment cla = Fixtures.cla("c", Fixtures.locality("a", 0, 1, 1, 2, HealthStatus.HEALTHY),
                new LocalityLbEndpoints(dev.inmesh.api.config.endpoint.Locality.EMPTY, List.of(disabled), 1, 0));
        UpstreamCluster c = manager(check(1, 1), cla).clusters().get("c");
        assertFalse(host(c, 7).failedActiveHealthCheck());
        assertNull(c.healthCheckSession(host(c, 7)));
        assertTrue(host(c, 1).failedActiveHealthCheck());
        assertEquals(List.of(host(c, 7)), c.prioritySet().hostSets().get(0).healthyHosts());
    }

    @Test
    void anEndpointWhoseHealthCheckPortChangedIsANewHostFailedUntilItsFirstCheckAsEnvoys() {
        HealthCheck hc = check(3, 3);
        Cluster cluster = withHealthCheck(Fixtures.eds("c"), hc);
        ClusterManager m = f.manager(cluster, withHealthCheckPort(0));
        UpstreamCluster c = m.clusters().get("c");
        Host before = host(c, 7);
        result(c, before, Result.SUCCESS);
        assertFalse(before.failedActiveHealthCheck());
        HealthChecker.Session session = c.healthCheckSession(before);

        m = m.update(Map.of("c", cluster), Map.of("c", withHealthCheckPort(0)));
        assertEquals(before, host(c, 7)); // the same health check address: updated in place

        m.update(Map.of("c", cluster), Map.of("c", withHealthCheckPort(9901)));
        Host after = host(c, 7);
        assertTrue(after != before);
        assertTrue(after.failedActiveHealthCheck());
        assertTrue(c.healthCheckSession(after) != session);
        assertNull(c.healthCheckSession(before));
        assertTrue(c.prioritySet().hostSets().get(0).healthyHosts().isEmpty());
        result(c, after, Result.SUCCESS); // its first check decides, as a new host's
        assertEquals(List.of(after), c.prioritySet().hostSets().get(0).healthyHosts());
    }

    @Test
    void aHostItsChecksFailHasItsConnectionsDrainedAsEnvoysClusterManagerDoes() throws Exception {
        UpstreamCluster c = manager(check(2, 1), Fixtures.cla("c", 1)).clusters().get("c");
        Host h = hosts(c).get(0);
        result(c, h, Result.SUCCESS);
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            HostPool.Settings settings = new HostPool.Settings(1000, false, null, 1024, -1);
            CircuitBreakerState breakers = new CircuitBreakerState(null);
            io.vertx.core.http.HttpClient before = h.pool.client(vertx, settings, breakers);
            result(c, h, Result.NETWORK); // toward unhealthy: the connections stay
            assertTrue(h.pool.client(vertx, settings, breakers) == before);
            result(c, h, Result.NETWORK); // failed
            assertTrue(h.failedActiveHealthCheck());
            assertTrue(h.pool.client(vertx, settings, breakers) != before);
        } finally {
            vertx.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void anHttpChecksBodyIsJudgedBeforeItsStatusSoAMissingBlockFailsAtOnceEvenWithARetriableStatus() {
        UpstreamCluster c = manager(check(3, 1), Fixtures.cla("c", 1)).clusters().get("c");
        Host h = hosts(c).get(0);
        HealthChecker.Session s = c.healthCheckSession(h);
        HealthCheck.Http http = new HealthCheck.Http("", "/", null, null, null, null,
                List.of(new HealthCheck.StatusRange(503, 504)), false, List.of(HealthCheck.Payload.of("ok".getBytes())),
                1024);
        io.vertx.core.buffer.Buffer ok = io.vertx.core.buffer.Buffer.buffer("all ok");
        io.vertx.core.buffer.Buffer other = io.vertx.core.buffer.Buffer.buffer("busy");
        assertEquals(Result.SUCCESS, s.httpResult(http, 200, false, false, ok));
        assertEquals(Result.RETRIABLE, s.httpResult(http, 503, false, false, ok)); // the body holds it: the status
        assertEquals(Result.FAILED, s.httpResult(http, 200, false, false, other));
        // a retriable status whose body lacks the block is no retriable failure: the host fails at once
        assertEquals(Result.FAILED, s.httpResult(http, 503, false, false, other));
        assertFalse(h.excluded());
        assertEquals(Result.FAILED, s.httpResult(http, 503, true, false, other));
        assertTrue(h.excluded());
    }

    private static ClusterLoadAssignment withHealthCheckPort(int port) {
        var e = new dev.inmesh.api.config.endpoint.LbEndpoint(
                new dev.inmesh.api.config.core.SocketAddress("10.0.0.7", 8080), "", HealthStatus.HEALTHY, 1, null,
                List.of(), new dev.inmesh.api.config.endpoint.HealthCheckConfig(port, "", false));
        return Fixtures.cla("c", new LocalityLbEndpoints(dev.inmesh.api.config.endpoint.Locality.EMPTY, List.of(e), 1,
                0));
    }

    @Test
    void anUnexpectedStatusWithImmediateHealthCheckFailExcludesTheHostUntilItsChecksPassAgain() {
        UpstreamCluster c = manager(check(1, 1), Fixtures.cla("c", 4)).clusters().get("c");
        List<Host> hosts = hosts(c);
        hosts.forEach(h -> result(c, h, Result.SUCCESS));
        HealthCheck.Http http = new HealthCheck.Http("", "/", null, null, null, null,
                List.of(new HealthCheck.StatusRange(503, 504)), false);
        HealthChecker.Session s = c.healthCheckSession(hosts.get(0));
        assertEquals(Result.SUCCESS, s.httpResult(http, 200, true, false)); // expected: the header changes nothing
        assertFalse(hosts.get(0).excluded());
        assertEquals(Result.FAILED, s.httpResult(http, 500, false, false));
        assertFalse(hosts.get(0).excluded());
        // Envoy's draining upstream: excluded, so not counted in the priority's availability
        for (Host h : hosts.subList(0, 3)) {
            s = c.healthCheckSession(h);
            assertEquals(Result.RETRIABLE, s.httpResult(http, 503, true, false));
            s.onResult(Result.RETRIABLE);
        }
        assertTrue(hosts.get(0).excluded());
        assertTrue(hosts.get(0).failedActiveHealthCheck()); // unhealthy_threshold 1
        // one host of four healthy would be panic (25 % under 50 %), not with the three others excluded
        assertFalse(c.prioritySet().hostSets().get(0).panic());
        c.healthCheckSession(hosts.get(0)).onResult(Result.SUCCESS);
        assertFalse(hosts.get(0).excluded());
    }

    @Test
    void anExpectedStatusWithEnvoyDegradedMakesTheHostDegradedUntilACheckSaysOtherwise() {
        UpstreamCluster c = manager(check(1, 1), Fixtures.cla("c", 2)).clusters().get("c");
        Host h = host(c, 1);
        hosts(c).forEach(x -> result(c, x, Result.SUCCESS));
        HealthCheck.Http http = new HealthCheck.Http("", "/", null, null, null, null, null, false);
        HealthChecker.Session s = c.healthCheckSession(h);
        assertEquals(Result.DEGRADED, s.httpResult(http, 200, false, true));
        assertEquals(Result.FAILED, s.httpResult(http, 503, false, true)); // not a success: the header is not read
        // a change of health: the healthy interval (no traffic yet)
        assertEquals(70_000, s.onResult(Result.DEGRADED));
        assertFalse(h.healthy());
        assertTrue(h.degraded());
        assertEquals(List.of(host(c, 2)), c.prioritySet().hostSets().get(0).healthyHosts());
        assertEquals(List.of(h), c.prioritySet().hostSets().get(0).degradedHosts());
        assertEquals(h, c.overrideHost(h.addressString())); // DEGRADED, which the default override status lists
        s.onResult(Result.SUCCESS);
        assertTrue(h.healthy());
        assertFalse(h.degraded());
    }

    @Test
    void aFailedHostCountsAsUnhealthyForAStatefulSessionsOverride() {
        UpstreamCluster c = manager(check(1, 1), Fixtures.cla("c", 1)).clusters().get("c");
        Host h = hosts(c).get(0);
        assertNull(c.overrideHost(h.addressString()));
        result(c, h, Result.SUCCESS);
        assertEquals(h, c.overrideHost(h.addressString()));
    }

    @Test
    void checksCountAsEnvoysHealthCheckStatisticsAndNotAsRequests() {
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        UpstreamCluster c = withStats(reg, check(2, 1));
        List<Host> hosts = hosts(c);
        c.healthCheckSession(hosts.get(0)).onResult(Result.SUCCESS);
        c.healthCheckSession(hosts.get(1)).onResult(Result.SUCCESS);
        c.healthCheckSession(hosts.get(1)).onResult(Result.TIMEOUT);
        c.healthCheckSession(hosts.get(1)).onResult(Result.FAILED);
        Map<String, Double> stats = new TreeMap<>();
        String prefix = "envoy_cluster_health_check_";
        reg.getMeters().stream().filter(m -> m.getId().getName().startsWith(prefix)
                && "c".equals(m.getId().getTag("cluster_name"))).forEach(m ->
                stats.put(m.getId().getName().substring(prefix.length()), m.measure().iterator().next().getValue()));
        // attempts are counted when a check starts, which needs Vert.x (see HealthCheckTrafficTest)
        assertEquals(Map.of("attempt", 0.0, "success", 2.0, "failure", 2.0, "network_failure", 1.0,
                "passive_failure", 0.0, "verify_cluster", 0.0, "healthy", 1.0, "degraded", 0.0), stats);
        assertTrue(hosts.stream().allMatch(h -> h.stats().totalRequests() == 0));
        assertTrue(hosts.stream().allMatch(h -> h.outlier().numEjections() == 0));
    }

    @Test
    void anAnswerToARequestWithImmediateHealthCheckFailFailsAndExcludesTheHostAtOnceAsAPassiveFailure()
            throws Exception {
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        UpstreamCluster c = withStats(reg, check(3, 2));
        List<Host> hosts = hosts(c);
        Host h = hosts.get(0);
        hosts.forEach(x -> result(c, x, Result.SUCCESS));
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            HostPool.Settings settings = new HostPool.Settings(1000, false, null, 1024, -1);
            CircuitBreakerState breakers = new CircuitBreakerState(null);
            io.vertx.core.http.HttpClient before = h.pool.client(vertx, settings, breakers);

            h.immediateHealthCheckFail(); // unhealthy_threshold 3 does not apply
            assertTrue(h.failedActiveHealthCheck());
            assertTrue(h.excluded());
            assertEquals(Set.of(hosts.get(1).addressString()), picked(c));
            assertTrue(h.pool.client(vertx, settings, breakers) != before, "its connections drained");
            h.immediateHealthCheckFail(); // already failed: counted again, nothing else changes
            assertEquals(2.0, counter(reg, "passive_failure"));
            assertEquals(2.0, counter(reg, "failure"));
            assertEquals(0.0, counter(reg, "network_failure"));

            // not a first check any more: healthy_threshold passes bring it back, and end its exclusion
            result(c, h, Result.SUCCESS);
            assertTrue(h.failedActiveHealthCheck());
            assertTrue(h.excluded());
            result(c, h, Result.SUCCESS);
            assertFalse(h.failedActiveHealthCheck());
            assertFalse(h.excluded());
            assertEquals(Set.of(hosts.get(0).addressString(), hosts.get(1).addressString()), picked(c));
        } finally {
            vertx.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void aHostNotCheckedYetThatAnAnswerFailsNeedsHealthyThresholdPassesNotOne() {
        UpstreamCluster c = manager(check(3, 2), Fixtures.cla("c", 1)).clusters().get("c");
        Host h = hosts(c).get(0);
        h.immediateHealthCheckFail();
        assertTrue(h.excluded());
        result(c, h, Result.SUCCESS); // as Envoy's session: the passive failure was its first result
        assertTrue(h.failedActiveHealthCheck());
        result(c, h, Result.SUCCESS);
        assertFalse(h.failedActiveHealthCheck());
    }

    @Test
    void aHostOfAClusterWithoutHealthChecksIgnoresImmediateHealthCheckFail() {
        UpstreamCluster c = f.manager(Fixtures.eds("c"), Fixtures.cla("c", 2)).clusters().get("c");
        Host h = hosts(c).get(0);
        h.immediateHealthCheckFail();
        assertFalse(h.excluded());
        assertFalse(h.failedActiveHealthCheck());
        assertEquals(2, picked(c).size());
    }

    @Test
    void aDegradedHostItsChecksFailStaysInTheDegradedGaugeAsEnvoysFlagStays() {
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        UpstreamCluster c = withStats(reg, check(1, 1));
        List<Host> hosts = hosts(c);
        result(c, hosts.get(0), Result.SUCCESS);
        result(c, hosts.get(1), Result.DEGRADED);
        assertEquals(Map.of("healthy", 2.0, "degraded", 1.0), gauges(reg));
        result(c, hosts.get(1), Result.FAILED);
        assertTrue(hosts.get(1).degradedByActiveHealthCheck());
        assertEquals(Map.of("healthy", 1.0, "degraded", 1.0), gauges(reg));
        result(c, hosts.get(1), Result.SUCCESS);
        assertEquals(Map.of("healthy", 2.0, "degraded", 0.0), gauges(reg));
    }

    /** A cluster "c" of two hosts with check {@code hc}, keeping its statistics in {@code reg}. */
    private UpstreamCluster withStats(PrometheusMeterRegistry reg, HealthCheck hc) {
        UpstreamEnvironment env = new UpstreamEnvironment(null, f.ticker, new Random(42), null,
                MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        return ClusterManager.create(env, Map.of("c", withHealthCheck(Fixtures.eds("c"), hc)),
                Map.of("c", Fixtures.cla("c", 2))).clusters().get("c");
    }

    private static double counter(PrometheusMeterRegistry reg, String name) {
        return reg.get("envoy_cluster_health_check_" + name).tag("cluster_name", "c").meter().measure().iterator()
                .next().getValue();
    }

    private static Map<String, Double> gauges(PrometheusMeterRegistry reg) {
        Map<String, Double> out = new TreeMap<>();
        for (String g : List.of("healthy", "degraded")) {
            out.put(g, reg.get("envoy_cluster_health_check_" + g).tag("cluster_name", "c").gauge().value());
        }
        return out;
    }

    @Test
    void anHttpChecksHeadersAreEnvoysUserAgentThenTheRemovalsThenTheAdditions() {
        HealthCheck.Http http = new HealthCheck.Http("", "/", null, List.of(
                new dev.inmesh.api.config.core.HeaderValueOption("x-a", "1",
                        dev.inmesh.api.config.core.HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD, false),
                new dev.inmesh.api.config.core.HeaderValueOption("x-a", "2",
                        dev.inmesh.api.config.core.HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD, false),
                new dev.inmesh.api.config.core.HeaderValueOption("x-b", "3",
                        dev.inmesh.api.config.core.HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS, false),
                new dev.inmesh.api.config.core.HeaderValueOption("x-empty", "",
                        dev.inmesh.api.config.core.HeaderValueOption.AppendAction.ADD_IF_ABSENT, false),
                new dev.inmesh.api.config.core.HeaderValueOption("x-c", "1",
                        dev.inmesh.api.config.core.HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD, false),
                new dev.inmesh.api.config.core.HeaderValueOption("x-c", "2",
                        dev.inmesh.api.config.core.HeaderValueOption.AppendAction.ADD_IF_ABSENT, false)),
                List.of("x-gone"), null, null, false);
        MultiMap headers = MultiMap.caseInsensitiveMultiMap().add("x-gone", "1");
        HealthChecker.headers(headers, http, dev.inmesh.runtime.router.HeaderFormats.NONE, null);
        assertEquals("Envoy/HC", headers.get("user-agent"));
        assertEquals(List.of("1", "2"), headers.getAll("x-a"));
        assertFalse(headers.contains("x-b"));
        assertFalse(headers.contains("x-gone"));
        assertFalse(headers.contains("x-empty"));
        assertEquals(List.of("1", "2"), headers.getAll("x-c"),
                "each addition is judged against the headers before any: x-c was absent, as Envoy's header parser");
    }

    @Test
    void aLocalityOfEdsHostsThatNeverPassedItsChecksTakesNoTrafficOutsidePanic() {
        LocalityLbEndpoints a = Fixtures.locality("a", 0, 1, 1, 3, HealthStatus.HEALTHY);
        UpstreamCluster c = manager(check(1, 1), Fixtures.cla("c", a)).clusters().get("c");
        result(c, hosts(c).get(0), Result.SUCCESS);
        // one host of two healthy: 50 %, not under the panic threshold
        assertEquals(Set.of(hosts(c).get(0).addressString()), picked(c));
    }
}
