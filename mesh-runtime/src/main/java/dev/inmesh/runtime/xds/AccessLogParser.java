package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.listener.AccessLogConfig;
import dev.inmesh.runtime.accesslog.AccessLogs;
import io.envoyproxy.envoy.config.accesslog.v3.AccessLog;
import io.envoyproxy.envoy.config.accesslog.v3.AccessLogFilter;
import io.envoyproxy.envoy.config.accesslog.v3.ComparisonFilter;
import io.envoyproxy.envoy.config.core.v3.SubstitutionFormatString;
import io.envoyproxy.envoy.extensions.access_loggers.file.v3.FileAccessLog;
import io.envoyproxy.envoy.extensions.access_loggers.stream.v3.StderrAccessLog;
import io.envoyproxy.envoy.extensions.access_loggers.stream.v3.StdoutAccessLog;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Parses the {@code access_log} of an HTTP connection manager or a TCP proxy: Envoy's file, stdout and stderr loggers
 * with their format and filter. Other loggers (gRPC access log service, OpenTelemetry, Wasm, ...) send their entries
 * to a service Inmesh does not talk to: they load and write nothing (docs/operations.md says so).
 */
final class AccessLogParser {
    static final String FILE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
    static final String STDOUT = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
    static final String STDERR = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog";
    static final String CEL =
            "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter";

    private AccessLogParser() {}

    /** The file, stdout and stderr loggers of an {@code access_log} list, in order. */
    static List<AccessLogConfig> parse(List<AccessLog> logs) {
        List<AccessLogConfig> out = new ArrayList<>();
        for (int i = 0; i < logs.size(); i++) {
            AccessLog l = logs.get(i);
            AccessLogConfig c = Fields.at("access_log[" + i + "]", () -> logger(l));
            if (c != null) {
                out.add(c);
            }
        }
        return out;
    }

    private static AccessLogConfig logger(AccessLog l) {
        Fields.onlyKnown(l, Set.of("name", "filter", "typed_config"), Set.of());
        String type = l.getTypedConfig().getTypeUrl();
        String path;
        AccessLogConfig.Format format;
        switch (type) {
            case FILE -> {
                FileAccessLog f = RouteConfigurationParser.unpack(l.getTypedConfig(), FileAccessLog.class,
                        "typed_config");
                Fields.at("typed_config", () -> {
                    Fields.onlyKnown(f, Set.of("path", "format", "json_format", "typed_json_format", "log_format"),
                            Set.of());
                    return null;
                });
                path = f.getPath();
                if (path.isEmpty()) {
                    throw new FieldError("typed_config.path", "empty (expected: a file's path, or /dev/stdout)");
                }
                format = Fields.at("typed_config", () -> switch (f.getAccessLogFormatCase()) {
                    case FORMAT -> text(f.getFormat(), false);
                    case JSON_FORMAT -> json(Fields.struct(f.getJsonFormat()), false, "json_format");
                    case TYPED_JSON_FORMAT -> json(Fields.struct(f.getTypedJsonFormat()), false, "typed_json_format");
                    case LOG_FORMAT -> Fields.at("log_format", () -> substitution(f.getLogFormat()));
                    case ACCESSLOGFORMAT_NOT_SET -> text("", false);
                });
            }
            case STDOUT -> {
                path = "/dev/stdout";
                StdoutAccessLog s = RouteConfigurationParser.unpack(l.getTypedConfig(), StdoutAccessLog.class,
                        "typed_config");
                format = stream(s, s.hasLogFormat(), s.getLogFormat());
            }
            case STDERR -> {
                path = "/dev/stderr";
                StderrAccessLog s = RouteConfigurationParser.unpack(l.getTypedConfig(), StderrAccessLog.class,
                        "typed_config");
                format = stream(s, s.hasLogFormat(), s.getLogFormat());
            }
            default -> {
                if (type.isEmpty()) {
                    throw new FieldError("typed_config", "missing (expected: the logger's configuration)");
                }
                return null; // a logger to a service: loads, writes nothing here
            }
        }
        AccessLogConfig.Filter filter = l.hasFilter() ? Fields.at("filter", () -> filter(l.getFilter())) : null;
        return new AccessLogConfig(l.getName(), path, format, filter);
    }

    /** The format of a stdout or stderr logger: its {@code log_format}, else Envoy's default. */
    private static AccessLogConfig.Format stream(com.google.protobuf.Message logger, boolean has,
                                                 SubstitutionFormatString format) {
        Fields.at("typed_config", () -> {
            Fields.onlyKnown(logger, Set.of("log_format"), Set.of());
            return null;
        });
        return Fields.at("typed_config.log_format", () -> has ? substitution(format) : text("", false));
    }

    private static AccessLogConfig.Format substitution(SubstitutionFormatString s) {
        // json_format_options (istiod writes sort_properties: false): Inmesh always writes the keys sorted, a stable
        // order where Envoy's unsorted one follows its map; content_type is for local replies
        Fields.onlyKnown(s, Set.of("text_format", "text_format_source", "json_format", "omit_empty_values",
                "formatters"), Set.of("content_type", "json_format_options"));
        Fields.each("formatters", s.getFormattersList(), AccessLogParser::formatter);
        return format(s);
    }

    /**
     * The format of a {@code SubstitutionFormatString} whose fields were checked: its text format (inline; an empty
     * one is a format of its own, as Envoy reads it, writing nothing), or its JSON format, each checked to compile.
     */
    static AccessLogConfig.Format format(SubstitutionFormatString s) {
        boolean omit = s.getOmitEmptyValues();
        return switch (s.getFormatCase()) {
            case TEXT_FORMAT -> checkedText(s.getTextFormat(), omit, "text_format");
            case TEXT_FORMAT_SOURCE -> checkedText(Fields.at("text_format_source",
                    () -> CoreParsers.dataSource(s.getTextFormatSource())), omit, "text_format_source");
            case JSON_FORMAT -> json(Fields.struct(s.getJsonFormat()), omit, "json_format");
            case FORMAT_NOT_SET -> throw new FieldError("format", "missing (expected: text_format_source or "
                    + "json_format)");
        };
    }

    /**
     * The config types of the formatter extensions istiod lists for a format that uses their command operators:
     * they only make those operators known, and the format's own check decides on each operator
     * ({@code %REQ_WITHOUT_QUERY%} is filled; {@code %METADATA%} and {@code %CEL%} are written as unknown).
     */
    static final Set<String> FORMATTER_TYPES = Set.of(
            "envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery",
            "envoy.extensions.formatter.metadata.v3.Metadata", "envoy.extensions.formatter.cel.v3.Cel");

    /** A {@code formatters} entry: one of {@link #FORMATTER_TYPES} (which have no fields). */
    private static Void formatter(io.envoyproxy.envoy.config.core.v3.TypedExtensionConfig f) {
        String type = CoreParsers.configType(f.getTypedConfig());
        if (!FORMATTER_TYPES.contains(type)) {
            throw new FieldError("typed_config", (type.isEmpty() ? f.getName() : type)
                    + " is not supported by Inmesh (expected one of " + new TreeSet<>(FORMATTER_TYPES) + ")");
        }
        return null;
    }

    /** A text format, checked now so that a bad one is refused with the configuration; empty is Envoy's default. */
    private static AccessLogConfig.Format text(String format, boolean omit) {
        return checkedText(format.isEmpty() ? AccessLogConfig.ENVOY_DEFAULT_FORMAT : format, omit, "format");
    }

    /** A text format, checked to compile; a bad one is refused under {@code field}, the field that holds it. */
    private static AccessLogConfig.Format checkedText(String format, boolean omit, String field) {
        AccessLogConfig.Format f = new AccessLogConfig.Text(format, omit);
        try {
            AccessLogs.validate(f);
        } catch (IllegalArgumentException e) {
            throw new FieldError(field, e.getMessage());
        }
        return f;
    }

    private static AccessLogConfig.Format json(java.util.Map<String, Object> format, boolean omit, String field) {
        AccessLogConfig.Format f = Fields.at(field, () -> new AccessLogConfig.Json(format, omit));
        try {
            AccessLogs.validate(f);
        } catch (IllegalArgumentException e) {
            throw new FieldError(field, e.getMessage());
        }
        return f;
    }

    static AccessLogConfig.Filter filter(AccessLogFilter f) {
        return switch (f.getFilterSpecifierCase()) {
            case STATUS_CODE_FILTER -> Fields.at("status_code_filter.comparison", () -> {
                ComparisonFilter c = f.getStatusCodeFilter().getComparison();
                return new AccessLogConfig.StatusCode(op(c), value(c));
            });
            case DURATION_FILTER -> Fields.at("duration_filter.comparison", () -> {
                ComparisonFilter c = f.getDurationFilter().getComparison();
                return new AccessLogConfig.RequestDuration(op(c), value(c));
            });
            case NOT_HEALTH_CHECK_FILTER -> new AccessLogConfig.NotHealthCheck();
            case TRACEABLE_FILTER -> new AccessLogConfig.Traceable();
            case RUNTIME_FILTER -> Fields.at("runtime_filter", () -> {
                var r = f.getRuntimeFilter();
                if (r.getRuntimeKey().isEmpty()) {
                    // Envoy's validation: RuntimeFilter.runtime_key has min_len 1
                    throw new FieldError("runtime_key", "missing (expected: the runtime key, 1 character or more)");
                }
                // the runtime key is not read (the runtime feeds routes only): its default, percent_sampled, else
                // Envoy's 0 of 100
                long num = r.hasPercentSampled() ? Integer.toUnsignedLong(r.getPercentSampled().getNumerator()) : 0;
                long den = !r.hasPercentSampled() ? 100 : switch (r.getPercentSampled().getDenominator()) {
                    case HUNDRED -> 100;
                    case TEN_THOUSAND -> 10_000;
                    case MILLION -> 1_000_000;
                    case UNRECOGNIZED -> throw new FieldError("percent_sampled.denominator", "unknown");
                };
                return new AccessLogConfig.Sampled(r.getRuntimeKey(), Math.min(num, den), den,
                        r.getUseIndependentRandomness());
            });
            case AND_FILTER -> new AccessLogConfig.And(Fields.each("and_filter.filters",
                    f.getAndFilter().getFiltersList(), AccessLogParser::filter));
            case OR_FILTER -> new AccessLogConfig.Or(Fields.each("or_filter.filters",
                    f.getOrFilter().getFiltersList(), AccessLogParser::filter));
            case HEADER_FILTER -> new AccessLogConfig.Header(Fields.at("header_filter.header",
                    () -> RouteConfigurationParser.headerMatcher(f.getHeaderFilter().getHeader())));
            case RESPONSE_FLAG_FILTER -> Fields.at("response_flag_filter.flags", () -> {
                for (String flag : f.getResponseFlagFilter().getFlagsList()) {
                    if (!ENVOY_FLAGS.contains(flag)) {
                        throw new FieldError("", flag + " (expected one of Envoy's response flags: " + ENVOY_FLAGS
                                + ")");
                    }
                }
                return new AccessLogConfig.ResponseFlags(Set.copyOf(f.getResponseFlagFilter().getFlagsList()));
            });
            case GRPC_STATUS_FILTER -> Fields.at("grpc_status_filter.statuses", () -> {
                Set<Integer> statuses = new TreeSet<>();
                for (int s : f.getGrpcStatusFilter().getStatusesValueList()) {
                    if (s < 0 || s > 16) {
                        throw new FieldError("", s + " (expected: 0 to 16)");
                    }
                    statuses.add(s);
                }
                return new AccessLogConfig.GrpcStatus(statuses, f.getGrpcStatusFilter().getExclude());
            });
            case EXTENSION_FILTER -> Fields.at("extension_filter", () -> extension(f.getExtensionFilter()));
            case METADATA_FILTER, LOG_TYPE_FILTER -> throw new FieldError(
                    f.getFilterSpecifierCase().name().toLowerCase(java.util.Locale.ROOT),
                    "not supported by Inmesh (Inmesh keeps no dynamic metadata and writes request entries only)");
            case FILTERSPECIFIER_NOT_SET -> throw new FieldError("filter_specifier", "missing");
        };
    }

    private static AccessLogConfig.Filter extension(io.envoyproxy.envoy.config.accesslog.v3.ExtensionFilter e) {
        if (!e.getTypedConfig().getTypeUrl().equals(CEL)) {
            throw new FieldError("typed_config", e.getTypedConfig().getTypeUrl() + " is not supported by Inmesh "
                    + "(expected: " + CEL + ")");
        }
        var cel = RouteConfigurationParser.unpack(e.getTypedConfig(),
                io.envoyproxy.envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter.class, "typed_config");
        AccessLogConfig.Filter f = new AccessLogConfig.Cel(cel.getExpression());
        try {
            AccessLogs.validate(f);
        } catch (IllegalArgumentException ex) {
            throw new FieldError("typed_config.expression", ex.getMessage());
        }
        return f;
    }

    /** Envoy's response flags, as its {@code response_flag_filter} takes them. */
    static final Set<String> ENVOY_FLAGS = Set.of("LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI",
            "RL", "UAEX", "RLSE", "DC", "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM",
            "DF", "DO", "DR", "UDO");

    private static AccessLogConfig.Op op(ComparisonFilter c) {
        return switch (c.getOp()) {
            case EQ -> AccessLogConfig.Op.EQ;
            case GE -> AccessLogConfig.Op.GE;
            case LE -> AccessLogConfig.Op.LE;
            case UNRECOGNIZED -> throw new FieldError("op", "unknown (expected: EQ, GE or LE)");
        };
    }

    /** The comparison's value: the runtime key's default (the runtime, which feeds routes only, is not read). */
    private static long value(ComparisonFilter c) {
        if (!c.hasValue()) {
            throw new FieldError("value", "missing");
        }
        if (c.getValue().getRuntimeKey().isEmpty()) {
            // Envoy's validation: core.v3.RuntimeUInt32.runtime_key has min_len 1
            throw new FieldError("value.runtime_key", "missing (expected: the runtime key, 1 character or more)");
        }
        return Integer.toUnsignedLong(c.getValue().getDefaultValue());
    }
}
