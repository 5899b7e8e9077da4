package dev.inmesh.runtime.xds.sds;

import com.google.rpc.Code;
import com.google.rpc.Status;
import dev.inmesh.runtime.xds.ads.AdsClient;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import dev.inmesh.runtime.xds.ads.Backoff;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.vertx.core.Context;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.common.GrpcMessageDecoder;
import io.vertx.grpc.common.GrpcMessageEncoder;
import io.vertx.grpc.common.ServiceMethod;
import io.vertx.grpc.common.ServiceName;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One secret's {@code StreamSecrets} stream, state of the world, as Envoy's {@code SdsApi} subscribes to its one name:
 * the first request carries the node, each response is ACKed with its version and nonce once its secret is taken
 * (checked off the event loop, kept in memory only, and handed to the TLS contexts holding it), or NACKed with the
 * last version taken and an {@code error_detail} naming the secret, the last good secret kept; a response of another
 * type URL is ignored, as Envoy's gRPC mux ignores a type it has no subscription for. A stream that fails or ends is
 * opened again after Envoy's fully jittered back-off (500 ms doubling to 30 s, reset by a response), asking for the
 * version held.
 */
final class SdsStream extends HeldSecret {
    private static final Logger LOG = Logger.getLogger(SdsStream.class.getName());
    static final ServiceMethod<DiscoveryResponse, DiscoveryRequest> STREAM_SECRETS = ServiceMethod.client(
            ServiceName.create("envoy.service.secret.v3", "SecretDiscoveryService"), "StreamSecrets",
            GrpcMessageEncoder.encoder(), GrpcMessageDecoder.decoder(DiscoveryResponse.newBuilder()));

    private final String target;
    private final GrpcClient client;
    private final SocketAddress address;
    private final Node node;
    private final Context context;
    /** Completed with the first secret taken. */
    final CompletableFuture<SdsSecret> first = new CompletableFuture<>();
    /** When a parse stops waiting for the first secret, as {@link System#nanoTime()}. */
    final long deadline;
    private volatile String lastError;
    private GrpcClientRequest<DiscoveryRequest, DiscoveryResponse> stream;
    private String ackedVersion = "";
    /** Envoy's xDS back-off, as the ADS client's. */
    private final Backoff backoff = new Backoff(AdsOptions.DEFAULT_BACKOFF_BASE, AdsOptions.DEFAULT_BACKOFF_MAX,
            new Random());
    private boolean closed;

    SdsStream(String name, String target, GrpcClient client, SocketAddress address, Node node, Context context,
              long deadline) {
        super(name);
        this.target = target;
        this.client = client;
        this.address = address;
        this.node = node;
        this.context = context;
        this.deadline = deadline;
    }

    /** Why the last response was rejected or the stream failed, or null. */
    String lastError() {
        return lastError;
    }

    void start() {
        context.runOnContext(v -> open());
    }

    void close() {
        context.runOnContext(v -> {
            closed = true;
            if (stream != null) {
                stream.cancel();
                stream = null;
            }
        });
    }

    private void open() {
        if (closed) {
            return;
        }
        client.request(address, STREAM_SECRETS).onComplete(ar -> {
            if (ar.failed()) {
                failed(null, ar.cause());
                return;
            }
            GrpcClientRequest<DiscoveryRequest, DiscoveryResponse> req = ar.result();
            if (closed) {
                req.cancel();
                return;
            }
            stream = req;
            req.exceptionHandler(e -> failed(req, e));
            req.response().onComplete(r -> {
                if (r.failed()) {
                    failed(req, r.cause());
                    return;
                }
                r.result().handler(this::onResponse);
                r.result().exceptionHandler(e -> failed(req, e));
                r.result().endHandler(e -> failed(req, new IllegalStateException("the server ended the stream: "
                        + r.result().status())));
            });
            send(ackedVersion, "", null, true);
        });
    }

    private void onResponse(DiscoveryResponse r) {
        backoff.reset();
        if (!r.getTypeUrl().equals(SecretParser.TYPE_URL)) {
            // as Envoy's gRPC mux: a response of a type nothing asked for is ignored, neither ACKed nor NACKed
            LOG.warning("SDS stream for " + name + " to " + target + ": ignoring a response of type "
                    + r.getTypeUrl() + ", which nothing asked for");
            return;
        }
        GrpcClientRequest<DiscoveryRequest, DiscoveryResponse> on = stream;
        context.<SdsSecret>executeBlocking(() -> SdsSecret.parse(name, r.getResourcesList(), r.getVersionInfo()),
                true).onComplete(ar -> {
            if (on != stream || closed) {
                return;
            }
            if (ar.succeeded()) {
                take(ar.result());
                lastError = null;
                ackedVersion = r.getVersionInfo();
                first.complete(ar.result());
                // as Envoy's SdsApi: the TLS contexts holding the secret take it on its arrival, then it is ACKed
                context.executeBlocking(() -> {
                    push();
                    return null;
                }, true).onComplete(pushed -> {
                    if (on == stream && !closed) {
                        send(r.getVersionInfo(), r.getNonce(), null, false);
                    }
                });
            } else {
                lastError = String.valueOf(ar.cause().getMessage());
                LOG.warning("SDS secret " + name + " from " + target + " rejected (version " + r.getVersionInfo()
                        + "): " + lastError);
                send(ackedVersion, r.getNonce(), lastError, false);
            }
        });
    }

    private void send(String version, String nonce, String error, boolean first) {
        DiscoveryRequest.Builder b = DiscoveryRequest.newBuilder().setTypeUrl(SecretParser.TYPE_URL)
                .setVersionInfo(version).setResponseNonce(nonce).addResourceNames(name);
        if (first) {
            b.setNode(node);
        }
        if (error != null) {
            // INTERNAL and at most 4096 characters, as Envoy's NACKs (and the ADS client's)
            b.setErrorDetail(Status.newBuilder().setCode(Code.INTERNAL_VALUE).setMessage(AdsClient.truncated(error)));
        }
        stream.write(b.build());
    }

    /** The stream {@code req} (null: one that did not open) failed; a stream replaced since is let be. */
    private void failed(GrpcClientRequest<DiscoveryRequest, DiscoveryResponse> req, Throwable cause) {
        if (closed || req != stream) {
            return;
        }
        if (stream != null) {
            stream.cancel();
            stream = null;
        }
        lastError = target + ": " + cause;
        long delay = backoff.nextMillis();
        LOG.log(Level.FINE, "SDS stream for " + name + " to " + target + " ended (" + cause + "); again in " + delay
                + " ms");
        context.owner().setTimer(Math.max(1, delay), t -> context.runOnContext(v -> open()));
    }
}
