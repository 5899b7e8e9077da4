package dev.inmesh.interception.proxy;

import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.testing.LoopbackPorts;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.Vertx;
import io.vertx.core.transport.Transport;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/** A {@link ProxyServer} on loopback for tests without root: Vert.x on epoll, a config from YAML. */
final class LoopbackProxy implements AutoCloseable {
    final Vertx vertx;
    final SnapshotHolder snapshots;
    final Router router;
    final ProxyServer server;
    final List<InetSocketAddress> addresses;
    final List<StreamInfo> requests = new CopyOnWriteArrayList<>();

    LoopbackProxy(String yaml) throws Exception {
        vertx = Vertx.builder().withTransport(Transport.EPOLL.available() ? Transport.EPOLL : Transport.NIO).build();
        snapshots = new SnapshotHolder(UpstreamEnvironment.of(vertx));
        snapshots.apply(EnvoyConfigReader.read(yaml));
        router = new Router(vertx, Router.Options.DEFAULTS, requests::add);
        server = new ProxyServer(vertx, snapshots, router);
        try {
            addresses = server.bind();
        } catch (RuntimeException e) {
            vertx.close().await(10, TimeUnit.SECONDS);
            throw e;
        }
    }

    /**
     * Counts the connection managers', listeners' and clusters' statistics in a registry of their own from now on, and
     * returns it: a connection manager's counter {@code envoy_http_<name>} is read with {@link #stat}, a cluster's
     * with {@link #clusterStat}.
     */
    io.micrometer.core.instrument.MeterRegistry withStats() {
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        var metrics = dev.inmesh.runtime.stats.MeshMetrics.create(registry,
                dev.inmesh.runtime.stats.WorkloadInfo.UNKNOWN);
        server.downstreamStats(metrics::connectionManager, metrics::listener);
        router.upstreamStats(metrics::upstream);
        return registry;
    }

    /** Cluster {@code cluster}'s statistic {@code envoy_cluster_<name>} in {@code registry}, 0 before it is kept. */
    static long clusterStat(io.micrometer.core.instrument.MeterRegistry registry, String cluster, String name) {
        var meter = registry.find("envoy_cluster_" + name).tag("cluster_name", cluster).meter();
        return meter == null ? 0 : (long) meter.measure().iterator().next().getValue();
    }

    /** The connection manager {@code statPrefix}'s counter {@code envoy_http_<name>} in {@code registry}. */
    static long stat(io.micrometer.core.instrument.MeterRegistry registry, String statPrefix, String name) {
        return dev.inmesh.runtime.testing.HcmStats.get(registry, statPrefix, name);
    }

    /** A free loopback port: {@link LoopbackPorts#freePort()}. */
    static int freePort() throws Exception {
        return LoopbackPorts.freePort();
    }

    /**
     * A proxy config of one inbound listener on 127.0.0.1:{@code proxyPort} whose connection manager routes everything
     * to the static cluster {@code inbound|8080||} of 127.0.0.1:{@code upstreamPort}, with {@code httpFilters} (YAML
     * list items at column 0, as a connection manager's {@code http_filters} lists them) before its router.
     */
    static String inboundConfig(int proxyPort, int upstreamPort, String httpFilters) {
        return """
                static_resources:
                  listeners:
                  - name: inbound
                    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
                    traffic_direction: INBOUND
                    filter_chains:
                    - filters:
                      - name: envoy.filters.network.http_connection_manager
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                          stat_prefix: inbound_0.0.0.0_8080
                          route_config:
                            name: inbound|8080||
                            virtual_hosts:
                            - name: inbound|http|8080
                              domains: ["*"]
                              routes:
                              - match: {prefix: /}
                                route: {cluster: inbound|8080||}
                          http_filters:
                """.formatted(proxyPort) + httpFilters.indent(10) + """
                          - name: envoy.filters.http.router
                            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                  clusters:
                  - name: inbound|8080||
                    type: STATIC
                    connect_timeout: 1s
                    load_assignment:
                      cluster_name: inbound|8080||
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(upstreamPort);
    }

    /**
     * {@code yaml}, an {@link #inboundConfig}, with {@code fields} (YAML lines, without their indentation) added to
     * its connection manager.
     */
    static String withHcm(String yaml, String fields) {
        StringBuilder added = new StringBuilder("stat_prefix: inbound_0.0.0.0_8080\n");
        fields.lines().forEach(line -> added.append("          ").append(line).append('\n'));
        return yaml.replace("stat_prefix: inbound_0.0.0.0_8080\n", added);
    }

    /**
     * {@code yaml} with its clusters (each at column 2, {@code connect_timeout: 1s}) talking HTTP/2 to their hosts, with
     * {@code http2Options} (the inside of a flow mapping) as their {@code http2_protocol_options}.
     */
    static String overHttp2(String yaml, String http2Options) {
        return yaml.replace("    connect_timeout: 1s\n", """
                    connect_timeout: 1s
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        explicit_http_config: {http2_protocol_options: {%s}}
                """.formatted(http2Options));
    }

    /**
     * Sends a WebSocket upgrade for {@code path} to {@code host: svc} on 127.0.0.1:{@code port}, with
     * {@code extraHeaders} (each line ending in CRLF), and returns what first comes back: the answer's head, at least.
     */
    static String upgradeAnswer(int port, String path, String extraHeaders) throws Exception {
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nhost: svc\r\nconnection: Upgrade\r\n"
                    + "upgrade: websocket\r\nsec-websocket-version: 13\r\n"
                    + "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n" + extraHeaders + "\r\n")
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            byte[] buf = new byte[4096];
            int n = s.getInputStream().read(buf);
            return new String(buf, 0, Math.max(n, 0), java.nio.charset.StandardCharsets.US_ASCII);
        }
    }

    /** The first request logged with {@code status}, waiting up to 5 s for it. */
    StreamInfo logged(int status) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            for (StreamInfo s : requests) {
                if (s.responseCode() == status) {
                    return s;
                }
            }
            Thread.sleep(25);
        }
        throw new AssertionError("no " + status + " in " + requests);
    }

    @Override
    public void close() throws Exception {
        server.close();
        snapshots.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }
}
