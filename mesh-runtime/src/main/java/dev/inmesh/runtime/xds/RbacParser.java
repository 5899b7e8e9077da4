package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.rbac.NetworkRbac;
import dev.inmesh.api.config.rbac.Permission;
import dev.inmesh.api.config.rbac.Principal;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.runtime.router.UriTemplates;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Envoy's RBAC HTTP filter config ({@code envoy.extensions.filters.http.rbac.v3.RBAC}), as Istio writes an
 * AuthorizationPolicy: {@code rules} and {@code shadow_rules} ({@code config.rbac.v3.RBAC}: an action and named
 * policies of permissions and principals) with their stat prefixes. What Inmesh cannot evaluate is refused by name,
 * so that the last good config keeps serving: the unified {@code matcher} form, CEL {@code condition}s, dynamic
 * {@code metadata} other than the JWT authentication filter's (principals only, as istiod writes
 * {@code requestPrincipals} and {@code request.auth.*}), {@code filter_state}, custom principals, audit logging and
 * per-rule statistics.
 */
final class RbacParser {
    static final String RBAC_TYPE = "envoy.extensions.filters.http.rbac.v3.RBAC";
    static final String RBAC_PER_ROUTE_TYPE = "envoy.extensions.filters.http.rbac.v3.RBACPerRoute";
    static final String NETWORK_RBAC = "envoy.filters.network.rbac";
    static final String NETWORK_RBAC_TYPE = "envoy.extensions.filters.network.rbac.v3.RBAC";
    static final String URI_TEMPLATE_TYPE = "envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig";

    private RbacParser() {}

    /** The config of an RBAC HTTP filter's typed config. */
    static Rbac filter(Any any) {
        var r = RouteConfigurationParser.unpack(any, io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBAC.class,
                "@type");
        return filter(r);
    }

    /**
     * The config of an {@code RBACPerRoute}: its {@code rbac}, or, when absent, {@link Rbac#ALLOW_ALL}, as Envoy
     * disables the filter's own policy for the route.
     */
    static Rbac perRoute(Any any) {
        var p = RouteConfigurationParser.unpack(any,
                io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBACPerRoute.class, "@type");
        Fields.onlyKnown(p, Set.of("rbac"), Set.of());
        return p.hasRbac() ? Fields.at("rbac", () -> filter(p.getRbac())) : Rbac.ALLOW_ALL;
    }

    /**
     * The config of an RBAC network filter ({@code envoy.extensions.filters.network.rbac.v3.RBAC}), as istiod writes
     * it on TCP chains: {@code stat_prefix} (required, as Envoy validates it), {@code rules}, {@code shadow_rules} and
     * {@code shadow_rules_stat_prefix}. A connection has no request: a policy naming {@code header},
     * {@code url_path} or {@code uri_template} is refused with its path (Envoy's network filter matches them against
     * no headers, which istiod never asks of it). {@code enforcement_type} {@code CONTINUOUS} is refused: it differs
     * from the default only where another filter changes the dynamic metadata the rules read, and Inmesh reads none,
     * but Envoy then checks on every read, which Inmesh does not.
     */
    static NetworkRbac network(Any any) {
        var r = RouteConfigurationParser.unpack(any,
                io.envoyproxy.envoy.extensions.filters.network.rbac.v3.RBAC.class, "@type");
        Fields.onlyKnown(r, Set.of("rules", "shadow_rules", "stat_prefix", "shadow_rules_stat_prefix",
                "enforcement_type"), Set.of());
        if (r.getStatPrefix().isEmpty()) {
            throw new FieldError("stat_prefix", "\"\" (expected: a non-empty prefix, as Envoy requires)");
        }
        switch (r.getEnforcementType()) {
            case ONE_TIME_ON_FIRST_BYTE -> { }
            case CONTINUOUS -> throw new FieldError("enforcement_type", "CONTINUOUS is not supported by Inmesh "
                    + "(expected: ONE_TIME_ON_FIRST_BYTE, Istio's)");
            default -> throw new FieldError("enforcement_type", r.getEnforcementTypeValue()
                    + " (expected: ONE_TIME_ON_FIRST_BYTE)");
        }
        if (r.hasRules()) {
            Fields.at("rules", () -> connectionOnly(r.getRules()));
        }
        if (r.hasShadowRules()) {
            Fields.at("shadow_rules", () -> connectionOnly(r.getShadowRules()));
        }
        Rbac.Rules rules = r.hasRules() ? Fields.at("rules", () -> rules(r.getRules())) : null;
        Rbac.Rules shadow = r.hasShadowRules() ? Fields.at("shadow_rules", () -> rules(r.getShadowRules())) : null;
        return new NetworkRbac(r.getStatPrefix(), new Rbac(rules, "", shadow, r.getShadowRulesStatPrefix()));
    }

    /** Refuses, by its path, a permission or principal of a network RBAC filter that reads an HTTP request. */
    private static Void connectionOnly(io.envoyproxy.envoy.config.rbac.v3.RBAC r) {
        r.getPoliciesMap().forEach((name, p) -> Fields.at("policies[" + name + "]", () -> {
            Fields.each("permissions", p.getPermissionsList(), RbacParser::connectionOnly);
            return Fields.each("principals", p.getPrincipalsList(), RbacParser::connectionOnly);
        }));
        return null;
    }

    private static Void connectionOnly(io.envoyproxy.envoy.config.rbac.v3.Permission p) {
        switch (p.getRuleCase()) {
            case HEADER -> throw httpOnly("header");
            case URL_PATH -> throw httpOnly("url_path");
            case URI_TEMPLATE -> throw httpOnly("uri_template");
            case AND_RULES -> Fields.at("and_rules", () -> Fields.each("rules", p.getAndRules().getRulesList(),
                    RbacParser::connectionOnly));
            case OR_RULES -> Fields.at("or_rules", () -> Fields.each("rules", p.getOrRules().getRulesList(),
                    RbacParser::connectionOnly));
            case NOT_RULE -> Fields.at("not_rule", () -> connectionOnly(p.getNotRule()));
            default -> { }
        }
        return null;
    }

    private static Void connectionOnly(io.envoyproxy.envoy.config.rbac.v3.Principal p) {
        switch (p.getIdentifierCase()) {
            case HEADER, URL_PATH, METADATA -> throw httpOnly(switch (p.getIdentifierCase()) {
                case HEADER -> "header";
                case URL_PATH -> "url_path";
                default -> "metadata";
            });
            case AND_IDS -> Fields.at("and_ids", () -> Fields.each("ids", p.getAndIds().getIdsList(),
                    RbacParser::connectionOnly));
            case OR_IDS -> Fields.at("or_ids", () -> Fields.each("ids", p.getOrIds().getIdsList(),
                    RbacParser::connectionOnly));
            case NOT_ID -> Fields.at("not_id", () -> connectionOnly(p.getNotId()));
            default -> { }
        }
        return null;
    }

    private static FieldError httpOnly(String field) {
        return new FieldError(field, "is not supported by Inmesh in a network RBAC filter (expected: connection "
                + "properties only; a connection has no HTTP request)");
    }

    private static Rbac filter(io.envoyproxy.envoy.extensions.filters.http.rbac.v3.RBAC r) {
        Fields.onlyKnown(r, Set.of("rules", "rules_stat_prefix", "shadow_rules", "shadow_rules_stat_prefix"),
                Set.of());
        Rbac.Rules rules = r.hasRules() ? Fields.at("rules", () -> rules(r.getRules())) : null;
        Rbac.Rules shadow = r.hasShadowRules() ? Fields.at("shadow_rules", () -> rules(r.getShadowRules())) : null;
        return new Rbac(rules, r.getRulesStatPrefix(), shadow, r.getShadowRulesStatPrefix());
    }

    static Rbac.Rules rules(io.envoyproxy.envoy.config.rbac.v3.RBAC r) {
        Fields.onlyKnown(r, Set.of("action", "policies"), Set.of());
        Rbac.Action action = switch (r.getAction()) {
            case ALLOW -> Rbac.Action.ALLOW;
            case DENY -> Rbac.Action.DENY;
            case LOG -> Rbac.Action.LOG;
            case UNRECOGNIZED -> throw new FieldError("action", r.getActionValue() + " (expected: ALLOW, DENY or LOG)");
        };
        Map<String, Rbac.Policy> policies = new LinkedHashMap<>();
        r.getPoliciesMap().forEach((name, p) -> policies.put(name,
                Fields.at("policies[" + name + "]", () -> policy(p))));
        return new Rbac.Rules(action, policies);
    }

    static Rbac.Policy policy(io.envoyproxy.envoy.config.rbac.v3.Policy p) {
        Fields.onlyKnown(p, Set.of("permissions", "principals"), Set.of());
        List<Permission> permissions = Fields.each("permissions", p.getPermissionsList(), RbacParser::permission);
        List<Principal> principals = Fields.each("principals", p.getPrincipalsList(), RbacParser::principal);
        return Fields.record("", () -> new Rbac.Policy(permissions, principals));
    }

    static Permission permission(io.envoyproxy.envoy.config.rbac.v3.Permission p) {
        Fields.onlyKnown(p, Set.of("and_rules", "or_rules", "any", "header", "url_path", "destination_ip",
                "destination_port", "destination_port_range", "not_rule", "requested_server_name", "uri_template"),
                Set.of());
        return switch (p.getRuleCase()) {
            case ANY -> {
                if (!p.getAny()) {
                    throw new FieldError("any", "false (expected: true)");
                }
                yield new Permission.Any();
            }
            case AND_RULES -> new Permission.And(Fields.at("and_rules", () -> permissions(p.getAndRules())));
            case OR_RULES -> new Permission.Or(Fields.at("or_rules", () -> permissions(p.getOrRules())));
            case NOT_RULE -> new Permission.Not(Fields.at("not_rule", () -> permission(p.getNotRule())));
            case HEADER -> new Permission.Header(Fields.at("header",
                    () -> RouteConfigurationParser.header(p.getHeader())));
            case URL_PATH -> new Permission.UrlPath(Fields.at("url_path", () -> path(p.getUrlPath())));
            case DESTINATION_IP -> new Permission.DestinationIp(Fields.at("destination_ip",
                    () -> Fields.record("", () -> CoreParsers.cidr(p.getDestinationIp()))));
            case DESTINATION_PORT -> {
                if (p.getDestinationPort() < 0 || p.getDestinationPort() > 65535) {
                    throw new FieldError("destination_port", Integer.toUnsignedString(p.getDestinationPort())
                            + " (expected: 0..65535)");
                }
                yield new Permission.DestinationPort(p.getDestinationPort());
            }
            case DESTINATION_PORT_RANGE -> Fields.at("destination_port_range", () -> {
                var r = p.getDestinationPortRange();
                Fields.onlyKnown(r, Set.of("start", "end"), Set.of());
                // as Envoy checks it: both bounds in 0..65536 (the end is excluded), the start below the end
                for (var bound : List.of(Map.entry("start", r.getStart()), Map.entry("end", r.getEnd()))) {
                    if (bound.getValue() < 0 || bound.getValue() > 65536) {
                        throw new FieldError(bound.getKey(), bound.getValue() + " (expected: 0..65536)");
                    }
                }
                if (r.getStart() >= r.getEnd()) {
                    throw new FieldError("end", r.getEnd() + " (expected: above start, " + r.getStart() + ")");
                }
                return new Permission.DestinationPortRange(r.getStart(), r.getEnd());
            });
            case REQUESTED_SERVER_NAME -> new Permission.RequestedServerName(Fields.at("requested_server_name",
                    () -> CoreParsers.stringMatcher(p.getRequestedServerName())));
            case URI_TEMPLATE -> Fields.at("uri_template", () -> uriTemplate(p.getUriTemplate()));
            default -> throw new FieldError("rule", "unset (expected: one of and_rules, or_rules, any, header, "
                    + "url_path, destination_ip, destination_port, destination_port_range, not_rule, "
                    + "requested_server_name, uri_template)");
        };
    }

    /**
     * A {@code uri_template} permission: Envoy's URI template path matcher, the only extension of its kind, known by
     * its config type (the name is free); the template is checked as Envoy checks it.
     */
    private static Permission uriTemplate(io.envoyproxy.envoy.config.core.v3.TypedExtensionConfig e) {
        Fields.onlyKnown(e, Set.of("name", "typed_config"), Set.of());
        String type = e.getTypedConfig().getTypeUrl().substring(e.getTypedConfig().getTypeUrl().lastIndexOf('/')
                + 1);
        if (!type.equals(URI_TEMPLATE_TYPE)) {
            throw new FieldError("typed_config.@type", (type.isEmpty() ? "unset" : type) + " (expected: "
                    + URI_TEMPLATE_TYPE + ")");
        }
        var c = Fields.at("typed_config", () -> RouteConfigurationParser.unpack(e.getTypedConfig(),
                io.envoyproxy.envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig.class, "@type"));
        return Fields.at("typed_config", () -> {
            Fields.onlyKnown(c, Set.of("path_template"), Set.of());
            String template = c.getPathTemplate();
            if (template.isEmpty() || template.length() > 256) {
                throw new FieldError("path_template", "\"" + template + "\" (expected: 1 to 256 characters)");
            }
            try {
                UriTemplates.regex(template);
            } catch (IllegalArgumentException bad) {
                throw new FieldError("path_template", "\"" + template + "\" " + bad.getMessage());
            }
            return new Permission.UriTemplate(template);
        });
    }

    private static List<Permission> permissions(io.envoyproxy.envoy.config.rbac.v3.Permission.Set s) {
        Fields.onlyKnown(s, Set.of("rules"), Set.of());
        if (s.getRulesCount() == 0) {
            throw new FieldError("rules", "[] (expected: at least one rule)");
        }
        return Fields.each("rules", s.getRulesList(), RbacParser::permission);
    }

    static Principal principal(io.envoyproxy.envoy.config.rbac.v3.Principal p) {
        Fields.onlyKnown(p, Set.of("and_ids", "or_ids", "any", "authenticated", "source_ip", "direct_remote_ip",
                "remote_ip", "header", "url_path", "not_id", "metadata"), Set.of());
        return switch (p.getIdentifierCase()) {
            case ANY -> {
                if (!p.getAny()) {
                    throw new FieldError("any", "false (expected: true)");
                }
                yield new Principal.Any();
            }
            case AND_IDS -> new Principal.And(Fields.at("and_ids", () -> principals(p.getAndIds())));
            case OR_IDS -> new Principal.Or(Fields.at("or_ids", () -> principals(p.getOrIds())));
            case NOT_ID -> new Principal.Not(Fields.at("not_id", () -> principal(p.getNotId())));
            case AUTHENTICATED -> Fields.at("authenticated", () -> {
                var a = p.getAuthenticated();
                Fields.onlyKnown(a, Set.of("principal_name"), Set.of());
                return new Principal.Authenticated(a.hasPrincipalName() ? Fields.at("principal_name",
                        () -> CoreParsers.stringMatcher(a.getPrincipalName())) : null);
            });
            case SOURCE_IP -> address(Principal.AddressKind.SOURCE_IP, "source_ip", p.getSourceIp());
            case DIRECT_REMOTE_IP -> address(Principal.AddressKind.DIRECT_REMOTE_IP, "direct_remote_ip",
                    p.getDirectRemoteIp());
            case REMOTE_IP -> address(Principal.AddressKind.REMOTE_IP, "remote_ip", p.getRemoteIp());
            case HEADER -> new Principal.Header(Fields.at("header",
                    () -> RouteConfigurationParser.header(p.getHeader())));
            case URL_PATH -> new Principal.UrlPath(Fields.at("url_path", () -> path(p.getUrlPath())));
            case METADATA -> new Principal.Metadata(Fields.at("metadata", () -> jwtMetadata(p.getMetadata())));
            default -> throw new FieldError("identifier", "unset (expected: one of and_ids, or_ids, any, "
                    + "authenticated, source_ip, direct_remote_ip, remote_ip, header, url_path, not_id, metadata)");
        };
    }

    /**
     * A {@code metadata} principal in the shapes istiod writes for {@code requestPrincipals} and
     * {@code request.auth.*}: the JWT authentication filter's metadata ({@code envoy.filters.http.jwt_authn}), a path
     * of keys, and a value matched as a string, a list element, either of those ({@code or_match}), a boolean or its
     * presence. Other filters' metadata is refused by name: Inmesh keeps no other dynamic metadata.
     */
    private static MetadataMatcher jwtMetadata(io.envoyproxy.envoy.type.matcher.v3.MetadataMatcher m) {
        return metadataMatcher(m, Set.of(JwtAuthnParser.NAME), "the only filter whose dynamic metadata it keeps "
                + "for RBAC principals");
    }

    /**
     * A metadata matcher on the dynamic metadata of one of {@code namespaces} (the filters whose metadata Inmesh keeps
     * where the matcher is read, {@code why}): a path of keys and a value matcher; another namespace is refused.
     */
    static MetadataMatcher metadataMatcher(io.envoyproxy.envoy.type.matcher.v3.MetadataMatcher m,
                                           Set<String> namespaces, String why) {
        Fields.onlyKnown(m, Set.of("filter", "path", "value", "invert"), Set.of());
        if (!namespaces.contains(m.getFilter())) {
            throw new FieldError("filter", "\"" + m.getFilter() + "\" is not supported by Inmesh (expected: "
                    + String.join(" or ", new java.util.TreeSet<>(namespaces)) + ", " + why + ")");
        }
        if (m.getPathCount() == 0) {
            throw new FieldError("path", "[] (expected: at least one key)");
        }
        List<String> path = Fields.each("path", m.getPathList(), seg -> {
            Fields.onlyKnown(seg, Set.of("key"), Set.of());
            if (seg.getKey().isEmpty()) {
                throw new FieldError("key", "\"\" (expected: a non-empty key)");
            }
            return seg.getKey();
        });
        if (!m.hasValue()) {
            throw new FieldError("value", "unset (expected: a value matcher)");
        }
        MetadataMatcher.ValueMatcher value = Fields.at("value", () -> valueMatcher(m.getValue()));
        return new MetadataMatcher(m.getFilter(), path, value, m.getInvert());
    }

    private static MetadataMatcher.ValueMatcher valueMatcher(io.envoyproxy.envoy.type.matcher.v3.ValueMatcher v) {
        Fields.onlyKnown(v, Set.of("string_match", "list_match", "or_match", "present_match", "bool_match"),
                Set.of());
        return switch (v.getMatchPatternCase()) {
            case STRING_MATCH -> new MetadataMatcher.ValueMatcher.StringMatch(Fields.at("string_match",
                    () -> CoreParsers.stringMatcher(v.getStringMatch())));
            case LIST_MATCH -> Fields.at("list_match", () -> {
                Fields.onlyKnown(v.getListMatch(), Set.of("one_of"), Set.of());
                if (!v.getListMatch().hasOneOf()) {
                    throw new FieldError("one_of", "unset (expected: a value matcher)");
                }
                return new MetadataMatcher.ValueMatcher.ListOneOf(Fields.at("one_of",
                        () -> valueMatcher(v.getListMatch().getOneOf())));
            });
            case OR_MATCH -> Fields.at("or_match", () -> {
                Fields.onlyKnown(v.getOrMatch(), Set.of("value_matchers"), Set.of());
                if (v.getOrMatch().getValueMatchersCount() < 2) {
                    throw new FieldError("value_matchers", v.getOrMatch().getValueMatchersCount()
                            + " (expected: at least 2)");
                }
                return new MetadataMatcher.ValueMatcher.Or(Fields.each("value_matchers",
                        v.getOrMatch().getValueMatchersList(), RbacParser::valueMatcher));
            });
            case PRESENT_MATCH -> new MetadataMatcher.ValueMatcher.Present(v.getPresentMatch());
            case BOOL_MATCH -> new MetadataMatcher.ValueMatcher.Bool(v.getBoolMatch());
            default -> throw new FieldError("match_pattern", "unset (expected: one of string_match, list_match, "
                    + "or_match, present_match, bool_match)");
        };
    }

    private static Principal address(Principal.AddressKind kind, String field,
                                     io.envoyproxy.envoy.config.core.v3.CidrRange c) {
        return Fields.at(field, () -> {
            Fields.onlyKnown(c, Set.of("address_prefix", "prefix_len"), Set.of());
            return new Principal.RemoteAddress(kind, Fields.record("", () -> CoreParsers.cidr(c)));
        });
    }

    private static List<Principal> principals(io.envoyproxy.envoy.config.rbac.v3.Principal.Set s) {
        Fields.onlyKnown(s, Set.of("ids"), Set.of());
        if (s.getIdsCount() == 0) {
            throw new FieldError("ids", "[] (expected: at least one id)");
        }
        return Fields.each("ids", s.getIdsList(), RbacParser::principal);
    }

    /** A {@code type.matcher.v3.PathMatcher}: its {@code path} string matcher. */
    private static dev.inmesh.api.config.core.StringMatcher path(io.envoyproxy.envoy.type.matcher.v3.PathMatcher m) {
        Fields.onlyKnown(m, Set.of("path"), Set.of());
        if (!m.hasPath()) {
            throw new FieldError("rule", "unset (expected: path)");
        }
        return Fields.at("path", () -> CoreParsers.stringMatcher(m.getPath()));
    }
}
