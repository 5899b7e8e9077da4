package dev.inmesh.runtime.accesslog;

import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.Function;

/**
 * Envoy's substitution format strings, compiled once: literal text and command operators such as
 * {@code %RESPONSE_CODE%}, {@code %REQ(X-REQUEST-ID)%}, {@code %REQ(X-ENVOY-ORIGINAL-PATH?:PATH):64%} or
 * {@code %START_TIME(%Y/%m/%dT%H:%M:%S%z)%}; {@code %%} is a literal percent sign.
 *
 * <p>A command's value is a string, a number (codes, byte counts, durations) or unknown (null). Text prints an
 * unknown value as {@code -} (or as nothing, with {@code omit_empty_values}); a JSON format whose value is one command
 * alone keeps its type (a number stays a number, unknown is {@code null}). An operator Envoy does not know is refused
 * with its name, as Envoy refuses it. One Envoy knows and Inmesh does not fill ({@link #UNFILLED}: dynamic metadata,
 * filter state, TLS details, wire byte counts, ...) is written as unknown, as Envoy writes a value it does not have,
 * and named in a warning once: refusing it would take the listener's whole configuration down for one log field.
 */
public final class CommandFormat {
    private final List<Object> parts; // String literals and Command operators
    private final boolean omitEmpty;

    private CommandFormat(List<Object> parts, boolean omitEmpty) {
        this.parts = parts;
        this.omitEmpty = omitEmpty;
    }

    /**
     * One command operator: a value from the entry, cut to {@code maxLength} characters when it is a string. An empty
     * string is unknown, but for {@code keepsEmpty} ({@code %LOCAL_REPLY_BODY%}: Envoy writes an empty body as
     * nothing, never as {@code -}).
     */
    record Command(String name, Function<AccessLogEntry, Object> extract, int maxLength, boolean keepsEmpty) {
        Object value(AccessLogEntry e) {
            Object v;
            try {
                v = extract.apply(e);
            } catch (RuntimeException ex) {
                v = null; // a value that cannot be read is unknown, never a failed request
            }
            if (v instanceof String s) {
                if (s.isEmpty() && !keepsEmpty) {
                    return null;
                }
                if (maxLength >= 0 && s.length() > maxLength) {
                    return s.substring(0, maxLength);
                }
            }
            return v;
        }
    }

    /**
     * Compiles a format string.
     *
     * @throws IllegalArgumentException naming the command and its position when it is not one Inmesh fills
     */
    public static CommandFormat compile(String format, boolean omitEmptyValues) {
        List<Object> parts = new ArrayList<>();
        StringBuilder literal = new StringBuilder();
        int i = 0;
        while (i < format.length()) {
            char c = format.charAt(i);
            if (c != '%') {
                literal.append(c);
                i++;
                continue;
            }
            if (i + 1 < format.length() && format.charAt(i + 1) == '%') {
                literal.append('%');
                i += 2;
                continue;
            }
            int end = commandEnd(format, i);
            if (end < 0) {
                throw new IllegalArgumentException("'" + format + "': no valid command operator at position " + i
                        + " (a command is %NAME%, %NAME(ARG)% or %NAME(ARG):LENGTH%; %% is a literal %)");
            }
            if (!literal.isEmpty()) {
                parts.add(literal.toString());
                literal.setLength(0);
            }
            parts.add(command(format.substring(i + 1, end)));
            i = end + 1;
        }
        if (!literal.isEmpty()) {
            parts.add(literal.toString());
        }
        return new CommandFormat(List.copyOf(parts), omitEmptyValues);
    }

    /**
     * Compiles a header value as Envoy's header parser does ({@code source/common/router/header_parser.cc}
     * {@code parseHttpHeaderFormatter}): the substitution formatter with empty values omitted, so that an unknown
     * value adds nothing (and a value that comes out empty adds no header, unless {@code keep_empty_value}), after the
     * legacy translation Envoy still makes ({@code header_parser_utils.cc}, while
     * {@code remove_legacy_route_formatter} is off, its default): {@code %PER_REQUEST_STATE(key)%} is
     * {@code %FILTER_STATE(key:PLAIN)%}.
     *
     * @throws IllegalArgumentException naming the command when it is not one of Envoy's
     */
    public static CommandFormat headerValue(String value) {
        return compile(metadataArrays(perRequestState(value)), true);
    }

    /**
     * Compiles a query parameter value of the header mutation filter as Envoy's filter does
     * ({@code source/extensions/filters/http/header_mutation/header_mutation.cc}, {@code Mutations}:
     * {@code FormatterImpl::create(value, true)}): the substitution formatter with empty values omitted, without the
     * header parser's legacy translation.
     *
     * @throws IllegalArgumentException naming the command when it is not one of Envoy's
     */
    public static CommandFormat queryParameterValue(String value) {
        return compile(value, true);
    }

    /** {@code %PER_REQUEST_STATE(key)%} as Envoy's header parser translates it: {@code %FILTER_STATE(key:PLAIN)%}. */
    private static String perRequestState(String value) {
        String legacy = "%PER_REQUEST_STATE(";
        int at = value.indexOf(legacy);
        if (at < 0) {
            return value;
        }
        StringBuilder b = new StringBuilder(value.length() + 16);
        int from = 0;
        while (at >= 0) {
            int end = value.indexOf(")%", at + legacy.length() + 1); // Envoy's (.+?): a key of one character or more
            if (end < 0) {
                break;
            }
            b.append(value, from, at).append("%FILTER_STATE(").append(value, at + legacy.length(), end)
                    .append(":PLAIN)%");
            from = end + 2;
            at = value.indexOf(legacy, from);
        }
        return b.append(value, from, value.length()).toString();
    }

    /**
     * The metadata operators' legacy parameter as Envoy's header parser translates it ({@code header_parser_utils.cc},
     * {@code translateMetadataFormat}): {@code %UPSTREAM_METADATA(["ns", "key", ...])%} is
     * {@code %UPSTREAM_METADATA(ns:key:...)%}, and so is {@code DYNAMIC_METADATA}'s; one that is no JSON array is
     * refused, as Envoy refuses it.
     */
    private static String metadataArrays(String value) {
        java.util.regex.Matcher m = LEGACY_METADATA.matcher(value);
        StringBuilder b = new StringBuilder();
        while (m.find()) {
            List<String> keys = new ArrayList<>();
            try {
                for (Object k : new io.vertx.core.json.JsonArray("[" + m.group(2) + "]")) {
                    keys.add(String.valueOf(k));
                }
            } catch (io.vertx.core.json.DecodeException e) {
                throw new IllegalArgumentException(m.group() + ": the parameter is not a JSON array of keys, nor "
                        + "NAMESPACE:KEY (as Envoy's header parser refuses it)");
            }
            m.appendReplacement(b, java.util.regex.Matcher.quoteReplacement(
                    "%" + m.group(1) + "_METADATA(" + String.join(":", keys) + ")%"));
        }
        return m.appendTail(b).toString();
    }

    private static final java.util.regex.Pattern LEGACY_METADATA = java.util.regex.Pattern.compile(
            "%(UPSTREAM|DYNAMIC)_METADATA\\(\\s*\\[(.*?)\\]\\s*\\)%");

    /** Whether the format has a command operator: without one, it formats to its literal text whatever it reads. */
    public boolean hasCommand() {
        for (Object p : parts) {
            if (p instanceof Command) {
                return true;
            }
        }
        return false;
    }

    /**
     * The index of the '%' closing the command that opens at {@code start}, or -1 when none does. As Envoy's command
     * pattern: a name of A-Z, 0-9 and _; then, optionally, a parameter in parentheses that ends at the first ')'
     * followed by the command's end (an optional {@code :LENGTH} and the '%'), so {@code %START_TIME(%Y)(%m)%}'s is
     * {@code %Y)(%m}, and holds no line break; then an optional length.
     */
    private static int commandEnd(String f, int start) {
        int i = start + 1;
        int nameStart = i;
        while (i < f.length() && nameChar(f.charAt(i))) {
            i++;
        }
        if (i == nameStart || i >= f.length()) {
            return -1;
        }
        if (f.charAt(i) == '(') {
            for (int j = i + 1; j < f.length() && f.charAt(j) != '\n'; j++) {
                if (f.charAt(j) == ')') {
                    int end = lengthAndEnd(f, j + 1);
                    if (end >= 0) {
                        return end;
                    }
                }
            }
            return -1;
        }
        return lengthAndEnd(f, i);
    }

    /** The index of the '%' ending a command whose optional {@code :LENGTH} starts at {@code i}, else -1. */
    private static int lengthAndEnd(String f, int i) {
        if (i < f.length() && f.charAt(i) == ':') {
            int digits = ++i;
            while (i < f.length() && f.charAt(i) >= '0' && f.charAt(i) <= '9') {
                i++;
            }
            if (i == digits) {
                return -1;
            }
        }
        return i < f.length() && f.charAt(i) == '%' ? i : -1;
    }

    private static boolean nameChar(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    }

    /** Whether the format is one command and nothing else (a JSON value that keeps its type). */
    boolean singleCommand() {
        return parts.size() == 1 && parts.get(0) instanceof Command;
    }

    /** The value of a format that is one command (see {@link #singleCommand}). */
    Object singleValue(AccessLogEntry e) {
        return ((Command) parts.get(0)).value(e);
    }

    /** The format's text for one entry. */
    public String format(AccessLogEntry e) {
        StringBuilder b = new StringBuilder(256);
        appendTo(b, e);
        return b.toString();
    }

    void appendTo(StringBuilder b, AccessLogEntry e) {
        for (Object p : parts) {
            if (p instanceof String s) {
                b.append(s);
            } else {
                Object v = ((Command) p).value(e);
                if (v != null) {
                    b.append(v);
                } else if (!omitEmpty) {
                    b.append('-');
                }
            }
        }
    }

    // ---- the operators ----

    private static Command command(String text) {
        int max = -1;
        int colon = text.lastIndexOf(':');
        int paren = text.indexOf('(');
        if (colon > 0 && (paren < 0 || colon > text.lastIndexOf(')'))) {
            max = Integer.parseInt(text.substring(colon + 1));
            text = text.substring(0, colon);
        }
        String name = paren < 0 ? text : text.substring(0, paren);
        String arg = paren < 0 ? null : text.substring(paren + 1, text.length() - 1);
        checkSyntax("%" + text + (max >= 0 ? ":" + max : "") + "%", name, arg, max);
        Function<AccessLogEntry, Object> f = switch (name) {
            // REQUEST_HEADER, RESPONSE_HEADER and RESPONSE_TRAILER: Envoy's full names for the same (1.37)
            case "REQ", "REQUEST_HEADER" -> headerCommand(name, arg, AccessLogEntry::requestHeader);
            case "RESP", "RESPONSE_HEADER" -> headerCommand(name, arg, AccessLogEntry::responseHeader);
            case "TRAILER", "RESPONSE_TRAILER" -> headerCommand(name, arg, AccessLogEntry::responseTrailer);
            case "QUERY_PARAM" -> queryParam(required(name, arg));
            case "UNIQUE_ID" -> {
                if (arg != null) {
                    throw unsupported(name + "(" + arg + ")");
                }
                // as Envoy's: a random UUID each time it is written
                yield e -> java.util.UUID.randomUUID().toString();
            }
            case "START_TIME" -> startTime(arg);
            case "ENVIRONMENT" -> {
                String v = System.getenv(required(name, arg));
                yield e -> v;
            }
            case "GRPC_STATUS" -> grpcStatus(arg);
            // the body of the local reply being formatted; unknown in an access log
            case "LOCAL_REPLY_BODY" -> {
                if (arg != null) {
                    throw unsupported(name + "(" + arg + ")");
                }
                yield AccessLogEntry::localReplyBody;
            }
            case "HOSTNAME" -> {
                if (arg != null) {
                    throw unsupported(name + "(" + arg + ")");
                }
                String h = Hostname.NAME;
                yield e -> h;
            }
            case "UPSTREAM_METADATA" -> metadata(required(name, arg), RequestLog::upstreamMetadata);
            case "CLUSTER_METADATA" -> metadata(required(name, arg), RequestLog::clusterMetadata);
            case "REQ_WITHOUT_QUERY" -> {
                Function<AccessLogEntry, Object> header = headerCommand(name, arg, AccessLogEntry::requestHeader);
                yield e -> {
                    Object v = header.apply(e);
                    int q = v == null ? -1 : v.toString().indexOf('?');
                    return q < 0 ? v : v.toString().substring(0, q);
                };
            }
            default -> {
                // RESPONSE_CODE_DETAILS takes an optional parameter: ALLOW_WHITESPACES keeps the whitespace, any
                // other is the default, as Envoy reads it
                Function<AccessLogEntry, Object> plain = arg == null ? PLAIN.get(name)
                        : name.equals("RESPONSE_CODE_DETAILS") ? PLAIN.get(arg.equals("ALLOW_WHITESPACES")
                                ? "RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)" : name) : null;
                if (plain != null) {
                    yield plain;
                }
                if (!UNFILLED.contains(name)) {
                    throw unsupported(arg == null ? name : name + "(" + arg + ")");
                }
                if (WARNED.add(name)) {
                    LOG.warning("command operator %" + name + "% is one Inmesh does not fill: it is written as "
                            + "unknown (-, or null in JSON, in an access log; nothing in a header value)");
                }
                yield e -> null;
            }
        };
        // an empty body, a parameter's empty value or a header that is there with an empty value is written as
        // nothing (JSON ""), as Envoy writes a value it has; only a value it does not have is '-'
        return new Command(name, f, max, KEEPS_EMPTY.contains(name));
    }

    /**
     * Envoy's syntax check of a command: an operator that takes no parameter refuses a parameter or a length
     * ({@code %RESPONSE_CODE:3%}), one that needs a parameter refuses {@code ()}, and one that takes an optional
     * parameter but no length refuses a length; with Envoy's words.
     */
    private static void checkSyntax(String command, String name, String arg, int max) {
        boolean commandOnly = (PLAIN.containsKey(name) && !NO_LENGTH.contains(name) && !CERT_TIMES.contains(name))
                || COMMAND_ONLY.contains(name);
        String problem = null;
        if (commandOnly && (arg != null || max >= 0)) {
            problem = name + " does not take any parameters or length";
        } else if (PARAMS_REQUIRED.contains(name) && (arg == null || arg.isEmpty())) {
            problem = name + " requires parameters";
        } else if (NO_LENGTH.contains(name) && max >= 0) {
            problem = name + " does not allow length to be specified.";
        }
        if (problem != null) {
            throw new IllegalArgumentException(command + ": " + problem);
        }
    }

    /** Operators without a parameter or a length, besides {@link #PLAIN}'s. */
    private static final java.util.Set<String> COMMAND_ONLY = java.util.Set.of("UNIQUE_ID", "HOSTNAME",
            "LOCAL_REPLY_BODY", "REQUEST_HEADERS_BYTES", "RESPONSE_HEADERS_BYTES", "RESPONSE_TRAILERS_BYTES",
            "UPSTREAM_WIRE_BYTES_RECEIVED", "UPSTREAM_HEADER_BYTES_RECEIVED", "DOWNSTREAM_WIRE_BYTES_RECEIVED",
            "DOWNSTREAM_HEADER_BYTES_RECEIVED", "UPSTREAM_WIRE_BYTES_SENT", "UPSTREAM_HEADER_BYTES_SENT",
            "DOWNSTREAM_WIRE_BYTES_SENT", "DOWNSTREAM_HEADER_BYTES_SENT", "REQUEST_TX_DURATION",
            "DOWNSTREAM_HANDSHAKE_DURATION", "ROUNDTRIP_DURATION", "UPSTREAM_CONNECTION_POOL_READY_DURATION",
            "UPSTREAM_TLS_CIPHER", "UPSTREAM_TLS_VERSION", "UPSTREAM_TLS_SESSION_ID", "UPSTREAM_PEER_ISSUER",
            "UPSTREAM_PEER_CERT", "UPSTREAM_PEER_SUBJECT", "UPSTREAM_PEER_DNS_SAN", "UPSTREAM_PEER_IP_SAN",
            "UPSTREAM_LOCAL_DNS_SAN", "UPSTREAM_LOCAL_IP_SAN", "UPSTREAM_LOCAL_SUBJECT", "UPSTREAM_CONNECTION_ID",
            "CONNECTION_ID", "VIRTUAL_CLUSTER_NAME", "ACCESS_LOG_TYPE", "CUSTOM_FLAGS",
            "DOWNSTREAM_TRANSPORT_FAILURE_REASON");

    /**
     * The certificate validity operators, whose parameter (a time format) Envoy takes optionally; Inmesh fills them
     * without one and refuses one as an operator it does not fill.
     */
    private static final java.util.Set<String> CERT_TIMES = java.util.Set.of("DOWNSTREAM_PEER_CERT_V_START",
            "DOWNSTREAM_PEER_CERT_V_END", "UPSTREAM_PEER_CERT_V_START", "UPSTREAM_PEER_CERT_V_END");

    /** Operators that need a parameter. */
    private static final java.util.Set<String> PARAMS_REQUIRED = java.util.Set.of("REQ", "REQUEST_HEADER", "RESP",
            "RESPONSE_HEADER", "TRAILER", "RESPONSE_TRAILER", "REQ_WITHOUT_QUERY", "QUERY_PARAM", "ENVIRONMENT",
            "DYNAMIC_METADATA", "CLUSTER_METADATA", "UPSTREAM_METADATA", "FILTER_STATE", "UPSTREAM_FILTER_STATE",
            "CEL", "METADATA", "COMMON_DURATION");

    /** Operators whose parameter is optional and that take no length. */
    private static final java.util.Set<String> NO_LENGTH = java.util.Set.of("START_TIME", "RESPONSE_CODE_DETAILS",
            "GRPC_STATUS");

    /** The operators whose empty value is a value: a header's is whenever the header is there. */
    private static final java.util.Set<String> KEEPS_EMPTY = java.util.Set.of("LOCAL_REPLY_BODY", "QUERY_PARAM",
            "REQ", "REQUEST_HEADER", "RESP", "RESPONSE_HEADER", "TRAILER", "RESPONSE_TRAILER", "REQ_WITHOUT_QUERY");

    private static IllegalArgumentException unsupported(String command) {
        return new IllegalArgumentException("%" + command + "% is not a command operator of Envoy's (see "
                + "docs/operations.md, Access logs, for the ones Inmesh fills)");
    }

    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(
            CommandFormat.class.getName());
    private static final java.util.Set<String> WARNED = java.util.concurrent.ConcurrentHashMap.newKeySet();

    /**
     * Envoy's command operators that Inmesh does not fill: written as unknown (with or without an argument), where
     * an operator Envoy does not know is refused.
     */
    static final java.util.Set<String> UNFILLED = java.util.Set.of("START_TIME_LOCAL", "EMIT_TIME", "EMIT_TIME_LOCAL",
            "REQUEST_HEADERS_BYTES", "RESPONSE_HEADERS_BYTES", "RESPONSE_TRAILERS_BYTES", "BYTES_RETRANSMITTED",
            "PACKETS_RETRANSMITTED", "UPSTREAM_WIRE_BYTES_RECEIVED", "UPSTREAM_HEADER_BYTES_RECEIVED",
            "DOWNSTREAM_WIRE_BYTES_RECEIVED", "DOWNSTREAM_HEADER_BYTES_RECEIVED", "UPSTREAM_WIRE_BYTES_SENT",
            "UPSTREAM_HEADER_BYTES_SENT", "DOWNSTREAM_WIRE_BYTES_SENT", "DOWNSTREAM_HEADER_BYTES_SENT",
            "COMMON_DURATION", "REQUEST_TX_DURATION",
            "DOWNSTREAM_HANDSHAKE_DURATION", "ROUNDTRIP_DURATION", "UPSTREAM_CONNECTION_POOL_READY_DURATION",
            "UPSTREAM_TLS_CIPHER", "UPSTREAM_TLS_VERSION",
            "UPSTREAM_TLS_SESSION_ID", "UPSTREAM_PEER_ISSUER", "UPSTREAM_PEER_CERT", "UPSTREAM_PEER_SUBJECT",
            "UPSTREAM_PEER_DNS_SAN", "UPSTREAM_PEER_IP_SAN", "UPSTREAM_LOCAL_DNS_SAN", "UPSTREAM_LOCAL_IP_SAN",
            "UPSTREAM_LOCAL_SUBJECT", "UPSTREAM_FILTER_STATE", "UPSTREAM_CONNECTION_ID",
            "DOWNSTREAM_PEER_OTHERNAME_SAN", "DOWNSTREAM_LOCAL_OTHERNAME_SAN", "DOWNSTREAM_TRANSPORT_FAILURE_REASON",
            "CONNECTION_ID", "VIRTUAL_CLUSTER_NAME", "DYNAMIC_METADATA", "FILTER_STATE", "ACCESS_LOG_TYPE",
            "CEL", "METADATA", "PATH",
            "CUSTOM_FLAGS", "DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_256", "DOWNSTREAM_PEER_CHAIN_FINGERPRINTS_1",
            "DOWNSTREAM_PEER_CHAIN_SERIALS");

    /**
     * Envoy's {@code %UPSTREAM_METADATA(NAMESPACE:KEY:...)%} and {@code %CLUSTER_METADATA(...)%}: the value at that
     * path of the last upstream host's endpoint metadata, or of the route's cluster's ({@code of}), the namespace
     * alone all of its values; a string as it is and any other value as JSON (Envoy's {@code MetadataFormatter});
     * unknown without a host (cluster) or a value there.
     */
    private static Function<AccessLogEntry, Object> metadata(String arg, Function<RequestLog, Metadata> of) {
        String[] path = arg.split(":", -1);
        return e -> {
            Metadata m = e.log() == null ? null : of.apply(e.log());
            Object v = m == null ? null : m.filterMetadata().get(path[0]);
            for (int i = 1; i < path.length && v != null; i++) {
                v = v instanceof Map<?, ?> map ? map.get(path[i]) : null;
            }
            return v == null || v instanceof String ? v : metadataJson(v);
        };
    }

    /** A metadata value (a number, boolean, list or map) as protobuf's JSON prints it: a whole number, no point. */
    private static String metadataJson(Object v) {
        if (v instanceof Double d && d == Math.rint(d) && Math.abs(d) < 1e15) {
            return Long.toString(d.longValue());
        }
        if (v instanceof Map<?, ?> || v instanceof List<?>) {
            return io.vertx.core.json.Json.encode(v);
        }
        return String.valueOf(v);
    }

    /** An operator of the request's downstream TLS: unknown without it. */
    private static Function<AccessLogEntry, Object> tls(Function<TlsDetails, String> f) {
        return e -> e.tls() == null ? null : f.apply(e.tls());
    }

    /** An operator of the client's certificate in that TLS: unknown without one. */
    private static Function<AccessLogEntry, Object> peer(Function<java.security.cert.X509Certificate, String> f) {
        return e -> e.tls() == null ? null : f.apply(e.tls().peer());
    }

    /** An operator of the certificate this side presented in that TLS. */
    private static Function<AccessLogEntry, Object> local(Function<java.security.cert.X509Certificate, String> f) {
        return e -> e.tls() == null ? null : f.apply(e.tls().local());
    }

    private static String required(String name, String arg) {
        if (arg == null || arg.isEmpty()) {
            throw new IllegalArgumentException("%" + name + "% needs an argument: %" + name + "(...)%");
        }
        return arg;
    }

    private interface HeaderLookup {
        String get(AccessLogEntry e, String lowerName);
    }

    /**
     * {@code %REQ(X?Y)%}: header X, else Y. As Envoy's, a header that is there is X's value even when empty (which
     * then stops the fallback to Y).
     */
    private static Function<AccessLogEntry, Object> headerCommand(String name, String arg, HeaderLookup lookup) {
        String spec = required(name, arg);
        int q = spec.indexOf('?');
        String main = (q < 0 ? spec : spec.substring(0, q)).toLowerCase(Locale.ROOT);
        String alt = q < 0 ? null : spec.substring(q + 1).toLowerCase(Locale.ROOT);
        if (main.isEmpty() || (alt != null && (alt.isEmpty() || alt.indexOf('?') >= 0))) {
            throw new IllegalArgumentException("%" + name + "(" + spec + ")%: expected a header name, or two "
                    + "separated by one ?");
        }
        return e -> {
            String v = present(main, lookup.get(e, main));
            return wireText(v == null && alt != null ? present(alt, lookup.get(e, alt)) : v);
        };
    }

    /**
     * A header's value, null when it is not there: an empty pseudo-header (or host) is one the request's values do
     * not have (they are kept apart from the header map, where "" stands for none), an empty header one sent empty.
     */
    private static String present(String lowerName, String value) {
        return value != null && value.isEmpty() && (lowerName.charAt(0) == ':' || lowerName.equals("host")) ? null
                : value;
    }

    /**
     * A value read off the wire (a header's), which Netty holds one char per byte (ISO-8859-1), as the text its bytes
     * spell: Envoy writes a header's bytes to the log unchanged, where the line, written here as UTF-8, would encode
     * each byte of a non-ASCII character a second time. Bytes that are valid UTF-8 are decoded as such; others are
     * left as they are (Envoy's text line carries them raw, which a line of characters cannot). An ASCII value, the
     * common case, is returned as it is, after one pass and no allocation: reinterpreting the few values that need it
     * keeps the line a String (the sinks, the JSON writer and the other operators' text stay as they are), where
     * writing every line as bytes would copy every line.
     */
    static String wireText(String v) {
        if (v == null) {
            return null;
        }
        int n = v.length();
        int i = 0;
        while (i < n && v.charAt(i) < 0x80) {
            i++;
        }
        if (i == n) {
            return v;
        }
        byte[] bytes = new byte[n];
        for (int j = 0; j < n; j++) {
            char c = v.charAt(j);
            if (c > 0xFF) {
                return v; // not one char per byte: already text
            }
            bytes[j] = (byte) c;
        }
        // a decoder that reports malformed input (String's constructor would replace it), by its result rather than
        // by an exception: bytes that are not UTF-8 (a Latin-1 user agent) are common enough not to throw each time
        var decoder = StandardCharsets.UTF_8.newDecoder();
        java.nio.CharBuffer out = java.nio.CharBuffer.allocate(n);
        if (decoder.decode(java.nio.ByteBuffer.wrap(bytes), out, true).isError() || decoder.flush(out).isError()) {
            return v;
        }
        return out.flip().toString();
    }

    /**
     * {@code %QUERY_PARAM(NAME)%}: as Envoy's, the first value of the parameter in the request's {@code :path}, the
     * query's names and values percent-decoded; unknown when the request has no such parameter.
     */
    private static Function<AccessLogEntry, Object> queryParam(String param) {
        return e -> {
            String path = wireText(e.requestHeader(":path"));
            int q = path == null ? -1 : path.indexOf('?');
            if (q < 0) {
                return null;
            }
            List<String> values = dev.inmesh.runtime.router.QueryParameters.parse(path.substring(q + 1),
                    dev.inmesh.runtime.router.QueryParameters::decode).get(param);
            return values == null ? null : values.get(0);
        };
    }

    private static final DateTimeFormatter ISO_MILLIS =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    /** {@code %START_TIME%} (ISO 8601, UTC, milliseconds) or {@code %START_TIME(strftime format)%}. */
    private static Function<AccessLogEntry, Object> startTime(String fmt) {
        if (fmt == null || fmt.isEmpty()) {
            return e -> e.info().startTime() == null ? null : ISO_MILLIS.format(e.info().startTime());
        }
        return e -> e.info().startTime() == null ? null : Strftime.format(fmt, e.info().startTime());
    }

    private static final String[] GRPC_CAMEL = {"Ok", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded",
        "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
        "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"};

    /** {@code %GRPC_STATUS%} as Envoy's CAMEL_STRING (the default), SNAKE_STRING or NUMBER. */
    private static Function<AccessLogEntry, Object> grpcStatus(String form) {
        String f = form == null || form.isEmpty() ? "CAMEL_STRING" : form;
        if (!f.equals("CAMEL_STRING") && !f.equals("SNAKE_STRING") && !f.equals("NUMBER")) {
            throw new IllegalArgumentException("%GRPC_STATUS(" + form + ")%: expected CAMEL_STRING, SNAKE_STRING "
                    + "or NUMBER");
        }
        return e -> {
            Integer n = grpcNumber(e.info());
            if (n == null) {
                return null;
            }
            if (f.equals("NUMBER")) {
                return (long) n;
            }
            if (n < 0 || n >= GRPC_CAMEL.length) {
                return Integer.toString(n);
            }
            // SNAKE_STRING as absl's status names: CANCELLED, as CAMEL_STRING spells Canceled
            return f.equals("CAMEL_STRING") ? GRPC_CAMEL[n] : n == 1 ? "CANCELLED" : snake(GRPC_CAMEL[n]);
        };
    }

    static Integer grpcNumber(StreamInfo s) {
        String g = s.grpcStatus();
        if (g == null || g.isEmpty()) {
            return null;
        }
        try {
            return Integer.parseInt(g.trim());
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static String snake(String camel) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < camel.length(); i++) {
            char c = camel.charAt(i);
            if (Character.isUpperCase(c) && i > 0) {
                b.append('_');
            }
            b.append(Character.toUpperCase(c));
        }
        return b.toString();
    }

    /**
     * The system's host name for {@code %HOSTNAME%}, found when a format first names it (compiled with its
     * configuration, off the request path) rather than when this class loads, which the default access log does on
     * an event loop at the first request.
     */
    private static final class Hostname {
        static final String NAME = hostname(System.getenv("HOSTNAME"), Path.of("/proc/sys/kernel/hostname"),
                () -> InetAddress.getLocalHost().getHostName());
    }

    /**
     * The host name as Envoy's {@code %HOSTNAME%} has it (the kernel's, gethostname): {@code env} ({@code $HOSTNAME})
     * when set, else the kernel's as Linux shows it in {@code kernelFile}, else {@code lookup}'s (the JDK's, which
     * also resolves the name in DNS, and fails when it does not resolve); null when none is had.
     */
    static String hostname(String env, Path kernelFile, Callable<String> lookup) {
        if (env != null && !env.isEmpty()) {
            return env;
        }
        try {
            String kernel = Files.readString(kernelFile, StandardCharsets.UTF_8).strip();
            if (!kernel.isEmpty()) {
                return kernel;
            }
        } catch (IOException | RuntimeException e) {
            // not Linux: the JDK's lookup
        }
        try {
            return lookup.call();
        } catch (Exception e) {
            return null;
        }
    }

    /** The operators without an argument. */
    private static final Map<String, Function<AccessLogEntry, Object>> PLAIN = Map.ofEntries(
            Map.entry("PROTOCOL", e -> e.info().protocol()),
            Map.entry("RESPONSE_CODE", e -> (long) e.info().responseCode()),
            Map.entry("RESPONSE_FLAGS", e -> ResponseFlag.format(e.info().responseFlags())),
            Map.entry("RESPONSE_FLAGS_LONG", e -> ResponseFlag.formatLong(e.info().responseFlags())),
            Map.entry("RESPONSE_CODE_DETAILS", e -> underscores(e.info().responseCodeDetails())),
            Map.entry("RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)", e -> e.info().responseCodeDetails()),
            Map.entry("CONNECTION_TERMINATION_DETAILS", e -> underscores(e.terminationDetails())),
            Map.entry("UPSTREAM_TRANSPORT_FAILURE_REASON", e -> underscores(e.info().upstreamTransportFailureReason())),
            Map.entry("BYTES_RECEIVED", e -> e.info().bytesReceived()),
            Map.entry("BYTES_SENT", e -> e.info().bytesSent()),
            Map.entry("DURATION", e -> e.info().durationMillis()),
            // as Envoy's: from the request's start to the upstream response's first byte, and from there to the
            // response's last byte sent (not the upstream service time, which starts when the request is complete)
            Map.entry("RESPONSE_DURATION", e -> e.log() == null || e.log().responseDurationMillis() < 0 ? null
                    : (Object) e.log().responseDurationMillis()),
            Map.entry("RESPONSE_TX_DURATION", e -> e.log() == null || e.log().responseTxDurationMillis() < 0 ? null
                    : (Object) e.log().responseTxDurationMillis()),
            Map.entry("UPSTREAM_HOST", e -> e.info().upstreamHost()),
            Map.entry("UPSTREAM_REMOTE_ADDRESS", e -> e.info().upstreamHost()),
            Map.entry("UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", e -> withoutPort(e.info().upstreamHost())),
            Map.entry("UPSTREAM_REMOTE_PORT", e -> port(e.info().upstreamHost())),
            Map.entry("UPSTREAM_CLUSTER", e -> e.info().upstreamClusterObservabilityName()),
            Map.entry("UPSTREAM_CLUSTER_RAW", e -> e.info().upstreamCluster()),
            Map.entry("UPSTREAM_LOCAL_ADDRESS", e -> e.info().upstreamLocalAddress()),
            Map.entry("UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", e -> withoutPort(e.info().upstreamLocalAddress())),
            Map.entry("UPSTREAM_LOCAL_PORT", e -> port(e.info().upstreamLocalAddress())),
            // for tcp_proxy, its connect attempts, as Envoy counts them
            Map.entry("UPSTREAM_REQUEST_ATTEMPT_COUNT", e -> (long) e.info().attemptCount()),
            Map.entry("UPSTREAM_PEER_URI_SAN", e -> e.info().upstreamPeerPrincipal()),
            Map.entry("UPSTREAM_LOCAL_URI_SAN", e -> e.info().upstreamLocalPrincipal()),
            Map.entry("DOWNSTREAM_LOCAL_ADDRESS", e -> e.info().downstreamLocalAddress()),
            Map.entry("DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", e -> withoutPort(e.info().downstreamLocalAddress())),
            Map.entry("DOWNSTREAM_LOCAL_PORT", e -> port(e.info().downstreamLocalAddress())),
            Map.entry("DOWNSTREAM_REMOTE_ADDRESS", e -> e.info().downstreamRemoteAddress()),
            Map.entry("DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", e -> withoutPort(e.info().downstreamRemoteAddress())),
            Map.entry("DOWNSTREAM_REMOTE_PORT", e -> port(e.info().downstreamRemoteAddress())),
            // the connection's physical addresses, whatever a PROXY header or the original destination made them
            Map.entry("DOWNSTREAM_DIRECT_REMOTE_ADDRESS", e -> e.info().downstreamDirectRemoteAddress()),
            Map.entry("DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT",
                    e -> withoutPort(e.info().downstreamDirectRemoteAddress())),
            Map.entry("DOWNSTREAM_DIRECT_REMOTE_PORT", e -> port(e.info().downstreamDirectRemoteAddress())),
            Map.entry("DOWNSTREAM_DIRECT_LOCAL_ADDRESS", e -> e.info().downstreamDirectLocalAddress()),
            Map.entry("DOWNSTREAM_DIRECT_LOCAL_ADDRESS_WITHOUT_PORT",
                    e -> withoutPort(e.info().downstreamDirectLocalAddress())),
            Map.entry("DOWNSTREAM_DIRECT_LOCAL_PORT", e -> port(e.info().downstreamDirectLocalAddress())),
            Map.entry("DOWNSTREAM_PEER_URI_SAN", e -> e.info().downstreamPeerPrincipal()),
            Map.entry("DOWNSTREAM_LOCAL_URI_SAN", e -> e.info().downstreamLocalPrincipal()),
            Map.entry("REQUESTED_SERVER_NAME", e -> e.info().requestedServerName()),
            Map.entry("UPSTREAM_PROTOCOL", e -> e.log() == null ? null : e.log().upstreamProtocol()),
            Map.entry("UPSTREAM_HOST_NAME", e -> e.log() == null ? null : e.log().upstreamHostName()),
            // an HTTP stream's id is its request id (Envoy's HttpStreamIdProviderImpl reads the request ID extension,
            // x-request-id); a tcp_proxy connection's (a UUID of its own in Envoy) is not kept
            Map.entry("STREAM_ID", e -> e.tcp() ? null : e.requestHeader("x-request-id")),
            // the request's span's trace id, sampled or not, as Envoy's tracers give it (16 hex digits, 32 for a
            // 128-bit id); unknown for a request not traced
            Map.entry("TRACE_ID", e -> e.log() == null || e.log().span() == null ? null
                    : e.log().span().context().traceIdHex()),
            Map.entry("UPSTREAM_HOST_NAME_WITHOUT_PORT", e -> e.log() == null ? null
                    : withoutPort(e.log().upstreamHostName())),
            Map.entry("REQUEST_DURATION", e -> e.log() == null || e.log().requestDurationMillis() < 0 ? null
                    : (Object) e.log().requestDurationMillis()),
            // the TLS of the request's downstream connection (TlsDetails), as Envoy's operators read it
            Map.entry("DOWNSTREAM_TLS_VERSION", tls(TlsDetails::version)),
            Map.entry("DOWNSTREAM_TLS_CIPHER", tls(TlsDetails::cipher)),
            Map.entry("DOWNSTREAM_TLS_SESSION_ID", tls(TlsDetails::sessionId)),
            Map.entry("DOWNSTREAM_PEER_SUBJECT", peer(TlsDetails::subject)),
            Map.entry("DOWNSTREAM_PEER_ISSUER", peer(TlsDetails::issuer)),
            Map.entry("DOWNSTREAM_PEER_FINGERPRINT_256", peer(c -> TlsDetails.fingerprint(c, "SHA-256"))),
            Map.entry("DOWNSTREAM_PEER_FINGERPRINT_1", peer(c -> TlsDetails.fingerprint(c, "SHA-1"))),
            Map.entry("DOWNSTREAM_PEER_SERIAL", peer(TlsDetails::serial)),
            Map.entry("DOWNSTREAM_PEER_DNS_SAN", peer(c -> TlsDetails.sans(c, 2))),
            Map.entry("DOWNSTREAM_PEER_IP_SAN", peer(c -> TlsDetails.sans(c, 7))),
            Map.entry("DOWNSTREAM_PEER_EMAIL_SAN", peer(c -> TlsDetails.sans(c, 1))),
            Map.entry("DOWNSTREAM_PEER_CERT", peer(TlsDetails::pem)),
            Map.entry("DOWNSTREAM_PEER_CERT_V_START", peer(TlsDetails::validFrom)),
            Map.entry("DOWNSTREAM_PEER_CERT_V_END", peer(TlsDetails::validUntil)),
            Map.entry("DOWNSTREAM_LOCAL_SUBJECT", local(TlsDetails::subject)),
            Map.entry("DOWNSTREAM_LOCAL_DNS_SAN", local(c -> TlsDetails.sans(c, 2))),
            Map.entry("DOWNSTREAM_LOCAL_IP_SAN", local(c -> TlsDetails.sans(c, 7))),
            Map.entry("DOWNSTREAM_LOCAL_EMAIL_SAN", local(c -> TlsDetails.sans(c, 1))),
            Map.entry("ROUTE_NAME", e -> e.info().routeName()),
            Map.entry("FILTER_CHAIN_NAME", AccessLogEntry::filterChainName),
            Map.entry("GRPC_STATUS_NUMBER", e -> {
                Integer n = grpcNumber(e.info());
                return n == null ? null : (Object) (long) n;
            }));

    /** Envoy writes details and failure reasons with their whitespace as underscores. */
    static String underscores(String d) {
        if (d == null) {
            return null;
        }
        StringBuilder b = null;
        for (int i = 0; i < d.length(); i++) {
            if (Character.isWhitespace(d.charAt(i))) {
                if (b == null) {
                    b = new StringBuilder(d);
                }
                b.setCharAt(i, '_');
            }
        }
        return b == null ? d : b.toString();
    }

    /** {@code 10.0.0.1:80} to {@code 10.0.0.1}, {@code [::1]:80} to {@code ::1}; null stays null. */
    static String withoutPort(String hostPort) {
        if (hostPort == null) {
            return null;
        }
        int colon = hostPort.lastIndexOf(':');
        if (colon < 0 || hostPort.indexOf(']') > colon || (hostPort.indexOf(':') != colon
                && !hostPort.startsWith("["))) {
            return hostPort;
        }
        String host = hostPort.substring(0, colon);
        return host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
    }

    /** The port of {@code host:port} as a number, or null. */
    static Object port(String hostPort) {
        String host = withoutPort(hostPort);
        if (hostPort == null || host == null || host.equals(hostPort)) {
            return null;
        }
        try {
            return Long.parseLong(hostPort.substring(hostPort.lastIndexOf(':') + 1));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /** The strftime directives Envoy's {@code %START_TIME(...)%} takes, with its fractional seconds. */
    static final class Strftime {
        // made once: a format's directives are read for every entry
        private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("HH:mm:ss", Locale.ROOT);
        private static final DateTimeFormatter DATE = DateTimeFormatter.ofPattern("MM/dd/yy", Locale.ROOT);
        private static final DateTimeFormatter MONTH = DateTimeFormatter.ofPattern("MMM", Locale.ENGLISH);
        private static final DateTimeFormatter FULL_MONTH = DateTimeFormatter.ofPattern("MMMM", Locale.ENGLISH);
        private static final DateTimeFormatter DAY = DateTimeFormatter.ofPattern("EEE", Locale.ENGLISH);
        private static final DateTimeFormatter FULL_DAY = DateTimeFormatter.ofPattern("EEEE", Locale.ENGLISH);

        private Strftime() {}

        static String format(String fmt, Instant t) {
            ZonedDateTime z = t.atZone(ZoneOffset.UTC);
            StringBuilder b = new StringBuilder(fmt.length() + 16);
            for (int i = 0; i < fmt.length(); i++) {
                char c = fmt.charAt(i);
                if (c != '%' || i + 1 >= fmt.length()) {
                    b.append(c);
                    continue;
                }
                char d = fmt.charAt(++i);
                char next = i + 1 < fmt.length() ? fmt.charAt(i + 1) : 0;
                if (((d >= '1' && d <= '9') || d == '*') && next == 'f') {
                    i++;
                    b.append(fraction(z.getNano(), d == '*' ? -1 : d - '0'));
                    continue;
                }
                if (d == 'E' && next != 0) {
                    int used = extended(fmt, i + 1, z, b);
                    if (used > 0) {
                        i += used;
                        continue;
                    }
                }
                switch (d) {
                    case 'Y' -> b.append(z.getYear());
                    case 'y' -> two(b, z.getYear() % 100);
                    case 'm' -> two(b, z.getMonthValue());
                    case 'd' -> two(b, z.getDayOfMonth());
                    case 'e' -> b.append(z.getDayOfMonth() < 10 ? " " : "").append(z.getDayOfMonth());
                    case 'H' -> two(b, z.getHour());
                    case 'M' -> two(b, z.getMinute());
                    case 'S' -> two(b, z.getSecond());
                    case 'j' -> b.append(z.getDayOfYear() < 100 ? z.getDayOfYear() < 10 ? "00" : "0" : "")
                            .append(z.getDayOfYear());
                    case 'f' -> b.append(fraction(z.getNano(), 9));
                    case 's' -> b.append(t.getEpochSecond());
                    case 'z' -> b.append("+0000");
                    case 'Z' -> b.append("UTC");
                    case 'T' -> TIME.formatTo(z, b);
                    case 'F' -> DateTimeFormatter.ISO_LOCAL_DATE.formatTo(z, b);
                    case 'D' -> DATE.formatTo(z, b);
                    case 'b', 'h' -> MONTH.formatTo(z, b);
                    case 'B' -> FULL_MONTH.formatTo(z, b);
                    case 'a' -> DAY.formatTo(z, b);
                    case 'A' -> FULL_DAY.formatTo(z, b);
                    // the rest as C's strftime in the C locale, which absl's FormatTime hands them to
                    case 'I' -> two(b, twelve(z.getHour()));
                    case 'l' -> b.append(twelve(z.getHour()) < 10 ? " " : "").append(twelve(z.getHour()));
                    case 'k' -> b.append(z.getHour() < 10 ? " " : "").append(z.getHour());
                    case 'p' -> b.append(z.getHour() < 12 ? "AM" : "PM");
                    case 'u' -> b.append(z.getDayOfWeek().getValue());
                    case 'w' -> b.append(z.getDayOfWeek().getValue() % 7);
                    case 'C' -> two(b, Math.floorDiv(z.getYear(), 100));
                    case 'G' -> b.append(z.get(java.time.temporal.IsoFields.WEEK_BASED_YEAR));
                    case 'g' -> two(b, Math.floorMod(z.get(java.time.temporal.IsoFields.WEEK_BASED_YEAR), 100));
                    case 'V' -> two(b, z.get(java.time.temporal.IsoFields.WEEK_OF_WEEK_BASED_YEAR));
                    // the weeks that start on the year's first Sunday (%U) or Monday (%W); days before are week 0
                    case 'U' -> two(b, (z.getDayOfYear() + 6 - z.getDayOfWeek().getValue() % 7) / 7);
                    case 'W' -> two(b, (z.getDayOfYear() + 6 - (z.getDayOfWeek().getValue() + 6) % 7) / 7);
                    case 'R' -> {
                        two(b, z.getHour());
                        b.append(':');
                        two(b, z.getMinute());
                    }
                    case 'r' -> b.append(format("%I:%M:%S %p", t));
                    case 'c' -> b.append(format("%a %b %e %H:%M:%S %Y", t));
                    case 'x' -> DATE.formatTo(z, b);
                    case 'X' -> TIME.formatTo(z, b);
                    case 'n' -> b.append('\n');
                    case 't' -> b.append('\t');
                    case '%' -> b.append('%');
                    default -> b.append('%').append(d);
                }
            }
            return b.toString();
        }

        private static void two(StringBuilder b, int v) {
            if (v < 10) {
                b.append('0');
            }
            b.append(v);
        }

        /**
         * The nanoseconds' first {@code digits} digits; -1: as many as there are without trailing zeros, at least
         * one (Envoy's {@code %*f} and {@code %E*f}).
         */
        private static String fraction(int nanos, int digits) {
            String all = String.format(Locale.ROOT, "%09d", nanos);
            if (digits < 0) {
                int end = all.length();
                while (end > 1 && all.charAt(end - 1) == '0') {
                    end--;
                }
                return all.substring(0, end);
            }
            return all.substring(0, digits);
        }

        private static int twelve(int hour) {
            return hour % 12 == 0 ? 12 : hour % 12;
        }

        /**
         * absl's {@code %E} directives at {@code at} (after {@code %E}), in UTC: {@code %Ez} ({@code +00:00}),
         * {@code %E*z} ({@code +00:00:00}), {@code %E4Y} (the year in at least 4 digits), {@code %E#S} and
         * {@code %E*S} (the seconds, a dot and # digits of the fraction, or its digits without trailing zeros and no
         * dot when there are none), {@code %E#f} and {@code %E*f} (the fraction alone, at least one digit). Returns
         * the characters used after the {@code E}, 0 for none of these (written as they are, as strftime leaves them).
         */
        private static int extended(String fmt, int at, ZonedDateTime z, StringBuilder b) {
            char c = fmt.charAt(at);
            char after = at + 1 < fmt.length() ? fmt.charAt(at + 1) : 0;
            if (c == 'z') {
                b.append("+00:00");
                return 1;
            }
            if (c == '*' && after == 'z') {
                b.append("+00:00:00");
                return 2;
            }
            if (c == '4' && after == 'Y') {
                int y = z.getYear();
                String digits = Integer.toString(Math.abs(y));
                b.append(y < 0 ? "-" : "").append("0".repeat(Math.max(0, (y < 0 ? 3 : 4) - digits.length())))
                        .append(digits);
                return 2;
            }
            if (((c >= '1' && c <= '9') || c == '*') && (after == 'S' || after == 'f')) {
                int digits = c == '*' ? -1 : c - '0';
                if (after == 'f') {
                    b.append(fraction(z.getNano(), digits));
                } else {
                    two(b, z.getSecond());
                    if (digits > 0 || z.getNano() != 0) {
                        b.append('.').append(fraction(z.getNano(), digits));
                    }
                }
                return 2;
            }
            return 0;
        }
    }
}
