package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.DnsLookupFamily;
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
    private final List<String> asked = new ArrayList<>();

    private Supplier<Future<DnsResolver.Answer>> lookup(String family, List<String> answer) {
        return () -> {
            asked.add(family);
            return answer == null ? Future.failedFuture("NXDOMAIN")
                    : Future.succeededFuture(new DnsResolver.Answer(answer, 0));
        };
    }

    private List<String> resolve(DnsLookupFamily family, List<String> a, List<String> aaaa) {
        asked.clear();
        Future<DnsResolver.Answer> f = VertxDnsResolver.byFamily(family, lookup("A", a), lookup("AAAA", aaaa));
        assertTrue(f.isComplete());
        return f.succeeded() ? f.result().addresses() : null;
    }

    @Test
    void eachFamilyAsksForItsRecordsAndFallsBackOnlyWhenItSays() {
        List<String> v4 = List.of("10.0.0.1");
        List<String> v6 = List.of("fd00::1");
        assertEquals(v4, resolve(DnsLookupFamily.V4_ONLY, v4, v6));
        assertEquals(List.of("A"), asked);
        assertEquals(v6, resolve(DnsLookupFamily.V6_ONLY, v4, v6));
        assertEquals(List.of("AAAA"), asked);
        // AUTO, Envoy's default, prefers IPv6 and falls back to IPv4 when the name has no AAAA record
        assertEquals(v6, resolve(DnsLookupFamily.AUTO, v4, v6));
        assertEquals(List.of("AAAA"), asked);
        assertEquals(v4, resolve(DnsLookupFamily.AUTO, v4, List.of()));
        assertEquals(List.of("AAAA", "A"), asked);
        assertEquals(v4, resolve(DnsLookupFamily.V4_PREFERRED, v4, v6));
        assertEquals(List.of("A"), asked);
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
     * empty answer); and every other one "server failure" (SERVFAIL), with no records.
     */
    private static Thread answering(DatagramSocket socket) {
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

    /** What a test does with a resolver that asks the server of {@link #answering} alone. */
    private interface WithServer {
        void run(VertxDnsResolver resolver) throws Exception;
    }

    private static void withServer(WithServer test) throws Exception {
        Vertx vertx = Vertx.vertx();
        try (DatagramSocket socket = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            answering(socket);
            test.run(new VertxDnsResolver(vertx, new DnsClientOptions().setHost("127.0.0.1")
                    .setPort(socket.getLocalPort()).setQueryTimeout(2000)));
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
}
