package dev.inmesh.runtime.xds;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.stream.Stream;

/**
 * Reads Envoy configuration documents into a {@link ResourceBundle}. Accepted, as they are:
 * <ol>
 *   <li>a config dump: Envoy's admin {@code /config_dump} and {@code istioctl proxy-config all -o json}
 *       ({@code configs} with Listeners/Clusters/Routes/Endpoints dumps, static and dynamic);</li>
 *   <li>an Envoy bootstrap's {@code static_resources} (listeners and clusters; its {@code dynamic_resources} may
 *       name ADS, Inmesh's own control plane serving it, but no file subscription: see {@code dynamicResources}), with
 *       its {@code tracing} and {@code layered_runtime} (see {@code readBootstrap});</li>
 *   <li>a list of resources of any of the four types, such as {@code istioctl proxy-config listener|route|cluster|
 *       endpoint -o json} prints: the type of each element is its {@code @type}, or else told by its fields;</li>
 *   <li>an xDS response-like {@code {"version_info": "...", "resources": [...]}} (its {@code version_info}, when
 *       there, is its resources' version, as Envoy's filesystem subscription takes it; else the file's name and
 *       modification time, {@code NAME@MILLIS});</li>
 *   <li>a single resource.</li>
 * </ol>
 * A directory is read file by file ({@code .json}, {@code .yaml}, {@code .yml}, in name order); a YAML file may hold
 * several documents; files are UTF-8, or UTF-16 with a byte order mark. Unnamed static listeners are named
 * {@code ADDRESS_PORT}; a second resource of a type and name in one read is rejected, as Envoy rejects it. Any problem
 * fails the whole read with a {@link ConfigReadException} naming the file, the resource and the field (its JSON path
 * when protobuf's JSON reader rejects it); a resource is checked against the proto constraints of Envoy's API
 * ({@link ProtoConstraintCheck}) before Inmesh parses it.
 */
public final class EnvoyConfigReader {
    /**
     * Fields of Envoy's {@code Bootstrap} that no resource (Listener, RouteConfiguration, Cluster,
     * ClusterLoadAssignment) has: a document with one of them is a bootstrap, every field of which is optional.
     */
    private static final List<String> BOOTSTRAP_ONLY = List.of("static_resources", "dynamic_resources", "admin",
            "node", "stats_config", "stats_sinks", "stats_flush_interval", "layered_runtime", "overload_manager",
            "cluster_manager", "watchdog", "watchdogs", "bootstrap_extensions", "node_context_params");

    private EnvoyConfigReader() {}

    /** Reads a file or a directory of files. */
    public static ResourceBundle read(Path path) throws ConfigReadException {
        ResourceBundle.Builder b = ResourceBundle.builder();
        for (Path f : files(path)) {
            readFile(f, b);
        }
        return b.build();
    }

    /**
     * The configuration files of directory {@code dir}, in name order: its {@code .json}, {@code .yaml} and
     * {@code .yml} files but hidden ones (a name starting with {@code .}: an editor's lock, swap or backup file, a
     * tool's temporary file before its rename into place).
     */
    public static List<Path> configFiles(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> {
                String name = p.getFileName().toString();
                return !name.startsWith(".") && name.matches(".*\\.(json|ya?ml)$");
            }).sorted().toList();
        }
    }

    /** The files of a configuration: a file itself, or a directory's {@link #configFiles}. */
    private static List<Path> files(Path path) throws ConfigReadException {
        if (!Files.isDirectory(path)) {
            return List.of(path);
        }
        List<Path> files;
        try {
            files = configFiles(path);
        } catch (IOException e) {
            throw new ConfigReadException(path + ": cannot list the directory: " + e.getMessage(), e);
        }
        if (files.isEmpty()) {
            throw new ConfigReadException(path + ": no .json, .yaml or .yml files in the directory", null);
        }
        return files;
    }

    /**
     * The bootstrap of a configuration, for what Inmesh takes from it beside its resources (its {@code admin}
     * address, {@code node}, {@code stats_config}): a file's only document, or the {@code bootstrap} of a config
     * dump's {@code BootstrapConfigDump}; in a directory, read as {@link #read(Path)} reads it, the first file (in name
     * order) whose only document is a bootstrap ({@link #isBootstrap}) or a dump with one. Null when there is none
     * (several documents in a file, a dump without a bootstrap, none in the directory).
     */
    public static JsonNode bootstrapDocument(Path path) throws ConfigReadException {
        boolean directory = Files.isDirectory(path);
        for (Path f : files(path)) {
            JsonNode root;
            try {
                List<JsonNode> docs = EnvoyJson.documents(decode(Files.readAllBytes(f)));
                root = docs.size() == 1 && docs.get(0).isObject() ? documentBootstrap(docs.get(0)) : null;
            } catch (IOException e) {
                throw new ConfigReadException(f + ": " + describe(e), e);
            }
            if (!directory || root != null && isBootstrap(root)) {
                return root;
            }
        }
        return null;
    }

    /** A document itself, or, when it is a config dump ({@code configs}), its BootstrapConfigDump's bootstrap. */
    private static JsonNode documentBootstrap(JsonNode document) {
        JsonNode configs = get(document, "configs");
        if (configs == null || !configs.isArray()) {
            return document;
        }
        for (JsonNode c : configs) {
            if (c.path("@type").asText("").endsWith("BootstrapConfigDump")) {
                return get(c, "bootstrap");
            }
        }
        return null;
    }

    /**
     * The admin address of a bootstrap ({@link #bootstrapDocument}), read as the rest of the bootstrap is (protobuf's
     * JSON, either spelling): its {@code admin.address}'s {@code socket_address}; null when it is no bootstrap or has
     * no admin address. One Inmesh cannot serve its admin on is refused by its field: a {@code pipe} (a Unix domain
     * socket) or an internal address, a name rather than an IP address (Envoy resolves none there either), a port
     * out of range, a protocol other than TCP.
     */
    public static java.net.InetSocketAddress adminAddress(JsonNode bootstrap) throws ConfigReadException {
        JsonNode field = isBootstrap(bootstrap) ? get(bootstrap, "admin") : null;
        if (field == null || field.isNull()) {
            return null;
        }
        io.envoyproxy.envoy.config.bootstrap.v3.Admin admin;
        try {
            admin = EnvoyJson.toMessage(field, io.envoyproxy.envoy.config.bootstrap.v3.Admin.class);
        } catch (InvalidProtocolBufferException e) {
            FieldError misfit = JsonShapeCheck.find(field,
                    io.envoyproxy.envoy.config.bootstrap.v3.Admin.getDescriptor());
            throw new ConfigReadException(misfit != null ? misfit.under("admin").getMessage()
                    : "admin: " + describe(e), e);
        }
        if (!admin.hasAddress()) {
            return null;
        }
        try {
            return Fields.at("admin", () -> {
                FieldError violation = ProtoConstraintCheck.find(admin);
                if (violation != null) {
                    throw violation;
                }
                return Fields.at("address", () -> {
                    if (admin.getAddress().hasPipe()) {
                        throw new FieldError("pipe", "an admin on a Unix domain socket is not supported by Inmesh "
                                + "(expected: a socket_address, an IP address and a port_value)");
                    }
                    var a = CoreParsers.ipAddress(admin.getAddress(), null);
                    return new java.net.InetSocketAddress(a.address(), a.port());
                });
            });
        } catch (FieldError e) {
            throw new ConfigReadException(e.getMessage(), e);
        }
    }

    private static void readFile(Path file, ResourceBundle.Builder b) throws ConfigReadException {
        String text;
        try {
            text = decode(Files.readAllBytes(file));
        } catch (IOException e) {
            throw new ConfigReadException(file + ": cannot read: " + describeIo(e), e);
        }
        if (text.indexOf('\0') >= 0) {
            throw new ConfigReadException(file + ": cannot read: not UTF-8 text (it has NUL characters: UTF-16 "
                    + "without a byte order mark, or a binary file?)", null);
        }
        Instant mtime;
        try {
            mtime = Files.getLastModifiedTime(file).toInstant();
        } catch (IOException e) {
            mtime = Instant.now();
        }
        try {
            read(text, b, new ResourceBundle.Version(file.getFileName().toString() + "@" + mtime.toEpochMilli(),
                    mtime));
        } catch (ConfigReadException e) {
            throw new ConfigReadException(file + ": " + e.getMessage(), e.getCause());
        }
    }

    /**
     * Reads a document as {@link #read(String)} does, leaving out each resource Inmesh refuses (a dump of a proxy
     * whose configuration has what Inmesh does not serve), with why told to {@code leftOut}: what a tool shows of a
     * dump. What is no valid resource of its type (bad JSON, a field of the wrong shape, a value the proto constraints
     * of Envoy's API refuse) still fails the read.
     */
    public static ResourceBundle readLeniently(String text, java.util.function.Consumer<String> leftOut)
            throws ConfigReadException {
        ResourceBundle.Builder b = ResourceBundle.builder().leavingOut(leftOut);
        read(text, b, new ResourceBundle.Version("", Instant.now()));
        return b.build();
    }

    /**
     * The {@code node} of a configuration's bootstrap ({@link #bootstrapDocument}; Envoy's local node: what its
     * admin's {@code /server_info} and config dump show, Istio's {@code envoy-rev.json} giving the sidecar's id,
     * cluster and metadata); null when there is no bootstrap or it has no node.
     */
    public static io.envoyproxy.envoy.config.core.v3.Node bootstrapNode(Path file) throws ConfigReadException {
        JsonNode root = file == null || !Files.exists(file) ? null : bootstrapDocument(file);
        JsonNode node = root == null ? null : get(root, "node");
        if (node == null || !node.isObject()) {
            return null;
        }
        try {
            return EnvoyJson.toMessage(node, io.envoyproxy.envoy.config.core.v3.Node.class);
        } catch (InvalidProtocolBufferException e) {
            throw new ConfigReadException(file + ": node: " + describe(e), e);
        }
    }

    /**
     * {@link #bootstrapNode}, null too when the file cannot be read: for those that only take the node where it is
     * readable (the configuration's own read says what is wrong with it).
     */
    public static io.envoyproxy.envoy.config.core.v3.Node bootstrapNodeOrNull(Path file) {
        try {
            return bootstrapNode(file);
        } catch (ConfigReadException e) {
            return null;
        }
    }

    /** Reads one document's text into a bundle. */
    public static ResourceBundle read(String text) throws ConfigReadException {
        ResourceBundle.Builder b = ResourceBundle.builder();
        read(text, b, new ResourceBundle.Version("", Instant.now()));
        return b.build();
    }

    static void read(String text, ResourceBundle.Builder b, ResourceBundle.Version version)
            throws ConfigReadException {
        List<JsonNode> docs;
        try {
            docs = EnvoyJson.documents(text);
        } catch (JsonProcessingException e) {
            throw new ConfigReadException("not valid JSON or YAML: " + syntaxError(e), e);
        }
        for (int i = 0; i < docs.size(); i++) {
            try {
                readNode(docs.get(i), b, version);
            } catch (ConfigReadException e) {
                if (docs.size() == 1) {
                    throw e;
                }
                throw new ConfigReadException("YAML document " + (i + 1) + " of " + docs.size() + ": "
                        + e.getMessage(), e.getCause());
            }
        }
    }

    private static void readNode(JsonNode root, ResourceBundle.Builder b, ResourceBundle.Version version)
            throws ConfigReadException {
        if (root.isArray()) {
            for (int i = 0; i < root.size(); i++) {
                readResource(root.get(i), null, "[" + i + "]", b, version);
            }
        } else if (!root.isObject()) {
            throw new ConfigReadException("expected a JSON object or list at the top, found " + root.getNodeType(),
                    null);
        } else if (has(root, "configs")) {
            readConfigDump(get(root, "configs"), b);
        } else if (isBootstrap(root)) {
            onlyFieldsOf(root, io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap.getDescriptor(), "", true);
            dynamicResources(get(root, "dynamic_resources"));
            onlyFieldsOf(get(root, "static_resources"),
                    io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap.StaticResources.getDescriptor(),
                    "static_resources.", false);
            readStaticResources(get(root, "static_resources"), "static_resources", b, version);
            readBootstrap(root, "", b);
        } else if (has(root, "resources") && get(root, "resources").isArray()) {
            JsonNode rs = get(root, "resources");
            // a DiscoveryResponse's own version_info is its resources' version, as Envoy's filesystem subscription
            // hands the file's version_info to the update (and dumps it); without one, the file's name and time
            String own = text(root, "version_info");
            ResourceBundle.Version v = own.isEmpty() ? version : new ResourceBundle.Version(own,
                    version.lastUpdated());
            for (int i = 0; i < rs.size(); i++) {
                readResource(rs.get(i), null, "resources[" + i + "]", b, v);
            }
        } else if (has(root, "cluster_statuses")) {
            JsonNode cs = get(root, "cluster_statuses");
            for (int i = 0; i < cs.size(); i++) {
                readResource(cs.get(i), null, "cluster_statuses[" + i + "]", b, version);
            }
        } else {
            readResource(root, null, "", b, version);
        }
    }

    /**
     * A bootstrap's {@code dynamic_resources}: its ADS ones ({@code lds_config} and {@code cds_config} of
     * {@code ads: {}}, as Istio's bootstrap has them, beside an {@code ads_config}) change nothing here, the control
     * plane being Inmesh's own ({@code inmesh.xds.*}, {@code --xds-address}), while a file subscription
     * ({@code path_config_source}, or the older {@code path}), which Envoy would read and watch, is refused by name
     * rather than left unread: the file of listeners or clusters is given to Inmesh itself instead. An ADS config
     * source without an {@code ads_config} is refused, as Envoy refuses it.
     */
    private static void dynamicResources(JsonNode dr) throws ConfigReadException {
        if (dr == null || !dr.isObject()) {
            return;
        }
        for (String f : new String[] {"lds_config", "cds_config"}) {
            JsonNode source = get(dr, f);
            if (source == null || !source.isObject()) {
                continue;
            }
            String kind = f.equals("lds_config") ? "Listeners" : "Clusters";
            for (String file : new String[] {"path_config_source", "path"}) {
                if (has(source, file)) {
                    throw new ConfigReadException("dynamic_resources." + f + "." + file + ": a file subscription "
                            + "(filesystem " + (f.equals("lds_config") ? "LDS" : "CDS") + ") is not supported by "
                            + "Inmesh (expected: the file of " + kind + ", a DiscoveryResponse, given to Inmesh "
                            + "itself, as -c FILE or one file of -c DIRECTORY, which is watched and reloaded)", null);
                }
            }
            if (has(source, "ads") && !has(dr, "ads_config")) {
                throw new ConfigReadException("dynamic_resources." + f + ".ads: an ADS config source without "
                        + "dynamic_resources.ads_config (expected: an ads_config, as Envoy requires one)", null);
            }
        }
    }

    /**
     * Refuses a field name the message has not (in its proto or JSON spelling), as Envoy refuses a bootstrap with an
     * unknown field: a misspelt {@code static_resources.listener} would otherwise leave the proxy without listeners.
     * With {@code newerFields} (the bootstrap's top level, where Envoy keeps adding fields, such as 1.35's
     * {@code stats_eviction_interval}, that Inmesh's copy of Envoy's API may not have yet), a name that is not a near
     * miss of a known one (two edits or fewer) is taken with a warning instead: a newer Envoy's field, which changes
     * nothing here.
     */
    private static void onlyFieldsOf(JsonNode object, com.google.protobuf.Descriptors.Descriptor type, String at,
                                     boolean newerFields) throws ConfigReadException {
        if (object == null || !object.isObject()) {
            return;
        }
        for (java.util.Iterator<String> names = object.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (type.findFieldByName(name) != null
                    || type.getFields().stream().anyMatch(f -> f.getJsonName().equals(name))) {
                continue;
            }
            String near = type.getFields().stream().map(com.google.protobuf.Descriptors.FieldDescriptor::getName)
                    .filter(known -> editDistance(known, snakeCase(name)) <= 2).findFirst().orElse(null);
            if (newerFields && near == null) {
                java.util.logging.Logger.getLogger(EnvoyConfigReader.class.getName()).warning(at + name
                        + ": not a field of Envoy's " + type.getFullName() + " as Inmesh knows it (a newer Envoy's?); "
                        + "ignored");
                continue;
            }
            throw new ConfigReadException(at + name + ": unknown field (expected a field of Envoy's "
                    + type.getFullName() + (near == null ? "" : "; did you mean " + near + "?") + ")", null);
        }
    }

    private static String snakeCase(String name) {
        return name.replaceAll("([a-z0-9])([A-Z])", "$1_$2").toLowerCase(java.util.Locale.ROOT);
    }

    /** Levenshtein's distance between two short names. */
    static int editDistance(String a, String b) {
        int[] prev = new int[b.length() + 1];
        int[] cur = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            prev[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            cur[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                cur[j] = Math.min(Math.min(cur[j - 1], prev[j]) + 1,
                        prev[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1));
            }
            int[] t = prev;
            prev = cur;
            cur = t;
        }
        return prev[b.length()];
    }

    /**
     * Static clusters of an Istio bootstrap that serve the Istio agent, not the workload (xDS and SDS over the
     * agent's Unix sockets, the agent's own stats): a bootstrap is read without them, as docs/configuration.md says
     * ({@code proxy-config} shows them from the dump itself).
     */
    public static final java.util.Set<String> ISTIO_AGENT_CLUSTERS = java.util.Set.of("xds-grpc", "sds-grpc");

    private static void readStaticResources(JsonNode sr, String at, ResourceBundle.Builder b,
                                            ResourceBundle.Version v)
            throws ConfigReadException {
        registerSdsClusters(get(sr, "clusters"));
        for (var f : new String[] {"listeners", "clusters"}) {
            JsonNode list = get(sr, f);
            if (list == null) {
                continue;
            }
            ResourceType type = f.equals("listeners") ? ResourceType.LISTENER : ResourceType.CLUSTER;
            for (int i = 0; i < list.size(); i++) {
                JsonNode r = type == ResourceType.LISTENER ? namedStaticListener(list.get(i)) : list.get(i);
                if (type == ResourceType.CLUSTER && ISTIO_AGENT_CLUSTERS.contains(text(r, "name"))) {
                    // The Istio agent's own plumbing (its xDS and SDS sockets): Inmesh has its own ADS client.
                    continue;
                }
                readResource(r, type, at + "." + f + "[" + i + "]", b, v);
                b.markStatic(type, text(r, "name"));
            }
        }
        for (String f : new String[] {"secrets"}) {
            if (has(sr, f) && get(sr, f).size() > 0) {
                throw new ConfigReadException(at + "." + f + ": not supported by Inmesh", null);
            }
        }
    }

    /**
     * Tells the parse's SDS client ({@link Parsers#withSds}), if any, the address of each static cluster with one
     * endpoint (Istio's {@code sds-grpc}, its agent's Unix socket, among them, which is not read as a resource), before
     * the resources whose TLS contexts name one of them in an {@code sds_config} are read; a cluster whose address
     * does not read is left to the cluster's own parse (or, for the agent's, left out).
     */
    private static void registerSdsClusters(JsonNode clusters) {
        var sds = CommonTlsParser.SDS.get();
        for (int i = 0; sds != null && clusters != null && i < clusters.size(); i++) {
            try {
                var c = EnvoyJson.toMessage(clusters.get(i), io.envoyproxy.envoy.config.cluster.v3.Cluster.class);
                var endpoints = c.getLoadAssignment().getEndpointsList();
                if (endpoints.size() == 1 && endpoints.get(0).getLbEndpointsCount() == 1) {
                    var address = endpoints.get(0).getLbEndpoints(0).getEndpoint().getAddress();
                    sds.cluster(c.getName(), CoreParsers.socketAddress(address));
                }
            } catch (InvalidProtocolBufferException | FieldError e) {
                // not an address an SDS stream can use
            }
        }
    }

    /**
     * What Inmesh takes of a bootstrap beside its resources and the admin's settings: its {@code tracing} (the Zipkin
     * tracer Istio's agent writes for meshConfig's {@code defaultConfig.tracing.zipkin.address}, which reports the spans
     * of the connection managers whose {@code tracing} names no provider, istiod's legacy tracing, as Envoy's bootstrap
     * tracer does) and its {@code layered_runtime} (see {@link LayeredRuntimeParser}).
     */
    private static void readBootstrap(JsonNode bootstrap, String at, ResourceBundle.Builder b)
            throws ConfigReadException {
        if (has(bootstrap, "tracing")) {
            b.tracer(bootstrapField(bootstrap, "tracing", io.envoyproxy.envoy.config.trace.v3.Tracing.class,
                    TracingParser::bootstrap, at, b));
        }
        if (has(bootstrap, "layered_runtime")) {
            b.runtime(bootstrapField(bootstrap, "layered_runtime",
                    io.envoyproxy.envoy.config.bootstrap.v3.LayeredRuntime.class, LayeredRuntimeParser::parse, at, b));
        }
    }

    /**
     * A bootstrap's field {@code field}, read as a {@code type} and parsed by {@code parse}. One that is no
     * {@code type} fails the read; one Inmesh refuses fails it too, unless {@code b} leaves refused parts out (then
     * null, told why).
     */
    private static <M extends Message, T> T bootstrapField(JsonNode bootstrap, String field, Class<M> type,
                                                           java.util.function.Function<M, T> parse, String at,
                                                           ResourceBundle.Builder b) throws ConfigReadException {
        M message;
        try {
            message = EnvoyJson.toMessage(get(bootstrap, field), type);
        } catch (InvalidProtocolBufferException e) {
            throw new ConfigReadException(at + field + ": " + describe(e), e);
        }
        try {
            return Fields.at(field, () -> parse.apply(message));
        } catch (FieldError e) {
            if (b.leftOut(at + e.getMessage())) {
                return null;
            }
            throw new ConfigReadException(at + e.getMessage(), e);
        }
    }

    private static void readConfigDump(JsonNode configs, ResourceBundle.Builder b) throws ConfigReadException {
        for (int i = 0; i < configs.size(); i++) {
            JsonNode c = configs.get(i);
            String type = c.path("@type").asText("");
            String at = "configs[" + i + "]";
            if (type.endsWith("BootstrapConfigDump")) {
                JsonNode sr = get(get(c, "bootstrap"), "static_resources");
                // Envoy repeats the bootstrap's static resources in the per-type dumps (static_listeners,
                // static_clusters); read them there when the dump has those sections.
                if (sr != null && !hasTypedDumps(configs)) {
                    readStaticResources(sr, at + ".bootstrap.static_resources", b, versionOf(c, "last_updated", ""));
                }
                if (has(c, "bootstrap")) {
                    readBootstrap(get(c, "bootstrap"), at + ".bootstrap.", b);
                }
            } else if (type.endsWith("ListenersConfigDump")) {
                dumpList(c, "static_listeners", "listener", ResourceType.LISTENER, at, b);
                JsonNode dyn = get(c, "dynamic_listeners");
                for (int j = 0; dyn != null && j < dyn.size(); j++) {
                    JsonNode state = get(dyn.get(j), "active_state");
                    if (state != null && has(state, "listener")) {
                        readResource(get(state, "listener"), ResourceType.LISTENER,
                                at + ".dynamic_listeners[" + j + "]", b, versionOf(state));
                    }
                }
            } else if (type.endsWith("ClustersConfigDump")) {
                dumpList(c, "static_clusters", "cluster", ResourceType.CLUSTER, at, b);
                dumpList(c, "dynamic_active_clusters", "cluster", ResourceType.CLUSTER, at, b);
            } else if (type.endsWith("RoutesConfigDump")) {
                // static_route_configs are copies of the connection managers' inline route_config (Envoy dumps
                // one per connection manager, a name repeated or empty), which the listeners carry: not resources
                dumpList(c, "dynamic_route_configs", "route_config", ResourceType.ROUTE, at, b);
            } else if (type.endsWith("EndpointsConfigDump")) {
                dumpList(c, "static_endpoint_configs", "endpoint_config", ResourceType.ENDPOINT, at, b);
                dumpList(c, "dynamic_endpoint_configs", "endpoint_config", ResourceType.ENDPOINT, at, b);
            }
            // Secrets, scoped routes and ECDS dumps carry nothing Inmesh routes by.
        }
    }

    private static boolean hasTypedDumps(JsonNode configs) {
        for (JsonNode c : configs) {
            String t = c.path("@type").asText("");
            if (t.endsWith("ListenersConfigDump") || t.endsWith("ClustersConfigDump")) {
                return true;
            }
        }
        return false;
    }

    private static void dumpList(JsonNode dump, String field, String inner, ResourceType type, String at,
                                 ResourceBundle.Builder b) throws ConfigReadException {
        JsonNode list = get(dump, field);
        for (int j = 0; list != null && j < list.size(); j++) {
            JsonNode entry = list.get(j);
            if (has(entry, inner)) {
                JsonNode r = field.equals("static_listeners") ? namedStaticListener(get(entry, inner))
                        : get(entry, inner);
                if (field.equals("static_clusters") && ISTIO_AGENT_CLUSTERS.contains(text(r, "name"))
                        || field.equals("static_endpoint_configs")
                        && ISTIO_AGENT_CLUSTERS.contains(text(r, "cluster_name"))) {
                    // the agent's clusters, and the endpoints Envoy dumps for them (its Unix sockets)
                    continue;
                }
                if (type == ResourceType.ENDPOINT) {
                    r = withoutZeroLocalityWeights(r);
                }
                readResource(r, type, at + "." + field + "[" + j + "]", b, versionOf(entry));
                if (field.startsWith("static_")) {
                    b.markStatic(type, text(r, type == ResourceType.ENDPOINT ? "cluster_name" : "name"));
                }
            }
        }
    }

    /**
     * A load assignment as Envoy's config dump writes it, whose localities carry a {@code load_balancing_weight} of
     * 0 where they have none (Envoy dumps a cluster's hosts with their locality's weight, 0 without locality weights),
     * with those zeros left out: as configuration, a locality weight must be 1 or more, and 0 would refuse the dump.
     */
    static JsonNode withoutZeroLocalityWeights(JsonNode assignment) {
        JsonNode localities = assignment == null ? null : assignment.get("endpoints");
        if (localities == null || !localities.isArray()) {
            return assignment;
        }
        com.fasterxml.jackson.databind.node.ObjectNode copy = null;
        for (int i = 0; i < localities.size(); i++) {
            for (String name : List.of("load_balancing_weight", "loadBalancingWeight")) {
                JsonNode w = localities.get(i).get(name);
                if (w != null && (w.isNumber() || w.isTextual()) && w.asText().equals("0")) {
                    if (copy == null) {
                        copy = ((com.fasterxml.jackson.databind.node.ObjectNode) assignment).deepCopy();
                    }
                    ((com.fasterxml.jackson.databind.node.ObjectNode) copy.get("endpoints").get(i)).remove(name);
                }
            }
        }
        return copy == null ? assignment : copy;
    }

    /**
     * Envoy accepts a static listener without a name and names it itself (with a UUID); Istio's bootstrap listeners
     * (15090, 15021) have none. Such a listener is named here {@code ADDRESS_PORT}, as Istio names its own
     * listeners ({@code 0.0.0.0_15090}), so that it is stable across reads. LDS listeners must have names.
     */
    static JsonNode namedStaticListener(JsonNode listener) {
        if (listener == null || !listener.isObject() || !text(listener, "name").isEmpty()) {
            return listener;
        }
        JsonNode sa = get(get(listener, "address"), "socket_address");
        if (sa == null) {
            return listener;
        }
        com.fasterxml.jackson.databind.node.ObjectNode named =
                ((com.fasterxml.jackson.databind.node.ObjectNode) listener).deepCopy();
        named.put("name", text(sa, "address") + "_" + text(sa, "port_value"));
        return named;
    }

    private static ResourceBundle.Version versionOf(JsonNode entry) {
        return versionOf(entry, "last_updated", text(entry, "version_info"));
    }

    private static ResourceBundle.Version versionOf(JsonNode entry, String timeField, String version) {
        Instant when = Instant.EPOCH;
        String t = text(entry, timeField);
        if (!t.isEmpty()) {
            try {
                when = Instant.parse(t);
            } catch (DateTimeParseException e) {
                // keep the epoch: the dump's clock format is informational
            }
        }
        return new ResourceBundle.Version(version, when);
    }

    /** Reads one resource, its type given or recognised from {@code @type} or its fields. */
    static void readResource(JsonNode node, ResourceType given, String at, ResourceBundle.Builder b,
                             ResourceBundle.Version version) throws ConfigReadException {
        String where = at.isEmpty() ? "" : at + ": ";
        if (node == null || !node.isObject()) {
            throw new ConfigReadException(where + "expected a resource object", null);
        }
        String refusedType = refusedType(node, given);
        if (refusedType != null) {
            throw new ConfigReadException(where + refusedType, null);
        }
        ResourceType type = given != null ? given : recognise(node);
        if (type == null) {
            throw new ConfigReadException(where + "cannot tell which resource this is (expected a Listener, "
                    + "RouteConfiguration, Cluster or ClusterLoadAssignment, or an \"@type\")", null);
        }
        JsonNode body = node;
        if (has(node, "host_statuses")) {
            body = ClusterStatusJson.toLoadAssignment(node);
        }
        if (body.has("@type")) {
            body = body.deepCopy();
            ((com.fasterxml.jackson.databind.node.ObjectNode) body).remove("@type");
        }
        String name = text(body, type == ResourceType.ENDPOINT ? "cluster_name" : "name");
        ResourceParser<Message, ?> parser;
        try {
            parser = Parsers.forType(type);
        } catch (IllegalStateException e) {
            throw new ConfigReadException(where + type.about(name) + type.kind()
                    + " resources are not supported by this build of Inmesh", e);
        }
        Message message;
        try {
            message = EnvoyJson.toMessage(body, parser.messageClass());
        } catch (InvalidProtocolBufferException e) {
            // JsonFormat's message has no path ("Cannot find field: x in message y"): find where it is.
            FieldError misfit = JsonShapeCheck.find(body, descriptor(parser.messageClass()));
            throw new ConfigReadException(where + type.about(name)
                    + (misfit != null ? misfit.getMessage() : describe(e)), e);
        }
        FieldError violation = ProtoConstraintCheck.find(message);
        if (violation != null) {
            // As Envoy's file subscription decodes a resource (its proto constraints checked) before any is used: the
            // whole read is refused, also by a read that leaves out what Inmesh refuses.
            throw new ConfigReadException(where + type.about(name) + violation.getMessage(), violation);
        }
        Object parsed;
        try {
            parsed = parser.parse(message);
        } catch (InvalidResourceException e) {
            if (b.leftOut(where + e.getMessage())) {
                return;
            }
            throw new ConfigReadException(where + e.getMessage(), e);
        }
        if (b.contains(type, name)) {
            // Envoy rejects a second resource of a name in one config ("duplicate listener name").
            throw new ConfigReadException(where + type.about(name) + "a second " + type.kind()
                    + " of this name in the same read (expected: unique names)", null);
        }
        b.add(parsed, version, message);
    }

    /**
     * Why a resource's {@code @type} is refused where a {@code given} one (null: any of the four) is read, or null
     * when it has none or one of those: one of Envoy's v2 API (which Inmesh does not read; Envoy has long dropped it),
     * another resource type than the section of a dump or bootstrap holds, or one Inmesh does not read at all.
     */
    private static String refusedType(JsonNode node, ResourceType given) {
        String t = node.path("@type").asText("");
        String url = t.startsWith("type.googleapis.com/") ? t : "type.googleapis.com/" + t;
        ResourceType named = ResourceType.ofTypeUrl(url);
        if (t.isEmpty() || named != null && (given == null || named == given)) {
            return null;
        }
        String simple = url.substring(url.lastIndexOf('.') + 1);
        List<ResourceType> expected = given != null ? List.of(given)
                : java.util.Arrays.stream(ResourceType.values()).filter(r -> r.kind().equals(simple)).toList();
        String why;
        if (url.startsWith("type.googleapis.com/envoy.api.v2.")) {
            why = "the v2 API is not supported, use v3";
        } else if (named != null) {
            why = "another type than the " + given.kind() + " expected here";
        } else {
            why = "not a resource type Inmesh reads" + java.util.Arrays.stream(ResourceType.values())
                    .filter(r -> editDistance(r.typeUrl(), url) <= 2).map(r -> "; did you mean " + r.typeUrl() + "?")
                    .findFirst().orElse("");
        }
        return "@type \"" + t + "\": " + why + " (expected: " + (expected.isEmpty()
                ? java.util.Arrays.stream(ResourceType.values()).map(ResourceType::typeUrl)
                        .collect(java.util.stream.Collectors.joining(", ", "one of ", ""))
                : expected.get(0).typeUrl()) + ")";
    }

    static ResourceType recognise(JsonNode node) {
        String t = node.path("@type").asText("");
        if (!t.isEmpty()) {
            return ResourceType.ofTypeUrl(t.startsWith("type.googleapis.com/") ? t : "type.googleapis.com/" + t);
        }
        if (has(node, "cluster_name") || has(node, "host_statuses")) {
            return ResourceType.ENDPOINT;
        }
        if (has(node, "filter_chains") || has(node, "default_filter_chain") || has(node, "address")
                || has(node, "listener_filters")) {
            return ResourceType.LISTENER;
        }
        if (has(node, "virtual_hosts") || has(node, "validate_clusters")
                || has(node, "ignore_port_in_host_matching")) {
            return ResourceType.ROUTE;
        }
        if (has(node, "type") || has(node, "cluster_type") || has(node, "connect_timeout")
                || has(node, "lb_policy") || has(node, "eds_cluster_config") || has(node, "load_assignment")) {
            return ResourceType.CLUSTER;
        }
        return null;
    }

    /** A field by its snake_case name, or its lowerCamelCase twin; null when absent. */
    static JsonNode get(JsonNode node, String snake) {
        if (node == null) {
            return null;
        }
        JsonNode v = node.get(snake);
        return v != null ? v : node.get(camel(snake));
    }

    /**
     * Whether a document is an Envoy bootstrap: it has one of the fields only a bootstrap has (not only
     * {@code static_resources} or {@code dynamic_resources}: a bootstrap of its {@code admin} alone is one).
     */
    public static boolean isBootstrap(JsonNode root) {
        if (root == null || !root.isObject()) {
            return false;
        }
        for (String f : BOOTSTRAP_ONLY) {
            if (has(root, f)) {
                return true;
            }
        }
        return false;
    }

    static boolean has(JsonNode node, String snake) {
        return get(node, snake) != null;
    }

    static String text(JsonNode node, String snake) {
        JsonNode v = get(node, snake);
        return v == null ? "" : v.asText("");
    }

    /** A snake_case field name in lowerCamelCase, as protobuf's JSON spells it. */
    public static String camel(String snake) {
        StringBuilder sb = new StringBuilder(snake.length());
        boolean up = false;
        for (char c : snake.toCharArray()) {
            if (c == '_') {
                up = true;
            } else {
                sb.append(up ? Character.toUpperCase(c) : c);
                up = false;
            }
        }
        return sb.toString();
    }

    private static com.google.protobuf.Descriptors.Descriptor descriptor(Class<? extends Message> type) {
        try {
            return (com.google.protobuf.Descriptors.Descriptor) type.getMethod("getDescriptor").invoke(null);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("not a protobuf message class: " + type, e);
        }
    }

    /**
     * A file's text: UTF-8, or UTF-16 when it starts with a byte order mark (as Windows PowerShell writes
     * {@code istioctl ... > file.json}); a UTF-8 byte order mark is dropped. Invalid UTF-8 fails.
     */
    public static String decode(byte[] bytes) throws java.nio.charset.CharacterCodingException {
        java.nio.charset.Charset cs = java.nio.charset.StandardCharsets.UTF_8;
        int skip = 0;
        if (bytes.length >= 2 && (bytes[0] & 0xFF) == 0xFF && (bytes[1] & 0xFF) == 0xFE) {
            cs = java.nio.charset.StandardCharsets.UTF_16LE;
            skip = 2;
        } else if (bytes.length >= 2 && (bytes[0] & 0xFF) == 0xFE && (bytes[1] & 0xFF) == 0xFF) {
            cs = java.nio.charset.StandardCharsets.UTF_16BE;
            skip = 2;
        } else if (bytes.length >= 3 && (bytes[0] & 0xFF) == 0xEF && (bytes[1] & 0xFF) == 0xBB
                && (bytes[2] & 0xFF) == 0xBF) {
            skip = 3;
        }
        return cs.newDecoder().onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT)
                .decode(java.nio.ByteBuffer.wrap(bytes, skip, bytes.length - skip)).toString();
    }

    /** A JSON or YAML syntax error on one line, with where it is. */
    private static String syntaxError(JsonProcessingException e) {
        if (e.getCause() instanceof org.yaml.snakeyaml.error.MarkedYAMLException y) {
            StringBuilder sb = new StringBuilder();
            if (y.getContext() != null) {
                sb.append(y.getContext()).append(at(y.getContextMark())).append(": ");
            }
            sb.append(y.getProblem()).append(at(y.getProblemMark()));
            return sb.toString().replaceAll("\\s+", " ");
        }
        String m = String.valueOf(e.getOriginalMessage());
        int nl = m.indexOf('\n');
        return (nl < 0 ? m : m.substring(0, nl)) + (e.getLocation() != null && e.getLocation().getLineNr() > 0
                ? " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")" : "");
    }

    private static String at(org.yaml.snakeyaml.error.Mark mark) {
        return mark == null ? "" : " (line " + (mark.getLine() + 1) + ", column " + (mark.getColumn() + 1) + ")";
    }

    /** Why a file could not be read, in words (the file is named by the caller): {@code no such file}, ... */
    public static String describeIo(IOException e) {
        if (e instanceof java.nio.file.NoSuchFileException) {
            return "no such file";
        } else if (e instanceof java.nio.file.AccessDeniedException) {
            return "permission denied";
        } else if (e instanceof java.nio.charset.CharacterCodingException) {
            return "not UTF-8 text";
        } else if (e instanceof java.nio.file.FileSystemException fse && fse.getReason() != null) {
            return fse.getReason();
        }
        return e.getMessage() == null ? "I/O error" : e.getMessage().replace('\n', ' ');
    }

    private static String describe(Exception e) {
        String m = e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m.replace('\n', ' ');
    }

    /** Why a document could not be read: names the file, the resource and the field. */
    public static final class ConfigReadException extends Exception {
        private static final long serialVersionUID = 1L;

        public ConfigReadException(String message, Throwable cause) {
            super(message, cause);
        }
    }

}
