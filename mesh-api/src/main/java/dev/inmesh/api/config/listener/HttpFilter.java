package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.extauthz.ExtAuthz;
import dev.inmesh.api.config.jwt.JwtAuthentication;
import dev.inmesh.api.config.ratelimit.GlobalRateLimit;
import dev.inmesh.api.config.rbac.Rbac;
import dev.inmesh.api.config.route.FaultInjection;
import dev.inmesh.api.config.route.LocalRateLimit;
import dev.inmesh.api.config.route.StatefulSession;

/**
 * One HTTP filter of a connection manager, by name and config type. Inmesh runs the router itself; other filters
 * are accepted only where they change nothing that Inmesh does not do (the parser decides and says so), and Envoy's
 * fault filter ({@code envoy.filters.http.fault}), CORS filter ({@code envoy.filters.http.cors}), RBAC filter
 * ({@code envoy.filters.http.rbac}), local rate limit filter ({@code envoy.filters.http.local_ratelimit}) and JWT
 * authentication filter ({@code envoy.filters.http.jwt_authn}), external authorization filter
 * ({@code envoy.filters.http.ext_authz}) and global rate limit filter ({@code envoy.filters.http.ratelimit}), which
 * the router runs, and the gRPC-Web filter
 * ({@code envoy.filters.http.grpc_web}), which the standalone proxy's connection manager runs, and the stateful
 * session filter ({@code envoy.filters.http.stateful_session}), which the router runs when it picks a host, and the
 * compressor filter ({@code envoy.filters.http.compressor}), which gzips the responses of {@code mesh.inbound} and of
 * the standalone proxy's connection managers, and the Lua filter ({@code envoy.filters.http.lua}), whose scripts run
 * right before the router on each path, and the buffer filter ({@code envoy.filters.http.buffer}), which holds a
 * request's body whole right before the Lua filters, and the header mutation filter
 * ({@code envoy.filters.http.header_mutation}), whose request mutations apply right before the buffer and Lua filters
 * and response mutations right after them.
 *
 * @param name the filter's name, by which routes name their per-filter config
 * @param typeUrl the config type, or empty
 * @param fault for a fault filter that runs, its config ({@link FaultInjection#NONE} when empty, as Istio writes it);
 *     null for any other filter
 * @param cors whether it is a CORS filter that runs, applying the routes' and virtual hosts' CORS policies
 * @param rbac for an RBAC filter that runs, its config; null for any other filter
 * @param grpcWeb whether it is a gRPC-Web filter that runs, translating gRPC-Web requests to gRPC and their
 *     responses back
 * @param localRateLimit for a local rate limit filter that runs, its own config (which a virtual host's or route's
 *     replaces); null for any other filter
 * @param jwtAuthn for a JWT authentication filter that runs, its config; null for any other filter
 * @param extAuthz for an external authorization filter that runs, its config; null for any other filter
 * @param globalRateLimit for a global rate limit filter that runs, its config; null for any other filter
 * @param statefulSession for a stateful session filter that runs, its own config (which a virtual host's or route's
 *     {@code StatefulSessionPerRoute} replaces or disables; {@link StatefulSession#EMPTY} as Istio writes it); null
 *     for any other filter
 * @param grpcMessageCounts whether it is a gRPC statistics filter ({@code envoy.filters.http.grpc_stats}) that emits
 *     its filter state ({@code emit_filter_state}, as istiod writes it), from which Istio's stats count the gRPC
 *     messages of each request ({@code istio_request_messages_total}, {@code istio_response_messages_total})
 * @param noHostHeaderFallback whether it is Istio's stats filter ({@code istio.stats}) with
 *     {@code disable_host_header_fallback} (as istiod writes it on its sidecars' inbound chains): a request whose
 *     cluster names no service is then not labelled with its Host as {@code destination_service}
 * @param peerMetadataSkipExternal whether it is Istio's peer metadata filter ({@code istio.metadata_exchange}, type
 *     {@code io.istio.http.peer_metadata.Config}) whose {@code upstream_propagation} sends Istio's headers with
 *     {@code skip_external_clusters} (istiod's, for meshConfig's {@code metadataExchangeHeaders} mode
 *     {@code IN_MESH}): {@code x-envoy-peer-metadata} and {@code x-envoy-peer-metadata-id} then do not go to
 *     {@code PassthroughCluster} nor to a cluster whose {@code istio} metadata says {@code external: true}
 * @param istioStats for Istio's stats filter ({@code istio.stats}) that runs, its metric overrides (what Istio's
 *     metrics drop, which labels they are recorded without; {@link IstioStats#NONE} for one that overrides nothing,
 *     such as Istio's older Wasm form); null for any other filter
 * @param compressor for a compressor filter that runs, its config; null for any other filter
 * @param lua for a Lua filter that runs, its config; null for any other filter
 * @param buffer for a buffer filter that runs, its config; null for any other filter
 * @param headerMutation for a header mutation filter that runs, its config; null for any other filter
 */
public record HttpFilter(String name, String typeUrl, FaultInjection fault, boolean cors, Rbac rbac,
                         boolean grpcWeb, LocalRateLimit localRateLimit, JwtAuthentication jwtAuthn,
                         ExtAuthz extAuthz, GlobalRateLimit globalRateLimit, StatefulSession statefulSession,
                         boolean grpcMessageCounts, boolean noHostHeaderFallback, boolean peerMetadataSkipExternal,
                         IstioStats istioStats, Compressor compressor, Lua lua, Buffer buffer,
                         HeaderMutation headerMutation) {
    public HttpFilter {
        Checks.nonEmpty(name, "http_filters.name");
        typeUrl = typeUrl == null ? "" : typeUrl;
    }

    /**
     * A filter with only its name and type URL: one that needs no config of its own (the router), or whose config a
     * with-method below adds. Every filter-specific field is unset, as for a filter of another type.
     */
    public static HttpFilter of(String name, String typeUrl) {
        return new HttpFilter(name, typeUrl, null, false, null, false, null, null, null, null, null, false, false,
                false, null, null, null, null, null);
    }

    /** This filter as a fault filter with {@code config}; null (the default) for another type. */
    public HttpFilter withFault(FaultInjection config) {
        return new HttpFilter(name, typeUrl, config, cors, rbac, grpcWeb, localRateLimit, jwtAuthn, extAuthz,
                globalRateLimit, statefulSession, grpcMessageCounts, noHostHeaderFallback, peerMetadataSkipExternal,
                istioStats, compressor, lua, buffer, headerMutation);
    }

    /** This filter as the CORS filter, which has no config of its own; off by default. */
    public HttpFilter withCors(boolean runs) {
        return new HttpFilter(name, typeUrl, fault, runs, rbac, grpcWeb, localRateLimit, jwtAuthn, extAuthz,
                globalRateLimit, statefulSession, grpcMessageCounts, noHostHeaderFallback, peerMetadataSkipExternal,
                istioStats, compressor, lua, buffer, headerMutation);
    }

    /** This filter as an RBAC filter with {@code config}; null (the default) for another type. */
    public HttpFilter withRbac(Rbac config) {
        return new HttpFilter(name, typeUrl, fault, cors, config, grpcWeb, localRateLimit, jwtAuthn, extAuthz,
                globalRateLimit, statefulSession, grpcMessageCounts, noHostHeaderFallback, peerMetadataSkipExternal,
                istioStats, compressor, lua, buffer, headerMutation);
    }

    /** This filter as a Lua filter with {@code config}; null (the default) for another type. */
    public HttpFilter withLua(Lua config) {
        return new HttpFilter(name, typeUrl, fault, cors, rbac, grpcWeb, localRateLimit, jwtAuthn, extAuthz,
                globalRateLimit, statefulSession, grpcMessageCounts, noHostHeaderFallback, peerMetadataSkipExternal,
                istioStats, compressor, config, buffer, headerMutation);
    }

    /** This filter as a buffer filter with {@code config}; null (the default) for another type. */
    public HttpFilter withBuffer(Buffer config) {
        return new HttpFilter(name, typeUrl, fault, cors, rbac, grpcWeb, localRateLimit, jwtAuthn, extAuthz,
                globalRateLimit, statefulSession, grpcMessageCounts, noHostHeaderFallback, peerMetadataSkipExternal,
                istioStats, compressor, lua, config, headerMutation);
    }

    /** This filter as a header mutation filter with {@code config}; null (the default) for another type. */
    public HttpFilter withHeaderMutation(HeaderMutation config) {
        return new HttpFilter(name, typeUrl, fault, cors, rbac, grpcWeb, localRateLimit, jwtAuthn, extAuthz,
                globalRateLimit, statefulSession, grpcMessageCounts, noHostHeaderFallback, peerMetadataSkipExternal,
                istioStats, compressor, lua, buffer, config);
    }
}
