package dev.inmesh.interception;

import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.accesslog.AccessLog;
import dev.inmesh.runtime.accesslog.AccessLogSink;
import dev.inmesh.runtime.admin.AdminServer;
import dev.inmesh.runtime.admin.IstioAgent;
import dev.inmesh.runtime.admin.ClusterManagerStatus;
import dev.inmesh.runtime.identity.IstioCaClient;
import dev.inmesh.runtime.identity.IstioCaOptions;
import dev.inmesh.runtime.mesh.MeshSettings;
import dev.inmesh.runtime.mesh.PodInfo;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.PeerMetadata;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import java.util.concurrent.TimeUnit;
import dev.inmesh.interception.proxy.AdminHook;
import dev.inmesh.interception.proxy.StandaloneProxy;
import dev.inmesh.runtime.stats.StreamInfo;
import java.io.FileOutputStream;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.function.Consumer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code inmesh proxy -c CONFIG}: runs every listener of an Envoy configuration, as {@code envoy -c} does: plain
 * listeners on their addresses, and the capture listeners {@code virtualOutbound} (15001) and {@code virtualInbound}
 * (15006) for traffic that {@code inmesh iptables} redirects. Runs until SIGINT or SIGTERM, which drain the
 * inbound listeners gracefully for {@code --termination-drain-time} before stopping (as Istio's agent stops its
 * sidecar; the listener drain of configuration changes and {@code /drain_listeners} is {@code --drain-time-s}), or
 * {@code POST /quitquitquit}, which stops at once. Exit codes: 0 stopped, 1 could not start.
 */
@Command(
        name = "proxy",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        usageHelpWidth = 120,
        description = {
            "Runs the listeners of an Envoy configuration, as envoy -c does, with the same routing as the in-JVM mesh.",
            "The configuration: a JSON or YAML bootstrap, config dump or resources, or an xDS server. Its plain",
            "listeners serve on their addresses; virtualOutbound (15001) and virtualInbound (15006) take the traffic",
            "that inmesh iptables captures."
        })
public final class ProxyCommand implements Callable<Integer> {
    @Option(names = {"-c", "--config-path"}, paramLabel = "CONFIG",
            description = "The Envoy configuration: a file (JSON or YAML) or a directory of them. With "
                    + "--xds-address, a bootstrap whose static resources and admin address join the control plane's.")
    Path config;

    @Option(names = "--xds-address", paramLabel = "HOST:PORT",
            description = "Take the configuration from this xDS server over ADS, as a sidecar from istiod "
                    + "(default: INMESH_XDS_ADDRESS, else, with Istio's PROXY_CONFIG, its discoveryAddress or Istio's "
                    + "istiod.istio-system.svc:15012; "
                    + "INMESH_XDS_FALLBACK_ADDRESS, INMESH_XDS_CA_FILE, INMESH_XDS_TOKEN_FILE and "
                    + "INMESH_XDS_INITIAL_FETCH_TIMEOUT_SECONDS apply too; on istiod's port 15012 the CA file and "
                    + "token default to /var/run/secrets/istio/root-cert.pem and /var/run/secrets/tokens/istio-token "
                    + "when they exist).")
    String xdsAddress;

    @Option(names = "--xds-delta",
            description = "Ask the xDS server over incremental (delta) ADS, as Istio 1.22+ sidecars ask istiod, "
                    + "rather than state of the world, which every xDS server serves (default: INMESH_XDS_DELTA).")
    boolean xdsDelta;

    @Option(names = "--dns-capture",
            description = "Run Istio's agent's DNS proxy on 127.0.0.1:15053 (and [::1]:15053), UDP and TCP, where "
                    + "'inmesh iptables --redirect-dns' sends the application's queries: the configuration's service "
                    + "names answered with their IPs, other names forwarded to the name servers of /etc/resolv.conf "
                    + "(default: ISTIO_META_DNS_CAPTURE).")
    boolean dnsCapture;

    @Option(names = "--identity-dir", paramLabel = "DIR",
            description = "The workload identity directory: cert-chain.pem, key.pem and root-cert.pem, as Istio's "
                    + "agent writes them to OUTPUT_CERTS, which TLS contexts naming Istio's SDS secrets default and "
                    + "ROOTCA read, watched for rotation (default: INMESH_IDENTITY_DIR; unset: those secrets are "
                    + "refused).")
    Path identityDir;

    @Option(names = "--identity-ca",
            description = "Keep --identity-dir filled from Istio's CA, as Istio's agent: a certificate for "
                    + "spiffe://TRUST_DOMAIN/ns/NS/sa/SERVICE_ACCOUNT, renewed at half its lifetime, before the "
                    + "proxy listens (default: INMESH_IDENTITY_CA_ENABLED; SERVICE_ACCOUNT, "
                    + "INMESH_IDENTITY_TRUST_DOMAIN (else TRUST_DOMAIN) and INMESH_IDENTITY_KEY_TYPE apply).")
    boolean identityCa;

    @Option(names = "--ca-address", paramLabel = "HOST:PORT",
            description = "Istio's CA, reached as the xDS server is, with INMESH_XDS_CA_FILE and "
                    + "INMESH_XDS_TOKEN_FILE (default: INMESH_IDENTITY_CA_ADDRESS, else CA_ADDR, else --xds-address "
                    + "on 15012).")
    String caAddress;

    @Option(names = "--uid", paramLabel = "UID", defaultValue = "-1",
            description = "After binding, become this user (Istio: 1337); needs root. Default: stay.")
    int uid;

    @Option(names = "--gid", paramLabel = "GID", defaultValue = "-1",
            description = "After binding, become this group (default: the --uid number).")
    int gid;

    @Option(names = "--access-log", paramLabel = "PATH",
            description = "Write an access log line per request and per TCP proxy connection to PATH "
                    + "(/dev/stdout for standard output), in Istio's text format, or JSON with "
                    + "INMESH_ACCESS_LOG_FORMAT=JSON.")
    Path accessLog;

    @Option(names = "--event-loops", paramLabel = "N", defaultValue = "0",
            description = "Event loop threads (default: one per core).")
    int eventLoops;

    @Option(names = "--transport", paramLabel = "epoll|io_uring|nio", converter = TransportConverter.class,
            description = "The sockets' I/O transport (default: epoll, else nio when epoll cannot load). io_uring "
                    + "makes fewer system calls per request; one asked for that cannot load is an error.")
    dev.inmesh.interception.proxy.IoTransport transport;

    /** {@code --transport}'s names: the transports' own, in lower case. */
    public static final class TransportConverter implements picocli.CommandLine.ITypeConverter<
            dev.inmesh.interception.proxy.IoTransport> {
        @Override
        public dev.inmesh.interception.proxy.IoTransport convert(String value) {
            for (var t : dev.inmesh.interception.proxy.IoTransport.values()) {
                if (t.optionName().equals(value)) {
                    return t;
                }
            }
            throw new picocli.CommandLine.TypeConversionException("'" + value + "' (expected: epoll, io_uring or "
                    + "nio)");
        }
    }

    @Option(names = {"--termination-drain-time", "--drain-time"}, paramLabel = "SECONDS",
            description = "On SIGTERM, how long the inbound listeners drain before the proxy stops (Istio's "
                    + "terminationDrainDuration). Default: TERMINATION_DRAIN_DURATION_SECONDS, else PROXY_CONFIG's "
                    + "terminationDrainDuration, else 5. (--drain-time: its former name.)")
    Long drainTime;

    @Option(names = "--drain-time-s", paramLabel = "SECONDS",
            description = "How long a listener drain lasts (Envoy's --drain-time-s, Istio's drainDuration): the "
                    + "connections of a listener or filter chain a configuration change removes or changes are "
                    + "discouraged, then closed, and POST /drain_listeners?graceful keeps the listeners accepting, "
                    + "this long. Default: PROXY_CONFIG's drainDuration, else 45, as Istio gives its sidecars.")
    Long listenerDrainTime;

    /**
     * How the proxy stops on SIGTERM, as Istio's agent stops its sidecar.
     *
     * @param drain how long the inbound listeners drain, and the proxy waits, before it stops
     * @param exitOnZeroConnections whether it stops, after {@code minimum}, as soon as no connection is open
     *                              ({@code EXIT_ON_ZERO_ACTIVE_CONNECTIONS}) rather than after {@code drain}
     * @param minimum how long it waits then before it looks ({@code MINIMUM_DRAIN_DURATION}, default 5 s)
     * @param istioListenerPorts the ports of Istio's bootstrap's own listeners, whose connections it does not count
     *                           then ({@code ENVOY_STATUS_PORT} and {@code ENVOY_PROMETHEUS_PORT}, 15021 and 15090)
     */
    record Termination(java.time.Duration drain, boolean exitOnZeroConnections, java.time.Duration minimum,
                       java.util.Set<Integer> istioListenerPorts) {
        Termination(java.time.Duration drain, boolean exitOnZeroConnections, java.time.Duration minimum) {
            this(drain, exitOnZeroConnections, minimum, StandaloneProxy.ISTIO_LISTENER_PORTS);
        }
    }

    /**
     * The termination of {@code --termination-drain-time} and Istio's agent's variables in {@code env}: without the
     * option, the drain time from {@code TERMINATION_DRAIN_DURATION_SECONDS} (whole seconds; a negative one is none,
     * as the agent's timer that fires at once), else the {@code terminationDrainDuration} of {@code PROXY_CONFIG}
     * (the agent lets the variable override its ProxyConfig), else 5 s; {@code EXIT_ON_ZERO_ACTIVE_CONNECTIONS}
     * read as Go's ParseBool; {@code MINIMUM_DRAIN_DURATION} a Go duration ({@code 5s}); {@code ENVOY_STATUS_PORT}
     * and {@code ENVOY_PROMETHEUS_PORT} integers (15021, 15090). A value that does not read is warned about on
     * {@code warn}, naming the variable, and its default taken, as the agent's environment variables do.
     */
    Termination termination(java.util.Map<String, String> env, Consumer<String> warn) {
        java.time.Duration drain = seconds("--termination-drain-time", drainTime);
        if (drain == null) {
            Long variable = agentVariable(env, "TERMINATION_DRAIN_DURATION_SECONDS", null, "an integer",
                    Long::parseLong, warn);
            java.time.Duration configured = variable != null ? java.time.Duration.ofSeconds(Math.max(0, variable))
                    : PodInfo.proxyConfigDuration(env, "terminationDrainDuration", warn);
            drain = configured != null ? configured : StandaloneProxy.DEFAULT_TERMINATION_DRAIN_TIME;
        }
        boolean exitOnZero = agentVariable(env, "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", false, "true or false",
                v -> java.util.Objects.requireNonNull(IptablesCommand.goBool(v)), warn);
        java.time.Duration minimum = agentVariable(env, "MINIMUM_DRAIN_DURATION", java.time.Duration.ofSeconds(5),
                "a duration", v -> IptablesCommand.parseDuration("MINIMUM_DRAIN_DURATION", v), warn);
        int status = agentVariable(env, "ENVOY_STATUS_PORT", 15021, "a port", Integer::parseInt, warn);
        int prometheus = agentVariable(env, "ENVOY_PROMETHEUS_PORT", 15090, "a port", Integer::parseInt, warn);
        return new Termination(drain, exitOnZero, minimum, java.util.Set.of(status, prometheus));
    }

    /**
     * How long a listener drain lasts: {@code --drain-time-s}, else the {@code drainDuration} of Istio's
     * {@code PROXY_CONFIG} in {@code env} (which Istio's agent passes its Envoy as {@code --drain-time-s}), else 45 s,
     * Istio's default (not Envoy's own, 600 s). One that does not read is warned about on {@code warn}.
     */
    java.time.Duration listenerDrainTime(java.util.Map<String, String> env, Consumer<String> warn) {
        java.time.Duration option = seconds("--drain-time-s", listenerDrainTime);
        java.time.Duration configured = option != null ? option
                : PodInfo.proxyConfigDuration(env, "drainDuration", warn);
        return configured != null ? configured : dev.inmesh.interception.proxy.ProxyServer.DEFAULT_DRAIN_TIME;
    }

    /** An option's whole seconds, null when it is not given; a negative one is refused naming {@code option}. */
    private static java.time.Duration seconds(String option, Long value) {
        if (value != null && value < 0) {
            throw new IllegalArgumentException(option + ": " + value + " (expected: >= 0)");
        }
        return value == null ? null : java.time.Duration.ofSeconds(value);
    }

    /** The variable {@code name} of {@code env} read by {@code read}; its default when unset, empty or unreadable. */
    private static <T> T agentVariable(java.util.Map<String, String> env, String name, T dflt, String expected,
                                       java.util.function.Function<String, T> read, Consumer<String> warn) {
        String v = env.getOrDefault(name, "").trim();
        if (v.isEmpty()) {
            return dflt;
        }
        try {
            return read.apply(v);
        } catch (RuntimeException e) {
            warn.accept(name + ": " + v + " (expected: " + expected + "): its default taken");
            return dflt;
        }
    }

    @Option(names = "--no-admin", description = "Do not serve the admin (15000), health (15021) and Prometheus "
            + "(15090, 15020) endpoints.")
    boolean noAdmin;

    @Option(names = "--status-port", paramLabel = "PORT", description = "The agent's port, as Istio's agent's "
            + "--statusPort: merged metrics, application probes, /healthz/ready, /quitquitquit (default: 15020, "
            + "unless a listener of the configuration binds it; 0: none).")
    Integer statusPort;

    @Option(names = "--health-port", paramLabel = "PORT", description = "The readiness port, /healthz/ready "
            + "(default: 15021, unless a listener of the configuration binds it, as Istio's bootstrap does; 0: none).")
    Integer healthPort;

    @Option(names = "--prometheus-port", paramLabel = "PORT", description = "The proxy's Prometheus port, "
            + "/stats/prometheus (default: 15090, unless a listener of the configuration binds it, as Istio's "
            + "bootstrap does; 0: none).")
    Integer prometheusPort;

    @Option(names = "--workload-name", paramLabel = "NAME", description = "This workload's name, such as "
            + "reviews-v1 (default: INMESH_WORKLOAD_NAME, else the WORKLOAD_NAME of the bootstrap's node, else "
            + "ISTIO_META_WORKLOAD_NAME, else the app).")
    String workloadName;

    @Option(names = "--namespace", paramLabel = "NS",
            description = "This workload's namespace (default: INMESH_NAMESPACE, else the NAMESPACE of the "
                    + "bootstrap's node, else POD_NAMESPACE, else default).")
    String namespace;

    @Option(names = "--app", paramLabel = "APP", description = "This workload's app label (default: "
            + "INMESH_APP, else the app of the bootstrap node's LABELS, else the pod's app label: "
            + "/etc/istio/pod/labels, else ISTIO_METAJSON_LABELS).")
    String app;

    @Option(names = "--app-version", paramLabel = "VERSION", description = "This workload's version label "
            + "(default: INMESH_VERSION, else the version of the bootstrap node's LABELS, else the pod's version label; "
            + "--version prints the proxy's own version).")
    String version;

    @Option(names = "--cluster-id", paramLabel = "ID", description = "The cluster this workload runs in "
            + "(default: INMESH_CLUSTER_ID, else the CLUSTER_ID of the bootstrap's node, else ISTIO_META_CLUSTER_ID, "
            + "else Kubernetes).")
    String clusterId;

    /** Where Istio's injector mounts the pod's downward API files ({@code labels}, {@code annotations}). */
    Path podInfo = PodInfo.POD_INFO_DIR;

    /**
     * Where Istio's injector mounts istiod's root certificate ({@code istio/root-cert.pem}) and the pod's token for
     * istiod ({@code tokens/istio-token}).
     */
    Path secrets = PodInfo.SECRETS_DIR;

    /** Where the command's warnings go. */
    Consumer<String> warnings = w -> System.err.println("inmesh proxy: warning: " + w);

    /**
     * This workload as the proxy names it in its metrics and its metadata exchange.
     *
     * @param peerMetadata the {@code x-envoy-peer-metadata} value it sends
     * @param peerMetadataId the {@code x-envoy-peer-metadata-id} value, Istio's node id
     *     {@code sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local}
     * @param podName the pod's name, of the node id
     * @param podIp the pod's IP, of the node id, by which istiod finds the pod and its Services
     * @param labels the pod's labels, the node's {@code LABELS}
     * @param istioVersion the Istio version {@code istio_build} reports: the bootstrap node's {@code ISTIO_VERSION},
     *     else the one Inmesh claims
     */
    record Identity(WorkloadInfo local, String clusterId, String peerMetadata, String peerMetadataId, String podName,
                    String podIp, java.util.Map<String, String> labels, String istioVersion,
                    io.envoyproxy.envoy.config.core.v3.Node bootstrap) {}

    /**
     * The identity from this command's options, else the Inmesh settings {@code o} ({@code INMESH_*}), else what
     * Istio's injector gives a sidecar: the variables {@code ISTIO_META_WORKLOAD_NAME}, {@code POD_NAMESPACE},
     * {@code POD_NAME}, {@code INSTANCE_IP} and {@code ISTIO_META_CLUSTER_ID}, and the pod's labels
     * ({@link PodInfo#labels}: {@code app} and {@code version}, the canonical service and revision as Istio derives
     * them), read as the in-JVM mesh reads them ({@link PodInfo.InPod#withPod}: a setting at its default counts as
     * unset). Between the settings and Istio's variables, the {@code node} of the bootstrap {@code -c} names, as
     * Envoy's local node ({@link PodInfo.InPod#withNode}: its {@code WORKLOAD_NAME}, {@code NAMESPACE},
     * {@code CLUSTER_ID}, {@code NAME}, {@code INSTANCE_IPS}, its {@code LABELS} over the pod's); its {@code id} is
     * the {@code x-envoy-peer-metadata-id}, and its {@code ISTIO_VERSION} the tag of {@code istio_build}.
     */
    Identity identity(MeshOptions o, java.util.Map<String, String> env) {
        io.envoyproxy.envoy.config.core.v3.Node bootstrap =
                dev.inmesh.runtime.xds.EnvoyConfigReader.bootstrapNodeOrNull(config);
        java.util.Map<String, String> labels = PodInfo.labels(podInfo.resolve("labels"), env, bootstrap, warnings);
        MeshOptions in = PodInfo.InPod.withPod(PodInfo.InPod.withNode(o, bootstrap), env, labels);
        String ns = first(namespace, in.getNamespace(), null, null);
        String a = first(app, in.getApp(), null, "");
        String v = first(version, in.getVersion(), null, "");
        String workload = first(workloadName, in.getWorkloadName(), null, a);
        String cluster = first(clusterId, in.getClusterId(), null, null);
        WorkloadInfo local = PodInfo.workload(workload, ns, a, v, labels);
        String pod = first(null, in.getPodName(), null, workload.isEmpty() ? "inmesh" : workload);
        String ip = in.getPodIp();
        String id = bootstrap != null && !bootstrap.getId().isEmpty() ? bootstrap.getId()
                : dev.inmesh.runtime.xds.ads.NodeOptions.of(pod, ns, ip).nodeId();
        return new Identity(local, cluster, PeerMetadata.encode(local, cluster, in.getPodName()), id, pod, ip, labels,
                PodInfo.istioVersion(bootstrap), bootstrap);
    }

    /** Istio's metrics of the workload {@code identity}, in {@code registry}. */
    static MeshMetrics metrics(PrometheusMeterRegistry registry, Identity identity) {
        return MeshMetrics.create(registry, identity.local(), identity.clusterId(), identity.istioVersion());
    }

    /**
     * The control plane to take the configuration from ({@code --xds-address}, else {@code inmesh.xds.address}, else
     * the {@code discoveryAddress} of Istio's {@code PROXY_CONFIG}; on istiod's TLS port with the root certificate
     * and token Istio's injector mounts, when no others are set), as the sidecar node of this workload (with the
     * {@code id} and {@code cluster} of the bootstrap's {@code node} where it gives them, as Envoy), over delta
     * xDS with {@code --xds-delta} or {@code inmesh.xds.delta}; null for none. The interception mode the node reports
     * is Istio's {@code ISTIO_META_INTERCEPTION_MODE} when set, else {@code REDIRECT}, the rules' default; its
     * metadata has the {@code ISTIO_META_*} variables of {@code env}, as Istio's agent sends them ({@link #istioMeta}).
     */
    dev.inmesh.runtime.xds.ads.AdsOptions xds(MeshOptions o, Identity identity, java.util.Map<String, String> env) {
        String address = first(xdsAddress, o.getXdsAddress(), PodInfo.discoveryAddress(env, warnings), null);
        if (address == null) {
            return null;
        }
        // on istiod's TLS port, as Istio's agent reaches it: its root certificate and the pod's token
        PodInfo.istiodFiles(o.setXdsAddress(address), secrets, env);
        if (xdsDelta) {
            o.setXdsDelta(true);
        }
        String mode = first(null, null, env.get("ISTIO_META_INTERCEPTION_MODE"), "REDIRECT");
        // all the pod's labels, with the app and version labels this workload goes by; the bootstrap's id and cluster
        dev.inmesh.runtime.xds.ads.AdsOptions ads = dev.inmesh.runtime.mesh.DefaultMesh.adsOptions(
                new MeshOptions(o).setPodName(identity.podName()).setPodIp(identity.podIp()), identity.local(),
                identity.clusterId(), mode, identity.labels(), istioMeta(env));
        return ads.withNode(ads.node().withBootstrap(identity.bootstrap()));
    }

    /**
     * The node metadata Istio's agent takes from its environment ({@link PodInfo#nodeMetadata}), and
     * {@code DNS_CAPTURE} {@code true} with {@code --dns-capture}.
     */
    java.util.Map<String, String> istioMeta(java.util.Map<String, String> env) {
        java.util.Map<String, String> meta = new java.util.TreeMap<>(PodInfo.nodeMetadata(env, warnings));
        if (dnsCapture) {
            meta.put("DNS_CAPTURE", "true");
        }
        return meta;
    }

    /**
     * The DNS proxy to run: with {@code --dns-capture}, or {@code ISTIO_META_DNS_CAPTURE=true} as Istio's agent reads
     * it, the one Istio's agent runs, on {@code resolvConf}'s name servers and search domains (all asked at once with
     * {@code DNS_FORWARD_PARALLEL=true}), its metrics in {@code registry} (the agent's own, which only the agent
     * port serves, as Istio's agent's {@code istio_agent_dns_*}); null for none.
     */
    StandaloneProxy.Dns dns(java.util.Map<String, String> env, Path resolvConf,
                            io.micrometer.core.instrument.MeterRegistry registry) {
        // Istio's agent reads it with Go's ParseBool: "1", "t", "True"... turn it on; a value it cannot read, off
        if (!dnsCapture && !Boolean.TRUE.equals(
                IptablesCommand.goBool(env.getOrDefault("ISTIO_META_DNS_CAPTURE", "").trim()))) {
            return null;
        }
        // DNS_FORWARD_PARALLEL, read as Istio's agent reads it: every resolver asked at once
        boolean parallel = Boolean.TRUE.equals(
                IptablesCommand.goBool(env.getOrDefault("DNS_FORWARD_PARALLEL", "").trim()));
        return new StandaloneProxy.Dns(dev.inmesh.interception.dns.DnsProxy.Options.fromResolvConf(resolvConf)
                .withParallel(parallel), dev.inmesh.interception.dns.DnsProxy.Metrics.of(registry));
    }

    /**
     * The CA client's options from this command's options, else the settings {@code o} ({@code inmesh.identity.*});
     * null when it is not enabled. The SPIFFE identity's namespace is the workload's.
     */
    IstioCaOptions identityCa(MeshOptions o, Identity identity, java.util.Map<String, String> env) {
        if (identityDir != null) {
            o.setIdentityDir(identityDir.toString());
        }
        if (identityCa) {
            o.setIdentityCaEnabled(true);
        }
        if (caAddress != null) {
            o.setIdentityCaAddress(caAddress);
        }
        // CA_ADDR and TRUST_DOMAIN, as Istio's injector names its CA and the mesh's trust domain to its agent
        PodInfo.istioCa(o, env);
        if (xdsAddress != null) {
            o.setXdsAddress(xdsAddress);
        }
        return IstioCaOptions.fromSettings(o, identity.local().namespace(), identity.clusterId(), env);
    }

    /**
     * Fills the identity directory from Istio's CA ({@code options}), on a Vert.x of its own, and returns what stops
     * its renewals; throws when the first certificate cannot be had.
     */
    static AutoCloseable startIdentityCa(IstioCaOptions options) throws Exception {
        Vertx vertx = Vertx.vertx(StandaloneProxy.vertxOptions().setEventLoopPoolSize(1).setWorkerPoolSize(2));
        IstioCaClient client = new IstioCaClient(vertx, options);
        AutoCloseable stop = () -> client.close().eventually(vertx::close).await(10, TimeUnit.SECONDS);
        try {
            client.start().await(5, TimeUnit.MINUTES);
        } catch (Exception e) {
            stop.close();
            throw e;
        }
        return stop;
    }

    /**
     * Gives the identity directory, filled as root before the privilege drop, and Istio's three files in it to the
     * user the proxy becomes ({@code uid}, {@code gid}; -1: the uid's number), as Istio's agent, running as 1337, owns
     * the files it writes: the proxy then reads the key it watches and writes its renewals, where a directory of
     * root's kept every renewal out. Does nothing when {@code uid} is -1.
     */
    static void handIdentityTo(Path dir, int uid, int gid) throws java.io.IOException {
        if (uid < 0) {
            return;
        }
        int group = gid < 0 ? uid : gid;
        java.util.List<Path> owned = new java.util.ArrayList<>(java.util.List.of(dir));
        owned.addAll(new dev.inmesh.runtime.tls.WorkloadIdentity(dir).files());
        for (Path p : owned) {
            java.nio.file.Files.setAttribute(p, "unix:uid", uid, java.nio.file.LinkOption.NOFOLLOW_LINKS);
            java.nio.file.Files.setAttribute(p, "unix:gid", group, java.nio.file.LinkOption.NOFOLLOW_LINKS);
        }
    }

    /**
     * With a workload identity, this proxy's TLS servers take an Istio sidecar's SNI, which is no DNS name
     * ({@link dev.inmesh.runtime.tls.ServerTls#acceptIstioServerNames}), a chain's requested server name coming from
     * its TLS inspector instead. To be called before the JVM's TLS starts, which reads the setting once.
     */
    static void acceptIstioServerNames(dev.inmesh.runtime.tls.WorkloadIdentity identity) {
        if (identity != null) {
            dev.inmesh.runtime.tls.ServerTls.acceptIstioServerNames();
        }
    }

    /** The workload identity directory: {@code --identity-dir}, else {@code inmesh.identity.dir}; null for none. */
    dev.inmesh.runtime.tls.WorkloadIdentity workloadIdentity(MeshOptions o) {
        return dev.inmesh.runtime.tls.WorkloadIdentity.of(first(identityDir == null ? null : identityDir.toString(),
                o.getIdentityDir(), null, null));
    }

    /**
     * The line that tells the proxy is up: the addresses it listens on; the listeners that bind none of their own
     * ({@code bind_to_port: false}, as Istio's per-port outbound ones), which take the connections a
     * {@code use_original_dst} listener hands them; and the xDS server, if any, whose listeners come as they arrive.
     */
    static String listeningLine(java.util.List<java.net.InetSocketAddress> addresses,
                                java.util.Collection<dev.inmesh.api.config.listener.Listener> listeners,
                                dev.inmesh.runtime.xds.ads.AdsOptions xds) {
        java.util.List<String> unbound = listeners.stream().filter(l -> !l.bindToPort())
                .map(dev.inmesh.api.config.listener.Listener::name).toList();
        return "inmesh proxy: listening on " + addresses + (unbound.isEmpty() ? ""
                : "; not bound (bind_to_port: false, for the connections a use_original_dst listener hands on): "
                        + unbound) + (xds == null ? ""
                : "; the listeners of xDS server " + xds.servers().get(0).address() + " as they arrive, as node "
                        + xds.node().nodeId());
    }

    private static String first(String option, String setting, String env, String otherwise) {
        for (String s : new String[] {option, setting, env}) {
            if (s != null && !s.isEmpty()) {
                return s;
            }
        }
        return otherwise;
    }

    @Override
    public Integer call() throws Exception {
        MeshOptions o = MeshSettings.fromConfiguration();
        dev.inmesh.runtime.tls.WorkloadIdentity workloadIdentity = workloadIdentity(o);
        acceptIstioServerNames(workloadIdentity);
        Identity identity = identity(o, System.getenv());
        WorkloadInfo local = identity.local();
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        try {
            // the bootstrap's stats_config, before any meter exists: the statistics its stats_matcher rejects are
            // never made, as Envoy's (Istio's bootstrap keeps the managers', the server's and the RBAC counters), and
            // its histogram_bucket_settings set the buckets of those it makes; the admin hook takes its stats tags
            dev.inmesh.runtime.admin.BootstrapStats.configure(registry, config);
        } catch (IllegalArgumentException e) {
            System.err.println("inmesh proxy: " + config + ": " + e.getMessage());
            return 1;
        }
        MeshMetrics metrics = metrics(registry, identity);
        // Istio's agent's own metrics (its scrape counters, its DNS proxy's istio_agent_dns_*): served on the agent
        // port alone, before the proxy's, never on 15090 nor the admin's /stats/prometheus, which are Envoy's
        PrometheusMeterRegistry agentRegistry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        Consumer<StreamInfo> observer = metrics::record;
        // a line per tcp_proxy connection too, apart from the requests' observer: a connection is not a request
        Consumer<dev.inmesh.runtime.stats.TcpStreamInfo> tcpAccessLog = null;
        AccessLog lines = null;
        if (accessLog != null) {
            Consumer<String> log;
            if (accessLog.toString().equals("/dev/stdout")) {
                log = System.out::println;
            } else {
                // opened now, before the proxy drops its privileges (as user 1337 it may not open a file root
                // made), so a file that cannot be opened fails the start; opened again after each POST /reopen_logs
                Consumer<String> file = dev.inmesh.runtime.accesslog.AccessLogs.file(accessLog.toString(),
                        new java.io.PrintStream(new FileOutputStream(accessLog.toFile(), true), true,
                                java.nio.charset.StandardCharsets.UTF_8));
                log = line -> file.accept(line + System.lineSeparator());
            }
            // written by a thread of its own: the observer runs on an event loop, which must not wait for the disk
            lines = accessLog(o, log);
            tcpAccessLog = lines::log;
        }
        // a request is written to its connection manager's own access_log when it names one, else to --access-log
        observer = observer.andThen(dev.inmesh.runtime.accesslog.AccessLogs.observer(lines));
        // counted down by the shutdown hook once the proxy is closed, or by /quitquitquit: call() then returns and
        // the process exits, running the hook
        CountDownLatch stopped = new CountDownLatch(1);
        java.util.concurrent.atomic.AtomicReference<StandaloneProxy> started =
                new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.atomic.AtomicBoolean quit = new java.util.concurrent.atomic.AtomicBoolean();
        StandaloneProxy proxy;
        dev.inmesh.runtime.xds.ads.AdsOptions xds;
        AutoCloseable identityStop = null;
        Termination termination;
        try {
            termination = termination(System.getenv(), warnings);
            java.time.Duration listenerDrain = listenerDrainTime(System.getenv(), warnings);
            // what Istio's injector passes its agent for the application: its metrics to merge, its probes
            checkPort("--status-port", statusPort);
            checkPort("--health-port", healthPort);
            checkPort("--prometheus-port", prometheusPort);
            IstioAgent.Settings agent = noAdmin ? IstioAgent.Settings.NONE : IstioAgent.Settings.fromEnvironment(
                    System.getenv(), statusPort != null ? statusPort : AdminHook.Addresses.DEFAULTS.agent().getPort());
            // /quitquitquit stops at once, with no drain, as Istio's agent (which skips its drain then) and Envoy
            AdminHook admin = adminHook(registry, config, identity.peerMetadataId(), () -> {
                quit.set(true);
                StandaloneProxy running = started.get();
                if (running != null) {
                    running.skipDrain();
                }
                stopped.countDown();
            }, agent, workloadIdentity, agentRegistry).withPorts(healthPort, prometheusPort, statusPort);
            xds = xds(o, identity, System.getenv());
            if (config == null && xds == null) {
                throw new IllegalArgumentException("no configuration: give -c CONFIG, --xds-address HOST:PORT "
                        + "(or INMESH_XDS_ADDRESS), or both");
            }
            IstioCaOptions ca = identityCa(o, identity, System.getenv());
            if (ca != null) {
                if (uid >= 0 && dev.inmesh.interception.proxy.PrivilegeDrop.isRoot()) {
                    // root until the listeners are bound, but in the proxy's group already: the capture rules
                    // return that group's connections as they return its user's, so the CA's is not captured (to a
                    // 15001 nobody listens on yet), as Istio's agent, running as 1337, is never captured
                    dev.inmesh.interception.proxy.PrivilegeDrop.group(gid < 0 ? uid : gid);
                }
                identityStop = startIdentityCa(ca);
                handIdentityTo(ca.dir(), uid, gid);
            }
            // a configuration whose TLS reads the files waits for them as it is parsed
            var parsed = dev.inmesh.runtime.tls.WorkloadIdentity.forParsing(workloadIdentity, ca != null,
                    o.getIdentityWaitSeconds());
            proxy = StandaloneProxy.start(new StandaloneProxy.Settings(config, uid, gid, eventLoops, observer,
                    noAdmin ? AdminHook.NONE : admin)
                    .withStats(metrics::tcpConnection, metrics::upstream)
                    .withDownstreamStats(metrics::connectionManager, metrics::listener)
                    .withNetworkStats(metrics)
                    .withTcpAccessLog(tcpAccessLog)
                    .withIdentity(local, identity.peerMetadata(), identity.peerMetadataId())
                    .withDrainTime(listenerDrain)
                    .withTransport(transport)
                    .withXds(xds)
                    .withWorkloadIdentity(parsed)
                    .withDns(dns(System.getenv(), Path.of("/etc/resolv.conf"), agentRegistry)));
            proxy.tracing().publish(registry); // Envoy's tracing.*, with the proxy's other statistics
            started.set(proxy);
        } catch (Exception e) {
            System.err.println("inmesh proxy: " + e.getMessage());
            closeQuietly(identityStop);
            return 1;
        }
        System.err.println(listeningLine(proxy.addresses(), proxy.snapshots().current().resources().listeners()
                .values(), xds));
        // SIGTERM (and SIGINT): the inbound listeners drained as Istio's agent drains its sidecar at pod shutdown,
        // then closed; the process then exits 0, as Envoy and Istio's agent do when a signal stopped them (the JVM
        // would exit 143 after its hooks: a container Kubernetes shows as Error rather than Completed). Halted with 0
        // whoever started the JVM's shutdown, a signal or call()'s return after /quitquitquit (which exits 0 anyway):
        // a quit during a signal's drain ends that drain, and the JVM would still exit with the signal's status
        AutoCloseable identityCaStop = identityStop;
        // the JDK's own hook closes the log handlers as the JVM starts to stop: held open until the stop is over
        Runnable logsReleased = ProxyLogManager.hold();
        Thread stop = new Thread(() -> {
            try {
                if (quit.get()) {
                    proxy.skipDrain();
                }
                proxy.drainAndClose(termination.drain(), termination.exitOnZeroConnections(),
                        termination.minimum(), StandaloneProxy.istioListeners(termination.istioListenerPorts()));
            } catch (Exception e) {
                // stopping anyway
            }
            try {
                closeQuietly(identityCaStop);
                // the access log lines of the last requests, which the writers' daemon threads may still hold
                dev.inmesh.runtime.accesslog.AccessLogSink.flushAll(java.time.Duration.ofSeconds(2));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                // whatever failed above: the logs let go (else the JDK's own hook would wait for ever) and the halt
                stopped.countDown();
                logsReleased.run();
                System.err.flush();
                System.out.flush();
                Runtime.getRuntime().halt(0);
            }
        }, "inmesh-proxy-stop");
        try {
            Runtime.getRuntime().addShutdownHook(stop);
        } catch (IllegalStateException stopping) {
            // a signal came before the hook was in: nothing drains; the logs are let go so that the JVM can stop
            logsReleased.run();
            closeQuietly(proxy);
            closeQuietly(identityCaStop);
            return 0;
        }
        stopped.await();
        return 0;
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c != null) {
            try {
                c.close();
            } catch (Exception e) {
                // stopping anyway
            }
        }
    }

    /**
     * The proxy's admin server, laid out as Istio's sidecar: every endpoint on the admin address,
     * {@code /healthz/ready} on the health port, {@code /stats/prometheus} on the Prometheus port, and the agent
     * port's stats, readiness and {@code /quitquitquit}; {@code nodeId} is the node {@code /server_info} and the
     * config dump's bootstrap name, {@code quit} what {@code POST /quitquitquit} runs (on an event loop);
     * {@code /drain_listeners} on the admin address drains the proxy's listeners; {@code /stats/prometheus} names the
     * tags of Envoy's statistics as the bootstrap {@code config}'s {@code stats_config} says
     * ({@link dev.inmesh.runtime.admin.StatsTags}).
     */
    static AdminHook adminHook(PrometheusMeterRegistry registry, Path config, String nodeId, Runnable quit) {
        return adminHook(registry, config, nodeId, quit, IstioAgent.Settings.NONE);
    }

    /** The same, the agent port serving the application's metrics and probes as {@code agent} says. */
    static AdminHook adminHook(PrometheusMeterRegistry registry, Path config, String nodeId, Runnable quit,
                               IstioAgent.Settings agent) {
        return adminHook(registry, config, nodeId, quit, agent, null);
    }

    /**
     * The same, its {@code /config_dump} showing the Istio SDS secrets {@code default} and {@code ROOTCA} from the
     * workload identity directory {@code identity} (null: none).
     */
    static AdminHook adminHook(PrometheusMeterRegistry registry, Path config, String nodeId, Runnable quit,
                               IstioAgent.Settings agent, dev.inmesh.runtime.tls.WorkloadIdentity identity) {
        return adminHook(registry, config, nodeId, quit, agent, identity,
                new PrometheusMeterRegistry(PrometheusConfig.DEFAULT));
    }

    /**
     * The same, {@code agentRegistry} holding the agent's own metrics (its scrape counters, the DNS proxy's), which
     * the agent port serves before the proxy's {@code registry} and the proxy's own ports never serve.
     */
    static AdminHook adminHook(PrometheusMeterRegistry registry, Path config, String nodeId, Runnable quit,
                               IstioAgent.Settings agent, dev.inmesh.runtime.tls.WorkloadIdentity identity,
                               PrometheusMeterRegistry agentRegistry) {
        // as Envoy's local node, a bootstrap's node where there is no xDS server: Istio's envoy-rev.json names the
        // sidecar (its id, cluster, ISTIO_VERSION, labels) there
        io.envoyproxy.envoy.config.core.v3.Node bootstrap =
                dev.inmesh.runtime.xds.EnvoyConfigReader.bootstrapNodeOrNull(config);
        io.envoyproxy.envoy.config.core.v3.Node local = bootstrap == null ? null
                : dev.inmesh.runtime.xds.ads.NodeBuilder.local(bootstrap);
        String id = local != null && !local.getId().isEmpty() ? local.getId() : nodeId;
        // the bootstrap's stats tags name the tags of Envoy's statistics in /stats/prometheus; Istio's without one
        dev.inmesh.runtime.admin.StatsTags tags = dev.inmesh.runtime.admin.StatsTags.ofFile(config);
        return (vertx, snapshots, addresses, drain, xds, sds) -> {
            AdminServer server = AdminServer.builder(vertx).snapshots(snapshots).registry(registry)
                    .statsTags(tags)
                    .agent(new IstioAgent(vertx, agent, agentRegistry))
                    .clusterStatus(new ClusterManagerStatus(snapshots))
                    .configPath(config == null ? null : config.toString())
                    .nodeId(id).node(() -> xds != null ? xds.node() : local).quit(quit).drainListeners(drain)
                    .xdsStatus(() -> xds != null && xds.status() != null
                            ? dev.inmesh.runtime.xds.ads.XdsStatusJson.encode(xds.status()) : null)
                    .dynamicState(() -> xds != null ? xds.dynamicState() : null)
                    .identity(identity).sds(sds)
                    .mount(mount(addresses.admin(), AdminServer.Mount.admin()))
                    .mount(mount(addresses.health(), AdminServer.Mount.health()))
                    .mount(mount(addresses.prometheus(), AdminServer.Mount.prometheus()))
                    .mount(mount(addresses.agent(), AdminServer.Mount.agent()))
                    .build();
            server.start().await(30, TimeUnit.SECONDS);
            return () -> server.close().await(10, TimeUnit.SECONDS);
        };
    }

    /** The node of the bootstrap file {@code config}; null when it has none (or is no file that reads). */
    /** {@code endpoints}' endpoints at {@code address}, or null when it is not served. */
    private static AdminServer.Mount mount(java.net.InetSocketAddress address, AdminServer.Mount endpoints) {
        return address == null ? null
                : new AdminServer.Mount(address.getHostString(), address.getPort(), endpoints.endpoints());
    }

    private static void checkPort(String option, Integer port) {
        if (port != null && (port < 0 || port > 65_535)) {
            throw new IllegalArgumentException(option + ": " + port + " (expected: a port, 1 to 65535, or 0 for none)");
        }
    }

    /**
     * The proxy's access log in the format {@code inmesh.access-log.format} names (Istio's text format by default),
     * its lines written to {@code writer} by a thread of its own.
     */
    static AccessLog accessLog(MeshOptions o, Consumer<String> writer) {
        AccessLog.Format format = o.getAccessLogFormat() == MeshOptions.AccessLogFormat.JSON
                ? AccessLog.Format.JSON : AccessLog.Format.TEXT;
        return AccessLog.create(format, AccessLogSink.queued(writer));
    }
}
