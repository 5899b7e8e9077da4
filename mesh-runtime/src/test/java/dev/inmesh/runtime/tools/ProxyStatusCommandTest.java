package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.inmesh.runtime.xds.ads.XdsStatus;
import dev.inmesh.runtime.xds.ads.XdsStatusJson;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class ProxyStatusCommandTest {
    static final Instant T = Instant.parse("2026-11-28T10:00:00Z");
    HttpServer admin;
    final ByteArrayOutputStream out = new ByteArrayOutputStream();
    final ByteArrayOutputStream err = new ByteArrayOutputStream();

    @AfterEach
    void tearDown() {
        if (admin != null) {
            admin.stop(0);
        }
    }

    String serve(XdsStatus s) throws Exception {
        return serve(200, XdsStatusJson.encode(s));
    }

    /** An admin server whose /debug/xds_status answers {@code status} with {@code text}; its URL. */
    String serve(int status, String text) throws Exception {
        byte[] body = text.getBytes(StandardCharsets.UTF_8);
        admin = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        admin.createContext("/debug/xds_status", x -> {
            x.sendResponseHeaders(status, body.length);
            x.getResponseBody().write(body);
            x.close();
        });
        admin.start();
        return "http://127.0.0.1:" + admin.getAddress().getPort();
    }

    int run(String... args) {
        ProxyStatusCommand c = new ProxyStatusCommand();
        c.out = new PrintStream(out, true, StandardCharsets.UTF_8);
        c.err = new PrintStream(err, true, StandardCharsets.UTF_8);
        return new CommandLine(c).execute(args);
    }

    static XdsStatus.TypeStatus type(String kind, String acked, String nackError, boolean wildcard,
                                     List<String> names) {
        return new XdsStatus.TypeStatus(kind, "type.googleapis.com/" + kind, acked, "4", T,
                nackError.isEmpty() ? "" : "v9", nackError, nackError.isEmpty() ? null : T, 2, wildcard, names);
    }

    @Test
    void aSyncedProxyPrintsEachTypeAndExitsZero() throws Exception {
        String url = serve(new XdsStatus("istiod.istio-system.svc:15012", true, T, "", true, List.of(
                type("Cluster", "v8", "", true, List.of()),
                type("ClusterLoadAssignment", "v8", "", false, List.of("outbound|9080||reviews")),
                type("Listener", "v8", "", true, List.of()),
                type("RouteConfiguration", "v8", "", false, List.of("9080")))));
        assertEquals(0, run("--admin", url));
        String text = out.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("istiod.istio-system.svc:15012  connected since 2026-11-28T10:00:00Z"), text);
        assertTrue(text.matches("(?s).*RouteConfiguration\\s+SYNCED\\s+v8\\s+4\\s+2\\s+9080.*"), text);
        assertTrue(text.matches("(?s).*Listener\\s+SYNCED\\s+v8\\s+4\\s+2\\s+\\*.*"), text);
    }

    @Test
    void aNackIsShownWithItsErrorAndExitsOne() throws Exception {
        String url = serve(new XdsStatus("istiod:15010", true, T, "", true, List.of(
                type("Listener", "v8", "", true, List.of()),
                type("RouteConfiguration", "v8", "RouteConfiguration \"9080\": virtual_hosts[0].routes[1].match"
                        + ".safe_regex.regex: \"a(\" is not a valid RE2 regex", false, List.of("9080")))));
        assertEquals(1, run("-a", url + "/"));
        String text = out.toString(StandardCharsets.UTF_8);
        assertTrue(text.matches("(?s).*RouteConfiguration\\s+NACKED.*"), text);
        assertTrue(text.contains("LAST NACK  RouteConfiguration version v9"), text);
        assertTrue(text.contains("virtual_hosts[0].routes[1].match.safe_regex.regex"), text);
    }

    @Test
    void theAdminServerMayBeGivenAsHostAndPortAsProxyConfigTakesIt() throws Exception {
        String url = serve(new XdsStatus("istiod:15010", true, T, "", true, List.of(type("Listener", "v1", "", true,
                List.of()))));
        assertEquals(0, run("--admin", url.substring("http://".length())), err.toString());
        assertTrue(out.toString(StandardCharsets.UTF_8).matches("(?s).*Listener\\s+SYNCED\\s+v1.*"), out.toString());
        assertEquals(2, run("--admin", "127.0.0.1"));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("--admin 127.0.0.1: not HOST:PORT or http://HOST:PORT"),
                err.toString());
    }

    @Test
    void anAdminServerWithoutAnXdsClientIsReportedWithItsReason() throws Exception {
        String url = serve(404, "no xDS client: the configuration comes from a file\n");
        assertEquals(2, run("--admin", url.substring("http://".length())));
        assertTrue(err.toString(StandardCharsets.UTF_8).endsWith("/debug/xds_status: HTTP 404: no xDS client: "
                + "the configuration comes from a file" + System.lineSeparator()), err.toString());
    }

    @Test
    void jsonIsPrintedAsServed() throws Exception {
        XdsStatus s = new XdsStatus("istiod:15010", true, T, "", true, List.of(type("Listener", "v1", "", true,
                List.of())));
        String url = serve(s);
        assertEquals(0, run("--admin", url, "--json"));
        assertEquals(s, XdsStatusJson.decode(out.toString(StandardCharsets.UTF_8)));
    }

    @Test
    void anUnreachableAdminServerExitsTwo() throws Exception {
        int port;
        try (var s = new java.net.ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        assertEquals(2, run("--admin", "http://127.0.0.1:" + port, "--timeout", "PT1S"));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("cannot reach"), err.toString());
    }
}
