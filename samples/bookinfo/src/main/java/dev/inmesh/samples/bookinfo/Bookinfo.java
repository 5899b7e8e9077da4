package dev.inmesh.samples.bookinfo;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import dev.inmesh.runtime.mesh.DefaultMesh;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.ResourceBundle;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpServerRequest;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Istio's bookinfo in one JVM, with no root and no control plane: one pod per workload of {@link PodSpec#ALL}, each
 * with its own {@link Mesh} reading the Envoy configuration in {@code samples/bookinfo/mesh/}.
 *
 * <p>{@code main} starts it, prints where to look, runs the {@link Scenario} (the weighted split, the header route,
 * retries around a failing instance, the ratings timeout), and serves until interrupted; {@code --scenario-only}
 * exits after the scenario, with status 1 when it did not go as expected.
 */
public final class Bookinfo {
    /** The admin port each pod's mesh gets on the pod's own address, as every pod has its own 15000. */
    public static final int ADMIN_PORT = 15000;

    private final Vertx vertx;
    private final Path meshDir;
    private final int adminPort;
    private final Map<String, Pod> pods = new ConcurrentHashMap<>();
    private ResourceBundle config;

    private Bookinfo(Vertx vertx, Path meshDir, int adminPort) {
        this.vertx = vertx;
        this.meshDir = meshDir;
        this.adminPort = adminPort;
    }

    /**
     * Starts every pod of {@link PodSpec#ALL}, callees first.
     *
     * @param meshDir the mesh configuration (a directory of Envoy JSON/YAML)
     * @param adminPort each mesh's admin port on its pod's address, or -1 for none
     */
    public static Future<Bookinfo> start(Vertx vertx, Path meshDir, int adminPort) {
        Bookinfo app = new Bookinfo(vertx, meshDir, adminPort);
        Future<?> chain = vertx.executeBlocking(() -> {
            app.config = EnvoyConfigReader.read(meshDir);
            return null;
        }, false);
        for (PodSpec spec : PodSpec.ALL) {
            chain = chain.compose(v -> app.startPod(spec));
        }
        return chain.map(v -> app).recover(e -> app.close().transform(c -> Future.failedFuture(e)));
    }

    /** Starts one more pod, such as a second instance of a workload on another address. */
    public Future<Pod> startPod(PodSpec spec) {
        if (pods.containsKey(spec.ip())) {
            return Future.failedFuture(new IllegalStateException("a pod already runs on " + spec.ip()));
        }
        return Pod.start(vertx, spec, meshDir, adminPort, service(spec)).onSuccess(p -> pods.put(spec.ip(), p));
    }

    private Function<Mesh, Handler<HttpServerRequest>> service(PodSpec spec) {
        switch (spec.app()) {
            case "productpage":
                return mesh -> new ProductPage(vertx, mesh.webClient());
            case "details":
                return mesh -> new Details();
            case "reviews":
                return mesh -> new Reviews(vertx, mesh.webClient(), spec.version(), Pod.podName(spec));
            case "ratings":
                return mesh -> new Ratings(vertx);
            default:
                throw new IllegalArgumentException("app: " + spec.app()
                        + " (expected: productpage, details, reviews or ratings)");
        }
    }

    /** Stops one pod (its server and its mesh). */
    public Future<Void> stopPod(PodSpec spec) {
        Pod pod = pods.remove(spec.ip());
        return pod == null ? Future.succeededFuture() : pod.stop();
    }

    /** The pod running at {@code spec}'s address. */
    public Pod pod(PodSpec spec) {
        Pod pod = pods.get(spec.ip());
        if (pod == null) {
            throw new IllegalArgumentException("no pod runs on " + spec.ip());
        }
        return pod;
    }

    /** The running pods, in address order. */
    public List<Pod> pods() {
        List<Pod> list = new ArrayList<>(pods.values());
        list.sort((a, b) -> Integer.compare(lastOctet(a.spec().ip()), lastOctet(b.spec().ip())));
        return list;
    }

    private static int lastOctet(String ip) {
        return Integer.parseInt(ip.substring(ip.lastIndexOf('.') + 1));
    }

    /** The ratings service, to make it slow. */
    public Ratings ratings() {
        return (Ratings) pod(PodSpec.RATINGS).service();
    }

    /** A reviews instance, to make it fail. */
    public Reviews reviews(PodSpec spec) {
        return (Reviews) pod(spec).service();
    }

    /**
     * Adds {@code spec}'s address to the endpoints of its service's clusters ({@code outbound|9080||fqdn} and
     * {@code outbound|9080|version|fqdn}) in every pod's mesh, as an EDS push from istiod would when a pod starts.
     */
    public Future<Void> addEndpoint(PodSpec spec) {
        return updateEndpoints(spec, true);
    }

    /** Takes {@code spec}'s address out of its service's endpoints in every pod's mesh. */
    public Future<Void> removeEndpoint(PodSpec spec) {
        return updateEndpoints(spec, false);
    }

    private Future<Void> updateEndpoints(PodSpec spec, boolean add) {
        return vertx.executeBlocking(() -> {
            synchronized (this) {
                ResourceBundle.Builder b = ResourceBundle.builder().from(config);
                ResourceBundle.Version version = new ResourceBundle.Version("bookinfo-eds-" + Instant.now()
                        .toEpochMilli(), Instant.now());
                for (String cluster : List.of("outbound|9080||" + spec.fqdn(),
                        "outbound|9080|" + spec.version() + "|" + spec.fqdn())) {
                    ClusterLoadAssignment cla = config.endpoints().get(cluster);
                    if (cla == null) {
                        throw new IllegalStateException("no endpoints for " + cluster + " in " + meshDir);
                    }
                    b.endpoints(withEndpoint(cla, spec, add), version);
                }
                config = b.build();
                for (Pod pod : pods.values()) {
                    ((DefaultMesh) pod.mesh()).snapshots().apply(config);
                }
            }
            return null;
        }, false);
    }

    private static ClusterLoadAssignment withEndpoint(ClusterLoadAssignment cla, PodSpec spec, boolean add) {
        List<LocalityLbEndpoints> localities = new ArrayList<>();
        for (LocalityLbEndpoints l : cla.endpoints()) {
            List<LbEndpoint> eps = new ArrayList<>();
            for (LbEndpoint e : l.lbEndpoints()) {
                if (!e.address().address().equals(spec.ip())) {
                    eps.add(e);
                }
            }
            if (add && localities.isEmpty()) {
                eps.add(new LbEndpoint(new SocketAddress(spec.ip(), PodSpec.PORT), "", HealthStatus.HEALTHY, 1,
                        new Metadata(Map.of("istio", Map.of("workload", spec.workload() + ";default;" + spec.app()
                                + ";" + spec.version() + ";Kubernetes")))));
            }
            localities.add(new LocalityLbEndpoints(l.locality(), eps, Math.max(1, eps.size()), l.priority()));
        }
        return new ClusterLoadAssignment(cla.clusterName(), localities, cla.overprovisioningFactor());
    }

    /** Stops every pod. */
    public Future<Void> close() {
        List<Future<Void>> stopping = new ArrayList<>();
        for (Pod pod : pods.values()) {
            stopping.add(pod.stop());
        }
        pods.clear();
        return Future.join(stopping).mapEmpty();
    }

    /** {@code mesh/} in the working directory, else {@code samples/bookinfo/mesh/} (run from the repository). */
    public static Path defaultMeshDir() {
        Path here = Path.of("mesh");
        return Files.isDirectory(here) ? here : Path.of("samples", "bookinfo", "mesh");
    }

    public static void main(String[] args) throws Exception {
        boolean scenarioOnly = false;
        Path meshDir = null;
        for (String a : args) {
            if (a.equals("--scenario-only")) {
                scenarioOnly = true;
            } else if (a.startsWith("--mesh-dir=")) {
                meshDir = Path.of(a.substring("--mesh-dir=".length()));
            } else if (a.equals("-h") || a.equals("--help")) {
                System.out.println("usage: bookinfo [--scenario-only] [--mesh-dir=DIR]");
                return;
            } else {
                System.err.println("unknown argument: " + a + " (usage: bookinfo [--scenario-only] [--mesh-dir=DIR])");
                System.exit(2);
            }
        }
        quietLogging();
        meshDir = meshDir != null ? meshDir : defaultMeshDir();
        if (!Files.isDirectory(meshDir)) {
            System.err.println("no mesh configuration at " + meshDir.toAbsolutePath() + " (use --mesh-dir=DIR)");
            System.exit(2);
        }
        PrintStream out = System.out;
        Vertx vertx = Vertx.vertx();
        Bookinfo app;
        try {
            app = start(vertx, meshDir, ADMIN_PORT).await(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            out.println("bookinfo did not start: " + e.getMessage());
            vertx.close().await(5, TimeUnit.SECONDS);
            System.exit(1);
            return;
        }
        Scenario.printWelcome(app, meshDir, out);
        boolean ok = new Scenario(vertx, app, out).run();
        if (scenarioOnly) {
            app.close().await(10, TimeUnit.SECONDS);
            vertx.close().await(10, TimeUnit.SECONDS);
            System.exit(ok ? 0 : 1);
        }
        out.println();
        out.println("Serving. Open " + PodSpec.PRODUCTPAGE.url() + "/productpage (Ctrl-C stops).");
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                app.close().await(5, TimeUnit.SECONDS);
                vertx.close().await(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                // exiting anyway
            }
            stopped.countDown();
        }, "bookinfo-shutdown"));
        stopped.await();
    }

    /** Vert.x, Netty and the mesh log through java.util.logging: only warnings and worse reach the console. */
    static void quietLogging() {
        Logger root = Logger.getLogger("");
        root.setLevel(Level.WARNING);
        for (var h : root.getHandlers()) {
            h.setLevel(Level.WARNING);
        }
    }
}
