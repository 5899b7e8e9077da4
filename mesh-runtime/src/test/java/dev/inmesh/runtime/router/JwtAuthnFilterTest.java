package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.xds.IstioJwt.claims;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.xds.IstioJwt;
import dev.inmesh.runtime.xds.IstioRateLimit;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpMethod;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Envoy's JWT authentication filter with keys and tokens made in the test, in istiod's shape (a token of the provider
 * or none) and in Envoy's other requirements: what passes, what is refused with which words and status, what a
 * verified token leaves on the request, and what the RBAC filters after it read of it.
 */
class JwtAuthnFilterTest {
    private static final long NOW = System.currentTimeMillis() / 1000;
    private static final String ROUTER = """
            - name: envoy.filters.http.router
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
            """;

    /** A request to reviews:9080, as the router gets it (route matching reads it, the filter changes its headers). */
    private static RouterRequest request(String method, String path, MultiMap headers) {
        return new RouterRequest(StreamInfo.Direction.INBOUND, HttpMethod.valueOf(method), path, "reviews:9080",
                "http", headers, null, "10.0.0.2:41000", "10.0.0.1:9080", null, "HTTP/1.1");
    }

    private static RouterRequest get(String path, String... headers) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i < headers.length; i += 2) {
            h.add(headers[i], headers[i + 1]);
        }
        return request("GET", path, h);
    }

    private static HttpConnectionManager hcm(String filters) {
        return IstioRateLimit.hcm(filters + ROUTER);
    }

    private static JwtAuthnFilter filter(String filterYaml) {
        var f = hcm(filterYaml).jwtAuthnFilter();
        return JwtAuthnFilter.compile(f.name(), f.jwtAuthn(), () -> NOW);
    }

    private static JwtAuthnFilter.Outcome run(JwtAuthnFilter f, RouterRequest r) {
        return f.authenticate(r, new MultiMapHeaders(r.headers()), null);
    }

    private static String bearer(String token) {
        return "Bearer " + token;
    }

    @Test
    void aValidBearerTokenGoesOnWithItsPayloadInTheMetadataAndWithoutItsHeader() {
        RouterRequest r = get("/reviews/1", "authorization", bearer(IstioJwt.valid("alice", Map.of())), "x-other", "kept");
        JwtAuthnFilter.Outcome o = run(filter(IstioJwt.FILTER), r);
        assertFalse(o.denied());
        @SuppressWarnings("unchecked")
        Map<String, Object> payload = (Map<String, Object>) o.metadata().get("payload");
        assertEquals(IstioJwt.ISSUER, payload.get("iss"));
        assertEquals("alice", payload.get("sub"));
        assertNull(r.headers().get("authorization"), "forward is false: the token's header is removed");
        assertEquals("kept", r.headers().get("x-other"));
    }

    /**
     * Envoy's extractor reads a header's lines as one value joined by commas and takes, after the prefix, only the run
     * of base64url characters and dots: a token followed by other text is that token, and of two lines the first
     * one's token is the one verified.
     */
    @Test
    void aTokenIsCutAtItsEndAndAHeaderOfSeveralLinesIsReadAsOneValue() {
        JwtAuthnFilter f = filter(IstioJwt.FILTER);
        String good = IstioJwt.valid("alice", Map.of());
        String expired = IstioJwt.token(IstioJwt.KEY, claims("iss", IstioJwt.ISSUER, "sub", "a", "exp", NOW - 61));
        for (String value : List.of(bearer(good) + ", other", bearer(good) + " extra", bearer(good) + ";x",
                "Bearer \"" + good + "\"")) {
            assertFalse(run(f, get("/", "authorization", value)).denied(), value);
        }
        assertFalse(run(f, get("/", "authorization", bearer(good), "authorization", bearer(expired))).denied(),
                "the first line's token is read");
        JwtAuthnFilter.Outcome o = run(f, get("/", "authorization", bearer(expired), "authorization", bearer(good)));
        assertTrue(o.denied());
        assertEquals("Jwt is expired", o.body());
    }

    @Test
    void noTokenGoesOnUnderIstiosRuleWithNothingInTheMetadata() {
        JwtAuthnFilter.Outcome o = run(filter(IstioJwt.FILTER), get("/"));
        assertFalse(o.denied());
        assertTrue(o.metadata().isEmpty());
    }

    @Test
    void aBadTokenIsRefused401WithEnvoysWordsDetailsAndWwwAuthenticate() {
        JwtAuthnFilter f = filter(IstioJwt.FILTER);
        Map<String, String> cases = new java.util.LinkedHashMap<>();
        cases.put(IstioJwt.token(IstioJwt.KEY, claims("iss", IstioJwt.ISSUER, "sub", "a", "exp", NOW - 61)),
                "Jwt is expired");
        cases.put(IstioJwt.token(IstioJwt.KEY, claims("iss", IstioJwt.ISSUER, "sub", "a", "nbf", NOW + 61)),
                "Jwt not yet valid");
        cases.put(IstioJwt.token(IstioJwt.KEY, claims("iss", "someone-else", "sub", "a")),
                "Jwt issuer is not configured");
        cases.put(IstioJwt.token(IstioJwt.OTHER_KEY, claims("iss", IstioJwt.ISSUER, "sub", "a")),
                "Jwt verification fails");
        cases.put("not-a-jwt", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections");
        cases.forEach((token, words) -> {
            RouterRequest r = get("/reviews/1?x=1", "authorization", bearer(token));
            JwtAuthnFilter.Outcome o = run(f, r);
            assertTrue(o.denied(), words);
            assertEquals(401, o.code(), words);
            assertEquals(words, o.body());
            assertEquals("jwt_authn_access_denied{" + words.replace(' ', '_') + "}", o.details());
            assertEquals("Bearer realm=\"http://reviews:9080/reviews/1?x=1\", error=\"invalid_token\"",
                    o.wwwAuthenticate());
            assertEquals(bearer(token), r.headers().get("authorization"), "a refused request keeps its header");
        });
        // within the clock skew (60 s by default), a token just expired still passes
        String late = IstioJwt.token(IstioJwt.KEY, claims("iss", IstioJwt.ISSUER, "sub", "a", "exp", NOW - 30));
        assertFalse(run(f, get("/", "authorization", bearer(late))).denied());
    }

    /**
     * A malformed token is refused with the words of the jwt_verify_lib current Envoy links, which names what is wrong
     * (which part is not base64url, which is not JSON, which claim has the wrong type) where an older one said
     * "invalid Base64url input or an invalid JSON" for all of them; a section left empty is a token of the wrong
     * form, and {@code iat} and {@code jti} are checked as {@code exp} and {@code nbf} are.
     */
    @Test
    void aMalformedTokenIsRefusedWithTheWordsOfCurrentJwtVerifyLibNamingWhatIsWrong() {
        JwtAuthnFilter f = filter(IstioJwt.FILTER);
        String header = b64("{\"alg\":\"RS256\",\"kid\":\"k1\"}");
        String payload = b64("{\"iss\":\"" + IstioJwt.ISSUER + "\",\"sub\":\"a\"}");
        Map<String, String> cases = new java.util.LinkedHashMap<>();
        cases.put(header + ".." + "c2ln", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections");
        cases.put(header + "." + payload + ".", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections");
        cases.put("a.b.c", "Jwt header is an invalid Base64url encoded");
        cases.put(b64("not json") + "." + payload + ".c2ln", "Jwt header is an invalid JSON");
        cases.put(b64("{\"kid\":\"k1\"}") + "." + payload + ".c2ln",
                "Jwt header [alg] field is required and must be a string");
        cases.put(b64("{\"alg\":\"none\"}") + "." + payload + ".c2ln", "Jwt header [alg] is not supported");
        cases.put(header + ".a.c2ln", "Jwt payload is an invalid Base64url encoded");
        cases.put(header + "." + b64("[1]") + ".c2ln", "Jwt payload is an invalid JSON");
        cases.put(header + "." + b64("{\"iss\":1}") + ".c2ln", "Jwt payload [iss] field is not a string");
        cases.put(header + "." + b64("{\"sub\":true}") + ".c2ln", "Jwt payload [sub] field is not a string");
        cases.put(header + "." + b64("{\"iat\":\"now\"}") + ".c2ln", "Jwt payload [iat] field is not an integer");
        cases.put(header + "." + b64("{\"iat\":-1}") + ".c2ln",
                "Jwt payload [iat] field is not a positive 64 bit integer");
        cases.put(header + "." + b64("{\"nbf\":\"x\"}") + ".c2ln", "Jwt payload [nbf] field is not an integer");
        cases.put(header + "." + b64("{\"exp\":-5}") + ".c2ln",
                "Jwt payload [exp] field is not a positive 64 bit integer");
        cases.put(header + "." + b64("{\"jti\":7}") + ".c2ln", "Jwt payload [jti] field is not a string");
        cases.put(header + "." + b64("{\"aud\":[1]}") + ".c2ln",
                "Jwt payload [aud] field is not a string or string list");
        // (a "!" would end the token, as Envoy's extractor cuts it: five characters cannot be base64url)
        cases.put(header + "." + payload + ".c2lnx", "Jwt signature is an invalid Base64url encoded");
        cases.forEach((token, words) -> {
            JwtAuthnFilter.Outcome o = run(f, get("/", "authorization", bearer(token)));
            assertEquals(words, o.body(), token);
            assertEquals(401, o.code(), token);
            assertEquals("jwt_authn_access_denied{" + words.replace(' ', '_') + "}", o.details());
        });
        // base64url with its padding is still base64url, as jwt_verify_lib decodes it: such a token parses, and only
        // its signature (of another key's, here none at all) is wrong; from a location without a value prefix, as
        // after a prefix the "=" would end the token
        assertEquals(35, header.length(), "a header that takes one padding character");
        assertEquals("Jwt verification fails",
                run(f, get("/?access_token=" + header + "=." + payload + ".c2ln")).body());
    }

    /**
     * jwt_verify_lib reads of a token's header only {@code alg} and {@code kid}: other members, whatever their type,
     * and a {@code crit} list change nothing, so a token Envoy accepts is not refused for a header a stricter JOSE
     * library would not take.
     */
    @Test
    void aHeaderIsReadForItsAlgAndKidOnlyAsJwtVerifyLibReadsIt() throws Exception {
        String header = b64("{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":1,\"cty\":[],\"crit\":[\"x-ours\"],"
                + "\"x-ours\":true}");
        String payload = b64("{\"iss\":\"" + IstioJwt.ISSUER + "\",\"sub\":\"f\",\"exp\":" + (NOW + 600) + "}");
        byte[] input = (header + "." + payload).getBytes(StandardCharsets.US_ASCII);
        String signature = new com.nimbusds.jose.crypto.RSASSASigner(IstioJwt.KEY).sign(
                new com.nimbusds.jose.JWSHeader(com.nimbusds.jose.JWSAlgorithm.RS256), input).toString();
        String token = header + "." + payload + "." + signature;
        assertEquals("f", sub(run(filter(IstioJwt.FILTER), get("/", "authorization", bearer(token)))));
    }

    /**
     * jwt_verify_lib verifies an HMAC token with an octet key of any length, as HMAC takes any secret: a provider whose
     * JWKS holds a short secret (here 128 bits) still accepts the tokens it signs, and refuses others.
     */
    @Test
    void anHmacTokenIsVerifiedWithAnOctetKeyOfAnyLength() throws Exception {
        byte[] secret = "sixteen byte key".getBytes(StandardCharsets.US_ASCII);
        String jwks = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\""
                + Base64.getUrlEncoder().withoutPadding().encodeToString(secret) + "\"}]}";
        JwtAuthnFilter f = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(), jwks));
        String payload = b64("{\"iss\":\"" + IstioJwt.ISSUER + "\",\"sub\":\"h\",\"exp\":" + (NOW + 600) + "}");
        for (String alg : List.of("HS256", "HS384", "HS512")) {
            String input = b64("{\"alg\":\"" + alg + "\",\"kid\":\"h1\"}") + "." + payload;
            javax.crypto.Mac mac = javax.crypto.Mac.getInstance("HmacSHA" + alg.substring(2));
            mac.init(new javax.crypto.spec.SecretKeySpec(secret, mac.getAlgorithm()));
            String token = input + "." + Base64.getUrlEncoder().withoutPadding().encodeToString(
                    mac.doFinal(input.getBytes(StandardCharsets.US_ASCII)));
            assertEquals("h", sub(run(f, get("/", "authorization", bearer(token)))), alg);
            String forged = token.substring(0, token.length() - 2) + (token.endsWith("AA") ? "BB" : "AA");
            assertEquals("Jwt verification fails", run(f, get("/", "authorization", bearer(forged))).body(), alg);
        }
    }

    /**
     * An {@code OKP} key on curve Ed25519 verifies {@code EdDSA} tokens, as jwt_verify_lib's does; one with another
     * {@code alg} is not a key (the JWKS then has none).
     */
    @Test
    void anEdDsaTokenIsVerifiedWithAnEd25519Key() throws Exception {
        java.security.KeyPairGenerator gen = java.security.KeyPairGenerator.getInstance("Ed25519");
        java.security.KeyPair ours = gen.generateKeyPair();
        java.security.KeyPair other = gen.generateKeyPair();
        byte[] spki = ours.getPublic().getEncoded(); // the raw key is the last 32 bytes of its SubjectPublicKeyInfo
        String x = Base64.getUrlEncoder().withoutPadding().encodeToString(
                java.util.Arrays.copyOfRange(spki, spki.length - 32, spki.length));
        String jwks = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"e1\",\"x\":\"" + x + "\"}]}";
        JwtAuthnFilter f = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(), jwks));
        String input = b64("{\"alg\":\"EdDSA\",\"kid\":\"e1\"}") + "."
                + b64("{\"iss\":\"" + IstioJwt.ISSUER + "\",\"sub\":\"ed\",\"exp\":" + (NOW + 600) + "}");
        assertEquals("ed", sub(run(f, get("/", "authorization", bearer(input + "." + ed25519(ours, input))))));
        assertEquals("Jwt verification fails",
                run(f, get("/", "authorization", bearer(input + "." + ed25519(other, input)))).body());
        JwtAuthnFilter wrongAlg = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(),
                jwks.replace("\"kid\"", "\"alg\":\"ES256\",\"kid\"")));
        assertEquals("Jwks doesn't have any valid public key",
                run(wrongAlg, get("/", "authorization", bearer(input + "." + ed25519(ours, input)))).body());
    }

    /**
     * A JWKS is read key by key as jwt_verify_lib reads it: a key it refuses (an RSA key without {@code n}, or with
     * an even modulus) is left out and the others verify; an RSA key it takes with a modulus the JDK refuses (under
     * 512 bits) is still a key, of its {@code kid}, that verifies nothing; an EC key without {@code crv} is on its
     * {@code alg}'s curve. So istiod's stand-in for a JWKS it could not fetch ({@code CreateFakeJwks}: the key
     * {@code abc} whose modulus is the bytes of {@code Error-IstiodFailedToFetchJwksUri-<jwksUri>}) gets Envoy's words.
     */
    @Test
    void aJwksIsReadKeyByKeyAsJwtVerifyLibReadsIt() throws Exception {
        String valid = IstioJwt.valid("alice", Map.of());
        String broken = "{\"kty\":\"RSA\",\"kid\":\"k1\",\"e\":\"AQAB\"}";
        JwtAuthnFilter withBroken = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(),
                IstioJwt.jwks().replace("{\"keys\":[", "{\"keys\":[" + broken + ",")));
        assertEquals("alice", sub(run(withBroken, get("/", "authorization", bearer(valid)))));

        JwtAuthnFilter even = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(),
                istiodFakeJwks("https://example.com/.well-known/jwks.json")));
        assertEquals("Jwks doesn't have any valid public key",
                run(even, get("/", "authorization", bearer(valid))).body(), "an even modulus is no RSA key");
        JwtAuthnFilter small = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(), istiodFakeJwks("https://a.io/k")));
        assertEquals("Jwks doesn't have key to match kid or alg from Jwt",
                run(small, get("/", "authorization", bearer(valid))).body());
        String noKid = IstioJwt.token(new com.nimbusds.jose.jwk.RSAKey.Builder(IstioJwt.KEY).keyID(null).build(),
                claims("iss", IstioJwt.ISSUER, "sub", "a"));
        assertEquals("Jwt verification fails", run(small, get("/", "authorization", bearer(noKid))).body());

        var ec = new com.nimbusds.jose.jwk.gen.ECKeyGenerator(com.nimbusds.jose.jwk.Curve.P_384).keyID("e1")
                .generate();
        String ecJwks = "{\"keys\":[" + ec.toPublicJWK().toJSONString().replace("\"crv\":\"P-384\",", "")
                .replace("{", "{\"alg\":\"ES384\",") + "]}";
        com.nimbusds.jwt.SignedJWT es = new com.nimbusds.jwt.SignedJWT(new com.nimbusds.jose.JWSHeader.Builder(
                com.nimbusds.jose.JWSAlgorithm.ES384).keyID("e1").build(), new com.nimbusds.jwt.JWTClaimsSet.Builder()
                .issuer(IstioJwt.ISSUER).subject("ec").build());
        es.sign(new com.nimbusds.jose.crypto.ECDSASigner(ec));
        JwtAuthnFilter noCrv = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(), ecJwks));
        assertEquals("ec", sub(run(noCrv, get("/", "authorization", bearer(es.serialize())))), ecJwks);
    }

    /**
     * A JWKS in jwt_verify_lib's X.509 form (Google's service account keys: PEM certificates by their {@code kid})
     * verifies tokens with each certificate's RSA key; a member that is not such a certificate leaves no key.
     */
    @Test
    void aJwksOfX509CertificatesByKidVerifiesWithTheirKeys() throws Exception {
        var cert = new org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder(
                new javax.security.auth.x500.X500Principal("CN=jwt"), java.math.BigInteger.ONE,
                new java.util.Date(NOW * 1000 - 3_600_000), new java.util.Date(NOW * 1000 + 3_600_000),
                new javax.security.auth.x500.X500Principal("CN=jwt"), IstioJwt.KEY.toRSAPublicKey())
                .build(new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withRSA")
                        .build(IstioJwt.KEY.toPrivateKey()));
        String pem = "-----BEGIN CERTIFICATE-----\n"
                + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(cert.getEncoded())
                + "\n-----END CERTIFICATE-----\n";
        String jwks = "{\"k1\":\"" + pem.replace("\n", "\\n") + "\"}";
        JwtAuthnFilter f = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(), jwks.replace("'", "''")));
        assertEquals("alice", sub(run(f, get("/", "authorization", bearer(IstioJwt.valid("alice", Map.of()))))));
        String otherKid = IstioJwt.token(new com.nimbusds.jose.jwk.RSAKey.Builder(IstioJwt.KEY).keyID("k2").build(),
                claims("iss", IstioJwt.ISSUER, "sub", "a"));
        assertEquals("Jwks doesn't have key to match kid or alg from Jwt",
                run(f, get("/", "authorization", bearer(otherKid))).body());
        JwtAuthnFilter notAll = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(),
                jwks.replace("}", ",\"k2\":\"not a certificate\"}")));
        assertEquals("Jwks doesn't have any valid public key",
                run(notAll, get("/", "authorization", bearer(IstioJwt.valid("alice", Map.of())))).body());
    }

    /** istiod's {@code CreateFakeJwks}: the JWKS it inlines when it could not fetch {@code jwksUri}. */
    private static String istiodFakeJwks(String jwksUri) {
        String n = Base64.getUrlEncoder().withoutPadding().encodeToString(
                ("Error-IstiodFailedToFetchJwksUri-" + jwksUri).getBytes(StandardCharsets.UTF_8));
        return "{\"keys\":[ {\"e\":\"AQAB\",\"kid\":\"abc\",\"kty\":\"RSA\",\"n\":\"" + n + "\"}]}";
    }

    private static String ed25519(java.security.KeyPair key, String input) throws Exception {
        java.security.Signature s = java.security.Signature.getInstance("Ed25519");
        s.initSign(key.getPrivate());
        s.update(input.getBytes(StandardCharsets.US_ASCII));
        return Base64.getUrlEncoder().withoutPadding().encodeToString(s.sign());
    }

    private static String b64(String json) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(json.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void aTokenForAnotherAudienceIsRefused403() {
        JwtAuthnFilter f = filter(IstioJwt.filter("audiences: [https://bookinfo.com/]"));
        String other = IstioJwt.valid("a", Map.of("aud", "ratings.com"));
        JwtAuthnFilter.Outcome o = run(f, get("/", "authorization", bearer(other)));
        assertEquals(403, o.code());
        assertEquals("Audiences in Jwt are not allowed", o.body());
        // jwt_verify_lib compares audiences without their scheme and last slash
        String ours = IstioJwt.valid("a", Map.of("aud", List.of("x", "bookinfo.com")));
        assertFalse(run(f, get("/", "authorization", bearer(ours))).denied());
    }

    /**
     * A {@code provider_and_audiences} without audiences is Envoy's plain {@code provider_name}: the provider's own
     * audiences still hold (it did not open the provider to every audience); with audiences, they replace the
     * provider's.
     */
    @Test
    void providerAndAudiencesWithoutAudiencesKeepsTheProvidersAudiences() {
        String filter = IstioJwt.filter("audiences: [bookinfo.com]").replaceAll("(?s)requires:.*?allow_missing: \\{\\}",
                "requires: {provider_and_audiences: {provider_name: origins-0%s}}");
        String other = IstioJwt.valid("a", Map.of("aud", "ratings.com"));
        JwtAuthnFilter none = filter(filter.formatted(""));
        assertEquals("Audiences in Jwt are not allowed", run(none, get("/", "authorization", bearer(other))).body());
        assertFalse(run(none, get("/", "authorization",
                bearer(IstioJwt.valid("a", Map.of("aud", "bookinfo.com"))))).denied());
        JwtAuthnFilter listed = filter(filter.formatted(", audiences: [ratings.com]"));
        assertFalse(run(listed, get("/", "authorization", bearer(other))).denied());
    }

    /**
     * jwt_verify_lib skips a key for its {@code kid} only when both the token's and the key's are non-empty: an empty
     * {@code kid} (on either side) names no key, so every key of the token's algorithm is tried.
     */
    @Test
    void anEmptyKidOnTheTokenOrTheKeyNamesNoKeySoEveryKeyIsTried() throws Exception {
        com.nimbusds.jose.jwk.RSAKey blank = new com.nimbusds.jose.jwk.RSAKey.Builder(IstioJwt.KEY).keyID("").build();
        String noKid = IstioJwt.token(blank, claims("iss", IstioJwt.ISSUER, "sub", "a", "exp", NOW + 600));
        assertEquals("a", sub(run(filter(IstioJwt.FILTER), get("/", "authorization", bearer(noKid)))),
                "a token whose kid is empty is verified by the JWKS's key k1");
        JwtAuthnFilter blankKey = filter(IstioJwt.FILTER.replace(IstioJwt.jwks(),
                new com.nimbusds.jose.jwk.JWKSet(blank.toPublicJWK()).toString()));
        assertEquals("a", sub(run(blankKey, get("/", "authorization", bearer(IstioJwt.valid("a", Map.of()))))),
                "a key whose kid is empty verifies a token of kid k1");
    }

    @Test
    void aRequiredProviderRefusesAMissingToken401WithoutAnInvalidTokenError() {
        JwtAuthnFilter f = filter(IstioJwt.FILTER.replaceAll("(?s)requires:.*?allow_missing: \\{\\}",
                "requires: {provider_name: origins-0}"));
        JwtAuthnFilter.Outcome o = run(f, get("/productpage"));
        assertEquals(401, o.code());
        assertEquals("Jwt is missing", o.body());
        assertEquals("jwt_authn_access_denied{Jwt_is_missing}", o.details());
        assertEquals("Bearer realm=\"http://reviews:9080/productpage\"", o.wwwAuthenticate());
        // the scheme x-forwarded-proto says and the path x-envoy-original-path keeps, as Envoy's original URI
        JwtAuthnFilter.Outcome forwarded = run(f, get("/productpage", "x-forwarded-proto", "https",
                "x-envoy-original-path", "/shop/productpage"));
        assertEquals("Bearer realm=\"https://reviews:9080/shop/productpage\"", forwarded.wwwAuthenticate());
    }

    @Test
    void allowMissingStillRefusesABadTokenWhereAllowMissingOrFailedLetsItThrough() {
        String bad = IstioJwt.token(IstioJwt.OTHER_KEY, claims("iss", IstioJwt.ISSUER, "sub", "a"));
        assertTrue(run(filter(IstioJwt.FILTER), get("/", "authorization", bearer(bad))).denied());
        JwtAuthnFilter failedToo = filter(IstioJwt.FILTER.replace("- allow_missing: {}",
                "- allow_missing_or_failed: {}"));
        JwtAuthnFilter.Outcome o = run(failedToo, get("/", "authorization", bearer(bad)));
        assertFalse(o.denied());
        assertTrue(o.metadata().isEmpty(), "a failed token leaves nothing for the RBAC filters");
        assertFalse(run(failedToo, get("/")).denied());
    }

    /**
     * istiod's shape for two issuers: either provider's token, or none, but never a bad one; a request that fails is
     * answered with the most telling failure (a bad signature over an issuer the other provider does not know).
     */
    @Test
    void istiosTwoIssuerRuleTakesEitherProvidersTokenAndAnswersTheMostTellingFailure() {
        String second = "other@secure.istio.io";
        JwtAuthnFilter f = filter("""
                - name: envoy.filters.http.jwt_authn
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
                    providers:
                      origins-0: {issuer: %s, local_jwks: {inline_string: '%s'}, payload_in_metadata: payload}
                      origins-1: {issuer: %s, local_jwks: {inline_string: '%s'}, payload_in_metadata: payload}
                    rules:
                    - match: {prefix: /}
                      requires:
                        requires_any:
                          requirements:
                          - provider_name: origins-0
                          - provider_name: origins-1
                          - requires_all:
                              requirements:
                              - requires_any: {requirements: [{provider_name: origins-0}, {allow_missing: {}}]}
                              - requires_any: {requirements: [{provider_name: origins-1}, {allow_missing: {}}]}
                """.formatted(IstioJwt.ISSUER, IstioJwt.jwks(), second,
                new com.nimbusds.jose.jwk.JWKSet(IstioJwt.OTHER_KEY.toPublicJWK())));
        String ofSecond = IstioJwt.token(IstioJwt.OTHER_KEY, claims("iss", second, "sub", "b"));
        assertEquals("b", sub(run(f, get("/", "authorization", bearer(ofSecond)))));
        assertEquals("a", sub(run(f, get("/", "authorization", bearer(IstioJwt.valid("a", Map.of()))))));
        assertFalse(run(f, get("/")).denied());
        String unknown = IstioJwt.token(IstioJwt.KEY, claims("iss", "nobody", "sub", "c"));
        assertEquals("Jwt issuer is not configured", run(f, get("/", "authorization", bearer(unknown))).body());
        String forged = IstioJwt.token(IstioJwt.OTHER_KEY, claims("iss", IstioJwt.ISSUER, "sub", "c"));
        assertEquals("Jwt verification fails", run(f, get("/", "authorization", bearer(forged))).body());

        // allow_missing on its own reads every provider's tokens, as Envoy's: a bad one still fails
        JwtAuthnFilter alone = filter(IstioJwt.FILTER.replaceAll("(?s)requires:.*?allow_missing: \\{\\}",
                "requires: {allow_missing: {}}"));
        assertFalse(run(alone, get("/")).denied());
        assertEquals("Jwt verification fails", run(alone, get("/", "authorization", bearer(forged))).body());
        assertEquals("a", sub(run(alone, get("/", "authorization", bearer(IstioJwt.valid("a", Map.of()))))));
    }

    @Test
    void tokensAreReadFromTheAccessTokenParameterByDefaultAndFromConfiguredLocations() {
        String token = IstioJwt.valid("bob", Map.of());
        JwtAuthnFilter.Outcome o = run(filter(IstioJwt.FILTER), get("/r?access_token=" + token));
        assertEquals("bob", sub(o));
        assertTrue(run(filter(IstioJwt.FILTER), get("/r?access_token=garbage")).denied());

        JwtAuthnFilter custom = filter(IstioJwt.filter("""
                from_headers: [{name: x-jwt-assertion, value_prefix: "Token "}]
                from_params: [jwt]
                """));
        RouterRequest r = get("/", "x-jwt-assertion", "Token " + token);
        assertEquals("bob", sub(run(custom, r)));
        assertNull(r.headers().get("x-jwt-assertion"), "its header is removed");
        assertEquals("bob", sub(run(custom, get("/?jwt=" + token))));
        // with locations configured, the default ones are not read: a bad bearer token there is no token at all
        assertFalse(run(custom, get("/", "authorization", bearer("garbage"))).denied());
        assertTrue(run(custom, get("/", "x-jwt-assertion", "Token garbage")).denied());
    }

    /**
     * As Envoy's filter, a verified token's query parameter leaves the path its provider does not {@code forward} it
     * in: the query is rebuilt from the parameters left (by name, decoded, as Envoy writes it), or dropped; with
     * {@code forward} it stays, and so does a refused request's.
     */
    @Test
    void aVerifiedTokensQueryParameterLeavesThePathUnlessForwarded() {
        String token = IstioJwt.valid("bob", Map.of());
        RbacFilter.Chain chain = RbacFilter.Chain.compile(hcm(IstioJwt.FILTER));
        RouterRequest r = get("/r?z=1&access_token=" + token + "&a=%41b&z=2");
        assertNull(authorize(chain, r));
        assertEquals("/r?a=Ab&z=1&z=2", r.path(), "Envoy's QueryParamsMulti: by name, values decoded");
        RouterRequest only = get("/r?access_token=" + token);
        assertNull(authorize(chain, only));
        assertEquals("/r", only.path());
        JwtAuthnFilter.Outcome o = run(filter(IstioJwt.FILTER), get("/r?access_token=" + token));
        assertEquals(java.util.Set.of("access_token"), o.tokenParameters());

        RouterRequest forwarded = get("/r?b=2&access_token=" + token);
        assertNull(authorize(RbacFilter.Chain.compile(hcm(IstioJwt.filter("forward: true"))), forwarded));
        assertEquals("/r?b=2&access_token=" + token, forwarded.path());
        RouterRequest bad = get("/r?access_token=x.y.z");
        assertEquals(401, authorize(chain, bad).status());
        assertEquals("/r?access_token=x.y.z", bad.path());
        assertEquals("/p?a=1", JwtAuthnFilter.withoutParameters("/p?a=1", java.util.Set.of("access_token")));
        assertEquals("/p?a=&q=x+y", JwtAuthnFilter.withoutParameters("/p?q=x+y&a&jwt=t", java.util.Set.of("jwt")),
                "a + stays a +, a name alone gets an empty value, as Envoy's");
    }

    @Test
    void aTokenIsReadFromAConfiguredCookieQuotedOrNotTheFirstOfItsNameWinning() {
        String token = IstioJwt.valid("bob", Map.of());
        JwtAuthnFilter cookies = filter(IstioJwt.filter("""
                from_cookies: [jwt]
                """));
        assertEquals("bob", sub(run(cookies, get("/", "cookie", "a=1; jwt=" + token + "; b=2"))));
        assertEquals("bob", sub(run(cookies, get("/", "cookie", "jwt=\"" + token + "\""))));
        assertEquals("bob", sub(run(cookies, get("/", "cookie", "jwt=" + token, "cookie", "jwt=garbage"))));
        assertTrue(run(cookies, get("/", "cookie", "jwt=garbage; jwt=" + token)).denied());
        // another cookie's name is no location
        assertFalse(run(cookies, get("/", "cookie", "token=garbage")).denied());
    }

    @Test
    void forwardKeepsTheTokenAndThePayloadAndClaimHeadersAreWrittenOverTheClientsOwn() {
        JwtAuthnFilter f = filter(IstioJwt.filter("""
                forward: true
                forward_payload_header: x-jwt-payload
                claim_to_headers:
                - {header_name: x-jwt-group, claim_name: org.group}
                - {header_name: x-jwt-level, claim_name: level}
                """));
        String token = IstioJwt.valid("carol", Map.of("org", Map.of("group", "dev"), "level", 3L));
        RouterRequest r = get("/", "authorization", bearer(token), "x-jwt-payload", "forged", "x-jwt-group", "forged");
        assertFalse(run(f, r).denied());
        assertEquals(bearer(token), r.headers().get("authorization"));
        assertEquals(List.of(token.split("\\.")[1]), r.headers().getAll("x-jwt-payload"));
        assertEquals(List.of("dev"), r.headers().getAll("x-jwt-group"));
        assertEquals("3", r.headers().get("x-jwt-level"));
        String json = new String(Base64.getUrlDecoder().decode(r.headers().get("x-jwt-payload")),
                StandardCharsets.UTF_8);
        assertTrue(json.contains("\"sub\":\"carol\""), json);

        // without a verified token, the client's own copies are still gone
        RouterRequest none = get("/", "x-jwt-payload", "forged");
        assertFalse(run(f, none).denied());
        assertNull(none.headers().get("x-jwt-payload"));

        JwtAuthnFilter padded = filter(IstioJwt.filter("""
                forward_payload_header: x-jwt-payload
                pad_forward_payload_header: true
                """));
        RouterRequest p = get("/", "authorization", bearer(token));
        run(padded, p);
        assertEquals(0, p.headers().get("x-jwt-payload").length() % 4, "padded to a multiple of 4");
    }

    @Test
    void aListOrObjectClaimGoesToItsHeaderAsItsJsonInBase64AsEnvoysSince129() {
        JwtAuthnFilter f = filter(IstioJwt.filter("""
                claim_to_headers:
                - {header_name: x-roles, claim_name: realm.roles}
                - {header_name: x-realm, claim_name: realm}
                """));
        String token = IstioJwt.valid("carol", Map.of("realm", Map.of("roles", List.of("admin", "dev"),
                "level", 2L, "a \"quoted\" name", true)));
        RouterRequest r = get("/", "authorization", bearer(token));
        assertFalse(run(f, r).denied());
        assertEquals(Base64.getEncoder().encodeToString("[\"admin\",\"dev\"]".getBytes(StandardCharsets.UTF_8)),
                r.headers().get("x-roles"));
        assertEquals("{\"a \\\"quoted\\\" name\":true,\"level\":2,\"roles\":[\"admin\",\"dev\"]}",
                new String(Base64.getDecoder().decode(r.headers().get("x-realm")), StandardCharsets.UTF_8));
    }

    @Test
    void aCorsPreflightGoesOnUncheckedAsIstioAsks() {
        JwtAuthnFilter f = filter(IstioJwt.FILTER.replaceAll("(?s)requires:.*?allow_missing: \\{\\}",
                "requires: {provider_name: origins-0}"));
        RouterRequest preflight = request("OPTIONS", "/", MultiMap.caseInsensitiveMultiMap().add("origin", "https://a.com")
                .add("access-control-request-method", "GET"));
        assertFalse(run(f, preflight).denied());
        assertTrue(run(f, request("OPTIONS", "/", MultiMap.caseInsensitiveMultiMap())).denied());
    }

    @Test
    void spaceDelimitedClaimsBecomeListsInTheMetadata() {
        String token = IstioJwt.valid("dave", Map.of("scope", "read write"));
        JwtAuthnFilter.Outcome o = run(filter(IstioJwt.FILTER), get("/", "authorization", bearer(token)));
        assertEquals(List.of("read", "write"), ((Map<?, ?>) o.metadata().get("payload")).get("scope"));
    }

    /**
     * Envoy builds a space-delimited claim's list from its words as it splits them: a string without any (empty, or
     * spaces only) stays the string it was, which a {@code string_match} still reads.
     */
    @Test
    void aSpaceDelimitedClaimWithoutWordsStaysTheStringItWas() {
        for (String blank : List.of("", "  ")) {
            String token = IstioJwt.valid("dave", Map.of("scope", blank, "permission", " edit  "));
            Map<?, ?> payload = (Map<?, ?>) run(filter(IstioJwt.FILTER), get("/", "authorization", bearer(token)))
                    .metadata().get("payload");
            assertEquals(blank, payload.get("scope"));
            assertEquals(List.of("edit"), payload.get("permission"));
        }
    }

    @Test
    void istiosRbacFiltersReadTheVerifiedPrincipalAndClaimsAfterTheJwtFilter() {
        RbacFilter.Chain chain = RbacFilter.Chain.compile(hcm(IstioJwt.FILTER + IstioJwt.REQUIRE_PRINCIPAL
                + IstioJwt.REQUIRE_GROUP));
        RbacFilter.Denial noToken = authorize(chain, get("/"));
        assertEquals(403, noToken.status());
        assertEquals("RBAC: access denied", noToken.body());
        assertEquals("rbac_access_denied_matched_policy[none]", noToken.details());

        RbacFilter.Denial bad = authorize(chain, get("/", "authorization", bearer("x.y.z")));
        assertEquals(401, bad.status(), "the JWT filter answers first");

        assertNull(authorize(chain, get("/", "authorization",
                bearer(IstioJwt.valid("erin", Map.of("groups", List.of("users", "admins")))))));
        assertNull(authorize(chain, get("/", "authorization",
                bearer(IstioJwt.valid("erin", Map.of("groups", "admins"))))), "a string claim matches too");
        RbacFilter.Denial users = authorize(chain, get("/", "authorization",
                bearer(IstioJwt.valid("erin", Map.of("groups", List.of("users"))))));
        assertEquals("rbac_access_denied_matched_policy[none]", users.details(), "the group's policy denies");
    }

    private static RbacFilter.Denial authorize(RbacFilter.Chain chain, RouterRequest r) {
        return chain.authorize(new RbacFilter.Subject(r, "10.0.0.1", 9080, "10.0.0.2", null, null),
                new MultiMapHeaders(r.headers()), r::removeTokenParameters, null, null, null);
    }

    private static String sub(JwtAuthnFilter.Outcome o) {
        assertFalse(o.denied(), o.body());
        return (String) ((Map<?, ?>) o.metadata().get("payload")).get("sub");
    }
}
