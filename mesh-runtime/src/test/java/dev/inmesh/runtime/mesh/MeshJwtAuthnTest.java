package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.router.IstioRbac;
import dev.inmesh.runtime.xds.IstioJwt;
import dev.inmesh.runtime.xds.IstioTracing;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.ext.web.client.HttpResponse;
import io.vertx.ext.web.client.WebClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code mesh.inbound(handler)} under Istio's "JWT authentication" task: the {@code virtualInbound} connection
 * manager leads with istiod's {@code envoy.filters.http.jwt_authn} for the RequestAuthentication (a token of the
 * issuer, or none), then, with the AuthorizationPolicy {@code requestPrincipals: ["*"]}, the RBAC filter that asks for
 * the verified principal. A bad token is answered {@code 401} before the application; without a token, the
 * RequestAuthentication alone lets the request through and the policy answers it {@code 403 RBAC: access denied}.
 */
class MeshJwtAuthnTest {
    private static final String ROUTES = """
                          routes:
                          - {match: {prefix: /}, route: {cluster: "inbound|9080||", timeout: 0s}}
            """;

    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    /** A plain client (not the mesh's), held for the whole test: Vert.x closes a client no longer referenced. */
    final WebClient plain = WebClient.create(vertx);
    /** The {@code authorization} header of each request the application got ("-" for none). */
    final List<String> appSaw = new CopyOnWriteArrayList<>();
    /** The URI of each request the application got, and its {@code access_token} parameter ("-" for none). */
    final List<String> appUris = new CopyOnWriteArrayList<>();
    Mesh mesh;
    int port;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private void start(String filters) throws Exception {
        start(filters, "");
    }

    private void start(String filters, String clusters) throws Exception {
        Path file = Files.writeString(dir.resolve("mesh.yaml"), IstioRbac.first(filters,
                MeshWebClientTest.virtualInbound("", ROUTES)) + clusters);
        mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("reviews-v1").setApp("reviews")
                .setNamespace("default").setConfigFile(file.toString()).setAdminPort(0));
        mesh.start().await(10, TimeUnit.SECONDS);
        port = vertx.createHttpServer().requestHandler(mesh.inbound(req -> {
            String auth = req.getHeader("authorization");
            appSaw.add(auth == null ? "-" : auth);
            String param = req.getParam("access_token");
            appUris.add(req.uri() + " " + (param == null ? "-" : param));
            req.response().end("app");
        })).listen(0, "127.0.0.1").await().actualPort();
    }

    private HttpResponse<Buffer> get(String token) throws Exception {
        var r = plain.get(port, "127.0.0.1", "/reviews/1").putHeader("host", "reviews:9080");
        if (token != null) {
            r.putHeader("authorization", "Bearer " + token);
        }
        return r.send().await(10, TimeUnit.SECONDS);
    }

    @Test
    void theRequestAuthenticationAloneLetsNoTokenAndAValidOneThroughAndRefusesABadOne401() throws Exception {
        start(IstioJwt.FILTER);
        HttpResponse<Buffer> none = get(null);
        assertEquals(200, none.statusCode());
        HttpResponse<Buffer> valid = get(IstioJwt.valid("alice", Map.of()));
        assertEquals(200, valid.statusCode());
        assertEquals(List.of("-", "-"), appSaw, "the verified token's header never reaches the application");

        String forged = IstioJwt.token(IstioJwt.OTHER_KEY, IstioJwt.claims("iss", IstioJwt.ISSUER, "sub", "mallory"));
        HttpResponse<Buffer> bad = get(forged);
        assertEquals(401, bad.statusCode());
        assertEquals("Jwt verification fails", bad.bodyAsString());
        assertEquals("Bearer realm=\"http://reviews:9080/reviews/1\", error=\"invalid_token\"",
                bad.getHeader("www-authenticate"));
        assertEquals(2, appSaw.size(), "the refused request never reached the application");

        String p = "http.inbound_0.0.0.0_9080.jwt_authn.";
        String stats = MeshInboundRbacTest.admin(plain, mesh.adminPort(), "/stats?filter=jwt_authn",
                p + "denied: 1");
        assertTrue(stats.contains(p + "allowed: 2\n") && stats.contains(p + "denied: 1\n"), stats);
    }

    /**
     * A token in the {@code access_token} query parameter (a default location) leaves the path once verified, as
     * Envoy's filter takes it out of {@code :path} when the provider does not forward it (Istio's
     * {@code forwardOriginalToken: false}): the application reads the query without it.
     */
    @Test
    void aVerifiedTokenInTheAccessTokenParameterNeverReachesTheApplication() throws Exception {
        start(IstioJwt.FILTER);
        String token = IstioJwt.valid("alice", Map.of());
        HttpResponse<Buffer> valid = plain.get(port, "127.0.0.1", "/reviews/1?x=1&access_token=" + token)
                .putHeader("host", "reviews:9080").send().await(10, TimeUnit.SECONDS);
        assertEquals(200, valid.statusCode());
        assertEquals(List.of("/reviews/1?x=1 -"), appUris);
    }

    /**
     * istiod's {@code remote_jwks} ({@code PILOT_JWT_ENABLE_REMOTE_JWKS=envoy}, or {@code hybrid} for a key set in the
     * mesh): the filter fetches the set through its cluster when a token needs it, keeps it for its cache duration,
     * and verifies with it; a request without a token fetches nothing.
     */
    @Test
    void aRemoteJwksIsFetchedThroughItsClusterWhenATokenNeedsItAndCached() throws Exception {
        List<String> fetched = new CopyOnWriteArrayList<>();
        int jwksPort = jwksServer(req -> {
            fetched.add(req.method() + " " + req.authority() + req.uri());
            req.response().end(IstioJwt.jwks());
        });
        start(remoteJwks("http://keycloak.auth:8080/certs", "outbound|8080||keycloak.auth.svc.cluster.local",
                "cache_duration: 300s"), jwksCluster("outbound|8080||keycloak.auth.svc.cluster.local", jwksPort));
        assertEquals(200, get(null).statusCode());
        assertTrue(fetched.isEmpty(), "no token: nothing to fetch");
        assertEquals(200, get(IstioJwt.valid("alice", Map.of())).statusCode());
        assertEquals(200, get(IstioJwt.valid("bob", Map.of())).statusCode());
        assertEquals(List.of("GET keycloak.auth:8080/certs"), fetched, "fetched once, then cached");
        String forged = IstioJwt.token(IstioJwt.OTHER_KEY, IstioJwt.claims("iss", IstioJwt.ISSUER, "sub", "mallory"));
        assertEquals("Jwt verification fails", get(forged).bodyAsString());
        assertEquals(List.of("-", "-", "-"), appSaw);
    }

    /** A key set that cannot be fetched refuses tokens with Envoy's words, and is fetched again on the next one. */
    @Test
    void aRemoteJwksThatCannotBeFetchedRefusesTokensJwksRemoteFetchIsFailed() throws Exception {
        List<String> fetched = new CopyOnWriteArrayList<>();
        int jwksPort = jwksServer(req -> {
            fetched.add(req.uri());
            if (fetched.size() == 1) {
                req.response().setStatusCode(503).end();
            } else {
                req.response().end(IstioJwt.jwks());
            }
        });
        start(remoteJwks("http://jwks.local/keys", "jwks", ""), jwksCluster("jwks", jwksPort));
        HttpResponse<Buffer> failed = get(IstioJwt.valid("alice", Map.of()));
        assertEquals(401, failed.statusCode());
        assertEquals("Jwks remote fetch is failed", failed.bodyAsString());
        assertEquals(200, get(IstioJwt.valid("alice", Map.of())).statusCode(), "a failed fetch is tried again");
        assertEquals(List.of("/keys", "/keys"), fetched);
    }

    /**
     * As Envoy's authenticator, which fetches a provider's key set only for a token that passed the checks before its
     * signature's: one that does not parse, of another issuer, or expired fetches nothing and is answered at once,
     * even while the key set cannot be fetched.
     */
    @Test
    void aTokenThatFailsTheChecksBeforeItsSignatureFetchesNoRemoteJwks() throws Exception {
        List<String> fetched = new CopyOnWriteArrayList<>();
        int jwksPort = jwksServer(req -> {
            fetched.add(req.uri());
            req.response().setStatusCode(503).end();
        });
        start(remoteJwks("http://jwks.local/keys", "jwks", ""), jwksCluster("jwks", jwksPort));
        long now = System.currentTimeMillis() / 1000;
        String foreign = IstioJwt.token(IstioJwt.KEY, IstioJwt.claims("iss", "https://other.example", "sub", "eve",
                "exp", now + 3600));
        String expired = IstioJwt.token(IstioJwt.KEY, IstioJwt.claims("iss", IstioJwt.ISSUER, "sub", "old",
                "exp", now - 3600));
        List<String> answers = new ArrayList<>();
        for (String token : List.of("not-a-jwt", foreign, expired)) {
            HttpResponse<Buffer> r = get(token);
            answers.add(r.statusCode() + " " + r.bodyAsString());
        }
        assertTrue(fetched.isEmpty(), "fetched for " + answers);
        assertEquals(List.of("401 Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
                "401 Jwt issuer is not configured", "401 Jwt is expired"), answers);
        assertEquals("Jwks remote fetch is failed", get(IstioJwt.valid("alice", Map.of())).bodyAsString());
        assertEquals(List.of("/keys"), fetched, "a token that reaches its signature's check fetches");
    }

    private int jwksServer(io.vertx.core.Handler<io.vertx.core.http.HttpServerRequest> handler) throws Exception {
        return vertx.createHttpServer().requestHandler(handler).listen(0, "127.0.0.1").await().actualPort();
    }

    /** istiod's filter with its provider's key set fetched from {@code uri} through {@code cluster}. */
    private static String remoteJwks(String uri, String cluster, String more) {
        return IstioJwt.FILTER.replaceAll("local_jwks:\\n\\s+inline_string: '[^']*'",
                "remote_jwks: {http_uri: {uri: \"" + uri + "\", cluster: \"" + cluster + "\", timeout: 5s}"
                        + (more.isEmpty() ? "" : ", " + more) + "}");
    }

    private static String jwksCluster(String name, int port) {
        return "  clusters:\n" + IstioTracing.staticCluster(name, port).indent(2);
    }

    @Test
    void withAPolicyRequiringARequestPrincipalNoTokenIsDenied403AndAValidOneReachesTheApplication()
            throws Exception {
        start(IstioJwt.FILTER + IstioJwt.REQUIRE_PRINCIPAL);
        HttpResponse<Buffer> none = get(null);
        assertEquals(403, none.statusCode());
        assertEquals("RBAC: access denied", none.bodyAsString());
        assertNull(none.getHeader("www-authenticate"));
        assertTrue(appSaw.isEmpty());

        HttpResponse<Buffer> valid = get(IstioJwt.valid("alice", Map.of()));
        assertEquals(200, valid.statusCode());
        assertEquals("app", valid.bodyAsString());
        assertEquals(List.of("-"), appSaw);
    }
}
