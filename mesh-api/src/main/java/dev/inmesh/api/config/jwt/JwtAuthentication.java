package dev.inmesh.api.config.jwt;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.route.RouteMatch;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The config of Envoy's JWT authentication HTTP filter ({@code envoy.filters.http.jwt_authn}, {@code JwtAuthentication}):
 * the providers that verify tokens, and the rules that say, by route match, which tokens a request requires. The first
 * rule that matches a request decides; a request no rule matches is not checked. istiod writes one provider per
 * RequestAuthentication issuer ({@code origins-N}) and one rule for {@code /} that requires a valid token from one of
 * them or no token at all.
 *
 * @param providers the providers by name (kept in name order, the order Inmesh looks a provider up by issuer in)
 * @param rules the requirement rules, in order
 * @param bypassCorsPreflight whether a CORS preflight request ({@code OPTIONS} with {@code origin} and
 *     {@code access-control-request-method}) goes on without any check, as istiod sets it
 */
public record JwtAuthentication(Map<String, JwtProvider> providers, List<RequirementRule> rules,
                                boolean bypassCorsPreflight) {
    public JwtAuthentication {
        providers = providers == null ? Map.of() : Collections.unmodifiableMap(new TreeMap<>(providers));
        rules = Checks.list(rules, "rules");
        for (int i = 0; i < rules.size(); i++) {
            checkNames(rules.get(i).requires(), providers, "rules[" + i + "].requires");
        }
    }

    /** Envoy refuses a requirement that names a provider it does not have: {@code Required provider ['x'] ...}. */
    private static void checkNames(JwtRequirement r, Map<String, JwtProvider> providers, String field) {
        if (r instanceof JwtRequirement.ProviderName p) {
            Checks.check(providers.containsKey(p.name()), field + ".provider_name", p.name(), "a configured provider");
        } else if (r instanceof JwtRequirement.ProviderAndAudiences p) {
            Checks.check(providers.containsKey(p.name()), field + ".provider_and_audiences.provider_name", p.name(),
                    "a configured provider");
        } else if (r instanceof JwtRequirement.RequiresAny a) {
            for (int i = 0; i < a.requirements().size(); i++) {
                checkNames(a.requirements().get(i), providers, field + ".requires_any.requirements[" + i + "]");
            }
        } else if (r instanceof JwtRequirement.RequiresAll a) {
            for (int i = 0; i < a.requirements().size(); i++) {
                checkNames(a.requirements().get(i), providers, field + ".requires_all.requirements[" + i + "]");
            }
        }
    }

    /**
     * One provider ({@code JwtProvider}): who issues its tokens, the keys that sign them, where a request carries them
     * and what a verified token leaves on the request.
     *
     * @param issuer the {@code iss} its tokens must carry; empty: any
     * @param audiences the audiences one of which a token's {@code aud} must name; empty: any
     * @param localJwks the JSON Web Key Set that verifies the tokens' signatures ({@code local_jwks}, inline or read
     *     from its file when the config was parsed; istiod inlines the set it fetched from {@code jwksUri}); empty
     *     with {@code remoteJwks}
     * @param remoteJwks where the key set is fetched from instead ({@code remote_jwks}, as istiod writes it with
     *     {@code PILOT_JWT_ENABLE_REMOTE_JWKS=envoy}, or {@code hybrid} for a {@code jwksUri} in the mesh); null with
     *     {@code localJwks}
     * @param forward whether the token stays on the request that goes on; false: its header is removed
     * @param fromHeaders the headers a token is read from; with {@link #fromParams} and {@link #fromCookies} all
     *     empty, Envoy's defaults: {@code Authorization: Bearer <token>} and the {@code access_token} query parameter
     * @param fromParams the query parameters a token is read from
     * @param fromCookies the cookies a token is read from
     * @param forwardPayloadHeader the header that gets a verified token's payload (base64url), or empty for none
     * @param padForwardPayloadHeader whether that payload keeps its base64 padding
     * @param payloadInMetadata the key under which a verified token's payload goes into the request's dynamic metadata
     *     ({@code envoy.filters.http.jwt_authn}), where RBAC principals read it; empty for none (istiod: {@code payload})
     * @param spaceDelimitedClaims claims whose string value is split at spaces into a list in that metadata
     *     ({@code normalize_payload_in_metadata}; istiod: {@code scope} and {@code permission})
     * @param clockSkewSeconds the leeway of {@code exp} and {@code nbf}; 0 takes Envoy's default, 60
     * @param claimToHeaders the claims copied to request headers
     */
    public record JwtProvider(String issuer, List<String> audiences, String localJwks, RemoteJwks remoteJwks,
                              boolean forward,
                              List<JwtHeader> fromHeaders, List<String> fromParams, List<String> fromCookies,
                              String forwardPayloadHeader, boolean padForwardPayloadHeader, String payloadInMetadata,
                              List<String> spaceDelimitedClaims, long clockSkewSeconds,
                              List<ClaimToHeader> claimToHeaders) {
        /** Envoy's clock skew when none is set: 60 seconds. */
        public static final long DEFAULT_CLOCK_SKEW_SECONDS = 60;

        public JwtProvider {
            issuer = issuer == null ? "" : issuer;
            audiences = Checks.list(audiences, "audiences");
            localJwks = localJwks == null ? "" : localJwks;
            Checks.check(remoteJwks == null || localJwks.isEmpty(), "local_jwks", localJwks,
                    "none beside remote_jwks");
            fromHeaders = Checks.list(fromHeaders, "from_headers");
            fromParams = Checks.list(fromParams, "from_params");
            fromCookies = Checks.list(fromCookies, "from_cookies");
            forwardPayloadHeader = forwardPayloadHeader == null ? "" : forwardPayloadHeader;
            payloadInMetadata = payloadInMetadata == null ? "" : payloadInMetadata;
            spaceDelimitedClaims = Checks.list(spaceDelimitedClaims, "normalize_payload_in_metadata"
                    + ".space_delimited_claims");
            Checks.nonNegative(clockSkewSeconds, "clock_skew_seconds");
            clockSkewSeconds = clockSkewSeconds == 0 ? DEFAULT_CLOCK_SKEW_SECONDS : clockSkewSeconds;
            claimToHeaders = Checks.list(claimToHeaders, "claim_to_headers");
        }
    }

    /**
     * A key set fetched by the filter ({@code RemoteJwks}): a GET of {@code uri} through {@code cluster}, its answer
     * kept for {@code cacheDuration}.
     *
     * @param uri the key set's URI ({@code http_uri.uri}): its host is the {@code :authority}, its path the path
     * @param cluster the cluster the request goes through ({@code http_uri.cluster})
     * @param timeout how long the fetch may take ({@code http_uri.timeout})
     * @param cacheDuration how long a fetched key set is used before it is fetched again; Envoy's default, 10
     *     minutes, when unset
     */
    public record RemoteJwks(String uri, String cluster, java.time.Duration timeout,
                             java.time.Duration cacheDuration) {
        /** Envoy's {@code cache_duration} when none is set: 10 minutes. */
        public static final java.time.Duration DEFAULT_CACHE_DURATION = java.time.Duration.ofMinutes(10);

        public RemoteJwks {
            Checks.nonEmpty(uri, "http_uri.uri");
            Checks.nonEmpty(cluster, "http_uri.cluster");
            Checks.nonNull(timeout, "http_uri.timeout");
            cacheDuration = cacheDuration == null || cacheDuration.isZero() ? DEFAULT_CACHE_DURATION : cacheDuration;
        }
    }

    /**
     * A header a token is read from ({@code JwtHeader}): with a {@code valuePrefix}, only a value containing it, the
     * token starting after it.
     */
    public record JwtHeader(String name, String valuePrefix) {
        public JwtHeader {
            Checks.nonEmpty(name, "name");
            valuePrefix = valuePrefix == null ? "" : valuePrefix;
        }
    }

    /** A claim (a dotted path for a nested one) copied to a request header ({@code JwtClaimToHeader}). */
    public record ClaimToHeader(String headerName, String claimName) {
        public ClaimToHeader {
            Checks.nonEmpty(headerName, "header_name");
            Checks.nonEmpty(claimName, "claim_name");
        }
    }

    /**
     * A rule ({@code RequirementRule}): a request its route match matches requires {@code requires}.
     *
     * @param match the route match
     * @param requires the requirement, or null for none (the request goes on unchecked)
     */
    public record RequirementRule(RouteMatch match, JwtRequirement requires) {
        public RequirementRule {
            Checks.nonNull(match, "match");
        }
    }

    /** What a request must carry ({@code JwtRequirement}). */
    public sealed interface JwtRequirement {
        /** A valid token of one provider. */
        record ProviderName(String name) implements JwtRequirement {
            public ProviderName {
                Checks.nonEmpty(name, "provider_name");
            }
        }

        /** A valid token of one provider, whose audience is one of these (rather than the provider's). */
        record ProviderAndAudiences(String name, List<String> audiences) implements JwtRequirement {
            public ProviderAndAudiences {
                Checks.nonEmpty(name, "provider_and_audiences.provider_name");
                audiences = Checks.list(audiences, "provider_and_audiences.audiences");
            }
        }

        /** Any of the requirements (at least two). */
        record RequiresAny(List<JwtRequirement> requirements) implements JwtRequirement {
            public RequiresAny {
                requirements = Checks.list(requirements, "requires_any.requirements");
                Checks.check(requirements.size() >= 2, "requires_any.requirements", requirements.size(),
                        "at least 2");
            }
        }

        /** All of the requirements (at least two). */
        record RequiresAll(List<JwtRequirement> requirements) implements JwtRequirement {
            public RequiresAll {
                requirements = Checks.list(requirements, "requires_all.requirements");
                Checks.check(requirements.size() >= 2, "requires_all.requirements", requirements.size(),
                        "at least 2");
            }
        }

        /** No token, or valid tokens: a token that fails still fails the request ({@code allow_missing}). */
        record AllowMissing() implements JwtRequirement {}

        /** No token, valid tokens or failing ones: never fails ({@code allow_missing_or_failed}). */
        record AllowMissingOrFailed() implements JwtRequirement {}
    }
}
