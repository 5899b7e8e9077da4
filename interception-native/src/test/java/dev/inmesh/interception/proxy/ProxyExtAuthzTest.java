package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.router.IstioExtAuthz;
import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.net.SocketAddress;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The standalone proxy runs istiod's CUSTOM authorization as Envoy does: the shadow RBAC filter marks the requests of
 * the CUSTOM policy ({@code /secure*}), and the ext_authz filter asks the HTTP authorizer, through its
 * {@code outbound|8000||...} cluster, about those only; the allowed go to the application with the authorizer's
 * headers, the denied get the authorizer's answer and never reach it, and an upgrade waits for the authorizer too.
 */
@Timeout(60)
class ProxyExtAuthzTest {
    private final Vertx vertx = Vertx.vertx();
    private final List<String> appSaw = new CopyOnWriteArrayList<>();
    private final List<String> appUris = new CopyOnWriteArrayList<>();
    private final List<String> checked = new CopyOnWriteArrayList<>();
    /** The body of each POST the application got. */
    private final List<String> appBodies = new CopyOnWriteArrayList<>();
    /** The body, content-length and x-envoy-auth-partial-body of each POST check the HTTP authorizer got. */
    private final List<String> checkedBodies = new CopyOnWriteArrayList<>();
    private final int app = vertx.createHttpServer().requestHandler(req -> {
        appSaw.add(req.path() + " " + req.getHeader("x-user"));
        appUris.add(req.uri());
        if (req.method() == io.vertx.core.http.HttpMethod.POST) {
            req.body().onSuccess(b -> {
                appBodies.add(b.toString());
                req.response().end("reviews");
            });
            return;
        }
        req.response().end("reviews");
    }).listen(0, "127.0.0.1").await().actualPort();
    private final int authorizer = vertx.createHttpServer().requestHandler(req -> {
        checked.add(req.method() + " " + req.uri());
        if (req.method() == io.vertx.core.http.HttpMethod.POST) {
            req.body().onSuccess(b -> {
                checkedBodies.add(b + " " + req.getHeader("content-length") + " "
                        + req.getHeader("x-envoy-auth-partial-body"));
                req.response().putHeader("x-user", "alice").end();
            });
            return;
        }
        if ("allow".equals(req.getHeader("x-ext-authz"))) {
            req.response().putHeader("x-user", "alice").putHeader("x-authz-decision", "allowed").end();
        } else {
            req.response().setStatusCode(401).putHeader("x-denied-reason", "no-ticket").end("who are you");
        }
    }).listen(0, "127.0.0.1").await().actualPort();

    @AfterEach
    void close() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private LoopbackProxy proxy(int port) throws Exception {
        return new LoopbackProxy("static_resources:\n  listeners:\n"
                + IstioRbac.first(IstioExtAuthz.SHADOW + IstioExtAuthz.http("5s", false),
                        Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]"))
                + Http1RequestsTest.clusterC(app) + IstioExtAuthz.cluster(authorizer, false));
    }

    /** The status, {@code x-authz-decision} and {@code x-denied-reason} headers and body of a GET through the proxy. */
    private String get(int port, String path, String verdict) throws Exception {
        HttpClient c = vertx.createHttpClient();
        try {
            return onEventLoop(vertx, () -> c.request(new RequestOptions()
                            .setServer(SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                            .setHost("svc").setPort(9080).setURI(path).putHeader("x-ext-authz", verdict))
                    .compose(req -> req.send().compose(resp -> resp.body().map(b -> resp.statusCode() + " "
                            + resp.getHeader("x-authz-decision") + " " + resp.getHeader("x-denied-reason") + " " + b))))
                    .await(10, TimeUnit.SECONDS);
        } finally {
            c.close().await(10, TimeUnit.SECONDS);
        }
    }


    /** A POST of {@code chunks} through the proxy on {@code port}, as {@link IstioExtAuthz#post}. */
    private String post(int port, String path, java.util.function.IntSupplier asked, String... chunks)
            throws Exception {
        return IstioExtAuthz.post(vertx, new RequestOptions().setServer(SocketAddress.inetSocketAddress(port,
                "127.0.0.1")).setHost("svc").setPort(9080).setURI(path), asked, chunks);
    }

    /** The proxy on {@code port} with the CUSTOM policy of {@code extAuthz}, whose authorizer is on {@code authz}. */
    private LoopbackProxy bodyProxy(int port, String extAuthz, int authz, boolean http2) throws Exception {
        return bodyProxy(port, extAuthz, authz, http2, ROUTES);
    }

    /** The one route of {@link Http1RequestsTest#listener}'s virtual host, as it writes it. */
    private static final String ROUTES = """
                          routes:
                          - match: {prefix: /}
                            route: {cluster: c}
            """;

    /** As the other {@code bodyProxy}, {@code routes} in place of {@link #ROUTES}. */
    private LoopbackProxy bodyProxy(int port, String extAuthz, int authz, boolean http2, String routes)
            throws Exception {
        return new LoopbackProxy("static_resources:\n  listeners:\n"
                + IstioRbac.first(IstioExtAuthz.SHADOW + extAuthz, Http1RequestsTest.listener("http", port, "")
                        .replace(ROUTES, routes))
                + Http1RequestsTest.clusterC(app) + IstioExtAuthz.cluster(authz, http2));
    }

    /** What a test does through the proxy on {@code port}, whose gRPC authorizer's checks are {@code asked}. */
    private interface BodyCheckCase {
        void run(int port, List<io.envoyproxy.envoy.service.auth.v3.CheckRequest> asked, LoopbackProxy proxy)
                throws Exception;
    }

    /**
     * Runs {@code test} through a proxy whose gRPC authorizer allows every request (each check added to its
     * {@code asked}), its ext_authz filter with Istio's {@code includeRequestBodyInCheck} of these settings.
     */
    private void throughGrpcBodyCheck(int maxRequestBytes, boolean allowPartialMessage, boolean packAsBytes,
                                      BodyCheckCase test) throws Exception {
        throughGrpcBodyCheck(maxRequestBytes, allowPartialMessage, packAsBytes, ROUTES, test);
    }

    /** As the other {@code throughGrpcBodyCheck}, the virtual host's {@code routes} (YAML) in place of its one. */
    private void throughGrpcBodyCheck(int maxRequestBytes, boolean allowPartialMessage, boolean packAsBytes,
                                      String routes, BodyCheckCase test) throws Exception {
        List<io.envoyproxy.envoy.service.auth.v3.CheckRequest> asked = new CopyOnWriteArrayList<>();
        io.grpc.Server grpc = grpcAuthorizer(request -> {
            asked.add(request);
            return CheckResponse.newBuilder().setStatus(com.google.rpc.Status.newBuilder().setCode(0)).build();
        });
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = bodyProxy(port, IstioExtAuthz.withBody(IstioExtAuthz.grpc("5s", false),
                maxRequestBytes, allowPartialMessage, packAsBytes), grpc.getPort(), true, routes)) {
            test.run(port, asked, proxy);
        } finally {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    /**
     * Istio's {@code includeRequestBodyInCheck} of a gRPC provider ({@code maxRequestBytes: 8},
     * {@code allowPartialMessage}): the proxy holds a body until it is whole or 8 bytes came, the authorizer gets them
     * as text with {@code x-envoy-auth-partial-body} (true when more came than it got) and their size, and the
     * application gets the whole body; a request without a body is checked at once, without either.
     */
    @Test
    void aGrpcAuthorizerGetsTheBodyHeldForItsCheckAndTheApplicationTheWholeBody() throws Exception {
        throughGrpcBodyCheck(8, true, false, (port, asked, proxy) -> {
            assertEquals("200 reviews", post(port, "/secure/a", asked::size, "héllo"));
            var whole = asked.get(0).getAttributes().getRequest().getHttp();
            assertEquals("héllo", whole.getBody());
            assertEquals(6, whole.getSize(), "the bytes that came");
            assertEquals("false", whole.getHeadersMap().get("x-envoy-auth-partial-body"));

            assertEquals("200 reviews", post(port, "/secure/b", asked::size, "0123456789", "abcdef"));
            assertEquals(2, asked.size());
            var cut = asked.get(1).getAttributes().getRequest().getHttp();
            assertEquals("01234567", cut.getBody(), "the first max_request_bytes, asked before the body ended");
            assertEquals("true", cut.getHeadersMap().get("x-envoy-auth-partial-body"));
            assertEquals(List.of("héllo", "0123456789abcdef"), appBodies, "nothing of the body is lost");

            assertEquals("200 null null reviews", get(port, "/secure/c", "allow"));
            var none = asked.get(2).getAttributes().getRequest().getHttp();
            assertTrue(none.getBody().isEmpty() && !none.getHeadersMap().containsKey("x-envoy-auth-partial-body"),
                    "no body: checked on the headers");
        });
    }

    /**
     * An ExtAuthzPerRoute, as Envoy's filter reads it by its name: the route whose entry says {@code disabled} is not
     * checked; another's check settings send their context extensions over the virtual host's and, with
     * {@code disable_request_body_buffering}, the check is made on the headers, the body going on as it streams.
     */
    @Test
    void aRoutesExtAuthzPerRouteSkipsTheCheckOrSendsContextExtensionsWithoutHoldingTheBody() throws Exception {
        String type = "\"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";
        String routes = """
                              typed_per_filter_config:
                                envoy.filters.http.ext_authz:
                                  %s
                                  check_settings: {context_extensions: {vhost: svc, route: none}}
                              routes:
                              - match: {prefix: /secure/healthz}
                                route: {cluster: c}
                                typed_per_filter_config:
                                  envoy.filters.http.ext_authz: {%s, disabled: true}
                              - match: {prefix: /}
                                route: {cluster: c}
                                typed_per_filter_config:
                                  envoy.filters.http.ext_authz:
                                    %s
                                    check_settings:
                                      context_extensions: {route: default}
                                      disable_request_body_buffering: true
                """.formatted(type, type, type);
        throughGrpcBodyCheck(8, false, false, routes, (port, asked, proxy) -> {
            assertEquals("200 reviews", post(port, "/secure/healthz", asked::size, "probe"));
            assertTrue(asked.isEmpty(), "not checked");
            assertEquals("200 reviews", post(port, "/secure/a", asked::size, "0123456789", "abcdef"),
                    "over max_request_bytes, yet not refused: no body held");
            var attributes = asked.get(0).getAttributes();
            assertEquals(java.util.Map.of("vhost", "svc", "route", "default"), attributes.getContextExtensionsMap());
            assertEquals("", attributes.getRequest().getHttp().getBody());
            assertEquals(List.of("probe", "0123456789abcdef"), appBodies);
        });
    }

    /**
     * {@code packAsBytes}: the gRPC authorizer gets the body as {@code raw_body}; without {@code allowPartialMessage}
     * a body longer than {@code maxRequestBytes}, whole or streamed, is answered {@code 413} without a check, as
     * Envoy's connection manager answers a body over the filter's buffer limit.
     */
    @Test
    void aBodyOverTheLimitWithoutPartialMessagesIsAnswered413WithoutACheck() throws Exception {
        throughGrpcBodyCheck(4, false, true, (port, asked, proxy) -> {
            assertEquals("200 reviews", post(port, "/secure/a", asked::size, "\u00ff\u00fe"));
            var http = asked.get(0).getAttributes().getRequest().getHttp();
            assertEquals(com.google.protobuf.ByteString.copyFromUtf8("\u00ff\u00fe"), http.getRawBody(),
                    "the bytes as they came");
            assertTrue(http.getBody().isEmpty());

            assertEquals("413 Payload Too Large", post(port, "/secure/a", asked::size, "abcdef"));
            assertEquals("413 Payload Too Large", post(port, "/secure/a", asked::size, "abc", "def"));
            assertEquals(1, asked.size(), "the authorizer was not asked");
            assertEquals(1, appBodies.size(), "nor the application");
            assertEquals("request_payload_too_large", proxy.logged(413).responseCodeDetails());
        });
    }

    /**
     * A {@code maxRequestBytes} above the mark at which the proxy stops reading a body no attempt takes yet: it reads
     * on up to the limit, and the authorizer gets that much.
     */
    @Test
    void aBodyIsHeldUpToALimitAboveTheProxysUsualReadAhead() throws Exception {
        int limit = 3 * dev.inmesh.runtime.router.RequestBodyStream.HIGH_WATER;
        throughGrpcBodyCheck(limit, true, false, (port, asked, proxy) -> {
            assertEquals("200 reviews", post(port, "/secure/a", asked::size, "x".repeat(limit + 10), "tail"));
            var http = asked.get(0).getAttributes().getRequest().getHttp();
            assertEquals(limit, http.getBody().length());
            assertEquals(String.valueOf(http.getSize() > limit), http.getHeadersMap().get("x-envoy-auth-partial-body"),
                    "cut when more came than it got");
            assertEquals(limit + 14, appBodies.get(0).length());
        });
    }

    /**
     * A caller that leaves while the proxy holds its body for the check (8 of its 100 bytes never came): as Envoy's
     * filter, destroyed with its stream, the authorizer is not asked, and the exchange ends as on a downstream reset
     * (DC, response code 0) instead of waiting for a body that will not come.
     */
    @Test
    void aCallerThatLeavesWhileItsBodyIsHeldEndsItsRequestWithoutACheck() throws Exception {
        throughGrpcBodyCheck(8, true, false, (port, asked, proxy) -> {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
                s.getOutputStream().write("POST /secure/a HTTP/1.1\r\nhost: svc\r\ncontent-length: 100\r\n\r\nabc"
                        .getBytes(java.nio.charset.StandardCharsets.US_ASCII));
                s.getOutputStream().flush();
                Thread.sleep(300); // the proxy has the head and holds the three bytes for the check
            }
            StreamInfo gone = proxy.logged(0);
            assertEquals("DC", ResponseFlag.format(gone.responseFlags()));
            assertEquals("downstream_remote_disconnect", gone.responseCodeDetails());
            assertEquals(List.of(), asked, "the authorizer was not asked");
        });
    }

    /** An HTTP provider's {@code includeRequestBodyInCheck}: the check request carries the body held. */
    @Test
    void anHttpAuthorizerGetsTheBodyHeldAsItsCheckRequestsBody() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = bodyProxy(port, IstioExtAuthz.withBody(IstioExtAuthz.http("5s", false), 64, false,
                false), authorizer, false)) {
            assertEquals("200 reviews", post(port, "/secure/a", checkedBodies::size, "payload"));
            assertEquals(List.of("payload 7 false"), checkedBodies);
            assertEquals(List.of("POST /check/secure/a"), checked);
            assertEquals(List.of("payload"), appBodies);
        }
    }

    /** A gRPC authorizer on loopback that answers each check as {@code decide} says. */
    static io.grpc.Server grpcAuthorizer(
            java.util.function.Function<io.envoyproxy.envoy.service.auth.v3.CheckRequest, CheckResponse> decide)
            throws java.io.IOException {
        return IstioExtAuthz.grpcAuthorizer(decide);
    }

    @Test
    void theAuthorizerAllowsWithItsHeadersDeniesWithItsAnswerAndSeesOnlyTheCustomPolicysRequests() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = proxy(port)) {
            assertEquals("200 allowed null reviews", get(port, "/secure/a?b=c", "allow"));
            assertEquals(List.of("/secure/a alice"), appSaw);
            assertEquals(List.of("GET /check/secure/a?b=c"), checked);

            assertEquals("401 null no-ticket who are you", get(port, "/secure/a", "deny"));
            assertEquals(1, appSaw.size(), "a denied request never reaches the application");
            StreamInfo denied = proxy.logged(401);
            assertEquals("ext_authz_denied", denied.responseCodeDetails());
            assertEquals("UAEX", ResponseFlag.format(denied.responseFlags()));

            assertEquals("200 null null reviews", get(port, "/public", "deny"));
            assertEquals(2, checked.size(), "the shadow policy does not name /public: not checked");
        }
    }

    /** A WebSocket upgrade, which the proxy relays itself, waits for the authorizer as any request does. */
    @Test
    void aWebSocketUpgradeTheAuthorizerDeniesIsAnsweredWithItsDenialBeforeTheProxyRelaysIt() throws Exception {
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = proxy(port)) {
            String head = LoopbackProxy.upgradeAnswer(port, "/secure/chat", "x-ext-authz: deny\r\n");
            assertTrue(head.startsWith("HTTP/1.1 401"), head);
            assertTrue(head.toLowerCase(java.util.Locale.ROOT).contains("x-denied-reason: no-ticket"), head);
            assertTrue(appSaw.isEmpty());
            assertEquals(List.of("GET /check/secure/chat"), checked);
        }
    }

    /** A gRPC authorizer that allows each request, setting its {@code tenant} parameter and removing {@code token}. */
    private static io.grpc.Server queryChangingAuthorizer() throws java.io.IOException {
        return grpcAuthorizer(request -> CheckResponse.newBuilder()
                .setStatus(com.google.rpc.Status.newBuilder().setCode(0))
                .setOkResponse(io.envoyproxy.envoy.service.auth.v3.OkHttpResponse.newBuilder()
                        .addQueryParametersToSet(io.envoyproxy.envoy.config.core.v3.QueryParameter.newBuilder()
                                .setKey("tenant").setValue("acme"))
                        .addQueryParametersToRemove("token")).build());
    }

    /** The proxy on {@code port} with the CUSTOM policy of the gRPC authorizer on {@code grpcPort}, upgrades on. */
    private LoopbackProxy grpcProxy(int port, int grpcPort) throws Exception {
        return new LoopbackProxy("static_resources:\n  listeners:\n"
                + IstioRbac.first(IstioExtAuthz.SHADOW + IstioExtAuthz.grpc("5s", false),
                        Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]"))
                + Http1RequestsTest.clusterC(app) + IstioExtAuthz.cluster(grpcPort, true));
    }

    /**
     * A gRPC authorizer's {@code query_parameters_to_set} and {@code query_parameters_to_remove} change the path the
     * proxy forwards, as Envoy's filter rewrites {@code :path}: by name, in name order.
     */
    @Test
    void aGrpcAuthorizersQueryParameterChangesAreInThePathTheProxyForwards() throws Exception {
        io.grpc.Server grpc = queryChangingAuthorizer();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = grpcProxy(port, grpc.getPort())) {
            assertEquals("200 null null reviews", get(port, "/secure/a?z=1&token=t", "allow"));
            assertEquals(List.of("/secure/a?tenant=acme&z=1"), appUris);
        } finally {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    /**
     * A WebSocket upgrade, which the proxy relays itself, goes on with the path a gRPC authorizer's query parameter
     * changes made, as any request does.
     */
    @Test
    void aWebSocketUpgradeGoesOnWithTheGrpcAuthorizersQueryParameterChanges() throws Exception {
        io.grpc.Server grpc = queryChangingAuthorizer();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = grpcProxy(port, grpc.getPort())) {
            String head = LoopbackProxy.upgradeAnswer(port, "/secure/chat?z=1&token=t", "");
            assertTrue(head.startsWith("HTTP/1.1 200"), head);
            assertEquals(List.of("/secure/chat?tenant=acme&z=1"), appUris);
        } finally {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    /**
     * istiod's CUSTOM policy of a gRPC provider on a TCP chain: the shadow RBAC network filter picks the connections
     * from 127.0.0.1 and 127.0.0.2, and the ext_authz network filter asks the gRPC authorizer about those once, before
     * anything is relayed: the one it denies is closed without an upstream connection, 127.0.0.3 is not asked.
     */
    @Test
    void aTcpChainsExtAuthzNetworkFilterAsksTheGrpcAuthorizerOnceAndClosesADeniedConnection() throws Exception {
        List<String> asked = new CopyOnWriteArrayList<>();
        List<Integer> sourcePorts = new CopyOnWriteArrayList<>();
        io.grpc.Server grpc = grpcAuthorizer(request -> {
            String source = request.getAttributes().getSource().getAddress().getSocketAddress().getAddress();
            asked.add(source + " " + request.getAttributes().getRequest().hasHttp());
            sourcePorts.add(request.getAttributes().getSource().getAddress().getSocketAddress().getPortValue());
            return CheckResponse.newBuilder()
                    .setStatus(com.google.rpc.Status.newBuilder().setCode(source.equals("127.0.0.1") ? 0 : 7)).build();
        });
        AtomicInteger upstreamConnections = new AtomicInteger();
        try (java.net.ServerSocket upstream = ProxyRbacTest.echoUpstream(upstreamConnections)) {
            int port = LoopbackProxy.freePort();
            String config = TcpRelayTest.config(port, "", "", upstream.getLocalPort()).replace("    - filters:\n",
                    "    - filters:\n" + IstioExtAuthz.tcp("5s").indent(6))
                    + IstioExtAuthz.cluster(grpc.getPort(), true);
            try (LoopbackProxy proxy = new LoopbackProxy(config)) {
                assertEquals("ping\n", ProxyRbacTest.echo(port, "127.0.0.1"));
                assertEquals(null, ProxyRbacTest.echo(port, "127.0.0.2"));
                assertEquals("ping\n", ProxyRbacTest.echo(port, "127.0.0.3"));
                assertEquals(List.of("127.0.0.1 false", "127.0.0.2 false"), asked, "once per connection, no request");
                assertTrue(sourcePorts.stream().allMatch(p -> p > 0),
                        "the source address has its port: " + sourcePorts);
                assertEquals(2, upstreamConnections.get(), "the denied connection never reaches the upstream");
            }
        } finally {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }

    /**
     * An ext_authz network filter alone on a TCP chain (an EnvoyFilter's, no RBAC filter before it, no
     * {@code filter_enabled_metadata}): every connection is checked before anything is relayed, as Envoy's filter
     * checks each new connection. Before, a chain without an RBAC or rate limit network filter ran none of its network
     * filters, and every connection went through unchecked.
     */
    @Test
    void anExtAuthzNetworkFilterWithoutAnRbacFilterBeforeItChecksEveryConnection() throws Exception {
        List<String> asked = new CopyOnWriteArrayList<>();
        io.grpc.Server grpc = grpcAuthorizer(request -> {
            String source = request.getAttributes().getSource().getAddress().getSocketAddress().getAddress();
            asked.add(source);
            return CheckResponse.newBuilder()
                    .setStatus(com.google.rpc.Status.newBuilder().setCode(source.equals("127.0.0.1") ? 0 : 7)).build();
        });
        AtomicInteger upstreamConnections = new AtomicInteger();
        try (java.net.ServerSocket upstream = ProxyRbacTest.echoUpstream(upstreamConnections)) {
            int port = LoopbackProxy.freePort();
            String filters = IstioExtAuthz.tcp("5s");
            // the ext_authz filter only, checking every connection
            filters = filters.substring(filters.indexOf("- name: envoy.filters.network.ext_authz"));
            filters = filters.substring(0, filters.indexOf("    filter_enabled_metadata:"))
                    + filters.substring(filters.indexOf("    grpc_service:"));
            String config = TcpRelayTest.config(port, "", "", upstream.getLocalPort()).replace("    - filters:\n",
                    "    - filters:\n" + filters.indent(6))
                    + IstioExtAuthz.cluster(grpc.getPort(), true);
            try (LoopbackProxy proxy = new LoopbackProxy(config)) {
                assertEquals("ping\n", ProxyRbacTest.echo(port, "127.0.0.1"));
                assertEquals(null, ProxyRbacTest.echo(port, "127.0.0.3"));
                assertEquals(List.of("127.0.0.1", "127.0.0.3"), asked);
                assertEquals(1, upstreamConnections.get(), "the denied connection never reaches the upstream");
            }
        } finally {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
    }
}
