package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.MetadataMatcher;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.extauthz.ExtAuthz;
import dev.inmesh.api.config.route.ExtAuthzPerRoute;
import dev.inmesh.runtime.upstream.Exchange.Answer;
import dev.inmesh.runtime.router.RbacFilter.Subject;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.auth.v3.AttributeContext;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpMethod;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;
import java.util.function.UnaryOperator;

/**
 * Envoy's external authorization HTTP filter ({@code envoy.filters.http.ext_authz}), compiled once per snapshot from
 * its {@link ExtAuthz} config. It checks a request only when its {@code filter_enabled_metadata} matches (Istio's:
 * the shadow RBAC filter before it matched one of the CUSTOM policies), by asking the authorizer through the named
 * cluster, with a host its load balancer picks and the cluster's pooled connections, never blocking:
 * <ul>
 *   <li>an HTTP authorizer gets the request's method, {@code path_prefix} + path, {@code :authority},
 *       {@code authorization} and the allowed headers, {@code headers_to_add}, and the body held under
 *       {@code with_request_body} (else none); {@code 200} allows (the
 *       allowed upstream headers replace or join the request's, {@code x-envoy-auth-headers-to-remove} names headers
 *       the request loses, the allowed client headers on success are added to the response), a {@code 5xx} is an
 *       error, any other status denies, with its body and allowed client headers;</li>
 *   <li>a gRPC authorizer gets {@code envoy.service.auth.v3.Authorization/Check} with the request's attributes (its
 *       allowed headers, all by default); status {@code OK} allows with {@code ok_response}'s header changes (its
 *       response headers added, set, added if absent or overwritten if present as their {@code append} or
 *       {@code append_action} say) and query parameter changes (the request's new path), any other denies with
 *       {@code denied_response} (403 by default); a failed call is an error.</li>
 * </ul>
 * Under {@code with_request_body} the check waits for the request's body ({@link RequestBody}): until it is whole, or,
 * with {@code allow_partial_message}, until {@code max_request_bytes} came, of which the check gets the first
 * {@code max_request_bytes} with {@code x-envoy-auth-partial-body} saying whether more came; without it a longer body
 * is answered {@code 413} unchecked. A request without a body, or an upgrade, is checked at once; the body goes on
 * whole after the check. No answer within the timeout, no host, or a failed connection is an error: the request goes
 * on under {@code failure_mode_allow}, else is answered {@code status_on_error} with no body. Denials and errors
 * answer with response flag UAEX and details {@code ext_authz_denied} or {@code ext_authz_error}, counted in
 * {@code ext_authz.ok}, {@code denied}, {@code error} and {@code failure_mode_allowed}. Immutable and thread-safe.
 */
public final class ExtAuthzFilter {
    /** The filter's canonical name. */
    public static final String NAME = "envoy.filters.http.ext_authz";
    /** The response code details of a request the authorizer denied. */
    public static final String DENIED_DETAILS = "ext_authz_denied";
    /** The response code details of a request refused because the authorizer could not decide it. */
    public static final String ERROR_DETAILS = "ext_authz_error";
    /** The body and details of Envoy's connection manager's 413 for a body over a filter's buffer limit. */
    public static final String TOO_LARGE_BODY = "Payload Too Large";
    public static final String TOO_LARGE_DETAILS = "request_payload_too_large";
    /**
     * A request whose body is longer than {@code max_request_bytes} without {@code allow_partial_message}: Envoy's
     * connection manager answers {@code 413} once the filter's buffer overflows, and the authorizer is not asked.
     */
    /** The header a request let through on an error carries with {@code failure_mode_allow_header_add}. */
    static final String FAILURE_MODE_ALLOWED_HEADER = "x-envoy-auth-failure-mode-allowed";

    private static final Outcome TOO_LARGE = new Outcome(new RbacFilter.Denial(413, TOO_LARGE_BODY,
            TOO_LARGE_DETAILS, null), List.of(), false);
    /** The header of an HTTP authorizer's allowing answer that names request headers to remove. */
    static final String HEADERS_TO_REMOVE = "x-envoy-auth-headers-to-remove";
    static final String CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";
    /**
     * The header Envoy's filter puts in a check with a body to say whether the body was cut; a client's is never
     * passed to the authorizer, which must not take it for the proxy's.
     */
    private static final String PARTIAL_BODY = "x-envoy-auth-partial-body";
    /** The request header Envoy's HTTP filter reads the {@code source.service} of its check request from. */
    private static final String DOWNSTREAM_SERVICE_CLUSTER = "x-envoy-downstream-service-cluster";

    /** The headers an HTTP authorizer always gets, as Envoy's HTTP client adds them to the allowed ones. */
    private static final Set<String> HTTP_ALWAYS = Set.of("authorization", ":method", ":path", ":authority", "host");
    /** The headers of a denying answer always passed on when {@code allowed_client_headers} names some. */
    private static final Set<String> CLIENT_ALWAYS = Set.of("www-authenticate", "location");
    /** Headers of an answer never copied: the local reply and the connection set their own. */
    private static final Set<String> NEVER_COPIED = Set.of("content-length", "transfer-encoding", "connection",
            "keep-alive", "host", "te", "upgrade");

    private final String name;
    private final ExtAuthz config;
    private final Predicate<String> allowedHeaders;
    private final Predicate<String> upstream;
    private final Predicate<String> upstreamAppend;
    private final Predicate<String> client;
    private final Predicate<String> clientOnSuccess;
    private final java.util.function.BiPredicate<Subject, Map<String, Object>> enabled;

    private ExtAuthzFilter(String name, ExtAuthz config) {
        this.name = name;
        this.config = config;
        Predicate<String> listed = matchers(config.allowedHeaders());
        boolean http = config.service() instanceof ExtAuthz.HttpService;
        this.allowedHeaders = http ? n -> HTTP_ALWAYS.contains(n) || listed.test(n)
                : config.allowedHeaders().isEmpty() ? n -> true : listed;
        if (config.service() instanceof ExtAuthz.HttpService h) {
            this.upstream = matchers(h.allowedUpstreamHeaders());
            this.upstreamAppend = matchers(h.allowedUpstreamHeadersToAppend());
            Predicate<String> c = matchers(h.allowedClientHeaders());
            this.client = h.allowedClientHeaders().isEmpty() ? n -> true : n -> CLIENT_ALWAYS.contains(n) || c.test(n);
            this.clientOnSuccess = matchers(h.allowedClientHeadersOnSuccess());
        } else {
            this.upstream = n -> false;
            this.upstreamAppend = n -> false;
            this.client = n -> true;
            this.clientOnSuccess = n -> false;
        }
        this.enabled = config.filterEnabledMetadata() == null ? (s, rbac) -> true
                : metadata(config.filterEnabledMetadata());
    }

    /** One filter, compiled, named as Envoy's canonical name. */
    public static ExtAuthzFilter compile(ExtAuthz config) {
        return compile(NAME, config);
    }

    /** One filter, compiled; {@code name} (its name in the chain) is how routes name their overrides of it. */
    public static ExtAuthzFilter compile(String name, ExtAuthz config) {
        return new ExtAuthzFilter(name, config);
    }

    /**
     * What a request's route says to this filter ({@code ExtAuthzPerRoute}, by the filter's name), as Envoy's
     * filter reads it: the most specific entry (the route's, else its virtual host's) decides whether the filter
     * checks the request and whether it holds its body; the context extensions are the virtual host's with the
     * route's over them, as Envoy merges them from the least specific entry to the most.
     *
     * @param result what the route table decided for the request (a routed one: no route, no check)
     */
    RouteSettings settings(RouteResult result) {
        dev.inmesh.api.config.route.VirtualHost vh = result.virtualHost();
        ExtAuthzPerRoute host = vh == null ? null : vh.extAuthz().get(name);
        dev.inmesh.api.config.route.Route r = RouteResult.routeOf(result);
        ExtAuthzPerRoute route = r == null ? null : r.extAuthz().get(name);
        ExtAuthzPerRoute specific = route != null ? route : host;
        if (specific == null) {
            return RouteSettings.DEFAULT;
        }
        Map<String, String> extensions = specific.contextExtensions();
        if (route != null && host != null && !host.contextExtensions().isEmpty()) {
            Map<String, String> merged = new java.util.HashMap<>(host.contextExtensions());
            merged.putAll(route.contextExtensions());
            extensions = merged;
        }
        return new RouteSettings(specific.disabled(), extensions, specific.disableRequestBodyBuffering());
    }

    /**
     * A filter's settings for one request's route ({@link #settings}): whether it does not check it
     * ({@code disabled}), the context extensions a gRPC authorizer gets, and whether it holds no body for it
     * ({@code disable_request_body_buffering}).
     */
    record RouteSettings(boolean disabled, Map<String, String> contextExtensions, boolean holdsNoBody) {
        /** No override: the filter's own config. */
        static final RouteSettings DEFAULT = new RouteSettings(false, Map.of(), false);
    }

    /** The filter's config. */
    public ExtAuthz config() {
        return config;
    }

    /**
     * Whether the filter checks this request: its {@code filter_enabled_metadata} matches, or it has none.
     *
     * @param rbacMetadata the dynamic metadata the RBAC filters before it wrote
     */
    boolean enabled(Subject s, Map<String, Object> rbacMetadata) {
        return enabled.test(s, rbacMetadata);
    }

    /**
     * What the authorizer decided: null {@code denial} when the request goes on, with the changes to its response's
     * headers ({@code responseHeaders}); {@code reroute} when the authorizer changed the request's headers or query
     * and {@code clear_route_cache} asks for the route to be chosen again; {@code path} the request's new path when
     * the authorizer changed its query parameters, else null.
     */
    record Outcome(RbacFilter.Denial denial, List<ResponseHeader> responseHeaders, boolean reroute, String path) {
        static final Outcome ALLOWED = new Outcome(null, List.of(), false, null);

        Outcome(RbacFilter.Denial denial, List<ResponseHeader> responseHeaders, boolean reroute) {
            this(denial, responseHeaders, reroute, null);
        }
    }

    /**
     * A change an allowing authorizer asks for on the response the client gets: an HTTP authorizer's
     * {@code allowed_client_headers_on_success} are added; a gRPC authorizer's {@code response_headers_to_add} follow
     * their {@code append} ({@code true} adds, {@code false} sets) or, without it, their {@code append_action}, as
     * Envoy's gRPC client sorts them.
     */
    public record ResponseHeader(String name, String value, Action action) {
        /** What Envoy's filter does with such a header on the response, in this order of the kinds. */
        public enum Action {
            /** Added beside any of the same name ({@code APPEND_IF_EXISTS_OR_ADD}, {@code append: true}). */
            ADD,
            /** Put in place of any of the same name ({@code OVERWRITE_IF_EXISTS_OR_ADD}, {@code append: false}). */
            SET,
            /** Added only when the response has none of that name ({@code ADD_IF_ABSENT}). */
            ADD_IF_ABSENT,
            /** Put in place of those of that name, only when there are some ({@code OVERWRITE_IF_EXISTS}). */
            OVERWRITE_IF_EXISTS
        }

        /**
         * The changes of {@code first}, then those of {@code then} (either null or empty for none), as one list: the
         * headers an authorizer and then the rate limit service ask for on a response.
         */
        public static List<ResponseHeader> concat(List<ResponseHeader> first, List<ResponseHeader> then) {
            if (then == null || then.isEmpty()) {
                return first == null ? List.of() : first;
            }
            if (first == null || first.isEmpty()) {
                return then;
            }
            List<ResponseHeader> all = new java.util.ArrayList<>(first.size() + then.size());
            all.addAll(first);
            all.addAll(then);
            return all;
        }

        /**
         * Applies the changes to a response's headers as Envoy's ext_authz filter does when it encodes them: all the
         * added ones, then the set ones, then those added if absent, then those overwritten if present. Null or
         * empty: nothing.
         */
        public static void applyAll(MultiMap h, List<ResponseHeader> changes) {
            if (changes == null || changes.isEmpty()) {
                return;
            }
            for (Action kind : Action.values()) {
                for (ResponseHeader c : changes) {
                    if (c.action != kind) {
                        continue;
                    }
                    switch (kind) {
                        case ADD -> h.add(c.name, c.value);
                        case SET -> h.set(c.name, c.value);
                        case ADD_IF_ABSENT -> {
                            if (!h.contains(c.name)) {
                                h.add(c.name, c.value);
                            }
                        }
                        case OVERWRITE_IF_EXISTS -> {
                            if (h.contains(c.name)) {
                                h.set(c.name, c.value);
                            }
                        }
                    }
                }
            }
        }

        /** A gRPC authorizer's {@code response_headers_to_add} entry, sorted as Envoy's gRPC client sorts it. */
        static ResponseHeader of(HeaderValueOption o) {
            Action action;
            if (o.hasAppend()) {
                action = o.getAppend().getValue() ? Action.ADD : Action.SET;
            } else {
                action = switch (o.getAppendAction()) {
                    case ADD_IF_ABSENT -> Action.ADD_IF_ABSENT;
                    case OVERWRITE_IF_EXISTS -> Action.OVERWRITE_IF_EXISTS;
                    case OVERWRITE_IF_EXISTS_OR_ADD -> Action.SET;
                    default -> Action.ADD; // APPEND_IF_EXISTS_OR_ADD, the field's default
                };
            }
            return new ResponseHeader(o.getHeader().getKey().toLowerCase(Locale.ROOT), ExtAuthzFilter.value(o), action);
        }
    }

    /**
     * Asks the authorizer about a request and applies its answer to the request's headers.
     *
     * @param s the request and its connection
     * @param headers the request's headers, which an allowing answer changes
     * @param clusters where the authorizer's cluster is found
     * @param stats the connection manager's statistics, or null
     * @return what it decided; failed ({@link RequestBody.Gone}) only when the caller left while it waited for the
     *     request's body, as Envoy's filter, destroyed with its stream, asks nothing
     */
    Future<Outcome> check(Subject s, MutableHeaders headers, ClusterManager clusters, DownstreamStats stats) {
        return check(s, headers, clusters, stats, RouteSettings.DEFAULT);
    }

    /**
     * As {@link #check(Subject, MutableHeaders, ClusterManager, DownstreamStats)}, with what the request's route
     * says to the filter ({@link #settings}; its {@code disabled} is the caller's to honour): the context extensions
     * sent, and no body held where it says {@code disable_request_body_buffering}.
     */
    Future<Outcome> check(Subject s, MutableHeaders headers, ClusterManager clusters, DownstreamStats stats,
                          RouteSettings route) {
        ExtAuthz.BufferSettings b = route.holdsNoBody() ? null : config.withRequestBody();
        Map<String, String> extensions = route.contextExtensions();
        if (b == null || s.request() == null || upgrade(s.request())) {
            return ask(s, headers, null, extensions, clusters, stats);
        }
        // as Envoy's filter: the check waits for the body, all of it or, allowing a partial message, its first
        // max_request_bytes; a longer body without that is refused as Envoy's connection manager refuses a body over
        // the filter's buffer limit, without asking
        long max = b.maxRequestBytes();
        long hold = b.allowPartialMessage() ? max : RequestBody.pastLimit(max);
        return s.request().requestBody().hold(hold).compose(body -> {
            if (!b.allowPartialMessage() && RequestBody.tooLarge(body, max, stats)) {
                return Future.succeededFuture(TOO_LARGE);
            }
            return ask(s, headers, body, extensions, clusters, stats);
        });
    }

    /**
     * Whether a request opens a stream of bytes, a WebSocket upgrade (Envoy's filter holds no body of one, nor of an
     * HTTP/2 extended CONNECT) or a CONNECT tunnel: its body lasts as long as the connection.
     */
    static boolean upgrade(RouteRequest r) {
        return "websocket".equalsIgnoreCase(r.header("upgrade")) || "CONNECT".equals(r.method());
    }

    /**
     * Asks the authorizer, with what was held of the body ({@code body}; null: none) and, a gRPC one, the route's
     * context extensions (an HTTP authorizer gets none, as Envoy applies them to a {@code grpc_service} only).
     */
    private Future<Outcome> ask(Subject s, MutableHeaders headers, Buffer body, Map<String, String> extensions,
                                ClusterManager clusters, DownstreamStats stats) {
        Future<Answer> call;
        if (config.service() instanceof ExtAuthz.GrpcService g) {
            call = ClusterCall.grpc(clusters, g.cluster(), g.authority(), CHECK_PATH,
                    checkRequest(s, headers, body, extensions), g.timeout());
        } else {
            ExtAuthz.HttpService h = (ExtAuthz.HttpService) config.service();
            RouteRequest r = s.request();
            call = ClusterCall.send(clusters, h.cluster(), false, ro -> {
                ro.setMethod(HttpMethod.valueOf(r.method())).setURI(h.pathPrefix() + r.path());
                Map<String, String> joined = new java.util.LinkedHashMap<>();
                putAllowed(joined, headers, false);
                joined.forEach(ro::addHeader);
                if (body != null) {
                    ro.putHeader(PARTIAL_BODY, String.valueOf(partial(body)));
                }
                for (ExtAuthz.Header add : h.headersToAdd()) {
                    ro.putHeader(add.key(), add.value());
                }
            }, body == null ? Buffer.buffer() : sent(body), r.authority(), h.timeout());
        }
        return call.transform(ar -> {
            if (ar.failed()) {
                return Future.succeededFuture(error(headers, stats));
            }
            Outcome o = config.service() instanceof ExtAuthz.GrpcService
                    ? grpcAnswer(ar.result(), headers, s.request() == null ? null : s.request().path(), stats)
                    : httpAnswer(ar.result(), headers, stats);
            return Future.succeededFuture(o);
        });
    }

    /**
     * An error: the request goes on under {@code failure_mode_allow} (with {@code failure_mode_allow_header_add},
     * adding {@code x-envoy-auth-failure-mode-allowed: true} to its {@code headers}, as Envoy's filter adds it; null:
     * a connection's check), else is answered {@code status_on_error}.
     */
    private Outcome error(MutableHeaders headers, DownstreamStats stats) {
        if (stats != null) {
            stats.extAuthz().error(config.failureModeAllow());
        }
        if (config.failureModeAllow() && config.failureModeAllowHeaderAdd() && headers != null) {
            headers.add(FAILURE_MODE_ALLOWED_HEADER, "true");
        }
        return config.failureModeAllow() ? Outcome.ALLOWED
                : new Outcome(new RbacFilter.Denial(config.statusOnError(), "", ERROR_DETAILS, null, List.of(), true),
                        List.of(), false);
    }

    private Outcome denied(int status, String body, List<String> responseHeaders, DownstreamStats stats) {
        if (stats != null) {
            stats.extAuthz().denied();
        }
        return new Outcome(new RbacFilter.Denial(status, body, DENIED_DETAILS, null, responseHeaders, true),
                List.of(), false);
    }

    /** An allowing answer, which {@code changed} the request's headers or (to {@code path}, else null) its query. */
    private Outcome allowed(List<ResponseHeader> responseHeaders, boolean changed, String path,
                            DownstreamStats stats) {
        if (stats != null) {
            stats.extAuthz().ok();
        }
        boolean reroute = changed && config.clearRouteCache();
        return responseHeaders.isEmpty() && !reroute && path == null ? Outcome.ALLOWED
                : new Outcome(null, List.copyOf(responseHeaders), reroute, path);
    }

    private Outcome httpAnswer(Answer a, MutableHeaders headers, DownstreamStats stats) {
        if (a.status() >= 500 && a.status() <= 599) {
            return error(headers, stats);
        }
        if (a.status() != 200) {
            List<String> toClient = new ArrayList<>();
            a.headers().forEach((name, value) -> {
                String n = name.toLowerCase(Locale.ROOT);
                if (!NEVER_COPIED.contains(n) && !n.equals(HEADERS_TO_REMOVE) && client.test(n)) {
                    toClient.add(n);
                    toClient.add(value);
                }
            });
            return denied(a.status(), a.body().toString(), toClient, stats);
        }
        boolean[] changed = {false};
        List<ResponseHeader> toClient = new ArrayList<>();
        a.headers().forEach((name, value) -> {
            String n = name.toLowerCase(Locale.ROOT);
            if (NEVER_COPIED.contains(n) || n.equals(HEADERS_TO_REMOVE)) {
                return;
            }
            if (upstream.test(n)) {
                headers.set(n, value);
                changed[0] = true;
            }
            if (upstreamAppend.test(n)) {
                headers.add(n, value);
                changed[0] = true;
            }
            if (clientOnSuccess.test(n)) {
                toClient.add(new ResponseHeader(n, value, ResponseHeader.Action.ADD)); // Envoy adds them
            }
        });
        for (String names : a.headers().getAll(HEADERS_TO_REMOVE)) {
            for (String n : names.split(",")) {
                String name = n.trim().toLowerCase(Locale.ROOT);
                if (!name.isEmpty() && !name.startsWith(":") && !name.equals("host")) {
                    headers.remove(name);
                    changed[0] = true;
                }
            }
        }
        return allowed(toClient, changed[0], null, stats);
    }

    /** @param path the request's path with its query; null for a connection */
    private Outcome grpcAnswer(Answer a, MutableHeaders headers, String path, DownstreamStats stats) {
        CheckResponse r = ClusterCall.message(a, CheckResponse.parser());
        if (r == null) {
            return error(headers, stats);
        }
        if (r.getStatus().getCode() != 0) {
            int status = 403;
            List<String> toClient = new ArrayList<>();
            String body = "";
            if (r.hasDeniedResponse()) {
                var d = r.getDeniedResponse();
                if (d.getStatus().getCodeValue() > 0) {
                    status = d.getStatus().getCodeValue();
                }
                for (HeaderValueOption o : d.getHeadersList()) {
                    toClient.add(o.getHeader().getKey().toLowerCase(Locale.ROOT));
                    toClient.add(value(o));
                }
                body = d.getBody();
            }
            return denied(status, body, toClient, stats);
        }
        boolean changed = false;
        String newPath = null;
        List<ResponseHeader> toClient = new ArrayList<>();
        if (r.hasOkResponse()) {
            var ok = r.getOkResponse();
            for (HeaderValueOption o : ok.getHeadersList()) {
                String n = o.getHeader().getKey().toLowerCase(Locale.ROOT);
                if (o.hasAppend() && o.getAppend().getValue()) {
                    // as Envoy's: joined to the request's (first) value with a comma, nothing when it has none
                    List<String> values = headers.getAll(n);
                    if (!values.isEmpty()) {
                        headers.set(n, values.get(0) + "," + value(o));
                        for (int i = 1; i < values.size(); i++) {
                            headers.add(n, values.get(i));
                        }
                    }
                } else {
                    headers.set(n, value(o));
                }
                changed = true;
            }
            for (String n : ok.getHeadersToRemoveList()) {
                String name = n.toLowerCase(Locale.ROOT);
                if (!name.startsWith(":") && !name.equals("host")) {
                    headers.remove(name);
                    changed = true;
                }
            }
            for (HeaderValueOption o : ok.getResponseHeadersToAddList()) {
                toClient.add(ResponseHeader.of(o));
            }
            if (path != null && (ok.getQueryParametersToSetCount() > 0 || ok.getQueryParametersToRemoveCount() > 0)) {
                newPath = withQuery(path, ok.getQueryParametersToSetList(), ok.getQueryParametersToRemoveList());
                changed = true;
            }
        }
        return allowed(toClient, changed, newPath, stats);
    }

    /**
     * A path whose query an allowing gRPC authorizer changed, as Envoy's filter rewrites {@code :path}: the query's
     * parameters (split at {@code &} and the first {@code =}, not decoded) by name, in name order, each
     * {@code query_parameters_to_set} one replacing every value of its name, each {@code query_parameters_to_remove}
     * name dropped; no {@code ?} once none is left.
     */
    static String withQuery(String path, List<io.envoyproxy.envoy.config.core.v3.QueryParameter> set,
                            List<String> remove) {
        int q = path.indexOf('?');
        Map<String, List<String>> params = q < 0 ? new java.util.TreeMap<>()
                : QueryParameters.parse(path.substring(q + 1), UnaryOperator.identity());
        for (var p : set) {
            params.put(p.getKey(), List.of(p.getValue()));
        }
        for (String name : remove) {
            params.remove(name);
        }
        return QueryParameters.path(path, params);
    }

    /** A header option's value: its {@code raw_value} when set, else its {@code value}. */
    private static String value(HeaderValueOption o) {
        return o.getHeader().getRawValue().isEmpty() ? o.getHeader().getValue()
                : o.getHeader().getRawValue().toStringUtf8();
    }

    /** Whether the body the check gets is cut: more of it was held than {@code max_request_bytes}. */
    private boolean partial(Buffer held) {
        return held.length() > config.withRequestBody().maxRequestBytes();
    }

    /** What the check gets of the body held: its first {@code max_request_bytes}. */
    private Buffer sent(Buffer held) {
        long max = config.withRequestBody().maxRequestBytes();
        return held.length() > max ? held.getBuffer(0, (int) max) : held;
    }

    /**
     * A body as the text of a check's {@code body}, as Envoy sanitizes it: valid UTF-8 as it is, each byte of an
     * invalid sequence (a character cut at {@code max_request_bytes} too) as {@code !}.
     */
    static String utf8Text(byte[] bytes) {
        java.nio.charset.CharsetDecoder d = java.nio.charset.StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(java.nio.charset.CodingErrorAction.REPORT)
                .onUnmappableCharacter(java.nio.charset.CodingErrorAction.REPORT);
        java.nio.ByteBuffer in = java.nio.ByteBuffer.wrap(bytes);
        java.nio.CharBuffer out = java.nio.CharBuffer.allocate(bytes.length);
        while (d.decode(in, out, true).isError()) {
            out.put('!');
            in.position(in.position() + 1); // one byte at a time, as Envoy replaces them
        }
        d.flush(out);
        return out.flip().toString();
    }

    /** The attributes of a request (or a connection, for the network filter) a gRPC authorizer gets, as Envoy's. */
    CheckRequest checkRequest(Subject s, MutableHeaders headers) {
        return checkRequest(s, headers, null);
    }

    /**
     * The attributes of a request a gRPC authorizer gets, as Envoy's, with the body held for it ({@code body}; null:
     * none): its first {@code max_request_bytes} as {@code body} text or {@code raw_body} bytes
     * ({@code pack_as_bytes}), {@code size} the bytes that came, and {@code x-envoy-auth-partial-body} among the
     * headers saying whether the body was cut.
     */
    CheckRequest checkRequest(Subject s, MutableHeaders headers, Buffer body) {
        return checkRequest(s, headers, body, Map.of());
    }

    /**
     * As {@link #checkRequest(Subject, MutableHeaders, Buffer)}, with the route's {@code context_extensions} in
     * {@code attributes.context_extensions}.
     */
    CheckRequest checkRequest(Subject s, MutableHeaders headers, Buffer body, Map<String, String> extensions) {
        RouteRequest r = s.request();
        if (r == null) {
            // a connection: no request; as Envoy's network filter, the destination's service is the SNI
            return CheckRequest.newBuilder().setAttributes(AttributeContext.newBuilder()
                    .setSource(peer(s.peerIp(), s.peerPort(), s.peerIdentity(), null))
                    .setDestination(peer(s.localIp(), s.localPort(), s.localIdentity(), s.serverName()))).build();
        }
        // as Envoy's HTTP filter, the source's service is the x-envoy-downstream-service-cluster the request has
        List<String> service = headers.getAll(DOWNSTREAM_SERVICE_CLUSTER);
        AttributeContext.Builder attributes = AttributeContext.newBuilder()
                .setSource(peer(s.peerIp(), s.peerPort(), s.peerIdentity(), service.isEmpty() ? null : service.get(0)))
                .setDestination(peer(s.localIp(), s.localPort(), s.localIdentity(), null))
                .putAllContextExtensions(extensions);
        AttributeContext.HttpRequest.Builder http = AttributeContext.HttpRequest.newBuilder()
                .setMethod(r.method()).setPath(r.path()).setHost(r.authority() == null ? "" : r.authority())
                .setScheme(r.scheme() == null ? "http" : r.scheme());
        String id = r.header("x-request-id");
        if (id != null) {
            http.setId(id);
        }
        if (r.protocol() != null) {
            http.setProtocol(r.protocol());
        }
        java.util.Map<String, String> joined = new java.util.LinkedHashMap<>();
        putPseudo(joined, ":authority", r.authority());
        putPseudo(joined, ":path", r.path());
        putPseudo(joined, ":method", r.method());
        putPseudo(joined, ":scheme", r.scheme());
        putAllowed(joined, headers, true);
        if (body != null) {
            // size: as Envoy's, the body bytes received when the check starts (none for a check on the headers)
            http.setSize(body.length());
            byte[] sent = sent(body).getBytes();
            if (config.withRequestBody().packAsBytes()) {
                http.setRawBody(com.google.protobuf.ByteString.copyFrom(sent));
            } else {
                http.setBody(utf8Text(sent));
            }
            joined.put(PARTIAL_BODY, String.valueOf(partial(body))); // after the allowed headers: always sent
        }
        http.putAllHeaders(joined);
        // as Envoy's: when the request arrived (the stream's start), not when the authorizer is asked
        java.time.Instant start = r.startTime() == null ? java.time.Instant.now() : r.startTime();
        return CheckRequest.newBuilder().setAttributes(attributes.setRequest(AttributeContext.Request.newBuilder()
                .setTime(com.google.protobuf.Timestamp.newBuilder().setSeconds(start.getEpochSecond())
                        .setNanos(start.getNano()))
                .setHttp(http))).build();
    }

    /**
     * One side of the connection, as Envoy's check request has it: its address (with its port when known), with TLS
     * the identity of its certificate (its first URI SAN, else DNS SAN, else subject), and its service when known.
     *
     * @param identity the identities of the side's certificate; null without TLS
     * @param service the side's service; null or empty for none
     */
    private static AttributeContext.Peer peer(String ip, int port, RbacFilter.PeerIdentity identity, String service) {
        AttributeContext.Peer.Builder peer = AttributeContext.Peer.newBuilder().setAddress(address(ip, port));
        if (identity != null) {
            peer.setPrincipal(!identity.uriSans().isEmpty() ? identity.uriSans().get(0)
                    : !identity.dnsSans().isEmpty() ? identity.dnsSans().get(0) : identity.subject());
        }
        if (service != null && !service.isEmpty()) {
            peer.setService(service);
        }
        return peer.build();
    }

    /**
     * Puts the request's headers an authorizer gets into {@code joined}: those {@link #allowedHeaders} passes but
     * {@code host} and a client's {@code x-envoy-auth-partial-body} (and, unless {@code withLength}, the
     * {@code content-length} an HTTP check gets of its own body), lower-case, the values of a repeated one joined
     * with a comma in their order, as Envoy builds its check request's header map, which its HTTP client sends too.
     */
    private void putAllowed(Map<String, String> joined, MutableHeaders headers, boolean withLength) {
        headers.forEach((name, value) -> {
            String n = name.toLowerCase(Locale.ROOT);
            if (!n.equals("host") && !n.equals(PARTIAL_BODY) && (withLength || !n.equals("content-length"))
                    && allowedHeaders.test(n)) {
                joined.merge(n, value, (a, b) -> a + "," + b);
            }
        });
    }

    private void putPseudo(Map<String, String> headers, String name, String value) {
        if (value != null && allowedHeaders.test(name)) {
            headers.put(name, value);
        }
    }

    private static io.envoyproxy.envoy.config.core.v3.Address address(String ip, int port) {
        var a = io.envoyproxy.envoy.config.core.v3.SocketAddress.newBuilder().setAddress(ip == null ? "" : ip);
        if (port >= 0) {
            a.setPortValue(port);
        }
        return io.envoyproxy.envoy.config.core.v3.Address.newBuilder().setSocketAddress(a).build();
    }

    /** Any of the matchers matches a (lower-case) header name; none: nothing matches. */
    private static Predicate<String> matchers(List<StringMatcher> list) {
        if (list.isEmpty()) {
            return n -> false;
        }
        List<Predicate<String>> compiled = list.stream().map(StringMatchers::compile).toList();
        return n -> {
            for (Predicate<String> p : compiled) {
                if (p.test(n)) {
                    return true;
                }
            }
            return false;
        };
    }

    /**
     * {@code filter_enabled_metadata} on what Inmesh keeps of a request's dynamic metadata: the RBAC filters'
     * ({@link RbacFilter#METADATA_NAMESPACE}, or for a connection {@link RbacFilter#NETWORK_METADATA_NAMESPACE}) and
     * the JWT authentication filter's ({@link JwtAuthnFilter#NAME}).
     */
    private static java.util.function.BiPredicate<Subject, Map<String, Object>> metadata(MetadataMatcher m) {
        Predicate<Object> value = RbacFilter.value(m.value());
        String[] path = m.path().toArray(String[]::new);
        boolean rbac = m.filter().equals(RbacFilter.METADATA_NAMESPACE)
                || m.filter().equals(RbacFilter.NETWORK_METADATA_NAMESPACE);
        boolean invert = m.invert();
        return (s, rbacMetadata) -> {
            Object v = rbac ? rbacMetadata : s.jwtMetadata();
            for (String key : path) {
                v = v instanceof Map<?, ?> map ? map.get(key) : null;
            }
            return value.test(v) != invert;
        };
    }
}
