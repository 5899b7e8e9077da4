package dev.inmesh.runtime.xds;

import com.google.protobuf.Any;
import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.listener.Compressor;
import dev.inmesh.api.config.listener.ConnectionLifetimes;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.RemoteAddressOptions;
import dev.inmesh.api.config.listener.FilterChainMatch;
import dev.inmesh.api.config.listener.ForwardClientCert;
import dev.inmesh.api.config.listener.Http1Options;
import dev.inmesh.api.config.listener.HeadersWithUnderscoresAction;
import dev.inmesh.api.config.listener.HostNormalization;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.OriginalIpDetection;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.ListenerFilterPredicate;
import dev.inmesh.api.config.listener.Buffer;
import dev.inmesh.api.config.listener.HeaderMutation;
import dev.inmesh.api.config.listener.Lua;
import dev.inmesh.api.config.listener.NetworkFilter;
import dev.inmesh.api.config.listener.PathNormalization;
import dev.inmesh.api.config.listener.ProxyProtocol;
import dev.inmesh.api.config.listener.RouterFilterConfig;
import dev.inmesh.api.config.listener.ServerHeader;
import dev.inmesh.api.config.listener.TcpProxy;
import dev.inmesh.api.config.extauthz.ExtAuthz;
import dev.inmesh.api.config.extauthz.NetworkExtAuthz;
import dev.inmesh.api.config.ratelimit.GlobalRateLimit;
import dev.inmesh.api.config.jwt.JwtAuthentication;
import dev.inmesh.api.config.listener.TrafficDirection;
import dev.inmesh.api.config.ratelimit.NetworkLocalRateLimit;
import dev.inmesh.api.config.rbac.NetworkRbac;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.api.config.route.LocalRateLimit;
import dev.inmesh.api.config.route.StatefulSession;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.runtime.net.LocalAddress;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses LDS resources ({@code envoy.config.listener.v3.Listener}) into {@link Listener}, with their HTTP connection
 * managers and TCP proxies, and the RBAC network filters before them. Besides the router, the fault, CORS, RBAC,
 * local rate limit, JWT authentication and gRPC-Web HTTP filters are taken as Inmesh runs them. Filters that only observe (Istio's stats and metadata
 * exchange, gRPC stats, ALPN) are accepted; any other filter is rejected by name unless the config marks it optional
 * or disabled.
 */
public final class ListenerParser
        implements ResourceParser<io.envoyproxy.envoy.config.listener.v3.Listener, Listener> {

    static final String HCM = "envoy.filters.network.http_connection_manager";

    /** A listener message's filter chains in their order, its default filter chain (if any) last. */
    public static List<io.envoyproxy.envoy.config.listener.v3.FilterChain> chainsWithDefault(
            io.envoyproxy.envoy.config.listener.v3.Listener l) {
        List<io.envoyproxy.envoy.config.listener.v3.FilterChain> chains = new ArrayList<>(l.getFilterChainsList());
        if (l.hasDefaultFilterChain()) {
            chains.add(l.getDefaultFilterChain());
        }
        return chains;
    }

    /**
     * The HTTP connection managers of a listener message, one per filter that holds one, in the order of
     * {@link #chainsWithDefault}. A listener is kept only once they parsed, so one that does not is left out.
     */
    public static List<io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3
            .HttpConnectionManager> connectionManagers(io.envoyproxy.envoy.config.listener.v3.Listener l) {
        var type = io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                .class;
        List<io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager> out =
                new ArrayList<>();
        for (var chain : chainsWithDefault(l)) {
            for (Filter filter : chain.getFiltersList()) {
                if (filter.hasTypedConfig() && filter.getTypedConfig().is(type)) {
                    try {
                        out.add(filter.getTypedConfig().unpack(type));
                    } catch (com.google.protobuf.InvalidProtocolBufferException e) {
                        // not a listener that parsed
                    }
                }
            }
        }
        return out;
    }
    static final String TCP_PROXY = "envoy.filters.network.tcp_proxy";
    static final String HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
    static final String TCP_PROXY_TYPE = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
    static final String ROUTER_TYPE = "envoy.extensions.filters.http.router.v3.Router";

    /**
     * Network filters that precede the terminal one and change nothing Inmesh routes by. Istio's
     * {@code istio_authn} (istiod 1.17+ on gateway chains, 1.19 on sidecar inbound chains) only records the peer's
     * and its own mTLS principals in the connection's filter state, which Inmesh never reads: policies that would
     * read it there are refused by {@link RbacParser}.
     */
    static final Set<String> OBSERVING_NETWORK_FILTERS = Set.of("istio.metadata_exchange",
            "envoy.filters.network.metadata_exchange", "istio.stats", "envoy.filters.network.wasm_stats",
            "istio_authn");

    /**
     * HTTP filters that change nothing here: Istio's telemetry and peer metadata, ALPN override, gRPC stats. Names
     * count only where the config type cannot tell (see {@link #OBSERVING_HTTP_TYPES}). The fault, CORS and RBAC
     * filters are not among them: the router runs them.
     */
    static final Set<String> OBSERVING_HTTP_FILTERS = Set.of("istio.metadata_exchange", "istio.stats", "istio.alpn",
            "envoy.filters.http.grpc_stats", "envoy.filters.http.peer_metadata", "istio_authn",
            "envoy.filters.http.wasm_stats");

    /** The config type of the gRPC statistics filter, one of the observing HTTP filters. */
    static final String GRPC_STATS_TYPE = "envoy.extensions.filters.http.grpc_stats.v3.FilterConfig";

    /** The config type of Istio's stats filter ({@code istio.stats}), one of the observing filters. */
    static final String ISTIO_STATS_TYPE = "stats.PluginConfig";

    /** The name Istio gives its stats filter, HTTP and network alike. */
    static final String ISTIO_STATS_NAME = "istio.stats";

    /**
     * Whether a filter is Istio's stats filter: by its config, a {@code stats.PluginConfig} (istiod's since 1.18), or,
     * where the type cannot tell, by its name: the older Wasm form (a Wasm filter named {@code istio.stats} running
     * Istio's stats plugin), or one named so without a typed config.
     */
    static boolean isIstioStats(String name, String type, String wasmType) {
        return type.equals(ISTIO_STATS_TYPE)
                || name.equals(ISTIO_STATS_NAME) && (type.isEmpty() || type.equals(wasmType));
    }

    /**
     * The metric overrides of an Istio stats filter (see {@link #isIstioStats}) whose typed config is {@code config}:
     * the config's, or {@link dev.inmesh.api.config.listener.IstioStats#NONE} where it overrides nothing or is of
     * the Wasm form, whose overrides Inmesh does not read.
     */
    private static dev.inmesh.api.config.listener.IstioStats istioStatsOf(com.google.protobuf.Any config,
                                                                          String where) {
        dev.inmesh.api.config.listener.IstioStats stats = !CoreParsers.configType(config).equals(ISTIO_STATS_TYPE)
                ? null : Fields.at(where, () -> istioStats(config));
        return stats == null ? dev.inmesh.api.config.listener.IstioStats.NONE : stats;
    }

    /**
     * Whether an {@code istio.stats} filter's config ({@code stats.PluginConfig}, which Inmesh has no class for: the
     * message's bytes, or the fields of the {@code TypedStruct} the JSON reader keeps) sets
     * {@code disable_host_header_fallback} (field 6), as istiod does on its sidecars' inbound chains.
     */
    static boolean disablesHostHeaderFallback(com.google.protobuf.Any config) {
        try {
            com.google.protobuf.Struct fields = typedStructFields(config);
            if (fields == null) {
                com.google.protobuf.UnknownFieldSet.Field f = com.google.protobuf.UnknownFieldSet
                        .parseFrom(config.getValue()).getField(6);
                return !f.getVarintList().isEmpty() && f.getVarintList().get(f.getVarintList().size() - 1) != 0;
            }
            com.google.protobuf.Value v = member(fields, "disable_host_header_fallback", "disableHostHeaderFallback");
            return v != null && v.getBoolValue();
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new FieldError("typed_config", config.getTypeUrl() + ": " + e.getMessage()
                    + " (expected: a stats.PluginConfig)");
        }
    }

    /**
     * The metric overrides of an {@code istio.stats} filter's config ({@code stats.PluginConfig}: the message's bytes,
     * or the fields of the {@code TypedStruct} the JSON reader keeps): its {@code metrics} entries (field 8, each a
     * {@code MetricConfig} with {@code dimensions} 1, a map whose entries hold key 1 and value 2, {@code name} 2,
     * {@code tags_to_remove} 3 and {@code drop} 5) and its {@code definitions} (field 9, each a
     * {@code MetricDefinition} with {@code name} 1, {@code value} 2 and {@code type} 3, the enum's name in a
     * {@code TypedStruct}); null when it has neither.
     */
    static dev.inmesh.api.config.listener.IstioStats istioStats(com.google.protobuf.Any config) {
        List<dev.inmesh.api.config.listener.IstioStats.MetricOverride> metrics = new ArrayList<>();
        List<dev.inmesh.api.config.listener.IstioStats.MetricDefinition> definitions = new ArrayList<>();
        try {
            com.google.protobuf.Struct fields = typedStructFields(config);
            if (fields == null) {
                com.google.protobuf.UnknownFieldSet message = com.google.protobuf.UnknownFieldSet.parseFrom(
                        config.getValue());
                for (com.google.protobuf.ByteString entry : message.getField(9).getLengthDelimitedList()) {
                    com.google.protobuf.UnknownFieldSet d = com.google.protobuf.UnknownFieldSet.parseFrom(entry);
                    List<Long> type = d.getField(3).getVarintList();
                    definitions.add(new dev.inmesh.api.config.listener.IstioStats.MetricDefinition(
                            lastString(d.getField(1)), lastString(d.getField(2)),
                            metricType(type.isEmpty() ? 0 : type.get(type.size() - 1))));
                }
                for (com.google.protobuf.ByteString entry : message.getField(8).getLengthDelimitedList()) {
                    com.google.protobuf.UnknownFieldSet m = com.google.protobuf.UnknownFieldSet.parseFrom(entry);
                    List<com.google.protobuf.ByteString> names = m.getField(2).getLengthDelimitedList();
                    List<Long> drop = m.getField(5).getVarintList();
                    java.util.Map<String, String> dimensions = new java.util.HashMap<>();
                    for (com.google.protobuf.ByteString e : m.getField(1).getLengthDelimitedList()) {
                        com.google.protobuf.UnknownFieldSet kv = com.google.protobuf.UnknownFieldSet.parseFrom(e);
                        dimensions.put(lastString(kv.getField(1)), lastString(kv.getField(2)));
                    }
                    metrics.add(new dev.inmesh.api.config.listener.IstioStats.MetricOverride(
                            lastString(m.getField(2)), m.getField(3).getLengthDelimitedList().stream()
                                    .map(com.google.protobuf.ByteString::toStringUtf8).toList(),
                            !drop.isEmpty() && drop.get(drop.size() - 1) != 0, dimensions));
                }
            } else {
                com.google.protobuf.Value list = member(fields, "metrics", "metrics");
                List<com.google.protobuf.Value> entries = list == null ? List.of() : listOf(list, "metrics");
                for (int i = 0; i < entries.size(); i++) {
                    com.google.protobuf.Struct m = entries.get(i).getStructValue();
                    com.google.protobuf.Value name = member(m, "name", "name");
                    com.google.protobuf.Value tags = member(m, "tags_to_remove", "tagsToRemove");
                    com.google.protobuf.Value drop = member(m, "drop", "drop");
                    com.google.protobuf.Value dims = member(m, "dimensions", "dimensions");
                    String where = "metrics[" + i + "].";
                    java.util.Map<String, String> dimensions = new java.util.HashMap<>();
                    if (dims != null) {
                        dims.getStructValue().getFieldsMap().forEach((k, v) -> dimensions.put(k, v.getStringValue()));
                    }
                    metrics.add(new dev.inmesh.api.config.listener.IstioStats.MetricOverride(
                            name == null ? "" : name.getStringValue(), tags == null ? List.of()
                                    : listOf(tags, where + "tags_to_remove").stream()
                                    .map(com.google.protobuf.Value::getStringValue).toList(),
                            drop != null && drop.getBoolValue(), dimensions));
                }
                com.google.protobuf.Value defs = member(fields, "definitions", "definitions");
                for (com.google.protobuf.Value v : defs == null ? List.<com.google.protobuf.Value>of()
                        : listOf(defs, "definitions")) {
                    com.google.protobuf.Struct d = v.getStructValue();
                    com.google.protobuf.Value name = member(d, "name", "name");
                    com.google.protobuf.Value value = member(d, "value", "value");
                    com.google.protobuf.Value type = member(d, "type", "type");
                    definitions.add(new dev.inmesh.api.config.listener.IstioStats.MetricDefinition(
                            name == null ? "" : name.getStringValue(), value == null ? "" : value.getStringValue(),
                            type == null ? null : type.hasNumberValue() ? metricType((long) type.getNumberValue())
                                    : metricType(type.getStringValue())));
                }
            }
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new FieldError("typed_config", config.getTypeUrl() + ": " + e.getMessage()
                    + " (expected: a stats.PluginConfig)");
        }
        return metrics.isEmpty() && definitions.isEmpty() ? null
                : new dev.inmesh.api.config.listener.IstioStats(metrics, definitions);
    }

    /** {@code stats.MetricType} by number: COUNTER 0, GAUGE 1, HISTOGRAM 2 (another: a counter, as Istio's stats). */
    private static dev.inmesh.api.config.listener.IstioStats.MetricDefinition.Type metricType(long number) {
        var types = dev.inmesh.api.config.listener.IstioStats.MetricDefinition.Type.values();
        return number > 0 && number < types.length ? types[(int) number] : types[0];
    }

    /** {@code stats.MetricType} by name. */
    private static dev.inmesh.api.config.listener.IstioStats.MetricDefinition.Type metricType(String name) {
        try {
            return dev.inmesh.api.config.listener.IstioStats.MetricDefinition.Type.valueOf(name);
        } catch (IllegalArgumentException e) {
            throw new FieldError("definitions.type", "'" + name + "' (expected: COUNTER, GAUGE or HISTOGRAM)");
        }
    }

    /** The last value of a string field read as unknown fields (proto3: the last one wins), or empty. */
    private static String lastString(com.google.protobuf.UnknownFieldSet.Field f) {
        List<com.google.protobuf.ByteString> v = f.getLengthDelimitedList();
        return v.isEmpty() ? "" : v.get(v.size() - 1).toStringUtf8();
    }

    /**
     * The {@code tcp_reporting_duration} (field 7) of an {@code istio.stats} network filter's config
     * ({@code stats.PluginConfig}, bytes or {@code TypedStruct} fields); null when it sets none, or one under a
     * millisecond, which Istio's stats read as no interval at all.
     */
    static java.time.Duration tcpReportingDuration(com.google.protobuf.Any config) {
        try {
            com.google.protobuf.Struct fields = typedStructFields(config);
            com.google.protobuf.Duration d;
            if (fields == null) {
                List<com.google.protobuf.ByteString> v = com.google.protobuf.UnknownFieldSet
                        .parseFrom(config.getValue()).getField(7).getLengthDelimitedList();
                d = v.isEmpty() ? null : com.google.protobuf.Duration.parseFrom(v.get(v.size() - 1));
            } else {
                com.google.protobuf.Value v = member(fields, "tcp_reporting_duration", "tcpReportingDuration");
                d = v == null ? null : parseDuration(v.getStringValue());
            }
            java.time.Duration out = d == null ? null : java.time.Duration.ofSeconds(d.getSeconds(), d.getNanos());
            return out == null || out.compareTo(java.time.Duration.ofMillis(1)) < 0 ? null : out;
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new FieldError("typed_config", config.getTypeUrl() + ": " + e.getMessage()
                    + " (expected: a stats.PluginConfig)");
        }
    }

    private static com.google.protobuf.Duration parseDuration(String text) {
        try {
            return com.google.protobuf.util.Durations.parse(text);
        } catch (java.text.ParseException e) {
            throw new FieldError("typed_config.tcp_reporting_duration", "\"" + text + "\" (expected: a duration "
                    + "such as 5s)");
        }
    }

    /** A struct member that must be a list: its values. */
    private static List<com.google.protobuf.Value> listOf(com.google.protobuf.Value v, String field) {
        if (v.getKindCase() != com.google.protobuf.Value.KindCase.LIST_VALUE) {
            throw new FieldError("typed_config." + field, v.getKindCase() + " (expected: a list)");
        }
        return v.getListValue().getValuesList();
    }

    /** The config type of Istio's native peer metadata filter ({@code istio.metadata_exchange}). */
    static final String PEER_METADATA_TYPE = "io.istio.http.peer_metadata.Config";

    /**
     * Whether a peer metadata filter's config (the fields of the {@code TypedStruct} istiod writes it in) sends
     * Istio's headers upstream with {@code skip_external_clusters}: an {@code upstream_propagation} entry's
     * {@code istio_headers} setting it, as istiod writes for meshConfig's {@code metadataExchangeHeaders} mode
     * {@code IN_MESH}.
     */
    static boolean skipsExternalClusters(com.google.protobuf.Any config) {
        try {
            com.google.protobuf.Struct fields = typedStructFields(config);
            com.google.protobuf.Value propagation = fields == null ? null : member(fields, "upstream_propagation",
                    "upstreamPropagation");
            if (propagation == null) {
                return false;
            }
            for (com.google.protobuf.Value method : propagation.getListValue().getValuesList()) {
                com.google.protobuf.Value headers = member(method.getStructValue(), "istio_headers", "istioHeaders");
                com.google.protobuf.Value skip = headers == null ? null
                        : member(headers.getStructValue(), "skip_external_clusters", "skipExternalClusters");
                if (skip != null && skip.getBoolValue()) {
                    return true;
                }
            }
            return false;
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            throw new FieldError("typed_config", config.getTypeUrl() + ": " + e.getMessage()
                    + " (expected: an " + PEER_METADATA_TYPE + ")");
        }
    }

    /** The fields of a config in a {@code TypedStruct} (xDS's or UDPA's), or null for a config of its own type. */
    private static com.google.protobuf.Struct typedStructFields(com.google.protobuf.Any config)
            throws com.google.protobuf.InvalidProtocolBufferException {
        String url = config.getTypeUrl();
        if (url.endsWith("/xds.type.v3.TypedStruct")) {
            return config.unpack(com.github.xds.type.v3.TypedStruct.class).getValue();
        }
        if (url.endsWith("/udpa.type.v1.TypedStruct")) {
            return config.unpack(com.github.udpa.udpa.type.v1.TypedStruct.class).getValue();
        }
        return null;
    }

    /** A struct's member by its proto name or, failing that, its JSON name; or null. */
    private static com.google.protobuf.Value member(com.google.protobuf.Struct fields, String protoName,
                                                    String jsonName) {
        com.google.protobuf.Value v = fields.getFieldsMap().get(protoName);
        return v != null ? v : fields.getFieldsMap().get(jsonName);
    }

    /** The config types of the observing network filters (Istio's TCP metadata exchange and stats). */
    static final Set<String> OBSERVING_NETWORK_TYPES = Set.of("envoy.tcp.metadataexchange.config.MetadataExchange",
            ISTIO_STATS_TYPE, "io.istio.network.authn.Config");

    /**
     * The config types of the observing HTTP filters. Envoy picks a filter by its config type, not its name, so a
     * filter is known by its type; by its name only when it has no typed config, or when its type is WASM (Istio's own
     * null-VM telemetry plugins, which only Istio's names tell apart from other WASM plugins).
     */
    static final Set<String> OBSERVING_HTTP_TYPES = Set.of(GRPC_STATS_TYPE,
            "istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig", ISTIO_STATS_TYPE,
            PEER_METADATA_TYPE, "io.istio.http.metadata_exchange.Config",
            "istio.envoy.config.filter.http.authn.v2alpha1.FilterConfig");

    static final String HTTP_WASM_TYPE = "envoy.extensions.filters.http.wasm.v3.Wasm";
    static final String NETWORK_WASM_TYPE = "envoy.extensions.filters.network.wasm.v3.Wasm";
    static final String FAULT_NAME = "envoy.filters.http.fault";
    static final String CORS_NAME = "envoy.filters.http.cors";
    static final String CORS_TYPE = "envoy.extensions.filters.http.cors.v3.Cors";
    static final String GRPC_WEB_NAME = "envoy.filters.http.grpc_web";
    static final String GRPC_WEB_TYPE = "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb";

    /** Whether a filter only observes: by its config type, or by its name where the type cannot tell. */
    static boolean observing(String name, String type, Set<String> names, Set<String> types, String wasmType) {
        if (type.isEmpty() || type.equals(wasmType)) {
            return names.contains(name);
        }
        return types.contains(type);
    }

    /** Checks that the typed config of HTTP filter {@code i} is a {@code type} that sets no field. */
    private static void noFields(Any config, int i, Class<? extends com.google.protobuf.Message> type) {
        Fields.at("http_filters[" + i + "].typed_config", () -> {
            Fields.onlyKnown(RouteConfigurationParser.unpack(config, type, "@type"), Set.of(), Set.of());
            return null;
        });
    }

    @Override
    public ResourceType type() {
        return ResourceType.LISTENER;
    }

    @Override
    public Class<io.envoyproxy.envoy.config.listener.v3.Listener> messageClass() {
        return io.envoyproxy.envoy.config.listener.v3.Listener.class;
    }

    @Override
    public String name(io.envoyproxy.envoy.config.listener.v3.Listener m) {
        return m.getName();
    }

    @Override
    public Listener parseFields(io.envoyproxy.envoy.config.listener.v3.Listener l) {
        Fields.onlyKnown(l, Set.of("name", "address", "filter_chains", "default_filter_chain", "use_original_dst",
                "traffic_direction", "listener_filters", "listener_filters_timeout",
                "continue_on_listener_filters_timeout", "bind_to_port", "transparent",
                "per_connection_buffer_limit_bytes", "max_connections_to_accept_per_socket_event",
                "additional_addresses", "drain_type", "access_log"),
                // ignore_global_conn_limit, bypass_overload_manager (Istio 1.24+ sets both on its 15090 and 15021
                // listeners): Inmesh has no global downstream connection limit and no overload manager actions to bypass
                Set.of("stat_prefix", "metadata", "socket_options", "freebind", "ignore_global_conn_limit",
                        "bypass_overload_manager"));
        var address = Fields.at("address", () -> CoreParsers.ipAddress(l.getAddress(), null));
        List<SocketAddress> additional = Fields.each("additional_addresses", l.getAdditionalAddressesList(),
                ListenerParser::additionalAddress);
        List<FilterChain> chains = Fields.each("filter_chains", l.getFilterChainsList(), ListenerParser::filterChain);
        FilterChain fallback = l.hasDefaultFilterChain()
                ? Fields.at("default_filter_chain", () -> filterChain(l.getDefaultFilterChain())) : null;
        checkUniqueMatches(chains);
        List<String> listenerFilters = Fields.each("listener_filters", l.getListenerFiltersList(),
                ListenerParser::listenerFilter);
        ProxyProtocol proxyProtocol = proxyProtocol(l.getListenerFiltersList(), listenerFilters);
        dev.inmesh.api.config.listener.OriginalSrc originalSrc = originalSrc(l.getListenerFiltersList(),
                listenerFilters);
        Map<String, ListenerFilterPredicate> disabled = new HashMap<>();
        for (int i = 0; i < l.getListenerFiltersCount(); i++) {
            var f = l.getListenerFilters(i);
            if (f.hasFilterDisabled()) {
                String name = listenerFilters.get(i);
                ListenerFilterPredicate p = Fields.at("listener_filters[" + i + "].filter_disabled",
                        () -> listenerFilterPredicate(f.getFilterDisabled()));
                // a filter named twice runs unless either of its predicates disables it
                disabled.merge(name, p, (a, b) -> new ListenerFilterPredicate.MatchSet(false, List.of(a, b)));
            }
        }
        TrafficDirection direction = switch (l.getTrafficDirection()) {
            case INBOUND -> TrafficDirection.INBOUND;
            case OUTBOUND -> TrafficDirection.OUTBOUND;
            case UNSPECIFIED, UNRECOGNIZED -> TrafficDirection.UNSPECIFIED;
        };
        return new Listener(l.getName(), address, l.hasUseOriginalDst() && l.getUseOriginalDst().getValue(),
                direction, chains, fallback, !l.hasBindToPort() || l.getBindToPort().getValue(), listenerFilters,
                l.hasListenerFiltersTimeout() ? Fields.duration(l.getListenerFiltersTimeout()) : null,
                l.getContinueOnListenerFiltersTimeout(), l.hasTransparent() && l.getTransparent().getValue(),
                disabled, Fields.uint32OrNull(l.hasPerConnectionBufferLimitBytes(),
                        l.getPerConnectionBufferLimitBytes()), acceptsPerSocketEvent(l), additional,
                // MODIFY_ONLY: the listener's connections are not drained while the health checks fail
                l.getDrainType() == io.envoyproxy.envoy.config.listener.v3.Listener.DrainType.MODIFY_ONLY
                        ? Listener.DrainType.MODIFY_ONLY : Listener.DrainType.DEFAULT,
                AccessLogParser.parse(l.getAccessLogList()), proxyProtocol, originalSrc);
    }

    /**
     * Where the listener filter {@code name} is among the listener's, or -1 when it is not; named twice it is refused,
     * for a filter of which one configuration applies.
     */
    private static int once(List<String> names, String name) {
        int at = names.indexOf(name);
        if (at >= 0 && names.lastIndexOf(name) != at) {
            throw new FieldError("listener_filters[" + names.lastIndexOf(name) + "]",
                    name + " a second time (expected: at most once)");
        }
        return at;
    }

    /**
     * The configuration of the listener's original source filter, or null when it has none: its {@code mark}, and its
     * {@code bind_port} accepted as Envoy accepts it (not implemented there: the port is always 0). The filter named
     * twice is refused, as the PROXY protocol filter is: one source and one mark apply.
     */
    private static dev.inmesh.api.config.listener.OriginalSrc originalSrc(
            List<io.envoyproxy.envoy.config.listener.v3.ListenerFilter> filters, List<String> names) {
        int at = once(names, Listener.ORIGINAL_SRC);
        if (at < 0) {
            return null;
        }
        var any = filters.get(at).getTypedConfig();
        if (CoreParsers.configType(any).isEmpty()) {
            return dev.inmesh.api.config.listener.OriginalSrc.DEFAULT;
        }
        return Fields.at("listener_filters[" + at + "].typed_config", () -> {
            var o = RouteConfigurationParser.unpack(any,
                    io.envoyproxy.envoy.extensions.filters.listener.original_src.v3.OriginalSrc.class, "@type");
            return new dev.inmesh.api.config.listener.OriginalSrc(Integer.toUnsignedLong(o.getMark()));
        });
    }

    /**
     * The configuration of the listener's PROXY protocol filter, or null when it has none. Its {@code rules} (a TLV's
     * value as the connection's dynamic metadata) are refused: Inmesh has no per-connection dynamic metadata for them
     * to land in. Its {@code pass_through_tlvs} (TLVs kept for an upstream PROXY protocol transport socket) are
     * refused: Inmesh has no such transport socket. The filter named twice is refused: one header is read.
     */
    private static ProxyProtocol proxyProtocol(List<io.envoyproxy.envoy.config.listener.v3.ListenerFilter> filters,
                                               List<String> names) {
        int at = once(names, Listener.PROXY_PROTOCOL);
        if (at < 0) {
            return null;
        }
        var any = filters.get(at).getTypedConfig();
        if (CoreParsers.configType(any).isEmpty()) {
            return ProxyProtocol.DEFAULT;
        }
        return Fields.at("listener_filters[" + at + "].typed_config", () -> {
            var p = RouteConfigurationParser.unpack(any,
                    io.envoyproxy.envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol.class, "@type");
            if (p.getRulesCount() > 0) {
                throw new FieldError("rules", "not supported by Inmesh: it has no per-connection dynamic metadata "
                        + "for a TLV's value; remove them");
            }
            if (p.hasPassThroughTlvs()) {
                throw new FieldError("pass_through_tlvs", "not supported by Inmesh: it has no upstream PROXY "
                        + "protocol transport socket to pass TLVs to; remove it");
            }
            Fields.onlyKnown(p, Set.of("allow_requests_without_proxy_protocol", "disallowed_versions",
                    "stat_prefix"), Set.of());
            boolean v1 = true;
            boolean v2 = true;
            for (var v : p.getDisallowedVersionsList()) {
                switch (v) {
                    case V1 -> v1 = false;
                    case V2 -> v2 = false;
                    default -> throw new FieldError("disallowed_versions", v + " (expected: V1 or V2)");
                }
            }
            if (!v1 && !v2) {
                // as Envoy, which refuses such a filter's configuration
                throw new FieldError("disallowed_versions", "[V1, V2] (expected: at most one version; a filter "
                        + "that allows none refuses every connection)");
            }
            return new ProxyProtocol(p.getAllowRequestsWithoutProxyProtocol(), v1, v2, p.getStatPrefix());
        });
    }

    /**
     * An {@code additional_addresses} entry: its address, which the listener listens on as on its own (any port, as
     * Envoy binds each address by itself). Its {@code socket_options} (an override of the listener's for that socket)
     * is refused by name.
     */
    private static SocketAddress additionalAddress(io.envoyproxy.envoy.config.listener.v3.AdditionalAddress a) {
        Fields.onlyKnown(a, Set.of("address"), Set.of());
        if (!a.hasAddress()) {
            throw new FieldError("address", "required");
        }
        return Fields.at("address", () -> CoreParsers.ipAddress(a.getAddress(), null));
    }

    /**
     * {@code max_connections_to_accept_per_socket_event}: above 0 when set, as Envoy validates it (istiod 1.28 and
     * later write 1 on the listeners that bind); a value past an int's range accepts as many as are pending, as Envoy
     * would. Null when unset: every pending connection.
     */
    private static Integer acceptsPerSocketEvent(io.envoyproxy.envoy.config.listener.v3.Listener l) {
        if (!l.hasMaxConnectionsToAcceptPerSocketEvent()) {
            return null;
        }
        long n = Integer.toUnsignedLong(l.getMaxConnectionsToAcceptPerSocketEvent().getValue());
        if (n == 0) {
            throw new FieldError("max_connections_to_accept_per_socket_event", "0 (expected: > 0)");
        }
        return (int) Math.min(Integer.MAX_VALUE, n);
    }

    /**
     * A listener filter's {@code filter_disabled}: Envoy's {@code ListenerFilterChainMatchPredicate} (or, and, not,
     * any, destination port range), with Envoy's rules (a rule is required, a match set has at least two rules,
     * {@code any_match} is only ever true).
     */
    static ListenerFilterPredicate listenerFilterPredicate(
            io.envoyproxy.envoy.config.listener.v3.ListenerFilterChainMatchPredicate p) {
        return switch (p.getRuleCase()) {
            case ANY_MATCH -> {
                if (!p.getAnyMatch()) {
                    throw new FieldError("any_match", "false (expected: true)");
                }
                yield new ListenerFilterPredicate.Any();
            }
            case DESTINATION_PORT_RANGE -> new ListenerFilterPredicate.DestinationPortRange(
                    p.getDestinationPortRange().getStart(), p.getDestinationPortRange().getEnd());
            case OR_MATCH -> Fields.at("or_match", () -> new ListenerFilterPredicate.MatchSet(false,
                    predicates(p.getOrMatch().getRulesList())));
            case AND_MATCH -> Fields.at("and_match", () -> new ListenerFilterPredicate.MatchSet(true,
                    predicates(p.getAndMatch().getRulesList())));
            case NOT_MATCH -> Fields.at("not_match", () -> new ListenerFilterPredicate.Not(
                    listenerFilterPredicate(p.getNotMatch())));
            case RULE_NOT_SET -> throw new FieldError("rule", "unset (expected: or_match, and_match, not_match, "
                    + "any_match or destination_port_range)");
        };
    }

    private static List<ListenerFilterPredicate> predicates(
            List<io.envoyproxy.envoy.config.listener.v3.ListenerFilterChainMatchPredicate> rules) {
        if (rules.size() < 2) {
            throw new FieldError("rules", rules.size() + " rules (expected: at least 2)");
        }
        return Fields.each("rules", rules, ListenerParser::listenerFilterPredicate);
    }

    /**
     * Listener filters by their config type, with the name each is known by. {@code original_src} (istiod's, on a
     * TPROXY {@code virtualInbound}) is applied by the standalone proxy (docs/interception.md); the in-JVM mesh,
     * which captures nothing, loads it and has no upstream connection of a captured client to apply it to.
     */
    static final Map<String, String> LISTENER_FILTER_TYPES = Map.of(
            "envoy.extensions.filters.listener.original_dst.v3.OriginalDst", "envoy.filters.listener.original_dst",
            "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector", "envoy.filters.listener.tls_inspector",
            "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
            "envoy.filters.listener.http_inspector",
            "envoy.extensions.filters.listener.original_src.v3.OriginalSrc", "envoy.filters.listener.original_src",
            "envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol", Listener.PROXY_PROTOCOL);

    /**
     * One listener filter, by the name it is known by. As in Envoy, the type of its typed config decides which
     * filter it is; the name only when there is no typed config. Others (local_ratelimit, ...) change
     * what a connection carries or whether it is accepted, and are rejected.
     */
    static String listenerFilter(io.envoyproxy.envoy.config.listener.v3.ListenerFilter f) {
        Fields.onlyKnown(f, Set.of("name", "typed_config", "filter_disabled"), Set.of());
        String type = CoreParsers.configType(f.getTypedConfig());
        if (type.isEmpty()) {
            if (!LISTENER_FILTER_TYPES.containsValue(f.getName())
                    && !f.getName().equals("istio.filters.listener.original_dst")) {
                throw new FieldError("name", f.getName() + " (expected: original_dst, proxy_protocol, "
                        + "tls_inspector or http_inspector)");
            }
            return f.getName();
        }
        String known = LISTENER_FILTER_TYPES.get(type);
        if (known == null) {
            throw new FieldError("typed_config", type + " (" + f.getName() + ") is not supported by Inmesh "
                    + "(expected: original_dst, proxy_protocol, tls_inspector or http_inspector)");
        }
        return known;
    }

    static FilterChain filterChain(io.envoyproxy.envoy.config.listener.v3.FilterChain c) {
        Fields.onlyKnown(c, Set.of("filter_chain_match", "filters", "transport_socket", "name",
                "transport_socket_connect_timeout"), Set.of("metadata"));
        FilterChainMatch match = c.hasFilterChainMatch()
                ? Fields.at("filter_chain_match", () -> filterChainMatch(c.getFilterChainMatch()))
                : FilterChainMatch.ANY;
        DownstreamTlsParser.Parsed tls = c.hasTransportSocket()
                ? Fields.at("transport_socket", () -> DownstreamTlsParser.parse(c.getTransportSocket()))
                : DownstreamTlsParser.Parsed.PLAIN;
        NetworkFilter terminal = null;
        List<NetworkRbac> rbac = new ArrayList<>();
        List<NetworkExtAuthz> extAuthz = new ArrayList<>();
        List<NetworkLocalRateLimit> localRateLimit = new ArrayList<>();
        java.time.Duration reporting = null;
        dev.inmesh.api.config.listener.IstioStats stats = null;
        for (int i = 0; i < c.getFiltersCount(); i++) {
            Filter f = c.getFilters(i);
            String seg = "filters[" + i + "]";
            if (f.getName().isEmpty()) {
                // as Envoy's validation: every network filter is named, whatever its typed_config
                throw new FieldError(seg + ".name", "\"\" (expected: a name of at least 1 character)");
            }
            boolean last = i == c.getFiltersCount() - 1;
            if (isType(f, RbacParser.NETWORK_RBAC, RbacParser.NETWORK_RBAC_TYPE)) {
                // istiod's AuthorizationPolicies on TCP chains (and before a connection manager): checked once per
                // connection before the terminal filter; the standalone proxy enforces them
                rbac.add(Fields.at(seg + ".typed_config", () -> RbacParser.network(f.getTypedConfig())));
            } else if (isType(f, ExtAuthzParser.NETWORK_NAME, ExtAuthzParser.NETWORK_TYPE)) {
                // istiod's CUSTOM policies of a gRPC provider on TCP chains: after the shadow RBAC filter before it
                int after = rbac.size();
                extAuthz.add(Fields.at(seg + ".typed_config",
                        () -> ExtAuthzParser.network(f.getTypedConfig(), after)));
            } else if (isType(f, LocalRateLimitParser.NETWORK_NAME, LocalRateLimitParser.NETWORK_TYPE)
                    || CoreParsers.configType(f.getTypedConfig()).equals(LocalRateLimitParser.NETWORK_TYPE)) {
                // a connection cap an EnvoyFilter adds (typed, or in a TypedStruct): after the RBAC and ext_authz
                // filters before it
                int after = rbac.size() + extAuthz.size();
                localRateLimit.add(Fields.at(seg + ".typed_config",
                        () -> LocalRateLimitParser.network(f.getTypedConfig(), after)));
            } else if (isType(f, HCM, HCM_TYPE) || isType(f, TCP_PROXY, TCP_PROXY_TYPE)) {
                if (!last) {
                    throw new FieldError(seg + ".name", f.getName() + " (expected: the last filter of the chain)");
                }
                terminal = Fields.at(seg + ".typed_config", () -> isType(f, HCM, HCM_TYPE)
                        ? httpConnectionManager(f.getTypedConfig()) : tcpProxy(f.getTypedConfig()));
            } else if (isIstioStats(f.getName(), CoreParsers.configType(f.getTypedConfig()), NETWORK_WASM_TYPE)) {
                // Istio's TCP stats, which record Istio's TCP metrics for this chain: how often a long connection's
                // bytes are reported, and the metric overrides (the first filter's that has some, as a connection
                // manager's)
                if (CoreParsers.configType(f.getTypedConfig()).equals(ISTIO_STATS_TYPE)) {
                    java.time.Duration d = Fields.at(seg, () -> tcpReportingDuration(f.getTypedConfig()));
                    reporting = d != null ? d : reporting;
                }
                if (stats == null || stats.isEmpty()) {
                    stats = istioStatsOf(f.getTypedConfig(), seg);
                }
            } else if (!observing(f.getName(), CoreParsers.configType(f.getTypedConfig()), OBSERVING_NETWORK_FILTERS,
                    OBSERVING_NETWORK_TYPES, NETWORK_WASM_TYPE)) {
                String type = CoreParsers.configType(f.getTypedConfig());
                throw new FieldError(seg + ".name", f.getName() + (type.isEmpty() ? "" : " (" + type + ")")
                        + " is not supported by Inmesh (expected: " + HCM + ", " + TCP_PROXY + ", "
                        + RbacParser.NETWORK_RBAC + ", " + ExtAuthzParser.NETWORK_NAME + ", "
                        + LocalRateLimitParser.NETWORK_NAME + ", or one of "
                        + new java.util.TreeSet<>(OBSERVING_NETWORK_FILTERS) + ")");
            }
        }
        if (terminal == null) {
            throw new FieldError("filters", "a chain must end with " + HCM + " or " + TCP_PROXY);
        }
        return new FilterChain(c.getName(), match, terminal, tls.tls(), tls.context(),
                Fields.durationOrNull(c.hasTransportSocketConnectTimeout(), c.getTransportSocketConnectTimeout()),
                rbac, extAuthz, reporting, stats, localRateLimit);
    }

    private static boolean isType(Filter f, String name, String type) {
        return f.getTypedConfig().getTypeUrl().endsWith("/" + type)
                || !f.hasTypedConfig() && f.getName().equals(name);
    }

    static FilterChainMatch filterChainMatch(io.envoyproxy.envoy.config.listener.v3.FilterChainMatch m) {
        Fields.onlyKnown(m, Set.of("destination_port", "prefix_ranges", "server_names", "transport_protocol",
                "application_protocols", "source_type", "source_prefix_ranges", "source_ports"), Set.of());
        for (int i = 0; i < m.getServerNamesCount(); i++) {
            String n = m.getServerNames(i);
            if (n.indexOf('*') >= 0 && !n.startsWith("*.")) {
                // as Envoy: a wildcard is a whole leading label, "*.example.com"; it never matches partial ones
                throw new FieldError("server_names[" + i + "]", "\"" + n + "\" (expected: a name, or *. and a "
                        + "domain; partial wildcards are not supported)");
            }
        }
        List<CidrRange> prefixes = Fields.each("prefix_ranges", m.getPrefixRangesList(), CoreParsers::cidr);
        List<CidrRange> sources = Fields.each("source_prefix_ranges", m.getSourcePrefixRangesList(),
                CoreParsers::cidr);
        // as Envoy validates them: ports 1 to 65535 (an explicit 0 is no "any"), a source type it defines
        if (m.hasDestinationPort() && (m.getDestinationPort().getValue() < 1
                || m.getDestinationPort().getValue() > 65535)) {
            throw new FieldError("destination_port", Integer.toUnsignedString(m.getDestinationPort().getValue())
                    + " (expected: 1..65535)");
        }
        for (int i = 0; i < m.getSourcePortsCount(); i++) {
            if (m.getSourcePorts(i) < 1 || m.getSourcePorts(i) > 65535) {
                throw new FieldError("source_ports[" + i + "]", Integer.toUnsignedString(m.getSourcePorts(i))
                        + " (expected: 1..65535)");
            }
        }
        FilterChainMatch.SourceType sourceType = switch (m.getSourceType()) {
            case UNRECOGNIZED -> throw new FieldError("source_type", m.getSourceTypeValue()
                    + " (expected: ANY, SAME_IP_OR_LOOPBACK or EXTERNAL)");
            case ANY -> FilterChainMatch.SourceType.ANY;
            case SAME_IP_OR_LOOPBACK -> FilterChainMatch.SourceType.SAME_IP_OR_LOOPBACK;
            case EXTERNAL -> FilterChainMatch.SourceType.EXTERNAL;
        };
        return new FilterChainMatch(m.hasDestinationPort() ? m.getDestinationPort().getValue() : 0, prefixes,
                m.getServerNamesList(), m.getTransportProtocol(), m.getApplicationProtocolsList(), sourceType,
                sources, m.getSourcePortsList());
    }

    static HttpConnectionManager httpConnectionManager(Any any) {
        var h = RouteConfigurationParser.unpack(any, io.envoyproxy.envoy.extensions.filters.network
                .http_connection_manager.v3.HttpConnectionManager.class, "@type");
        requireStatPrefix(h.getStatPrefix());
        Fields.onlyKnown(h, Set.of("stat_prefix", "rds", "route_config", "http_filters", "stream_idle_timeout",
                "use_remote_address", "xff_num_trusted_hops", "generate_request_id", "preserve_external_request_id",
                "upgrade_configs", "codec_type", "http_protocol_options", "max_request_headers_kb",
                "normalize_path", "merge_slashes", "path_with_escaped_slashes_action", "server_name",
                "server_header_transformation", "common_http_protocol_options", "forward_client_cert_details",
                "set_current_client_cert_details", "drain_timeout", "request_timeout", "request_headers_timeout",
                "http2_protocol_options", "tracing", "always_set_request_id_in_response", "proxy_100_continue",
                "internal_address_config", "access_log", "delayed_close_timeout", "local_reply_config",
                "skip_xff_append", "append_x_forwarded_port", "strip_matching_host_port", "strip_any_host_port",
                "strip_trailing_host_dot", "original_ip_detection_extensions", "via",
                "stream_error_on_invalid_http_message"),
                Set.of("request_id_extension", "add_user_agent", "scheme_header_transformation"));
        // stream_error_on_invalid_http_message: the HTTP/2 codec's override_stream_error_on_invalid_http_message
        // when http2_protocol_options leave it unset, as Envoy's connection manager config takes it
        Boolean hcmStreamError = h.hasStreamErrorOnInvalidHttpMessage()
                ? h.getStreamErrorOnInvalidHttpMessage().getValue() : null;
        if (h.hasAddUserAgent() && h.getAddUserAgent().getValue()) {
            // Envoy would then set user-agent (when absent) and x-envoy-downstream-service-cluster and -node
            throw new FieldError("add_user_agent", "true is not supported by Inmesh (expected: false, the default)");
        }
        if (h.hasSchemeHeaderTransformation()) {
            Fields.at("scheme_header_transformation", () -> {
                // an empty one leaves the :scheme as it came, as without it; match_upstream: true asks for what
                // Inmesh's upstream requests carry anyway, the :scheme of their own connection (http over clear
                // text, https over TLS), which false is; scheme_to_overwrite is not implemented
                var t = h.getSchemeHeaderTransformation();
                Fields.onlyKnown(t, Set.of(), t.getMatchUpstream() ? Set.of("match_upstream") : Set.of());
                return null;
            });
        }
        String rds = null;
        RouteConfiguration inline = null;
        switch (h.getRouteSpecifierCase()) {
            case RDS -> {
                rds = h.getRds().getRouteConfigName();
                if (h.getRds().hasConfigSource()) {
                    Fields.at("rds.config_source", () -> rdsSource(h.getRds().getConfigSource()));
                }
            }
            // Envoy validates an inline route table's clusters unless it says validate_clusters: false.
            case ROUTE_CONFIG -> inline = Fields.at("route_config",
                    () -> RouteConfigurationParser.parseFields(h.getRouteConfig(), true));
            case SCOPED_ROUTES, ROUTESPECIFIER_NOT_SET -> throw new FieldError("route_specifier",
                    "rds or route_config is required");
            default -> throw new FieldError("route_specifier", "rds or route_config is required");
        }
        if (rds != null && rds.isEmpty()) {
            throw new FieldError("rds.route_config_name", "\"\" (expected: a name)");
        }
        boolean websocket = false;
        for (int i = 0; i < h.getUpgradeConfigsCount(); i++) {
            var u = h.getUpgradeConfigs(i);
            String type = u.getUpgradeType();
            if (!type.equalsIgnoreCase("websocket")) {
                throw new FieldError("upgrade_configs[" + i + "].upgrade_type", type + " (expected: websocket)");
            }
            if (u.getFiltersCount() > 0) {
                throw new FieldError("upgrade_configs[" + i + "].filters", "an upgrade's own filter chain is not "
                        + "supported by Inmesh (expected: none; the connection manager's filters)");
            }
            websocket |= !u.hasEnabled() || u.getEnabled().getValue();
        }
        List<HttpFilter> filters = new ArrayList<>();
        for (int i = 0; i < h.getHttpFiltersCount(); i++) {
            var f = h.getHttpFilters(i);
            String typeName = CoreParsers.configType(f.getTypedConfig());
            boolean router = typeName.equals(ROUTER_TYPE)
                    || typeName.isEmpty() && f.getName().equals("envoy.filters.http.router");
            if (router && i != h.getHttpFiltersCount() - 1) {
                throw new FieldError("http_filters[" + i + "]", "the router must be the last HTTP filter");
            }
            boolean fault = !router && (typeName.equals(FaultParser.FAULT_TYPE)
                    || typeName.isEmpty() && f.getName().equals(FAULT_NAME));
            boolean cors = !router && (typeName.equals(CORS_TYPE)
                    || typeName.isEmpty() && f.getName().equals(CORS_NAME));
            boolean rbac = !router && typeName.equals(RbacParser.RBAC_TYPE);
            boolean grpcWeb = !router && (typeName.equals(GRPC_WEB_TYPE)
                    || typeName.isEmpty() && f.getName().equals(GRPC_WEB_NAME));
            boolean rateLimit = !router && typeName.equals(LocalRateLimitParser.TYPE);
            boolean jwt = !router && typeName.equals(JwtAuthnParser.TYPE);
            boolean extAuthz = !router && typeName.equals(ExtAuthzParser.TYPE);
            boolean global = !router && typeName.equals(RateLimitParser.TYPE);
            boolean session = !router && (typeName.equals(StatefulSessionParser.TYPE)
                    || typeName.isEmpty() && f.getName().equals(StatefulSessionParser.NAME));
            boolean compressor = !router && typeName.equals(CompressorParser.TYPE);
            boolean lua = !router && typeName.equals(LuaParser.TYPE);
            boolean buffer = !router && typeName.equals(BufferParser.TYPE);
            boolean headerMutation = !router && typeName.equals(HeaderMutationParser.TYPE);
            boolean observing = !router && !fault && !cors && !rbac && !grpcWeb && !rateLimit && !jwt && !extAuthz
                    && !global && !session && !compressor && !lua && !buffer && !headerMutation
                    && observing(f.getName(), typeName, OBSERVING_HTTP_FILTERS, OBSERVING_HTTP_TYPES, HTTP_WASM_TYPE);
            if (!router && !fault && !cors && !rbac && !grpcWeb && !rateLimit && !jwt && !extAuthz && !global
                    && !session && !compressor && !lua && !buffer && !headerMutation
                    && !observing && !f.getIsOptional() && !f.getDisabled()) {
                throw new FieldError("http_filters[" + i + "].name", f.getName()
                        + (typeName.isEmpty() ? "" : " (" + typeName + ")") + " is not supported by Inmesh "
                        + "(mark it is_optional, or remove it)");
            }
            if (f.hasConfigDiscovery() && (router || fault || cors || rbac || grpcWeb || rateLimit || jwt
                    || extAuthz || global || session || compressor || lua || buffer || headerMutation)) {
                // its config would come over ECDS, which Inmesh does not ask for: it would run with none
                throw new FieldError("http_filters[" + i + "].config_discovery", "not supported by Inmesh for "
                        + f.getName() + " (expected: its typed_config inline)");
            }
            // A disabled fault filter runs only where a route enables it (FilterConfig, which the route parser
            // refuses): here, nowhere.
            FaultInjection faultConfig = !fault || f.getDisabled() ? null : !f.hasTypedConfig() ? FaultInjection.NONE
                    : Fields.at("http_filters[" + i + "].typed_config", () -> FaultParser.fault(f.getTypedConfig()));
            if (faultConfig != null && filters.stream().anyMatch(p -> p.fault() != null)) {
                throw new FieldError("http_filters[" + i + "].name", f.getName() + ": a second fault filter is not "
                        + "supported by Inmesh (expected: one)");
            }
            if (cors && f.hasTypedConfig()) {
                // the filter's own config (Cors) has no fields: the policies come from the routes
                noFields(f.getTypedConfig(), i, io.envoyproxy.envoy.extensions.filters.http.cors.v3.Cors.class);
            }
            if (grpcWeb && f.hasTypedConfig()) {
                // nor has GrpcWeb (empty, as Istio writes it)
                noFields(f.getTypedConfig(), i, io.envoyproxy.envoy.extensions.filters.http.grpc_web.v3.GrpcWeb.class);
            }
            // as the fault filter: a disabled CORS filter runs only where a route enables it, here nowhere
            boolean corsRuns = cors && !f.getDisabled();
            // and so does a disabled gRPC-Web filter
            boolean grpcWebRuns = grpcWeb && !f.getDisabled();
            // and so does a disabled RBAC filter: its config is still checked, as Envoy builds it
            Rbac rbacConfig = !rbac ? null : Fields.at("http_filters[" + i + "].typed_config",
                    () -> RbacParser.filter(f.getTypedConfig()));
            if (rbacConfig != null && !f.getDisabled() && filters.stream().anyMatch(p -> p.fault() != null
                    || p.cors())) {
                // Inmesh runs the RBAC filters before the fault and CORS filters, as Istio orders them
                throw new FieldError("http_filters[" + i + "].name", f.getName() + " after a fault or CORS filter "
                        + "is not supported by Inmesh (expected: the RBAC filters before them, as Istio writes them)");
            }
            Rbac rbacRuns = f.getDisabled() ? null : rbacConfig;
            // as the RBAC filter: a disabled one's config is still checked, and it runs nowhere
            LocalRateLimit rateLimitConfig = !rateLimit ? null : Fields.at("http_filters[" + i + "].typed_config",
                    () -> LocalRateLimitParser.parse(f.getTypedConfig(), false));
            LocalRateLimit rateLimitRuns = f.getDisabled() ? null : rateLimitConfig;
            if (rateLimitRuns != null && filters.stream().anyMatch(p -> p.localRateLimit() != null)) {
                throw new FieldError("http_filters[" + i + "].name", f.getName() + ": a second local rate limit "
                        + "filter is not supported by Inmesh (expected: one)");
            }
            // as the RBAC filter: a disabled one's config is still checked, and it runs nowhere
            JwtAuthentication jwtConfig = !jwt ? null : Fields.at("http_filters[" + i + "].typed_config",
                    () -> JwtAuthnParser.parse(f.getTypedConfig()));
            JwtAuthentication jwtRuns = f.getDisabled() ? null : jwtConfig;
            if (jwtRuns != null && filters.stream().anyMatch(p -> p.jwtAuthn() != null)) {
                throw new FieldError("http_filters[" + i + "].name", f.getName() + ": a second JWT authentication "
                        + "filter is not supported by Inmesh (expected: one)");
            }
            if (jwtRuns != null && filters.stream().anyMatch(p -> p.rbac() != null || p.fault() != null
                    || p.cors() || p.extAuthz() != null)) {
                // Inmesh runs it right before the RBAC filters, which read what it verified, as Istio orders them
                throw new FieldError("http_filters[" + i + "].name", f.getName() + " after an RBAC, external "
                        + "authorization, fault or CORS filter is not supported by Inmesh (expected: before them, as "
                        + "Istio writes it)");
            }
            // as the RBAC filter: a disabled one's config is still checked, and it runs nowhere
            ExtAuthz extAuthzConfig = !extAuthz ? null : Fields.at("http_filters[" + i + "].typed_config",
                    () -> ExtAuthzParser.parse(f.getTypedConfig()));
            ExtAuthz extAuthzRuns = f.getDisabled() ? null : extAuthzConfig;
            if (extAuthzRuns != null && filters.stream().anyMatch(p -> p.fault() != null || p.cors())) {
                // Inmesh runs it among the RBAC filters, in their order, before the fault and CORS filters
                throw new FieldError("http_filters[" + i + "].name", f.getName() + " after a fault or CORS filter "
                        + "is not supported by Inmesh (expected: with the RBAC filters before them, as Istio writes "
                        + "it)");
            }
            // as the RBAC filter: a disabled one's config is still checked, and it runs nowhere
            GlobalRateLimit globalConfig = !global ? null : Fields.at("http_filters[" + i + "].typed_config",
                    () -> RateLimitParser.parse(f.getTypedConfig()));
            GlobalRateLimit globalRuns = f.getDisabled() ? null : globalConfig;
            if (globalRuns != null && filters.stream().anyMatch(p -> p.globalRateLimit() != null)) {
                throw new FieldError("http_filters[" + i + "].name", f.getName() + ": a second global rate limit "
                        + "filter is not supported by Inmesh (expected: one)");
            }
            if (filters.stream().anyMatch(p -> p.globalRateLimit() != null) && (jwtRuns != null || rbacRuns != null
                    || extAuthzRuns != null)) {
                // Inmesh asks the rate limit service once the authentication and authorization filters let a
                // request through, as Istio's INSERT_BEFORE the router places it
                throw new FieldError("http_filters[" + i + "].name", f.getName() + " after a global rate limit "
                        + "filter is not supported by Inmesh (expected: the rate limit filter after the JWT "
                        + "authentication, RBAC and external authorization filters, as INSERT_BEFORE the router "
                        + "puts it)");
            }
            // Istio's stats count each gRPC request's messages from the filter state a gRPC statistics filter emits
            boolean grpcMessageCounts = !f.getDisabled() && f.hasTypedConfig() && typeName.equals(GRPC_STATS_TYPE)
                    && RouteConfigurationParser.unpack(f.getTypedConfig(),
                            io.envoyproxy.envoy.extensions.filters.http.grpc_stats.v3.FilterConfig.class,
                            "http_filters[" + i + "].typed_config").getEmitFilterState();
            // and label a request without a service by its Host unless Istio's stats filter says not to
            boolean noHostHeaderFallback = !f.getDisabled() && f.hasTypedConfig()
                    && typeName.equals(ISTIO_STATS_TYPE) && disablesHostHeaderFallback(f.getTypedConfig());
            // and record Istio's metrics where Istio's stats filter runs, dropping some or recording them without
            // some labels where it says so
            dev.inmesh.api.config.listener.IstioStats istioStats = !f.getDisabled()
                    && isIstioStats(f.getName(), typeName, HTTP_WASM_TYPE)
                    ? istioStatsOf(f.getTypedConfig(), "http_filters[" + i + "]") : null;
            // and keep Istio's peer metadata headers off clusters outside the mesh where its filter says so
            boolean peerMetadataSkipExternal = !f.getDisabled() && f.hasTypedConfig()
                    && typeName.equals(PEER_METADATA_TYPE) && skipsExternalClusters(f.getTypedConfig());
            StatefulSession sessionConfig = !session ? null : Fields.at("http_filters[" + i + "].typed_config",
                    () -> StatefulSessionParser.filter(f.getTypedConfig()));
            StatefulSession sessionRuns = f.getDisabled() ? null : sessionConfig;
            onlyOne(sessionRuns != null, filters, p -> p.statefulSession() != null, i, f.getName(),
                    "stateful session");
            // as the RBAC filter: a disabled one's config is still checked, and it runs nowhere
            Compressor compressorConfig = !compressor ? null : Fields.at("http_filters[" + i + "].typed_config",
                    () -> CompressorParser.parse(f.getTypedConfig()));
            Compressor compressorRuns = f.getDisabled() ? null : compressorConfig;
            onlyOne(compressorRuns != null, filters, p -> p.compressor() != null, i, f.getName(), "compressor");
            // as the RBAC filter: a disabled one's scripts are still compiled, and it runs nowhere
            Lua luaConfig = !lua ? null : Fields.at("http_filters[" + i + "].typed_config",
                    () -> LuaParser.parse(f.getTypedConfig(), f.getName()));
            Lua luaRuns = f.getDisabled() ? null : luaConfig;
            // as the RBAC filter: a disabled one's config is still checked, and it runs nowhere
            Buffer bufferConfig = !buffer ? null : Fields.at("http_filters[" + i + "].typed_config",
                    () -> BufferParser.parse(f.getTypedConfig()));
            Buffer bufferRuns = f.getDisabled() ? null : bufferConfig;
            onlyOne(bufferRuns != null, filters, p -> p.buffer() != null, i, f.getName(), "buffer");
            HeaderMutation mutationConfig = !headerMutation ? null : Fields.at("http_filters[" + i
                    + "].typed_config", () -> HeaderMutationParser.parse(f.getTypedConfig()));
            HeaderMutation mutationRuns = f.getDisabled() ? null : mutationConfig;
            onlyOne(mutationRuns != null, filters, p -> p.headerMutation() != null, i, f.getName(),
                    "header mutation");
            filters.add(Fields.at("http_filters[" + i + "]", () -> Fields.record("http_filters.",
                    () -> new HttpFilter(f.getName(), typeName, faultConfig, corsRuns, rbacRuns, grpcWebRuns,
                            rateLimitRuns, jwtRuns, extAuthzRuns, globalRuns, sessionRuns, grpcMessageCounts,
                            noHostHeaderFallback, peerMetadataSkipExternal, istioStats, compressorRuns, luaRuns,
                            bufferRuns, mutationRuns))));
        }
        checkRateLimitPosition(filters);
        checkLuaPosition(filters);
        if (filters.isEmpty() || !filters.get(filters.size() - 1).typeUrl().equals(ROUTER_TYPE)
                && !filters.get(filters.size() - 1).name().equals("envoy.filters.http.router")) {
            throw new FieldError("http_filters", "the last HTTP filter must be envoy.filters.http.router");
        }
        if (h.hasUseRemoteAddress() && h.getUseRemoteAddress().getValue()) {
            // the host's address a loopback peer is replaced with: found here, off the event loops, where listing
            // the interfaces may block, rather than by the first request
            LocalAddress.get();
        }
        return new HttpConnectionManager(h.getStatPrefix(), rds, inline, filters,
                h.hasStreamIdleTimeout() ? Fields.duration(h.getStreamIdleTimeout()) : null,
                h.hasUseRemoteAddress() && h.getUseRemoteAddress().getValue(), h.getXffNumTrustedHops(),
                !h.hasGenerateRequestId() || h.getGenerateRequestId().getValue(), h.getPreserveExternalRequestId(),
                h.hasHttpProtocolOptions() ? Fields.at("http_protocol_options", () -> http1(h.getHttpProtocolOptions()))
                        : Http1Options.DEFAULTS,
                maxRequestHeadersKb(h), pathNormalization(h), new ServerHeader(h.getServerName(),
                        switch (h.getServerHeaderTransformation()) {
                            case APPEND_IF_ABSENT -> ServerHeader.Transformation.APPEND_IF_ABSENT;
                            case PASS_THROUGH -> ServerHeader.Transformation.PASS_THROUGH;
                            default -> ServerHeader.Transformation.OVERWRITE;
                        }, via(h.getVia())),
                h.hasCommonHttpProtocolOptions() ? Fields.at("common_http_protocol_options",
                        () -> maxHeadersCount(h.getCommonHttpProtocolOptions())) : 0, websocket, codecType(h),
                forwardClientCert(h), lifetimes(h), Fields.at("http2_protocol_options",
                        () -> CoreParsers.http2ProtocolOptions(h.hasHttp2ProtocolOptions()
                                ? h.getHttp2ProtocolOptions() : null, hcmStreamError)),
                h.hasTracing() ? Fields.at("tracing", () -> TracingParser.parse(h.getTracing())) : null,
                h.getAlwaysSetRequestIdInResponse(), routerFilter(h), h.getProxy100Continue(),
                h.hasInternalAddressConfig() ? Fields.at("internal_address_config",
                        () -> internalAddresses(h.getInternalAddressConfig())) : List.of(),
                AccessLogParser.parse(h.getAccessLogList()), h.hasLocalReplyConfig() ? Fields.at("local_reply_config",
                        () -> LocalReplyParser.parse(h.getLocalReplyConfig())) : null,
                new RemoteAddressOptions(h.getSkipXffAppend(), h.getAppendXForwardedPort(),
                        h.getInternalAddressConfig().getUnixSockets(), originalIpDetection(h)), hostNormalization(h),
                h.hasCommonHttpProtocolOptions() ? Fields.at("common_http_protocol_options",
                        () -> headersWithUnderscores(h.getCommonHttpProtocolOptions())) : null);
    }

    private static final String XFF_DETECTION =
            "envoy.extensions.http.original_ip_detection.xff.v3.XffConfig";
    private static final String CUSTOM_HEADER_DETECTION =
            "envoy.extensions.http.original_ip_detection.custom_header.v3.CustomHeaderConfig";

    /**
     * {@code original_ip_detection_extensions}: Envoy's XFF detection ({@code xff_num_trusted_hops}; its trusted
     * CIDRs and {@code skip_xff_append} are refused) and custom header detection. Together with the connection
     * manager's own {@code xff_num_trusted_hops} or {@code use_remote_address: true} they are refused, as Envoy
     * refuses them.
     */
    private static List<OriginalIpDetection> originalIpDetection(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager h) {
        if (h.getOriginalIpDetectionExtensionsCount() > 0 && h.hasUseRemoteAddress()
                && h.getUseRemoteAddress().getValue()) {
            throw new FieldError("original_ip_detection_extensions", "with use_remote_address: true (expected: one "
                    + "or the other, as Envoy requires)");
        }
        if (h.getOriginalIpDetectionExtensionsCount() > 0 && h.getXffNumTrustedHops() > 0) {
            throw new FieldError("original_ip_detection_extensions", "with xff_num_trusted_hops "
                    + h.getXffNumTrustedHops() + " (expected: one or the other, as Envoy requires)");
        }
        return Fields.each("original_ip_detection_extensions", h.getOriginalIpDetectionExtensionsList(), e -> {
            String type = e.getTypedConfig().getTypeUrl().substring(e.getTypedConfig().getTypeUrl().lastIndexOf('/')
                    + 1);
            return Fields.at("typed_config", () -> switch (type) {
                case XFF_DETECTION -> {
                    var x = RouteConfigurationParser.unpack(e.getTypedConfig(),
                            io.envoyproxy.envoy.extensions.http.original_ip_detection.xff.v3.XffConfig.class, "@type");
                    Fields.onlyKnown(x, Set.of("xff_num_trusted_hops"), Set.of());
                    yield new OriginalIpDetection.Xff(x.getXffNumTrustedHops());
                }
                case CUSTOM_HEADER_DETECTION -> {
                    var c = RouteConfigurationParser.unpack(e.getTypedConfig(), io.envoyproxy.envoy.extensions.http
                            .original_ip_detection.custom_header.v3.CustomHeaderConfig.class, "@type");
                    Fields.onlyKnown(c, Set.of("header_name", "allow_extension_to_set_address_as_trusted",
                            "reject_with_status"), Set.of());
                    RouteConfigurationParser.headerName("header_name", c.getHeaderName());
                    int status = c.hasRejectWithStatus() ? c.getRejectWithStatus().getCodeValue() : 0;
                    if (c.hasRejectWithStatus() && (status < 100 || status > 599)) {
                        throw new FieldError("reject_with_status.code", status + " (expected: an HTTP status)");
                    }
                    yield new OriginalIpDetection.CustomHeader(c.getHeaderName(),
                            c.getAllowExtensionToSetAddressAsTrusted(), status);
                }
                default -> throw new FieldError("@type", (type.isEmpty() ? "missing" : type) + " is not supported by "
                        + "Inmesh (expected: " + XFF_DETECTION + " or " + CUSTOM_HEADER_DETECTION + ")");
            });
        });
    }

    /** {@code headers_with_underscores_action}: ALLOW (the default), REJECT_REQUEST or DROP_HEADER. */
    private static HeadersWithUnderscoresAction headersWithUnderscores(
            io.envoyproxy.envoy.config.core.v3.HttpProtocolOptions o) {
        return switch (o.getHeadersWithUnderscoresAction()) {
            case ALLOW -> HeadersWithUnderscoresAction.ALLOW;
            case REJECT_REQUEST -> HeadersWithUnderscoresAction.REJECT_REQUEST;
            case DROP_HEADER -> HeadersWithUnderscoresAction.DROP_HEADER;
            default -> throw new FieldError("headers_with_underscores_action", o.getHeadersWithUnderscoresActionValue()
                    + " (expected: ALLOW, REJECT_REQUEST or DROP_HEADER)");
        };
    }

    /**
     * {@code strip_matching_host_port}, {@code strip_any_host_port} and {@code strip_trailing_host_dot}; the two port
     * settings together are refused, as Envoy refuses them.
     */
    private static HostNormalization hostNormalization(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager h) {
        if (h.getStripMatchingHostPort() && h.getStripAnyHostPort()) {
            throw new FieldError("strip_any_host_port", "true with strip_matching_host_port: true (expected: only "
                    + "one of them)");
        }
        HostNormalization.StripPort port = h.getStripAnyHostPort() ? HostNormalization.StripPort.ANY
                : h.getStripMatchingHostPort() ? HostNormalization.StripPort.MATCHING : HostNormalization.StripPort.NONE;
        return new HostNormalization(port, h.getStripTrailingHostDot());
    }

    /**
     * An RDS {@code config_source}: {@code ads} (what istiod writes) or {@code self} (the listener's own source, ADS
     * too); a file ({@code path}, {@code path_config_source}) or another server ({@code api_config_source}) is never
     * read by Inmesh, whose one configuration stream is ADS, so it is refused rather than waited for in vain.
     */
    private static Void rdsSource(io.envoyproxy.envoy.config.core.v3.ConfigSource source) {
        Fields.onlyKnown(source, Set.of("ads", "self"), Set.of("initial_fetch_timeout", "resource_api_version"));
        if (!source.hasAds() && !source.hasSelf()) {
            throw new FieldError("config_source_specifier", "missing (expected: ads or self)");
        }
        return null;
    }

    /**
     * {@code internal_address_config}: its {@code cidr_ranges}, the addresses a request's downstream address makes it
     * internal from; without any, the private ranges Envoy's {@code Network::Utility::isInternalAddress} then falls
     * back to ({@link #PRIVATE_RANGES}). Its {@code unix_sockets} goes to {@link RemoteAddressOptions}.
     */
    private static List<CidrRange> internalAddresses(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                    .InternalAddressConfig c) {
        Fields.onlyKnown(c, Set.of("cidr_ranges", "unix_sockets"), Set.of());
        if (c.getCidrRangesCount() == 0) {
            return PRIVATE_RANGES;
        }
        List<CidrRange> ranges = new ArrayList<>();
        for (int i = 0; i < c.getCidrRangesCount(); i++) {
            var r = c.getCidrRanges(i);
            ranges.add(Fields.at("cidr_ranges[" + i + "]", () -> CoreParsers.cidr(r)));
        }
        return ranges;
    }

    /**
     * What Envoy's {@code Network::Utility::isInternalAddress} takes for internal, where an
     * {@code internal_address_config} names no {@code cidr_ranges}: RFC 1918's IPv4 ranges, the IPv4 loopback address
     * 127.0.0.1, the locally assigned half of RFC 4193's unique local IPv6 addresses (fd00::/8), and the IPv6
     * loopback address ::1 (its {@code in6addr_loopback}).
     */
    static final List<CidrRange> PRIVATE_RANGES = List.of(new CidrRange("10.0.0.0", 8),
            new CidrRange("172.16.0.0", 12), new CidrRange("192.168.0.0", 16), new CidrRange("127.0.0.1", 32),
            new CidrRange("fd00::", 8), new CidrRange("::1", 128));

    /**
     * The router filter's config (the last filter, when it carries a typed config). {@code suppress_envoy_headers},
     * {@code respect_expected_rq_timeout} and {@code strict_check_headers} are applied. {@code start_child_span} (a
     * span for each upstream attempt, whatever {@code spawn_upstream_span} says) is refused where the connection
     * manager traces; without tracing there is no span to start.
     * {@code dynamic_stats} and {@code suppress_grpc_request_failure_code_stats} are taken at their defaults only:
     * Inmesh keeps the cluster's {@code upstream_rq_completed} and {@code upstream_rq_xx} statistics they would turn
     * off. Upstream access logs and upstream HTTP filters are not implemented and are refused.
     */
    private static RouterFilterConfig routerFilter(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager h) {
        int last = h.getHttpFiltersCount() - 1;
        if (last < 0 || !h.getHttpFilters(last).hasTypedConfig()
                || !CoreParsers.configType(h.getHttpFilters(last).getTypedConfig()).equals(ROUTER_TYPE)) {
            return RouterFilterConfig.DEFAULTS;
        }
        return Fields.at("http_filters[" + last + "].typed_config", () -> {
            var r = RouteConfigurationParser.unpack(h.getHttpFilters(last).getTypedConfig(),
                    io.envoyproxy.envoy.extensions.filters.http.router.v3.Router.class, "@type");
            Fields.onlyKnown(r, Set.of("suppress_envoy_headers", "respect_expected_rq_timeout",
                    "strict_check_headers", "start_child_span", "dynamic_stats",
                    "suppress_grpc_request_failure_code_stats"), Set.of());
            if (r.getStartChildSpan() && h.hasTracing()) {
                throw new FieldError("start_child_span", "true is not supported by Inmesh where the connection "
                        + "manager traces (expected: false: one span per request, as a sidecar's)");
            }
            if (r.hasDynamicStats() && !r.getDynamicStats().getValue()) {
                throw new FieldError("dynamic_stats", "false is not supported by Inmesh (expected: true, the "
                        + "default: the cluster's upstream_rq_completed and upstream_rq_xx are kept)");
            }
            if (r.getSuppressGrpcRequestFailureCodeStats()) {
                throw new FieldError("suppress_grpc_request_failure_code_stats", "true is not supported by Inmesh "
                        + "(expected: false: gRPC requests count in the cluster's upstream_rq_xx)");
            }
            return Fields.record("", () -> new RouterFilterConfig(r.getSuppressEnvoyHeaders(),
                    r.getRespectExpectedRqTimeout(), r.getStrictCheckHeadersList()));
        });
    }

    /** Refuses a filter that runs ({@code runs}) where {@code filters} already has one of its kind ({@code same}). */
    private static void onlyOne(boolean runs, List<HttpFilter> filters, java.util.function.Predicate<HttpFilter> same,
                                int i, String name, String kind) {
        if (runs && filters.stream().anyMatch(same)) {
            throw new FieldError("http_filters[" + i + "].name", name + ": a second " + kind + " filter is not "
                    + "supported by Inmesh (expected: one)");
        }
    }

    /**
     * Inmesh runs the local rate limit filter either before the RBAC, fault and CORS filters (Istio's
     * {@code INSERT_BEFORE} the connection manager puts it first) or after them (Istio's {@code INSERT_BEFORE} the
     * router puts it last), and the global rate limit filter (after the JWT authentication, RBAC and external
     * authorization filters: checked as they are parsed) either before the fault and CORS filters or after both;
     * between them is refused by name.
     */
    private static void checkRateLimitPosition(List<HttpFilter> filters) {
        notBetween(filters, f -> f.localRateLimit() != null, f -> f.jwtAuthn() != null || f.rbac() != null
                || f.extAuthz() != null || f.fault() != null || f.cors(), "the JWT authentication, RBAC, external "
                + "authorization, fault and CORS filters");
        notBetween(filters, f -> f.globalRateLimit() != null, f -> f.fault() != null || f.cors(),
                "the fault and CORS filters");
        // both after the fault and CORS filters: Inmesh runs the local one first
        int local = -1;
        int global = -1;
        boolean faultOrCors = false;
        for (int i = 0; i < filters.size(); i++) {
            HttpFilter f = filters.get(i);
            faultOrCors |= f.fault() != null || f.cors();
            if (f.localRateLimit() != null && faultOrCors) {
                local = i;
            } else if (f.globalRateLimit() != null && faultOrCors) {
                global = i;
            }
        }
        if (global >= 0 && local > global) {
            throw new FieldError("http_filters[" + global + "].name", filters.get(global).name() + " before the "
                    + "local rate limit filter, both after the fault and CORS filters, is not supported by Inmesh "
                    + "(expected: the local rate limit filter first)");
        }
    }

    /**
     * Inmesh runs the header mutation, buffer and Lua filters right before the router, in that order (the header
     * mutation and buffer filters either way round), after the filters it runs there (JWT authentication, RBAC,
     * external authorization, fault, CORS, local and global rate limits), where Istio's {@code INSERT_BEFORE} the
     * router puts them: one of those after a header mutation, buffer or Lua filter, and a header mutation or buffer
     * filter after a Lua filter, are refused by name.
     */
    private static void checkLuaPosition(List<HttpFilter> filters) {
        boolean lua = false;
        boolean late = false;
        for (int i = 0; i < filters.size(); i++) {
            HttpFilter f = filters.get(i);
            if (lua && (f.buffer() != null || f.headerMutation() != null)) {
                throw new FieldError("http_filters[" + i + "].name", f.name() + " after a Lua filter is not "
                        + "supported by Inmesh (expected: the header mutation and buffer filters before the Lua "
                        + "filters)");
            }
            lua |= f.lua() != null;
            late |= f.lua() != null || f.buffer() != null || f.headerMutation() != null;
            if (late && (f.jwtAuthn() != null || f.rbac() != null || f.extAuthz() != null || f.fault() != null
                    || f.cors() || f.localRateLimit() != null || f.globalRateLimit() != null)) {
                throw new FieldError("http_filters[" + i + "].name", f.name() + " after a header mutation, buffer "
                        + "or Lua filter is not supported by Inmesh (expected: the header mutation, buffer and Lua "
                        + "filters after the JWT authentication, RBAC, external authorization, fault, CORS and rate "
                        + "limit filters, right before the router)");
            }
        }
    }

    /** Refuses the filter {@code which} picks when some of the filters {@code around} picks stand on either side. */
    private static void notBetween(List<HttpFilter> filters, java.util.function.Predicate<HttpFilter> which,
                                   java.util.function.Predicate<HttpFilter> around, String aroundNames) {
        int at = -1;
        boolean before = false;
        boolean after = false;
        for (int i = 0; i < filters.size(); i++) {
            HttpFilter f = filters.get(i);
            if (which.test(f)) {
                at = i;
            } else if (around.test(f)) {
                before |= at < 0;
                after |= at >= 0;
            }
        }
        if (at >= 0 && before && after) {
            throw new FieldError("http_filters[" + at + "].name", filters.get(at).name() + " between " + aroundNames
                    + " is not supported by Inmesh (expected: before all of them, or after all of them right before "
                    + "the router)");
        }
    }

    /**
     * The connection lifetimes of {@code common_http_protocol_options} ({@code idle_timeout}: unset for Envoy's 1 hour,
     * 0 for none; {@code max_connection_duration}, {@code max_stream_duration}: unset or 0 for none;
     * {@code max_requests_per_connection}: unset or 0 for no limit), {@code drain_timeout} (unset: 5 s), and
     * {@code request_timeout} and {@code request_headers_timeout} (unset or 0 for none), and
     * {@code delayed_close_timeout} (unset: 1 s, 0 for none).
     */
    private static ConnectionLifetimes lifetimes(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager h) {
        var o = h.getCommonHttpProtocolOptions();
        java.time.Duration drain = Fields.durationOrNull(h.hasDrainTimeout(), h.getDrainTimeout());
        if (!h.hasCommonHttpProtocolOptions() && drain == null && !h.hasRequestTimeout()
                && !h.hasRequestHeadersTimeout() && !h.hasDelayedCloseTimeout()) {
            return ConnectionLifetimes.DEFAULTS;
        }
        long requests = o.hasMaxRequestsPerConnection() ? Integer.toUnsignedLong(o.getMaxRequestsPerConnection()
                .getValue()) : 0;
        return Fields.record("", () -> new ConnectionLifetimes(
                Fields.durationOrNull(o.hasIdleTimeout(), o.getIdleTimeout()),
                Fields.durationOrNull(o.hasMaxConnectionDuration(), o.getMaxConnectionDuration()),
                (int) Math.min(Integer.MAX_VALUE, requests),
                Fields.durationOrNull(o.hasMaxStreamDuration(), o.getMaxStreamDuration()), drain,
                Fields.durationOrNull(h.hasRequestTimeout(), h.getRequestTimeout()),
                Fields.durationOrNull(h.hasRequestHeadersTimeout(), h.getRequestHeadersTimeout()),
                Fields.durationOrNull(h.hasDelayedCloseTimeout(), h.getDelayedCloseTimeout())));
    }

    /** {@code forward_client_cert_details} with the {@code set_current_client_cert_details} it adds. */
    private static ForwardClientCert forwardClientCert(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager h) {
        var mode = switch (h.getForwardClientCertDetails()) {
            case FORWARD_ONLY -> ForwardClientCert.Mode.FORWARD_ONLY;
            case APPEND_FORWARD -> ForwardClientCert.Mode.APPEND_FORWARD;
            case SANITIZE_SET -> ForwardClientCert.Mode.SANITIZE_SET;
            case ALWAYS_FORWARD_ONLY -> ForwardClientCert.Mode.ALWAYS_FORWARD_ONLY;
            default -> ForwardClientCert.Mode.SANITIZE;
        };
        var d = h.getSetCurrentClientCertDetails();
        Fields.at("set_current_client_cert_details", () -> {
            Fields.onlyKnown(d, Set.of("subject", "cert", "chain", "dns", "uri"), Set.of());
            return null;
        });
        ForwardClientCert f = new ForwardClientCert(mode, d.getCert(), d.getChain(),
                d.hasSubject() && d.getSubject().getValue(), d.getUri(), d.getDns());
        return f.equals(ForwardClientCert.SANITIZE) ? ForwardClientCert.SANITIZE : f;
    }

    /** {@code codec_type}: HTTP/3 is refused, as Envoy refuses it on a listener that is not QUIC. */
    private static HttpConnectionManager.CodecType codecType(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager h) {
        return switch (h.getCodecType()) {
            case AUTO -> HttpConnectionManager.CodecType.AUTO;
            case HTTP1 -> HttpConnectionManager.CodecType.HTTP1;
            case HTTP2 -> HttpConnectionManager.CodecType.HTTP2;
            default -> throw new FieldError("codec_type", h.getCodecType() + " is not supported by Inmesh (expected: "
                    + "AUTO, HTTP1 or HTTP2; HTTP/3 needs a QUIC listener)");
        };
    }

    /**
     * {@code normalize_path} (unset: false, Envoy's default), {@code merge_slashes} and
     * {@code path_with_escaped_slashes_action}.
     */
    private static PathNormalization pathNormalization(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager h) {
        var action = switch (h.getPathWithEscapedSlashesAction()) {
            case IMPLEMENTATION_SPECIFIC_DEFAULT, KEEP_UNCHANGED -> PathNormalization.EscapedSlashes.KEEP_UNCHANGED;
            case REJECT_REQUEST -> PathNormalization.EscapedSlashes.REJECT_REQUEST;
            case UNESCAPE_AND_FORWARD -> PathNormalization.EscapedSlashes.UNESCAPE_AND_FORWARD;
            case UNESCAPE_AND_REDIRECT -> PathNormalization.EscapedSlashes.UNESCAPE_AND_REDIRECT;
            default -> throw new FieldError("path_with_escaped_slashes_action",
                    h.getPathWithEscapedSlashesActionValue() + " (expected: KEEP_UNCHANGED, REJECT_REQUEST, "
                            + "UNESCAPE_AND_FORWARD or UNESCAPE_AND_REDIRECT)");
        };
        PathNormalization n = new PathNormalization(h.hasNormalizePath() && h.getNormalizePath().getValue(),
                h.getMergeSlashes(), action);
        return n.none() ? PathNormalization.NONE : n;
    }

    /**
     * The connection manager's {@code common_http_protocol_options}: {@code max_headers_count} (at least 1 when set,
     * Envoy's rule; 0 for the default 100). Its connection lifetimes are read by {@link #lifetimes};
     * {@code max_response_headers_kb} limits upstream responses only, and is refused here as Envoy refuses it on a
     * connection manager.
     */
    private static int maxHeadersCount(io.envoyproxy.envoy.config.core.v3.HttpProtocolOptions o) {
        if (o.hasMaxResponseHeadersKb()) {
            throw new FieldError("max_response_headers_kb", "cannot be set on a connection manager, as in Envoy "
                    + "(it limits upstream responses, a cluster's protocol option; Inmesh's pools take Envoy's "
                    + "60 KiB)");
        }
        Fields.onlyKnown(o, Set.of("max_headers_count", "headers_with_underscores_action", "idle_timeout",
                "max_connection_duration", "max_stream_duration", "max_requests_per_connection"), Set.of());
        if (!o.hasMaxHeadersCount()) {
            return 0;
        }
        int n = o.getMaxHeadersCount().getValue();
        if (n < 1) {
            throw new FieldError("max_headers_count", Integer.toUnsignedString(n) + " (expected: >= 1)");
        }
        return n;
    }

    /**
     * The connection manager's {@code via}, which goes into a header value as it is: refused when it holds a NUL, CR
     * or LF, as Envoy's validation of a header value refuses them.
     */
    private static String via(String via) {
        for (int i = 0; i < via.length(); i++) {
            char c = via.charAt(i);
            if (c == 0 || c == '\r' || c == '\n') {
                throw new FieldError("via", "a NUL, CR or LF at " + i + " (expected: a valid header value)");
            }
        }
        return via;
    }

    /** {@code max_request_headers_kb}: 1 to 8192 when set (Envoy's rule), 0 for the default. */
    private static int maxRequestHeadersKb(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager h) {
        if (!h.hasMaxRequestHeadersKb()) {
            return 0;
        }
        int kb = h.getMaxRequestHeadersKb().getValue();
        if (kb <= 0 || kb > 8192) {
            throw new FieldError("max_request_headers_kb", Integer.toUnsignedString(kb) + " (expected: 1 to 8192)");
        }
        return kb;
    }

    /** Envoy's {@code Http1ProtocolOptions}: the options that decide which requests are taken. */
    static Http1Options http1(io.envoyproxy.envoy.config.core.v3.Http1ProtocolOptions o) {
        Fields.onlyKnown(o, Set.of("accept_http_10", "default_host_for_http_10", "allow_absolute_url",
                "allow_chunked_length", "allow_custom_methods", "enable_trailers"), Set.of("header_key_format",
                        "override_stream_error_on_invalid_http_message", "use_balsa_parser",
                        "send_fully_qualified_url"));
        CoreParsers.headerKeyFormat(o);
        return new Http1Options(o.getAcceptHttp10(), o.getDefaultHostForHttp10(),
                !o.hasAllowAbsoluteUrl() || o.getAllowAbsoluteUrl().getValue(), o.getAllowChunkedLength(),
                o.getAllowCustomMethods(), o.getEnableTrailers(),
                o.hasHeaderKeyFormat() && o.getHeaderKeyFormat().hasStatefulFormatter());
    }

    /** A connection manager's or TCP proxy's {@code stat_prefix}, which Envoy's validation requires non-empty. */
    private static void requireStatPrefix(String prefix) {
        if (prefix.isEmpty()) {
            throw new FieldError("stat_prefix", "\"\" (expected: a prefix of at least 1 character)");
        }
    }

    static TcpProxy tcpProxy(Any any) {
        var t = RouteConfigurationParser.unpack(any,
                io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.class, "@type");
        requireStatPrefix(t.getStatPrefix());
        Fields.onlyKnown(t, Set.of("stat_prefix", "cluster", "weighted_clusters", "idle_timeout",
                "max_connect_attempts", "hash_policy", "access_log", "max_downstream_connection_duration"),
                Set.of("metadata_match"));
        boolean hashSourceIp = Fields.at("hash_policy", () -> hashSourceIp(t.getHashPolicyList()));
        ClusterSpecifier cluster = switch (t.getClusterSpecifierCase()) {
            case CLUSTER -> new ClusterSpecifier.Named(t.getCluster());
            case WEIGHTED_CLUSTERS -> Fields.at("weighted_clusters", () -> RouteConfigurationParser.weighted(
                    Fields.each("clusters", t.getWeightedClusters().getClustersList(),
                            c -> Fields.record(RouteConfigurationParser.WEIGHTED_RECORD_PREFIX,
                                    () -> new ClusterSpecifier.ClusterWeight(c.getName(), "",
                                            c.getWeight() & 0xFFFFFFFFL, null))), null));
            case CLUSTERSPECIFIER_NOT_SET -> throw new FieldError("cluster_specifier",
                    "cluster or weighted_clusters is required");
        };
        int attempts = t.hasMaxConnectAttempts() ? t.getMaxConnectAttempts().getValue() : 1;
        if (attempts == 0) {
            throw new FieldError("max_connect_attempts", "0 (expected: >= 1)");
        }
        attempts = attempts < 0 ? Integer.MAX_VALUE : attempts; // a uint32 past int's range: never the limit
        int connectAttempts = attempts;
        var logs = AccessLogParser.parse(t.getAccessLogList());
        java.time.Duration maxDuration = Fields.durationOrNull(t.hasMaxDownstreamConnectionDuration(),
                t.getMaxDownstreamConnectionDuration());
        return Fields.record("", () -> new TcpProxy(t.getStatPrefix(), cluster, t.hasIdleTimeout()
                ? Fields.duration(t.getIdleTimeout()) : null, connectAttempts, hashSourceIp, logs, maxDuration));
    }

    /**
     * A TCP proxy's {@code hash_policy}: at most one, as Envoy validates it, and {@code source_ip} (istiod's, for a
     * DestinationRule's {@code consistentHash.useSourceIp}); {@code filter_state}, a value Inmesh's connections do
     * not carry, is refused by name.
     */
    private static boolean hashSourceIp(List<io.envoyproxy.envoy.type.v3.HashPolicy> policies) {
        if (policies.size() > 1) {
            throw new FieldError("", policies.size() + " policies (expected: at most 1)");
        }
        if (policies.isEmpty()) {
            return false;
        }
        var p = policies.get(0);
        return Fields.at("[0]", () -> switch (p.getPolicySpecifierCase()) {
            case SOURCE_IP -> true;
            case FILTER_STATE -> throw new FieldError("filter_state", "not supported by Inmesh (expected: source_ip)");
            case POLICYSPECIFIER_NOT_SET -> throw new FieldError("policy_specifier", "source_ip is required");
        });
    }

    /** Envoy rejects a listener in which two filter chains have the same match. */
    static void checkUniqueMatches(List<FilterChain> chains) {
        Map<FilterChainMatch, String> seen = new HashMap<>();
        for (int i = 0; i < chains.size(); i++) {
            FilterChain c = chains.get(i);
            String prev = seen.put(c.match(), c.name());
            if (prev != null) {
                throw new FieldError("filter_chains[" + i + "].filter_chain_match", "the same match as chain \""
                        + prev + "\" (expected: unique matches)");
            }
        }
        checkNoOverlap(chains);
    }

    /**
     * Envoy indexes a listener's chains by every combination of the values their matches list (each destination
     * range, server name, application protocol, source range and source port, an empty list as one "any" value), and
     * rejects the listener when two combinations coincide, in two chains or in one: a connection they both take
     * would have no most specific chain. Ranges count by their network address ({@code 10.0.0.1/8} is
     * {@code 10.0.0.0/8}), server names without case.
     */
    private static void checkNoOverlap(List<FilterChain> chains) {
        Map<List<Object>, String> seen = new HashMap<>();
        for (int i = 0; i < chains.size(); i++) {
            FilterChainMatch m = chains.get(i).match();
            List<List<?>> axes = List.of(List.of(m.destinationPort()), orAny(networks(m.prefixRanges())),
                    orAny(m.serverNames().stream().map(n -> n.toLowerCase(java.util.Locale.ROOT)).toList()),
                    List.of(m.transportProtocol()), orAny(m.applicationProtocols()), List.of(m.sourceType()),
                    orAny(networks(m.sourcePrefixRanges())), m.sourcePorts().isEmpty() ? List.of(0) : m.sourcePorts());
            List<List<Object>> keys = new ArrayList<>();
            keys.add(List.of());
            for (List<?> axis : axes) {
                List<List<Object>> next = new ArrayList<>(keys.size() * axis.size());
                for (List<Object> k : keys) {
                    for (Object v : axis) {
                        List<Object> longer = new ArrayList<>(k);
                        longer.add(v);
                        next.add(longer);
                    }
                }
                keys = next;
            }
            for (List<Object> k : keys) {
                String prev = seen.putIfAbsent(k, chains.get(i).name());
                if (prev != null) {
                    throw new FieldError("filter_chains[" + i + "].filter_chain_match", "its rules overlap those of "
                            + "chain \"" + prev + "\" (" + k + "; expected: no two chains that match a connection "
                            + "alike)");
                }
            }
        }
    }

    private static List<?> orAny(List<?> values) {
        return values.isEmpty() ? List.of("") : values;
    }

    /** Each range as its network address and length. */
    private static List<String> networks(List<CidrRange> ranges) {
        List<String> out = new ArrayList<>(ranges.size());
        for (CidrRange r : ranges) {
            byte[] a = dev.inmesh.runtime.net.IpLiterals.parse(r.addressPrefix()).clone();
            for (int bit = r.prefixLen(); bit < a.length * 8; bit++) {
                a[bit / 8] &= (byte) ~(0x80 >>> (bit % 8));
            }
            out.add(dev.inmesh.runtime.net.IpLiterals.format(a) + "/" + r.prefixLen());
        }
        return out;
    }
}
