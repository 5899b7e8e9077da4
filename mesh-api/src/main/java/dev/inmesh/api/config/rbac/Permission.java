package dev.inmesh.api.config.rbac;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.route.HeaderMatcher;
import java.util.List;

/** What a request does, as Envoy's {@code config.rbac.v3.Permission} describes it. */
public sealed interface Permission {
    /** Any request. */
    record Any() implements Permission {}

    /** All of the rules match. */
    record And(List<Permission> rules) implements Permission {
        public And {
            rules = Checks.list(rules, "and_rules.rules");
        }
    }

    /** Any of the rules matches. */
    record Or(List<Permission> rules) implements Permission {
        public Or {
            rules = Checks.list(rules, "or_rules.rules");
        }
    }

    /** The rule does not match. */
    record Not(Permission rule) implements Permission {
        public Not {
            Checks.nonNull(rule, "not_rule");
        }
    }

    /** A request header (pseudo-headers {@code :method}, {@code :path}, {@code :authority} too), as a route's. */
    record Header(HeaderMatcher header) implements Permission {
        public Header {
            Checks.nonNull(header, "header");
        }
    }

    /** The path without its query and fragment. */
    record UrlPath(StringMatcher path) implements Permission {
        public UrlPath {
            Checks.nonNull(path, "url_path.path");
        }
    }

    /**
     * The path without its query and fragment matches an Envoy URI template ({@code uri_template}'s
     * {@code UriTemplateMatchConfig}: {@code *} one segment, {@code **} any rest, {@code {name}} and
     * {@code {name=...}} variables), as istiod writes Istio's {@code {*}} and {@code {**}} paths.
     */
    record UriTemplate(String pathTemplate) implements Permission {
        public UriTemplate {
            Checks.nonEmpty(pathTemplate, "uri_template.path_template");
        }
    }

    /** The address the request came to. */
    record DestinationIp(CidrRange range) implements Permission {
        public DestinationIp {
            Checks.nonNull(range, "destination_ip");
        }
    }

    /** The port the request came to. */
    record DestinationPort(int port) implements Permission {
        public DestinationPort {
            Checks.port(port, "destination_port");
        }
    }

    /** The port the request came to lies in [start, end). */
    record DestinationPortRange(int start, int end) implements Permission {}

    /** The SNI of the connection's TLS (empty for plaintext). */
    record RequestedServerName(StringMatcher name) implements Permission {
        public RequestedServerName {
            Checks.nonNull(name, "requested_server_name");
        }
    }
}
