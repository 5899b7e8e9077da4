package dev.inmesh.api.config.rbac;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.route.HeaderMatcher;
import java.util.List;

/** Who sends a request, as Envoy's {@code config.rbac.v3.Principal} describes it. */
public sealed interface Principal {
    /** Anyone. */
    record Any() implements Principal {}

    /** All of the ids match. */
    record And(List<Principal> ids) implements Principal {
        public And {
            ids = Checks.list(ids, "and_ids.ids");
        }
    }

    /** Any of the ids matches. */
    record Or(List<Principal> ids) implements Principal {
        public Or {
            ids = Checks.list(ids, "or_ids.ids");
        }
    }

    /** The id does not match. */
    record Not(Principal id) implements Principal {
        public Not {
            Checks.nonNull(id, "not_id");
        }
    }

    /**
     * A TLS peer whose certificate names it: its URI SANs, else its DNS SANs, else its subject, match
     * {@code principalName}; any peer with a certificate when {@code principalName} is null.
     */
    record Authenticated(StringMatcher principalName) implements Principal {}

    /** Which address a {@link RemoteAddress} principal reads. */
    enum AddressKind {
        /**
         * {@code source_ip} (deprecated in Envoy): the connection's remote address (a PROXY header's source when the
         * listener's PROXY protocol filter read one).
         */
        SOURCE_IP,
        /** {@code direct_remote_ip}: the connection's physical peer, whatever a PROXY header says. */
        DIRECT_REMOTE_IP,
        /** {@code remote_ip}: the downstream remote address after {@code x-forwarded-for} handling. */
        REMOTE_IP
    }

    /** The request's source address lies in a range. */
    record RemoteAddress(AddressKind kind, CidrRange range) implements Principal {
        public RemoteAddress {
            Checks.nonNull(kind, "kind");
            Checks.nonNull(range, kind.name().toLowerCase(java.util.Locale.ROOT));
        }
    }

    /** A request header, as {@link Permission.Header}. */
    record Header(HeaderMatcher header) implements Principal {
        public Header {
            Checks.nonNull(header, "header");
        }
    }

    /** The path without its query and fragment. */
    record UrlPath(StringMatcher path) implements Principal {
        public UrlPath {
            Checks.nonNull(path, "url_path.path");
        }
    }

    /**
     * The request's dynamic metadata, as Istio matches a JWT's claims ({@code requestPrincipals},
     * {@code request.auth.*}): only the metadata of the JWT authentication filter
     * ({@code envoy.filters.http.jwt_authn}), the one filter whose metadata Inmesh keeps.
     */
    record Metadata(MetadataMatcher metadata) implements Principal {
        public Metadata {
            Checks.nonNull(metadata, "metadata");
        }
    }
}
