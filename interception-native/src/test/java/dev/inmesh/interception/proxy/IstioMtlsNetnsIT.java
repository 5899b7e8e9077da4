package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.cli.InmeshCommand;
import dev.inmesh.interception.testing.NetnsSupport;
import dev.inmesh.runtime.identity.TestIstioCa;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Istio's mTLS between two pods, each an unmodified application behind the capture rules and the standalone proxy
 * (the packaged jar, as UID 1337), each proxy filling its identity directory from Istio's CA
 * ({@code --identity-dir --identity-ca --ca-address}) before it listens. The CA ({@link TestIstioCa}, plaintext as
 * istiod's 15010) runs in a third namespace, the node, which routes between the pods; both proxies reach it over
 * their veths. The proxy asks the CA as root before it drops to UID 1337, but already in group 1337, which the
 * rules return: the CA's connection is not captured (no {@code -o 15010} exclusion), as Istio's agent, which runs as
 * 1337, is never captured. Pod A's app (curl) calls service b;
 * its proxy gives B's endpoint Istio's auto mTLS when the endpoint carries {@code tlsMode: istio}; B's proxy
 * terminates it on virtualInbound's mTLS chain and counts the request {@code mutual_tls} with A's SPIFFE id, or
 * takes a plaintext connection on Istio's plaintext chain. Root only (tag {@code netns}); runs after
 * {@code package}.
 *
 * <pre>
 *   pod A 10.78.1.1 ──veth── 10.78.1.2  node: Istio's CA :15010, routing  10.78.2.2 ──veth── 10.78.2.1 pod B
 *   A: curl as 65534, proxy (SA a) :15001 :15006        B: app :8000, proxy (SA b) :15001 :15006, admin :15090
 *   service b: 10.96.0.10:8000 (only in A's configuration), endpoint 10.78.2.1:8000
 * </pre>
 */
@Tag("netns")
@Timeout(180)
class IstioMtlsNetnsIT {
    private static final int PROXY_UID = 1337;
    private static final int APP_UID = 65534;
    private static final int CA_PORT = 15010;
    private static final String PYTHON = "/usr/bin/python3";
    private static final String A_ID = "spiffe://cluster.local/ns/default/sa/a";
    private static final String B_ID = "spiffe://cluster.local/ns/default/sa/b";
    private static final String ISTIO_TLS = "{filter_metadata: {envoy.transport_socket_match: {tlsMode: istio}}}";

    private NetnsSupport podA;
    private NetnsSupport podB;
    private NetnsSupport node;
    private TestIstioCa ca;
    private Path dir;
    private NetnsProcesses processes;

    @BeforeEach
    void createPodsAndTheCa() throws Exception {
        NetnsSupport.assumeAvailable();
        dir = NetnsProcesses.workDir("inmesh-mtls-it", "server.py", "mtls-pod-a.yaml", "mtls-pod-b.yaml");
        processes = new NetnsProcesses(dir);
        podA = NetnsSupport.create("inm-a");
        podB = NetnsSupport.create("inm-b");
        node = NetnsSupport.create("inm-node");
        podA.connect(node, "10.78.1.1/24", "10.78.1.2/24");
        podB.connect(node, "10.78.2.1/24", "10.78.2.2/24");
        node.exec("sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
        // the service address exists only in A's configuration; a route makes connect() reach OUTPUT
        podA.exec("ip", "route", "add", "default", "via", "10.78.1.2");
        podB.exec("ip", "route", "add", "default", "via", "10.78.2.2");
        ca = node.inside(() -> new TestIstioCa(new InetSocketAddress("0.0.0.0", CA_PORT)));

        processes.start(podB, "app-8000", Map.of(), PYTHON, dir.resolve("server.py").toString(), "0.0.0.0", "8000", "b",
                "200", dir.resolve("log-b-8000").toString());
        NetnsProcesses.awaitListening(podB, "127.0.0.1", 8000);
    }

    @AfterEach
    void stopEverything() throws Exception {
        if (processes != null) {
            processes.close();
        }
        if (ca != null) {
            ca.close();
        }
        NetnsProcesses.remove(dir, podA, podB, node);
    }

    @Test
    void aCallsBOverIstioMutualTlsWithCertificatesOfTheCaAndBCountsItAsMutualTlsFromAsSpiffeId() throws Exception {
        startPods(ISTIO_TLS);
        assertEquals("200 b saw 127.0.0.6", appCurl("http://10.96.0.10:8000/via-service"), this::logs);
        // both proxies asked the CA for their own identity before they listened
        assertEquals(2, ca.calls().size());
        assertTrue(ca.calls().stream().allMatch(c -> c.answered().isOk()), ca.calls().toString());

        String metrics = awaitRequestMetric(1);
        assertEquals(List.of("mutual_tls"), labelValues(metrics, "connection_security_policy"), metrics);
        assertEquals(List.of(A_ID), labelValues(metrics, "source_principal"), metrics);
        assertEquals(List.of(B_ID), labelValues(metrics, "destination_principal"), metrics);
        // B's proxy took it on the mTLS chain, whose SNI A's proxy set as Istio's
        String accessB = Files.readString(dir.resolve("access-b.log"));
        assertTrue(accessB.contains("outbound_.8000_._.b.default.svc.cluster.local"), accessB);
        // each proxy, filling its directory as root, handed it to 1337: it reads the key it watches (and could write
        // its renewals there)
        for (String sa : List.of("a", "b")) {
            for (String f : List.of("", "key.pem", "cert-chain.pem", "root-cert.pem")) {
                Path p = dir.resolve("identity-" + sa).resolve(f);
                assertEquals(PROXY_UID, Files.getAttribute(p, "unix:uid"), p.toString());
                assertEquals(PROXY_UID, Files.getAttribute(p, "unix:gid"), p.toString());
            }
            String err = Files.readString(dir.resolve("proxy-" + sa + ".err"));
            assertTrue(!err.contains("cannot read"), err);
        }
    }

    @Test
    void aPlaintextRequestToBsPodAddressIsCapturedByAsProxyAndSentOverMutualTls() throws Exception {
        startPods(ISTIO_TLS);
        assertEquals("200 b saw 127.0.0.6", appCurl("http://10.78.2.1:8000/direct"), this::logs);
        String metrics = awaitRequestMetric(1);
        assertEquals(List.of("mutual_tls"), labelValues(metrics, "connection_security_policy"), metrics);
        assertEquals(List.of(A_ID), labelValues(metrics, "source_principal"), metrics);
        assertEquals(1, NetnsProcesses.redirectedConnections(podA, "ISTIO_REDIRECT"), "A's request was not captured");
    }

    @Test
    void withBsEndpointUnlabelledAsProxySendsPlaintextAndBsPlaintextChainAnswers() throws Exception {
        startPods("{}");
        assertEquals("200 b saw 127.0.0.6", appCurl("http://10.96.0.10:8000/plain"), this::logs);
        String metrics = awaitRequestMetric(1);
        assertEquals(List.of("none"), labelValues(metrics, "connection_security_policy"), metrics);
        assertEquals(List.of("unknown"), labelValues(metrics, "source_principal"), metrics);
        assertEquals(1, NetnsProcesses.redirectedConnections(podB, "ISTIO_IN_REDIRECT"),
                "B's inbound was not captured");
    }

    // ---- the pods' proxies ----

    /** Both sidecars, B's endpoint in A's configuration carrying {@code endpointMetadata}; waits until they listen. */
    private void startPods(String endpointMetadata) throws Exception {
        Files.writeString(dir.resolve("a.yaml"), Files.readString(dir.resolve("mtls-pod-a.yaml"))
                .replace("@ENDPOINT_METADATA@", endpointMetadata));
        Files.copy(dir.resolve("mtls-pod-b.yaml"), dir.resolve("b.yaml"));
        startProxy(podB, "b", "10.78.2.2", false);
        startProxy(podA, "a", "10.78.1.2", true);
    }

    /**
     * The capture rules in {@code pod}, then its proxy as service account {@code sa}, filling its identity directory
     * from the CA on {@code caAddress}; {@code noAdmin}: without the admin and Prometheus ports.
     */
    private void startProxy(NetnsSupport pod, String sa, String caAddress, boolean noAdmin) throws Exception {
        int rc = InmeshCommand.commandLine().execute("iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m",
                "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020",
                "--network-namespace", pod.name());
        assertEquals(0, rc, "inmesh iptables failed");
        // made by the proxy, as root
        Path identity = dir.resolve("identity-" + sa);
        List<String> argv = new ArrayList<>(List.of(NetnsProcesses.javaBin(), "-Xmx256m", "-jar",
                dir.resolve("inmesh.jar").toString(), "proxy", "-c", dir.resolve(sa + ".yaml").toString(), "--uid",
                Integer.toString(PROXY_UID), "--gid", Integer.toString(PROXY_UID), "--event-loops", "2", "--access-log",
                dir.resolve("access-" + sa + ".log").toString(), "--namespace", "default", "--workload-name",
                sa + "-v1", "--app", sa, "--identity-dir", identity.toString(), "--identity-ca", "--ca-address",
                caAddress + ":" + CA_PORT));
        if (noAdmin) {
            argv.add("--no-admin");
        }
        Process proxy = processes.start(pod, "proxy-" + sa, Map.of("SERVICE_ACCOUNT", sa),
                argv.toArray(String[]::new));
        NetnsProcesses.awaitProxy(proxy, dir.resolve("proxy-" + sa + ".err"), 60);
    }

    /** B's proxy's Prometheus text once it counts {@code count} requests (the count follows the answer). */
    private String awaitRequestMetric(int count) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        String text = scrapeB();
        while (requestsCounted(text) < count && System.nanoTime() < deadline) {
            Thread.sleep(100);
            text = scrapeB();
        }
        assertEquals(count, requestsCounted(text), text);
        return text;
    }

    private String scrapeB() {
        return podB.run("curl", "-s", "-m", "5", "http://127.0.0.1:15090/stats/prometheus").stdout();
    }

    private static long requestsCounted(String prometheus) {
        Matcher m = Pattern.compile("(?m)^istio_requests_total\\{[^}]*reporter=\"destination\"[^}]*} (\\S+)$")
                .matcher(prometheus);
        double total = 0;
        while (m.find()) {
            total += Double.parseDouble(m.group(1));
        }
        return (long) total;
    }

    /** The values of {@code label} on B's destination-reported istio_requests_total series. */
    private static List<String> labelValues(String prometheus, String label) {
        Matcher m = Pattern.compile("(?m)^istio_requests_total\\{([^}]*reporter=\"destination\"[^}]*)}").matcher(
                prometheus);
        List<String> values = new ArrayList<>();
        while (m.find()) {
            Matcher v = Pattern.compile("\\b" + label + "=\"([^\"]*)\"").matcher(m.group(1));
            values.add(v.find() ? v.group(1) : null);
        }
        return values;
    }

    /** What the proxies printed and logged, for a failure's message. */
    private String logs() {
        StringBuilder sb = new StringBuilder();
        for (String f : List.of("proxy-a.err", "proxy-a.out", "access-a.log", "proxy-b.err", "proxy-b.out",
                "access-b.log")) {
            try {
                Path p = dir.resolve(f);
                sb.append("\n---- ").append(f).append(":\n").append(Files.exists(p) ? Files.readString(p) : "");
            } catch (IOException e) {
                sb.append(e);
            }
        }
        return sb.toString();
    }

    /** A request from A's app, as an ordinary user: "STATUS BODY" without the trailing newline. */
    private String appCurl(String url) {
        NetnsSupport.Output out = podA.run("setpriv", "--reuid", Integer.toString(APP_UID), "--regid",
                Integer.toString(APP_UID), "--clear-groups", "curl", "-s", "-m", "10", "-w", "%{http_code} ", url);
        String body = out.stdout();
        int split = body.lastIndexOf('\n');
        if (split < 0) {
            return body.strip() + " (curl exit " + out.exitCode() + ": " + out.stderr().strip() + ")";
        }
        return body.substring(split + 1).strip() + " " + body.substring(0, split).strip();
    }
}
