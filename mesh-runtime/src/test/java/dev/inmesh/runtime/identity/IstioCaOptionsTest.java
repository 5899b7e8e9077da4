package dev.inmesh.runtime.identity;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.MeshOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The CA client's options from the inmesh.identity.* settings, with Istio's defaults. */
class IstioCaOptionsTest {

    static MeshOptions settings() {
        return new MeshOptions().setIdentityDir("/etc/istio/certs").setIdentityCaEnabled(true)
                .setXdsAddress("istiod.istio-system.svc:15012").setXdsCaFile("/var/run/secrets/istio/root-cert.pem")
                .setXdsTokenFile("/var/run/secrets/tokens/istio-token");
    }

    @Test
    void noCaClientUnlessEnabled() {
        assertNull(IstioCaOptions.fromSettings(settings().setIdentityCaEnabled(false), null, "Kubernetes", Map.of()));
    }

    @Test
    void theCaIsIstiodOf15012ReachedAsTheXdsServerAndTheIdentityComesFromTheInjectorsEnvironment() {
        IstioCaOptions o = IstioCaOptions.fromSettings(settings(), null, "east",
                Map.of("POD_NAMESPACE", "bookinfo", "SERVICE_ACCOUNT", "bookinfo-reviews"));
        assertEquals("istiod.istio-system.svc:15012", o.ca().address());
        assertTrue(o.ca().tls());
        assertEquals(Path.of("/var/run/secrets/istio/root-cert.pem"), o.ca().caFile());
        assertEquals(Path.of("/var/run/secrets/tokens/istio-token"), o.ca().tokenFile());
        assertEquals("spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews", o.spiffeId());
        assertEquals("east", o.clusterId());
        assertEquals(MeshOptions.IdentityKeyType.RSA, o.keyType());
        assertEquals(Duration.ofHours(24), o.certTtl());
        assertEquals(Path.of("/etc/istio/certs"), o.dir());
    }

    @Test
    void settingsComeBeforeTheEnvironmentAndDefaultIsTheLastResort() {
        MeshOptions s = settings().setNamespace("shop").setIdentityServiceAccount("cart")
                .setIdentityTrustDomain("example.org").setIdentityKeyType(MeshOptions.IdentityKeyType.EC)
                .setIdentityCaAddress("ca.example.org:443");
        IstioCaOptions o = IstioCaOptions.fromSettings(s, null, "Kubernetes",
                Map.of("POD_NAMESPACE", "bookinfo", "SERVICE_ACCOUNT", "bookinfo-reviews"));
        assertEquals("spiffe://example.org/ns/shop/sa/cart", o.spiffeId());
        assertEquals("ca.example.org:443", o.ca().address());
        assertEquals(MeshOptions.IdentityKeyType.EC, o.keyType());
        assertEquals("spiffe://cluster.local/ns/default/sa/default",
                IstioCaOptions.fromSettings(settings(), null, "Kubernetes", Map.of()).spiffeId());
        assertEquals("spiffe://cluster.local/ns/resolved/sa/default",
                IstioCaOptions.fromSettings(settings(), "resolved", "Kubernetes", Map.of()).spiffeId());
    }

    @Test
    void aPlaintextXdsServerMeansAPlaintextCaWithoutToken() {
        IstioCaOptions o = IstioCaOptions.fromSettings(settings().setXdsCaFile(null)
                .setIdentityCaAddress("istiod.istio-system.svc:15010"), null, "Kubernetes", Map.of());
        assertFalse(o.ca().tls());
        assertNull(o.ca().tokenFile());
    }

    @Test
    void withoutAnAddressTheXdsServerMustBeIstiodOn15012AndTheDirectoryIsNeeded() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> IstioCaOptions
                .fromSettings(settings().setXdsAddress("istiod.istio-system.svc:15010"), null, "Kubernetes",
                        Map.of()));
        assertTrue(e.getMessage().startsWith("inmesh.identity.ca.address: none"), e.getMessage());
        IllegalArgumentException dir = assertThrows(IllegalArgumentException.class, () -> IstioCaOptions
                .fromSettings(settings().setIdentityDir(null), null, "Kubernetes", Map.of()));
        assertTrue(dir.getMessage().contains("inmesh.identity.dir"), dir.getMessage());
        IllegalArgumentException address = assertThrows(IllegalArgumentException.class, () -> IstioCaOptions
                .fromSettings(settings().setIdentityCaAddress("istiod"), null, "Kubernetes", Map.of()));
        assertEquals("inmesh.identity.ca.address: istiod (expected: host:port)", address.getMessage());
    }
}
