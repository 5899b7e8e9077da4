package dev.inmesh.runtime.mesh;

import static dev.inmesh.runtime.mesh.MeshAccessLogTest.lines;
import static dev.inmesh.runtime.mesh.MeshAccessLogTest.textLogger;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.net.LocalAddress;
import dev.inmesh.runtime.testing.MeshFixture;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code mesh.inbound} under a connection manager with {@code use_remote_address: true} (an Istio gateway's, an edge
 * proxy's): the application sees the headers Envoy's connection manager writes, and the access log the address it
 * found.
 */
class MeshInboundRemoteAddressTest extends MeshFixture {
    private static final List<String> SHOWN = List.of("x-forwarded-for", "x-forwarded-proto",
            "x-envoy-external-address", "x-envoy-internal", "x-envoy-decorator-operation", "x-request-id",
            "x-forwarded-port");


    /** Starts the mesh with these connection manager fields (one a line) and an inbound server that echoes headers. */
    private Path start(String hcmFields) throws Exception {
        Path log = dir.resolve("access.log");
        Path file = dir.resolve("config.yaml");
        // the fields at the connection manager's indentation, as the logger's lines are
        String fields = hcmFields.replace("\n", "\n          ") + "\n" + textLogger(log, "%DOWNSTREAM_REMOTE_ADDRESS%");
        Files.writeString(file, MeshWebClientTest.virtualInbound(fields.strip(),
                """
                              routes:
                              - {name: all, match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """));
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            StringBuilder seen = new StringBuilder();
            for (String name : SHOWN) {
                seen.append(name).append('=').append(req.getHeader(name)).append('\n');
            }
            req.response().end(seen.toString());
        }));
        inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS);
        return log;
    }

    /** The headers the application saw for a request with these head lines, and the client's port. */
    private java.util.Map<String, String> send(String headLines, int[] clientPort) throws Exception {
        try (Socket s = new Socket("127.0.0.1", inbound.actualPort())) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(("GET / HTTP/1.1\r\nhost: svc\r\n" + headLines + "connection: close\r\n\r\n")
                    .getBytes(StandardCharsets.US_ASCII));
            String response = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            clientPort[0] = s.getLocalPort();
            java.util.Map<String, String> seen = new java.util.HashMap<>();
            for (String line : response.substring(response.indexOf("\r\n\r\n") + 4).split("\n")) {
                int eq = line.indexOf('=');
                if (eq > 0 && !line.endsWith("=null")) {
                    seen.put(line.substring(0, eq), line.substring(eq + 1));
                }
            }
            return seen;
        }
    }

    @Test
    void anEdgeRequestIsFromItsPeerWhichTheApplicationSeesAppendedAndAsTheExternalAddress() throws Exception {
        Path log = start("use_remote_address: true\n");
        int[] port = new int[1];
        var seen = send("x-forwarded-for: 198.51.100.1\r\nx-forwarded-proto: https\r\nx-request-id: mine\r\n"
                + "x-envoy-decorator-operation: op\r\nx-envoy-internal: true\r\n", port);
        // a loopback peer is appended as this host's address, as Envoy appends its local address
        assertEquals("198.51.100.1," + LocalAddress.get(), seen.get("x-forwarded-for"));
        assertEquals("http", seen.get("x-forwarded-proto"), "the connection's, over the caller's");
        assertEquals("127.0.0.1", seen.get("x-envoy-external-address"));
        assertNotEquals("mine", seen.get("x-request-id"), "an edge request gets a fresh id");
        assertEquals(null, seen.get("x-envoy-decorator-operation"));
        assertEquals(null, seen.get("x-envoy-internal"));
        assertEquals(List.of("127.0.0.1:" + port[0]), lines(log, 1), "the peer, not x-forwarded-for's address");
    }

    @Test
    void trustedHopsAndForwardedPortAsEnvoyWritesThem() throws Exception {
        Path log = start("use_remote_address: true\nxff_num_trusted_hops: 1\nappend_x_forwarded_port: true\n");
        int[] port = new int[1];
        var seen = send("x-forwarded-for: 198.51.100.1, 192.0.2.9\r\nx-forwarded-proto: https\r\n", port);
        assertEquals("198.51.100.1, 192.0.2.9," + LocalAddress.get(), seen.get("x-forwarded-for"));
        assertEquals("https", seen.get("x-forwarded-proto"), "a trusted hop's is kept");
        assertEquals("192.0.2.9", seen.get("x-envoy-external-address"));
        assertEquals(Integer.toString(inbound.actualPort()), seen.get("x-forwarded-port"));
        assertEquals(List.of("192.0.2.9:0"), lines(log, 1));
    }

    @Test
    void aRequestWithoutForwardedForFromAnInternalPeerIsInternal() throws Exception {
        // an internal_address_config without ranges: Envoy's private ranges, 127.0.0.1 among them
        start("use_remote_address: true\ninternal_address_config: {}\n");
        var seen = send("x-request-id: mine\r\n", new int[1]);
        assertEquals("true", seen.get("x-envoy-internal"));
        assertEquals(null, seen.get("x-envoy-external-address"));
        assertEquals("mine", seen.get("x-request-id"));
        assertEquals(LocalAddress.get(), seen.get("x-forwarded-for"));
        assertEquals("127.0.0.1", send("x-forwarded-for: 10.0.0.1\r\n", new int[1]).get("x-envoy-external-address"),
                "one that came with x-forwarded-for is external");
    }

    @Test
    void aCustomHeaderDetectionNamesTheAddressOrRejectsTheRequest() throws Exception {
        // Envoy Gateway's ClientTrafficPolicy clientIPDetection.customHeader with failClosed
        Path log = start("""
                original_ip_detection_extensions:
                - name: envoy.extensions.http.original_ip_detection.custom_header
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.http.original_ip_detection.custom_header.v3.CustomHeaderConfig
                    header_name: x-client-ip
                    allow_extension_to_set_address_as_trusted: true
                    reject_with_status: {code: Forbidden}
                internal_address_config: {cidr_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}
                """);
        var seen = send("x-client-ip: 10.9.8.7\r\nx-forwarded-for: 192.0.2.1\r\n", new int[1]);
        assertEquals("true", seen.get("x-envoy-internal"));
        assertEquals(List.of("10.9.8.7:0"), lines(log, 1), "the header's address, not x-forwarded-for's");
        try (Socket s = new Socket("127.0.0.1", inbound.actualPort())) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            String response = new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
            org.junit.jupiter.api.Assertions.assertTrue(response.startsWith("HTTP/1.1 403"), response);
        }
        assertEquals(1, MeshWebClientTest.hcmStat(mesh, "inbound_0.0.0.0_9080",
                "downstream_rq_rejected_via_ip_detection"));
    }
}
