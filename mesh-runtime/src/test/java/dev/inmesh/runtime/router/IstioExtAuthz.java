package dev.inmesh.runtime.router;

import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;

/**
 * The HTTP filters istiod (its one-provider form of Istio 1.10 on, as its master branch writes it: Envoy's
 * {@code allowed_headers} at the filter's top level) puts in an inbound
 * connection manager for an AuthorizationPolicy with {@code action: CUSTOM} and its {@code meshConfig
 * .extensionProviders[]} entry, in the shape {@code istioctl proxy-config listener -o yaml} prints them: an RBAC filter
 * with only {@code shadow_rules} (the CUSTOM policy's rules, policy names {@code istio-ext-authz-ns[NS]-policy[NAME]
 * -rule[N]}, {@code shadow_rules_stat_prefix: istio_ext_authz_}), then {@code envoy.filters.http.ext_authz}, enabled by
 * the shadow filter's {@code istio_ext_authz_shadow_effective_policy_id}, to the provider's
 * {@code outbound|PORT||HOST} cluster.
 */
public final class IstioExtAuthz {
    private IstioExtAuthz() {}

    /** The provider's cluster, as istiod names it for {@code service: ext-authz.foo.svc.cluster.local, port: 8000}. */
    public static final String CLUSTER = "outbound|8000||ext-authz.foo.svc.cluster.local";

    /** The shadow RBAC filter of {@code ext-authz}: {@code to: [{operation: {paths: ["/secure*"]}}]}. */
    public static final String SHADOW = """
            - name: envoy.filters.http.rbac
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                shadow_rules:
                  action: DENY
                  policies:
                    istio-ext-authz-ns[default]-policy[ext-authz]-rule[0]:
                      permissions:
                      - and_rules:
                          rules:
                          - or_rules:
                              rules:
                              - url_path: {path: {prefix: /secure}}
                      principals:
                      - and_ids:
                          ids:
                          - any: true
                shadow_rules_stat_prefix: istio_ext_authz_
            """;

    /**
     * istiod's {@code filter_enabled_metadata} of the ext_authz filter (YAML at the level of its typed config's
     * fields): the shadow RBAC filter matched a CUSTOM policy.
     */
    private static final String ENABLED = """
                filter_enabled_metadata:
                  filter: envoy.filters.http.rbac
                  path:
                  - key: istio_ext_authz_shadow_effective_policy_id
                  value:
                    string_match: {prefix: istio-ext-authz}
            """;

    /**
     * The ext_authz filter of an {@code envoyExtAuthzHttp} provider: {@code timeout}, {@code failOpen},
     * {@code pathPrefix: /check}, {@code includeRequestHeadersInCheck: [x-ext-authz]},
     * {@code includeAdditionalHeadersInCheck: {x-ext-authz-added: from-istio}}, {@code headersToUpstreamOnAllow:
     * [x-user]}, {@code headersToDownstreamOnDeny: [x-denied-reason]}, {@code headersToDownstreamOnAllow:
     * [x-authz-decision]}.
     */
    public static String http(String timeout, boolean failOpen) {
        return """
                - name: envoy.filters.http.ext_authz
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
                    allowed_headers:
                      patterns:
                      - {exact: x-ext-authz, ignore_case: true}
                    failure_mode_allow: %s
                %s    http_service:
                      authorization_request:
                        headers_to_add:
                        - {key: x-ext-authz-added, value: from-istio}
                      authorization_response:
                        allowed_client_headers:
                          patterns:
                          - {exact: x-denied-reason, ignore_case: true}
                        allowed_client_headers_on_success:
                          patterns:
                          - {exact: x-authz-decision, ignore_case: true}
                        allowed_upstream_headers:
                          patterns:
                          - {exact: x-user, ignore_case: true}
                      path_prefix: /check
                      server_uri:
                        cluster: %s
                        timeout: %s
                        uri: http://ext-authz.foo.svc.cluster.local
                    transport_api_version: V3
                """.formatted(failOpen, ENABLED, CLUSTER, timeout);
    }

    /**
     * The ext_authz filter of an {@code envoyExtAuthzGrpc} provider: {@code timeout}, {@code failOpen},
     * {@code statusOnError: "503"}; istiod's {@code clear_route_cache} and authority.
     */
    public static String grpc(String timeout, boolean failOpen) {
        return """
                - name: envoy.filters.http.ext_authz
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
                    clear_route_cache: true
                    failure_mode_allow: %s
                %s    grpc_service:
                      envoy_grpc:
                        authority: ext-authz.foo.svc.cluster.local
                        cluster_name: %s
                      timeout: %s
                    status_on_error: {code: ServiceUnavailable}
                    transport_api_version: V3
                """.formatted(failOpen, ENABLED, CLUSTER, timeout);
    }

    /**
     * An ext_authz filter ({@link #http} or {@link #grpc}) without istiod's {@code filter_enabled_metadata}, as a
     * hand-written Envoy config has it: every request is checked, no shadow RBAC filter needed before it.
     */
    public static String unconditional(String filter) {
        return filter.replace(ENABLED, "");
    }

    /**
     * An ext_authz filter ({@link #http} or {@link #grpc}) with the {@code with_request_body} istiod writes for the
     * provider's {@code includeRequestBodyInCheck: {maxRequestBytes: MAX, allowPartialMessage, packAsBytes}} (its
     * false fields left out, as {@code istioctl proxy-config} prints them).
     */
    public static String withBody(String filter, int maxRequestBytes, boolean allowPartialMessage,
                                  boolean packAsBytes) {
        String body = "    with_request_body:\n"
                + (allowPartialMessage ? "      allow_partial_message: true\n" : "")
                + "      max_request_bytes: " + maxRequestBytes + "\n"
                + (packAsBytes ? "      pack_as_bytes: true\n" : "");
        return filter.replace("    transport_api_version: V3\n", "    transport_api_version: V3\n" + body);
    }

    /**
     * The network filters istiod puts on a TCP chain for the same CUSTOM policy of a gRPC provider (YAML list items
     * under the chain's {@code filters}): the shadow RBAC network filter, here of a policy {@code from: [{source:
     * {ipBlocks: ["127.0.0.1", "127.0.0.2"]}}]}, then {@code envoy.filters.network.ext_authz} with {@code timeout}.
     */
    public static String tcp(String timeout) {
        return """
                - name: envoy.filters.network.rbac
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
                    shadow_rules:
                      action: DENY
                      policies:
                        istio-ext-authz-ns[default]-policy[ext-authz]-rule[0]:
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
                                  - direct_remote_ip: {address_prefix: 127.0.0.2, prefix_len: 32}
                    shadow_rules_stat_prefix: istio_ext_authz_
                    stat_prefix: tcp.
                - name: envoy.filters.network.ext_authz
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.network.ext_authz.v3.ExtAuthz
                %s    grpc_service:
                      envoy_grpc:
                        authority: ext-authz.foo.svc.cluster.local
                        cluster_name: %s
                      timeout: %s
                    stat_prefix: tcp.
                    transport_api_version: V3
                """.formatted(ENABLED.replace("envoy.filters.http.rbac", "envoy.filters.network.rbac"), CLUSTER,
                timeout);
    }

    /**
     * A POST of {@code chunks} to {@code to} (its server, host and URI), its status and body: one chunk is sent whole;
     * more stream, the first at once, the others once the authorizer was asked once more ({@code asked} counts the
     * checks) or half a second went by without a check.
     */
    public static String post(io.vertx.core.Vertx vertx, io.vertx.core.http.RequestOptions to,
                              java.util.function.IntSupplier asked, String... chunks) throws Exception {
        io.vertx.core.http.HttpClient c = vertx.createHttpClient();
        try {
            return post(vertx, c, to, asked, chunks);
        } finally {
            c.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    /** As the other {@code post}, through {@code c}. */
    public static String post(io.vertx.core.Vertx vertx, io.vertx.core.http.HttpClient c,
                              io.vertx.core.http.RequestOptions to, java.util.function.IntSupplier asked,
                              String... chunks) throws Exception {
        return dev.inmesh.runtime.upstream.TestEventLoop.onEventLoop(vertx, () -> c.request(
                new io.vertx.core.http.RequestOptions(to).setMethod(io.vertx.core.http.HttpMethod.POST))
                .compose(req -> {
                    if (chunks.length == 1) {
                        return req.send(chunks[0]);
                    }
                    req.setChunked(true);
                    int before = asked.getAsInt();
                    req.write(chunks[0]);
                    long[] timer = {0};
                    int[] waited = {0};
                    timer[0] = vertx.setPeriodic(20, t -> {
                        if (asked.getAsInt() > before || ++waited[0] > 25) {
                            vertx.cancelTimer(timer[0]);
                            for (int i = 1; i < chunks.length - 1; i++) {
                                req.write(chunks[i]);
                            }
                            req.end(chunks[chunks.length - 1]);
                        }
                    });
                    return req.response();
                }).compose(resp -> resp.body().map(b -> resp.statusCode() + " " + b)))
                .await(10, java.util.concurrent.TimeUnit.SECONDS);
    }

    /** A gRPC authorizer on loopback that answers each check as {@code decide} says; started. */
    public static io.grpc.Server grpcAuthorizer(java.util.function.Function<CheckRequest, CheckResponse> decide)
            throws java.io.IOException {
        return io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder
                .forAddress(new java.net.InetSocketAddress("127.0.0.1", 0))
                .addService(new io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc.AuthorizationImplBase() {
                    @Override
                    public void check(CheckRequest request, io.grpc.stub.StreamObserver<CheckResponse> o) {
                        o.onNext(decide.apply(request));
                        o.onCompleted();
                    }
                }).build().start();
    }

    /** The provider's cluster ({@link #CLUSTER}, YAML under {@code clusters:}) on 127.0.0.1:{@code port}. */
    public static String cluster(int port, boolean http2) {
        return """
                  - name: "%s"
                    type: STATIC
                    connect_timeout: 1s
                %s    load_assignment:
                      cluster_name: "%s"
                      endpoints:
                      - lb_endpoints:
                        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(CLUSTER, !http2 ? "" : """
                    typed_extension_protocol_options:
                      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
                        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
                        explicit_http_config: {http2_protocol_options: {}}
                """, CLUSTER, port);
    }
}
