package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy terminates Istio's inbound mTLS filter chain (a virtualInbound chain matching
 * {@code transport_protocol: tls} and Istio's ALPN, its DownstreamTlsContext naming SDS {@code default} and
 * {@code ROOTCA}, requiring a client certificate) with the workload identity directory: an Istio client (a
 * certificate of the mesh's CA, ALPN {@code istio-http/1.1}) reaches the application as {@code mutual_tls} with both
 * SPIFFE principals; a client without a certificate is refused.
 */
@Timeout(60)
class IstioInboundMtlsTest {
    private static final String REVIEWS = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
    private static final String PRODUCTPAGE = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
    /** The SNI of Istio's mTLS cluster to reviews, which the JDK takes for no host name. */
    private static final String ISTIO_SNI = "outbound_.9080_._.reviews.default.svc.cluster.local";
    private static final Issued MESH_CA = TestCertificates.ca("cluster.local");
    private static final Issued OWN = TestCertificates.issue(MESH_CA, "reviews", List.of(), List.of(REVIEWS));
    private static final Issued CALLER = TestCertificates.issue(MESH_CA, "productpage", List.of(),
            List.of(PRODUCTPAGE));

    private final Vertx vertx = Vertx.vertx();
    private final List<StreamInfo> requests = new CopyOnWriteArrayList<>();
    private final int app = vertx.createHttpServer().requestHandler(req -> req.response().end("reviews"))
            .listen(0, "127.0.0.1").await().actualPort();
    private StandaloneProxy proxy;
    @TempDir
    Path dir;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** The identity directory with Istio's file names. */
    private Path identity() throws Exception {
        return TestCertificates.identityDirectory(dir, OWN, MESH_CA);
    }

    /** A virtualInbound-like listener on {@code port} with Istio's inbound mTLS HTTP chain to the application. */
    private String config(int port) {
        return config(port, app);
    }

    /** The same, to the application on port {@code app}. */
    static String config(int port, int app) {
        String sds = "sds_config: {api_config_source: {api_type: GRPC, grpc_services: [{envoy_grpc: "
                + "{cluster_name: sds-grpc}}]}, initial_fetch_timeout: 0s}";
        String chain = """
                    traffic_direction: INBOUND
                    listener_filters:
                    - name: envoy.filters.listener.tls_inspector
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
                    filter_chains:
                    - name: 0.0.0.0_9080
                      filter_chain_match:
                        transport_protocol: tls
                        application_protocols: [istio-http/1.0, istio-http/1.1, istio-h2]
                      transport_socket:
                        name: envoy.transport_sockets.tls
                        typed_config:
                          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
                          common_tls_context:
                            tls_params:
                              tls_minimum_protocol_version: TLSv1_2
                              tls_maximum_protocol_version: TLSv1_3
                              cipher_suites: [ECDHE-ECDSA-AES256-GCM-SHA384, ECDHE-RSA-AES256-GCM-SHA384,
                                              ECDHE-ECDSA-AES128-GCM-SHA256, ECDHE-RSA-AES128-GCM-SHA256]
                            alpn_protocols: [h2, http/1.1]
                            tls_certificate_sds_secret_configs: [{name: default, %s}]
                            combined_validation_context:
                              default_validation_context:
                                match_subject_alt_names: [{prefix: "spiffe://cluster.local/"}]
                              validation_context_sds_secret_config: {name: ROOTCA, %s}
                          require_client_certificate: true
                      filters:
                """.formatted(sds, sds);
        return "static_resources:\n  listeners:\n" + Http1RequestsTest.listener("virtualInbound", port, "")
                .replace("    filter_chains:\n    - filters:\n", chain) + Http1RequestsTest.clusterC(app);
    }

    @Test
    void theProxyCommandTakesAnIstioSidecarsConnectionWhoseSniIsNoDnsName() throws Exception {
        int port = LoopbackProxy.freePort();
        Path config = Files.writeString(dir.resolve("proxy.yaml"), config(port));
        Path log = dir.resolve("access.log");
        ProcessBuilder b = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), "dev.inmesh.cli.InmeshCommand", "proxy", "-c",
                config.toString(), "--identity-dir", identity().toString(), "--no-admin", "--access-log",
                log.toString()).redirectErrorStream(true).redirectOutput(dir.resolve("proxy.out").toFile());
        // the tests stop their proxies at once, not after Istio's 5 s termination drain
        b.environment().put("TERMINATION_DRAIN_DURATION_SECONDS", "0");
        Process p = b.start();
        try {
            for (int i = 0; i < 300; i++) {
                try (var probe = new java.net.Socket("127.0.0.1", port)) {
                    break;
                } catch (java.io.IOException notYet) {
                    Thread.sleep(100);
                }
            }
            String answer = TestCertificates.istioSidecarGet(port, CALLER, MESH_CA, ISTIO_SNI);
            assertTrue(answer.startsWith("HTTP/1.1 200") && answer.endsWith("reviews"), answer);
            // the SNI, from the TLS inspector, in the access log's %REQUESTED_SERVER_NAME%
            String line = "";
            for (int i = 0; i < 100 && !line.contains(ISTIO_SNI); i++) {
                Thread.sleep(100);
                line = Files.exists(log) ? Files.readString(log) : "";
            }
            assertTrue(line.contains(ISTIO_SNI), line + Files.readString(dir.resolve("proxy.out")));
        } finally {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theProxyCommandWithAPlaintextConfigurationListensWithoutWaitingForAnEmptyIdentityDirectory()
            throws Exception {
        int port = LoopbackProxy.freePort();
        Path config = Files.writeString(dir.resolve("plain.yaml"), "static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("plain", port, "") + Http1RequestsTest.clusterC(app));
        Path empty = Files.createDirectories(dir.resolve("identity-to-come"));
        ProcessBuilder b = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), "dev.inmesh.cli.InmeshCommand", "proxy", "-c",
                config.toString(), "--identity-dir", empty.toString(), "--no-admin").redirectErrorStream(true)
                .redirectOutput(dir.resolve("proxy.out").toFile());
        b.environment().put("TERMINATION_DRAIN_DURATION_SECONDS", "0");
        b.environment().put("INMESH_IDENTITY_WAIT_SECONDS", "120");
        long begin = System.nanoTime();
        Process p = b.start();
        try {
            boolean listening = false;
            // far below the 120 s wait, with room for the JVM's start on a loaded machine: nothing in the
            // configuration reads the files
            while (!listening && System.nanoTime() - begin < TimeUnit.SECONDS.toNanos(40) && p.isAlive()) {
                try (var probe = new java.net.Socket("127.0.0.1", port)) {
                    listening = true;
                } catch (java.io.IOException notYet) {
                    Thread.sleep(100);
                }
            }
            assertTrue(listening, Files.readString(dir.resolve("proxy.out")));
        } finally {
            p.destroy();
            p.waitFor(10, TimeUnit.SECONDS);
        }
    }

    private int start(Path identity) throws Exception {
        int port = LoopbackProxy.freePort();
        Path config = Files.writeString(dir.resolve("proxy.yaml"), config(port));
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(config, -1, -1, 1, requests::add, AdminHook.NONE)
                .withWorkloadIdentity(identity == null ? null : new WorkloadIdentity(identity)));
        return port;
    }

    /** GET / from the proxy as an Istio sidecar's client would: ALPN istio-http/1.1, presenting {@code own}. */
    private String get(int port, Issued own) throws Exception {
        HttpClient c = vertx.createHttpClient(TestCertificates.istioClientOptions(own, MESH_CA, false));
        try {
            return onEventLoop(vertx, () -> c.request(new RequestOptions()
                            .setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                            .setHost("svc").setPort(9080).setURI("/"))
                    .compose(req -> req.send().compose(resp -> resp.body())))
                    .await(10, TimeUnit.SECONDS).toString();
        } finally {
            c.close().await(10, TimeUnit.SECONDS);
        }
    }

    private static String label(PrometheusMeterRegistry registry, String label) {
        Matcher m = Pattern.compile("^istio_requests_total\\{[^}]*\\b" + label + "=\"([^\"]*)\"", Pattern.MULTILINE)
                .matcher(registry.scrape());
        assertTrue(m.find(), registry.scrape());
        return m.group(1);
    }

    @Test
    void anIstioClientOfTheMeshsCaReachesTheApplicationAsMutualTlsWithBothPrincipals() throws Exception {
        int port = start(identity());
        assertEquals("reviews", get(port, CALLER));
        for (int i = 0; i < 200 && requests.isEmpty(); i++) {
            Thread.sleep(25);
        }
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        MeshMetrics.create(registry, new WorkloadInfo("reviews-v1", "default", "reviews", "v1"))
                .record(requests.get(0));
        assertEquals("mutual_tls", label(registry, "connection_security_policy"));
        assertEquals(PRODUCTPAGE, label(registry, "source_principal"));
        assertEquals(REVIEWS, label(registry, "destination_principal"));
    }

    @Test
    void aClientWithoutACertificateIsRefused() throws Exception {
        int port = start(identity());
        assertThrows(Exception.class, () -> get(port, null));
        assertTrue(requests.isEmpty());
    }

    @Test
    void withoutAnIdentityDirectoryTheChainLoadsAndItsConnectionsAreClosed() throws Exception {
        int port = start(null);
        assertThrows(Exception.class, () -> get(port, CALLER));
        assertTrue(requests.isEmpty());
    }

    @Test
    void withoutAnIdentityDirectoryTheClosedConnectionsAreWarnedAboutOnceNotEachOnTheEventLoop() throws Exception {
        java.util.logging.Logger logger = java.util.logging.Logger.getLogger(ConnectionHandler.class.getName());
        List<java.util.logging.LogRecord> records = new CopyOnWriteArrayList<>();
        java.util.logging.Handler capture = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                records.add(r);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        logger.addHandler(capture);
        try {
            int port = start(null);
            for (int i = 0; i < 3; i++) {
                assertThrows(Exception.class, () -> get(port, CALLER));
            }
            // each connection was closed after its log call: the records are all there
            List<java.util.logging.LogRecord> warnings = records.stream()
                    .filter(r -> r.getLevel() == java.util.logging.Level.WARNING
                            && r.getMessage().contains("has no source for")).toList();
            assertEquals(1, warnings.size(), warnings.toString());
            assertTrue(warnings.get(0).getMessage().contains("0.0.0.0_9080 of virtualInbound"),
                    warnings.get(0).getMessage());
        } finally {
            logger.removeHandler(capture);
        }
    }

    @Test
    void aMissingIdentityFileRefusesTheListenerByName() throws Exception {
        Path id = identity();
        Files.delete(id.resolve("key.pem"));
        Exception e = assertThrows(Exception.class, () -> start(id));
        assertTrue(e.getMessage().contains("virtualInbound") && e.getMessage().contains("key.pem"), e.getMessage());
    }
}
