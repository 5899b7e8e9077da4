package dev.inmesh.samples.bookinfo;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.mesh.DefaultMesh;
import dev.inmesh.runtime.stats.StreamInfo;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerRequest;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * One running pod: a service's handler behind {@code mesh.inbound(...)} on the pod's own address and port 9080, and
 * the pod's own {@link Mesh} (its workload identity, its copy of the configuration, its clients).
 */
public final class Pod {
    private final PodSpec spec;
    private final String name;
    private final Mesh mesh;
    private final Handler<HttpServerRequest> service;
    private final List<Consumer<StreamInfo>> observers = new CopyOnWriteArrayList<>();
    private HttpServer server;

    private Pod(PodSpec spec, String name, Mesh mesh, Function<Mesh, Handler<HttpServerRequest>> service) {
        this.spec = spec;
        this.name = name;
        this.mesh = mesh;
        this.service = service.apply(mesh);
        if (mesh instanceof DefaultMesh) {
            ((DefaultMesh) mesh).addObserver(info -> {
                for (Consumer<StreamInfo> o : observers) {
                    o.accept(info);
                }
            });
        }
    }

    /**
     * Starts a pod: its mesh (configuration from {@code meshDir}), then its server on {@code spec.ip():9080}.
     *
     * @param adminPort the mesh's admin port on the pod's address, or -1 for none
     * @param service builds the service's handler from the pod's mesh (whose clients it calls through)
     */
    public static Future<Pod> start(Vertx vertx, PodSpec spec, Path meshDir, int adminPort,
                                    Function<Mesh, Handler<HttpServerRequest>> service) {
        return start(vertx, spec, meshDir, null, adminPort, service);
    }

    /**
     * Starts a pod whose mesh takes its configuration over ADS from {@code xdsAddress} ({@code host:port}), or from
     * {@code meshDir} when {@code xdsAddress} is null. On ADS the pod starts serving once the first complete set of
     * clusters, endpoints, listeners and routes has arrived.
     */
    public static Future<Pod> start(Vertx vertx, PodSpec spec, Path meshDir, String xdsAddress, int adminPort,
                                    Function<Mesh, Handler<HttpServerRequest>> service) {
        String name = podName(spec);
        MeshOptions options = new MeshOptions()
                .setWorkloadName(spec.workload())
                .setApp(spec.app())
                .setVersion(spec.version())
                .setNamespace("default")
                .setPodName(name)
                .setPodIp(spec.ip())
                .setAdminHost(spec.ip())
                .setAdminPort(adminPort);
        if (xdsAddress != null) {
            options.setXdsAddress(xdsAddress);
        } else {
            options.setConfigFile(meshDir.toString());
        }
        Mesh mesh = Mesh.create(vertx, options);
        Pod pod = new Pod(spec, name, mesh, service);
        return mesh.start()
                .compose(v -> vertx.createHttpServer().requestHandler(mesh.inbound(pod.service))
                        .listen(PodSpec.PORT, spec.ip()))
                .map(server -> {
                    pod.server = server;
                    return pod;
                })
                .recover(e -> mesh.close().transform(c -> Future.failedFuture(new IllegalStateException(
                        name + ": cannot start on " + spec.ip() + ":" + PodSpec.PORT + ": " + e.getMessage(), e))));
    }

    /** A pod name like Kubernetes gives, unique per address: {@code reviews-v2-13}. */
    static String podName(PodSpec spec) {
        return spec.workload() + "-" + spec.ip().substring(spec.ip().lastIndexOf('.') + 1);
    }

    public PodSpec spec() {
        return spec;
    }

    /** The pod's name, such as {@code reviews-v2-13}. */
    public String name() {
        return name;
    }

    public Mesh mesh() {
        return mesh;
    }

    /** The service's handler (a {@link ProductPage}, {@link Details}, {@link Reviews} or {@link Ratings}). */
    public Handler<HttpServerRequest> service() {
        return service;
    }

    /** Adds an observer of every request this pod's mesh finishes, inbound and outbound. */
    public void addObserver(Consumer<StreamInfo> observer) {
        observers.add(observer);
    }

    public void removeObserver(Consumer<StreamInfo> observer) {
        observers.remove(observer);
    }

    /** Stops the server, then the mesh. */
    public Future<Void> stop() {
        Future<Void> closing = server == null ? Future.succeededFuture() : server.close();
        return closing.eventually(mesh::close);
    }
}
