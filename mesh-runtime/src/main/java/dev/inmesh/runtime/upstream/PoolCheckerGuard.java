package dev.inmesh.runtime.upstream;

import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.PoolOptions;
import java.util.concurrent.TimeUnit;

/**
 * Keeps a Vert.x 5.0 HTTP client from cancelling another's timer when it closes. Vert.x's {@code HttpClientImpl}
 * starts a pool checker timer only when a keep-alive timeout or a connection lifetime asks for one, leaves its timer
 * id at 0 otherwise, and on close cancels the timer of that id whenever it is not negative: timer 0, the first timer
 * the Vert.x instance made, whoever made it (the standalone proxy's configuration file poll, which then stopped for
 * good once a health-checked cluster was removed). Such a client is given a connection lifetime no connection
 * reaches, so that it has a checker of its own and cancels only that.
 */
public final class PoolCheckerGuard {
    private PoolCheckerGuard() {}

    /** {@code pool}, with a lifetime of 68 years when {@code options} and {@code pool} would start no checker. */
    public static PoolOptions guarded(HttpClientOptions options, PoolOptions pool) {
        boolean checked = pool.getCleanerPeriod() > 0 && (options.getKeepAliveTimeout() > 0
                || options.getHttp2KeepAliveTimeout() > 0 || pool.getMaxLifetime() > 0);
        if (!checked && pool.getCleanerPeriod() > 0) {
            pool.setMaxLifetimeUnit(TimeUnit.SECONDS).setMaxLifetime(Integer.MAX_VALUE);
        }
        return pool;
    }
}
