package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.listener.ForwardClientCert;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.RouterFilterConfig;
import dev.inmesh.api.config.listener.ServerHeader;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.HeadSize;
import dev.inmesh.runtime.stats.StatsOverrides;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.time.Duration;
import java.time.Instant;
import java.util.Locale;

/**
 * A downstream request as the router sees it, from either way in: the in-JVM client or the standalone proxy. Its body
 * is either whole ({@link #body()}, the common case: a retry resends it) or still arriving ({@link #bodyStream}, sent
 * upstream as it comes); the router owns {@link #headers} and changes them on the way upstream.
 */
public final class RouterRequest implements RouteRequest {
    final StreamInfo.Direction direction;
    /** The method; an internal redirect answered 303 makes it GET. */
    HttpMethod method;
    /**
     * The path with its query: as sent, without the query parameters of the JWT authentication filter's verified
     * tokens ({@link #removeTokenParameters}), or as an allowing external authorizer changed its query parameters;
     * both after the route is chosen.
     */
    String uri;
    /**
     * Whether the header mutation filter's query parameter mutations changed {@link #uri}: written back decoded, as
     * Envoy's filter writes them, it may hold what no request line can carry, which the router then answers 400.
     */
    boolean queryMutated;
    /** The Host; and, with {@link #scheme} and {@link #uri}, an internal redirect's target after one. */
    String authority;
    String scheme;
    final MultiMap headers;
    /** The whole body, or null; a Lua script's {@code setBytes} may replace it before the router forwards it. */
    Buffer body;
    /** The body still arriving, or null when it is whole ({@link #body}). */
    RequestBodyStream stream;
    final String downstreamRemoteAddress;
    /**
     * The stream's downstream remote address, as Envoy's connection manager sets it: with {@code use_remote_address:
     * false} and no trusted hops (Istio's sidecars), the last {@code x-forwarded-for} address, {@code ip:0}, when it
     * is an IP, else {@link #downstreamRemoteAddress} itself (no copy); under the connection manager's other settings
     * as {@link DownstreamAddress} finds it ({@link #internal(HttpConnectionManager)}). Computed from the headers as
     * they came: the access log's {@code %DOWNSTREAM_REMOTE_ADDRESS%}, the hash policies' {@code source_ip}, Lua's
     * {@code downstreamRemoteAddress()}, RBAC's {@code remote_ip} and the rate limit's {@code remote_address} read
     * it; {@code source_ip} principals and ext_authz's source read the connection's.
     */
    String remoteAddress;
    final String downstreamLocalAddress;
    final SocketAddress originalDestination;
    long startNanos;
    Instant startTime;
    final String protocol;
    /** The request's head as it arrived, in bytes as HTTP/1.1 writes it ({@link HeadSize#request}). */
    final long headBytes;
    /** The connection manager's {@code server} header for the response; null leaves the header as it comes. */
    ServerHeader serverHeader;
    /** The connection manager's {@code generate_request_id}: whether an absent {@code x-request-id} is made. */
    boolean generateRequestId = true;
    /**
     * Whether a sidecar would relay the request as bytes (its chain a {@code tcp_proxy}, no connection manager): the
     * router then adds none of the headers a connection manager or its router adds, nor takes any off.
     */
    boolean opaque;
    /** The connection manager's {@code always_set_request_id_in_response}. */
    boolean alwaysSetRequestIdInResponse;
    /** Whether the connection manager's {@code upgrade_configs} enable {@code websocket} (a route's own entry decides). */
    boolean websocketUpgrade;
    /**
     * Null when the header names go upstream in lower case (Envoy's default); else, as under a connection manager
     * whose HTTP/1 {@code header_key_format} has a {@code stateful_formatter} (Istio's
     * {@code preserveHttp1HeaderCase}), the first spelling of each name the request came with that has upper case, by
     * its lower-case form: those go so spelled, every other name (a header rule's, one the router adds) in lower case,
     * as Envoy's preserve-case formatter writes only the names its codec read.
     */
    java.util.Map<String, String> headerSpellings;
    /**
     * Whether the connection manager takes the request for internal ({@link #internal(HttpConnectionManager)}): its
     * {@code x-envoy-*} control headers are then honoured and kept, and it gets {@code x-envoy-internal: true}.
     */
    boolean internal;
    /** The config of the router filter of the connection manager the request came through. */
    RouterFilterConfig routerFilter = RouterFilterConfig.DEFAULTS;
    /**
     * Where the upstream's {@code 100 Continue} goes under the connection manager's {@code proxy_100_continue}, or
     * null when the connection manager answers the expectation itself.
     */
    io.vertx.core.Handler<Void> continueRelay;
    /** The connection manager's {@code stream_idle_timeout}; a route's {@code idle_timeout} overrides it. */
    Duration streamIdleTimeout = HttpConnectionManager.DEFAULT_STREAM_IDLE_TIMEOUT;
    /** The connection manager's {@code max_stream_duration}, or null for none; a route's own replaces it. */
    Duration maxStreamDuration;
    /**
     * The request buffer limit of the listener the request came through ({@code per_connection_buffer_limit_bytes}):
     * the most of its body kept for retries and mirrors, unless its route or virtual host sets less.
     */
    long listenerBufferLimit = Listener.DEFAULT_PER_CONNECTION_BUFFER_LIMIT_BYTES;
    /** The config of the connection manager's fault filter that runs, or null when it has none. */
    FaultInjection faultFilter;
    /** Whether the connection manager runs a CORS filter, which applies the routes' CORS policies. */
    boolean corsFilter;
    /** Whether that CORS filter runs before the fault filter ({@link HttpConnectionManager#corsBeforeFault}). */
    boolean corsFirst;
    /** The run of the connection manager's Lua filters for this request, or null for none. */
    LuaFilter.Stream lua;
    /** The connection manager's buffer filter; {@link BufferFilter#NONE} for none. */
    BufferFilter buffer = BufferFilter.NONE;
    /** The connection manager's header mutation filter; {@link HeaderMutationFilter#NONE} for none. */
    HeaderMutationFilter headerMutation = HeaderMutationFilter.NONE;
    /** The header mutations the request got, which its response gets too; null until the filter ran. */
    java.util.List<dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutations> headerMutations;
    /** Whether the connection manager's gRPC statistics filter emits the message counts Istio's stats report. */
    boolean grpcMessageCounts;
    /** Whether Istio's stats may label the request by its Host when its cluster names no service. */
    boolean hostHeaderFallback = true;
    /** What Istio's metrics drop and record without ({@link #statsOverrides(StatsOverrides)}). */
    StatsOverrides statsOverrides = StatsOverrides.NONE;
    /** Whether Istio's peer metadata headers stay off clusters outside the mesh (its filter's setting). */
    boolean peerMetadataSkipExternal;
    /** The connection manager's RBAC filters, compiled; {@link RbacFilter.Chain#NONE} for none. */
    RbacFilter.Chain rbac = RbacFilter.Chain.NONE;
    /** The connection manager's local rate limit filter, compiled; {@link LocalRateLimitFilter#NONE} for none. */
    LocalRateLimitFilter localRateLimit = LocalRateLimitFilter.NONE;
    /** The connection manager's stateful session filter; {@link StatefulSessionFilter#NONE} for none. */
    StatefulSessionFilter statefulSession = StatefulSessionFilter.NONE;
    /** The connection manager's compressor filter's config, or null for none; and its name in the chain. */
    dev.inmesh.api.config.listener.Compressor compressor;
    String compressorName;
    /** The access logs of the connection manager the request came through. */
    dev.inmesh.runtime.accesslog.AccessLogs accessLogs = dev.inmesh.runtime.accesslog.AccessLogs.NONE;
    /** The connection manager's {@code local_reply_config}, compiled; null for none. */
    dev.inmesh.runtime.accesslog.LocalReply localReply;

    /** The connection manager's tracing, compiled; null when it traces no request. */
    dev.inmesh.runtime.tracing.Tracer tracer;
    /**
     * Whether the connection manager traces as Envoy's ingress (a server span, named by its caller's decorated
     * operation, its route's decorator told back in the response) rather than its egress (a client span). Envoy
     * decides it by the listener's {@code traffic_direction} alone, an unspecified one counting as inbound; the
     * in-JVM mesh's requests are inbound when they come to the workload.
     */
    boolean tracingIngress;
    /** The identities of the certificate the client presented in the TLS the proxy terminated, or null. */
    RbacFilter.PeerIdentity peerIdentity;
    /** The identities of the certificate the proxy presented in that TLS, or null (no TLS it terminated). */
    RbacFilter.PeerIdentity localIdentity;
    /**
     * The connection's physical peer, {@code ip:port}, when the downstream remote address is another (the listener's
     * PROXY protocol filter read a header), for RBAC's {@code direct_remote_ip} and the access log's
     * {@code %DOWNSTREAM_DIRECT_REMOTE_ADDRESS%}; null when it is the same.
     */
    String directRemoteAddress;
    /**
     * The address the connection physically arrived at, {@code ip:port}, when the downstream local address is another
     * (restored from the original destination or a PROXY header), for {@code %DOWNSTREAM_DIRECT_LOCAL_ADDRESS%}; null
     * when it is the same.
     */
    String directLocalAddress;
    /**
     * The source the request's upstream connections leave from, when its connection's listener runs
     * {@code original_src} (the standalone proxy); null: the cluster's bind address.
     */
    dev.inmesh.runtime.upstream.OriginalSrcBind originalSource;
    /** The connection manager's {@code stat_prefix}: the scope of its fault filter's active faults. */
    String statPrefix = "";
    /** The statistics of the connection manager the request came through ({@code http.<prefix>.*}), or null. */
    DownstreamStats downstreamStats;
    /** The SNI of the TLS the proxy terminated for the request's connection, or null. */
    String requestedServerName;
    /** Whether the request's connection is TLS the proxy terminated, from a client whose certificate it verified. */
    boolean downstreamMutualTls;
    /** The first URI SAN of the certificate the client presented in that TLS, or null. */
    String downstreamPeerPrincipal;
    /** The first URI SAN of the proxy's own certificate in that TLS, or null. */
    String downstreamLocalPrincipal;
    /** The TLS of the request's downstream connection, for the access log's operators; null for none. */
    dev.inmesh.runtime.accesslog.TlsDetails downstreamTls;
    /** The connection manager's {@code forward_client_cert_details}: what becomes of a request's XFCC. */
    ForwardClientCert.Mode forwardClientCert = ForwardClientCert.Mode.SANITIZE;
    /** Whether the request's connection presented a client certificate (TLS the proxy terminated). */
    boolean peerCertificate;
    /** This hop's {@code x-forwarded-client-cert} element for that certificate, or null for none. */
    String clientCertElement;
    /** Whether the caller went away ({@link Router#cancel}); read by the exchange when it starts. */
    volatile boolean cancelled;
    /**
     * How the caller went away: its connection closed, unless it reset its stream ({@link Router#callerReset}) or its
     * codec did ({@link Router#codecReset}).
     */
    volatile Departure departure = Departure.DISCONNECT;
    /**
     * How the connection manager ended the request before its answer, or null: its {@code request_timeout}
     * ({@link Router#requestTimeout}), or a body a filter refused ({@link Router#refuseBody}).
     */
    volatile Refusal refusal;
    /** The gRPC-Web filter's translation of the request ({@link GrpcWeb}), or null when it is no gRPC-Web request. */
    GrpcWeb grpcWeb;

    /** How many internal redirects the request followed ({@code internal_redirect_policy}). */
    int internalRedirects;
    /**
     * The {@code previous_routes} predicate's state: by the name of the route whose policy has it, the routes the
     * request was redirected to from there; null until one is.
     */
    java.util.Map<String, java.util.Set<String>> redirectTargets;

    /** A local reply that ends a request before its answer: status, body, response code details. */
    record Refusal(int status, String body, String details) {}

    /** The flag and response code details of a caller that went away before its answer. */
    record Departure(dev.inmesh.runtime.stats.ResponseFlag flag, String details) {
        /** Its connection closed: DC, {@code downstream_remote_disconnect}. */
        static final Departure DISCONNECT = new Departure(
                dev.inmesh.runtime.stats.ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION, "downstream_remote_disconnect");
    }
    /** Ends the exchange for a caller that went away, once the router started it; null before. */
    volatile Runnable canceller;

    /**
     * @param direction OUTBOUND for the workload's own calls, INBOUND for calls to it
     * @param method the method
     * @param uri the path with its query
     * @param authority the Host header
     * @param scheme {@code http} or {@code https}
     * @param headers the request headers (the router takes ownership)
     * @param body the whole request body, or null for none (or for one still arriving, see {@link #bodyStream})
     * @param downstreamRemoteAddress the caller's address, {@code ip:port}
     * @param downstreamLocalAddress the address the request arrived at, {@code ip:port}
     * @param originalDestination where the caller meant to go, for ORIGINAL_DST clusters: the address the in-JVM
     *     caller named (what a sidecar's capture would have restored), or the destination the standalone proxy's
     *     listener filters restored; null when none was (Envoy's {@code localAddressRestored()} false: such a cluster
     *     then has no host, rather than the listener's own address)
     * @param protocol {@code HTTP/1.1} or {@code HTTP/2}
     */
    public RouterRequest(StreamInfo.Direction direction, HttpMethod method, String uri, String authority,
                         String scheme, MultiMap headers, Buffer body, String downstreamRemoteAddress,
                         String downstreamLocalAddress, SocketAddress originalDestination, String protocol) {
        this.direction = direction;
        this.tracingIngress = direction == StreamInfo.Direction.INBOUND;
        this.method = method;
        // a request without a method is one the codec refused (unparsed): it has no path either
        this.uri = method != null && (uri == null || uri.isEmpty()) ? "/" : uri;
        this.authority = authority;
        this.scheme = scheme == null ? "http" : scheme;
        this.headers = headers;
        this.body = body;
        this.downstreamRemoteAddress = downstreamRemoteAddress;
        this.remoteAddress = remoteAddress(headers, downstreamRemoteAddress);
        this.downstreamLocalAddress = downstreamLocalAddress;
        this.originalDestination = originalDestination;
        this.startNanos = System.nanoTime();
        this.startTime = Instant.now();
        this.protocol = protocol == null ? "HTTP/1.1" : protocol;
        this.headBytes = HeadSize.request(method == null ? null : method.name(), this.uri, authority, headers);
    }

    /**
     * A request refused by the downstream codec before it had a head the connection manager could take (Envoy's
     * codec errors: a broken request line or header, a head over its limits, two framings of one body): no method,
     * path, authority or headers, so that its access log line reads {@code "- - HTTP/1.1"} as Envoy's does. It is
     * only ever answered with a local reply ({@link Router#localReply}), never routed.
     */
    public static RouterRequest unparsed(StreamInfo.Direction direction, String downstreamRemoteAddress,
                                         String downstreamLocalAddress, String protocol) {
        return new RouterRequest(direction, null, null, null, null, MultiMap.caseInsensitiveMultiMap(), null,
                downstreamRemoteAddress, downstreamLocalAddress, null, protocol);
    }

    /**
     * Dates the request's start back to {@code nanos} ({@link System#nanoTime} terms, before now): the first byte of a
     * request the codec had not read whole, whose stream Envoy's HTTP/1 codec began with that byte, so that its
     * {@code %START_TIME%} and {@code %DURATION%} count the wait for the rest. Before it is routed or answered only.
     */
    public RouterRequest startedAt(long nanos) {
        long earlier = startNanos - nanos;
        if (earlier > 0) {
            startNanos = nanos;
            startTime = startTime.minusNanos(earlier);
        }
        return this;
    }

    /**
     * Marks a request that came through no connection manager, which an Envoy sidecar's {@code tcp_proxy} would relay
     * byte for byte: no {@code x-request-id}, {@code x-forwarded-proto}, peer metadata or
     * {@code x-envoy-upstream-service-time} added, no control header taken off (default false).
     */
    public RouterRequest opaque(boolean opaque) {
        this.opaque = opaque;
        return this;
    }

    /** Whether the request came through no connection manager (see {@link #opaque(boolean)}). */
    public boolean opaque() {
        return opaque;
    }

    /** Sets the {@code generate_request_id} of the connection manager the request came through (default true). */
    public RouterRequest generateRequestId(boolean generate) {
        this.generateRequestId = generate;
        return this;
    }

    /**
     * Sets the {@code always_set_request_id_in_response} of the connection manager the request came through (default
     * false): whether its response gets the request's {@code x-request-id}.
     */
    public RouterRequest alwaysSetRequestIdInResponse(boolean always) {
        this.alwaysSetRequestIdInResponse = always;
        return this;
    }

    /**
     * Sets whether the {@code upgrade_configs} of the connection manager the request came through enable
     * {@code websocket} (default false); a route's own entry decides over it ({@link Router#upgradeEnabled}).
     */
    public RouterRequest websocketUpgrade(boolean enabled) {
        this.websocketUpgrade = enabled;
        return this;
    }

    /**
     * Sets whether the header names go upstream with the case they came with, as the connection manager {@code hcm}
     * says (its HTTP/1 options' stateful header formatter; null: no connection manager, lower case): call it with
     * the headers as they came, before anything changes them.
     */
    public RouterRequest headerCase(HttpConnectionManager hcm) {
        return preserveHeaderCase(hcm != null && hcm.http1().preserveHeaderCase());
    }

    /**
     * With {@code preserve}, the spelling each header name came with now is the one it goes upstream with
     * ({@link #headerSpellings}); without it, every name goes in lower case.
     */
    RouterRequest preserveHeaderCase(boolean preserve) {
        this.headerSpellings = preserve ? HeaderCase.spellings(headers) : null;
        return this;
    }

    /**
     * Sets whether the router of the connection manager the request came through adds none of its own
     * {@code x-envoy-*} headers ({@code suppress_envoy_headers}; default false).
     */
    public RouterRequest suppressEnvoyHeaders(boolean suppress) {
        return routerFilter(new RouterFilterConfig(suppress, routerFilter.respectExpectedRqTimeout(),
                routerFilter.strictCheckHeaders()));
    }

    /**
     * Sets the config of the router filter of the connection manager the request came through (its
     * {@code suppress_envoy_headers}, {@code respect_expected_rq_timeout}, {@code strict_check_headers}); null for
     * Envoy's defaults.
     */
    public RouterRequest routerFilter(RouterFilterConfig config) {
        this.routerFilter = config == null ? RouterFilterConfig.DEFAULTS : config;
        return this;
    }

    /**
     * The connection manager the request came through sets {@code proxy_100_continue}: the request goes upstream with
     * its {@code Expect: 100-continue}, and {@code relay} runs (on the exchange's context) when the upstream answers
     * {@code 100 Continue}, the first time only, as Envoy relays it; the request is then no longer retried. Without it
     * (the default), the way in answers the expectation itself and takes it off the request.
     */
    public RouterRequest proxy100Continue(io.vertx.core.Handler<Void> relay) {
        this.continueRelay = relay;
        return this;
    }

    /** Whether {@code headers} expect {@code 100-continue} (the value is case-insensitive, RFC 9110 10.1.1). */
    public static boolean expects100Continue(MultiMap headers) {
        return "100-continue".equalsIgnoreCase(headers.get(io.vertx.core.http.HttpHeaders.EXPECT));
    }

    /**
     * Sets the {@code stream_idle_timeout} of the connection manager the request came through: null for Envoy's
     * default (5 minutes), {@link Duration#ZERO} for none.
     */
    public RouterRequest streamIdleTimeout(Duration timeout) {
        this.streamIdleTimeout = timeout == null ? HttpConnectionManager.DEFAULT_STREAM_IDLE_TIMEOUT : timeout;
        return this;
    }

    /**
     * Sets the {@code max_stream_duration} of the connection manager the request came through: how long the request
     * may last from its start; null or {@link Duration#ZERO} for no limit.
     */
    public RouterRequest maxStreamDuration(Duration duration) {
        this.maxStreamDuration = duration;
        return this;
    }

    /**
     * Sets the {@code per_connection_buffer_limit_bytes} of the listener the request came through: null for Envoy's
     * default (1 MiB), 0 for none (as Envoy, whose router then keeps what the route allows, all of it when the route
     * and its virtual host set no limit either).
     */
    public RouterRequest listenerBufferLimit(Long perConnectionBufferLimitBytes) {
        this.listenerBufferLimit = perConnectionBufferLimitBytes == null
                ? Listener.DEFAULT_PER_CONNECTION_BUFFER_LIMIT_BYTES
                : perConnectionBufferLimitBytes == 0 ? Long.MAX_VALUE : perConnectionBufferLimitBytes;
        return this;
    }

    /**
     * Gives the request a body that is still arriving (the whole-body argument of the constructor is then null): the
     * router sends its chunks upstream as they come, see {@link RequestBodyStream}.
     */
    public RouterRequest bodyStream(RequestBodyStream s) {
        this.stream = s;
        return this;
    }

    /** The body still arriving, or null when the body is whole. */
    public RequestBodyStream bodyStream() {
        return stream;
    }

    /**
     * Sets the fault filter of the connection manager the request came through ({@link
     * HttpConnectionManager#faultFilter}; null or none: no fault is injected) and its stat prefix.
     */
    public RouterRequest faultFilter(HttpConnectionManager hcm) {
        HttpFilter f = hcm == null ? null : hcm.faultFilter();
        this.faultFilter = f == null ? null : f.fault();
        this.statPrefix = hcm == null ? "" : hcm.statPrefix();
        return this;
    }

    /**
     * Sets whether the connection manager the request came through runs a CORS filter ({@link
     * HttpConnectionManager#corsFilter}; null: none), which applies the routes' and virtual hosts' CORS policies,
     * and whether it runs before the fault filter.
     */
    public RouterRequest corsFilter(HttpConnectionManager hcm) {
        this.corsFilter = hcm != null && hcm.corsFilter();
        this.corsFirst = corsFilter && hcm.corsBeforeFault();
        return this;
    }

    /**
     * Sets the RBAC filters of the connection manager the request came through, compiled once for its snapshot
     * ({@code MeshSnapshot#rbac}; null: none), and the identities of the client's certificate that their
     * {@code authenticated} principals match (null: none presented).
     */
    public RouterRequest rbac(RbacFilter.Chain filters, RbacFilter.PeerIdentity peer) {
        this.rbac = filters == null ? RbacFilter.Chain.NONE : filters;
        this.peerIdentity = peer;
        return this;
    }

    /**
     * Sets the connection's physical addresses, {@link #directRemoteAddress} and {@link #directLocalAddress}: each null
     * when it is the downstream one.
     */
    public RouterRequest directAddresses(String remote, String local) {
        this.directRemoteAddress = remote;
        this.directLocalAddress = local;
        return this;
    }

    /** Sets {@link #originalSource}: where the request's upstream connections leave from, null for the cluster's. */
    public RouterRequest originalSource(dev.inmesh.runtime.upstream.OriginalSrcBind source) {
        this.originalSource = source;
        return this;
    }

    /**
     * As {@link #rbac(RbacFilter.Chain, RbacFilter.PeerIdentity)}, with the identities of the certificate the proxy
     * presented in the TLS it terminated ({@code local}; null: none), which an external authorizer gets as the
     * {@code destination.principal} of Envoy's check request.
     */
    public RouterRequest rbac(RbacFilter.Chain filters, RbacFilter.PeerIdentity peer, RbacFilter.PeerIdentity local) {
        this.localIdentity = local;
        return rbac(filters, peer);
    }

    /**
     * Sets the local rate limit filter of the connection manager the request came through, compiled with its bucket
     * for its snapshot ({@code MeshSnapshot#localRateLimit}; null: none).
     */
    public RouterRequest localRateLimit(LocalRateLimitFilter filter) {
        this.localRateLimit = filter == null ? LocalRateLimitFilter.NONE : filter;
        return this;
    }

    /**
     * Takes what the statistics filters of the connection manager the request came through say: whether a gRPC
     * statistics filter emits its filter state ({@link HttpConnectionManager#grpcMessageCounts}: the messages of a
     * gRPC request are then counted for Istio's {@code istio_request_messages_total} and
     * {@code istio_response_messages_total}), and whether Istio's stats filter lets a request without a service be
     * labelled by its Host ({@link HttpConnectionManager#hostHeaderFallback}); and whether Istio's peer metadata
     * filter keeps its headers off clusters outside the mesh ({@link HttpConnectionManager#peerMetadataSkipExternal}).
     */
    public RouterRequest statsFilters(HttpConnectionManager hcm) {
        this.grpcMessageCounts = hcm != null && hcm.grpcMessageCounts();
        this.hostHeaderFallback = hcm == null || hcm.hostHeaderFallback();
        this.peerMetadataSkipExternal = hcm != null && hcm.peerMetadataSkipExternal();
        return this;
    }

    /**
     * Sets the metric overrides of the connection manager's Istio stats filter, compiled once for its snapshot
     * ({@code MeshSnapshot#statsOverrides}; null: none): the finished request's {@link StreamInfo#statsOverrides()}.
     */
    public RouterRequest statsOverrides(StatsOverrides overrides) {
        this.statsOverrides = overrides == null ? StatsOverrides.NONE : overrides;
        return this;
    }

    /**
     * Sets the access logs of the connection manager the request came through, compiled once for its snapshot
     * ({@code MeshSnapshot#accessLogs}; null: none): the finished request's {@link StreamInfo#log()} carries them.
     */
    public RouterRequest accessLogs(dev.inmesh.runtime.accesslog.AccessLogs logs) {
        this.accessLogs = logs == null ? dev.inmesh.runtime.accesslog.AccessLogs.NONE : logs;
        return this;
    }

    /**
     * Sets the {@code local_reply_config} of the connection manager the request came through, compiled once for its
     * snapshot ({@code MeshSnapshot#localReply}; null: none): the router's local replies are rewritten by it.
     */
    public RouterRequest localReply(dev.inmesh.runtime.accesslog.LocalReply localReply) {
        this.localReply = localReply;
        return this;
    }

    /**
     * Sets the Lua filters of the connection manager the request came through, compiled once for its snapshot
     * ({@code MeshSnapshot#lua}; null or empty: none): their scripts run right before the router.
     */
    public RouterRequest lua(java.util.List<LuaFilter> filters) {
        this.lua = filters == null || filters.isEmpty() ? null : new LuaFilter.Stream(filters);
        return this;
    }

    /**
     * Sets the stateful session filter of the connection manager the request came through ({@link
     * StatefulSessionFilter#of}; null: none), which keeps a session's requests on one upstream host.
     */
    public RouterRequest statefulSession(HttpConnectionManager hcm) {
        this.statefulSession = StatefulSessionFilter.of(hcm);
        return this;
    }

    /**
     * Sets the buffer and header mutation filters of the connection manager the request came through (null: none),
     * which run right before its Lua filters: the latter compiled once for its snapshot
     * ({@code MeshSnapshot#headerMutation}).
     */
    public RouterRequest bufferAndHeaderMutation(HttpConnectionManager hcm, HeaderMutationFilter headerMutation) {
        this.buffer = BufferFilter.of(hcm);
        this.headerMutation = headerMutation == null ? HeaderMutationFilter.NONE : headerMutation;
        return this;
    }

    /**
     * Sets the compressor filter of the connection manager the request came through ({@code config} null: none) and
     * its {@code name} in the chain: once the request is routed, it takes the request's {@code accept-encoding} off
     * where the route's settings ({@link CompressorFilter#forRoute}) say {@code remove_accept_encoding_header}.
     */
    public RouterRequest compressor(dev.inmesh.api.config.listener.Compressor config, String name) {
        this.compressor = config;
        this.compressorName = name;
        return this;
    }

    /**
     * Sets the tracing of the connection manager the request came through, compiled once for its snapshot
     * ({@code MeshSnapshot#tracer}; null: the request is not traced).
     */
    public RouterRequest tracer(dev.inmesh.runtime.tracing.Tracer t) {
        this.tracer = t;
        return this;
    }

    /**
     * As {@link #tracer(dev.inmesh.runtime.tracing.Tracer)}, its spans server spans when {@code ingress}: the
     * standalone proxy's listener without {@code traffic_direction: OUTBOUND}, whatever else the request's
     * {@link #direction} drives (the peer metadata, Istio's metrics reporter).
     */
    public RouterRequest tracer(dev.inmesh.runtime.tracing.Tracer t, boolean ingress) {
        this.tracer = t;
        this.tracingIngress = ingress;
        return this;
    }

    /**
     * Sets the statistics of the connection manager the request came through (null: none kept), looked up once for
     * the connection manager, not per request: the router counts the request in them, with its router, fault and
     * CORS filters' statistics.
     */
    public RouterRequest downstreamStats(DownstreamStats stats) {
        this.downstreamStats = stats;
        return this;
    }

    /**
     * What the TLS the proxy terminated for the request's connection tells the access log and the metrics: the SNI
     * (null: none) and whether the client's certificate was verified.
     */
    public RouterRequest downstreamTls(String serverName, boolean mutualTls) {
        this.requestedServerName = serverName;
        this.downstreamMutualTls = mutualTls;
        return this;
    }

    /**
     * Sets the {@code forward_client_cert_details} of the connection manager the request came through (null: Envoy's
     * default, SANITIZE).
     */
    /**
     * What the connection manager {@code hcm} makes of the request's downstream ({@link DownstreamAddress#apply}):
     * whether it takes the request for internal, the stream's downstream remote address, and the forwarded headers it
     * writes (with {@code use_remote_address: true}: {@code x-forwarded-for}, {@code x-forwarded-proto},
     * {@code x-envoy-external-address}, ...).
     */
    public RouterRequest internal(HttpConnectionManager hcm) {
        if (DownstreamAddress.writesNothing(hcm)) {
            // Istio's sidecars: the address is the constructor's, nothing is written, nothing more allocated
            this.internal = internal(hcm, headers.get(HeaderNames.X_FORWARDED_FOR));
            return this;
        }
        DownstreamAddress.Outcome o = DownstreamAddress.apply(hcm, headers, downstreamRemoteAddress,
                "https".equals(scheme), port(downstreamLocalAddress));
        this.internal = o.internal();
        this.remoteAddress = o.remoteAddress();
        this.detectionRejectStatus = o.rejectStatus();
        return this;
    }

    /**
     * The connection manager's redirect of a path whose escaped slashes it unescaped
     * ({@code UNESCAPE_AND_REDIRECT}, {@link PathNormalizer#refusal}): the router answers it before anything else;
     * null for none.
     */
    PathNormalizer.Refusal pathRedirect;

    /** Sets {@link #pathRedirect} (null: none). */
    public RouterRequest pathRedirect(PathNormalizer.Refusal redirect) {
        this.pathRedirect = redirect;
        return this;
    }

    /**
     * The status an original IP detection extension answers the request with, having found no address for it
     * ({@link DownstreamAddress.Outcome#rejectStatus}); 0 when none refuses it.
     */
    int detectionRejectStatus;

    /**
     * The IP of {@link #remoteAddress}: the connection's as its peer is read elsewhere (an IPv4-mapped one as IPv4),
     * an {@code x-forwarded-for} one as Envoy parses it.
     */
    @Override
    public byte[] downstreamRemoteIp() {
        return DownstreamAddress.remoteIp(remoteAddress, downstreamRemoteAddress);
    }

    @Override
    public boolean foundDownstreamRemoteAddress() {
        return true;
    }

    /** The port of {@code ip:port}, or 0 when there is none. */
    private static int port(String address) {
        int colon = address == null ? -1 : address.lastIndexOf(':');
        if (colon < 0 || address.endsWith("]")) {
            return 0;
        }
        try {
            return Integer.parseInt(address.substring(colon + 1));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /**
     * Whether Envoy's connection manager {@code hcm} (with {@code use_remote_address: false} and no trusted hops, as
     * Istio's sidecars) takes a request whose {@code x-forwarded-for} is {@code xff} for internal: the header holds a
     * single address (no comma), an IP literal once trimmed, in one of the ranges of its
     * {@code internal_address_config}. No header, several addresses, or no ranges (Envoy's default since 1.33):
     * external.
     */
    public static boolean internal(HttpConnectionManager hcm, String xff) {
        if (hcm == null || hcm.internalAddresses().isEmpty() || xff == null || xff.indexOf(',') >= 0) {
            return false;
        }
        byte[] ip = dev.inmesh.runtime.net.IpLiterals.parse(xff.strip());
        if (ip == null) {
            return false;
        }
        for (var range : hcm.internalAddresses()) {
            if (dev.inmesh.runtime.listener.Cidrs.contains(range, ip)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The stream's downstream remote address of a request with {@code headers} on a connection from
     * {@code connectionRemote}, as Envoy's connection manager sets it with {@code use_remote_address: false} and no
     * trusted hops (its {@code getLastAddressFromXFF}; other settings: {@link DownstreamAddress}): the last address
     * of {@code x-forwarded-for} (several headers read as one, joined by commas), once trimmed, when it is an IP
     * literal, with port 0 ({@code 10.1.2.3:0}, {@code [2001:db8::1]:0}); else (no header, an empty one, a last
     * entry that is no IP) {@code connectionRemote}.
     */
    public static String remoteAddress(MultiMap headers, String connectionRemote) {
        byte[] ip = DownstreamAddress.forwardedIp(DownstreamAddress.xff(headers), 0);
        return ip == null ? connectionRemote : DownstreamAddress.withPort0(ip);
    }

    /**
     * The last address of an {@code x-forwarded-for} value when it is a bare IP literal once trimmed, else null: as
     * Envoy's {@code parseInternetAddressNoThrow} ({@code inet_pton}), an IPv6 one in brackets is no address, and an
     * IPv4-mapped IPv6 one stays IPv6 ({@link DownstreamAddress#forwardedIp}).
     */
    public static byte[] lastForwardedIp(String xff) {
        return DownstreamAddress.forwardedIp(xff, 0);
    }

    public RouterRequest forwardClientCert(HttpConnectionManager hcm) {
        this.forwardClientCert = hcm == null ? ForwardClientCert.Mode.SANITIZE : hcm.forwardClientCert().mode();
        return this;
    }

    /**
     * What the TLS the proxy terminated for the request's connection tells {@code x-forwarded-client-cert}: whether
     * the client presented a certificate, and this hop's element for it ({@link ForwardedClientCert#element}; null
     * when the connection manager adds none).
     */
    public RouterRequest clientCertificate(boolean presented, String element) {
        this.peerCertificate = presented;
        this.clientCertElement = element;
        return this;
    }

    /**
     * The identities of the TLS the proxy terminated for the request's connection, for Istio's
     * {@code source_principal} and {@code destination_principal}: the first URI SAN of the client's certificate and
     * of the proxy's own (null: none).
     */
    public RouterRequest downstreamPrincipals(String peer, String local) {
        this.downstreamPeerPrincipal = peer;
        this.downstreamLocalPrincipal = local;
        return this;
    }

    /** The TLS the request's downstream connection came over, which the access log reads; null for none. */
    public RouterRequest downstreamTls(dev.inmesh.runtime.accesslog.TlsDetails tls) {
        this.downstreamTls = tls;
        return this;
    }

    /**
     * Marks the request as gRPC-Web, its headers already translated ({@link GrpcWeb#request}): the router's own
     * answers to it are not gRPC trailers-only responses (the caller translates them as it translates the upstream's),
     * as Envoy's connection manager, which saw a gRPC-Web request, answers it. Null: none.
     */
    public RouterRequest grpcWeb(GrpcWeb web) {
        this.grpcWeb = web;
        return this;
    }

    /** The request's gRPC-Web translation, or null when it is no gRPC-Web request. */
    public GrpcWeb grpcWeb() {
        return grpcWeb;
    }

    /** Sets the {@code server} header policy of the connection manager the request came through. */
    public RouterRequest serverHeader(ServerHeader s) {
        this.serverHeader = s;
        return this;
    }

    @Override
    public String authority() {
        return authority;
    }

    @Override
    public Instant startTime() {
        return startTime;
    }

    @Override
    public String path() {
        return uri;
    }

    @Override
    public String method() {
        return method == null ? null : method.name();
    }

    @Override
    public String scheme() {
        return scheme;
    }

    @Override
    public String protocol() {
        return protocol;
    }

    /** The request's head as it arrived, in bytes as HTTP/1.1 writes it ({@link HeadSize#request}). */
    public long headBytes() {
        return headBytes;
    }

    @Override
    public String header(String lowerCaseName) {
        return RouteRequest.headerOf(this, headers, lowerCaseName);
    }

    @Override
    public String firstHeader(String lowerCaseName) {
        return RouteRequest.firstOf(this, headers, lowerCaseName);
    }

    public StreamInfo.Direction direction() {
        return direction;
    }

    public MultiMap headers() {
        return headers;
    }

    public Buffer body() {
        return body;
    }

    /** Its body as a filter that waits for it reads it: the stream's, held as it comes, else the whole one. */
    @Override
    public RequestBody requestBody() {
        if (stream != null) {
            return stream::hold;
        }
        return limit -> Future.succeededFuture(body == null || body.length() == 0 ? null : body);
    }

    /** The IP of the connection's remote address (a PROXY header's source): RBAC's {@code source_ip}. */
    String sourceIp() {
        return ip(downstreamRemoteAddress);
    }

    /** The IP of the stream's downstream remote address ({@link #remoteAddress}): a hash policy's {@code source_ip}. */
    String remoteIp() {
        return ip(remoteAddress);
    }

    /** The connection's physical peer, {@code ip:port}: {@link #directRemoteAddress}, else the downstream one. */
    String physicalPeer() {
        return directRemoteAddress != null ? directRemoteAddress : downstreamRemoteAddress;
    }

    /** The IP of the connection's physical peer when it is not the caller's ({@link #directRemoteAddress}), or null. */
    String directRemoteIp() {
        return ip(directRemoteAddress);
    }

    /** The IP of {@code ip:port} ({@code [v6]:port}), or null. */
    private static String ip(String a) {
        if (a == null) {
            return null;
        }
        int colon = a.lastIndexOf(':');
        String ip = colon > 0 ? a.substring(0, colon) : a;
        return ip.startsWith("[") ? ip.substring(1, ip.length() - 1) : ip.toLowerCase(Locale.ROOT);
    }

    /** The source port of the caller, or -1 when unknown. */
    int sourcePort() {
        String a = downstreamRemoteAddress;
        int colon = a == null ? -1 : a.lastIndexOf(':');
        if (colon < 0 || a.endsWith("]")) {
            return -1;
        }
        try {
            return Integer.parseInt(a.substring(colon + 1));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * Takes query parameters out of the path: those the JWT authentication filter's verified tokens came in (their
     * providers do not {@code forward} them), as Envoy's filter takes them out of {@code :path}. The request then
     * goes upstream, and is logged, with the path left ({@link JwtAuthnFilter#withoutParameters}).
     */
    void removeTokenParameters(java.util.Set<String> names) {
        uri = JwtAuthnFilter.withoutParameters(uri, names);
    }

    /** The raw query string, or null. */
    String query() {
        int q = uri.indexOf('?');
        return q < 0 ? null : uri.substring(q + 1);
    }
}
