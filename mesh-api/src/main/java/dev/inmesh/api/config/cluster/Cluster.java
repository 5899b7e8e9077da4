package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.core.TcpKeepalive;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import java.time.Duration;
import java.util.List;

/**
 * An upstream cluster, as Envoy's {@code config.cluster.v3.Cluster}.
 *
 * @param name the cluster's name, such as {@code outbound|9080||ratings.default.svc.cluster.local}
 * @param type how hosts are found
 * @param edsServiceName the name to ask EDS for (the cluster's name when empty)
 * @param lbPolicy the load balancing policy
 * @param lbConfig the policy's settings
 * @param connectTimeout the upstream connect timeout (Envoy's default 5 s)
 * @param circuitBreakers limits per routing priority
 * @param outlierDetection outlier detection settings, or null when off
 * @param commonLbConfig panic threshold and locality weighting
 * @param upstreamBindAddress the source address for upstream connections, or null; its port 0 (the connections bind
 *     only the address)
 * @param loadAssignment the inline hosts of a STATIC, STRICT_DNS or LOGICAL_DNS cluster, or null (a STATIC cluster without
 *     hosts, such as Istio's BlackHoleCluster, is valid and has no upstream; a STRICT_DNS cluster's null is an empty
 *     assignment, as Envoy initializes a DNS cluster without endpoints at once, empty); null for an ORIGINAL_DST cluster
 * @param dnsRefreshRate how often a STRICT_DNS or LOGICAL_DNS cluster re-resolves (Envoy's default 5 s)
 * @param dnsLookupFamily which addresses a DNS cluster takes from a name (Envoy's default AUTO)
 * @param cleanupInterval how often an ORIGINAL_DST cluster sweeps its hosts: one not picked since the last sweep, with
 *     no request in flight and no connection in its pool, is dropped (Envoy's default 5 s)
 * @param http2 whether upstream requests use HTTP/2 (h2c) rather than HTTP/1.1
 * @param useDownstreamProtocol whether an upstream request uses the protocol its downstream request came in
 *     ({@code use_downstream_protocol_config}, which Istio sets on clusters of ports whose protocol it detects and on
 *     its passthrough clusters): h2c for an HTTP/2 request, HTTP/1.1 otherwise (not used when {@code http2} is set)
 * @param metadata the cluster's metadata (Istio puts service names and subsets there)
 * @param commonHttpProtocolOptions the upstream connections' idle timeout, maximum duration and maximum requests
 * @param tls TLS to the hosts ({@code transport_socket} {@code envoy.transport_sockets.tls}), or null for plaintext;
 *     with {@code transportSocketMatches}, TLS to the hosts none of them applies to
 * @param tcpKeepalive TCP keep-alive on every upstream connection ({@code upstream_connection_options.tcp_keepalive}),
 *     or null for none (the sockets keep the system's setting, off on Linux)
 * @param transportSocketMatches the transport sockets of the hosts whose metadata they match
 *     ({@code transport_socket_matches}), in order: each host takes the first that applies to it, else {@code tls}
 * @param respectDnsTtl whether a DNS cluster re-resolves when its records' TTL is up rather than at
 *     {@code dnsRefreshRate} ({@code respect_dns_ttl}, which Istio sets on its DNS clusters); an answer without a TTL
 *     keeps the refresh rate
 * @param http2ProtocolOptions the settings of the hosts' HTTP/2 connections ({@code http2_protocol_options}): the
 *     streams one connection carries at once, the windows and the header table; Envoy's defaults when null
 * @param dnsJitter the upper bound (exclusive) of a random delay added to each DNS refresh ({@code dns_jitter},
 *     which istiod sets to 100 ms on its DNS clusters), so that many proxies do not ask at once; zero when null
 * @param extraSourceAddresses {@code upstream_bind_config.extra_source_addresses}: none, or one source address of
 *     the other IP version, which a connection to a host of that version binds ({@link #upstreamBindAddress(String)})
 * @param altStatName {@code alt_stat_name}: the name the cluster is observed by (Envoy's observability name: its
 *     statistics, {@code %UPSTREAM_CLUSTER%}, the tracer's {@code upstream_cluster.name}); empty when it has none,
 *     and then its name is
 * @param healthCheck the active health check of the cluster's hosts ({@code health_checks}, at most one), or null
 *     for none; not on a cluster with TLS to its hosts (Inmesh's checks speak plaintext)
 * @param ignoreHealthOnHostRemoval {@code ignore_health_on_host_removal}: with a health check, a host that leaves
 *     the cluster's EDS assignment or DNS answers goes at once; without it (Envoy's default) a host whose checks pass
 *     stays, routable, until they fail it
 * @param http1Trailers whether the trailers of an HTTP/1.1 host's chunked response are kept ({@code enable_trailers}
 *     of the cluster's HTTP/1 protocol options); when false (Envoy's default) they are dropped, as Envoy's HTTP/1
 *     codec drops them
 * @param dnsFailureRefreshRate when a DNS cluster resolves again after a resolution in which every lookup failed
 *     ({@code dns_failure_refresh_rate}): a jittered exponential back-off; null (Envoy's default) for
 *     {@code dnsRefreshRate}
 * @param tlsNotReady why the cluster's own TLS ({@code transport_socket}) is not ready, or null when it is (or it
 *     has none): its SDS secret had not arrived within its {@code initial_fetch_timeout}, so the cluster serves
 *     without it and the connections of the hosts that take that socket fail, as Envoy's through its
 *     {@code NotReadySslSocket}, never in plaintext ({@code tls} is null then)
 */
public record Cluster(
        String name,
        DiscoveryType type,
        String edsServiceName,
        LbPolicy lbPolicy,
        LbConfig lbConfig,
        Duration connectTimeout,
        CircuitBreakers circuitBreakers,
        OutlierDetection outlierDetection,
        CommonLbConfig commonLbConfig,
        SocketAddress upstreamBindAddress,
        ClusterLoadAssignment loadAssignment,
        Duration dnsRefreshRate,
        DnsLookupFamily dnsLookupFamily,
        Duration cleanupInterval,
        boolean http2,
        boolean useDownstreamProtocol,
        Metadata metadata,
        CommonHttpProtocolOptions commonHttpProtocolOptions,
        UpstreamTlsContext tls,
        TcpKeepalive tcpKeepalive,
        List<TransportSocketMatch> transportSocketMatches,
        boolean respectDnsTtl,
        Http2ProtocolOptions http2ProtocolOptions,
        Duration dnsJitter,
        List<SocketAddress> extraSourceAddresses,
        String altStatName,
        HealthCheck healthCheck,
        boolean ignoreHealthOnHostRemoval,
        boolean http1Trailers,
        RefreshRate dnsFailureRefreshRate,
        String tlsNotReady) {

    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);

    public Cluster {
        Checks.nonEmpty(name, "name");
        Checks.nonNull(type, "type");
        edsServiceName = edsServiceName == null ? "" : edsServiceName;
        lbPolicy = lbPolicy == null ? LbPolicy.ROUND_ROBIN : lbPolicy;
        lbConfig = lbConfig == null ? defaultLbConfig(lbPolicy) : lbConfig;
        connectTimeout = connectTimeout == null ? DEFAULT_CONNECT_TIMEOUT : connectTimeout;
        Checks.check(connectTimeout.toNanos() > 0, "connect_timeout", connectTimeout, "> 0s");
        circuitBreakers = circuitBreakers == null ? CircuitBreakers.DEFAULTS : circuitBreakers;
        commonLbConfig = commonLbConfig == null ? CommonLbConfig.DEFAULTS : commonLbConfig;
        dnsRefreshRate = dnsRefreshRate == null ? Duration.ofSeconds(5) : dnsRefreshRate;
        dnsLookupFamily = dnsLookupFamily == null ? DnsLookupFamily.AUTO : dnsLookupFamily;
        cleanupInterval = cleanupInterval == null ? Duration.ofSeconds(5) : cleanupInterval;
        metadata = metadata == null ? Metadata.EMPTY : metadata;
        commonHttpProtocolOptions = commonHttpProtocolOptions == null ? CommonHttpProtocolOptions.DEFAULTS
                : commonHttpProtocolOptions;
        transportSocketMatches = transportSocketMatches == null ? List.of() : List.copyOf(transportSocketMatches);
        http2ProtocolOptions = http2ProtocolOptions == null ? Http2ProtocolOptions.DEFAULTS : http2ProtocolOptions;
        dnsJitter = dnsJitter == null ? Duration.ZERO : dnsJitter;
        Checks.check(!dnsJitter.isNegative(), "dns_jitter", dnsJitter, ">= 0s");
        extraSourceAddresses = extraSourceAddresses == null ? List.of() : List.copyOf(extraSourceAddresses);
        altStatName = altStatName == null ? "" : altStatName;
        // Envoy's default local address selector: one extra address, of the other IP version than source_address
        Checks.check(extraSourceAddresses.isEmpty() || upstreamBindAddress != null && extraSourceAddresses.size() == 1
                && ipv6(extraSourceAddresses.get(0).address()) != ipv6(upstreamBindAddress.address()),
                "upstream_bind_config.extra_source_addresses", extraSourceAddresses.size() + " addresses",
                "one, of the other IP version than source_address");
        Checks.check((type == DiscoveryType.ORIGINAL_DST) == (lbPolicy == LbPolicy.CLUSTER_PROVIDED), "lb_policy",
                lbPolicy, type == DiscoveryType.ORIGINAL_DST ? "CLUSTER_PROVIDED for an ORIGINAL_DST cluster"
                        : "not CLUSTER_PROVIDED for a " + type + " cluster");
        Checks.check(matches(lbPolicy, lbConfig), "lb_config", lbConfig.getClass().getSimpleName(),
                "settings for " + lbPolicy);
        // Envoy accepts a STATIC cluster without hosts (Istio's BlackHoleCluster), and a STRICT_DNS one, which it
        // initializes at once, empty; a LOGICAL_DNS cluster needs the one name it resolves
        if (type == DiscoveryType.STRICT_DNS && loadAssignment == null) {
            loadAssignment = ClusterLoadAssignment.empty(name);
        }
        if (type == DiscoveryType.LOGICAL_DNS) {
            Checks.check(loadAssignment != null, "load_assignment", "null", "hosts for a " + type + " cluster");
            // as Envoy: one locality with one endpoint, the one name the cluster's host comes from
            Checks.check(loadAssignment.endpoints().size() == 1
                    && loadAssignment.endpoints().get(0).lbEndpoints().size() == 1, "load_assignment",
                    loadAssignment.endpoints().stream().mapToInt(l -> l.lbEndpoints().size()).sum() + " endpoints in "
                            + loadAssignment.endpoints().size() + " localities",
                    "a single locality with a single endpoint for a LOGICAL_DNS cluster");
        }
        // as Envoy: an ORIGINAL_DST cluster's hosts are the connections' destinations, never configured ones
        Checks.check(type != DiscoveryType.ORIGINAL_DST || loadAssignment == null, "load_assignment",
                "hosts for an ORIGINAL_DST cluster", "none: its hosts are the original destinations");
        // the upstream connections bind only the address (the xDS parser refuses a port by name too)
        Checks.check(upstreamBindAddress == null || upstreamBindAddress.port() == 0,
                "upstream_bind_config.source_address.port_value", upstreamBindAddress == null ? null
                        : upstreamBindAddress.port(), "0: the upstream connections do not bind a source port");
        Checks.check(tlsNotReady == null || tls == null, "transport_socket", "TLS not ready with TLS",
                "no TLS on a cluster whose TLS is not ready");
        Checks.check(healthCheck == null || tls == null && tlsNotReady == null && transportSocketMatches.isEmpty(),
                "health_checks",
                "a health check on a cluster with TLS", "no TLS to the hosts (Inmesh's checks speak plaintext)");
        Checks.check(healthCheck == null || type != DiscoveryType.ORIGINAL_DST, "health_checks",
                "a health check on an ORIGINAL_DST cluster", "a cluster whose hosts are known in advance");
        // as Envoy's HealthCheckerFactory: a gRPC check needs a cluster whose protocol options allow HTTP/2 (the xDS
        // parser also refuses use_downstream_protocol_config without http2_protocol_options, which this cannot see)
        Checks.check(healthCheck == null || !(healthCheck.checker() instanceof HealthCheck.Grpc) || http2
                || useDownstreamProtocol, "health_checks", "a gRPC health check on an HTTP/1.1 cluster",
                "a cluster with HTTP/2 to its hosts");
    }

    /** The name the cluster is observed by: its {@code alt_stat_name}, else its name (Envoy's observability name). */
    public String observabilityName() {
        return altStatName.isEmpty() ? name : altStatName;
    }

    /**
     * The source address of a connection to {@code hostAddress}, as Envoy's default local address selector picks it:
     * {@link #upstreamBindAddress}, unless its IP version is not the host's and the extra source address's is (Istio's
     * {@code ::6} beside {@code 127.0.0.6} for a dual-stack pod); null when the cluster binds none.
     */
    public SocketAddress upstreamBindAddress(String hostAddress) {
        if (extraSourceAddresses.isEmpty() || hostAddress == null
                || ipv6(upstreamBindAddress.address()) == ipv6(hostAddress)) {
            return upstreamBindAddress;
        }
        return extraSourceAddresses.get(0);
    }

    private static boolean ipv6(String address) {
        return address.indexOf(':') >= 0;
    }

    /**
     * A builder of a cluster named {@code name} of {@code type}, every other field unset: the canonical constructor
     * gives each Envoy's default. A builder rather than copy methods, as the record has 28 components and call sites
     * set a dozen different ones.
     */
    public static Builder builder(String name, DiscoveryType type) {
        return new Builder(name, type);
    }

    /** A builder that starts from this cluster's fields. */
    public Builder toBuilder() {
        Builder b = new Builder(name, type);
        b.edsServiceName = edsServiceName;
        b.lbPolicy = lbPolicy;
        b.lbConfig = lbConfig;
        b.connectTimeout = connectTimeout;
        b.circuitBreakers = circuitBreakers;
        b.outlierDetection = outlierDetection;
        b.commonLbConfig = commonLbConfig;
        b.upstreamBindAddress = upstreamBindAddress;
        b.loadAssignment = loadAssignment;
        b.dnsRefreshRate = dnsRefreshRate;
        b.dnsLookupFamily = dnsLookupFamily;
        b.cleanupInterval = cleanupInterval;
        b.http2 = http2;
        b.useDownstreamProtocol = useDownstreamProtocol;
        b.metadata = metadata;
        b.commonHttpProtocolOptions = commonHttpProtocolOptions;
        b.tls = tls;
        b.tcpKeepalive = tcpKeepalive;
        b.transportSocketMatches = transportSocketMatches;
        b.respectDnsTtl = respectDnsTtl;
        b.http2ProtocolOptions = http2ProtocolOptions;
        b.dnsJitter = dnsJitter;
        b.extraSourceAddresses = extraSourceAddresses;
        b.altStatName = altStatName;
        b.healthCheck = healthCheck;
        b.ignoreHealthOnHostRemoval = ignoreHealthOnHostRemoval;
        b.http1Trailers = http1Trailers;
        b.dnsFailureRefreshRate = dnsFailureRefreshRate;
        b.tlsNotReady = tlsNotReady;
        return b;
    }

    /** Builds a {@link Cluster}; what is not set is left to the canonical constructor's defaults. */
    public static final class Builder {
        private String name;
        private DiscoveryType type;
        private String edsServiceName;
        private LbPolicy lbPolicy;
        private LbConfig lbConfig;
        private Duration connectTimeout;
        private CircuitBreakers circuitBreakers;
        private OutlierDetection outlierDetection;
        private CommonLbConfig commonLbConfig;
        private SocketAddress upstreamBindAddress;
        private ClusterLoadAssignment loadAssignment;
        private Duration dnsRefreshRate;
        private DnsLookupFamily dnsLookupFamily;
        private Duration cleanupInterval;
        private boolean http2;
        private boolean useDownstreamProtocol;
        private Metadata metadata;
        private CommonHttpProtocolOptions commonHttpProtocolOptions;
        private UpstreamTlsContext tls;
        private String tlsNotReady;
        private TcpKeepalive tcpKeepalive;
        private List<TransportSocketMatch> transportSocketMatches;
        private boolean respectDnsTtl;
        private Http2ProtocolOptions http2ProtocolOptions;
        private Duration dnsJitter;
        private List<SocketAddress> extraSourceAddresses;
        private String altStatName;
        private HealthCheck healthCheck;
        private boolean ignoreHealthOnHostRemoval;
        private boolean http1Trailers;
        private RefreshRate dnsFailureRefreshRate;

        private Builder(String name, DiscoveryType type) {
            this.name = name;
            this.type = type;
        }

        /** Sets {@code edsServiceName}; by default the cluster's own name. */
        public Builder edsServiceName(String value) {
            this.edsServiceName = value;
            return this;
        }

        /** Sets {@code lbPolicy}; by default ROUND_ROBIN. */
        public Builder lbPolicy(LbPolicy value) {
            this.lbPolicy = value;
            return this;
        }

        /** Sets {@code lbConfig}; by default the policy's defaults. */
        public Builder lbConfig(LbConfig value) {
            this.lbConfig = value;
            return this;
        }

        /** Sets {@code connectTimeout}; by default {@link #DEFAULT_CONNECT_TIMEOUT}. */
        public Builder connectTimeout(Duration value) {
            this.connectTimeout = value;
            return this;
        }

        /** Sets {@code circuitBreakers}; by default {@link CircuitBreakers#DEFAULTS}. */
        public Builder circuitBreakers(CircuitBreakers value) {
            this.circuitBreakers = value;
            return this;
        }

        /** Sets {@code outlierDetection}; by default none. */
        public Builder outlierDetection(OutlierDetection value) {
            this.outlierDetection = value;
            return this;
        }

        /** Sets {@code commonLbConfig}; by default {@link CommonLbConfig#DEFAULTS}. */
        public Builder commonLbConfig(CommonLbConfig value) {
            this.commonLbConfig = value;
            return this;
        }

        /** Sets {@code upstreamBindAddress}; by default any local address. */
        public Builder upstreamBindAddress(SocketAddress value) {
            this.upstreamBindAddress = value;
            return this;
        }

        /** Sets {@code loadAssignment}; by default none (EDS, or no hosts). */
        public Builder loadAssignment(ClusterLoadAssignment value) {
            this.loadAssignment = value;
            return this;
        }

        /** Sets {@code dnsRefreshRate}; by default 5 s. */
        public Builder dnsRefreshRate(Duration value) {
            this.dnsRefreshRate = value;
            return this;
        }

        /** Sets {@code dnsLookupFamily}; by default AUTO. */
        public Builder dnsLookupFamily(DnsLookupFamily value) {
            this.dnsLookupFamily = value;
            return this;
        }

        /** Sets {@code cleanupInterval}; by default 5 s. */
        public Builder cleanupInterval(Duration value) {
            this.cleanupInterval = value;
            return this;
        }

        /** Sets {@code http2}; by default HTTP/1.1. */
        public Builder http2(boolean value) {
            this.http2 = value;
            return this;
        }

        /** Sets {@code useDownstreamProtocol}; by default off. */
        public Builder useDownstreamProtocol(boolean value) {
            this.useDownstreamProtocol = value;
            return this;
        }

        /** Sets {@code metadata}; by default empty. */
        public Builder metadata(Metadata value) {
            this.metadata = value;
            return this;
        }

        /** Sets {@code commonHttpProtocolOptions}; by default {@link CommonHttpProtocolOptions#DEFAULTS}. */
        public Builder commonHttpProtocolOptions(CommonHttpProtocolOptions value) {
            this.commonHttpProtocolOptions = value;
            return this;
        }

        /** Sets {@code tls}; by default plain text. */
        public Builder tls(UpstreamTlsContext value) {
            this.tls = value;
            return this;
        }

        /** Sets {@code tlsNotReady}; by default null (the cluster's TLS, if any, is ready). */
        public Builder tlsNotReady(String value) {
            this.tlsNotReady = value;
            return this;
        }

        /** Sets {@code tcpKeepalive}; by default none. */
        public Builder tcpKeepalive(TcpKeepalive value) {
            this.tcpKeepalive = value;
            return this;
        }

        /** Sets {@code transportSocketMatches}; by default none. */
        public Builder transportSocketMatches(List<TransportSocketMatch> value) {
            this.transportSocketMatches = value;
            return this;
        }

        /** Sets {@code respectDnsTtl}; by default off. */
        public Builder respectDnsTtl(boolean value) {
            this.respectDnsTtl = value;
            return this;
        }

        /** Sets {@code http2ProtocolOptions}; by default {@link Http2ProtocolOptions#DEFAULTS}. */
        public Builder http2ProtocolOptions(Http2ProtocolOptions value) {
            this.http2ProtocolOptions = value;
            return this;
        }

        /** Sets {@code dnsJitter}; by default none. */
        public Builder dnsJitter(Duration value) {
            this.dnsJitter = value;
            return this;
        }

        /** Sets {@code healthCheck}; by default none. */
        public Builder healthCheck(HealthCheck value) {
            this.healthCheck = value;
            return this;
        }

        /** Sets {@code ignoreHealthOnHostRemoval}; by default off. */
        public Builder ignoreHealthOnHostRemoval(boolean value) {
            this.ignoreHealthOnHostRemoval = value;
            return this;
        }

        /** Sets {@code http1Trailers}; by default off, as Envoy's. */
        public Builder http1Trailers(boolean value) {
            this.http1Trailers = value;
            return this;
        }

        /** Sets {@code dnsFailureRefreshRate}; by default none (a failed resolution waits the refresh rate). */
        public Builder dnsFailureRefreshRate(RefreshRate value) {
            this.dnsFailureRefreshRate = value;
            return this;
        }

        /** The cluster, validated by the canonical constructor. */
        public Cluster build() {
            return new Cluster(name, type, edsServiceName, lbPolicy, lbConfig, connectTimeout, circuitBreakers,
                    outlierDetection, commonLbConfig, upstreamBindAddress, loadAssignment, dnsRefreshRate,
                    dnsLookupFamily, cleanupInterval, http2, useDownstreamProtocol, metadata, commonHttpProtocolOptions,
                    tls, tcpKeepalive, transportSocketMatches, respectDnsTtl, http2ProtocolOptions, dnsJitter,
                    extraSourceAddresses, altStatName, healthCheck, ignoreHealthOnHostRemoval, http1Trailers,
                    dnsFailureRefreshRate, tlsNotReady);
        }
    }

    /**
     * The back-off of a DNS cluster's resolutions after failed ones ({@code Cluster.RefreshRate}), as Envoy's jittered
     * exponential back-off: the n-th resolution in a row that failed is followed by a random wait in
     * [0, min(base &times; 2^(n-1), max)); a resolution in which a lookup succeeded starts it over.
     *
     * @param baseInterval the first interval, above 1 ms
     * @param maxInterval the largest interval, at least {@code baseInterval}; null for 10 &times; {@code baseInterval}
     */
    public record RefreshRate(Duration baseInterval, Duration maxInterval) {
        public RefreshRate {
            Checks.nonNull(baseInterval, "dns_failure_refresh_rate.base_interval");
            Checks.check(baseInterval.compareTo(Duration.ofMillis(1)) > 0, "dns_failure_refresh_rate.base_interval",
                    baseInterval, "> 1ms");
            maxInterval = maxInterval == null ? baseInterval.multipliedBy(10) : maxInterval;
            Checks.check(maxInterval.compareTo(Duration.ofMillis(1)) > 0, "dns_failure_refresh_rate.max_interval",
                    maxInterval, "> 1ms");
            Checks.check(maxInterval.compareTo(baseInterval) >= 0, "dns_failure_refresh_rate.max_interval",
                    maxInterval, ">= base_interval " + baseInterval);
        }
    }

    /** The name EDS knows this cluster's endpoints by. */
    public String serviceName() {
        return edsServiceName.isEmpty() ? name : edsServiceName;
    }

    private static LbConfig defaultLbConfig(LbPolicy policy) {
        return switch (policy) {
            case LEAST_REQUEST -> LbConfig.LeastRequest.DEFAULTS;
            case RING_HASH -> LbConfig.RingHash.DEFAULTS;
            case MAGLEV -> LbConfig.Maglev.DEFAULTS;
            case ROUND_ROBIN, RANDOM, CLUSTER_PROVIDED -> new LbConfig.Default();
        };
    }

    private static boolean matches(LbPolicy policy, LbConfig config) {
        if (config instanceof LbConfig.LeastRequest) {
            return policy == LbPolicy.LEAST_REQUEST;
        } else if (config instanceof LbConfig.RoundRobin) {
            return policy == LbPolicy.ROUND_ROBIN;
        } else if (config instanceof LbConfig.RingHash) {
            return policy == LbPolicy.RING_HASH;
        } else if (config instanceof LbConfig.Maglev) {
            return policy == LbPolicy.MAGLEV;
        } else if (config instanceof LbConfig.OriginalDst) {
            return policy == LbPolicy.CLUSTER_PROVIDED;
        }
        return policy != LbPolicy.LEAST_REQUEST && policy != LbPolicy.RING_HASH && policy != LbPolicy.MAGLEV;
    }
}
