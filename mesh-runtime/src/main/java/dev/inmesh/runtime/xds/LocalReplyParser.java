package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.listener.LocalReplyConfig;
import io.envoyproxy.envoy.config.core.v3.SubstitutionFormatString;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.ResponseMapper;
import java.util.Set;

/**
 * Parses an HTTP connection manager's {@code local_reply_config}: its {@code mappers} (each an access log filter, as
 * the {@code access_log} filters are parsed, with a {@code status_code} of 200 to 599, an inline {@code body}, literal
 * {@code headers_to_add} and a {@code body_format_override}) and its {@code body_format}. A body format's command
 * operators are the access log's; its {@code formatters} extensions and a body read from a file or the environment
 * are refused by path.
 */
final class LocalReplyParser {
    private LocalReplyParser() {}

    static LocalReplyConfig parse(
            io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.LocalReplyConfig c) {
        Fields.onlyKnown(c, Set.of("mappers", "body_format"), Set.of());
        return new LocalReplyConfig(Fields.each("mappers", c.getMappersList(), LocalReplyParser::mapper),
                c.hasBodyFormat() ? Fields.at("body_format", () -> bodyFormat(c.getBodyFormat())) : null);
    }

    private static LocalReplyConfig.ResponseMapper mapper(ResponseMapper m) {
        Fields.onlyKnown(m, Set.of("filter", "status_code", "body", "body_format_override", "headers_to_add"),
                Set.of());
        if (!m.hasFilter()) {
            throw new FieldError("filter", "missing (expected: an access log filter; Envoy requires one)");
        }
        var filter = Fields.at("filter", () -> AccessLogParser.filter(m.getFilter()));
        Integer status = null;
        if (m.hasStatusCode()) {
            long code = Integer.toUnsignedLong(m.getStatusCode().getValue());
            if (code < 200 || code > 599) {
                throw new FieldError("status_code", code + " (expected: 200 to 599, as Envoy validates it)");
            }
            status = (int) code;
        }
        String body = !m.hasBody() ? null : Fields.at("body", () -> CoreParsers.dataSource(m.getBody()));
        var headers = Fields.each("headers_to_add", m.getHeadersToAddList(), CoreParsers::headerValueOption);
        var override = m.hasBodyFormatOverride()
                ? Fields.at("body_format_override", () -> bodyFormat(m.getBodyFormatOverride())) : null;
        Integer statusCode = status;
        return Fields.record("", () -> new LocalReplyConfig.ResponseMapper(filter, statusCode, body, headers,
                override));
    }

    /**
     * A body format: its text (inline) or JSON format, {@code omit_empty_values} and {@code content_type};
     * {@code json_format_options} changes nothing here, as in the access logs (the keys are written sorted).
     */
    private static LocalReplyConfig.BodyFormat bodyFormat(SubstitutionFormatString s) {
        Fields.onlyKnown(s, Set.of("text_format", "text_format_source", "json_format", "omit_empty_values",
                "content_type"), Set.of("json_format_options"));
        return Fields.record("", () -> new LocalReplyConfig.BodyFormat(AccessLogParser.format(s),
                s.getContentType()));
    }
}
