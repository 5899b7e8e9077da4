package dev.inmesh.runtime.tracing;

import com.google.protobuf.ByteString;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.common.v1.AnyValue;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.resource.v1.Resource;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.ScopeSpans;
import io.opentelemetry.proto.trace.v1.Span;
import io.opentelemetry.proto.trace.v1.Status;
import java.util.List;
import java.util.Map;

/**
 * Finished spans as Envoy's OpenTelemetry tracer exports them in OTLP: a server span for a request to the workload, a
 * client span for one it makes, with the span's ids as bytes (a 16-byte trace id, 8-byte span and parent ids), its
 * start and end in nanoseconds since the epoch, the caller's {@code tracestate}, and the connection manager's tags as
 * string attributes. Its status is the one Envoy's span derives from its {@code http.status_code} tag, as
 * OpenTelemetry's HTTP conventions map it: {@code ERROR} for a 5xx, and for a 4xx of a client span (a server span's 4xx is the
 * caller's error, not its own); else unset, also for a request that got no response (code 0), which only the
 * {@code error} tag marks. One export request holds a batch under one resource whose {@code service.name} is the
 * tracer's {@code service_name}, with the {@code telemetry.sdk.*} attributes that say which SDK made the spans, as
 * Envoy's say {@code cpp}, {@code envoy} and its version: here {@code java}, {@code inmesh} and Inmesh's version.
 */
final class OtlpSpans {
    /** Inmesh's version, as its jar's manifest gives it; {@code dev} when it runs from classes. */
    static final String SDK_VERSION = java.util.Objects.requireNonNullElse(
            OtlpSpans.class.getPackage().getImplementationVersion(), "dev");

    private OtlpSpans() {}

    static Span span(ActiveSpan s, String name, long durationMicros, Map<String, String> tags) {
        long startNanos = s.startMicros * 1000;
        Span.Builder b = Span.newBuilder()
                .setTraceId(ids(s.traceIdHigh, s.traceId))
                .setSpanId(id(s.id))
                .setName(name)
                .setKind(s.ingress ? Span.SpanKind.SPAN_KIND_SERVER : Span.SpanKind.SPAN_KIND_CLIENT)
                .setStartTimeUnixNano(startNanos)
                .setEndTimeUnixNano(startNanos + durationMicros * 1000);
        if (s.parentId != 0) {
            b.setParentSpanId(id(s.parentId));
        }
        if (s.tracestate != null) {
            b.setTraceState(s.tracestate);
        }
        for (Map.Entry<String, String> t : tags.entrySet()) {
            b.addAttributes(attribute(t.getKey(), t.getValue()));
        }
        if (error(tags.get("http.status_code"), s.ingress)) {
            b.setStatus(Status.newBuilder().setCode(Status.StatusCode.STATUS_CODE_ERROR));
        }
        return b.build();
    }

    /** Whether a span whose {@code http.status_code} is {@code code} has the status {@code ERROR}. */
    static boolean error(String code, boolean server) {
        int status;
        try {
            status = code == null ? 0 : Integer.parseInt(code);
        } catch (NumberFormatException e) {
            return false; // as Envoy: a code that is no number leaves the status unset
        }
        return status >= 500 || status >= 400 && !server;
    }

    /** One export of {@code spans}, under a resource named {@code serviceName}. */
    static ExportTraceServiceRequest request(String serviceName, List<Span> spans) {
        Resource resource = Resource.newBuilder().addAttributes(attribute("service.name", serviceName))
                .addAttributes(attribute("telemetry.sdk.language", "java"))
                .addAttributes(attribute("telemetry.sdk.name", "inmesh"))
                .addAttributes(attribute("telemetry.sdk.version", SDK_VERSION)).build();
        return ExportTraceServiceRequest.newBuilder().addResourceSpans(ResourceSpans.newBuilder()
                .setResource(resource).addScopeSpans(ScopeSpans.newBuilder().addAllSpans(spans))).build();
    }

    private static KeyValue attribute(String key, String value) {
        return KeyValue.newBuilder().setKey(key).setValue(AnyValue.newBuilder().setStringValue(value)).build();
    }

    private static ByteString ids(long high, long low) {
        byte[] b = new byte[16];
        put(b, 0, high);
        put(b, 8, low);
        return ByteString.copyFrom(b);
    }

    private static ByteString id(long id) {
        byte[] b = new byte[8];
        put(b, 0, id);
        return ByteString.copyFrom(b);
    }

    private static void put(byte[] b, int at, long v) {
        for (int i = 7; i >= 0; i--) {
            b[at + i] = (byte) v;
            v >>>= 8;
        }
    }
}
