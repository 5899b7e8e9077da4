package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.DiscoveryType;
import dev.inmesh.api.config.cluster.DnsLookupFamily;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.endpoint.LbEndpoint;
import dev.inmesh.api.config.endpoint.LocalityLbEndpoints;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.dns.DnsClientOptions;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** Which lookups each {@code dns_lookup_family} makes, and which addresses it keeps, as Envoy's resolver does. */
class VertxDnsResolverTest {
    private final List<String> lookups = new ArrayList<>();

    private Supplier<Future<DnsResolver.Answer>> lookup(String family, List<String> answer) {
        return () -> {
            lookups.add(family);
            return answer == null ? Future.failedFuture("NXDOMAIN")
                    : Future.succeededFuture(new DnsResolver.Answer(answer, 0));
        };
    }

    private List<String> resolve(DnsLookupFamily family, List<String> a, List<String> aaaa) {
        lookups.clear();
        Future<DnsResolver.Answer> f = VertxDnsResolver.byFamily(family, lookup("A", a), lookup("AAAA", aaaa));
        assertTrue(f.isComplete());
        return f.succeeded() ? f.result().addresses() : null;
    }

    @Test
    void eachFamilyAsksForItsRecordsAndFallsBackOnlyWhenItSays() {
        List<String> v4 = List.of("10.0.0.1");
        List<String> v6 = List.of("fd00::1");
        assertEquals(v4, resolve(DnsLookupFamily.V4_ONLY, v4, v6));
        assertEquals(List.of("A"), lookups);
        assertEquals(v6, resolve(DnsLookupFamily.V6_ONLY, v4, v6));
        assertEquals(List.of("AAAA"), lookups);
        // AUTO, Envoy's default, prefers IPv6 and falls back to IPv4 when the name has no AAAA record
        assertEquals(v6, resolve(DnsLookupFamily.AUTO, v4, v6));
        assertEquals(List.of("AAAA"), lookups);
        assertEquals(v4, resolve(DnsLookupFamily.AUTO, v4, List.of()));
        assertEquals(List.of("AAAA", "A"), lookups);
        assertEquals(v4, resolve(DnsLookupFamily.V4_PREFERRED, v4, v6));
        assertEquals(List.of("A"), lookups);
        assertEquals(v6, resolve(DnsLookupFamily.V4_PREFERRED, null, v6));
        assertEquals(List.of("10.0.0.1", "fd00::1"), resolve(DnsLookupFamily.ALL, v4, v6));
        assertEquals(v6, resolve(DnsLookupFamily.ALL, null, v6));
        // V4_ONLY keeps to IPv4 even when the name has only IPv6 addresses
        assertEquals(List.of(), resolve(DnsLookupFamily.V4_ONLY, List.of(), v6));
        assertEquals(null, resolve(DnsLookupFamily.ALL, null, null));
    }

    /**
     * A loopback DNS server that answers every query for {@code gone.example} "no such name" (NXDOMAIN); for
     * {@code ttl.example} two A records, 10.1.2.3 with a TTL of 42 s and 10.1.2.4 with 30 s, and no AAAA record (an
     * empty answer); and every other one "server failure" (SERVFAIL), with no records. Each query's name and type
     * ({@code "vm. A"}) is added to {@code asked}.
     */
    private static Thread answering(DatagramSocket socket, List<String> asked) {
        Thread t = new Thread(() -> {
            byte[] buf = new byte[512];
            while (!socket.isClosed()) {
                DatagramPacket query = new DatagramPacket(buf, buf.length);
                try {
                    socket.receive(query);
                } catch (java.io.IOException e) {
                    return;
                }
                // the header and the question, without the query's additional records (the resolver's EDNS)
                int end = 12;
                while (query.getData()[end] != 0) {
                    end += 1 + query.getData()[end];
                }
                end += 5;
                int type = query.getData()[end - 3] & 0xff;
                asked.add(questionName(query.getData()) + (type == 1 ? " A" : type == 28 ? " AAAA" : " " + type));
                java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
                out.write(query.getData(), 0, end);
                String text = new String(query.getData(), 0, end, java.nio.charset.StandardCharsets.ISO_8859_1);
                boolean gone = text.contains("gone");
                boolean ttl = text.contains("ttl");
                int records = 0;
                if (ttl && type == 1) {
                    for (int[] a : new int[][] {{3, 42}, {4, 30}}) {
                        // a pointer to the question's name, type A, class IN, the TTL, 4 bytes of address
                        out.writeBytes(new byte[] {(byte) 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, (byte) a[1], 0, 4, 10, 1, 2,
                            (byte) a[0]});
                        records++;
                    }
                }
                byte[] answer = out.toByteArray();
                answer[2] = (byte) (answer[2] | 0x80); // a response
                answer[3] = (byte) (0x80 | (gone ? 3 : ttl ? 0 : 2)); // recursion available; the code
                answer[7] = (byte) records; // the answer count
                answer[10] = 0; // no additional records
                answer[11] = 0;
                try {
                    socket.send(new DatagramPacket(answer, answer.length, query.getSocketAddress()));
                } catch (java.io.IOException e) {
                    return;
                }
            }
        });
        t.setDaemon(true);
        t.start();
        return t;
    }

    /** The name a DNS message's question asks for, with its final dot ({@code vm.}). */
    private static String questionName(byte[] message) {
        StringBuilder name = new StringBuilder();
        for (int i = 12; message[i] != 0; i += 1 + message[i]) {
            name.append(new String(message, i + 1, message[i], java.nio.charset.StandardCharsets.ISO_8859_1))
                    .append('.');
        }
        return name.toString();
    }

    /** What a test does with a resolver that asks the server of {@link #answering} alone. */
    private interface WithServer {
        void run(VertxDnsResolver resolver) throws Exception;
    }

    /** The queries the server of {@link #withServer} was asked, as {@link #answering} notes them. */
    private final List<String> asked = java.util.Collections.synchronizedList(new ArrayList<>());
    /** The hosts file the resolver of {@link #withServer} looks in, which the test writes (none at first). */
    @org.junit.jupiter.api.io.TempDir
    java.nio.file.Path dir;

    private java.nio.file.Path hosts() {
        return dir.resolve("hosts");
    }

    private void withServer(WithServer test) throws Exception {
        withServer(Vertx.vertx(), test);
    }

    private void withServer(Vertx vertx, WithServer test) throws Exception {
        try (DatagramSocket socket = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            answering(socket, asked);
            test.run(new VertxDnsResolver(vertx, new DnsClientOptions().setHost("127.0.0.1")
                    .setPort(socket.getLocalPort()).setQueryTimeout(2000), hosts()));
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }

    private static <T> T await(Future<T> f) throws Exception {
        return f.toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @Test
    void aNameThatDoesNotExistResolvesToNoAddressWhileAFailedLookupFails() throws Exception {
        withServer(resolver -> {
            // as Envoy's resolver: no such name is an answer (no hosts), not a failure that keeps the old hosts
            for (DnsLookupFamily family : DnsLookupFamily.values()) {
                assertEquals(List.of(), await(resolver.resolve("gone.example", family)), family.name());
            }
            assertThrows(ExecutionException.class, () -> await(resolver.resolve("down.example",
                    DnsLookupFamily.V4_ONLY)));
        });
    }

    @Test
    void anAnswerCarriesItsRecordsSmallestTtlAndANameWithoutRecordsOfTheFamilyHasNoAddress() throws Exception {
        withServer(resolver -> {
            DnsResolver.Answer v4 = await(resolver.resolveWithTtl("ttl.example", DnsLookupFamily.V4_ONLY));
            assertEquals(List.of("10.1.2.3", "10.1.2.4"), v4.addresses());
            assertEquals(30, v4.ttlSeconds());
            // AUTO asks for AAAA first: none there (an empty answer, not a failure), so the A records
            assertEquals(v4, await(resolver.resolveWithTtl("ttl.example", DnsLookupFamily.AUTO)));
            assertEquals(new DnsResolver.Answer(List.of(), 0),
                    await(resolver.resolveWithTtl("ttl.example", DnsLookupFamily.V6_ONLY)));
            assertEquals(List.of("10.1.2.3", "10.1.2.4"), await(resolver.resolve("ttl.example", DnsLookupFamily.ALL)));
        });
    }

    /** Answers {@code name} in {@code family} (its addresses), or fails. */
    private static List<String> addresses(VertxDnsResolver resolver, String name, DnsLookupFamily family)
            throws Exception {
        DnsResolver.Answer a = await(resolver.resolveWithTtl(name, family));
        assertEquals(0, a.ttlSeconds(), "a hosts file's answer has no TTL");
        return a.addresses();
    }

    @Test
    void aNameInTheHostsFileIsAnsweredFromItInEachFamilyAsCaresLooksItUpBeforeDns() throws Exception {
        java.nio.file.Files.writeString(hosts(), String.join("\n", "# Kubernetes-managed hosts file.",
                "127.0.0.1\tlocalhost", "127.0.0.1 vm", "10.9.0.1 dual.example Dual-Alias", "fd00::9 dual.example",
                "fd00::7 six.example", "10.9.0.2 four.example", "10.9.0.3 four.example", ""));
        withServer(resolver -> {
            assertEquals(List.of("127.0.0.1"), addresses(resolver, "vm", DnsLookupFamily.V4_ONLY));
            assertEquals(List.of("127.0.0.1"), addresses(resolver, "VM", DnsLookupFamily.V4_PREFERRED));
            assertEquals(List.of("fd00::9"), addresses(resolver, "dual.example", DnsLookupFamily.V6_ONLY));
            assertEquals(List.of("fd00::9"), addresses(resolver, "dual.example", DnsLookupFamily.AUTO));
            assertEquals(List.of("10.9.0.1"), addresses(resolver, "dual-alias", DnsLookupFamily.V4_ONLY));
            // ALL is one lookup of both families: the file's addresses of both, or of the one it has
            assertEquals(List.of("10.9.0.1", "fd00::9"), addresses(resolver, "dual.example", DnsLookupFamily.ALL));
            assertEquals(List.of("10.9.0.2", "10.9.0.3"), addresses(resolver, "four.example", DnsLookupFamily.ALL));
            assertEquals(List.of(), asked, "nothing asked of DNS");

            // a family the file has no address of is asked of DNS: AUTO's IPv6 lookup fails there (SERVFAIL) and
            // falls back to the file's IPv4 addresses, V4_PREFERRED's IPv4 lookup to the file's IPv6 one
            assertEquals(List.of("10.9.0.2", "10.9.0.3"), addresses(resolver, "four.example", DnsLookupFamily.AUTO));
            assertEquals(List.of("fd00::7"), addresses(resolver, "six.example", DnsLookupFamily.V4_PREFERRED));
            assertThrows(ExecutionException.class, () -> await(resolver.resolve("six.example",
                    DnsLookupFamily.V4_ONLY)));
            assertEquals(java.util.Set.of("four.example. AAAA", "six.example. A"), java.util.Set.copyOf(asked));
            // localhost: the file's, else the loopback address, never asked of DNS
            assertEquals(List.of("::1"), addresses(resolver, "localhost", DnsLookupFamily.AUTO));
            assertEquals(List.of("127.0.0.1"), addresses(resolver, "localhost", DnsLookupFamily.ALL));
            assertEquals(java.util.Set.of("four.example. AAAA", "six.example. A"), java.util.Set.copyOf(asked));
        });
    }

    @Test
    void theHostsFileIsReadAgainOnceItChangedAndItsAbsenceLeavesTheNamesToDns() throws Exception {
        java.nio.file.Files.writeString(hosts(), "127.0.0.1 vm\n");
        withServer(resolver -> {
            assertEquals(List.of("127.0.0.1"), addresses(resolver, "vm", DnsLookupFamily.V4_ONLY));
            // the same length, another address (a hostAlias changed): its modification time tells
            java.nio.file.Files.writeString(hosts(), "127.0.0.2 vm\n");
            java.nio.file.Files.setLastModifiedTime(hosts(), java.nio.file.attribute.FileTime.fromMillis(
                    System.currentTimeMillis() + 10_000));
            assertEquals(List.of("127.0.0.2"), addresses(resolver, "vm", DnsLookupFamily.V4_ONLY));
            assertEquals(List.of(), asked);
            java.nio.file.Files.delete(hosts());
            assertThrows(ExecutionException.class, () -> await(resolver.resolve("vm", DnsLookupFamily.V4_ONLY)));
            assertEquals(List.of("vm. A"), asked);
        });
    }

    @Test
    void aStrictDnsClusterOfANameInTheHostsFileHasItsAddressAsHost() throws Exception {
        java.nio.file.Files.writeString(hosts(), "127.0.0.1 vm\n");
        Vertx vertx = Vertx.vertx();
        withServer(vertx, resolver -> {
            Cluster cluster = Cluster.builder("vm", DiscoveryType.STRICT_DNS).loadAssignment(Fixtures.cla("vm",
                    new LocalityLbEndpoints(null, List.of(new LbEndpoint(new SocketAddress("vm", 25010), "", null, 1,
                            null)), 1, 0))).build();
            ClusterManager m = ClusterManager.create(new UpstreamEnvironment(vertx, null, null, resolver),
                    java.util.Map.of("vm", cluster), java.util.Map.of());
            try {
                await(m.cluster("vm").initialized());
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (m.cluster("vm").hosts().isEmpty() && System.nanoTime() < end) {
                    Thread.sleep(20);
                }
                assertEquals(List.of("127.0.0.1:25010"), m.cluster("vm").hosts().stream()
                        .map(Host::addressString).toList());
                // AUTO (the default) asks for IPv6 first: the file has none for vm, so DNS is asked, as c-ares asks
                // it; its failure (SERVFAIL) falls back to the file's IPv4 address
                assertEquals(List.of("vm. AAAA"), asked);
            } finally {
                m.close();
            }
        });
    }
}
