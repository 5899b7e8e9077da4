package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.extauthz.NetworkExtAuthz;
import dev.inmesh.api.config.ratelimit.NetworkLocalRateLimit;
import dev.inmesh.api.config.rbac.NetworkRbac;
import java.time.Duration;
import java.util.List;

/**
 * A filter chain: when it applies, and the network filter that ends it.
 *
 * @param name the chain's name (Istio names them, such as {@code 0.0.0.0_9080} or {@code inbound|9080||})
 * @param match when it applies
 * @param filter the terminal network filter
 * @param tls whether the chain terminates TLS (its transport socket is TLS)
 * @param tlsContext the TLS the chain terminates, or null: without TLS, or (with {@code tls}) when its certificates
 *     are secrets Inmesh has no source for (Istio's SDS {@code default} and {@code ROOTCA}), whose connections are
 *     closed
 * @param transportSocketConnectTimeout how long a connection may take to finish its TLS handshake before it is
 *     closed (Envoy's {@code transport_socket_connect_timeout}); null or zero: no limit, as Envoy's default
 * @param rbac the RBAC network filters before the terminal one, in chain order ({@code envoy.filters.network.rbac},
 *     which istiod puts on the TCP chains of {@code virtualInbound} for an AuthorizationPolicy); empty for none
 * @param extAuthz the external authorization network filters before the terminal one
 *     ({@code envoy.filters.network.ext_authz}, which istiod puts there for a CUSTOM policy of a gRPC provider), each
 *     placed among the RBAC ones by {@link NetworkExtAuthz#after}; empty for none
 * @param tcpReportingDuration how often Istio's TCP metrics add a connection's bytes while it lasts: the
 *     {@code tcp_reporting_duration} of the chain's Istio stats network filter ({@code istio.stats}); null when it
 *     sets none (Istio's default, 5 s)
 * @param istioStats the metric overrides of the chain's Istio stats network filter (Istio's TCP metrics):
 *     {@link IstioStats#NONE} when its filter overrides nothing, null when it has none
 * @param localRateLimit the local rate limit network filters before the terminal one
 *     ({@code envoy.filters.network.local_ratelimit}, which Istio users add with an EnvoyFilter), each placed among
 *     the RBAC and external authorization ones by {@link NetworkLocalRateLimit#after}; empty for none
 */
public record FilterChain(String name, FilterChainMatch match, NetworkFilter filter, boolean tls,
                          DownstreamTlsContext tlsContext, Duration transportSocketConnectTimeout,
                          List<NetworkRbac> rbac, List<NetworkExtAuthz> extAuthz, Duration tcpReportingDuration,
                          IstioStats istioStats, List<NetworkLocalRateLimit> localRateLimit) {
    public FilterChain {
        rbac = Checks.list(rbac, "filters");
        extAuthz = Checks.list(extAuthz, "filters");
        localRateLimit = Checks.list(localRateLimit, "filters");
        name = name == null ? "" : name;
        match = match == null ? FilterChainMatch.ANY : match;
        Checks.nonNull(filter, "filters");
        Checks.check(tls || tlsContext == null, "transport_socket", "a TLS context on a chain without TLS",
                "tls set with a TLS context");
        transportSocketConnectTimeout = transportSocketConnectTimeout == null ? Duration.ZERO
                : transportSocketConnectTimeout;
        Checks.check(!transportSocketConnectTimeout.isNegative(), "transport_socket_connect_timeout",
                transportSocketConnectTimeout, ">= 0");
        Checks.check(tcpReportingDuration == null || tcpReportingDuration.compareTo(Duration.ofMillis(1)) >= 0,
                "filters.tcp_reporting_duration", tcpReportingDuration, ">= 1ms");
    }

    /**
     * A chain with just its match (null for any) and terminal filter: plain text, its handshake not limited in time,
     * with no RBAC, external authorization, local rate limit or Istio stats network filter before the terminal one.
     */
    public static FilterChain of(String name, FilterChainMatch match, NetworkFilter filter) {
        return new FilterChain(name, match, filter, false, null, null, null, null, null, null, null);
    }

    /** This chain with RBAC network filters, in order, before its terminal filter; none by default. */
    public FilterChain withRbac(List<NetworkRbac> filters) {
        return new FilterChain(name, match, filter, tls, tlsContext, transportSocketConnectTimeout, filters, extAuthz,
                tcpReportingDuration, istioStats, localRateLimit);
    }

    /** This chain with local rate limit network filters, in order, before its terminal filter; none by default. */
    public FilterChain withLocalRateLimit(List<NetworkLocalRateLimit> filters) {
        return new FilterChain(name, match, filter, tls, tlsContext, transportSocketConnectTimeout, rbac, extAuthz,
                tcpReportingDuration, istioStats, filters);
    }

    /**
     * Whether the chain has network filters that decide on each connection before its terminal filter: RBAC,
     * external authorization or local rate limit ones.
     */
    public boolean checksConnections() {
        return !rbac.isEmpty() || !extAuthz.isEmpty() || !localRateLimit.isEmpty();
    }
}
