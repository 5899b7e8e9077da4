package dev.inmesh.runtime.tracing;

import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.internal.ContextInternal;
import java.util.random.RandomGenerator;

/**
 * The span of one request while it runs (sampled or not): its ids, which go upstream in its tracer's headers
 * ({@link #inject}: B3 for Zipkin, {@code traceparent} for OpenTelemetry), and when it began. Only
 * {@link Tracer#finish} of a sampled span builds the span its tracer reports.
 */
public final class ActiveSpan {
    /** The header an egress span's route operation goes upstream in, and an ingress span takes its name from. */
    public static final String DECORATOR_OPERATION = "x-envoy-decorator-operation";

    final Tracer tracer;
    final long traceIdHigh;
    final long traceId;
    final long id;
    final long parentId;
    final boolean sampled;
    final boolean ingress;
    final String host;
    /** The caller's W3C {@code tracestate}, passed on with the span's {@code traceparent}; null for none (or B3). */
    final String tracestate;
    /**
     * The operation the other side named the span with ({@code x-envoy-decorator-operation}: the caller's request for
     * a server span, the upstream's response for a client span), or null.
     */
    String operation;
    final long startMicros;
    final long startNanos;

    ActiveSpan(Tracer tracer, long traceIdHigh, long traceId, long id, long parentId, boolean sampled, boolean ingress,
               String host, String tracestate, String operation, long startMicros, long startNanos) {
        this.tracer = tracer;
        this.traceIdHigh = traceIdHigh;
        this.traceId = traceId;
        this.id = id;
        this.parentId = parentId;
        this.sampled = sampled;
        this.ingress = ingress;
        this.host = host;
        this.tracestate = tracestate;
        this.operation = operation;
        this.startMicros = startMicros;
        this.startNanos = startNanos;
    }

    /**
     * The response on its way back, as Envoy's connection manager treats it: a server span whose route has a
     * decorator, and whose caller named none, tells the caller its operation in {@code x-envoy-decorator-operation};
     * a client span takes its name from that header of the upstream's response, which goes no further.
     *
     * @param decorator the route's {@code decorator.operation}, or null
     */
    public void response(MultiMap responseHeaders, String decorator) {
        if (ingress) {
            if (operation == null && decorator != null && !decorator.isEmpty()) {
                responseHeaders.set(DECORATOR_OPERATION, decorator);
            }
            return;
        }
        String named = responseHeaders.get(DECORATOR_OPERATION);
        if (named != null) {
            if (!named.isEmpty()) {
                operation = named;
            }
            responseHeaders.remove(DECORATOR_OPERATION);
        }
    }

    /** The key of a server span in its request's Vert.x context. */
    private static final Object CONTEXT_KEY = new Object();

    /**
     * Keeps this (server) span in the current Vert.x context when that is a request's own (a duplicated context, as
     * Vert.x gives each request to an HTTP server): the mesh client's requests made while handling the request find
     * it there ({@link Tracer#inheritBoundSpan}) and become children of this span, without the application passing
     * the trace headers on. Nothing is kept on any other context.
     */
    public void bindToCurrentContext() {
        if (Vertx.currentContext() instanceof ContextInternal ctx && ctx.isDuplicate()) {
            ctx.localContextData().put(CONTEXT_KEY, this);
        }
    }

    /** The server span whose request the current Vert.x context handles, or null. */
    static ActiveSpan boundToCurrentContext() {
        return Vertx.currentContext() instanceof ContextInternal ctx && ctx.isDuplicate()
                && ctx.localContextData().get(CONTEXT_KEY) instanceof ActiveSpan s ? s : null;
    }

    /** Whether the span is sampled: the request is traced (Envoy's {@code traceable_filter}). */
    public boolean sampled() {
        return sampled;
    }

    /** The tracer that began the span, which ends it. */
    public Tracer tracer() {
        return tracer;
    }

    /**
     * The span of a mirrored copy of this span's request, as Envoy's router spawns one for each copy it sends (a
     * client span named {@code mirror}): in this span's trace, a new span id, this span its parent, sampled as the
     * mirror policy's {@code trace_sampled} says, else as this span is. Its context goes on the copy
     * ({@link #inject}); the span itself is not reported.
     *
     * @param sampled the policy's {@code trace_sampled}, or null when it sets none
     */
    public ActiveSpan mirror(Boolean sampled, RandomGenerator random) {
        long nanos = System.nanoTime();
        return new ActiveSpan(tracer, traceIdHigh, traceId, random.nextLong(), id,
                sampled != null ? sampled : this.sampled, false, host, tracestate, "mirror",
                startMicros + (nanos - startNanos) / 1000, nanos);
    }

    /** The span's context, as the next hop reads it. */
    public SpanContext context() {
        return new SpanContext(traceIdHigh, traceId, id, parentId, sampled);
    }

    /**
     * Puts the span's context on the request going upstream (the tracer's: {@code x-b3-*}, or {@code traceparent}
     * and {@code tracestate}) and, for a client span whose route has a decorator, its operation
     * ({@code x-envoy-decorator-operation}), which names the server span of the next hop.
     *
     * @param decorator the route's {@code decorator.operation}, or null
     */
    public void inject(MultiMap headers, String decorator) {
        if (tracer.w3c()) {
            W3cTraceContext.inject(headers, traceIdHigh, traceId, id, sampled, tracestate);
        } else {
            B3.inject(headers, traceIdHigh, traceId, id, parentId, sampled);
        }
        if (!ingress && decorator != null && !decorator.isEmpty()) {
            headers.set(DECORATOR_OPERATION, decorator);
        }
    }
}
