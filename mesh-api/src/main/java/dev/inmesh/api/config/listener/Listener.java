package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.SocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * A listener ({@code listener.v3.Listener}, LDS).
 *
 * @param name the name (Istio's {@code 0.0.0.0_9080}, {@code virtualOutbound}, {@code virtualInbound})
 * @param address where it listens
 * @param useOriginalDst whether connections are handed to the listener bound to their original destination
 * @param trafficDirection inbound or outbound
 * @param filterChains the chains, chosen by {@link FilterChainMatch}
 * @param defaultFilterChain the chain for connections no chain matches, or null
 * @param bindToPort whether the listener binds its own socket (Istio's per-port outbound listeners do not)
 * @param listenerFilters the listener filters by name, in the order they run (original destination, PROXY protocol,
 *     TLS and HTTP inspectors)
 * @param listenerFiltersTimeout how long listener filters may wait for the first bytes
 * @param continueOnListenerFiltersTimeout whether a connection continues when they time out
 * @param transparent whether the socket is {@code IP_TRANSPARENT}, as TPROXY needs (Istio's inbound listener in
 *     TPROXY mode)
 * @param listenerFiltersDisabled each listener filter's {@code filter_disabled} by the filter's name: the filter does
 *     not run on a connection the predicate matches (a filter not in the map always runs)
 * @param perConnectionBufferLimitBytes the {@code per_connection_buffer_limit_bytes} of the listener's connections,
 *     which is also their connection manager's request buffer limit: a request keeps at most this much of its body
 *     for retries and mirrors (less when its route or virtual host says so); null for Envoy's default,
 *     {@link #DEFAULT_PER_CONNECTION_BUFFER_LIMIT_BYTES}, and 0 for no limit of the listener's own
 * @param maxConnectionsToAcceptPerSocketEvent {@code max_connections_to_accept_per_socket_event}: how many pending
 *     connections a listener that binds its socket accepts each time the socket is ready (the rest wait for the next
 *     round of the event loop); null, Envoy's default, for all that are pending. Istio 1.28 and later write 1 on the
 *     sidecar's listeners that bind ({@code virtualOutbound}, {@code virtualInbound})
 * @param additionalAddresses {@code additional_addresses}: where else the listener listens, each address with the
 *     same filter chains and listener filters as {@link #address} (istiod's dual-stack listeners also listen on
 *     {@code ::}); empty for none
 * @param drainType Envoy's {@code drain_type}: what drains the listener's connections ({@link DrainType})
 * @param accessLogs the listener's own {@code access_log} (its file, stdout and stderr loggers): the standalone proxy
 *     writes a connection that no filter chain takes there (Istio's listeners log those, flagged {@code NR}); empty
 *     for none
 * @param proxyProtocol the configuration of its PROXY protocol listener filter ({@code listenerFilters} names it, in
 *     the order it runs), or null when it has none
 * @param originalSrc the configuration of its original source listener filter ({@code listenerFilters} names it), or
 *     null when it has none; a listener that names the filter without one gets {@link OriginalSrc#DEFAULT}
 */
public record Listener(String name, SocketAddress address, boolean useOriginalDst, TrafficDirection trafficDirection,
                       List<FilterChain> filterChains, FilterChain defaultFilterChain, boolean bindToPort,
                       List<String> listenerFilters, Duration listenerFiltersTimeout,
                       boolean continueOnListenerFiltersTimeout, boolean transparent,
                       Map<String, ListenerFilterPredicate> listenerFiltersDisabled,
                       Long perConnectionBufferLimitBytes, Integer maxConnectionsToAcceptPerSocketEvent,
                       List<SocketAddress> additionalAddresses, DrainType drainType,
                       List<AccessLogConfig> accessLogs, ProxyProtocol proxyProtocol, OriginalSrc originalSrc) {
    /** The name of the PROXY protocol listener filter. */
    public static final String PROXY_PROTOCOL = "envoy.filters.listener.proxy_protocol";
    /** The name of the original source listener filter. */
    public static final String ORIGINAL_SRC = "envoy.filters.listener.original_src";
    /** Envoy's {@code per_connection_buffer_limit_bytes} when a listener sets none: 1 MiB. */
    public static final long DEFAULT_PER_CONNECTION_BUFFER_LIMIT_BYTES = 1024 * 1024;

    public Listener {
        Checks.nonEmpty(name, "name");
        Checks.nonNull(address, "address");
        trafficDirection = trafficDirection == null ? TrafficDirection.UNSPECIFIED : trafficDirection;
        filterChains = Checks.list(filterChains, "filter_chains");
        Checks.check(!filterChains.isEmpty() || defaultFilterChain != null, "filter_chains", "[]",
                "at least one filter chain or a default filter chain");
        listenerFilters = Checks.list(listenerFilters, "listener_filters");
        listenerFiltersTimeout = listenerFiltersTimeout == null ? Duration.ofSeconds(15) : listenerFiltersTimeout;
        listenerFiltersDisabled = Checks.map(listenerFiltersDisabled);
        Checks.uint32OrNull(perConnectionBufferLimitBytes, "per_connection_buffer_limit_bytes");
        Checks.check(maxConnectionsToAcceptPerSocketEvent == null || maxConnectionsToAcceptPerSocketEvent > 0,
                "max_connections_to_accept_per_socket_event", String.valueOf(maxConnectionsToAcceptPerSocketEvent),
                "> 0");
        additionalAddresses = Checks.list(additionalAddresses, "additional_addresses");
        drainType = drainType == null ? DrainType.DEFAULT : drainType;
        accessLogs = accessLogs == null ? List.of() : List.copyOf(accessLogs);
        Checks.check((proxyProtocol != null) == listenerFilters.contains(PROXY_PROTOCOL), "listener_filters",
                listenerFilters, "the PROXY protocol filter with its configuration, or neither");
        if (originalSrc == null && listenerFilters.contains(ORIGINAL_SRC)) {
            originalSrc = OriginalSrc.DEFAULT;
        }
        Checks.check(originalSrc == null || listenerFilters.contains(ORIGINAL_SRC), "listener_filters",
                listenerFilters, "the original source filter with its configuration");
    }

    /**
     * Envoy's {@code drain_type}: {@code DEFAULT} drains the listener's connections while the server fails its
     * health checks ({@code /healthcheck/fail}) as well as when the listener is changed or removed;
     * {@code MODIFY_ONLY} only then.
     */
    public enum DrainType { DEFAULT, MODIFY_ONLY }

    /** Every address the listener listens on: {@link #address} first, then its {@link #additionalAddresses}. */
    public List<SocketAddress> addresses() {
        if (additionalAddresses.isEmpty()) {
            return List.of(address);
        }
        List<SocketAddress> all = new java.util.ArrayList<>(1 + additionalAddresses.size());
        all.add(address);
        all.addAll(additionalAddresses);
        return List.copyOf(all);
    }

    /**
     * Whether the listener filter {@code name} runs on a connection to {@code destinationPort}: it is one of the
     * listener's filters and its {@code filter_disabled}, if any, does not match.
     */
    public boolean listenerFilterRuns(String name, int destinationPort) {
        if (!listenerFilters.contains(name)) {
            return false;
        }
        ListenerFilterPredicate disabled = listenerFiltersDisabled.get(name);
        return disabled == null || !disabled.matches(destinationPort);
    }

    /** The listener's filter chains in order, then its default chain when it has one. */
    public List<FilterChain> allFilterChains() {
        if (defaultFilterChain == null) {
            return filterChains;
        }
        List<FilterChain> all = new java.util.ArrayList<>(filterChains);
        all.add(defaultFilterChain);
        return all;
    }

    /**
     * A listener bound to its port with its filter chains (and a default chain, or null) and Envoy's defaults
     * otherwise: no original destination, no listener filters (their timeout 15 s), not transparent, the default
     * buffer limit and drain type, and no additional addresses or access logs.
     */
    public static Listener of(String name, SocketAddress address, TrafficDirection trafficDirection,
                              List<FilterChain> filterChains, FilterChain defaultFilterChain) {
        return new Listener(name, address, false, trafficDirection, filterChains, defaultFilterChain, true, null, null,
                false, false, null, null, null, null, null, null, null, null);
    }

    /** This listener with {@code use_original_dst}; off by default, as Envoy. */
    public Listener withUseOriginalDst(boolean on) {
        return new Listener(name, address, on, trafficDirection, filterChains, defaultFilterChain, bindToPort,
                listenerFilters, listenerFiltersTimeout, continueOnListenerFiltersTimeout, transparent,
                listenerFiltersDisabled, perConnectionBufferLimitBytes, maxConnectionsToAcceptPerSocketEvent,
                additionalAddresses, drainType, accessLogs, proxyProtocol, originalSrc);
    }

    /**
     * This listener with {@code per_connection_buffer_limit_bytes}; null (the default) means
     * {@link #DEFAULT_PER_CONNECTION_BUFFER_LIMIT_BYTES}.
     */
    public Listener withPerConnectionBufferLimitBytes(Long limit) {
        return new Listener(name, address, useOriginalDst, trafficDirection, filterChains, defaultFilterChain,
                bindToPort, listenerFilters, listenerFiltersTimeout, continueOnListenerFiltersTimeout, transparent,
                listenerFiltersDisabled, limit, maxConnectionsToAcceptPerSocketEvent, additionalAddresses, drainType,
                accessLogs, proxyProtocol, originalSrc);
    }
}
