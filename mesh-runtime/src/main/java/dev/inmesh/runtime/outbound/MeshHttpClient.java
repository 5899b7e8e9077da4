package dev.inmesh.runtime.outbound;

import io.vertx.core.Completable;
import io.vertx.core.Future;
import io.vertx.core.net.ClientSSLOptions;
import io.vertx.core.http.HttpClientConnection;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpConnectOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.internal.VertxInternal;
import io.vertx.core.internal.http.HttpClientInternal;
import io.vertx.core.internal.net.NetClientInternal;
import io.vertx.core.spi.metrics.Metrics;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A Vert.x HTTP client whose requests go through the mesh in this JVM. {@link #request} returns a request that
 * buffers its body and, when ended, is routed by the shared router to a host of the chosen cluster; the response is
 * the upstream's (headers as the route says) or the router's local reply. What the mesh does not route (TLS
 * settings, raw connections) is delegated to a plain client.
 *
 * <p>It implements Vert.x's internal {@code HttpClientInternal} so that {@code WebClient.wrap} accepts it; that ties
 * this class to Vert.x 5.0's internal API, which the build pins.
 */
public final class MeshHttpClient implements HttpClientInternal {
    private final HttpClientInternal delegate;
    private final OutboundDispatcher dispatcher;

    public MeshHttpClient(HttpClientInternal delegate, OutboundDispatcher dispatcher) {
        this.delegate = delegate;
        this.dispatcher = dispatcher;
    }

    @Override
    public Future<HttpClientRequest> request(RequestOptions options) {
        HttpClientOptions o = delegate.options();
        MeshClientRequest req = new MeshClientRequest(dispatcher, delegate.vertx().getOrCreateContext(), options,
                o.getDefaultHost(), o.getDefaultPort());
        return Future.succeededFuture(req);
    }

    @Override
    public Future<Void> shutdown(long timeout, TimeUnit unit) {
        return delegate.shutdown(timeout, unit);
    }

    @Override
    public Future<Boolean> updateSSLOptions(ClientSSLOptions options, boolean force) {
        return delegate.updateSSLOptions(options, force);
    }

    @Override
    public Future<HttpClientConnection> connect(HttpConnectOptions options) {
        return delegate.connect(options);
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
        delegate.close(completion);
    }

    @Override
    public Metrics getMetrics() {
        return delegate.getMetrics();
    }
}
