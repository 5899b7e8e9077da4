package dev.inmesh.runtime.mesh;

import static dev.inmesh.runtime.mesh.MeshAccessLogTest.lines;
import static dev.inmesh.runtime.mesh.MeshAccessLogTest.textLogger;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.testing.MeshFixture;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@code mesh.inbound} takes HTTP/1 requests as Envoy's codec and connection manager take them with the inbound
 * chain's {@code http_protocol_options} (as the standalone proxy does): a request line in absolute form is routed by
 * its own host and path; HTTP/1.0 is refused with 426 unless {@code accept_http_10}; a request without a Host, with
 * two, or with a target that is no path is refused with 400; each refusal is a local reply in the access log, with
 * DPE when the codec refuses, and ends the connection.
 */
class MeshInboundHttp1AdmissionTest extends MeshFixture {
    private static final String LOG_FORMAT = "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %ROUTE_NAME%";


    /**
     * Starts the mesh with these connection manager fields, whose inbound route sends requests for {@code svc:81}
     * to the service (which answers with the path it read) and answers any other with 418; the server's port.
     */
    private int start(String hcmFields, Path log) throws Exception {
        Path file = dir.resolve("config.yaml");
        String fields = hcmFields.replace("\n", "\n          ") + "\n" + textLogger(log, LOG_FORMAT);
        Files.writeString(file, MeshWebClientTest.virtualInbound(fields.strip(),
                """
                              routes:
                              - name: svc
                                match: {prefix: /, headers: [{name: ":authority", string_match: {exact: "svc:81"}}]}
                                route: {cluster: "inbound|9080||", timeout: 0s}
                              - {name: other, match: {prefix: /}, direct_response: {status: 418}}
                """));
        mesh = Mesh.create(vertx, new MeshOptions().setConfigFile(file.toString()).setAdminPort(-1));
        mesh.start().await(10, TimeUnit.SECONDS);
        inbound = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.response()
                .putHeader("X-Served-By", "svc")
                .putHeader("x-uri", req.uri())
                .putHeader("x-authority", String.valueOf(req.authority()))
                .end("served " + req.path() + (req.headers().contains("x-secret") ? " x-secret" : ""))));
        return inbound.listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
    }

    /** What the server answers to these bytes, read until it closes the connection. */
    private static String send(int port, String request) throws Exception {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(10_000);
            s.getOutputStream().write(request.getBytes(StandardCharsets.UTF_8));
            return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    /**
     * The answer's header names go to an HTTP/1 caller in lower case, the service's as Envoy's HTTP/1 codec writes
     * them whatever case the application gave them, unless a stateful formatter (Istio's
     * {@code preserveHttp1HeaderCase}) keeps their case.
     */
    @Test
    void theServicesHeaderNamesGoToTheCallerInLowerCaseUnlessAStatefulFormatterKeepsThem() throws Exception {
        Path log = dir.resolve("access.log");
        int port = start("", log);
        String served = send(port, "GET /x HTTP/1.1\r\nHost: svc:81\r\nConnection: close\r\n\r\n");
        assertTrue(served.contains("\r\nx-served-by: svc\r\n") && !served.contains("X-Served-By"), served);
        mesh.close().await(10, TimeUnit.SECONDS);
        inbound.close().await(10, TimeUnit.SECONDS);
        port = start("http_protocol_options: {header_key_format: {stateful_formatter: {name: preserve_case, "
                + "typed_config: {\"@type\": type.googleapis.com/envoy.extensions.http.header_formatters."
                + "preserve_case.v3.PreserveCaseFormatterConfig}}}}", dir.resolve("access2.log"));
        served = send(port, "GET /x HTTP/1.1\r\nHost: svc:81\r\nConnection: close\r\n\r\n");
        assertTrue(served.contains("\r\nX-Served-By: svc\r\n"), served);
    }

    @Test
    void anAbsoluteFormRequestLineIsRoutedByItsOwnHostAndPath() throws Exception {
        Path log = dir.resolve("access.log");
        int port = start("", log);
        // RFC 9112 3.2.2: the request line's authority replaces the Host header
        String served = send(port, "GET http://svc:81/x?y HTTP/1.1\r\nHost: elsewhere\r\nConnection: close\r\n\r\n");
        assertTrue(served.startsWith("HTTP/1.1 200 ") && served.endsWith("served /x"), served);
        // and the service gets that target and authority, as a sidecar forwards them
        assertTrue(served.contains("\r\nx-uri: /x?y\r\n") && served.contains("\r\nx-authority: svc:81\r\n"),
                served);
        String other = send(port, "GET http://elsewhere/x HTTP/1.1\r\nHost: svc:81\r\nConnection: close\r\n\r\n");
        assertTrue(other.startsWith("HTTP/1.1 418 "), other);
        assertEquals(List.of("200 - via_upstream svc", "418 - direct_response other"), lines(log, 2));
    }

    /**
     * A host name with a percent-encoding (RFC 3986's reg-name takes one, and so does Envoy's authority check) is
     * matched as it came, undecoded, and served: Vert.x's authority parser failed on it (a 500 on the outbound path).
     */
    @Test
    void aHostWithAPercentEncodingIsMatchedUndecodedAndServed() throws Exception {
        Path log = dir.resolve("access.log");
        int port = start("", log);
        String other = send(port, "GET /x HTTP/1.1\r\nHost: sv%63:81\r\nConnection: close\r\n\r\n");
        assertTrue(other.startsWith("HTTP/1.1 418 "), other);
        String absolute = send(port, "GET http://a%41b/x HTTP/1.1\r\nHost: svc:81\r\nConnection: close\r\n\r\n");
        assertTrue(absolute.startsWith("HTTP/1.1 418 "), absolute);
        assertEquals(List.of("418 - direct_response other", "418 - direct_response other"), lines(log, 2));
    }

    @Test
    void withoutAllowAbsoluteUrlAnAbsoluteFormRequestIsRefusedAsEnvoysConnectionManagerRefusesIt() throws Exception {
        Path log = dir.resolve("access.log");
        int port = start("http_protocol_options: {allow_absolute_url: false}", log);
        // the connection manager's refusal keeps the connection, as Envoy's: the request after it is served
        String refused = send(port, "GET http://svc:81/x HTTP/1.1\r\nHost: svc:81\r\n\r\n"
                + "GET /after HTTP/1.1\r\nHost: svc:81\r\nConnection: close\r\n\r\n");
        assertTrue(refused.startsWith("HTTP/1.1 404 ") && refused.endsWith("served /after"), refused);
        assertEquals(List.of("404 - absolute_path_rejected -", "200 - via_upstream svc"), lines(log, 2));
        assertEquals(1, MeshWebClientTest.hcmStat(mesh, "inbound_0.0.0.0_9080", "downstream_rq_non_relative_path"));
    }

    @Test
    void theServiceReadsNoHeaderTheConnectionHeaderNominatesAndAForwardingHeaderCannotBeNominated() throws Exception {
        Path log = dir.resolve("access.log");
        int port = start("", log);
        // (a close among the tokens ends the connection after the answer, as Envoy's codec reads the list)
        String served = send(port, "GET /n HTTP/1.1\r\nHost: svc:81\r\nConnection: X-Secret\r\n"
                + "X-Secret: s\r\n\r\nGET /close HTTP/1.1\r\nHost: svc:81\r\nConnection: keep-alive, Close\r\n\r\n");
        assertTrue(served.startsWith("HTTP/1.1 200 ") && served.contains("served /nHTTP/1.1 200")
                && served.endsWith("served /close"), served);
        String refused = send(port, "GET /n HTTP/1.1\r\nHost: svc:81\r\nConnection: x-forwarded-for\r\n\r\n");
        assertTrue(refused.startsWith("HTTP/1.1 400 ") && refused.endsWith("Bad Request"), refused);
        // CONNECT, or an upgrade to anything but websocket: an upgrade its upgrade_configs do not enable, refused 403
        // before the filters where a route matches it, the connection then closed, as Envoy's (what followed the head
        // is not another request); no route takes a CONNECT (it has no path; only a connect_matcher would), so it is
        // the router's 404 NR, the connection closed the same
        String connect = send(port, "CONNECT svc:81 HTTP/1.1\r\nHost: svc:81\r\n\r\n"
                + "GET /after HTTP/1.1\r\nHost: svc:81\r\nConnection: close\r\n\r\n");
        assertTrue(connect.startsWith("HTTP/1.1 404 ") && !connect.contains("served /after"), connect);
        String other = send(port, "GET /u HTTP/1.1\r\nHost: svc:81\r\nConnection: upgrade\r\nUpgrade: foo\r\n\r\n"
                + "GET /after HTTP/1.1\r\nHost: svc:81\r\nConnection: close\r\n\r\n");
        assertTrue(other.startsWith("HTTP/1.1 403 ") && !other.contains("served"), other);
        assertEquals(List.of("200 - via_upstream svc", "200 - via_upstream svc",
                "400 DPE http1.connection_header_rejected -", "404 NR route_not_found -", "403 - upgrade_failed -"),
                lines(log, 5));
    }

    @Test
    void aNominatedHostLeavesTheRequestWithoutOneAndAnUnderscoreIsRefusedBeforeTheNominationsGo() throws Exception {
        Path log = dir.resolve("access.log");
        int port = start("common_http_protocol_options: {headers_with_underscores_action: REJECT_REQUEST}", log);
        // as Envoy's header map, where the Host is the :authority: nominated, it is gone, and so is the route
        String hostless = send(port, "GET /h HTTP/1.1\r\nHost: svc:81\r\nConnection: host, close\r\n\r\n");
        assertTrue(hostless.startsWith("HTTP/1.1 400 "), hostless);
        // the codec refuses an underscore as it reads the head, before the Connection header is applied
        String underscore = send(port, "GET /u HTTP/1.1\r\nHost: svc:81\r\nConnection: x_secret\r\n"
                + "x_secret: s\r\n\r\n");
        assertTrue(underscore.startsWith("HTTP/1.1 400 "), underscore);
        assertEquals(List.of("400 - missing_host_header -", "400 DPE http1.unexpected_underscore -"), lines(log, 2));
    }

    @Test
    void anEdgeConnectionManagerRefusesAnHttpsUrlOnAPlaintextConnection() throws Exception {
        Path log = dir.resolve("access.log");
        int port = start("use_remote_address: true", log);
        String refused = send(port, "GET https://svc:81/x HTTP/1.1\r\nHost: svc:81\r\n\r\n");
        assertTrue(refused.startsWith("HTTP/1.1 403 ") && refused.endsWith("Forbidden"), refused);
        String http = send(port, "GET http://svc:81/x HTTP/1.1\r\nHost: svc:81\r\nConnection: close\r\n\r\n");
        assertTrue(http.startsWith("HTTP/1.1 200 ") && http.endsWith("served /x"), http);
        assertEquals(List.of("403 DPE http1.https_url_on_plaintext_connection -", "200 - via_upstream svc"),
                lines(log, 2));
    }

    @Test
    void http10IsRefusedUnlessAcceptedAndThenAHostlessOneTakesTheDefaultHost() throws Exception {
        Path log = dir.resolve("access.log");
        int port = start("", log);
        String refused = send(port, "GET /a HTTP/1.0\r\nHost: svc:81\r\n\r\n");
        assertTrue(refused.startsWith("HTTP/1.0 426 ") && refused.endsWith("Upgrade Required"), refused);
        assertEquals(List.of("426 DPE low_version -"), lines(log, 1));
        mesh.close().await(10, TimeUnit.SECONDS);
        inbound.close().await(10, TimeUnit.SECONDS);

        Path log2 = dir.resolve("access2.log");
        port = start("http_protocol_options: {accept_http_10: true, default_host_for_http_10: \"svc:81\"}", log2);
        String served = send(port, "GET /a HTTP/1.0\r\n\r\n");
        assertTrue(served.startsWith("HTTP/1.0 200 ") && served.endsWith("served /a"), served);
        assertTrue(served.contains("\r\nx-authority: svc:81\r\n"), "the default host, as the service reads it: "
                + served);
        assertEquals(List.of("200 - via_upstream svc"), lines(log2, 1));
    }

    @Test
    void aRequestWithoutAHostWithTwoOrWithATargetThatIsNoPathIsRefusedAndOnlyACodecErrorEndsItsConnection()
            throws Exception {
        Path log = dir.resolve("access.log");
        int port = start("", log);
        // no host: the connection manager's 400, and the connection goes on, as Envoy's
        String noHost = send(port, "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nHost: svc:81\r\nConnection: close\r\n\r\n");
        assertTrue(noHost.startsWith("HTTP/1.1 400 ") && noHost.endsWith("served /b"), noHost);
        // each codec error's answer is read to the end of its connection: the server closes it
        String twoHosts = send(port, "GET /a HTTP/1.1\r\nHost: svc:81\r\nHost: svc:81\r\n\r\n");
        assertTrue(twoHosts.startsWith("HTTP/1.1 400 ") && twoHosts.endsWith("Bad Request"), twoHosts);
        String notAPath = send(port, "GET a HTTP/1.1\r\nHost: svc:81\r\n\r\n");
        assertTrue(notAPath.startsWith("HTTP/1.1 400 "), notAPath);
        String rawUtf8 = send(port, "GET /caf\u00e9 HTTP/1.1\r\nHost: svc:81\r\n\r\n");
        assertTrue(rawUtf8.startsWith("HTTP/1.1 400 "), rawUtf8);
        assertEquals(List.of("400 - missing_host_header -", "200 - via_upstream svc", "400 DPE http1.codec_error -",
                "400 DPE http1.codec_error -", "400 DPE http1.codec_error -"), lines(log, 5));
        // a codec error ends the connection: what was sent after it is not served
        String cut = send(port, "GET a HTTP/1.1\r\nHost: svc:81\r\n\r\nGET /b HTTP/1.1\r\nHost: svc:81\r\n\r\n");
        assertTrue(cut.startsWith("HTTP/1.1 400 ") && !cut.contains("served"), cut);
    }
}
