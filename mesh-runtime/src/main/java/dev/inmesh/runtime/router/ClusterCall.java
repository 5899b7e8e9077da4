package dev.inmesh.runtime.router;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Parser;
import dev.inmesh.runtime.upstream.CircuitBreakerState;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Exchange;
import dev.inmesh.runtime.upstream.Exchange.Answer;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LbContext;
import dev.inmesh.runtime.upstream.LocalOriginFailure;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.ConnectionPoolTooBusyException;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.time.Duration;
import java.util.function.Consumer;

/**
 * One call a filter makes to a service through a named cluster of the mesh, as Envoy's filters call their services
 * (the external authorizer, the rate limit service, a remote JWKS) and its Zipkin tracer its collector through its
 * async client, whose requests go
 * through a router of their own: a host the cluster's load balancer picks, the cluster's pooled connections and
 * circuit breakers ({@code max_requests}, taken once the call has its connection; a wait for one counted as pending
 * under {@code max_pending_requests}), a timer that gives up (and resets the call, or cancels it while it waits for a
 * connection) after the timeout, the cluster's statistics and the host's outlier detection, never blocking. A unary
 * gRPC call is a {@link #grpc} with {@link #message} to read its answer.
 */
public final class ClusterCall {
    private ClusterCall() {}

    /**
     * Sends one request to a host of {@code cluster}.
     *
     * @param http2 whether the call needs HTTP/2 (gRPC)
     * @param prepare sets the request's method, URI and headers on options that already name the host
     * @param authority the request's {@code :authority}, or null or empty for the client's own
     * @param timeout how long to wait before giving up; null for no limit (Envoy's rate limit filter's
     *     {@code timeout: 0s})
     * @return the answer; failed when the cluster or a host is missing, the call fails or the timeout passes first
     */
    public static Future<Answer> send(ClusterManager clusters, String cluster, boolean http2,
                                      Consumer<RequestOptions> prepare, Buffer body, String authority,
                                      Duration timeout) {
        return send(clusters, cluster, http2, false, prepare, body, authority, timeout);
    }

    private static Future<Answer> send(ClusterManager clusters, String cluster, boolean http2, boolean grpc,
                                       Consumer<RequestOptions> prepare, Buffer body, String authority,
                                       Duration timeout) {
        UpstreamCluster c = clusters == null ? null : clusters.cluster(cluster);
        Host host = c == null ? null : c.chooseHost(LbContext.NONE);
        Vertx vertx = c == null ? null : c.vertx();
        if (host == null || vertx == null) {
            return Future.failedFuture("no host of cluster " + cluster);
        }
        RequestOptions ro = new RequestOptions().setMethod(HttpMethod.POST).setHost(host.address().address())
                .setPort(host.address().port());
        try {
            prepare.accept(ro);
        } catch (RuntimeException e) {
            return Future.failedFuture(e); // before the call takes anything of its cluster's
        }
        HttpClient client;
        try {
            // last: a pool handed out counts as busy until its request is asked (max_connection_pools)
            client = c.httpClient(host, http2);
        } catch (RuntimeException e) {
            client = null;
        }
        if (client == null) {
            return Future.failedFuture("no host of cluster " + cluster);
        }
        Promise<Answer> answer = Promise.promise();
        HttpClient pooled = client;
        Runnable call = () -> {
            // on one context: the timer, the request's hand-over and the answer, whatever thread asked
            CircuitBreakerState breakers = c.circuitBreakers();
            var st = c.stats();
            if (st != null) {
                c.publishCircuitBreakers(st);
            }
            HttpClientRequest[] sent = {null};
            Runnable[] cancelWait = {null};
            Counted counted = new Counted(host, st, breakers, grpc);
            long timer = timeout == null ? -1 : vertx.setTimer(Math.max(1, timeout.toMillis()), t -> {
                if (answer.future().isComplete()) {
                    return;
                }
                counted.timedOut(sent[0] != null);
                answer.fail("timeout");
                if (sent[0] != null) {
                    sent[0].reset();
                } else if (cancelWait[0] != null) {
                    cancelWait[0].run(); // as Envoy's async client cancels its pending request: out of the queue
                }
            });
            Exchange.send(vertx, o -> Router.connect(pooled, o, breakers, st, cancel -> cancelWait[0] = cancel)
                    .compose(req -> answer.future().isComplete() || counted.attach(req) ? Future.succeededFuture(req)
                            : Future.failedFuture(new ConnectionPoolTooBusyException("overflow"))), ro,
                    authority, body, req -> {
                if (answer.future().isComplete()) {
                    req.reset(); // timed out while it waited for a connection
                } else {
                    sent[0] = req;
                    host.outlier().reportConnectSuccess();
                    req.response().onSuccess(resp -> {
                        if (!answer.future().isComplete()) {
                            counted.responded(resp.statusCode(), resp.headers());
                        }
                    });
                }
            }).onComplete(ar -> {
                if (timer >= 0) {
                    vertx.cancelTimer(timer);
                }
                if (answer.future().isComplete()) {
                    return; // timed out: counted then (the timer runs on this context)
                }
                if (ar.succeeded()) {
                    counted.answered(ar.result());
                    answer.complete(ar.result());
                } else {
                    counted.failed(sent[0] != null, ar.cause());
                    answer.fail(ar.cause());
                }
            });
        };
        try {
            Exchange.onContext(vertx, call);
        } catch (RuntimeException e) {
            answer.tryFail(e); // the Vert.x is closed
        }
        return answer.future();
    }

    /**
     * A unary gRPC call ({@code path}: {@code /package.Service/Method}) with one uncompressed message and a
     * {@code grpc-timeout} of the timeout (none without one), to a host of {@code cluster}, as {@link #send}.
     */
    static Future<Answer> grpc(ClusterManager clusters, String cluster, String authority, String path,
                               com.google.protobuf.MessageLite request, Duration timeout) {
        byte[] message = request.toByteArray();
        Buffer body = Buffer.buffer(5 + message.length).appendByte((byte) 0).appendInt(message.length)
                .appendBytes(message);
        return send(clusters, cluster, true, true, ro -> {
            ro.setURI(path).putHeader("content-type", "application/grpc").putHeader("te", "trailers");
            if (timeout != null) {
                ro.putHeader("grpc-timeout", Math.max(1, timeout.toMillis()) + "m");
            }
        }, body, authority, timeout);
    }

    /**
     * What one call counts, as Envoy's async client, whose requests go through a router of their own: once it has its
     * connection ({@link Router#attach}), the cluster's {@code upstream_rq_total} and {@code upstream_rq_active} and
     * the host's requests and active requests (least request), until it ends; {@code upstream_rq_completed} and
     * {@code upstream_rq_<code>} with the status of the answer's headers when they come, else with the router's local
     * reply (503 for a failed connection or a reset, 504 with {@code upstream_rq_timeout} for the timeout: as Envoy's
     * router, a timeout counts only for a request still awaiting headers); {@code upstream_rq_time} for an answer come
     * whole; the host's outlier detection, told of the answer's headers (a gRPC one by its {@code grpc-status} when
     * they carry it, as the router's) or of the local-origin failure (a timeout only when the call had its connection:
     * while it waits for one, Envoy's upstream request has no host yet).
     */
    private static final class Counted {
        private final Host host;
        private final dev.inmesh.runtime.stats.UpstreamStats stats;
        private final CircuitBreakerState breakers;
        private final boolean grpc;
        private final long startNanos = System.nanoTime();
        /** The status of the answer's headers, once they came; else -1. */
        private int status = -1;
        /** Whether the call holds one of the cluster's {@code max_requests}: from its connection on. */
        private boolean slotHeld;
        /** Whether the host's charge of a gRPC answer waits for the answer's trailers ({@link Router#chargeAnswer}). */
        private boolean chargeDeferred;

        Counted(Host host, dev.inmesh.runtime.stats.UpstreamStats stats, CircuitBreakerState breakers, boolean grpc) {
            this.host = host;
            this.stats = stats;
            this.breakers = breakers;
            this.grpc = grpc;
            if (stats != null) {
                host.stats().clusterStats(stats); // the connections the host's pool opens count in the cluster's
            }
        }

        /**
         * The call got its connection, {@code req}: it takes one of the cluster's {@code max_requests} before it is
         * sent, or, all taken, gives {@code req} back unsent and fails as an overflow ({@link Router#attach}).
         */
        boolean attach(HttpClientRequest req) {
            slotHeld = Router.attach(breakers, req, host, stats);
            return slotHeld;
        }

        /** The answer's headers came: their status is charged, and told to the host's outlier detection. */
        void responded(int status, io.vertx.core.MultiMap headers) {
            this.status = status;
            Router.reportAnswer(host, grpc, status, headers);
            chargeDeferred = Router.chargeAnswer(host, grpc, status, headers);
            if (stats != null) {
                stats.requestCompleted(status);
            }
        }

        void answered(Answer a) {
            if (status < 0) {
                responded(a.status(), a.headers());
            }
            if (chargeDeferred) {
                chargeDeferred = false;
                Router.chargeGrpcEnd(host, a.trailers() == null ? null : a.trailers().get("grpc-status"));
            }
            if (stats != null) {
                stats.requestTime((System.nanoTime() - startNanos) / 1_000_000);
            }
            ended(a.status());
        }

        /**
         * The call ended without an answer: reset once it had its connection, else its pool failed it (a connect
         * failure, or an overflow of {@code max_pending_requests}, which is no fault of the host's).
         */
        void failed(boolean connected, Throwable cause) {
            if (connected) {
                host.outlier().reportLocalOriginFailure(LocalOriginFailure.RESET);
            } else {
                Router.poolFailed(host, stats, cause);
            }
            if (connected || Router.hostFailure(cause)) {
                hostFailed();
            }
            ended(503);
        }

        /**
         * The call to the host ended without its answer, or before a gRPC answer's trailers: the host's
         * {@code rq_error}, as Envoy's router charges it.
         */
        private void hostFailed() {
            if (status < 0 || chargeDeferred) {
                chargeDeferred = false;
                host.stats().requestFailed();
            }
        }

        void timedOut(boolean connected) {
            if (status < 0) {
                if (connected) {
                    host.outlier().reportLocalOriginFailure(LocalOriginFailure.TIMEOUT);
                    hostFailed();
                }
                if (stats != null) {
                    stats.timeout();
                }
            }
            ended(504);
        }

        /** The call is over: {@code localReply} is charged unless the answer's headers came. */
        private void ended(int localReply) {
            if (slotHeld) {
                slotHeld = false;
                Router.detach(breakers, host, stats);
            }
            if (stats != null && status < 0) {
                stats.requestCompleted(localReply);
            }
        }
    }

    /**
     * The message of a unary gRPC answer, or null when the call failed: a status other than 200, a
     * {@code grpc-status} other than 0 (in the trailers, or the headers of a trailers-only answer), or a body that is
     * not one whole uncompressed message of the type.
     */
    static <T> T message(Answer a, Parser<T> parser) {
        String grpcStatus = a.trailers().get("grpc-status");
        if (grpcStatus == null) {
            grpcStatus = a.headers().get("grpc-status"); // a trailers-only answer
        }
        if (a.status() != 200 || !"0".equals(grpcStatus) || a.body().length() < 5) {
            return null;
        }
        try {
            int length = a.body().getInt(1);
            if (a.body().getByte(0) != 0 || length != a.body().length() - 5) {
                return null; // compressed, or not one whole message
            }
            return parser.parseFrom(a.body().getBytes(5, a.body().length()));
        } catch (InvalidProtocolBufferException | IndexOutOfBoundsException e) {
            return null;
        }
    }
}
