package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.IstioStats;
import dev.inmesh.runtime.accesslog.RequestLog;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.StatsOverrides;
import dev.inmesh.runtime.stats.StreamInfos;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.MultiMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The numbers of Inmesh's families as Envoy's {@code /stats/prometheus} prints them (integral counters, gauges, bucket
 * counts, bounds and sums without a fraction, Envoy's {@code le} bounds), and no Micrometer {@code _max} gauge beside
 * a histogram; label values and the application's families as they are.
 */
class PrometheusTextTest {

    @Test
    void anIntegralValueIsPrintedAsEnvoysIntegers() {
        assertEquals("istio_requests_total{reporter=\"source\"} 3",
                PrometheusText.envoyNumbers("istio_requests_total{reporter=\"source\"} 3.0"));
        assertEquals("envoy_server_live 1", PrometheusText.envoyNumbers("envoy_server_live 1.0"));
        assertEquals("envoy_cluster_upstream_cx_active{cluster_name=\"a\"} 0",
                PrometheusText.envoyNumbers("envoy_cluster_upstream_cx_active{cluster_name=\"a\"} 0.0"));
        assertEquals("0", PrometheusText.envoyNumber("-0.0"));
        assertEquals("-7", PrometheusText.envoyNumber("-7.0"));
        // Java's scientific form of a large integral value, as Envoy's integer
        assertEquals("12345678", PrometheusText.envoyNumber("1.2345678E7"));
        assertEquals("9007199254740991", PrometheusText.envoyNumber("9.007199254740991E15"));
        // beyond 2^53, still plain, where Envoy's %.32g is
        assertEquals("10000000000000000", PrometheusText.envoyNumber("1.0E16"));
    }

    @Test
    void aBucketsBoundIsEnvoysShortestDecimalAndInfinityStays() {
        assertEquals("istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"25\"} 1",
                PrometheusText.envoyNumbers(
                        "istio_request_duration_milliseconds_bucket{reporter=\"source\",le=\"25.0\"} 1"));
        assertEquals("h_bucket{le=\"0.5\"} 2", PrometheusText.envoyNumbers("h_bucket{le=\"0.5\"} 2.0"));
        assertEquals("h_bucket{le=\"1\"} 2", PrometheusText.envoyNumbers("h_bucket{le=\"1.0\"} 2"));
        assertEquals("h_bucket{a=\"b\",le=\"3600000\"} 4",
                PrometheusText.envoyNumbers("h_bucket{a=\"b\",le=\"3600000.0\"} 4"));
        assertEquals("h_bucket{le=\"+Inf\"} 4", PrometheusText.envoyNumbers("h_bucket{le=\"+Inf\"} 4"));
        assertEquals("h_bucket{le=\"-Inf\",x=\"1.0\"} 0",
                PrometheusText.envoyNumbers("h_bucket{le=\"-Inf\",x=\"1.0\"} 0"));
    }

    @Test
    void aNonIntegralValueKeepsItsFractionWithoutScientificNotation() {
        assertEquals("h_sum{a=\"b\"} 12.5", PrometheusText.envoyNumbers("h_sum{a=\"b\"} 12.5"));
        assertEquals("h_sum 0.005", PrometheusText.envoyNumbers("h_sum 0.005"));
        assertEquals("h_sum 12345678.5", PrometheusText.envoyNumbers("h_sum 1.23456785E7"));
        assertEquals("0.00015", PrometheusText.envoyNumber("1.5E-4"));
        // where Envoy's %.32g turns scientific too, Java's form stays
        assertEquals("1.5E-5", PrometheusText.envoyNumber("1.5E-5"));
        assertEquals("1.0E40", PrometheusText.envoyNumber("1.0E40"));
    }

    @Test
    void infinitiesNotANumberAndTimestampsStay() {
        assertEquals("g +Inf", PrometheusText.envoyNumbers("g +Inf"));
        assertEquals("g{a=\"b\"} -Inf", PrometheusText.envoyNumbers("g{a=\"b\"} -Inf"));
        assertEquals("g NaN", PrometheusText.envoyNumbers("g NaN"));
        assertEquals("g{a=\"b\"} 2 1700000000000", PrometheusText.envoyNumbers("g{a=\"b\"} 2.0 1700000000000"));
    }

    @Test
    void aLabelValueThatLooksLikeANumberIsNotChanged() {
        String labels = "{destination_version=\"1.0\",response_code=\"200\",path=\"/x,le=\\\"25.0\\\"\","
                + "note=\"le=\\\"2.0\\\"\",sample=\"} 3.0\",ale=\"5.0\",le_x=\"6.0\"}";
        assertEquals("istio_requests_total" + labels + " 3",
                PrometheusText.envoyNumbers("istio_requests_total" + labels + " 3.0"));
        assertEquals("h_bucket{version=\"2.0\",le=\"10\"} 1",
                PrometheusText.envoyNumbers("h_bucket{version=\"2.0\",le=\"10.0\"} 1"));
    }

    @Test
    void usedonlyKeepsTheBucketsOfAWrittenHistogramWithoutLabels() {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        DistributionSummary.builder("istio_sizes").serviceLevelObjectives(25).register(registry).record(4);
        DistributionSummary.builder("istio_unused").serviceLevelObjectives(25).register(registry);

        assertEquals(List.of("istio_sizes_bucket{le=\"25\"} 1", "istio_sizes_bucket{le=\"+Inf\"} 1",
                "istio_sizes_count 1", "istio_sizes_sum 4"),
                PrometheusText.select(registry.scrape(), n -> true, true).lines().filter(l -> !l.startsWith("#"))
                        .toList());
    }

    @Test
    void theScrapeServesInmeshsFamiliesAsEnvoyAndTheApplicationsAsTheyAre() {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        DistributionSummary.builder("istio_request_duration_milliseconds").tag("destination_version", "1.0")
                .serviceLevelObjectives(0.5, 25, 3600000).register(registry).record(12);
        registry.counter("istio_requests", "response_code", "200").increment(3);
        registry.counter("app_orders").increment(7);
        DistributionSummary.builder("app_sizes").tag("shop", "a").serviceLevelObjectives(25).register(registry)
                .record(4);
        String scrape = registry.scrape();
        assertTrue(scrape.contains("istio_request_duration_milliseconds_max{destination_version=\"1.0\"} 12.0"),
                scrape);

        for (String served : List.of(PrometheusText.envoy(scrape), PrometheusText.select(scrape, n -> true, false),
                PrometheusText.select(scrape, n -> true, true))) {
            List<String> lines = served.lines().toList();
            assertTrue(lines.contains("istio_requests_total{response_code=\"200\"} 3"), served);
            assertTrue(lines.contains(
                    "istio_request_duration_milliseconds_bucket{destination_version=\"1.0\",le=\"0.5\"} 0"), served);
            assertTrue(lines.contains(
                    "istio_request_duration_milliseconds_bucket{destination_version=\"1.0\",le=\"25\"} 1"), served);
            assertTrue(lines.contains(
                    "istio_request_duration_milliseconds_bucket{destination_version=\"1.0\",le=\"3600000\"} 1"),
                    served);
            assertTrue(lines.contains(
                    "istio_request_duration_milliseconds_bucket{destination_version=\"1.0\",le=\"+Inf\"} 1"),
                    served);
            assertTrue(lines.contains("istio_request_duration_milliseconds_sum{destination_version=\"1.0\"} 12"),
                    served);
            assertTrue(lines.contains("istio_request_duration_milliseconds_count{destination_version=\"1.0\"} 1"),
                    served);
            assertTrue(lines.stream().noneMatch(l -> l.contains("istio_request_duration_milliseconds_max")),
                    "Envoy serves a histogram's buckets, sum and count only: " + served);
            // the application's meters as Micrometer prints them, its max gauge included
            assertTrue(lines.contains("app_orders_total 7.0"), served);
            assertTrue(lines.contains("app_sizes_bucket{shop=\"a\",le=\"25.0\"} 1"), served);
            assertTrue(lines.contains("app_sizes_sum{shop=\"a\"} 4.0"), served);
            assertTrue(lines.contains("app_sizes_max{shop=\"a\"} 4.0"), served);
        }
    }

    @Test
    void membershipTotalIsScrapedUnderEnvoysNameAsAGauge() {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE).upstream("outbound|9080||reviews")
                .membershipFrom(() -> new int[] {2, 0, 1, 3});
        String scrape = registry.scrape();

        for (String served : List.of(PrometheusText.envoy(scrape), PrometheusText.select(scrape, n -> true, true),
                PrometheusText.select(scrape, n -> n.contains("membership_total"), false))) {
            List<String> lines = served.lines().toList();
            assertTrue(lines.contains("# TYPE envoy_cluster_membership_total gauge"), served);
            assertTrue(lines.contains("envoy_cluster_membership_total{cluster_name=\"outbound|9080||reviews\"} 3"),
                    served);
            assertTrue(lines.stream().noneMatch(l -> l.matches("(# \\w+ )?envoy_cluster_membership\\b.*")),
                    "no family named envoy_cluster_membership: " + served);
        }
        assertTrue(PrometheusText.envoy(scrape).lines().toList().contains(
                "envoy_cluster_membership_healthy{cluster_name=\"outbound|9080||reviews\"} 2"));
    }

    @Test
    void envoysCountersAreTypedCounterAndItsGaugesGaugeWhateverMicrometerMeterKeepsThem() {
        // Envoy's counters whose names do not end in _total are Micrometer gauges that only rise (a Micrometer
        // counter would be scraped as NAME_total); a scraper's rate() and Prometheus' metadata need them typed counter
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        var upstream = metrics.upstream("outbound|9080||reviews");
        upstream.requestCompleted(200);
        upstream.membershipFrom(() -> new int[] {2, 0, 1, 3});
        upstream.healthCheck().hostsFrom(() -> 2, () -> 0);
        upstream.outlierDetection();
        metrics.connectionManager(dev.inmesh.api.config.listener.HttpConnectionManager.of("outbound_0.0.0.0_9080",
                "9080", List.of()));
        metrics.listener("0.0.0.0_9080");
        String scrape = registry.scrape();

        for (String served : List.of(PrometheusText.envoy(scrape), PrometheusText.select(scrape, n -> true,
                false))) {
            List<String> lines = served.lines().toList();
            for (String counter : List.of("envoy_cluster_upstream_rq_completed", "envoy_cluster_upstream_cx_connect_fail",
                    "envoy_cluster_upstream_rq_retry", "envoy_cluster_health_check_attempt",
                    "envoy_cluster_outlier_detection_ejections_enforced_total", "envoy_http_downstream_rq_completed",
                    "envoy_http_downstream_rq_non_relative_path", "envoy_http1_dropped_headers_with_underscores",
                    "envoy_http_downstream_cx_upgrades_total", "envoy_http_downstream_rq_ws_on_non_ws_route",
                    "envoy_listener_downstream_cx_destroy", "envoy_listener_no_filter_chain_match",
                    "envoy_cluster_upstream_rq", "envoy_http_downstream_rq", "envoy_cluster_upstream_rq_total")) {
                assertTrue(lines.contains("# TYPE " + counter + " counter"), counter + " in " + served);
            }
            for (String gauge : List.of("envoy_cluster_upstream_rq_active", "envoy_cluster_upstream_cx_active",
                    "envoy_cluster_membership_healthy", "envoy_cluster_membership_total",
                    "envoy_cluster_health_check_healthy", "envoy_cluster_outlier_detection_ejections_active",
                    "envoy_http_downstream_rq_active", "envoy_listener_downstream_cx_active",
                    "envoy_listener_downstream_pre_cx_active")) {
                assertTrue(lines.contains("# TYPE " + gauge + " gauge"), gauge + " in " + served);
            }
            assertTrue(lines.stream().filter(l -> l.startsWith("# TYPE envoy_")).allMatch(
                    l -> l.endsWith(" counter") || l.endsWith(" gauge") || l.endsWith(" histogram")), served);
        }
        // and /stats?type= the same
        var stats = EnvoyStats.collect(registry, n -> true, n -> n);
        assertEquals(java.util.Set.of("cluster.outbound|9080||reviews.health_check.degraded",
                "cluster.outbound|9080||reviews.health_check.healthy"),
                EnvoyStats.select(stats, "Gauges", false).keySet().stream()
                        .filter(n -> n.contains(".health_check.")).collect(java.util.stream.Collectors.toSet()));
        assertTrue(EnvoyStats.select(stats, "Gauges", false).containsKey("listener.0.0.0.0_9080.downstream_pre_cx_active"));
        assertTrue(EnvoyStats.select(stats, "Counters", false).containsKey("cluster.outbound|9080||reviews.health_check.attempt"));
    }

    @Test
    void telemetryDimensionsAddLabelsAndReplaceStandardOnesInIstiosOwnFamilies() {
        // Istio's "customize metrics" overrides: labels added to every metric, and to one; a standard label given
        // by an expression; one whose expression does not compile removed, as Istio's stats do
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        StatsOverrides o = StatsOverrides.compile(new IstioStats(List.of(
                new IstioStats.MetricOverride("", List.of(), false, Map.of("request_host", "request.host",
                        "destination_port", "string(destination.port)")),
                new IstioStats.MetricOverride("requests_total", List.of(), false, Map.of(
                        "response_code", "'x' + string(response.code)", "user", "request.headers['x-user']")),
                new IstioStats.MetricOverride("request_bytes", List.of(), false,
                        Map.of("request_protocol", "bogus((")))));
        RequestLog alice = new RequestLog(null, MultiMap.caseInsensitiveMultiMap().add("x-user", "alice"), null, null,
                null, null, false);
        metrics.record(StreamInfos.outboundOk()); // a connection manager without overrides
        metrics.record(StreamInfos.withOverrides(StreamInfos.outboundOk(), o, alice));
        metrics.record(StreamInfos.withOverrides(StreamInfos.outboundOk(), o, null)); // no x-user: unknown

        String served = PrometheusText.envoy(registry.scrape());
        List<String> lines = served.lines().toList();
        assertTrue(lines.stream().noneMatch(l -> l.contains(MeshMetrics.DIMENSIONS_MARK)), served);
        assertEquals(1, lines.stream().filter("# TYPE istio_requests_total counter"::equals).count(), served);
        List<String> requests = lines.stream().filter(l -> l.startsWith("istio_requests_total{")).toList();
        assertEquals(3, requests.size(), served);
        String standard = one(requests, l -> !l.contains("request_host="));
        assertTrue(standard.contains("response_code=\"200\"") && standard.endsWith(" 1"), standard);
        String ofAlice = one(requests, l -> l.contains("user=\"alice\""));
        for (String label : List.of("response_code=\"x200\"", "request_host=\"reviews:9080\"",
                "destination_port=\"9080\"", "reporter=\"source\"")) {
            assertTrue(ofAlice.contains(label), label + " in " + ofAlice);
        }
        assertTrue(ofAlice.endsWith(" 1"), ofAlice);
        one(requests, l -> l.contains("user=\"unknown\"") && l.contains("response_code=\"x200\""));

        String bytes = one(lines.stream().filter(l -> l.startsWith("istio_request_bytes_count{")).toList(),
                l -> l.contains("request_host="));
        assertTrue(bytes.contains("request_protocol=\"\"") && bytes.contains("destination_port=\"9080\"")
                && !bytes.contains("user=") && bytes.endsWith(" 2"), bytes);
        String duration = one(lines.stream().filter(l -> l.startsWith("istio_request_duration_milliseconds_count{"))
                .toList(), l -> l.contains("request_host="));
        assertTrue(duration.contains("request_protocol=\"http\"") && duration.contains("response_code=\"200\""),
                duration);
    }

    @Test
    void aStatsFiltersDefinitionsAreRecordedPerRequestUnderIstiosNameWithTheirOwnLabels() {
        // stats.PluginConfig definitions: a counter, a gauge and a histogram of expressions' values; labelled by
        // the dimensions of entries without a name or naming them, not by the standard labels
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);
        StatsOverrides o = StatsOverrides.compile(new IstioStats(List.of(
                new IstioStats.MetricOverride("", List.of(), false, Map.of("host", "request.host")),
                new IstioStats.MetricOverride("caller_bytes", List.of(), false,
                        Map.of("user", "request.headers['x-user']", "response_code", "string(response.code)")),
                new IstioStats.MetricOverride("requests_total", List.of(), true)), List.of(
                new IstioStats.MetricDefinition("caller_bytes", "response.size", IstioStats.MetricDefinition.Type
                        .COUNTER),
                new IstioStats.MetricDefinition("last_code", "response.code", IstioStats.MetricDefinition.Type.GAUGE),
                new IstioStats.MetricDefinition("path_length", "size(request.path)",
                        IstioStats.MetricDefinition.Type.HISTOGRAM),
                new IstioStats.MetricDefinition("odd", "request.headers['x-absent']", null),
                new IstioStats.MetricDefinition("requests_total", "1", IstioStats.MetricDefinition.Type.COUNTER))));
        RequestLog alice = new RequestLog(null, MultiMap.caseInsensitiveMultiMap().add("x-user", "alice"), null, null,
                null, null, false);
        metrics.record(StreamInfos.withOverrides(StreamInfos.outboundOk(), o, alice));
        metrics.record(StreamInfos.withOverrides(StreamInfos.outboundOk(), o, alice));

        String served = PrometheusText.envoy(registry.scrape());
        List<String> lines = served.lines().toList();
        assertTrue(lines.stream().noneMatch(l -> l.contains("inmesh")), served);
        assertTrue(lines.contains("# TYPE istio_caller_bytes counter"), served);
        long bytes = StreamInfos.outboundOk().bytesSent();
        assertEquals(List.of("istio_caller_bytes{host=\"reviews:9080\",response_code=\"200\",user=\"alice\"} "
                + 2 * bytes), lines.stream().filter(l -> l.startsWith("istio_caller_bytes")).toList());
        assertEquals(List.of("istio_last_code{host=\"reviews:9080\"} 200"),
                lines.stream().filter(l -> l.startsWith("istio_last_code")).toList());
        assertTrue(lines.contains("istio_path_length_count{host=\"reviews:9080\"} 2"), served);
        assertTrue(lines.contains("istio_path_length_sum{host=\"reviews:9080\"} "
                + 2 * "/reviews/0".length()), served);
        assertTrue(lines.contains("istio_odd{host=\"reviews:9080\"} 0"), "no value: 0 added, as Istio's: " + served);
        assertTrue(lines.stream().noneMatch(l -> l.startsWith("istio_requests_total")),
                "a standard metric's name is not redefined (and this one is dropped): " + served);
    }

    private static String one(List<String> lines, java.util.function.Predicate<String> which) {
        List<String> found = lines.stream().filter(which).toList();
        assertEquals(1, found.size(), String.join("\n", lines));
        return found.get(0);
    }
}
