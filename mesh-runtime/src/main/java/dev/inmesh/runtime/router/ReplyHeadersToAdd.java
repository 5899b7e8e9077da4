package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import io.vertx.core.MultiMap;
import java.util.List;

/**
 * A filter's own {@code response_headers_to_add} for the local reply it makes, with their formats compiled once with
 * the filter: applied over the reply's headers as the filter's {@code modify_headers} applies them, after the route's
 * response header rules and what the reply already has.
 *
 * @param add the headers, by their append actions
 * @param formats their values that are formats, compiled
 */
public record ReplyHeadersToAdd(List<HeaderValueOption> add, HeaderFormats formats) {
    /** The headers of a filter's config, compiled; null when there are none. */
    static ReplyHeadersToAdd compile(List<HeaderValueOption> add) {
        return add.isEmpty() ? null : new ReplyHeadersToAdd(add, HeaderFormats.compile(List.of(add)));
    }

    /** Whether a value is a format: one that reads the request. */
    boolean formatsHeaders() {
        return !formats.isEmpty();
    }

    /**
     * Applies them to {@code headers}, the reply's so far; their values' command operators read {@code request}
     * (null: nothing known) with the reply's {@code status} and those headers.
     */
    public void applyOn(MultiMap headers, int status, AccessLogEntry.Source request) {
        HeaderMutator.apply(List.of(), add, new MultiMapHeaders(headers), formats,
                formats.reading(request, status, headers));
    }
}
