package dev.inmesh.runtime.accesslog;

import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.listener.LocalReplyConfig;
import dev.inmesh.runtime.router.HeaderFormats;
import dev.inmesh.runtime.router.HeaderMutator;
import dev.inmesh.runtime.router.MultiMapHeaders;
import io.vertx.core.MultiMap;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Predicate;

/**
 * An HTTP connection manager's {@code local_reply_config} ({@link LocalReplyConfig}), compiled once with its snapshot:
 * rewrites the answers the proxy gives itself as Envoy's {@code LocalReplyImpl::rewrite} does. It runs after the
 * route's response header rules and the replying filter's own headers, and before a gRPC request's answer becomes a
 * trailers-only response (which then carries the rewritten status and body) and before the encoding filters.
 *
 * <p>The first mapper whose filter takes the reply (evaluated with the reply's original status) applies, in this
 * order: its {@code body} replaces the reply's, its {@code headers_to_add} are added, its {@code status_code} replaces
 * the status, and its {@code body_format_override} is the format; without one, {@code body_format} formats every
 * reply. Formats see the rewritten status ({@code %RESPONSE_CODE%}) and the body so far ({@code %LOCAL_REPLY_BODY%}).
 */
public final class LocalReply {
    private static final String CONTENT_TYPE = "content-type";
    private static final String CONTENT_LENGTH = "content-length";
    private final List<Mapper> mappers;
    /** The {@code body_format}, or null: the body as it is, {@code text/plain}. */
    private final BodyFormat bodyFormat;

    private record Mapper(Predicate<AccessLogEntry> filter, Integer status, String body,
                          List<HeaderValueOption> headers, HeaderFormats formats, BodyFormat format) {}

    private record BodyFormat(AccessLogs.LineFormat format, String contentType) {
        static BodyFormat of(LocalReplyConfig.BodyFormat f) {
            return f == null ? null : new BodyFormat(AccessLogs.format(f.format()), f.effectiveContentType());
        }
    }

    /**
     * What a local reply becomes.
     *
     * @param status its status
     * @param body its body
     * @param contentType the content type of that body: the format's, else {@code text/plain}
     * @param bodyChanged whether the body is no longer the one the reply was made with
     */
    public record Rewritten(int status, String body, String contentType, boolean bodyChanged) {}

    private LocalReply(List<Mapper> mappers, BodyFormat bodyFormat) {
        this.mappers = mappers;
        this.bodyFormat = bodyFormat;
    }

    /**
     * Compiles a connection manager's {@code local_reply_config}; null for none.
     *
     * @throws IllegalArgumentException when a format or a filter does not compile
     */
    public static LocalReply compile(LocalReplyConfig config) {
        if (config == null) {
            return null;
        }
        List<Mapper> mappers = new ArrayList<>(config.mappers().size());
        for (LocalReplyConfig.ResponseMapper m : config.mappers()) {
            mappers.add(new Mapper(AccessLogs.filter(m.filter()), m.statusCode(), m.body(), m.headersToAdd(),
                    HeaderFormats.compile(List.of(m.headersToAdd())), BodyFormat.of(m.bodyFormatOverride())));
        }
        return new LocalReply(List.copyOf(mappers), BodyFormat.of(config.bodyFormat()));
    }

    /**
     * Rewrites a local reply of {@code status} and {@code body} and its headers {@code h} (changed in place: what the
     * route and the replying filter set) where Envoy's {@code sendLocalReply} does: after those headers, before a gRPC
     * caller's answer is made trailers-only ({@code trailersOnly}). As Envoy's, a body keeps the content type those
     * headers (or a mapper's) set, gets the format's ({@code text/plain} without a format) when none is set or when
     * the rewrite changed it and no mapper's header set one, and an empty body gets none; the
     * {@code content-length} is the new body's (none for a 204, 0 for a trailers-only answer); and a gRPC caller's
     * {@code grpc-message} is the body without the new line a JSON format ends with.
     */
    public Rewritten rewriteReply(int status, String body, MultiMap h, boolean trailersOnly,
                                  AccessLogEntry.Source request) {
        String before = h.get(CONTENT_TYPE);
        Rewritten r = rewrite(status, body, h, request);
        boolean custom = !Objects.equals(before, h.get(CONTENT_TYPE));
        String text = r.body();
        contentType(h, text.isEmpty(), r.contentType(), r.bodyChanged() && !custom);
        if (r.status() == 204) {
            h.remove(CONTENT_LENGTH);
        } else {
            h.set(CONTENT_LENGTH, Integer.toString(trailersOnly ? 0 : text.getBytes(StandardCharsets.UTF_8).length));
        }
        if (trailersOnly && text.endsWith("\n") && r.contentType().equals("application/json")) {
            return new Rewritten(r.status(), text.substring(0, text.length() - 1), r.contentType(), r.bodyChanged());
        }
        return r;
    }

    /**
     * Gives a local reply that no {@code local_reply_config} rewrote its content type, as Envoy's
     * {@code prepareLocalReply} (source/common/http/utility.cc) does after the route's header rules and the replying
     * filter's headers ({@code h}, changed in place): a body gets {@code text/plain} when they set no content type, an
     * empty body none, whatever they set.
     */
    public static void contentType(MultiMap h, boolean emptyBody) {
        contentType(h, emptyBody, "text/plain", false);
    }

    /** As {@link #contentType(MultiMap, boolean)}, a body getting {@code type}, and in any case when {@code replace}. */
    private static void contentType(MultiMap h, boolean emptyBody, String type, boolean replace) {
        if (emptyBody) {
            h.remove(CONTENT_TYPE);
        } else if (replace || !h.contains(CONTENT_TYPE)) {
            h.set(CONTENT_TYPE, type);
        }
    }

    /**
     * Rewrites a local reply of {@code status} with {@code body}, whose {@code headers} (changed in place) hold what
     * the route and the replying filter set.
     */
    public Rewritten rewrite(int status, String body, MultiMap headers, AccessLogEntry.Source request) {
        String original = body == null ? "" : body;
        String text = original;
        AccessLogEntry entry = request.entry(status, headers, text);
        BodyFormat format = bodyFormat;
        for (Mapper m : mappers) {
            if (!m.filter.test(entry)) {
                continue;
            }
            if (m.body != null) {
                text = m.body;
            }
            // the headers are added before the status changes: their rules (and their values' command operators,
            // as Envoy's mapper formats them with the reply's stream info) see the original status
            if (!m.headers.isEmpty()) {
                HeaderMutator.add(m.headers, new MultiMapHeaders(headers), m.formats, entry);
            }
            if (m.status != null) {
                status = m.status;
            }
            if (m.format != null) {
                format = m.format;
            }
            break;
        }
        if (format == null) {
            return new Rewritten(status, text, "text/plain", !text.equals(original));
        }
        String formatted = format.format.format(request.entry(status, headers, text));
        return new Rewritten(status, formatted, format.contentType, !formatted.equals(original));
    }
}
