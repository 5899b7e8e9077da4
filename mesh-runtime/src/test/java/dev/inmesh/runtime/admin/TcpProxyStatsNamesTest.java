package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.TcpProxyStats;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * A TCP proxy's downstream statistics under Envoy's names in {@code /stats}, {@code tcp.<stat_prefix>.<name>}, and
 * scraped with the prefix in Istio's tag {@code tcp_prefix}: Istio's outbound TCP chains name their stat prefix after
 * the cluster ({@code outbound|3306||mysql.default.svc.cluster.local}), so a prefix may hold dots and bars.
 */
class TcpProxyStatsNamesTest {

    @Test
    void aTcpProxysStatisticsAreNamedUnderTcpAndItsStatPrefixAsEnvoyNamesThem() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics metrics = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN);
        String prefix = "outbound|3306||mysql.default.svc.cluster.local";
        TcpProxyStats mysql = metrics.tcpProxy(prefix);
        mysql.connection();
        mysql.received(12);
        mysql.sent(30);
        mysql.idleTimeout();
        metrics.tcpProxy("other").noRoute();

        Map<String, Long> want = new TreeMap<>();
        for (String name : new String[] {"downstream_cx_total", "downstream_cx_no_route",
                "downstream_cx_rx_bytes_total", "downstream_cx_tx_bytes_total",
                "downstream_flow_control_paused_reading_total", "downstream_flow_control_resumed_reading_total",
                "idle_timeout", "max_downstream_connection_duration"}) {
            want.put("tcp." + prefix + "." + name, 0L);
            want.put("tcp.other." + name, 0L);
        }
        want.put("tcp." + prefix + ".downstream_cx_total", 1L);
        want.put("tcp." + prefix + ".downstream_cx_rx_bytes_total", 12L);
        want.put("tcp." + prefix + ".downstream_cx_tx_bytes_total", 30L);
        want.put("tcp." + prefix + ".idle_timeout", 1L);
        want.put("tcp.other.downstream_cx_no_route", 1L);
        assertEquals(want, EnvoyStats.collect(registry, n -> n.startsWith("tcp."), n -> n));
        assertEquals(1, metrics.tcpProxy(prefix).connections(), "shared by its prefix");
        assertNotNull(registry.find("envoy_tcp_downstream_cx_total").tag("tcp_prefix", prefix).meter());
    }
}
