package dev.inmesh.api.config.cluster;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.Metadata;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * One of a cluster's {@code transport_socket_matches}, as Envoy's {@code Cluster.TransportSocketMatch}: the transport
 * socket of the hosts whose {@code envoy.transport_socket_match} filter metadata has every value of {@code match}.
 * A host takes the first match, in the cluster's order, that applies to it; a host no match applies to takes the
 * cluster's own transport socket ({@link Cluster#tls()}). Istio's outbound clusters carry two: {@code tlsMode-istio}
 * (mTLS, for endpoints labelled {@code tlsMode: istio}) and {@code tlsMode-disabled} (an empty match, plaintext).
 *
 * @param name the match's name
 * @param match the values a host's {@code envoy.transport_socket_match} metadata must have, each key present with an
 *     equal value (plain Java values, as {@link Metadata} holds them); empty: every host
 * @param tls TLS to the hosts it applies to, or null for plaintext ({@code raw_buffer})
 * @param notReady why the match's TLS cannot be had here, or null when it can: it needs Istio's own SDS secrets
 *     ({@code default}, {@code ROOTCA}) and Inmesh has no workload identity to serve them, or its SDS secret had not
 *     arrived within its {@code initial_fetch_timeout}; the connections of the hosts it applies to then fail, as
 *     Envoy's to hosts whose secret SDS has not supplied (never in plaintext)
 */
public record TransportSocketMatch(String name, Map<String, Object> match, UpstreamTlsContext tls, String notReady) {
    /** The filter metadata of an endpoint that the matches are compared with. */
    public static final String METADATA_FILTER = "envoy.transport_socket_match";

    public TransportSocketMatch {
        name = name == null ? "" : name;
        // a copy that keeps null values (a match on a null value is a match on a key whose value is null)
        match = match == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(match));
        Checks.check(notReady == null || tls == null, "transport_socket", "a match not ready with TLS",
                "no TLS on a match that is not ready");
    }

    /** A match that applies. */
    public TransportSocketMatch(String name, Map<String, Object> match, UpstreamTlsContext tls) {
        this(name, match, tls, null);
    }

    /**
     * Whether this match applies to a host of that metadata: every value of {@code match} is in
     * the metadata's {@code envoy.transport_socket_match} (an empty match applies to every host).
     */
    public boolean appliesTo(Metadata metadata) {
        if (match.isEmpty()) {
            return true;
        }
        Map<String, Object> values = metadata == null ? null : metadata.filterMetadata().get(METADATA_FILTER);
        if (values == null) {
            return false;
        }
        for (Map.Entry<String, Object> e : match.entrySet()) {
            if (!values.containsKey(e.getKey()) || !Objects.equals(values.get(e.getKey()), e.getValue())) {
                return false;
            }
        }
        return true;
    }
}
