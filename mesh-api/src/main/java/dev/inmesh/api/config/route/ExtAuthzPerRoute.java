package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import java.util.Map;

/**
 * A virtual host's or route's override of an external authorization filter ({@code typed_per_filter_config}
 * {@code ExtAuthzPerRoute}): either it turns the filter off for these requests, or it gives {@code check_settings}.
 * The most specific one (the route's, else its virtual host's) decides {@code disabled} and
 * {@code disableRequestBodyBuffering}; the context extensions of both are merged, the route's keys winning, as Envoy
 * merges them.
 *
 * @param disabled whether the filter checks none of these requests (they go on unchecked); false with check settings,
 *     or alone ({@code disabled: false}: the filter checks them, whatever a less specific override says)
 * @param contextExtensions {@code check_settings.context_extensions}, which a gRPC authorizer gets in its check
 *     request's {@code attributes.context_extensions}; empty for none
 * @param disableRequestBodyBuffering {@code check_settings.disable_request_body_buffering}: a filter with
 *     {@code with_request_body} checks these requests on their headers, holding no body
 */
public record ExtAuthzPerRoute(boolean disabled, Map<String, String> contextExtensions,
                               boolean disableRequestBodyBuffering) {
    /** An override that turns the filter off. */
    public static final ExtAuthzPerRoute DISABLED = new ExtAuthzPerRoute(true, null, false);

    public ExtAuthzPerRoute {
        contextExtensions = Checks.map(contextExtensions);
        Checks.check(!disabled || contextExtensions.isEmpty() && !disableRequestBodyBuffering, "override",
                "disabled with check_settings", "one of disabled or check_settings");
    }
}
