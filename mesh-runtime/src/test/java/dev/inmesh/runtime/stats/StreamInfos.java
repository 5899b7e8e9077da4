package dev.inmesh.runtime.stats;

import java.time.Instant;
import java.util.Set;

/** Sample finished requests for metric and access log tests. */
public final class StreamInfos {
    private StreamInfos() {}

    public static final WorkloadInfo PRODUCTPAGE = new WorkloadInfo("productpage-v1", "default", "productpage", "v1");
    public static final WorkloadInfo REVIEWS = new WorkloadInfo("reviews-v2", "default", "reviews", "v2");

    /** productpage calling reviews: a 200 via upstream, outbound. */
    public static StreamInfo outboundOk() {
        return new StreamInfo(StreamInfo.Direction.OUTBOUND, Instant.parse("2026-11-28T13:07:13.409Z"), "GET",
                "/reviews/0", "HTTP/1.1", 200, Set.of(), "via_upstream", 0, 295, 12, 9,
                "b2b5a5b1-7f0e-4f5c-a0d4-1d6a0f7a5f11", "reviews:9080", "Java-http-client/17", null,
                "10.244.0.192:9080", "outbound|9080||reviews.default.svc.cluster.local", "10.244.0.194:47022",
                "10.96.12.7:9080", "10.244.0.194:47020", null, "default", 1, REVIEWS,
                "reviews.default.svc.cluster.local", "reviews", "default", null);
    }

    /** A request from productpage arriving at reviews that had no healthy upstream: 503 UH, inbound. */
    public static StreamInfo inboundNoHealthyUpstream() {
        return new StreamInfo(StreamInfo.Direction.INBOUND, Instant.parse("2026-11-28T13:07:14.001Z"), "POST",
                "/reviews/1", "HTTP/2", 503, Set.of(ResponseFlag.NO_HEALTHY_UPSTREAM), "no_healthy_upstream", 18,
                19, 3, -1, null, "reviews:9080", null, null, null, "inbound|9080||", null,
                "10.244.0.192:9080", "10.244.0.194:51234", null, null, 1, PRODUCTPAGE,
                "reviews.default.svc.cluster.local", "reviews", "default", null);
    }

    /** {@code s} under a connection manager's metric overrides {@code o}, with its headers in {@code log}. */
    public static StreamInfo withOverrides(StreamInfo s, StatsOverrides o,
                                           dev.inmesh.runtime.accesslog.RequestLog log) {
        return new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(), s.responseCode(),
                s.responseFlags(), s.responseCodeDetails(), s.bytesReceived(), s.bytesSent(), s.durationMillis(),
                s.upstreamServiceTimeMillis(), s.requestId(), s.authority(), s.userAgent(), s.forwardedFor(),
                s.upstreamHost(), s.upstreamCluster(), s.upstreamLocalAddress(), s.downstreamLocalAddress(),
                s.downstreamRemoteAddress(), s.requestedServerName(), s.routeName(), s.attemptCount(), s.peer(),
                s.destinationService(), s.destinationServiceName(), s.destinationServiceNamespace(), s.grpcStatus(),
                s.downstreamMutualTls(), s.downstreamPeerPrincipal(), s.downstreamLocalPrincipal(),
                s.upstreamTransportFailureReason(), s.upstreamPeerPrincipal(), s.requestMessages(),
                s.responseMessages(), s.upstreamLocalPrincipal(), s.hostHeaderFallback(), log,
                s.upstreamClusterObservabilityName(), s.requestHeadBytes(), s.responseHeadBytes(), o,
                s.downstreamDirectRemoteAddress(), s.downstreamDirectLocalAddress());
    }
}
