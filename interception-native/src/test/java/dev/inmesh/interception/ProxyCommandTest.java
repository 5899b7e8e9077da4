package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.accesslog.AccessLog;
import dev.inmesh.runtime.stats.TcpStreamInfo;
import dev.inmesh.runtime.testing.LoopbackPorts;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** {@code inmesh proxy --access-log}: the format the settings name, as the in-JVM mode's access log. */
class ProxyCommandTest {
    private final List<String> lines = new CopyOnWriteArrayList<>();

    @Test
    void theAccessLogIsJsonWhenTheSettingsSayJson() throws Exception {
        AccessLog log = ProxyCommand.accessLog(new MeshOptions().setAccessLogFormat(MeshOptions.AccessLogFormat.JSON),
                lines::add);
        assertEquals(AccessLog.Format.JSON, log.format());
        log.log(new TcpStreamInfo(null, Set.of(), 1, 2, 3, null, "c", null, "10.0.0.1:80", "10.0.0.2:4000", null));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (lines.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(1, lines.size());
        assertTrue(lines.get(0).startsWith("{\"start_time\":null,"), lines.get(0));
    }

    private static java.net.InetSocketAddress freePort() throws Exception {
        return new java.net.InetSocketAddress("127.0.0.1", LoopbackPorts.freePort());
    }

    private static dev.inmesh.interception.proxy.AdminHook.Addresses freeAddresses() throws Exception {
        return new dev.inmesh.interception.proxy.AdminHook.Addresses(freePort(), freePort(), freePort(), freePort());
    }

    private static java.net.http.HttpResponse<String> post(java.net.InetSocketAddress at, String path)
            throws Exception {
        return java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                java.net.URI.create("http://127.0.0.1:" + at.getPort() + path))
                .POST(java.net.http.HttpRequest.BodyPublishers.noBody()).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    }

    private static final String NODE = "sidecar~10.244.0.7~ratings-v1.default~default.svc.cluster.local";

    @Test
    void theAdminServerNamesTheProxysNodeAsAnIstioSidecarsDoes() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            dev.inmesh.interception.proxy.AdminHook.Addresses addresses =
                    new dev.inmesh.interception.proxy.AdminHook.Addresses(freePort(), freePort(), freePort(),
                            freePort());
            AutoCloseable admin = ProxyCommand.adminHook(null, java.nio.file.Path.of("/etc/inmesh/mesh.yaml"), NODE,
                    () -> { }).start(vertx, new dev.inmesh.runtime.snapshot.SnapshotHolder(), addresses);
            try {
                var info = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create("http://127.0.0.1:" + addresses.admin().getPort() + "/server_info"))
                        .build(), java.net.http.HttpResponse.BodyHandlers.ofString());
                var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(info.body());
                assertEquals(NODE, json.get("node").get("id").asText(), info.body());
            } finally {
                admin.close();
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void aBootstrapsNodeIsTheProxysNodeWithoutAnXdsServer(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        // as Istio's envoy-rev.json: the sidecar's id, cluster and metadata
        java.nio.file.Path bootstrap = dir.resolve("envoy-rev.json");
        java.nio.file.Files.writeString(bootstrap, """
                {"node": {"id": "sidecar~10.244.0.9~reviews-v1-abc.default~default.svc.cluster.local",
                  "cluster": "reviews.default", "metadata": {"ISTIO_VERSION": "1.24.2", "NAMESPACE": "default"}},
                 "static_resources": {}}
                """);
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            dev.inmesh.interception.proxy.AdminHook.Addresses addresses =
                    new dev.inmesh.interception.proxy.AdminHook.Addresses(freePort(), freePort(), freePort(),
                            freePort());
            AutoCloseable admin = ProxyCommand.adminHook(null, bootstrap, NODE, () -> { })
                    .start(vertx, new dev.inmesh.runtime.snapshot.SnapshotHolder(), addresses);
            try {
                for (String path : List.of("/server_info", "/config_dump?mask=bootstrap")) {
                    var answer = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                            java.net.URI.create("http://127.0.0.1:" + addresses.admin().getPort() + path)).build(),
                            java.net.http.HttpResponse.BodyHandlers.ofString()).body();
                    var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(answer);
                    var node = path.equals("/server_info") ? json.get("node")
                            : json.get("configs").get(0).get("bootstrap").get("node");
                    assertEquals("sidecar~10.244.0.9~reviews-v1-abc.default~default.svc.cluster.local",
                            node.get("id").asText(), answer);
                    assertEquals("reviews.default", node.get("cluster").asText(), answer);
                    assertEquals("1.24.2", node.get("metadata").get("ISTIO_VERSION").asText(), answer);
                    assertEquals(dev.inmesh.runtime.xds.ads.NodeBuilder.USER_AGENT, node.get("user_agent_name").asText(),
                            answer);
                }
            } finally {
                admin.close();
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theConfigDumpHasTheSecretsOfTheWorkloadIdentityDirectory(@org.junit.jupiter.api.io.TempDir
                                                                  java.nio.file.Path dir) throws Exception {
        var ca = dev.inmesh.runtime.upstream.TestCertificates.ca("cluster.local");
        var own = dev.inmesh.runtime.upstream.TestCertificates.issue(ca, "ratings", List.of(),
                List.of("spiffe://cluster.local/ns/default/sa/bookinfo-ratings"));
        var identity = new dev.inmesh.runtime.tls.WorkloadIdentity(
                dev.inmesh.runtime.upstream.TestCertificates.identityDirectory(dir, own, ca));
        // an ISTIO_MUTUAL cluster, read as the proxy reads its configuration with that directory
        var snapshots = new dev.inmesh.runtime.snapshot.SnapshotHolder();
        snapshots.apply(dev.inmesh.runtime.xds.Parsers.withIdentity(identity,
                () -> dev.inmesh.runtime.xds.EnvoyConfigReader.read(
                        dev.inmesh.runtime.upstream.TestCertificates.ISTIO_MUTUAL_CLUSTER)));
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            var addresses = freeAddresses();
            AutoCloseable admin = ProxyCommand.adminHook(null, null, NODE, () -> { },
                    dev.inmesh.runtime.admin.IstioAgent.Settings.NONE, identity).start(vertx, snapshots, addresses);
            try {
                var dump = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create("http://127.0.0.1:" + addresses.admin().getPort()
                                + "/config_dump?resource=dynamic_active_secrets")).build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString());
                var configs = new com.fasterxml.jackson.databind.ObjectMapper().readTree(dump.body()).get("configs");
                assertEquals(List.of("default", "ROOTCA"), List.of(configs.get(0).get("name").asText(),
                        configs.get(1).get("name").asText()), dump.body());
                assertEquals("W3JlZGFjdGVkXQ==", configs.get(0).at("/secret/tls_certificate/private_key/inline_bytes")
                        .asText(), "[redacted]");
            } finally {
                admin.close();
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void quitquitquitOnTheAdminAndTheAgentPortStopsTheProxyAsEnvoyAndIstiosAgent() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            dev.inmesh.interception.proxy.AdminHook.Addresses addresses =
                    new dev.inmesh.interception.proxy.AdminHook.Addresses(freePort(), freePort(), freePort(),
                            freePort());
            java.util.concurrent.CountDownLatch stopped = new java.util.concurrent.CountDownLatch(2);
            AutoCloseable admin = ProxyCommand.adminHook(
                    new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                            io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT),
                    java.nio.file.Path.of("/etc/inmesh/mesh.yaml"), NODE, stopped::countDown)
                    .start(vertx, new dev.inmesh.runtime.snapshot.SnapshotHolder(), addresses);
            try {
                var agent = post(addresses.agent(), "/quitquitquit");
                assertEquals(200, agent.statusCode());
                assertEquals("OK\n", agent.body());
                assertEquals(200, post(addresses.admin(), "/quitquitquit").statusCode());
                assertTrue(stopped.await(10, TimeUnit.SECONDS), "each quit ran the stop");
                assertEquals(404, post(addresses.health(), "/quitquitquit").statusCode(), "15021 only probes");
            } finally {
                admin.close();
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theAgentPortProbesTheApplicationAsIstiosInjectorRewroteItsProbes() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try (java.net.ServerSocket app = new java.net.ServerSocket(0, 5, java.net.InetAddress.getLoopbackAddress())) {
            var addresses = freeAddresses();
            var agent = dev.inmesh.runtime.admin.IstioAgent.Settings.fromEnvironment(java.util.Map.of(
                    "ISTIO_KUBE_APP_PROBERS", "{\"/app-health/app/livez\":{\"tcpSocket\":{\"port\":"
                            + app.getLocalPort() + "}}}", "INSTANCE_IP", "127.0.0.1"), addresses.agent().getPort());
            AutoCloseable admin = ProxyCommand.adminHook(null, null, NODE, () -> { }, agent)
                    .start(vertx, new dev.inmesh.runtime.snapshot.SnapshotHolder(), addresses);
            try {
                assertEquals(200, get(addresses.agent(), "/app-health/app/livez").statusCode());
                assertEquals(400, get(addresses.agent(), "/app-health/other/livez").statusCode());
                assertEquals(404, get(addresses.admin(), "/app-health/app/livez").statusCode(), "the agent's only");
                assertEquals(404, get(addresses.prometheus(), "/metrics").statusCode(), "the agent's only");
                assertEquals(200, get(addresses.agent(), "/metrics").statusCode());
            } finally {
                admin.close();
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    private static java.net.http.HttpResponse<String> get(java.net.InetSocketAddress at, String path)
            throws Exception {
        return java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                java.net.URI.create("http://127.0.0.1:" + at.getPort() + path)).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void drainListenersOnTheAdminPortDrainsTheProxysListenersAsEnvoysAdmin() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            var addresses = freeAddresses();
            List<String> drains = new CopyOnWriteArrayList<>();
            AutoCloseable admin = ProxyCommand.adminHook(null, java.nio.file.Path.of("/etc/inmesh/mesh.yaml"), NODE,
                    () -> { }).start(vertx, new dev.inmesh.runtime.snapshot.SnapshotHolder(), addresses,
                    (inbound, graceful, skipExit) -> drains.add(inbound + " " + graceful + " " + skipExit));
            try {
                var ok = post(addresses.admin(), "/drain_listeners?inboundonly&graceful");
                assertEquals(200, ok.statusCode());
                assertEquals("OK\n", ok.body());
                assertEquals(List.of("true true false"), drains);
                var get = java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                        java.net.URI.create("http://127.0.0.1:" + addresses.admin().getPort() + "/drain_listeners"))
                        .build(), java.net.http.HttpResponse.BodyHandlers.ofString());
                assertEquals(405, get.statusCode());
                assertEquals(404, post(addresses.agent(), "/drain_listeners").statusCode(), "Envoy's admin only");
                assertEquals(List.of("true true false"), drains);
            } finally {
                admin.close();
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void xdsAddressMakesTheProxyAnAdsClientAsTheWorkloadsSidecarNode() {
        ProxyCommand c = new ProxyCommand();
        MeshOptions o = new MeshOptions().setPodIp("10.1.2.3").setPodName("reviews-v1-abc");
        java.util.Map<String, String> env = java.util.Map.of("POD_NAMESPACE", "shop",
                "ISTIO_META_WORKLOAD_NAME", "reviews-v1", "ISTIO_META_INTERCEPTION_MODE", "TPROXY");
        assertEquals(null, c.xds(o, c.identity(o, env), env), "no control plane unless one is named");
        c.xdsAddress = "istiod.istio-system.svc:15010";
        dev.inmesh.runtime.xds.ads.AdsOptions ads = c.xds(o, c.identity(o, env), env);
        assertEquals("istiod.istio-system.svc:15010", ads.servers().get(0).address());
        assertEquals("sidecar~10.1.2.3~reviews-v1-abc.shop~shop.svc.cluster.local", ads.node().nodeId());
        assertEquals("TPROXY", ads.node().interceptionMode());
        assertEquals("reviews-v1", ads.node().workloadName());
        assertEquals(false, ads.delta(), "state of the world unless asked");
        ProxyCommand delta = new ProxyCommand();
        new picocli.CommandLine(delta).parseArgs("--xds-address", "istiod.istio-system.svc:15010", "--xds-delta");
        assertEquals(true, delta.xds(new MeshOptions(), delta.identity(o, env), env).delta(), "--xds-delta");
        assertEquals(true, c.xds(new MeshOptions().setXdsDelta(true), c.identity(o, env), env).delta(),
                "INMESH_XDS_DELTA");
        c.xdsAddress = "istiod";
        IllegalArgumentException bad = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> c.xds(o, c.identity(o, env), env));
        assertEquals("inmesh.xds.address: istiod (expected: host:port)", bad.getMessage());
    }

    @Test
    void dnsCaptureOrIstioMetaDnsCaptureRunsTheDnsProxyOnTheNameServersAndSearchDomainsOfResolvConf(
            @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path resolvConf = dir.resolve("resolv.conf");
        java.nio.file.Files.writeString(resolvConf, """
                # written by the kubelet
                search shop.svc.cluster.local svc.cluster.local cluster.local
                nameserver 10.96.0.10
                nameserver fd00:10:96::a
                options ndots:5
                """);
        var registry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        ProxyCommand c = new ProxyCommand();
        assertEquals(null, c.dns(java.util.Map.of(), resolvConf, registry), "off unless asked");
        assertEquals(null, c.dns(java.util.Map.of("ISTIO_META_DNS_CAPTURE", "false"), resolvConf, registry));
        assertEquals(null, c.dns(java.util.Map.of("ISTIO_META_DNS_CAPTURE", "yes"), resolvConf, registry),
                "not a Go boolean: off, as Istio's agent");
        for (String on : List.of("1", "t", "True", "TRUE")) {
            assertTrue(c.dns(java.util.Map.of("ISTIO_META_DNS_CAPTURE", on), resolvConf, registry) != null, on);
        }

        var dns = c.dns(java.util.Map.of("ISTIO_META_DNS_CAPTURE", "true"), resolvConf, registry);

        assertEquals(List.of(new java.net.InetSocketAddress("10.96.0.10", 53),
                new java.net.InetSocketAddress("fd00:10:96::a", 53)), dns.options().upstreams());
        assertEquals(List.of("shop.svc.cluster.local", "svc.cluster.local", "cluster.local"),
                dns.options().searchDomains());
        assertEquals(new java.net.InetSocketAddress("127.0.0.1", 15053), dns.options().listen().get(0));
        assertEquals(java.time.Duration.ofSeconds(5), dns.options().upstreamTimeout(), "Istio's DNS_FORWARD_TIMEOUT");
        assertEquals(false, dns.options().parallel(), "DNS_FORWARD_PARALLEL's default");
        assertEquals(true, c.dns(java.util.Map.of("ISTIO_META_DNS_CAPTURE", "1", "DNS_FORWARD_PARALLEL", "true"),
                resolvConf, registry).options().parallel());
        ProxyCommand flag = new ProxyCommand();
        new picocli.CommandLine(flag).parseArgs("-c", "x.json", "--dns-capture");
        assertTrue(flag.dns(java.util.Map.of(), resolvConf, registry) != null, "--dns-capture");
    }

    @Test
    void theBootstrapsStatsConfigNamesTheTagsOfEnvoysStatisticsOnEveryPortThatServesThem(
            @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        var registry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        dev.inmesh.runtime.stats.MeshMetrics.create(registry, dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN)
                .upstream("outbound|9080||reviews").requestCompleted(200);
        java.nio.file.Path plain = dir.resolve("envoy.yaml");
        java.nio.file.Files.writeString(plain, "static_resources: {}\n");
        // Istio's bootstrap: its own tags, without Envoy's default ones
        java.nio.file.Path istio = dir.resolve("envoy-rev.json");
        java.nio.file.Files.writeString(istio, """
                {"static_resources": {}, "stats_config": {"use_all_default_tags": false, "stats_tags": [
                  {"tag_name": "cluster_name", "regex": "^cluster\\\\.((.+?(\\\\..+?\\\\.svc\\\\.cluster\\\\.local)?)\\\\.)"},
                  {"tag_name": "response_code_class", "regex": "_rq(_(\\\\dxx))$"}]}}
                """);
        java.util.Map<java.nio.file.Path, String> expected = new java.util.LinkedHashMap<>();
        expected.put(plain, "envoy_cluster_upstream_rq_xx{envoy_cluster_name=\"outbound|9080||reviews\","
                + "envoy_response_code_class=\"2\"} 1\n");
        expected.put(istio, "envoy_cluster_upstream_rq{cluster_name=\"outbound|9080||reviews\","
                + "response_code_class=\"2xx\"} 1\n");
        // no bootstrap: Istio's names, as Inmesh's default stands for Istio's bootstrap
        expected.put(dir.resolve("none.yaml"), "envoy_cluster_upstream_rq{cluster_name=\"outbound|9080||reviews\","
                + "response_code_class=\"2xx\"} 1\n");
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            for (var e : expected.entrySet()) {
                var addresses = freeAddresses();
                AutoCloseable admin = ProxyCommand.adminHook(registry, e.getKey(), NODE, () -> { })
                        .start(vertx, new dev.inmesh.runtime.snapshot.SnapshotHolder(), addresses);
                try {
                    for (var at : List.of(addresses.admin(), addresses.prometheus(), addresses.agent())) {
                        String scrape = get(at, "/stats/prometheus").body();
                        assertTrue(scrape.contains(e.getValue()), e.getKey() + " at " + at + ": " + scrape);
                    }
                    // /stats, Envoy's text form, has no tags
                    assertTrue(get(addresses.admin(), "/stats").body().contains(
                            "cluster.outbound|9080||reviews.upstream_rq_2xx: 1\n"));
                } finally {
                    admin.close();
                }
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theDnsProxysMetricsAreIstiosAgentsIstioAgentDnsServedOnTheAgentPortAlone(
            @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path resolvConf = dir.resolve("resolv.conf");
        java.nio.file.Files.writeString(resolvConf, "nameserver 10.96.0.10\n");
        var registry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        var agentRegistry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        var dns = new ProxyCommand().dns(java.util.Map.of("ISTIO_META_DNS_CAPTURE", "true"), resolvConf,
                agentRegistry);
        dns.metrics().request();
        dns.metrics().upstreamRequest();
        dns.metrics().upstreamDuration(TimeUnit.MILLISECONDS.toNanos(3));
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            var addresses = freeAddresses();
            AutoCloseable admin = ProxyCommand.adminHook(registry, null, NODE, () -> { },
                    dev.inmesh.runtime.admin.IstioAgent.Settings.NONE, null, agentRegistry)
                    .start(vertx, new dev.inmesh.runtime.snapshot.SnapshotHolder(), addresses);
            try {
                String agent = get(addresses.agent(), "/stats/prometheus").body();
                assertTrue(agent.contains("istio_agent_dns_requests_total 1\n"), agent);
                assertTrue(agent.contains("istio_agent_dns_upstream_requests_total 1\n"), agent);
                assertTrue(agent.contains("istio_agent_dns_upstream_failures_total 0\n"), agent);
                assertTrue(agent.contains(
                        "istio_agent_dns_upstream_request_duration_seconds_bucket{le=\"0.005\"} 1\n"), agent);
                assertTrue(!agent.contains("istio_dns_"), "ztunnel's names, not the sidecar agent's");
                for (var at : List.of(addresses.prometheus(), addresses.admin())) {
                    String envoy = get(at, "/stats/prometheus").body();
                    assertTrue(!envoy.contains("dns_requests"), "Envoy's metrics alone: " + envoy);
                }
            } finally {
                admin.close();
            }
        } finally {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void underAControlPlaneTheAdminServerShowsTheStreamAndIsNotReadyBeforeAFirstConfiguration() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        dev.inmesh.runtime.config.AdsConfigSource ads = new dev.inmesh.runtime.config.AdsConfigSource(vertx,
                dev.inmesh.runtime.xds.ads.AdsOptions.of(new dev.inmesh.runtime.xds.ads.NodeOptions("p", "default",
                        "127.0.0.1", null, null, null, null, null, null, null, null, null),
                        dev.inmesh.runtime.xds.ads.AdsOptions.XdsServer.plaintext("127.0.0.1",
                                freePort().getPort())));
        dev.inmesh.runtime.snapshot.SnapshotHolder snapshots = new dev.inmesh.runtime.snapshot.SnapshotHolder();
        try {
            dev.inmesh.interception.proxy.AdminHook.Addresses addresses = freeAddresses();
            AutoCloseable admin = ProxyCommand.adminHook(null, null, NODE, () -> { })
                    .start(vertx, snapshots, addresses, null, ads);
            ads.start(snapshots);
            try {
                var client = java.net.http.HttpClient.newHttpClient();
                var status = client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:"
                        + addresses.admin().getPort() + "/debug/xds_status")).build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString());
                assertEquals(200, status.statusCode(), status.body());
                assertTrue(status.body().contains("Listener"), status.body());
                var ready = client.send(java.net.http.HttpRequest.newBuilder(java.net.URI.create("http://127.0.0.1:"
                        + addresses.health().getPort() + "/healthz/ready")).build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString());
                assertEquals(503, ready.statusCode());
            } finally {
                admin.close();
            }
        } finally {
            ads.close().await(10, TimeUnit.SECONDS);
            vertx.close().await(10, TimeUnit.SECONDS);
        }
    }

    /**
     * Istio's bootstrap (and a sidecar's config dump) has listeners of its own on the health and Prometheus ports,
     * which then serve them: the proxy starts beside them (it could not bind the health port before), and the command
     * line's ports move or drop the others.
     */
    @Test
    void aListenerOfTheConfigurationOnTheHealthPortServesItAndTheOtherPortsFollowTheCommandLine(
            @org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        int admin = LoopbackPorts.freePort();
        int health = LoopbackPorts.freePort();
        int prometheus = LoopbackPorts.freePort();
        int status = LoopbackPorts.freePort();
        java.nio.file.Path bootstrap = dir.resolve("bootstrap.yaml");
        java.nio.file.Files.writeString(bootstrap, """
                admin: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                static_resources:
                  listeners:
                  - name: health
                    address: {socket_address: {address: 0.0.0.0, port_value: %d}}
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: agent
                          route_config:
                            virtual_hosts:
                            - name: backend
                              domains: ["*"]
                              routes:
                              - match: {prefix: /healthz/ready}
                                route: {cluster: agent}
                          http_filters:
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                  clusters:
                  - name: agent
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: agent
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(admin, health, status));
        var registry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
        var proxy = dev.inmesh.interception.proxy.StandaloneProxy.start(
                new dev.inmesh.interception.proxy.StandaloneProxy.Settings(bootstrap, -1, -1, 1, null,
                        ProxyCommand.adminHook(registry, bootstrap, NODE, () -> { },
                                dev.inmesh.runtime.admin.IstioAgent.Settings.NONE)
                                .withPorts(health, prometheus, status)));
        try {
            // the listener's route to the agent port's /healthz/ready, as Istio's 15021 listener
            assertEquals(200, get(health, "/healthz/ready").statusCode());
            assertEquals(404, get(health, "/stats/prometheus").statusCode(), "the listener routes only the probe");
            assertEquals(200, get(status, "/healthz/ready").statusCode());
            assertEquals(200, get(prometheus, "/stats/prometheus").statusCode());
            assertEquals(200, get(admin, "/ready").statusCode());
        } finally {
            proxy.close();
        }
        // 0: not served; a port a listener of the configuration binds stays the listener's
        var addresses = dev.inmesh.interception.proxy.AdminHook.Addresses.DEFAULTS.withPorts(0, null, 25020);
        assertEquals(null, addresses.health());
        assertEquals(15090, addresses.prometheus().getPort());
        assertEquals(new java.net.InetSocketAddress("0.0.0.0", 25020), addresses.agent());
        var besides = dev.inmesh.interception.proxy.AdminHook.Addresses.DEFAULTS.besides(
                dev.inmesh.runtime.xds.EnvoyConfigReader.read(bootstrap)).withPorts(health, null, null);
        assertEquals(null, besides.health());
        assertEquals(15021, dev.inmesh.interception.proxy.AdminHook.Addresses.DEFAULTS.besides(
                dev.inmesh.runtime.xds.EnvoyConfigReader.read(bootstrap)).health().getPort());
    }

    private static java.net.http.HttpResponse<String> get(int port, String path) throws Exception {
        return java.net.http.HttpClient.newHttpClient().send(java.net.http.HttpRequest.newBuilder(
                java.net.URI.create("http://127.0.0.1:" + port + path)).build(),
                java.net.http.HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void theListeningLineNamesTheListenersThatBindNoPortOfTheirOwn() throws Exception {
        // bookinfo's mesh directory: one per-port listener and virtualInbound, bind_to_port false both
        var listeners = dev.inmesh.runtime.xds.EnvoyConfigReader.read(java.nio.file.Path.of(
                "../samples/bookinfo/mesh")).listeners().values();
        assertEquals("inmesh proxy: listening on []; not bound (bind_to_port: false, for the connections a "
                + "use_original_dst listener hands on): [0.0.0.0_9080, virtualInbound]",
                ProxyCommand.listeningLine(List.of(), listeners, null));
        assertEquals("inmesh proxy: listening on [/127.0.0.1:15001]", ProxyCommand.listeningLine(
                List.of(new java.net.InetSocketAddress("127.0.0.1", 15001)), List.of(), null));
    }

    @Test
    void withoutAConfigurationOrAControlPlaneTheProxyDoesNotStart() throws Exception {
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        java.io.PrintStream saved = System.err;
        System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
        int code;
        try {
            ProxyCommand c = new ProxyCommand();
            c.noAdmin = true;
            code = c.call();
        } finally {
            System.setErr(saved);
        }
        assertEquals(1, code);
        assertTrue(err.toString(java.nio.charset.StandardCharsets.UTF_8).contains("no configuration: give -c CONFIG, "
                + "--xds-address HOST:PORT"), err.toString(java.nio.charset.StandardCharsets.UTF_8));
    }

    @Test
    void theAccessLogIsIstiosTextFormatByDefault() {
        assertEquals(AccessLog.Format.TEXT, ProxyCommand.accessLog(new MeshOptions(), lines::add).format());
    }
    @Test
    void theStopAtSigtermReadsIstiosAgentsVariables() {
        ProxyCommand c = new ProxyCommand();
        new picocli.CommandLine(c).parseArgs();
        assertEquals(new ProxyCommand.Termination(java.time.Duration.ofSeconds(5), false,
                java.time.Duration.ofSeconds(5)), c.termination(java.util.Map.of(), w -> fail(w)));
        assertEquals(new ProxyCommand.Termination(java.time.Duration.ofSeconds(12), true,
                java.time.Duration.ofMillis(1500)), c.termination(java.util.Map.of(
                        "TERMINATION_DRAIN_DURATION_SECONDS", "12", "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "True",
                        "MINIMUM_DRAIN_DURATION", "1.5s"), w -> fail(w)));

        // the ports of the bootstrap's own listeners, whose connections the agent does not count
        assertEquals(Set.of(16021, 16090), c.termination(java.util.Map.of("ENVOY_STATUS_PORT", "16021",
                "ENVOY_PROMETHEUS_PORT", "16090"), w -> fail(w)).istioListenerPorts());

        ProxyCommand flag = new ProxyCommand();
        new picocli.CommandLine(flag).parseArgs("--drain-time", "3");
        assertEquals(java.time.Duration.ofSeconds(3), flag.termination(java.util.Map.of(
                "TERMINATION_DRAIN_DURATION_SECONDS", "12"), w -> fail(w)).drain(), "the option first");

        // as Istio's agent's variables: one that does not read is warned about and its default taken (the agent
        // starts), a negative drain is none
        for (var bad : List.of(java.util.Map.of("TERMINATION_DRAIN_DURATION_SECONDS", "5s"),
                java.util.Map.of("EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "yes"),
                java.util.Map.of("MINIMUM_DRAIN_DURATION", "5"), java.util.Map.of("ENVOY_STATUS_PORT", "x"))) {
            String name = bad.keySet().iterator().next();
            List<String> warnings = new java.util.ArrayList<>();
            assertEquals(new ProxyCommand.Termination(java.time.Duration.ofSeconds(5), false,
                    java.time.Duration.ofSeconds(5)), c.termination(bad, warnings::add), name);
            assertEquals(1, warnings.size(), name);
            assertTrue(warnings.get(0).startsWith(name + ": "), warnings.get(0));
        }
        assertEquals(java.time.Duration.ZERO, c.termination(java.util.Map.of("TERMINATION_DRAIN_DURATION_SECONDS",
                "-3"), w -> fail(w)).drain());
        ProxyCommand negative = new ProxyCommand();
        new picocli.CommandLine(negative).parseArgs("--drain-time", "-1");
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> negative.termination(java.util.Map.of(), w -> fail(w)));
        assertTrue(e.getMessage().startsWith("--termination-drain-time: "), e.getMessage());
    }

    @Test
    void theListenerDrainTimeIsEnvoysDrainTimeSApartFromTheTerminationDrainAsIstiosSidecars() {
        ProxyCommand c = new ProxyCommand();
        new picocli.CommandLine(c).parseArgs();
        // Istio's drainDuration, its Envoy's --drain-time-s, whatever the termination drain
        java.util.Map<String, String> twelve = java.util.Map.of("TERMINATION_DRAIN_DURATION_SECONDS", "12");
        assertEquals(java.time.Duration.ofSeconds(45), c.listenerDrainTime(twelve, w -> fail(w)));
        assertEquals(java.time.Duration.ofSeconds(12), c.termination(twelve, w -> fail(w)).drain());

        // both from the pod's ProxyConfig, as Istio's agent reads them; its variable overrides the termination drain
        java.util.Map<String, String> proxyConfig = java.util.Map.of("PROXY_CONFIG",
                "{\"drainDuration\":\"20s\",\"terminationDrainDuration\":\"7.5s\"}");
        assertEquals(java.time.Duration.ofSeconds(20), c.listenerDrainTime(proxyConfig, w -> fail(w)));
        assertEquals(java.time.Duration.ofMillis(7500), c.termination(proxyConfig, w -> fail(w)).drain());
        java.util.Map<String, String> both = new java.util.HashMap<>(proxyConfig);
        both.putAll(twelve);
        assertEquals(java.time.Duration.ofSeconds(12), c.termination(both, w -> fail(w)).drain());
        List<String> warnings = new java.util.ArrayList<>();
        assertEquals(java.time.Duration.ofSeconds(45), c.listenerDrainTime(java.util.Map.of("PROXY_CONFIG",
                "drainDuration: 45"), warnings::add), "protobuf's duration has its unit");
        assertEquals(1, warnings.size());
        assertTrue(warnings.get(0).startsWith("PROXY_CONFIG drainDuration: 45 "), warnings.get(0));

        // the options first: --drain-time-s, Envoy's; --termination-drain-time, once --drain-time, the SIGTERM one
        ProxyCommand envoy = new ProxyCommand();
        new picocli.CommandLine(envoy).parseArgs("--drain-time-s", "7");
        assertEquals(java.time.Duration.ofSeconds(7), envoy.listenerDrainTime(proxyConfig, w -> fail(w)));
        assertEquals(java.time.Duration.ofSeconds(12), envoy.termination(twelve, w -> fail(w)).drain());
        for (String name : List.of("--drain-time", "--termination-drain-time")) {
            ProxyCommand termination = new ProxyCommand();
            new picocli.CommandLine(termination).parseArgs(name, "3");
            assertEquals(java.time.Duration.ofSeconds(3), termination.termination(twelve, w -> fail(w)).drain());
            assertEquals(java.time.Duration.ofSeconds(45), termination.listenerDrainTime(twelve, w -> fail(w)), name);
        }
        ProxyCommand negative = new ProxyCommand();
        new picocli.CommandLine(negative).parseArgs("--drain-time-s", "-1");
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> negative.listenerDrainTime(java.util.Map.of(), w -> fail(w)));
        assertTrue(e.getMessage().startsWith("--drain-time-s: "), e.getMessage());
    }

    @Test
    void theNodeCarriesIstioMetaVariablesAsIstiosAgentSendsThemAndDnsCaptureWithTheFlag() {
        java.util.Map<String, String> env = java.util.Map.of("POD_NAMESPACE", "shop", "ISTIO_META_DNS_CAPTURE", "true",
                "ISTIO_META_DNS_AUTO_ALLOCATE", "true", "ISTIO_META_HTTP10", "1", "ISTIO_META_MESH_ID", "mesh-a",
                "ISTIO_META_NAMESPACE", "elsewhere", "INMESH_OTHER", "x");
        ProxyCommand c = new ProxyCommand();
        c.xdsAddress = "istiod.istio-system.svc:15010";
        MeshOptions o = new MeshOptions().setPodIp("10.1.2.3");
        var meta = dev.inmesh.runtime.xds.ads.NodeBuilder.build(c.xds(o, c.identity(o, env), env).node())
                .getMetadata().getFieldsMap();
        assertEquals("true", meta.get("DNS_CAPTURE").getStringValue());
        assertEquals("true", meta.get("DNS_AUTO_ALLOCATE").getStringValue());
        assertEquals("1", meta.get("HTTP10").getStringValue());
        assertEquals("mesh-a", meta.get("MESH_ID").getStringValue());
        assertEquals("shop", meta.get("NAMESPACE").getStringValue(), "the node's own fields keep their values");
        assertEquals(false, meta.containsKey("OTHER"));

        ProxyCommand flag = new ProxyCommand();
        new picocli.CommandLine(flag).parseArgs("--xds-address", "istiod.istio-system.svc:15010", "--dns-capture");
        var flagged = dev.inmesh.runtime.xds.ads.NodeBuilder.build(flag.xds(new MeshOptions(),
                flag.identity(o, java.util.Map.of()), java.util.Map.of()).node()).getMetadata().getFieldsMap();
        assertEquals("true", flagged.get("DNS_CAPTURE").getStringValue());
    }
}
