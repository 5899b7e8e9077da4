package dev.inmesh.runtime.inbound;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.runtime.mesh.DefaultMesh;
import dev.inmesh.runtime.stats.StreamInfo;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** What {@code mesh.inbound} answers itself is answered and logged as an Envoy sidecar answers and logs it. */
class InboundLocalReplyTest extends InboundMeshFixture {
    final LinkedBlockingQueue<StreamInfo> finished = new LinkedBlockingQueue<>();

    @Override
    void started(Mesh started) {
        ((DefaultMesh) started).addObserver(finished::add);
    }

    /** Serves {@link InboundHandlerTest#INBOUND} with {@code routes} (YAML list items) before its catch-all. */
    private void serveWithRoutes(String routes) throws Exception {
        String catchAll = " ".repeat(14) + "- {match: {prefix: /}";
        serve(InboundHandlerTest.INBOUND.replace(catchAll, routes.indent(14) + catchAll));
    }

    /**
     * As Envoy answers a HEAD request itself (encodeLocalReply, source/common/http/utility.cc): the reply's headers
     * alone, their content-length the body's a GET gets (none for an empty body); and, as for the service's own answer
     * to a HEAD, no body bytes in the access log.
     */
    @Test
    void aLocalReplyToAHeadRequestIsItsHeadersWithTheContentLengthOfItsBodyAndLogsNoBodyBytes() throws Exception {
        serveWithRoutes("""
                - {match: {prefix: /direct}, direct_response: {status: 200, body: {inline_string: direct-body}}}
                - {match: {prefix: /denied}, direct_response: {status: 403}}
                """);
        String answer = exchange("HEAD /direct HTTP/1.1\r\nhost: a\r\n\r\nHEAD /denied HTTP/1.1\r\nhost: a\r\n\r\n"
                + "HEAD /app HTTP/1.1\r\nhost: a\r\n\r\nGET /direct HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n");
        String[] answers = answer.split("(?=HTTP/1.1 )");
        assertEquals(4, answers.length, answer);
        assertTrue(answers[0].startsWith("HTTP/1.1 200 ") && answers[0].contains("\r\ncontent-length: 11\r\n")
                && answers[0].endsWith("\r\n\r\n"), answer);
        assertTrue(answers[1].startsWith("HTTP/1.1 403 ") && !answers[1].contains("content-length")
                && answers[1].endsWith("\r\n\r\n"), answer);
        assertTrue(answers[2].startsWith("HTTP/1.1 200 ") && answers[2].endsWith("\r\n\r\n"), answer);
        assertTrue(answers[3].endsWith("\r\n\r\ndirect-body"), answer);
        List<String> logged = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            StreamInfo s = finished.poll(10, TimeUnit.SECONDS);
            // as Envoy's stream info: a direct response has no upstream cluster, host or attempt
            logged.add(s.method() + " " + s.path() + " " + s.bytesSent() + " " + s.upstreamCluster() + " "
                    + (s.upstreamHost() == null ? null : "host") + " " + s.attemptCount());
        }
        assertEquals(List.of("HEAD /direct 0 null null 0", "HEAD /denied 0 null null 0",
                "HEAD /app 0 inbound|9080|| host 1", "GET /direct 11 null null 0"), logged);
    }

    /**
     * As Envoy's prepareLocalReply (source/common/http/utility.cc): the route's header rules first, then
     * {@code text/plain} only where they set no content type; an empty body has none, whatever they set.
     */
    @Test
    void aLocalReplyKeepsTheContentTypeItsRouteSetsAndAnEmptyBodyHasNone() throws Exception {
        String json = "response_headers_to_add: [{header: {key: content-type, value: application/json}}]";
        serveWithRoutes("""
                - {match: {prefix: /json}, direct_response: {status: 200, body: {inline_string: x}}, %s}
                - {match: {prefix: /empty}, direct_response: {status: 403}, %s}
                - {match: {prefix: /moved}, redirect: {path_redirect: /new}, %s}
                - {match: {prefix: /plain}, direct_response: {status: 200, body: {inline_string: y}}}
                """.formatted(json, json, json));
        String answer = exchange("GET /json HTTP/1.1\r\nhost: a\r\n\r\nGET /empty HTTP/1.1\r\nhost: a\r\n\r\n"
                + "GET /moved HTTP/1.1\r\nhost: a\r\n\r\n"
                + "GET /plain HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n");
        String[] answers = answer.split("(?=HTTP/1.1 )");
        assertEquals(4, answers.length, answer);
        assertEquals(List.of("application/json"), contentTypes(answers[0]), answer);
        assertTrue(answers[0].endsWith("\r\n\r\nx"), answer);
        assertEquals(List.of(), contentTypes(answers[1]), answer);
        assertEquals(List.of(), contentTypes(answers[2]), answer);
        assertTrue(answers[2].contains("\r\nlocation: http://a/new\r\n"), answer);
        assertEquals(List.of("text/plain"), contentTypes(answers[3]), answer);
    }

    /** As Envoy's router: a redirect's location first, then its route's header rules, which may overwrite it. */
    @Test
    void aRedirectsRouteHeaderRulesComeAfterItsLocation() throws Exception {
        serveWithRoutes("- {match: {prefix: /moved}, redirect: {path_redirect: /new}, response_headers_to_add: "
                + "[{header: {key: location, value: \"http://b/other\"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}]}");
        String answer = exchange("GET /moved HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n");
        assertTrue(answer.startsWith("HTTP/1.1 301 ") && answer.contains("\r\nlocation: http://b/other\r\n")
                && !answer.contains("http://a/new"), answer);
    }

    private static List<String> contentTypes(String answer) {
        return answer.lines().filter(l -> l.toLowerCase(java.util.Locale.ROOT).startsWith("content-type:"))
                .map(l -> l.substring("content-type:".length()).strip()).toList();
    }

    /**
     * As Envoy's connection manager gives an HTTP/1 request (which has no {@code :scheme}) the one of a valid
     * {@code x-forwarded-proto} (mutateRequestHeaders, conn_manager_utility.cc), which a redirect keeps
     * (Utility::newUri): a caller's {@code x-forwarded-proto: https} makes an {@code https} location.
     */
    @Test
    void aRedirectKeepsTheSchemeOfTheCallersForwardedProto() throws Exception {
        serveWithRoutes("- {match: {prefix: /moved}, redirect: {host_redirect: other.example, path_redirect: /new}}");
        String answer = exchange("GET /moved HTTP/1.1\r\nhost: a\r\nx-forwarded-proto: https\r\n\r\n"
                + "GET /moved HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n");
        String[] answers = answer.split("(?=HTTP/1.1 )");
        assertEquals(2, answers.length, answer);
        assertTrue(answers[0].contains("\r\nlocation: https://other.example/new\r\n"), answer);
        assertTrue(answers[1].contains("\r\nlocation: http://other.example/new\r\n"), answer);
    }

    /**
     * As Envoy answers a gRPC request itself (prepareLocalReply and encodeLocalReply, source/common/http/utility.cc):
     * trailers-only, with no {@code content-length}, over HTTP/2; over HTTP/1, the {@code content-length: 0} Envoy's
     * codec writes on a head that ends the stream (source/common/http/http1/codec_impl.cc).
     */
    @Test
    void aGrpcLocalReplyHasNoContentLengthOverHttp2AndItsZeroOverHttp1() throws Exception {
        serveWithRoutes("- {match: {prefix: /pkg.Svc/Denied}, "
                + "direct_response: {status: 403, body: {inline_string: denied}}}");
        var client = vertx.createHttpClient(new io.vertx.core.http.HttpClientOptions()
                .setProtocolVersion(io.vertx.core.http.HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false));
        var h2 = dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop(vertx, () -> client.request(
                        io.vertx.core.http.HttpMethod.POST, port, "127.0.0.1", "/pkg.Svc/Denied")
                .compose(r -> r.putHeader("content-type", "application/grpc").send()
                        .compose(a -> a.body().map(b -> a.headers()))))
                .await(10, TimeUnit.SECONDS);
        assertEquals("7", h2.get("grpc-status"));
        assertEquals("denied", h2.get("grpc-message"));
        assertEquals(null, h2.get("content-length"), "trailers-only");
        String http1 = exchange("POST /pkg.Svc/Denied HTTP/1.1\r\nhost: a\r\ncontent-type: application/grpc\r\n"
                + "content-length: 0\r\nconnection: close\r\n\r\n");
        assertTrue(http1.startsWith("HTTP/1.1 200 ") && http1.contains("\r\ngrpc-status: 7\r\n")
                && http1.contains("\r\ncontent-length: 0\r\n"), http1);
    }
}
