package dev.inmesh.runtime.mesh;

import dev.inmesh.api.MeshOptions;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * Reads {@link MeshOptions} from smallrye-config: system properties, environment variables ({@code INMESH_*}) and
 * {@code application.properties} on the class path, keys under {@code inmesh.} (docs/configuration.md lists them).
 */
public final class MeshSettings {
    /** What smallrye-config's boolean converter reads as true, so that no value read today changes meaning. */
    private static final Set<String> TRUE_WORDS = Set.of("true", "1", "yes", "y", "on", "ja", "j", "si", "sim",
            "oui");
    private static final Set<String> FALSE_WORDS = Set.of("false", "0", "no", "n", "off");

    private MeshSettings() {}

    /** Options from the default sources. */
    public static MeshOptions fromConfiguration() {
        SmallRyeConfig config = new SmallRyeConfigBuilder().addDefaultSources().addDiscoveredSources().build();
        return from(config);
    }

    static MeshOptions from(SmallRyeConfig c) {
        MeshOptions o = new MeshOptions();
        str(c, "inmesh.workload.name").ifPresent(o::setWorkloadName);
        str(c, "inmesh.namespace").ifPresent(o::setNamespace);
        str(c, "inmesh.app").ifPresent(o::setApp);
        str(c, "inmesh.version").ifPresent(o::setVersion);
        str(c, "inmesh.cluster-id").ifPresent(o::setClusterId);
        str(c, "inmesh.pod.name").ifPresent(o::setPodName);
        str(c, "inmesh.pod.ip").ifPresent(o::setPodIp);
        str(c, "inmesh.config.file").ifPresent(o::setConfigFile);
        str(c, "inmesh.xds.address").ifPresent(o::setXdsAddress);
        str(c, "inmesh.xds.fallback-address").ifPresent(o::setXdsFallbackAddress);
        str(c, "inmesh.xds.ca-file").ifPresent(o::setXdsCaFile);
        str(c, "inmesh.xds.token-file").ifPresent(o::setXdsTokenFile);
        integer(c, "inmesh.xds.initial-fetch-timeout-seconds")
                .ifPresent(o::setXdsInitialFetchTimeoutSeconds);
        bool(c, "inmesh.xds.delta").ifPresent(o::setXdsDelta);
        str(c, "inmesh.identity.dir").ifPresent(o::setIdentityDir);
        str(c, "inmesh.admin.host").ifPresent(o::setAdminHost);
        integer(c, "inmesh.admin.port").ifPresent(o::setAdminPort);
        integer(c, "inmesh.http-proxy.port").ifPresent(o::setHttpProxyPort);
        bool(c, "inmesh.metrics.enabled").ifPresent(o::setMetricsEnabled);
        bool(c, "inmesh.access-log.enabled").ifPresent(o::setAccessLogEnabled);
        str(c, "inmesh.access-log.format").ifPresent(v -> o.setAccessLogFormat(
                enumValue(MeshOptions.AccessLogFormat.class, "inmesh.access-log.format", v)));
        str(c, "inmesh.outbound-traffic-policy").ifPresent(v -> o.setOutboundTrafficPolicy(
                enumValue(MeshOptions.OutboundTrafficPolicy.class, "inmesh.outbound-traffic-policy", v)));
        bool(c, "inmesh.trust-envoy-headers").ifPresent(o::setTrustEnvoyHeaders);
        bool(c, "inmesh.identity.ca.enabled").ifPresent(o::setIdentityCaEnabled);
        integer(c, "inmesh.identity.wait-seconds").ifPresent(o::setIdentityWaitSeconds);
        str(c, "inmesh.identity.ca.address").ifPresent(o::setIdentityCaAddress);
        str(c, "inmesh.identity.trust-domain").ifPresent(o::setIdentityTrustDomain);
        str(c, "inmesh.identity.service-account").ifPresent(o::setIdentityServiceAccount);
        str(c, "inmesh.identity.key-type").ifPresent(v -> o.setIdentityKeyType(
                enumValue(MeshOptions.IdentityKeyType.class, "inmesh.identity.key-type", v)));
        return o;
    }

    private static Optional<String> str(SmallRyeConfig c, String key) {
        return c.getOptionalValue(key, String.class).filter(s -> !s.isBlank());
    }

    /**
     * A boolean setting: {@code true} or {@code false} (and the words smallrye-config reads as them, {@code yes},
     * {@code no}, {@code on}, {@code off}, {@code 1}, {@code 0}, ...); any other value is refused by its key, where
     * smallrye-config reads it as {@code false} (a typo such as {@code ture} turned the setting off unseen).
     */
    private static Optional<Boolean> bool(SmallRyeConfig c, String key) {
        return str(c, key).map(v -> {
            String w = v.trim().toLowerCase(Locale.ROOT);
            if (TRUE_WORDS.contains(w)) {
                return true;
            }
            if (FALSE_WORDS.contains(w)) {
                return false;
            }
            throw new IllegalArgumentException(key + ": " + v + " (expected: true or false)");
        });
    }

    /** An integer setting; a value that is not one is refused by its key. */
    private static Optional<Integer> integer(SmallRyeConfig c, String key) {
        return str(c, key).map(v -> {
            try {
                return Integer.valueOf(v.trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(key + ": " + v + " (expected: an integer)");
            }
        });
    }

    private static <E extends Enum<E>> E enumValue(Class<E> type, String key, String value) {
        try {
            return Enum.valueOf(type, value.trim().toUpperCase(Locale.ROOT).replace('-', '_'));
        } catch (IllegalArgumentException e) {
            StringBuilder allowed = new StringBuilder();
            for (E v : type.getEnumConstants()) {
                allowed.append(allowed.length() == 0 ? "" : ", ").append(v.name());
            }
            throw new IllegalArgumentException(key + ": " + value + " (expected: one of " + allowed + ")");
        }
    }
}
