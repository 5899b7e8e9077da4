package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.api.config.route.RouteConfiguration;
import java.time.Duration;
import java.util.List;

/**
 * Envoy's HTTP connection manager: where the route table comes from and which HTTP filters run.
 *
 * @param statPrefix the stat prefix
 * @param rdsRouteConfigName the RDS route configuration name, or null when the routes are inline
 * @param routeConfig the inline route configuration, or null when RDS names one
 * @param httpFilters the HTTP filters, the router last
 * @param streamIdleTimeout the stream idle timeout, or null for Envoy's default ({@link #DEFAULT_STREAM_IDLE_TIMEOUT});
 *                          {@link Duration#ZERO} disables it
 * @param useRemoteAddress Envoy's {@code use_remote_address}: false (Istio's sidecars) takes the downstream remote
 *                         address from {@code x-forwarded-for} and passes the header on as it came; true (Istio's
 *                         gateways, an edge proxy) takes the connection's peer, appends it to {@code x-forwarded-for},
 *                         sets {@code x-forwarded-proto} from the connection, and marks an external request with
 *                         {@code x-envoy-external-address}
 * @param xffNumTrustedHops Envoy's {@code xff_num_trusted_hops}: the proxies in front of this one whose
 *                          {@code x-forwarded-for} entries are trusted; the downstream remote address is the entry
 *                          that many hops from the right (with {@code use_remote_address: false}, one more)
 * @param generateRequestId whether {@code x-request-id} is generated when absent (default true)
 * @param preserveExternalRequestId whether an external {@code x-request-id} is kept
 * @param http1 the HTTP/1 options ({@code http_protocol_options}); null for Envoy's defaults
 * @param maxRequestHeadersKb the largest request head taken, request line and headers, in KiB
 *                            ({@code max_request_headers_kb}: 1 to 8192, Envoy's default 60; 0 for the default)
 * @param pathNormalization how request paths are normalized before routing; null for none (Envoy's default)
 * @param serverHeader the {@code server} header of responses; null for Envoy's default ({@code server: envoy})
 * @param maxRequestHeadersCount the most request headers taken ({@code common_http_protocol_options.max_headers_count},
 *                               Envoy's default 100; 0 for the default); more are answered 431
 * @param websocketUpgrade whether {@code upgrade_configs} enables the {@code websocket} upgrade (Istio's connection
 *                         managers do); without it an upgrade request is answered 403, as Envoy answers it
 * @param codecType the downstream codec ({@code codec_type}); null for {@link CodecType#AUTO}, Envoy's default and
 *                  what Istio writes
 * @param forwardClientCert what happens to a request's {@code x-forwarded-client-cert}
 *                          ({@code forward_client_cert_details}, {@code set_current_client_cert_details}); null for
 *                          {@link ForwardClientCert#SANITIZE}, Envoy's default
 * @param lifetimes how long its downstream connections and requests may live
 *                  ({@code common_http_protocol_options.idle_timeout}, {@code max_connection_duration},
 *                  {@code max_requests_per_connection}, {@code max_stream_duration}, and {@code drain_timeout}); null
 *                  for {@link ConnectionLifetimes#DEFAULTS}
 * @param http2 the settings of its HTTP/2 connections ({@code http2_protocol_options}: the streams a client may open
 *              at once, the windows, the header table); null for Envoy's defaults ({@link Http2ProtocolOptions#DEFAULTS})
 * @param tracing its {@code tracing}: which requests are traced and where their spans go; null when it traces none
 * @param alwaysSetRequestIdInResponse whether every response gets the request's {@code x-request-id}
 *                                     ({@code always_set_request_id_in_response}; Envoy sets it anyway on the
 *                                     response to a request with a trusted {@code x-envoy-force-trace})
 * @param router its router filter's config ({@code suppress_envoy_headers}, {@code respect_expected_rq_timeout},
 *               {@code strict_check_headers}); null for Envoy's defaults ({@link RouterFilterConfig#DEFAULTS})
 * @param proxy100Continue Envoy's {@code proxy_100_continue} (istiod 1.23 and later set it on every connection
 *                         manager): a request's {@code Expect: 100-continue} goes upstream and the upstream's first
 *                         {@code 100 Continue} is relayed to the caller, who sends its body then, or never when the
 *                         upstream answers at once (417); without it the connection manager answers
 *                         {@code 100 Continue} itself and takes the expectation off the request
 * @param internalAddresses the ranges of its {@code internal_address_config} ({@code cidr_ranges}; istiod writes the
 *                          mesh networks' {@code fromCidr} there): a request whose {@code x-forwarded-for} holds one
 *                          address, in one of them (with {@code use_remote_address: true}: that came without the
 *                          header from a peer in one of them), is internal (its {@code x-envoy-*} control headers are
 *                          kept and honoured, and it gets {@code x-envoy-internal: true}); empty (Envoy's default since
 *                          1.33) for none; an {@code internal_address_config} without ranges is given Envoy's private
 *                          ranges by the parser
 * @param accessLogs its {@code access_log}: the file, stdout and stderr loggers its requests are logged by, in order;
 *                   empty when it names none (Inmesh's own access log setting then applies)
 * @param localReply its {@code local_reply_config}: how the answers the proxy gives itself are rewritten (mapped and
 *                   formatted) before they are sent; null for none, the answers as they are
 * @param remoteAddressOptions {@code skip_xff_append}, {@code append_x_forwarded_port} and
 *                             {@code internal_address_config.unix_sockets}; null for Envoy's defaults
 *                             ({@link RemoteAddressOptions#DEFAULTS})
 * @param hostNormalization what it does to a request's {@code Host} before routing ({@code strip_matching_host_port},
 *                          {@code strip_any_host_port}, {@code strip_trailing_host_dot}); null for nothing, Envoy's
 *                          default ({@link HostNormalization#NONE})
 * @param headersWithUnderscores what it does with a request header whose name has an underscore
 *                               ({@code common_http_protocol_options.headers_with_underscores_action}); null for
 *                               {@link HeadersWithUnderscoresAction#ALLOW}, Envoy's default
 */
public record HttpConnectionManager(String statPrefix, String rdsRouteConfigName, RouteConfiguration routeConfig,
                                    List<HttpFilter> httpFilters, Duration streamIdleTimeout,
                                    boolean useRemoteAddress, int xffNumTrustedHops, boolean generateRequestId,
                                    boolean preserveExternalRequestId, Http1Options http1,
                                    int maxRequestHeadersKb, PathNormalization pathNormalization,
                                    ServerHeader serverHeader, int maxRequestHeadersCount, boolean websocketUpgrade,
                                    CodecType codecType, ForwardClientCert forwardClientCert,
                                    ConnectionLifetimes lifetimes, Http2ProtocolOptions http2, Tracing tracing,
                                    boolean alwaysSetRequestIdInResponse, RouterFilterConfig router,
                                    boolean proxy100Continue, List<CidrRange> internalAddresses,
                                    List<AccessLogConfig> accessLogs, LocalReplyConfig localReply,
                                    RemoteAddressOptions remoteAddressOptions, HostNormalization hostNormalization,
                                    HeadersWithUnderscoresAction headersWithUnderscores)
        implements NetworkFilter {
    /**
     * Envoy's {@code codec_type} for TCP listeners: {@code AUTO} takes HTTP/2 from a client that opens with its
     * connection preface (or offers {@code h2} in ALPN) and HTTP/1 from any other; {@code HTTP1} and {@code HTTP2}
     * assume the one protocol, so a client speaking the other fails.
     */
    public enum CodecType { AUTO, HTTP1, HTTP2 }

    /** Envoy's default {@code stream_idle_timeout}. */
    public static final Duration DEFAULT_STREAM_IDLE_TIMEOUT = Duration.ofMinutes(5);

    /** Envoy's default {@code max_headers_count}. */
    public static final int DEFAULT_MAX_REQUEST_HEADERS_COUNT = 100;

    /** Envoy's default {@code max_request_headers_kb}. */
    public static final int DEFAULT_MAX_REQUEST_HEADERS_KB = 60;

    public HttpConnectionManager {
        hostNormalization = hostNormalization == null ? HostNormalization.NONE : hostNormalization;
        headersWithUnderscores = headersWithUnderscores == null ? HeadersWithUnderscoresAction.ALLOW
                : headersWithUnderscores;
        remoteAddressOptions = remoteAddressOptions == null ? RemoteAddressOptions.DEFAULTS : remoteAddressOptions;
        accessLogs = accessLogs == null ? List.of() : List.copyOf(accessLogs);
        internalAddresses = internalAddresses == null ? List.of() : List.copyOf(internalAddresses);
        http1 = http1 == null ? Http1Options.DEFAULTS : http1;
        router = router == null ? RouterFilterConfig.DEFAULTS : router;
        lifetimes = lifetimes == null ? ConnectionLifetimes.DEFAULTS : lifetimes;
        http2 = http2 == null ? Http2ProtocolOptions.DEFAULTS : http2;
        codecType = codecType == null ? CodecType.AUTO : codecType;
        forwardClientCert = forwardClientCert == null ? ForwardClientCert.SANITIZE : forwardClientCert;
        pathNormalization = pathNormalization == null ? PathNormalization.NONE : pathNormalization;
        serverHeader = serverHeader == null ? ServerHeader.DEFAULT : serverHeader;
        maxRequestHeadersCount = maxRequestHeadersCount == 0 ? DEFAULT_MAX_REQUEST_HEADERS_COUNT
                : maxRequestHeadersCount;
        Checks.check(maxRequestHeadersCount >= 1, "common_http_protocol_options.max_headers_count",
                maxRequestHeadersCount, ">= 1");
        maxRequestHeadersKb = maxRequestHeadersKb == 0 ? DEFAULT_MAX_REQUEST_HEADERS_KB : maxRequestHeadersKb;
        Checks.check(maxRequestHeadersKb >= 1 && maxRequestHeadersKb <= 8192, "max_request_headers_kb",
                maxRequestHeadersKb, "1 to 8192");
        statPrefix = statPrefix == null ? "" : statPrefix;
        Checks.check((rdsRouteConfigName == null) != (routeConfig == null), "route_specifier",
                rdsRouteConfigName == null && routeConfig == null ? "none" : "both", "exactly one of rds and route_config");
        httpFilters = Checks.list(httpFilters, "http_filters");
        Checks.check(xffNumTrustedHops >= 0, "xff_num_trusted_hops", xffNumTrustedHops, ">= 0");
        Checks.check(httpFilters.stream().filter(f -> f.fault() != null).count() <= 1, "http_filters",
                "two fault filters", "at most one fault filter that runs");
    }

    /**
     * A connection manager with its routes from RDS config {@code rdsRouteConfigName} and these HTTP filters, with
     * Envoy's defaults otherwise: request IDs generated, no {@code use_remote_address} or trusted hops, the default
     * timeouts, header limits, codec, path handling, server header and lifetimes, no tracing, access log or local reply
     * config of its own.
     */
    public static HttpConnectionManager of(String statPrefix, String rdsRouteConfigName, List<HttpFilter> httpFilters) {
        return new HttpConnectionManager(statPrefix, rdsRouteConfigName, null, httpFilters, null, false, 0, true, false,
                null, 0, null, null, 0, false, null, null, null, null, null, false, null, false, null, null, null,
                null, null, null);
    }

    /**
     * This connection manager with {@code internal_address_config}'s CIDR ranges; null (the default) keeps Envoy's
     * own idea of an internal address.
     */
    public HttpConnectionManager withInternalAddresses(List<CidrRange> ranges) {
        return new HttpConnectionManager(statPrefix, rdsRouteConfigName, routeConfig, httpFilters, streamIdleTimeout,
                useRemoteAddress, xffNumTrustedHops, generateRequestId, preserveExternalRequestId, http1,
                maxRequestHeadersKb, pathNormalization, serverHeader, maxRequestHeadersCount, websocketUpgrade,
                codecType, forwardClientCert, lifetimes, http2, tracing, alwaysSetRequestIdInResponse, router,
                proxy100Continue, ranges, accessLogs, localReply, remoteAddressOptions, hostNormalization,
                headersWithUnderscores);
    }

    /** The same connection manager with the given access logs. */
    public HttpConnectionManager withAccessLogs(List<AccessLogConfig> logs) {
        return new HttpConnectionManager(statPrefix, rdsRouteConfigName, routeConfig, httpFilters, streamIdleTimeout,
                useRemoteAddress, xffNumTrustedHops, generateRequestId, preserveExternalRequestId, http1,
                maxRequestHeadersKb, pathNormalization, serverHeader, maxRequestHeadersCount, websocketUpgrade,
                codecType, forwardClientCert, lifetimes, http2, tracing, alwaysSetRequestIdInResponse, router,
                proxy100Continue, internalAddresses, logs, localReply, remoteAddressOptions, hostNormalization,
                headersWithUnderscores);
    }

    /** The same connection manager with the given {@code local_reply_config} (null: none). */
    public HttpConnectionManager withLocalReply(LocalReplyConfig config) {
        return new HttpConnectionManager(statPrefix, rdsRouteConfigName, routeConfig, httpFilters, streamIdleTimeout,
                useRemoteAddress, xffNumTrustedHops, generateRequestId, preserveExternalRequestId, http1,
                maxRequestHeadersKb, pathNormalization, serverHeader, maxRequestHeadersCount, websocketUpgrade,
                codecType, forwardClientCert, lifetimes, http2, tracing, alwaysSetRequestIdInResponse, router,
                proxy100Continue, internalAddresses, accessLogs, config, remoteAddressOptions, hostNormalization,
                headersWithUnderscores);
    }

    /** The same connection manager with the given {@link RemoteAddressOptions} (null: Envoy's defaults). */
    public HttpConnectionManager withRemoteAddressOptions(RemoteAddressOptions options) {
        return new HttpConnectionManager(statPrefix, rdsRouteConfigName, routeConfig, httpFilters, streamIdleTimeout,
                useRemoteAddress, xffNumTrustedHops, generateRequestId, preserveExternalRequestId, http1,
                maxRequestHeadersKb, pathNormalization, serverHeader, maxRequestHeadersCount, websocketUpgrade,
                codecType, forwardClientCert, lifetimes, http2, tracing, alwaysSetRequestIdInResponse, router,
                proxy100Continue, internalAddresses, accessLogs, localReply, options, hostNormalization,
                headersWithUnderscores);
    }

    /** The same connection manager with the given {@link HostNormalization} (null: none, Envoy's default). */
    public HttpConnectionManager withHostNormalization(HostNormalization normalization) {
        return new HttpConnectionManager(statPrefix, rdsRouteConfigName, routeConfig, httpFilters, streamIdleTimeout,
                useRemoteAddress, xffNumTrustedHops, generateRequestId, preserveExternalRequestId, http1,
                maxRequestHeadersKb, pathNormalization, serverHeader, maxRequestHeadersCount, websocketUpgrade,
                codecType, forwardClientCert, lifetimes, http2, tracing, alwaysSetRequestIdInResponse, router,
                proxy100Continue, internalAddresses, accessLogs, localReply, remoteAddressOptions, normalization,
                headersWithUnderscores);
    }

    /** The same connection manager with the given {@link HeadersWithUnderscoresAction} (null: ALLOW). */
    public HttpConnectionManager withHeadersWithUnderscores(HeadersWithUnderscoresAction action) {
        return new HttpConnectionManager(statPrefix, rdsRouteConfigName, routeConfig, httpFilters, streamIdleTimeout,
                useRemoteAddress, xffNumTrustedHops, generateRequestId, preserveExternalRequestId, http1,
                maxRequestHeadersKb, pathNormalization, serverHeader, maxRequestHeadersCount, websocketUpgrade,
                codecType, forwardClientCert, lifetimes, http2, tracing, alwaysSetRequestIdInResponse, router,
                proxy100Continue, internalAddresses, accessLogs, localReply, remoteAddressOptions, hostNormalization,
                action);
    }

    /**
     * Whether its router adds none of its own {@code x-envoy-*} headers (the router filter's
     * {@code suppress_envoy_headers}, see {@link RouterFilterConfig#suppressEnvoyHeaders}).
     */
    public boolean suppressEnvoyHeaders() {
        return router.suppressEnvoyHeaders();
    }

    /** The fault filter that runs in this connection manager (see {@link HttpFilter#fault}), or null for none. */
    public HttpFilter faultFilter() {
        return first(f -> f.fault() != null);
    }

    /**
     * The first of its HTTP filters, in chain order, that {@code p} accepts, or null: a plain loop, since some of the
     * questions below are asked for every request (a stream would allocate its pipeline each time).
     */
    private HttpFilter first(java.util.function.Predicate<HttpFilter> p) {
        for (HttpFilter f : httpFilters) {
            if (p.test(f)) {
                return f;
            }
        }
        return null;
    }

    /**
     * The RBAC filters that run in this connection manager (see {@link HttpFilter#rbac}), in their chain order:
     * each may deny a request, the first that does answers it.
     */
    public List<HttpFilter> rbacFilters() {
        return httpFilters.stream().filter(f -> f.rbac() != null).toList();
    }

    /**
     * The JWT authentication, RBAC and external authorization filters that run in this connection manager, in their
     * chain order: the filters that decide whether a request may go on.
     */
    public List<HttpFilter> authorizationFilters() {
        return httpFilters.stream().filter(f -> f.jwtAuthn() != null || f.rbac() != null || f.extAuthz() != null)
                .toList();
    }

    /** Whether a CORS filter runs in this connection manager (see {@link HttpFilter#cors}). */
    public boolean corsFilter() {
        return first(HttpFilter::cors) != null;
    }

    /**
     * Whether its CORS filter comes before its fault filter in the chain (older Istio releases wrote them so; Istio
     * now writes the fault filter first): Envoy then answers a preflight before any fault, and a fault's abort gets
     * the CORS headers. False when either does not run.
     */
    public boolean corsBeforeFault() {
        HttpFilter f = first(x -> x.cors() || x.fault() != null);
        return f != null && f.cors() && faultFilter() != null;
    }

    /**
     * Whether a gRPC statistics filter of this connection manager emits its filter state (see
     * {@link HttpFilter#grpcMessageCounts}): Istio's stats then count the messages of its gRPC requests.
     */
    public boolean grpcMessageCounts() {
        return first(HttpFilter::grpcMessageCounts) != null;
    }

    /**
     * Whether Istio's stats label a request whose cluster names no service by its Host ({@code destination_service}):
     * unless its {@code istio.stats} filter disables it (see {@link HttpFilter#noHostHeaderFallback}).
     */
    public boolean hostHeaderFallback() {
        return first(HttpFilter::noHostHeaderFallback) == null;
    }

    /**
     * The metric overrides of this connection manager's Istio stats filter (see {@link HttpFilter#istioStats}): the
     * first one's that overrides something, else {@link IstioStats#NONE} when it runs one, else null (it runs none).
     */
    public IstioStats istioStats() {
        HttpFilter f = first(p -> p.istioStats() != null && !p.istioStats().isEmpty());
        if (f != null) {
            return f.istioStats();
        }
        return first(p -> p.istioStats() != null) == null ? null : IstioStats.NONE;
    }

    /**
     * Whether Istio's peer metadata headers stay off requests to clusters outside the mesh: its peer metadata filter
     * says so (see {@link HttpFilter#peerMetadataSkipExternal}).
     */
    public boolean peerMetadataSkipExternal() {
        return first(HttpFilter::peerMetadataSkipExternal) != null;
    }

    /** The config of the compressor filter that runs in this connection manager, or null for none. */
    public Compressor compressorFilter() {
        HttpFilter f = first(p -> p.compressor() != null);
        return f == null ? null : f.compressor();
    }

    /**
     * The name of the compressor filter that runs in this connection manager (how routes name their
     * {@code CompressorPerRoute} for it), or null for none.
     */
    public String compressorFilterName() {
        HttpFilter f = first(p -> p.compressor() != null);
        return f == null ? null : f.name();
    }

    /**
     * The Lua filters that run in this connection manager (see {@link HttpFilter#lua}), in their chain order: their
     * request scripts run in that order right before the router, their response scripts in the reverse order.
     */
    public List<HttpFilter> luaFilters() {
        return httpFilters.stream().filter(f -> f.lua() != null).toList();
    }

    /** Whether a gRPC-Web filter runs in this connection manager (see {@link HttpFilter#grpcWeb}). */
    public boolean grpcWebFilter() {
        return first(HttpFilter::grpcWeb) != null;
    }

    /**
     * The local rate limit filter that runs in this connection manager (see {@link HttpFilter#localRateLimit}), or
     * null.
     */
    public HttpFilter localRateLimitFilter() {
        return first(f -> f.localRateLimit() != null);
    }

    /**
     * The global rate limit filter that runs in this connection manager (see {@link HttpFilter#globalRateLimit}), or
     * null.
     */
    public HttpFilter globalRateLimitFilter() {
        return first(f -> f.globalRateLimit() != null);
    }

    /**
     * Whether the global rate limit filter runs after the fault and CORS filters, right before the router (where
     * Istio's {@code INSERT_BEFORE} the router puts it): a fault filter or a CORS filter stands before it. Otherwise
     * it runs right after the JWT authentication, RBAC and external authorization filters.
     */
    public boolean globalRateLimitLast() {
        HttpFilter first = first(f -> f.globalRateLimit() != null || f.fault() != null || f.cors());
        return first != null && first.globalRateLimit() == null;
    }

    /**
     * The JWT authentication filter that runs in this connection manager (see {@link HttpFilter#jwtAuthn}), or null.
     */
    public HttpFilter jwtAuthnFilter() {
        return first(f -> f.jwtAuthn() != null);
    }

    /**
     * Whether the local rate limit filter runs before the JWT authentication, RBAC, external authorization, fault and
     * CORS filters (where Istio's {@code INSERT_BEFORE} the connection manager puts it), rather than after them, right
     * before the router: it stands before all of them, as Envoy runs a connection manager's filters in their order
     * (an external authorization filter before it has its request checked first).
     */
    public boolean localRateLimitFirst() {
        HttpFilter first = first(f -> f.localRateLimit() != null || f.jwtAuthn() != null || f.rbac() != null
                || f.extAuthz() != null || f.fault() != null || f.cors());
        return first != null && first.localRateLimit() != null;
    }
}
