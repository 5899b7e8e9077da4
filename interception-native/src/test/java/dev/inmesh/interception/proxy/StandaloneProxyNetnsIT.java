package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.cli.InmeshCommand;
import dev.inmesh.interception.testing.NetnsSupport;
import dev.inmesh.runtime.xds.EnvoyJson;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The standalone proxy end to end: a "pod" namespace runs an unmodified Python application and the proxy (the
 * standalone jar in its own JVM, as UID 1337), with the capture rules installed as Istio's injector passes them. Two
 * other namespaces hold the upstream endpoints and the peers. Runs after {@code package} (failsafe), since it runs the
 * standalone jar; skips itself without root and {@code ip netns}. The proxy reads the pod's bootstrap, or takes its
 * configuration over ADS from a control plane the test runs in up2.
 *
 * <pre>
 *   pod  10.77.1.1 ──veth── 10.77.1.2  up1: v1 :8081 (200), v1-bad :8082 (503)
 *        10.77.2.1 ──veth── 10.77.2.2  up2: v2 :8081, raw echo :9999, the inbound peer, the control plane :15010
 *   pod: app :8000, raw echo :7000, stand-ins for the agent on :15020 :15021 :15090, proxy :15001 :15006
 * </pre>
 */
@Tag("netns")
class StandaloneProxyNetnsIT {
    private static final int PROXY_UID = 1337;
    private static final int APP_UID = 65534;
    private static final String PYTHON = "/usr/bin/python3";

    private NetnsSupport pod;
    private NetnsSupport up1;
    private NetnsSupport up2;
    private Path dir;
    private NetnsProcesses processes;
    private Process proxy;
    private TestControlPlane controlPlane;
    /** The stand-ins for Istio's agent on 15020, 15021 and 15090. */
    private final List<Process> agentStandIns = new ArrayList<>();

    @BeforeEach
    void createPodAndUpstreams() throws Exception {
        NetnsSupport.assumeAvailable();
        dir = NetnsProcesses.workDir("inmesh-proxy-it", "server.py", "echo.py", "tcpclient.py", "pod-bootstrap.yaml",
                "pod-xds.yaml");
        processes = new NetnsProcesses(dir);
        pod = NetnsSupport.create("inm-pod");
        up1 = NetnsSupport.create("inm-up1");
        up2 = NetnsSupport.create("inm-up2");
        pod.connect(up1, "10.77.1.1/24", "10.77.1.2/24");
        pod.connect(up2, "10.77.2.1/24", "10.77.2.2/24");
        // the service address exists only in the proxy's configuration; a route makes connect() reach OUTPUT
        pod.exec("ip", "route", "add", "default", "via", "10.77.1.2");

        server(up1, "10.77.1.2", 8081, "v1", 200);
        server(up1, "10.77.1.2", 8082, "v1-bad", 503);
        server(up2, "10.77.2.2", 8081, "v2", 200);
        start(up2, "echo-9999", PYTHON, dir.resolve("echo.py").toString(), "10.77.2.2", "9999");
        server(pod, "0.0.0.0", 8000, "app", 200);
        start(pod, "echo-7000", PYTHON, dir.resolve("echo.py").toString(), "0.0.0.0", "7000");
        for (int port : new int[] {15020, 15021, 15090}) {
            agentStandIns.add(server(pod, "0.0.0.0", port, "agent-" + port, 200));
        }
        awaitListening(up1, "10.77.1.2", 8081, 8082);
        awaitListening(up2, "10.77.2.2", 8081, 9999);
        awaitListening(pod, "127.0.0.1", 8000, 7000, 15020, 15021, 15090);
    }

    @AfterEach
    void stopEverything() throws Exception {
        if (controlPlane != null) {
            controlPlane.close();
        }
        if (processes != null) {
            processes.close();
        }
        NetnsProcesses.remove(dir, pod, up1, up2);
    }

    /** The proxy's {@code --uid}: Istio's 1337, or 0 (root in the 1337 group) as Istio's TPROXY sidecar runs. */
    private int proxyUid = PROXY_UID;

    /** {@code --transport} and its value when a test asks for one. */
    private List<String> transport = List.of();

    /** The proxy started next runs on io_uring; on a kernel that refuses io_uring the test is skipped, saying why. */
    private void onIoUring() {
        org.junit.jupiter.api.Assumptions.assumeTrue(io.vertx.core.transport.Transport.IO_URING.available(),
                () -> "io_uring is unavailable here: " + io.vertx.core.transport.Transport.IO_URING
                        .unavailabilityCause());
        transport = List.of("--transport", "io_uring");
    }

    @Test
    void theAppsOutboundRequestsAreRoutedByHeaderAndRetriedPastA503AndTheProxysOwnConnectionsAreNotCaptured()
            throws Exception {
        startProxyWithRules("REDIRECT", "PassthroughCluster", false);
        int v1Requests = 8;
        for (int i = 0; i < v1Requests; i++) {
            assertEquals("200 v1 saw 10.77.1.1", appCurl("http://10.77.9.9:8080/reviews/" + i));
        }
        for (int i = 0; i < 3; i++) {
            assertEquals("200 v2 saw 10.77.2.1", appCurl("http://10.77.9.9:8080/reviews/v2", "x-version: v2"));
        }
        // round robin sent some first attempts to the endpoint that answers 503; each was retried on the other host
        long failed = lines("log-v1-bad-8082").size();
        assertTrue(failed >= 1, "the 503 endpoint was never tried");
        assertEquals(v1Requests, lines("log-v1-8081").size());
        assertEquals(3, lines("log-v2-8081").size());
        List<String> access = awaitLines("access.log", v1Requests + 3);
        // every request answered 200 although the bad endpoint answered 503 to `failed` first attempts: retried
        assertEquals(v1Requests + 3, access.stream().filter(l -> l.contains("\" 200 - via_upstream ")).count(),
                String.join("\n", access));
        // no loop: only the app's 11 connections were redirected to 15001, none of the proxy's own
        assertEquals(v1Requests + 3, redirectedConnections("ISTIO_REDIRECT"));
        // the proxy runs as 1337 on every thread
        assertTrue(PrivilegeDropCheck.allThreadsRunAs(proxy.pid(), PROXY_UID), PrivilegeDropCheck.describe(proxy.pid()));
    }

    @Test
    void onIoUringTheAppsOutboundRequestsFindTheirOriginalDestinationAndTheProxysOwnConnectionsAreNotCaptured()
            throws Exception {
        onIoUring();
        startProxyWithRules("REDIRECT", "PassthroughCluster", false);
        assertTrue(Files.readString(dir.resolve("proxy.err")).contains("transport io_uring"),
                Files.readString(dir.resolve("proxy.err")));
        for (int i = 0; i < 4; i++) {
            assertEquals("200 v1 saw 10.77.1.1", appCurl("http://10.77.9.9:8080/reviews/" + i));
        }
        assertEquals("200 v2 saw 10.77.2.1", appCurl("http://10.77.9.9:8080/reviews/v2", "x-version: v2"));
        // the service address is known only from SO_ORIGINAL_DST, read from the io_uring socket's descriptor
        assertEquals(5, redirectedConnections("ISTIO_REDIRECT"));
        assertTrue(PrivilegeDropCheck.allThreadsRunAs(proxy.pid(), PROXY_UID), PrivilegeDropCheck.describe(proxy.pid()));
        assertInboundCapture();
    }

    @Test
    void onIoUringTproxyModeDeliversInboundRequestsTheSameWay() throws Exception {
        onIoUring();
        startProxyWithRules("TPROXY", "PassthroughCluster", true);
        assertInboundCapture();
        assertEquals(0, redirectedConnections("ISTIO_IN_REDIRECT"), "TPROXY mode must not NAT inbound");
    }

    @Test
    void inboundRequestsPassThrough15006AndReachTheAppFrom127006WhileTheAgentPortsBypassCapture() throws Exception {
        startProxyWithRules("REDIRECT", "PassthroughCluster", false);
        assertInboundCapture();
    }

    @Test
    void tproxyModeDeliversInboundRequestsTheSameWay() throws Exception {
        startProxyWithRules("TPROXY", "PassthroughCluster", true);
        assertInboundCapture();
        assertEquals(0, redirectedConnections("ISTIO_IN_REDIRECT"), "TPROXY mode must not NAT inbound");
    }

    @Test
    void tproxyModeWithOriginalSrcConnectsToTheAppFromTheClientsOwnAddress() throws Exception {
        // as Istio's injector runs a TPROXY sidecar: root in the proxy's group, which keeps CAP_NET_ADMIN
        proxyUid = 0;
        startProxyWithOriginalSrc();
        // raw TCP: the default chain's tcp_proxy to InboundPassthroughClusterIpv4, whose bind address is 127.0.0.6
        NetnsSupport.Output raw = up2.run(PYTHON, dir.resolve("tcpclient.py").toString(), "10.77.2.1", "7001", "who");
        assertEquals("ECHO 10.77.2.2", raw.stdout(), raw.stderr() + Files.readString(dir.resolve("proxy.err")));
    }

    @Test
    void withoutCapNetAdminAnOriginalSrcConnectionFailsWithTheReasonRatherThanLeavingFrom127006() throws Exception {
        // --uid 1337: the proxy has no capability left after the drop, so the socket refuses IP_TRANSPARENT
        startProxyWithOriginalSrc();
        NetnsSupport.Output raw = up2.run(PYTHON, dir.resolve("tcpclient.py").toString(), "10.77.2.1", "7001", "who");
        assertEquals("", raw.stdout(), "the connection must not reach the app from another address");
        String log = String.join("\n", awaitLines("access.log", 1));
        // as Envoy writes %UPSTREAM_TRANSPORT_FAILURE_REASON%: spaces as underscores
        assertTrue(log.contains(" UF") && log.contains("setsockopt(IP_TRANSPARENT)_failed:_Operation_not_permitted"),
                log);
    }

    @Test
    void tproxyModeWithOriginalSrcSendsEachClientsHttpRequestsToTheAppFromItsOwnAddress() throws Exception {
        proxyUid = 0;
        startProxyWithOriginalSrc();
        // the HTTP chain of 8000: the shared router's pool of inbound|8000||, whose bind address is 127.0.0.6; the
        // clients' requests alternate, so a connection kept for one client would carry the other's next request
        for (int i = 0; i < 2; i++) {
            assertEquals("app saw 10.77.2.2 200", curl(up2, "http://10.77.2.1:8000/in"),
                    Files.readString(dir.resolve("proxy.err")));
            assertEquals("app saw 10.77.1.2 200", curl(up1, "http://10.77.1.1:8000/in"));
        }
        assertEquals(List.of("GET /in 10.77.2.2", "GET /in 10.77.1.2", "GET /in 10.77.2.2", "GET /in 10.77.1.2"),
                lines("log-app-8000"));
    }

    @Test
    void withoutCapNetAdminAnOriginalSrcHttpRequestFailsWithTheReasonRatherThanLeavingFrom127006() throws Exception {
        startProxyWithOriginalSrc();
        String answer = curl(up2, "http://10.77.2.1:8000/in");
        assertTrue(answer.endsWith(" 503"), answer);
        assertEquals(List.of(), lines("log-app-8000"), "the request must not reach the app from another address");
        String log = String.join("\n", awaitLines("access.log", 1));
        assertTrue(log.contains(" 503 UF ")
                && log.contains("setsockopt(IP_TRANSPARENT)_failed:_Operation_not_permitted"), log);
    }

    /** A request from a peer outside the pod: "BODY STATUS", the body's trailing newline left out. */
    private static String curl(NetnsSupport peer, String url) {
        NetnsSupport.Output out = peer.run("curl", "-s", "-m", "5", "-w", " %{http_code}", url);
        return out.stdout().replace("\n", "");
    }

    /**
     * Starts, in the pod, an app on 7001 that answers with the address it sees connecting, and the proxy in TPROXY
     * mode whose virtualInbound runs original_src with istiod's mark 1337.
     */
    private void startProxyWithOriginalSrc() throws Exception {
        start(pod, "peer-7001", PYTHON, dir.resolve("echo.py").toString(), "0.0.0.0", "7001", "peer");
        awaitListening(pod, "127.0.0.1", 7001);
        String filters = bootstrap("PassthroughCluster", true).replace(
                "    - name: envoy.filters.listener.tls_inspector\n", """
                    - name: envoy.filters.listener.original_src
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.filters.listener.original_src.v3.OriginalSrc
                        mark: 1337
                    - name: envoy.filters.listener.tls_inspector
                """);
        assertTrue(filters.contains("mark: 1337"), filters);
        Files.writeString(dir.resolve("bootstrap.yaml"), filters);
        startProxyWithRules("TPROXY", "-c", dir.resolve("bootstrap.yaml").toString());
    }

    @Test
    void theAgentPortProbesTheAppFrom127006PastTheCaptureRulesAndMergesItsMetrics() throws Exception {
        for (Process p : agentStandIns) {
            p.destroy();
            p.waitFor(5, TimeUnit.SECONDS);
        }
        Files.writeString(dir.resolve("bootstrap.yaml"), bootstrap("PassthroughCluster", false));
        // what Istio's injector gives the sidecar of a pod whose app has a readiness probe on :8000/ready and
        // prometheus.io annotations for :8000/metrics
        startProxyWithRules("REDIRECT", java.util.Map.of(
                "ISTIO_KUBE_APP_PROBERS", "{\"/app-health/app/readyz\":{\"httpGet\":{\"path\":\"/ready\","
                        + "\"port\":8000},\"timeoutSeconds\":2}}",
                "ISTIO_PROMETHEUS_ANNOTATIONS", "{\"scrape\":\"true\",\"port\":\"8000\",\"path\":\"/metrics\"}",
                "INSTANCE_IP", "10.77.2.1"), "-c", dir.resolve("bootstrap.yaml").toString());

        // the kubelet (from the node's side) probes 15020, which the rules leave alone
        NetnsSupport.Output probe = up2.run("curl", "-s", "-m", "5", "-w", " %{http_code}",
                "http://10.77.2.1:15020/app-health/app/readyz");
        assertEquals("app saw 127.0.0.6\n 200", probe.stdout(), probe.stderr());
        // the proxy's probe reached the app directly from 127.0.0.6: not captured into 15006 (no inbound NAT)
        assertEquals(List.of("GET /ready 127.0.0.6"), lines("log-app-8000"));
        assertEquals(0, redirectedConnections("ISTIO_IN_REDIRECT"), "the probe was captured");

        NetnsSupport.Output metrics = up2.run("curl", "-s", "-m", "5", "http://10.77.2.1:15020/stats/prometheus");
        assertTrue(metrics.stdout().contains("istio_agent_scrapes_total"), metrics.stdout());
        assertTrue(metrics.stdout().endsWith("app saw 127.0.0.1\n"), metrics.stdout());
    }

    @Test
    void rawTcpToAnAddressWithoutAListenerPassesThroughUnderAllowAny() throws Exception {
        startProxyWithRules("REDIRECT", "PassthroughCluster", false);
        NetnsSupport.Output out = appRun(PYTHON, dir.resolve("tcpclient.py").toString(), "10.77.2.2", "9999",
                "hello through the mesh");
        assertEquals("ECHO HELLO THROUGH THE MESH", out.stdout(), out.stderr());
        assertEquals(1, redirectedConnections("ISTIO_REDIRECT"));
    }

    @Test
    void rawTcpToAnAddressWithoutAListenerIsRefusedUnderRegistryOnly() throws Exception {
        startProxyWithRules("REDIRECT", "BlackHoleCluster", false);
        NetnsSupport.Output out = appRun(PYTHON, dir.resolve("tcpclient.py").toString(), "10.77.2.2", "9999",
                "hello");
        assertEquals(3, out.exitCode(), "expected the connection to be closed without an answer: " + out);
        // the service in the registry still works
        assertEquals("200 v2 saw 10.77.2.1", appCurl("http://10.77.9.9:8080/", "x-version: v2"));
    }

    @Test
    void fromAControlPlaneTheAppsRequestsFollowItsRdsRoutesAndARouteUpdateMovesTheNextOneWithoutARestart()
            throws Exception {
        startProxyFromControlPlane("REDIRECT", false);
        assertEquals("200 v1 saw 10.77.1.1", appCurl("http://10.77.9.9:8080/reviews/2"));

        serveXds("2", "v2", false);
        awaitAppCurl("http://10.77.9.9:8080/reviews/3", "200 v2 saw 10.77.2.1");
        int v1Requests = lines("log-v1-8081").size();
        for (int i = 0; i < 3; i++) {
            assertEquals("200 v2 saw 10.77.2.1", appCurl("http://10.77.9.9:8080/reviews/" + i));
        }
        assertEquals(v1Requests, lines("log-v1-8081").size(), "a request went to v1 after the route update");
        assertTrue(proxy.isAlive(), "the proxy stopped");
        assertTrue(controlPlane.requests.stream().anyMatch(r -> r.getTypeUrl().endsWith("RouteConfiguration")
                && r.getVersionInfo().equals("2") && !r.hasErrorDetail()), "the route update was not ACKed");
        assertInboundCapture();
    }

    @Test
    void fromAControlPlaneInTproxyModeTheTransparentInboundListenerIsBoundAndDeliversInboundRequests()
            throws Exception {
        startProxyFromControlPlane("TPROXY", true);
        assertInboundCapture();
        assertEquals(0, redirectedConnections("ISTIO_IN_REDIRECT"), "TPROXY mode must not NAT inbound");
    }

    /**
     * Starts a control plane serving the pod's sidecar configuration with routes to v1, then the proxy with the
     * capture rules in {@code mode}, taking its configuration from that control plane, and waits until the app's
     * requests reach v1 through it.
     */
    private void startProxyFromControlPlane(String mode, boolean transparent) throws Exception {
        // the control plane listens in up2, so the pod reaches it only over its own veth (as the proxy, whose
        // connections the rules do not capture)
        controlPlane = up2.inside(() -> new TestControlPlane(new InetSocketAddress("10.77.2.2", 15010)));
        serveXds("1", "v1", transparent);
        startProxyWithRules(mode, "--xds-address", "10.77.2.2:15010");
        // the listeners are bound as LDS sends them: until then the app's connections are refused
        awaitAppCurl("http://10.77.9.9:8080/reviews/1", "200 v1 saw 10.77.1.1");
    }

    /**
     * Serves the pod's sidecar configuration over ADS as {@code version}: the bootstrap's capture listeners and
     * clusters ({@code transparent}: TPROXY's 15006), and pod-xds.yaml's outbound listener, RDS routes to
     * {@code subset} and EDS clusters.
     */
    private void serveXds(String version, String subset, boolean transparent) throws Exception {
        JsonNode statics = EnvoyJson.tree(bootstrap("PassthroughCluster", transparent)).path("static_resources");
        JsonNode xds = EnvoyJson.tree(Files.readString(dir.resolve("pod-xds.yaml")).replace("@SUBSET@", subset));
        List<Listener> listeners = new ArrayList<>(TestControlPlane.parse(xds.path("listeners"), Listener.class));
        for (Listener l : TestControlPlane.parse(statics.path("listeners"), Listener.class)) {
            if (l.getName().startsWith("virtual")) {
                listeners.add(l);
            }
        }
        List<Cluster> clusters = new ArrayList<>(TestControlPlane.parse(xds.path("clusters"), Cluster.class));
        for (Cluster c : TestControlPlane.parse(statics.path("clusters"), Cluster.class)) {
            if (!c.getName().startsWith("outbound|")) {
                clusters.add(c);
            }
        }
        controlPlane.serve(version, listeners, TestControlPlane.parse(xds.path("routes"), RouteConfiguration.class),
                clusters, TestControlPlane.parse(xds.path("endpoints"), ClusterLoadAssignment.class));
    }

    /** Repeats the app's request until it is answered {@code expected} (the configuration on its way). */
    private void awaitAppCurl(String url, String expected) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        String last = appCurl(url);
        while (!last.equals(expected) && System.nanoTime() < deadline) {
            Thread.sleep(200);
            last = appCurl(url);
        }
        assertEquals(expected, last, "proxy log:\n" + Files.readString(dir.resolve("proxy.err")));
    }

    private void assertInboundCapture() throws Exception {
        NetnsSupport.Output in = up2.run("curl", "-s", "-m", "5", "-w", " %{http_code}", "http://10.77.2.1:8000/in");
        assertEquals("app saw 127.0.0.6\n 200", in.stdout(), in.stderr());
        assertEquals(List.of("GET /in 127.0.0.6"), lines("log-app-8000"));
        for (int port : new int[] {15020, 15021, 15090}) {
            NetnsSupport.Output agent = up2.run("curl", "-s", "-m", "5", "http://10.77.2.1:" + port + "/healthz");
            assertEquals("agent-" + port + " saw 10.77.2.2\n", agent.stdout(), "port " + port + " was captured");
        }
        // raw TCP to another port of the app: no HTTP detected, the default chain passes it through from 127.0.0.6
        NetnsSupport.Output raw = up2.run(PYTHON, dir.resolve("tcpclient.py").toString(), "10.77.2.1", "7000",
                "raw bytes");
        assertEquals("ECHO RAW BYTES", raw.stdout(), raw.stderr());
    }

    // ---- the pod's proxy ----

    private void startProxyWithRules(String mode, String outboundCluster, boolean transparent) throws Exception {
        Files.writeString(dir.resolve("bootstrap.yaml"), bootstrap(outboundCluster, transparent));
        startProxyWithRules(mode, "-c", dir.resolve("bootstrap.yaml").toString());
    }

    /** The pod's bootstrap: what its unmatched outbound traffic goes to, and whether 15006 is transparent (TPROXY). */
    private String bootstrap(String outboundCluster, boolean transparent) throws IOException {
        return Files.readString(dir.resolve("pod-bootstrap.yaml"))
                .replace("@OUTBOUND@", outboundCluster)
                .replace("@TRANSPARENT@", Boolean.toString(transparent));
    }

    /** Installs the capture rules in {@code mode} and starts the proxy with {@code config} (its configuration). */
    private void startProxyWithRules(String mode, String... config) throws Exception {
        startProxyWithRules(mode, null, config);
    }

    /**
     * The same; with {@code agentEnv} not null, the proxy serves the agent ports itself (in place of the stand-ins)
     * with that environment, as Istio's injector gives the sidecar.
     */
    private void startProxyWithRules(String mode, java.util.Map<String, String> agentEnv, String... config)
            throws Exception {
        int rc = InmeshCommand.commandLine().execute("iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m",
                mode, "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020", "--network-namespace", pod.name());
        assertEquals(0, rc, "inmesh iptables failed");
        List<String> argv = new ArrayList<>(List.of(NetnsProcesses.javaBin(), "-Xmx256m", "-jar",
                dir.resolve("inmesh.jar").toString(), "proxy"));
        argv.addAll(List.of(config));
        argv.addAll(List.of("--uid", Integer.toString(proxyUid), "--gid", Integer.toString(PROXY_UID),
                "--event-loops", "2", "--access-log", dir.resolve("access.log").toString()));
        argv.addAll(transport);
        if (agentEnv == null) {
            // the pod's stand-ins for Istio's agent hold 15020/15021/15090, as in a real pod
            argv.add("--no-admin");
        }
        proxy = start(pod, "proxy", agentEnv == null ? java.util.Map.of() : agentEnv, argv.toArray(String[]::new));
        NetnsProcesses.awaitProxy(proxy, dir.resolve("proxy.err"), 30);
    }

    /** A request from the app's side of the pod, as an ordinary user: "STATUS BODY" without the trailing newline. */
    private String appCurl(String url, String... headers) {
        List<String> argv = new ArrayList<>(List.of("curl", "-s", "-m", "5", "-w", "%{http_code} "));
        for (String h : headers) {
            argv.add("-H");
            argv.add(h);
        }
        argv.add(url);
        NetnsSupport.Output out = appRun(argv.toArray(String[]::new));
        // curl prints the body, then the -w text
        String body = out.stdout();
        int split = body.lastIndexOf('\n');
        if (split < 0) {
            return body.strip() + " (curl exit " + out.exitCode() + ": " + out.stderr().strip() + ")";
        }
        String status = body.substring(split + 1).strip();
        return status + " " + body.substring(0, split).strip();
    }

    private NetnsSupport.Output appRun(String... command) {
        List<String> argv = new ArrayList<>(List.of("setpriv", "--reuid", Integer.toString(APP_UID), "--regid",
                Integer.toString(APP_UID), "--clear-groups"));
        argv.addAll(List.of(command));
        return pod.run(argv.toArray(String[]::new));
    }

    /** Connections the pod's nat chain sent on. */
    private long redirectedConnections(String chain) {
        return NetnsProcesses.redirectedConnections(pod, chain);
    }

    // ---- processes and files ----

    private Process server(NetnsSupport ns, String bind, int port, String name, int status) throws IOException {
        return start(ns, name + "-" + port, PYTHON, dir.resolve("server.py").toString(), bind,
                Integer.toString(port), name,
                Integer.toString(status), dir.resolve("log-" + name + "-" + port).toString());
    }

    private Process start(NetnsSupport ns, String name, String... command) throws IOException {
        return start(ns, name, java.util.Map.of(), command);
    }

    private Process start(NetnsSupport ns, String name, java.util.Map<String, String> env, String... command)
            throws IOException {
        return processes.start(ns, name, env, command);
    }

    private static void awaitListening(NetnsSupport ns, String ip, int... ports) throws Exception {
        NetnsProcesses.awaitListening(ns, ip, ports);
    }

    private List<String> lines(String file) throws IOException {
        Path p = dir.resolve(file);
        return Files.exists(p) ? Files.readAllLines(p, StandardCharsets.UTF_8) : List.of();
    }

    /** The access log is written after the response: wait (boundedly) for the expected number of lines. */
    private List<String> awaitLines(String file, int count) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        List<String> l = lines(file);
        while (l.size() < count && System.nanoTime() < deadline) {
            Thread.sleep(50);
            l = lines(file);
        }
        return l;
    }

    /** Reads a process's threads' credentials from /proc. */
    static final class PrivilegeDropCheck {
        private PrivilegeDropCheck() {}

        static boolean allThreadsRunAs(long pid, int id) throws IOException {
            List<String> lines = statusLines(pid);
            return !lines.isEmpty() && lines.stream().allMatch(l -> l.matches("(Uid|Gid):\\s+" + id + "\\s+" + id
                    + "\\s+" + id + "\\s+" + id));
        }

        static String describe(long pid) {
            try {
                return String.join("\n", statusLines(pid));
            } catch (IOException e) {
                return e.toString();
            }
        }

        private static List<String> statusLines(long pid) throws IOException {
            List<String> out = new ArrayList<>();
            try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
                for (Path t : (Iterable<Path>) tasks::iterator) {
                    for (String l : Files.readAllLines(t.resolve("status"))) {
                        if (l.startsWith("Uid:") || l.startsWith("Gid:")) {
                            out.add(l);
                        }
                    }
                }
            }
            return out;
        }
    }
}
