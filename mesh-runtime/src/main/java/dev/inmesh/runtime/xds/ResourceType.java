package dev.inmesh.runtime.xds;

/** The four xDS resource types Inmesh consumes, with their v3 type URLs, in Envoy's request order for ADS. */
public enum ResourceType {
    CLUSTER("Cluster", "type.googleapis.com/envoy.config.cluster.v3.Cluster"),
    ENDPOINT("ClusterLoadAssignment", "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"),
    LISTENER("Listener", "type.googleapis.com/envoy.config.listener.v3.Listener"),
    ROUTE("RouteConfiguration", "type.googleapis.com/envoy.config.route.v3.RouteConfiguration");

    private final String kind;
    private final String typeUrl;

    ResourceType(String kind, String typeUrl) {
        this.kind = kind;
        this.typeUrl = typeUrl;
    }

    /** The resource's kind as Envoy names it, such as {@code RouteConfiguration}. */
    public String kind() {
        return kind;
    }

    /**
     * How a message about one resource of this type begins, {@code Kind "name": }: what a NACK, a config read's error
     * and the config dump's error state say of it.
     */
    public String about(String name) {
        return kind + " \"" + name + "\": ";
    }

    public String typeUrl() {
        return typeUrl;
    }

    /** The type for a type URL, or null. */
    public static ResourceType ofTypeUrl(String typeUrl) {
        for (ResourceType t : values()) {
            if (t.typeUrl.equals(typeUrl)) {
                return t;
            }
        }
        return null;
    }
}
