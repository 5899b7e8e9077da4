package dev.inmesh.runtime.admin;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Envoy's {@code /logging}: Inmesh's loggers, one per package ({@code java.util.logging} loggers named by the package,
 * which its classes' loggers inherit their level from), listed and changed by Envoy's level names. Envoy's
 * {@code trace}, {@code debug}, {@code info}, {@code warning}, {@code error}, {@code critical} and {@code off} are
 * {@code FINEST}, {@code FINE}, {@code INFO}, {@code WARNING}, {@code SEVERE} (both of the last two) and {@code OFF};
 * a level below {@code INFO} also opens the root logger's handlers, so that what the logger lets through is printed.
 */
final class LogLevels {

    /** Envoy's level names, in Envoy's order. */
    static final List<String> NAMES = List.of("trace", "debug", "info", "warning", "error", "critical", "off");

    private static final List<Level> LEVELS = List.of(Level.FINEST, Level.FINE, Level.INFO, Level.WARNING,
            Level.SEVERE, Level.SEVERE, Level.OFF);

    /** The packages whose loggers are listed, by the name {@code /logging} gives each. */
    private static final Map<String, String> PACKAGES = packages();

    /**
     * Envoy's logger names that {@code istioctl proxy-config log --level NAME:LEVEL} takes (it refuses names not
     * Envoy's), by the Inmesh loggers that do that work: {@code rbac:debug}, a step of Istio's authorization
     * troubleshooting, sets the router's, whose filters decide. As in Envoy, where each of these is a logger of its
     * own, each name keeps the level it was given, which the list shows (istioctl takes only names the proxy lists),
     * and setting one leaves what the others show alone. Several share a logger here: a logger logs at the most
     * verbose level of the Envoy names covering it that were given one since the logger's own name was (see
     * {@link #change}).
     */
    static final Map<String, List<String>> ENVOY_NAMES = Map.ofEntries(
            Map.entry("http", List.of("router", "inbound", "outbound", "proxy")),
            Map.entry("http2", List.of("proxy", "upstream")),
            Map.entry("filter", List.of("router", "inbound")),
            Map.entry("rbac", List.of("router", "inbound", "proxy")),
            Map.entry("jwt", List.of("router", "inbound")),
            Map.entry("ext_authz", List.of("router", "inbound")),
            Map.entry("connection", List.of("listener", "net", "proxy")),
            Map.entry("conn_handler", List.of("listener", "proxy")),
            Map.entry("pool", List.of("upstream")),
            Map.entry("hc", List.of("upstream")),
            Map.entry("dns", List.of("upstream")),
            Map.entry("secret", List.of("tls", "identity")),
            Map.entry("grpc", List.of("xds")),
            Map.entry("main", List.of("mesh")),
            Map.entry("init", List.of("mesh")),
            Map.entry("websocket", List.of("router", "outbound", "proxy")),
            Map.entry("lua", List.of("router")),
            Map.entry("matcher", List.of("router")),
            Map.entry("health_checker", List.of("upstream")),
            Map.entry("rds", List.of("xds")),
            Map.entry("misc", List.of("mesh")));

    /** The Envoy names covering each package's logger. */
    private static final Map<String, List<String>> COVERING = covering();

    /** The loggers, held so that the levels set on them stay (the logging framework keeps loggers weakly). */
    private final Map<String, Logger> loggers = new TreeMap<>();
    /** The level names set last, so that {@code critical} reads back as such rather than as {@code error}. */
    private final Map<String, String> set = new LinkedHashMap<>();
    /** The level each name was given last, a package's and an Envoy name's alike; at first, what the list showed. */
    private final Map<String, String> given = new HashMap<>();
    /** When each name was given its level: the count of changes then (0: never given one). */
    private final Map<String, Long> givenAt = new HashMap<>();
    /** The changes so far, two a request (its Envoy names', then its packages'). */
    private long stamp;

    /** The JVM's: its loggers are the JVM's, shared by every admin server in it. */
    static final LogLevels JVM = new LogLevels();

    private LogLevels() {
        PACKAGES.forEach((name, pkg) -> loggers.put(name, Logger.getLogger(pkg)));
        loggers.forEach((name, logger) -> given.put(name, name(name, logger)));
        ENVOY_NAMES.forEach((envoy, own) -> given.put(envoy, given.get(own.get(0))));
        given.keySet().forEach(name -> givenAt.put(name, 0L));
    }

    private static Map<String, List<String>> covering() {
        Map<String, List<String>> m = new TreeMap<>();
        new TreeMap<>(ENVOY_NAMES).forEach((envoy, own) -> own.forEach(pkg -> m.computeIfAbsent(pkg,
                k -> new ArrayList<>()).add(envoy)));
        return Collections.unmodifiableMap(m);
    }

    private static Map<String, String> packages() {
        Map<String, String> m = new TreeMap<>();
        for (String p : List.of("accesslog", "admin", "config", "identity", "inbound", "lb", "listener", "mesh", "net",
                "outbound", "router", "snapshot", "stats", "tls", "tools", "tracing", "upstream", "xds")) {
            m.put(p, "dev.inmesh.runtime." + p);
        }
        m.put("proxy", "dev.inmesh.interception.proxy");
        return Collections.unmodifiableMap(m);
    }

    /** A bad request's message, as Envoy's words it. */
    static final class LevelException extends Exception {
        private static final long serialVersionUID = 1L;

        LevelException(String message) {
            super(message);
        }
    }

    /**
     * Envoy's change of levels: {@code level=LEVEL} gives every name the level, {@code paths=NAME:LEVEL,...} and
     * {@code NAME=LEVEL} the names given; anything else, an unknown name or level, changes nothing. A package's logger
     * then logs at the level given last to its own name, or, where Envoy names covering it were given one since, at
     * the most verbose of theirs: {@code http=debug} then {@code rbac=warning} leaves the router at {@code debug},
     * {@code http=info} after them brings it to {@code info}, {@code router=error} after them to {@code error}. In
     * one request, the packages named count as given after the Envoy names.
     *
     * @param params the query's parameters, each name with its values in order
     */
    synchronized void change(Map<String, List<String>> params) throws LevelException {
        int count = 0;
        for (List<String> values : params.values()) {
            count += values.size();
        }
        if (count != 1) {
            throw new LevelException("invalid number of parameters");
        }
        Map.Entry<String, List<String>> only = params.entrySet().iterator().next();
        String key = only.getKey();
        String value = only.getValue().get(0);
        Map<String, String> changes = new LinkedHashMap<>();
        if (key.equals("level")) {
            String level = level(value);
            given.keySet().forEach(name -> changes.put(name, level));
        } else if (key.equals("paths")) {
            for (String pair : value.split(",")) {
                if (pair.isBlank()) {
                    continue;
                }
                int colon = pair.indexOf(':');
                String name = colon < 0 ? pair.strip() : pair.substring(0, colon).strip();
                String level = colon < 0 ? "" : pair.substring(colon + 1).strip();
                if (name.isEmpty() || level.isEmpty()) {
                    throw new LevelException("empty logger name or empty logger level");
                }
                changes.put(name, level(level));
            }
        } else {
            changes.put(key, level(value));
        }
        for (String name : changes.keySet()) {
            if (!given.containsKey(name)) {
                throw new LevelException("unknown logger name");
            }
        }
        long envoyAt = ++stamp;
        long ownAt = ++stamp;
        java.util.Set<String> touched = new java.util.TreeSet<>();
        changes.forEach((name, level) -> {
            given.put(name, level);
            List<String> envoy = ENVOY_NAMES.get(name);
            givenAt.put(name, envoy != null ? envoyAt : ownAt);
            touched.addAll(envoy != null ? envoy : List.of(name));
        });
        touched.forEach(this::apply);
    }

    /** Sets a package's logger to its own level, or to the most verbose of the Envoy names covering it given since. */
    private void apply(String pkg) {
        long own = givenAt.get(pkg);
        int level = -1;
        for (String envoy : COVERING.getOrDefault(pkg, List.of())) {
            if (givenAt.get(envoy) > own) {
                int each = NAMES.indexOf(given.get(envoy));
                level = level < 0 ? each : Math.min(level, each);
            }
        }
        String name = level < 0 ? given.get(pkg) : NAMES.get(level);
        Level jul = LEVELS.get(NAMES.indexOf(name));
        loggers.get(pkg).setLevel(jul);
        set.put(pkg, name);
        if (jul.intValue() < Level.INFO.intValue()) {
            openRootHandlers(jul);
        }
    }

    private static String level(String name) throws LevelException {
        if (!NAMES.contains(name)) {
            throw new LevelException("unknown logger level");
        }
        return name;
    }

    /** Lowers the root logger's handlers to {@code level} where they are above it. */
    private static void openRootHandlers(Level level) {
        for (Handler h : Logger.getLogger("").getHandlers()) {
            if (h.getLevel().intValue() > level.intValue()) {
                h.setLevel(level);
            }
        }
    }

    /**
     * Envoy's list: {@code active loggers:}, then {@code   NAME: LEVEL} a line, by name, and an empty line; a
     * package's the level its logger has, an Envoy name's the level it was given last (never given one, its first
     * logger's).
     */
    synchronized String list() {
        Map<String, String> levels = new TreeMap<>();
        loggers.forEach((name, logger) -> levels.put(name, name(name, logger)));
        // an Envoy name never given a level shows its first logger's, as that logger has it now (set by a
        // logging.properties or the application as well)
        ENVOY_NAMES.forEach((envoy, own) -> levels.put(envoy, givenAt.get(envoy) == 0 ? levels.get(own.get(0))
                : given.get(envoy)));
        StringBuilder b = new StringBuilder("active loggers:\n");
        levels.forEach((name, level) -> b.append("  ").append(name).append(": ").append(level).append('\n'));
        return b.append('\n').toString();
    }

    /** The Envoy name of a logger's level: the one set last if the logger still has it, else its effective one's. */
    private String name(String name, Logger logger) {
        Level effective = effective(logger);
        String last = set.get(name);
        if (last != null && LEVELS.get(NAMES.indexOf(last)).equals(effective)) {
            return last;
        }
        int v = effective.intValue();
        if (v == Level.OFF.intValue()) {
            return "off";
        }
        if (v >= Level.SEVERE.intValue()) {
            return "error";
        }
        if (v >= Level.WARNING.intValue()) {
            return "warning";
        }
        if (v >= Level.INFO.intValue()) {
            return "info";
        }
        return v >= Level.FINE.intValue() ? "debug" : "trace";
    }

    private static Level effective(Logger logger) {
        for (Logger l = logger; l != null; l = l.getParent()) {
            if (l.getLevel() != null) {
                return l.getLevel();
            }
        }
        return Level.INFO;
    }

    /**
     * What {@code /logging} takes, after an error, in Envoy's words: a {@code usage:} line for each form, then the
     * levels, each followed by a space.
     */
    static String usage() {
        StringBuilder b = new StringBuilder()
                .append("usage: /logging?<name>=<level> (change single level)\n")
                .append("usage: /logging?paths=name1:level1,name2:level2,... (change multiple levels)\n")
                .append("usage: /logging?level=<level> (change all levels)\n")
                .append("levels: ");
        NAMES.forEach(level -> b.append(level).append(' '));
        return b.append('\n').toString();
    }
}
