package dev.inmesh.runtime.mesh;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.inbound.InboundHandler;
import dev.inmesh.runtime.outbound.MeshHttpClient;
import dev.inmesh.runtime.outbound.OutboundDispatcher;
import dev.inmesh.runtime.outbound.OutboundRouting;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.PeerMetadata;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.WorkloadInfo;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.ResourceBundle;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.internal.http.HttpClientInternal;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * The mesh of one JVM: one snapshot holder fed by the config source, one shared {@link Router}, the in-JVM outbound
 * client and the inbound handler, and the observers (metrics, access log) every finished request is given to.
 */
public final class DefaultMesh implements Mesh {
    private static final Logger LOG = Logger.getLogger(DefaultMesh.class.getName());

    private final Vertx vertx;
    private final MeshOptions options;
    private final SnapshotHolder snapshots;
    private final OutboundRouting routing;
    private final Router router;
    private final OutboundDispatcher dispatcher;
    private final List<Consumer<StreamInfo>> observers = new CopyOnWriteArrayList<>();
    private final List<HttpClient> clients = new CopyOnWriteArrayList<>();
    private final WorkloadInfo local;

    DefaultMesh(Vertx vertx, MeshOptions options) {
        this.vertx = vertx;
        this.options = options;
        UpstreamEnvironment env = UpstreamEnvironment.of(vertx);
        this.snapshots = new SnapshotHolder(env);
        this.routing = new OutboundRouting(options.getOutboundTrafficPolicy(), env);
        String workload = options.getWorkloadName().isEmpty() ? options.getApp() : options.getWorkloadName();
        this.local = new WorkloadInfo(workload, options.getNamespace(), options.getApp(), options.getVersion());
        Consumer<StreamInfo> observer = info -> {
            for (Consumer<StreamInfo> o : observers) {
                o.accept(info);
            }
        };
        this.router = new Router(vertx, new Router.Options(options.isTrustEnvoyHeaders(), true, local,
                PeerMetadata.encode(local, options.getClusterId()), nodeId()), observer);
        this.dispatcher = new OutboundDispatcher(snapshots, routing, router, options.getPodIp());
    }

    /** Istio's sidecar node id: {@code sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local}. */
    public String nodeId() {
        String pod = options.getPodName().isEmpty() ? (local.workload().equals("unknown") ? "inmesh"
                : local.workload()) : options.getPodName();
        return "sidecar~" + options.getPodIp() + "~" + pod + "." + options.getNamespace() + "~"
                + options.getNamespace() + ".svc.cluster.local";
    }

    @Override
    public Future<Void> start() {
        if (options.getConfigFile() == null) {
            return Future.succeededFuture();
        }
        Path file = Path.of(options.getConfigFile());
        return vertx.executeBlocking(() -> {
            ResourceBundle bundle = EnvoyConfigReader.read(file);
            snapshots.apply(bundle);
            return null;
        }, false).mapEmpty();
    }

    @Override
    public Future<Void> close() {
        List<Future<Void>> closing = new java.util.ArrayList<>();
        for (HttpClient c : clients) {
            closing.add(c.close());
        }
        return Future.join(closing).eventually(() -> {
            routing.close();
            snapshots.close();
            return Future.succeededFuture();
        }).mapEmpty();
    }

    @Override
    public boolean isReady() {
        return snapshots.ready() || options.getConfigFile() == null && options.getXdsAddress() == null;
    }

    @Override
    public WebClient webClient() {
        return webClient(new WebClientOptions());
    }

    @Override
    public WebClient webClient(WebClientOptions options) {
        return WebClient.wrap(httpClient(options), options);
    }

    @Override
    public HttpClient httpClient() {
        return httpClient(new HttpClientOptions());
    }

    @Override
    public HttpClient httpClient(HttpClientOptions options) {
        HttpClientInternal plain = (HttpClientInternal) vertx.createHttpClient(options);
        MeshHttpClient client = new MeshHttpClient(plain, dispatcher);
        clients.add(client);
        return client;
    }

    @Override
    public Handler<HttpServerRequest> inbound(Handler<HttpServerRequest> handler) {
        return new InboundHandler(handler, snapshots, info -> {
            for (Consumer<StreamInfo> o : observers) {
                o.accept(info);
            }
        });
    }

    @Override
    public int adminPort() {
        return -1;
    }

    /** Adds an observer of finished requests (metrics, access log, tests). */
    public void addObserver(Consumer<StreamInfo> observer) {
        observers.add(observer);
    }

    /** The snapshot holder, for config sources and the admin server. */
    public SnapshotHolder snapshots() {
        return snapshots;
    }

    public MeshOptions options() {
        return options;
    }

    static Logger log() {
        return LOG;
    }
}
