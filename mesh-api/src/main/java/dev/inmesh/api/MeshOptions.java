package dev.inmesh.api;

import java.util.Objects;

/**
 * Settings of a {@link Mesh}. Every setting also comes from configuration (smallrye-config: system properties,
 * environment variables, {@code application.properties}) under the {@code inmesh.} prefix when the mesh is created
 * with {@link Mesh#create(io.vertx.core.Vertx)}; docs/configuration.md lists them with their defaults.
 */
public final class MeshOptions {
    /** What happens to requests for which the configuration has no listener: Istio's outbound traffic policy. */
    public enum OutboundTrafficPolicy {
        /** Straight to the address the application asked for (PassthroughCluster). */
        ALLOW_ANY,
        /** Refused with 502 (BlackHoleCluster). */
        REGISTRY_ONLY
    }

    /** The access log's format. */
    public enum AccessLogFormat { TEXT, JSON }

    /** The key made for the workload's certificate: RSA 2048, or ECDSA on P-256. */
    public enum IdentityKeyType { RSA, EC }

    private String workloadName = "";
    private String namespace = "default";
    private String app = "";
    private String version = "";
    private String clusterId = "Kubernetes";
    private String podName = "";
    private String podIp = "127.0.0.1";
    private String configFile;
    private String xdsAddress;
    private String xdsFallbackAddress;
    private String xdsCaFile;
    private String xdsTokenFile;
    private int xdsInitialFetchTimeoutSeconds = 15;
    private boolean xdsDelta;
    private String identityDir;
    private String adminHost = "127.0.0.1";
    private int adminPort = 15000;
    private int httpProxyPort = -1;
    private boolean metricsEnabled = true;
    private boolean accessLogEnabled;
    private AccessLogFormat accessLogFormat = AccessLogFormat.TEXT;
    private OutboundTrafficPolicy outboundTrafficPolicy = OutboundTrafficPolicy.ALLOW_ANY;
    private boolean trustEnvoyHeaders;
    private boolean identityCaEnabled;
    private String identityCaAddress;
    private String identityTrustDomain = "cluster.local";
    private String identityServiceAccount = "";
    private IdentityKeyType identityKeyType = IdentityKeyType.RSA;
    private int identityWaitSeconds = 15;

    public MeshOptions() {}

    /** A copy. */
    public MeshOptions(MeshOptions o) {
        workloadName = o.workloadName;
        namespace = o.namespace;
        app = o.app;
        version = o.version;
        clusterId = o.clusterId;
        podName = o.podName;
        podIp = o.podIp;
        configFile = o.configFile;
        xdsAddress = o.xdsAddress;
        xdsFallbackAddress = o.xdsFallbackAddress;
        xdsCaFile = o.xdsCaFile;
        xdsTokenFile = o.xdsTokenFile;
        xdsInitialFetchTimeoutSeconds = o.xdsInitialFetchTimeoutSeconds;
        xdsDelta = o.xdsDelta;
        identityDir = o.identityDir;
        adminHost = o.adminHost;
        adminPort = o.adminPort;
        httpProxyPort = o.httpProxyPort;
        metricsEnabled = o.metricsEnabled;
        accessLogEnabled = o.accessLogEnabled;
        accessLogFormat = o.accessLogFormat;
        outboundTrafficPolicy = o.outboundTrafficPolicy;
        trustEnvoyHeaders = o.trustEnvoyHeaders;
        identityCaEnabled = o.identityCaEnabled;
        identityCaAddress = o.identityCaAddress;
        identityTrustDomain = o.identityTrustDomain;
        identityServiceAccount = o.identityServiceAccount;
        identityKeyType = o.identityKeyType;
        identityWaitSeconds = o.identityWaitSeconds;
    }

    /** The workload's name (Istio's {@code WORKLOAD_NAME}, such as {@code reviews-v1}). */
    public String getWorkloadName() {
        return workloadName;
    }

    public MeshOptions setWorkloadName(String workloadName) {
        this.workloadName = Objects.requireNonNull(workloadName, "workloadName");
        return this;
    }

    /** The Kubernetes namespace (default {@code default}). */
    public String getNamespace() {
        return namespace;
    }

    public MeshOptions setNamespace(String namespace) {
        this.namespace = Objects.requireNonNull(namespace, "namespace");
        return this;
    }

    /** The {@code app} label. */
    public String getApp() {
        return app;
    }

    public MeshOptions setApp(String app) {
        this.app = Objects.requireNonNull(app, "app");
        return this;
    }

    /** The {@code version} label. */
    public String getVersion() {
        return version;
    }

    public MeshOptions setVersion(String version) {
        this.version = Objects.requireNonNull(version, "version");
        return this;
    }

    /** Istio's cluster id, the {@code destination_cluster} / {@code source_cluster} label (default Kubernetes). */
    public String getClusterId() {
        return clusterId;
    }

    public MeshOptions setClusterId(String clusterId) {
        this.clusterId = Objects.requireNonNull(clusterId, "clusterId");
        return this;
    }

    /** The pod's name, for the xDS node id (defaults to the workload name). */
    public String getPodName() {
        return podName;
    }

    public MeshOptions setPodName(String podName) {
        this.podName = Objects.requireNonNull(podName, "podName");
        return this;
    }

    /** The pod's IP, for the xDS node id (default 127.0.0.1). */
    public String getPodIp() {
        return podIp;
    }

    public MeshOptions setPodIp(String podIp) {
        this.podIp = Objects.requireNonNull(podIp, "podIp");
        return this;
    }

    /** An Envoy JSON/YAML file or directory to load and watch, or null. */
    public String getConfigFile() {
        return configFile;
    }

    public MeshOptions setConfigFile(String configFile) {
        this.configFile = configFile;
        return this;
    }

    /** The xDS (ADS) server, {@code host:port} (istiod's plaintext port is 15010), or null for none. */
    public String getXdsAddress() {
        return xdsAddress;
    }

    public MeshOptions setXdsAddress(String xdsAddress) {
        this.xdsAddress = xdsAddress;
        return this;
    }

    /** A second xDS server tried when the first is down, or null. */
    public String getXdsFallbackAddress() {
        return xdsFallbackAddress;
    }

    public MeshOptions setXdsFallbackAddress(String xdsFallbackAddress) {
        this.xdsFallbackAddress = xdsFallbackAddress;
        return this;
    }

    /** A PEM CA file: when set, the xDS connection uses TLS verified against it. */
    public String getXdsCaFile() {
        return xdsCaFile;
    }

    public MeshOptions setXdsCaFile(String xdsCaFile) {
        this.xdsCaFile = xdsCaFile;
        return this;
    }

    /** A file holding a bearer token sent to the xDS server (a Kubernetes service-account token). */
    public String getXdsTokenFile() {
        return xdsTokenFile;
    }

    public MeshOptions setXdsTokenFile(String xdsTokenFile) {
        this.xdsTokenFile = xdsTokenFile;
        return this;
    }

    /**
     * How long the first configuration from the xDS server may be awaited, per type of resource, before
     * {@code start()} goes on without what has not come (default 15 s, Envoy's {@code initial_fetch_timeout}; 0
     * waits with no end, as Istio's bootstrap asks of Envoy for listeners and clusters, so that a workload never
     * serves with an empty configuration while istiod is slow). A route configuration or load assignment whose
     * config source sets its own timeout (istiod writes 0s) takes that one.
     */
    public int getXdsInitialFetchTimeoutSeconds() {
        return xdsInitialFetchTimeoutSeconds;
    }

    public MeshOptions setXdsInitialFetchTimeoutSeconds(int seconds) {
        if (seconds < 0) {
            throw new IllegalArgumentException("inmesh.xds.initial-fetch-timeout-seconds: " + seconds
                    + " (expected: >= 0; 0 waits with no end)");
        }
        this.xdsInitialFetchTimeoutSeconds = seconds;
        return this;
    }

    /**
     * Whether the ADS stream is incremental xDS ({@code DeltaAggregatedResources}, as Istio 1.22+ sidecars ask istiod
     * for) rather than state of the world ({@code StreamAggregatedResources}, the default, which every xDS server
     * serves).
     */
    public boolean isXdsDelta() {
        return xdsDelta;
    }

    public MeshOptions setXdsDelta(boolean delta) {
        this.xdsDelta = delta;
        return this;
    }

    /**
     * The workload identity directory: Istio's {@code cert-chain.pem}, {@code key.pem} and {@code root-cert.pem}
     * (what Istio's agent writes to its {@code OUTPUT_CERTS} directory), which TLS contexts naming Istio's SDS
     * secrets {@code default} (the certificate chain and key) and {@code ROOTCA} (the root CA) read; null: those
     * names are refused.
     */
    public String getIdentityDir() {
        return identityDir;
    }

    public MeshOptions setIdentityDir(String identityDir) {
        this.identityDir = identityDir;
        return this;
    }

    /** The admin server's host (default 127.0.0.1). */
    public String getAdminHost() {
        return adminHost;
    }

    public MeshOptions setAdminHost(String adminHost) {
        this.adminHost = Objects.requireNonNull(adminHost, "adminHost");
        return this;
    }

    /** The admin server's port (default 15000; 0 picks a free port; -1 turns the admin server off). */
    public int getAdminPort() {
        return adminPort;
    }

    public MeshOptions setAdminPort(int adminPort) {
        if (adminPort < -1 || adminPort > 65535) {
            throw new IllegalArgumentException("inmesh.admin.port: " + adminPort
                    + " (expected: -1..65535; 0 picks a free port, -1 turns the admin server off)");
        }
        this.adminPort = adminPort;
        return this;
    }

    /**
     * The port on 127.0.0.1 of the mesh's HTTP proxy for the JVM's other HTTP clients (default -1, off; 0 picks a
     * free port): see {@code Mesh.httpProxyPort()}.
     */
    public int getHttpProxyPort() {
        return httpProxyPort;
    }

    public MeshOptions setHttpProxyPort(int httpProxyPort) {
        if (httpProxyPort < -1 || httpProxyPort > 65535) {
            throw new IllegalArgumentException("inmesh.http-proxy.port: " + httpProxyPort
                    + " (expected: -1..65535; 0 picks a free port, -1 turns the HTTP proxy off)");
        }
        this.httpProxyPort = httpProxyPort;
        return this;
    }

    /** Whether Istio's metrics are recorded (default true). */
    public boolean isMetricsEnabled() {
        return metricsEnabled;
    }

    public MeshOptions setMetricsEnabled(boolean metricsEnabled) {
        this.metricsEnabled = metricsEnabled;
        return this;
    }

    /** Whether each request is written to the access log (default false). */
    public boolean isAccessLogEnabled() {
        return accessLogEnabled;
    }

    public MeshOptions setAccessLogEnabled(boolean accessLogEnabled) {
        this.accessLogEnabled = accessLogEnabled;
        return this;
    }

    public AccessLogFormat getAccessLogFormat() {
        return accessLogFormat;
    }

    public MeshOptions setAccessLogFormat(AccessLogFormat accessLogFormat) {
        this.accessLogFormat = Objects.requireNonNull(accessLogFormat, "accessLogFormat");
        return this;
    }

    /** What happens to requests with no listener for their port (default ALLOW_ANY). */
    public OutboundTrafficPolicy getOutboundTrafficPolicy() {
        return outboundTrafficPolicy;
    }

    public MeshOptions setOutboundTrafficPolicy(OutboundTrafficPolicy policy) {
        this.outboundTrafficPolicy = Objects.requireNonNull(policy, "outboundTrafficPolicy");
        return this;
    }

    /** Whether {@code x-envoy-*} control headers set by the application are honoured (default false). */
    public boolean isTrustEnvoyHeaders() {
        return trustEnvoyHeaders;
    }

    public MeshOptions setTrustEnvoyHeaders(boolean trustEnvoyHeaders) {
        this.trustEnvoyHeaders = trustEnvoyHeaders;
        return this;
    }

    /**
     * How long, from {@code start()}, a configuration whose TLS contexts read the identity directory's files (Istio's
     * SDS secrets {@code default} and {@code ROOTCA}) waits for them as it is parsed, when the directory is set and
     * not kept filled from Istio's CA (default 15 s, Envoy's {@code initial_fetch_timeout} for an SDS secret; 0: no
     * wait): Istio's agent writes them once istiod signed the certificate, maybe after the application started. A
     * configuration with no such context does not wait. After the wait, a configuration that needs a missing file is
     * rejected by name.
     */
    public int getIdentityWaitSeconds() {
        return identityWaitSeconds;
    }

    public MeshOptions setIdentityWaitSeconds(int identityWaitSeconds) {
        if (identityWaitSeconds < 0) {
            throw new IllegalArgumentException("inmesh.identity.wait-seconds: " + identityWaitSeconds
                    + " (expected: >= 0)");
        }
        this.identityWaitSeconds = identityWaitSeconds;
        return this;
    }

    /**
     * Whether the identity directory is kept filled from Istio's CA, as Istio's agent does (default false): a key
     * and a CSR for the workload's SPIFFE identity, signed by istiod, renewed at half the certificate's lifetime.
     */
    public boolean isIdentityCaEnabled() {
        return identityCaEnabled;
    }

    public MeshOptions setIdentityCaEnabled(boolean identityCaEnabled) {
        this.identityCaEnabled = identityCaEnabled;
        return this;
    }

    /** Istio's CA, {@code host:port}, or null for the xDS server when that is istiod's 15012. */
    public String getIdentityCaAddress() {
        return identityCaAddress;
    }

    public MeshOptions setIdentityCaAddress(String identityCaAddress) {
        this.identityCaAddress = identityCaAddress;
        return this;
    }

    /** The mesh's trust domain, of the workload's SPIFFE identity (default cluster.local). */
    public String getIdentityTrustDomain() {
        return identityTrustDomain;
    }

    public MeshOptions setIdentityTrustDomain(String identityTrustDomain) {
        this.identityTrustDomain = Objects.requireNonNull(identityTrustDomain, "identityTrustDomain");
        return this;
    }

    /** The workload's service account (empty: {@code SERVICE_ACCOUNT} from the environment, else default). */
    public String getIdentityServiceAccount() {
        return identityServiceAccount;
    }

    public MeshOptions setIdentityServiceAccount(String identityServiceAccount) {
        this.identityServiceAccount = Objects.requireNonNull(identityServiceAccount, "identityServiceAccount");
        return this;
    }

    /** The key made for the workload's certificate (default RSA, 2048 bits, as Istio's). */
    public IdentityKeyType getIdentityKeyType() {
        return identityKeyType;
    }

    public MeshOptions setIdentityKeyType(IdentityKeyType identityKeyType) {
        this.identityKeyType = Objects.requireNonNull(identityKeyType, "identityKeyType");
        return this;
    }
}
