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
                o.tags(StatsOverrides.Metric.REQUESTS_TOTAL, tags, s));
        assertEquals(Tags.of("response_code", "", "request_host", "reviews:9080"),
                compile(given, remove).tags(StatsOverrides.Metric.REQUESTS_TOTAL, tags, s));
        assertEquals(java.util.Set.of("request_host"),
                o.addedLabels(StatsOverrides.Metric.TCP_CONNECTIONS_OPENED_TOTAL));
        assertEquals(Tags.of("response_code", "x", "request_host", "reviews:9080"),
                o.tags(StatsOverrides.Metric.TCP_CONNECTIONS_OPENED_TOTAL, tags, s), "a TCP connection's are given");
        assertEquals(compile(remove, given), o, "equal by their expressions");
    }
}
