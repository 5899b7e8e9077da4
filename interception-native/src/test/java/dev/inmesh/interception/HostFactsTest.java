package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HostFactsTest {

    @Test
    void splitsTheNameServersOfResolvConfByFamily(@TempDir Path dir) throws Exception {
        Path resolv = dir.resolve("resolv.conf");
        Files.writeString(resolv, """
                # comment
                search cluster.local
                nameserver 10.96.0.10
                nameserver fd00::a
                nameserver not-an-address
                options ndots:5
                  nameserver 127.0.0.53
                """);
        HostFacts.NameServers servers = HostFacts.nameServers(resolv);
        assertEquals(List.of("10.96.0.10", "127.0.0.53"), servers.v4());
        assertEquals(List.of("fd00::a"), servers.v6());
    }

    @Test
    void aDualStackHostIsIpv6OnlyWithDualStack() throws Exception {
        List<InetAddress> dual = List.of(InetAddress.getByName("127.0.0.1"), InetAddress.getByName("10.1.2.3"),
                InetAddress.getByName("fe80::1"), InetAddress.getByName("fd00::5"));
        assertFalse(HostFacts.isIpv6(dual, false));
        assertTrue(HostFacts.isIpv6(dual, true));
        List<InetAddress> v4 = List.of(InetAddress.getByName("10.1.2.3"), InetAddress.getByName("fe80::1"));
        assertFalse(HostFacts.isIpv6(v4, true), "a link-local IPv6 address does not count");
        List<InetAddress> v6 = List.of(InetAddress.getByName("::1"), InetAddress.getByName("2001:db8::7"));
        assertTrue(HostFacts.isIpv6(v6, false));
    }
}
