package dev.inmesh.interception.dns;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.vertx.core.Vertx;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The DNS proxy on loopback, asked with hand-built queries over UDP and TCP: the mesh's names answered from the
 * table, the others forwarded to a fake resolver on 127.0.0.2 whose answer comes back as it was sent.
 */
public class DnsProxyTest {
    private static final int A = 1;
    private static final int CNAME = 5;
    private static final int TXT = 16;
    private static final int AAAA = 28;

    private final Vertx vertx = Vertx.vertx();
    private final List<AutoCloseable> closing = new ArrayList<>();
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private SnapshotHolder snapshots;

    @AfterEach
    void close() throws Exception {
        for (int i = closing.size() - 1; i >= 0; i--) {
            closing.get(i).close();
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    private DnsProxy start(List<InetSocketAddress> upstreams, Duration timeout) throws Exception {
        return start(upstreams, timeout, new Random());
    }

    private DnsProxy start(List<InetSocketAddress> upstreams, Duration timeout, Random random) throws Exception {
        return start(upstreams, timeout, random, false);
    }

    private DnsProxy start(List<InetSocketAddress> upstreams, Duration timeout, Random random, boolean parallel)
            throws Exception {
        snapshots = new SnapshotHolder();
        snapshots.apply(EnvoyConfigReader.read(Path.of("../mesh-runtime/src/test/resources/istio/routes.json")));
        DnsProxy proxy = DnsProxy.start(vertx, snapshots, new DnsProxy.Options(
                List.of(new InetSocketAddress("127.0.0.1", 0)), upstreams,
                List.of("default.svc.cluster.local", "svc.cluster.local"), timeout, 16).withParallel(parallel),
                DnsProxy.Metrics.of(registry), random);
        closing.add(proxy);
        return proxy;
    }

    /** Publishes a configuration of one virtual host, {@code domains} its YAML list's items. */
    private void applyVirtualHost(String name, String domains) throws Exception {
        snapshots.apply(EnvoyConfigReader.read("""
                resources:
                - "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
                  name: "80"
                  virtual_hosts:
                  - name: %s
                    domains: [%s]
                    routes: [{match: {prefix: /}, route: {cluster: a}}]
                """.formatted(name, domains)));
    }

    /** A query: id, RD, one question. */
    public static byte[] query(int id, String name, int type) {
        ByteBuffer b = ByteBuffer.allocate(512);
        b.putShort((short) id).putShort((short) 0x0100).putShort((short) 1).putShort((short) 0).putShort((short) 0)
                .putShort((short) 0);
        b.put(DnsProxy.encodeName(name)).putShort((short) type).putShort((short) 1);
        return Arrays.copyOf(b.array(), b.position());
    }

    /** A response, as far as these tests read it. */
    public record Response(int id, int flags, int questions, List<Rr> answers) {
        int rcode() {
            return flags & 0xf;
        }

        public boolean authoritative() {
            return (flags & 0x0400) != 0;
        }

        boolean truncated() {
            return (flags & 0x0200) != 0;
        }

        boolean isResponse() {
            return (flags & 0x8000) != 0;
        }
    }

    public record Rr(String name, int type, long ttl, byte[] data) {
        public String address() throws IOException {
            return InetAddress.getByAddress(data).getHostAddress();
        }
    }

    public static Response parse(byte[] m) {
        ByteBuffer b = ByteBuffer.wrap(m);
        int id = b.getShort() & 0xffff;
        int flags = b.getShort() & 0xffff;
        int qd = b.getShort() & 0xffff;
        int an = b.getShort() & 0xffff;
        b.getShort();
        b.getShort();
        for (int i = 0; i < qd; i++) {
            name(m, b);
            b.getInt();
        }
        List<Rr> answers = new ArrayList<>();
        for (int i = 0; i < an; i++) {
            String name = name(m, b);
            int type = b.getShort() & 0xffff;
            b.getShort();
            long ttl = b.getInt() & 0xffffffffL;
            byte[] data = new byte[b.getShort() & 0xffff];
            int at = b.position();
            b.get(data);
            if (type == CNAME) {
                data = name(m, ByteBuffer.wrap(m).position(at)).getBytes(StandardCharsets.US_ASCII);
            }
            answers.add(new Rr(name, type, ttl, data));
        }
        return new Response(id, flags, qd, answers);
    }

    /** A name at the buffer's position, compression pointers followed (at most 20). */
    static String name(byte[] m, ByteBuffer b) {
        StringBuilder out = new StringBuilder();
        ByteBuffer at = b;
        for (int hops = 0; hops < 20; ) {
            int len = at.get() & 0xff;
            if (len == 0) {
                return out.length() == 0 ? "." : out.toString();
            }
            if ((len & 0xc0) == 0xc0) {
                int target = ((len & 0x3f) << 8) | (at.get() & 0xff);
                at = ByteBuffer.wrap(m).position(target);
                hops++;
                continue;
            }
            byte[] label = new byte[len];
            at.get(label);
            out.append(new String(label, StandardCharsets.US_ASCII)).append('.');
        }
        throw new AssertionError("a name loops");
    }

    static byte[] udp(InetSocketAddress to, byte[] query) throws IOException {
        try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            s.setSoTimeout(5_000);
            s.send(new DatagramPacket(query, query.length, to));
            DatagramPacket p = new DatagramPacket(new byte[65535], 65535);
            s.receive(p);
            return Arrays.copyOf(p.getData(), p.getLength());
        }
    }

    static byte[] tcp(InetSocketAddress to, byte[] query) throws IOException {
        try (Socket s = new Socket(to.getAddress(), to.getPort())) {
            s.setSoTimeout(5_000);
            writeFrame(s, query);
            DataInputStream in = new DataInputStream(s.getInputStream());
            byte[] m = new byte[in.readUnsignedShort()];
            in.readFully(m);
            return m;
        }
    }

    /**
     * The fake resolver's answer to a query: its id and question, the response and RA bits, one A record 192.0.2.53
     * whose name is a compression pointer to the question's (as resolvers write it), TTL 77.
     */
    public static byte[] upstreamAnswer(byte[] query) {
        ByteBuffer b = ByteBuffer.allocate(query.length + 16).put(query);
        b.put(2, (byte) 0x81).put(3, (byte) 0x80).putShort(6, (short) 1);
        b.putShort((short) 0xc00c).putShort((short) A).putShort((short) 1).putInt(77).putShort((short) 4)
                .put(new byte[] {(byte) 192, 0, 2, 53});
        return b.array();
    }

    /** A fake resolver on 127.0.0.2 answering every UDP query with {@link #upstreamAnswer}; its queries kept. */
    /**
     * The size of {@code queries} once it is {@code n} (a fake resolver's thread adds a query it read some time after
     * the proxy sent it: on a loaded machine, after the proxy gave up on it), or after 10 s as it is then.
     */
    private static int awaitSize(List<byte[]> queries, int n) throws InterruptedException {
        for (long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10); queries.size() < n
                && System.nanoTime() < end; ) {
            Thread.sleep(10);
        }
        return queries.size();
    }

    private DatagramSocket udpResolver(List<byte[]> seen, boolean answers) throws IOException {
        DatagramSocket s = new DatagramSocket(new InetSocketAddress("127.0.0.2", 0));
        closing.add(s);
        serve(s, seen, answers);
        return s;
    }

    /**
     * Serves a fake resolver's socket on a thread of its own until it is closed (100 queries at most): each query
     * kept in {@code seen} and, when it {@code answers}, answered with {@link #upstreamAnswer}.
     */
    public static void serve(DatagramSocket s, List<byte[]> seen, boolean answers) {
        Thread t = new Thread(() -> {
            try {
                for (int i = 0; i < 100; i++) {
                    DatagramPacket p = new DatagramPacket(new byte[4096], 4096);
                    s.receive(p);
                    byte[] q = Arrays.copyOf(p.getData(), p.getLength());
                    seen.add(q);
                    if (answers) {
                        byte[] a = upstreamAnswer(q);
                        s.send(new DatagramPacket(a, a.length, p.getSocketAddress()));
                    }
                }
            } catch (IOException e) {
                // closed
            }
        }, "fake-resolver-udp");
        t.setDaemon(true);
        t.start();
    }

    /** Writes {@code m} to a TCP connection after its two-byte length. */
    static void writeFrame(Socket s, byte[] m) throws IOException {
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        out.writeShort(m.length);
        out.write(m);
        out.flush();
    }

    private ServerSocket tcpResolver(List<byte[]> seen) throws IOException {
        ServerSocket s = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.2"));
        closing.add(s);
        Thread t = new Thread(() -> {
            for (int i = 0; i < 100; i++) {
                try (Socket c = s.accept()) {
                    c.setSoTimeout(5_000);
                    DataInputStream in = new DataInputStream(c.getInputStream());
                    byte[] q = new byte[in.readUnsignedShort()];
                    in.readFully(q);
                    seen.add(q);
                    writeFrame(c, upstreamAnswer(q));
                } catch (IOException e) {
                    if (s.isClosed()) {
                        return;
                    }
                }
            }
        }, "fake-resolver-tcp");
        t.setDaemon(true);
        t.start();
        return s;
    }

    private static InetSocketAddress udpAddress(DnsProxy proxy) {
        return proxy.addresses().get(0);
    }

    private static InetSocketAddress tcpAddress(DnsProxy proxy) {
        return proxy.addresses().get(1);
    }

    @Test
    void aMeshNameIsAnsweredFromTheTableOverUdpAuthoritativeWithTtl30AndTheQuerysId() throws Exception {
        DnsProxy proxy = start(List.of(), Duration.ofSeconds(1));

        Response r = parse(udp(udpAddress(proxy), query(0x1234, "reviews.default.svc.cluster.local.", A)));

        assertEquals(0x1234, r.id());
        assertTrue(r.isResponse());
        assertTrue(r.authoritative());
        assertEquals(0, r.rcode());
        assertEquals(1, r.questions());
        assertEquals(1, r.answers().size());
        Rr a = r.answers().get(0);
        assertEquals("reviews.default.svc.cluster.local.", a.name());
        assertEquals(A, a.type());
        assertEquals(30, a.ttl());
        assertEquals("10.96.10.141", a.address());
    }

    @Test
    void aMeshNameWithNoAddressOfTheFamilyAskedGetsNoErrorAndNoRecord() throws Exception {
        DnsProxy proxy = start(List.of(), Duration.ofSeconds(1));

        Response r = parse(udp(udpAddress(proxy), query(7, "ratings.", AAAA)));

        assertEquals(0, r.rcode());
        assertTrue(r.authoritative());
        assertEquals(List.of(), r.answers());
    }

    @Test
    void aQueryWithEdnsGetsAnOptRecordBackWithItsDoBitAsRfc6891AndOneWithoutGetsNone() throws Exception {
        DnsProxy proxy = start(List.of(), Duration.ofMillis(200));
        byte[] edns = withEdns(query(0x2c2d, "ratings.", A));

        for (byte[] m : List.of(udp(udpAddress(proxy), edns), tcp(tcpAddress(proxy), edns),
                udp(udpAddress(proxy), query(0x2e2f, "www.example.com.", A)))) {
            Response r = parse(m);
            boolean asked = r.id() == 0x2c2d;
            assertEquals(asked ? 1 : 0, ByteBuffer.wrap(m).getShort(10), "ARCOUNT");
            if (asked) {
                assertEquals(0, r.rcode());
                assertEquals("10.96.231.29", r.answers().get(0).address());
                ByteBuffer opt = ByteBuffer.wrap(m, m.length - 11, 11);
                assertEquals(0, opt.get(), "the root name");
                assertEquals(41, opt.getShort());
                assertEquals(DnsProxy.EDNS_SIZE, opt.getShort() & 0xffff);
                assertEquals(0x8000, opt.getInt(), "version 0, the DO bit");
                assertEquals(0, opt.getShort());
            }
        }
        byte[] servfail = udp(udpAddress(proxy), withEdns(query(0x3233, "www.example.com.", A)));
        assertEquals(2, parse(servfail).rcode());
        assertEquals(1, ByteBuffer.wrap(servfail).getShort(10), "SERVFAIL with an OPT record too");
    }

    /** {@code query} with an OPT record: root name, type 41, payload 4096, the DO bit, no option. */
    static byte[] withEdns(byte[] query) {
        return ByteBuffer.allocate(query.length + 11).put(query).putShort(10, (short) 1)
                .put((byte) 0).putShort((short) 41).putShort((short) 4096).putInt(0x8000).putShort((short) 0)
                .array();
    }

    @Test
    void aNameFollowedByTheFirstSearchDomainIsAnsweredWithACnameThenTheAddress() throws Exception {
        DnsProxy proxy = start(List.of(), Duration.ofSeconds(1));

        Response r = parse(udp(udpAddress(proxy), query(8, "details.default.default.svc.cluster.local.", A)));

        assertEquals(2, r.answers().size());
        Rr cname = r.answers().get(0);
        assertEquals(CNAME, cname.type());
        assertEquals("details.default.default.svc.cluster.local.", cname.name());
        assertEquals("details.default.", new String(cname.data(), StandardCharsets.US_ASCII));
        assertEquals("details.default.", r.answers().get(1).name());
        assertEquals("10.96.171.138", r.answers().get(1).address());
    }

    @Test
    void otherNamesAndTypesAreForwardedToTheResolverAndItsAnswerRelayedAsItCame() throws Exception {
        List<byte[]> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        DatagramSocket resolver = udpResolver(seen, true);
        DnsProxy proxy = start(List.of((InetSocketAddress) resolver.getLocalSocketAddress()), Duration.ofSeconds(2));

        byte[] q = query(0xbeef, "www.example.com.", A);
        byte[] answer = udp(udpAddress(proxy), q);
        byte[] txt = query(0x0102, "reviews.default.svc.cluster.local.", TXT);
        byte[] txtAnswer = udp(udpAddress(proxy), txt);

        assertArrayEquals(q, seen.get(0), "the query as the application sent it, id included");
        assertArrayEquals(upstreamAnswer(q), answer);
        assertEquals("192.0.2.53", parse(answer).answers().get(0).address());
        assertArrayEquals(upstreamAnswer(txt), txtAnswer);
        String scrape = registry.scrape();
        assertTrue(scrape.contains("istio_agent_dns_requests_total 2.0"), scrape);
        assertTrue(scrape.contains("istio_agent_dns_upstream_requests_total 2.0"), scrape);
        assertTrue(scrape.contains("istio_agent_dns_upstream_failures_total 0.0"), scrape);
        assertTrue(scrape.contains("istio_agent_dns_upstream_request_duration_seconds_count 2"), scrape);
    }

    @Test
    void aResolverThatDoesNotAnswerInTimeIsFollowedByTheNextAndWhenNoneAnswersTheQueryGetsServfail()
            throws Exception {
        List<byte[]> silent = new java.util.concurrent.CopyOnWriteArrayList<>();
        List<byte[]> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        DatagramSocket mute = udpResolver(silent, false);
        DatagramSocket resolver = udpResolver(seen, true);
        DnsProxy both = start(List.of((InetSocketAddress) mute.getLocalSocketAddress(),
                (InetSocketAddress) resolver.getLocalSocketAddress()), Duration.ofSeconds(1));
        // (1 s each: the answering resolver's exchange, a fresh channel's bind and a plain thread's reply included,
        // must be within it on a loaded machine; the timeout itself is measured with the proxy below)

        byte[] q = query(0x4242, "www.example.com.", A);
        assertArrayEquals(upstreamAnswer(q), udp(udpAddress(both), q));
        assertEquals(1, awaitSize(silent, 1), "the mute resolver was asked first");

        DnsProxy none = start(List.of((InetSocketAddress) mute.getLocalSocketAddress()), Duration.ofMillis(300));
        long started = System.nanoTime();
        Response r = parse(udp(udpAddress(none), query(0x4343, "www.example.com.", A)));

        assertEquals(2, r.rcode(), "SERVFAIL");
        assertEquals(0x4343, r.id());
        assertEquals(1, r.questions());
        assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(3));
        assertTrue(registry.scrape().contains("istio_agent_dns_upstream_failures_total 1.0"), registry.scrape());
    }

    @Test
    void withDnsForwardParallelEveryResolverIsAskedAtOnceAndTheFirstAnswerTakenServfailWhenNoneAnswers()
            throws Exception {
        List<byte[]> silent = new java.util.concurrent.CopyOnWriteArrayList<>();
        List<byte[]> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        DatagramSocket mute = udpResolver(silent, false);
        DatagramSocket resolver = udpResolver(seen, true);
        InetSocketAddress muteAddress = (InetSocketAddress) mute.getLocalSocketAddress();
        DnsProxy parallel = start(List.of(muteAddress, (InetSocketAddress) resolver.getLocalSocketAddress()),
                Duration.ofSeconds(5), new Random(), true);

        byte[] q = query(0x5151, "www.example.com.", A);
        long started = System.nanoTime();
        byte[] answer = udp(udpAddress(parallel), q);
        long took = System.nanoTime() - started;

        assertArrayEquals(upstreamAnswer(q), answer);
        assertTrue(took < TimeUnit.MILLISECONDS.toNanos(2_500), "not after the mute one's 5 s: " + took);
        assertEquals(1, seen.size());
        assertEquals(1, awaitSize(silent, 1), "the mute resolver asked too");

        DnsProxy none = start(List.of(muteAddress, muteAddress), Duration.ofMillis(300), new Random(), true);
        Response r = parse(udp(udpAddress(none), query(0x5252, "www.example.com.", A)));
        assertEquals(2, r.rcode(), "SERVFAIL");
        assertEquals(0x5252, r.id());
        assertEquals(3, awaitSize(silent, 3));
    }

    @Test
    void overTcpMeshNamesAreAnsweredAndOtherNamesForwardedOverTcp() throws Exception {
        List<byte[]> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        ServerSocket resolver = tcpResolver(seen);
        DnsProxy proxy = start(List.of(new InetSocketAddress("127.0.0.2", resolver.getLocalPort())),
                Duration.ofSeconds(2));

        Response r = parse(tcp(tcpAddress(proxy), query(0x0a0b, "productpage.", A)));
        byte[] q = query(0x0c0d, "www.example.com.", A);
        byte[] forwarded = tcp(tcpAddress(proxy), q);

        assertEquals(0x0a0b, r.id());
        assertTrue(r.authoritative());
        assertEquals("10.96.27.58", r.answers().get(0).address());
        assertArrayEquals(q, seen.get(0));
        assertArrayEquals(upstreamAnswer(q), forwarded);
    }

    @Test
    void aForwardedQueryKeepsItsOpcodeAndItsAdAndCdBitsAndTheProxysAnswersKeepCdAsMiekgDnsSetReply()
            throws Exception {
        List<byte[]> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        List<byte[]> seenTcp = new java.util.concurrent.CopyOnWriteArrayList<>();
        DatagramSocket resolver = udpResolver(seen, true);
        ServerSocket tcpResolver = tcpResolver(seenTcp);
        DnsProxy proxy = start(List.of((InetSocketAddress) resolver.getLocalSocketAddress()), Duration.ofSeconds(2));
        DnsProxy overTcp = start(List.of(new InetSocketAddress("127.0.0.2", tcpResolver.getLocalPort())),
                Duration.ofSeconds(2));
        byte[] checking = query(0x6161, "www.example.com.", A);
        checking[3] = 0x30; // AD and CD: a validating stub asking for the records unvalidated
        byte[] notify = query(0x6262, "www.example.com.", A);
        notify[2] = (byte) (notify[2] | (4 << 3)); // opcode NOTIFY, which miekg/dns lets through

        assertArrayEquals(upstreamAnswer(checking), udp(udpAddress(proxy), checking));
        assertArrayEquals(upstreamAnswer(notify), udp(udpAddress(proxy), notify));
        assertArrayEquals(upstreamAnswer(checking), tcp(tcpAddress(overTcp), checking));

        assertArrayEquals(checking, seen.get(0), "AD and CD as the application set them");
        assertArrayEquals(notify, seen.get(1), "the opcode NOTIFY, not QUERY");
        assertArrayEquals(checking, seenTcp.get(0));

        byte[] local = query(0x6363, "productpage.", A);
        local[3] = 0x30;
        Response answered = parse(udp(udpAddress(proxy), local));
        assertEquals(0, answered.rcode());
        assertEquals(0x8510, answered.flags(), "QR, AA, RD, CD: the query's CD kept, its AD not");
        Response fromTcp = parse(tcp(tcpAddress(proxy), local));
        assertEquals(0x8510, fromTcp.flags());
        DnsProxy none = start(List.of(), Duration.ofMillis(200));
        byte[] unknown = query(0x6464, "www.example.com.", A);
        unknown[3] = 0x30;
        assertEquals(0x8112, parse(udp(udpAddress(none), unknown)).flags(), "SERVFAIL with RD and CD");
    }

    @Test
    void anOpcodeOtherThanQueryGetsNotimpAndAQueryWithoutExactlyOneQuestionFormerrAsMiekgDnsRejectsThem()
            throws Exception {
        DnsProxy proxy = start(List.of(), Duration.ofSeconds(1));
        byte[] empty = {0x55, 0x66, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
        byte[] status = query(0x7788, "productpage.", A);
        status[2] = (byte) (status[2] | (2 << 3)); // opcode STATUS
        byte[] one = query(0x99aa, "productpage.", A);
        byte[] two = Arrays.copyOf(one, one.length + one.length - 12);
        System.arraycopy(one, 12, two, one.length, one.length - 12);
        two[5] = 2;

        Response noQuestion = parse(udp(udpAddress(proxy), empty));
        Response notImplemented = parse(tcp(tcpAddress(proxy), status));
        Response twoQuestions = parse(udp(udpAddress(proxy), two));

        assertEquals(0x5566, noQuestion.id());
        assertEquals(1, noQuestion.rcode(), "FORMERR");
        assertEquals(0x8100, noQuestion.flags() & 0xfff0, "QR, opcode QUERY, RD as asked");
        assertEquals(0x7788, notImplemented.id());
        assertEquals(4, notImplemented.rcode(), "NOTIMP");
        assertEquals(2, (notImplemented.flags() >> 11) & 0xf, "the query's opcode");
        assertEquals(0, notImplemented.questions());
        assertEquals(List.of(), notImplemented.answers());
        assertEquals(1, twoQuestions.rcode(), "FORMERR, not an answer to the first question");
        assertEquals(0, twoQuestions.questions());
        assertTrue(registry.scrape().contains("istio_agent_dns_requests_total 0.0"), "rejected before the handler");
    }

    @Test
    void theAddressesOfANameAreShuffledInEachAnswerTheCnameOfAnAliasStayingFirst() throws Exception {
        DnsProxy proxy = start(List.of(), Duration.ofMillis(200), new Random(7));
        applyVirtualHost("three", "\"three.mesh.local\", \"10.2.0.1\", \"10.2.0.2\", \"10.2.0.3\"");
        Set<String> all = Set.of("10.2.0.1", "10.2.0.2", "10.2.0.3");

        Set<List<String>> orders = new java.util.HashSet<>();
        Set<String> firsts = new java.util.HashSet<>();
        for (int i = 0; i < 30; i++) {
            String name = i % 2 == 0 ? "three.mesh.local." : "three.mesh.local.default.svc.cluster.local.";
            List<Rr> answers = parse(udp(udpAddress(proxy), query(i, name, A))).answers();
            List<Rr> addresses = i % 2 == 0 ? answers : answers.subList(1, answers.size());
            if (i % 2 == 1) {
                assertEquals(CNAME, answers.get(0).type(), "the CNAME first");
            }
            List<String> order = new ArrayList<>();
            for (Rr a : addresses) {
                assertEquals(A, a.type());
                order.add(a.address());
            }
            assertEquals(all, Set.copyOf(order));
            assertEquals(3, order.size());
            orders.add(order);
            firsts.add(order.get(0));
        }

        assertEquals(all, firsts, "each address comes first in some answers");
        assertTrue(orders.size() >= 4, orders.toString());
    }

    @Test
    void theTableFollowsEachNewSnapshot() throws Exception {
        DnsProxy proxy = start(List.of(), Duration.ofMillis(200));
        assertEquals(2, parse(udp(udpAddress(proxy), query(1, "echo.mesh.local.", A))).rcode(), "unknown: forwarded, "
                + "no resolver: SERVFAIL");

        applyVirtualHost("echo", "\"echo.mesh.local\", \"10.0.0.9\"");

        Response r = parse(udp(udpAddress(proxy), query(2, "echo.mesh.local.", A)));
        assertEquals(0, r.rcode());
        assertEquals("10.0.0.9", r.answers().get(0).address());
    }

    @Test
    void overUdpAnAnswerKeepsTo512BytesWithTcSetAndOverTcpItIsWhole() throws Exception {
        StringBuilder domains = new StringBuilder("\"many.mesh.local\"");
        for (int i = 1; i <= 60; i++) {
            domains.append(", \"10.1.0.").append(i).append('"');
        }
        DnsProxy proxy = start(List.of(), Duration.ofMillis(200));
        applyVirtualHost("many", domains.toString());

        byte[] udpAnswer = udp(udpAddress(proxy), query(3, "many.mesh.local.", A));
        Response overUdp = parse(udpAnswer);
        Response overTcp = parse(tcp(tcpAddress(proxy), query(4, "many.mesh.local.", A)));

        assertTrue(udpAnswer.length <= 512, "" + udpAnswer.length);
        assertTrue(overUdp.truncated());
        assertTrue(overUdp.answers().size() > 10 && overUdp.answers().size() < 60, "" + overUdp.answers().size());
        assertEquals(60, overTcp.answers().size());
        assertTrue(!overTcp.truncated());
    }

    @Test
    void anAnswerTooLargeInFullHasItsNamesCompressedAsMiekgDnsTruncatesSo20AddressesFit512Bytes() throws Exception {
        DnsProxy proxy = start(List.of(), Duration.ofMillis(200));
        byte[] small = udp(udpAddress(proxy), query(7, "productpage.", A));
        StringBuilder domains = new StringBuilder("\"headless.mesh.local\"");
        for (int i = 1; i <= 40; i++) {
            domains.append(", \"10.3.0.").append(i).append('"');
            if (i == 20) {
                applyVirtualHost("headless", domains.toString());
            }
        }
        String alias = "headless.mesh.local.default.svc.cluster.local.";

        byte[] twenty = udp(udpAddress(proxy), query(5, "headless.mesh.local.", A));
        byte[] aliased = udp(udpAddress(proxy), query(6, alias, A));

        // 12 bytes of header, the question's 25, then each record 16: a pointer to the question's name, 14 more
        Response r = parse(twenty);
        assertEquals(20, r.answers().size());
        assertTrue(!r.truncated());
        assertEquals(12 + 25 + 20 * 16, twenty.length);
        for (Rr a : r.answers()) {
            assertEquals("headless.mesh.local.", a.name());
        }
        assertEquals((short) 0xc00c, ByteBuffer.wrap(twenty).getShort(12 + 25), "a pointer to the question's name");
        // the CNAME's owner a pointer to the question, its target the name (its tail local. a pointer), which the
        // addresses' owners then point to
        Response viaAlias = parse(aliased);
        assertEquals(21, viaAlias.answers().size());
        assertEquals(alias, viaAlias.answers().get(0).name());
        assertEquals("headless.mesh.local.", new String(viaAlias.answers().get(0).data(), StandardCharsets.US_ASCII));
        assertEquals("headless.mesh.local.", viaAlias.answers().get(1).name());
        assertTrue(aliased.length < 512 && !viaAlias.truncated(), "" + aliased.length);
        // one that fits in full is written in full, as miekg/dns compresses only when it must
        int owner = 12 + DnsProxy.encodeName("productpage.").length + 4;
        assertEquals("productpage.".length() - 1, small[owner], "a label, not a pointer");

        // 40: as many as fit 512 bytes compressed, TC set; over TCP all of them
        applyVirtualHost("headless", domains.toString());
        byte[] forty = udp(udpAddress(proxy), query(8, "headless.mesh.local.", A));
        Response overTcp = parse(tcp(tcpAddress(proxy), query(9, "headless.mesh.local.", A)));
        Response cut = parse(forty);
        assertTrue(cut.truncated());
        assertEquals((512 - 12 - 25) / 16, cut.answers().size());
        assertTrue(forty.length <= 512, "" + forty.length);
        assertEquals(40, overTcp.answers().size());
        assertTrue(!overTcp.truncated());
        Set<String> all = new java.util.HashSet<>();
        for (Rr a : overTcp.answers()) {
            assertEquals("headless.mesh.local.", a.name());
            all.add(a.address());
        }
        assertEquals(40, all.size());
        // with EDNS, the OPT record's 11 bytes are kept for after the records
        byte[] edns = udp(udpAddress(proxy), withEdns(query(10, "headless.mesh.local.", A)));
        assertEquals(40, parse(edns).answers().size(), "4096 bytes take them all");
        assertEquals(41, ByteBuffer.wrap(edns, edns.length - 10, 2).getShort(), "the OPT record last");
    }

    @Test
    void overUdpAForwardedAnswerLargerThanTheQueryTakesKeepsTheRecordsThatFitWithTcSet() throws Exception {
        DatagramSocket resolver = new DatagramSocket(new InetSocketAddress("127.0.0.2", 0));
        closing.add(resolver);
        Thread t = new Thread(() -> {
            try {
                for (int i = 0; i < 10; i++) {
                    DatagramPacket p = new DatagramPacket(new byte[4096], 4096);
                    resolver.receive(p);
                    byte[] one = upstreamAnswer(Arrays.copyOf(p.getData(), p.getLength()));
                    ByteBuffer big = ByteBuffer.allocate(one.length + 59 * 16).put(one).putShort(6, (short) 60);
                    for (int r = 0; r < 59; r++) {
                        big.putShort((short) 0xc00c).putShort((short) A).putShort((short) 1).putInt(77)
                                .putShort((short) 4).put(new byte[] {(byte) 192, 0, 2, (byte) r});
                    }
                    resolver.send(new DatagramPacket(big.array(), big.capacity(), p.getSocketAddress()));
                }
            } catch (IOException e) {
                // closed
            }
        }, "fake-resolver-big");
        t.setDaemon(true);
        t.start();
        DnsProxy proxy = start(List.of((InetSocketAddress) resolver.getLocalSocketAddress()), Duration.ofSeconds(2));

        byte[] answer = udp(udpAddress(proxy), query(0x2a2b, "Many.Example.COM.", A));

        assertTrue(answer.length <= 512, "" + answer.length);
        Response r = parse(answer);
        assertEquals(0x2a2b, r.id());
        assertTrue(r.isResponse());
        assertTrue(r.truncated());
        assertEquals(0, r.rcode());
        assertEquals(1, r.questions());
        assertEquals("Many.Example.COM.", name(answer, ByteBuffer.wrap(answer).position(12)));
        // as Istio's agent (miekg/dns Msg.Truncate): the records up to the first that does not fit, 29 of 16 bytes
        // after the 34 of the header and question, so that a resolver that does not ask again over TCP (musl's) has
        // addresses; the upstream's compression pointers still point at the question
        assertEquals(29, r.answers().size());
        assertEquals("192.0.2.53", r.answers().get(0).address());
        assertEquals("192.0.2.27", r.answers().get(28).address());
        assertEquals("Many.Example.COM.", r.answers().get(28).name());
    }

    @Test
    void aTcpConnectionFloodingQueriesHasAtMost8ForwardedAtOnceAndLeavesTheOtherConnectionsTheirShare()
            throws Exception {
        List<String> asked = new java.util.concurrent.CopyOnWriteArrayList<>();
        ServerSocket resolver = new ServerSocket(0, 100, InetAddress.getByName("127.0.0.2"));
        closing.add(resolver);
        Thread acceptor = new Thread(() -> {
            // each connection on a thread of its own: "slow" names are never answered, the others at once
            for (int i = 0; i < 60; i++) {
                try {
                    Socket c = resolver.accept();
                    Thread t = new Thread(() -> {
                        try (c) {
                            c.setSoTimeout(10_000);
                            DataInputStream in = new DataInputStream(c.getInputStream());
                            byte[] q = new byte[in.readUnsignedShort()];
                            in.readFully(q);
                            String name = name(q, ByteBuffer.wrap(q).position(12));
                            asked.add(name);
                            if (name.startsWith("slow")) {
                                in.read();
                                return;
                            }
                            writeFrame(c, upstreamAnswer(q));
                        } catch (IOException e) {
                            // closed
                        }
                    });
                    t.setDaemon(true);
                    t.start();
                } catch (IOException e) {
                    return;
                }
            }
        }, "fake-resolver-tcp-slow");
        acceptor.setDaemon(true);
        acceptor.start();
        DnsProxy proxy = start(List.of(new InetSocketAddress("127.0.0.2", resolver.getLocalPort())),
                Duration.ofSeconds(5));

        try (Socket flood = new Socket(tcpAddress(proxy).getAddress(), tcpAddress(proxy).getPort())) {
            for (int i = 0; i < 40; i++) {
                writeFrame(flood, query(i, "slow" + i + ".example.com.", A));
            }
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
            while (asked.size() < DnsProxy.MAX_TCP_IN_FLIGHT && System.nanoTime() < until) {
                Thread.sleep(20);
            }
            Thread.sleep(200);
            assertEquals(DnsProxy.MAX_TCP_IN_FLIGHT, asked.size(), asked.toString());

            byte[] q = query(0x3031, "fast.example.com.", A);
            assertArrayEquals(upstreamAnswer(q), tcp(tcpAddress(proxy), q), "another connection forwarded");
        }
    }

    @Test
    void closingTheProxyClosesTheApplicationsTcpConnectionsAndTheSocketsOfTheQueriesItIsForwarding()
            throws Exception {
        try (ServerSocket mute = new ServerSocket(0, 50, InetAddress.getByName("127.0.0.2"))) {
            mute.setSoTimeout(5_000);
            DnsProxy proxy = start(List.of(new InetSocketAddress("127.0.0.2", mute.getLocalPort())),
                    Duration.ofSeconds(30));
            try (Socket idle = new Socket(tcpAddress(proxy).getAddress(), tcpAddress(proxy).getPort());
                 Socket asking = new Socket(tcpAddress(proxy).getAddress(), tcpAddress(proxy).getPort())) {
                idle.setSoTimeout(5_000);
                asking.setSoTimeout(5_000);
                writeFrame(idle, query(0x0e0f, "productpage.", A));
                DataInputStream in = new DataInputStream(idle.getInputStream());
                in.readFully(new byte[in.readUnsignedShort()]);
                writeFrame(asking, query(0x1011, "www.example.com.", A));
                try (Socket upstream = mute.accept()) {
                    upstream.setSoTimeout(5_000);
                    DataInputStream got = new DataInputStream(upstream.getInputStream());
                    got.readFully(new byte[got.readUnsignedShort()]);

                    long started = System.nanoTime();
                    proxy.close();

                    assertEquals(-1, idle.getInputStream().read(), "the idle connection closed");
                    assertEquals(-1, got.read(), "the forwarded query's connection to the resolver closed");
                    DataInputStream answer = new DataInputStream(asking.getInputStream());
                    int first = answer.read();
                    if (first >= 0) {
                        byte[] m = new byte[(first << 8) | answer.readUnsignedByte()];
                        answer.readFully(m);
                        assertEquals(2, parse(m).rcode(), "SERVFAIL, or closed with no answer");
                        assertEquals(-1, answer.read());
                    }
                    assertTrue(System.nanoTime() - started < TimeUnit.SECONDS.toNanos(5));
                }
            }
        }
    }

    @Test
    void aLinkLocalNameServerOfResolvConfKeepsItsZoneAndSystemdResolvedsStubIsAskedAsAnother(
            @org.junit.jupiter.api.io.TempDir Path dir) throws Exception {
        Path resolvConf = dir.resolve("resolv.conf");
        java.nio.file.Files.writeString(resolvConf, """
                nameserver fe80::1%lo
                nameserver fe80::2%1
                nameserver 127.0.0.53
                nameserver not-an-address
                options edns0 trust-ad
                search example.internal
                """);
        int lo = java.net.NetworkInterface.getByName("lo").getIndex();

        List<InetSocketAddress> upstreams = DnsProxy.Options.fromResolvConf(resolvConf).upstreams();

        assertEquals(3, upstreams.size(), upstreams.toString());
        java.net.Inet6Address first = (java.net.Inet6Address) upstreams.get(0).getAddress();
        assertEquals(lo, first.getScopeId());
        assertEquals(1, ((java.net.Inet6Address) upstreams.get(1).getAddress()).getScopeId());
        assertEquals(new InetSocketAddress("127.0.0.53", 53), upstreams.get(2));
    }

    @Test
    void theStandaloneProxyRunsTheDnsProxyOnTheConfigurationItRuns() throws Exception {
        int port;
        try (DatagramSocket free = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            port = free.getLocalPort();
        }
        InetSocketAddress at = new InetSocketAddress("127.0.0.1", port);
        var proxy = dev.inmesh.interception.proxy.StandaloneProxy.start(
                new dev.inmesh.interception.proxy.StandaloneProxy.Settings(
                        Path.of("../mesh-runtime/src/test/resources/istio/routes.json"), -1, -1, 1, null, null)
                        .withDns(new dev.inmesh.interception.proxy.StandaloneProxy.Dns(new DnsProxy.Options(
                                List.of(at), List.of(), List.of(), Duration.ofSeconds(1), 16), null)));
        try {
            Response r = parse(udp(at, query(9, "ratings.default.svc.", A)));
            assertEquals("10.96.231.29", r.answers().get(0).address());
        } finally {
            proxy.close();
        }
    }

    @Test
    void beforeAFirstConfigurationEveryQueryGetsServfailAsIstiosAgentAnswersBeforeItsFirstNameTable()
            throws Exception {
        List<byte[]> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        DatagramSocket resolver = udpResolver(seen, true);
        snapshots = new SnapshotHolder(); // a control plane's: nothing applied yet
        DnsProxy proxy = DnsProxy.start(vertx, snapshots, new DnsProxy.Options(
                List.of(new InetSocketAddress("127.0.0.1", 0)), List.of((InetSocketAddress)
                resolver.getLocalSocketAddress()), List.of("default.svc.cluster.local"), Duration.ofSeconds(2), 16),
                DnsProxy.Metrics.of(registry));
        closing.add(proxy);

        Response early = parse(udp(udpAddress(proxy), query(0x0101, "www.example.com.", A)));
        assertEquals(0x0101, early.id());
        assertEquals(2, early.rcode(), "SERVFAIL");
        assertTrue(seen.isEmpty(), "not forwarded before the first configuration");

        applyVirtualHost("echo", "\"echo.mesh.local\", \"10.0.0.5\"");
        assertEquals("10.0.0.5", parse(udp(udpAddress(proxy), query(0x0102, "echo.mesh.local.", A))).answers().get(0)
                .address());
        assertEquals(0, parse(udp(udpAddress(proxy), query(0x0103, "www.example.com.", A))).rcode());
        assertEquals(1, seen.size());
    }

    @Test
    void istiodsNameTableAnswersFromThenOnAndLaterConfigurationsDoNotReplaceIt() throws Exception {
        List<byte[]> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
        DatagramSocket resolver = udpResolver(seen, true);
        snapshots = new SnapshotHolder();
        DnsProxy proxy = DnsProxy.start(vertx, snapshots, new DnsProxy.Options(
                List.of(new InetSocketAddress("127.0.0.1", 0)), List.of((InetSocketAddress)
                resolver.getLocalSocketAddress()), List.of("default.svc.cluster.local"), Duration.ofSeconds(2), 16),
                DnsProxy.Metrics.of(registry));
        closing.add(proxy);

        proxy.nameTable(new NameTable(java.util.Map.of("api.example.com", new NameTable.NameInfo(
                List.of("240.240.0.1"), "External", "", "", List.of()))), "default", "cluster.local");
        Response r = parse(udp(udpAddress(proxy), query(0x0201, "api.example.com.", A)));
        assertEquals(0, r.rcode());
        assertTrue(r.authoritative());
        assertEquals("240.240.0.1", r.answers().get(0).address());

        applyVirtualHost("echo", "\"echo.mesh.local\", \"10.0.0.5\"");
        assertEquals("240.240.0.1", parse(udp(udpAddress(proxy), query(0x0202, "api.example.com.", A))).answers()
                .get(0).address());
        // the virtual host's name is not in istiod's table: forwarded
        assertEquals("192.0.2.53", parse(udp(udpAddress(proxy), query(0x0203, "echo.mesh.local.", A))).answers()
                .get(0).address());
        assertEquals(1, seen.size());
    }
    @Test
    void theStandaloneProxyOnAControlPlaneAsksForIstiodsNameTableAndAnswersFromIt() throws Exception {
        int port;
        try (DatagramSocket free = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            port = free.getLocalPort();
        }
        InetSocketAddress at = new InetSocketAddress("127.0.0.1", port);
        NameTable nt = new NameTable(java.util.Map.of("reviews.default.svc.cluster.local", new NameTable.NameInfo(
                List.of("10.96.10.141"), "Kubernetes", "reviews", "default", List.of())));
        String nds = NameTable.TYPE_URL;
        java.util.function.Function<io.envoyproxy.envoy.service.discovery.v3.DiscoveryRequest,
                List<io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse>> answer = r -> {
                    if (!r.getResponseNonce().isEmpty()) {
                        return List.of();
                    }
                    var b = io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse.newBuilder()
                            .setTypeUrl(r.getTypeUrl()).setVersionInfo("1").setNonce("n-" + r.getTypeUrl());
                    if (r.getTypeUrl().equals(nds)) {
                        b.addResources(com.google.protobuf.Any.newBuilder().setTypeUrl(nds)
                                .setValue(nt.toByteString()));
                    }
                    return List.of(b.build());
                };
        try (var server = new dev.inmesh.runtime.xds.ads.RawAdsServer(answer)) {
            var ads = dev.inmesh.runtime.xds.ads.AdsOptions.of(dev.inmesh.runtime.xds.ads.NodeOptions.of("app-1",
                    "default", "127.0.0.1"), dev.inmesh.runtime.xds.ads.AdsOptions.XdsServer.plaintext("127.0.0.1",
                    server.port()));
            var proxy = dev.inmesh.interception.proxy.StandaloneProxy.start(
                    new dev.inmesh.interception.proxy.StandaloneProxy.Settings(null, -1, -1, 1, null, null)
                            .withXds(ads).withDns(new dev.inmesh.interception.proxy.StandaloneProxy.Dns(
                                    new DnsProxy.Options(List.of(at), List.of(), List.of(), Duration.ofSeconds(1),
                                            16), null)));
            try {
                dev.inmesh.runtime.xds.ads.XdsFixtures.await(() -> server.requests.stream()
                        .anyMatch(r -> r.getResponseNonce().equals("n-" + nds)), Duration.ofSeconds(20), "NDS ACK");
                Response r = parse(udp(at, query(10, "reviews.", A)));
                assertEquals(0, r.rcode());
                assertEquals("10.96.10.141", r.answers().get(0).address());
            } finally {
                proxy.close();
            }
        }
    }
}
