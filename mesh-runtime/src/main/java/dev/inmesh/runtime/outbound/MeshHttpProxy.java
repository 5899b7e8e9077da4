package dev.inmesh.runtime.outbound;

import io.netty.handler.codec.http.HttpHeaderNames;
import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpClosedException;
import io.vertx.core.http.HttpHeaders;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.RequestOptions;
import java.util.Locale;
import java.util.Set;

/**
 * The mesh's HTTP proxy, on 127.0.0.1, for the HTTP clients of this JVM that the mesh cannot hand out:
 * {@code HttpURLConnection} and what is built on it (Spring's {@code RestTemplate} with its default request factory,
 * Feign's default client), OkHttp, Apache's client with the system's settings. Pointed at it by the JVM's
 * {@code http.proxyHost} and {@code http.proxyPort} (or a {@code ProxySelector}), they send each plain-HTTP request
 * in absolute form ({@code GET http://reviews:9080/reviews/0 HTTP/1.1}), and each becomes a request of the mesh's own
 * client ({@code mesh.httpClient()}): the listener for its port, route, cluster, retries, timeouts, metrics with
 * {@code reporter="source"}, access log. Its response, the upstream's or the router's local reply, goes back as it
 * comes; a request a sidecar relays as bytes (no listener for its port, a {@code tcp_proxy} chain) that gets no
 * upstream answer has its connection closed with none, as the sidecar's {@code tcp_proxy} closes it. One hop on
 * loopback, inside this JVM, where a sidecar's capture takes one through the kernel to another process.
 *
 * <p>What it does not take: {@code CONNECT} (the tunnel an HTTPS request asks of a proxy, 501: leave
 * {@code https.proxyHost} unset, HTTPS goes direct as it would without the mesh), an upgrade (a WebSocket, 501: the
 * mesh's {@code webSocketClient()} routes those), and a request in origin form ({@code GET /path}, 400: it names no
 * host, so it was not meant for a proxy). The headers that are the hop's own (RFC 9110 7.6.1: {@code Connection}
 * and those it names, {@code Keep-Alive}, {@code Proxy-Connection}, {@code Proxy-Authorization},
 * {@code Transfer-Encoding}, {@code Upgrade}) stop here, both ways; the mesh's client frames the request anew.
 */
public final class MeshHttpProxy {
    private static final Set<String> HOP_BY_HOP = Set.of("connection", "keep-alive", "proxy-connection",
            "proxy-authorization", "transfer-encoding", "upgrade", "host", "expect");

    private static final int MAX_HEAD = 60 * 1024;

    private final HttpClient client;
    private final HttpServer server;

    /** The proxy of {@code client} (a mesh client) on 127.0.0.1:{@code port}; {@link #start()} binds it. */
    public MeshHttpProxy(Vertx vertx, HttpClient client, int port) {
        this.client = client;
        this.server = vertx.createHttpServer(new HttpServerOptions().setHost("127.0.0.1").setPort(port)
                // the body goes on as it comes: a client waiting for a 100 gets it at once, as from a sidecar
                .setHandle100ContinueAutomatically(true)
                // HTTP/1.1 only: an h2c upgrade would get past the refusal of upgrades
                .setHttp2ClearTextEnabled(false)
                // a sidecar's limits (Envoy's max_request_headers_kb, 60), not Vert.x's 4 and 8 KiB
                .setMaxInitialLineLength(MAX_HEAD).setMaxHeaderSize(MAX_HEAD))
                .requestHandler(this::handle);
    }

    /** Binds the proxy's port. */
    public Future<Void> start() {
        return server.listen().mapEmpty();
    }

    /** The bound port, or -1 before {@link #start()}. */
    public int port() {
        return server.actualPort() == 0 ? -1 : server.actualPort();
    }

    /** Stops taking connections and closes the mesh client (requests in flight fail). */
    public Future<Void> close() {
        return Future.join(server.close(), client.close()).mapEmpty();
    }

    private void handle(HttpServerRequest req) {
        if (req.method() == HttpMethod.CONNECT) {
            refuse(req, 501, "CONNECT is not supported by the mesh's HTTP proxy: it takes plain HTTP requests "
                    + "(leave https.proxyHost unset: HTTPS goes direct)");
            return;
        }
        String uri = req.uri();
        if (!uri.regionMatches(true, 0, "http://", 0, 7)) {
            refuse(req, 400, "the mesh's HTTP proxy takes requests in absolute form (GET http://host:port/path), "
                    + "as an HTTP client sends them to its proxy; this one has " + uri);
            return;
        }
        if (req.headers().contains(HttpHeaders.UPGRADE)) {
            refuse(req, 501, "upgrades are not supported by the mesh's HTTP proxy (the mesh's webSocketClient() "
                    + "routes WebSockets)");
            return;
        }
        RequestOptions options;
        try {
            options = new RequestOptions().setMethod(req.method()).setAbsoluteURI(uri);
        } catch (RuntimeException e) {
            refuse(req, 400, "the mesh's HTTP proxy cannot read the request's URL " + uri + ": " + e.getMessage());
            return;
        }
        req.pause();
        client.request(options).onComplete(ar -> {
            if (ar.failed()) {
                req.resume();
                refuse(req, 503, String.valueOf(ar.cause().getMessage()));
                return;
            }
            HttpClientRequest out = ar.result();
            // a caller that leaves resets the mesh's request (DC), as a sidecar's downstream reset: its response
            // would otherwise wait, paused, for a drain that never comes (nothing once the exchange is over)
            req.connection().closeHandler(v -> out.reset(0, new HttpClosedException("the caller closed its "
                    + "connection")));
            copy(req.headers(), out.headers());
            if (!req.headers().contains(HttpHeaders.CONTENT_LENGTH)
                    && req.headers().contains(HttpHeaders.TRANSFER_ENCODING)) {
                out.setChunked(true);
            }
            out.response().onComplete(r -> {
                if (r.failed()) {
                    // the mesh's client fails a request only where a sidecar gives no HTTP answer (one relayed as
                    // bytes whose upstream connection failed, or never was: its tcp_proxy closes the caller's
                    // connection, tcp_proxy.cc Filter::onInitFailure) or where the caller went: close it, unanswered
                    req.connection().close();
                    return;
                }
                answer(req, r.result());
            });
            req.pipe().endOnFailure(false).to(out).onFailure(t -> out.reset(0, t));
        });
    }

    /** Sends {@code in}, the mesh's answer, back to the caller as it comes. */
    private static void answer(HttpServerRequest req, HttpClientResponse in) {
        HttpServerResponse resp = req.response();
        resp.setStatusCode(in.statusCode());
        if (in.statusMessage() != null) {
            resp.setStatusMessage(in.statusMessage());
        }
        copy(in.headers(), resp.headers());
        int status = in.statusCode();
        boolean bodiless = req.method() == HttpMethod.HEAD || status == 204 || status == 304
                || status >= 100 && status < 200;
        if (!bodiless && !in.headers().contains(HttpHeaders.CONTENT_LENGTH)) {
            resp.setChunked(true);
        }
        in.pipe().endOnFailure(false).to(resp).onFailure(t -> resp.reset());
    }

    /** Copies the end-to-end headers of {@code from}: not the hop's own, nor those its Connection names. */
    private static void copy(MultiMap from, MultiMap to) {
        Set<String> named = new java.util.HashSet<>();
        for (String c : from.getAll(HttpHeaders.CONNECTION)) {
            for (String token : c.split(",")) {
                named.add(token.trim().toLowerCase(Locale.ROOT));
            }
        }
        from.forEach((name, value) -> {
            String lower = name.toLowerCase(Locale.ROOT);
            if (!HOP_BY_HOP.contains(lower) && !named.contains(lower)) {
                to.add(name, value);
            }
        });
    }

    private static void refuse(HttpServerRequest req, int status, String text) {
        // the connection closes after it (a CONNECT's would otherwise stay open, waiting to become a tunnel)
        req.response().setStatusCode(status).putHeader(HttpHeaderNames.CONTENT_TYPE, "text/plain")
                .putHeader(HttpHeaders.CONNECTION, "close").end(text + "\n")
                .onComplete(v -> req.connection().close());
    }
}
