package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.core.SocketAddress;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.PoolOptions;
import java.util.concurrent.TimeUnit;

/**
 * One host's connection pool: a Vert.x HttpClient whose default host and port are the host's, made on first use
 * with the cluster's settings (HTTP/1.1 keep-alive or h2c with prior knowledge, connect timeout, bind address,
 * connection and pending limits from the circuit breakers; one multiplexed connection for HTTP/2). When the settings change, the old client drains
 * gracefully and a new one is made; so it does when the host leaves the cluster.
 */
final class HostPool {
    /** How long a pool that is being replaced or closed lets its requests in flight finish. */
    static final long DRAIN_SECONDS = 30;
    /**
     * The most connections one host's pool opens. Vert.x sizes its pool's slot array by the maximum, so Istio's
     * "unlimited" circuit breakers (max_connections 4294967295) cannot be passed on as they are; beyond this many
     * connections to one host, requests wait in the pool (the cluster's circuit breakers still count them).
     */
    static final int MAX_POOL_SIZE = 1024;

    /** The settings a pool is made with. */
    record Settings(long connectTimeoutMillis, boolean http2, String localAddress, int maxConnections,
                    int maxPending) {}

    private final SocketAddress address;
    private HttpClient client; // guarded by this
    private Settings settings;
    /** The client and the settings it was made with, read without the lock on the request path. */
    private volatile Current current;

    private record Current(HttpClient client, Settings settings) {}

    HostPool(SocketAddress address) {
        this.address = address;
    }

    HttpClient client(Vertx vertx, Settings wanted, CircuitBreakerState breakers) {
        Current c = current;
        if (c != null && (c.settings == wanted || c.settings.equals(wanted))) {
            return c.client;
        }
        return rebuild(vertx, wanted, breakers);
    }

    private synchronized HttpClient rebuild(Vertx vertx, Settings wanted, CircuitBreakerState breakers) {
        if (client != null && wanted.equals(settings)) {
            return client;
        }
        if (client != null) {
            client.shutdown(DRAIN_SECONDS, TimeUnit.SECONDS);
        }
        HttpClientOptions options = new HttpClientOptions()
                .setDefaultHost(address.address())
                .setDefaultPort(address.port())
                .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, wanted.connectTimeoutMillis()))
                .setKeepAlive(true);
        if (wanted.http2()) {
            options.setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false);
        }
        if (wanted.localAddress() != null) {
            options.setLocalAddress(wanted.localAddress());
        }
        PoolOptions pool = new PoolOptions()
                .setHttp1MaxSize(Math.min(MAX_POOL_SIZE, wanted.maxConnections()))
                .setHttp2MaxSize(1)
                .setMaxWaitQueueSize(wanted.maxPending());
        client = vertx.httpClientBuilder().with(options).with(pool)
                .withConnectHandler(conn -> {
                    breakers.connectionOpened();
                    conn.closeHandler(v -> breakers.connectionClosed());
                })
                .build();
        settings = wanted;
        current = new Current(client, wanted);
        return client;
    }

    /** Lets requests in flight finish, then closes the connections. */
    synchronized void drain() {
        if (client != null) {
            client.shutdown(DRAIN_SECONDS, TimeUnit.SECONDS);
            client = null;
            settings = null;
            current = null;
        }
    }
}
