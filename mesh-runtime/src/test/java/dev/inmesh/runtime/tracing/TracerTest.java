package dev.inmesh.runtime.tracing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.vertx.core.MultiMap;
import io.vertx.core.json.JsonObject;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Envoy's trace decision (kept in the {@code x-request-id} UUID) and its Zipkin spans: which requests are traced under
 * each sampling percentage, how a span's ids follow the caller's, and what a finished span says.
 */
class TracerTest {
    private static final Tracing.Zipkin ZIPKIN = new Tracing.Zipkin("zipkin", "/api/v2/spans", "zipkin.istio-system",
            true, false);

    private static Tracer tracer(double client, double random, double overall, Tracing.Zipkin zipkin,
                                 List<Tracing.CustomTag> tags) {
        return Tracer.compile(new Tracing(client, random, overall, 256, tags, "envoy.tracers.zipkin", zipkin), null,
                Map.of("POD", "reviews-1")::get);
    }

    private static Tracer tracer(double random) {
        return tracer(100, random, 100, ZIPKIN, List.of());
    }

    private static MultiMap headers(String... nameValues) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i < nameValues.length; i += 2) {
            h.add(nameValues[i], nameValues[i + 1]);
        }
        return h;
    }

    /** A request id whose first 8 hex digits are {@code lead} and whose trace character is {@code reason}. */
    private static String rid(int lead, char reason) {
        return String.format("%08x-1234-%c567-89ab-0123456789ab", lead, reason);
    }

    @Test
    void randomSamplingTracesTheIdsWhoseLeadingDigitsFallWithinItAndMarksThem() {
        Tracer onePercent = tracer(1); // 100 of 10000
        MultiMap in = headers("x-request-id", rid(99, '4'));
        assertTrue(onePercent.decide(in, false, new Random(1)));
        assertEquals(rid(99, '9'), in.get("x-request-id"), "the id says: sampled");
        MultiMap out = headers("x-request-id", rid(10_100, '4')); // 10100 % 10000 = 100: outside
        assertFalse(onePercent.decide(out, false, new Random(1)));
        assertEquals(rid(10_100, '4'), out.get("x-request-id"));
        assertEquals(10_000, Tracer.numerator(100));
        assertEquals(1, Tracer.numerator(0.01));
    }

    @Test
    void aDecisionTheCallerMadeIsKeptUnlessOverallSamplingLeavesTheRequestOut() {
        MultiMap sampled = headers("x-request-id", rid(5_000, '9'));
        assertTrue(tracer(0).decide(sampled, false, new Random(1)), "an earlier hop sampled it");
        MultiMap overall = headers("x-request-id", rid(5_050, '9')); // 5050 of 10000: outside 10 % (1000)
        assertFalse(tracer(100, 100, 10, ZIPKIN, List.of()).decide(overall, false, new Random(1)));
        assertEquals(rid(5_050, '4'), overall.get("x-request-id"), "overall sampling unmarks it");
    }

    @Test
    void randomSamplingCutsItsPercentageToTenThousandthsRatherThanRoundingItAsEnvoysConnectionManagerDoes() {
        assertEquals(1, Tracer.numerator(0.015), "Envoy: 10000 * 0.00015 = 1.5, cut to 1");
        assertEquals(28, Tracer.numerator(0.29), "Envoy: 10000 * 0.0029 = 28.999..., cut to 28");
        MultiMap second = headers("x-request-id", rid(1, '4')); // result 1: outside a numerator of 1
        assertFalse(tracer(0.015).decide(second, false, new Random(1)));
        assertEquals(rid(1, '4'), second.get("x-request-id"));
        MultiMap first = headers("x-request-id", rid(10_000, '4')); // 10000 % 10000 = 0: within
        assertTrue(tracer(0.015).decide(first, false, new Random(1)));
    }

    @Test
    void overallSamplingIsInTenThousandthsOfTheIdsValueModulo10000AsEnvoyEvaluatesIt() {
        // Envoy keeps overall_sampling, as random_sampling, as a numerator out of 10000 (the percentage's product cut
        // to an integer) and tests the id's value modulo 10000 against it: 50.9 % is 5090
        Tracer half = tracer(100, 100, 50.9, ZIPKIN, List.of());
        MultiMap in = headers("x-request-id", rid(15_089, '9')); // 5089: within
        assertTrue(half.decide(in, false, new Random(1)));
        assertEquals(rid(15_089, '9'), in.get("x-request-id"));
        MultiMap out = headers("x-request-id", rid(5_090, '9'));
        assertFalse(half.decide(out, false, new Random(1)));
        assertEquals(rid(5_090, '4'), out.get("x-request-id"));
        // in whole percents 60 (60 % 100 = 60) would be left out of 50 %; in ten-thousandths it is within
        assertTrue(half.decide(headers("x-request-id", rid(60, '9')), false, new Random(1)));
        // 0.05 % is 5 out of 10000, where whole percents would trace nothing
        Tracer tiny = tracer(100, 100, 0.05, ZIPKIN, List.of());
        assertTrue(tiny.decide(headers("x-request-id", rid(4, '9')), false, new Random(1)));
        assertFalse(tiny.decide(headers("x-request-id", rid(5, '9')), false, new Random(1)));
    }

    @Test
    void clientSamplingIsAWholePercentOfARandomDrawOutOf100AsEnvoyEvaluatesIt() {
        // a draw of 0 is within any numerator above 0; 0.5 % is cut to 0 out of 100, within which nothing falls
        java.util.random.RandomGenerator zero = () -> 0L;
        MultiMap half = headers("x-request-id", rid(9_999, '4'), "x-client-trace-id", "abc");
        assertFalse(tracer(0.5, 0, 100, ZIPKIN, List.of()).decide(half, false, zero));
        assertEquals(rid(9_999, '4'), half.get("x-request-id"));
        MultiMap one = headers("x-request-id", rid(9_999, '4'), "x-client-trace-id", "abc");
        assertTrue(tracer(1, 0, 100, ZIPKIN, List.of()).decide(one, false, zero));
        assertEquals(rid(9_999, 'b'), one.get("x-request-id"));
    }

    @Test
    void anIdWhoseFirstDigitsAreNotHexIsNotTracedEvenIfItsTraceCharacterSaysSampledAsInEnvoy() {
        String unreadable = "zzzzzzzz-1234-9567-89ab-0123456789ab";
        MultiMap h = headers("x-request-id", unreadable);
        assertFalse(tracer(100).decide(h, false, new Random(1)));
        assertEquals(unreadable, h.get("x-request-id"));
    }

    @Test
    void clientTraceIdsAndForcedTracesComeBeforeRandomSampling() {
        MultiMap client = headers("x-request-id", rid(9_999, '4'), "x-client-trace-id", "abc");
        assertTrue(tracer(0).decide(client, false, new Random(1)));
        assertEquals(rid(9_999, 'b'), client.get("x-request-id"));
        MultiMap noClient = headers("x-request-id", rid(9_999, '4'), "x-client-trace-id", "abc");
        assertFalse(tracer(0, 0, 100, ZIPKIN, List.of()).decide(noClient, false, new Random(1)),
                "client_sampling 0: the client's id does not force it");
        MultiMap forced = headers("x-request-id", rid(9_999, '4'));
        assertTrue(tracer(0).decide(forced, true, new Random(1)));
        assertEquals(rid(9_999, 'a'), forced.get("x-request-id"));
    }

    @Test
    void anIdThatIsNoUuidOrNoIdIsNotTracedAndNotChanged() {
        MultiMap odd = headers("x-request-id", "my-request");
        assertFalse(tracer(100).decide(odd, false, new Random(1)));
        assertEquals("my-request", odd.get("x-request-id"));
        assertFalse(tracer(100).decide(headers(), false, new Random(1)));
    }

    @Test
    void aClientSpanIsAChildOfTheCallersWithANewIdAndTheSameTrace() {
        MultiMap h = headers("x-request-id", rid(1, '4'), "x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124",
                "x-b3-spanid", "a2fb4a1d1a96d312", "x-b3-sampled", "1");
        ActiveSpan s = tracer(0).start(h, false, false, "ratings:9080", Instant.EPOCH, 0, new Random(7), null);
        long expectedId = new Random(7).nextLong();
        assertEquals(new SpanContext(0x463ac35c9f6413adL, 0x48485a3953bb6124L, expectedId, 0xa2fb4a1d1a96d312L,
                true), s.context(), "sampled by the caller although random sampling is 0");
        s.inject(h, "ratings.default.svc.cluster.local:9080/*");
        assertEquals("463ac35c9f6413ad48485a3953bb6124", h.get("x-b3-traceid"));
        assertEquals(SpanContext.hex(expectedId), h.get("x-b3-spanid"));
        assertEquals("a2fb4a1d1a96d312", h.get("x-b3-parentspanid"));
        assertEquals("1", h.get("x-b3-sampled"));
        assertEquals("ratings.default.svc.cluster.local:9080/*", h.get("x-envoy-decorator-operation"));
    }

    @Test
    void aServerSpanTakesTheCallersIdOnlyUnderSharedSpanContext() {
        MultiMap h = headers("x-request-id", rid(1, '9'), "x-b3-traceid", "463ac35c9f6413ad",
                "x-b3-spanid", "a2fb4a1d1a96d312", "x-b3-parentspanid", "0020000000000001");
        Tracing.Zipkin shared = new Tracing.Zipkin("zipkin", "/api/v2/spans", null, false, true);
        SpanContext c = tracer(100, 100, 100, shared, List.of()).start(h, false, true, "reviews", Instant.EPOCH, 0,
                new Random(7), null).context();
        assertEquals(new SpanContext(0, 0x463ac35c9f6413adL, 0xa2fb4a1d1a96d312L, 0x0020000000000001L, true), c);
        SpanContext own = tracer(100).start(h, false, true, "reviews", Instant.EPOCH, 0, new Random(7), null).context();
        assertEquals(new SpanContext(0, 0x463ac35c9f6413adL, new Random(7).nextLong(), 0xa2fb4a1d1a96d312L, true),
                own, "shared_span_context false (Istio's): a span of its own");
    }

    @Test
    void underSharedSpanContextEveryServerSpanIsWrittenSharedAsEnvoysSerializerWritesIt() {
        Tracing.Zipkin shared = new Tracing.Zipkin("zipkin", "/api/v2/spans", null, false, true);
        Tracer t = tracer(100, 100, 100, shared, List.of());
        // a root server span too: Envoy writes shared on any server span of such a tracer
        ActiveSpan root = t.start(headers("x-request-id", rid(1, '9')), false, true, "reviews", Instant.EPOCH,
                System.nanoTime(), new Random(7), null);
        JsonObject server = t.zipkinSpan(root, info(200, Set.of()), headers(), null, LOCAL).toJson();
        assertEquals(true, server.getBoolean("shared"), server.encode());
        assertEquals(0, server.getJsonObject("localEndpoint").getInteger("port"), "Envoy's local address's port");
        ActiveSpan client = t.start(headers("x-request-id", rid(1, '9')), false, false, "reviews", Instant.EPOCH,
                System.nanoTime(), new Random(7), null);
        assertNull(t.zipkinSpan(client, info(200, Set.of()), headers(), null, LOCAL).toJson().getValue("shared"));
        ActiveSpan own = tracer(100).start(headers("x-request-id", rid(1, '9')), false, true, "reviews",
                Instant.EPOCH, System.nanoTime(), new Random(7), null);
        assertNull(tracer(100).zipkinSpan(own, info(200, Set.of()), headers(), null, LOCAL).toJson()
                .getValue("shared"), "shared_span_context false (Istio's): not written");
    }

    @Test
    void aRequestWithoutContextStartsA128BitTraceWhoseRootSpanIdIsItsLowHalf() {
        MultiMap h = headers("x-request-id", rid(1, '4'));
        Random ids = new Random(3);
        SpanContext c = tracer(100).start(h, false, false, "reviews", Instant.EPOCH, 0, new Random(3), null).context();
        long id = ids.nextLong();
        assertEquals(new SpanContext(ids.nextLong(), id, id, 0, true), c);
    }

    @Test
    void anUnsampledRequestStillPropagatesItsContextAndAMalformedOneGetsNoSpan() {
        MultiMap h = headers("x-request-id", rid(1, '4'), "x-b3-traceid", "463ac35c9f6413ad",
                "x-b3-spanid", "a2fb4a1d1a96d312", "x-b3-sampled", "0");
        ActiveSpan s = tracer(100).start(h, false, false, "reviews", Instant.EPOCH, 0, new Random(7), null);
        assertFalse(s.context().sampled());
        s.inject(h, null);
        assertEquals("0", h.get("x-b3-sampled"));
        assertEquals("463ac35c9f6413ad", h.get("x-b3-traceid"));
        assertNull(tracer(100).start(headers("x-request-id", rid(1, '4'), "x-b3-traceid", "zz",
                "x-b3-spanid", "1"), false, false, "reviews", Instant.EPOCH, 0, new Random(7), null));
    }

    @Test
    void theCallersDecoratedOperationNamesTheServerSpanAndGoesNoFurther() {
        MultiMap h = headers("x-request-id", rid(1, '4'), "x-envoy-decorator-operation", "reviews:9080/*");
        ActiveSpan s = tracer(100).start(h, false, true, "reviews", Instant.EPOCH, 0, new Random(7), null);
        assertFalse(h.contains("x-envoy-decorator-operation"));
        StreamInfo info = info(200, Set.of());
        assertEquals("reviews:9080/*", s.tracer().zipkinSpan(s, info, h, "route-op", LOCAL).name());
        s.inject(h, "route-op");
        assertFalse(h.contains("x-envoy-decorator-operation"), "a server span passes no operation on");
    }

    private static final TraceReporting.Local LOCAL = TraceReporting.Local.of(
            new WorkloadInfo("productpage-v1", "default", "productpage", "v1"),
            "sidecar~10.1.2.3~productpage-v1-abc.default~default.svc.cluster.local");

    private static StreamInfo info(int status, Set<ResponseFlag> flags) {
        return new StreamInfo(StreamInfo.Direction.OUTBOUND, Instant.EPOCH, "GET", "/ratings/0?x=1", "HTTP/1.1",
                status, flags, "via_upstream", 12, 345, 5, 4, null, "ratings:9080", "curl/8", null, "10.0.0.7:9080",
                "outbound|9080||ratings.default.svc.cluster.local", null, "10.1.2.3:40000", "10.1.2.3:51234",
                null, "r", 1, null, null, null, null, null);
    }

    @Test
    void aFinishedClientSpanHasEnvoysTagsAndZipkinsV2Shape() {
        Tracer t = tracer(100, 100, 100, ZIPKIN, List.of(
                new Tracing.CustomTag("istio.canonical_service", Tracing.CustomTag.Kind.LITERAL, "productpage", null),
                new Tracing.CustomTag("pod", Tracing.CustomTag.Kind.ENVIRONMENT, "POD", "none"),
                new Tracing.CustomTag("node", Tracing.CustomTag.Kind.ENVIRONMENT, "NODE", "node-0"),
                new Tracing.CustomTag("user", Tracing.CustomTag.Kind.REQUEST_HEADER, "end-user", "anonymous"),
                new Tracing.CustomTag("dry", Tracing.CustomTag.Kind.REQUEST_METADATA, "envoy.filters.http.rbac.x",
                        "")));
        MultiMap h = headers("x-request-id", rid(1, '4'), "x-b3-traceid", "463ac35c9f6413ad",
                "x-b3-spanid", "a2fb4a1d1a96d312", "user-agent", "curl/8", "x-forwarded-proto", "http");
        ActiveSpan s = t.start(h, false, false, "ratings:9080", Instant.ofEpochSecond(1_700_000_000L, 123_456_789),
                System.nanoTime(),
                new Random(7), null);
        ZipkinSpan span = t.zipkinSpan(s, info(503, Set.of(ResponseFlag.UPSTREAM_CONNECTION_FAILURE)), h,
                "ratings.default.svc.cluster.local:9080/*", LOCAL);
        JsonObject json = span.toJson();
        long duration = json.getLong("duration");
        assertTrue(duration >= 0 && duration < 60_000_000L, json.encode());
        json.remove("duration");
        assertEquals(new JsonObject("""
                {"traceId": "463ac35c9f6413ad", "parentId": "a2fb4a1d1a96d312", "id": "%s", "kind": "CLIENT",
                 "name": "ratings.default.svc.cluster.local:9080/*", "timestamp": 1700000000123456,
                 "localEndpoint": {"serviceName": "productpage.default", "ipv4": "10.1.2.3", "port": 0},
                 "tags": {
                   "component": "proxy",
                   "downstream_cluster": "-",
                   "error": "true",
                   "guid:x-request-id": "%s",
                   "http.method": "GET",
                   "http.protocol": "HTTP/1.1",
                   "http.status_code": "503",
                   "http.url": "http://ratings:9080/ratings/0?x=1",
                   "istio.canonical_service": "productpage",
                   "node": "node-0",
                   "node_id": "sidecar~10.1.2.3~productpage-v1-abc.default~default.svc.cluster.local",
                   "peer.address": "10.1.2.3",
                   "pod": "reviews-1",
                   "request_size": "12",
                   "response_flags": "UF",
                   "response_size": "345",
                   "upstream_cluster": "outbound|9080||ratings.default.svc.cluster.local",
                   "upstream_cluster.name": "outbound|9080||ratings.default.svc.cluster.local",
                   "user": "anonymous",
                   "user_agent": "curl/8"}}
                """.formatted(SpanContext.hex(new Random(7).nextLong()), rid(1, '9'))), json);
        assertTrue(ZipkinSpan.toJson(List.of(span, span)).startsWith("[{\"traceId\":\"463ac35c9f6413ad\""));
    }

    @Test
    void upstreamClusterNameIsTheClustersObservabilityNameAndUpstreamClusterItsNameAsEnvoysTracerTagsThem() {
        Tracer t = tracer(100, 100, 100, ZIPKIN, List.of());
        MultiMap h = headers("x-request-id", rid(1, '4'));
        ActiveSpan s = t.start(h, false, false, "ratings:9080", Instant.EPOCH, System.nanoTime(), new Random(7), null);
        StreamInfo i = info(200, Set.of());
        StreamInfo observed = new StreamInfo(i.direction(), i.startTime(), i.method(), i.path(), i.protocol(),
                i.responseCode(), i.responseFlags(), i.responseCodeDetails(), i.bytesReceived(), i.bytesSent(),
                i.durationMillis(), i.upstreamServiceTimeMillis(), i.requestId(), i.authority(), i.userAgent(),
                i.forwardedFor(), i.upstreamHost(), i.upstreamCluster(), i.upstreamLocalAddress(),
                i.downstreamLocalAddress(), i.downstreamRemoteAddress(), i.requestedServerName(), i.routeName(),
                i.attemptCount(), i.peer(), i.destinationService(), i.destinationServiceName(),
                i.destinationServiceNamespace(), i.grpcStatus(), false, null, null, null, null, -1, -1, null, true,
                null, "ratings_9080", -1, -1);
        Map<String, String> tags = t.zipkinSpan(s, observed, h, null, LOCAL).tags();
        assertEquals("outbound|9080||ratings.default.svc.cluster.local", tags.get("upstream_cluster"));
        assertEquals("ratings_9080", tags.get("upstream_cluster.name"));
    }

    @Test
    void peerAddressIsTheConnectionsPhysicalPeerNotTheAddressForwardedFor() {
        // Envoy's connection manager tags the direct remote address: neither x-forwarded-for's last address (the
        // stream's remote address) nor a PROXY header's source
        Tracer t = tracer(100, 100, 100, ZIPKIN, List.of());
        MultiMap h = headers("x-request-id", rid(1, '4'), "x-forwarded-for", "10.9.9.9, 192.0.2.7");
        ActiveSpan s = t.start(h, false, false, "ratings:9080", Instant.EPOCH, System.nanoTime(), new Random(7), null);
        StreamInfo i = info(200, Set.of());
        StreamInfo forwarded = new StreamInfo(i.direction(), i.startTime(), i.method(), i.path(), i.protocol(),
                i.responseCode(), i.responseFlags(), i.responseCodeDetails(), i.bytesReceived(), i.bytesSent(),
                i.durationMillis(), i.upstreamServiceTimeMillis(), i.requestId(), i.authority(), i.userAgent(),
                "10.9.9.9, 192.0.2.7", i.upstreamHost(), i.upstreamCluster(), i.upstreamLocalAddress(),
                i.downstreamLocalAddress(), "192.0.2.7:0", i.requestedServerName(), i.routeName(), i.attemptCount(),
                i.peer(), i.destinationService(), i.destinationServiceName(), i.destinationServiceNamespace(),
                i.grpcStatus(), false, null, null, null, null, -1, -1, null, true, null, null, -1, -1, null,
                "10.1.2.3:40000", null);
        assertEquals("10.1.2.3", t.zipkinSpan(s, forwarded, h, null, LOCAL).tags().get("peer.address"));
    }

    @Test
    void aCustomTagNamedAsOneOfEnvoysReplacesItAsEnvoySetsCustomTagsLast() {
        Tracer t = tracer(100, 100, 100, ZIPKIN, List.of(
                new Tracing.CustomTag("component", Tracing.CustomTag.Kind.LITERAL, "reviews-app", null),
                new Tracing.CustomTag("http.status_code", Tracing.CustomTag.Kind.REQUEST_HEADER, "x-status", "-")));
        MultiMap h = headers("x-request-id", rid(1, '4'));
        ActiveSpan s = t.start(h, false, false, "ratings:9080", Instant.EPOCH, System.nanoTime(), new Random(7), null);
        Map<String, String> tags = t.zipkinSpan(s, info(200, Set.of()), h, null, LOCAL).tags();
        assertEquals("reviews-app", tags.get("component"));
        assertEquals("-", tags.get("http.status_code"));
    }

    @Test
    void theLocalServiceNameIsIstiosDefaultServiceClusterTheAppLabelElseTheWorkloadWithTheNamespace() {
        // Istio's agent names the node's cluster (APP_LABEL_AND_NAMESPACE, its default) after the app label, even
        // when the canonical service (service.istio.io/canonical-name, app.kubernetes.io/name) says otherwise
        assertEquals("reviews.default", TraceReporting.Local.of(new WorkloadInfo("reviews-v1", "default", "reviews",
                "v1", "reviews-ui", "v1", null), null).serviceName());
        assertEquals("reviews-v1.default", TraceReporting.Local.of(new WorkloadInfo("reviews-v1", "default", null,
                "v1", "reviews-ui", "v1", null), null).serviceName());
    }

    @Test
    void peerAddressIsTheCallersIpWithoutItsPortAsEnvoyTagsIt() {
        assertEquals("10.1.2.3", Tracer.ip("10.1.2.3:51234"));
        assertEquals("::1", Tracer.ip("[::1]:51234"));
        assertEquals("::1", Tracer.ip("::1"));
        assertEquals("10.1.2.3", Tracer.ip("10.1.2.3"));
        assertEquals(null, Tracer.ip(null));
    }
}
