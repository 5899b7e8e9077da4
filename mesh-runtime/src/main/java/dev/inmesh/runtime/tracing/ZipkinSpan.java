package dev.inmesh.runtime.tracing;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.util.List;
import java.util.Map;

/**
 * A finished span as Envoy's Zipkin tracer reports it in Zipkin's v2 JSON ({@code HTTP_JSON}): ids in hex, kind,
 * {@code shared}, name, timestamp and duration in microseconds, the proxy as local endpoint (its service name, IP and
 * port) and the tags.
 *
 * @param parentId the parent span's id; 0 for none (a root span)
 * @param shared whether the span is written {@code "shared": true}: Envoy's serializer writes it on every server span
 *               of a tracer with {@code shared_span_context} (its default), whether or not the span took its caller's
 *               id
 * @param localIp this workload's IP, or null for none
 */
public record ZipkinSpan(long traceIdHigh, long traceId, long id, long parentId, Kind kind, boolean shared,
                         String name, long timestampMicros, long durationMicros, String serviceName, String localIp,
                         Map<String, String> tags) {
    /** A server span (a request to the workload) or a client span (one it makes). */
    public enum Kind { SERVER, CLIENT }

    public ZipkinSpan {
        tags = Map.copyOf(tags);
    }

    /** The span as one element of a Zipkin v2 JSON list. */
    public JsonObject toJson() {
        JsonObject o = new JsonObject().put("traceId", traceIdHigh == 0 ? SpanContext.hex(traceId)
                : SpanContext.hex(traceIdHigh) + SpanContext.hex(traceId));
        if (parentId != 0) {
            o.put("parentId", SpanContext.hex(parentId));
        }
        o.put("id", SpanContext.hex(id)).put("kind", kind.name());
        if (shared) {
            o.put("shared", true);
        }
        if (!name.isEmpty()) {
            o.put("name", name);
        }
        o.put("timestamp", timestampMicros).put("duration", durationMicros);
        JsonObject local = new JsonObject();
        if (serviceName != null && !serviceName.isEmpty()) {
            local.put("serviceName", serviceName);
        }
        if (localIp != null && !localIp.isEmpty()) {
            local.put(localIp.indexOf(':') >= 0 ? "ipv6" : "ipv4", localIp);
        }
        // Envoy's local endpoint is the server's own address, whose port is 0
        local.put("port", 0);
        o.put("localEndpoint", local);
        if (!tags.isEmpty()) {
            o.put("tags", new JsonObject(new java.util.TreeMap<String, Object>(tags)));
        }
        return o;
    }

    /** Spans as the body of a report to a collector's {@code /api/v2/spans}: a JSON list. */
    public static String toJson(List<ZipkinSpan> spans) {
        JsonArray a = new JsonArray();
        for (ZipkinSpan s : spans) {
            a.add(s.toJson());
        }
        return a.encode();
    }
}
