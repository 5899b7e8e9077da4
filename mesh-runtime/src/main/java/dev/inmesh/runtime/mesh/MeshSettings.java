package dev.inmesh.runtime.mesh;

import dev.inmesh.api.MeshOptions;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.util.Locale;
import java.util.Optional;

/**
 * Reads {@link MeshOptions} from smallrye-config: system properties, environment variables ({@code INMESH_*}) and
 * {@code application.properties} on the class path, keys under {@code inmesh.} (docs/configuration.md lists them).
 */
public final class MeshSettings {
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
        c.getOptionalValue("inmesh.xds.initial-fetch-timeout-seconds", Integer.class)
                .ifPresent(o::setXdsInitialFetchTimeoutSeconds);
        c.getOptionalValue("inmesh.xds.delta", Boolean.class).ifPresent(o::setXdsDelta);
        str(c, "inmesh.identity.dir").ifPresent(o::setIdentityDir);
        str(c, "inmesh.admin.host").ifPresent(o::setAdminHost);
        c.getOptionalValue("inmesh.admin.port", Integer.class).ifPresent(o::setAdminPort);
        c.getOptionalValue("inmesh.metrics.enabled", Boolean.class).ifPresent(o::setMetricsEnabled);
        c.getOptionalValue("inmesh.access-log.enabled", Boolean.class).ifPresent(o::setAccessLogEnabled);
        str(c, "inmesh.access-log.format").ifPresent(v -> o.setAccessLogFormat(
                enumValue(MeshOptions.AccessLogFormat.class, "inmesh.access-log.format", v)));
        str(c, "inmesh.outbound-traffic-policy").ifPresent(v -> o.setOutboundTrafficPolicy(
                enumValue(MeshOptions.OutboundTrafficPolicy.class, "inmesh.outbound-traffic-policy", v)));
        c.getOptionalValue("inmesh.trust-envoy-headers", Boolean.class).ifPresent(o::setTrustEnvoyHeaders);
        c.getOptionalValue("inmesh.identity.ca.enabled", Boolean.class).ifPresent(o::setIdentityCaEnabled);
        c.getOptionalValue("inmesh.identity.wait-seconds", Integer.class).ifPresent(o::setIdentityWaitSeconds);
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
