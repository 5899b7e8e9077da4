package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.route.StatefulSession;
import dev.inmesh.api.config.route.StatefulSessionPerRoute;
import io.envoyproxy.envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState;
import io.envoyproxy.envoy.extensions.http.stateful_session.header.v3.HeaderBasedSessionState;
import java.time.Duration;
import java.util.Set;

/**
 * Envoy's stateful session HTTP filter config ({@code StatefulSession}), as the filter's own in a connection manager's
 * {@code http_filters}, and its {@code StatefulSessionPerRoute} in a virtual host's or route's
 * {@code typed_per_filter_config}: Istio writes an empty filter into its outbound connection managers and, for a
 * Service labelled for persistent sessions, a per-route config with a cookie or header session state on that
 * Service's virtual hosts. Session states other than the cookie and header ones are refused by name.
 */
final class StatefulSessionParser {
    static final String NAME = "envoy.filters.http.stateful_session";
    static final String TYPE = "envoy.extensions.filters.http.stateful_session.v3.StatefulSession";
    static final String PER_ROUTE_TYPE = "envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute";
    static final String COOKIE_TYPE = "envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState";
    static final String HEADER_TYPE = "envoy.extensions.http.stateful_session.header.v3.HeaderBasedSessionState";

    private StatefulSessionParser() {}

    /** The filter's own config ({@code StatefulSession}); an unset one is empty, as Istio's. */
    static StatefulSession filter(Any any) {
        if (any.getTypeUrl().isEmpty()) {
            return StatefulSession.EMPTY;
        }
        return config(RouteConfigurationParser.unpack(any, io.envoyproxy.envoy.extensions.filters.http
                .stateful_session.v3.StatefulSession.class, "@type"));
    }

    /** A virtual host's or route's {@code StatefulSessionPerRoute}. */
    static StatefulSessionPerRoute perRoute(Any any) {
        var p = RouteConfigurationParser.unpack(any, io.envoyproxy.envoy.extensions.filters.http.stateful_session.v3
                .StatefulSessionPerRoute.class, "@type");
        Fields.onlyKnown(p, Set.of("disabled", "stateful_session"), Set.of());
        return switch (p.getOverrideCase()) {
            case DISABLED -> {
                if (!p.getDisabled()) {
                    // Envoy's validation: disabled must be true when it is the one set
                    throw new FieldError("disabled", "false (expected: true, or stateful_session)");
                }
                yield StatefulSessionPerRoute.DISABLED;
            }
            case STATEFUL_SESSION -> StatefulSessionPerRoute.of(Fields.at("stateful_session",
                    () -> config(p.getStatefulSession())));
            case OVERRIDE_NOT_SET -> throw new FieldError("override", "unset (expected: disabled or "
                    + "stateful_session)");
        };
    }

    private static StatefulSession config(io.envoyproxy.envoy.extensions.filters.http.stateful_session.v3
            .StatefulSession c) {
        Fields.onlyKnown(c, Set.of("session_state", "strict"), Set.of());
        if (!c.hasSessionState()) {
            return c.getStrict() ? new StatefulSession(null, true) : StatefulSession.EMPTY;
        }
        var state = c.getSessionState();
        StatefulSession.SessionState parsed = Fields.at("session_state", () -> {
            String type = CoreParsers.configType(state.getTypedConfig());
            if (type.equals(COOKIE_TYPE)) {
                return Fields.at("typed_config", () -> cookie(RouteConfigurationParser.unpack(
                        state.getTypedConfig(), CookieBasedSessionState.class, "@type")));
            }
            if (type.equals(HEADER_TYPE)) {
                return Fields.at("typed_config", () -> header(RouteConfigurationParser.unpack(
                        state.getTypedConfig(), HeaderBasedSessionState.class, "@type")));
            }
            throw new FieldError("typed_config", (type.isEmpty() ? "no config type" : type) + " is not supported "
                    + "by Inmesh (expected: " + COOKIE_TYPE + " or " + HEADER_TYPE + ")");
        });
        return new StatefulSession(parsed, c.getStrict());
    }

    private static StatefulSession.Cookie cookie(CookieBasedSessionState s) {
        Fields.onlyKnown(s, Set.of("cookie"), Set.of());
        var c = s.getCookie();
        Fields.onlyKnown(c, Set.of("name", "path", "ttl"), Set.of());
        if (c.getName().isEmpty()) {
            // as Envoy, which refuses to build the session state without one
            throw new FieldError("cookie.name", "\"\" (expected: a cookie name)");
        }
        Duration ttl = c.hasTtl() ? Fields.at("cookie.ttl", () -> Fields.duration(c.getTtl())) : Duration.ZERO;
        if (ttl.isNegative()) {
            throw new FieldError("cookie.ttl", ttl + " (expected: >= 0s)");
        }
        return new StatefulSession.Cookie(c.getName(), c.getPath(), ttl);
    }

    private static StatefulSession.Header header(HeaderBasedSessionState s) {
        Fields.onlyKnown(s, Set.of("name"), Set.of());
        if (s.getName().isEmpty()) {
            throw new FieldError("name", "\"\" (expected: a header name)");
        }
        return new StatefulSession.Header(s.getName());
    }
}
