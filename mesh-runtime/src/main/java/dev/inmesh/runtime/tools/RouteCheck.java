package dev.inmesh.runtime.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.StringValue;
import com.google.protobuf.UInt32Value;
import dev.inmesh.api.config.route.ClusterSpecifier;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import dev.inmesh.runtime.accesslog.LocalReply;
import dev.inmesh.runtime.router.HeaderMutator;
import dev.inmesh.runtime.router.RouteRequest;
import dev.inmesh.runtime.router.RouteResult;
import dev.inmesh.runtime.router.RouteTable;
import dev.inmesh.runtime.router.SimpleHeaders;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.FieldError;
import dev.inmesh.runtime.xds.RouteConfigurationParser;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * Runs route table tests in the format of Envoy's {@code router_check_tool} against Inmesh's route table: each test
 * is a request (authority, path, method, headers, random value, runtime key, ssl, internal) and the expected decision
 * (cluster, virtual host, rewritten path and host, redirect, request and response header matches).
 */
public final class RouteCheck {
    private final RouteConfiguration config;
    private final io.envoyproxy.envoy.config.route.v3.RouteConfiguration source;
    private final RouteTable table;
    private final RouteCoverage coverage;
    /** Whether a route has a {@code runtime_fraction}: then each test's runtime key decides the table. */
    private final boolean runtimeRoutes;
    /** The tables of the runtime keys the tests enabled ({@code ""}: none), made once each. */
    private final Map<String, RuntimeTable> runtimeTables = new HashMap<>();

    /** Checks against {@code config}, parsed from {@code source}, whose route matches the coverage lists. */
    public RouteCheck(RouteConfiguration config, io.envoyproxy.envoy.config.route.v3.RouteConfiguration source) {
        this.config = config;
        this.source = source;
        this.table = RouteTable.compile(config);
        this.coverage = new RouteCoverage(config, source);
        this.runtimeRoutes = source.getVirtualHostsList().stream().flatMap(v -> v.getRoutesList().stream())
                .anyMatch(r -> r.getMatch().hasRuntimeFraction());
    }

    /**
     * The route table as Envoy's tool has it for a test that enables the runtime key {@code runtime} (its input's
     * {@code runtime}, {@code ""} for none): the tool's runtime answers a route's {@code runtime_fraction} only for
     * that key, by the test's {@code random_value} against the fraction's default value (a numerator of 0 read as 1,
     * as the tool sets it); a route of any other key, or any route when the test names none, never matches.
     * {@code originals} maps the routes and weighted clusters of this table to the configuration's, for the coverage.
     */
    private record RuntimeTable(RouteTable table, Map<Object, Object> originals) {}

    private RuntimeTable runtimeTable(String runtime) {
        return runtimeTables.computeIfAbsent(runtime, key -> {
            var b = source.toBuilder();
            for (var v : b.getVirtualHostsBuilderList()) {
                for (var r : v.getRoutesBuilderList()) {
                    if (!r.getMatch().hasRuntimeFraction()) {
                        continue;
                    }
                    var fraction = r.getMatchBuilder().getRuntimeFractionBuilder();
                    var value = fraction.getDefaultValueBuilder();
                    if (key.isEmpty() || !key.equals(fraction.getRuntimeKey())) {
                        value.setNumerator(0); // never matches
                    } else if (value.getNumerator() == 0) {
                        value.setNumerator(1);
                    }
                }
            }
            RouteConfiguration c = new RouteConfigurationParser().parseFields(b.build());
            Map<Object, Object> originals = new java.util.IdentityHashMap<>();
            for (int i = 0; i < c.virtualHosts().size(); i++) {
                List<Route> routes = c.virtualHosts().get(i).routes();
                for (int j = 0; j < routes.size(); j++) {
                    Route original = config.virtualHosts().get(i).routes().get(j);
                    originals.put(routes.get(j), original);
                    if (routes.get(j).action() instanceof RouteAction a
                            && a.cluster() instanceof ClusterSpecifier.Weighted w
                            && original.action() instanceof RouteAction oa
                            && oa.cluster() instanceof ClusterSpecifier.Weighted ow) {
                        for (int k = 0; k < w.clusters().size(); k++) {
                            originals.put(w.clusters().get(k), ow.clusters().get(k));
                        }
                    }
                }
            }
            return new RuntimeTable(RouteTable.compile(c), originals);
        });
    }

    /** One test of the file. */
    public record TestCase(String name, Input input, Validate validate) {}

    /**
     * The request of a test; {@code responseHeaders} are the upstream's response headers that the route's response
     * header rules then act on.
     */
    public record Input(String authority, String path, String method, List<String[]> headers, long randomValue,
                        boolean ssl, boolean internal, List<String[]> responseHeaders, String runtime) {
        /** A request with no runtime key enabled. */
        public Input(String authority, String path, String method, List<String[]> headers, long randomValue,
                     boolean ssl, boolean internal, List<String[]> responseHeaders) {
            this(authority, path, method, headers, randomValue, ssl, internal, responseHeaders, "");
        }
    }

    /**
     * The expectations of a test; null means "not checked". The header checks are the {@code *_header_matches}, then
     * the deprecated {@code *_header_fields}, in the order Envoy's tool checks them. {@code codeRedirect} is the status
     * of a redirect or a direct response (0 for any other decision).
     */
    public record Validate(String clusterName, String virtualClusterName, String virtualHostName,
                           String pathRewrite, String hostRewrite, String pathRedirect, Integer codeRedirect,
                           List<HeaderCheck> requestHeaders, List<HeaderCheck> responseHeaders) {}

    /** A header check of a test: a {@code *_header_matches} matcher or a deprecated {@code *_header_fields} value. */
    public sealed interface HeaderCheck {}

    /** A {@code *_header_matches} matcher, compiled and as written ({@code proto}). */
    public record HeaderMatch(HeaderMatcher matcher, io.envoyproxy.envoy.config.route.v3.HeaderMatcher proto)
            implements HeaderCheck {}

    /**
     * A deprecated {@code *_header_fields} value: as in Envoy's tool, the header's first value (the empty value when
     * the header is absent) must be {@code value}.
     */
    public record HeaderField(String name, String value) implements HeaderCheck {}

    /** The fields router_check_tool's schema (test/tools/router_check/validation.proto) knows, by object. */
    private static final List<String> TOP_FIELDS = List.of("tests");
    private static final List<String> TEST_FIELDS = List.of("test_name", "input", "validate");
    private static final List<String> INPUT_FIELDS = List.of("authority", "path", "method", "random_value", "ssl",
            "internal", "additional_request_headers", "additional_response_headers", "runtime");
    private static final List<String> VALIDATE_FIELDS = List.of("cluster_name", "virtual_cluster_name",
            "virtual_host_name", "host_rewrite", "path_rewrite", "path_redirect", "code_redirect",
            "request_header_fields",
            "response_header_fields", "request_header_matches", "response_header_matches");

    /** The counts of a run, and each test's outcome in the order of the file. */
    public record Summary(int passed, int failed, List<Outcome> outcomes) {}

    /**
     * What one test found: its problems as printed (none when it passed), and, as Envoy's {@code ValidationFailure}
     * records them, the fields not as expected and the failed {@code *_header_matches}.
     */
    public record Outcome(String name, List<String> problems, List<Mismatch> mismatches,
                          List<HeaderFailure> requestHeaders, List<HeaderFailure> responseHeaders) {
        public boolean passed() {
            return problems.isEmpty();
        }
    }

    /** A field whose actual value is not the expected one. */
    public record Mismatch(RouteCoverage.Field field, String expected, String actual) {}

    /** A {@code *_header_matches} matcher that did not hold, and the header's (first) value, "" when absent. */
    public record HeaderFailure(io.envoyproxy.envoy.config.route.v3.HeaderMatcher matcher, String actual) {}

    /** Why a test file cannot be used. */
    public static final class TestFileException extends Exception {
        private static final long serialVersionUID = 1L;

        TestFileException(String message) {
            super(message);
        }
    }

    /**
     * Reads the tests of a router_check_tool file as that tool loads it: strictly into validation.proto's
     * {@code Validation} (an unknown field anywhere is an error) with protobuf's JSON parser in the legacy syntax
     * Envoy's loading allows (src/google/protobuf/json/internal/parser.cc: a single element in place of a list, a
     * wrapper as {@code {"value": ...}}, a bool as a string such as {@code "yes"}; a string field from a JSON string
     * only, parser.cc's ParseStrOrBytes), then checked by its rules: at least one test, each with a name, an input and
     * a validate, the input's authority and path not empty, its method of at least 3 characters.
     */
    public static List<TestCase> parseTests(JsonNode root) throws TestFileException {
        if (root == null || !root.isObject()) {
            throw new TestFileException("expected {\"tests\": [...]} at the top");
        }
        knownFields(root, TOP_FIELDS, "");
        List<JsonNode> tests = elements(root, "tests");
        if (tests.isEmpty()) {
            throw new TestFileException("tests: none (expected: at least one test)");
        }
        List<TestCase> out = new ArrayList<>();
        for (int i = 0; i < tests.size(); i++) {
            JsonNode t = tests.get(i);
            String at = "tests[" + i + "]";
            if (!t.isObject()) {
                throw new TestFileException(at + ": expected an object with test_name, input and validate");
            }
            String name = text(t, "test_name", null, at);
            if (name == null || name.isEmpty()) {
                knownFields(t, TEST_FIELDS, at); // a misspelled test_name is named as the unknown field it is
                throw new TestFileException(at + ".test_name: missing");
            }
            knownFields(t, TEST_FIELDS, at + " (" + name + ")");
            JsonNode in = get(t, "input");
            String where = at + " (" + name + ").input";
            if (in == null || !in.isObject()) {
                throw new TestFileException(where + ": missing");
            }
            knownFields(in, INPUT_FIELDS, where);
            String method = text(in, "method", "", where);
            if (method.codePointCount(0, method.length()) < 3) {
                throw new TestFileException(where + ".method: " + (method.isEmpty() ? "missing" : "\"" + method + "\"")
                        + " (expected: a method of at least 3 characters)");
            }
            Input input = new Input(nonEmpty(in, "authority", where), nonEmpty(in, "path", where), method,
                    headerValues(in, "additional_request_headers", where), randomValue(in, where),
                    bool(in, "ssl", where), bool(in, "internal", where),
                    headerValues(in, "additional_response_headers", where), text(in, "runtime", "", where));
            JsonNode v = get(t, "validate");
            where = at + " (" + name + ").validate";
            if (v == null || !v.isObject()) {
                throw new TestFileException(where + ": missing");
            }
            knownFields(v, VALIDATE_FIELDS, where);
            UInt32Value code = wrapper(v, "code_redirect", UInt32Value.class, where);
            Validate validate = new Validate(string(v, "cluster_name", where), string(v, "virtual_cluster_name", where),
                    string(v, "virtual_host_name", where), string(v, "path_rewrite", where),
                    string(v, "host_rewrite", where), string(v, "path_redirect", where),
                    code == null ? null : code.getValue(),
                    concat(matchers(v, "request_header_matches", where),
                            fields(v, "request_header_fields", where)),
                    concat(matchers(v, "response_header_matches", where),
                            fields(v, "response_header_fields", where)));
            out.add(new TestCase(name, input, validate));
        }
        return out;
    }

    /** Refuses a field the schema does not know, by name. */
    private static void knownFields(JsonNode n, List<String> known, String at) throws TestFileException {
        for (var it = n.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!known.contains(f) && known.stream().noneMatch(k -> EnvoyConfigReader.camel(k).equals(f))) {
                throw new TestFileException((at.isEmpty() ? "" : at + ".") + f + ": unknown field (expected one of "
                        + String.join(", ", known) + ")");
            }
        }
    }

    /** A field by its snake_case or lowerCamelCase name, or null. */
    private static JsonNode get(JsonNode n, String snake) {
        return n.has(snake) ? n.get(snake) : n.get(EnvoyConfigReader.camel(snake));
    }

    /**
     * The elements of a repeated field: its list or, as protobuf's JSON parser in the legacy syntax, a single element
     * in its place; none when it is absent or null.
     */
    private static List<JsonNode> elements(JsonNode n, String field) {
        JsonNode v = get(n, field);
        List<JsonNode> out = new ArrayList<>();
        if (v != null && v.isArray()) {
            v.forEach(out::add);
        } else if (v != null && !v.isNull()) {
            out.add(v);
        }
        return out;
    }

    /** A string field that validation.proto requires not empty ({@code min_len: 1}). */
    private static String nonEmpty(JsonNode n, String field, String at) throws TestFileException {
        String v = text(n, field, "", at);
        if (v.isEmpty()) {
            throw new TestFileException(at + "." + field + ": missing (expected: a non-empty value)");
        }
        return v;
    }

    /**
     * The uint64 {@code random_value} (0 when absent) as protobuf's JSON parser reads one: a number or a string of
     * one, its digits from 0 to 2^64 - 1, or a whole number to 2^54 written with a point or an exponent
     * ({@code 1.0}, {@code "1e3"}); its bits as a long.
     */
    private static long randomValue(JsonNode n, String at) throws TestFileException {
        JsonNode v = get(n, "random_value");
        if (v == null || v.isNull()) {
            return 0;
        }
        java.math.BigInteger value = EnvoyJson.integer(v, true);
        if (value == null) {
            throw new TestFileException(at + ".random_value: " + v
                    + " (expected: a uint64, 0 to 18446744073709551615)");
        }
        return value.longValue();
    }

    /**
     * A bool field (false when absent): {@code true} or {@code false}, or, as protobuf's JSON parser in the legacy
     * syntax reads a string with absl::SimpleAtob, one of true, t, yes, y, 1, false, f, no, n, 0 in any case.
     */
    private static boolean bool(JsonNode n, String field, String at) throws TestFileException {
        JsonNode v = get(n, field);
        if (v == null || v.isNull()) {
            return false;
        } else if (v.isBoolean()) {
            return v.asBoolean();
        }
        String t = v.isTextual() ? v.asText().toLowerCase(Locale.ROOT) : "";
        if (List.of("true", "t", "yes", "y", "1").contains(t)) {
            return true;
        } else if (List.of("false", "f", "no", "n", "0").contains(t)) {
            return false;
        }
        throw new TestFileException(at + "." + field + ": " + v + " (expected: true or false)");
    }

    /**
     * A message of the test file read as Envoy's {@code envoy.config} JSON: strictly, in the legacy syntax too, each
     * string a JSON string ({@link #text}).
     */
    private static <M extends Message> M message(JsonNode n, Class<M> type, String at) throws TestFileException {
        try {
            return EnvoyJson.toMessageStringsOnly(n, type);
        } catch (InvalidProtocolBufferException e) {
            throw new TestFileException(at + ": " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new TestFileException(FieldError.of(e).under(at).getMessage());
        }
    }

    /** A wrapper field ({@code google.protobuf.StringValue}, ...) of validate, or null when absent. */
    private static <M extends Message> M wrapper(JsonNode n, String field, Class<M> type, String at)
            throws TestFileException {
        JsonNode v = get(n, field);
        return v == null || v.isNull() ? null : message(v, type, at + "." + field);
    }

    /** A {@code google.protobuf.StringValue} check of validate, or null when absent. */
    private static String string(JsonNode n, String field, String at) throws TestFileException {
        StringValue v = wrapper(n, field, StringValue.class, at);
        return v == null ? null : v.getValue();
    }

    /** A list of {@code {key, value}} header values (Envoy's HeaderValue), or an empty list. */
    private static List<String[]> headerValues(JsonNode n, String field, String at) throws TestFileException {
        List<JsonNode> list = elements(n, field);
        List<String[]> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            String where = at + "." + field + "[" + i + "]";
            HeaderValue h = message(list.get(i), HeaderValue.class, where);
            if (h.getKey().isEmpty()) {
                throw new TestFileException(where + ".key: missing");
            }
            out.add(new String[] {h.getKey(), h.getValue()});
        }
        return out;
    }

    /** The deprecated {@code *_header_fields}: each {key, value} to compare with the header's first value. */
    private static List<HeaderCheck> fields(JsonNode v, String field, String at) throws TestFileException {
        if (get(v, field) == null) {
            return null;
        }
        List<HeaderCheck> out = new ArrayList<>();
        for (String[] h : headerValues(v, field, at)) {
            out.add(new HeaderField(h[0], h[1]));
        }
        return out;
    }

    private static List<HeaderCheck> concat(List<HeaderCheck> a, List<HeaderCheck> b) {
        if (a == null || b == null) {
            return a == null ? b : a;
        }
        List<HeaderCheck> out = new ArrayList<>(a);
        out.addAll(b);
        return out;
    }

    private static List<HeaderCheck> matchers(JsonNode v, String field, String at) throws TestFileException {
        if (get(v, field) == null) {
            return null;
        }
        List<JsonNode> list = elements(v, field);
        List<HeaderCheck> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            String where = at + "." + field + "[" + i + "]";
            var proto = message(list.get(i), io.envoyproxy.envoy.config.route.v3.HeaderMatcher.class, where);
            try {
                out.add(new HeaderMatch(RouteConfigurationParser.headerMatcher(proto), proto));
            } catch (IllegalArgumentException e) {
                throw new TestFileException(where + ": " + FieldError.of(e).getMessage());
            }
        }
        return out;
    }

    /**
     * A string field, {@code dflt} when absent or null: as protobuf's JSON parser reads one, a JSON string only (a
     * number, bool, list or object there is refused, by the field's name).
     */
    private static String text(JsonNode n, String snake, String dflt, String at) throws TestFileException {
        JsonNode v = get(n, snake);
        if (v == null || v.isNull()) {
            return dflt;
        }
        FieldError notString = EnvoyJson.nonString(v, at + "." + snake);
        if (notString != null) {
            throw new TestFileException(notString.getMessage());
        }
        return v.asText();
    }

    /**
     * Runs the tests and adds what they cover, then prints them as Envoy's tool does: with {@code details} every
     * test's name, with {@code onlyFailures} (with or without {@code details}) only the failed tests'; a passed test's
     * name on {@code out}, a failed test's name and its failures, one a line, on {@code err}. Without either flag it
     * prints nothing.
     */
    public Summary run(List<TestCase> cases, PrintStream out, PrintStream err, boolean details, boolean onlyFailures) {
        int passed = 0;
        List<Outcome> outcomes = new ArrayList<>();
        for (TestCase c : cases) {
            Outcome outcome = evaluate(c);
            outcomes.add(outcome);
            passed += outcome.passed() ? 1 : 0;
        }
        for (Outcome o : outcomes) {
            if (o.passed() && details && !onlyFailures) {
                out.println(o.name());
            } else if (!o.passed() && (details || onlyFailures)) {
                err.println(o.name());
                o.problems().forEach(err::println);
            }
        }
        return new Summary(passed, outcomes.size() - passed, outcomes);
    }

    /** The route coverage of the tests checked so far. */
    public RouteCoverage coverage() {
        return coverage;
    }

    /**
     * The differences between a test's expectations and the actual decision; empty when it passes. What it found as
     * expected counts towards the coverage.
     */
    public List<String> check(TestCase c) {
        return evaluate(c).problems();
    }

    private Outcome evaluate(TestCase c) {
        Input in = c.input();
        SimpleHeaders headers = new SimpleHeaders();
        headers.set(":authority", in.authority());
        headers.set(":path", in.path());
        headers.set(":method", in.method());
        headers.set(":scheme", in.ssl() ? "https" : "http");
        headers.set("x-forwarded-proto", in.ssl() ? "https" : "http");
        if (in.internal()) {
            headers.set("x-envoy-internal", "true");
        }
        for (String[] h : in.headers()) {
            String name = requestHeaderName(h[0]);
            if (name.equals(":authority")) {
                // as Envoy's header map adds to a header it keeps once: appended to its value
                if (!h[1].isEmpty()) {
                    headers.set(name, headers.first(name) + "," + h[1]);
                }
            } else {
                headers.add(name, h[1]);
            }
        }
        HeadersRequest request = new HeadersRequest(headers);
        RuntimeTable runtime = runtimeRoutes ? runtimeTable(in.runtime()) : null;
        RouteTable table = runtime == null ? this.table : runtime.table();
        // as router_check_tool, which keeps the uint64 random_value in an int (router.cc, ToolConfig::create's
        // static_cast<int>) that the route table reads as a uint64 again: its low 32 bits, sign-extended
        RouteResult result = table.route(request, (int) in.randomValue());
        Validate v = c.validate();
        Findings found = new Findings();
        // as router_check_tool: a check found as expected covers a field of a forwarding route, or of a redirect or
        // direct response
        boolean forward = result instanceof RouteResult.Forward;
        boolean answered = result instanceof RouteResult.Redirect || result instanceof RouteResult.DirectResponse;
        String cluster = result instanceof RouteResult.Forward f ? f.cluster() : "";
        // as router_check_tool, which reads the virtual host of a forwarding route only
        String vhost = result instanceof RouteResult.Forward f ? f.virtualHost().name() : "";
        found.compare(forward, RouteCoverage.Field.CLUSTER, v.clusterName(), cluster);
        // Inmesh refuses a virtual host's virtual_clusters, so no request has one: Envoy's tool reads it as ""
        found.compare(forward, RouteCoverage.Field.VIRTUAL_CLUSTER, v.virtualClusterName(), "");
        found.compare(forward, RouteCoverage.Field.VIRTUAL_HOST, v.virtualHostName(), vhost);
        Instant start = Instant.now();
        if (result instanceof RouteResult.Forward f) {
            HeaderMutator.finalizeRequest(f, table, headers, headers.pathAndHost(), true,
                    (status, none, body) -> entry(headers, null, start));
        }
        found.compare(forward, RouteCoverage.Field.PATH_REWRITE, v.pathRewrite(),
                forward ? headers.first(":path") : "");
        found.compare(forward, RouteCoverage.Field.HOST_REWRITE, v.hostRewrite(),
                forward ? headers.first(":authority") : "");
        // router_check_tool asks any redirect or direct response for its URL: a direct response's is the request's
        found.compare(answered, RouteCoverage.Field.PATH_REDIRECT, v.pathRedirect(),
                result instanceof RouteResult.Redirect r ? r.location()
                : result instanceof RouteResult.DirectResponse ? RouteTable.requestUrl(request) : "");
        int code = result instanceof RouteResult.Redirect r ? r.status()
                : result instanceof RouteResult.DirectResponse d ? d.status() : 0;
        found.compare(answered, RouteCoverage.Field.CODE_REDIRECT,
                v.codeRedirect() == null ? null : String.valueOf(v.codeRedirect()), String.valueOf(code));
        if (v.requestHeaders() != null) {
            found.matchHeaders(false, v.requestHeaders(), headers);
        }
        if (v.responseHeaders() != null) {
            SimpleHeaders response = new SimpleHeaders();
            for (String[] h : in.responseHeaders()) {
                response.add(h[0], h[1]);
            }
            // as router_check_tool, whose response has a status only when the route answers itself: it adds what
            // Envoy's sendLocalReply makes of the status and body, then the route's rules act (router.cc
            // finalizeHeaders)
            if (code != 0) {
                localReply(code, result instanceof RouteResult.DirectResponse d ? d.body() : "").forEach(response::add);
            }
            if (!(result instanceof RouteResult.NoRoute)) {
                HeaderMutator.finalizeResponse(result, table, response, () -> entry(headers, response, start));
            }
            found.matchHeaders(true, v.responseHeaders(), response);
        }
        coverage.add(result, found.covered, runtime == null ? UnaryOperator.identity() : runtime.originals()::get);
        return new Outcome(c.name(), found.problems, found.mismatches, found.requestHeaders, found.responseHeaders);
    }

    /**
     * The headers of a local reply of {@code status} and {@code body} as Envoy's {@code sendLocalReply} makes them
     * without a {@code local_reply_config} (source/common/http/utility.cc, prepareLocalReply), before any header
     * rule: the status, and for a body its length and, as the proxy's local replies, {@code text/plain}.
     */
    private static io.vertx.core.MultiMap localReply(int status, String body) {
        io.vertx.core.MultiMap h = io.vertx.core.MultiMap.caseInsensitiveMultiMap().set(":status",
                String.valueOf(status));
        if (!body.isEmpty()) {
            h.set("content-length", String.valueOf(body.getBytes(StandardCharsets.UTF_8).length));
        }
        LocalReply.contentType(h, body.isEmpty());
        return h;
    }

    /**
     * What the command operators of a test's header values read: its request's headers, and its response's, and the
     * stream of router_check_tool's request (router.cc, compareEntries): started at {@code start}, over HTTP/1.1,
     * from 127.0.0.1 port 0, its local address not known.
     */
    private static AccessLogEntry entry(SimpleHeaders request, SimpleHeaders response, Instant start) {
        StreamInfo info = new StreamInfo(null, start, request.first(":method"), request.first(":path"), "HTTP/1.1", 0,
                null, null, 0, 0, -1, -1, null, request.first(":authority"), null, null, null, null, null, null,
                "127.0.0.1:0", null, null, 0, null, null, null, null, null);
        return new AccessLogEntry(info, multiMap(request), response == null ? null : multiMap(response), null,
                request.first(":path"), request.first(":scheme"), null, false, false, null, null, null);
    }

    private static io.vertx.core.MultiMap multiMap(SimpleHeaders headers) {
        io.vertx.core.MultiMap m = io.vertx.core.MultiMap.caseInsensitiveMultiMap();
        headers.forEach(m::add);
        return m;
    }

    /**
     * The name under which Envoy's request header map keeps a header: {@code host} is {@code :authority} there (its
     * legacy host mapping, source/common/http/header_map_impl.cc), as in the router's requests.
     */
    private static String requestHeaderName(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return n.equals("host") ? ":authority" : n;
    }

    /** What the checks of one test found so far. */
    private static final class Findings {
        final List<String> problems = new ArrayList<>();
        final Set<RouteCoverage.Field> covered = EnumSet.noneOf(RouteCoverage.Field.class);
        final List<Mismatch> mismatches = new ArrayList<>();
        final List<HeaderFailure> requestHeaders = new ArrayList<>();
        final List<HeaderFailure> responseHeaders = new ArrayList<>();

        /** Compares one field; one found as expected is covered when the decision has it ({@code applies}). */
        void compare(boolean applies, RouteCoverage.Field what, String expected, String actual) {
            if (expected == null) {
                return;
            }
            if (!expected.equals(actual)) {
                problems.add(failure(expected, "", actual, what.field()));
                mismatches.add(new Mismatch(what, expected, actual));
            } else if (applies) {
                covered.add(what);
            }
        }

        /**
         * Checks the headers as Envoy's tool does: a matcher against every value of the header, a deprecated field
         * against its first value.
         */
        void matchHeaders(boolean response, List<HeaderCheck> checks, SimpleHeaders headers) {
            String what = response ? "response" : "request";
            UnaryOperator<String> names = response ? n -> n.toLowerCase(Locale.ROOT) : RouteCheck::requestHeaderName;
            for (HeaderCheck c : checks) {
                if (c instanceof HeaderField f) {
                    String first = headers.first(names.apply(f.name()));
                    String actual = first == null ? "" : first;
                    if (!f.value().equals(actual)) {
                        problems.add(failure(f.value(), "", actual, what + "_header_fields"));
                    }
                } else if (c instanceof HeaderMatch m
                        && !RouteTable.headerMatches(m.matcher(), name -> headers.joined(names.apply(name)))) {
                    // as router_check_tool, which records a failed matcher with the header's first value
                    String first = headers.first(names.apply(m.matcher().name()));
                    problems.add(headerFailure(m.proto(), what + "_header_matches", first));
                    (response ? responseHeaders : requestHeaders).add(
                            new HeaderFailure(m.proto(), first == null ? "" : first));
                }
            }
        }
    }

    /** A failure line of Envoy's tool: {@code expected: [E], actual: [A], test type: T} ({@code NOT [A]} negated). */
    private static String failure(String expected, String not, String actual, String testType) {
        return "expected: [" + expected + "], actual: " + not + "[" + actual + "], test type: " + testType;
    }

    /**
     * The line Envoy's tool prints for a failed header matcher, by the kind of matcher ({@code string_match.exact},
     * {@code present_match}, ...): expected and actual presence, expected and actual value of an exact string match,
     * or else the actual value only; {@code NULL} stands for an absent header.
     */
    private static String headerFailure(io.envoyproxy.envoy.config.route.v3.HeaderMatcher m, String field,
                                        String first) {
        var specifier = m.getHeaderMatchSpecifierCase();
        String kind = switch (specifier) {
            case PRESENT_MATCH, HEADERMATCHSPECIFIER_NOT_SET -> "present_match";
            case STRING_MATCH -> "string_match." + switch (m.getStringMatch().getMatchPatternCase()) {
                case MATCHPATTERN_NOT_SET -> "match_pattern_not_set";
                default -> m.getStringMatch().getMatchPatternCase().name().toLowerCase(Locale.ROOT);
            };
            default -> specifier.name().toLowerCase(Locale.ROOT);
        };
        String testType = field + "." + kind;
        String name = m.getName();
        String actual = name + ": " + (first == null ? "NULL" : first);
        if (kind.equals("present_match")) {
            return failure("has(" + name + "):" + !m.getInvertMatch(), "", "has(" + name + "):" + m.getInvertMatch(),
                    testType);
        } else if (kind.equals("string_match.exact")) {
            return failure(name + ": " + m.getStringMatch().getExact(), m.getInvertMatch() ? "NOT " : "", actual,
                    testType);
        }
        return "actual: [" + actual + "], test type: " + testType;
    }

    private record HeadersRequest(SimpleHeaders h) implements RouteRequest {
        @Override
        public String authority() {
            return h.first(":authority");
        }

        @Override
        public String path() {
            return h.first(":path");
        }

        @Override
        public String method() {
            return h.first(":method");
        }

        @Override
        public String scheme() {
            return h.first(":scheme");
        }

        @Override
        public String header(String lowerCaseName) {
            return h.joined(requestHeaderName(lowerCaseName));
        }

        @Override
        public String firstHeader(String lowerCaseName) {
            return h.first(requestHeaderName(lowerCaseName));
        }
    }
}
