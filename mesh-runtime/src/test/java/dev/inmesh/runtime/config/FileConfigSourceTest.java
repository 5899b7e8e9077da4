package dev.inmesh.runtime.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.router.RouteRequest;
import dev.inmesh.runtime.router.RouteResult;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileConfigSourceTest {
    static final Duration POLL = Duration.ofMillis(50);

    @TempDir
    Path dir;
    Vertx vertx;
    SnapshotHolder holder;
    FileConfigSource source;

    @BeforeEach
    void setUp() {
        vertx = Vertx.vertx();
        holder = new SnapshotHolder();
    }

    @AfterEach
    void tearDown() throws Exception {
        if (source != null) {
            source.close().await(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    static String config(String cluster, String regex) {
        return """
                - name: 0.0.0.0_9080
                  address: {socket_address: {address: 0.0.0.0, port_value: 9080}}
                  filter_chains:
                  - filters:
                    - name: envoy.filters.network.http_connection_manager
                      typed_config:
                        "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                        stat_prefix: in
                        rds: {route_config_name: "9080"}
                        http_filters:
                        - name: envoy.filters.http.router
                          typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
                - name: "9080"
                  virtual_hosts:
                  - name: all
                    domains: ["*"]
                    routes:
                    - {match: {safe_regex: {regex: "%s"}}, route: {cluster: other}}
                    - {match: {prefix: /}, route: {cluster: %s}}
                """.formatted(regex, cluster);
    }

    /**
     * Writes a file and moves its modification time on, as an editor's save would: whole, by a rename, so that a poll
     * can see only the file before or after (not an empty or half-written one, nor the new text with the time that
     * writing gave it, each of which would be one more read counted).
     */
    static void write(Path f, String text, int secondsLater) throws Exception {
        Path tmp = f.resolveSibling(f.getFileName() + ".tmp");
        Files.writeString(tmp, text);
        Files.setLastModifiedTime(tmp, FileTime.from(Instant.now().plusSeconds(secondsLater)));
        Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    static String clusterFor(MeshSnapshot s, String path) {
        RouteResult r = s.routeTable("9080").route(new Get(path), 0);
        return r instanceof RouteResult.Forward f ? f.cluster() : null;
    }

    static void await(BooleanSupplier c, String what) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!c.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(5);
        }
    }

    @Test
    void theFileIsLoadedAtStartAndReloadedWhenItChanges() throws Exception {
        Path f = dir.resolve("envoy.yaml");
        write(f, config("c1", "/admin.*"), 0);
        source = new FileConfigSource(vertx, f, POLL);
        Future<Void> started = source.start(holder);
        started.await(10, TimeUnit.SECONDS);
        assertTrue(started.succeeded(), () -> String.valueOf(started.cause()));
        assertTrue(holder.ready());
        assertEquals("c1", clusterFor(holder.current(), "/productpage"));
        assertEquals(1, source.reloads());

        write(f, config("c2", "/admin.*"), 5);
        // the reload count is raised after the snapshot is applied, on the source's thread: wait for both
        await(() -> "c2".equals(clusterFor(holder.current(), "/productpage")) && source.reloads() == 2,
                "reload to c2");
        assertNull(source.lastError());
    }

    /**
     * A file written in place is read once it stayed as it is for a poll: a poll that finds it cut short (here, the
     * bootstrap's clusters without their second half, still a valid file that would drop cluster {@code c2}) reads
     * nothing yet, nor the next that finds it grown; the one after reads it whole. Envoy reads only files moved into
     * place, for the same reason.
     */
    @Test
    void aFileWrittenInPlaceIsReadOnlyOnceItStaysAsItIsForAPoll() throws Exception {
        Path f = dir.resolve("envoy.yaml");
        String whole = config("c2", "/admin.*");
        write(f, whole, 0);
        // polled by hand: the timer's interval is longer than the test
        source = new FileConfigSource(vertx, f, Duration.ofHours(1));
        source.start(holder).await(10, TimeUnit.SECONDS);
        assertEquals("c2", clusterFor(holder.current(), "/productpage"));
        // the first part of a rewrite in place: the listener and route without the route configuration's end
        String cut = whole.substring(0, whole.indexOf("    - {match: {prefix: /}"));
        Files.writeString(f, cut);
        source.poll().await(10, TimeUnit.SECONDS);
        assertEquals("c2", clusterFor(holder.current(), "/productpage"), "the cut file was not read");
        assertEquals(1, source.reloads());
        Files.writeString(f, whole.replace("c2}", "c1}"));
        source.poll().await(10, TimeUnit.SECONDS);
        assertEquals(1, source.reloads(), "changed since the poll before: not read yet");
        source.poll().await(10, TimeUnit.SECONDS);
        assertEquals(2, source.reloads());
        assertEquals("c1", clusterFor(holder.current(), "/productpage"));
        assertNull(source.lastError());
    }

    /**
     * A file moved in over the configuration with the same size and modification time ({@code touch -r old new; mv
     * new envoy.yaml}) is another file (another inode): it is read, as Envoy's watch reads every file moved to its
     * path.
     */
    @Test
    void aFileMovedInWithTheSameSizeAndModificationTimeIsReloaded() throws Exception {
        Path f = dir.resolve("envoy.yaml");
        write(f, config("c1", "/admin.*"), 0);
        source = new FileConfigSource(vertx, f, POLL);
        source.start(holder).await(10, TimeUnit.SECONDS);
        assertEquals("c1", clusterFor(holder.current(), "/productpage"));

        Path tmp = dir.resolve("new.tmp");
        Files.writeString(tmp, config("c2", "/admin.*"));
        assertEquals(Files.size(f), Files.size(tmp));
        Files.setLastModifiedTime(tmp, Files.getLastModifiedTime(f));
        Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        await(() -> "c2".equals(clusterFor(holder.current(), "/productpage")) && source.reloads() == 2,
                "reload to c2");
    }

    /**
     * Each read of the file counts in the LDS subscription's statistics as Envoy counts a filesystem subscription's
     * refresh: one {@code update_attempt} each, with {@code update_success}, {@code update_rejected} (a resource
     * refused) or {@code update_failure} (not YAML at all). The file gives no cluster: there is no CDS subscription.
     */
    @Test
    void eachReadCountsInTheLdsSubscriptionStatisticsAsEnvoysFilesystemSubscription() throws Exception {
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        holder.stats().bind(registry);
        java.util.function.ToLongFunction<String> value = n -> (long) registry.get(n).gauge().value();
        Path f = dir.resolve("envoy.yaml");
        write(f, config("c1", "/admin.*"), 0);
        source = new FileConfigSource(vertx, f, POLL);
        source.start(holder).await(10, TimeUnit.SECONDS);
        String s = "envoy_listener_manager_lds_";
        assertEquals(1, value.applyAsLong(s + "update_attempt"));
        assertEquals(1, value.applyAsLong(s + "update_success"));
        assertTrue(value.applyAsLong("envoy_listener_manager_lds_update_time") >= System.currentTimeMillis() - 60_000);
        assertEquals(1, value.applyAsLong("envoy_listener_manager_listener_added"));

        write(f, config("c1", "(unclosed"), 5);
        await(() -> value.applyAsLong("envoy_listener_manager_lds_update_rejected") == 1, "a rejected read");
        write(f, "{not: yaml: at all", 10);
        await(() -> value.applyAsLong("envoy_listener_manager_lds_update_failure") == 1, "a failed read");
        write(f, config("c2", "/admin.*"), 15);
        await(() -> value.applyAsLong(s + "update_success") == 2, "a second good read");

        assertEquals(4, value.applyAsLong(s + "update_attempt"));
        assertEquals(1, value.applyAsLong(s + "update_rejected"));
        assertEquals(1, value.applyAsLong(s + "update_failure"));
        assertEquals(0, value.applyAsLong(s + "init_fetch_timeout"));
        assertEquals(null, registry.find("envoy_cluster_manager_cds_update_attempt").gauge(), "no CDS");
        assertEquals(0, value.applyAsLong("envoy_listener_manager_listener_modified"), "only its route changed");
        assertEquals(null, registry.find("envoy_control_plane_connected_state").gauge(), "no control plane");
    }

    /**
     * A bootstrap's {@code static_resources} come with no subscription, as Envoy loads them: no CDS or LDS statistics.
     * Once the file gives a cluster as an xDS response would ({@code resources}), the CDS subscription Envoy would run
     * for it ({@code cds_config} with a {@code path}) counts from that read on.
     */
    @Test
    void staticResourcesCountInNoSubscriptionAndAClusterAsAnXdsResponseGivesItStartsCds() throws Exception {
        var registry = new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
        holder.stats().bind(registry);
        Path f = dir.resolve("envoy.yaml");
        String cluster = "{name: c1, type: STATIC, load_assignment: {cluster_name: c1, endpoints: [{lb_endpoints: "
                + "[{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: 9}}}}]}]}}";
        write(f, "static_resources:\n  clusters:\n  - " + cluster + "\n", 0);
        source = new FileConfigSource(vertx, f, POLL);
        source.start(holder).await(10, TimeUnit.SECONDS);
        assertTrue(holder.current().cluster("c1") != null);
        write(f, "static_resources:\n  clusters: []\n", 5);
        await(() -> source.reloads() == 2, "a second read");
        assertEquals(null, registry.find("envoy_cluster_manager_cds_update_attempt").gauge(), "no CDS");
        assertEquals(null, registry.find("envoy_listener_manager_lds_update_attempt").gauge(), "no LDS");

        write(f, "resources:\n- {\"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster, "
                + cluster.substring(1) + "\n", 10);
        await(() -> source.reloads() == 3, "a third read");
        assertEquals(1, (long) registry.get("envoy_cluster_manager_cds_update_attempt").gauge().value());
        assertEquals(1, (long) registry.get("envoy_cluster_manager_cds_update_success").gauge().value());
        assertEquals(null, registry.find("envoy_listener_manager_lds_update_attempt").gauge(), "no LDS");
    }

    static String staticCluster(String name, int port) {
        return "{\"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster, name: " + name + ", type: STATIC, "
                + "load_assignment: {cluster_name: " + name + ", endpoints: [{lb_endpoints: [{endpoint: {address: "
                + "{socket_address: {address: 127.0.0.1, port_value: " + port + "}}}}]}]}}";
    }

    /**
     * A DiscoveryResponse file's own {@code version_info} is its resources' version (and the dump's), as Envoy's
     * filesystem subscription passes it on; a resource a reload gives again unchanged keeps the version and time of
     * the read that last changed it, as Envoy skips an unchanged cluster. A file without one is versioned by its name
     * and modification time.
     */
    @Test
    void aDiscoveryResponsesVersionInfoIsItsResourcesVersionAndAnUnchangedResourceKeepsItsOwn() throws Exception {
        Path f = dir.resolve("cds.yaml");
        write(f, "version_info: v1\nresources:\n- " + staticCluster("a", 9) + "\n- " + staticCluster("b", 9)
                + "\n", 0);
        source = new FileConfigSource(vertx, f, POLL);
        source.start(holder).await(10, TimeUnit.SECONDS);
        var first = holder.current().resources();
        var type = dev.inmesh.runtime.xds.ResourceType.CLUSTER;
        assertEquals("v1", first.version(type, "a").versionInfo());
        assertEquals("v1", first.version(type, "b").versionInfo());

        write(f, "version_info: v2\nresources:\n- " + staticCluster("a", 9) + "\n- " + staticCluster("b", 10)
                + "\n", 5);
        await(() -> source.reloads() == 2, "a second read");
        var second = holder.current().resources();
        assertEquals(first.version(type, "a"), second.version(type, "a"), "a, unchanged, keeps v1 and its time");
        assertEquals("v2", second.version(type, "b").versionInfo());
        assertTrue(second.version(type, "b").lastUpdated().isAfter(first.version(type, "b").lastUpdated()));
        var dump = dev.inmesh.runtime.admin.ConfigDumpBuilder.build(second, "n", Instant.EPOCH);
        var clusters = dump.getConfigs(1).unpack(io.envoyproxy.envoy.admin.v3.ClustersConfigDump.class);
        assertEquals("v2", clusters.getVersionInfo());

        write(f, "resources:\n- " + staticCluster("a", 9) + "\n- " + staticCluster("b", 11) + "\n", 10);
        await(() -> source.reloads() == 3, "a third read");
        assertTrue(holder.current().resources().version(type, "b").versionInfo().startsWith("cds.yaml@"));
    }

    /** A cluster with active health checks, to a host of {@code port}, as one more resource of {@link #config}. */
    private static String checkedCluster(int port) {
        return """
                - name: chc
                  type: STATIC
                  connect_timeout: 1s
                  health_checks:
                  - {timeout: 1s, interval: 1s, unhealthy_threshold: 1, healthy_threshold: 1,
                     http_health_check: {path: /hc}}
                  load_assignment:
                    cluster_name: chc
                    endpoints:
                    - lb_endpoints:
                      - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
                """.formatted(port);
    }

    /**
     * The file's poll, the first timer of its Vert.x instance (timer 0), as in the standalone proxy, goes on once a
     * cluster with health checks was removed: closing the checks' client cancelled timer 0 (a Vert.x 5.0 client
     * without a pool checker cancels that id), and the proxy then never read its file again.
     */
    @Test
    void aClusterWithHealthChecksRemovedLeavesLaterChangesReloaded() throws Exception {
        vertx.close().await(10, TimeUnit.SECONDS);
        vertx = Vertx.vertx();
        holder = new SnapshotHolder(dev.inmesh.runtime.upstream.UpstreamEnvironment.of(vertx));
        Path f = dir.resolve("envoy.yaml");
        write(f, config("c1", "/admin.*"), 0);
        source = new FileConfigSource(vertx, f, POLL);
        // as the standalone proxy reads its file: once, then watches it
        source.loadNow(holder);
        source.start(holder).await(10, TimeUnit.SECONDS);
        int port = vertx.createHttpServer().requestHandler(r -> r.response().end("ok")).listen(0, "127.0.0.1")
                .await(10, TimeUnit.SECONDS).actualPort();
        write(f, config("c2", "/admin.*") + checkedCluster(port), 5);
        await(() -> "c2".equals(clusterFor(holder.current(), "/productpage")), "the cluster with health checks");
        write(f, config("c3", "/admin.*"), 10);
        await(() -> "c3".equals(clusterFor(holder.current(), "/productpage")), "that cluster removed");
        write(f, config("c4", "/admin.*"), 15);
        await(() -> "c4".equals(clusterFor(holder.current(), "/productpage")), "the change after");
    }

    /**
     * A directory's hidden files are not configuration: an editor's lock (Emacs' {@code .#name}, a dangling link), a
     * hidden copy, which would name its resources twice.
     */
    @Test
    void aDirectorysHiddenFilesAreNotRead() throws Exception {
        Path d = Files.createDirectories(dir.resolve("config"));
        write(d.resolve("envoy.yaml"), config("c1", "/admin.*"), 0);
        Files.createSymbolicLink(d.resolve(".#envoy.yaml"), Path.of("root@host.1234:1700000000"));
        Files.writeString(d.resolve(".copy.yaml"), config("c2", "/admin.*"));
        source = new FileConfigSource(vertx, d, Duration.ofHours(1));
        Future<Void> started = source.start(holder);
        started.await(10, TimeUnit.SECONDS);
        assertTrue(started.succeeded(), () -> String.valueOf(started.cause()));
        assertEquals("c1", clusterFor(holder.current(), "/productpage"));
        Files.writeString(d.resolve(".copy.yaml"), config("c3", "/admin.*"));
        source.poll().await(10, TimeUnit.SECONDS);
        source.poll().await(10, TimeUnit.SECONDS);
        assertEquals(1, source.reloads(), "a hidden file's change is none");
    }

    @Test
    void aConfigurationRejectedForAMissingIdentityFileIsReadAgainOnceTheFilesAreThere() throws Exception {
        Path d = Files.createDirectories(dir.resolve("config"));
        write(d.resolve("envoy.yaml"), config("c1", "/admin.*"), 0);
        source = new FileConfigSource(vertx, d, POLL, new dev.inmesh.runtime.tls.WorkloadIdentity(
                dir.resolve("identity")));
        source.start(holder).await(10, TimeUnit.SECONDS);
        String mtls = "outbound|9080||reviews.default.svc.cluster.local";

        // an ISTIO_MUTUAL cluster before Istio's agent wrote the workload's certificate: rejected by name
        write(d.resolve("cluster.yaml"), dev.inmesh.runtime.upstream.TestCertificates.ISTIO_MUTUAL_CLUSTER, 5);
        await(() -> source.lastError() != null, "the rejection");
        assertTrue(source.lastError().contains("cert-chain.pem"), source.lastError());
        long reloads = source.reloads();
        Thread.sleep(POLL.toMillis() * 4);
        assertEquals(reloads, source.reloads(), "read again with nothing changed");

        // the agent writes the files: the same configuration applies, with no change of its own
        var ca = dev.inmesh.runtime.upstream.TestCertificates.ca("cluster.local");
        dev.inmesh.runtime.upstream.TestCertificates.identityDirectory(dir, dev.inmesh.runtime.upstream
                .TestCertificates.issue(ca, "productpage", List.of(), List.of(
                        "spiffe://cluster.local/ns/default/sa/bookinfo-productpage")), ca);
        // the source clears its error after applying the snapshot, on its own thread: wait for both
        await(() -> holder.current().clusterManager().cluster(mtls) != null && source.lastError() == null,
                "the cluster, once the files are there");
    }

    /**
     * A configuration rejected for a TLS file a context reads (here a {@code file-cert:} name's key that is not its
     * certificate's) is read again once that file changes, with no change of the configuration's own files: the
     * change it was rejected with (a new file's route configuration) then applies.
     */
    @Test
    void aConfigurationRejectedForATlsFileIsReadAgainOnceThatFileChanges() throws Exception {
        var ca = dev.inmesh.runtime.upstream.TestCertificates.ca("root");
        var one = dev.inmesh.runtime.upstream.TestCertificates.issue(ca, "one", List.of("one"), List.of());
        var two = dev.inmesh.runtime.upstream.TestCertificates.issue(ca, "two", List.of("two"), List.of());
        Path tls = Files.createDirectories(dir.resolve("tls"));
        Path cert = tls.resolve("srv.crt");
        Path key = tls.resolve("srv.key");
        write(cert, one.certificatePem(), 0);
        write(key, one.keyPem(), 0);
        Path d = Files.createDirectories(dir.resolve("config"));
        write(d.resolve("envoy.yaml"), config("c1", "/admin.*"), 0);
        Path root = tls.resolve("ca.crt");
        write(root, ca.certificatePem(), 0);
        // Istio's ISTIO_MUTUAL cluster, with a DestinationRule's files in place of the workload identity's
        write(d.resolve("cluster.yaml"), dev.inmesh.runtime.upstream.TestCertificates.ISTIO_MUTUAL_CLUSTER
                .replace("{name: default}", "{name: \"file-cert:" + cert + "~" + key + "\"}")
                .replace("{name: ROOTCA}", "{name: \"file-root:" + root + "\"}"), 0);
        source = new FileConfigSource(vertx, d, POLL);
        Future<Void> started = source.start(holder);
        started.await(10, TimeUnit.SECONDS);
        assertTrue(started.succeeded(), () -> String.valueOf(started.cause()));

        // the key is replaced by another certificate's, then a new file adds a route configuration: rejected
        write(key, two.keyPem(), 5);
        write(d.resolve("b.yaml"), """
                name: "9081"
                virtual_hosts:
                - {name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: from-b}}]}
                """, 5);
        await(() -> source.lastError() != null, "the rejection");
        assertTrue(source.lastError().contains("the private key is not the certificate's"), source.lastError());
        assertNull(holder.current().routeTable("9081"));

        // the key fixed, no configuration file touched: the rejected configuration is read again and applies
        write(key, one.keyPem(), 10);
        await(() -> holder.current().routeTable("9081") != null && source.lastError() == null,
                "b.yaml's route, once the key is the certificate's again");
    }

    /** Starts the source on {@code envoy.yaml}, its routes to c1; returns the file. */
    private Path startedOnC1() throws Exception {
        Path f = dir.resolve("envoy.yaml");
        write(f, config("c1", "/admin.*"), 0);
        source = new FileConfigSource(vertx, f, POLL);
        source.start(holder).await(10, TimeUnit.SECONDS);
        return f;
    }

    @Test
    void aBrokenFileKeepsTheLastGoodSnapshotAndNamesTheResourceAndField() throws Exception {
        Path f = startedOnC1();
        MeshSnapshot good = holder.current();

        write(f, config("c2", "a("), 5);
        await(() -> source.lastError() != null, "the reload error");
        String error = source.lastError();
        assertTrue(error.contains("envoy.yaml"), error);
        assertTrue(error.contains("RouteConfiguration \"9080\""), error);
        assertTrue(error.contains("virtual_hosts[0].routes[0].match.safe_regex.regex"), error);
        assertSame(good, holder.current());
        assertEquals("c1", clusterFor(holder.current(), "/productpage"));

        // fixed again: applied
        write(f, config("c3", "/admin.*"), 10);
        await(() -> "c3".equals(clusterFor(holder.current(), "/productpage")) && source.lastError() == null,
                "reload to c3, its error cleared");
    }

    @Test
    void aResourceFailingEnvoysProtoConstraintsFailsTheWholeReloadAsEnvoysFileSubscription() throws Exception {
        Path f = startedOnC1();
        MeshSnapshot good = holder.current();

        // the route to c2, beside a route configuration whose internal redirect copies a header twice: Envoy's API
        // wants unique items there, which Inmesh's own parsing does not look at
        write(f, config("c2", "/admin.*") + """
                - name: "9081"
                  virtual_hosts:
                  - name: all
                    domains: ["*"]
                    routes:
                    - match: {prefix: /}
                      route: {cluster: c2, internal_redirect_policy: {response_headers_to_copy: [x-a, x-a]}}
                """, 5);
        await(() -> source.lastError() != null, "the reload error");
        String error = source.lastError();
        assertTrue(error.contains("RouteConfiguration \"9081\": virtual_hosts[0].routes[0].route"
                + ".internal_redirect_policy.response_headers_to_copy[1]: \"x-a\" (expected: unique items"), error);
        assertSame(good, holder.current());
        assertEquals("c1", clusterFor(holder.current(), "/productpage"));
    }

    @Test
    void aDirectoryIsWatchedFileByFile() throws Exception {
        Path d = Files.createDirectory(dir.resolve("conf"));
        write(d.resolve("a.yaml"), config("c1", "/admin.*"), 0);
        source = new FileConfigSource(vertx, d, POLL);
        source.start(holder).await(10, TimeUnit.SECONDS);
        assertEquals("c1", clusterFor(holder.current(), "/"));
        // a new file adds its resources (a second resource of a name already read would be rejected)
        write(d.resolve("b.yaml"), """
                name: "9081"
                virtual_hosts:
                - {name: all, domains: ["*"], routes: [{match: {prefix: /}, route: {cluster: from-b}}]}
                """, 5);
        await(() -> holder.current().routeTable("9081") != null, "b.yaml's route");
        assertEquals("c1", clusterFor(holder.current(), "/"));
    }

    @Test
    void startFailsWhenTheFirstReadFailsAndNothingIsApplied() throws Exception {
        Path f = dir.resolve("envoy.yaml");
        write(f, config("c1", "a("), 0);
        source = new FileConfigSource(vertx, f, POLL);
        Future<Void> started = source.start(holder);
        await(started::isComplete, "start");
        assertTrue(started.failed());
        assertTrue(started.cause().getMessage().contains("safe_regex.regex"), started.cause().getMessage());
        assertFalse(holder.ready());
    }

    record Get(String path) implements RouteRequest {
        @Override
        public String authority() {
            return "example.com";
        }

        @Override
        public String method() {
            return "GET";
        }

        @Override
        public String scheme() {
            return "http";
        }

        @Override
        public String header(String lowerCaseName) {
            return null;
        }
    }
}
