package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import java.time.Duration;
import java.util.List;

/**
 * How a request's hash for RING_HASH and MAGLEV is computed ({@code RouteAction.HashPolicy}). Policies are tried in
 * order; their hashes combine; a {@code terminal} policy that produced a hash stops the list.
 */
public sealed interface HashPolicy {
    boolean terminal();

    /**
     * A header's values, each first rewritten by {@code regexRewrite} when set (Envoy's {@code regex_rewrite}: every
     * match replaced).
     */
    record Header(String name, RegexRewrite regexRewrite, boolean terminal) implements HashPolicy {
        public Header {
            Checks.nonEmpty(name, "hash_policy.header.header_name");
        }

        /** Without a rewrite. */
        public Header(String name, boolean terminal) {
            this(name, null, terminal);
        }
    }

    /**
     * A cookie's value. When the request has no such cookie and {@code ttl} is set, the proxy makes one up (as
     * Envoy's router: from the downstream connection's addresses), hashes it, and hands it to the client in a
     * {@code Set-Cookie} on the upstream's response: {@code Max-Age} of {@code ttl}'s whole seconds (none when that
     * is 0, a session cookie), {@code Path} when {@code path} is set, the {@code attributes}, and {@code HttpOnly}.
     * Istio's {@code consistentHash.httpCookie} writes this.
     *
     * @param path the generated cookie's {@code Path}, or empty for none
     * @param ttl the generated cookie's lifetime, or null: no cookie is generated
     * @param attributes further attributes of the generated cookie, in order
     */
    record Cookie(String name, String path, Duration ttl, List<CookieAttribute> attributes, boolean terminal)
            implements HashPolicy {
        public Cookie {
            Checks.nonEmpty(name, "hash_policy.cookie.name");
            path = path == null ? "" : path;
            Checks.check(ttl == null || !ttl.isNegative(), "hash_policy.cookie.ttl", ttl, "not negative");
            attributes = Checks.list(attributes, "hash_policy.cookie.attributes");
        }

        /** A cookie hash that never generates the cookie. */
        public Cookie(String name, boolean terminal) {
            this(name, "", null, List.of(), terminal);
        }
    }

    /** An attribute of a generated cookie: {@code ; name=value}, or {@code ; name} when the value is empty. */
    record CookieAttribute(String name, String value) {
        public CookieAttribute {
            Checks.nonEmpty(name, "hash_policy.cookie.attributes.name");
            value = value == null ? "" : value;
        }
    }

    record SourceIp(boolean terminal) implements HashPolicy {}

    record QueryParameter(String name, boolean terminal) implements HashPolicy {
        public QueryParameter {
            Checks.nonEmpty(name, "hash_policy.query_parameter.name");
        }
    }
}
