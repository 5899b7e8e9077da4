package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;

/**
 * How a request's hash for RING_HASH and MAGLEV is computed ({@code RouteAction.HashPolicy}). Policies are tried in
 * order; their hashes combine; a {@code terminal} policy that produced a hash stops the list.
 */
public sealed interface HashPolicy {
    boolean terminal();

    record Header(String name, boolean terminal) implements HashPolicy {
        public Header {
            Checks.nonEmpty(name, "hash_policy.header.header_name");
        }
    }

    record Cookie(String name, boolean terminal) implements HashPolicy {
        public Cookie {
            Checks.nonEmpty(name, "hash_policy.cookie.name");
        }
    }

    record SourceIp(boolean terminal) implements HashPolicy {}

    record QueryParameter(String name, boolean terminal) implements HashPolicy {
        public QueryParameter {
            Checks.nonEmpty(name, "hash_policy.query_parameter.name");
        }
    }
}
