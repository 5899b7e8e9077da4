package dev.inmesh.api;

import dev.inmesh.api.spi.MeshProvider;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketClientOptions;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;

/**
 * A service mesh inside this JVM: Istio's outbound and inbound behaviour for the service that creates it, with no
 * sidecar and no extra hop.
 *
 * <pre>{@code
 * Mesh mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage")
 *     .setVersion("v1").setConfigFile("mesh/").setIdentityDir("/etc/certs"));
 * mesh.start().onSuccess(v -> {
 *   WebClient client = mesh.webClient();              // requests go through routes, clusters, retries
 *   vertx.createHttpServer(mesh.inboundServerOptions(9080))   // Istio's mTLS when the port is STRICT
 *       .requestHandler(mesh.inbound(router)).listen();
 * });
 * }</pre>
 *
 * <p>Outbound, a request to {@code http://reviews:9080/...} goes through the listener for its port, the route table,
 * a host of the chosen cluster, and the router's timeouts and retries. Inbound, {@link #inbound} records Istio's
 * metrics with {@code reporter="destination"} and applies the inbound route, and
 * {@link #inboundServerOptions(int)} has the server terminate Istio's mTLS when the port's inbound chains take
 * nothing else. Create it with {@link #create(Vertx, MeshOptions)}, or {@link #create(Vertx)} to read its settings
 * from configuration.
 */
public interface Mesh {

    /** A mesh with the given settings (not started). */
    static Mesh create(Vertx vertx, MeshOptions options) {
        return MeshProvider.load().create(vertx, options);
    }

    /**
     * A mesh whose settings come from configuration: system properties, environment variables and
     * {@code application.properties}, under the prefix {@code inmesh.}.
     */
    static Mesh create(Vertx vertx) {
        MeshProvider p = MeshProvider.load();
        return p.create(vertx, p.optionsFromConfiguration());
    }

    /**
     * Loads the configuration and starts the admin server; completes when the first configuration is applied and its
     * clusters are initialized (a cluster with active health checks once each of its hosts had a first check, as
     * Envoy's server starts its workers only then; at once without health checks), and, over ADS, once each listener
     * a configuration applied meanwhile adds or changes has its route configuration (arrived, rejected, or its
     * initial fetch timeout passed), as Envoy's server waits for its listeners' warming. When it fails (a port in
     * use, a configuration rejected), what it started is closed first: no admin port stays bound and no control plane
     * stream stays open. A mesh starts once: a second call, or one after {@link #close()}, fails with an
     * {@link IllegalStateException}.
     */
    Future<Void> start();

    /**
     * Stops everything the mesh started (clients, admin server, config watches); requests in flight fail, and so do
     * later ones. A second call returns the first one's future.
     */
    Future<Void> close();

    /**
     * Whether a first complete configuration has been applied and its clusters initialized, its listeners' route
     * configurations in (what {@code /healthz/ready} reports; see {@link #start()}), and the mesh not closed (false
     * after a {@link #start()} that failed, which closes it, for its admin port taken, say, whatever configuration it
     * had applied). This is the mesh's readiness, as Istio's agent's readiness probe is its sidecar's: an application
     * that wants to receive traffic only once its mesh is initialized makes its readiness probe answer with it
     * ({@link #inbound} does not refuse requests meanwhile).
     */
    boolean isReady();

    /**
     * A Vert.x {@link WebClient} whose requests go through the mesh. The mesh holds each client it makes until the
     * client is closed (or the mesh is), so that one used inline ({@code mesh.webClient().get(..).send()}) is not
     * closed under its request when nothing else references it, as Vert.x closes unreferenced clients; make one and
     * reuse it, or close the ones you make.
     *
     * <p>Clients can be made at any time, but a request made before the mesh has its first configuration (before
     * {@link #start()} has completed, while {@link #isReady()} is false) or after {@link #close()} fails with an
     * {@link IllegalStateException} saying so, as a sidecar that does not listen yet refuses the application's
     * connections: it never goes past the mesh to the address it names. The same holds for {@link #httpClient()} and
     * {@link #webSocketClient()}.
     */
    WebClient webClient();

    /** A Vert.x {@link WebClient} with options, whose requests go through the mesh. */
    WebClient webClient(WebClientOptions options);

    /** A Vert.x {@link HttpClient} whose requests go through the mesh. */
    HttpClient httpClient();

    /** A Vert.x {@link HttpClient} with options, whose requests go through the mesh. */
    HttpClient httpClient(HttpClientOptions options);

    /**
     * The JDK's {@link java.net.http.HttpClient} whose requests go through the mesh, as those of {@link #httpClient()}
     * (whose requests they become, in this JVM: no loopback hop): route, cluster, retries, timeouts, metrics, access
     * log, tracing headers. For code written for the JDK's client, and Spring's {@code RestClient} or
     * {@code RestTemplate} over {@code JdkClientHttpRequestFactory}.
     *
     * <p>As the JDK's client: request bodies are read from their publisher as the mesh sends them on, response bodies
     * given to their subscriber as it asks for them; {@code HttpRequest.timeout()} fails a request with no response
     * headers in time with an {@code HttpTimeoutException}; cancelling the future of {@code sendAsync} resets the
     * request; {@code expectContinue(true)} sends the body once a {@code 100 Continue} comes (the mesh's, or under
     * {@code proxy_100_continue} the upstream's) or none came within 5 s; redirects are not followed, its default (see
     * the overload with a {@code Redirect} policy); on JDK 21 and later it closes as the JDK's ({@code close()},
     * {@code shutdown()}, {@code shutdownNow()}, {@code awaitTermination}: requests sent before run to completion,
     * later ones fail), closing nothing of the mesh's. Unlike
     * it: {@code send} on a Vert.x event loop throws an {@link IllegalStateException} (it would block the loop; use
     * {@code sendAsync}); requests reach the mesh in HTTP/1.1, as a JDK client's behind a sidecar, which does not take
     * its {@code h2c} upgrade; there is no connect timeout, proxy or authenticator of the client's own, the mesh
     * making the connections; {@code newWebSocketBuilder()} is not supported (use {@link #webSocketClient()}). Make
     * one and reuse it. The mesh's {@link #close()} ends its threads (once the calls of the requests in flight are
     * made), and a request after fails with an {@code IOException}.
     */
    java.net.http.HttpClient javaHttpClient();

    /**
     * As {@link #javaHttpClient()}, following redirects as the JDK's client built with
     * {@code followRedirects(followRedirects)}: {@code NEVER} (the default) gives the 3xx to the caller, {@code ALWAYS}
     * follows a 301, 302, 303, 307 or 308 that has a {@code Location} to an {@code http} or {@code https} URI (one
     * without fails the request with an {@code IOException}), {@code NORMAL} too but not from {@code https} to
     * {@code http}; at most 4 in a row (the JDK's limit of 5 reached, the answer is the response), each a request of
     * its own through the mesh. A 303,
     * and a 301 or 302 to a POST, are followed by a GET without a body; others keep the method, headers and body.
     * The 3xx answers are the response's {@code previousResponse()}, with null bodies.
     */
    java.net.http.HttpClient javaHttpClient(java.net.http.HttpClient.Redirect followRedirects);

    /**
     * A Vert.x {@link WebSocketClient} whose WebSockets go through the mesh as a sidecar takes a WebSocket upgrade:
     * the listener for the port and its connection manager's {@code upgrade_configs} (an upgrade it does not enable is
     * refused 403), its filters, the route (rewrites, header rules), a host of its cluster (session, hash policies),
     * the cluster's TLS (Istio's mTLS) and {@code max_requests}, the route's idle timeout and
     * {@code max_stream_duration}; reported with its 101 when it closes. An upgrade refused on the way, or whose
     * upstream cannot be reached, fails with the {@code UpgradeRejectedException} of a sidecar's answer (403, 503,
     * ...). Connect with {@code connect(...)}; {@code webSocket()} is not supported. Held by the mesh until closed, as
     * {@link #webClient()}.
     */
    WebSocketClient webSocketClient();

    /** A Vert.x {@link WebSocketClient} with options, whose WebSockets go through the mesh. */
    WebSocketClient webSocketClient(WebSocketClientOptions options);

    /**
     * Wraps a server's request handler with the mesh's inbound side: request id, the inbound route for the
     * server's port, metrics with {@code reporter="destination"}, the access log. On a server of
     * {@link #inboundServerOptions(int)} that terminates mTLS, the port's TLS chain with the ALPN the client offered,
     * its {@code x-forwarded-client-cert} setting for the client's certificate, and {@code mutual_tls} in the metrics.
     *
     * <p>It serves from the start, with the configuration in force (none before the first), also while
     * {@link #start()} has not completed: it neither refuses nor holds requests while the mesh initializes. In Istio
     * what keeps callers from a pod whose sidecar has not initialized is the pod's readiness (the agent's
     * {@code /healthz/ready} fails until Envoy is {@code LIVE}), while the kubelet's probes of the application reach
     * it whatever Envoy's state; here that readiness is {@link #isReady()}, and the probes the application serves
     * behind this handler keep working meanwhile.
     */
    Handler<HttpServerRequest> inbound(Handler<HttpServerRequest> handler);

    /**
     * The options of the application's HTTP server on {@code port}, to pass to {@code vertx.createHttpServer}: the
     * server serves what Istio's {@code virtualInbound} filter chains for that port take, as a sidecar would.
     * <ul>
     *   <li>When a plaintext connection to the port has an HTTP chain (a PERMISSIVE or DISABLE PeerAuthentication,
     *       or no inbound configuration), plain HTTP options. A Vert.x HTTP server cannot take TLS and plaintext on
     *       one port, and Istio's callers send plaintext to a PERMISSIVE workload whose pod has no
     *       {@code security.istio.io/tlsMode} label, which a workload without a sidecar has not.</li>
     *   <li>When only TLS connections have one (STRICT: the port's chains match {@code transport_protocol: tls}),
     *       TLS as the chain's context says: the workload certificate and key of the identity directory
     *       ({@code inmesh.identity.dir}), client certificates checked against its root CA and the chain's SAN
     *       matchers (Istio's trust domain prefix), required when the chain requires them, ALPN {@code h2} and
     *       {@code http/1.1} as the chain lists them. Certificates rotated in the directory are used from the next
     *       handshake on, with no restart; {@link #inbound} then reports {@code mutual_tls} and sets
     *       {@code x-forwarded-client-cert} as the chain's connection manager says.</li>
     * </ul>
     * The choice is made once, from the configuration when called: call it after {@link #start()} has completed,
     * and make the server again to follow a PeerAuthentication's change of mode.
     *
     * @throws IllegalStateException when the mesh has no configuration yet, or the port takes mTLS only and there is
     *     no identity directory for its Istio certificates (the message names {@code inmesh.identity.dir})
     */
    default HttpServerOptions inboundServerOptions(int port) {
        return inboundServerOptions(new HttpServerOptions().setPort(port));
    }

    /**
     * As {@link #inboundServerOptions(int)} for the port of {@code base}: a copy of the application's own options
     * (host, port, limits, ...), with TLS set when the port takes mTLS only. {@code base} is not changed.
     */
    HttpServerOptions inboundServerOptions(HttpServerOptions base);

    /** The admin server's actual port, or -1 when it is off or not started. */
    int adminPort();

    /**
     * The port on 127.0.0.1 of the mesh's HTTP proxy ({@link MeshOptions#setHttpProxyPort},
     * {@code inmesh.http-proxy.port}), or -1 when it is off (the default) or not started. It is for the HTTP clients
     * the mesh cannot hand out: {@code HttpURLConnection} and what is built on it (Spring's {@code RestTemplate} with
     * its default request factory, Feign's default client), OkHttp, Apache's client built with
     * {@code useSystemProperties()}. Started with {@code -Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=PORT} (or given
     * a {@code ProxySelector} for it), they send it their plain-HTTP requests, and each becomes a request of the
     * mesh's own, as one of {@link #httpClient()}: route, cluster, retries, timeouts, metrics, access log. It costs
     * one loopback hop inside this JVM. HTTPS ({@code CONNECT}, answered 501) and upgrades (501) are not taken;
     * a request before the mesh has its first configuration is answered 503; {@link #close()} lets the port go.
     */
    default int httpProxyPort() {
        return -1;
    }
}
