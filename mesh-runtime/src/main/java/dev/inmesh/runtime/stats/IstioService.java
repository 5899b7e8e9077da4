package dev.inmesh.runtime.stats;

import dev.inmesh.api.config.core.Metadata;
import java.util.List;
import java.util.Map;

/**
 * The first service of a cluster's {@code istio} metadata ({@code services: [{host, name, namespace}]}), which
 * Istio's stats take for the {@code destination_service*} labels; each part null when the metadata leaves it out.
 */
public record IstioService(String host, String name, String namespace) {

    /** The first service of {@code metadata}'s {@code istio.services}, or null when there is none. */
    public static IstioService of(Metadata metadata) {
        Object services = metadata == null ? null : metadata.get("istio", "services");
        if (services instanceof List<?> list && !list.isEmpty() && list.get(0) instanceof Map<?, ?> m) {
            return new IstioService(str(m.get("host")), str(m.get("name")), str(m.get("namespace")));
        }
        return null;
    }

    /**
     * The name, else the host's first label (the part before its first dot), as Istio's stats fall back on either side
     * ({@code istio_stats.cc}, {@code populatePeerInfo}); null when neither is there.
     */
    public String nameOrHostLabel() {
        return name != null ? name : host == null ? null : host.split("\\.", 2)[0];
    }

    private static String str(Object o) {
        return o == null ? null : o.toString();
    }
}
