package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.jwt.JwtAuthentication;
import dev.inmesh.api.config.jwt.JwtAuthentication.JwtRequirement;
import io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtProvider;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Envoy's JWT authentication HTTP filter config ({@code JwtAuthentication}), in the shape istiod writes for a
 * RequestAuthentication: providers with an inline JWKS ({@code local_jwks}, the keys istiod fetched from
 * {@code jwksUri}) or one the filter fetches ({@code remote_jwks}: its {@code http_uri} and {@code cache_duration}, as
 * istiod writes it under {@code PILOT_JWT_ENABLE_REMOTE_JWKS=envoy} or {@code hybrid}), token locations, payload
 * forwarding and {@code payload_in_metadata}, and one rule of requirements. What Inmesh does not do is refused by
 * name, never ignored: a {@code remote_jwks}'s {@code async_fetch} and {@code retry_policy}, {@code requirement_map}
 * and rules naming one,
 * {@code filter_state_rules}, {@code strip_failure_response}, {@code subjects}, {@code require_expiration},
 * {@code max_lifetime}, {@code header_in_metadata}, {@code failed_status_in_metadata} and {@code clear_route_cache:
 * true} (which istiod sets on gateways only: Inmesh chooses a request's route before its filters run). The
 * {@code jwt_cache_config} only sizes Envoy's cache of verified tokens and changes no outcome.
 */
final class JwtAuthnParser {
    static final String NAME = "envoy.filters.http.jwt_authn";
    static final String TYPE = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";

    private JwtAuthnParser() {}

    static JwtAuthentication parse(Any any) {
        var c = RouteConfigurationParser.unpack(any,
                io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication.class, "@type");
        Fields.onlyKnown(c, Set.of("providers", "rules", "bypass_cors_preflight"), Set.of());
        Map<String, JwtAuthentication.JwtProvider> providers = new LinkedHashMap<>();
        c.getProvidersMap().forEach((name, p) -> providers.put(name, Fields.at("providers[" + name + "]",
                () -> provider(p))));
        List<JwtAuthentication.RequirementRule> rules = Fields.each("rules", c.getRulesList(), r -> {
            Fields.onlyKnown(r, Set.of("match", "requires"), Set.of());
            if (!r.hasMatch()) {
                throw new FieldError("match", "unset (expected: a route match)");
            }
            var match = Fields.at("match", () -> RouteConfigurationParser.routeMatch(r.getMatch()));
            JwtRequirement requires = r.hasRequires() ? Fields.at("requires", () -> requirement(r.getRequires()))
                    : null;
            return new JwtAuthentication.RequirementRule(match, requires);
        });
        return Fields.record("", () -> new JwtAuthentication(providers, rules, c.getBypassCorsPreflight()));
    }

    private static JwtAuthentication.JwtProvider provider(JwtProvider p) {
        Fields.onlyKnown(p, Set.of("issuer", "audiences", "local_jwks", "remote_jwks", "forward", "from_headers",
                "from_params", "from_cookies", "forward_payload_header", "pad_forward_payload_header",
                "payload_in_metadata", "normalize_payload_in_metadata", "clock_skew_seconds", "claim_to_headers",
                "clear_route_cache"), Set.of("jwt_cache_config"));
        JwtAuthentication.RemoteJwks remote = !p.hasRemoteJwks() ? null : Fields.at("remote_jwks", () -> {
            var r = p.getRemoteJwks();
            Fields.onlyKnown(r, Set.of("http_uri", "cache_duration"), Set.of());
            if (!r.hasHttpUri()) {
                throw new FieldError("http_uri", "unset (expected: the key set's uri, cluster and timeout)");
            }
            var u = r.getHttpUri();
            Fields.at("http_uri", () -> {
                Fields.onlyKnown(u, Set.of("uri", "cluster", "timeout"), Set.of());
                return null;
            });
            return Fields.record("http_uri.", () -> new JwtAuthentication.RemoteJwks(u.getUri(), u.getCluster(),
                    Fields.duration(u.getTimeout()), Fields.durationOrNull(r.hasCacheDuration(),
                            r.getCacheDuration())));
        });
        if (!p.hasLocalJwks() && remote == null) {
            throw new FieldError("jwks_source_specifier", "unset (expected: local_jwks or remote_jwks)");
        }
        if (p.getClearRouteCache()) {
            throw new FieldError("clear_route_cache", "true is not supported by Inmesh (expected: false, as istiod "
                    + "writes it for sidecars; Inmesh chooses the route before the filter runs)");
        }
        String jwks = remote != null ? "" : Fields.at("local_jwks", () -> CoreParsers.dataSource(p.getLocalJwks()));
        var headers = Fields.each("from_headers", p.getFromHeadersList(), h -> {
            Fields.onlyKnown(h, Set.of("name", "value_prefix"), Set.of());
            return Fields.record("", () -> new JwtAuthentication.JwtHeader(h.getName(), h.getValuePrefix()));
        });
        var claims = Fields.each("claim_to_headers", p.getClaimToHeadersList(), h -> {
            Fields.onlyKnown(h, Set.of("header_name", "claim_name"), Set.of());
            return Fields.record("", () -> new JwtAuthentication.ClaimToHeader(h.getHeaderName(), h.getClaimName()));
        });
        List<String> spaceDelimited = !p.hasNormalizePayloadInMetadata() ? List.of() : Fields.at(
                "normalize_payload_in_metadata", () -> {
                    Fields.onlyKnown(p.getNormalizePayloadInMetadata(), Set.of("space_delimited_claims"), Set.of());
                    return p.getNormalizePayloadInMetadata().getSpaceDelimitedClaimsList();
                });
        return Fields.record("", () -> new JwtAuthentication.JwtProvider(p.getIssuer(), p.getAudiencesList(), jwks,
                remote, p.getForward(), headers, p.getFromParamsList(), p.getFromCookiesList(),
                p.getForwardPayloadHeader(), p.getPadForwardPayloadHeader(), p.getPayloadInMetadata(), spaceDelimited,
                Integer.toUnsignedLong(p.getClockSkewSeconds()), claims));
    }

    private static JwtRequirement requirement(io.envoyproxy.envoy.extensions.filters.http.jwt_authn.v3.JwtRequirement r) {
        return switch (r.getRequiresTypeCase()) {
            case PROVIDER_NAME -> Fields.record("", () -> new JwtRequirement.ProviderName(r.getProviderName()));
            case PROVIDER_AND_AUDIENCES -> Fields.at("provider_and_audiences", () -> {
                var pa = r.getProviderAndAudiences();
                Fields.onlyKnown(pa, Set.of("provider_name", "audiences"), Set.of());
                return Fields.record("provider_and_audiences.", () -> new JwtRequirement.ProviderAndAudiences(
                        pa.getProviderName(), pa.getAudiencesList()));
            });
            case REQUIRES_ANY -> new JwtRequirement.RequiresAny(Fields.at("requires_any",
                    () -> Fields.each("requirements", r.getRequiresAny().getRequirementsList(),
                            JwtAuthnParser::requirement)));
            case REQUIRES_ALL -> new JwtRequirement.RequiresAll(Fields.at("requires_all",
                    () -> Fields.each("requirements", r.getRequiresAll().getRequirementsList(),
                            JwtAuthnParser::requirement)));
            case ALLOW_MISSING -> new JwtRequirement.AllowMissing();
            case ALLOW_MISSING_OR_FAILED -> new JwtRequirement.AllowMissingOrFailed();
            case REQUIRESTYPE_NOT_SET -> throw new FieldError("requires_type", "unset (expected: one of "
                    + "provider_name, provider_and_audiences, requires_any, requires_all, allow_missing, "
                    + "allow_missing_or_failed)");
        };
    }
}
