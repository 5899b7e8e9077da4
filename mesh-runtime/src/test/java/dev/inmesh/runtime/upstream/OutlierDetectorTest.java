package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class OutlierDetectorTest {
    private final Fixtures f = new Fixtures();

    private UpstreamCluster cluster(int hosts, OutlierDetection od) {
        return f.manager(Fixtures.eds("c", LbPolicy.ROUND_ROBIN, od, null), Fixtures.cla("c", hosts)).cluster("c");
    }

    private static List<Host> hosts(UpstreamCluster c) {
        return new ArrayList<>(c.prioritySet().hostSets().get(0).hosts());
    }

    private static void fail5xx(Host h, int times) {
        for (int i = 0; i < times; i++) {
            h.outlier().reportHttpStatus(500);
        }
    }

    private static OutlierDetection withMaxPercent(int percent) {
        return with(percent, 5, 0, false);
    }

    private static OutlierDetection with(int percent, int gatewayFailures, int enforcingGateway, boolean split) {
        OutlierDetection d = OutlierDetection.DEFAULTS;
        return new OutlierDetection(d.consecutive5xx(), d.interval(), d.baseEjectionTime(), d.maxEjectionTime(),
                percent, d.enforcingConsecutive5xx(), d.enforcingSuccessRate(), d.successRateMinimumHosts(),
                d.successRateRequestVolume(), d.successRateStdevFactor(), gatewayFailures,
                enforcingGateway, split,
                d.consecutiveLocalOriginFailure(), d.enforcingConsecutiveLocalOriginFailure(),
                d.enforcingLocalOriginSuccessRate(), d.failurePercentageThreshold(), d.enforcingFailurePercentage(),
                d.enforcingFailurePercentageLocalOrigin(), d.failurePercentageMinimumHosts(),
                d.failurePercentageRequestVolume());
    }

    @Test
    void fiveConsecutive5xxEjectAHostAndItIsNotPicked() {
        UpstreamCluster c = cluster(10, OutlierDetection.DEFAULTS);
        Host bad = hosts(c).get(3);
        fail5xx(bad, 4);
        assertFalse(bad.outlier().ejected());
        fail5xx(bad, 1);
        assertTrue(bad.outlier().ejected());
        for (int i = 0; i < 100; i++) {
            assertNotEquals(bad, c.chooseHost(LbContext.NONE));
        }
    }

    @Test
    void anEjectedHostHasItsConnectionsDrainedAsEnvoysClusterManagerDoes() throws Exception {
        UpstreamCluster c = cluster(10, OutlierDetection.DEFAULTS);
        Host bad = hosts(c).get(3);
        Host other = hosts(c).get(4);
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            HostPool.Settings settings = new HostPool.Settings(1000, false, null, 1024, -1);
            CircuitBreakerState breakers = new CircuitBreakerState(null);
            io.vertx.core.http.HttpClient before = bad.pool.client(vertx, settings, breakers);
            io.vertx.core.http.HttpClient otherBefore = other.pool.client(vertx, settings, breakers);
            fail5xx(bad, 4); // not ejected yet: the connections stay
            assertTrue(bad.pool.client(vertx, settings, breakers) == before);
            fail5xx(bad, 1);
            assertTrue(bad.outlier().ejected());
            assertTrue(bad.pool.client(vertx, settings, breakers) != before, "the ejected host's pool drained");
            assertTrue(other.pool.client(vertx, settings, breakers) == otherBefore, "the others' stay");
        } finally {
            vertx.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void aSuccessResetsTheConsecutiveCount() {
        UpstreamCluster c = cluster(10, OutlierDetection.DEFAULTS);
        Host h = hosts(c).get(0);
        fail5xx(h, 4);
        h.outlier().reportSuccess();
        fail5xx(h, 4);
        assertFalse(h.outlier().ejected());
    }

    /**
     * A TCP connection's successful connect, all tcp_proxy judges of it (Envoy's LocalOriginConnectSuccessFinal): a
     * success that ends a run of connect failures, which count as 5xx; no request statistic counts it.
     */
    @Test
    void aTcpConnectThatSucceedsEndsARunOfConnectFailures() {
        UpstreamCluster c = cluster(10, OutlierDetection.DEFAULTS);
        Host h = hosts(c).get(0);
        for (int i = 0; i < 4; i++) {
            h.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
        }
        h.outlier().reportConnectSuccessFinal();
        for (int i = 0; i < 4; i++) {
            h.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
        }
        assertFalse(h.outlier().ejected(), "four and four, a success between");
        h.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
        assertTrue(h.outlier().ejected(), "the fifth in a row");
    }

    @Test
    void localOriginFailuresCountAs5xxAndAConnectionForNothingWhenNotSplit() {
        UpstreamCluster c = cluster(10, OutlierDetection.DEFAULTS);
        Host h = hosts(c).get(0);
        h.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
        h.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
        h.outlier().reportLocalOriginFailure(LocalOriginFailure.RESET);
        h.outlier().reportConnectSuccess(); // only the answer that follows counts
        fail5xx(h, 2);
        assertTrue(h.outlier().ejected());
    }

    @Test
    void gatewayFailuresAreDetectedButNotEnforcedByDefault() {
        UpstreamCluster c = cluster(10, withMaxPercent(10));
        Host h = hosts(c).get(0);
        // 5 x 503 reaches both thresholds; consecutive_5xx (enforcing 100) ejects, gateway (enforcing 0) alone would not
        for (int i = 0; i < 4; i++) {
            h.outlier().reportHttpStatus(503);
        }
        assertFalse(h.outlier().ejected());
        h.outlier().reportHttpStatus(503);
        assertTrue(h.outlier().ejected());
    }

    @Test
    void anEjectionLastsTheBaseTimeAndEndsOnTheNextInterval() {
        UpstreamCluster c = cluster(10, OutlierDetection.DEFAULTS);
        Host h = hosts(c).get(0);
        fail5xx(h, 5);
        f.ticker.advance(Duration.ofSeconds(29));
        c.outlierDetector().runInterval();
        assertTrue(h.outlier().ejected());
        f.ticker.advance(Duration.ofSeconds(1));
        c.outlierDetector().runInterval();
        assertFalse(h.outlier().ejected());
        assertEquals(10, c.prioritySet().hostSets().get(0).availableHosts().size());
    }

    @Test
    void eachEjectionLastsLongerUpToTheMaximum() {
        UpstreamCluster c = cluster(10, OutlierDetection.DEFAULTS);
        Host h = hosts(c).get(0);
        long[] expectedSeconds = {30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300};
        for (long seconds : expectedSeconds) {
            fail5xx(h, 5);
            assertTrue(h.outlier().ejected());
            f.ticker.advance(Duration.ofSeconds(seconds - 1));
            c.outlierDetector().runInterval();
            assertTrue(h.outlier().ejected(), "still out before " + seconds + " s");
            f.ticker.advance(Duration.ofSeconds(1));
            c.outlierDetector().runInterval();
            assertFalse(h.outlier().ejected(), "back after " + seconds + " s");
        }
        assertEquals(expectedSeconds.length, h.outlier().numEjections());
    }

    @Test
    void eachEjectionLastsUpToMaxEjectionTimeJitterLongerSoThatHostsEjectedTogetherReturnApart() {
        OutlierDetection d = OutlierDetection.DEFAULTS;
        UpstreamCluster c = cluster(10, new OutlierDetection(d.consecutive5xx(), d.interval(), d.baseEjectionTime(),
                d.maxEjectionTime(), 100, 100, d.enforcingSuccessRate(), d.successRateMinimumHosts(),
                d.successRateRequestVolume(), d.successRateStdevFactor(), d.consecutiveGatewayFailure(),
                d.enforcingConsecutiveGatewayFailure(), false, d.consecutiveLocalOriginFailure(),
                d.enforcingConsecutiveLocalOriginFailure(), d.enforcingLocalOriginSuccessRate(),
                d.failurePercentageThreshold(), d.enforcingFailurePercentage(),
                d.enforcingFailurePercentageLocalOrigin(), d.failurePercentageMinimumHosts(),
                d.failurePercentageRequestVolume(), false, Duration.ofSeconds(10)));
        List<Host> hs = hosts(c);
        hs.forEach(h -> fail5xx(h, 5));
        Map<Host, Integer> returnedAt = new java.util.HashMap<>();
        f.ticker.advance(Duration.ofSeconds(29));
        for (int second = 29; second <= 41; second++) {
            c.outlierDetector().runInterval();
            for (Host h : hs) {
                if (!h.outlier().ejected()) {
                    returnedAt.putIfAbsent(h, second);
                }
            }
            f.ticker.advance(Duration.ofSeconds(1));
        }
        assertEquals(10, returnedAt.size(), "all back once base time and the largest jitter are up");
        assertTrue(returnedAt.values().stream().allMatch(s -> s >= 30 && s <= 40), returnedAt.values().toString());
        assertTrue(returnedAt.values().stream().distinct().count() > 1, "not all at once: " + returnedAt.values());
    }

    @Test
    void aHostThatStaysInEarnsItsBackoffBack() {
        UpstreamCluster c = cluster(10, OutlierDetection.DEFAULTS);
        Host h = hosts(c).get(0);
        fail5xx(h, 5);
        f.ticker.advance(Duration.ofSeconds(30));
        c.outlierDetector().runInterval(); // back, backoff 1
        fail5xx(h, 5);                     // out again for 60 s
        f.ticker.advance(Duration.ofSeconds(60));
        c.outlierDetector().runInterval(); // back, backoff 2
        assertEquals(2, h.outlier().ejectTimeBackoff());
        f.ticker.advance(Duration.ofSeconds(10));
        c.outlierDetector().runInterval();
        assertEquals(1, h.outlier().ejectTimeBackoff());
        f.ticker.advance(Duration.ofSeconds(10));
        c.outlierDetector().runInterval();
        assertEquals(0, h.outlier().ejectTimeBackoff());
    }

    @Test
    void noMoreThanMaxEjectionPercentOfHostsAreOut() {
        UpstreamCluster c = cluster(20, OutlierDetection.DEFAULTS); // 10% of 20: two hosts
        List<Host> hs = hosts(c);
        for (Host h : hs.subList(0, 4)) {
            fail5xx(h, 5);
        }
        assertEquals(2, c.outlierDetector().activeEjections());
    }

    @Test
    void maxEjectionPercentIsStrictSoTheDefaultTenPercentOfThreeHostsEjectsNone() {
        UpstreamCluster c = cluster(3, OutlierDetection.DEFAULTS); // one host of 3 is 33%, more than 10%
        Host h = hosts(c).get(0);
        fail5xx(h, 5);
        assertFalse(h.outlier().ejected());
        assertEquals(0, c.outlierDetector().activeEjections());
    }

    @Test
    void alwaysEjectOneHostLetsTheFirstEjectionPastThePercentageButNoSecond() {
        OutlierDetection d = withMaxPercent(10);
        OutlierDetection always = new OutlierDetection(d.consecutive5xx(), d.interval(), d.baseEjectionTime(),
                d.maxEjectionTime(), d.maxEjectionPercent(), d.enforcingConsecutive5xx(), d.enforcingSuccessRate(),
                d.successRateMinimumHosts(), d.successRateRequestVolume(), d.successRateStdevFactor(),
                d.consecutiveGatewayFailure(), d.enforcingConsecutiveGatewayFailure(),
                d.splitExternalLocalOriginErrors(), d.consecutiveLocalOriginFailure(),
                d.enforcingConsecutiveLocalOriginFailure(), d.enforcingLocalOriginSuccessRate(),
                d.failurePercentageThreshold(), d.enforcingFailurePercentage(),
                d.enforcingFailurePercentageLocalOrigin(), d.failurePercentageMinimumHosts(),
                d.failurePercentageRequestVolume(), true, Duration.ZERO);
        UpstreamCluster c = cluster(3, always);
        List<Host> hs = hosts(c);
        fail5xx(hs.get(0), 5);
        fail5xx(hs.get(1), 5);
        assertTrue(hs.get(0).outlier().ejected());
        assertFalse(hs.get(1).outlier().ejected());
    }

    @Test
    void aLowSuccessRateEjectsOnTheIntervalAndDrainsTheHostsConnections() throws Exception {
        UpstreamCluster c = cluster(10, withMaxPercent(50));
        List<Host> hs = hosts(c);
        for (int i = 0; i < hs.size(); i++) {
            Host h = hs.get(i);
            for (int r = 0; r < 200; r++) {
                // host 0 fails one request in two, but never five in a row
                h.outlier().reportHttpStatus(i == 0 && r % 2 == 0 ? 500 : 200);
            }
        }
        assertFalse(hs.get(0).outlier().ejected());
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            HostPool.Settings settings = new HostPool.Settings(1000, false, null, 1024, -1);
            CircuitBreakerState breakers = new CircuitBreakerState(null);
            io.vertx.core.http.HttpClient before = hs.get(0).pool.client(vertx, settings, breakers);
            c.outlierDetector().runInterval();
            assertTrue(hs.get(0).outlier().ejected());
            assertEquals(1, c.outlierDetector().activeEjections());
            assertTrue(hs.get(0).pool.client(vertx, settings, breakers) != before, "its connections drained");
        } finally {
            vertx.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void successRateNeedsEnoughVolumeAndHosts() {
        UpstreamCluster c = cluster(4, withMaxPercent(50)); // fewer than success_rate_minimum_hosts (5)
        List<Host> hs = hosts(c);
        for (Host h : hs) {
            for (int r = 0; r < 200; r++) {
                h.outlier().reportHttpStatus(h == hs.get(0) && r % 2 == 0 ? 500 : 200);
            }
        }
        c.outlierDetector().runInterval();
        assertEquals(0, c.outlierDetector().activeEjections());
    }

    @Test
    void aHostsSuccessRateIsComputedOnceItHasTheVolumeOfSuccessRateOrOfFailurePercentage() {
        // Envoy's defaults: success rate needs 100 requests, failure percentage 50
        UpstreamCluster c = cluster(5, OutlierDetection.DEFAULTS);
        List<Host> hs = hosts(c);
        int[] volumes = {49, 50, 60, 99, 100};
        for (int i = 0; i < hs.size(); i++) {
            for (int r = 0; r < volumes[i]; r++) {
                hs.get(i).outlier().reportHttpStatus(r % 10 == 0 ? 503 : 200);
            }
        }
        c.outlierDetector().runInterval();
        assertEquals(-1.0, hs.get(0).outlier().successRate(false));
        assertEquals(100.0 * 45 / 50, hs.get(1).outlier().successRate(false), 1e-9);
        assertEquals(100.0 * 54 / 60, hs.get(2).outlier().successRate(false), 1e-9);
        assertEquals(100.0 * 89 / 99, hs.get(3).outlier().successRate(false), 1e-9);
        assertEquals(90.0, hs.get(4).outlier().successRate(false), 1e-9);
    }

    @Test
    void whenEveryHostIsEjectedPanicPicksThemAnyway() {
        UpstreamCluster c = cluster(2, withMaxPercent(100));
        for (Host h : hosts(c)) {
            fail5xx(h, 5);
        }
        assertEquals(2, c.outlierDetector().activeEjections());
        assertTrue(c.prioritySet().panic(0));
        assertTrue(c.chooseHost(LbContext.NONE) != null);
    }

    @Test
    void enforcedGatewayFailuresEjectOn502To504Only() {
        UpstreamCluster c = cluster(10, with(10, 3, 100, false));
        List<Host> hs = hosts(c);
        Host gateway = hs.get(0);
        gateway.outlier().reportHttpStatus(502);
        gateway.outlier().reportHttpStatus(503);
        gateway.outlier().reportHttpStatus(504);
        assertTrue(gateway.outlier().ejected());
        Host server = hs.get(1);
        server.outlier().reportHttpStatus(503);
        server.outlier().reportHttpStatus(503);
        server.outlier().reportHttpStatus(500); // a 5xx that is not a gateway error restarts the gateway count
        server.outlier().reportHttpStatus(503);
        assertFalse(server.outlier().ejected());
    }

    @Test
    void splitLocalOriginFailuresHaveTheirOwnCounterWhichAnAttemptThatConnectedResets() {
        UpstreamCluster c = cluster(10, with(10, 5, 0, true));
        Host h = hosts(c).get(0);
        for (int i = 0; i < 4; i++) {
            h.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
        }
        // four attempts that connected and were answered 500, reported as the router reports them
        for (int i = 0; i < 4; i++) {
            h.outlier().reportConnectSuccess();
            h.outlier().reportHttpStatus(500);
        }
        h.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
        assertFalse(h.outlier().ejected(), "four 5xx are not five; one local-origin failure since the connections");
        for (int i = 0; i < 3; i++) {
            h.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
        }
        assertFalse(h.outlier().ejected(), "four local-origin failures in a row");
        h.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
        assertTrue(h.outlier().ejected(), "the fifth");
    }

    @Test
    void withoutOutlierDetectionReportsChangeNothing() {
        UpstreamCluster c = cluster(10, null);
        Host h = hosts(c).get(0);
        fail5xx(h, 50);
        assertFalse(h.outlier().ejected());
    }

    /** Cluster {@code c} of {@code hosts} hosts whose statistics go to {@code reg}, as the mesh and proxy wire them. */
    private UpstreamCluster clusterWithStats(int hosts, OutlierDetection od, PrometheusMeterRegistry reg) {
        UpstreamEnvironment env = new UpstreamEnvironment(null, f.ticker, new Random(42), null,
                MeshMetrics.create(reg, WorkloadInfo.UNKNOWN)::upstream);
        return ClusterManager.create(env, Map.of("c", Fixtures.eds("c", LbPolicy.ROUND_ROBIN, od, null)),
                Map.of("c", Fixtures.cla("c", hosts))).cluster("c");
    }

    /** Cluster {@code c}'s non-zero outlier_detection statistics, by the name after the prefix. */
    private static Map<String, Double> outlierStats(PrometheusMeterRegistry reg) {
        Map<String, Double> out = new TreeMap<>();
        String prefix = "envoy_cluster_outlier_detection_";
        reg.getMeters().stream().filter(m -> m.getId().getName().startsWith(prefix)
                && "c".equals(m.getId().getTag("cluster_name"))).forEach(m -> {
                    double v = m.measure().iterator().next().getValue();
                    if (v != 0) {
                        out.put(m.getId().getName().substring(prefix.length()), v);
                    }
                });
        return out;
    }

    @Test
    void ejectionsCountAsEnvoysOutlierDetectionStatisticsDetectedEnforcedAndActive() {
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        UpstreamCluster c = clusterWithStats(3, withMaxPercent(100), reg);
        Gauge active = reg.find("envoy_cluster_outlier_detection_ejections_active").tag("cluster_name", "c").gauge();
        assertEquals(0.0, active.value()); // registered with detection on, before any ejection
        fail5xx(hosts(c).get(0), 5);
        assertEquals(Map.of("ejections_active", 1.0, "ejections_detected_consecutive_5xx", 1.0,
                "ejections_enforced_consecutive_5xx", 1.0, "ejections_enforced_total", 1.0,
                "ejections_total", 1.0, "ejections_consecutive_5xx", 1.0), outlierStats(reg));
        f.ticker.advance(Duration.ofSeconds(30));
        c.outlierDetector().runInterval(); // back after the base ejection time: no longer active
        assertEquals(0.0, active.value());
        assertEquals(1.0, outlierStats(reg).get("ejections_enforced_total"));
    }

    @Test
    void anEjectionMaxEjectionPercentRefusesCountsAsOverflowAfterItsDetection() {
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        UpstreamCluster c = clusterWithStats(3, withMaxPercent(50), reg);
        fail5xx(hosts(c).get(0), 5);
        fail5xx(hosts(c).get(1), 5); // two of three out would be 67% > 50%
        assertTrue(hosts(c).get(0).outlier().ejected());
        assertFalse(hosts(c).get(1).outlier().ejected());
        // Envoy's deprecated ejections_consecutive_5xx counts both detections, its ejections_total the one allowed
        assertEquals(Map.of("ejections_active", 1.0, "ejections_detected_consecutive_5xx", 2.0,
                "ejections_enforced_consecutive_5xx", 1.0, "ejections_enforced_total", 1.0,
                "ejections_overflow", 1.0, "ejections_total", 1.0, "ejections_consecutive_5xx", 2.0),
                outlierStats(reg));
    }

    @Test
    void anEjectionNotEnforcedIsDetectedOnly() {
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        // consecutive_gateway_failure at 3 with enforcing 0 (Envoy's default enforcement): three 502s meet it, and
        // the detection is counted though no ejection follows (consecutive_5xx needs five)
        UpstreamCluster c = clusterWithStats(3, with(100, 3, 0, false), reg);
        Host h = hosts(c).get(0);
        for (int i = 0; i < 3; i++) {
            h.outlier().reportHttpStatus(502);
        }
        assertFalse(h.outlier().ejected());
        assertEquals(Map.of("ejections_detected_consecutive_gateway_failure", 1.0), outlierStats(reg));
    }

    @Test
    void localOriginFailurePercentageEjectionsCountUnderEnvoysNamesForThem() {
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        OutlierDetection d = OutlierDetection.DEFAULTS;
        // split local origin errors; failure percentage of local origin enforced, over 5 hosts of 10 requests
        UpstreamCluster c = clusterWithStats(5, new OutlierDetection(100, d.interval(), d.baseEjectionTime(),
                d.maxEjectionTime(), 100, 100, 0, 100, 100, d.successRateStdevFactor(), 100, 0, true, 100, 0, 0,
                85, 0, 100, 5, 10), reg);
        List<Host> hs = hosts(c);
        for (Host h : hs) {
            for (int i = 0; i < 10; i++) {
                if (h == hs.get(0)) {
                    h.outlier().reportLocalOriginFailure(LocalOriginFailure.CONNECT_FAILED);
                } else {
                    h.outlier().reportConnectSuccess();
                }
            }
        }
        c.outlierDetector().runInterval();
        assertTrue(hs.get(0).outlier().ejected());
        assertEquals(Map.of("ejections_active", 1.0, "ejections_detected_local_origin_failure_percentage", 1.0,
                "ejections_enforced_local_origin_failure_percentage", 1.0, "ejections_enforced_total", 1.0),
                outlierStats(reg));
    }

    @Test
    void aConsecutive5xxEjectionNotEnforcedStillCountsInEnvoysDeprecatedCounters() {
        OutlierDetection d = OutlierDetection.DEFAULTS;
        var reg2 = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        // enforcing_consecutive_5xx 0: detected and allowed by the cap, not enforced
        UpstreamCluster notEnforced = clusterWithStats(3, new OutlierDetection(5, d.interval(),
                d.baseEjectionTime(), d.maxEjectionTime(), 100, 0, 100, 5, 100, 1900, 5, 0, false, 5, 100, 100, 85,
                0, 0, 5, 50), reg2);
        fail5xx(hosts(notEnforced).get(0), 5);
        assertEquals(Map.of("ejections_detected_consecutive_5xx", 1.0, "ejections_total", 1.0,
                "ejections_consecutive_5xx", 1.0), outlierStats(reg2));
    }

    @Test
    void aSuccessRateEjectionCountsInEnvoysDeprecatedSuccessRateAndTotalCounters() {
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        UpstreamCluster c = clusterWithStats(10, withMaxPercent(50), reg);
        List<Host> hs = hosts(c);
        for (Host h : hs) {
            for (int r = 0; r < 200; r++) {
                h.outlier().reportHttpStatus(h == hs.get(0) && r % 2 == 0 ? 500 : 200);
            }
        }
        c.outlierDetector().runInterval();
        assertEquals(Map.of("ejections_active", 1.0, "ejections_detected_success_rate", 1.0,
                "ejections_enforced_success_rate", 1.0, "ejections_enforced_total", 1.0,
                "ejections_total", 1.0, "ejections_success_rate", 1.0), outlierStats(reg));
    }

    @Test
    void aClusterWithoutOutlierDetectionHasNoOutlierStatistics() {
        var reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        clusterWithStats(3, null, reg);
        assertEquals(null, reg.find("envoy_cluster_outlier_detection_ejections_active").gauge());
    }

    @Test
    void everyEjectionTypeHasItsStatisticsRegistered() {
        // the detection types are named twice, by the detector's enum and by the statistics it registers up front
        List<String> names = new ArrayList<>();
        for (OutlierDetector.EjectionType t : OutlierDetector.EjectionType.values()) {
            names.add(t.statName);
        }
        assertEquals(dev.inmesh.runtime.stats.OutlierStats.TYPES, names);
    }
}
