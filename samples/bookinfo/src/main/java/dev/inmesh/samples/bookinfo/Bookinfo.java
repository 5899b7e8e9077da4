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
import java.util.Set;
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
 * exits after the scenario, with status 1 when it did not go as expected. With {@code --control-plane} every pod's
 * mesh takes its configuration over ADS from a {@link ControlPlane} on 127.0.0.1 instead, and the
 * {@link ShiftScenario} ({@code --shift}) or its console moves reviews traffic live.
 */
public final class Bookinfo {
    /** The admin port each pod's mesh gets on the pod's own address, as every pod has its own 15000. */
    public static final int ADMIN_PORT = 15000;

    private final Vertx vertx;
    private final Path meshDir;
    private final int adminPort;
    private final String xdsAddress;
    private final Map<String, Pod> pods = new ConcurrentHashMap<>();
    private ResourceBundle config;

    private Bookinfo(Vertx vertx, Path meshDir, String xdsAddress, int adminPort) {
        this.vertx = vertx;
        this.meshDir = meshDir;
        this.xdsAddress = xdsAddress;
        this.adminPort = adminPort;
    }

    /**
     * Starts every pod of {@link PodSpec#ALL}, callees first.
     *
     * @param meshDir the mesh configuration (a directory of Envoy JSON/YAML)
     * @param adminPort each mesh's admin port on its pod's address, or -1 for none
     */
    public static Future<Bookinfo> start(Vertx vertx, Path meshDir, int adminPort) {
        return start(vertx, meshDir, null, adminPort, Set.of());
    }

    /**
     * Starts the pods of {@link PodSpec#ALL} whose app is not in {@code skipApps}, callees first.
     *
     * @param meshDir the mesh configuration (a directory of Envoy JSON/YAML); on ADS, the directory the control
     *     plane serves (read here only for {@link #addEndpoint})
     * @param xdsAddress {@code host:port} of an ADS server (such as a {@link ControlPlane}) every pod's mesh takes
     *     its configuration from, or null to read {@code meshDir}
     * @param adminPort each mesh's admin port on its pod's address, or -1 for none
     * @param skipApps apps whose pods run elsewhere (the mesh's endpoints say where), such as {@code ratings}
     */
    public static Future<Bookinfo> start(Vertx vertx, Path meshDir, String xdsAddress, int adminPort,
                                         Set<String> skipApps) {
        Bookinfo app = new Bookinfo(vertx, meshDir, xdsAddress, adminPort);
        Future<?> chain = vertx.executeBlocking(() -> {
            app.config = EnvoyConfigReader.read(meshDir);
            return null;
        }, false);
        for (PodSpec spec : PodSpec.ALL) {
            if (!skipApps.contains(spec.app())) {
                chain = chain.compose(v -> app.startPod(spec));
            }
        }
        return chain.map(v -> app).recover(e -> app.close().transform(c -> Future.failedFuture(e)));
    }

    /** Starts one more pod, such as a second instance of a workload on another address. */
    public Future<Pod> startPod(PodSpec spec) {
        if (pods.containsKey(spec.ip())) {
            return Future.failedFuture(new IllegalStateException("a pod already runs on " + spec.ip()));
        }
        return Pod.start(vertx, spec, meshDir, xdsAddress, adminPort, service(spec)).onSuccess(p -> pods.put(spec.ip(), p));
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
     * The change is local to this JVM: on ADS, the control plane's next push replaces it.
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

    private static final String USAGE = "usage: bookinfo [--scenario-only | --serve-only] [--mesh-dir=DIR] "
            + "[--skip=APP,...]\n"
            + "       bookinfo --control-plane [--shift] [--xds-port=PORT] [--mesh-dir=DIR] [--skip=APP,...]\n"
            + "  --scenario-only   run the scenario, exit (status 1 if it did not go as expected)\n"
            + "  --serve-only      no scenario: start the pods and serve\n"
            + "  --skip=APP,...    do not start these apps' pods (productpage, details, reviews, ratings): they run\n"
            + "                    elsewhere, where the endpoints say\n"
            + "  --control-plane   start a ControlPlane on 127.0.0.1 serving DIR over ADS; every pod's mesh takes its\n"
            + "                    configuration from it; then read commands from stdin (help lists them)\n"
            + "  --shift           with --control-plane: shift reviews from v1 to v3 while pages load, exit (status 1\n"
            + "                    if it did not go as expected)\n"
            + "  --xds-port=PORT   with --control-plane: the control plane's port (default 0: any free port)";

    /**
     * What the command line asks for, as the usage has it: on the files, the scenario then serving, the scenario
     * alone or serving alone; on a control plane, its console or its shift scenario.
     *
     * @param meshDir the mesh directory given, or null for {@link #defaultMeshDir()}
     * @param help whether only the usage is asked for
     */
    record Launch(boolean scenarioOnly, boolean serveOnly, boolean controlPlane, boolean shift, int xdsPort,
                  Set<String> skip, Path meshDir, boolean help) {

        /** @throws IllegalArgumentException saying what is wrong with {@code args} */
        static Launch parse(String... args) {
            boolean scenarioOnly = false;
            boolean serveOnly = false;
            boolean controlPlane = false;
            boolean shift = false;
            Integer xdsPort = null;
            Set<String> skip = new java.util.LinkedHashSet<>();
            Path meshDir = null;
            for (String a : args) {
                if (a.equals("--scenario-only")) {
                    scenarioOnly = true;
                } else if (a.equals("--serve-only")) {
                    serveOnly = true;
                } else if (a.equals("--control-plane")) {
                    controlPlane = true;
                } else if (a.equals("--shift")) {
                    shift = true;
                } else if (a.startsWith("--xds-port=")) {
                    xdsPort = port(a.substring("--xds-port=".length()));
                } else if (a.startsWith("--skip=")) {
                    for (String app : a.substring("--skip=".length()).split(",")) {
                        if (!app.isBlank()) {
                            skip.add(app(app.strip()));
                        }
                    }
                } else if (a.startsWith("--mesh-dir=")) {
                    meshDir = Path.of(a.substring("--mesh-dir=".length()));
                } else if (a.equals("-h") || a.equals("--help")) {
                    return new Launch(false, false, false, false, 0, Set.of(), null, true);
                } else {
                    throw new IllegalArgumentException("unknown argument: " + a);
                }
            }
            if (scenarioOnly && serveOnly) {
                throw new IllegalArgumentException("--scenario-only and --serve-only: give one (the scenario alone, "
                        + "or serving alone)");
            }
            if (controlPlane && (scenarioOnly || serveOnly)) {
                throw new IllegalArgumentException((scenarioOnly ? "--scenario-only" : "--serve-only")
                        + " goes without --control-plane, which runs no scenario but --shift's and serves with its "
                        + "console");
            }
            if (!controlPlane && (shift || xdsPort != null)) {
                throw new IllegalArgumentException((shift ? "--shift" : "--xds-port") + " needs --control-plane");
            }
            return new Launch(scenarioOnly, serveOnly, controlPlane, shift, xdsPort == null ? 0 : xdsPort,
                    Set.copyOf(skip), meshDir, false);
        }

        private static int port(String value) {
            try {
                int port = Integer.parseInt(value);
                if (port >= 0 && port <= 65535) {
                    return port;
                }
            } catch (NumberFormatException e) {
                // said below
            }
            throw new IllegalArgumentException("--xds-port: " + value + " (expected: a port, 0 to 65535)");
        }

        private static String app(String app) {
            List<String> apps = PodSpec.ALL.stream().map(PodSpec::app).distinct().toList();
            if (!apps.contains(app)) {
                throw new IllegalArgumentException("--skip: no app " + app + " (expected: some of "
                        + String.join(", ", apps) + ")");
            }
            return app;
        }
    }

    public static void main(String[] args) throws Exception {
        Launch launch;
        try {
            launch = Launch.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println(e.getMessage() + "\n" + USAGE);
            System.exit(2);
            return;
        }
        if (launch.help()) {
            System.out.println(USAGE);
            return;
        }
        quietLogging();
        Path meshDir = launch.meshDir() != null ? launch.meshDir() : defaultMeshDir();
        if (!Files.isDirectory(meshDir)) {
            System.err.println("no mesh configuration at " + meshDir.toAbsolutePath() + " (use --mesh-dir=DIR)");
            System.exit(2);
        }
        PrintStream out = System.out;
        ControlPlane cp = null;
        if (launch.controlPlane()) {
            try {
                cp = ControlPlane.start(meshDir, "127.0.0.1", launch.xdsPort());
            } catch (Exception e) {
                out.println("the control plane did not start on 127.0.0.1:" + launch.xdsPort() + ": "
                        + e.getMessage());
                System.exit(1);
                return;
            }
        }
        Vertx vertx = Vertx.vertx();
        Bookinfo app;
        try {
            app = start(vertx, meshDir, cp == null ? null : "127.0.0.1:" + cp.port(), ADMIN_PORT, launch.skip())
                    .await(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            out.println("bookinfo did not start: " + e.getMessage());
            vertx.close().await(5, TimeUnit.SECONDS);
            if (cp != null) {
                cp.close();
            }
            System.exit(1);
            return;
        }
        String config = cp == null ? "config: " + meshDir
                : "config: ADS from the control plane on 127.0.0.1:" + cp.port() + ", serving " + meshDir;
        Scenario.printWelcome(app, config, out);
        ControlPlane servedBy = cp;
        Runnable stop = () -> {
            try {
                app.close().await(5, TimeUnit.SECONDS);
                vertx.close().await(5, TimeUnit.SECONDS);
            } catch (Exception e) {
                // exiting anyway
            }
            if (servedBy != null) {
                servedBy.close();
            }
        };
        if (launch.scenarioOnly() || launch.shift()) {
            boolean ok = launch.shift() ? new ShiftScenario(vertx, app, cp, out).run()
                    : new Scenario(vertx, app, out).run();
            stop.run();
            System.exit(ok ? 0 : 1);
        }
        if (!launch.serveOnly() && cp == null) {
            new Scenario(vertx, app, out).run();
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stop.run();
            stopped.countDown();
        }, "bookinfo-shutdown"));
        out.println();
        out.println("Serving. Open " + PodSpec.PRODUCTPAGE.url() + "/productpage (Ctrl-C stops).");
        if (cp != null) {
            boolean quit = new ShiftScenario(vertx, app, cp, out).console(
                    new java.io.BufferedReader(new java.io.InputStreamReader(System.in,
                            java.nio.charset.StandardCharsets.UTF_8)));
            if (quit) {
                System.exit(0);
            }
            out.println("(stdin closed: serving until Ctrl-C)");
        }
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
