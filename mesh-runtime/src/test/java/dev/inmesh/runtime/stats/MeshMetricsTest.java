package dev.inmesh.runtime.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class MeshMetricsTest {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final MeshMetrics metrics = MeshMetrics.create(registry, StreamInfos.PRODUCTPAGE);

    private static final String OUTBOUND_LABELS = "connection_security_policy=\"unknown\","
            + "destination_app=\"reviews\",destination_canonical_revision=\"v2\","
            + "destination_canonical_service=\"reviews\",destination_cluster=\"unknown\","
            + "destination_principal=\"unknown\","
            + "destination_service=\"reviews.default.svc.cluster.local\",destination_service_name=\"reviews\","
            + "destination_service_namespace=\"default\",destination_version=\"v2\","
            + "destination_workload=\"reviews-v2\",destination_workload_namespace=\"default\","
            + "grpc_response_status=\"\","
            + "reporter=\"source\",request_protocol=\"http\",response_code=\"200\",response_flags=\"-\","
            + "source_app=\"productpage\",source_canonical_revision=\"v1\",source_canonical_service=\"productpage\","
            + "source_cluster=\"Kubernetes\",source_principal=\"unknown\","
            + "source_version=\"v1\",source_workload=\"productpage-v1\",source_workload_namespace=\"default\"";

    /** The scrape's sample lines for one metric name (exactly, or with the given suffix). */
    private List<String> samples(String name) {
        return Arrays.stream(registry.scrape().split("\n"))
                .filter(l -> l.startsWith(name + "{") || l.startsWith(name + " "))
                .collect(Collectors.toList());
    }

    @Test
    void aListenersStatisticsAreNamedByItsAddressAsEnvoyWritesItAColonMadeAnUnderscore() {
        assertEquals("0.0.0.0_15006", ListenerStats.address("0.0.0.0", 15006));
        assertEquals("[__]_8080", ListenerStats.address("::", 8080));
        assertEquals("[2001_db8__1]_80", ListenerStats.address("2001:db8::1", 80));
        metrics.listener(ListenerStats.address("::", 8080)).connectionOpened();
        assertEquals(List.of("envoy_listener_downstream_cx_total{listener_address=\"[__]_8080\"} 1.0"),
                samples("envoy_listener_downstream_cx_total"));
    }

    @Test
    void aListenerHasSslStatisticsOnlyWhenAChainOfItsTerminatesTlsAsEnvoyMakesThemWithItsTlsContext() {
        metrics.listener(ListenerStats.address("0.0.0.0", 8080)).connectionOpened();
        assertEquals(List.of(), samples("envoy_listener_ssl_handshake"), "a plaintext listener has none");
        ListenerStats tls = metrics.listener(ListenerStats.address("0.0.0.0", 8443)).terminatesTls();
        tls.connectionOpened();
        // at 0 before any handshake, each of them, and only for that listener
        for (String name : List.of("handshake", "connection_error", "no_certificate", "fail_verify_no_cert",
                "fail_verify_error", "fail_verify_san")) {
            assertEquals(List.of("envoy_listener_ssl_" + name + "{listener_address=\"0.0.0.0_8443\"} 0.0"),
                    samples("envoy_listener_ssl_" + name), name);
        }
        tls.terminatesTls().tlsHandshake(false);
        tls.tlsFailed(ListenerStats.TlsFailure.VERIFY_SAN);
        assertEquals(List.of("envoy_listener_ssl_handshake{listener_address=\"0.0.0.0_8443\"} 1.0"),
                samples("envoy_listener_ssl_handshake"));
        assertEquals(List.of("envoy_listener_ssl_no_certificate{listener_address=\"0.0.0.0_8443\"} 1.0"),
                samples("envoy_listener_ssl_no_certificate"));
        assertEquals(List.of("envoy_listener_ssl_fail_verify_san{listener_address=\"0.0.0.0_8443\"} 1.0"),
                samples("envoy_listener_ssl_fail_verify_san"));
    }

    @Test
    void countsAnOutboundRequestWithSourceReporterAndIstioLabels() {
        metrics.record(StreamInfos.outboundOk());
        metrics.record(StreamInfos.outboundOk());

        assertEquals(List.of("istio_requests_total{" + OUTBOUND_LABELS + "} 2.0"), samples("istio_requests_total"));
    }

    @Test
    void labelsAnInboundRequestWithDestinationReporterAndThePeerAsSource() {
        MeshMetrics reviews = MeshMetrics.create(registry, StreamInfos.REVIEWS, "cluster-1");
        reviews.record(StreamInfos.inboundNoHealthyUpstream());

        List<String> lines = samples("istio_requests_total");
        assertEquals(1, lines.size(), lines.toString());
        String l = lines.get(0);
        for (String label : List.of("reporter=\"destination\"", "source_workload=\"productpage-v1\"",
                "source_app=\"productpage\"", "source_version=\"v1\"", "destination_workload=\"reviews-v2\"",
                "destination_version=\"v2\"", "destination_cluster=\"cluster-1\"", "response_code=\"503\"",
                "response_flags=\"UH\"", "connection_security_policy=\"none\"", "request_protocol=\"http\"")) {
            assertTrue(l.contains(label), label + " in " + l);
        }
    }

    @Test
    void anOutboundRequestsDestinationClusterIsThePeersAsItsEndpointMetadataSays() {
        // as the router reads it from the endpoint's istio.workload "reviews-v2;default;reviews;v2;west"
        WorkloadInfo west = new WorkloadInfo("reviews-v2", "default", "reviews", "v2", "reviews", "v2", "west");
        StreamInfo s = StreamInfos.outboundOk();
        metrics.record(new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(), 200,
                s.responseFlags(), s.responseCodeDetails(), 1, 1, 1, -1, null, s.authority(), null, null, null,
                null, null, null, null, null, null, 1, west, null, null, null, null));
        String l = samples("istio_requests_total").get(0);
        assertTrue(l.contains("destination_cluster=\"west\""), l);
        assertTrue(l.contains("source_cluster=\"Kubernetes\""), l);
    }

    @Test
    void labelsTheInboundPeersCanonicalServiceAndClusterFromItsMetadata() {
        WorkloadInfo caller = PeerMetadata.decode(PeerMetadata.encode(new WorkloadInfo("productpage-v1", "default",
                "productpage", "v1", "shop", "2024-1", null), "east"));
        MeshMetrics reviews = MeshMetrics.create(registry, StreamInfos.REVIEWS, "west");
        StreamInfo s = StreamInfos.inboundNoHealthyUpstream();
        reviews.record(new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(), 503,
                s.responseFlags(), s.responseCodeDetails(), 1, 1, 1, -1, null, s.authority(), null, null, null,
                null, null, null, null, null, null, 1, caller, null, null, null, null));

        String l = samples("istio_requests_total").get(0);
        for (String label : List.of("source_canonical_service=\"shop\"", "source_canonical_revision=\"2024-1\"",
                "source_cluster=\"east\"", "source_principal=\"unknown\"", "destination_principal=\"unknown\"",
                "destination_canonical_service=\"reviews\"", "destination_canonical_revision=\"v2\"",
                "destination_cluster=\"west\"", "grpc_response_status=\"\"")) {
            assertTrue(l.contains(label), label + " in " + l);
        }
    }

    @Test
    void anUnknownPeerHasIstiosDefaultCanonicalLabels() {
        assertEquals("unknown", WorkloadInfo.UNKNOWN.canonicalService());
        assertEquals("latest", WorkloadInfo.UNKNOWN.canonicalRevision());
        assertEquals("unknown", WorkloadInfo.UNKNOWN.cluster());
        WorkloadInfo old = PeerMetadata.decode(PeerMetadata.encode(StreamInfos.PRODUCTPAGE, ""));
        assertEquals("productpage", old.canonicalService());
        // as Istio's injector: no app label, the workload name; no version label, latest
        WorkloadInfo bare = new WorkloadInfo("batch-7f9", "jobs", null, null);
        assertEquals("batch-7f9", bare.canonicalService());
        assertEquals("latest", bare.canonicalRevision());
    }

    @Test
    void recordsDurationAndSizesInIstiosBuckets() {
        metrics.record(StreamInfos.outboundOk()); // 12 ms, 0 bytes in, 295 bytes out

        List<String> duration = samples("istio_request_duration_milliseconds_bucket");
        assertEquals(MeshMetrics.BUCKETS.length + 1, duration.size(), duration.toString());
        assertTrue(bucket(duration, "10.0").endsWith(" 0"), duration.toString());
        assertTrue(bucket(duration, "25.0").endsWith(" 1"), duration.toString());
        assertTrue(bucket(duration, "+Inf").endsWith(" 1"), duration.toString());
        assertEquals(List.of("istio_request_duration_milliseconds_sum{" + OUTBOUND_LABELS + "} 12.0"),
                samples("istio_request_duration_milliseconds_sum"));
        assertEquals(List.of("istio_request_duration_milliseconds_count{" + OUTBOUND_LABELS + "} 1"),
                samples("istio_request_duration_milliseconds_count"));
        assertTrue(bucket(samples("istio_response_bytes_bucket"), "250.0").endsWith(" 0"));
        assertTrue(bucket(samples("istio_response_bytes_bucket"), "500.0").endsWith(" 1"));
        assertTrue(bucket(samples("istio_request_bytes_bucket"), "0.5").endsWith(" 1"));
        assertEquals(List.of("istio_response_bytes_sum{" + OUTBOUND_LABELS + "} 295.0"),
                samples("istio_response_bytes_sum"));
    }

    private static String bucket(List<String> lines, String le) {
        return lines.stream().filter(l -> l.contains("le=\"" + le + "\"")).findFirst()
                .orElseThrow(() -> new AssertionError("no bucket le=" + le + " in " + lines));
    }

    @Test
    void labelsGrpcRequestsWithTheGrpcProtocol() {
        StreamInfo s = StreamInfos.outboundOk();
        StreamInfo grpc = new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), "HTTP/2", 200,
                s.responseFlags(), s.responseCodeDetails(), 5, 7, 1, 1, null, s.authority(), null, null, null,
                null, null, null, null, null, null, 1, s.peer(), null, null, null, "0");
        metrics.record(grpc);

        String l = samples("istio_requests_total").get(0);
        assertTrue(l.contains("request_protocol=\"grpc\""), l);
        assertTrue(l.contains("grpc_response_status=\"0\""), l);
        // as Istio's stats: the Host header as it is, its port included
        assertTrue(l.contains("destination_service=\"reviews:9080\""), "falls back to the request's host: " + l);
        assertTrue(l.contains("destination_service_name=\"reviews:9080\""), "and so does its name: " + l);
    }

    @Test
    void countsTheMessagesOfACountedGrpcRequestLabelledWithTheReporterAndPeersOnly() {
        StreamInfo s = StreamInfos.outboundOk();
        java.util.function.BiFunction<Long, Long, StreamInfo> grpc = (in, out) -> new StreamInfo(s.direction(),
                s.startTime(), s.method(), s.path(), "HTTP/2", 200, s.responseFlags(), s.responseCodeDetails(), 5, 7,
                1, 1, null, s.authority(), null, null, null, null, null, null, null, null, null, 1, s.peer(),
                "reviews.default.svc.cluster.local", "reviews", "default", "0", false, null, null, null, null, in,
                out, null, true);
        metrics.record(grpc.apply(3L, 2L));
        metrics.record(grpc.apply(1L, 0L));
        metrics.record(grpc.apply(-1L, -1L)); // not counted: no gRPC statistics filter emits them

        List<String> in = samples("istio_request_messages_total");
        List<String> out = samples("istio_response_messages_total");
        assertEquals(1, in.size(), in.toString());
        assertTrue(in.get(0).endsWith(" 4.0"), in.get(0));
        assertTrue(out.get(0).endsWith(" 2.0"), out.get(0));
        String l = in.get(0);
        assertTrue(l.contains("reporter=\"source\"") && l.contains("source_workload=\"productpage-v1\"")
                && l.contains("destination_service=\"reviews.default.svc.cluster.local\""), l);
        for (String outcome : List.of("request_protocol", "response_code", "grpc_response_status", "response_flags",
                "connection_security_policy")) {
            assertTrue(!l.contains(outcome + "="), "Istio's stats label message counts without " + outcome + ": "
                    + l);
        }
        assertEquals(3, samples("istio_requests_total").stream().mapToDouble(x -> Double.parseDouble(
                x.substring(x.lastIndexOf(' ') + 1))).sum(), "each request counted as ever");
    }

    @Test
    void countsTcpConnectionsAndBytesInIstiosTcpMetrics() {
        var c = metrics.tcpConnectionOpened(new TcpConnectionInfo(StreamInfo.Direction.OUTBOUND,
                StreamInfos.REVIEWS, "reviews.default.svc.cluster.local", "reviews", "default"));
        c.received(100);
        c.sent(2048);
        c.sent(1);
        c.closed(Set.of());
        c.closed(Set.of());

        String tcp = OUTBOUND_LABELS.replace("request_protocol=\"http\",response_code=\"200\",",
                "request_protocol=\"tcp\",").replace("grpc_response_status=\"\",", "");
        assertEquals(List.of("istio_tcp_connections_opened_total{" + tcp + "} 1.0"),
                samples("istio_tcp_connections_opened_total"));
        assertEquals(List.of("istio_tcp_connections_closed_total{" + tcp + "} 1.0"),
                samples("istio_tcp_connections_closed_total"));
        assertEquals(List.of("istio_tcp_sent_bytes_total{" + tcp + "} 2049.0"),
                samples("istio_tcp_sent_bytes_total"));
        assertEquals(List.of("istio_tcp_received_bytes_total{" + tcp + "} 100.0"),
                samples("istio_tcp_received_bytes_total"));
    }

    @Test
    void aTcpConnectionsDimensionsAreEvaluatedOnceFromItsAttributesAndKeptUntilItsClose() {
        // Istio's network filter evaluates a Telemetry tagOverrides once, when it first reports the connection: its
        // addresses, upstream, cluster and flags then; request attributes are absent (unknown)
        StatsOverrides o = StatsOverrides.compile(new dev.inmesh.api.config.listener.IstioStats(List.of(
                new dev.inmesh.api.config.listener.IstioStats.MetricOverride("", List.of(), false, java.util.Map.of(
                        "peer", "source.address", "flags", "string(response.flags)", "method", "request.method",
                        "took", "string(request.duration)", "response_flags", "xds.cluster_name")),
                new dev.inmesh.api.config.listener.IstioStats.MetricOverride("tcp_sent_bytes_total", List.of(),
                        false, java.util.Map.of("sni", "connection.requested_server_name"))), List.of(
                new dev.inmesh.api.config.listener.IstioStats.MetricDefinition("first_bytes", "request.size",
                        null))));
        TcpStreamInfo values = new TcpStreamInfo(java.time.Instant.EPOCH, Set.of(), 4, 0, 7, "10.0.0.9:9080",
                "outbound|9080||reviews", "10.0.0.1:40000", "10.0.0.2:9080", "10.0.0.3:51000", "reviews.local");
        var c = metrics.tcpConnection(new TcpConnectionInfo(StreamInfo.Direction.OUTBOUND, null, null, null, null)
                .withStatsOverrides(o).withConnection(values));
        c.opened(Set.of(ResponseFlag.UPSTREAM_CONNECTION_FAILURE));
        c.sent(5);
        c.received(4);
        c.closed(Set.of(ResponseFlag.DURATION_TIMEOUT));

        for (String name : List.of("istio_tcp_connections_opened", "istio_tcp_connections_closed",
                "istio_tcp_sent_bytes", "istio_tcp_received_bytes")) {
            List<String> l = Arrays.stream(registry.scrape().split("\n"))
                    .filter(x -> x.startsWith(name + MeshMetrics.DIMENSIONS_MARK)).toList();
            assertEquals(1, l.size(), name + ": " + l);
            for (String label : List.of("peer=\"10.0.0.3:51000\"", "flags=\"32\"", "method=\"unknown\"",
                    "took=\"unknown\"", "response_flags=\"outbound|9080||reviews\"")) {
                assertTrue(l.get(0).contains(label), label + " in " + l.get(0));
            }
            assertEquals(name.equals("istio_tcp_sent_bytes"), l.get(0).contains("sni=\"reviews.local\""), l.get(0));
            assertTrue(l.get(0).endsWith(name.endsWith("bytes") ? " 5.0" : " 1.0")
                    || name.endsWith("received_bytes") && l.get(0).endsWith(" 4.0"), l.get(0));
        }
        // a definition's metric, once at the close, with the values of the connection when first counted
        List<String> custom = Arrays.stream(registry.scrape().split("\n"))
                .filter(x -> x.startsWith("istio_first_bytes" + MeshMetrics.DIMENSIONS_MARK)).toList();
        assertEquals(1, custom.size(), custom.toString());
        assertTrue(custom.get(0).contains("peer=\"10.0.0.3:51000\"") && custom.get(0).endsWith(" 4.0")
                && !custom.get(0).contains("reporter="), custom.get(0));
    }

    @Test
    void labelsATcpConnectionNotReportedBeforeItsCloseWithItsResponseFlags() {
        // a connection that never relayed (its connects failed): opened and closed at its close, with its flags
        var c = metrics.tcpConnection(new TcpConnectionInfo(StreamInfo.Direction.OUTBOUND, null, null, null, null));
        c.closed(Set.of(ResponseFlag.UPSTREAM_CONNECTION_FAILURE));

        for (String name : List.of("istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total")) {
            List<String> l = samples(name);
            assertEquals(1, l.size(), name + ": " + l);
            assertTrue(l.get(0).contains("response_flags=\"UF\"") && l.get(0).endsWith(" 1.0"), l.get(0));
            assertTrue(l.get(0).contains("destination_workload=\"unknown\""), l.get(0));
        }
    }

    @Test
    void aTcpConnectionReportedOpenKeepsItsLabelsAtItsCloseAsIstiosStatsDo() {
        // Istio's stats fix a connection's labels, its response flags among them, when they first report it: a flag
        // set later (a max_downstream_connection_duration's DT) does not move its close to another series
        var c = metrics.tcpConnectionOpened(new TcpConnectionInfo(StreamInfo.Direction.OUTBOUND, null, null, null,
                null));
        c.sent(5);
        c.closed(Set.of(ResponseFlag.DURATION_TIMEOUT));

        for (String name : List.of("istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total",
                "istio_tcp_sent_bytes_total")) {
            List<String> l = samples(name);
            assertEquals(1, l.size(), name + ": " + l);
            assertTrue(l.get(0).contains("response_flags=\"-\""), l.get(0));
        }
    }

    @Test
    void keepsPerClusterUpstreamStatsInEnvoysNames() {
        UpstreamStats u = metrics.upstream("outbound|9080||reviews.default.svc.cluster.local");
        u.requestStarted();
        u.requestStarted();
        u.retry(false);
        u.timeout();
        u.requestCompleted(200);
        u.requestCompleted(504);
        u.connectionOpened();
        u.connectionOpened();
        u.connectionOpened();
        u.connectionClosed(0, true, true);
        u.connectionClosed(0, false, false);
        u.streamReset(true);
        u.streamReset(false);
        u.streamReset(false);

        String c = "{cluster_name=\"outbound|9080||reviews.default.svc.cluster.local\"}";
        assertEquals(List.of("envoy_cluster_upstream_rq_total" + c + " 2.0"),
                samples("envoy_cluster_upstream_rq_total"));
        assertEquals(List.of("envoy_cluster_upstream_rq_retry" + c + " 1.0"),
                samples("envoy_cluster_upstream_rq_retry"));
        assertEquals(List.of("envoy_cluster_upstream_rq_timeout" + c + " 1.0"),
                samples("envoy_cluster_upstream_rq_timeout"));
        assertEquals(List.of("envoy_cluster_upstream_cx_active" + c + " 1.0"),
                samples("envoy_cluster_upstream_cx_active"));
        assertEquals(List.of("envoy_cluster_upstream_cx_total" + c + " 3.0"),
                samples("envoy_cluster_upstream_cx_total"));
        // Envoy's pools count a connection closed with a request not done by the side that closed it, and an HTTP/2
        // stream reset by the side that reset it
        java.util.Map.of("upstream_cx_destroy", 2.0, "upstream_cx_destroy_with_active_rq", 1.0,
                "upstream_cx_destroy_local_with_active_rq", 1.0, "upstream_cx_destroy_remote_with_active_rq", 0.0,
                "upstream_rq_rx_reset", 1.0, "upstream_rq_tx_reset", 2.0).forEach((name, n) -> assertEquals(
                        List.of("envoy_cluster_" + name + c + " " + n), samples("envoy_cluster_" + name), name));
        assertEquals(List.of("envoy_cluster_upstream_rq_completed" + c + " 2.0"),
                samples("envoy_cluster_upstream_rq_completed"));
        List<String> xx = samples("envoy_cluster_upstream_rq_xx");
        assertEquals(2, xx.size(), xx.toString());
        assertTrue(xx.stream().anyMatch(l -> l.contains("response_code_class=\"2xx\"") && l.endsWith(" 1.0")));
        assertTrue(xx.stream().anyMatch(l -> l.contains("response_code_class=\"5xx\"") && l.endsWith(" 1.0")));
        assertEquals(metrics.upstream("outbound|9080||reviews.default.svc.cluster.local"),
                u, "one stats object per cluster");
    }

    @Test
    void anInboundRequestsDestinationServiceLabelsFallBackAsIstiosServerSideStats() {
        // no service known from the inbound cluster (the in-process handler, a cluster without istio metadata):
        // Istio's stats take the request's host for the service and its name, and the namespace is always this
        // workload's on the server side
        MeshMetrics reviews = MeshMetrics.create(registry, StreamInfos.REVIEWS, "Kubernetes");
        StreamInfo s = StreamInfos.inboundNoHealthyUpstream();
        reviews.record(new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(), 200,
                Set.of(), "via_upstream", 1, 1, 1, -1, null, "reviews:9080", null, null, null, "inbound|9080||",
                null, null, null, null, null, 1, StreamInfos.PRODUCTPAGE, null, null, null, null));
        String l = samples("istio_requests_total").get(0);
        for (String label : List.of("destination_service=\"reviews:9080\"",
                "destination_service_name=\"reviews:9080\"", "destination_service_namespace=\"default\"")) {
            assertTrue(l.contains(label), label + " in " + l);
        }
    }

    @Test
    void anInboundPassthroughRequestIsNamedByItsClusterAsIstioNamesIt() {
        MeshMetrics reviews = MeshMetrics.create(registry, StreamInfos.REVIEWS, "Kubernetes");
        StreamInfo s = StreamInfos.inboundNoHealthyUpstream();
        reviews.record(new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(), 200,
                Set.of(), "via_upstream", 1, 1, 1, -1, null, "10.244.0.192:8000", null, null, null,
                "InboundPassthroughClusterIpv4", null, null, null, null, null, 1, StreamInfos.PRODUCTPAGE, null,
                null, null, null));
        String l = samples("istio_requests_total").get(0);
        for (String label : List.of("destination_service=\"10.244.0.192:8000\"",
                "destination_service_name=\"InboundPassthroughClusterIpv4\"",
                "destination_service_namespace=\"default\"")) {
            assertTrue(l.contains(label), label + " in " + l);
        }
    }
    /** An outbound request from productpage to httpbin.org through {@code cluster} or {@code route}, no service. */
    private static StreamInfo external(String cluster, String route, int status) {
        return new StreamInfo(StreamInfo.Direction.OUTBOUND, java.time.Instant.parse("2026-11-28T13:07:13.409Z"),
                "GET", "/get", "HTTP/1.1", status, Set.of(), "via_upstream", 0, 10, 12, 9, null, "httpbin.org",
                null, null, null, cluster, null, "52.22.188.80:80", "10.244.0.194:47020", null, route, 1,
                WorkloadInfo.UNKNOWN, null, null, null, null);
    }

    @Test
    void aRequestThroughThePassthroughClusterIsLabelledWithItAsTheServiceNameAndTheHostAsTheService() {
        // as Istio's client-side stats: destination_service is the request's host, destination_service_name the
        // PassthroughCluster
        metrics.record(external("PassthroughCluster", null, 200));
        String line = samples("istio_requests_total").get(0);
        assertTrue(line.contains("destination_service=\"httpbin.org\""), line);
        assertTrue(line.contains("destination_service_name=\"PassthroughCluster\""), line);
        assertTrue(line.contains("destination_service_namespace=\"unknown\""), line);
    }

    @Test
    void aRequestToTheBlackHoleClusterIsLabelledWithIt() {
        metrics.record(external("BlackHoleCluster", null, 502));
        String line = samples("istio_requests_total").get(0);
        assertTrue(line.contains("destination_service=\"httpbin.org\""), line);
        assertTrue(line.contains("destination_service_name=\"BlackHoleCluster\""), line);
    }

    @Test
    void istiosAllowAnyAndBlockAllRoutesNameThePassthroughAndBlackHoleClusters() {
        // Istio's catch-all routes on its per-port HTTP listeners: allow_any (to PassthroughCluster) and block_all
        // (a direct 502, no cluster)
        metrics.record(external(null, "block_all", 502));
        metrics.record(external("PassthroughCluster", "allow_any", 200));
        List<String> lines = samples("istio_requests_total");
        assertTrue(lines.stream().anyMatch(l -> l.contains("response_code=\"502\"")
                && l.contains("destination_service_name=\"BlackHoleCluster\"")), lines.toString());
        assertTrue(lines.stream().anyMatch(l -> l.contains("response_code=\"200\"")
                && l.contains("destination_service_name=\"PassthroughCluster\"")), lines.toString());
    }

    @Test
    void anOutboundRequestWithoutAServiceIsNamedByItsHostAsIstiosClientSideFallsBackToIt() {
        // a local reply with no route (404 NR): no cluster, so the service and its name are the request's host
        metrics.record(external(null, null, 404));
        String line = samples("istio_requests_total").get(0);
        assertTrue(line.contains("destination_service=\"httpbin.org\""), line);
        assertTrue(line.contains("destination_service_name=\"httpbin.org\""), line);
    }

    @Test
    void anOutboundRequestsDestinationServiceNamespaceIsThePeersAsIstiosClientSideLabelsIt() {
        // through PassthroughCluster to a workload of the mesh that answered with its metadata: its namespace
        StreamInfo s = external("PassthroughCluster", null, 200);
        metrics.record(new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(), 200,
                Set.of(), "via_upstream", 0, 10, 12, 9, null, "10.244.0.9:9080", null, null, null,
                "PassthroughCluster", null, null, null, null, null, 1, StreamInfos.REVIEWS, null, null, null, null));
        String line = samples("istio_requests_total").get(0);
        assertTrue(line.contains("destination_service_namespace=\"default\""), line);
        assertTrue(line.contains("destination_workload=\"reviews-v2\""), line);
    }

    @Test
    void anOutboundRequestsDestinationServiceNamespaceIsTheClustersServicesFirstAsIstio123AndLaterLabelIt() {
        // a service with no healthy endpoint (503 UH): no peer, and the service keeps its namespace (istio/istio#49842)
        StreamInfo ok = StreamInfos.outboundOk();
        metrics.record(new StreamInfo(ok.direction(), ok.startTime(), ok.method(), ok.path(), ok.protocol(), 503,
                Set.of(ResponseFlag.NO_HEALTHY_UPSTREAM), "no_healthy_upstream", 0, 19, 3, -1, null,
                "ratings:9080", null, null, null, "outbound|9080||ratings.bookinfo.svc.cluster.local", null, null,
                null, null, null, 1, WorkloadInfo.UNKNOWN, "ratings.bookinfo.svc.cluster.local", "ratings",
                "bookinfo", null));
        String line = samples("istio_requests_total").get(0);
        assertTrue(line.contains("destination_service_namespace=\"bookinfo\""), line);
        assertTrue(line.contains("destination_workload_namespace=\"unknown\""), line);
    }

    @Test
    void anInboundCallersNamespaceIsTheOneItsIdentityNamesAsIstiosServerSideReadsIt() {
        // a client certificate without metadata exchange: Istio's stats take the namespace from its SPIFFE identity
        recordVerifiedInbound("spiffe://cluster.local/ns/frontend/sa/web");
        String line = samples("istio_requests_total").get(0);
        for (String label : List.of("source_workload_namespace=\"frontend\"",
                "source_principal=\"spiffe://cluster.local/ns/frontend/sa/web\"", "source_workload=\"unknown\"",
                "destination_principal=\"spiffe://cluster.local/ns/default/sa/reviews\"",
                "connection_security_policy=\"mutual_tls\"")) {
            assertTrue(line.contains(label), label + " in " + line);
        }
    }

    @Test
    void aVerifiedClientCertificateWithoutAUriSanIsNoMutualTlsAsIstiosServerSideLabelsIt() {
        // Istio's server side: mutual_tls_ = !peer_san.empty() && !local_san.empty(), the first URI SANs
        recordVerifiedInbound(null);
        String line = samples("istio_requests_total").get(0);
        assertTrue(line.contains("connection_security_policy=\"none\""), line);
        assertTrue(line.contains("source_principal=\"unknown\""), line);
    }

    /**
     * Records at reviews (principal {@code spiffe://cluster.local/ns/default/sa/reviews}) an inbound 200 over TLS whose
     * client certificate the proxy verified, that certificate's first URI SAN {@code peerPrincipal} (null: none).
     */
    private void recordVerifiedInbound(String peerPrincipal) {
        MeshMetrics reviews = MeshMetrics.create(registry, StreamInfos.REVIEWS, "Kubernetes");
        StreamInfo s = StreamInfos.inboundNoHealthyUpstream();
        reviews.record(new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(), 200,
                Set.of(), "via_upstream", 1, 1, 1, -1, null, "reviews:9080", null, null, null, "inbound|9080||",
                null, null, null, null, null, 1, WorkloadInfo.UNKNOWN, "reviews.default.svc.cluster.local",
                "reviews", "default", null, true, peerPrincipal, "spiffe://cluster.local/ns/default/sa/reviews",
                null, null, -1, -1, null, true));
    }

    @Test
    void withoutTheHostHeaderFallbackAnInboundRequestWithoutAServiceIsThisWorkloadsCanonicalService() {
        // istiod's inbound stats filter (disable_host_header_fallback): the Host never names the service, so a port no
        // service declares is labelled with this workload's canonical service and the passthrough cluster's name
        MeshMetrics reviews = MeshMetrics.create(registry, StreamInfos.REVIEWS, "Kubernetes");
        StreamInfo s = StreamInfos.inboundNoHealthyUpstream();
        reviews.record(new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(), 200,
                Set.of(), "via_upstream", 1, 1, 1, -1, null, "10.244.0.192:8000", null, null, null,
                "InboundPassthroughClusterIpv4", null, null, null, null, null, 1, StreamInfos.PRODUCTPAGE, null,
                null, null, null, false, null, null, null, null, -1, -1, null, false));
        String l = samples("istio_requests_total").get(0);
        for (String label : List.of("destination_service=\"reviews\"",
                "destination_service_name=\"InboundPassthroughClusterIpv4\"",
                "destination_service_namespace=\"default\"")) {
            assertTrue(l.contains(label), label + " in " + l);
        }
        // and outbound, a request without a service is unknown
        metrics.record(new StreamInfo(StreamInfo.Direction.OUTBOUND, s.startTime(), "GET", "/", "HTTP/1.1", 404,
                Set.of(ResponseFlag.NO_ROUTE_FOUND), "route_not_found", 0, 0, 0, -1, null, "nothere:9080", null,
                null, null, null, null, null, null, null, null, 1, WorkloadInfo.UNKNOWN, null, null, null, null,
                false, null, null, null, null, -1, -1, null, false));
        String out = samples("istio_requests_total").stream().filter(x -> x.contains("reporter=\"source\""))
                .findFirst().orElseThrow();
        assertTrue(out.contains("destination_service=\"unknown\",destination_service_name=\"unknown\""), out);
    }

    @Test
    void theProxysBuildIsOneSeriesAsIstiosStatsFilterRecordsIt() {
        assertEquals(List.of("istio_build{component=\"proxy\",tag=\""
                + dev.inmesh.runtime.xds.ads.NodeOptions.ISTIO_VERSION + "\"} 1.0"), samples("istio_build"));
        MeshMetrics.create(registry, StreamInfos.REVIEWS); // a second one in the registry: still one series
        assertEquals(1, samples("istio_build").size());
    }

    @Test
    void aSpiffeIdentityNamesItsNamespace() {
        assertEquals("bookinfo", MeshMetrics.spiffeNamespace("spiffe://cluster.local/ns/bookinfo/sa/reviews"));
        assertEquals("bookinfo", MeshMetrics.spiffeNamespace("spiffe://cluster.local/ns/bookinfo"));
        assertEquals(null, MeshMetrics.spiffeNamespace("spiffe://example.com/api"));
        assertEquals(null, MeshMetrics.spiffeNamespace("spiffe://cluster.local/ns//sa/x"));
        assertEquals(null, MeshMetrics.spiffeNamespace(null));
    }

    /** As Envoy makes its {@code retry.} scope's counters as it first charges one: none before a response is retried. */
    @Test
    void theRetryScopeAppearsWithTheFirstResponseRetriedAway() {
        PrometheusMeterRegistry reg = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        var upstream = MeshMetrics.create(reg, WorkloadInfo.UNKNOWN).upstream("c");
        upstream.requestCompleted(200);
        assertTrue(reg.getMeters().stream().noneMatch(m -> m.getId().getName().startsWith("envoy_cluster_retry_upstream_rq")),
                reg.scrape());
        upstream.retriedResponse(503);
        assertEquals(1.0, reg.get("envoy_cluster_retry_upstream_rq_completed").tag("cluster_name", "c").gauge()
                .value());
    }
}
