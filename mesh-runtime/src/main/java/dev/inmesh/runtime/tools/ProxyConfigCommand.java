package dev.inmesh.runtime.tools;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.inmesh.runtime.mesh.MeshSettings;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.Parsers;
import dev.inmesh.runtime.xds.ResourceBundle;
import io.envoyproxy.envoy.admin.v3.BootstrapConfigDump;
import io.envoyproxy.envoy.admin.v3.ClusterStatus;
import io.envoyproxy.envoy.admin.v3.SecretsConfigDump;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code inmesh proxy-config listener|route|cluster|endpoint|secret|bootstrap|all|log}: shows a proxy's configuration
 * as {@code istioctl proxy-config} does, from an admin server ({@code --admin HOST:PORT}, Inmesh's or Envoy's) or
 * from a file ({@code -f FILE}). From an admin server it asks what istioctl asks: the config dump sections a table
 * needs ({@code /config_dump?mask=...}), the whole dump for {@code secret} (its {@code SecretsConfigDump}), the dump
 * with EDS for {@code all}'s tables ({@code ?include_eds=true}; the plain dump for its JSON or YAML), the bootstrap
 * for {@code bootstrap} ({@code ?mask=bootstrap}, printed as JSON unless asked otherwise), and
 * {@code /clusters?format=json} for {@code endpoint}, whose OUTLIER CHECK reads FAILED for a host ejected by outlier
 * detection. The same filters ({@code --port}, {@code --address}, {@code --type}, {@code --name}, {@code --fqdn},
 * {@code --direction}, {@code --subset}, {@code --cluster}, {@code --status}) and outputs ({@code -o short},
 * istioctl's tables, and {@code all}'s full summary; {@code -o json}; {@code -o yaml}), and istioctl's
 * {@code --verbose=false} for the short listener and route tables. {@code log} lists and sets
 * the proxy's log levels ({@code POST /logging}) as istioctl's {@code proxy-config log}. Exit codes: 0 shown, 1
 * nothing matched, 2 unreadable input or bad arguments.
 */
@Command(name = "proxy-config", aliases = "pc", mixinStandardHelpOptions = true,
        description = "Shows a proxy's listeners, routes, clusters, endpoints, secrets or bootstrap as istioctl "
                + "proxy-config does, from an admin server (its /config_dump and /clusters) or a file; log lists and "
                + "sets its log levels.")
public final class ProxyConfigCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "TYPE",
            description = "listener, route, cluster, endpoint, secret, bootstrap, all or log (or istioctl's "
                    + "aliases: listeners, l, routes, r, clusters, c, endpoints, ep, secrets, s, b, a, o).")
    String type;

    @Option(names = "--admin", paramLabel = "HOST:PORT",
            description = "An admin server (HOST:PORT or http://HOST:PORT) to ask for /config_dump (/clusters for "
                    + "endpoint).")
    String admin;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE", description = "A config dump (JSON or YAML), or for "
            + "endpoint /clusters?format=json, to read; - for the standard input.")
    Path file;

    @Option(names = {"-o", "--output"}, paramLabel = "FORMAT",
            description = "short (istioctl's table, the default but for bootstrap), json (bootstrap's default) or "
                    + "yaml.")
    String output;

    @Option(names = "--port", description = "Listeners, clusters or endpoints on this port.")
    Integer port;

    @Option(names = "--address", description = "Listeners or endpoints with this address.")
    String address;

    @Option(names = "--type", description = "Listeners of this type: HTTP, TCP, HTTP+TCP.")
    String listenerType;

    @Option(names = "--name", description = "The route configuration with this name.")
    String name;

    @Option(names = "--fqdn", description = "Clusters whose name contains this host name.")
    String fqdn;

    @Option(names = "--direction", description = "Clusters of this direction: inbound or outbound.")
    String direction;

    @Option(names = "--subset", description = "Clusters of this subset.")
    String subset;

    @Option(names = "--cluster", description = "Endpoints of this cluster.")
    String cluster;

    @Option(names = "--status", description = "Endpoints with this health status, such as HEALTHY.")
    String status;

    @Option(names = "--verbose", arity = "0..1", defaultValue = "true", fallbackValue = "true",
            description = "listener, route and all: istioctl's full tables (the default); --verbose=false prints a "
                    + "row per listener (ADDRESSES PORT TYPE) and per route configuration (NAME VIRTUAL HOSTS).")
    boolean verbose = true;

    @Option(names = "--level", paramLabel = "[LOGGER:]LEVEL,...",
            description = "log: the level of every logger, or of the loggers named (trace, debug, info, warning, "
                    + "error, critical, off).")
    String level;

    @Option(names = {"-r", "--reset"}, description = "log: every logger back to warning.")
    boolean reset;

    java.io.InputStream in = System.in;
    PrintStream out = System.out;
    PrintStream err = System.err;

    @Override
    public Integer call() {
        String kind = TYPES.get(type.toLowerCase(Locale.ROOT));
        if (kind == null) {
            err.println("proxy-config: unknown type '" + type + "' (expected: listener, route, cluster, endpoint, "
                    + "secret, bootstrap, all or log)");
            return 2;
        }
        if (kind.equals("log")) {
            return log();
        }
        // as istioctl, bootstrap prints its JSON unless asked otherwise
        String format = output != null ? output.toLowerCase(Locale.ROOT) : kind.equals("bootstrap") ? "json" : "short";
        if (!List.of("short", "json", "yaml").contains(format)) {
            // istioctl's words for it, the format in Go's %q quotes
            err.println("proxy-config: output format \"" + output.replace("\\", "\\\\").replace("\"", "\\\"")
                    + "\" not supported");
            return 2;
        }
        if ((admin == null) == (file == null)) {
            err.println("proxy-config: give one of --admin HOST:PORT or -f FILE");
            return 2;
        }
        String text = null;
        ResourceBundle bundle = null;
        ProxyConfigWriter.AgentResources agent = ProxyConfigWriter.AgentResources.NONE;
        List<RouteConfiguration> staticRoutes = List.of();
        List<ClusterStatus> statuses = null;
        try {
            if (kind.equals("endpoint")) {
                statuses = admin != null ? fetchClusterStatuses(admin, this::leftOut)
                        : clusterStatuses(input(), this::leftOut);
            } else {
                // istioctl's all -o json|yaml prints the dump as Envoy gives it unasked: without its EDS
                String path = kind.equals("all") && !format.equals("short") ? "/config_dump" : DUMP_PATHS.get(kind);
                text = admin != null ? fetch(admin, path) : input();
                // istioctl reads only the secrets' (the bootstrap's) dump: the resources need not parse
                if (kind.equals("secret") || kind.equals("bootstrap")) {
                    EnvoyJson.tree(text);
                } else {
                    bundle = readDump(text, this::leftOut);
                    if (kind.equals("route") || kind.equals("all")) {
                        staticRoutes = ProxyConfigWriter.staticRoutes(EnvoyJson.tree(text));
                    }
                    if (kind.equals("cluster") || kind.equals("all")) {
                        // read without the Istio agent's clusters, which istioctl shows as every static cluster
                        agent = ProxyConfigWriter.agentResources(EnvoyJson.tree(text), this::leftOut);
                    }
                }
            }
        } catch (InputException e) {
            err.println("proxy-config: " + e.getMessage());
            return 2;
        } catch (JsonProcessingException e) {
            err.println("proxy-config: " + (file != null ? file + ": " : admin + ": ") + "not JSON or YAML: "
                    + e.getOriginalMessage());
            return 2;
        } catch (EnvoyConfigReader.ConfigReadException e) {
            err.println("proxy-config: " + (file != null ? file + ": " : admin + ": ") + e.getMessage());
            return 2;
        } catch (IllegalStateException e) {
            err.println("proxy-config: cannot read this dump yet: " + e.getMessage());
            return 2;
        }
        ProxyConfigWriter.Filters filters = new ProxyConfigWriter.Filters(port, address, listenerType, name, fqdn,
                direction, subset, cluster, status);
        try {
            if (statuses != null) {
                showEndpoints(format, statuses, filters);
                return 0;
            }
            return show(kind, format, text, bundle, agent, staticRoutes, filters);
        } catch (JsonProcessingException e) {
            err.println("proxy-config: cannot print: " + e.getOriginalMessage());
            return 2;
        }
    }

    /** The types by each name istioctl's {@code proxy-config} subcommands take: their own and their aliases. */
    private static final Map<String, String> TYPES = Map.ofEntries(
            Map.entry("listener", "listener"), Map.entry("listeners", "listener"), Map.entry("l", "listener"),
            Map.entry("route", "route"), Map.entry("routes", "route"), Map.entry("r", "route"),
            Map.entry("cluster", "cluster"), Map.entry("clusters", "cluster"), Map.entry("c", "cluster"),
            Map.entry("endpoint", "endpoint"), Map.entry("endpoints", "endpoint"), Map.entry("ep", "endpoint"),
            Map.entry("secret", "secret"), Map.entry("secrets", "secret"), Map.entry("s", "secret"),
            Map.entry("bootstrap", "bootstrap"), Map.entry("b", "bootstrap"),
            Map.entry("all", "all"), Map.entry("a", "all"),
            Map.entry("log", "log"), Map.entry("o", "log"));

    /** What istioctl asks an admin server for, per type: the config dump sections the table needs. */
    private static final Map<String, String> DUMP_PATHS = Map.of(
            "listener", "/config_dump?mask=dynamic_listeners,static_listeners",
            "route", "/config_dump?mask=dynamic_route_configs,static_route_configs",
            "cluster", "/config_dump?mask=dynamic_active_clusters,dynamic_warming_clusters,static_clusters",
            "secret", "/config_dump",
            "bootstrap", "/config_dump?mask=bootstrap",
            // Envoy leaves EDS out of its dump unless asked: all's tables ask for it
            "all", "/config_dump?include_eds=true");

    private void showEndpoints(String format, List<ClusterStatus> statuses, ProxyConfigWriter.Filters f)
            throws JsonProcessingException {
        if (format.equals("short")) {
            out.print(ProxyConfigWriter.endpointSummary(ProxyConfigWriter.endpoints(statuses, f)));
        } else {
            // as istioctl: the ClusterStatus objects of /clusters?format=json holding a selected host
            print(format, ProxyConfigWriter.endpointClusters(statuses, f), () -> "");
        }
    }

    private int show(String kind, String format, String text, ResourceBundle b,
                     ProxyConfigWriter.AgentResources agent, List<RouteConfiguration> statics,
                     ProxyConfigWriter.Filters f) throws JsonProcessingException {
        switch (kind) {
            case "listener" -> {
                var ls = ProxyConfigWriter.listeners(b, f);
                if (ls.isEmpty() && f.equals(ProxyConfigWriter.Filters.NONE)) {
                    return nothing("no listeners found");
                }
                print(format, ls, () -> ProxyConfigWriter.listenerSummary(ls, false, verbose));
            }
            case "route" -> {
                var rs = ProxyConfigWriter.routes(b, statics, f);
                if (b.routes().isEmpty() && statics.isEmpty()) {
                    return nothing("no routes found");
                }
                print(format, rs, () -> ProxyConfigWriter.routeSummary(rs, false, verbose));
            }
            case "cluster" -> {
                var cs = ProxyConfigWriter.clusters(b, agent, f);
                if (b.clusters().isEmpty() && agent.clusters().isEmpty()) {
                    return nothing("no clusters found");
                }
                print(format, cs, () -> ProxyConfigWriter.clusterSummary(cs));
            }
            case "secret" -> showSecrets(format, EnvoyJson.tree(text));
            case "bootstrap" -> {
                JsonNode tree = EnvoyJson.tree(text);
                JsonNode bootstrap = ProxyConfigWriter.section(tree, "BootstrapConfigDump");
                if (bootstrap == null) {
                    return nothing("no bootstrap found");
                }
                if (format.equals("short")) {
                    out.print(ProxyConfigWriter.bootstrapSummary(tree));
                } else {
                    printMessage(format, bootstrap, BootstrapConfigDump.class);
                }
            }
            default -> {
                JsonNode tree = EnvoyJson.tree(text);
                if (format.equals("short")) {
                    out.print(ProxyConfigWriter.fullSummary(tree, b, agent, statics, f, verbose));
                } else {
                    // the whole dump, as istioctl proxy-config all -o json|yaml prints it
                    out.println(format.equals("json") ? JSON_WRITER.writeValueAsString(tree) : yaml(tree));
                }
            }
        }
        return 0;
    }

    /**
     * istioctl's secret table of the dump's {@code SecretsConfigDump} (its sentence when there is no secret), or that
     * dump as istioctl prints it with {@code -o json|yaml} (lowerCamelCase names; {@code {}} when there is none).
     */
    private void showSecrets(String format, JsonNode dump) throws JsonProcessingException {
        JsonNode secrets = ProxyConfigWriter.secretsDump(dump);
        if (format.equals("short")) {
            out.print(ProxyConfigWriter.secretSummary(secrets == null ? List.of()
                    : ProxyConfigWriter.secrets(secrets, java.time.Instant.now())));
            return;
        }
        if (secrets == null) {
            out.println(format.equals("json") ? "{}" : yaml(JsonNodeFactory.instance.objectNode()));
            return;
        }
        printMessage(format, secrets, SecretsConfigDump.class);
    }

    /**
     * A config of the dump as istioctl prints it with {@code -o json|yaml}: the message itself, not the Any it was in,
     * with lowerCamelCase names.
     */
    private void printMessage(String format, JsonNode config, Class<? extends Message> type)
            throws JsonProcessingException {
        com.fasterxml.jackson.databind.node.ObjectNode message = config.deepCopy();
        message.remove("@type");
        JsonNode tree;
        try {
            tree = EnvoyJson.tree(EnvoyJson.print(EnvoyJson.toMessage(message, type), false));
        } catch (InvalidProtocolBufferException e) {
            tree = message; // printed as the dump has it
        }
        out.println(format.equals("json") ? JSON_WRITER.writeValueAsString(tree) : yaml(tree));
    }

    /** istioctl's level names, {@code warn} for {@code warning} too. */
    private static final Map<String, String> LEVELS = Map.of("trace", "trace", "debug", "debug", "info", "info",
            "warning", "warning", "warn", "warning", "error", "error", "critical", "critical", "off", "off");

    /**
     * {@code log}, as istioctl's {@code proxy-config log}: {@code POST /logging} lists the loggers; {@code --level
     * LEVEL} sets them all ({@code ?level=}), {@code --level NAME:LEVEL,...} (or {@code NAME=LEVEL}, a
     * {@code NS::} before the name ignored) each logger named, which must be among those listed; {@code --reset} sets
     * them all to {@code warning}. Prints what the last request answered.
     */
    private int log() {
        if (output != null && !output.equalsIgnoreCase("short")) {
            err.println("proxy-config: --output is not applicable for log");
            return 2;
        }
        if (admin == null || file != null) {
            err.println("proxy-config: log changes a running proxy: give --admin HOST:PORT (not -f)");
            return 2;
        }
        if (reset && level != null) {
            err.println("proxy-config: --level cannot be combined with --reset");
            return 2;
        }
        try {
            String loggers = post(admin, "/logging");
            Map<String, String> changes = new java.util.LinkedHashMap<>();
            if (reset) {
                changes.put("level", "warning");
            } else if (level != null) {
                for (String each : level.split(",")) {
                    if (!each.contains(":") && !each.contains("=")) {
                        String l = LEVELS.get(each);
                        if (l == null) {
                            err.println("proxy-config: unrecognized logging level: " + each);
                            return 2;
                        }
                        changes.clear();
                        changes.put("level", l);
                        continue;
                    }
                    String[] parts = each.split("::");
                    String[] nameLevel = parts[parts.length - 1].split("[:=]", 2);
                    if (!loggers.contains(nameLevel[0]) && !nameLevel[0].equals("level")) {
                        err.println("proxy-config: unrecognized logger name: " + nameLevel[0]);
                        return 2;
                    }
                    String l = LEVELS.get(nameLevel[1]);
                    if (l == null) {
                        err.println("proxy-config: unrecognized logging level: " + nameLevel[1]);
                        return 2;
                    }
                    changes.put(nameLevel[0], l);
                }
            }
            String answer = loggers;
            // all loggers first, then each one named
            if (changes.containsKey("level")) {
                answer = post(admin, "/logging?level=" + changes.get("level"));
            }
            for (Map.Entry<String, String> c : changes.entrySet()) {
                if (!c.getKey().equals("level")) {
                    answer = post(admin, "/logging?" + java.net.URLEncoder.encode(c.getKey(),
                            java.nio.charset.StandardCharsets.UTF_8) + "=" + c.getValue());
                }
            }
            out.print(answer);
            return 0;
        } catch (InputException e) {
            err.println("proxy-config: " + e.getMessage());
            return 2;
        }
    }

    private int nothing(String message) {
        err.println("proxy-config: " + message);
        return 1;
    }

    private void print(String format, List<? extends Message> resources, java.util.function.Supplier<String> table)
            throws JsonProcessingException {
        if (format.equals("short")) {
            out.print(table.get());
            return;
        }
        ArrayNode list = JsonNodeFactory.instance.arrayNode();
        for (Message m : resources) {
            list.add(EnvoyJson.tree(EnvoyJson.print(m, false)));
        }
        out.println(format.equals("json") ? JSON_WRITER.writeValueAsString(list) : yaml(list));
    }

    /** As Go's {@code json.MarshalIndent(v, "", "    ")}: four spaces, {@code "key": value}. */
    private static final com.fasterxml.jackson.databind.ObjectWriter JSON_WRITER = new ObjectMapper().writer(
            new DefaultPrettyPrinter()
                    .withObjectIndenter(new DefaultIndenter("    ", "\n"))
                    .withArrayIndenter(new DefaultIndenter("    ", "\n"))
                    .withSeparators(Separators.createDefaultInstance()
                            .withObjectFieldValueSpacing(Separators.Spacing.AFTER)
                            .withObjectEmptySeparator("")
                            .withArrayEmptySeparator("")));

    /**
     * As istioctl's JSON-to-YAML: keys sorted, no document marker, plain scalars where YAML allows, and a string that
     * YAML would read as a timestamp (such as a config's {@code lastUpdated}) quoted, as Go's YAML writer quotes it.
     */
    private static final ObjectMapper YAML = new ObjectMapper(YAMLFactory.builder()
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
            .enable(YAMLGenerator.Feature.ALWAYS_QUOTE_NUMBERS_AS_STRINGS)
            .stringQuotingChecker(new com.fasterxml.jackson.dataformat.yaml.util.StringQuotingChecker.Default() {
                private static final long serialVersionUID = 1L;

                @Override
                public boolean needToQuoteValue(String value) {
                    return super.needToQuoteValue(value) || TIMESTAMP.matcher(value).matches();
                }
            })
            .build()).enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

    /** What YAML 1.1 reads as a timestamp: a date, or a date and time with a zone (or, after a space, without). */
    private static final java.util.regex.Pattern TIMESTAMP = java.util.regex.Pattern.compile(
            "\\d{4}-\\d{1,2}-\\d{1,2}(([Tt]\\d{1,2}:\\d{1,2}:\\d{1,2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2}))"
                    + "|( \\d{1,2}:\\d{1,2}:\\d{1,2}(\\.\\d+)?))?");

    private static String yaml(JsonNode tree) throws JsonProcessingException {
        Object plain = tree.isArray() ? YAML.convertValue(tree, List.class) : YAML.convertValue(tree, Map.class);
        String s = YAML.writeValueAsString(plain);
        return s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
    }

    /** The body of {@code GET http://HOST:PORT/PATH}, which must answer 200. */
    static String fetch(String hostPort, String path) throws InputException {
        return ok(get(hostPort, path));
    }

    /** The body of {@code POST http://HOST:PORT/PATH}, which must answer 200. */
    private static String post(String hostPort, String path) throws InputException {
        return ok(send(hostPort, "POST", path));
    }

    private static String ok(HttpResponse<String> r) throws InputException {
        if (r.statusCode() != 200) {
            throw new InputException(r.uri() + ": HTTP " + r.statusCode());
        }
        return r.body();
    }

    private static HttpResponse<String> get(String hostPort, String path) throws InputException {
        return send(hostPort, "GET", path);
    }

    private static HttpResponse<String> send(String hostPort, String method, String path) throws InputException {
        URI uri;
        try {
            uri = AdminAddress.uri(hostPort, path);
        } catch (IllegalArgumentException e) {
            throw new InputException(e.getMessage());
        }
        HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        try {
            return http.send(HttpRequest.newBuilder(uri).method(method, HttpRequest.BodyPublishers.noBody())
                            .timeout(Duration.ofSeconds(30)).build(),
                    HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new InputException(uri + ": cannot reach the admin server: " + reason(e));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InputException(uri + ": interrupted");
        }
    }

    /**
     * The endpoint view's source, as istioctl's: {@code /clusters?format=json}. An admin server that ignores the
     * query (Inmesh's, before it learnt {@code ?format=json}) answers the text form, which is parsed instead; one
     * without {@code /clusters} (404) gives the EDS of its {@code /config_dump?include_eds=true}.
     */
    static List<ClusterStatus> fetchClusterStatuses(String hostPort, java.util.function.Consumer<String> leftOut)
            throws InputException, EnvoyConfigReader.ConfigReadException {
        HttpResponse<String> r = get(hostPort, "/clusters?format=json");
        if (r.statusCode() == 404) {
            return clusterStatuses(fetch(hostPort, "/config_dump?include_eds=true"), leftOut);
        }
        if (r.statusCode() != 200) {
            throw new InputException(r.uri() + ": HTTP " + r.statusCode());
        }
        String body = r.body().strip();
        if (body.isEmpty() || body.equals("{}")) {
            return List.of(); // no clusters: the JSON of an empty admin.v3.Clusters has no field at all
        }
        return clusterStatuses(body, leftOut);
    }

    /** A resource of the dump that is not shown, and why, on the standard error. */
    private void leftOut(String why) {
        err.println("proxy-config: not shown, Inmesh cannot read it: " + why);
    }

    /**
     * Reads a dump as istioctl shows one: each resource that Inmesh cannot read (a filter or field it does not serve)
     * is left out of the tables, with why told to {@code leftOut}, the rest shown. It is read as the proxy that wrote
     * it read its configuration: TLS contexts naming Istio's SDS secrets {@code default} and {@code ROOTCA} (an
     * ISTIO_MUTUAL cluster) read the workload identity directory of {@code inmesh.identity.dir}
     * ({@code INMESH_IDENTITY_DIR}); without one, such a resource is left out, the reason naming the setting.
     */
    static ResourceBundle readDump(String text, java.util.function.Consumer<String> leftOut)
            throws EnvoyConfigReader.ConfigReadException {
        WorkloadIdentity identity = WorkloadIdentity.of(MeshSettings.fromConfiguration().getIdentityDir());
        return Parsers.withIdentity(identity, () -> EnvoyConfigReader.readLeniently(text, leftOut));
    }

    /**
     * Cluster statuses from {@code /clusters?format=json}, the text form of {@code /clusters}, or anything else
     * {@link EnvoyConfigReader} reads, such as a config dump, whose EDS resources stand for the hosts (istioctl
     * itself reads only the {@code /clusters?format=json} form with {@code -f}).
     */
    static List<ClusterStatus> clusterStatuses(String text, java.util.function.Consumer<String> leftOut)
            throws EnvoyConfigReader.ConfigReadException {
        if (ClusterStatuses.isJson(text)) {
            try {
                return ClusterStatuses.fromJson(text);
            } catch (InvalidProtocolBufferException e) {
                throw new EnvoyConfigReader.ConfigReadException("not Envoy's /clusters?format=json: "
                        + e.getMessage(), e);
            }
        }
        if (ClusterStatuses.isText(text)) {
            return ClusterStatuses.fromText(text);
        }
        return ClusterStatuses.fromLoadAssignments(ProxyConfigWriter.loadAssignments(readDump(text, leftOut)));
    }

    /**
     * The first message in the cause chain (the JDK's client often has none on top), else what its kind of failure
     * means in words ({@code connection refused}, {@code timed out}, ...), not a class name.
     */
    static String reason(Throwable e) {
        for (Throwable t : dev.inmesh.runtime.net.Causes.of(e)) {
            if (t.getMessage() != null && !t.getMessage().isBlank()) {
                return t.getMessage();
            }
        }
        for (Throwable t : dev.inmesh.runtime.net.Causes.of(e)) {
            if (t instanceof java.net.ConnectException) {
                return "connection refused";
            } else if (t instanceof java.net.http.HttpTimeoutException || t instanceof java.net.SocketTimeoutException) {
                return "timed out";
            } else if (t instanceof java.net.UnknownHostException) {
                return "unknown host";
            } else if (t instanceof java.io.EOFException || t instanceof java.net.SocketException) {
                return "connection closed";
            }
        }
        return "I/O error";
    }

    /** The file's text, or with {@code -f -} the standard input's, as istioctl reads it. */
    private String input() throws InputException {
        if (!file.toString().equals("-")) {
            return read(file);
        }
        try {
            return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new InputException("standard input: cannot read: " + e.getMessage());
        }
    }

    static String read(Path file) throws InputException {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new InputException(file + ": cannot read: " + EnvoyConfigReader.describeIo(e));
        }
    }

    static final class InputException extends Exception {
        private static final long serialVersionUID = 1L;

        InputException(String message) {
            super(message);
        }
    }
}
