package dev.inmesh.benchmarks;

import dev.inmesh.api.config.listener.ForwardClientCert;
import dev.inmesh.runtime.router.ForwardedClientCert;
import io.vertx.core.net.SelfSignedCertificate;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * What one {@code x-forwarded-client-cert} element costs to make (a SHA-256 of the client's certificate, its
 * subject; Istio's {@code APPEND_FORWARD} with subject and URI): the in-JVM inbound side makes it once per TLS
 * session, the standalone proxy once per connection, rather than once per request.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class ForwardedClientCertBenchmark {
    private Certificate[] peer;
    private Certificate[] local;
    private final ForwardClientCert istio = new ForwardClientCert(ForwardClientCert.Mode.APPEND_FORWARD, false, false,
            true, true, false);

    @Setup
    public void setUp() throws Exception {
        peer = read(SelfSignedCertificate.create("productpage.mesh.invalid"));
        local = read(SelfSignedCertificate.create("reviews.mesh.invalid"));
    }

    private static Certificate[] read(SelfSignedCertificate self) throws Exception {
        try (InputStream in = Files.newInputStream(Path.of(self.certificatePath()))) {
            return new Certificate[] {CertificateFactory.getInstance("X.509").generateCertificate(in)};
        }
    }

    @Benchmark
    public String element() {
        return ForwardedClientCert.element(istio, peer, local);
    }
}
