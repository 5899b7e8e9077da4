package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
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

    @Test
    void aLowerCamelCaseBootstrapGivesItsAdminAddress() throws Exception {
        // as istioctl proxy-config bootstrap -o json prints it
        Path file = Files.writeString(dir.resolve("envoy.json"), """
                {"admin": {"address": {"socketAddress": {"address": "127.0.0.2", "portValue": 41004}}},
                 "staticResources": {}}
                """);
        assertEquals(new InetSocketAddress("127.0.0.2", 41004), StandaloneProxy.adminAddresses(file).admin());
    }

    @Test
    void aConfigDumpsBootstrapGivesTheAdminAddressAndNodeInAFileOrADirectory() throws Exception {
        String dump = """
                {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
                  "bootstrap": {"node": {"id": "sidecar~10.0.0.9~d.ns~ns.svc.cluster.local"},
                    "admin": {"address": {"socketAddress": {"address": "127.0.0.3", "portValue": 25001}}},
                    "staticResources": {}}}]}
                """;
        Files.writeString(dir.resolve("a-resources.yaml"), LISTENERS);
        Files.writeString(dir.resolve("b-dump.json"), dump);
        Path file = Files.writeString(Files.createDirectory(dir.resolve("single")).resolve("dump.json"), dump);
        for (Path config : new Path[] {file, dir}) {
            assertEquals(new InetSocketAddress("127.0.0.3", 25001), StandaloneProxy.adminAddresses(config).admin(),
                    config.toString());
            assertEquals("sidecar~10.0.0.9~d.ns~ns.svc.cluster.local",
                    EnvoyConfigReader.bootstrapNodeOrNull(config).getId(), config.toString());
        }
    }

    @Test
    void anAdminAddressInmeshCannotServeIsRefusedByItsField() throws Exception {
        String[][] cases = {
            {"{pipe: {path: /tmp/admin.sock}}", "admin.address.pipe"},
            {"{socket_address: {address: 127.0.0.1, port_value: 70000}}", "admin.address.socket_address.port_value"},
            {"{socketAddress: {address: localhost, portValue: 15000}}", "admin.address.socket_address.address"},
            {"{socket_address: {address: 127.0.0.1, port_value: -1}}", "admin.address.socket_address.port_value"},
        };
        for (String[] c : cases) {
            Path file = Files.writeString(dir.resolve("envoy.yaml"), "admin: {address: " + c[0] + "}\n");
            var e = assertThrows(EnvoyConfigReader.ConfigReadException.class,
                    () -> StandaloneProxy.adminAddresses(file), c[0]);
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
    }

    @Test
    void withoutAnAdminTheBootstrapsAdminAddressIsNotRead() throws Exception {
        // --no-admin: a pipe admin Inmesh cannot serve stops nothing, no admin being served
        Path file = Files.writeString(dir.resolve("envoy.yaml"), """
                admin: {address: {pipe: {path: /tmp/admin.sock}}}
                static_resources:
                  clusters:
                  - {name: c, type: STATIC, load_assignment: {cluster_name: c, endpoints: []}}
                """);
        StandaloneProxy.start(new StandaloneProxy.Settings(file, -1, -1, 1, null, AdminHook.NONE)).close();
    }
}
