package dev.inmesh.runtime.xds;

import static dev.inmesh.runtime.xds.Fixtures.istio;
import static dev.inmesh.runtime.xds.Fixtures.read;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.listener.TrafficDirection;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.api.config.route.PathMatcher;
import dev.inmesh.api.config.route.RetryPolicy;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.VirtualHost;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Istio's listeners and routes, as istioctl and Envoy's admin print them, load into the expected records. */
class IstioFixturesTest {

    private static final String REVIEWS = "reviews.default.svc.cluster.local";

    private static Listener listener(ResourceBundle b, String name) {
        Listener l = b.listeners().get(name);
        assertTrue(l != null, "listener " + name + " in " + b.listeners().keySet());
        return l;
    }

    private static HttpConnectionManager hcm(FilterChain c) {
        return assertInstanceOf(HttpConnectionManager.class, c.filter());
    }

    private static String tcpCluster(FilterChain c) {
        TcpProxy t = assertInstanceOf(TcpProxy.class, c.filter());
        return assertInstanceOf(ClusterSpecifier.Named.class, t.cluster()).cluster();
    }

    private static VirtualHost vhost(RouteConfiguration rc, String name) {
        return rc.virtualHosts().stream().filter(v -> v.name().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no virtual host " + name));
    }

    @Test
    void outboundListenerOnPort9080DoesNotBindAndTakesItsRoutesFromRds9080() {
        Listener l = listener(read(istio("listener-0.0.0.0_9080.json")), "0.0.0.0_9080");
        assertEquals(new SocketAddress("0.0.0.0", 9080), l.address());
        assertFalse(l.bindToPort());
        assertFalse(l.useOriginalDst());
        assertEquals(TrafficDirection.OUTBOUND, l.trafficDirection());
        assertEquals(List.of("envoy.filters.listener.tls_inspector", "envoy.filters.listener.http_inspector"),
                l.listenerFilters());
        assertEquals(Duration.ZERO, l.listenerFiltersTimeout());
        assertTrue(l.continueOnListenerFiltersTimeout());

        assertEquals(1, l.filterChains().size());
        FilterChain http = l.filterChains().get(0);
        assertEquals("0.0.0.0_9080", http.name());
        assertEquals("raw_buffer", http.match().transportProtocol());
        assertEquals(List.of("http/1.1", "h2c"), http.match().applicationProtocols());
        assertFalse(http.tls());
        HttpConnectionManager h = hcm(http);
        assertEquals("9080", h.rdsRouteConfigName());
        assertNull(h.routeConfig());
        assertEquals("outbound_0.0.0.0_9080", h.statPrefix());
        assertEquals(Duration.ZERO, h.streamIdleTimeout());
        assertFalse(h.useRemoteAddress());
        // no http_protocol_options: HTTP/1.0 is answered 426, as by Istio's sidecars without PILOT_HTTP10
        assertEquals(dev.inmesh.api.config.listener.Http1Options.DEFAULTS, h.http1());
        // Istio's default pathNormalization, BASE: normalize_path only
        assertEquals(new dev.inmesh.api.config.listener.PathNormalization(true, false,
                dev.inmesh.api.config.listener.PathNormalization.EscapedSlashes.KEEP_UNCHANGED),
                h.pathNormalization());
        assertEquals(List.of("istio.metadata_exchange", "envoy.filters.http.grpc_stats", "istio.alpn",
                "envoy.filters.http.fault", "envoy.filters.http.cors", "istio.stats", "envoy.filters.http.router"),
                h.httpFilters().stream().map(HttpFilter::name).toList());
        // Each filter's config type as Envoy resolves it: a TypedStruct stands for the type it carries.
        assertEquals(List.of("envoy.extensions.filters.http.wasm.v3.Wasm",
                "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig",
                "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig",
                "envoy.extensions.filters.http.fault.v3.HTTPFault", "envoy.extensions.filters.http.cors.v3.Cors",
                "stats.PluginConfig", "envoy.extensions.filters.http.router.v3.Router"),
                h.httpFilters().stream().map(HttpFilter::typeUrl).toList());
        // istiod's gRPC statistics filter emits its filter state: Istio's stats count gRPC messages from it
        assertTrue(h.grpcMessageCounts());
        assertEquals(List.of("envoy.filters.http.grpc_stats"), h.httpFilters().stream()
                .filter(HttpFilter::grpcMessageCounts).map(HttpFilter::name).toList());

        FilterChain fallback = l.defaultFilterChain();
        assertEquals("PassthroughFilterChain", fallback.name());
        assertEquals("PassthroughCluster", tcpCluster(fallback));
    }

    @Test
    void virtualOutboundHandsConnectionsToTheirOriginalDestinationAndElsePassesThrough() {
        Listener l = listener(read(istio("listeners.json")), "virtualOutbound");
        assertEquals(new SocketAddress("0.0.0.0", 15001), l.address());
        assertTrue(l.useOriginalDst());
        assertTrue(l.bindToPort());
        assertEquals(TrafficDirection.OUTBOUND, l.trafficDirection());
        FilterChain blackhole = l.filterChains().get(0);
        assertEquals("virtualOutbound-blackhole", blackhole.name());
        assertEquals(15001, blackhole.match().destinationPort());
        assertEquals("BlackHoleCluster", tcpCluster(blackhole));
        assertEquals("PassthroughCluster", tcpCluster(l.defaultFilterChain()));
        assertEquals(Duration.ofHours(1), ((TcpProxy) l.defaultFilterChain().filter()).idleTimeout());
    }

    @Test
    void virtualInboundChoosesChainsByDestinationPortAndTransportProtocol() {
        Listener l = listener(read(istio("listeners.json")), "virtualInbound");
        assertEquals(new SocketAddress("0.0.0.0", 15006), l.address());
        assertEquals(TrafficDirection.INBOUND, l.trafficDirection());
        assertFalse(l.useOriginalDst());
        assertEquals(List.of("envoy.filters.listener.original_dst", "envoy.filters.listener.tls_inspector",
                "envoy.filters.listener.http_inspector"), l.listenerFilters());
        assertEquals(List.of("virtualInbound-blackhole", "virtualInbound-catchall-tcp",
                "virtualInbound-catchall-http", "0.0.0.0_9080", "0.0.0.0_9080"),
                l.filterChains().stream().map(FilterChain::name).toList());
        assertEquals("BlackHoleCluster", tcpCluster(l.filterChains().get(0)));
        assertEquals(List.of(new CidrRange("0.0.0.0", 0)), l.filterChains().get(1).match().prefixRanges());
        assertEquals("InboundPassthroughClusterIpv4", tcpCluster(l.filterChains().get(1)));

        FilterChain mtls = l.filterChains().get(3);
        assertEquals(9080, mtls.match().destinationPort());
        assertEquals("tls", mtls.match().transportProtocol());
        assertEquals(List.of("istio-http/1.0", "istio-http/1.1", "istio-h2"), mtls.match().applicationProtocols());
        assertTrue(mtls.tls());
        // its certificate and CA are Istio's SDS secrets (default, ROOTCA): it loads, and is not served
        assertNull(mtls.tlsContext());
        FilterChain plain = l.filterChains().get(4);
        assertEquals(9080, plain.match().destinationPort());
        assertEquals("raw_buffer", plain.match().transportProtocol());
        assertFalse(plain.tls());

        for (FilterChain c : List.of(mtls, plain)) {
            HttpConnectionManager h = hcm(c);
            assertNull(h.rdsRouteConfigName());
            RouteConfiguration inline = h.routeConfig();
            assertEquals("inbound|9080||", inline.name());
            VirtualHost vh = inline.virtualHosts().get(0);
            assertEquals("inbound|http|9080", vh.name());
            assertEquals(List.of("*"), vh.domains());
            RouteAction a = assertInstanceOf(RouteAction.class, vh.routes().get(0).action());
            assertEquals(new ClusterSpecifier.Named("inbound|9080||"), a.cluster());
            assertEquals(Duration.ZERO, a.timeout());
            assertEquals(Duration.ZERO, a.maxGrpcTimeout());
            assertEquals("reviews.default.svc.cluster.local:9080/*", vh.routes().get(0).decorator());
            assertFalse(h.httpFilters().stream().anyMatch(f -> f.name().equals("istio.alpn")));
        }
    }

    @Test
    void routeConfiguration9080CarriesIstioDomainsRetryPolicyAndTimeouts() {
        RouteConfiguration rc = read(istio("routes.json")).routes().get("9080");
        assertTrue(rc.ignorePortInHostMatching());
        assertFalse(rc.validateClusters());
        assertEquals(List.of("details.default.svc.cluster.local:9080", "productpage.default.svc.cluster.local:9080",
                "ratings.default.svc.cluster.local:9080", "reviews.default.svc.cluster.local:9080", "allow_any"),
                rc.virtualHosts().stream().map(VirtualHost::name).toList());

        VirtualHost details = vhost(rc, "details.default.svc.cluster.local:9080");
        assertEquals(List.of("details.default.svc.cluster.local", "details", "details.default.svc", "details.default",
                "10.96.171.138"), details.domains());
        assertTrue(details.includeRequestAttemptCount());
        Route route = details.routes().get(0);
        assertEquals("default", route.name());
        assertEquals(new PathMatcher.Prefix("/"), route.match().path());
        assertEquals("details.default.svc.cluster.local:9080/*", route.decorator());
        RouteAction a = assertInstanceOf(RouteAction.class, route.action());
        assertEquals(new ClusterSpecifier.Named("outbound|9080||details.default.svc.cluster.local"), a.cluster());
        assertEquals(Duration.ZERO, a.timeout());
        assertEquals(Duration.ZERO, a.maxGrpcTimeout());

        RetryPolicy retry = a.retryPolicy();
        assertEquals(Set.of("connect-failure", "refused-stream", "unavailable", "cancelled",
                "retriable-status-codes"), retry.retryOn());
        assertEquals(2, retry.numRetries());
        assertEquals(List.of(RetryPolicy.PREVIOUS_HOSTS), retry.retryHostPredicates());
        assertEquals(5, retry.hostSelectionRetryMaxAttempts());
        assertEquals(Set.of(503), retry.retriableStatusCodes());
        assertNull(retry.perTryTimeout());
        assertEquals(RetryPolicy.DEFAULT_BACK_OFF_BASE, retry.backOffBase());
    }

    @Test
    void reviewsRoutesJasonByHeaderAndSplitsEveryoneElseByWeight() {
        RouteConfiguration rc = read(istio("routes.json")).routes().get("9080");
        VirtualHost reviews = vhost(rc, REVIEWS + ":9080");
        Route jason = reviews.routes().get(0);
        HeaderMatcher h = jason.match().headers().get(0);
        assertEquals("end-user", h.name());
        assertEquals(new HeaderMatcher.Value(new StringMatcher.Exact("jason", false)), h.rule());
        assertEquals(new ClusterSpecifier.Named("outbound|9080|v2|" + REVIEWS),
                ((RouteAction) jason.action()).cluster());

        RouteAction split = (RouteAction) reviews.routes().get(1).action();
        ClusterSpecifier.Weighted w = assertInstanceOf(ClusterSpecifier.Weighted.class, split.cluster());
        assertEquals(List.of("outbound|9080|v1|" + REVIEWS, "outbound|9080|v3|" + REVIEWS),
                w.clusters().stream().map(ClusterSpecifier.ClusterWeight::name).toList());
        assertEquals(List.of(50L, 50L), w.clusters().stream().map(ClusterSpecifier.ClusterWeight::weight).toList());
        assertEquals(100, w.totalWeight());
    }

    @Test
    void allowAnyVirtualHostSendsEveryOtherHostToPassthroughCluster() {
        RouteConfiguration rc = read(istio("routes.json")).routes().get("9080");
        VirtualHost any = vhost(rc, "allow_any");
        assertEquals(List.of("*"), any.domains());
        RouteAction a = (RouteAction) any.routes().get(0).action();
        assertEquals(new ClusterSpecifier.Named("PassthroughCluster"), a.cluster());
        assertNull(a.retryPolicy());
        assertNull(any.retryPolicy());
    }

    @Test
    void envoyConfigDumpInSnakeCaseLoadsTheSameRecordsAsIstioctlInCamelCase() {
        ResourceBundle dump = read(istio("config_dump.json"));
        ResourceBundle listeners = read(istio("listeners.json"));
        ResourceBundle routes = read(istio("routes.json"));
        assertEquals(listeners.listeners(), dump.listeners());
        assertEquals(routes.routes(), dump.routes());
        assertTrue(dump.clusters().isEmpty());
        assertTrue(dump.endpoints().isEmpty());
    }

    @Test
    void istioctlProxyConfigAllInCamelCaseLoadsTheSameRecordsAndVersionsAsEnvoysDump() {
        ResourceBundle istioctl = read(istio("config_dump_istioctl_all.json"));
        ResourceBundle envoy = read(istio("config_dump.json"));
        assertEquals(envoy.listeners(), istioctl.listeners());
        assertEquals(envoy.routes(), istioctl.routes());
        assertEquals(envoy.versions(), istioctl.versions());
    }

    @Test
    void istioctlYamlOutputLoadsTheSameRecordsAsItsJson() {
        assertEquals(read(istio("routes.json")).routes(), read(istio("routes.yaml")).routes());
    }

    @Test
    void configDumpKeepsEachResourcesVersionInfoAndLastUpdated() {
        ResourceBundle dump = read(istio("config_dump.json"));
        assertEquals(new ResourceBundle.Version("2026-11-28T12:00:00Z/42", Instant.parse("2026-11-28T12:00:01.518Z")),
                dump.version(ResourceType.LISTENER, "virtualInbound"));
        assertEquals(new ResourceBundle.Version("2026-11-28T12:00:00Z/41", Instant.parse("2026-11-28T11:59:58.070Z")),
                dump.version(ResourceType.ROUTE, "9080"));
    }

    @Test
    void bootstrapStaticListenersLoadAndUnnamedOnesAreNamedByAddressAndPort() {
        ResourceBundle b = read(istio("bootstrap-listeners.yaml"));
        assertEquals(Set.of("0.0.0.0_15090", "productpage_9080"), b.listeners().keySet());
        Listener prometheus = b.listeners().get("0.0.0.0_15090");
        assertEquals(new SocketAddress("0.0.0.0", 15090), prometheus.address());
        HttpConnectionManager h = hcm(prometheus.filterChains().get(0));
        assertEquals("stats", h.statPrefix());
        Route r = h.routeConfig().virtualHosts().get(0).routes().get(0);
        assertEquals(new PathMatcher.Prefix("/stats/prometheus"), r.match().path());
        assertEquals(new ClusterSpecifier.Named("prometheus_stats"), ((RouteAction) r.action()).cluster());
        assertEquals(RouteAction.DEFAULT_TIMEOUT, ((RouteAction) r.action()).timeout());
        assertEquals("9080", hcm(b.listeners().get("productpage_9080").filterChains().get(0)).rdsRouteConfigName());
    }

    /** The cluster and endpoint fixtures (for {@link IstioClusterFixturesTest}) are Envoy's own protobuf JSON. */
    @Test
    void clusterAndEndpointFixturesAreWellFormedEnvoyJson() throws Exception {
        var clusters = EnvoyJson.tree(Files.readString(istio("bookinfo-clusters.json")));
        for (var c : clusters) {
            EnvoyJson.toMessage(c, io.envoyproxy.envoy.config.cluster.v3.Cluster.class);
        }
        var statuses = EnvoyJson.tree(Files.readString(istio("bookinfo-endpoints.json")));
        for (var s : statuses) {
            var cla = EnvoyJson.toMessage(ClusterStatusJson.toLoadAssignment(s),
                    io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment.class);
            assertFalse(cla.getEndpointsList().isEmpty(), cla.getClusterName());
        }
        var bootstrap = EnvoyJson.tree(Files.readString(istio("bootstrap.json")));
        bootstrap = ((com.fasterxml.jackson.databind.node.ObjectNode) bootstrap.deepCopy());
        EnvoyJson.toMessage(bootstrap, io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap.class);
        var dump = EnvoyJson.tree(Files.readString(istio("config_dump_full.json")));
        int n = 0;
        for (var config : dump.get("configs")) {
            for (String list : List.of("static_clusters", "dynamic_active_clusters")) {
                for (var entry : config.path(list)) {
                    var body = ((com.fasterxml.jackson.databind.node.ObjectNode) entry.get("cluster").deepCopy());
                    body.remove("@type");
                    EnvoyJson.toMessage(body, io.envoyproxy.envoy.config.cluster.v3.Cluster.class);
                    n++;
                }
            }
            for (var entry : config.path("dynamic_endpoint_configs")) {
                var body = ((com.fasterxml.jackson.databind.node.ObjectNode) entry.get("endpoint_config").deepCopy());
                body.remove("@type");
                EnvoyJson.toMessage(body, io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment.class);
                n++;
            }
        }
        assertEquals(4 + 10 + 4, n);
    }

    @Test
    void aDirectoryLoadsEveryConfigFileInIt(@TempDir Path dir) throws IOException {
        Files.copy(istio("listeners.json"), dir.resolve("listeners.json"));
        Files.copy(istio("routes.json"), dir.resolve("routes.json"));
        Files.writeString(dir.resolve("README.txt"), "not a config file");
        ResourceBundle b = read(dir);
        assertEquals(Set.of("virtualOutbound", "0.0.0.0_9080", "virtualInbound"), b.listeners().keySet());
        assertEquals(Set.of("9080"), b.routes().keySet());
        assertTrue(b.version(ResourceType.ROUTE, "9080").versionInfo().startsWith("routes.json@"));
    }
}
