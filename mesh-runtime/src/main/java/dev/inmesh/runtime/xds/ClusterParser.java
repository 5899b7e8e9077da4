package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.inmesh.api.config.cluster.CircuitBreakers;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonHttpProtocolOptions;
import dev.inmesh.api.config.cluster.CommonLbConfig;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.DnsLookupFamily;
import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.cluster.OutlierDetection;
import dev.inmesh.api.config.cluster.TransportSocketMatch;
import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.core.TcpKeepalive;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.extensions.upstreams.http.v3.HttpProtocolOptions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses CDS's {@code Cluster}. Istio's clusters parse as they come from {@code istioctl proxy-config cluster}: EDS
 * over ADS, ORIGINAL_DST passthrough clusters, STATIC inbound and BlackHole clusters, unlimited circuit breakers.
 *
 * <p>Accepted because they change nothing Inmesh does:
 * <ul>
 *   <li>the upstream network filter {@code istio.metadata_exchange} (Istio's peer metadata over mTLS ALPN);</li>
 *   <li>statistics and tuning that Inmesh does not expose: {@code track_cluster_stats} and
 *       {@code per_connection_buffer_limit_bytes};</li>
 * </ul>
 * A {@code transport_socket} is {@code raw_buffer} or TLS ({@link UpstreamTlsParser}), and so is the
 * {@code transport_socket} of each of the {@code transport_socket_matches}, which choose each host's socket by its
 * metadata; a match whose TLS needs Istio's own SDS secrets ({@code default}, {@code ROOTCA}), which Inmesh cannot
 * resolve, is kept, not ready ({@link UpstreamTlsParser#socket}): the connections of Istio's
 * {@code tlsMode-istio} hosts then fail, and do not fall to its plaintext {@code tlsMode-disabled} match. So is a
 * cluster's TLS, or a match's, whose SDS secret has not arrived within its {@code initial_fetch_timeout}, in a
 * parse that leaves it so ({@link Parsers#withSecretsNotReady}). Of
 * {@code upstream_connection_options}, {@code tcp_keepalive} is applied to every upstream connection (see
 * {@link TcpKeepalive}) and {@code set_local_interface_name_on_upstream_connections}, which only tells Envoy's
 * extensions the interface name, is accepted; {@code happy_eyeballs_config} is rejected by name.
 * The {@code http2_protocol_options} (the deprecated cluster field, or those of the typed
 * {@code HttpProtocolOptions}' {@code explicit_http_config} or {@code use_downstream_protocol_config}, which replace
 * it) are read by {@link CoreParsers#http2ProtocolOptions}: the streams per connection, the windows and the header
 * table are applied to the hosts' HTTP/2 connections. The typed options' {@code auto_config} is rejected by name;
 * so are typed options that choose no protocol (no {@code explicit_http_config} nor
 * {@code use_downstream_protocol_config}, or an {@code explicit_http_config} of neither protocol), as Envoy's required
 * oneofs reject them. An ORIGINAL_DST cluster's {@code load_assignment} is rejected, as Envoy's; so is an
 * {@code upstream_bind_config} source address with a port other than 0, which Envoy would bind.
 * The {@code alt_stat_name} is the cluster's observability name ({@link Cluster#observabilityName()}).
 * The {@code load_balancing_policy} is read by {@link LbPolicyParser}, the {@code health_checks} by
 * {@link HealthCheckParser}.
 * Anything else that is set and not implemented is rejected with its path.
 */
public final class ClusterParser
        implements ResourceParser<io.envoyproxy.envoy.config.cluster.v3.Cluster, Cluster> {

    static final String HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(
            ClusterParser.class.getName());
    private static final Set<String> HARMLESS_NETWORK_FILTERS = Set.of("istio.metadata_exchange",
            "envoy.filters.network.upstream.metadata_exchange");

    private static final Set<String> SUPPORTED = Set.of("name", "type", "eds_cluster_config", "connect_timeout",
            "lb_policy", "load_balancing_policy", "load_assignment", "circuit_breakers", "outlier_detection",
            "common_lb_config", "upstream_bind_config", "dns_refresh_rate", "cleanup_interval",
            "typed_extension_protocol_options", "metadata", "ring_hash_lb_config", "maglev_lb_config",
            "least_request_lb_config", "round_robin_lb_config",
            "original_dst_lb_config", "http2_protocol_options", "transport_socket", "filters", "dns_lookup_family",
            "common_http_protocol_options", "upstream_connection_options", "transport_socket_matches",
            "respect_dns_ttl", "dns_jitter", "dns_failure_refresh_rate", "typed_dns_resolver_config", "http_protocol_options", "alt_stat_name",
            "health_checks", "ignore_health_on_host_removal", "max_requests_per_connection",
            "wait_for_warm_on_init");
    /**
     * Settings that change nothing here. ({@code close_connections_on_host_health_failure}, which closes a host's
     * {@code tcp_proxy} connections when outlier detection ejects it, is not implemented and is refused.)
     */
    private static final Set<String> HARMLESS = Set.of("track_cluster_stats", "per_connection_buffer_limit_bytes");

    @Override
    public ResourceType type() {
        return ResourceType.CLUSTER;
    }

    @Override
    public Class<io.envoyproxy.envoy.config.cluster.v3.Cluster> messageClass() {
        return io.envoyproxy.envoy.config.cluster.v3.Cluster.class;
    }

    @Override
    public String name(io.envoyproxy.envoy.config.cluster.v3.Cluster m) {
        return m.getName();
    }

    @Override
    @SuppressWarnings("deprecation") // dns_refresh_rate and http2_protocol_options: deprecated, still sent
    public Cluster parseFields(io.envoyproxy.envoy.config.cluster.v3.Cluster c) {
        Fields.onlyKnown(c, SUPPORTED, HARMLESS);
        if (c.hasWaitForWarmOnInit() && !c.getWaitForWarmOnInit().getValue()) {
            // true is Envoy's default and what Inmesh does: a cluster's warming (its first health checks) holds the
            // initialization of the configuration it came with
            throw new FieldError("wait_for_warm_on_init", "false is not supported by Inmesh (expected: true, Envoy's"
                    + " default: the first configuration's clusters warm before the mesh is ready)");
        }
        DiscoveryType type = switch (c.getType()) {
            case STATIC -> DiscoveryType.STATIC;
            case STRICT_DNS -> DiscoveryType.STRICT_DNS;
            case EDS -> DiscoveryType.EDS;
            case ORIGINAL_DST -> DiscoveryType.ORIGINAL_DST;
            case LOGICAL_DNS -> DiscoveryType.LOGICAL_DNS;
            case UNRECOGNIZED -> throw new FieldError("type", "unknown value " + c.getTypeValue());
        };
        String edsServiceName = "";
        if (type == DiscoveryType.EDS) {
            if (!c.hasEdsClusterConfig()) {
                throw new FieldError("eds_cluster_config", "required for an EDS cluster");
            }
            edsServiceName = Fields.at("eds_cluster_config", () -> edsConfig(c.getEdsClusterConfig()));
        }
        // as Envoy: load_balancing_policy, when set, decides the policy, and lb_policy and lb_config are not read
        LbPolicyParser.Typed typed = LbPolicyParser.typed(c) ? LbPolicyParser.parse(c, type) : null;
        LbPolicy policy = typed != null ? typed.policy() : switch (c.getLbPolicy()) {
            case ROUND_ROBIN -> LbPolicy.ROUND_ROBIN;
            case LEAST_REQUEST -> LbPolicy.LEAST_REQUEST;
            case RANDOM -> LbPolicy.RANDOM;
            case RING_HASH -> LbPolicy.RING_HASH;
            case MAGLEV -> LbPolicy.MAGLEV;
            case CLUSTER_PROVIDED -> LbPolicy.CLUSTER_PROVIDED;
            case LOAD_BALANCING_POLICY_CONFIG -> throw new IllegalStateException("typed: " + c.getLbPolicy());
            case UNRECOGNIZED -> throw new FieldError("lb_policy", "unknown value " + c.getLbPolicyValue());
        };
        LbConfig lbConfig = typed != null ? typed.config() : lbConfig(c, policy);
        Duration connectTimeout = null;
        if (c.hasConnectTimeout()) {
            connectTimeout = Fields.duration(c.getConnectTimeout());
            if (connectTimeout.isNegative() || connectTimeout.isZero()) {
                throw new FieldError("connect_timeout", connectTimeout + " (expected: > 0s)");
            }
        }
        CircuitBreakers breakers = c.hasCircuitBreakers()
                ? Fields.at("circuit_breakers", () -> circuitBreakers(c.getCircuitBreakers())) : null;
        OutlierDetection outlier = c.hasOutlierDetection()
                ? Fields.at("outlier_detection", () -> outlierDetection(c.getOutlierDetection())) : null;
        CommonLbConfig common = c.hasCommonLbConfig()
                ? Fields.at("common_lb_config", () -> commonLbConfig(c.getCommonLbConfig())) : null;
        common = typed != null ? typed.onto(common) : common;
        if (common != null && common.useHostnameForHashing() && type != DiscoveryType.STRICT_DNS) {
            // as Envoy: a host's hostname is its name resolved only in a STRICT_DNS cluster
            throw new FieldError("common_lb_config.consistent_hashing_lb_config.use_hostname_for_hashing",
                    "true on a " + type + " cluster (expected: a STRICT_DNS cluster)");
        }
        SocketAddress bind = c.hasUpstreamBindConfig()
                ? Fields.at("upstream_bind_config", () -> bindAddress(c.getUpstreamBindConfig())) : null;
        List<SocketAddress> extraSources = Fields.at("upstream_bind_config", () -> Fields.each(
                "extra_source_addresses", c.getUpstreamBindConfig().getExtraSourceAddressesList(), e -> {
                    Fields.onlyKnown(e, Set.of("address"), Set.of());
                    return Fields.at("address", () -> socketAddress(e.getAddress()));
                }));
        if (type == DiscoveryType.ORIGINAL_DST && c.hasLoadAssignment()) {
            // as Envoy's OriginalDstCluster: its hosts are the connections' original destinations, none configured
            throw new FieldError("load_assignment", "ORIGINAL_DST clusters must have no load assignment configured");
        }
        ClusterLoadAssignment inline = c.hasLoadAssignment() ? Fields.at("load_assignment",
                () -> ClusterLoadAssignmentParser.parse(c.getLoadAssignment(), c.getName(),
                        type == DiscoveryType.STATIC)) : null;
        Duration dnsRefresh = c.hasDnsRefreshRate() ? Fields.duration(c.getDnsRefreshRate()) : null;
        if (dnsRefresh != null && dnsRefresh.toMillis() < 1) {
            throw new FieldError("dns_refresh_rate", dnsRefresh + " (expected: >= 1ms)");
        }
        Duration dnsJitter = c.hasDnsJitter() ? Fields.duration(c.getDnsJitter()) : null;
        if (dnsJitter != null && dnsJitter.isNegative()) {
            throw new FieldError("dns_jitter", dnsJitter + " (expected: >= 0s)");
        }
        Cluster.RefreshRate dnsFailureRefresh = c.hasDnsFailureRefreshRate() ? Fields.at("dns_failure_refresh_rate",
                () -> refreshRate(c.getDnsFailureRefreshRate())) : null;
        if (c.hasTypedDnsResolverConfig()) {
            Fields.at("typed_dns_resolver_config", () -> {
                dnsResolverConfig(c.getTypedDnsResolverConfig());
                return null;
            });
        }
        Duration cleanup = c.hasCleanupInterval() ? Fields.duration(c.getCleanupInterval()) : null;
        if (cleanup != null && cleanup.toMillis() <= 0) {
            throw new FieldError("cleanup_interval", cleanup + " (expected: > 0s)");
        }
        TcpKeepalive keepalive = c.hasUpstreamConnectionOptions() ? Fields.at("upstream_connection_options",
                () -> tcpKeepalive(c.getUpstreamConnectionOptions())) : null;
        UpstreamTlsParser.Socket socket = c.hasTransportSocket()
                ? Fields.at("transport_socket", () -> UpstreamTlsParser.socket(c.getTransportSocket(), false))
                : new UpstreamTlsParser.Socket(null, null);
        UpstreamTlsContext tls = socket.tls();
        List<TransportSocketMatch> matches = Fields.each("transport_socket_matches",
                c.getTransportSocketMatchesList(), ClusterParser::socketMatch);
        Fields.each("filters", c.getFiltersList(), f -> {
            if (!HARMLESS_NETWORK_FILTERS.contains(f.getName())) {
                throw new FieldError("name", "\"" + f.getName() + "\" is not supported (upstream network filter)");
            }
            return null;
        });
        if (c.hasHttpProtocolOptions()) {
            Fields.at("http_protocol_options", () -> {
                upstreamHttp1(c.getHttpProtocolOptions());
                return null;
            });
        }
        boolean http1Trailers = c.getHttpProtocolOptions().getEnableTrailers();
        boolean http2 = c.hasHttp2ProtocolOptions();
        boolean downstream = false;
        // Envoy's HTTP2 cluster feature, which a gRPC health check needs: use_downstream_protocol_config counts only
        // with http2_protocol_options
        boolean h2Feature = http2;
        Http2ProtocolOptions h2 = http2 ? Fields.at("http2_protocol_options",
                () -> CoreParsers.http2ProtocolOptions(c.getHttp2ProtocolOptions())) : null;
        // the typed HttpProtocolOptions replace the cluster's deprecated fields, as in Envoy
        CommonHttpProtocolOptions lifetimes = c.hasCommonHttpProtocolOptions() ? Fields.at(
                "common_http_protocol_options", () -> lifetimes(c.getCommonHttpProtocolOptions())) : null;
        boolean requestsPerConnection = c.getCommonHttpProtocolOptions().hasMaxRequestsPerConnection();
        for (Map.Entry<String, Any> e : c.getTypedExtensionProtocolOptionsMap().entrySet()) {
            String segment = "typed_extension_protocol_options[\"" + e.getKey() + "\"]";
            HttpProtocolOptions o = Fields.at(segment, () -> protocolOptions(e.getKey(), e.getValue()));
            if (tls != null) {
                UpstreamTlsContext plain = tls;
                tls = Fields.at(segment, () -> autoSni(o, plain));
            }
            matches = matches.stream().map(m -> m.tls() == null ? m : new TransportSocketMatch(m.name(), m.match(),
                    Fields.at(segment, () -> autoSni(o, m.tls())), m.notReady())).toList();
            UpstreamProtocol p = Fields.at(segment, () -> upstreamProtocol(o));
            http1Trailers = typedHttp1(o).getEnableTrailers();
            http2 |= p == UpstreamProtocol.HTTP2;
            downstream |= p == UpstreamProtocol.DOWNSTREAM;
            h2Feature |= p == UpstreamProtocol.HTTP2 || p == UpstreamProtocol.DOWNSTREAM
                    && o.getUseDownstreamProtocolConfig().hasHttp2ProtocolOptions();
            h2 = Fields.at(segment, () -> http2Options(o));
            lifetimes = o.hasCommonHttpProtocolOptions() ? Fields.at(segment + ".common_http_protocol_options",
                    () -> lifetimes(o.getCommonHttpProtocolOptions())) : CommonHttpProtocolOptions.DEFAULTS;
            requestsPerConnection = o.getCommonHttpProtocolOptions().hasMaxRequestsPerConnection();
        }
        if (c.hasMaxRequestsPerConnection()) {
            // the cluster's deprecated limit, which Envoy still takes where the protocol options set none
            if (requestsPerConnection) {
                throw new FieldError("max_requests_per_connection", "set beside the protocol options' "
                        + "max_requests_per_connection (expected: only one of them, as Envoy requires)");
            }
            CommonHttpProtocolOptions base = lifetimes == null ? CommonHttpProtocolOptions.DEFAULTS : lifetimes;
            lifetimes = new CommonHttpProtocolOptions(base.idleTimeout(), base.maxConnectionDuration(),
                    Integer.toUnsignedLong(c.getMaxRequestsPerConnection().getValue()), base.maxStreamDuration());
        }
        DnsLookupFamily family = switch (c.getDnsLookupFamily()) {
            case AUTO -> DnsLookupFamily.AUTO;
            case V4_ONLY -> DnsLookupFamily.V4_ONLY;
            case V6_ONLY -> DnsLookupFamily.V6_ONLY;
            case V4_PREFERRED -> DnsLookupFamily.V4_PREFERRED;
            case ALL -> DnsLookupFamily.ALL;
            case UNRECOGNIZED -> throw new FieldError("dns_lookup_family", c.getDnsLookupFamilyValue()
                    + " (expected: AUTO, V4_ONLY, V6_ONLY, V4_PREFERRED or ALL)");
        };
        if (!http2 && !downstream) {
            h2OnHttp1("transport_socket", tls);
            for (int i = 0; i < matches.size(); i++) {
                h2OnHttp1("transport_socket_matches[" + i + "].transport_socket", matches.get(i).tls());
            }
        }
        return new Cluster(c.getName(), type, edsServiceName, policy, lbConfig, connectTimeout, breakers, outlier,
                common, bind, inline, dnsRefresh, family, cleanup, http2, downstream && !http2,
                Fields.at("metadata", () -> CoreParsers.metadata(c.getMetadata())), lifetimes, tls, keepalive,
                matches, c.getRespectDnsTtl(), h2, dnsJitter, extraSources, c.getAltStatName(),
                HealthCheckParser.parse(c.getHealthChecksList(), h2Feature), c.getIgnoreHealthOnHostRemoval(),
                http1Trailers, dnsFailureRefresh, socket.notReady());
    }

    /**
     * A {@code dns_failure_refresh_rate}, whose {@code base_interval} is required (the intervals' bounds are checked
     * by {@link Cluster.RefreshRate}).
     */
    private static Cluster.RefreshRate refreshRate(io.envoyproxy.envoy.config.cluster.v3.Cluster.RefreshRate r) {
        Fields.onlyKnown(r, Set.of("base_interval", "max_interval"), Set.of());
        if (!r.hasBaseInterval()) {
            throw new FieldError("base_interval", "missing (required)");
        }
        return new Cluster.RefreshRate(Fields.duration(r.getBaseInterval()),
                r.hasMaxInterval() ? Fields.duration(r.getMaxInterval()) : null);
    }

    /**
     * A DNS cluster's own resolver: the c-ares resolver with only {@code udp_max_queries} set, as istiod writes it on
     * every DNS cluster ({@code PILOT_DNS_CARES_UDP_MAX_QUERIES}, 100 by default). That bound is on c-ares's queries
     * per UDP port; Inmesh resolves through the JVM's resolver (Vert.x's, on the event loop), to which it does not
     * apply, so it is accepted and changes nothing. Other resolvers, and c-ares's other settings (its own name
     * servers, search domains, TCP), would change the answers, and are refused by name.
     */
    static void dnsResolverConfig(io.envoyproxy.envoy.config.core.v3.TypedExtensionConfig config) {
        String type = config.getTypedConfig().getTypeUrl();
        type = type.substring(type.lastIndexOf('/') + 1);
        if (!type.equals("envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig")) {
            throw new FieldError("typed_config", type + " (expected: envoy.extensions.network.dns_resolver.cares.v3"
                    + ".CaresDnsResolverConfig; no other DNS resolver is supported by Inmesh)");
        }
        var cares = Fields.at("typed_config", () -> RouteConfigurationParser.unpack(config.getTypedConfig(),
                io.envoyproxy.envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig.class, "@type"));
        Fields.at("typed_config", () -> {
            Fields.onlyKnown(cares, Set.of("udp_max_queries"), Set.of());
            return null;
        });
    }

    /** Refuses TLS at {@code path} that offers h2 on an HTTP/1.1 cluster. */
    private static void h2OnHttp1(String path, UpstreamTlsContext tls) {
        if (tls != null && tls.alpnProtocols().contains("h2")) {
            throw new FieldError(path + ".typed_config.common_tls_context.alpn_protocols",
                    "h2 offered on an HTTP/1.1 cluster is not supported (set HTTP/2 protocol options for h2)");
        }
    }

    /**
     * One of {@code transport_socket_matches}: its name, the metadata it matches and its transport socket
     * ({@code raw_buffer} or TLS, which is required: Envoy refuses a match without one); a match whose TLS cannot be
     * parsed rejects the cluster by name, but for one not ready for Istio's SDS secrets or for an SDS secret not
     * arrived ({@link UpstreamTlsParser#socket}).
     */
    private static TransportSocketMatch socketMatch(
            io.envoyproxy.envoy.config.cluster.v3.Cluster.TransportSocketMatch m) {
        Fields.onlyKnown(m, Set.of("name", "match", "transport_socket"), Set.of());
        if (!m.hasTransportSocket()) {
            throw new FieldError("transport_socket", "required");
        }
        TransportSocket ts = m.getTransportSocket();
        Map<String, Object> match = Fields.struct(m.getMatch());
        UpstreamTlsParser.Socket socket = Fields.at("transport_socket", () -> UpstreamTlsParser.socket(ts, true));
        return new TransportSocketMatch(m.getName(), match, socket.tls(), socket.notReady());
    }

    private static String edsConfig(io.envoyproxy.envoy.config.cluster.v3.Cluster.EdsClusterConfig eds) {
        Fields.onlyKnown(eds, Set.of("eds_config", "service_name"), Set.of());
        if (eds.hasEdsConfig()) {
            var source = eds.getEdsConfig();
            Fields.at("eds_config", () -> {
                Fields.onlyKnown(source, Set.of("ads"), Set.of("initial_fetch_timeout", "resource_api_version"));
                if (!source.hasAds()) {
                    throw new FieldError("config_source_specifier", "only ads is supported");
                }
                return null;
            });
        }
        return eds.getServiceName();
    }

    /**
     * The settings of the cluster's {@code lb_policy} from its {@code lb_config}. As Envoy, an {@code lb_config} of
     * another policy ({@code ring_hash_lb_config} on a ROUND_ROBIN cluster) loads and changes nothing: only the
     * policy's own settings are read.
     */
    private static LbConfig lbConfig(io.envoyproxy.envoy.config.cluster.v3.Cluster c, LbPolicy policy) {
        return switch (policy) {
            case LEAST_REQUEST -> c.hasLeastRequestLbConfig()
                    ? Fields.at("least_request_lb_config", () -> leastRequest(c.getLeastRequestLbConfig()))
                    : LbConfig.LeastRequest.DEFAULTS;
            case RING_HASH -> {
                if (!c.hasRingHashLbConfig()) {
                    yield LbConfig.RingHash.DEFAULTS;
                }
                var rh = c.getRingHashLbConfig();
                yield Fields.at("ring_hash_lb_config", () -> {
                    Fields.onlyKnown(rh, Set.of("minimum_ring_size", "maximum_ring_size", "hash_function"), Set.of());
                    LbConfig.RingHash.HashFunction function = switch (rh.getHashFunction()) {
                        case XX_HASH -> LbConfig.RingHash.HashFunction.XX_HASH;
                        case MURMUR_HASH_2 -> LbConfig.RingHash.HashFunction.MURMUR_HASH_2;
                        case UNRECOGNIZED -> throw new FieldError("hash_function", "unknown value "
                                + rh.getHashFunctionValue());
                    };
                    return ringHash(rh.hasMinimumRingSize(), rh.getMinimumRingSize(), rh.hasMaximumRingSize(),
                            rh.getMaximumRingSize(), function);
                });
            }
            case MAGLEV -> c.hasMaglevLbConfig()
                    ? Fields.at("maglev_lb_config", () -> maglev(c.getMaglevLbConfig()))
                    : LbConfig.Maglev.DEFAULTS;
            case ROUND_ROBIN -> c.hasRoundRobinLbConfig()
                    ? Fields.at("round_robin_lb_config", () -> roundRobin(c.getRoundRobinLbConfig()))
                    : new LbConfig.Default();
            case CLUSTER_PROVIDED -> originalDst(c);
            case RANDOM -> new LbConfig.Default();
        };
    }

    /** An ORIGINAL_DST cluster's {@code original_dst_lb_config} (which its cluster reads, whatever the policy). */
    static LbConfig originalDst(io.envoyproxy.envoy.config.cluster.v3.Cluster c) {
        if (!c.hasOriginalDstLbConfig()) {
            return new LbConfig.Default();
        }
        var od = c.getOriginalDstLbConfig();
        return Fields.at("original_dst_lb_config", () -> {
            Fields.onlyKnown(od, Set.of("upstream_port_override", "use_http_header", "http_header_name"), Set.of());
            if (!od.getUseHttpHeader() && !od.getHttpHeaderName().isEmpty()) {
                // as Envoy's ORIGINAL_DST cluster refuses it
                throw new FieldError("http_header_name", od.getHttpHeaderName()
                        + " (set use_http_header to true if http_header_name is desired)");
            }
            String header = !od.getUseHttpHeader() ? null : od.getHttpHeaderName().isEmpty()
                    ? LbConfig.OriginalDst.DEFAULT_HEADER : od.getHttpHeaderName().toLowerCase(java.util.Locale.ROOT);
            int port = od.hasUpstreamPortOverride() ? od.getUpstreamPortOverride().getValue() : 0;
            return port == 0 && header == null ? new LbConfig.Default()
                    : Fields.record("original_dst_lb_config.", () -> new LbConfig.OriginalDst(port, header));
        });
    }

    /** LEAST_REQUEST's settings, errors named from the message's own fields. */
    static LbConfig leastRequest(io.envoyproxy.envoy.config.cluster.v3.Cluster.LeastRequestLbConfig lr) {
        Fields.onlyKnown(lr, Set.of("choice_count", "active_request_bias", "slow_start_config"), Set.of());
        int choices = lr.hasChoiceCount() ? lr.getChoiceCount().getValue() : 2;
        if (choices < 2) {
            throw new FieldError("choice_count", choices + " (expected: >= 2)");
        }
        double bias = lr.hasActiveRequestBias() ? runtimeDouble(lr.getActiveRequestBias(),
                "least_request_lb_config.active_request_bias", true) : 1.0;
        LbConfig.SlowStart slowStart = lr.hasSlowStartConfig() ? slowStart(lr.getSlowStartConfig()) : null;
        return Fields.record("least_request_lb_config.", () -> new LbConfig.LeastRequest(choices, bias, slowStart));
    }

    /** RING_HASH's settings from its ring sizes (Envoy's defaults when unset) and hash function. */
    static LbConfig ringHash(boolean hasMin, com.google.protobuf.UInt64Value min, boolean hasMax,
                             com.google.protobuf.UInt64Value max, LbConfig.RingHash.HashFunction function) {
        long minimum = hasMin ? min.getValue() : 1024;
        long maximum = hasMax ? max.getValue() : 8_388_608;
        return Fields.record("ring_hash_lb_config.", () -> new LbConfig.RingHash(minimum, maximum, function));
    }

    /** MAGLEV's settings, errors named from the message's own fields. */
    static LbConfig maglev(io.envoyproxy.envoy.config.cluster.v3.Cluster.MaglevLbConfig mg) {
        Fields.onlyKnown(mg, Set.of("table_size"), Set.of());
        long size = mg.hasTableSize() ? mg.getTableSize().getValue() : 65_537;
        return Fields.record("maglev_lb_config.", () -> new LbConfig.Maglev(size));
    }

    /** ROUND_ROBIN's settings: a slow start, or none. */
    static LbConfig roundRobin(io.envoyproxy.envoy.config.cluster.v3.Cluster.RoundRobinLbConfig rr) {
        Fields.onlyKnown(rr, Set.of("slow_start_config"), Set.of());
        LbConfig.SlowStart slowStart = rr.hasSlowStartConfig() ? slowStart(rr.getSlowStartConfig()) : null;
        return slowStart == null ? new LbConfig.Default() : new LbConfig.RoundRobin(slowStart);
    }

    private static CircuitBreakers circuitBreakers(io.envoyproxy.envoy.config.cluster.v3.CircuitBreakers cb) {
        Fields.onlyKnown(cb, Set.of("thresholds"), Set.of());
        return new CircuitBreakers(Fields.each("thresholds", cb.getThresholdsList(), t -> {
            Fields.onlyKnown(t, Set.of("priority", "max_connections", "max_pending_requests", "max_requests",
                    "max_retries", "retry_budget", "track_remaining", "max_connection_pools"), Set.of());
            CircuitBreakers.RoutingPriority priority = switch (t.getPriority()) {
                case DEFAULT -> CircuitBreakers.RoutingPriority.DEFAULT;
                case HIGH -> CircuitBreakers.RoutingPriority.HIGH;
                case UNRECOGNIZED -> throw new FieldError("priority", "unknown value " + t.getPriorityValue());
            };
            return new CircuitBreakers.Thresholds(priority,
                    t.hasMaxConnections() ? Integer.toUnsignedLong(t.getMaxConnections().getValue()) : 1024,
                    t.hasMaxPendingRequests() ? Integer.toUnsignedLong(t.getMaxPendingRequests().getValue()) : 1024,
                    t.hasMaxRequests() ? Integer.toUnsignedLong(t.getMaxRequests().getValue()) : 1024,
                    t.hasMaxRetries() ? Integer.toUnsignedLong(t.getMaxRetries().getValue()) : 3,
                    t.hasRetryBudget() ? Fields.at("retry_budget", () -> retryBudget(t.getRetryBudget())) : null,
                    t.getTrackRemaining(), t.hasMaxConnectionPools()
                            ? Integer.toUnsignedLong(t.getMaxConnectionPools().getValue())
                            : CircuitBreakers.Thresholds.NO_LIMIT);
        }));
    }

    /** A retry budget, its unset fields at Envoy's defaults (20%, 3). */
    private static CircuitBreakers.RetryBudget retryBudget(
            io.envoyproxy.envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget b) {
        Fields.onlyKnown(b, Set.of("budget_percent", "min_retry_concurrency"), Set.of());
        CircuitBreakers.RetryBudget d = CircuitBreakers.RetryBudget.DEFAULTS;
        return Fields.record("retry_budget.", () -> new CircuitBreakers.RetryBudget(
                b.hasBudgetPercent() ? b.getBudgetPercent().getValue() : d.budgetPercent(),
                b.hasMinRetryConcurrency() ? Integer.toUnsignedLong(b.getMinRetryConcurrency().getValue())
                        : d.minRetryConcurrency()));
    }

    private static OutlierDetection outlierDetection(io.envoyproxy.envoy.config.cluster.v3.OutlierDetection o) {
        Fields.onlyKnown(o, Set.of("consecutive_5xx", "interval", "base_ejection_time", "max_ejection_percent",
                "enforcing_consecutive_5xx", "enforcing_success_rate", "success_rate_minimum_hosts",
                "success_rate_request_volume", "success_rate_stdev_factor", "consecutive_gateway_failure",
                "enforcing_consecutive_gateway_failure", "split_external_local_origin_errors",
                "consecutive_local_origin_failure", "enforcing_consecutive_local_origin_failure",
                "enforcing_local_origin_success_rate", "failure_percentage_threshold", "enforcing_failure_percentage",
                "enforcing_failure_percentage_local_origin", "failure_percentage_minimum_hosts",
                "failure_percentage_request_volume", "max_ejection_time", "always_eject_one_host",
                "max_ejection_time_jitter", "successful_active_health_check_uneject_host"), Set.of());
        OutlierDetection d = OutlierDetection.DEFAULTS;
        Duration base = o.hasBaseEjectionTime() ? Fields.duration(o.getBaseEjectionTime()) : d.baseEjectionTime();
        // unset, the maximum is Envoy's 300 s or the base time, whichever is larger
        Duration max = o.hasMaxEjectionTime() ? Fields.duration(o.getMaxEjectionTime())
                : (base.compareTo(d.maxEjectionTime()) > 0 ? base : d.maxEjectionTime());
        if (max.compareTo(base) < 0) {
            throw new FieldError("max_ejection_time", max + " (expected: >= base_ejection_time " + base + ")");
        }
        return new OutlierDetection(
                o.hasConsecutive5Xx() ? o.getConsecutive5Xx().getValue() : d.consecutive5xx(),
                o.hasInterval() ? Fields.duration(o.getInterval()) : d.interval(),
                base,
                max,
                o.hasMaxEjectionPercent() ? o.getMaxEjectionPercent().getValue() : d.maxEjectionPercent(),
                o.hasEnforcingConsecutive5Xx() ? o.getEnforcingConsecutive5Xx().getValue()
                        : d.enforcingConsecutive5xx(),
                o.hasEnforcingSuccessRate() ? o.getEnforcingSuccessRate().getValue() : d.enforcingSuccessRate(),
                o.hasSuccessRateMinimumHosts() ? o.getSuccessRateMinimumHosts().getValue()
                        : d.successRateMinimumHosts(),
                o.hasSuccessRateRequestVolume() ? o.getSuccessRateRequestVolume().getValue()
                        : d.successRateRequestVolume(),
                o.hasSuccessRateStdevFactor() ? o.getSuccessRateStdevFactor().getValue()
                        : d.successRateStdevFactor(),
                o.hasConsecutiveGatewayFailure() ? o.getConsecutiveGatewayFailure().getValue()
                        : d.consecutiveGatewayFailure(),
                o.hasEnforcingConsecutiveGatewayFailure() ? o.getEnforcingConsecutiveGatewayFailure().getValue()
                        : d.enforcingConsecutiveGatewayFailure(),
                o.getSplitExternalLocalOriginErrors(),
                o.hasConsecutiveLocalOriginFailure() ? o.getConsecutiveLocalOriginFailure().getValue()
                        : d.consecutiveLocalOriginFailure(),
                o.hasEnforcingConsecutiveLocalOriginFailure()
                        ? o.getEnforcingConsecutiveLocalOriginFailure().getValue()
                        : d.enforcingConsecutiveLocalOriginFailure(),
                o.hasEnforcingLocalOriginSuccessRate() ? o.getEnforcingLocalOriginSuccessRate().getValue()
                        : d.enforcingLocalOriginSuccessRate(),
                o.hasFailurePercentageThreshold() ? o.getFailurePercentageThreshold().getValue()
                        : d.failurePercentageThreshold(),
                o.hasEnforcingFailurePercentage() ? o.getEnforcingFailurePercentage().getValue()
                        : d.enforcingFailurePercentage(),
                o.hasEnforcingFailurePercentageLocalOrigin()
                        ? o.getEnforcingFailurePercentageLocalOrigin().getValue()
                        : d.enforcingFailurePercentageLocalOrigin(),
                o.hasFailurePercentageMinimumHosts() ? o.getFailurePercentageMinimumHosts().getValue()
                        : d.failurePercentageMinimumHosts(),
                o.hasFailurePercentageRequestVolume() ? o.getFailurePercentageRequestVolume().getValue()
                        : d.failurePercentageRequestVolume(),
                o.hasAlwaysEjectOneHost() && o.getAlwaysEjectOneHost().getValue(),
                o.hasMaxEjectionTimeJitter() ? Fields.duration(o.getMaxEjectionTimeJitter())
                        : d.maxEjectionTimeJitter(),
                !o.hasSuccessfulActiveHealthCheckUnejectHost()
                        || o.getSuccessfulActiveHealthCheckUnejectHost().getValue());
    }

    private static CommonLbConfig commonLbConfig(io.envoyproxy.envoy.config.cluster.v3.Cluster.CommonLbConfig c) {
        Fields.onlyKnown(c, Set.of("healthy_panic_threshold", "locality_weighted_lb_config",
                "close_connections_on_host_set_change", "override_host_status", "consistent_hashing_lb_config",
                "zone_aware_lb_config"),
                Set.of("update_merge_window", "ignore_new_hosts_until_first_hc"));
        double panic = c.hasHealthyPanicThreshold() ? c.getHealthyPanicThreshold().getValue() : 50.0;
        if (panic < 0 || panic > 100) {
            throw new FieldError("healthy_panic_threshold", panic + " (expected: 0..100)");
        }
        // Envoy rounds the percent to a whole number: 0.4 is 0 (panic mode off), 50.5 is 51
        // the health a host named by a stateful session may have (Istio lists DRAINING for persistent sessions)
        java.util.Set<dev.inmesh.api.config.endpoint.HealthStatus> override = null;
        if (c.hasOverrideHostStatus()) {
            override = java.util.EnumSet.noneOf(dev.inmesh.api.config.endpoint.HealthStatus.class);
            var statuses = c.getOverrideHostStatus().getStatusesList();
            for (int i = 0; i < statuses.size(); i++) {
                var st = statuses.get(i);
                if (st == io.envoyproxy.envoy.config.core.v3.HealthStatus.UNRECOGNIZED) {
                    throw new FieldError("override_host_status.statuses[" + i + "]", c.getOverrideHostStatus()
                            .getStatusesValue(i) + " (expected: a HealthStatus)");
                }
                override.add(dev.inmesh.api.config.endpoint.HealthStatus.valueOf(st.name()));
            }
        }
        var hashing = c.getConsistentHashingLbConfig();
        // hash_balance_factor (bounded loads) is not implemented: refused by name
        Fields.at("consistent_hashing_lb_config", () -> {
            Fields.onlyKnown(hashing, Set.of("use_hostname_for_hashing"), Set.of());
            return null;
        });
        // zone aware routing itself needs the local cluster (the bootstrap's cluster_manager.local_cluster_name),
        // which Inmesh does not have, as istiod's sidecars do not: without one Envoy routes by zone never, so its
        // routing_enabled and min_cluster_size change nothing; fail_traffic_on_panic applies all the same
        var zoneAware = c.getZoneAwareLbConfig();
        Fields.at("zone_aware_lb_config", () -> {
            Fields.onlyKnown(zoneAware, Set.of("fail_traffic_on_panic"), Set.of("routing_enabled", "min_cluster_size"));
            return null;
        });
        return new CommonLbConfig(Math.round(panic), c.hasLocalityWeightedLbConfig(),
                c.getCloseConnectionsOnHostSetChange(), override, hashing.getUseHostnameForHashing(),
                zoneAware.getFailTrafficOnPanic());
    }

    /**
     * {@code upstream_bind_config}'s {@code source_address}; its {@code extra_source_addresses} (one, of the other IP
     * version, as Envoy's default local address selector takes them: istiod's for a dual-stack pod) are read by the
     * caller.
     */
    private static SocketAddress bindAddress(io.envoyproxy.envoy.config.core.v3.BindConfig b) {
        Fields.onlyKnown(b, Set.of("source_address", "extra_source_addresses"), Set.of());
        if (!b.hasSourceAddress()) {
            throw new FieldError("source_address", "required");
        }
        return Fields.at("source_address", () -> socketAddress(b.getSourceAddress()));
    }

    /**
     * A source address to bind: its address. A source port other than 0 (any), which Envoy binds, is refused by name:
     * the upstream connections bind only the address.
     */
    private static SocketAddress socketAddress(io.envoyproxy.envoy.config.core.v3.SocketAddress s) {
        Fields.onlyKnown(s, Set.of("address", "port_value", "protocol"), Set.of("ipv4_compat"));
        CoreParsers.checkIp(s.getAddress(), "address", null); // a name: "malformed IP address", as Envoy
        if (s.getPortValue() != 0) {
            throw new FieldError("port_value", s.getPortValue() + " is not supported by Inmesh (expected: 0, any "
                    + "port: the upstream connections do not bind a source port)");
        }
        return new SocketAddress(s.getAddress(), 0);
    }

    /**
     * The TCP keep-alive of {@code upstream_connection_options}, or null without {@code tcp_keepalive}. Its
     * {@code set_local_interface_name_on_upstream_connections} only lets Envoy's extensions read the local interface's
     * name, which none of Inmesh's does; {@code happy_eyeballs_config} (the order of a host's addresses) is refused.
     */
    private static TcpKeepalive tcpKeepalive(io.envoyproxy.envoy.config.cluster.v3.UpstreamConnectionOptions o) {
        Fields.onlyKnown(o, Set.of("tcp_keepalive"), Set.of("set_local_interface_name_on_upstream_connections"));
        if (!o.hasTcpKeepalive()) {
            return null;
        }
        var k = o.getTcpKeepalive();
        return Fields.at("tcp_keepalive", () -> {
            Fields.onlyKnown(k, Set.of("keepalive_probes", "keepalive_time", "keepalive_interval"), Set.of());
            return new TcpKeepalive(intOrNull(k.hasKeepaliveProbes(), k.getKeepaliveProbes(), "keepalive_probes"),
                    intOrNull(k.hasKeepaliveTime(), k.getKeepaliveTime(), "keepalive_time"),
                    intOrNull(k.hasKeepaliveInterval(), k.getKeepaliveInterval(), "keepalive_interval"));
        });
    }

    /** A {@code uint32} as an int, or null when unset; one over {@code Integer.MAX_VALUE} is refused by name. */
    private static Integer intOrNull(boolean has, com.google.protobuf.UInt32Value v, String field) {
        return has ? CoreParsers.int31(v, field) : null;
    }

    /**
     * The {@code default_value} of a load balancer's {@code RuntimeDouble} (its {@code runtime_key} is not read: the
     * runtime feeds routes only). A negative one (with {@code zero}, else one of 0 or less), or NaN, is taken as 1.0, as Envoy's load
     * balancers take it (they log it and load the cluster), with a warning.
     */
    private static double runtimeDouble(io.envoyproxy.envoy.config.core.v3.RuntimeDouble d, String field,
                                        boolean zero) {
        double v = d.getDefaultValue();
        if (zero ? v >= 0 : v > 0) {
            return v;
        }
        LOG.warning(() -> field + ": " + v + " (expected: " + (zero ? ">= 0" : "> 0") + "): 1.0 applies, as in Envoy");
        return 1.0;
    }

    /**
     * A {@code slow_start_config}, or null when it sets no window (Envoy turns slow start on only for a window above
     * zero). The aggression's {@code runtime_key} is not read (the runtime feeds routes only): its
     * {@code default_value} applies.
     */
    private static LbConfig.SlowStart slowStart(io.envoyproxy.envoy.config.cluster.v3.Cluster.SlowStartConfig s) {
        return Fields.at("slow_start_config", () -> {
            Fields.onlyKnown(s, Set.of("slow_start_window", "aggression", "min_weight_percent"), Set.of());
            java.time.Duration window = s.hasSlowStartWindow() ? Fields.duration(s.getSlowStartWindow())
                    : java.time.Duration.ZERO;
            double aggression = s.hasAggression() ? runtimeDouble(s.getAggression(),
                    "slow_start_config.aggression", false) : LbConfig.SlowStart.DEFAULT_AGGRESSION;
            double minWeight = LbConfig.SlowStart.DEFAULT_MIN_WEIGHT_PERCENT;
            if (s.hasMinWeightPercent()) {
                minWeight = s.getMinWeightPercent().getValue();
                if (!(minWeight >= 0 && minWeight <= 100)) {
                    throw new FieldError("min_weight_percent.value", minWeight + " (expected: 0 to 100)");
                }
            }
            if (window.isNegative()) {
                throw new FieldError("slow_start_window", window + " (expected: >= 0s)");
            }
            return window.isZero() ? null : new LbConfig.SlowStart(window, aggression, minWeight);
        });
    }

    private enum UpstreamProtocol { HTTP1, HTTP2, DOWNSTREAM }

    /** Unpacks one typed protocol option, which must be the upstream HttpProtocolOptions. */
    private static HttpProtocolOptions protocolOptions(String key, Any any) {
        if (!key.equals(HTTP_PROTOCOL_OPTIONS)) {
            throw new FieldError("", "not supported by Inmesh (only " + HTTP_PROTOCOL_OPTIONS + ")");
        }
        HttpProtocolOptions o;
        try {
            o = any.unpack(HttpProtocolOptions.class);
        } catch (InvalidProtocolBufferException e) {
            throw new FieldError("", "not a valid " + HTTP_PROTOCOL_OPTIONS + ": " + e.getMessage());
        }
        Fields.onlyKnown(o, Set.of("explicit_http_config", "use_downstream_protocol_config",
                "common_http_protocol_options"), Set.of("upstream_http_protocol_options"));
        return o;
    }

    /**
     * The connection lifetimes of {@code common_http_protocol_options}: {@code idle_timeout} (default 1 hour, 0 never),
     * {@code max_connection_duration} and {@code max_requests_per_connection}, and the limit on each upstream
     * request's duration, {@code max_stream_duration}. Its limits on responses ({@code max_headers_count},
     * {@code max_response_headers_kb}, {@code headers_with_underscores_action}) are not implemented: they load only at
     * the values that change nothing (Envoy's 100 headers and 60 KiB, which the upstream pools keep, {@code ALLOW})
     * and are refused by name otherwise. istiod writes none of them on clusters.
     */
    private static CommonHttpProtocolOptions lifetimes(io.envoyproxy.envoy.config.core.v3.HttpProtocolOptions o) {
        Fields.onlyKnown(o, Set.of("idle_timeout", "max_connection_duration", "max_requests_per_connection",
                "max_headers_count", "max_stream_duration", "headers_with_underscores_action",
                "max_response_headers_kb"), Set.of());
        if (o.hasMaxHeadersCount() && o.getMaxHeadersCount().getValue() != 100) {
            throw new FieldError("max_headers_count", Integer.toUnsignedString(o.getMaxHeadersCount().getValue())
                    + " is not supported by Inmesh on a cluster (expected: 100, Envoy's default)");
        }
        if (o.hasMaxResponseHeadersKb() && o.getMaxResponseHeadersKb().getValue() != 60) {
            throw new FieldError("max_response_headers_kb", Integer.toUnsignedString(
                    o.getMaxResponseHeadersKb().getValue()) + " is not supported by Inmesh (expected: 60, Envoy's "
                    + "default, the largest response head the upstream pools take)");
        }
        if (o.getHeadersWithUnderscoresAction()
                != io.envoyproxy.envoy.config.core.v3.HttpProtocolOptions.HeadersWithUnderscoresAction.ALLOW) {
            throw new FieldError("headers_with_underscores_action", o.getHeadersWithUnderscoresAction()
                    + " is not supported by Inmesh on a cluster (expected: ALLOW, the default)");
        }
        Duration idle = o.hasIdleTimeout() ? Fields.duration(o.getIdleTimeout()) : null;
        Duration max = o.hasMaxConnectionDuration() ? Fields.duration(o.getMaxConnectionDuration()) : null;
        Duration stream = o.hasMaxStreamDuration() ? Fields.duration(o.getMaxStreamDuration()) : null;
        return Fields.record("", () -> new CommonHttpProtocolOptions(idle, max,
                o.hasMaxRequestsPerConnection() ? Integer.toUnsignedLong(o.getMaxRequestsPerConnection().getValue())
                        : 0, stream));
    }

    /**
     * A TLS cluster's context with the options' {@code auto_sni} and {@code auto_san_validation}: Envoy then takes the
     * SNI and the SAN to check from each request's host. {@code override_auto_sni_header} (another header than the
     * host) is refused by name. (Without TLS they change nothing.)
     */
    private static UpstreamTlsContext autoSni(HttpProtocolOptions o, UpstreamTlsContext tls) {
        var u = o.getUpstreamHttpProtocolOptions();
        if (!u.getOverrideAutoSniHeader().isEmpty()) {
            throw new FieldError("upstream_http_protocol_options.override_auto_sni_header", "\""
                    + u.getOverrideAutoSniHeader() + "\" is not supported (Inmesh takes the request's host)");
        }
        return u.getAutoSni() || u.getAutoSanValidation() ? tls.withAutoSni(u.getAutoSni(), u.getAutoSanValidation())
                : tls;
    }

    /**
     * The HTTP/2 settings of typed protocol options: those of the {@code http2_protocol_options} of
     * {@code explicit_http_config} or {@code use_downstream_protocol_config} (where they tune the pool of the HTTP/2
     * requests), else Envoy's defaults, as the typed options replace the cluster's deprecated field.
     */
    private static Http2ProtocolOptions http2Options(HttpProtocolOptions o) {
        if (o.hasExplicitHttpConfig() && o.getExplicitHttpConfig().hasHttp2ProtocolOptions()) {
            return Fields.at("explicit_http_config.http2_protocol_options",
                    () -> CoreParsers.http2ProtocolOptions(o.getExplicitHttpConfig().getHttp2ProtocolOptions()));
        }
        if (o.hasUseDownstreamProtocolConfig() && o.getUseDownstreamProtocolConfig().hasHttp2ProtocolOptions()) {
            return Fields.at("use_downstream_protocol_config.http2_protocol_options", () -> CoreParsers
                    .http2ProtocolOptions(o.getUseDownstreamProtocolConfig().getHttp2ProtocolOptions()));
        }
        return Http2ProtocolOptions.DEFAULTS;
    }

    /**
     * The HTTP/1 options of a cluster's upstream connections (Istio writes them empty). Those that only shape how a
     * server reads requests ({@code accept_http_10}, {@code default_host_for_http_10}, {@code allow_absolute_url},
     * {@code allow_custom_methods}) and the codec's error handling change nothing upstream; a {@code header_key_format}
     * as {@link CoreParsers#headerKeyFormat}; {@code enable_trailers} keeps the trailers of the hosts' chunked
     * responses, which Envoy's HTTP/1 codec drops without it. {@code send_fully_qualified_url} (the absolute
     * URL in the request line) and {@code allow_chunked_length} are not implemented for upstreams and are refused by
     * name.
     */
    private static void upstreamHttp1(io.envoyproxy.envoy.config.core.v3.Http1ProtocolOptions o) {
        Fields.onlyKnown(o, Set.of("header_key_format", "enable_trailers"), Set.of("accept_http_10",
                "default_host_for_http_10", "allow_absolute_url", "allow_custom_methods",
                "override_stream_error_on_invalid_http_message", "use_balsa_parser"));
        CoreParsers.headerKeyFormat(o);
    }

    /** The HTTP/1 options typed protocol options give, whichever way (the defaults when they give none). */
    private static io.envoyproxy.envoy.config.core.v3.Http1ProtocolOptions typedHttp1(HttpProtocolOptions o) {
        return o.hasExplicitHttpConfig() ? o.getExplicitHttpConfig().getHttpProtocolOptions()
                : o.getUseDownstreamProtocolConfig().getHttpProtocolOptions();
    }

    /** The upstream protocol typed protocol options select. */
    private static UpstreamProtocol upstreamProtocol(HttpProtocolOptions o) {
        if (o.hasExplicitHttpConfig()) {
            var explicit = o.getExplicitHttpConfig();
            return Fields.at("explicit_http_config", () -> {
                Fields.onlyKnown(explicit, Set.of("http_protocol_options", "http2_protocol_options"), Set.of());
                Fields.at("http_protocol_options", () -> {
                    upstreamHttp1(explicit.getHttpProtocolOptions());
                    return null;
                });
                if (!explicit.hasHttpProtocolOptions() && !explicit.hasHttp2ProtocolOptions()) {
                    // Envoy's protocol_config oneof is required
                    throw new FieldError("", "no protocol set (expected: http_protocol_options or "
                            + "http2_protocol_options, as Envoy requires one)");
                }
                return explicit.hasHttp2ProtocolOptions() ? UpstreamProtocol.HTTP2 : UpstreamProtocol.HTTP1;
            });
        }
        if (o.hasUseDownstreamProtocolConfig()) {
            var downstream = o.getUseDownstreamProtocolConfig();
            Fields.at("use_downstream_protocol_config", () -> {
                Fields.onlyKnown(downstream, Set.of("http_protocol_options", "http2_protocol_options"), Set.of());
                Fields.at("http_protocol_options", () -> {
                    upstreamHttp1(downstream.getHttpProtocolOptions());
                    return null;
                });
                return null;
            });
            // as Envoy: an HTTP/2 request goes upstream over HTTP/2, any other over HTTP/1.1; the options given
            // only tune each protocol
            return UpstreamProtocol.DOWNSTREAM;
        }
        // Envoy's upstream_protocol_options oneof is required (auto_config is refused by name before)
        throw new FieldError("upstream_protocol_options", "none set (expected: explicit_http_config or "
                + "use_downstream_protocol_config, as Envoy requires one)");
    }
}
