package dev.inmesh.runtime.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.IstioStats;
import io.micrometer.core.instrument.Tags;
import java.util.List;
import org.junit.jupiter.api.Test;

class StatsOverridesTest {
    private static StatsOverrides compile(IstioStats.MetricOverride... metrics) {
        return StatsOverrides.compile(new IstioStats(List.of(metrics)));
    }

    @Test
    void aDropNamesOneMetricAndADropWithoutANameDropsNothingAsIstiosStatsReadIt() {
        StatsOverrides o = compile(new IstioStats.MetricOverride("requests_total", List.of("reporter"), true));
        assertTrue(o.drops(StatsOverrides.Metric.REQUESTS_TOTAL));
        assertFalse(o.drops(StatsOverrides.Metric.REQUEST_DURATION_MILLISECONDS));
        Tags tags = Tags.of("reporter", "destination");
        assertEquals(tags, o.tags(StatsOverrides.Metric.REQUESTS_TOTAL, tags), "a dropped entry removes no label");
        assertSame(StatsOverrides.NONE, compile(new IstioStats.MetricOverride("", List.of(), true)));
        assertSame(StatsOverrides.NONE, compile(new IstioStats.MetricOverride("requests", List.of(), true)),
                "not one of Istio's metric names");
    }

    @Test
    void tagsToRemoveWithoutANameEmptyTheStandardLabelsOfEveryMetric() {
        StatsOverrides o = compile(new IstioStats.MetricOverride("", List.of("request_protocol", "request_host"),
                false), new IstioStats.MetricOverride("response_bytes", List.of("response_code"), false));
        Tags tags = Tags.of("request_protocol", "http", "response_code", "200");
        for (StatsOverrides.Metric m : StatsOverrides.Metric.values()) {
            assertEquals(m == StatsOverrides.Metric.RESPONSE_BYTES ? Tags.of("request_protocol", "", "response_code",
                    "") : Tags.of("request_protocol", "", "response_code", "200"), o.tags(m, tags), m.name());
            assertFalse(o.drops(m));
        }
        assertSame(StatsOverrides.NONE, compile(new IstioStats.MetricOverride("", List.of("request_host"), false)),
                "not a standard label: skipped");
        assertEquals(o, compile(new IstioStats.MetricOverride("", List.of("request_protocol"), false),
                new IstioStats.MetricOverride("response_bytes", List.of("response_code"), false)));
    }

    @Test
    void aLaterEntryDecidesALabelAndDimensionsApplyToRequestsAndTcpConnections() {
        IstioStats.MetricOverride remove = new IstioStats.MetricOverride("", List.of("response_code"), false);
        IstioStats.MetricOverride given = new IstioStats.MetricOverride("", List.of(), false,
                java.util.Map.of("response_code", "'x'", "request_host", "request.host"));
        StreamInfo s = StreamInfos.outboundOk();
        Tags tags = Tags.of("response_code", "200");
        StatsOverrides o = compile(remove, given);
        assertTrue(o.evaluated());
        assertEquals(Tags.of("response_code", "x", "request_host", "reviews:9080"),
                o.tags(StatsOverrides.Metric.REQUESTS_TOTAL, tags, new StatsOverrides.Evaluation(o, s)));
        StatsOverrides reversed = compile(given, remove);
        assertEquals(Tags.of("response_code", "", "request_host", "reviews:9080"),
                reversed.tags(StatsOverrides.Metric.REQUESTS_TOTAL, tags, new StatsOverrides.Evaluation(reversed, s)));
        assertEquals(java.util.Set.of("request_host"),
                o.addedLabels(StatsOverrides.Metric.TCP_CONNECTIONS_OPENED_TOTAL));
        assertEquals(Tags.of("response_code", "x", "request_host", "reviews:9080"),
                o.tags(StatsOverrides.Metric.TCP_CONNECTIONS_OPENED_TOTAL, tags, new StatsOverrides.Evaluation(o, s)),
                "a TCP connection's are given");
        assertEquals(compile(remove, given), o, "equal by their expressions");
    }

    @Test
    void definitionsAreIstiosOwnMetricsLabelledOnlyByTheEntriesThatApplyToThem() {
        // as Istio's stats: a standard metric's name and a value that does not compile are skipped, the first of two
        // definitions with one name kept; labels from entries naming it or no metric (not dropping), standard or not
        IstioStats.MetricDefinition.Type counter = IstioStats.MetricDefinition.Type.COUNTER;
        StatsOverrides o = StatsOverrides.compile(new IstioStats(List.of(
                new IstioStats.MetricOverride("", List.of("response_code"), false,
                        java.util.Map.of("host", "request.host")),
                new IstioStats.MetricOverride("hits", List.of(), false,
                        java.util.Map.of("response_code", "'x'", "bad", "request.host +")),
                new IstioStats.MetricOverride("requests_total", List.of(), false, java.util.Map.of("other", "'o'")),
                new IstioStats.MetricOverride("hits", List.of(), true, java.util.Map.of("dropped", "'d'"))), List.of(
                new IstioStats.MetricDefinition("requests_total", "1", counter),
                new IstioStats.MetricDefinition("broken", "request.size +", counter),
                new IstioStats.MetricDefinition("hits", "request.size + 2", counter),
                new IstioStats.MetricDefinition("hits", "5", IstioStats.MetricDefinition.Type.GAUGE))));
        assertTrue(o.evaluated());
        assertEquals(1, o.customs().size(), o.toString());
        StatsOverrides.Custom hits = o.customs().get(0);
        assertEquals(IstioStats.MetricDefinition.Type.COUNTER, hits.type());
        StreamInfo s = StreamInfos.outboundOk();
        StatsOverrides.Evaluation e = new StatsOverrides.Evaluation(o, s);
        assertEquals(Tags.of("host", "reviews:9080", "response_code", "x"), hits.tags(e));
        assertEquals(s.bytesReceived() + 2, hits.amount(e));
        assertEquals(Tags.of("response_code", "", "host", "reviews:9080", "other", "o"),
                o.tags(StatsOverrides.Metric.REQUESTS_TOTAL, Tags.of("response_code", "200"), e),
                "the definition's entry does not give the standard metrics' response_code");
        assertTrue(StatsOverrides.compile(new IstioStats(List.of(),
                List.of(new IstioStats.MetricDefinition("n", "1", counter)))).evaluated(),
                "definitions alone are overrides");
    }

    @Test
    void aDefinitionsValueIsAnUnsignedIntegerElseZero() {
        StreamInfo s = StreamInfos.outboundOk();
        for (var c : java.util.Map.of("7", 7.0, "7u", 7.0, "-1", 0.0, "1.5", 0.0, "'12'", 12.0, "'x'", 0.0, "true", 0.0,
                "request.headers['x-absent']", 0.0).entrySet()) {
            StatsOverrides o = StatsOverrides.compile(new IstioStats(List.of(), List.of(
                    new IstioStats.MetricDefinition("n", c.getKey(), IstioStats.MetricDefinition.Type.HISTOGRAM))));
            assertEquals(c.getValue(), o.customs().get(0).amount(new StatsOverrides.Evaluation(o, s)), c.getKey());
        }
    }
}
