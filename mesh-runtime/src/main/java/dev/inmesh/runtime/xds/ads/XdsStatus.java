package dev.inmesh.runtime.xds.ads;

import java.time.Instant;
import java.util.List;

/**
 * What the ADS client knows of its stream, at one moment: the server, and per resource type the version ACKed, the
 * last nonce, the last NACK and its error. Immutable; {@code /debug/xds_status} serves it as JSON
 * ({@link XdsStatusJson}) and {@code inmesh proxy-status} prints it.
 *
 * @param server the server in use, or while disconnected the next to try ({@code host:port})
 * @param connected whether a stream to it is open
 * @param connectedSince when the stream opened, or null
 * @param lastError why the last stream ended or failed to open, or empty
 * @param ready whether the first complete configuration has been applied
 * @param types one entry per resource type, in Envoy's order (Cluster, ClusterLoadAssignment, Listener,
 *              RouteConfiguration), then Secret once SDS secrets are asked for on the ADS stream
 *              ({@code sds_config: {ads: {}}})
 */
public record XdsStatus(String server, boolean connected, Instant connectedSince, String lastError, boolean ready,
                        List<TypeStatus> types) {
    public XdsStatus {
        server = server == null ? "" : server;
        lastError = lastError == null ? "" : lastError;
        types = List.copyOf(types);
    }

    /** A type's entry by its kind ({@code Listener}), or null. */
    public TypeStatus type(String kind) {
        for (TypeStatus t : types) {
            if (t.type().equals(kind)) {
                return t;
            }
        }
        return null;
    }

    /**
     * One resource type.
     *
     * @param type the kind, such as {@code RouteConfiguration}
     * @param typeUrl the type URL
     * @param ackedVersion the version_info of the last response ACKed (over delta xDS its system_version_info), or
     *                     empty
     * @param nonce the nonce of the last response received, or empty
     * @param lastUpdated when the last response was received, or null
     * @param lastNackVersion the version_info of the last response NACKed (over delta, its system_version_info), or
     *                        empty
     * @param lastNackError its error_detail message (each bad resource by name and field), or empty
     * @param lastNackAt when it was NACKed, or null
     * @param resources how many resources of the type are held (serving or ready to serve)
     * @param wildcard whether the subscription is a wildcard (LDS and CDS)
     * @param subscribed the names subscribed to (RDS, EDS and Secret), sorted
     */
    public record TypeStatus(String type, String typeUrl, String ackedVersion, String nonce, Instant lastUpdated,
                             String lastNackVersion, String lastNackError, Instant lastNackAt, int resources,
                             boolean wildcard, List<String> subscribed) {
        public TypeStatus {
            ackedVersion = ackedVersion == null ? "" : ackedVersion;
            nonce = nonce == null ? "" : nonce;
            lastNackVersion = lastNackVersion == null ? "" : lastNackVersion;
            lastNackError = lastNackError == null ? "" : lastNackError;
            subscribed = List.copyOf(subscribed);
        }

        /** Whether the last response of this type was NACKed (and not followed by an ACK since). */
        public boolean nacked() {
            return !lastNackError.isEmpty() && (lastUpdated == null || lastNackAt == null
                    || !lastNackAt.isBefore(lastUpdated));
        }
    }
}
