package dev.inmesh.runtime.router;

/**
 * The RBAC HTTP filters istiod puts first in an inbound connection manager for a workload's AuthorizationPolicies,
 * in the shape {@code istioctl proxy-config listener -o yaml} prints them: the DENY policies in one filter, the ALLOW
 * policies in the next, policy names {@code ns[NS]-policy[NAME]-rule[N]}, each rule an {@code and_rules} of
 * {@code or_rules} (one per field of the rule's {@code to}), each source an {@code and_ids} of {@code or_ids} (one per
 * field of its {@code from} and {@code when}).
 */
public final class IstioRbac {
    private IstioRbac() {}

    /** The DENY filter of {@code deny-admin}: {@code to: [{operation: {paths: ["/admin*"]}}]}. */
    public static final String DENY_ADMIN = """
            - name: envoy.filters.http.rbac
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                rules:
                  action: DENY
                  policies:
                    ns[default]-policy[deny-admin]-rule[0]:
                      permissions:
                      - and_rules:
                          rules:
                          - or_rules:
                              rules:
                              - url_path: {path: {prefix: /admin}}
                      principals:
                      - and_ids:
                          ids:
                          - any: true
                shadow_rules_stat_prefix: istio_dry_run_allow_
            """;

    /**
     * The ALLOW filter of two policies: {@code allow-productpage} ({@code from: [{source: {principals:
     * ["cluster.local/ns/default/sa/bookinfo-productpage"]}}], to: [{operation: {methods: ["GET"]}}]}) and
     * {@code allow-loopback-token} ({@code from: [{source: {ipBlocks: ["127.0.0.0/8"]}}], to: [{operation: {methods:
     * ["GET"], paths: ["/reviews/*"]}}], when: [{key: request.headers[x-token], values: ["secret"]}]}).
     */
    public static final String ALLOW = """
            - name: envoy.filters.http.rbac
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                rules:
                  policies:
                    ns[default]-policy[allow-productpage]-rule[0]:
                      permissions:
                      - and_rules:
                          rules:
                          - or_rules:
                              rules:
                              - header: {name: ":method", string_match: {exact: GET}}
                      principals:
                      - and_ids:
                          ids:
                          - or_ids:
                              ids:
                              - authenticated:
                                  principal_name: {exact: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"}
                    ns[default]-policy[allow-loopback-token]-rule[0]:
                      permissions:
                      - and_rules:
                          rules:
                          - or_rules:
                              rules:
                              - header: {name: ":method", string_match: {exact: GET}}
                          - or_rules:
                              rules:
                              - url_path: {path: {prefix: /reviews/}}
                      principals:
                      - and_ids:
                          ids:
                          - or_ids:
                              ids:
                              - direct_remote_ip: {address_prefix: 127.0.0.0, prefix_len: 8}
                          - or_ids:
                              ids:
                              - header: {name: x-token, string_match: {exact: secret}}
                shadow_rules_stat_prefix: istio_dry_run_allow_
            """;

    /**
     * The RBAC network filters istiod puts first on a workload's TCP chains (and on its passthrough chains) for the
     * same kinds of policy, stat prefix {@code tcp.}: a DENY filter of {@code deny-blocked} ({@code from: [{source:
     * {ipBlocks: ["127.0.0.2/32"]}}]}) and an ALLOW filter of {@code allow-productpage} ({@code from: [{source:
     * {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}}]}) and {@code allow-local}
     * ({@code from: [{source: {remoteIpBlocks: ["127.0.0.1/32"]}}]}). Indented as a chain's {@code filters} items.
     */
    public static final String TCP_DENY_THEN_ALLOW = """
            - name: envoy.filters.network.rbac
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
                rules:
                  action: DENY
                  policies:
                    ns[default]-policy[deny-blocked]-rule[0]:
                      permissions:
                      - and_rules:
                          rules:
                          - any: true
                      principals:
                      - and_ids:
                          ids:
                          - or_ids:
                              ids:
                              - remote_ip: {address_prefix: 127.0.0.2, prefix_len: 32}
                stat_prefix: tcp.
                shadow_rules_stat_prefix: istio_dry_run_allow_
            - name: envoy.filters.network.rbac
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
                rules:
                  policies:
                    ns[default]-policy[allow-productpage]-rule[0]:
                      permissions:
                      - and_rules:
                          rules:
                          - any: true
                      principals:
                      - and_ids:
                          ids:
                          - or_ids:
                              ids:
                              - authenticated:
                                  principal_name: {exact: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"}
                    ns[default]-policy[allow-local]-rule[0]:
                      permissions:
                      - and_rules:
                          rules:
                          - any: true
                      principals:
                      - and_ids:
                          ids:
                          - or_ids:
                              ids:
                              - direct_remote_ip: {address_prefix: 127.0.0.1, prefix_len: 32}
                shadow_rules:
                  action: DENY
                  policies:
                    ns[default]-policy[dry-run-deny-local]-rule[0]:
                      permissions: [{any: true}]
                      principals: [{direct_remote_ip: {address_prefix: 127.0.0.1, prefix_len: 32}}]
                stat_prefix: tcp.
                shadow_rules_stat_prefix: istio_dry_run_deny_
            """;

    /**
     * A route configuration {@code "9080"} whose virtual host replaces the RBAC filters' config (by their name,
     * {@code envoy.filters.http.rbac}) with a DENY of everything, and whose route {@code /open} replaces it with an
     * {@code RBACPerRoute} without {@code rbac}: nothing is denied there.
     */
    public static final String PER_ROUTE = """
            name: "9080"
            virtual_hosts:
            - name: vh
              domains: ["*"]
              typed_per_filter_config:
                envoy.filters.http.rbac:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute
                  rbac:
                    rules:
                      action: DENY
                      policies:
                        all: {permissions: [{any: true}], principals: [{any: true}]}
              routes:
              - match: {prefix: /open}
                route: {cluster: c}
                typed_per_filter_config:
                  envoy.filters.http.rbac:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute
              - match: {prefix: /}
                route: {cluster: c}
            """;

    /** Both filters, DENY first, as istiod orders them. */
    public static final String DENY_THEN_ALLOW = DENY_ADMIN + ALLOW;

    /** A config (YAML) with {@code filters} put first in the {@code http_filters} of its connection manager. */
    public static String first(String filters, String config) {
        int at = config.indexOf("http_filters:\n");
        if (at < 0) {
            throw new IllegalArgumentException("no http_filters in " + config);
        }
        int next = at + "http_filters:\n".length();
        int indent = 0;
        while (config.charAt(next + indent) == ' ') {
            indent++;
        }
        return config.substring(0, next) + filters.indent(indent) + config.substring(next);
    }

    /** {@code config} with {@code filters} (YAML list items) inserted right before its router filter. */
    public static String beforeRouter(String filters, String config) {
        int at = config.indexOf("- name: envoy.filters.http.router\n");
        if (at < 0) {
            throw new IllegalArgumentException("no router filter in " + config);
        }
        int lineStart = config.lastIndexOf('\n', at) + 1;
        return config.substring(0, lineStart) + filters.indent(at - lineStart) + config.substring(lineStart);
    }
}
