package dev.inmesh.runtime.xds;

import com.google.re2j.PatternSyntaxException;
import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.HeaderMutations;
import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.runtime.accesslog.CommandFormat;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.type.matcher.v3.RegexMatcher;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Parsers for the messages of {@code envoy.config.core.v3} and {@code envoy.type} that several resources share. */
public final class CoreParsers {
    private CoreParsers() {}

    /**
     * The text of an Envoy {@code DataSource}, read when the configuration is, as Envoy reads one: an
     * {@code inline_string}, {@code inline_bytes} (as UTF-8), a {@code filename}'s file or an
     * {@code environment_variable}'s value. A file that cannot be read or a variable not set is refused by name.
     */
    public static String dataSource(io.envoyproxy.envoy.config.core.v3.DataSource d) {
        return switch (d.getSpecifierCase()) {
            case INLINE_STRING -> d.getInlineString();
            case INLINE_BYTES -> d.getInlineBytes().toStringUtf8();
            case FILENAME -> readFile("filename", d.getFilename());
            case ENVIRONMENT_VARIABLE -> {
                String value = System.getenv(d.getEnvironmentVariable());
                if (value == null) {
                    throw new FieldError("environment_variable", "\"" + d.getEnvironmentVariable()
                            + "\" is not set");
                }
                yield value;
            }
            case SPECIFIER_NOT_SET -> throw new FieldError("", "missing (expected: inline_string, inline_bytes, "
                    + "filename or environment_variable)");
        };
    }

    /**
     * Where the parse running on this thread notes each file it reads and how the file looked before the read
     * ({@link dev.inmesh.runtime.tls.WorkloadIdentity#stamp}, or "unreadable"), or null ({@link Parsers#withFilesRead}).
     */
    static final ThreadLocal<Map<String, String>> FILES_READ = new ThreadLocal<>();

    /**
     * A configuration's file read as UTF-8 text; one that cannot be read is refused at {@code field}. The file is
     * noted in {@link #FILES_READ}, readable or not.
     */
    static String readFile(String field, String file) {
        Map<String, String> read = FILES_READ.get();
        if (read != null && !read.containsKey(file)) {
            read.put(file, stamp(file));
        }
        try {
            return java.nio.file.Files.readString(java.nio.file.Path.of(file), java.nio.charset.StandardCharsets.UTF_8);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new FieldError(field, "cannot read \"" + file + "\": no such file");
        } catch (java.nio.file.AccessDeniedException e) {
            throw new FieldError(field, "cannot read \"" + file + "\": permission denied");
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new FieldError(field, "cannot read \"" + file + "\": not UTF-8 text");
        } catch (java.io.IOException | RuntimeException e) {
            throw new FieldError(field, "cannot read \"" + file + "\": " + e.getMessage());
        }
    }

    /** How a file looks now (its modification time, size and file key), or "unreadable". */
    public static String stamp(String file) {
        try {
            return dev.inmesh.runtime.tls.WorkloadIdentity.stamp(java.nio.file.Path.of(file));
        } catch (java.io.IOException | RuntimeException e) {
            return "unreadable";
        }
    }

    /**
     * A socket address, or a Unix domain socket ({@code pipe}) as {@code unix:PATH} with port 0; Envoy internal
     * addresses are not supported.
     */
    public static SocketAddress socketAddress(Address a) {
        if (a.hasPipe()) {
            Fields.at("pipe", () -> {
                Fields.onlyKnown(a.getPipe(), java.util.Set.of("path"), java.util.Set.of("mode"));
                return null;
            });
            return new SocketAddress(SocketAddress.UNIX_PREFIX + a.getPipe().getPath(), 0);
        }
        if (!a.hasSocketAddress()) {
            throw new FieldError(a.hasEnvoyInternalAddress() ? "envoy_internal_address" : "",
                    "socket_address or pipe is required");
        }
        io.envoyproxy.envoy.config.core.v3.SocketAddress s = a.getSocketAddress();
        return Fields.at("socket_address", () -> {
            Fields.onlyKnown(s, Set.of("address", "port_value", "protocol"), Set.of("ipv4_compat"));
            if (s.getProtocol() != io.envoyproxy.envoy.config.core.v3.SocketAddress.Protocol.TCP) {
                throw new FieldError("protocol", s.getProtocol() + " (expected: TCP)");
            }
            return new SocketAddress(s.getAddress(), s.getPortValue());
        });
    }

    /**
     * {@link #socketAddress}, refused as Envoy refuses it ({@code malformed IP address}) when it is a name rather than
     * an IP address or a pipe: where Envoy resolves no name (a listener's address, a STATIC or EDS endpoint, a bind
     * address). {@code hint} says where a name would do, or is null.
     */
    public static SocketAddress ipAddress(Address a, String hint) {
        SocketAddress s = socketAddress(a);
        if (!s.isUnixDomain()) {
            checkIp(s.address(), "socket_address.address", hint);
        }
        return s;
    }

    /**
     * Refuses {@code ip} at {@code field} unless it is an IPv4 or IPv6 address, read by the project's one parser of
     * them ({@link dev.inmesh.runtime.net.IpLiterals}), as {@link #ipAddress} does.
     */
    public static void checkIp(String ip, String field, String hint) {
        if (dev.inmesh.runtime.net.IpLiterals.parse(ip) == null) {
            throw new FieldError(field, "malformed IP address: " + ip + " (expected: an IP address"
                    + (hint == null ? ")" : "; " + hint + ")"));
        }
    }

    /**
     * The config type of a typed config, as Envoy resolves it: the message type named by its type URL (without
     * {@code type.googleapis.com/}), or, for a {@code TypedStruct} ({@code xds.type.v3} or {@code udpa.type.v1}, also
     * the ones the JSON reader makes of types Inmesh has no class for), the type it carries. Empty when unset.
     */
    public static String configType(com.google.protobuf.Any any) {
        String url = any.getTypeUrl();
        String type = url.substring(url.lastIndexOf('/') + 1);
        try {
            if (type.equals("xds.type.v3.TypedStruct")) {
                url = any.unpack(com.github.xds.type.v3.TypedStruct.class).getTypeUrl();
            } else if (type.equals("udpa.type.v1.TypedStruct")) {
                url = any.unpack(com.github.udpa.udpa.type.v1.TypedStruct.class).getTypeUrl();
            } else {
                return type;
            }
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            return type;
        }
        return url.isEmpty() ? type : url.substring(url.lastIndexOf('/') + 1);
    }

    /** Filter metadata as plain Java maps; typed metadata is not supported. */
    public static Metadata metadata(io.envoyproxy.envoy.config.core.v3.Metadata m) {
        if (m.getFilterMetadataCount() == 0) {
            return Metadata.EMPTY;
        }
        Map<String, Map<String, Object>> out = new LinkedHashMap<>();
        m.getFilterMetadataMap().forEach((k, v) -> out.put(k, Fields.struct(v)));
        return new Metadata(out);
    }

    /** Header mutations from the four repeated fields every level carries. */
    public static HeaderMutations headerMutations(List<io.envoyproxy.envoy.config.core.v3.HeaderValueOption> reqAdd,
            List<String> reqRemove, List<io.envoyproxy.envoy.config.core.v3.HeaderValueOption> respAdd,
            List<String> respRemove) {
        if (reqAdd.isEmpty() && reqRemove.isEmpty() && respAdd.isEmpty() && respRemove.isEmpty()) {
            return HeaderMutations.NONE;
        }
        return new HeaderMutations(
                Fields.each("request_headers_to_add", reqAdd, CoreParsers::headerValueOption),
                reqRemove,
                Fields.each("response_headers_to_add", respAdd, CoreParsers::headerValueOption),
                respRemove);
    }

    /**
     * One header to add; {@code append} (deprecated) maps to the append actions as Envoy does. Its value is Envoy's
     * substitution format string ({@code source/common/router/header_parser.cc}): one with a command operator is
     * compiled here to refuse, by path, an operator Envoy does not know (the snapshot compiles it again, once, for the
     * requests), and kept as configured ({@link HeaderValueOption#formatted}); one without is its literal text
     * ({@code %%} a {@code %}).
     */
    public static HeaderValueOption headerValueOption(io.envoyproxy.envoy.config.core.v3.HeaderValueOption o) {
        Fields.onlyKnown(o, Set.of("header", "append", "append_action", "keep_empty_value"), Set.of());
        HeaderValueOption.AppendAction action;
        if (o.hasAppend()) {
            if (o.getAppendAction() != io.envoyproxy.envoy.config.core.v3.HeaderValueOption.HeaderAppendAction
                    .APPEND_IF_EXISTS_OR_ADD) {
                throw new FieldError("append", "append and append_action are both set (Envoy refuses them together)");
            }
            action = o.getAppend().getValue() ? HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD
                    : HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD;
        } else {
            action = switch (o.getAppendAction()) {
                case APPEND_IF_EXISTS_OR_ADD -> HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD;
                case ADD_IF_ABSENT -> HeaderValueOption.AppendAction.ADD_IF_ABSENT;
                case OVERWRITE_IF_EXISTS_OR_ADD -> HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD;
                case OVERWRITE_IF_EXISTS -> HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS;
                case UNRECOGNIZED -> throw new FieldError("append_action", o.getAppendActionValue() + " (expected: "
                        + "APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS)");
            };
        }
        String value = o.getHeader().getValue().isEmpty() && !o.getHeader().getRawValue().isEmpty()
                ? o.getHeader().getRawValue().toStringUtf8() : o.getHeader().getValue();
        boolean formatted = Fields.at("header.value", () -> CommandFormat.headerValue(value).hasCommand());
        // the record's checks name header.key and header.value themselves
        return new HeaderValueOption(o.getHeader().getKey(), formatted ? value : value.replace("%%", "%"), action,
                o.getKeepEmptyValue(), formatted);
    }

    /** The string matchers of a list, each named by its index under {@code patterns} when it is rejected. */
    public static List<StringMatcher> stringMatchers(io.envoyproxy.envoy.type.matcher.v3.ListStringMatcher l) {
        Fields.onlyKnown(l, Set.of("patterns"), Set.of());
        return Fields.each("patterns", l.getPatternsList(), CoreParsers::stringMatcher);
    }

    /** A string matcher; a regex is compiled here so that an invalid one is rejected with the resource. */
    public static StringMatcher stringMatcher(io.envoyproxy.envoy.type.matcher.v3.StringMatcher m) {
        Fields.onlyKnown(m, Set.of("exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"), Set.of());
        boolean ic = m.getIgnoreCase();
        if (ic && m.hasSafeRegex()) {
            throw new FieldError("ignore_case", "true with safe_regex (expected: false or unset; it has no effect on "
                    + "a regex, and Envoy rejects the two together)");
        }
        return switch (m.getMatchPatternCase()) {
            case EXACT -> new StringMatcher.Exact(m.getExact(), ic);
            case PREFIX -> new StringMatcher.Prefix(m.getPrefix(), ic);
            case SUFFIX -> new StringMatcher.Suffix(m.getSuffix(), ic);
            case CONTAINS -> new StringMatcher.Contains(m.getContains(), ic);
            case SAFE_REGEX -> new StringMatcher.SafeRegex(Fields.at("safe_regex", () -> regex(m.getSafeRegex())));
            case CUSTOM, MATCHPATTERN_NOT_SET -> throw new FieldError("match_pattern",
                    "exact, prefix, suffix, contains or safe_regex is required");
        };
    }

    /** A RE2 regex, checked to compile; {@code google_re2.max_program_size} is accepted. */
    public static String regex(RegexMatcher m) {
        Fields.onlyKnown(m, Set.of("regex"), Set.of("google_re2"));
        checkRegex("regex", m.getRegex());
        return m.getRegex();
    }

    /** Fails with a field error when {@code regex} is not a valid RE2 expression. */
    public static void checkRegex(String field, String regex) {
        try {
            com.google.re2j.Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new FieldError(field, "\"" + regex + "\" is not a valid RE2 regex: " + e.getDescription());
        }
    }

    /**
     * A {@code core.v3.CidrRange}. An {@code address_prefix} that is not an IP address is refused, as Envoy refuses
     * it: a range that matched no address would turn a DENY (or a filter chain's match) into nothing.
     */
    public static CidrRange cidr(io.envoyproxy.envoy.config.core.v3.CidrRange c) {
        String address = c.getAddressPrefix();
        if (!address.isEmpty() && dev.inmesh.runtime.net.IpLiterals.parse(address) == null) {
            throw new FieldError("address_prefix", "\"" + address + "\" (expected: an IPv4 or IPv6 address)");
        }
        return new CidrRange(address, c.hasPrefixLen() ? c.getPrefixLen().getValue() : 0);
    }

    public static FractionalPercent fractionalPercent(io.envoyproxy.envoy.type.v3.FractionalPercent f) {
        FractionalPercent.Denominator d = switch (f.getDenominator()) {
            case HUNDRED -> FractionalPercent.Denominator.HUNDRED;
            case TEN_THOUSAND -> FractionalPercent.Denominator.TEN_THOUSAND;
            case MILLION -> FractionalPercent.Denominator.MILLION;
            case UNRECOGNIZED -> throw new FieldError("denominator", f.getDenominatorValue()
                    + " (expected: HUNDRED, TEN_THOUSAND or MILLION)");
        };
        return new FractionalPercent(Integer.toUnsignedLong(f.getNumerator()), d);
    }

    /**
     * The HTTP/2 settings of {@code http2_protocol_options} (a cluster's or a connection manager's):
     * {@code hpack_table_size}, {@code max_concurrent_streams} and the two {@code initial_*_window_size} are applied
     * (see {@link Http2ProtocolOptions}), and {@code override_stream_error_on_invalid_http_message} (the deprecated
     * {@code stream_error_on_invalid_http_messaging} when it is unset, as Envoy's
     * source/common/http/utility.cc initializeAndValidateOptions takes it), which a connection manager applies to the
     * requests it reads, and the inbound flood limits ({@code max_inbound_priority_frames_per_stream},
     * {@code max_inbound_window_update_frames_per_data_frame_sent},
     * {@code max_consecutive_inbound_frames_with_empty_payload}), which a connection manager applies to its clients.
     * Accepted because they change nothing a well-behaved peer sees: the outbound flood limits
     * ({@code max_outbound_frames}, {@code max_outbound_control_frames}: Netty's codec has protections of its own
     * against a peer that does not read), Envoy's choice of codec ({@code use_oghttp2_codec}) and
     * {@code max_metadata_size}, which only bounds METADATA frames. Refused by name: {@code allow_connect}
     * (extended CONNECT, for WebSocket over HTTP/2, which Inmesh does not speak), {@code allow_metadata} (METADATA
     * frames, which Inmesh neither sends nor reads), {@code custom_settings_parameters} and
     * {@code connection_keepalive} (PING keep-alive, not implemented).
     */
    public static Http2ProtocolOptions http2ProtocolOptions(io.envoyproxy.envoy.config.core.v3.Http2ProtocolOptions o) {
        return http2ProtocolOptions(o, null);
    }

    /**
     * A connection manager's {@code http2_protocol_options} (its defaults when {@code o} is null), whose
     * {@code override_stream_error_on_invalid_http_message}, when unset, is the connection manager's own
     * {@code stream_error_on_invalid_http_message} ({@code hcmStreamError}; null when unset too), as Envoy's
     * initializeAndValidateOptions takes it.
     */
    public static Http2ProtocolOptions http2ProtocolOptions(io.envoyproxy.envoy.config.core.v3.Http2ProtocolOptions o,
                                                            Boolean hcmStreamError) {
        if (o == null) {
            Http2ProtocolOptions d = Http2ProtocolOptions.DEFAULTS;
            return hcmStreamError == null ? null : new Http2ProtocolOptions(d.hpackTableSize(),
                    d.maxConcurrentStreams(), null, null, hcmStreamError);
        }
        Fields.onlyKnown(o, Set.of("hpack_table_size", "max_concurrent_streams", "initial_stream_window_size",
                "initial_connection_window_size", "override_stream_error_on_invalid_http_message",
                "stream_error_on_invalid_http_messaging", "max_consecutive_inbound_frames_with_empty_payload",
                "max_inbound_priority_frames_per_stream", "max_inbound_window_update_frames_per_data_frame_sent"),
                Set.of("max_outbound_frames", "max_outbound_control_frames", "use_oghttp2_codec",
                        "max_metadata_size"));
        Http2ProtocolOptions d = Http2ProtocolOptions.DEFAULTS;
        long hpack = o.hasHpackTableSize() ? Integer.toUnsignedLong(o.getHpackTableSize().getValue())
                : d.hpackTableSize();
        int streams = o.hasMaxConcurrentStreams()
                ? int31(o.getMaxConcurrentStreams(), "max_concurrent_streams") : d.maxConcurrentStreams();
        Integer stream = o.hasInitialStreamWindowSize()
                ? int31(o.getInitialStreamWindowSize(), "initial_stream_window_size") : null;
        Integer connection = o.hasInitialConnectionWindowSize()
                ? int31(o.getInitialConnectionWindowSize(), "initial_connection_window_size") : null;
        @SuppressWarnings("deprecation")
        boolean streamError = o.hasOverrideStreamErrorOnInvalidHttpMessage()
                ? o.getOverrideStreamErrorOnInvalidHttpMessage().getValue()
                : hcmStreamError != null ? hcmStreamError : o.getStreamErrorOnInvalidHttpMessaging();
        long priority = o.hasMaxInboundPriorityFramesPerStream()
                ? Integer.toUnsignedLong(o.getMaxInboundPriorityFramesPerStream().getValue())
                : Http2ProtocolOptions.DEFAULT_MAX_INBOUND_PRIORITY_FRAMES_PER_STREAM;
        long windowUpdates = o.hasMaxInboundWindowUpdateFramesPerDataFrameSent()
                ? Integer.toUnsignedLong(o.getMaxInboundWindowUpdateFramesPerDataFrameSent().getValue())
                : Http2ProtocolOptions.DEFAULT_MAX_INBOUND_WINDOW_UPDATE_FRAMES_PER_DATA_FRAME_SENT;
        long empty = o.hasMaxConsecutiveInboundFramesWithEmptyPayload()
                ? Integer.toUnsignedLong(o.getMaxConsecutiveInboundFramesWithEmptyPayload().getValue())
                : Http2ProtocolOptions.DEFAULT_MAX_CONSECUTIVE_INBOUND_FRAMES_WITH_EMPTY_PAYLOAD;
        return Fields.record("", () -> new Http2ProtocolOptions(hpack, streams, stream, connection, streamError,
                priority, windowUpdates, empty));
    }

    /**
     * An {@code Http1ProtocolOptions}' {@code header_key_format}: a {@code stateful_formatter} (Istio's
     * {@code preserveHttp1HeaderCase} writes the preserve-case one) loads, and on a connection manager has the
     * standalone proxy write header names to HTTP/1 callers, and its requests' to their upstreams, with the case they
     * came with (without it, in lower case, as Envoy's codec); {@code proper_case_words} (Envoy then capitalizes
     * every word of the names it writes) is not implemented and refused by name.
     */
    static void headerKeyFormat(io.envoyproxy.envoy.config.core.v3.Http1ProtocolOptions o) {
        if (o.hasHeaderKeyFormat() && o.getHeaderKeyFormat().hasProperCaseWords()) {
            throw new FieldError("header_key_format.proper_case_words", "not supported by Inmesh (header names "
                    + "go in lower case, or as they came with a stateful_formatter)");
        }
    }

    /** A {@code uint32} whose range ends at 2147483647, as an int; a larger one is refused by name. */
    static int int31(com.google.protobuf.UInt32Value v, String field) {
        if (v.getValue() < 0) {
            throw new FieldError(field, Integer.toUnsignedString(v.getValue()) + " (expected: <= 2147483647)");
        }
        return v.getValue();
    }
}
