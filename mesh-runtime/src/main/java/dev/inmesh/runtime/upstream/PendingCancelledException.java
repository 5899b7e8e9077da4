package dev.inmesh.runtime.upstream;

import io.vertx.core.VertxException;

/**
 * The failure of a request that waited in a host's pool for a connection and was cancelled by its caller before it
 * had one ({@link UpstreamCluster#cancelPending}): Envoy's {@code upstream_rq_cancelled}.
 */
public final class PendingCancelledException extends VertxException {
    PendingCancelledException() {
        super("pending request cancelled before it had a connection", true);
    }
}
