package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.listener.HttpConnectionManager;

/**
 * Istio's persistent sessions as a sidecar receives them, for tests on every path: for a Service labelled
 * {@code istio.io/persistent-session: <name>[:<path>]} (a cookie) or {@code istio.io/persistent-session-header:
 * <name>} (a header), istiod puts an empty {@code envoy.filters.http.stateful_session} filter in its outbound
 * connection managers (after the fault, CORS and stats filters, right before the router), the session state in a
 * {@code StatefulSessionPerRoute} of the Service's virtual host (the cookie with its name and path, {@code /} when the
 * label has none, and no ttl), and {@code override_host_status} HEALTHY, DRAINING, UNKNOWN, DEGRADED in the Service's
 * cluster, so that sessions stay on draining pods.
 */
public final class IstioPersistentSession {
    private IstioPersistentSession() {}

    /** The empty filter istiod writes, an {@code http_filters} list item. */
    public static final String FILTER = filter("");

    /** The outbound connection manager's filters around it, as istiod orders them, with the router last. */
    public static final String FILTERS = """
            - name: envoy.filters.http.fault
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault}
            - name: envoy.filters.http.cors
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
            """ + FILTER + EnvoyValidationTest.ROUTER;

    /** The cluster's {@code common_lb_config}, a cluster field. */
    public static final String COMMON_LB_CONFIG = """
            common_lb_config:
              override_host_status:
                statuses: [HEALTHY, DRAINING, UNKNOWN, DEGRADED]
            """;

    /** A stateful session filter whose {@code StatefulSession} has {@code fields} (block YAML), a list item. */
    public static String filter(String fields) {
        return """
                - name: envoy.filters.http.stateful_session
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession
                """ + fields.stripTrailing().indent(4);
    }

    /**
     * A {@code session_state} field named {@code name} whose typed config is of {@code type} (without
     * {@code type.googleapis.com/}) with {@code fields} (block YAML).
     */
    public static String sessionState(String name, String type, String fields) {
        return """
                session_state:
                  name: %s
                  typed_config:
                    "@type": type.googleapis.com/%s
                """.formatted(name, type) + fields.stripTrailing().indent(4);
    }

    /** A cookie {@code session_state}; {@code cookie} is the {@code Cookie} message in flow YAML. */
    public static String cookieState(String cookie) {
        return sessionState("envoy.http.stateful_session.cookie",
                "envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState", "cookie: " + cookie);
    }

    /**
     * A virtual host's or route's {@code typed_per_filter_config} with a {@code StatefulSessionPerRoute} whose
     * {@code stateful_session} has {@code fields} (block YAML), to indent to the virtual host's or route's fields.
     */
    public static String perRoute(String fields) {
        return """
                typed_per_filter_config:
                  envoy.filters.http.stateful_session:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute
                    stateful_session:
                """ + fields.stripTrailing().indent(6);
    }

    /** What istiod writes into the Service's virtual host for the label value {@code name:path}. */
    public static String cookieVirtualHostConfig(String name, String path) {
        return perRoute(cookieState("{name: " + name + ", path: " + path + "}"));
    }

    /** What istiod writes into the Service's virtual host for the header label value {@code name}. */
    public static String headerVirtualHostConfig(String name) {
        return perRoute(sessionState("envoy.http.stateful_session.header",
                "envoy.extensions.http.stateful_session.header.v3.HeaderBasedSessionState", "name: " + name));
    }

    /** A route's {@code typed_per_filter_config} that turns the filter off on that route. */
    public static final String DISABLED_ROUTE_CONFIG = """
            typed_per_filter_config:
              envoy.filters.http.stateful_session:
                "@type": type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute
                disabled: true
            """;

    /** The connection manager of listener "0.0.0.0_9080" with istiod's outbound filters. */
    public static HttpConnectionManager hcm() {
        return IstioRateLimit.hcm(FILTERS);
    }

    /** The connection manager of listener "0.0.0.0_9080" with {@code sessionFilter} and the router. */
    public static HttpConnectionManager hcm(String sessionFilter) {
        return IstioRateLimit.hcm(sessionFilter + EnvoyValidationTest.ROUTER);
    }
}
