package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.interception.dns.DnsProxy;
import dev.inmesh.interception.dns.DnsProxyTest;
import dev.inmesh.interception.install.ProcessCommandRunner;
import dev.inmesh.interception.testing.NetnsSupport;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.vertx.core.Vertx;
import io.vertx.core.VertxOptions;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * {@code inmesh iptables --redirect-dns} and the DNS proxy in a namespace of their own: an application (UID 1000)
 * asks the name server of its resolv.conf (10.99.0.53, a fake resolver on the namespace's loopback); the rules send the query
 * to the proxy on 127.0.0.1:15053, which answers a mesh name itself and forwards another name to that resolver, its
 * own query (the proxy's user, here root, given as {@code -u 0}) not captured again.
 */
@Tag("netns")
class DnsCaptureNetnsTest {
    private static final String RESOLVER = "10.99.0.53";
    /** A DNS client as the application: the query (hex) over UDP or TCP to the resolver; the answer, hex. */
    private static final String CLIENT = """
            import socket, sys
            q = bytes.fromhex(sys.argv[1])
            if sys.argv[2] == 'udp':
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(5)
                s.sendto(q, ('%1$s', 53))
                print(s.recv(65535).hex())
            else:
                s = socket.create_connection(('%1$s', 53), 5)
                s.settimeout(5)
                s.sendall(len(q).to_bytes(2, 'big') + q)
                head = s.recv(2)
                n = int.from_bytes(head, 'big')
                d = b''
                for _ in range(100):
                    if len(d) >= n:
                        break
                    chunk = s.recv(n - len(d))
                    if not chunk:
                        break
                    d += chunk
                print(d.hex())
            """.formatted(RESOLVER);

    private NetnsSupport ns;
    private Vertx vertx;
    private DnsProxy proxy;
    private DatagramSocket resolver;

    @BeforeEach
    void createNamespace() {
        NetnsSupport.assumeAvailable();
        ns = NetnsSupport.create("inm-dns");
    }

    @AfterEach
    void deleteNamespace() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
        if (vertx != null) {
            vertx.close().await(10, TimeUnit.SECONDS);
        }
        if (resolver != null) {
            resolver.close();
        }
        if (ns != null) {
            ns.close();
        }
    }

    private byte[] ask(byte[] query, String protocol) {
        NetnsSupport.Output out = ns.run("setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups",
                "/usr/bin/python3", "-c", CLIENT, HexFormat.of().formatHex(query), protocol);
        assertTrue(out.ok(), out.stderr());
        return HexFormat.of().parseHex(out.stdout().strip());
    }

    @Test
    void theRulesSendTheApplicationsQueriesToTheProxyWhichAnswersMeshNamesAndForwardsTheOthers() throws Exception {
        // the resolver on the namespace's loopback, as a node-local resolver: its queries leave over lo
        ns.exec("ip", "addr", "add", RESOLVER + "/32", "dev", "lo");
        StringWriter err = new StringWriter();
        CommandLine cl = new CommandLine(new IptablesCommand(Map.<String, String>of()::get,
                ProcessCommandRunner::inNamespace));
        cl.setOut(new PrintWriter(new StringWriter(), true));
        cl.setErr(new PrintWriter(err, true));
        assertEquals(0, cl.execute("--network-namespace", ns.name(), "-u", "0", "-g", "0", "--redirect-dns",
                "--dns-servers-v4", RESOLVER, "--enable-ipv6=false"), err.toString());
        List<byte[]> forwarded = new CopyOnWriteArrayList<>();
        resolver = ns.inside(() -> new DatagramSocket(new InetSocketAddress(RESOLVER, 53)));
        DnsProxyTest.serve(resolver, forwarded, true);
        SnapshotHolder snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(Path.of("../mesh-runtime/src/test/resources/istio/routes.json")));
        // Vert.x's threads start from a thread in the namespace, so the proxy's sockets (its upstream ones too)
        // are the namespace's
        proxy = ns.inside(() -> {
            vertx = Vertx.vertx(new VertxOptions().setEventLoopPoolSize(1));
            return DnsProxy.start(vertx, snapshots, new DnsProxy.Options(
                    List.of(new InetSocketAddress("127.0.0.1", DnsProxy.PORT)),
                    List.of(new InetSocketAddress(RESOLVER, 53)), List.of("default.svc.cluster.local"),
                    Duration.ofSeconds(2), 16), null);
        });

        DnsProxyTest.Response mesh = DnsProxyTest.parse(ask(DnsProxyTest.query(0x1111,
                "reviews.default.svc.cluster.local.", 1), "udp"));
        DnsProxyTest.Response overTcp = DnsProxyTest.parse(ask(DnsProxyTest.query(0x2222, "ratings.", 1), "tcp"));
        byte[] other = DnsProxyTest.query(0x3333, "www.example.com.", 1);
        byte[] otherAnswer = ask(other, "udp");

        assertEquals(0x1111, mesh.id());
        assertTrue(mesh.authoritative());
        assertEquals("10.96.10.141", mesh.answers().get(0).address());
        assertEquals("10.96.231.29", overTcp.answers().get(0).address());
        assertEquals(1, forwarded.size(), "only the name the mesh does not know reached the resolver");
        assertArrayEquals(other, forwarded.get(0));
        assertArrayEquals(DnsProxyTest.upstreamAnswer(other), otherAnswer);
    }
}
