package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import java.util.List;
import java.util.Set;

/**
 * The router filter's own config ({@code envoy.extensions.filters.http.router.v3.Router}), the fields Inmesh applies.
 *
 * @param suppressEnvoyHeaders whether the router adds none of its own {@code x-envoy-*} headers
 *                             ({@code suppress_envoy_headers}, Istio's {@code proxyHeaders.envoyDebugHeaders
 *                             .disabled}): no {@code x-envoy-upstream-service-time} on responses, no
 *                             {@code x-envoy-expected-rq-timeout-ms} upstream, no {@code x-envoy-overloaded} on an
 *                             overflow's answer
 * @param respectExpectedRqTimeout whether a trusted caller's {@code x-envoy-expected-rq-timeout-ms} (what the
 *                                 previous hop's router will wait) is the route timeout, before its
 *                                 {@code x-envoy-upstream-rq-timeout-ms} ({@code respect_expected_rq_timeout})
 * @param strictCheckHeaders the control headers whose invalid values are answered 400 instead of ignored
 *                           ({@code strict_check_headers}: some of {@link #STRICT_CHECKABLE})
 */
public record RouterFilterConfig(boolean suppressEnvoyHeaders, boolean respectExpectedRqTimeout,
                                 List<String> strictCheckHeaders) {
    /** The headers {@code strict_check_headers} may name, as Envoy's validation allows. */
    public static final Set<String> STRICT_CHECKABLE = Set.of("x-envoy-upstream-rq-timeout-ms",
            "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-max-retries", "x-envoy-retry-grpc-on",
            "x-envoy-retry-on");

    /** Envoy's defaults: the router adds its headers, takes no expected timeout and checks no header strictly. */
    public static final RouterFilterConfig DEFAULTS = new RouterFilterConfig(false, false, List.of());

    public RouterFilterConfig {
        strictCheckHeaders = Checks.list(strictCheckHeaders, "strict_check_headers");
        for (String h : strictCheckHeaders) {
            Checks.check(STRICT_CHECKABLE.contains(h), "strict_check_headers", h, "one of " + STRICT_CHECKABLE);
        }
    }
}
