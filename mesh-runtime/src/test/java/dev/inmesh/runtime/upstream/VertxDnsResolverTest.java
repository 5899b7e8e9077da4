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

    private Supplier<Future<List<String>>> lookup(String family, List<String> answer) {
        return () -> {
            asked.add(family);
            return answer == null ? Future.failedFuture("NXDOMAIN") : Future.succeededFuture(answer);
        };
    }

    private List<String> resolve(DnsLookupFamily family, List<String> a, List<String> aaaa) {
        asked.clear();
        Future<List<String>> f = VertxDnsResolver.byFamily(family, lookup("A", a), lookup("AAAA", aaaa));
        assertTrue(f.isComplete());
        return f.succeeded() ? f.result() : null;
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
     * A loopback DNS server that answers every query for {@code gone.example} "no such name" (NXDOMAIN) and every
     * other one "server failure" (SERVFAIL), with no records.
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
                byte[] answer = java.util.Arrays.copyOf(query.getData(), query.getLength());
                boolean gone = new String(answer, java.nio.charset.StandardCharsets.ISO_8859_1).contains("gone");
                answer[2] = (byte) (answer[2] | 0x80); // a response
                answer[3] = (byte) (0x80 | (gone ? 3 : 2)); // recursion available; NXDOMAIN or SERVFAIL
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

    @Test
    void aNameThatDoesNotExistResolvesToNoAddressWhileAFailedLookupFails() throws Exception {
        Vertx vertx = Vertx.vertx();
        try (DatagramSocket socket = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            answering(socket);
            VertxDnsResolver resolver = new VertxDnsResolver(vertx, new DnsClientOptions().setHost("127.0.0.1")
                    .setPort(socket.getLocalPort()).setQueryTimeout(2000));
            // as Envoy's resolver: no such name is an answer (no hosts), not a failure that keeps the old hosts
            for (DnsLookupFamily family : DnsLookupFamily.values()) {
                assertEquals(List.of(), resolver.resolve("gone.example", family).toCompletionStage()
                        .toCompletableFuture().get(10, TimeUnit.SECONDS), family.name());
            }
            assertThrows(ExecutionException.class, () -> resolver.resolve("down.example", DnsLookupFamily.V4_ONLY)
                    .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS));
        } finally {
            vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        }
    }
}
