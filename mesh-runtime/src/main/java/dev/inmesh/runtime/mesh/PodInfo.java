package dev.inmesh.runtime.mesh;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.identity.IstioCaOptions;
import dev.inmesh.runtime.stats.WorkloadInfo;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * What a pod tells its sidecar about itself beyond plain variables, read as Istio's agent reads it: the pod's labels
 * from the downward API file Istio's injector mounts ({@code /etc/istio/pod/labels}, one {@code key="value"} per
 * line, the value quoted as Go quotes a string), over the older injectors' {@code ISTIO_METAJSON_LABELS} (a JSON
 * object); the members of every {@code ISTIO_METAJSON_*} variable's JSON object, which the agent puts into the
 * node's metadata as they are; the xDS server the {@code PROXY_CONFIG} variable names; and the files by which the
 * agent reaches istiod's TLS port. {@code inmesh proxy} and the in-JVM mesh both read the pod through it.
 */
public final class PodInfo {
    /** The label a Deployment's ReplicaSet adds to each pod, which the agent leaves out of the node's labels. */
    public static final String POD_TEMPLATE_HASH = "pod-template-hash";
    public static final String METAJSON_PREFIX = "ISTIO_METAJSON_";
    /** Istio's agent's variables of node metadata, one member each. */
    public static final String META_PREFIX = "ISTIO_META_";
    /** The discovery address of Istio's default ProxyConfig. */
    public static final String DEFAULT_DISCOVERY_ADDRESS = "istiod.istio-system.svc:15012";
    /** Where Istio's injector mounts the pod's downward API files ({@code labels}, {@code annotations}). */
    public static final Path POD_INFO_DIR = Path.of("/etc/istio/pod");
    /**
     * Where Istio's injector mounts istiod's root certificate ({@code istio/root-cert.pem}) and the pod's token for
     * istiod ({@code tokens/istio-token}), beside the service account's own ({@code kubernetes.io/serviceaccount}).
     */
    public static final Path SECRETS_DIR = Path.of("/var/run/secrets");

    private PodInfo() {}

    /**
     * The settings of an in-JVM mesh in its pod.
     *
     * @param options the settings, with what the pod tells where they leave it unset ({@link #read})
     * @param labels the pod's labels ({@link PodInfo#labels}), the node's {@code LABELS}
     * @param metadata the node metadata of the {@code ISTIO_META_*} and {@code ISTIO_METAJSON_*} variables
     *     ({@link PodInfo#nodeMetadata})
     * @param bootstrap the {@code node} of the settings' configuration file, Envoy's local node; null for none
     */
    public record InPod(MeshOptions options, Map<String, String> labels, Map<String, String> metadata,
                        io.envoyproxy.envoy.config.core.v3.Node bootstrap) {
        public InPod {
            Objects.requireNonNull(options, "options");
            labels = Map.copyOf(labels);
            metadata = Map.copyOf(metadata);
        }

        /** The Istio version of the bootstrap's node ({@code ISTIO_VERSION}), else the one Inmesh claims. */
        public String istioVersion() {
            return PodInfo.istioVersion(bootstrap);
        }

        /**
         * The settings {@code o} in the pod that the variables {@code env} and the downward API directory
         * {@code podInfo} describe, as Istio's agent reads a pod: where {@code o} leaves a setting unset, the pod's
         * ({@link #withPod}); an xDS server on
         * istiod's TLS port is reached with the root certificate and token mounted under {@code secrets}
         * ({@link PodInfo#istiodFiles}); Istio's CA is {@code CA_ADDR} and the trust domain {@code TRUST_DOMAIN}
         * ({@link PodInfo#istioCa}). Outside a pod (none of the variables, no labels file, none of the files)
         * the settings are {@code o}'s; none names an xDS server. What cannot be read is told to {@code warn}.
         * A configuration file ({@code inmesh.config.file}) that is a bootstrap with a {@code node} names the
         * workload between the two ({@link #withNode}): the settings win over it, it over the pod's variables and
         * labels.
         */
        public static InPod read(MeshOptions o, Map<String, String> env, Path podInfo, Path secrets,
                                 Consumer<String> warn) {
            io.envoyproxy.envoy.config.core.v3.Node bootstrap = o.getConfigFile() == null ? null
                    : dev.inmesh.runtime.xds.EnvoyConfigReader.bootstrapNodeOrNull(Path.of(o.getConfigFile()));
            Map<String, String> labels = PodInfo.labels(podInfo.resolve("labels"), env, bootstrap, warn);
            MeshOptions in = withPod(withNode(o, bootstrap), env, labels);
            return new InPod(istioCa(istiodFiles(in, secrets, env), env), labels, nodeMetadata(env, warn),
                    bootstrap);
        }

        /**
         * A copy of the settings {@code o} where each one it leaves unset (at its default) is what a bootstrap's
         * {@code node} says in the metadata Istio's agent writes there, as Istio's stats and metadata exchange read
         * their local node: the pod's name {@code NAME}, its IP the first of {@code INSTANCE_IPS}, its namespace
         * {@code NAMESPACE}, its workload {@code WORKLOAD_NAME} and its cluster {@code CLUSTER_ID} (its app and
         * version come with the node's {@code LABELS}: {@link PodInfo#labels(Path, Map,
         * io.envoyproxy.envoy.config.core.v3.Node, Consumer)}). {@code node} null: a copy of {@code o}.
         */
        public static MeshOptions withNode(MeshOptions o, io.envoyproxy.envoy.config.core.v3.Node node) {
            MeshOptions in = new MeshOptions(o);
            MeshOptions defaults = new MeshOptions();
            if (in.getPodName().isEmpty()) {
                unlessEmpty(nodeMeta(node, "NAME"), in::setPodName);
            }
            if (in.getPodIp().equals(defaults.getPodIp())) {
                String ips = nodeMeta(node, "INSTANCE_IPS");
                unlessEmpty(ips == null ? null : ips.split(",", -1)[0].strip(), in::setPodIp);
            }
            if (in.getNamespace().equals(defaults.getNamespace())) {
                unlessEmpty(nodeMeta(node, "NAMESPACE"), in::setNamespace);
            }
            if (in.getWorkloadName().isEmpty()) {
                unlessEmpty(nodeMeta(node, "WORKLOAD_NAME"), in::setWorkloadName);
            }
            if (in.getClusterId().equals(defaults.getClusterId())) {
                unlessEmpty(nodeMeta(node, "CLUSTER_ID"), in::setClusterId);
            }
            return in;
        }

        /**
         * A copy of the settings {@code o} where each one it leaves unset (at its default) is what the pod's
         * variables {@code env} and labels {@code labels} give: the pod's name {@code POD_NAME}, its IP
         * {@code INSTANCE_IP}, its namespace {@code POD_NAMESPACE}, its app and version its {@code app} and
         * {@code version} labels, its workload {@code ISTIO_META_WORKLOAD_NAME} and its cluster
         * {@code ISTIO_META_CLUSTER_ID}: the one precedence the in-JVM mesh and {@code inmesh proxy} read a pod by.
         */
        public static MeshOptions withPod(MeshOptions o, Map<String, String> env, Map<String, String> labels) {
            MeshOptions in = new MeshOptions(o);
            if (in.getPodName().isEmpty()) {
                unlessEmpty(env.get("POD_NAME"), in::setPodName);
            }
            if (in.getPodIp().equals(new MeshOptions().getPodIp())) {
                unlessEmpty(env.get("INSTANCE_IP"), in::setPodIp);
            }
            if (in.getNamespace().equals(new MeshOptions().getNamespace())) {
                unlessEmpty(env.get("POD_NAMESPACE"), in::setNamespace);
            }
            if (in.getApp().isEmpty()) {
                unlessEmpty(labels.get("app"), in::setApp);
            }
            if (in.getVersion().isEmpty()) {
                unlessEmpty(labels.get("version"), in::setVersion);
            }
            if (in.getWorkloadName().isEmpty()) {
                unlessEmpty(env.get("ISTIO_META_WORKLOAD_NAME"), in::setWorkloadName);
            }
            if (in.getClusterId().equals(new MeshOptions().getClusterId())) {
                unlessEmpty(env.get("ISTIO_META_CLUSTER_ID"), in::setClusterId);
            }
            return in;
        }

        private static void unlessEmpty(String value, Consumer<String> set) {
            if (value != null && !value.isEmpty()) {
                set.accept(value);
            }
        }
    }

    /**
     * The node metadata Istio's agent takes from its environment: each {@code ISTIO_META_NAME} variable as metadata
     * {@code NAME} (istiod reads, for instance, {@code DNS_CAPTURE}, {@code DNS_AUTO_ALLOCATE}, {@code HTTP10},
     * {@code NETWORK}, {@code MESH_ID}) over the {@code proxyMetadata} of {@code PROXY_CONFIG}
     * ({@link #proxyMetadata}), then the members of each {@code ISTIO_METAJSON_*} variable's JSON object
     * ({@link #metaJson}).
     */
    public static Map<String, String> nodeMetadata(Map<String, String> env, Consumer<String> warn) {
        Map<String, String> meta = new TreeMap<>(proxyMetadata(env));
        env.forEach((name, value) -> {
            if (name.startsWith(META_PREFIX) && name.length() > META_PREFIX.length()) {
                meta.put(name.substring(META_PREFIX.length()), value);
            }
        });
        meta.putAll(metaJson(env, warn));
        return meta;
    }

    /**
     * The pod's labels: {@code ISTIO_METAJSON_LABELS}'s, then the downward API file's over them (without
     * {@code pod-template-hash}); empty outside a pod. A file that cannot be read, a line or a JSON value that cannot
     * be parsed is told to {@code warn} and left out.
     */
    public static Map<String, String> labels(Path file, Map<String, String> env, Consumer<String> warn) {
        Map<String, String> labels = new TreeMap<>();
        String json = env.get(METAJSON_PREFIX + "LABELS");
        if (json != null) {
            labels.putAll(strings(METAJSON_PREFIX + "LABELS", json, warn));
        }
        try {
            labels.putAll(downwardApi(Files.readString(file, StandardCharsets.UTF_8), file, warn));
            labels.remove(POD_TEMPLATE_HASH);
        } catch (NoSuchFileException e) {
            // not in a pod, or a pod without the podinfo volume: as the agent, without a word
        } catch (IOException | RuntimeException e) {
            warn.accept("cannot read the pod's labels from " + file + ": " + e.getMessage());
        }
        return labels;
    }

    /**
     * The pod's labels ({@link #labels(Path, Map, Consumer)}) with the string members of the {@code LABELS} of a
     * bootstrap's {@code node} (null: none) over them, as Envoy takes its local node's.
     */
    public static Map<String, String> labels(Path file, Map<String, String> env,
                                             io.envoyproxy.envoy.config.core.v3.Node node, Consumer<String> warn) {
        Map<String, String> labels = labels(file, env, warn);
        if (node != null) {
            node.getMetadata().getFieldsOrDefault("LABELS", com.google.protobuf.Value.getDefaultInstance())
                    .getStructValue().getFieldsMap().forEach((k, v) -> {
                        if (v.hasStringValue()) {
                            labels.put(k, v.getStringValue());
                        }
                    });
        }
        return labels;
    }

    /** A string member of a bootstrap node's metadata; null when {@code node} is null or has none by that name. */
    public static String nodeMeta(io.envoyproxy.envoy.config.core.v3.Node node, String key) {
        com.google.protobuf.Value v = node == null ? null : node.getMetadata().getFieldsMap().get(key);
        return v == null || !v.hasStringValue() || v.getStringValue().isEmpty() ? null : v.getStringValue();
    }

    /**
     * The Istio version of a bootstrap's {@code node} ({@code ISTIO_VERSION}, which Istio's stats filter reports as
     * the tag of {@code istio_build}), else the one Inmesh claims to istiod
     * ({@link dev.inmesh.runtime.xds.ads.NodeOptions#ISTIO_VERSION}).
     */
    public static String istioVersion(io.envoyproxy.envoy.config.core.v3.Node node) {
        String v = nodeMeta(node, "ISTIO_VERSION");
        return v != null ? v : dev.inmesh.runtime.xds.ads.NodeOptions.ISTIO_VERSION;
    }

    /**
     * The node metadata the {@code ISTIO_METAJSON_*} variables give: each one's JSON object's members, as the agent
     * merges them into the metadata (their string values; other values are left out, with a warning, which for
     * {@code ISTIO_METAJSON_LABELS} {@link #labels} gives).
     */
    public static Map<String, String> metaJson(Map<String, String> env, Consumer<String> warn) {
        Map<String, String> meta = new TreeMap<>();
        new TreeMap<>(env).forEach((name, value) -> {
            if (name.startsWith(METAJSON_PREFIX)) {
                // ISTIO_METAJSON_LABELS' members are the pod's labels too: what they lack is told once, by labels
                meta.putAll(strings(name, value, name.equals(METAJSON_PREFIX + "LABELS") ? w -> { } : warn));
            }
        });
        return meta;
    }

    /**
     * The xDS server Istio's injector names to its agent: the {@code discoveryAddress} of the {@code PROXY_CONFIG}
     * variable (the pod's ProxyConfig, in YAML as the agent reads it, or JSON as the injector writes it), else Istio's
     * default ({@value #DEFAULT_DISCOVERY_ADDRESS}), which the injector leaves out ({@code PROXY_CONFIG: {}}); null
     * without the variable. A {@code PROXY_CONFIG} that cannot be read is told to {@code warn}, and names no server.
     */
    public static String discoveryAddress(Map<String, String> env, Consumer<String> warn) {
        JsonObject config = proxyConfig(env, warn);
        if (config == null) {
            return null;
        }
        String address = config.getValue("discoveryAddress") instanceof String a ? a : null;
        return address == null || address.isEmpty() ? DEFAULT_DISCOVERY_ADDRESS : address;
    }

    /**
     * A duration of the {@code PROXY_CONFIG} variable's ProxyConfig, such as {@code drainDuration} or
     * {@code terminationDrainDuration}, in protobuf's JSON form ({@code 45s}, {@code 1.5s}) as Istio's agent reads
     * it; null when the variable or the field is absent. One that does not read, or is negative, is told to
     * {@code warn}, naming the field, and is null (a {@code PROXY_CONFIG} that cannot be read at all is told by
     * {@link #discoveryAddress}).
     */
    public static java.time.Duration proxyConfigDuration(Map<String, String> env, String field,
                                                         Consumer<String> warn) {
        JsonObject config = proxyConfig(env, w -> { });
        Object value = config == null ? null : config.getValue(field);
        if (value == null) {
            return null;
        }
        try {
            com.google.protobuf.Duration d = com.google.protobuf.util.Durations.parse(String.valueOf(value));
            if (!com.google.protobuf.util.Durations.isNegative(d)) {
                return java.time.Duration.ofSeconds(d.getSeconds(), d.getNanos());
            }
        } catch (java.text.ParseException e) {
            // told below
        }
        warn.accept("PROXY_CONFIG " + field + ": " + value + " (expected: a duration such as 45s); left out");
        return null;
    }

    /**
     * The node metadata the {@code proxyMetadata} of {@code PROXY_CONFIG} gives, as Istio's agent takes it: each
     * {@code ISTIO_META_NAME} entry as {@code NAME} (the agent's own variables come after and win).
     */
    public static Map<String, String> proxyMetadata(Map<String, String> env) {
        Map<String, String> meta = new TreeMap<>();
        JsonObject config = proxyConfig(env, w -> { }); // told once, by discoveryAddress
        if (config != null && config.getValue("proxyMetadata") instanceof JsonObject m) {
            m.forEach(e -> {
                if (e.getKey().startsWith("ISTIO_META_") && e.getValue() instanceof String v) {
                    meta.put(e.getKey().substring("ISTIO_META_".length()), v);
                }
            });
        }
        return meta;
    }

    /**
     * The settings {@code o} with the files by which Istio's agent reaches istiod's TLS port, when {@code o}'s xDS
     * server is on it ({@value IstioCaOptions#ISTIOD_TLS_PORT}) and leaves them unset: the root certificate
     * {@code istio/root-cert.pem} and the token {@code tokens/istio-token} under {@code secrets} (with
     * {@code JWT_POLICY=first-party-jwt} in {@code env}, the service account's own token
     * {@code kubernetes.io/serviceaccount/token}), each when it exists. Returns {@code o}, changed.
     */
    public static MeshOptions istiodFiles(MeshOptions o, Path secrets, Map<String, String> env) {
        if (o.getXdsAddress() == null || !o.getXdsAddress().endsWith(":" + IstioCaOptions.ISTIOD_TLS_PORT)) {
            return o;
        }
        Path root = secrets.resolve("istio/root-cert.pem");
        Path token = secrets.resolve("first-party-jwt".equals(env.get("JWT_POLICY"))
                ? "kubernetes.io/serviceaccount/token" : "tokens/istio-token");
        if (o.getXdsCaFile() == null && Files.isRegularFile(root)) {
            o.setXdsCaFile(root.toString());
        }
        if (o.getXdsTokenFile() == null && Files.isRegularFile(token)) {
            o.setXdsTokenFile(token.toString());
        }
        return o;
    }

    /**
     * The settings {@code o} with Istio's CA as Istio's injector names it to its agent: {@code CA_ADDR} of {@code env}
     * when {@code o} names no CA address, and the mesh's trust domain {@code TRUST_DOMAIN} when {@code o}'s is the
     * default. Returns {@code o}, changed.
     */
    public static MeshOptions istioCa(MeshOptions o, Map<String, String> env) {
        String ca = env.get("CA_ADDR");
        if (o.getIdentityCaAddress() == null && ca != null && !ca.isEmpty()) {
            o.setIdentityCaAddress(ca);
        }
        String trustDomain = env.get("TRUST_DOMAIN");
        if (o.getIdentityTrustDomain().equals(new MeshOptions().getIdentityTrustDomain()) && trustDomain != null
                && !trustDomain.isEmpty()) {
            o.setIdentityTrustDomain(trustDomain);
        }
        return o;
    }

    /**
     * Istio's canonical service of a pod with these labels: {@code service.istio.io/canonical-name}, else
     * {@code app.kubernetes.io/name}; null when it has neither (Istio then takes the app, else the workload).
     */
    public static String canonicalName(Map<String, String> labels) {
        return firstLabel(labels, "service.istio.io/canonical-name", "app.kubernetes.io/name");
    }

    /**
     * Istio's canonical revision of a pod with these labels: {@code service.istio.io/canonical-revision}, else
     * {@code app.kubernetes.io/version}; null when it has neither (Istio then takes the version, else latest).
     */
    public static String canonicalRevision(Map<String, String> labels) {
        return firstLabel(labels, "service.istio.io/canonical-revision", "app.kubernetes.io/version");
    }

    /**
     * The workload of a pod with these {@code labels}, as its metrics and peer metadata name it: its canonical
     * service and revision are the labels' ({@link #canonicalName}, {@link #canonicalRevision}), else what
     * {@link WorkloadInfo#WorkloadInfo(String, String, String, String)} derives from the app, version and workload.
     */
    public static WorkloadInfo workload(String workload, String namespace, String app, String version,
                                        Map<String, String> labels) {
        WorkloadInfo named = new WorkloadInfo(workload, namespace, app, version);
        String canonical = canonicalName(labels);
        String revision = canonicalRevision(labels);
        return new WorkloadInfo(workload, namespace, app, version,
                canonical != null ? canonical : named.canonicalService(),
                revision != null ? revision : named.canonicalRevision(), null);
    }

    private static String firstLabel(Map<String, String> labels, String... names) {
        for (String name : names) {
            String v = labels.get(name);
            if (v != null && !v.isEmpty()) {
                return v;
            }
        }
        return null;
    }

    private static JsonObject proxyConfig(Map<String, String> env, Consumer<String> warn) {
        String config = env.get("PROXY_CONFIG");
        if (config == null || config.isBlank()) {
            return null;
        }
        Object parsed;
        try {
            // YAML, as Istio's agent reads it (the injector writes JSON, which is YAML too)
            parsed = new ObjectMapper(new YAMLFactory()).readValue(config, Object.class);
        } catch (IOException e) {
            warn.accept("PROXY_CONFIG is not a YAML or JSON ProxyConfig; left out: " + e.getMessage());
            return null;
        }
        if (!(parsed instanceof Map<?, ?> m)) {
            warn.accept("PROXY_CONFIG is not a YAML or JSON ProxyConfig (an object); left out: " + config);
            return null;
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> members = (Map<String, Object>) m;
        return new JsonObject(members);
    }

    /** A {@code labels} or {@code annotations} file of the downward API: {@code key="value"} lines. */
    public static Map<String, String> downwardApi(String text, Path file, Consumer<String> warn) {
        Map<String, String> entries = new TreeMap<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) {
                continue;
            }
            int eq = line.indexOf('=');
            String value = eq < 1 ? null : unquote(line.substring(eq + 1).strip());
            if (value == null) {
                warn.accept(file + ": line " + line + " is not key=\"value\"; left out");
                continue;
            }
            entries.put(line.substring(0, eq).strip(), value);
        }
        return entries;
    }

    /** A string in Go's double quotes with its escapes ({@code \"}, {@code \\}, {@code \n}, {@code \xHH}, ...). */
    public static String unquote(String quoted) {
        if (quoted.length() < 2 || quoted.charAt(0) != '"' || quoted.charAt(quoted.length() - 1) != '"') {
            return null;
        }
        StringBuilder out = new StringBuilder(quoted.length());
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (int i = 1; i < quoted.length() - 1; i++) {
            char c = quoted.charAt(i);
            if (c != '\\') {
                flush(bytes, out);
                out.append(c);
                continue;
            }
            if (++i >= quoted.length() - 1) {
                return null;
            }
            char e = quoted.charAt(i);
            int digits = switch (e) {
                case 'x' -> 2;
                case 'u' -> 4;
                case 'U' -> 8;
                case '0', '1', '2', '3', '4', '5', '6', '7' -> 3;
                default -> 0;
            };
            if (digits > 0) {
                int start = e >= '0' && e <= '7' ? i : i + 1;
                if (start + digits > quoted.length() - 1) {
                    return null;
                }
                int code;
                try {
                    code = Integer.parseInt(quoted.substring(start, start + digits), e >= '0' && e <= '7' ? 8 : 16);
                } catch (NumberFormatException bad) {
                    return null;
                }
                i = start + digits - 1;
                if (e == 'x' || e >= '0' && e <= '7') {
                    bytes.write(code); // a byte of UTF-8
                } else if (Character.isValidCodePoint(code)) {
                    flush(bytes, out);
                    out.appendCodePoint(code);
                } else {
                    return null;
                }
                continue;
            }
            flush(bytes, out);
            switch (e) {
                case 'a' -> out.append('\u0007');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'n' -> out.append('\n');
                case 'r' -> out.append('\r');
                case 't' -> out.append('\t');
                case 'v' -> out.append('\u000b');
                case '\\', '"', '\'' -> out.append(e);
                default -> {
                    return null;
                }
            }
        }
        flush(bytes, out);
        return out.toString();
    }

    private static void flush(java.io.ByteArrayOutputStream bytes, StringBuilder out) {
        if (bytes.size() > 0) {
            out.append(bytes.toString(StandardCharsets.UTF_8));
            bytes.reset();
        }
    }

    private static Map<String, String> strings(String name, String json, Consumer<String> warn) {
        Map<String, String> out = new TreeMap<>();
        JsonObject object;
        try {
            object = new JsonObject(json);
        } catch (DecodeException | ClassCastException e) {
            warn.accept(name + " is not a JSON object; left out: " + json);
            return out;
        }
        object.forEach(member -> {
            if (member.getValue() instanceof String s) {
                out.put(member.getKey(), s);
            } else {
                warn.accept(name + ": " + member.getKey() + " is not a string; left out");
            }
        });
        return out;
    }
}
