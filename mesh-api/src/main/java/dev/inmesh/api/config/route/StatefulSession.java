package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import java.time.Duration;

/**
 * The config of Envoy's stateful session HTTP filter ({@code envoy.filters.http.stateful_session},
 * {@code StatefulSession}), as the filter's own or inside a virtual host's or route's {@code StatefulSessionPerRoute}.
 * A request whose cookie or header names a host of the cluster its route picked goes to that host, if the cluster's
 * {@code override_host_status} admits the host's health; a response from a host the request did not name carries the
 * cookie or header that names it. Istio writes it for Services labelled {@code istio.io/persistent-session} (a cookie)
 * or {@code istio.io/persistent-session-header} (a header): an empty filter in the outbound connection managers and the
 * session state per virtual host.
 *
 * @param sessionState where the session's host is kept, or null for none (the filter then does nothing, as Istio's
 *     empty filter does until a virtual host gives it a state)
 * @param strict whether a request naming a host that cannot take it fails (503, flag UH) rather than going to the
 *     host the load balancer picks
 */
public record StatefulSession(SessionState sessionState, boolean strict) {
    /** No session state: the filter does nothing. */
    public static final StatefulSession EMPTY = new StatefulSession(null, false);

    /** Where the session's upstream host is kept between requests. */
    public sealed interface SessionState permits Cookie, Header {}

    /**
     * A cookie ({@code envoy.http.stateful_session.cookie}, {@code CookieBasedSessionState}).
     *
     * @param name the cookie's name
     * @param path the cookie's {@code Path}, and the requests it applies to (empty or {@code /}: all; ending in
     *     {@code /}: paths that start with it; else the path itself and paths that go on with {@code /}, {@code ?} or
     *     {@code #})
     * @param ttl the cookie's {@code Max-Age} and its value's lifetime; zero for a session cookie whose value does
     *     not expire (as Istio writes it)
     */
    public record Cookie(String name, String path, Duration ttl) implements SessionState {
        public Cookie {
            Checks.nonEmpty(name, "cookie.name");
            path = path == null ? "" : path;
            ttl = ttl == null ? Duration.ZERO : ttl;
            Checks.check(!ttl.isNegative(), "cookie.ttl", ttl, ">= 0s");
        }

        /** Whether the cookie applies to a request for {@code requestPath} (its path, as Envoy matches it). */
        public boolean appliesTo(String requestPath) {
            if (path.isEmpty() || path.equals("/")) {
                return true;
            }
            if (!requestPath.startsWith(path)) {
                return false;
            }
            if (path.endsWith("/") || requestPath.length() == path.length()) {
                return true;
            }
            char next = requestPath.charAt(path.length());
            return next == '/' || next == '?' || next == '#';
        }
    }

    /**
     * A header ({@code envoy.http.stateful_session.header}, {@code HeaderBasedSessionState}).
     *
     * @param name the header's name, lower case
     */
    public record Header(String name) implements SessionState {
        public Header {
            Checks.nonEmpty(name, "name");
            name = name.toLowerCase(java.util.Locale.ROOT);
        }
    }
}
