package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.MeshOptions;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MeshSettingsTest {

    private static SmallRyeConfig config(Map<String, String> values) {
        return new SmallRyeConfigBuilder().withSources(new PropertiesConfigSource(values, "test", 500)).build();
    }

    @Test
    void everySettingIsReadUnderTheInmeshPrefix() {
        MeshOptions o = MeshSettings.from(config(Map.ofEntries(
                Map.entry("inmesh.workload.name", "reviews-v2"),
                Map.entry("inmesh.namespace", "shop"),
                Map.entry("inmesh.app", "reviews"),
                Map.entry("inmesh.version", "v2"),
                Map.entry("inmesh.cluster-id", "east"),
                Map.entry("inmesh.pod.name", "reviews-v2-abc"),
                Map.entry("inmesh.pod.ip", "10.0.0.7"),
                Map.entry("inmesh.config.file", "/etc/mesh"),
                Map.entry("inmesh.xds.address", "istiod.istio-system:15012"),
                Map.entry("inmesh.xds.fallback-address", "istiod-2:15012"),
                Map.entry("inmesh.xds.ca-file", "/var/run/ca.pem"),
                Map.entry("inmesh.xds.token-file", "/var/run/token"),
                Map.entry("inmesh.identity.dir", "/etc/certs"),
                Map.entry("inmesh.admin.host", "0.0.0.0"),
                Map.entry("inmesh.admin.port", "15001"),
                Map.entry("inmesh.http-proxy.port", "15080"),
                Map.entry("inmesh.metrics.enabled", "false"),
                Map.entry("inmesh.access-log.enabled", "true"),
                Map.entry("inmesh.access-log.format", "json"),
                Map.entry("inmesh.outbound-traffic-policy", "registry-only"),
                Map.entry("inmesh.trust-envoy-headers", "true"))));
        assertEquals("reviews-v2", o.getWorkloadName());
        assertEquals("shop", o.getNamespace());
        assertEquals("reviews", o.getApp());
        assertEquals("v2", o.getVersion());
        assertEquals("east", o.getClusterId());
        assertEquals("reviews-v2-abc", o.getPodName());
        assertEquals("10.0.0.7", o.getPodIp());
        assertEquals("/etc/mesh", o.getConfigFile());
        assertEquals("istiod.istio-system:15012", o.getXdsAddress());
        assertEquals("istiod-2:15012", o.getXdsFallbackAddress());
        assertEquals("/var/run/ca.pem", o.getXdsCaFile());
        assertEquals("/var/run/token", o.getXdsTokenFile());
        assertEquals("/etc/certs", o.getIdentityDir());
        assertEquals("0.0.0.0", o.getAdminHost());
        assertEquals(15001, o.getAdminPort());
        assertEquals(15080, o.getHttpProxyPort());
        assertFalse(o.isMetricsEnabled());
        assertTrue(o.isAccessLogEnabled());
        assertEquals(MeshOptions.AccessLogFormat.JSON, o.getAccessLogFormat());
        assertEquals(MeshOptions.OutboundTrafficPolicy.REGISTRY_ONLY, o.getOutboundTrafficPolicy());
        assertTrue(o.isTrustEnvoyHeaders());
    }

    @Test
    void theIdentitySettingsAreReadUnderInmeshIdentity() {
        MeshOptions o = MeshSettings.from(config(Map.of(
                "inmesh.identity.dir", "/etc/istio/certs",
                "inmesh.identity.ca.enabled", "true",
                "inmesh.identity.ca.address", "istiod.istio-system.svc:15012",
                "inmesh.identity.trust-domain", "example.org",
                "inmesh.identity.service-account", "reviews",
                "inmesh.identity.key-type", "ec")));
        assertEquals("/etc/istio/certs", o.getIdentityDir());
        assertTrue(o.isIdentityCaEnabled());
        assertEquals("istiod.istio-system.svc:15012", o.getIdentityCaAddress());
        assertEquals("example.org", o.getIdentityTrustDomain());
        assertEquals("reviews", o.getIdentityServiceAccount());
        assertEquals(MeshOptions.IdentityKeyType.EC, o.getIdentityKeyType());
        MeshOptions defaults = MeshSettings.from(config(Map.of()));
        assertFalse(defaults.isIdentityCaEnabled());
        assertEquals("cluster.local", defaults.getIdentityTrustDomain());
        assertEquals(MeshOptions.IdentityKeyType.RSA, defaults.getIdentityKeyType());
        assertEquals(o.getIdentityKeyType(), new MeshOptions(o).getIdentityKeyType());
        assertEquals(o.getIdentityCaAddress(), new MeshOptions(o).getIdentityCaAddress());
    }

    @Test
    void unsetKeysKeepTheDefaults() {
        MeshOptions o = MeshSettings.from(config(Map.of()));
        assertEquals("default", o.getNamespace());
        assertEquals(15000, o.getAdminPort());
        assertEquals(-1, o.getHttpProxyPort(), "the HTTP proxy is off unless asked for");
        assertEquals("127.0.0.1", o.getAdminHost());
        assertTrue(o.isMetricsEnabled());
        assertEquals(MeshOptions.OutboundTrafficPolicy.ALLOW_ANY, o.getOutboundTrafficPolicy());
    }

    @Test
    void aBadValueNamesTheKeyAndWhatWasExpected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MeshSettings.from(
                config(Map.of("inmesh.outbound-traffic-policy", "ALLOW"))));
        assertEquals("inmesh.outbound-traffic-policy: ALLOW (expected: one of ALLOW_ANY, REGISTRY_ONLY)",
                e.getMessage());
        IllegalArgumentException port = assertThrows(IllegalArgumentException.class, () -> MeshSettings.from(
                config(Map.of("inmesh.admin.port", "70000"))));
        assertEquals("inmesh.admin.port: 70000 (expected: -1..65535; 0 picks a free port, -1 turns the admin server "
                + "off)", port.getMessage());
        // the same words from the options, as the other settings' checks name their key
        assertEquals(port.getMessage(), assertThrows(IllegalArgumentException.class,
                () -> new MeshOptions().setAdminPort(70000)).getMessage());
        assertEquals("inmesh.http-proxy.port: -2 (expected: -1..65535; 0 picks a free port, -1 turns the HTTP proxy "
                + "off)", assertThrows(IllegalArgumentException.class, () -> MeshSettings.from(
                        config(Map.of("inmesh.http-proxy.port", "-2")))).getMessage());
    }

    @Test
    void aBooleanOrIntegerThatIsNoneIsRefusedByItsKeyNotReadAsFalse() {
        // smallrye-config reads any word it does not know as false: a typo turned delta xDS (or the CA) off unseen
        assertEquals("inmesh.xds.delta: ture (expected: true or false)", assertThrows(IllegalArgumentException.class,
                () -> MeshSettings.from(config(Map.of("inmesh.xds.delta", "ture")))).getMessage());
        assertEquals("inmesh.identity.ca.enabled: enabled (expected: true or false)",
                assertThrows(IllegalArgumentException.class, () -> MeshSettings.from(
                        config(Map.of("inmesh.identity.ca.enabled", "enabled")))).getMessage());
        assertEquals("inmesh.admin.port: abc (expected: an integer)", assertThrows(IllegalArgumentException.class,
                () -> MeshSettings.from(config(Map.of("inmesh.admin.port", "abc")))).getMessage());
        // the words read before stay read as they were
        MeshOptions o = MeshSettings.from(config(Map.of("inmesh.xds.delta", "YES", "inmesh.metrics.enabled", "off",
                "inmesh.access-log.enabled", "1", "inmesh.trust-envoy-headers", " False ",
                "inmesh.identity.wait-seconds", " 3")));
        assertTrue(o.isXdsDelta());
        assertFalse(o.isMetricsEnabled());
        assertTrue(o.isAccessLogEnabled());
        assertFalse(o.isTrustEnvoyHeaders());
        assertEquals(3, o.getIdentityWaitSeconds());
    }

    @Test
    void environmentVariablesMapToTheSameKeys() {
        SmallRyeConfig c = new SmallRyeConfigBuilder().withSources(new io.smallrye.config.EnvConfigSource(
                Map.of("INMESH_WORKLOAD_NAME", "ratings-v1", "INMESH_ADMIN_PORT", "-1"), 300)).build();
        MeshOptions o = MeshSettings.from(c);
        assertEquals("ratings-v1", o.getWorkloadName());
        assertEquals(-1, o.getAdminPort());
    }
}
