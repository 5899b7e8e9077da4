package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.postRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;

import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's buffer filter in the router (the in-JVM client's and the standalone proxy's path): a body is held whole
 * before the upstream gets it, under {@code max_request_bytes} (over it: 413, {@code downstream_rq_too_large}), and
 * sent with a {@code content-length} where the request had none; the most specific {@code BufferPerRoute} turns it
 * off or changes its limit.
 */
class RouterBufferTest {
    private final RouterRig rig = new RouterRig();
    private final WireMockServer wm = rig.wiremock();
    private final ClusterManager clusters = rig.clusters(cluster("c", wm.port()));
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final HttpConnectionManager hcm = HttpConnectionManager.of("outbound_0.0.0.0_9080", "9080",
            List.of(HttpFilter.of("envoy.filters.http.buffer", "envoy.extensions.filters.http.buffer.v3.Buffer")
                    .withBuffer(new dev.inmesh.api.config.listener.Buffer(8)),
                    HttpFilter.of("envoy.filters.http.router", "")));
    private final DownstreamStats downstream = MeshMetrics.create(registry, WorkloadInfo.UNKNOWN)
            .connectionManager(hcm);

    RouterBufferTest() {
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody("c")));
    }

    @AfterEach
    void closeRig() {
        rig.close();
    }

    /** /off turns the filter off, /large raises its limit to 100 bytes; the rest take the filter's 8 bytes. */
    private static RouteTable table() {
        return RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                  - match: {prefix: /off}
                    route: {cluster: c}
                    typed_per_filter_config:
                      envoy.filters.http.buffer:
                        "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                        disabled: true
                  - match: {prefix: /large}
                    route: {cluster: c}
                    typed_per_filter_config:
                      envoy.filters.http.buffer:
                        "@type": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute
                        buffer: {max_request_bytes: 100}
                  - match: {prefix: /idle}
                    route: {cluster: c, idle_timeout: 0.2s}
                  - match: {prefix: /}
                    route: {cluster: c}
                """);
    }

    /** A POST to {@code path} whose body arrives after the request, in chunks, without a content-length. */
    private CompletableFuture<RouterRig.Result> streamed(String path, String... chunks) {
        RouterRequest req = RouterRig.request(HttpMethod.POST, path, null).bufferAndHeaderMutation(hcm, HeaderMutationFilter.compile(hcm))
                .downstreamStats(downstream);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        var result = rig.start(rig.router(), req, table(), clusters);
        rig.ctx.runOnContext(v -> {
            for (String c : chunks) {
                body.write(Buffer.buffer(c));
            }
            body.end();
        });
        return result;
    }

    /**
     * A body that stops coming while the filter holds it: the route's idle_timeout ends the stream with the connection
     * manager's 408 (SI), as Envoy's stream idle timer runs whatever filter waits, and the body is dropped.
     */
    @Test
    void aBodyThatStopsComingWhileHeldEndsAtTheStreamIdleTimeout() {
        RouterRequest req = RouterRig.request(HttpMethod.POST, "/idle", null).bufferAndHeaderMutation(hcm, HeaderMutationFilter.compile(hcm))
                .downstreamStats(downstream);
        RequestBodyStream body = new RequestBodyStream();
        req.bodyStream(body);
        var result = rig.start(rig.router(), req, table(), clusters);
        rig.ctx.runOnContext(v -> body.write(Buffer.buffer("hel")));
        var r = RouterRig.await(result);
        assertEquals(408, r.status());
        assertEquals("stream timeout", r.body());
        assertEquals("stream_idle_timeout", r.info().responseCodeDetails());
        assertTrue(r.info().responseFlags().contains(dev.inmesh.runtime.stats.ResponseFlag.STREAM_IDLE_TIMEOUT),
                r.info().responseFlags().toString());
        wm.verify(0, anyRequestedFor(anyUrl()));
        assertTrue(scrape().lines().anyMatch(l -> l.contains("downstream_rq_idle_timeout") && l.endsWith(" 1.0")),
                scrape());
    }

    private String scrape() {
        return registry.scrape();
    }

    @Test
    void aBodyOverMaxRequestBytesIsAnswered413WithoutTheUpstreamAndCountedAsTooLarge() {
        var r = RouterRig.await(streamed("/a", "hello ", "world"));
        assertEquals(413, r.status());
        assertEquals("Payload Too Large", r.body());
        assertEquals("request_payload_too_large", r.info().responseCodeDetails());
        wm.verify(0, anyRequestedFor(anyUrl()));
        assertTrue(scrape().lines().anyMatch(l -> l.contains("downstream_rq_too_large") && l.endsWith(" 1.0")),
                scrape());
    }

    @Test
    void aStreamedBodyUnderTheLimitReachesTheUpstreamWholeWithItsContentLength() {
        var r = RouterRig.await(streamed("/a", "hel", "lo"));
        assertEquals(200, r.status());
        wm.verify(postRequestedFor(urlEqualTo("/a")).withHeader("content-length", equalTo("5"))
                .withoutHeader("transfer-encoding").withRequestBody(equalTo("hello")));
    }

    @Test
    void aRequestWithoutABodyGetsNoContentLength() {
        var r = rig.call(rig.router(), RouterRig.get("/a").bufferAndHeaderMutation(hcm, HeaderMutationFilter.compile(hcm)), table(), clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/a")).withoutHeader("content-length"));
    }

    @Test
    void aRouteThatDisablesTheFilterLetsALargeBodyGoOnStreaming() {
        var r = RouterRig.await(streamed("/off", "a body longer ", "than eight bytes"));
        assertEquals(200, r.status());
        wm.verify(postRequestedFor(urlEqualTo("/off")).withHeader("transfer-encoding", equalTo("chunked"))
                .withRequestBody(equalTo("a body longer than eight bytes")));
    }

    @Test
    void aRoutesBufferReplacesTheFiltersLimit() {
        var r = RouterRig.await(streamed("/large", "a body longer ", "than eight bytes"));
        assertEquals(200, r.status());
        wm.verify(postRequestedFor(urlEqualTo("/large")).withHeader("content-length", equalTo("30"))
                .withRequestBody(equalTo("a body longer than eight bytes")));
    }
}
