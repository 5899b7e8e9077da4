package dev.inmesh.runtime.accesslog;

import com.google.re2j.Pattern;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * Envoy's CEL access log filter ({@code envoy.access_loggers.extension_filters.cel}, which Istio's Telemetry API
 * writes for an access log's {@code filter.expression}), for the part of CEL such filters use: literals (integers,
 * {@code 200u}, doubles, strings in single or double quotes, {@code true}, {@code false}, {@code null}, lists),
 * {@code || && ! == != < <= > >= in + - * / % ?:}, parentheses, the attributes below, {@code x[key]},
 * {@code has(a.b)}, {@code size()}, {@code int()}, {@code uint()}, {@code double()}, {@code string()}, and the string
 * methods {@code startsWith}, {@code endsWith}, {@code contains} and {@code matches} (RE2).
 *
 * <p>Attributes, as Envoy names them: {@code request.} {@code path url_path host scheme method headers referer
 * useragent id protocol duration size total_size}; {@code response.} {@code code code_details flags grpc_status
 * headers trailers size total_size}; {@code connection.} {@code mtls requested_server_name termination_details
 * uri_san_peer_certificate uri_san_local_certificate}; {@code source.}/{@code destination.} {@code address port};
 * {@code upstream.} {@code address port local_address transport_failure_reason}; {@code xds.} {@code cluster_name
 * route_name}, typed as Envoy's: {@code request.duration} is a duration ({@code duration('1s')}), {@code source} and
 * {@code destination} addresses carry the port. As in Envoy, an expression that cannot be evaluated for an entry (an
 * absent attribute compared, a type mismatch) logs nothing for it. An expression that does not parse, or names a
 * root other than these, is refused with the configuration.
 */
final class CelFilter implements Predicate<AccessLogEntry> {
    private final Node root;

    private CelFilter(Node root) {
        this.root = root;
    }

    static CelFilter compile(String expression) {
        Parser p = new Parser(expression);
        Node n = p.expr();
        p.skipSpace();
        if (p.pos < expression.length()) {
            throw p.error("unexpected '" + expression.charAt(p.pos) + "'");
        }
        return new CelFilter(n);
    }

    @Override
    public boolean test(AccessLogEntry e) {
        try {
            return Boolean.TRUE.equals(root.eval(e));
        } catch (RuntimeException ex) {
            return false; // Envoy: an evaluation error is not a match
        }
    }

    /**
     * The expression's value for {@code e} as Envoy prints a CEL value (its {@code print}: a string as it is, a
     * number in decimal, {@code true}/{@code false}, a duration as {@code 1.5s}), or null when it cannot be evaluated
     * (an absent attribute, a type mismatch): what Istio's stats record as {@code unknown}.
     */
    String print(AccessLogEntry e) {
        Object v;
        try {
            v = root.eval(e);
        } catch (RuntimeException ex) {
            return null;
        }
        if (v == null || v instanceof String) {
            return (String) v;
        }
        if (v instanceof Double d) {
            return dev.inmesh.runtime.stats.EnvoyNumbers.general(d); // six significant digits, as absl::StrCat
        }
        if (v instanceof Duration d) {
            return durationText(d);
        }
        if (v instanceof Number || v instanceof Boolean) {
            return v.toString();
        }
        return null;
    }

    /** A duration as Abseil formats one: {@code 0}, {@code 250ms}, {@code 1.5s}, {@code 2m3s}, {@code 1h0m0.5s}. */
    static String durationText(Duration d) {
        if (d.isZero()) {
            return "0";
        }
        StringBuilder b = new StringBuilder(d.isNegative() ? "-" : "");
        d = d.abs();
        if (d.compareTo(Duration.ofSeconds(1)) < 0) {
            long nanos = d.toNanos();
            String[] units = {"ns", "us", "ms"};
            long[] sizes = {1, 1_000, 1_000_000};
            int u = nanos >= 1_000_000 ? 2 : nanos >= 1_000 ? 1 : 0;
            return b.append(plain(java.math.BigDecimal.valueOf(nanos).divide(java.math.BigDecimal.valueOf(sizes[u]))))
                    .append(units[u]).toString();
        }
        long hours = d.toHours();
        long minutes = d.toMinutesPart();
        if (hours > 0) {
            b.append(hours).append('h');
        }
        if (hours > 0 || minutes > 0) {
            b.append(minutes).append('m');
        }
        java.math.BigDecimal seconds = java.math.BigDecimal.valueOf(d.toSecondsPart())
                .add(java.math.BigDecimal.valueOf(d.toNanosPart(), 9));
        return b.append(plain(seconds)).append('s').toString();
    }

    private static String plain(java.math.BigDecimal v) {
        return v.signum() == 0 ? "0" : v.stripTrailingZeros().toPlainString();
    }

    /** A compiled expression. */
    private interface Node {
        Object eval(AccessLogEntry e);
    }

    /** A value known when the expression is compiled: a literal, or a function of literals. */
    private record Const(Object value) implements Node {
        @Override
        public Object eval(AccessLogEntry e) {
            return value;
        }
    }

    /** A value with named fields (an attribute group, or a header map). */
    private interface Obj {
        Object field(String name);
    }

    private static final class EvalError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        EvalError(String m) {
            super(m, null, false, false);
        }
    }

    // ---- attributes ----

    private static final List<String> ROOTS = List.of("request", "response", "connection", "source", "destination",
            "upstream", "xds");

    private static Obj root(String name, AccessLogEntry e) {
        StreamInfo s = e.info();
        return switch (name) {
            case "request" -> f -> switch (f) {
                case "path" -> e.requestHeader(":path");
                case "url_path" -> {
                    String p = e.requestHeader(":path");
                    int q = p == null ? -1 : p.indexOf('?');
                    yield q < 0 ? p : p.substring(0, q);
                }
                case "host" -> e.requestHeader(":authority");
                case "scheme" -> e.requestHeader(":scheme");
                case "method" -> e.requestHeader(":method");
                case "headers" -> (Obj) h -> e.requestHeaderJoined(h.toLowerCase(java.util.Locale.ROOT));
                case "referer" -> e.requestHeader("referer");
                case "useragent" -> e.requestHeader("user-agent");
                case "id" -> e.requestHeader("x-request-id");
                case "protocol" -> s.protocol();
                // absent until the stream completes, as Envoy's (a connection Istio's stats label while it lasts)
                case "duration" -> s.durationMillis() < 0 ? null : java.time.Duration.ofMillis(s.durationMillis());
                case "size", "total_size" -> s.bytesReceived();
                default -> null;
            };
            case "response" -> f -> switch (f) {
                case "code" -> s.responseCode() == 0 ? null : (Object) (long) s.responseCode();
                case "code_details" -> s.responseCodeDetails();
                case "flags" -> flags(s);
                case "grpc_status" -> {
                    Integer g = e.grpcStatus();
                    yield g == null ? null : (Object) (long) g;
                }
                case "headers" -> (Obj) h -> e.responseHeaderJoined(h.toLowerCase(java.util.Locale.ROOT));
                case "trailers" -> (Obj) h -> e.responseTrailerJoined(h.toLowerCase(java.util.Locale.ROOT));
                case "size", "total_size" -> s.bytesSent();
                default -> null;
            };
            case "connection" -> f -> switch (f) {
                case "mtls" -> s.downstreamMutualTls();
                case "requested_server_name" -> s.requestedServerName() == null ? "" : s.requestedServerName();
                case "termination_details" -> e.terminationDetails();
                case "uri_san_peer_certificate" -> s.downstreamPeerPrincipal();
                case "uri_san_local_certificate" -> s.downstreamLocalPrincipal();
                default -> null;
            };
            case "source" -> peer(s.downstreamRemoteAddress());
            case "destination" -> peer(s.downstreamLocalAddress());
            case "upstream" -> f -> switch (f) {
                case "address" -> s.upstreamHost();
                case "port" -> CommandFormat.port(s.upstreamHost());
                case "local_address" -> s.upstreamLocalAddress();
                case "transport_failure_reason" -> s.upstreamTransportFailureReason();
                default -> null;
            };
            case "xds" -> f -> switch (f) {
                case "cluster_name" -> s.upstreamCluster();
                case "route_name" -> s.routeName();
                default -> null;
            };
            default -> throw new EvalError("no attribute " + name);
        };
    }

    /** {@code source} or {@code destination}: Envoy's address is the IP and the port, as {@code 10.0.0.1:8080}. */
    private static Obj peer(String hostPort) {
        return f -> switch (f) {
            case "address" -> hostPort;
            case "port" -> CommandFormat.port(hostPort);
            default -> null;
        };
    }

    /** Envoy's response flags as its CEL attribute holds them: one bit per flag, in Envoy's order. */
    private static long flags(StreamInfo s) {
        long bits = 0;
        for (ResponseFlag f : s.responseFlags()) {
            int i = ENVOY_FLAG_ORDER.indexOf(f.code());
            if (i >= 0) {
                bits |= 1L << i;
            }
        }
        return bits;
    }

    private static final List<String> ENVOY_FLAG_ORDER = List.of("LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO",
            "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT",
            "UPE", "NC", "OM", "DF", "DO", "DR", "UDO");

    // ---- operations ----

    private static Object member(Object target, String name) {
        if (target instanceof Obj o) {
            return o.field(name);
        }
        if (target instanceof Map<?, ?> m) {
            return m.get(name);
        }
        throw new EvalError("no field " + name);
    }

    private static Object index(Object target, Object key) {
        if (target instanceof List<?> l && key instanceof Long i) {
            if (i < 0 || i >= l.size()) {
                throw new EvalError("index out of range");
            }
            return l.get(i.intValue());
        }
        if (key instanceof String k) {
            return member(target, k);
        }
        throw new EvalError("cannot index");
    }

    private static boolean truth(Object v) {
        if (v instanceof Boolean b) {
            return b;
        }
        throw new EvalError("not a bool");
    }

    private static int compare(Object a, Object b) {
        if (a instanceof Duration x && b instanceof Duration y) {
            return x.compareTo(y);
        }
        if (a instanceof Number x && b instanceof Number y) {
            if (x instanceof Double || y instanceof Double) {
                return Double.compare(x.doubleValue(), y.doubleValue());
            }
            return Long.compare(x.longValue(), y.longValue());
        }
        if (a instanceof String x && b instanceof String y) {
            return x.compareTo(y);
        }
        if (a instanceof Boolean x && b instanceof Boolean y) {
            return Boolean.compare(x, y);
        }
        throw new EvalError("cannot compare");
    }

    private static boolean equal(Object a, Object b) {
        if ((a instanceof Number && b instanceof Number) || (a instanceof Duration && b instanceof Duration)) {
            return compare(a, b) == 0;
        }
        if (a == null || b == null) {
            if (a == null && b == null) {
                return true;
            }
            // comparing an absent attribute: Envoy's CEL reports an error (no such key), not false
            throw new EvalError("absent value");
        }
        return Objects.equals(a, b);
    }

    private static Object arithmetic(char op, Object a, Object b) {
        if (op == '+' && a instanceof String x && b instanceof String y) {
            return x + y;
        }
        if (a instanceof Duration x && b instanceof Duration y && (op == '+' || op == '-')) {
            return op == '+' ? x.plus(y) : x.minus(y);
        }
        if (!(a instanceof Number x) || !(b instanceof Number y)) {
            throw new EvalError("not numbers");
        }
        if (x instanceof Double || y instanceof Double) {
            double p = x.doubleValue();
            double q = y.doubleValue();
            return switch (op) {
                case '+' -> p + q;
                case '-' -> p - q;
                case '*' -> p * q;
                case '/' -> p / q;
                default -> throw new EvalError("% of doubles");
            };
        }
        long p = x.longValue();
        long q = y.longValue();
        if ((op == '/' || op == '%') && q == 0) {
            throw new EvalError("division by zero");
        }
        return switch (op) {
            case '+' -> Math.addExact(p, q);
            case '-' -> Math.subtractExact(p, q);
            case '*' -> Math.multiplyExact(p, q);
            case '/' -> p / q;
            default -> p % q;
        };
    }

    private static Object call(String name, Object target, List<Object> args) {
        switch (name) {
            case "startsWith", "endsWith", "contains", "matches" -> {
                if (!(target instanceof String s) || args.size() != 1 || !(args.get(0) instanceof String a)) {
                    throw new EvalError(name + " takes a string");
                }
                return switch (name) {
                    case "startsWith" -> s.startsWith(a);
                    case "endsWith" -> s.endsWith(a);
                    case "contains" -> s.contains(a);
                    default -> Pattern.compile(a).matcher(s).find();
                };
            }
            case "size" -> {
                Object v = target != null ? target : args.size() == 1 ? args.get(0) : null;
                if (v instanceof String s) {
                    return (long) s.codePointCount(0, s.length());
                }
                if (v instanceof List<?> l) {
                    return (long) l.size();
                }
                throw new EvalError("size of what");
            }
            case "int", "uint" -> {
                Object v = one(name, args);
                if (v instanceof Number n) {
                    return n.longValue();
                }
                if (v instanceof String s) {
                    return Long.parseLong(s);
                }
                throw new EvalError(name + " of what");
            }
            case "double" -> {
                Object v = one(name, args);
                if (v instanceof Number n) {
                    return n.doubleValue();
                }
                if (v instanceof String s) {
                    return Double.parseDouble(s);
                }
                throw new EvalError("double of what");
            }
            case "duration" -> {
                if (!(one(name, args) instanceof String s)) {
                    throw new EvalError("duration of what");
                }
                return duration(s);
            }
            case "string" -> {
                Object v = one(name, args);
                if (v == null) {
                    throw new EvalError("string of nothing");
                }
                return v.toString();
            }
            default -> throw new EvalError("no function " + name);
        }
    }

    private static Object one(String name, List<Object> args) {
        if (args.size() != 1) {
            throw new EvalError(name + " takes one argument");
        }
        return args.get(0);
    }

    private static final List<String> FUNCTIONS = List.of("size", "int", "uint", "double", "string", "duration");

    /**
     * CEL's {@code duration('1.5s')}: a sign, then decimal numbers each with a unit ({@code h m s ms us ns}), as
     * Go's durations are written.
     */
    static Duration duration(String text) {
        int i = 0;
        boolean negative = false;
        if (!text.isEmpty() && (text.charAt(0) == '-' || text.charAt(0) == '+')) {
            negative = text.charAt(0) == '-';
            i++;
        }
        if (text.substring(i).equals("0")) {
            return Duration.ZERO;
        }
        if (i >= text.length()) {
            throw new EvalError("bad duration '" + text + "'");
        }
        java.math.BigDecimal nanos = java.math.BigDecimal.ZERO;
        while (i < text.length()) {
            int start = i;
            while (i < text.length() && (Character.isDigit(text.charAt(i)) || text.charAt(i) == '.')) {
                i++;
            }
            int unitStart = i;
            while (i < text.length() && !Character.isDigit(text.charAt(i)) && text.charAt(i) != '.') {
                i++;
            }
            long unit = switch (text.substring(unitStart, i)) {
                case "h" -> 3_600_000_000_000L;
                case "m" -> 60_000_000_000L;
                case "s" -> 1_000_000_000L;
                case "ms" -> 1_000_000L;
                case "us", "\u00b5s" -> 1_000L;
                case "ns" -> 1L;
                default -> throw new EvalError("bad duration '" + text + "'");
            };
            try {
                nanos = nanos.add(new java.math.BigDecimal(text.substring(start, unitStart))
                        .multiply(java.math.BigDecimal.valueOf(unit)));
            } catch (NumberFormatException e) {
                throw new EvalError("bad duration '" + text + "'");
            }
        }
        long n = nanos.longValue();
        return Duration.ofNanos(negative ? -n : n);
    }
    private static final List<String> METHODS = List.of("startsWith", "endsWith", "contains", "matches", "size");

    // ---- the parser ----

    private static final class Parser {
        private final String s;
        int pos;

        Parser(String s) {
            this.s = s;
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException("CEL expression '" + s + "': " + what + " at position " + pos
                    + " (Inmesh evaluates the part of CEL access log filters use: see docs/operations.md)");
        }

        void skipSpace() {
            while (pos < s.length() && Character.isWhitespace(s.charAt(pos))) {
                pos++;
            }
        }

        boolean eat(String token) {
            skipSpace();
            if (s.startsWith(token, pos)) {
                // a word operator must not run into an identifier
                if (Character.isLetter(token.charAt(0)) && pos + token.length() < s.length()
                        && Character.isLetterOrDigit(s.charAt(pos + token.length()))) {
                    return false;
                }
                pos += token.length();
                return true;
            }
            return false;
        }

        Pattern regex(String r) {
            try {
                return Pattern.compile(r);
            } catch (com.google.re2j.PatternSyntaxException e) {
                throw error("bad regular expression '" + r + "'");
            }
        }

        void expect(String token) {
            if (!eat(token)) {
                throw error("expected '" + token + "'");
            }
        }

        Node expr() {
            Node c = or();
            if (eat("?")) {
                Node a = expr();
                expect(":");
                Node b = expr();
                return e -> truth(c.eval(e)) ? a.eval(e) : b.eval(e);
            }
            return c;
        }

        Node or() {
            Node left = and();
            while (eat("||")) {
                Node l = left;
                Node r = and();
                // CEL's commutative or: true wins over an error on either side
                left = e -> {
                    RuntimeException err = null;
                    try {
                        if (truth(l.eval(e))) {
                            return true;
                        }
                    } catch (RuntimeException ex) {
                        err = ex;
                    }
                    if (truth(r.eval(e))) {
                        return true;
                    }
                    if (err != null) {
                        throw err;
                    }
                    return false;
                };
            }
            return left;
        }

        Node and() {
            Node left = relation();
            while (eat("&&")) {
                Node l = left;
                Node r = relation();
                left = e -> {
                    RuntimeException err = null;
                    try {
                        if (!truth(l.eval(e))) {
                            return false;
                        }
                    } catch (RuntimeException ex) {
                        err = ex;
                    }
                    if (!truth(r.eval(e))) {
                        return false;
                    }
                    if (err != null) {
                        throw err;
                    }
                    return true;
                };
            }
            return left;
        }

        Node relation() {
            Node l = additive();
            for (String op : List.of("==", "!=", "<=", ">=", "<", ">", "in")) {
                if (eat(op)) {
                    Node r = additive();
                    return switch (op) {
                        case "==" -> e -> equal(l.eval(e), r.eval(e));
                        case "!=" -> e -> !equal(l.eval(e), r.eval(e));
                        case "<=" -> e -> compare(l.eval(e), r.eval(e)) <= 0;
                        case ">=" -> e -> compare(l.eval(e), r.eval(e)) >= 0;
                        case "<" -> e -> compare(l.eval(e), r.eval(e)) < 0;
                        case ">" -> e -> compare(l.eval(e), r.eval(e)) > 0;
                        default -> e -> {
                            Object v = l.eval(e);
                            Object in = r.eval(e);
                            if (in instanceof List<?> list) {
                                for (Object x : list) {
                                    if (x != null && v != null && (x instanceof Number && v instanceof Number
                                            ? compare(x, v) == 0 : x.equals(v))) {
                                        return true;
                                    }
                                }
                                return false;
                            }
                            if (v instanceof String key && (in instanceof Obj || in instanceof Map<?, ?>)) {
                                return CelFilter.member(in, key) != null; // a map's key, such as a header's name
                            }
                            throw new EvalError("in needs a list or a map");
                        };
                    };
                }
            }
            return l;
        }

        Node additive() {
            Node left = multiplicative();
            while (true) {
                char op = eat("+") ? '+' : eat("-") ? '-' : 0;
                if (op == 0) {
                    return left;
                }
                Node l = left;
                Node r = multiplicative();
                left = e -> arithmetic(op, l.eval(e), r.eval(e));
            }
        }

        Node multiplicative() {
            Node left = unary();
            while (true) {
                char op = eat("*") ? '*' : eat("/") ? '/' : eat("%") ? '%' : 0;
                if (op == 0) {
                    return left;
                }
                Node l = left;
                Node r = unary();
                left = e -> arithmetic(op, l.eval(e), r.eval(e));
            }
        }

        Node unary() {
            if (eat("!")) {
                Node n = unary();
                return e -> !truth(n.eval(e));
            }
            if (eat("-")) {
                Node n = unary();
                return e -> arithmetic('-', 0L, n.eval(e));
            }
            return member(primary());
        }

        Node member(Node target) {
            while (true) {
                if (eat(".")) {
                    String name = ident();
                    Node t = target;
                    if (eat("(")) {
                        if (!METHODS.contains(name)) {
                            throw error("unknown method " + name);
                        }
                        List<Node> args = args(")");
                        if (name.equals("matches") && args.size() == 1 && args.get(0) instanceof Const c
                                && c.value() instanceof String regex) {
                            Pattern pattern = regex(regex);
                            target = e -> t.eval(e) instanceof String s ? pattern.matcher(s).find()
                                    : call(name, null, List.of(regex));
                        } else {
                            target = e -> call(name, t.eval(e), evalAll(args, e));
                        }
                    } else {
                        target = e -> CelFilter.member(t.eval(e), name);
                    }
                } else if (eat("[")) {
                    Node key = expr();
                    expect("]");
                    Node t = target;
                    target = e -> index(t.eval(e), key.eval(e));
                } else {
                    return target;
                }
            }
        }

        List<Node> args(String close) {
            List<Node> args = new ArrayList<>();
            if (eat(close)) {
                return args;
            }
            do {
                args.add(expr());
            } while (eat(","));
            expect(close);
            return args;
        }

        String ident() {
            skipSpace();
            int start = pos;
            while (pos < s.length() && (Character.isLetterOrDigit(s.charAt(pos)) || s.charAt(pos) == '_')) {
                pos++;
            }
            if (start == pos || Character.isDigit(s.charAt(start))) {
                throw error("expected a name");
            }
            return s.substring(start, pos);
        }

        Node primary() {
            skipSpace();
            if (pos >= s.length()) {
                throw error("unexpected end");
            }
            char c = s.charAt(pos);
            if (eat("(")) {
                Node n = expr();
                expect(")");
                return n;
            }
            if (eat("[")) {
                List<Node> items = args("]");
                return e -> evalAll(items, e);
            }
            if (c == '\'' || c == '"') {
                return new Const(string(c, false));
            }
            char next = pos + 1 < s.length() ? s.charAt(pos + 1) : 0;
            if ((c == 'r' || c == 'R') && (next == '\'' || next == '"')) {
                pos++;
                return new Const(string(s.charAt(pos), true)); // a raw string: backslashes are kept
            }
            if (Character.isDigit(c)) {
                return new Const(number());
            }
            String name = ident();
            switch (name) {
                case "true", "false" -> {
                    return new Const(name.equals("true"));
                }
                case "null" -> {
                    return new Const(null);
                }
                case "has" -> {
                    expect("(");
                    Node n = expr();
                    expect(")");
                    return e -> {
                        try {
                            return n.eval(e) != null;
                        } catch (EvalError ex) {
                            return false;
                        }
                    };
                }
                default -> { }
            }
            if (eat("(")) {
                if (!FUNCTIONS.contains(name)) {
                    throw error("unknown function " + name);
                }
                List<Node> args = args(")");
                if (args.stream().allMatch(a -> a instanceof Const)) {
                    // a function of literals, such as duration('1s'): evaluated once, refused here when it fails
                    try {
                        return new Const(call(name, null, evalAll(args, null)));
                    } catch (RuntimeException ex) {
                        throw error(name + ": " + ex.getMessage());
                    }
                }
                return e -> call(name, null, evalAll(args, e));
            }
            if (!ROOTS.contains(name)) {
                throw error("unknown attribute " + name + " (expected one of " + ROOTS + ")");
            }
            return e -> root(name, e);
        }

        String string(char quote, boolean raw) {
            StringBuilder b = new StringBuilder();
            pos++;
            while (pos < s.length() && s.charAt(pos) != quote) {
                char c = s.charAt(pos++);
                if (c == '\\' && pos < s.length() && !raw) {
                    char n = s.charAt(pos++);
                    b.append(switch (n) {
                        case 'n' -> '\n';
                        case 't' -> '\t';
                        case 'r' -> '\r';
                        case '\\', '\'', '"', '`', '?' -> n;
                        default -> throw error("unknown escape \\" + n + " (a regular expression's backslash: "
                                + "\\\\, or a raw string r'...')");
                    });
                } else {
                    b.append(c);
                }
            }
            if (pos >= s.length()) {
                throw error("unterminated string");
            }
            pos++;
            return b.toString();
        }

        Object number() {
            int start = pos;
            while (pos < s.length() && (Character.isDigit(s.charAt(pos)) || s.charAt(pos) == '.')) {
                pos++;
            }
            String n = s.substring(start, pos);
            if (pos < s.length() && (s.charAt(pos) == 'u' || s.charAt(pos) == 'U')) {
                pos++;
            }
            try {
                return n.contains(".") ? (Object) Double.parseDouble(n) : (Object) Long.parseLong(n);
            } catch (NumberFormatException e) {
                throw error("bad number " + n);
            }
        }
    }

    private static List<Object> evalAll(List<Node> nodes, AccessLogEntry e) {
        List<Object> out = new ArrayList<>(nodes.size());
        for (Node n : nodes) {
            out.add(n.eval(e));
        }
        return out;
    }
}
