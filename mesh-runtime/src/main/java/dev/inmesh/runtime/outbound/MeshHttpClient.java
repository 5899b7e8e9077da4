package dev.inmesh.runtime.outbound;

import io.vertx.core.Completable;
import io.vertx.core.Future;
import io.vertx.core.net.ClientSSLOptions;
import io.vertx.core.http.HttpClientConnection;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpConnectOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.internal.http.HttpClientInternal;
import io.vertx.core.internal.net.NetClientInternal;
import io.vertx.core.spi.metrics.Metrics;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A Vert.x HTTP client whose requests go through the mesh in this JVM. {@link #request} returns a request that
 * buffers its body and, when ended, is routed by the shared router to a host of the chosen cluster; the response is
 * the upstream's (headers as the route says) or the router's local reply. What the mesh does not route (TLS
 * settings, TLS to an address without a listener) is delegated to a plain client; a connection of the caller's own
 * ({@link #connect}) is refused, as it would go past the mesh.
 *
 * <p>It implements Vert.x's internal {@code HttpClientInternal} so that {@code WebClient.wrap} accepts it; that ties
 * this class to Vert.x 5.0's internal API, which the build pins.
 */
public final class MeshHttpClient implements HttpClientInternal {
    private final HttpClientInternal delegate;
    private final OutboundDispatcher dispatcher;
    /** The protocol a sidecar would see this client speak ({@link #protocol}). */
    private final String protocol;
    /** The requests not yet done: a close fails them, as a plain client's close fails its connections' requests. */
    private final Set<MeshClientRequest> open = ConcurrentHashMap.newKeySet();
    private volatile boolean closed;

    public MeshHttpClient(HttpClientInternal delegate, OutboundDispatcher dispatcher) {
        this.delegate = delegate;
        this.dispatcher = dispatcher;
        this.protocol = protocol(delegate.options());
    }

    /**
     * The protocol a sidecar would see a plain client with these options speak: {@code HTTP/2} when it is set for
     * HTTP/2 with prior knowledge (as Vert.x's gRPC client is), else {@code HTTP/1.1} (an h2c upgrade, Vert.x's
     * default for HTTP/2 in clear, is not taken by Envoy, so such a client goes on in HTTP/1.1). A cluster that uses
     * its downstream's protocol sends the client's requests upstream in it.
     */
    static String protocol(HttpClientOptions o) {
        return o.getProtocolVersion() == HttpVersion.HTTP_2 && !o.isHttp2ClearTextUpgrade() ? "HTTP/2" : "HTTP/1.1";
    }

    @Override
    public Future<HttpClientRequest> request(RequestOptions options) {
        if (closed) {
            return Future.failedFuture(new IllegalStateException("Client is closed")); // Vert.x's words
        }
        IllegalStateException unavailable = dispatcher.unavailable();
        if (unavailable != null) {
            return Future.failedFuture(unavailable);
        }
        HttpClientOptions o = delegate.options();
        MeshClientRequest req = new MeshClientRequest(this, dispatcher, delegate.vertx().getOrCreateContext(),
                options, o.getDefaultHost(), o.getDefaultPort(), o.isSsl(), protocol);
        open.add(req);
        return Future.succeededFuture(req);
    }

    /** A request of the plain client (TLS the mesh passes through), which it does not route. */
    Future<HttpClientRequest> direct(RequestOptions options) {
        return delegate.request(options);
    }

    /** The next request of a redirect, by the client's redirect handler, routed through the mesh again. */
    Future<HttpClientRequest> redirect(HttpClientResponse resp) {
        Future<RequestOptions> next = delegate.redirectHandler().apply(resp);
        return next == null ? null : next.compose(this::request);
    }

    void finished(MeshClientRequest req) {
        open.remove(req);
    }

    /**
     * Closes the client: new requests fail; those still open fail at once ({@code timeout} 0) or after the grace
     * period, as Vert.x closes a client's connections.
     */
    @Override
    public Future<Void> shutdown(long timeout, TimeUnit unit) {
        closed = true;
        long ms = unit.toMillis(timeout);
        if (ms <= 0) {
            closeOpen();
        } else {
            delegate.vertx().setTimer(ms, id -> closeOpen());
        }
        return delegate.shutdown(timeout, unit);
    }

    private void closeOpen() {
        for (MeshClientRequest r : open) {
            open.remove(r);
            r.closed();
        }
    }

    @Override
    public Future<Boolean> updateSSLOptions(ClientSSLOptions options, boolean force) {
        return delegate.updateSSLOptions(options, force);
    }

    /**
     * Not supported: a connection of the caller's own would go past the mesh (no route, no policy, no Istio mTLS),
     * where a sidecar captures every connection of its application.
     */
    @Override
    public Future<HttpClientConnection> connect(HttpConnectOptions options) {
        return Future.failedFuture(new UnsupportedOperationException("connect(HttpConnectOptions): a connection of "
                + "the caller's own would go past the mesh; send requests with request(...)"));
    }

    @Override
    public VertxInternal vertx() {
        return delegate.vertx();
    }

    @Override
    public Function<HttpClientResponse, Future<RequestOptions>> redirectHandler() {
        return delegate.redirectHandler();
    }

    @Override
    public HttpClientOptions options() {
        return delegate.options();
    }

    @Override
    public NetClientInternal netClient() {
        return delegate.netClient();
    }

    @Override
    public Future<Void> closeFuture() {
        return delegate.closeFuture();
    }

    @Override
    public void close(Completable<Void> completion) {
        closed = true;
        closeOpen();
        delegate.close(completion);
    }

    @Override
    public Metrics getMetrics() {
        return delegate.getMetrics();
    }
}
