package dev.inmesh.runtime.xds;

import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitRequest;
import io.envoyproxy.envoy.service.ratelimit.v3.RateLimitResponse;

/**
 * Istio's "Enabling Rate Limits using Envoy" task, global part, as the workload receives it once its two EnvoyFilter
 * patches are applied, for tests on every path: the rate limit filter its {@code HTTP_FILTER} patch inserts before
 * the router ({@code INSERT_BEFORE envoy.filters.http.router}: domain {@code ratelimit},
 * {@code failure_mode_deny}, the service's {@code outbound|8081||ratelimit.default.svc.cluster.local} cluster with
 * its authority, {@code transport_api_version: V3}), and the {@code rate_limits} its {@code VIRTUAL_HOST} patch
 * merges into the virtual host (the task's {@code request_headers} action on {@code :path} as {@code PATH}), with two
 * entries of this fixture's own: one that needs {@code x-user} (dropped without it) and one from the peer's address
 * and a header match.
 */
public final class IstioGlobalRateLimit {
    private IstioGlobalRateLimit() {}

    /** The rate limit service's cluster, as the task names it. */
    public static final String CLUSTER = "outbound|8081||ratelimit.default.svc.cluster.local";

    /** The filter as the task's patch writes it, an {@code http_filters} list item ({@code timeout} and deny). */
    public static String filter(String timeout, boolean failureModeDeny) {
        return """
                - name: envoy.filters.http.ratelimit
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
                    domain: ratelimit
                    failure_mode_deny: %s
                    timeout: %s
                    rate_limit_service:
                      grpc_service:
                        envoy_grpc:
                          cluster_name: %s
                          authority: ratelimit.default.svc.cluster.local
                      transport_api_version: V3
                """.formatted(failureModeDeny, timeout, CLUSTER);
    }

    /**
     * A {@code response_headers_to_add} to append to {@link #filter}: a value Envoy formats from the request, the
     * refusal's status and its headers so far (the service's {@code x-rl-reason}).
     */
    public static final String RESPONSE_HEADERS_TO_ADD = """
                response_headers_to_add:
                - header: {key: x-limited, value: "%REQ(x-user)% %RESPONSE_CODE% %RESP(x-rl-reason)% 100%%"}
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
            """;

    /** The origin {@link #CORS_POLICY} allows. */
    public static final String ORIGIN = "https://shop.example";

    /**
     * A CORS policy as istiod writes a VirtualService's {@code corsPolicy}, a flow map for a {@code
     * typed_per_filter_config}: {@link #ORIGIN} may send GET and POST.
     */
    public static final String CORS_POLICY = "{\"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3"
            + ".CorsPolicy, allow_origin_string_match: [{exact: \"" + ORIGIN + "\"}], allow_methods: \"GET,POST\"}";

    /**
     * Istio's fault and CORS filters, {@code http_filters} list items: the fault aborts with 418 a request that has an
     * {@code x-abort} header; the CORS filter applies the routes' and virtual hosts' policies ({@link #CORS_POLICY}).
     */
    public static final String FAULT_AND_CORS = """
            - name: envoy.filters.http.fault
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                headers: [{name: x-abort, present_match: true}]
                abort: {http_status: 418, percentage: {numerator: 100}}
            - name: envoy.filters.http.cors
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
            """;

    /** The virtual host's {@code rate_limits}, to indent to the virtual host's fields. */
    public static final String VIRTUAL_HOST_RATE_LIMITS = """
            rate_limits:
            - actions:
              - request_headers:
                  header_name: ":path"
                  descriptor_key: "PATH"
            - actions:
              - generic_key: {descriptor_value: per-user}
              - request_headers: {header_name: x-user, descriptor_key: USER}
            - actions:
              - remote_address: {}
              - header_value_match:
                  descriptor_value: get
                  headers:
                  - name: ":method"
                    string_match: {exact: GET}
            """;

    /** The service's cluster ({@link #CLUSTER}, YAML under {@code clusters:}) on 127.0.0.1:{@code port}, HTTP/2. */
    public static String cluster(int port) {
        return dev.inmesh.runtime.router.IstioExtAuthz.cluster(port, true)
                .replace(dev.inmesh.runtime.router.IstioExtAuthz.CLUSTER, CLUSTER);
    }

    /**
     * A grpc-java rate limit service on 127.0.0.1 that records each request in {@code asked} and answers what
     * {@code answer} makes of it (null: it never answers).
     */
    public static io.grpc.Server service(java.util.List<RateLimitRequest> asked,
                                         java.util.function.Function<RateLimitRequest, RateLimitResponse> answer)
            throws java.io.IOException {
        return io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder
                .forAddress(new java.net.InetSocketAddress("127.0.0.1", 0))
                .addService(new io.envoyproxy.envoy.service.ratelimit.v3.RateLimitServiceGrpc
                        .RateLimitServiceImplBase() {
                    @Override
                    public void shouldRateLimit(RateLimitRequest request,
                                                io.grpc.stub.StreamObserver<RateLimitResponse> o) {
                        asked.add(request);
                        RateLimitResponse r = answer.apply(request);
                        if (r != null) {
                            o.onNext(r);
                            o.onCompleted();
                        }
                    }
                }).build().start();
    }

    /** The first descriptor's first value of a request: the task's {@code PATH}. */
    public static String path(RateLimitRequest r) {
        return r.getDescriptors(0).getEntries(0).getValue();
    }

    /** A request's descriptors as {@code key=value,key=value} strings. */
    public static java.util.List<String> descriptors(RateLimitRequest r) {
        return r.getDescriptorsList().stream().map(d -> d.getEntriesList().stream()
                .map(e -> e.getKey() + "=" + e.getValue())
                .collect(java.util.stream.Collectors.joining(","))).toList();
    }
}
