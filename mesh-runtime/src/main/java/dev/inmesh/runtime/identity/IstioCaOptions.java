package dev.inmesh.runtime.identity;

import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;

/**
 * How the workload gets its certificate from Istio's CA, as Istio's agent does for its sidecar.
 *
 * @param ca istiod's CA, reached as an xDS server is: TLS verified against its CA file (istiod's 15012) with the
 *           service account token as bearer, or plaintext (15010)
 * @param clusterId the cluster the workload runs in, sent as the {@code ClusterID} header (Istio's
 *                  {@code ISTIO_META_CLUSTER_ID}, default {@code Kubernetes})
 * @param trustDomain the mesh's trust domain (default {@code cluster.local})
 * @param namespace the workload's namespace
 * @param serviceAccount the workload's Kubernetes service account
 * @param keyType the key made for each certificate: RSA 2048 (Istio's default) or ECDSA P-256 (Istio's
 *                {@code ECC_SIGNATURE_ALGORITHM=ECDSA})
 * @param dir the directory filled with {@code cert-chain.pem}, {@code key.pem} and {@code root-cert.pem}
 * @param certTtl the validity asked for (Istio's {@code SECRET_TTL}, default 24 h; whole seconds, at least one);
 *                the CA may give another
 * @param retryBase the first delay before a failed request is tried again, doubled per failure (default 1 s)
 * @param retryMax the longest delay between tries (default 60 s)
 */
public record IstioCaOptions(AdsOptions.XdsServer ca, String clusterId, String trustDomain, String namespace,
                             String serviceAccount, MeshOptions.IdentityKeyType keyType, Path dir, Duration certTtl,
                             Duration retryBase, Duration retryMax) {

    public static final String DEFAULT_TRUST_DOMAIN = "cluster.local";
    public static final Duration DEFAULT_CERT_TTL = Duration.ofHours(24);
    public static final Duration DEFAULT_RETRY_BASE = Duration.ofSeconds(1);
    public static final Duration DEFAULT_RETRY_MAX = Duration.ofSeconds(60);
    /** istiod's TLS port for xDS and its CA. */
    public static final int ISTIOD_TLS_PORT = 15012;

    public IstioCaOptions {
        Objects.requireNonNull(ca, "ca");
        clusterId = clusterId == null || clusterId.isEmpty() ? "Kubernetes" : clusterId;
        trustDomain = trustDomain == null || trustDomain.isEmpty() ? DEFAULT_TRUST_DOMAIN : trustDomain;
        namespace = required(namespace, "namespace");
        serviceAccount = required(serviceAccount, "serviceAccount");
        keyType = keyType == null ? MeshOptions.IdentityKeyType.RSA : keyType;
        Objects.requireNonNull(dir, "dir");
        certTtl = certTtl == null ? DEFAULT_CERT_TTL : certTtl;
        if (certTtl.getSeconds() < 1) {
            throw new IllegalArgumentException("certTtl: " + certTtl + " (expected: at least 1 s)");
        }
        retryBase = retryBase == null ? DEFAULT_RETRY_BASE : retryBase;
        retryMax = retryMax == null ? DEFAULT_RETRY_MAX : retryMax;
        if (retryBase.toMillis() < 1 || retryMax.compareTo(retryBase) < 0) {
            throw new IllegalArgumentException("retryBase: " + retryBase + ", retryMax: " + retryMax
                    + " (expected: 1 ms <= retryBase <= retryMax)");
        }
    }

    private static String required(String s, String name) {
        if (s == null || s.isEmpty() || s.contains("/")) {
            throw new IllegalArgumentException(name + ": \"" + s + "\" (expected: a name without /)");
        }
        return s;
    }

    /** The workload's SPIFFE identity, {@code spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT}. */
    public String spiffeId() {
        return "spiffe://" + trustDomain + "/ns/" + namespace + "/sa/" + serviceAccount;
    }

    /** The same options with other retry delays. */
    public IstioCaOptions withRetry(Duration base, Duration max) {
        return new IstioCaOptions(ca, clusterId, trustDomain, namespace, serviceAccount, keyType, dir, certTtl, base,
                max);
    }

    /** The same options asking for another validity. */
    public IstioCaOptions withCertTtl(Duration ttl) {
        return new IstioCaOptions(ca, clusterId, trustDomain, namespace, serviceAccount, keyType, dir, ttl,
                retryBase, retryMax);
    }

    /**
     * The options of the settings {@code o} ({@code inmesh.identity.*}), or null when
     * {@code inmesh.identity.ca.enabled} is off. The CA is {@code inmesh.identity.ca.address}, else the xDS server when that is istiod's TLS port 15012;
     * it is reached with {@code inmesh.xds.ca-file} and {@code inmesh.xds.token-file} as the xDS server is. The
     * namespace and service account not set fall back to {@code POD_NAMESPACE} and {@code SERVICE_ACCOUNT} of
     * {@code env}, as Istio's injector sets them, and then to {@code default}.
     *
     * @param namespace the workload's namespace as its other settings resolved it, or null for {@code o}'s
     * @param clusterId the cluster id as its other settings resolved it
     */
    public static IstioCaOptions fromSettings(MeshOptions o, String namespace, String clusterId,
                                              Map<String, String> env) {
        if (!o.isIdentityCaEnabled()) {
            return null;
        }
        if (o.getIdentityDir() == null) {
            throw new IllegalArgumentException("inmesh.identity.ca.enabled: true needs inmesh.identity.dir, the "
                    + "directory to fill");
        }
        String address = o.getIdentityCaAddress();
        String key = "inmesh.identity.ca.address";
        if (address == null) {
            String xds = o.getXdsAddress();
            if (xds == null || !xds.endsWith(":" + ISTIOD_TLS_PORT)) {
                throw new IllegalArgumentException(key + ": none (expected: host:port of istiod's CA, as the xDS "
                        + "server inmesh.xds.address is not istiod on " + ISTIOD_TLS_PORT + ": " + xds + ")");
            }
            address = xds;
            key = "inmesh.xds.address";
        }
        AdsOptions.XdsServer server = AdsOptions.XdsServer.of(key, address,
                o.getXdsCaFile() == null ? null : Path.of(o.getXdsCaFile()),
                o.getXdsTokenFile() == null ? null : Path.of(o.getXdsTokenFile()));
        String ns = first(namespace == null ? o.getNamespace() : namespace, env.get("POD_NAMESPACE"));
        String sa = first(o.getIdentityServiceAccount(), env.get("SERVICE_ACCOUNT"));
        return new IstioCaOptions(server, clusterId, o.getIdentityTrustDomain(), ns, sa, o.getIdentityKeyType(),
                Path.of(o.getIdentityDir()), null, null, null);
    }

    /** {@code setting} unless it is empty or at its default {@code default}, else {@code env}, else default. */
    private static String first(String setting, String env) {
        if (setting != null && !setting.isEmpty() && !setting.equals("default")) {
            return setting;
        }
        return env != null && !env.isEmpty() ? env : "default";
    }
}
