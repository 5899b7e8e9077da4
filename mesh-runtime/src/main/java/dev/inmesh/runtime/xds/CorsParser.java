package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.route.CorsPolicy;
import io.envoyproxy.envoy.config.core.v3.RuntimeFractionalPercent;
import java.util.Set;

/**
 * Envoy's CORS policy, as Istio writes a VirtualService's {@code corsPolicy}: in the {@code typed_per_filter_config}
 * of a virtual host or route ({@code envoy.extensions.filters.http.cors.v3.CorsPolicy}), or in the older {@code cors}
 * field of a virtual host or route action ({@code envoy.config.route.v3.CorsPolicy}, the same fields). The runtime
 * keys of {@code filter_enabled} and {@code shadow_enabled} are accepted and not read (the runtime feeds routes only):
 * their default values apply, as Envoy applies them when no runtime layer sets those keys.
 */
final class CorsParser {
    static final String CORS_POLICY_TYPE = "envoy.extensions.filters.http.cors.v3.CorsPolicy";

    private static final Set<String> FIELDS = Set.of("allow_origin_string_match", "allow_methods", "allow_headers",
            "expose_headers", "max_age", "allow_credentials", "filter_enabled", "shadow_enabled",
            "allow_private_network_access", "forward_not_matching_preflights");

    private CorsParser() {}

    /** The CORS policy of a {@code typed_per_filter_config} entry. */
    static CorsPolicy policy(Any any) {
        var p = RouteConfigurationParser.unpack(any, io.envoyproxy.envoy.extensions.filters.http.cors.v3.CorsPolicy
                .class, "@type");
        Fields.onlyKnown(p, FIELDS, Set.of());
        return build(p, false);
    }

    /** The CORS policy of a virtual host's or route action's {@code cors} field. */
    static CorsPolicy legacy(io.envoyproxy.envoy.config.route.v3.CorsPolicy p) {
        Fields.onlyKnown(p, FIELDS, Set.of());
        var b = io.envoyproxy.envoy.extensions.filters.http.cors.v3.CorsPolicy.newBuilder()
                .addAllAllowOriginStringMatch(p.getAllowOriginStringMatchList()).setAllowMethods(p.getAllowMethods())
                .setAllowHeaders(p.getAllowHeaders()).setExposeHeaders(p.getExposeHeaders()).setMaxAge(p.getMaxAge());
        if (p.hasAllowCredentials()) {
            b.setAllowCredentials(p.getAllowCredentials());
        }
        if (p.hasFilterEnabled()) {
            b.setFilterEnabled(p.getFilterEnabled());
        }
        if (p.hasShadowEnabled()) {
            b.setShadowEnabled(p.getShadowEnabled());
        }
        if (p.hasAllowPrivateNetworkAccess()) {
            b.setAllowPrivateNetworkAccess(p.getAllowPrivateNetworkAccess());
        }
        if (p.hasForwardNotMatchingPreflights()) {
            b.setForwardNotMatchingPreflights(p.getForwardNotMatchingPreflights());
        }
        return build(b.build(), true);
    }

    private static CorsPolicy build(io.envoyproxy.envoy.extensions.filters.http.cors.v3.CorsPolicy p,
                                    boolean legacy) {
        var origins = Fields.each("allow_origin_string_match", p.getAllowOriginStringMatchList(),
                CoreParsers::stringMatcher);
        FractionalPercent enabled = p.hasFilterEnabled()
                ? Fields.at("filter_enabled", () -> fraction(p.getFilterEnabled())) : null;
        FractionalPercent shadow = p.hasShadowEnabled()
                ? Fields.at("shadow_enabled", () -> fraction(p.getShadowEnabled())) : null;
        return new CorsPolicy(origins, p.getAllowMethods(), p.getAllowHeaders(), p.getExposeHeaders(), p.getMaxAge(),
                p.hasAllowCredentials() ? p.getAllowCredentials().getValue() : null, enabled, shadow,
                p.hasAllowPrivateNetworkAccess() ? p.getAllowPrivateNetworkAccess().getValue() : null,
                p.hasForwardNotMatchingPreflights() ? p.getForwardNotMatchingPreflights().getValue() : null, legacy);
    }

    private static FractionalPercent fraction(RuntimeFractionalPercent r) {
        Fields.onlyKnown(r, Set.of("default_value"), Set.of("runtime_key"));
        return CoreParsers.fractionalPercent(r.getDefaultValue());
    }
}
