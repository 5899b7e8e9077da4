package dev.inmesh.runtime.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * The compressor filter's statistics under Envoy's names in {@code /stats}: {@code http.<stat_prefix>.compressor.}, its
 * library's name, its gzip library's {@code gzip.}, then {@code response.} (with a {@code response_direction_config})
 * for the response's counters; the counters of the request's {@code accept-encoding} directly under {@code gzip.}.
 * Scraped with the dots flattened, {@code envoy_http_compressor_<library>_gzip_response_compressed}.
 */
class CompressorStatsNamesTest {
    private static final String P = "http.inbound_0.0.0.0_9080.compressor.text_optimized.gzip.";

    @Test
    void aCompressorsCountersAreNamedUnderItsLibraryAndDirectionAsEnvoyNamesThem() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        DownstreamStats stats = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN).connectionManager(
                HttpConnectionManager.of("inbound_0.0.0.0_9080", "r", List.of()));
        DownstreamStats.CompressorCounters c = stats.compressor("text_optimized", true);
        c.compressed(true);
        c.header(DownstreamStats.Header.COMPRESSOR_USED);

        Map<String, Long> named = EnvoyStats.collect(registry, n -> n.contains(".compressor."), n -> n);
        assertEquals(1L, named.get(P + "response.compressed"), named.toString());
        assertEquals(0L, named.get(P + "response.not_compressed"));
        assertEquals(0L, named.get(P + "response.total_uncompressed_bytes"));
        assertEquals(0L, named.get(P + "response.content_length_too_small"));
        assertEquals(1L, named.get(P + "header_compressor_used"));
        assertEquals(0L, named.get(P + "no_accept_header"));
        assertEquals(0L, named.get(P + "not_compressed_etag"));
        assertEquals(0L, named.get(P + "header_compressor_overshadowed"));
        c.requestNotCompressed();
        named = EnvoyStats.collect(registry, n -> n.contains(".compressor."), n -> n);
        // the request direction's, which Envoy's filter makes whatever its config
        assertEquals(1L, named.get(P + "request.not_compressed"));
        for (String counter : List.of("compressed", "total_uncompressed_bytes", "total_compressed_bytes",
                "content_length_too_small")) {
            assertEquals(0L, named.get(P + "request." + counter), counter);
        }
        assertEquals(17, named.size(), named.toString());
        // the library's name keeps its underscores: only what follows it is split
        for (String name : named.keySet()) {
            assertEquals(true, name.startsWith(P), name);
        }
        assertNotNull(registry.find("envoy_http_compressor_text_optimized_gzip_response_compressed")
                .tag("http_conn_manager_prefix", "inbound_0.0.0.0_9080").meter(), "scraped as Envoy's, flattened");
    }

    @Test
    void withoutAResponseDirectionConfigTheResponsesCountersAreDirectlyUnderTheLibrary() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics.create(registry, WorkloadInfo.UNKNOWN).connectionManager(
                HttpConnectionManager.of("ingress", "r", List.of())).compressor("gzip.v1", false).compressed(false);

        Map<String, Long> named = new TreeMap<>(EnvoyStats.collect(registry, n -> n.contains(".compressor."),
                n -> n));
        assertEquals(1L, named.get("http.ingress.compressor.gzip_v1.gzip.not_compressed"), named.toString());
        assertEquals(0L, named.get("http.ingress.compressor.gzip_v1.gzip.header_identity"));
        assertEquals(0L, named.get("http.ingress.compressor.gzip_v1.gzip.request.not_compressed"));
    }
}
