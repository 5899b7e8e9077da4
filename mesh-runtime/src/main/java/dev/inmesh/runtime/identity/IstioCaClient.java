package dev.inmesh.runtime.identity;

import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.common.GrpcMessageDecoder;
import io.vertx.grpc.common.GrpcMessageEncoder;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.common.ServiceMethod;
import io.vertx.grpc.common.ServiceName;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Keeps a workload identity directory filled from Istio's CA, as Istio's agent fills its {@code OUTPUT_CERTS}
 * directory: a new key (RSA 2048 or ECDSA P-256) and a CSR for {@code spiffe://TRUST_DOMAIN/ns/NS/sa/SA}, sent to
 * istiod's {@code IstioCertificateService/CreateCertificate} with the service account token as
 * {@code authorization: Bearer} and the {@code ClusterID} header; the answer's chain (leaf first, root last) is written
 * whole to {@code cert-chain.pem}, its last certificate to {@code root-cert.pem}, the key to {@code key.pem} (mode
 * 0600; the certificates 0644), each to a temporary file in the directory renamed over the old one, the key first,
 * then the chain, then the root, as Istio's agent writes them: a reader that reloads when {@code cert-chain.pem}
 * changes finds the key that goes with it.
 *
 * <p>The certificate is renewed when half its lifetime (from its arrival to its {@code notAfter}) is left, give or
 * take 1 % of it at random, as Istio's agent does with its default grace period ratio 0.5 and jitter 0.01. A failed
 * renewal is tried again after a delay that doubles from {@link IstioCaOptions#retryBase()} up to
 * {@link IstioCaOptions#retryMax()}, the files of the last certificate staying as they are. {@link #start()} completes
 * once the first certificate is written, and fails when the CA refuses it, or after five tries in all when the CA
 * cannot be reached or fails for a passing reason (gRPC's UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,
 * INTERNAL, CANCELLED), as Istio's CA client tries a request that fails so five times.
 *
 * <p>Runs on a Vert.x context; the key, the signature and the files are made off the event loop.
 */
public final class IstioCaClient {
    private static final Logger LOG = Logger.getLogger(IstioCaClient.class.getName());
    static final ServiceMethod<Buffer, Buffer> CREATE_CERTIFICATE = ServiceMethod.client(
            ServiceName.create("istio.v1.auth", "IstioCertificateService"), "CreateCertificate",
            GrpcMessageEncoder.IDENTITY, GrpcMessageDecoder.IDENTITY);
    static final double GRACE_PERIOD_RATIO = 0.5;
    static final double GRACE_PERIOD_RATIO_JITTER = 0.01;
    /** Tries for the first certificate, as Istio's CA client makes five in all of a request that fails passingly. */
    static final int START_TRIES = 5;
    /** How long one request may take, connecting included (Istio's agent allows 10 s to get a credential). */
    static final Duration CALL_TIMEOUT = Duration.ofSeconds(10);
    private static final Set<GrpcStatus> PASSING = EnumSet.of(GrpcStatus.UNAVAILABLE, GrpcStatus.DEADLINE_EXCEEDED,
            GrpcStatus.RESOURCE_EXHAUSTED, GrpcStatus.ABORTED, GrpcStatus.INTERNAL, GrpcStatus.CANCELLED);

    private final Vertx vertx;
    private final Context context;
    private final IstioCaOptions options;
    private final GrpcClient client;
    private final Random random = new Random();
    private volatile boolean closed;
    private long timer = -1;
    /** The start's promise while {@link #timer} waits to try for the first certificate again, else null. */
    private Promise<Void> waitingFirst;
    /** The renewal under way, or the last one. */
    private Future<Issued> renewal = Future.succeededFuture();

    /** A certificate written: when it arrived and when it expires. */
    record Issued(Instant created, Instant notAfter) {}

    /** The CA's answer was not OK. */
    static final class CaStatusException extends RuntimeException {
        final GrpcStatus status;

        CaStatusException(GrpcStatus status, String message) {
            super("CreateCertificate: " + status.name() + (message == null || message.isEmpty() ? "" : ": " + message));
            this.status = status;
        }
    }

    public IstioCaClient(Vertx vertx, IstioCaOptions options) {
        this.vertx = vertx;
        this.context = vertx.getOrCreateContext();
        this.options = options;
        this.client = GrpcClient.client(vertx, options.ca().httpOptions(CALL_TIMEOUT));
    }

    /** Gets the first certificate and writes it; then keeps it renewed until {@link #close()}. */
    public Future<Void> start() {
        Promise<Void> first = Promise.promise();
        context.runOnContext(v -> attempt(0, first));
        return first.future();
    }

    /**
     * Stops renewing; completes once a renewal under way has ended (its files written whole, or none), so the files
     * do not change after. They stay. A start still trying for the first certificate fails.
     */
    public Future<Void> close() {
        closed = true;
        Promise<Void> quiet = Promise.promise();
        context.runOnContext(v -> {
            if (timer >= 0) {
                vertx.cancelTimer(timer);
                timer = -1;
            }
            if (waitingFirst != null) {
                waitingFirst.tryFail("closed before the first workload certificate was written");
                waitingFirst = null;
            }
            renewal.onComplete(ar -> quiet.complete());
        });
        return quiet.future().compose(v -> client.close());
    }

    /** One try; {@code first} is the start's promise until the first certificate is written, then null. */
    private void attempt(int failures, Promise<Void> first) {
        timer = -1;
        waitingFirst = null;
        if (closed) {
            if (first != null) {
                first.tryFail("closed before the first workload certificate was written");
            }
            return;
        }
        renewal = renew();
        renewal.onComplete(ar -> {
            if (ar.succeeded() && closed) {
                // closed while the CA answered: its certificate was not written
                if (first != null) {
                    first.tryFail("closed before the first workload certificate was written");
                }
                return;
            }
            if (ar.succeeded()) {
                Issued issued = ar.result();
                long delay = Math.max(options.retryBase().toMillis(),
                        rotationDelayMillis(issued, Instant.now(), random.nextDouble(), random.nextBoolean()));
                LOG.info(() -> "workload certificate for " + options.spiffeId() + " written to " + options.dir()
                        + ", valid until " + issued.notAfter() + "; renewed in " + Duration.ofMillis(delay));
                if (first != null) {
                    first.complete();
                }
                schedule(delay, 0, null);
                return;
            }
            Throwable e = ar.cause();
            String why = "cannot get the workload certificate for " + options.spiffeId() + " from Istio's CA "
                    + options.ca().address() + ": " + AdsOptions.XdsServer.describe(e);
            if (first != null && (failures + 1 >= START_TRIES || !passing(e))) {
                first.tryFail(new IllegalStateException(why, e));
                return;
            }
            long delay = retryDelayMillis(failures);
            LOG.warning(() -> why + "; trying again in " + delay + " ms" + (first == null
                    ? ", the files of the last certificate staying" : ""));
            schedule(delay, failures + 1, first);
        });
    }

    private void schedule(long delayMillis, int failures, Promise<Void> first) {
        if (!closed) {
            timer = vertx.setTimer(Math.max(1, delayMillis), t -> attempt(failures, first));
            waitingFirst = first;
        } else if (first != null) {
            first.tryFail("closed before the first workload certificate was written");
        }
    }

    private Future<Issued> renew() {
        return context.executeBlocking(() -> WorkloadCsr.create(options.keyType(), options.spiffeId()), false)
                .compose(csr -> options.ca().token(vertx).compose(token -> call(csr, token))
                        .compose(chain -> context.executeBlocking(() -> write(csr, chain), false)));
    }

    private Future<List<String>> call(WorkloadCsr csr, String token) {
        AdsOptions.XdsServer ca = options.ca();
        return client.request(SocketAddress.inetSocketAddress(ca.port(), ca.host()), CREATE_CERTIFICATE)
                .compose(req -> {
                    if (token != null) {
                        req.headers().set("authorization", "Bearer " + token);
                    }
                    req.headers().set("clusterid", options.clusterId());
                    req.timeout(CALL_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
                    return req.send(IstioCaMessages.request(csr.csrPem(), options.certTtl().getSeconds()));
                })
                .compose(resp -> resp.last().transform(ar -> {
                    GrpcStatus status = resp.status();
                    if (status != null && status != GrpcStatus.OK) {
                        return Future.failedFuture(new CaStatusException(status, resp.statusMessage()));
                    }
                    return ar.failed() ? Future.failedFuture(ar.cause()) : Future.succeededFuture(ar.result());
                }))
                .timeout(CALL_TIMEOUT.toMillis() + 1000, TimeUnit.MILLISECONDS)
                .compose(answer -> {
                    try {
                        return Future.succeededFuture(IstioCaMessages.certChain(answer));
                    } catch (IOException e) {
                        return Future.failedFuture(new IllegalStateException("CreateCertificate answered a message "
                                + "that is not an IstioCertificateResponse: " + e.getMessage(), e));
                    }
                });
    }

    /** Checks the chain and writes the three files; blocking. */
    private Issued write(WorkloadCsr csr, List<String> chain) throws Exception {
        checkChain(chain);
        X509Certificate leaf = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(
                new ByteArrayInputStream(chain.get(0).getBytes(StandardCharsets.US_ASCII)));
        if (!leaf.getPublicKey().equals(csr.key().getPublic())) {
            throw new IllegalStateException("CreateCertificate answered a certificate for another key than the "
                    + "request's (subject " + leaf.getSubjectX500Principal() + ")");
        }
        Instant created = Instant.now();
        if (closed) {
            return new Issued(created, leaf.getNotAfter().toInstant());
        }
        StringBuilder pem = new StringBuilder();
        for (String c : chain) {
            pem.append(c);
            if (!c.endsWith("\n")) {
                pem.append('\n');
            }
        }
        String root = chain.get(chain.size() - 1);
        Files.createDirectories(options.dir());
        // the key first, then the chain, then the root, in Istio's order
        WorkloadIdentity files = new WorkloadIdentity(options.dir());
        writeAtomically(files.privateKey(), csr.keyPem(), "rw-------");
        writeAtomically(files.certificateChain(), pem.toString(), "rw-r--r--");
        writeAtomically(files.rootCert(), root.endsWith("\n") ? root : root + "\n", "rw-r--r--");
        return new Issued(created, leaf.getNotAfter().toInstant());
    }

    /** Refuses a chain of fewer than two certificates, as Istio's CA client: the root is the last. */
    static void checkChain(List<String> chain) {
        if (chain.size() < 2) {
            throw new IllegalStateException("CreateCertificate answered " + chain.size() + " certificate(s) "
                    + "(expected: the chain from the workload's certificate to the root, at least two)");
        }
    }

    /**
     * Writes {@code text} to a new file in {@code target}'s directory, with POSIX permissions {@code mode} where the
     * file system has them, then renames it over {@code target}: a reader sees the old file or the new one, whole.
     */
    public static void writeAtomically(Path target, String text, String mode) throws IOException {
        Path tmp = Files.createTempFile(target.getParent(), "." + target.getFileName() + ".", ".tmp");
        try {
            if (tmp.getFileSystem().supportedFileAttributeViews().contains("posix")) {
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString(mode));
            }
            Files.writeString(tmp, text, StandardCharsets.UTF_8);
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * How long until a renewal, as Istio's agent computes it: the grace period is the ratio 0.5, plus or minus up to
     * 0.01 ({@code random} in [0, 1) scales it, {@code up} picks the sign), of the lifetime from the certificate's
     * arrival to its {@code notAfter}; the renewal is due that long before {@code notAfter}, at once if that is past.
     */
    static long rotationDelayMillis(Issued issued, Instant now, double random, boolean up) {
        double ratio = GRACE_PERIOD_RATIO + (up ? 1 : -1) * random * GRACE_PERIOD_RATIO_JITTER;
        ratio = Math.min(1, Math.max(0, ratio));
        long lifetime = Duration.between(issued.created(), issued.notAfter()).toMillis();
        long grace = (long) (ratio * lifetime);
        return Math.max(0, Duration.between(now, issued.notAfter()).toMillis() - grace);
    }

    /** The delay before try {@code failures + 1}: the base doubled per failure up to the maximum, less 0-10 %. */
    private long retryDelayMillis(int failures) {
        long base = options.retryBase().toMillis();
        long max = options.retryMax().toMillis();
        long delay = failures >= 30 ? max : Math.min(max, base << failures);
        return delay - (long) (delay * 0.1 * random.nextDouble());
    }

    /** Whether {@code e} may pass: the CA not reached, or a status Istio's CA client tries again on. */
    private static boolean passing(Throwable e) {
        if (e instanceof CaStatusException s) {
            return PASSING.contains(s.status);
        }
        return !(e instanceof IllegalStateException);
    }

}
