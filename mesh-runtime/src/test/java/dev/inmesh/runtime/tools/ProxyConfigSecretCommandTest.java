package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.runtime.admin.ConfigDumpBuilder;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.TestCertificates;
import dev.inmesh.runtime.upstream.TestCertificates.Issued;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.Parsers;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code proxy-config secret}: istioctl's table of a dump's {@code SecretsConfigDump} (RESOURCE NAME, TYPE, STATUS,
 * VALID CERT, SERIAL NUMBER in hex, NOT AFTER and NOT BEFORE in RFC 3339), as istioctl's testdata
 * {@code secret/istio/output} shows a sidecar's {@code default} and {@code ROOTCA}.
 */
class ProxyConfigSecretCommandTest {
    private static final DateTimeFormatter RFC_3339 = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss'Z'")
            .withZone(ZoneOffset.UTC);

    @TempDir
    Path dir;
    private final ProxyConfigRun pc = new ProxyConfigRun();
    private Issued ca;
    private Issued own;
    private Path dump;

    /** The dump Inmesh's admin writes of an ISTIO_MUTUAL cluster with a workload identity directory. */
    @BeforeEach
    void dump() throws Exception {
        ca = TestCertificates.ca("cluster.local");
        own = TestCertificates.issue(ca, "productpage", List.of(),
                List.of("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"));
        Path identityDir = TestCertificates.identityDirectory(dir, own, ca);
        WorkloadIdentity identity = new WorkloadIdentity(identityDir);
        var bundle = Parsers.withIdentity(identity,
                () -> EnvoyConfigReader.read(TestCertificates.ISTIO_MUTUAL_CLUSTER));
        dump = Files.writeString(dir.resolve("config_dump.json"), ConfigDumpBuilder.json(bundle, DynamicState.NONE,
                identity, "sidecar~10.244.0.15~productpage-v1.default~default.svc.cluster.local", Instant.EPOCH,
                ConfigDumpBuilder.Query.ALL));
        // the dump's ISTIO_MUTUAL cluster reads for proxy-config all as its proxy read it
        System.setProperty("inmesh.identity.dir", identityDir.toString());
    }

    @AfterEach
    void clearSetting() {
        System.clearProperty("inmesh.identity.dir");
    }

    private static X509Certificate x509(Issued i) throws Exception {
        return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(
                new ByteArrayInputStream(i.certificatePem().getBytes(StandardCharsets.US_ASCII)));
    }

    /** The table row columns after TYPE and STATUS, as istioctl pads them for these two short serial numbers. */
    private static String described(X509Certificate c) {
        return "true           " + String.format("%-18s", c.getSerialNumber().toString(16))
                + String.format("%-25s", RFC_3339.format(c.getNotAfter().toInstant()))
                + RFC_3339.format(c.getNotBefore().toInstant()) + "\n";
    }

    private String table() throws Exception {
        return "RESOURCE NAME     TYPE           STATUS     VALID CERT     SERIAL NUMBER     NOT AFTER"
                + "                NOT BEFORE\n"
                + "default           Cert Chain     ACTIVE     " + described(x509(own))
                + "ROOTCA            CA             ACTIVE     " + described(x509(ca));
    }

    @Test
    void printsIstioctlsTableOfTheWorkloadCertificateAndTheRoot() throws Exception {
        assertEquals(0, pc.run("secret", "-f", dump.toString()), pc.err());
        assertEquals(table(), pc.out());
    }

    @Test
    void fromAnAdminServerItReadsTheDumpOfItsSecrets() throws Exception {
        io.vertx.core.Vertx vertx = io.vertx.core.Vertx.vertx();
        try {
            WorkloadIdentity identity = new WorkloadIdentity(Path.of(System.getProperty("inmesh.identity.dir")));
            var holder = new dev.inmesh.runtime.snapshot.SnapshotHolder();
            holder.apply(Parsers.withIdentity(identity,
                    () -> EnvoyConfigReader.read(TestCertificates.ISTIO_MUTUAL_CLUSTER)));
            var admin = dev.inmesh.runtime.admin.AdminServer.builder(vertx).snapshots(holder).identity(identity)
                    .mount(dev.inmesh.runtime.admin.AdminServer.Mount.of("127.0.0.1", 0,
                            dev.inmesh.runtime.admin.AdminServer.Endpoint.CONFIG_DUMP))
                    .build();
            admin.start().await(10, java.util.concurrent.TimeUnit.SECONDS);
            try {
                assertEquals(0, pc.run("secret", "--admin", "127.0.0.1:" + admin.port(0)), pc.err());
                assertEquals(table(), pc.out());
            } finally {
                admin.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
            }
        } finally {
            vertx.close().await(10, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    @Test
    void allHasTheSecretTableInItsSecretSectionEachRowNamedSecretSlash() throws Exception {
        // as istioctl's all (its testdata config_dump_summary.txt: "secret/default     Cert Chain ..."): the names
        // take the secret/ prefix, the column widening to fit them
        assertEquals(0, pc.run("all", "-f", dump.toString()), pc.err());
        String named = "RESOURCE NAME      TYPE           STATUS     VALID CERT     SERIAL NUMBER     NOT AFTER"
                + "                NOT BEFORE\n"
                + "secret/default     Cert Chain     ACTIVE     " + described(x509(own))
                + "secret/ROOTCA      CA             ACTIVE     " + described(x509(ca));
        assertTrue(pc.out().contains("\n\n" + named + "\nNAME "), pc.out());
    }

    @Test
    void jsonIsTheSecretsDumpInIstioctlsNamesWithTheKeyRedacted() throws Exception {
        assertEquals(0, pc.run("secret", "-f", dump.toString(), "-o", "json"), pc.err());
        JsonNode json = EnvoyJson.tree(pc.out());
        assertEquals(List.of("dynamicActiveSecrets"), List.copyOf(iterable(json.fieldNames())),
                "the SecretsConfigDump itself, no @type");
        JsonNode secret = json.get("dynamicActiveSecrets").get(0).get("secret");
        assertEquals("default", secret.get("name").asText());
        assertEquals("W3JlZGFjdGVkXQ==", secret.at("/tlsCertificate/privateKey/inlineBytes").asText());
        assertTrue(pc.out().startsWith("{\n    \"dynamicActiveSecrets\": [\n        {\n            \"name\": "
                + "\"default\""), "indented as istioctl's: " + pc.out());
    }

    private static <T> List<T> iterable(java.util.Iterator<T> it) {
        List<T> out = new java.util.ArrayList<>();
        it.forEachRemaining(out::add);
        return out;
    }

    @Test
    void aWarmingSecretComesFirstAndOneWithoutACertificateIsNotValid() throws Exception {
        Path envoys = Files.writeString(dir.resolve("envoy.json"), """
                {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
                  "dynamic_active_secrets": [{"name": "default", "secret": {
                    "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                    "name": "default",
                    "tls_certificate": {"certificate_chain": {"inline_bytes": "W3JlZGFjdGVkXQ=="}}}}],
                  "dynamic_warming_secrets": [{"name": "configmap://some/thing", "version_info": "uninitialized",
                    "secret": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                      "name": "configmap://some/thing"}}]}]}
                """);
        assertEquals(0, pc.run("secret", "-f", envoys.toString()), pc.err());
        String empty = " ".repeat(18 + 14); // SERIAL NUMBER's and NOT AFTER's columns, then an empty NOT BEFORE
        assertEquals("RESOURCE NAME              TYPE     STATUS      VALID CERT     SERIAL NUMBER     NOT AFTER     "
                + "NOT BEFORE\n"
                + "configmap://some/thing              WARMING     false          " + empty + "\n"
                + "default                             ACTIVE      false          " + empty + "\n", pc.out());
    }

    @Test
    void aDumpWithoutSecretsSaysSoAsIstioctl() throws Exception {
        Path none = Files.writeString(dir.resolve("none.json"), ConfigDumpBuilder.json(
                dev.inmesh.runtime.xds.ResourceBundle.EMPTY, "n", Instant.EPOCH));
        assertEquals(0, pc.run("secret", "-f", none.toString()), pc.err());
        assertEquals("No active or warming secrets found.\n", pc.out());
    }
}
