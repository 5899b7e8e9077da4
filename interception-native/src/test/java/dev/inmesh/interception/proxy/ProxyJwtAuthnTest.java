package dev.inmesh.interception.proxy;

import static dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.xds.IstioJwt;
import dev.inmesh.runtime.xds.IstioTracing;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.RequestOptions;
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
 * The standalone proxy runs Envoy's JWT authentication filter as istiod writes it for Istio's "JWT authentication"
 * task: a RequestAuthentication alone lets a request without a token through and refuses a bad token {@code 401}
 * ({@code jwt_authn_access_denied{...}} in the access log); with the AuthorizationPolicy {@code requestPrincipals:
 * ["*"]}, a request without a token is answered {@code 403 RBAC: access denied} and one with a valid token reaches
 * the application, without its {@code authorization} header.
 */
@Timeout(60)
class ProxyJwtAuthnTest {
    private final Vertx vertx = Vertx.vertx();
    /** The {@code authorization} header of each request the application got ("-" for none). */
    private final List<String> appSaw = new CopyOnWriteArrayList<>();
    /** The URI of each request the application got. */
    private final List<String> appUris = new CopyOnWriteArrayList<>();
    private final List<StreamInfo> logged = new CopyOnWriteArrayList<>();
    private StandaloneProxy proxy;
    private int port;
    @TempDir
    Path dir;

    @AfterEach
    void close() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private void start(String filters) throws Exception {
        start(filters, "");
    }

    /** The proxy with {@code filters}, and {@code clusters} (list items) beside the inbound one. */
    private void start(String filters, String clusters) throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> {
            String auth = req.getHeader("authorization");
            appSaw.add(auth == null ? "-" : auth);
            appUris.add(req.uri());
            req.response().end("reviews");
        }).listen(0, "127.0.0.1").await().actualPort();
        port = LoopbackProxy.freePort();
        String config = ProxyLocalRateLimitTest.inboundConfig(port, app, "", filters) + clusters;
        Path file = Files.writeString(dir.resolve("proxy.yaml"), config);
        proxy = StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, logged::add, AdminHook.NONE));
    }

    /** Status, body and {@code www-authenticate} of a GET with {@code token} as its bearer (null: none). */
    private String get(String token) throws Exception {
        HttpClient client = vertx.createHttpClient();
        try {
            RequestOptions o = new RequestOptions().setHost("127.0.0.1").setPort(port).setURI("/reviews/1")
                    .putHeader("host", "reviews:9080");
            if (token != null) {
                o.putHeader("authorization", "Bearer " + token);
            }
            return onEventLoop(vertx, () -> client.request(o).compose(req -> req.send().compose(resp -> resp.body()
                    .map(b -> resp.statusCode() + " " + b + " " + resp.getHeader("www-authenticate")))))
                    .await(10, TimeUnit.SECONDS);
        } finally {
            client.close().await(10, TimeUnit.SECONDS);
        }
    }

    private StreamInfo loggedWith(int status) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            StreamInfo s = logged.stream().filter(x -> x.responseCode() == status).findFirst().orElse(null);
            if (s != null) {
                return s;
            }
            Thread.sleep(25);
        }
        throw new AssertionError("no " + status + " logged: " + logged);
    }

    @Test
    void theRequestAuthenticationAloneLetsNoTokenThroughAndRefusesABadOne401() throws Exception {
        start(IstioJwt.FILTER);
        assertEquals("200 reviews null", get(null));
        assertEquals("200 reviews null", get(IstioJwt.valid("alice", Map.of())));
        String expired = IstioJwt.token(IstioJwt.KEY, IstioJwt.claims("iss", IstioJwt.ISSUER, "sub", "alice",
                "exp", System.currentTimeMillis() / 1000 - 3600));
        assertEquals("401 Jwt is expired Bearer realm=\"http://reviews:9080/reviews/1\", error=\"invalid_token\"",
                get(expired));
        assertEquals(List.of("-", "-"), appSaw, "the verified token's header is removed; the refused request never "
                + "reached the application");
        StreamInfo refused = loggedWith(401);
        assertEquals("jwt_authn_access_denied{Jwt_is_expired}", refused.responseCodeDetails());
        assertEquals("inbound|9080||", refused.upstreamCluster(), "counted for the route's cluster");
    }

    @Test
    void withAPolicyRequiringARequestPrincipalNoTokenIsDenied403AndAValidOneGoesThrough() throws Exception {
        start(IstioJwt.FILTER + IstioJwt.REQUIRE_PRINCIPAL);
        assertEquals("403 RBAC: access denied null", get(null));
        assertTrue(appSaw.isEmpty());
        assertEquals("rbac_access_denied_matched_policy[none]", loggedWith(403).responseCodeDetails());
        assertEquals("200 reviews null", get(IstioJwt.valid("alice", Map.of())));
        assertEquals(List.of("-"), appSaw);
        String other = IstioJwt.token(IstioJwt.OTHER_KEY, IstioJwt.claims("iss", IstioJwt.ISSUER, "sub", "alice"));
        assertTrue(get(other).startsWith("401 Jwt verification fails "));
        assertNull(logged.stream().filter(s -> s.responseCode() == 200 && s.responseCodeDetails() != null
                && s.responseCodeDetails().startsWith("jwt")).findFirst().orElse(null));
    }

    /**
     * istiod's {@code remote_jwks}: the proxy fetches the key set through its cluster when a token needs it, then
     * verifies with it, as for a request of the in-JVM mesh.
     */
    @Test
    void aRemoteJwksIsFetchedThroughItsClusterBeforeTheTokenIsVerified() throws Exception {
        List<String> fetched = new CopyOnWriteArrayList<>();
        int jwks = vertx.createHttpServer().requestHandler(req -> {
            fetched.add(req.authority() + req.uri());
            req.response().end(IstioJwt.jwks());
        }).listen(0, "127.0.0.1").await().actualPort();
        start(IstioJwt.FILTER.replaceAll("local_jwks:\\n\\s+inline_string: '[^']*'",
                "remote_jwks: {http_uri: {uri: \"https://idp.example.com/jwks\", cluster: jwks, timeout: 5s}}"),
                IstioTracing.staticCluster("jwks", jwks).indent(2));
        assertEquals("200 reviews null", get(IstioJwt.valid("alice", Map.of())));
        assertEquals(List.of("idp.example.com/jwks"), fetched);
        String other = IstioJwt.token(IstioJwt.OTHER_KEY, IstioJwt.claims("iss", IstioJwt.ISSUER, "sub", "alice"));
        assertTrue(get(other).startsWith("401 Jwt verification fails "));
        assertEquals(List.of("-"), appSaw);
    }

    /**
     * A verified token in the {@code access_token} parameter leaves the path the proxy relays, and logs, as Envoy's
     * filter takes it out of {@code :path} when its provider does not forward it.
     */
    @Test
    void aVerifiedTokenInTheAccessTokenParameterLeavesThePathRelayed() throws Exception {
        start(IstioJwt.FILTER);
        String token = IstioJwt.valid("alice", Map.of());
        HttpClient client = vertx.createHttpClient();
        try {
            RequestOptions o = new RequestOptions().setHost("127.0.0.1").setPort(port)
                    .setURI("/reviews/1?access_token=" + token + "&x=1").putHeader("host", "reviews:9080");
            assertEquals(200, onEventLoop(vertx, () -> client.request(o).compose(req -> req.send()
                    .map(resp -> resp.statusCode()))).await(10, TimeUnit.SECONDS));
        } finally {
            client.close().await(10, TimeUnit.SECONDS);
        }
        assertEquals(List.of("/reviews/1?x=1"), appUris);
        assertEquals("/reviews/1?x=1", loggedWith(200).path());
    }

    /**
     * A WebSocket upgrade, which the proxy relays itself, meets the JWT filter as any request does: with a bad token it
     * is answered {@code 401} with Envoy's {@code www-authenticate}, and never reaches the application.
     */
    @Test
    void aWebSocketUpgradeWithABadTokenIsRefused401BeforeTheProxyRelaysIt() throws Exception {
        int app = vertx.createHttpServer().requestHandler(req -> {
            appSaw.add("upgrade");
            req.response().end("no upgrade");
        }).listen(0, "127.0.0.1").await().actualPort();
        int port = LoopbackProxy.freePort();
        try (LoopbackProxy proxy = new LoopbackProxy("static_resources:\n  listeners:\n"
                + dev.inmesh.runtime.router.IstioRbac.first(IstioJwt.FILTER,
                        Http1RequestsTest.listener("http", port, "upgrade_configs: [{upgrade_type: websocket}]"))
                + Http1RequestsTest.clusterC(app))) {
            String head = LoopbackProxy.upgradeAnswer(port, "/chat", "authorization: Bearer a.b.c\r\n");
            assertTrue(head.startsWith("HTTP/1.1 401"), head);
            assertTrue(head.toLowerCase(java.util.Locale.ROOT).contains("www-authenticate: bearer "
                    + "realm=\"http://svc/chat\", error=\"invalid_token\""), head);
            assertTrue(appSaw.isEmpty());
            for (int i = 0; i < 200 && proxy.requests.isEmpty(); i++) {
                Thread.sleep(25);
            }
            logged.addAll(proxy.requests);
            assertEquals("jwt_authn_access_denied{Jwt_header_is_an_invalid_Base64url_encoded}",
                    loggedWith(401).responseCodeDetails());
        }
    }
}
