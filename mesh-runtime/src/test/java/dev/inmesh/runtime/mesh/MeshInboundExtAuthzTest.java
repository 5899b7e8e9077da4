package dev.inmesh.runtime.mesh;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.inbound.InboundHandler;
import dev.inmesh.runtime.router.IstioExtAuthz;
import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.IstioGlobalRateLimit;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.auth.v3.DeniedHttpResponse;
import io.envoyproxy.envoy.service.auth.v3.OkHttpResponse;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitRequest;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitResponse;
import io.grpc.Server;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SocketAddress;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mesh.inbound(handler)} under an Istio AuthorizationPolicy with {@code action: CUSTOM}: istiod's shadow RBAC
 * filter marks the requests of the policy ({@code /secure*}), and its ext_authz filter asks the extension provider, an
 * authorizer on loopback reached through its {@code outbound|8000||...} cluster, about those only. An allowed request
 * reaches the application with the headers the authorizer added; a denied one is answered with the authorizer's
 * status, body and allowed headers (response flag UAEX, {@code ext_authz_denied}); an authorizer that does not answer
 * in time is an error: {@code status_on_error}, or the application under {@code failure_mode_allow}.
 */
@Timeout(60)
class MeshInboundExtAuthzTest {
    private static final String REVIEWS = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
    private static final String PRODUCTPAGE = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    final WebClient plain = WebClient.create(vertx);
    /** What the application saw of each request: its path and x-user header. */
    final List<String> appSaw = new CopyOnWriteArrayList<>();
    /** The x-private header of each request the application saw (null: none). */
    final List<String> privateSeen = new CopyOnWriteArrayList<>();
    /** The URI (path and query) of each request the application saw. */
    final List<String> appUris = new CopyOnWriteArrayList<>();
    /** The peer port of each request the application saw. */
    final List<Integer> appPeerPorts = new CopyOnWriteArrayList<>();
    /** The x-ext-authz values and the x-absent header of each request the application saw. */
    final List<String> appendedSeen = new CopyOnWriteArrayList<>();
    /** What the authorizer was asked: method, path and the headers it got. */
    final List<HttpServerRequest> checks = new CopyOnWriteArrayList<>();
    final List<StreamInfo> logged = new CopyOnWriteArrayList<>();
    Mesh mesh;
    SnapshotHolder snapshots;
    Server grpc;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        if (snapshots != null) {
            snapshots.close();
        }
        if (grpc != null) {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** The workload's config: {@code filters} first in its inbound connection manager, and the provider's cluster. */
    static String config(String filters, int authorizer, boolean http2) {
        return IstioRbac.first(filters, MeshWebClientTest.virtualInbound("", """
                                  routes:
                                  - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                    """)) + "  clusters:\n" + IstioExtAuthz.cluster(authorizer, http2);
    }

    /**
     * An HTTP authorizer on loopback: {@code x-ext-authz: allow} is allowed with {@code x-user: alice} (for the
     * application) and {@code x-authz-decision} (for the client), {@code hang} never answered, anything else denied
     * {@code 403} with a body, {@code x-denied-reason} and a header the policy does not pass on.
     */
    int httpAuthorizer() {
        return vertx.createHttpServer().requestHandler(req -> {
            checks.add(req);
            String verdict = req.getHeader("x-ext-authz");
            if ("hang".equals(verdict)) {
                return;
            }
            if ("allow".equals(verdict)) {
                req.response().putHeader("x-user", "alice").putHeader("x-authz-decision", "allowed")
                        .putHeader("x-not-passed", "no").end();
                return;
            }
            req.response().setStatusCode(403).putHeader("x-denied-reason", "no-ticket")
                    .putHeader("x-not-passed", "no").end("denied by the authorizer");
        }).listen(0, "127.0.0.1").await().actualPort();
    }

    /**
     * A gRPC authorizer on loopback ({@link #grpc}) that answers as {@code decide} says, each request it is asked
     * about added to {@code asked}; its port.
     */
    int grpcAuthorizer(List<CheckRequest> asked, java.util.function.Function<CheckRequest, CheckResponse> decide)
            throws Exception {
        grpc = IstioExtAuthz.grpcAuthorizer(request -> {
            asked.add(request);
            return decide.apply(request);
        });
        return grpc.getPort();
    }

    /** A gRPC authorizer on loopback that allows every request, each check added to {@code asked}; its port. */
    int allowingGrpcAuthorizer(List<CheckRequest> asked) throws Exception {
        return grpcAuthorizer(asked, request -> CheckResponse.newBuilder()
                .setStatus(com.google.rpc.Status.newBuilder().setCode(0)).build());
    }

    /** An HTTP server on loopback whose requests go through an {@link InboundHandler} of {@code config}. */
    int serveThrough(String config) throws Exception {
        return serveThrough(config, new HttpServerOptions());
    }

    /** A server of {@code options} on loopback whose requests go through an {@link InboundHandler} of a config. */
    int serveThrough(String config, HttpServerOptions options) throws Exception {
        snapshots = new SnapshotHolder(UpstreamEnvironment.of(vertx));
        snapshots.apply(EnvoyConfigReader.read(config));
        return vertx.createHttpServer(options).requestHandler(new InboundHandler(req -> {
            appSaw.add(req.path() + " " + req.getHeader("x-user"));
            privateSeen.add(String.valueOf(req.getHeader("x-private")));
            appendedSeen.add(req.headers().getAll("x-ext-authz") + " " + req.getHeader("x-absent"));
            appPeerPorts.add(req.remoteAddress().port());
            appUris.add(req.uri());
            req.response().putHeader("x-app", "app").putHeader("x-kept", "app").end("app");
        }, snapshots, logged::add)).listen(0, "127.0.0.1").await().actualPort();
    }

    HttpResponse<Buffer> call(int port, String uri, String verdict) throws Exception {
        var r = plain.request(HttpMethod.GET, port, "127.0.0.1", uri).putHeader("x-ext-authz", verdict)
                .putHeader("authorization", "Bearer t").putHeader("x-private", "secret")
                .putHeader("x-envoy-auth-partial-body", "false"); // a client's, which Envoy never passes on
        return r.send().await(10, TimeUnit.SECONDS);
    }

    StreamInfo loggedWith(int status) throws InterruptedException {
        return loggedWith(logged, status);
    }

    /** The first of {@code logged} with {@code status}, waiting up to 5 s for it. */
    static StreamInfo loggedWith(List<StreamInfo> logged, int status) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            for (StreamInfo s : logged) {
                if (s.responseCode() == status) {
                    return s;
                }
            }
            Thread.sleep(25);
        }
        throw new AssertionError("no " + status + " in " + logged);
    }

    @Test
    void anHttpAuthorizerAllowsWithItsHeadersAndDeniesWithItsAnswerOnlyForTheCustomPolicysRequests()
            throws Exception {
        // includeRequestHeadersInCheck also names x-envoy-auth-*: a client's x-envoy-auth-partial-body still stays out
        int port = serveThrough(config(IstioExtAuthz.SHADOW + IstioExtAuthz.http("10s", false).replace(
                "      - {exact: x-ext-authz, ignore_case: true}\n",
                "      - {exact: x-ext-authz, ignore_case: true}\n      - {prefix: x-envoy-auth-}\n"),
                httpAuthorizer(), false));

        HttpResponse<Buffer> allowed = call(port, "/secure/report?x=1", "allow");
        assertEquals(200, allowed.statusCode());
        assertEquals("allowed", allowed.getHeader("x-authz-decision"), "allowed_client_headers_on_success");
        assertNull(allowed.getHeader("x-not-passed"));
        assertEquals(List.of("/secure/report alice"), appSaw, "allowed_upstream_headers reach the application");
        HttpServerRequest check = checks.get(0);
        assertEquals(HttpMethod.GET, check.method());
        assertEquals("/check/secure/report?x=1", check.uri(), "path_prefix before the request's path");
        assertEquals("allow", check.getHeader("x-ext-authz"), "an allowed header");
        assertEquals("Bearer t", check.getHeader("authorization"), "always sent to an HTTP authorizer");
        assertEquals("from-istio", check.getHeader("x-ext-authz-added"), "headers_to_add");
        assertEquals("0", check.getHeader("content-length"), "no body, as Envoy says: content-length 0");
        assertNull(check.getHeader("x-private"), "not among allowed_headers");
        assertNull(check.getHeader("x-envoy-auth-partial-body"), "never a client's, as Envoy's");
        assertEquals("127.0.0.1:" + port, check.authority().toString(), "the request's :authority");

        HttpResponse<Buffer> denied = call(port, "/secure/report", "deny");
        assertEquals(403, denied.statusCode());
        assertEquals("denied by the authorizer", denied.bodyAsString());
        assertEquals("no-ticket", denied.getHeader("x-denied-reason"), "allowed_client_headers");
        assertNull(denied.getHeader("x-not-passed"));
        assertEquals(1, appSaw.size(), "a denied request never reaches the application");
        StreamInfo refused = loggedWith(403);
        assertEquals("ext_authz_denied", refused.responseCodeDetails());
        assertEquals("UAEX", ResponseFlag.format(refused.responseFlags()));

        // the shadow policy names /secure* only: other requests go on without asking the authorizer
        assertEquals(200, call(port, "/public", "deny").statusCode());
        assertEquals(2, checks.size(), "/public was not checked");
        assertEquals("/public null", appSaw.get(1));
    }

    /**
     * As Envoy's HTTP client, which sends the header map of its check request: a header the request repeats reaches an
     * HTTP authorizer as one line, its values joined with a comma in their order.
     */
    @Test
    void anHttpAuthorizerGetsARepeatedHeaderAsOneJoinedLine() throws Exception {
        int port = serveThrough(config(IstioExtAuthz.SHADOW + IstioExtAuthz.http("10s", false).replace(
                "      - {exact: x-ext-authz, ignore_case: true}\n",
                "      - {exact: x-ext-authz, ignore_case: true}\n      - {exact: x-tenant}\n"),
                httpAuthorizer(), false));

        var r = plain.request(HttpMethod.GET, port, "127.0.0.1", "/secure/a").putHeader("x-ext-authz", "allow")
                .putHeader("x-tenant", List.of("acme", "globex")).send().await(10, TimeUnit.SECONDS);

        assertEquals(200, r.statusCode());
        assertEquals(List.of("acme,globex"), checks.get(0).headers().getAll("x-tenant"));
    }

    /**
     * As Envoy's ext_authz filter, which adds an allowed check's {@code response_headers_to_add} in its encoding to
     * whatever response passes it: the refusal of a local rate limit filter after it (after the CORS filter, right
     * before the router) has the authorizer's headers too.
     */
    @Test
    void aLaterLocalRateLimitRefusalHasTheAuthorizersResponseHeaders() throws Exception {
        String cors = """
                - name: envoy.filters.http.cors
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                """;
        int port = serveThrough(config(IstioExtAuthz.SHADOW + IstioExtAuthz.http("10s", false) + cors
                + dev.inmesh.runtime.xds.IstioRateLimit.enforced("rl", 1, ""), httpAuthorizer(), false));
        assertEquals("allowed", call(port, "/secure/a", "allow").getHeader("x-authz-decision"));
        HttpResponse<Buffer> refused = call(port, "/secure/a", "allow");
        assertEquals(429, refused.statusCode());
        assertEquals("allowed", refused.getHeader("x-authz-decision"));
        assertEquals(2, checks.size(), "the authorizer allowed both");
    }

    /**
     * As Envoy runs a connection manager's filters in their order: a local rate limit filter after an external
     * authorization filter (and no other deciding filter) takes no token for a request the authorizer denies.
     */
    @Test
    void aLocalRateLimitFilterAfterTheAuthorizerTakesNoTokenForADeniedRequest() throws Exception {
        int port = serveThrough(config(IstioExtAuthz.unconditional(IstioExtAuthz.http("10s", false))
                + dev.inmesh.runtime.xds.IstioRateLimit.enforced("rl", 1, ""), httpAuthorizer(), false));
        assertEquals(403, call(port, "/a", "deny").statusCode());
        assertEquals(200, call(port, "/a", "allow").statusCode(), "the denied request took no token");
        assertEquals(429, call(port, "/a", "allow").statusCode(), "the allowed one took the only token");
    }

    /**
     * As Envoy's ext_authz filter answers through the connection manager's sendLocalReply: its denial, the
     * authorizer's headers on it, is rewritten by the {@code local_reply_config} (a mapper's status and header, the
     * body format); the stream info has the code sent.
     */
    @Test
    void anAuthorizersDenialIsRewrittenByTheConnectionManagersLocalReplyConfig() throws Exception {
        String localReply = "          local_reply_config: {mappers: [{filter: {status_code_filter: {comparison: "
                + "{op: EQ, value: {default_value: 403, runtime_key: k}}}}, status_code: 401, headers_to_add: "
                + "[{header: {key: x-mapped, value: 'yes'}}]}], body_format: {text_format: "
                + "\"%RESPONSE_CODE% %RESPONSE_FLAGS% %LOCAL_REPLY_BODY%\"}}\n";
        String prefix = "stat_prefix: inbound_0.0.0.0_9080\n";
        int port = serveThrough(config(IstioExtAuthz.SHADOW + IstioExtAuthz.http("10s", false), httpAuthorizer(),
                false).replace(prefix, prefix + localReply));
        HttpResponse<Buffer> denied = call(port, "/secure/report", "deny");
        assertEquals(401, denied.statusCode());
        assertEquals("401 UAEX denied by the authorizer", denied.bodyAsString());
        assertEquals("no-ticket", denied.getHeader("x-denied-reason"), "the authorizer's header is kept");
        assertEquals("yes", denied.getHeader("x-mapped"));
        assertEquals("UAEX", ResponseFlag.format(loggedWith(401).responseFlags()));
        assertTrue(appSaw.isEmpty());
    }

    @Test
    void anAuthorizerThatDoesNotAnswerInTimeIsAnErrorRefusedOrLetThroughUnderFailureModeAllow() throws Exception {
        int authorizer = httpAuthorizer();
        int closed = serveThrough(config(IstioExtAuthz.SHADOW + IstioExtAuthz.http("0.2s", false), authorizer,
                false));
        long start = System.nanoTime();
        HttpResponse<Buffer> refused = call(closed, "/secure", "hang");
        assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "the timeout bounds the wait");
        assertEquals(403, refused.statusCode(), "status_on_error: Envoy's default 403");
        assertNull(refused.body(), "no body");
        assertEquals("ext_authz_error", loggedWith(403).responseCodeDetails());
        assertTrue(appSaw.isEmpty());
        snapshots.close();

        // a timeout the real answers below are well within on a loaded machine: past it, failure_mode_allow would
        // let "deny" through and count an error where an answer came; failure_mode_allow_header_add marks the
        // request let through on an error
        String failOpen = IstioExtAuthz.http("1s", true).replaceAll("(?m)^( *)failure_mode_allow: true$",
                "$1failure_mode_allow: true\n$1failure_mode_allow_header_add: true");
        Path file = Files.writeString(dir.resolve("mesh.yaml"),
                config(IstioExtAuthz.SHADOW + failOpen, authorizer, false));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        int open = vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            appSaw.add(req.path() + " " + req.getHeader("x-user") + " "
                    + req.getHeader("x-envoy-auth-failure-mode-allowed"));
            req.response().end("app");
        })).listen(0, "127.0.0.1").await().actualPort();
        HttpResponse<Buffer> through = call(open, "/secure", "hang");
        assertEquals(200, through.statusCode(), "failure_mode_allow");
        assertEquals(List.of("/secure null true"), appSaw);
        appSaw.clear();
        assertEquals(200, call(open, "/secure", "allow").statusCode());
        assertEquals(List.of("/secure alice null"), appSaw, "an allowed request is not marked");
        assertEquals(403, call(open, "/secure", "deny").statusCode());

        // a request the shadow policy does not pick is not checked, and counted as Envoy counts it: disabled
        assertEquals(200, call(open, "/public", "deny").statusCode());

        String p = "http.inbound_0.0.0.0_9080.ext_authz.";
        String stats = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats?filter=ext_authz", p + "ok: 1");
        assertTrue(stats.contains(p + "ok: 1\n") && stats.contains(p + "denied: 1\n")
                && stats.contains(p + "error: 1\n") && stats.contains(p + "failure_mode_allowed: 1\n")
                && stats.contains(p + "disabled: 1\n"), stats);
        String shadow = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats?filter=rbac", "shadow_denied");
        assertTrue(shadow.contains("http.inbound_0.0.0.0_9080.rbac.istio_ext_authz_.shadow_denied: 3\n"), shadow);
    }

    @Test
    void aRequestNoRouteMatchesIsAnsweredByTheRouterWithoutAskingTheAuthorizerAsEnvoySkipsTheCheck()
            throws Exception {
        int port = serveThrough(IstioRbac.first(IstioExtAuthz.SHADOW + IstioExtAuthz.http("10s", false),
                MeshWebClientTest.virtualInbound("", """
                                  routes:
                                  - {match: {prefix: /secure/app}, route: {cluster: "inbound|9080||", timeout: 0s}}
                    """)) + "  clusters:\n" + IstioExtAuthz.cluster(httpAuthorizer(), false));

        HttpResponse<Buffer> unrouted = call(port, "/secure/elsewhere", "deny");
        assertEquals(404, unrouted.statusCode(), "the router's answer: the shadow policy matched, but no route did");
        assertTrue(checks.isEmpty(), "the authorizer was not asked");
        assertEquals("route_not_found", loggedWith(404).responseCodeDetails());

        assertEquals(403, call(port, "/secure/app", "deny").statusCode(), "a routed request is checked");
        assertEquals(1, checks.size());
        assertTrue(appSaw.isEmpty());
    }

    /**
     * Istio's {@code includeRequestBodyInCheck} on {@code mesh.inbound}: the handler holds a body until it is whole
     * or, with {@code allowPartialMessage}, {@code maxRequestBytes} came; a gRPC authorizer gets them with
     * {@code x-envoy-auth-partial-body} and the application reads the whole body, the held part first; without
     * {@code allowPartialMessage} a longer body is answered 413 unchecked; an HTTP authorizer gets the body as its
     * check request's.
     */
    @Test
    void anAuthorizerGetsTheBodyHeldForItsCheckAndTheApplicationReadsTheWholeBody() throws Exception {
        List<CheckRequest> asked = new CopyOnWriteArrayList<>();
        int authorizer = allowingGrpcAuthorizer(asked);
        List<String> bodies = new CopyOnWriteArrayList<>();
        int port = serveBodies(config(IstioExtAuthz.SHADOW + IstioExtAuthz.withBody(IstioExtAuthz.grpc("5s", false),
                8, true, false), authorizer, true), bodies);
        assertEquals("200 app", post(port, "/secure/a", asked::size, "0123456789", "abc", "def"));
        var cut = asked.get(0).getAttributes().getRequest().getHttp();
        assertEquals("01234567", cut.getBody());
        assertEquals("true", cut.getHeadersMap().get("x-envoy-auth-partial-body"));
        assertEquals("200 app", post(port, "/secure/b", asked::size, "whole"));
        assertEquals("false", asked.get(1).getAttributes().getRequest().getHttp().getHeadersMap()
                .get("x-envoy-auth-partial-body"));
        assertEquals("whole", asked.get(1).getAttributes().getRequest().getHttp().getBody());
        assertEquals(List.of("0123456789abcdef", "whole"), bodies, "nothing of the body is lost");
        snapshots.close();

        int closed = serveBodies(config(IstioExtAuthz.SHADOW + IstioExtAuthz.withBody(IstioExtAuthz.grpc("5s",
                false), 4, false, false), authorizer, true), bodies);
        assertEquals("413 Payload Too Large", post(closed, "/secure/a", asked::size, "abc", "def"));
        assertEquals(2, asked.size(), "not asked");
        assertEquals(2, bodies.size(), "the application never got it");
        assertEquals("request_payload_too_large", loggedWith(413).responseCodeDetails());
        snapshots.close();

        int http = serveBodies(config(IstioExtAuthz.SHADOW + IstioExtAuthz.withBody(IstioExtAuthz.http("5s",
                false), 64, false, false), httpAuthorizer(), false), bodies);
        assertEquals("403 denied by the authorizer", post(http, "/secure/a", checks::size, "payload"));
        assertEquals("7", checks.get(0).getHeader("content-length"), "the body's");
        assertEquals("false", checks.get(0).getHeader("x-envoy-auth-partial-body"));
    }

    /**
     * A caller that leaves while {@code mesh.inbound} holds its body for the check (97 of its 100 bytes never came):
     * as Envoy's filter, destroyed with its stream, the authorizer is not asked about it; the next request is.
     */
    @Test
    void aCallerThatLeavesWhileItsBodyIsHeldIsNotChecked() throws Exception {
        List<CheckRequest> asked = new CopyOnWriteArrayList<>();
        int authorizer = allowingGrpcAuthorizer(asked);
        List<String> bodies = new CopyOnWriteArrayList<>();
        int port = serveBodies(config(IstioExtAuthz.SHADOW + IstioExtAuthz.withBody(IstioExtAuthz.grpc("5s", false),
                8, true, false), authorizer, true), bodies);
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            s.getOutputStream().write("POST /secure/gone HTTP/1.1\r\nhost: svc\r\ncontent-length: 100\r\n\r\nabc"
                    .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
            s.getOutputStream().flush();
            Thread.sleep(300); // the handler has the head and holds the three bytes for the check
        }
        loggedWith(0);
        assertEquals("200 app", post(port, "/secure/b", asked::size, "whole"));
        assertEquals(List.of("/secure/b"), asked.stream().map(c -> c.getAttributes().getRequest().getHttp()
                .getPath()).toList(), "only the request that stayed was checked");
        assertEquals(List.of("whole"), bodies);
    }

    /**
     * A service that reads the body it was handed after the check a chunk at a time ({@code fetch(1)}) and stops
     * asking after three: the caller's body stops there too, as with Vert.x's own request, instead of being read and
     * held for the service without bound while it asks for nothing.
     */
    @Test
    void aServiceThatStopsAskingForTheBodyStopsTheCaller() throws Exception {
        int authorizer = allowingGrpcAuthorizer(new CopyOnWriteArrayList<>());
        snapshots = new SnapshotHolder(UpstreamEnvironment.of(vertx));
        snapshots.apply(EnvoyConfigReader.read(config(IstioExtAuthz.SHADOW + IstioExtAuthz.withBody(
                IstioExtAuthz.grpc("5s", false), 8, true, false), authorizer, true)));
        int port = vertx.createHttpServer().requestHandler(new InboundHandler(req -> {
            int[] asked = {1};
            req.pause();
            req.handler(b -> {
                if (asked[0]++ < 3) {
                    req.fetch(1);
                }
            });
            req.fetch(1);
        }, snapshots, logged::add)).listen(0, "127.0.0.1").await().actualPort();
        int size = 64 << 20;
        try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
            var sent = java.util.concurrent.CompletableFuture.runAsync(() -> {
                try {
                    s.getOutputStream().write(("POST /secure/a HTTP/1.1\r\nhost: svc\r\ncontent-length: " + size
                            + "\r\n\r\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                    byte[] chunk = new byte[64 << 10];
                    for (int n = 0; n < size; n += chunk.length) {
                        s.getOutputStream().write(chunk);
                    }
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            assertThrows(java.util.concurrent.TimeoutException.class, () -> sent.get(3, TimeUnit.SECONDS),
                    "the caller sent its whole 64 MiB: the handler read on for a service that asked for none");
        }
    }

    /**
     * A body over {@code maxRequestBytes} without {@code allowPartialMessage} counts in the connection manager's
     * {@code downstream_rq_too_large}, as Envoy counts the 413 its buffer limit makes.
     */
    @Test
    void aBodyTooLargeForTheCheckCountsInDownstreamRqTooLarge() throws Exception {
        List<CheckRequest> asked = new CopyOnWriteArrayList<>();
        int authorizer = allowingGrpcAuthorizer(asked);
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config(IstioExtAuthz.SHADOW
                + IstioExtAuthz.withBody(IstioExtAuthz.grpc("5s", false), 4, false, false), authorizer, true));
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        int port = vertx.createHttpServer().requestHandler(mesh.inbound(req -> req.body()
                .onSuccess(b -> req.response().end("app")))).listen(0, "127.0.0.1").await().actualPort();
        assertEquals("200 app", post(port, "/secure/a", asked::size, "abc"));
        assertEquals("413 Payload Too Large", post(port, "/secure/a", asked::size, "abc", "def"));
        String p = "http.inbound_0.0.0.0_9080.downstream_rq_too_large: ";
        String stats = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats?filter=too_large", p + "1");
        assertTrue(stats.contains(p + "1\n"), stats);
    }

    /** A server on loopback through an {@link InboundHandler} of {@code config}, whose application reads bodies. */
    int serveBodies(String config, List<String> bodies) throws Exception {
        snapshots = new SnapshotHolder(UpstreamEnvironment.of(vertx));
        snapshots.apply(EnvoyConfigReader.read(config));
        return vertx.createHttpServer().requestHandler(new InboundHandler(req -> req.body().onSuccess(b -> {
            bodies.add(b.toString());
            req.response().end("app");
        }), snapshots, logged::add)).listen(0, "127.0.0.1").await().actualPort();
    }

    String post(int port, String path, java.util.function.IntSupplier asked, String... chunks) throws Exception {
        return IstioExtAuthz.post(vertx, new RequestOptions().setServer(SocketAddress.inetSocketAddress(port,
                "127.0.0.1")).setHost("127.0.0.1").setPort(port).setURI(path), asked, chunks);
    }

    /**
     * The routes of {@code /secure/healthz} (its ExtAuthzPerRoute disables the filter), {@code /secure/nobody}
     * (check settings: no body held, context extension {@code tier: gold}) and the rest, under a virtual host whose
     * check settings give the context extensions {@code vhost: inbound} and {@code tier: silver}, as an EnvoyFilter
     * patching Istio's inbound routes writes them; {@code filters} first in the connection manager.
     */
    static String perRouteConfig(String filters, int authorizer) {
        String type = "\"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";
        return IstioRbac.first(filters, MeshWebClientTest.virtualInbound("", """
                              typed_per_filter_config:
                                envoy.filters.http.ext_authz:
                                  %s
                                  check_settings: {context_extensions: {vhost: inbound, tier: silver}}
                              routes:
                              - match: {prefix: /secure/healthz}
                                route: {cluster: "inbound|9080||", timeout: 0s}
                                typed_per_filter_config:
                                  envoy.filters.http.ext_authz: {%s, disabled: true}
                              - match: {prefix: /secure/nobody}
                                route: {cluster: "inbound|9080||", timeout: 0s}
                                typed_per_filter_config:
                                  envoy.filters.http.ext_authz:
                                    %s
                                    check_settings:
                                      context_extensions: {tier: gold}
                                      disable_request_body_buffering: true
                              - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                """.formatted(type, type, type))) + "  clusters:\n" + IstioExtAuthz.cluster(authorizer, true);
    }

    /**
     * A route's ExtAuthzPerRoute, as Envoy's filter reads it by its name: {@code disabled} lets the route's requests
     * go on without asking; check settings send their context extensions merged over the virtual host's (the
     * route's keys winning) and, with {@code disable_request_body_buffering}, the check holds no body of a filter
     * with {@code with_request_body}; a route without one takes its virtual host's.
     */
    @Test
    void aRoutesExtAuthzPerRouteSkipsTheCheckOrSendsItsContextExtensionsWithoutHoldingTheBody() throws Exception {
        List<CheckRequest> asked = new CopyOnWriteArrayList<>();
        List<String> bodies = new CopyOnWriteArrayList<>();
        int port = serveBodies(perRouteConfig(IstioExtAuthz.SHADOW + IstioExtAuthz.withBody(IstioExtAuthz.grpc(
                "5s", false), 64, false, false), grpcAuthorizer(asked, request -> CheckResponse.newBuilder()
                .setStatus(com.google.rpc.Status.newBuilder().setCode(7)).build())), bodies);

        assertEquals("200 app", post(port, "/secure/healthz", asked::size, "probe"), "not checked: not denied");
        assertTrue(asked.isEmpty(), "the authorizer was not asked");

        assertEquals("403 ", post(port, "/secure/nobody", asked::size, "payload"));
        var nobody = asked.get(0).getAttributes();
        assertEquals(Map.of("vhost", "inbound", "tier", "gold"), nobody.getContextExtensionsMap());
        assertEquals("", nobody.getRequest().getHttp().getBody(), "checked on its headers: no body held");
        assertNull(nobody.getRequest().getHttp().getHeadersMap().get("x-envoy-auth-partial-body"));

        assertEquals("403 ", post(port, "/secure/other", asked::size, "payload"));
        var other = asked.get(1).getAttributes();
        assertEquals(Map.of("vhost", "inbound", "tier", "silver"), other.getContextExtensionsMap(),
                "the virtual host's");
        assertEquals("payload", other.getRequest().getHttp().getBody(), "the filter's with_request_body");
        assertEquals(List.of("probe"), bodies);
    }

    @Test
    void aGrpcAuthorizerAllowsWithItsHeaderChangesAndDeniesWithItsStatusAndBody() throws Exception {
        List<CheckRequest> asked = new CopyOnWriteArrayList<>();
        int authorizer = grpcAuthorizer(asked, request -> {
            Map<String, String> h = request.getAttributes().getRequest().getHttp().getHeadersMap();
            CheckResponse.Builder r = CheckResponse.newBuilder();
            if ("allow".equals(h.get("x-ext-authz"))) {
                r.setStatus(com.google.rpc.Status.newBuilder().setCode(0))
                        .setOkResponse(OkHttpResponse.newBuilder()
                                .addHeaders(option("x-user", "bob"))
                                .addHeaders(option("x-ext-authz", "appended").toBuilder()
                                        .setAppend(com.google.protobuf.BoolValue.of(true)))
                                .addHeaders(option("x-absent", "appended").toBuilder()
                                        .setAppend(com.google.protobuf.BoolValue.of(true)))
                                .addHeadersToRemove("x-private")
                                .addResponseHeadersToAdd(option("x-authz-decision", "grpc-allowed"))
                                .addResponseHeadersToAdd(option("x-app", "authorizer").toBuilder()
                                        .setAppend(com.google.protobuf.BoolValue.of(false)))
                                .addResponseHeadersToAdd(option("x-kept", "authorizer").toBuilder()
                                        .setAppendAction(HeaderValueOption.HeaderAppendAction
                                                .ADD_IF_ABSENT))
                                .addResponseHeadersToAdd(option("x-if-present", "authorizer")
                                        .toBuilder().setAppendAction(HeaderValueOption
                                                .HeaderAppendAction.OVERWRITE_IF_EXISTS)));
            } else {
                r.setStatus(com.google.rpc.Status.newBuilder().setCode(7))
                        .setDeniedResponse(DeniedHttpResponse.newBuilder()
                                .setStatus(io.envoyproxy.envoy.type.v3.HttpStatus.newBuilder()
                                        .setCodeValue(401))
                                .addHeaders(option("x-denied-reason", "grpc"))
                                .setBody("no entry"));
            }
            return r.build();
        });
        int port = serveThrough(config(IstioExtAuthz.SHADOW + IstioExtAuthz.grpc("5s", false), authorizer, true));
        HttpResponse<Buffer> allowed = call(port, "/secure/x", "allow");
        assertEquals(200, allowed.statusCode());
        assertEquals("grpc-allowed", allowed.getHeader("x-authz-decision"), "no append: APPEND_IF_EXISTS_OR_ADD");
        // response_headers_to_add go over the application's answer as their append or append_action say
        assertEquals(List.of("authorizer"), allowed.headers().getAll("x-app"), "append: false sets");
        assertEquals(List.of("app"), allowed.headers().getAll("x-kept"), "ADD_IF_ABSENT: the answer has one");
        assertNull(allowed.getHeader("x-if-present"), "OVERWRITE_IF_EXISTS: the answer has none");
        assertEquals(List.of("/secure/x bob"), appSaw);
        assertEquals(List.of("null"), privateSeen, "headers_to_remove");
        assertEquals(List.of("[allow,appended] null"), appendedSeen,
                "append: true joins the request's value with a comma, and adds nothing the request lacks");
        var http = asked.get(0).getAttributes().getRequest().getHttp();
        assertEquals("GET", http.getMethod());
        assertEquals("/secure/x", http.getPath());
        assertEquals("secret", http.getHeadersMap().get("x-private"), "a gRPC authorizer gets every header");
        assertNull(http.getHeadersMap().get("x-envoy-auth-partial-body"), "but a client's x-envoy-auth-partial-body");
        assertEquals("HTTP/1.1", http.getProtocol(), "the protocol, as Envoy names it");
        assertEquals(0, http.getSize(), "as Envoy's: the body bytes received when the headers are checked");
        var time = asked.get(0).getAttributes().getRequest().getTime();
        assertEquals(loggedWith(200).startTime(), java.time.Instant.ofEpochSecond(time.getSeconds(), time.getNanos()),
                "request.time: when the request arrived, as its access log entry has it");
        var source = asked.get(0).getAttributes().getSource().getAddress().getSocketAddress();
        assertEquals("127.0.0.1", source.getAddress());
        assertEquals(appPeerPorts.get(0).intValue(), source.getPortValue(), "the source address with its port");

        HttpResponse<Buffer> denied = call(port, "/secure/x", "deny");
        assertEquals(401, denied.statusCode());
        assertEquals("no entry", denied.bodyAsString());
        assertEquals("grpc", denied.getHeader("x-denied-reason"));
        assertEquals(1, appSaw.size());
        assertEquals("ext_authz_denied", loggedWith(401).responseCodeDetails());

        grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        HttpResponse<Buffer> error = call(port, "/secure/x", "allow");
        assertEquals(503, error.statusCode(), "status_on_error when the authorizer is gone");
        assertEquals("ext_authz_error", loggedWith(503).responseCodeDetails());
    }

    /**
     * A mutual TLS request (the server presents the workload's certificate, the client the caller's): the gRPC
     * authorizer gets both identities, the client's as {@code source.principal}, the workload's own as
     * {@code destination.principal}, and the caller's {@code x-envoy-downstream-service-cluster} as
     * {@code source.service}, as Envoy's check request has them.
     */
    @Test
    void aGrpcAuthorizerGetsBothCertificatesIdentitiesOfAMutualTlsRequest() throws Exception {
        Issued ca = TestCertificates.ca("cluster.local");
        Issued own = TestCertificates.issue(ca, "reviews", List.of(), List.of(REVIEWS));
        Issued caller = TestCertificates.issue(ca, "productpage", List.of(), List.of(PRODUCTPAGE));
        List<CheckRequest> asked = new CopyOnWriteArrayList<>();
        int authorizer = allowingGrpcAuthorizer(asked);
        int port = serveThrough(config(IstioExtAuthz.SHADOW + IstioExtAuthz.grpc("5s", false), authorizer, true),
                TestCertificates.requiringClientCertificate(own, ca));
        HttpClient client = vertx.createHttpClient(TestCertificates.istioClientOptions(caller, ca, false));
        int status = onEventLoop(vertx, () -> client.request(new RequestOptions()
                        .setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1")).setHost("reviews")
                        .setPort(9080).setURI("/secure/x").putHeader("x-envoy-downstream-service-cluster",
                                "productpage.default"))
                .compose(req -> req.send().map(HttpClientResponse::statusCode))).await(10, TimeUnit.SECONDS);

        assertEquals(200, status);
        var attributes = asked.get(0).getAttributes();
        assertEquals(PRODUCTPAGE, attributes.getSource().getPrincipal(), "the client certificate's URI SAN");
        assertEquals(REVIEWS, attributes.getDestination().getPrincipal(), "the URI SAN of the server's certificate");
        assertEquals("productpage.default", attributes.getSource().getService());
    }

    /**
     * An allowing gRPC authorizer's {@code query_parameters_to_set} and {@code query_parameters_to_remove} change the
     * request's query as Envoy's filter rewrites {@code :path}: parameters by name in name order, a set one replacing
     * every value of its name, a removed one gone; the application gets that path, the access log shows it, and the
     * RBAC filter after the authorizer's (Istio's DENY policies come after CUSTOM ones) matches it.
     */
    @Test
    void aGrpcAuthorizersQueryParameterChangesReachTheApplicationInThePathEnvoyWouldForward() throws Exception {
        List<CheckRequest> asked = new CopyOnWriteArrayList<>();
        int authorizer = grpcAuthorizer(asked, request -> CheckResponse.newBuilder()
                .setStatus(com.google.rpc.Status.newBuilder().setCode(0))
                .setOkResponse(OkHttpResponse.newBuilder()
                        .addQueryParametersToSet(io.envoyproxy.envoy.config.core.v3.QueryParameter.newBuilder()
                                .setKey("tenant").setValue("acme"))
                        .addQueryParametersToSet(io.envoyproxy.envoy.config.core.v3.QueryParameter.newBuilder()
                                .setKey("a").setValue("new"))
                        .addQueryParametersToRemove("token")).build());
        // Istio's DENY filter, of a policy on a request whose :path still has a token
        String denyTokens = IstioRbac.DENY_ADMIN.replace("url_path: {path: {prefix: /admin}}",
                "header: {name: \":path\", string_match: {contains: \"token=\"}}");
        int port = serveThrough(IstioRbac.first(IstioExtAuthz.SHADOW + IstioExtAuthz.grpc("5s", false) + denyTokens,
                MeshWebClientTest.virtualInbound("", """
                                  routes:
                                  - match:
                                      prefix: /secure/q
                                      query_parameters: [{name: tenant, string_match: {exact: acme}}]
                                    route: {cluster: "inbound|9080||", timeout: 0s}
                                    response_headers_to_add: [{header: {key: x-route, value: tenant}}]
                                  - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
                    """)) + "  clusters:\n" + IstioExtAuthz.cluster(authorizer, true));

        assertEquals(403, call(port, "/public?token=secret", "allow").statusCode(), "not checked: its token stays");
        HttpResponse<Buffer> changed = call(port, "/secure/q?z=1&token=secret&a=old&a=older&flag", "allow");
        assertEquals(200, changed.statusCode(), "the DENY policy sees the path the authorizer took the token off");
        assertEquals("tenant", changed.getHeader("x-route"), "clear_route_cache: routed again by its new query");
        assertEquals("/secure/q?z=1&token=secret&a=old&a=older&flag",
                asked.get(0).getAttributes().getRequest().getHttp().getPath(), "the authorizer saw the path as sent");
        assertEquals(List.of("/secure/q?a=new&flag=&tenant=acme&z=1"), appUris);
        assertEquals("/secure/q?a=new&flag=&tenant=acme&z=1", loggedWith(200).path());

        assertEquals(200, call(port, "/secure/r?token=secret", "allow").statusCode());
        assertEquals("/secure/r?a=new&tenant=acme", appUris.get(1), "the only parameter removed, the set ones added");
    }

    /**
     * The global rate limit filter after the authorizer's describes the request by the path the authorizer's query
     * parameter changes made, as Envoy's filters after ext_authz read its {@code :path}: right after it ...
     */
    @Test
    void theGlobalRateLimitFilterAfterTheAuthorizerDescribesThePathItsQueryChangesMade() throws Exception {
        assertTheRateLimitServiceGetsTheAuthorizedPath(limits -> IstioRbac.first(IstioExtAuthz.SHADOW
                + IstioExtAuthz.grpc("5s", false), MeshInboundRateLimitTest.config("5s", true, limits, false)));
    }

    /** ... and where INSERT_BEFORE the router puts it, after the fault and CORS filters. */
    @Test
    void theGlobalRateLimitFilterBeforeTheRouterDescribesThePathTheAuthorizersQueryChangesMade() throws Exception {
        assertTheRateLimitServiceGetsTheAuthorizedPath(limits -> IstioRbac.first(IstioExtAuthz.SHADOW
                + IstioExtAuthz.grpc("5s", false), MeshInboundRateLimitTest.placed(true, limits)));
    }

    /**
     * A request through {@code config} (of the rate limit service's port), with an authorizer that sets a query
     * parameter: the rate limit service's {@code PATH} descriptor has it.
     */
    private void assertTheRateLimitServiceGetsTheAuthorizedPath(java.util.function.IntFunction<String> config)
            throws Exception {
        int authorizer = grpcAuthorizer(new CopyOnWriteArrayList<>(), request -> CheckResponse.newBuilder()
                .setStatus(com.google.rpc.Status.newBuilder().setCode(0))
                .setOkResponse(OkHttpResponse.newBuilder()
                        .addQueryParametersToSet(io.envoyproxy.envoy.config.core.v3.QueryParameter.newBuilder()
                                .setKey("tenant").setValue("acme"))).build());
        List<RateLimitRequest> described = new CopyOnWriteArrayList<>();
        Server limits = IstioGlobalRateLimit.service(described, request -> RateLimitResponse.newBuilder()
                .setOverallCode(RateLimitResponse.Code.OK).build());
        try {
            int port = serveThrough(config.apply(limits.getPort()) + IstioExtAuthz.cluster(authorizer, true));

            assertEquals(200, call(port, "/secure/q?z=1", "allow").statusCode());
            assertEquals("/secure/q?tenant=acme&z=1", IstioGlobalRateLimit.path(described.get(0)));
        } finally {
            limits.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    private static HeaderValueOption option(String key, String value) {
        return HeaderValueOption.newBuilder().setHeader(HeaderValue.newBuilder().setKey(key).setValue(value)).build();
    }
}
