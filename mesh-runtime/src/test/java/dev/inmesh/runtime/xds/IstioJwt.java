package dev.inmesh.runtime.xds;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.crypto.RSASSASigner;
import com.nimbusds.jose.jwk.JWKSet;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.jwk.gen.RSAKeyGenerator;
import com.nimbusds.jwt.JWTClaimsSet;
import com.nimbusds.jwt.SignedJWT;
import java.util.Date;
import java.util.Map;

/**
 * Istio's "JWT authentication" task as the sidecar receives it, with keys made here: a RequestAuthentication for the
 * issuer {@link #ISSUER} (istiod fetched its {@code jwksUri} and inlined the keys as {@code local_jwks}), becoming
 * istiod's {@code envoy.filters.http.jwt_authn} filter (provider {@code origins-0}, payload in the metadata under
 * {@code payload}, one rule for {@code /} requiring the provider's token or none), and the RBAC filters istiod writes
 * for AuthorizationPolicies that read what it verified: {@code requestPrincipals: ["*"]} and a claim condition.
 */
public final class IstioJwt {
    private IstioJwt() {}

    /** The issuer of the RequestAuthentication. */
    public static final String ISSUER = "testing@secure.istio.io";

    /** The signing key; its public half is the provider's JWKS. */
    public static final RSAKey KEY = key("k1");

    /** A key of nobody's, for tokens whose signature fails. */
    public static final RSAKey OTHER_KEY = key("k1");

    private static RSAKey key(String kid) {
        try {
            return new RSAKeyGenerator(2048).keyID(kid).generate();
        } catch (JOSEException e) {
            throw new AssertionError(e);
        }
    }

    /** The public JWKS istiod inlines. */
    public static String jwks() {
        return new JWKSet(KEY.toPublicJWK()).toString();
    }

    /** A token signed with {@code key} whose claims are {@code claims} ({@code exp}, {@code nbf}: Unix seconds). */
    public static String token(RSAKey key, Map<String, Object> claims) {
        JWTClaimsSet.Builder b = new JWTClaimsSet.Builder();
        claims.forEach((k, v) -> {
            if ((k.equals("exp") || k.equals("nbf") || k.equals("iat")) && v instanceof Long s) {
                b.claim(k, new Date(s * 1000));
            } else {
                b.claim(k, v);
            }
        });
        SignedJWT jwt = new SignedJWT(new JWSHeader.Builder(JWSAlgorithm.RS256).keyID(key.getKeyID()).build(),
                b.build());
        try {
            jwt.sign(new RSASSASigner(key));
        } catch (JOSEException e) {
            throw new AssertionError(e);
        }
        return jwt.serialize();
    }

    /** A valid token of {@link #ISSUER} for {@code sub}, an hour from expiry, with {@code extra} claims. */
    public static String valid(String sub, Map<String, Object> extra) {
        java.util.LinkedHashMap<String, Object> c = new java.util.LinkedHashMap<>(Map.of("iss", ISSUER, "sub", sub,
                "exp", System.currentTimeMillis() / 1000 + 3600));
        c.putAll(extra);
        return token(KEY, c);
    }

    /**
     * istiod's {@code envoy.filters.http.jwt_authn} filter for the RequestAuthentication, an {@code http_filters}
     * list item, with {@code providerFields} (block YAML lines) added to the provider.
     */
    public static String filter(String providerFields) {
        return """
                - name: envoy.filters.http.jwt_authn
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
                    providers:
                      origins-0:
                        issuer: %s
                        local_jwks:
                          inline_string: '%s'
                        payload_in_metadata: payload
                        normalize_payload_in_metadata:
                          space_delimited_claims: [permission, scope]
                """.formatted(ISSUER, jwks()) + providerFields.strip().indent(8) + """
                    rules:
                    - match: {prefix: /}
                      requires:
                        requires_any:
                          requirements:
                          - provider_name: origins-0
                          - allow_missing: {}
                    bypass_cors_preflight: true
                """;
    }

    /** The filter as istiod writes it, nothing added. */
    public static final String FILTER = filter("");

    /**
     * istiod's ALLOW filter for {@code require-jwt}: {@code rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]},
     * the principal an {@code and_ids} of the token's {@code iss} and {@code sub} in the metadata, each {@code .+}.
     */
    public static final String REQUIRE_PRINCIPAL = allow("require-jwt", """
            - and_ids:
                ids:
                - metadata:
                    filter: envoy.filters.http.jwt_authn
                    path: [{key: payload}, {key: iss}]
                    value: {string_match: {safe_regex: {regex: .+}}}
                - metadata:
                    filter: envoy.filters.http.jwt_authn
                    path: [{key: payload}, {key: sub}]
                    value: {string_match: {safe_regex: {regex: .+}}}
            """);

    /**
     * istiod's ALLOW filter for {@code require-group}: {@code when: [{key: request.auth.claims[groups], values:
     * ["admins"]}]}, a list or a string claim ({@code or_match} of a {@code list_match} and a {@code string_match}).
     */
    public static final String REQUIRE_GROUP = allow("require-group", """
            - metadata:
                filter: envoy.filters.http.jwt_authn
                path: [{key: payload}, {key: groups}]
                value:
                  or_match:
                    value_matchers:
                    - list_match: {one_of: {string_match: {exact: admins}}}
                    - string_match: {exact: admins}
            """);

    /**
     * An ALLOW RBAC filter as istiod writes one for the AuthorizationPolicy {@code policy} in {@code default} with one
     * rule: any request, from a source whose conditions are {@code ids} (the items of the rule's {@code and_ids}).
     */
    private static String allow(String policy, String ids) {
        return """
                - name: envoy.filters.http.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                    rules:
                      policies:
                        ns[default]-policy[%s]-rule[0]:
                          permissions:
                          - and_rules:
                              rules:
                              - any: true
                          principals:
                          - and_ids:
                              ids:
                """.formatted(policy) + ids.indent(14) + """
                    shadow_rules_stat_prefix: istio_dry_run_allow_
                """;
    }

    /** Claims as a map, in order. */
    public static Map<String, Object> claims(Object... kv) {
        java.util.LinkedHashMap<String, Object> m = new java.util.LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }
}
