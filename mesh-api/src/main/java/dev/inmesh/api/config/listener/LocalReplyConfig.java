package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.HeaderValueOption;
import java.util.List;

/**
 * Envoy's {@code local_reply_config} of an HTTP connection manager: how the answers the proxy gives itself (no route,
 * no healthy upstream, a timeout, a filter's refusal, a direct response, ...) are rewritten before they are sent. The
 * first mapper whose filter takes a reply applies; the body is then formatted by that mapper's
 * {@code body_format_override}, else by {@code body_format}, else left as it is.
 *
 * @param mappers the mappers, tried in order until one matches
 * @param bodyFormat the format of every local reply no matching mapper formats ({@code body_format}); null for the
 *                   body as it is, {@code text/plain}
 */
public record LocalReplyConfig(List<ResponseMapper> mappers, BodyFormat bodyFormat) {
    public LocalReplyConfig {
        mappers = Checks.list(mappers, "mappers");
    }

    /**
     * One of {@code mappers} ({@code ResponseMapper}): which replies it takes, and what it does to them, in this order
     * (Envoy's): the body is replaced, the headers are added, the status is rewritten, and the body is formatted.
     *
     * @param filter the replies it takes, an access log filter evaluated with the reply's original status
     * @param statusCode the new status (200 to 599), or null to keep the reply's
     * @param body the new body ({@code %LOCAL_REPLY_BODY%} in the format), or null to keep the reply's
     * @param headersToAdd the headers added to the reply, with their append actions; their values are literal
     * @param bodyFormatOverride the format of the replies it takes, over {@code body_format}; null for none
     */
    public record ResponseMapper(AccessLogConfig.Filter filter, Integer statusCode, String body,
                                 List<HeaderValueOption> headersToAdd, BodyFormat bodyFormatOverride) {
        public ResponseMapper {
            Checks.nonNull(filter, "filter");
            if (statusCode != null) {
                Checks.range(statusCode, 200, 599, "status_code");
            }
            headersToAdd = Checks.list(headersToAdd, "headers_to_add");
            Checks.check(headersToAdd.size() <= 1000, "headers_to_add", headersToAdd.size(), "at most 1000");
        }
    }

    /**
     * A local reply's body format ({@code SubstitutionFormatString}): a text or a JSON format whose command operators
     * are the access log's, with {@code %LOCAL_REPLY_BODY%} the reply's body, and the reply's content type.
     *
     * @param format the format
     * @param contentType the reply's {@code content-type}, or null for {@code application/json} with a JSON format and
     *                    {@code text/plain} with a text one
     */
    public record BodyFormat(AccessLogConfig.Format format, String contentType) {
        public BodyFormat {
            Checks.nonNull(format, "format");
            contentType = contentType == null || contentType.isEmpty() ? null
                    : Checks.headerText(contentType, "content_type");
        }

        /** The {@code content-type} of the replies it formats. */
        public String effectiveContentType() {
            return contentType != null ? contentType
                    : format instanceof AccessLogConfig.Json ? "application/json" : "text/plain";
        }
    }
}
