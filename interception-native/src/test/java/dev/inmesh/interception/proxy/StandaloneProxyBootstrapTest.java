package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.admin.StatsMatcher;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the standalone proxy takes from its bootstrap beside the resources (the admin address, the node, the stats
 * matcher), from {@code -c FILE} or from the bootstrap among the files of {@code -c DIRECTORY}, which it reads as the
 * rest of the configuration.
 */
class StandaloneProxyBootstrapTest {
    private static final String BOOTSTRAP = """
            node: {id: sidecar~10.0.0.7~app.default~default.svc.cluster.local, cluster: app.default}
            admin:
              address: {socket_address: {address: 127.0.0.2, port_value: 25000}}
            stats_config:
              stats_matcher: {inclusion_list: {patterns: [{prefix: "server."}]}}
            static_resources: {}
            """;
    private static final String LISTENERS = """
            resources:
            - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
              name: c
              type: STATIC
              load_assignment: {cluster_name: c, endpoints: []}
            """;

    @TempDir
    Path dir;

    @Test
    void aDirectorysBootstrapGivesTheAdminAddressNodeAndStatsMatcherAsASingleFileDoes() throws Exception {
        Files.writeString(dir.resolve("a-resources.yaml"), LISTENERS); // read first, no bootstrap
        Files.writeString(dir.resolve("b-bootstrap.yaml"), BOOTSTRAP);
        Path file = Files.writeString(Files.createDirectory(dir.resolve("single")).resolve("envoy.yaml"), BOOTSTRAP);
        for (Path config : new Path[] {file, dir}) {
            assertEquals(new InetSocketAddress("127.0.0.2", 25000), StandaloneProxy.adminAddresses(config).admin(),
                    config.toString());
            assertEquals("sidecar~10.0.0.7~app.default~default.svc.cluster.local",
                    EnvoyConfigReader.bootstrapNodeOrNull(config).getId(), config.toString());
            var matcher = StatsMatcher.ofFile(config);
            assertTrue(matcher.test("server.live"), config.toString());
            assertFalse(matcher.test("cluster.c.upstream_rq_total"), config.toString());
        }
    }

    @Test
    void withoutABootstrapTheAdminIsIstiosDefault() throws Exception {
        Files.writeString(dir.resolve("resources.yaml"), LISTENERS);
        assertEquals(AdminHook.Addresses.DEFAULTS, StandaloneProxy.adminAddresses(dir));
        assertEquals(null, EnvoyConfigReader.bootstrapNodeOrNull(dir));
    }
}
