package dev.inmesh.runtime.xds.ads;

import com.google.rpc.Code;
import com.google.rpc.Status;
import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.ConfigStats;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.Fields;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.Parsers;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.vertx.core.Context;
import io.vertx.core.DeploymentOptions;
import io.vertx.core.ThreadingModel;
import io.vertx.core.VerticleBase;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.impl.HttpClientConnectionInternal;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientOptions;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcMessageDecoder;
import io.vertx.grpc.common.GrpcMessageEncoder;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.common.ServiceMethod;
import io.vertx.grpc.common.ServiceName;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.Random;

/**
 * An xDS v3 ADS client (state of the world, or incremental with {@link AdsOptions#delta}) for istiod or any xDS
 * server, feeding a {@link SnapshotHolder}.
 *
 * <ul>
 *   <li>One stream of {@code AggregatedDiscoveryService/StreamAggregatedResources} (or, over delta xDS,
 *       {@code DeltaAggregatedResources}: each response brings what changed, each resource with its own version, and
 *       names in {@code removed_resources} what it deletes; a reconnected stream's first request of each type tells
 *       the server the version of each resource held); types asked for in Envoy's order,
 *       CDS, EDS, LDS, RDS, so that no route names a cluster not yet known. LDS and CDS are wildcard; RDS asks for
 *       the names the listeners' connection managers use, EDS for the service names of EDS clusters, and both
 *       unsubscribe from what no listener or cluster needs any more.</li>
 *   <li>Each response is answered by one request once it is processed (as Envoy's mux pauses the type meanwhile):
 *       the ACK, with its version and nonce and the names asked for then. A resource that Inmesh cannot parse or use
 *       is NACKed (error_detail names each one and its field) while the valid resources of the response are applied,
 *       and the last good version of the bad one keeps serving; an RDS or EDS resource not asked for is left out
 *       unread; a resource that cannot be decoded at all (so has no name), or that fails the proto constraints of
 *       Envoy's API ({@link dev.inmesh.runtime.xds.ProtoConstraintCheck}),
 *       rejects the whole response, as in Envoy. A resource absent from a CDS or LDS response is deleted; an
 *       RDS or EDS resource that does not arrive within the initial fetch timeout (that of the config source asking
 *       for it, as in Envoy, else the client's; 0 is none), or is rejected before a good version arrived, is served
 *       empty. As in Envoy, a listener warms until its route configurations arrive and an EDS cluster until its
 *       load assignment does: the version published before serves meanwhile, and a new one is left out. A listener
 *       is checked as it arrives, warming or not, also by the holder's checks ({@link SnapshotHolder#addCheck}: the
 *       standalone proxy's, whether it can be bound), as Envoy creates a listener's socket before it warms.</li>
 *   <li>Every change is one new {@link ResourceBundle} applied through {@link SnapshotHolder#apply}; the first only
 *       once CDS, EDS, LDS and RDS have all arrived or timed out, so that readiness means a complete
 *       configuration.</li>
 *   <li>The types of {@link AdsOptions#agentTypes} (Istio's agent's, such as istiod's name table for the DNS proxy)
 *       are asked for on each stream once the listeners are, as Istio's agent asks for them on the stream it shares
 *       with Envoy; the first resource of each response goes to the type's handler, and the response is ACKed, or
 *       NACKed with the handler's error. A response with no resource is left unanswered, as the agent leaves it.</li>
 *   <li>With an {@link dev.inmesh.runtime.xds.sds.SdsSecretManager} ({@link #sds}), the SDS secrets whose
 *       {@code sds_config} is {@code ads: {}} are asked for on the stream (after the four types, by the names the
 *       clusters and listeners held name), ACKed or NACKed by name, and handed to the manager; a CDS or LDS response
 *       that names one not arrived yet is held (not ACKed) until it arrives or its initial fetch timeout ends.</li>
 *   <li>The stream reconnects with Envoy's back-off (fully jittered, doubling from 500 ms up to 30 s), to the next
 *       server when one cannot be reached, and asks again with the versions it holds. Meanwhile the last good
 *       snapshot keeps serving.</li>
 * </ul>
 *
 * <p>All state lives on one Vert.x worker context (so that parsing and compiling never hold an event loop);
 * {@link #status()} and {@link #dynamicState()} (the listeners and clusters warming and each resource's last rejected
 * update, which {@code /config_dump} shows as Envoy's does) may be read from any thread.
 */
public final class AdsClient {
    private static final System.Logger LOG = System.getLogger(AdsClient.class.getName());

    static final ServiceName SERVICE = ServiceName.create("envoy.service.discovery.v3", "AggregatedDiscoveryService");
    static final ServiceMethod<DiscoveryResponse, DiscoveryRequest> STREAM_AGGREGATED_RESOURCES =
            ServiceMethod.client(SERVICE, "StreamAggregatedResources", GrpcMessageEncoder.encoder(),
                    GrpcMessageDecoder.decoder(DiscoveryResponse.newBuilder()));
    static final ServiceMethod<DeltaDiscoveryResponse, DeltaDiscoveryRequest> DELTA_AGGREGATED_RESOURCES =
            ServiceMethod.client(SERVICE, "DeltaAggregatedResources", GrpcMessageEncoder.encoder(),
                    GrpcMessageDecoder.decoder(DeltaDiscoveryResponse.newBuilder()));

    /**
     * The longest a repeated NACK (the same version NACKed again with the same error) waits, so that a server that
     * answers each NACK by sending the NACKed version again does not loop with the client ({@link #nack}).
     */
    static final long MAX_REPEATED_NACK_DELAY_MILLIS = 5_000;

    /** The longest error_detail message sent, as Envoy's (gRPC carries status messages in size-limited trailers). */
    static final int MAX_ERROR_DETAIL_CHARS = 4096;

    private final Vertx vertx;
    private final AdsOptions options;
    private final SnapshotHolder holder;
    private final Node node;
    private final Backoff backoff;
    private final Map<ResourceType, SubscriptionState> states = new EnumMap<>(ResourceType.class);
    /** The agent types by type URL, each with whether it has been asked for on the current stream. */
    private final Map<String, boolean[]> agentAsked = new LinkedHashMap<>();
    private final Map<Integer, GrpcClient> clients = new HashMap<>();
    private final Set<Long> timers = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final Promise<Void> firstApply = Promise.promise();

    private Future<String> deployment;
    private Future<Void> closing;
    private volatile Context context;
    /** The stream: of DiscoveryRequests, or of DeltaDiscoveryRequests with {@link AdsOptions#delta}. */
    private GrpcClientRequest<?, ?> stream;
    private long streamId;
    private boolean streamWorked;
    private boolean nodeSent;
    private int serverIndex;
    private boolean closed;
    private boolean applied;
    private Instant connectedSince;
    private String lastError = "";
    private volatile XdsStatus status;
    private volatile DynamicState dynamicState = DynamicState.NONE;
    /** The listeners of the last published bundle: what serves while a changed listener warms. */
    private Map<String, SubscriptionState.Entry> publishedListeners = Map.of();
    /** The clusters of the last published bundle: what serves while a changed cluster warms. */
    private Map<String, SubscriptionState.Entry> publishedClusters = Map.of();

    /**
     * A bootstrap's {@code static_resources}, served beside what the server sends, as Envoy serves them: a listener
     * or cluster the server sends under a static one's name is left out (Envoy refuses to update a static resource),
     * and the RDS and EDS names static listeners and clusters use are subscribed to.
     */
    private volatile ResourceBundle statics = ResourceBundle.EMPTY;
    /** The files Istio's SDS secrets default and ROOTCA name, or null (refused). */
    private volatile WorkloadIdentity identity;
    private volatile dev.inmesh.runtime.xds.sds.SdsSecretManager sds;
    /** The SDS secrets asked for on this stream ({@code sds_config: {ads: {}}}). */
    private final SubscriptionState secrets = SubscriptionState.secrets();
    /** The SDS secret configs of each cluster and listener message held, as last computed (by identity). */
    private Map<com.google.protobuf.Message, List<SdsSecretConfig>> secretNames = new java.util.IdentityHashMap<>();

    /** The steps of the taking of a response at which {@link #taking} runs. */
    enum Step {
        /** As the response is decoded, before its resources are. */
        DECODING,
        /** Once its resources are applied, before its ACK or NACK is recorded. */
        APPLIED,
        /** Once its ACK or NACK is recorded, before what follows from it. */
        ANSWERED
    }

    /**
     * Runs at each {@link Step} of the taking of a response of the four types ({@link #process}), and of a Secret
     * response once its secrets are taken ({@link Step#APPLIED}, {@link #takeSecrets}): a seam through which a test
     * makes the client fail there; set before start.
     */
    java.util.function.BiConsumer<Step, DiscoveryResponse> taking = (step, r) -> {};

    public AdsClient(Vertx vertx, AdsOptions options, SnapshotHolder holder) {
        this.vertx = vertx;
        this.options = options;
        this.holder = holder;
        this.node = NodeBuilder.build(options.node());
        this.backoff = new Backoff(options.backoffBase(), options.backoffMax(), new Random());
        for (ResourceType t : ResourceType.values()) {
            states.put(t, new SubscriptionState(t));
        }
        options.agentTypes().keySet().forEach(t -> agentAsked.put(t, new boolean[1]));
        holder.stats().connected(false);
        // as Envoy's cluster manager, which warms only the clusters added after its initialization
        holder.heldWarming(() -> warmingAfterStart);
        publishStatus();
    }

    /** Serves {@code resources} (a bootstrap's {@code static_resources}) beside the server's; call before start. */
    public void staticResources(ResourceBundle resources) {
        this.statics = resources;
    }

    /**
     * Reads Istio's SDS secrets {@code default} and {@code ROOTCA} from the files of {@code identity} (null: refuses
     * them, the default); call before start.
     */
    public void identity(WorkloadIdentity identity) {
        this.identity = identity;
    }

    /**
     * Fetches the secrets of TLS contexts whose {@code sds_config} names a cluster {@code sds} knows (a bootstrap's
     * static {@code sds-grpc}, as the agent's bootstrap gives Envoy) with it, rather than refuse them; before start.
     * A response rejected while a secret had not arrived is decoded again once it has, as for the identity's files.
     * The secrets whose {@code sds_config} is {@code ads: {}} it takes from this client's stream, which subscribes
     * to those its clusters and listeners name.
     */
    public void sds(dev.inmesh.runtime.xds.sds.SdsSecretManager sds) {
        this.sds = sds;
        if (sds != null) {
            sds.overAds();
        }
    }

    /** The identity's files and the SDS secrets' versions, as a change shows in them. */
    private List<String> secretsFingerprint() {
        List<String> out = new ArrayList<>(identity == null ? List.of() : identity.fingerprint());
        if (sds != null) {
            out.addAll(sds.fingerprint());
        }
        return out;
    }

    /**
     * Opens the stream. The future completes when the first complete configuration has been applied to the holder
     * (and {@link SnapshotHolder#ready()} turns true), or, with no server reachable, once the initial fetch timeouts
     * of CDS and then LDS are over (never with a zero one, which waits for a server); it fails only if the client is
     * closed first.
     */
    public synchronized Future<Void> start() {
        if (deployment != null || closing != null) {
            throw new IllegalStateException("started already");
        }
        // A worker context: parsing responses and compiling snapshots never hold an event loop, and all the state
        // is still touched by one thread at a time.
        deployment = vertx.deployVerticle(new VerticleBase() {
            @Override
            public Future<?> start() {
                AdsClient.this.context = context;
                startFetchTimer(states.get(ResourceType.CLUSTER)); // as Envoy's CDS, before any stream opens
                connect();
                return Future.succeededFuture();
            }
        }, new DeploymentOptions().setThreadingModel(ThreadingModel.WORKER));
        return deployment.compose(id -> firstApply.future());
    }

    /** Ends the stream and the reconnects; the holder keeps its last snapshot. */
    public synchronized Future<Void> close() {
        if (closing == null) {
            closing = doClose();
        }
        return closing;
    }

    private Future<Void> doClose() {
        Promise<Void> done = Promise.promise();
        Runnable r = () -> {
            closed = true;
            timers.forEach(vertx::cancelTimer);
            timers.clear();
            cancelStream();
            firstApply.tryFail("the ADS client was closed before a first configuration arrived");
            List<Future<Void>> closes = new ArrayList<>();
            clients.values().forEach(c -> closes.add(c.close()));
            clients.clear();
            connectedSince = null;
            holder.stats().connected(false);
            publishStatus();
            within(vertx, Future.join(closes), CLOSE_STEP_MILLIS, "closing the connections to the servers")
                    .onComplete(done);
        };
        if (deployment == null) {
            closed = true;
            return Future.succeededFuture();
        }
        return deployment.compose(id -> {
            context.runOnContext(v -> r.run());
            return done.future().eventually(() -> within(vertx, vertx.undeploy(id), CLOSE_STEP_MILLIS,
                    "undeploying the client"));
        });
    }

    /** How long a close waits for each of its steps before it goes on without it. */
    static final long CLOSE_STEP_MILLIS = 2_000;

    /**
     * {@code step}, or, if it has not completed within {@code millis}, a success with a warning: a close
     * ends even when a connection's shutdown does not (the holder keeps its snapshot either way), so that the
     * application's own shutdown is never held by the control plane's connection.
     */
    static Future<Void> within(Vertx vertx, Future<?> step, long millis, String what) {
        Promise<Void> bounded = Promise.promise();
        long timer = vertx.setTimer(millis, t -> {
            if (bounded.tryComplete()) {
                LOG.log(System.Logger.Level.WARNING, "ADS client close: {0} did not end within {1} ms; going on",
                        what, millis);
            }
        });
        step.onComplete(ar -> {
            vertx.cancelTimer(timer);
            if (ar.failed()) {
                LOG.log(System.Logger.Level.WARNING, "ADS client close: {0} failed: {1}", what, ar.cause().toString());
            }
            bounded.tryComplete();
        });
        return bounded.future();
    }

    /** The stream's status now. */
    public XdsStatus status() {
        return status;
    }

    /** The listeners and clusters warming and the rejected updates now, for the config dump. */
    public DynamicState dynamicState() {
        return dynamicState;
    }

    // ---- the stream ----

    private void connect() {
        if (closed) {
            return;
        }
        AdsOptions.XdsServer server = options.servers().get(serverIndex);
        long id = ++streamId;
        streamWorked = false;
        GrpcClient client = clients.computeIfAbsent(serverIndex, i -> newClient(server));
        SocketAddress address = SocketAddress.inetSocketAddress(server.port(), server.host());
        server.token(vertx).compose(token -> request(client, address).map(req -> {
                    if (token != null) {
                        req.headers().set("authorization", "Bearer " + token);
                    }
                    return req;
                })).onComplete(ar -> {
                    if (id != streamId || closed) {
                        if (ar.succeeded()) {
                            cancelQuietly(ar.result());
                        }
                        return;
                    }
                    if (ar.failed()) {
                        streamClosed(id, ar.cause());
                        return;
                    }
                    opened(id, ar.result(), server);
                });
    }

    /** A new stream: DeltaAggregatedResources with {@link AdsOptions#delta}, else StreamAggregatedResources. */
    private Future<GrpcClientRequest<?, ?>> request(GrpcClient client, SocketAddress address) {
        return options.delta() ? client.request(address, DELTA_AGGREGATED_RESOURCES).map(r -> r)
                : client.request(address, STREAM_AGGREGATED_RESOURCES).map(r -> r);
    }

    private <Q, R> void opened(long id, GrpcClientRequest<Q, R> req, AdsOptions.XdsServer server) {
        stream = req;
        nodeSent = false;
        connectedSince = Instant.now();
        holder.stats().connected(true);
        lastError = "";
        req.exceptionHandler(e -> streamClosed(id, e));
        req.response().onComplete(ar -> {
            if (ar.failed()) {
                streamClosed(id, ar.cause());
                return;
            }
            GrpcClientResponse<Q, R> resp = ar.result();
            resp.handler(r -> onResponse(id, r instanceof DeltaDiscoveryResponse delta ? Update.of(delta)
                    : Update.of((DiscoveryResponse) r), false));
            resp.exceptionHandler(e -> streamClosed(id, e));
            resp.endHandler(v -> streamClosed(id, new StreamEnded(resp.status(), resp.statusMessage())));
        });
        LOG.log(System.Logger.Level.INFO, "ADS stream open to {0}", server.address());
        if (!options.keepaliveInterval().isZero()) {
            timer(options.keepaliveInterval().toMillis(), () -> keepalive(id));
        }
        for (SubscriptionState s : states.values()) {
            s.sentOnStream = false;
            s.nonce = "";
            s.answer = null; // it answered the old stream's response
        }
        agentAsked.values().forEach(asked -> asked[0] = false);
        for (ResourceType t : ResourceType.values()) {
            SubscriptionState s = states.get(t);
            s.dropParked(); // the new stream's server sends it again
            if (s.wanted() && !(t == ResourceType.LISTENER && listenersWait())) {
                // As Envoy's mux on a new stream (GrpcMuxImpl::onStreamEstablished): each type's request, no nonce,
                // the version last taken; CDS's waits as its answers do while a cluster warms (its paused type's
                // request goes once it resumes), so that the server is not told of clusters still warming.
                s.answer = new SubscriptionState.Answer(s.ackedVersion, "", null, false);
                sendAnswer(s, false);
            }
        }
        // SDS last, as Envoy's mux asks for the types in the order they were first subscribed to
        secrets.sentOnStream = false;
        secrets.nonce = "";
        secrets.answer = null;
        if (sds != null) {
            secrets.names = retainSecrets();
            if (!secrets.names.isEmpty()) {
                send(secrets, secrets.ackedVersion, "", null);
            }
        }
        publishStatus();
    }

    /**
     * As Envoy at start, listeners are asked for only once the clusters and their endpoints have arrived (or timed
     * out), so that no route names a cluster not yet known. Once configured, a new stream asks for all at once.
     */
    private boolean listenersWait() {
        return !applied && !(states.get(ResourceType.CLUSTER).complete()
                && states.get(ResourceType.ENDPOINT).complete());
    }

    private void sendDeferredListeners() {
        SubscriptionState l = states.get(ResourceType.LISTENER);
        if (listenersWait()) {
            return;
        }
        if (!applied && !clustersWarm()) {
            // as Envoy's cluster manager initialized, its server's init manager waiting for the listeners
            holder.clustersArrived();
        }
        startFetchTimer(l); // subscribed now, connected or not
        if (stream != null && !l.sentOnStream) {
            send(l, l.ackedVersion, "", null);
        }
    }

    /**
     * Whether a cluster the first configuration is to have, the bootstrap's or the server's, has health checks: its
     * first round, which Envoy's cluster manager initializes after, runs only once the configuration is applied.
     */
    private boolean clustersWarm() {
        for (Cluster c : statics.clusters().values()) {
            if (c.healthCheck() != null) {
                return true;
            }
        }
        for (SubscriptionState.Entry e : states.get(ResourceType.CLUSTER).resources.values()) {
            if (e.resource() instanceof Cluster c && c.healthCheck() != null) {
                return true;
            }
        }
        return false;
    }

    /**
     * Sends an HTTP/2 PING; a PING unanswered in time ends the stream and drops its connection. The PING is written
     * from the connection's event loop, where Vert.x records the PINGs awaiting an ACK: written from the client's
     * worker, its ACK could be read before it was recorded, and be dropped. The answer comes back to the client's
     * context.
     */
    private void keepalive(long id) {
        if (id != streamId || stream == null) {
            return;
        }
        HttpConnection connection = stream.connection();
        long timeout = options.keepaliveTimeout().toMillis();
        boolean[] answered = new boolean[1];
        timer(timeout, () -> {
            if (!answered[0] && id == streamId) {
                // the stream reset first: written after the close, its RST_STREAM met a closed channel, which Vert.x
                // logged as an error with no message (the exception's, for want of a handler on the connection)
                streamClosed(id, new IllegalStateException("keepalive PING unanswered for " + timeout + " ms"));
                connection.close();
            }
        });
        onEventLoop(connection, () -> connection.ping(Buffer.buffer(new byte[8])).onComplete(ar ->
                context.runOnContext(v -> {
                    answered[0] = true;
                    if (ar.failed()) {
                        streamClosed(id, ar.cause());
                    } else {
                        timer(options.keepaliveInterval().toMillis(), () -> keepalive(id));
                    }
                })));
    }

    /** Runs {@code action} on the event loop of {@code connection}'s channel. */
    private static void onEventLoop(HttpConnection connection, Runnable action) {
        if (connection instanceof HttpClientConnectionInternal internal) {
            internal.context().runOnContext(v -> action.run());
        } else {
            action.run();
        }
    }

    private void streamClosed(long id, Throwable cause) {
        if (id != streamId || closed) {
            return;
        }
        streamId++;
        cancelStream();
        AdsOptions.XdsServer server = options.servers().get(serverIndex);
        lastError = server.address() + ": " + describe(cause);
        connectedSince = null;
        holder.stats().connected(false);
        // as Envoy's mux tells each subscription started that the stream failed (a connection failure)
        states.values().stream().filter(s -> s.fetchTimerStarted)
                .forEach(s -> count(s, ConfigStats.Subscription::failed));
        if (streamWorked) {
            backoff.reset();
        } else {
            serverIndex = (serverIndex + 1) % options.servers().size();
        }
        long delay = backoff.nextMillis();
        LOG.log(closeLevel(cause), "ADS stream to {0} ended ({1}); reconnecting to {2} in {3} ms",
                server.address(), describe(cause), options.servers().get(serverIndex).address(), delay);
        timer(delay, this::connect);
        publishStatus();
    }

    /**
     * How loud a stream's end is, as Envoy's config stream logs its close: quietly (here INFO, Envoy's debug) a close
     * with status OK (istiod ends each stream after its maximum connection age) and the first of a run of closes with
     * a status worth retrying (UNAVAILABLE, which connection failures are, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED); a
     * WARNING for any other status, a status other than the run's, or the run's status once it has lasted longer
     * than the longest back-off. A response on a stream ends the run.
     */
    private System.Logger.Level closeLevel(Throwable cause) {
        GrpcStatus status = cause instanceof StreamEnded ended ? ended.status
                : cause instanceof io.vertx.grpc.common.GrpcErrorException error ? error.status()
                : GrpcStatus.UNAVAILABLE;
        if (status == GrpcStatus.OK) {
            return System.Logger.Level.INFO;
        }
        if (status != GrpcStatus.UNAVAILABLE && status != GrpcStatus.DEADLINE_EXCEEDED
                && status != GrpcStatus.RESOURCE_EXHAUSTED) {
            return System.Logger.Level.WARNING;
        }
        long now = System.nanoTime();
        if (closeRunStatus != status) {
            boolean first = closeRunStatus == null;
            closeRunStatus = status;
            closeRunSince = now;
            return first ? System.Logger.Level.INFO : System.Logger.Level.WARNING;
        }
        return now - closeRunSince > options.backoffMax().toNanos() ? System.Logger.Level.WARNING
                : System.Logger.Level.INFO;
    }

    /** The status of the run of stream closes {@link #closeLevel} is in, null when none; and when it began. */
    private GrpcStatus closeRunStatus;
    private long closeRunSince;

    /** A stream the server ended, with its gRPC status. */
    private static final class StreamEnded extends IllegalStateException {
        final transient GrpcStatus status;

        StreamEnded(GrpcStatus status, String message) {
            super("the server ended the stream: " + status + (message == null ? "" : " " + message));
            this.status = status;
        }
    }

    private void cancelStream() {
        if (stream != null) {
            cancelQuietly(stream);
            stream = null;
        }
    }

    private static void cancelQuietly(GrpcClientRequest<?, ?> req) {
        try {
            req.cancel();
        } catch (RuntimeException e) {
            // ended already
        }
    }

    private GrpcClient newClient(AdsOptions.XdsServer server) {
        GrpcClientOptions grpc = new GrpcClientOptions().setMaxMessageSize(options.maxMessageBytes());
        return GrpcClient.client(vertx, grpc, server.httpOptions(options.connectTimeout()).setTcpKeepAlive(true));
    }

    /**
     * Sends a request of {@code s}'s type: an ACK ({@code nonce} set), a NACK ({@code error} too), or a first request
     * or a change of the names subscribed to (no nonce). Over delta xDS, {@code version} is not sent; the first
     * request of a type on a stream subscribes to its names (none for a wildcard type) and carries the versions held
     * ({@code initial_resource_versions}), and any later one the names subscribed to and unsubscribed from since.
     */
    @SuppressWarnings("unchecked")
    private void send(SubscriptionState s, String version, String nonce, String error) {
        if (stream == null) {
            return;
        }
        com.google.protobuf.Message request;
        Status status = errorDetail(error);
        request = options.delta() ? deltaRequest(s, nonce, status)
                : request(s.typeUrl, version, nonce, s.wildcard ? Set.of() : s.names, status);
        nodeSent = true;
        s.sentOnStream = true;
        ((GrpcClientRequest<com.google.protobuf.Message, ?>) stream).write(request);
        startFetchTimer(s);
        if (s.type == ResourceType.LISTENER) {
            agentAsked.forEach((type, asked) -> {
                if (!asked[0]) {
                    asked[0] = true;
                    sendAgent(type, "", "", null);
                }
            });
        }
    }

    /**
     * Sends the answer to the latest response of {@code s}'s type if one waits and may go: never while the type is
     * {@linkplain SubscriptionState#paused paused} (its resume sends it), and, unless {@code withNames} (the names
     * asked for changed: it goes at once, carrying them), not while a repeated NACK waits for its delay nor, for CDS,
     * while a cluster warms after the start. As Envoy's cluster manager pauses CDS on the ADS stream while a cluster
     * added after its start warms: the answer to the clusters waits until none warms (its endpoints arrived, or
     * their initial fetch timed out), telling the server when the clusters it sent can be used, and so does a new
     * stream's first request of the clusters; a later answer replaces one waiting, as only the latest request of
     * Envoy's paused type goes.
     */
    private void sendAnswer(SubscriptionState s, boolean withNames) {
        SubscriptionState.Answer a = s.answer;
        if (a == null || s.paused || !withNames && (a.delayed()
                || s.type == ResourceType.CLUSTER && clustersWarmingAfterStart())) {
            return;
        }
        s.answer = null;
        send(s, a.version(), a.nonce(), a.error());
    }

    /**
     * Tells the server the names of {@code s}'s type asked for now (RDS, EDS): with the answer to its latest response
     * when one waits, else in a request of its own (no ACK: the last version taken, and over delta xDS no nonce, as
     * Envoy's). While the type is paused the change waits for the response's answer.
     */
    private void askNames(SubscriptionState s) {
        if (s.paused) {
            s.namesChanged = true;
        } else if (s.answer != null) {
            sendAnswer(s, true);
        } else {
            send(s, s.ackedVersion, options.delta() ? "" : s.nonce, null);
        }
    }

    /** Ends the pause of {@code s}'s type: one request goes, the response's answer with the names asked for now. */
    private void resume(SubscriptionState s) {
        s.paused = false;
        boolean names = s.namesChanged;
        s.namesChanged = false;
        if (names) {
            askNames(s);
        } else {
            sendAnswer(s, false);
        }
    }

    /** Whether, the first configuration applied, a cluster warms: held back until its endpoints arrive. */
    private boolean clustersWarmingAfterStart() {
        return applied && !warming(ResourceType.CLUSTER, publishedClusters).isEmpty();
    }

    /** A NACK's error_detail for {@code error} (null for none): as Envoy, INTERNAL, the message cut at 4 KiB. */
    private static Status errorDetail(String error) {
        return error == null ? null
                : Status.newBuilder().setCode(Code.INTERNAL_VALUE).setMessage(truncated(error)).build();
    }

    /** A request of agent type {@code type}: the first of a stream (no nonce), or an ACK or a NACK ({@code error}). */
    @SuppressWarnings("unchecked")
    private void sendAgent(String type, String version, String nonce, String error) {
        Status status = errorDetail(error);
        com.google.protobuf.Message request;
        if (options.delta()) {
            DeltaDiscoveryRequest.Builder b = DeltaDiscoveryRequest.newBuilder().setTypeUrl(type)
                    .setResponseNonce(nonce);
            if (status != null) {
                b.setErrorDetail(status);
            }
            request = b.build();
        } else {
            DiscoveryRequest.Builder b = DiscoveryRequest.newBuilder().setTypeUrl(type).setVersionInfo(version)
                    .setResponseNonce(nonce);
            if (status != null) {
                b.setErrorDetail(status);
            }
            request = b.build();
        }
        ((GrpcClientRequest<com.google.protobuf.Message, ?>) stream).write(request);
    }

    /**
     * A response of an agent type: its first resource to the type's handler, then the ACK, or the NACK with what the
     * handler threw, with the response's version as Istio's agent answers; one with no resource is left unanswered.
     */
    private void onAgentResponse(String type, Update u) {
        DiscoveryResponse r = u.response();
        if (!agentAsked.get(type)[0] || r.getResourcesCount() == 0) {
            return;
        }
        String error = null;
        try {
            com.google.protobuf.Any resource = r.getResources(0);
            if (u.delta()) {
                resource = io.envoyproxy.envoy.service.discovery.v3.Resource.parseFrom(resource.getValue())
                        .getResource();
            }
            options.agentTypes().get(type).accept(resource);
        } catch (Exception e) {
            error = type + " (version " + r.getVersionInfo() + "): " + describe(e);
            LOG.log(System.Logger.Level.WARNING, "NACK of {0}", error);
        }
        sendAgent(type, r.getVersionInfo(), r.getNonce(), error);
    }

    private DeltaDiscoveryRequest deltaRequest(SubscriptionState s, String nonce, Status error) {
        Set<String> names = s.wildcard ? Set.of() : s.names;
        DeltaDiscoveryRequest r = deltaRequest(s.typeUrl, nonce, names, s.namesSent, s.sentOnStream, held(s),
                error);
        s.namesSent = new TreeSet<>(names);
        return r;
    }

    /**
     * The version of each resource of {@code s}'s type held, by name: not one served empty after its initial fetch
     * timeout, nor one the server removed since; of the secrets, those the manager took of the names asked for.
     */
    private Map<String, String> held(SubscriptionState s) {
        Map<String, String> held = new LinkedHashMap<>();
        if (s == secrets) {
            held.putAll(sds.adsVersions());
            held.keySet().retainAll(s.names);
            return held;
        }
        s.resources.forEach((name, e) -> {
            if (e.message() != null && !s.removedByServer.contains(name)) {
                held.put(name, e.version().versionInfo());
            }
        });
        return held;
    }

    /**
     * A delta request of {@code typeUrl}: the first of a stream ({@code sentOnStream} false) subscribes to
     * {@code names} (none for a wildcard type: everything, as Envoy asks) and carries the versions {@code held};
     * a later one subscribes to what {@code names} has beyond {@code namesSent} and unsubscribes from the rest.
     */
    private DeltaDiscoveryRequest deltaRequest(String typeUrl, String nonce, Set<String> names, Set<String> namesSent,
                                               boolean sentOnStream, Map<String, String> held, Status error) {
        DeltaDiscoveryRequest.Builder b = DeltaDiscoveryRequest.newBuilder()
                .setTypeUrl(typeUrl)
                .setResponseNonce(nonce);
        if (!sentOnStream) {
            b.addAllResourceNamesSubscribe(names);
            b.putAllInitialResourceVersions(held);
        } else {
            names.stream().filter(n -> !namesSent.contains(n)).forEach(b::addResourceNamesSubscribe);
            namesSent.stream().filter(n -> !names.contains(n)).forEach(b::addResourceNamesUnsubscribe);
        }
        if (!nodeSent) {
            b.setNode(node);
        }
        if (error != null) {
            b.setErrorDetail(error);
        }
        return b.build();
    }

    /** A state of the world request of {@code typeUrl} naming {@code names} (none for a wildcard type). */
    private DiscoveryRequest request(String typeUrl, String version, String nonce, Set<String> names,
                                     Status error) {
        DiscoveryRequest.Builder b = DiscoveryRequest.newBuilder()
                .setTypeUrl(typeUrl)
                .setVersionInfo(version)
                .setResponseNonce(nonce)
                .addAllResourceNames(names);
        if (!nodeSent) {
            b.setNode(node);
        }
        if (error != null) {
            b.setErrorDetail(error);
        }
        return b.build();
    }

    /**
     * Starts a wildcard type's initial fetch timeout, once. As Envoy's, it runs from when the type is subscribed to
     * (CDS at start, LDS once the clusters have arrived or timed out), whether a stream is open or not: a server
     * that cannot be reached holds the first configuration no longer than one that does not answer.
     */
    private void startFetchTimer(SubscriptionState s) {
        if (s.fetchTimerStarted) {
            return;
        }
        s.fetchTimerStarted = true;
        count(s, ConfigStats.Subscription::started);
        if (s.wildcard && !options.initialFetchTimeout().isZero()) {
            timer(options.initialFetchTimeout().toMillis(), () -> {
                if (!s.received) {
                    count(s, ConfigStats.Subscription::initFetchTimedOut);
                    LOG.log(System.Logger.Level.WARNING, "no {0} arrived within the initial fetch timeout "
                            + "{1}: continuing without", s.type.kind(), options.initialFetchTimeout());
                    s.received = true;
                    afterChange(false);
                }
            });
        }
    }

    /** An error_detail message as Envoy sends it: the first 4096 characters, marked when there were more. */
    public static String truncated(String error) {
        return error.length() <= MAX_ERROR_DETAIL_CHARS ? error
                : error.substring(0, MAX_ERROR_DETAIL_CHARS) + "...(truncated)";
    }

    // ---- responses ----

    /**
     * @param again whether this is the latest response of its type decoded again after the identity's files changed
     *     ({@link #checkIdentity}): still rejected, it is not NACKed a second time
     */
    private void onResponse(long id, Update u, boolean again) {
        if (id != streamId || closed) {
            return;
        }
        DiscoveryResponse r = u.response();
        streamWorked = true;
        closeRunStatus = null;
        if (agentAsked.containsKey(r.getTypeUrl())) {
            onAgentResponse(r.getTypeUrl(), u);
            return;
        }
        ResourceType type = ResourceType.ofTypeUrl(r.getTypeUrl());
        boolean secret = sds != null && r.getTypeUrl().equals(secrets.typeUrl);
        if (type == null && !secret) {
            // As Envoy: a response of a type not subscribed to is ignored, neither ACKed nor NACKed, since a request
            // of that type would subscribe to it.
            LOG.log(System.Logger.Level.WARNING, "ignoring a response of type_url \"{0}\" (version {1}): not a "
                    + "type Inmesh subscribes to", r.getTypeUrl(), r.getVersionInfo());
            return;
        }
        SubscriptionState s = secret ? secrets : states.get(type);
        if (!s.sentOnStream) {
            // Ignored as well when its type was not asked for on this stream yet (RDS before a listener names a
            // route, LDS before the clusters are in), as Envoy drops a response with no subscription: its ACK would
            // be the type's first request, naming no resource, which subscribes to every resource of the type.
            LOG.log(System.Logger.Level.WARNING, "ignoring a {0} response (version {1}): not asked for yet",
                    s.kind, r.getVersionInfo());
            return;
        }
        if (!again) {
            s.answer = null; // a repeated NACK still waiting answered an older response: this one supersedes it
        }
        // As Envoy's mux pauses a type while it processes a response of it: a change of the names asked for that
        // the response brings (a listener or cluster done warming letting go of an old name) goes out with its answer,
        // one request with the new version, not before it with the old version and the new nonce (which a server
        // comparing version and nonce takes for a NACK).
        // So, as Envoy's listener manager pauses RDS while it takes an LDS response and its cluster manager EDS while
        // it takes a CDS one (LdsApiImpl::onConfigUpdate, CdsApiHelper::onConfigUpdate), do the route configurations
        // or load assignments the response makes asked for: one request with the names its net effect asks for (a
        // listener added then refused by the holder's check never has its route configuration asked for), before
        // the response's own answer, as Envoy's resumes them first.
        SubscriptionState dependent = dependent(s);
        s.paused = true;
        if (dependent != null) {
            dependent.paused = true;
        }
        try {
            if (secret) {
                takeSecrets(u);
            } else {
                process(id, s, u, again);
            }
        } catch (RuntimeException e) {
            // what follows from a response once it is answered (its taking failed is NACKed in process): the
            // answer stands, and the failure is the client's own, logged here rather than left to the event loop
            LOG.log(System.Logger.Level.ERROR, "after " + s.kind + " version " + r.getVersionInfo() + " was taken", e);
        } finally {
            if (dependent != null) {
                resume(dependent);
            }
            resume(s);
        }
    }

    /** The type whose names a response of {@code s}'s type changes: RDS for LDS, EDS for CDS; else null. */
    private SubscriptionState dependent(SubscriptionState s) {
        return s.type == ResourceType.LISTENER ? states.get(ResourceType.ROUTE)
                : s.type == ResourceType.CLUSTER ? states.get(ResourceType.ENDPOINT) : null;
    }

    /**
     * What the taking of a response of {@code s}'s type may change, as it is now: of its type, and of the
     * {@linkplain #dependent dependent} type, whose names the response changes (the route configurations or load
     * assignments no longer asked for let go of).
     */
    private Map<SubscriptionState, SubscriptionState.Held> heldBefore(SubscriptionState s) {
        Map<SubscriptionState, SubscriptionState.Held> held = new LinkedHashMap<>();
        held.put(s, s.held());
        SubscriptionState dependent = dependent(s);
        if (dependent != null) {
            held.put(dependent, dependent.held());
        }
        return held;
    }

    /**
     * A response whose taking failed in the client itself (a fault of Inmesh's, not the resource's), as Envoy's mux
     * takes an exception thrown while it decodes or applies a response (GrpcMuxImpl::onDiscoveryResponse): the
     * response is NACKed with the exception's text, and what its type and the dependent type held before it
     * ({@code held}: their resources, the names asked for and awaited) is put back and published again, so that
     * nothing of it serves and nothing it let go of is asked for again (Envoy never applies a failed response, so the
     * route configurations or load assignments an LDS or CDS response would let go of stay); and, as the mux
     * fails every watch of the type then, it is rejected whole ({@link #failWatches}). Decoded again ({@code again}),
     * it was answered and its watches failed already.
     */
    private void failed(SubscriptionState s, Update u, Map<SubscriptionState, SubscriptionState.Held> held,
                        boolean again, RuntimeException e) {
        DiscoveryResponse r = u.response();
        LOG.log(System.Logger.Level.ERROR, "cannot take " + s.kind + " version " + r.getVersionInfo(), e);
        held.forEach(SubscriptionState::restore);
        s.nonce = r.getNonce();
        if (!again) {
            failWatches(s);
            reject(s, r, Map.of("", "the whole " + s.kind + " response is rejected: " + e), Instant.now(), false);
        }
        afterChange(resubscribe() | applied);
    }

    /** A response of {@code s}'s type, whose requests wait meanwhile ({@link SubscriptionState#paused}). */
    private void process(long id, SubscriptionState s, Update u, boolean again) {
        DiscoveryResponse r = u.response();
        ResourceType type = s.type;
        s.rejected = null;
        if (!s.wildcard && s.names.isEmpty() && !u.delta()) {
            if (!again) { // decoded again, it was NACKed already: not read, it is not answered again
                unwatched(s, r);
            }
            return;
        }
        Instant now = Instant.now();
        // decoded again, the response is the one that arrived then: still rejected, its type's update time, its NACK
        // and its resources' failed attempts keep that time (a later time would read as a newer response accepted)
        Instant arrived = again ? s.rejectedAt : now;
        s.nonce = r.getNonce();
        s.lastUpdated = arrived;
        s.dropParked();
        Set<String> awaited = new TreeSet<>();
        // As Envoy's mux, which hands each watch only the names it asked for (RDS and EDS): a route configuration or
        // load assignment not asked for is left out unread, never NACKed, over state of the world as over delta
        Parsers.Parse<ResponseDecoder.Decoded, RuntimeException> decode = () -> {
            taking.accept(Step.DECODING, r);
            return ResponseDecoder.decode(type, r, new ResourceBundle.Version(r.getVersionInfo(), now), s.resources,
                    u.delta(), name -> s.wildcard || s.names.contains(name));
        };
        Map<SubscriptionState, SubscriptionState.Held> held = heldBefore(s);
        ResponseDecoder.Decoded d;
        boolean whole;
        Map<String, String> errors = new LinkedHashMap<>();
        Set<String> changed = new LinkedHashSet<>();
        boolean removed = false;
        // As Envoy's mux (GrpcMuxImpl::onDiscoveryResponse), whose try covers the decoding of a response and its
        // watches' taking of it, not its answer: a failure of the client's own meanwhile fails the response
        // (failed()); its ACK or NACK is recorded after, and what follows from that is no part of its taking.
        try {
            d = Parsers.withIdentity(identity, () -> Parsers.withSds(sds,
                    () -> sds == null ? decode.run() : sds.collectingAwaited(awaited, decode)));
            errors.putAll(d.errors());
            whole = d.undecodable() || u.namedTwice() != null;
            if (awaited.isEmpty() && !whole) {
                removed = take(s, u, d, errors, changed);
                taking.accept(Step.APPLIED, r);
            }
        } catch (RuntimeException e) {
            failed(s, u, held, again, e);
            return;
        }
        if (!awaited.isEmpty() && !whole) {
            // all the ADS secrets its resources name, not only the first missing one each parse stopped at
            List<com.google.protobuf.Message> messages = new ArrayList<>(d.rejected().values());
            d.valid().values().forEach(e -> messages.add(e.message()));
            awaited.addAll(adsSecretNames(messages));
            park(id, s, u, awaited);
            return;
        }
        if (u.namedTwice() != null) {
            errors.put(u.namedTwice(), type.about(u.namedTwice()) + "named twice among the resources "
                    + "and removed_resources of one delta response");
        }
        if (whole) {
            // As Envoy: a resource that cannot be decoded (a type_url other than the response's, bytes that do not
            // parse, or a value the proto constraints of Envoy's API refuse) rejects the whole response; nothing is
            // applied and nothing absent from it is deleted. So does, over delta xDS, a name sent twice among the
            // resources added and removed.
            errors.put("", "the whole " + type.kind() + " response is rejected");
            boolean served = failWatches(s);
            reject(s, r, errors, now, false);
            afterChange(served);
            return;
        }
        if (!changed.isEmpty() && !errors.containsKey("")) {
            s.changedVersion = r.getVersionInfo(); // as Envoy's, even when the response is NACKed in part
        }

        recordFailures(s, u, d, errors, arrived);
        if (errors.isEmpty()) {
            s.lastUpdated = now;
            s.ackedVersion = r.getVersionInfo();
            s.repeatedNacks = 0;
            count(s, stats -> stats.accepted(now.toEpochMilli()));
            publishStatus(); // what the server sees ACKed, the status and the config dump show already
            s.answer = new SubscriptionState.Answer(s.ackedVersion, r.getNonce(), null, false);
        } else {
            if (!again) {
                reject(s, r, errors, now, u.delta());
            }
            if (identity != null || sds != null) {
                s.rejected = u;
                s.rejectedOnStream = id;
                s.rejectedAt = arrived;
                watchIdentity();
            }
        }
        taking.accept(Step.ANSWERED, r);
        afterChange(removed);
    }

    /**
     * Takes a response decoded, neither rejected whole nor held for secrets: its resources go into what {@code s}
     * holds (for a wildcard type, what it deletes goes), the holder checks or publishes them, and what is refused
     * joins {@code errors}. Adds the names changed to {@code changed}; returns whether a resource no longer needed was
     * dropped.
     */
    private boolean take(SubscriptionState s, Update u, ResponseDecoder.Decoded d, Map<String, String> errors,
                         Set<String> changed) {
        ResourceType type = s.type;
        Map<String, SubscriptionState.Entry> before = s.resources;
        Map<String, SubscriptionState.Entry> next = new LinkedHashMap<>(before);
        if (s.wildcard) {
            s.received = true;
            // state of the world: what a response leaves out is deleted; delta: what it names in removed_resources
            for (String name : u.delta() ? u.removed() : before.keySet()) {
                if (before.containsKey(name) && !d.valid().containsKey(name) && !errors.containsKey(name)) {
                    next.remove(name);
                    changed.add(name);
                }
            }
        } else {
            if (!u.removed().isEmpty()) {
                // As Envoy's RDS and EDS: the server cannot delete what a listener or a cluster asks for
                LOG.log(System.Logger.Level.WARNING, "ignoring the removal of {0} {1}: still asked for",
                        type.kind(), u.removed());
                u.removed().stream().filter(s.names::contains).forEach(s.removedByServer::add);
                if (type == ResourceType.ENDPOINT) {
                    // but Envoy's EDS cluster takes it as an empty update: one waiting for its first load
                    // assignment stops warming, with no hosts
                    serveEmptyIfPending(s, u.removed(), next, changed);
                }
            }
            s.removedByServer.removeAll(d.valid().keySet());
            s.pending.removeAll(d.valid().keySet());
            // Rejected before any good version arrived: served empty, as Envoy's listener or cluster stops
            // warming on a rejected update (its init target is ready) and serves no routes or no hosts.
            serveEmptyIfPending(s, errors.keySet(), next, changed);
        }
        for (Map.Entry<String, SubscriptionState.Entry> e : d.valid().entrySet()) {
            String name = e.getKey();
            SubscriptionState.Entry old = before.get(name);
            if (old == e.getValue()) {
                continue; // unchanged: keeps its version and update time
            }
            next.put(name, e.getValue());
            changed.add(name);
        }
        s.resources = next;
        // Subscribe first, so that a listener whose route is new warms instead of serving an empty table.
        boolean removed = resubscribe();
        if (!changed.isEmpty()) {
            // Checked as it arrives, before the first apply too (as Envoy checks a route's clusters against those
            // it has): what is ACKed has been accepted.
            applyResponse(s, before, changed, errors);
            removed |= resubscribe(); // what was rejected may have changed the names needed
        }
        return removed;
    }

    /**
     * A state of the world RDS or EDS response while none of the type is asked for (the last listener or EDS cluster
     * asking for one went), as Envoy's mux takes a response of a type with no watch: with no resource, its version is
     * taken and nothing is sent (nothing is asked for); with resources, none is read, and it is answered with the
     * version held, no error_detail, a NACK by the version alone.
     */
    private void unwatched(SubscriptionState s, DiscoveryResponse r) {
        s.nonce = r.getNonce();
        if (r.getResourcesCount() == 0) {
            s.ackedVersion = r.getVersionInfo();
        } else {
            LOG.log(System.Logger.Level.WARNING, "ignoring a {0} response (version {1}): none is asked for",
                    s.kind, r.getVersionInfo());
            s.answer = new SubscriptionState.Answer(s.ackedVersion, r.getNonce(), null, false);
        }
        publishStatus();
    }

    // ---- SDS secrets on the ADS stream ----

    /**
     * Holds a response whose decoding asked for SDS secrets of the ADS stream not arrived yet, neither ACKed nor
     * NACKed, and asks for them: as a parse waits for a gRPC SDS secret up to its {@code initial_fetch_timeout}
     * (Envoy's cluster or listener warms until its secrets are in), but without holding this context, which the
     * secrets come through. It is decoded again when a secret arrives and when the first wait ends (then refused by
     * name for a secret still missing); a newer response of its type, or a new stream, replaces it.
     */
    private void park(long id, SubscriptionState s, Update u, Set<String> awaited) {
        s.park(u, id, heldWarming(s.type, u, s.type == ResourceType.LISTENER ? publishedListeners
                : publishedClusters));
        LOG.log(System.Logger.Level.INFO, "{0} version {1} waits for the SDS secrets {2} on the ADS stream",
                s.type.kind(), u.response().getVersionInfo(), awaited);
        resubscribeSecrets();
        long wait = sds.adsWaitMillis(awaited);
        timer(Math.max(0, wait), () -> {
            if (s.parked == u) {
                unpark();
            }
        });
        publishStatus();
    }

    /** Decodes again the responses held for secrets, in Envoy's order (CDS, EDS, LDS, RDS). */
    private void unpark() {
        for (SubscriptionState s : states.values()) {
            Update u = s.parked;
            if (u != null) {
                s.dropParked();
                if (s.parkedOnStream == streamId) {
                    onResponse(streamId, u, false);
                } else {
                    publishStatus(); // an old stream's: no longer warming
                }
            }
        }
    }

    /**
     * Has the SDS client keep the secrets that the listeners and clusters held name, and let go of the others, as
     * Envoy's {@code SdsApi} goes with the last listener or cluster that holds it: the bootstrap's (their gRPC
     * secrets: its ADS ones are not fetched), the server's in force, warming or serving, and those of a response held
     * for an ADS secret or rejected while a secret had not arrived (decoded again once it has), so that such a wait is
     * not cut short. A secret of its own stream let go of has its stream ended; the names returned, those asked for
     * on the ADS stream, are what this client subscribes to ({@link #resubscribeSecrets}), the others forgotten.
     */
    private Set<String> retainSecrets() {
        List<SdsSecretConfig> named = new ArrayList<>();
        dev.inmesh.runtime.xds.SdsSecrets.named(statics).stream().filter(c -> !c.getSdsConfig().hasAds())
                .forEach(named::add);
        Map<com.google.protobuf.Message, List<SdsSecretConfig>> cached = new java.util.IdentityHashMap<>();
        List<SubscriptionState.Entry> held = new ArrayList<>(states.get(ResourceType.CLUSTER).resources.values());
        held.addAll(states.get(ResourceType.LISTENER).resources.values());
        held.addAll(publishedClusters.values());
        held.addAll(publishedListeners.values());
        for (SubscriptionState.Entry e : held) {
            if (e.message() != null) {
                var of = secretNames.get(e.message());
                of = of != null ? of : dev.inmesh.runtime.xds.SdsSecrets.named(List.of(e.message()));
                cached.put(e.message(), of);
                named.addAll(of);
            }
        }
        secretNames = cached;
        List<com.google.protobuf.Message> waiting = new ArrayList<>();
        for (SubscriptionState s : states.values()) {
            for (Update u : java.util.Arrays.asList(s.parked, s.rejected)) {
                if (u != null) {
                    u.response().getResourcesList().forEach(any -> waiting.add(unpacked(any)));
                }
            }
        }
        waiting.removeIf(java.util.Objects::isNull);
        named.addAll(dev.inmesh.runtime.xds.SdsSecrets.named(waiting));
        sds.retain(named);
        return dev.inmesh.runtime.xds.SdsSecrets.overAds(named);
    }

    /** The ADS secret names of these clusters and listeners (nulls skipped). */
    private static Set<String> adsSecretNames(java.util.Collection<? extends com.google.protobuf.Message> messages) {
        return dev.inmesh.runtime.xds.SdsSecrets.overAds(dev.inmesh.runtime.xds.SdsSecrets.named(
                messages.stream().filter(java.util.Objects::nonNull).toList()));
    }

    /**
     * Subscribes to the ADS secrets named now ({@link #retainSecrets}, which also ends the streams of the gRPC ones
     * no longer named), unsubscribing from those no longer named (the manager forgets them), as Envoy's secret
     * providers come and go with the TLS contexts naming them.
     */
    private void resubscribeSecrets() {
        if (sds == null) {
            return;
        }
        Set<String> wanted = retainSecrets();
        if (wanted.equals(secrets.names)) {
            return;
        }
        secrets.names = wanted;
        if (secrets.sentOnStream || !wanted.isEmpty()) {
            // as for RDS and EDS: an empty list after a first request unsubscribes from all
            askNames(secrets);
        }
    }

    /**
     * A response of the Secret type, as Envoy's mux hands each secret provider its own secret: each secret asked for
     * is checked and taken by the manager (held in memory for the next handshakes); one not asked for is ignored. The
     * response is ACKed, or NACKed naming each secret refused, whose last good version stays; one with a resource
     * that cannot be decoded, or that fails the proto constraints of Envoy's API, is rejected whole. A NACK ends the
     * wait for every secret asked for and not arrived, as Envoy's mux fails every watch of the type. Over state of the
     * world, one that comes while no secret is asked for is taken as Envoy's mux takes a type with no watch
     * ({@link #unwatched}); over delta xDS the removal of a secret still asked for is ignored, as for RDS and EDS. The
     * responses held for secrets are decoded again after. Answered as the other types, once taken
     * ({@link #onResponse}).
     */
    private void takeSecrets(Update u) {
        DiscoveryResponse r = u.response();
        if (secrets.names.isEmpty() && !u.delta()) {
            unwatched(secrets, r);
            return;
        }
        Instant now = Instant.now();
        secrets.nonce = r.getNonce();
        secrets.lastUpdated = now;
        Map<String, String> errors = new LinkedHashMap<>();
        Map<SubscriptionState, SubscriptionState.Held> held = heldBefore(secrets);
        boolean took;
        try { // as a response of the other types is taken (process)
            took = takeEachSecret(u, errors);
            taking.accept(Step.APPLIED, r);
        } catch (RuntimeException e) {
            failed(secrets, u, held, false, e);
            // As Envoy's mux fails every secret's watch then: what a watch took before stays (a failed update keeps
            // the last good secret), and a secret not arrived is waited for no longer (SdsApi::onConfigUpdateFailed
            // readies its init target); the responses held for secrets are decoded again with what is in.
            sds.endAdsWaits(secrets.names, "the Secret response version " + r.getVersionInfo() + " failed: " + e);
            unpark();
            return;
        }
        if (!u.removed().isEmpty()) {
            LOG.log(System.Logger.Level.WARNING, "ignoring the removal of Secret {0}: still asked for", u.removed());
        }
        if (errors.isEmpty()) {
            secrets.ackedVersion = r.getVersionInfo();
            secrets.repeatedNacks = 0;
            secrets.answer = new SubscriptionState.Answer(secrets.ackedVersion, r.getNonce(), null, false);
        } else {
            reject(secrets, r, errors, now, false);
            // Envoy's mux fails every secret's watch when one refuses its secret or the response does not decode
            // (grpc_mux_impl's catch): a secret not arrived is waited for no longer, as after a failed taking
            // (a secret refused names its own error after this)
            String whole = errors.get("");
            sds.endAdsWaits(secrets.names, "the Secret response version " + r.getVersionInfo() + " was rejected"
                    + (whole == null ? "" : " (" + whole + ")"));
        }
        if (took || !errors.isEmpty()) {
            unpark();
        }
        publishStatus();
    }

    /**
     * Decodes each secret of a Secret response, then has the manager take each one asked for; what is refused joins
     * {@code errors}. Returns whether one was taken.
     */
    private boolean takeEachSecret(Update u, Map<String, String> errors) {
        DiscoveryResponse r = u.response();
        Map<String, com.google.protobuf.Any> named = new LinkedHashMap<>();
        Map<String, String> versions = new HashMap<>();
        for (com.google.protobuf.Any any : r.getResourcesList()) {
            try {
                com.google.protobuf.Any secret = any;
                String version = r.getVersionInfo();
                String name = null;
                if (u.delta()) {
                    var wrapper = io.envoyproxy.envoy.service.discovery.v3.Resource.parseFrom(any.getValue());
                    secret = wrapper.getResource();
                    version = wrapper.getVersion();
                    name = wrapper.getName();
                }
                if (!secret.getTypeUrl().equals(r.getTypeUrl())) {
                    throw new IllegalArgumentException("a resource of type " + secret.getTypeUrl());
                }
                if (name == null || name.isEmpty() || secrets.names.contains(name)) {
                    // as Envoy decodes every secret of the response (over delta, every one asked for) before it
                    // takes any, against the proto constraints of its API
                    var message = secret.unpack(io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret.class);
                    name = name == null || name.isEmpty() ? message.getName() : name;
                    var violation = dev.inmesh.runtime.xds.ProtoConstraintCheck.find(message);
                    if (violation != null) {
                        throw new IllegalArgumentException("Secret \"" + name + "\": " + violation.getMessage());
                    }
                }
                named.put(name, secret);
                versions.put(name, version);
            } catch (com.google.protobuf.InvalidProtocolBufferException | IllegalArgumentException e) {
                errors.put("", "the whole Secret response is rejected: " + describe(e));
                named.clear();
                break;
            }
        }
        boolean took = false;
        for (Map.Entry<String, com.google.protobuf.Any> e : named.entrySet()) {
            if (!secrets.names.contains(e.getKey())) {
                continue; // not asked for: ignored, as Envoy's mux hands it to no provider
            }
            try {
                sds.takeFromAds(e.getKey(), e.getValue(), versions.get(e.getKey()));
                took = true;
            } catch (IllegalArgumentException ex) {
                // named once: the parser's errors name the secret already, its others not
                String prefix = "Secret \"" + e.getKey() + "\": ";
                errors.put(e.getKey(), ex.getMessage().startsWith(prefix) ? ex.getMessage() : prefix + ex.getMessage());
            }
        }
        return took;
    }

    /**
     * As Envoy's mux fails every watch of a type whose response it rejects whole (onConfigUpdateFailed,
     * UpdateRejected): the initial fetch of the listeners or clusters ends, and a route configuration or load
     * assignment asked for and not arrived yet is served empty, so that the listener or cluster waiting for it stops
     * warming (and no longer holds the server's initialization). Returns whether one was.
     */
    private static boolean failWatches(SubscriptionState s) {
        s.received |= s.wildcard;
        if (s.wildcard) {
            return false;
        }
        Map<String, SubscriptionState.Entry> served = new LinkedHashMap<>(s.resources);
        Set<String> added = new LinkedHashSet<>();
        serveEmptyIfPending(s, List.copyOf(s.pending), served, added);
        s.resources = served;
        return !added.isEmpty();
    }

    /** Serves empty, in {@code next}, each of {@code names} that has not arrived yet, ending its wait. */
    private static void serveEmptyIfPending(SubscriptionState s, java.util.Collection<String> names,
                                            Map<String, SubscriptionState.Entry> next, Set<String> changed) {
        for (String name : names) {
            if (s.pending.remove(name) && !next.containsKey(name)) {
                next.put(name, empty(s.type, name));
                changed.add(name);
            }
        }
    }

    /** How often the identity's files are looked at while a rejected response waits for them. */
    static final long IDENTITY_LOOK_MILLIS = 1_000;

    /** Whether the identity watch is running; the identity's files as it last saw them (null: not yet). */
    private boolean watchingIdentity;
    private List<String> identitySeen;

    private void watchIdentity() {
        if (!watchingIdentity) {
            watchingIdentity = true;
            identitySeen = null;
            timer(IDENTITY_LOOK_MILLIS, this::checkIdentity);
        }
    }

    /**
     * A response rejected while the client reads Istio's secrets ({@code default}, {@code ROOTCA}) from the workload
     * identity's files is decoded again when those files change (and at the first look after the rejection, for a
     * change since): as Envoy's cluster or listener waits for its SDS secret rather than staying without it until
     * the server's next push. Accepted, it is applied and ACKed with its version and nonce; still rejected, it waits
     * for the next change. Only the latest response of a type on the current stream waits: a newer one, or a new
     * stream (whose server sends everything again), ends its wait. Runs on the client's worker context, which may
     * read the files' attributes.
     */
    private void checkIdentity() {
        boolean waiting = false;
        for (SubscriptionState s : states.values()) {
            if (s.rejected != null && s.rejectedOnStream != streamId) {
                s.rejected = null;
            }
            waiting |= s.rejected != null;
        }
        if (waiting) {
            List<String> now = secretsFingerprint();
            if (!now.equals(identitySeen)) {
                identitySeen = now;
                for (SubscriptionState s : states.values()) { // CDS, EDS, LDS, RDS: Envoy's order
                    if (s.rejected != null) {
                        onResponse(streamId, s.rejected, true);
                    }
                }
            }
        }
        if (states.values().stream().anyMatch(s -> s.rejected != null)) {
            timer(IDENTITY_LOOK_MILLIS, this::checkIdentity);
        } else {
            watchingIdentity = false;
            identitySeen = null;
        }
    }

    /**
     * Keeps each resource's last rejected update, as Envoy's listener manager keeps a listener's error_state for the
     * config dump: set for a resource the response rejected by name (with the message rejected), cleared for one the
     * response brought and that was accepted, and, for a wildcard type, for one the response deleted (by leaving it
     * out of a state of the world response, or naming it in a delta one's removed_resources). A response
     * rejected as a whole changes nothing.
     */
    private static void recordFailures(SubscriptionState s, Update u, ResponseDecoder.Decoded d,
                                       Map<String, String> errors, Instant now) {
        String version = u.response().getVersionInfo();
        if (!errors.containsKey("")) {
            s.failures.keySet().removeIf(name -> !errors.containsKey(name) && (d.valid().containsKey(name)
                    || s.wildcard && (!u.delta() || u.removed().contains(name))));
        }
        for (Map.Entry<String, String> e : errors.entrySet()) {
            SubscriptionState.Entry parsed = d.valid().get(e.getKey());
            com.google.protobuf.Message m = parsed != null ? parsed.message() : d.rejected().get(e.getKey());
            if (m != null) {
                s.failures.put(e.getKey(), new DynamicState.Failure(m, version, now, e.getValue()));
            }
        }
    }

    /**
     * One response as the client applies it: a state of the world one, or a delta one in that form (each of its
     * resources in its {@code Resource} wrapper, which {@link ResponseDecoder} unwraps under the wrapper's name and
     * version; its {@code system_version_info} as the version_info) with the names it removes.
     */
    record Update(DiscoveryResponse response, boolean delta, List<String> removed, String namedTwice) {
        static Update of(DiscoveryResponse r) {
            return new Update(r, false, List.of(), null);
        }

        /** {@code namedTwice}: a name the response has twice among its resources and removed_resources, or null. */
        static Update of(DeltaDiscoveryResponse d) {
            DiscoveryResponse.Builder b = DiscoveryResponse.newBuilder().setTypeUrl(d.getTypeUrl())
                    .setVersionInfo(d.getSystemVersionInfo()).setNonce(d.getNonce());
            d.getResourcesList().forEach(resource -> b.addResources(com.google.protobuf.Any.pack(resource)));
            List<String> named = new ArrayList<>();
            d.getResourcesList().forEach(resource -> named.add(resource.getName()));
            named.addAll(d.getRemovedResourcesList());
            Set<String> seen = new HashSet<>();
            String twice = null;
            for (String name : named) {
                if (!seen.add(name) && twice == null) {
                    twice = name;
                }
            }
            return new Update(b.build(), true, List.copyOf(d.getRemovedResourcesList()), twice);
        }
    }

    /**
     * NACKs a response. {@code deltaDelivered}: a delta response that reached its resources' parsers and the holder
     * (not one rejected whole before them), which Envoy's subscription counts as an attempt on its way in as well.
     */
    private void reject(SubscriptionState s, DiscoveryResponse r, Map<String, String> errors, Instant now,
                        boolean deltaDelivered) {
        String error = nackMessage(s.type, errors);
        s.nacked(r.getVersionInfo(), error, now);
        count(s, deltaDelivered ? ConfigStats.Subscription::deltaRejected : ConfigStats.Subscription::rejected);
        LOG.log(System.Logger.Level.WARNING, "NACK {0} version {1}: {2}", s.kind, r.getVersionInfo(), error);
        // what the server sees NACKed, the status and the config dump (the resource's error_state) show already
        publishStatus();
        nack(s, r.getNonce(), error);
    }

    /**
     * A NACK's message. Listeners and clusters rejected by name are listed as Envoy's listener and cluster managers
     * list them, which istiod logs and operators search for: {@code Error adding/updating listener(s) l3: <why>\n
     * l4: <why>\n}, {@code Error adding/updating cluster(s) c3: <why>, c4: <why>}. A response rejected whole, and
     * the other types' rejections, name each resource ({@code RouteConfiguration "r1": <why>}), joined by
     * {@code ; }.
     */
    static String nackMessage(ResourceType type, Map<String, String> errors) {
        if ((type != ResourceType.LISTENER && type != ResourceType.CLUSTER) || errors.containsKey("")) {
            return String.join("; ", errors.values());
        }
        boolean listeners = type == ResourceType.LISTENER;
        StringBuilder b = new StringBuilder("Error adding/updating ")
                .append(listeners ? "listener(s) " : "cluster(s) ");
        String sep = "";
        for (Map.Entry<String, String> e : errors.entrySet()) {
            String prefix = type.about(e.getKey());
            String why = e.getValue().startsWith(prefix) ? e.getValue().substring(prefix.length()) : e.getValue();
            // Envoy's listener manager ends each listener's line with a newline; its cluster manager joins by ", "
            b.append(sep).append(e.getKey()).append(": ").append(why).append(listeners ? "\n" : "");
            sep = listeners ? "" : ", ";
        }
        return b.toString();
    }

    /**
     * Applies a response's changes (before the first apply, checks them as compiling a snapshot would); a resource
     * the holder rejects goes back to its last good version and joins the errors; if the holder names a resource
     * outside the response, the whole response is rejected.
     */
    private void applyResponse(SubscriptionState s, Map<String, SubscriptionState.Entry> before,
                               Set<String> changed, Map<String, String> errors) {
        while (true) {
            try {
                if (!applied) {
                    checkHeld(ResourceBundle.EMPTY);
                } else {
                    if (s.type == ResourceType.LISTENER) {
                        // as Envoy creates a listener's socket when the listener is added, before it warms: the
                        // holder's checks (the proxy's binds) see the held listeners, those warming included
                        checkHeld(statics);
                    }
                    publish();
                }
                return;
            } catch (InvalidResourceException e) {
                String name = e.resourceName();
                if (e.type() == s.type && changed.remove(name)) {
                    SubscriptionState.Entry old = before.get(name);
                    if (old != null) {
                        s.resources.put(name, old);
                    } else {
                        s.resources.remove(name);
                    }
                    errors.put(name, e.getMessage());
                    if (changed.isEmpty()) {
                        return;
                    }
                } else {
                    s.resources = before;
                    errors.put("", e.getMessage() + " (the whole " + s.type.kind() + " update is rejected)");
                    return;
                }
            } catch (RuntimeException e) {
                s.resources = before;
                errors.put("", s.type.kind() + " update: cannot compile: " + e);
                LOG.log(System.Logger.Level.ERROR, "cannot compile a snapshot", e);
                return;
            }
        }
    }

    /**
     * Checks what is held, warming resources included, beside {@code fixed} (static resources, or none) as the holder
     * checks a snapshot before it publishes it ({@link SnapshotHolder#check}), throwing the first problem.
     */
    private void checkHeld(ResourceBundle fixed) throws InvalidResourceException {
        ResourceBundle.Builder b = ResourceBundle.builder().from(fixed);
        for (SubscriptionState held : states.values()) {
            for (Map.Entry<String, SubscriptionState.Entry> named : held.resources.entrySet()) {
                if (!fixed.isStatic(held.type, named.getKey())) {
                    SubscriptionState.Entry e = named.getValue();
                    b.add(e.resource(), e.version(), e.message());
                }
            }
        }
        holder.check(b.build());
    }

    /**
     * NACKs at once; but the same version NACKed again in a row with the same error waits first, 100 ms doubling up
     * to 5 s ({@link #repeatedNackDelay}), until a response is ACKed or NACKed for another version or error (a new
     * stream keeps the count). A server that answers a NACK by sending the NACKed version again at once would
     * otherwise loop with the client as fast as the stream goes, each round decoded, parsed and logged: so do
     * java-control-plane's and go-control-plane's snapshot caches, which answer at once a request whose version_info
     * is not their snapshot's, as a NACK's (the last version taken) is not. Envoy answers every response at once and
     * leaves that loop to the opt-in {@code rate_limit_settings} of its ADS config source, a token bucket on all its
     * requests. The first NACK of a version never waits (a repeat for another cause, the same bad version sent
     * again for names newly asked for, waits 100 ms at first); a newer response, or a new stream, drops a NACK still
     * waiting (the newer response gets its own answer); a change of the names asked for sends it at once, carrying
     * them ({@link #askNames}).
     */
    private void nack(SubscriptionState s, String nonce, String error) {
        SubscriptionState.Answer a = new SubscriptionState.Answer(s.ackedVersion, nonce, error, s.repeatedNacks > 0);
        s.answer = a;
        if (a.delayed()) {
            timer(repeatedNackDelay(s.repeatedNacks), () -> {
                if (s.answer == a) { // not superseded by a newer response, a new stream, or a change of names
                    s.answer = new SubscriptionState.Answer(a.version(), a.nonce(), a.error(), false);
                    sendAnswer(s, false);
                }
            });
        }
    }

    /** How long the {@code repeated}-th NACK in a row of the same response waits (from 100 ms, doubling, to 5 s). */
    private static long repeatedNackDelay(int repeated) {
        return Math.min(MAX_REPEATED_NACK_DELAY_MILLIS, 100L << Math.min(repeated - 1, 10));
    }

    /**
     * Subscribes RDS to the route names the listeners use and EDS to the service names of the EDS clusters. Returns
     * whether a resource no longer needed was dropped.
     */
    private boolean resubscribe() {
        Set<String> routes = new TreeSet<>();
        for (SubscriptionState.Entry e : states.get(ResourceType.LISTENER).resources.values()) {
            routes.addAll(routeNames(e));
        }
        for (SubscriptionState.Entry e : publishedListeners.values()) {
            routes.addAll(routeNames(e)); // what serves while a changed listener warms
        }
        Set<String> services = new TreeSet<>();
        for (Listener l : statics.listeners().values()) {
            routes.addAll(routeNames(l));
        }
        for (Cluster c : statics.clusters().values()) {
            services.addAll(edsServiceNames(c));
        }
        for (SubscriptionState.Entry e : states.get(ResourceType.CLUSTER).resources.values()) {
            services.addAll(edsServiceNames(e));
        }
        for (SubscriptionState.Entry e : publishedClusters.values()) {
            services.addAll(edsServiceNames(e)); // what serves while a changed cluster warms
        }
        boolean removed = resubscribe(states.get(ResourceType.ENDPOINT), services);
        return resubscribe(states.get(ResourceType.ROUTE), routes) | removed;
    }

    private boolean resubscribe(SubscriptionState s, Set<String> wanted) {
        if (s.names.equals(wanted)) {
            return false;
        }
        boolean removed = false;
        for (String gone : s.names) {
            if (!wanted.contains(gone)) {
                s.pending.remove(gone);
                s.removedByServer.remove(gone);
                s.fetchTimers.remove(gone);
                s.failures.remove(gone);
                removed |= s.resources.remove(gone) != null;
            }
        }
        for (String name : wanted) {
            if (!s.names.contains(name) && !s.resources.containsKey(name)) {
                s.pending.add(name);
                Duration timeout = fetchTimeout(s.type, name);
                if (!timeout.isZero()) { // 0: no timeout, as Envoy's initial_fetch_timeout
                    // this subscription's own: one dropped and made again before it ends is not timed out early
                    Object subscription = new Object();
                    s.fetchTimers.put(name, subscription);
                    timer(timeout.toMillis(), () -> fetchTimedOut(s, name, subscription, timeout));
                }
            }
        }
        s.names = wanted;
        if (s.sentOnStream || !wanted.isEmpty()) {
            // An empty list after a first request unsubscribes from all; never sent as a first request (wildcard).
            askNames(s);
        }
        return removed;
    }

    /**
     * The initial fetch timeout of a route configuration or load assignment name: as in Envoy, the
     * {@code initial_fetch_timeout} of the config source that asks for it (a connection manager's
     * {@code rds.config_source}, an EDS cluster's {@code eds_config}; istiod sets 0s, no timeout), else the client's.
     * When several ask for one name, the longest wins, and none (0) is the longest.
     */
    private Duration fetchTimeout(ResourceType type, String name) {
        Duration out = null;
        ResourceType by = type == ResourceType.ROUTE ? ResourceType.LISTENER : ResourceType.CLUSTER;
        for (SubscriptionState.Entry e : states.get(by).resources.values()) {
            for (Duration d : configSourceTimeouts(e, name)) {
                if (out == null || d.isZero() || (!out.isZero() && d.compareTo(out) > 0)) {
                    out = d;
                }
            }
        }
        return out == null ? options.initialFetchTimeout() : out;
    }

    /** The initial fetch timeouts of the config sources in a listener or cluster that ask for {@code name}. */
    private List<Duration> configSourceTimeouts(SubscriptionState.Entry e, String name) {
        List<Duration> out = new ArrayList<>();
        if (e.message() instanceof io.envoyproxy.envoy.config.cluster.v3.Cluster c
                && edsServiceNames(e).contains(name)) {
            var source = c.getEdsClusterConfig().getEdsConfig();
            out.add(source.hasInitialFetchTimeout() ? Fields.duration(source.getInitialFetchTimeout())
                    : options.initialFetchTimeout());
        } else if (e.message() instanceof io.envoyproxy.envoy.config.listener.v3.Listener l
                && routeNames(e).contains(name)) {
            for (var hcm : dev.inmesh.runtime.xds.ListenerParser.connectionManagers(l)) {
                if (hcm.hasRds() && hcm.getRds().getRouteConfigName().equals(name)) {
                    var source = hcm.getRds().getConfigSource();
                    out.add(source.hasInitialFetchTimeout() ? Fields.duration(source.getInitialFetchTimeout())
                            : options.initialFetchTimeout());
                }
            }
        }
        return out;
    }

    private void fetchTimedOut(SubscriptionState s, String name, Object subscription, Duration timeout) {
        if (s.fetchTimers.get(name) != subscription) {
            return; // the name was dropped; asked for again, it waits for its own timeout
        }
        s.fetchTimers.remove(name);
        if (!s.pending.remove(name)) {
            return;
        }
        LOG.log(System.Logger.Level.WARNING, "{0} \"{1}\" did not arrive within the initial fetch timeout {2}: "
                + "serving it empty", s.type.kind(), name, timeout);
        if (!s.resources.containsKey(name)) {
            s.resources.put(name, empty(s.type, name));
        }
        afterChange(true);
    }

    /** An empty route configuration or load assignment: what serves for one that never arrived or was rejected. */
    private static SubscriptionState.Entry empty(ResourceType type, String name) {
        Object empty = type == ResourceType.ENDPOINT ? ClusterLoadAssignment.empty(name)
                : RouteConfiguration.of(name, List.of());
        return new SubscriptionState.Entry(empty, null, new ResourceBundle.Version("", Instant.now()));
    }

    /**
     * After any change: the first apply once everything is complete, or a re-apply when something was dropped; then
     * the SDS secrets that nothing held names any more are let go of ({@link #resubscribeSecrets}).
     */
    private void afterChange(boolean reapply) {
        sendDeferredListeners();
        if (!applied) {
            firstApplyIfComplete();
        } else if (reapply) {
            try {
                publish();
                // a listener or a cluster that finished warming may leave an old route or EDS service unneeded
                resubscribe();
            } catch (InvalidResourceException | RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "cannot apply the configuration: {0}", e.getMessage());
            }
        }
        resubscribeSecrets();
        publishStatus();
        sendAnswer(states.get(ResourceType.CLUSTER), false); // held while a cluster warmed, maybe
    }

    /** A listener or a cluster of a response (over delta, in its {@code Resource}), or null for anything else. */
    private static com.google.protobuf.Message unpacked(com.google.protobuf.Any any) {
        try {
            if (any.is(io.envoyproxy.envoy.service.discovery.v3.Resource.class)) {
                return unpacked(any.unpack(io.envoyproxy.envoy.service.discovery.v3.Resource.class).getResource());
            }
            if (any.is(io.envoyproxy.envoy.config.listener.v3.Listener.class)) {
                return any.unpack(io.envoyproxy.envoy.config.listener.v3.Listener.class);
            }
            if (any.is(io.envoyproxy.envoy.config.cluster.v3.Cluster.class)) {
                return any.unpack(io.envoyproxy.envoy.config.cluster.v3.Cluster.class);
            }
        } catch (com.google.protobuf.InvalidProtocolBufferException e) {
            // not decodable: it names nothing
        }
        return null;
    }

    private void firstApplyIfComplete() {
        for (SubscriptionState s : states.values()) {
            if (!s.complete()) {
                return;
            }
        }
        while (true) {
            try {
                publish();
                applied = true;
                LOG.log(System.Logger.Level.INFO, "first xDS configuration applied");
                publishStatus();
                firstApply.tryComplete();
                return;
            } catch (InvalidResourceException e) {
                SubscriptionState s = states.get(e.type());
                SubscriptionState.Entry left = s.resources.remove(e.resourceName());
                if (left == null && statics.isStatic(e.type(), e.resourceName())) {
                    // a bootstrap's resource the holder refuses (a static listener that cannot be bound): left out
                    statics = ResourceBundle.builder().from(statics).remove(e.type(), e.resourceName()).build();
                    LOG.log(System.Logger.Level.ERROR, "left out of the first configuration: {0}", e.getMessage());
                    continue;
                }
                if (left == null) {
                    LOG.log(System.Logger.Level.ERROR, "cannot apply the first configuration: {0}", e.getMessage());
                    return;
                }
                Instant now = Instant.now();
                s.nacked(s.ackedVersion, e.getMessage(), now);
                s.failures.put(e.resourceName(), new DynamicState.Failure(left.message(),
                        left.version().versionInfo(), now, e.getMessage()));
                LOG.log(System.Logger.Level.WARNING, "left out of the first configuration: {0}", e.getMessage());
            } catch (RuntimeException e) {
                LOG.log(System.Logger.Level.ERROR, "cannot compile the first configuration", e);
                return;
            }
        }
    }

    /**
     * Compiles and publishes what is held. As in Envoy, a listener whose route configuration has not arrived yet is
     * warming, and so is an EDS cluster whose load assignment has not: its last published version serves meanwhile
     * (or, if new, it is left out) until what it waits for arrives or times out. A published version that is itself
     * warming (waiting for its first health checks) is left out too: Envoy's update of a warming cluster replaces it
     * among its warming clusters, the old version dropped. The holder is told when a listener or a cluster is held
     * so, and whether a cluster is, for its initialization waits for it
     * ({@link SnapshotHolder#apply(ResourceBundle, boolean, boolean)}).
     */
    private void publish() throws InvalidResourceException {
        ResourceBundle fixed = statics;
        ResourceBundle.Builder b = ResourceBundle.builder().from(fixed);
        Map<String, SubscriptionState.Entry> listeners = new LinkedHashMap<>();
        Map<String, SubscriptionState.Entry> clusters = new LinkedHashMap<>();
        boolean held = false;
        boolean heldCluster = false;
        for (SubscriptionState s : states.values()) {
            for (Map.Entry<String, SubscriptionState.Entry> named : s.resources.entrySet()) {
                SubscriptionState.Entry e = named.getValue();
                if (warms(s.type, e)) {
                    held = true;
                    heldCluster |= s.type == ResourceType.CLUSTER;
                    e = (s.type == ResourceType.LISTENER ? publishedListeners : publishedClusters)
                            .get(named.getKey());
                    if (s.type == ResourceType.CLUSTER) {
                        var inForce = holder.current().clusterManager().clusters().get(named.getKey());
                        e = inForce != null && inForce.warming() ? null : e;
                    }
                }
                if (e == null || fixed.isStatic(s.type, named.getKey())
                        || s.type == ResourceType.ENDPOINT && fixed.endpoints().containsKey(named.getKey())) {
                    continue;
                }
                if (s.type == ResourceType.LISTENER) {
                    listeners.put(named.getKey(), e);
                } else if (s.type == ResourceType.CLUSTER) {
                    clusters.put(named.getKey(), e);
                }
                b.add(e.resource(), e.version(), e.message());
            }
        }
        holder.apply(b.build(), held, heldCluster);
        publishedListeners = listeners;
        publishedClusters = clusters;
    }

    /** Whether a listener waits for a route configuration, or a cluster for a load assignment, not arrived yet. */
    private boolean warms(ResourceType type, SubscriptionState.Entry e) {
        if (type == ResourceType.LISTENER) {
            Set<String> pending = states.get(ResourceType.ROUTE).pending;
            return !pending.isEmpty() && !java.util.Collections.disjoint(routeNames(e), pending);
        }
        if (type == ResourceType.CLUSTER) {
            Set<String> pending = states.get(ResourceType.ENDPOINT).pending;
            return !pending.isEmpty() && !java.util.Collections.disjoint(edsServiceNames(e), pending);
        }
        return false;
    }

    /**
     * The listeners and clusters warming (held in a version other than the one published, waiting for what
     * {@link #warms} names) and each resource's last rejected update, for the config dump.
     */
    private DynamicState dynamicStateNow() {
        Map<String, DynamicState.Failure> failures = new LinkedHashMap<>();
        for (SubscriptionState s : states.values()) {
            s.failures.forEach((name, f) -> failures.put(ResourceBundle.key(s.type, name), f));
        }
        Map<ResourceType, String> versions = new EnumMap<>(ResourceType.class);
        states.forEach((type, s) -> {
            if (s.changedVersion != null) {
                versions.put(type, s.changedVersion);
            }
        });
        return new DynamicState(warming(ResourceType.LISTENER, publishedListeners),
                warming(ResourceType.CLUSTER, publishedClusters), failures, versions);
    }

    /**
     * The listeners or clusters of {@code type} warming: those held for their route configurations or load
     * assignments, and those of a response held for its SDS secrets ({@link #park}) that differ from what serves, as
     * Envoy's listener or cluster warms until its secrets are in (the first configuration's too, while nothing
     * serves yet).
     */
    private Map<String, DynamicState.Held> warming(ResourceType type, Map<String, SubscriptionState.Entry> published) {
        Map<String, DynamicState.Held> out = new LinkedHashMap<>();
        SubscriptionState s = states.get(type);
        for (Map.Entry<String, SubscriptionState.Entry> named : s.resources.entrySet()) {
            SubscriptionState.Entry e = named.getValue();
            if (e.message() != null && e != published.get(named.getKey()) && warms(type, e)) {
                out.put(named.getKey(), new DynamicState.Held(e.message(), e.version()));
            }
        }
        out.putAll(s.parkedWarming);
        return out;
    }

    /**
     * The listeners or clusters of {@code u}, a response of {@code type} held for its SDS secrets, that differ from
     * those {@code published}: warming while it is held (none for the other types).
     */
    private static Map<String, DynamicState.Held> heldWarming(ResourceType type, Update u,
                                                             Map<String, SubscriptionState.Entry> published) {
        if (type != ResourceType.LISTENER && type != ResourceType.CLUSTER) {
            return Map.of();
        }
        Instant now = Instant.now();
        Map<String, DynamicState.Held> out = new LinkedHashMap<>();
        for (com.google.protobuf.Any any : u.response().getResourcesList()) {
            com.google.protobuf.Message m = unpacked(any);
            String name = m instanceof io.envoyproxy.envoy.config.cluster.v3.Cluster c ? c.getName()
                    : m instanceof io.envoyproxy.envoy.config.listener.v3.Listener l ? l.getName() : null;
            SubscriptionState.Entry serving = name == null ? null : published.get(name);
            if (name != null && (serving == null || !m.equals(serving.message()))) {
                out.put(name, new DynamicState.Held(m, new ResourceBundle.Version(parkedVersion(u, any), now)));
            }
        }
        return java.util.Collections.unmodifiableMap(out);
    }

    /** The version of a resource of a held response: its own over delta xDS, else the response's. */
    private static String parkedVersion(Update u, com.google.protobuf.Any any) {
        if (u.delta()) {
            try {
                return any.unpack(io.envoyproxy.envoy.service.discovery.v3.Resource.class).getVersion();
            } catch (com.google.protobuf.InvalidProtocolBufferException e) {
                return u.response().getVersionInfo();
            }
        }
        return u.response().getVersionInfo();
    }

    /** The EDS service name of an EDS cluster; none for the other kinds. */
    private static Set<String> edsServiceNames(SubscriptionState.Entry e) {
        return e.resource() instanceof Cluster c ? edsServiceNames(c) : Set.of();
    }

    private static Set<String> edsServiceNames(Cluster c) {
        return c.type() == DiscoveryType.EDS ? Set.of(c.serviceName()) : Set.of();
    }

    /** The RDS names a listener's connection managers use. */
    private static Set<String> routeNames(SubscriptionState.Entry e) {
        return e.resource() instanceof Listener l ? routeNames(l) : Set.of();
    }

    private static Set<String> routeNames(Listener l) {
        Set<String> out = new TreeSet<>();
        List<FilterChain> chains = l.allFilterChains();
        for (FilterChain c : chains) {
            if (c.filter() instanceof HttpConnectionManager hcm && hcm.rdsRouteConfigName() != null) {
                out.add(hcm.rdsRouteConfigName());
            }
        }
        return out;
    }

    /**
     * Counts in the statistics of {@code s}'s subscription: CDS's {@code cluster_manager.cds.} or LDS's
     * {@code listener_manager.lds.}; Inmesh keeps none for RDS's and EDS's.
     */
    private void count(SubscriptionState s, java.util.function.Consumer<ConfigStats.Subscription> c) {
        if (s.type == ResourceType.CLUSTER) {
            c.accept(holder.stats().cds());
        } else if (s.type == ResourceType.LISTENER) {
            c.accept(holder.stats().lds());
        }
    }

    private void timer(long delayMillis, Runnable action) {
        if (closed) {
            return;
        }
        long[] id = new long[1];
        id[0] = vertx.setTimer(Math.max(1, delayMillis), t -> {
            timers.remove(id[0]);
            if (!closed) {
                action.run();
            }
        });
        timers.add(id[0]);
    }

    private void publishStatus() {
        List<XdsStatus.TypeStatus> types = new ArrayList<>();
        for (SubscriptionState s : states.values()) {
            types.add(s.status());
        }
        if (sds != null && secrets.shown()) {
            types.add(secrets.status(held(secrets).size()));
        }
        status = new XdsStatus(options.servers().get(serverIndex).address(), connectedSince != null, connectedSince,
                lastError, applied, types);
        dynamicState = dynamicStateNow();
        warmingAfterStart = applied ? dynamicState.warmingClusters().size() : 0;
    }

    /** The clusters warming once the first configuration is applied, for {@code cluster_manager.warming_clusters}. */
    private volatile int warmingAfterStart;

    private static String describe(Throwable e) {
        return AdsOptions.XdsServer.describe(e);
    }
}
