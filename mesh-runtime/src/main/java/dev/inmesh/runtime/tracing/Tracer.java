package dev.inmesh.runtime.tracing;

import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.MultiMap;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.random.RandomGenerator;

/**
 * A connection manager's {@code tracing} with the Zipkin or the OpenTelemetry tracer, compiled once for its snapshot:
 * the sampling percentages as Envoy's numerators out of 10000, the custom tags with their environment variables read,
 * the collector. {@link #start} takes Envoy's trace decision for a request and begins its span; {@link #finish} ends
 * it with Envoy's tags and hands a sampled one to the reporter.
 *
 * <p>The decision is Envoy's connection manager's, kept in the request's {@code x-request-id} (a UUID whose
 * 15th character says why a request is traced: {@code 9} sampled, {@code a} forced, {@code b} client, {@code 4} not)
 * so that the hops after this one keep it: a request not yet traced is traced when it has
 * {@code x-client-trace-id} and a random draw out of 100 falls within {@code client_sampling}, else when it has a
 * trusted {@code x-envoy-force-trace}, else when the first 8 hex digits of its id, modulo 10000, fall within
 * {@code random_sampling}; then none is traced whose id's value modulo 10000 falls outside
 * {@code overall_sampling}. As Envoy's connection manager compiles them, {@code random_sampling} and
 * {@code overall_sampling} count in ten-thousandths and {@code client_sampling} in whole percents, each cut (not
 * rounded) to its unit, so that a hop here and an Envoy hop take the same decision
 * on the same id. A B3 sampling flag the caller sent overrides the decision for the span (Envoy's Zipkin tracer), and
 * a request whose id is missing or whose first 8 characters are not hex is not traced unless its caller says so. With
 * the OpenTelemetry tracer, a span is sampled when the decision traces it and the caller's {@code traceparent}, if
 * any, is sampled too (Envoy's OpenTelemetry tracer since it respects the connection manager's decision,
 * envoyproxy/envoy#45830).
 */
public final class Tracer {
    static final char NOT_TRACED = '4';
    static final char SAMPLED = '9';
    static final char FORCED = 'a';
    static final char CLIENT = 'b';
    private static final int REASON_AT = 14;

    private final Tracing config;
    /** The tracer that reports the spans: the connection manager's provider's, or the bootstrap's. */
    private final Tracing.Provider provider;
    /** The Zipkin tracer, or null when {@link #provider} is OpenTelemetry's. */
    private final Tracing.Zipkin zipkin;
    /** {@code client_sampling} in whole percents. */
    private final int clientPercent;
    /** {@code random_sampling} in ten-thousandths. */
    private final int randomNumerator;
    /** {@code overall_sampling} in ten-thousandths. */
    private final int overallNumerator;
    /** The literal and environment tags, resolved once; a request header tag's name in {@link #headerTags}. */
    private final Map<String, String> fixedTags;
    private final List<Tracing.CustomTag> headerTags;

    private Tracer(Tracing config, Tracing.Provider provider, Function<String, String> environment) {
        this.config = config;
        this.provider = provider;
        this.zipkin = provider instanceof Tracing.Zipkin z ? z : null;
        this.clientPercent = (int) config.clientSampling();
        this.randomNumerator = numerator(config.randomSampling());
        this.overallNumerator = numerator(config.overallSampling());
        Map<String, String> fixed = new LinkedHashMap<>();
        List<Tracing.CustomTag> headers = new ArrayList<>();
        for (Tracing.CustomTag t : config.customTags()) {
            switch (t.kind()) {
                case LITERAL -> fixed.put(t.tag(), t.name());
                case ENVIRONMENT -> {
                    String v = environment.apply(t.name());
                    fixed.put(t.tag(), v == null ? t.defaultValue() : v);
                }
                case REQUEST_HEADER -> headers.add(t);
                // Inmesh's filters write no dynamic metadata (Envoy's RBAC filter writes its shadow results there):
                // the value is always absent, so the tag is its default, as Envoy's is without the metadata
                case REQUEST_METADATA -> fixed.put(t.tag(), t.defaultValue());
            }
        }
        this.fixedTags = Map.copyOf(fixed);
        this.headerTags = List.copyOf(headers);
    }

    /**
     * The tracer of a connection manager's {@code tracing}, environment tags read from the process's environment;
     * null when it has none, or reports to no tracer Inmesh applies (its requests are then not traced at all).
     *
     * @param bootstrapTracer the bootstrap's tracer, which reports for a {@code tracing} that names no provider;
     *                        null for none
     */
    public static Tracer compile(Tracing tracing, Tracing.Provider bootstrapTracer) {
        return compile(tracing, bootstrapTracer, System::getenv);
    }

    /** As {@link #compile(Tracing, Tracing.Provider)}, environment tags read from {@code environment} (tests). */
    public static Tracer compile(Tracing tracing, Tracing.Provider bootstrapTracer,
                                 Function<String, String> environment) {
        Tracing.Provider provider = tracing == null ? null : tracing.tracer(bootstrapTracer);
        return provider == null ? null : new Tracer(tracing, provider, environment);
    }

    /** Whether the spans propagate as W3C trace context (the OpenTelemetry tracer) rather than B3 (Zipkin's). */
    boolean w3c() {
        return zipkin == null;
    }

    /**
     * In-JVM, a request the application makes while handling one that {@code mesh.inbound} traced (on that request's
     * Vert.x context) and that carries no context of this tracer's own ({@code traceparent}, or B3) continues the
     * inbound span's trace, as if the application had passed its headers on: its client span is a child of the
     * server span.
     */
    public void inheritBoundSpan(MultiMap headers) {
        ActiveSpan inbound = ActiveSpan.boundToCurrentContext();
        if (inbound == null) {
            return;
        }
        if (w3c()) {
            if (!headers.contains(W3cTraceContext.TRACEPARENT)) {
                W3cTraceContext.inject(headers, inbound.traceIdHigh, inbound.traceId, inbound.id, inbound.sampled,
                        inbound.tracestate);
            }
        } else if (!headers.contains(B3.TRACE_ID) && !headers.contains(B3.SINGLE)) {
            headers.set(B3.TRACE_ID, inbound.context().traceIdHex());
            headers.set(B3.SPAN_ID, SpanContext.hex(inbound.id));
            headers.set(B3.SAMPLED, inbound.sampled ? "1" : "0");
        }
    }

    /**
     * {@code random_sampling} and {@code overall_sampling} as Envoy's connection manager keeps them: a numerator out
     * of 10000, the percentage's product cut to an integer (0.015 % is 1, 0.29 % is 28, as in Envoy, where rounding
     * would give 2 and 29).
     */
    static int numerator(double percent) {
        return (int) (10000 * (percent / 100.0));
    }

    public Tracing config() {
        return config;
    }

    /**
     * Envoy's trace decision for a request, written into its {@code x-request-id} when that is a UUID: true when it
     * is to be traced.
     *
     * @param forceTrace whether the request carries an {@code x-envoy-force-trace} its connection manager trusts
     */
    boolean decide(MultiMap headers, boolean forceTrace, RandomGenerator random) {
        return decision(headers, forceTrace, random) != NOT_TRACED;
    }

    /** As {@link #decide}: why the request is traced, {@link #NOT_TRACED} when it is not. */
    private char decision(MultiMap headers, boolean forceTrace, RandomGenerator random) {
        String rid = headers.get("x-request-id");
        if (rid == null) {
            return NOT_TRACED;
        }
        char reason = reason(rid);
        long value = leadingHex(rid);
        if (value < 0) {
            return NOT_TRACED; // Envoy leaves an id it cannot read as it is, and does not trace the request
        }
        int result = (int) (value % 10000);
        char decided = reason;
        if (decided == NOT_TRACED) {
            if (headers.contains("x-client-trace-id") && random.nextInt(100) < clientPercent) {
                decided = CLIENT;
            } else if (forceTrace) {
                decided = FORCED;
            } else if (result < randomNumerator) {
                decided = SAMPLED;
            }
        }
        if (result >= overallNumerator) {
            decided = NOT_TRACED;
        }
        if (rid.length() == 36 && rid.charAt(REASON_AT) != decided) {
            headers.set("x-request-id", rid.substring(0, REASON_AT) + decided + rid.substring(REASON_AT + 1));
        }
        return decided;
    }

    /**
     * Whether request id {@code rid} (null: none) says its request is traced because it was forced (a trusted
     * {@code x-envoy-force-trace}), Envoy's {@code ServiceForced} reason, which its {@code traceable_filter} logs.
     */
    public static boolean forced(String rid) {
        return rid != null && reason(rid) == FORCED;
    }

    /** Why the request id says the request is traced; {@link #NOT_TRACED} for any id that is no UUID. */
    static char reason(String rid) {
        if (rid.length() != 36) {
            return NOT_TRACED;
        }
        char c = rid.charAt(REASON_AT);
        return c == SAMPLED || c == FORCED || c == CLIENT ? c : NOT_TRACED;
    }

    /** The id's first 8 hex digits as a number, or -1 when it has none. */
    private static long leadingHex(String rid) {
        if (rid.length() < 8) {
            return -1;
        }
        long v = 0;
        for (int i = 0; i < 8; i++) {
            int d = Character.digit(rid.charAt(i), 16);
            if (d < 0) {
                return -1;
            }
            v = (v << 4) | d;
        }
        return v;
    }

    /**
     * Takes the trace decision for a request and begins its span, as Envoy's connection manager and its Zipkin or
     * OpenTelemetry tracer do: a child of the caller's context, B3 or {@code traceparent} (a new span id, the
     * caller's span its parent; with Zipkin's {@code shared_span_context} a server span takes the caller's id
     * instead), or the root of a new trace (OpenTelemetry's trace ids are always 128-bit). The span is begun whether
     * sampled or not, as its context goes upstream either way; only a sampled one is reported. Null when the caller's
     * context is malformed: Envoy gives such a request no span, so nothing is reported or sent.
     *
     * @param ingress whether the span is a server span (a request to the workload) rather than a client span
     * @param host the request's {@code host}, which names the span when its route has no decorator
     * @param startTime when the request began
     * @param startNanos when the request began, on {@link System#nanoTime()}
     * @param stats the connection manager's statistics, whose {@code tracing.*} counters count the decision (as
     *              Envoy's, before the span begins, whatever the caller's B3 flag says); null for none
     */
    public ActiveSpan start(MultiMap headers, boolean forceTrace, boolean ingress, String host, Instant startTime,
                            long startNanos, RandomGenerator random, DownstreamStats stats) {
        char decided = decision(headers, forceTrace, random);
        if (stats != null) {
            stats.traceDecided(decided);
        }
        boolean traced = decided != NOT_TRACED;
        boolean sampled;
        SpanContext caller;
        if (w3c()) {
            caller = W3cTraceContext.extract(headers);
            sampled = traced && (caller == null || caller.sampled());
        } else {
            sampled = B3.sampled(headers, traced);
            caller = B3.extract(headers, sampled);
        }
        if (caller == SpanContext.INVALID) {
            return null;
        }
        String override = null;
        if (ingress) {
            // Envoy's ingress: the caller's decorated operation names the server span, and goes no further
            override = headers.get(ActiveSpan.DECORATOR_OPERATION);
            headers.remove(ActiveSpan.DECORATOR_OPERATION);
            if (override != null && override.isEmpty()) {
                override = null;
            }
        }
        long high;
        long traceId;
        long id;
        long parent;
        if (caller == null && zipkin == null) {
            high = random.nextLong();
            traceId = random.nextLong();
            id = random.nextLong();
            parent = 0;
        } else if (caller == null) {
            id = random.nextLong();
            traceId = id;
            high = zipkin.traceId128Bit() ? random.nextLong() : 0;
            parent = 0;
        } else if (!ingress || zipkin == null || !zipkin.sharedSpanContext()) {
            high = caller.traceIdHigh();
            traceId = caller.traceId();
            id = random.nextLong();
            parent = caller.spanId();
        } else {
            high = caller.traceIdHigh();
            traceId = caller.traceId();
            id = caller.spanId();
            parent = caller.parentId();
        }
        // Zipkin's timestamps are microseconds since the epoch
        long startMicros = startTime.getEpochSecond() * 1_000_000L + startTime.getNano() / 1_000;
        String tracestate = w3c() && caller != null ? W3cTraceContext.tracestate(headers) : null;
        return new ActiveSpan(this, high, traceId, id, parent, sampled, ingress, host, tracestate, override,
                startMicros, startNanos);
    }

    /**
     * Ends a request's span: a sampled one gets Envoy's tags from the request's record and headers and goes to
     * {@code reporting}, as a Zipkin span or an OTLP one; an unsampled one is dropped.
     *
     * @param decorator the operation of the request's route ({@code decorator.operation}), or null
     */
    public void finish(ActiveSpan span, StreamInfo info, MultiMap requestHeaders, String decorator,
                       TraceReporting reporting) {
        if (!span.sampled || reporting == null) {
            return;
        }
        if (provider instanceof Tracing.OpenTelemetry o) {
            reporting.export(o, OtlpSpans.span(span, name(span, decorator), durationMicros(span),
                    tags(span, info, requestHeaders, reporting.local())));
        } else {
            reporting.report(zipkin, zipkinSpan(span, info, requestHeaders, decorator, reporting.local()));
        }
    }

    /** The finished span of a request, with Envoy's tags and this connection manager's custom ones. */
    ZipkinSpan zipkinSpan(ActiveSpan span, StreamInfo info, MultiMap requestHeaders, String decorator,
                          TraceReporting.Local local) {
        return new ZipkinSpan(span.traceIdHigh, span.traceId, span.id, span.parentId,
                span.ingress ? ZipkinSpan.Kind.SERVER : ZipkinSpan.Kind.CLIENT,
                span.ingress && zipkin.sharedSpanContext(), name(span, decorator),
                span.startMicros, durationMicros(span), local.serviceName(), local.ip(),
                tags(span, info, requestHeaders, local));
    }

    private static long durationMicros(ActiveSpan span) {
        return Math.max(0, (System.nanoTime() - span.startNanos) / 1000);
    }

    /**
     * A span's name: the operation the other side named, else the route's decorator, else what each of Envoy's
     * tracers starts the span with: the Zipkin tracer the request's host, the OpenTelemetry tracer the connection
     * manager's operation name, {@code ingress} for a server span and {@code egress} and the host for a client span.
     */
    String name(ActiveSpan span, String decorator) {
        if (span.operation != null) {
            return span.operation;
        }
        if (decorator != null && !decorator.isEmpty()) {
            return decorator;
        }
        String host = span.host == null ? "" : span.host;
        return !w3c() ? host : span.ingress ? "ingress" : "egress " + host;
    }

    /**
     * The tags Envoy's connection manager gives a request's span, whatever its tracer, and this connection manager's
     * custom ones, in the order Envoy sets them.
     */
    Map<String, String> tags(ActiveSpan span, StreamInfo info, MultiMap requestHeaders, TraceReporting.Local local) {
        Map<String, String> tags = new LinkedHashMap<>();
        tag(tags, "node_id", local.nodeId());
        tag(tags, "zone", local.zone());
        tag(tags, "guid:x-request-id", requestHeaders.get("x-request-id"));
        tag(tags, "http.url", url(requestHeaders, span.host, info.path()));
        tag(tags, "http.method", info.method());
        tag(tags, "downstream_cluster", orDash(requestHeaders.get("x-envoy-downstream-service-cluster")));
        tag(tags, "user_agent", orDash(requestHeaders.get("user-agent")));
        tag(tags, "http.protocol", info.protocol());
        // Envoy's connection manager tags the physical peer (directRemoteAddress), not x-forwarded-for's address
        tag(tags, "peer.address", ip(info.downstreamDirectRemoteAddress()));
        tag(tags, "guid:x-client-trace-id", requestHeaders.get("x-client-trace-id"));
        tag(tags, "request_size", Long.toString(info.bytesReceived()));
        tag(tags, "response_size", Long.toString(info.bytesSent()));
        tag(tags, "component", "proxy");
        tag(tags, "http.status_code", Integer.toString(info.responseCode()));
        tag(tags, "response_flags", ResponseFlag.format(info.responseFlags()));
        // the cluster once the route named one that exists. No upstream_address: Envoy writes it on the upstream
        // span of an attempt (spawn_upstream_span), never on the connection manager's span
        if (info.upstreamCluster() != null) {
            tag(tags, "upstream_cluster", info.upstreamCluster());
            tag(tags, "upstream_cluster.name", info.upstreamClusterObservabilityName());
        }
        if (info.responseCode() == 0 || info.responseCode() >= 500 && info.responseCode() < 600) {
            tag(tags, "error", "true");
        }
        // the custom tags last, as Envoy sets them: one named as a tag above replaces it
        for (Map.Entry<String, String> e : fixedTags.entrySet()) {
            tag(tags, e.getKey(), e.getValue());
        }
        for (Tracing.CustomTag t : headerTags) {
            String v = requestHeaders.get(t.name());
            tag(tags, t.tag(), v == null ? t.defaultValue() : v);
        }
        return tags;
    }

    /** As Envoy's spans: a tag with an empty value is not set. */
    private static void tag(Map<String, String> tags, String name, String value) {
        if (value != null && !value.isEmpty()) {
            tags.put(name, value);
        }
    }

    /**
     * Envoy's {@code peer.address}: the IP of the caller's address, without its port ({@code 10.1.2.3},
     * {@code ::1}); an address that is no {@code ip:port} as it is.
     */
    static String ip(String hostPort) {
        if (hostPort == null) {
            return null;
        }
        if (hostPort.startsWith("[")) {
            int end = hostPort.indexOf(']');
            return end > 0 ? hostPort.substring(1, end) : hostPort;
        }
        int colon = hostPort.lastIndexOf(':');
        return colon > 0 && hostPort.indexOf(':') == colon ? hostPort.substring(0, colon) : hostPort;
    }

    private static String orDash(String v) {
        return v == null ? "-" : v;
    }

    /** Envoy's {@code http.url}: the forwarded scheme, the host and the path, cut at {@code max_path_tag_length}. */
    private String url(MultiMap headers, String host, String path) {
        String proto = headers.get("x-forwarded-proto");
        String p = path == null ? "" : path;
        if (p.length() > config.maxPathTagLength()) {
            p = p.substring(0, config.maxPathTagLength());
        }
        return (proto == null ? "" : proto) + "://" + (host == null ? "" : host) + p;
    }
}
