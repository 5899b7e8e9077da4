package dev.inmesh.runtime.tracing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.Tracing;
import io.opentelemetry.proto.trace.v1.Span;
import io.vertx.core.MultiMap;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * W3C trace context as Envoy's OpenTelemetry tracer reads and writes it ({@code traceparent}, {@code tracestate}), and
 * the spans of a connection manager with that tracer: which requests continue the caller's trace, which start one,
 * which get no span at all, and what goes upstream.
 */
class W3cTraceContextTest {
    private static final String TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
    private static final String PARENT = "00f067aa0ba902b7";
    private static final Tracing.OpenTelemetry OTEL = new Tracing.OpenTelemetry("reviews.default",
            new Tracing.OpenTelemetry.Grpc("otel", null, null, Map.of()));

    private static MultiMap headers(String... nameValues) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i < nameValues.length; i += 2) {
            h.add(nameValues[i], nameValues[i + 1]);
        }
        return h;
    }

    private static Tracer tracer(double randomSampling) {
        return Tracer.compile(new Tracing(100, randomSampling, 100, 256, List.of(), "envoy.tracers.opentelemetry",
                OTEL), null, name -> null);
    }

    private static ActiveSpan start(Tracer t, MultiMap h, boolean ingress) {
        return t.start(h, false, ingress, "reviews:9080", Instant.now(), System.nanoTime(), new Random(7), null);
    }

    @Test
    void aWellFormedTraceparentGivesItsTraceIdParentAndSampledFlag() {
        SpanContext c = W3cTraceContext.extract(headers("traceparent", "00-" + TRACE + "-" + PARENT + "-01"));
        assertEquals(TRACE, c.traceIdHex());
        assertEquals(PARENT, SpanContext.hex(c.spanId()));
        assertTrue(c.sampled());
        assertFalse(W3cTraceContext.extract(headers("traceparent", "00-" + TRACE + "-" + PARENT + "-00")).sampled());
        assertTrue(W3cTraceContext.extract(headers("traceparent", "00-" + TRACE + "-" + PARENT + "-03")).sampled(),
                "the sampled flag is bit 0; other bits do not matter");
        assertTrue(W3cTraceContext.extract(headers("traceparent", "cc-" + TRACE.toUpperCase() + "-" + PARENT
                + "-01")).sampled(), "any hex version, upper-case digits too, as Envoy's check");
        assertNull(W3cTraceContext.extract(headers("tracestate", "congo=t61rcWkgMzE")), "no traceparent: none");
    }

    @Test
    void aMalformedTraceparentIsInvalidAsEnvoyReadsIt() {
        for (String bad : List.of(
                "00-" + TRACE + "-" + PARENT + "-1", // 54 characters
                "00-" + TRACE + "-" + PARENT + "-01-", // 56: a future version's extra field, which Envoy refuses
                "00_" + TRACE + "-" + PARENT + "-01",
                "00-" + TRACE.substring(1) + "x-" + PARENT + "-01",
                "0g-" + TRACE + "-" + PARENT + "-01",
                "00-00000000000000000000000000000000-" + PARENT + "-01", // an all-zero trace id
                "00-" + TRACE + "-0000000000000000-01", // an all-zero parent id
                "00-" + TRACE + "-" + PARENT + "-0z",
                "")) {
            assertSame(SpanContext.INVALID, W3cTraceContext.extract(headers("traceparent", bad)), bad);
        }
    }

    @Test
    void aSpanContinuesTheCallersTraceWithANewIdAndPassesTheTracestateOn() {
        MultiMap h = headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab",
                "traceparent", "00-" + TRACE + "-" + PARENT + "-01", "tracestate", "congo=t61rcWkgMzE");
        ActiveSpan s = start(tracer(100), h, true);
        assertEquals(TRACE, s.context().traceIdHex());
        assertEquals(Long.parseUnsignedLong(PARENT, 16), s.parentId, "the caller's span is the parent");
        assertNotEquals(Long.parseUnsignedLong(PARENT, 16), s.id);
        assertTrue(s.sampled);
        MultiMap up = headers("x-b3-traceid", "463ac35c9f6413ad");
        s.inject(up, null);
        assertEquals("00-" + TRACE + "-" + SpanContext.hex(s.id) + "-01", up.get("traceparent"));
        assertEquals("congo=t61rcWkgMzE", up.get("tracestate"));
        assertEquals("463ac35c9f6413ad", up.get("x-b3-traceid"), "B3 headers are not this tracer's: left as they are");
        assertNull(up.get("x-b3-spanid"));
    }

    @Test
    void aTracestateSentOnSeveralHeaderLinesGoesUpstreamAsOneListOfThemAllInTheirOrder() {
        MultiMap h = headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab",
                "traceparent", "00-" + TRACE + "-" + PARENT + "-01",
                "tracestate", "rojo=00f067aa0ba902b7", "tracestate", "congo=t61rcWkgMzE");
        ActiveSpan s = start(tracer(100), h, false);
        MultiMap up = headers("tracestate", "rojo=00f067aa0ba902b7", "tracestate", "congo=t61rcWkgMzE");
        s.inject(up, null);
        assertEquals(List.of("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), up.getAll("tracestate"),
                "Envoy's tracer joins the lines with commas, as one field; none is lost");
        Span span = OtlpSpans.span(s, "reviews:9080/*", 10, Map.of());
        assertEquals("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", span.getTraceState());
    }

    @Test
    void withoutATraceparentANewTraceOf128BitsStartsSampledAsTheConnectionManagerDecided() {
        MultiMap traced = headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab",
                "tracestate", "congo=t61rcWkgMzE");
        ActiveSpan s = start(tracer(100), traced, false);
        assertNotEquals(0, s.traceIdHigh, "OpenTelemetry's trace ids are 128-bit");
        assertEquals(0, s.parentId);
        assertTrue(s.sampled);
        MultiMap up = headers("tracestate", "congo=t61rcWkgMzE");
        s.inject(up, null);
        assertTrue(up.get("traceparent").endsWith("-01"));
        assertNull(up.get("tracestate"), "a tracestate without a traceparent means nothing and goes no further");

        ActiveSpan notTraced = start(tracer(0), headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab"),
                false);
        assertFalse(notTraced.sampled);
        MultiMap up2 = headers();
        notTraced.inject(up2, null);
        assertTrue(up2.get("traceparent").endsWith("-00"), "the decision goes upstream either way");
    }

    @Test
    void aSampledCallerIsNotSampledWhenTheConnectionManagerDecidesNotToTraceNorTheOtherWayRound() {
        ActiveSpan notDecided = start(tracer(0), headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab",
                "traceparent", "00-" + TRACE + "-" + PARENT + "-01"), true);
        assertFalse(notDecided.sampled, "Envoy's OpenTelemetry tracer respects the connection manager's decision");
        assertEquals(TRACE, notDecided.context().traceIdHex(), "the trace goes on, unsampled");
        ActiveSpan callerSaidNo = start(tracer(100), headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab",
                "traceparent", "00-" + TRACE + "-" + PARENT + "-00"), true);
        assertFalse(callerSaidNo.sampled, "the caller's flag is respected");
    }

    @Test
    void aMalformedTraceparentGivesTheRequestNoSpanAndItsHeadersGoOnAsTheyCame() {
        assertNull(start(tracer(100), headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab",
                "traceparent", "00-" + TRACE + "-" + PARENT + "-1"), true));
    }

    @Test
    void aSpansStatusIsAnErrorForA5xxAndForA4xxOnlyOnTheClientSideNotForAMissingResponseAsEnvoysSpanSetsIt() {
        ActiveSpan server = start(tracer(100), headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab"), true);
        ActiveSpan client = start(tracer(100), headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab"), false);
        var error = io.opentelemetry.proto.trace.v1.Status.StatusCode.STATUS_CODE_ERROR;
        var unset = io.opentelemetry.proto.trace.v1.Status.StatusCode.STATUS_CODE_UNSET;
        assertEquals(error, OtlpSpans.span(server, "n", 1, Map.of("http.status_code", "503", "error", "true"))
                .getStatus().getCode());
        assertEquals(error, OtlpSpans.span(client, "n", 1, Map.of("http.status_code", "404")).getStatus().getCode(),
                "a client span's 4xx is an error");
        assertEquals(unset, OtlpSpans.span(server, "n", 1, Map.of("http.status_code", "404")).getStatus().getCode(),
                "a server span's 4xx is its caller's error");
        assertEquals(unset, OtlpSpans.span(client, "n", 1, Map.of("http.status_code", "0", "error", "true"))
                .getStatus().getCode(), "no response: tagged error, but Envoy derives the status from the code only");
        assertEquals(unset, OtlpSpans.span(client, "n", 1, Map.of("http.status_code", "200")).getStatus().getCode());
    }

    @Test
    void withoutADecoratorASpanIsNamedAsEnvoysOpenTelemetryTracerNamesItIngressOrEgressAndTheHost() {
        Tracer t = tracer(100);
        ActiveSpan server = start(t, headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab"), true);
        ActiveSpan client = start(t, headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab"), false);
        assertEquals("ingress", t.name(server, null));
        assertEquals("egress reviews:9080", t.name(client, ""));
        assertEquals("reviews.default.svc.cluster.local:9080/*", t.name(client,
                "reviews.default.svc.cluster.local:9080/*"), "a route's decorator names the span");
        ActiveSpan named = start(t, headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab",
                "x-envoy-decorator-operation", "ratings:9080/*"), true);
        assertEquals("ratings:9080/*", t.name(named, null), "so does the caller's decorated operation");
    }

    @Test
    void aFinishedSpanIsAnOtlpSpanWithItsKindIdsTimesAndTagsAsAttributes() {
        ActiveSpan s = start(tracer(100), headers("x-request-id", "00000001-1234-4567-89ab-0123456789ab",
                "traceparent", "00-" + TRACE + "-" + PARENT + "-01", "tracestate", "a=b"), true);
        Span span = OtlpSpans.span(s, "reviews:9080/*", 1500, Map.of("http.status_code", "503", "error", "true"));
        assertEquals(Span.SpanKind.SPAN_KIND_SERVER, span.getKind());
        assertEquals(TRACE, TestOtlpCollector.hex(span.getTraceId()));
        assertEquals(PARENT, TestOtlpCollector.hex(span.getParentSpanId()));
        assertEquals(SpanContext.hex(s.id), TestOtlpCollector.hex(span.getSpanId()));
        assertEquals(1_500_000, span.getEndTimeUnixNano() - span.getStartTimeUnixNano());
        assertEquals("a=b", span.getTraceState());
        assertEquals("reviews:9080/*", span.getName());
        assertEquals(io.opentelemetry.proto.trace.v1.Status.StatusCode.STATUS_CODE_ERROR, span.getStatus().getCode());
        assertTrue(span.getAttributesList().stream().anyMatch(a -> a.getKey().equals("http.status_code")
                && a.getValue().getStringValue().equals("503")));
        var request = OtlpSpans.request("reviews.default", List.of(span));
        assertEquals("service.name", request.getResourceSpans(0).getResource().getAttributes(0).getKey());
        assertEquals("reviews.default", request.getResourceSpans(0).getResource().getAttributes(0).getValue()
                .getStringValue());
        Map<String, String> resource = new java.util.LinkedHashMap<>();
        request.getResourceSpans(0).getResource().getAttributesList()
                .forEach(a -> resource.put(a.getKey(), a.getValue().getStringValue()));
        assertEquals("java", resource.get("telemetry.sdk.language"), "the SDK, as Envoy's resource names its own: "
                + resource);
        assertEquals("inmesh", resource.get("telemetry.sdk.name"));
        assertEquals(OtlpSpans.SDK_VERSION, resource.get("telemetry.sdk.version"));
    }
}
