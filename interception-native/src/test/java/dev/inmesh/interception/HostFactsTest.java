package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
}
