package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import io.vertx.core.Vertx;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The packaged proxy (the standalone jar, on its own class path, as {@code bin/inmesh} runs it) with an upstream
 * TLS cluster on loopback: a request through it reaches a TLS server that requires the cluster's client certificate.
 * Runs after {@code package} (failsafe); needs no root.
 */
@Timeout(90)
class StandaloneJarTlsIT {
    private static final Issued CA = TestCertificates.ca("mesh-ca");
    private static final Issued SERVER = TestCertificates.issue(CA, "server", List.of("svc"), List.of());
    private static final Issued CLIENT = TestCertificates.issue(CA, "client", List.of(), List.of());

    private final Vertx vertx = Vertx.vertx();
    @TempDir
    Path dir;
    private Process proxy;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.destroy();
            proxy.waitFor(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    void aRequestReachesAnUpstreamOverTlsWithTheClustersClientCertificate() throws Exception {
        int upstream = vertx.createHttpServer(TestCertificates.requiringClientCertificate(SERVER, CA))
                .requestHandler(TestCertificates::answerClientSubject).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort();
        Files.writeString(dir.resolve("client.pem"), CLIENT.certificatePem());
        Files.writeString(dir.resolve("client.key"), CLIENT.keyPem());
        Files.writeString(dir.resolve("ca.pem"), CA.certificatePem());
        int port = LoopbackProxy.freePort();
        Path config = Files.writeString(dir.resolve("proxy.yaml"), "static_resources:\n  listeners:\n"
                + Http1RequestsTest.listener("l", port, "")
                // Istio's connect timeout: a cold JVM's first handshake can take longer than the helper's second
                + Http1RequestsTest.clusterC(upstream).replace("connect_timeout: 1s", "connect_timeout: 10s") + """
                    transport_socket:
                      name: envoy.transport_sockets.tls
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                        sni: svc
                        common_tls_context:
                          tls_certificates:
                          - certificate_chain: {filename: %s}
                            private_key: {filename: %s}
                          validation_context:
                            trusted_ca: {filename: %s}
                            match_typed_subject_alt_names: [{san_type: DNS, matcher: {exact: svc}}]
                """.formatted(dir.resolve("client.pem"), dir.resolve("client.key"), dir.resolve("ca.pem")));
        ProcessBuilder b = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx256m", "-jar", NetnsProcesses.standaloneJar().toString(), "proxy", "-c", config.toString(),
                "--no-admin").redirectErrorStream(true).redirectOutput(dir.resolve("proxy.out").toFile());
        // the tests stop their proxies at once, not after Istio's 5 s termination drain
        b.environment().put("TERMINATION_DRAIN_DURATION_SECONDS", "0");
        proxy = b.start();
        for (int i = 0; i < 300; i++) {
            try (var probe = new java.net.Socket("127.0.0.1", port)) {
                break;
            } catch (java.io.IOException notYet) {
                Thread.sleep(100);
            }
        }
        String answer;
        try (var socket = new java.net.Socket("127.0.0.1", port)) {
            socket.setSoTimeout(10_000);
            socket.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            answer = new String(socket.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        } catch (java.net.SocketTimeoutException e) {
            answer = "no answer: " + e;
        }
        assertTrue(answer.startsWith("HTTP/1.1 200") && answer.endsWith("client=CN=client"),
                answer + "\n" + Files.readString(dir.resolve("proxy.out")));
    }
}
