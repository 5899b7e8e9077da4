package dev.inmesh.runtime.tls;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.logging.Logger;

/**
 * The workload's identity as files in one directory, under the names Istio's agent writes to its
 * {@code OUTPUT_CERTS} directory (and its gRPC-agent bootstrap's file-watcher certificate provider reads):
 * {@code cert-chain.pem} (the workload's certificate chain, its SPIFFE URI SAN first), {@code key.pem} (its private
 * key) and {@code root-cert.pem} (the mesh's root CA). TLS contexts naming Istio's SDS secrets {@code default} (the
 * certificate chain and key) and {@code ROOTCA} (the root CA to verify peers with) read these files, which are
 * watched for rotation as the files of Istio's {@code file-cert:}/{@code file-root:} names are.
 *
 * @param dir the directory
 * @param fileWait how long a parse that reads the files waits for them ({@link #waitingForFiles}); none by default
 */
public record WorkloadIdentity(Path dir, FileWait fileWait) {
    private static final Logger LOG = Logger.getLogger(WorkloadIdentity.class.getName());
    /** Istio's SDS name of the workload's certificate chain and key (pkg/security WorkloadKeyCertResourceName). */
    public static final String CERTIFICATE_SECRET = "default";
    /** Istio's SDS name of the mesh's root CA (pkg/security RootCertReqResourceName). */
    public static final String ROOT_SECRET = "ROOTCA";

    public WorkloadIdentity {
        Objects.requireNonNull(dir, "dir");
        Objects.requireNonNull(fileWait, "fileWait");
    }

    /** The identity of a directory, whose files no parse waits for. */
    public WorkloadIdentity(Path dir) {
        this(dir, FileWait.NONE);
    }

    /**
     * This identity, whose files a parse that reads them (a TLS context naming {@code default} or {@code ROOTCA})
     * waits for, until {@code timeout} from now at most, as Envoy's cluster or listener waits for its SDS secret up to
     * its {@code initial_fetch_timeout}: a starting configuration with no such context waits for nothing. Once the
     * files were all there, or the time is up, no parse waits any more.
     */
    public WorkloadIdentity waitingForFiles(Duration timeout) {
        return new WorkloadIdentity(dir, new FileWait(System.nanoTime() + timeout.toNanos(), timeout.isZero()));
    }

    /**
     * The identity a configuration is parsed with: {@code identity} itself when null or when this process writes the
     * files (its own Istio CA client, which has them before any configuration), else one whose parses wait up to
     * {@code waitSeconds} for the files another writes (Istio's agent, maybe started after this process).
     */
    public static WorkloadIdentity forParsing(WorkloadIdentity identity, boolean writtenHere, int waitSeconds) {
        return identity == null || writtenHere ? identity : identity.waitingForFiles(Duration.ofSeconds(waitSeconds));
    }

    /**
     * Called by a parse about to read the files: waits, on the calling thread (never an event loop), for those
     * missing, as {@link #waitingForFiles} says; returns at once for an identity made without a wait.
     */
    public void awaitForParse() {
        fileWait.await(this);
    }

    /** How long parses wait for the files: until a deadline, once. */
    public static final class FileWait {
        static final FileWait NONE = new FileWait(0, true);

        /** The deadline, as {@link System#nanoTime}. */
        private final long deadline;
        /** Whether the files were all there once, or the deadline passed. */
        private volatile boolean over;

        private FileWait(long deadline, boolean over) {
            this.deadline = deadline;
            this.over = over;
        }

        private void await(WorkloadIdentity identity) {
            if (over) {
                return;
            }
            long left = deadline - System.nanoTime();
            try {
                if (left > 0) {
                    identity.await(Duration.ofNanos(left));
                }
                over = true;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt(); // the parse goes on, and rejects what needs a missing file
            }
        }

        @Override
        public String toString() {
            return over ? "no wait" : "waiting until " + deadline;
        }
    }

    /** Whether {@code sdsName} is one of the Istio secrets an identity serves ({@code default}, {@code ROOTCA}). */
    public static boolean servesSecret(String sdsName) {
        return sdsName.equals(CERTIFICATE_SECRET) || sdsName.equals(ROOT_SECRET);
    }

    /** The identity of a directory's path, or null for none (a null or blank path). */
    public static WorkloadIdentity of(String dir) {
        return dir == null || dir.isBlank() ? null : new WorkloadIdentity(Path.of(dir));
    }

    /** {@code cert-chain.pem}: the workload's certificate chain. */
    public Path certificateChain() {
        return dir.resolve("cert-chain.pem");
    }

    /** {@code key.pem}: the workload's private key. */
    public Path privateKey() {
        return dir.resolve("key.pem");
    }

    /** {@code root-cert.pem}: the mesh's root CA. */
    public Path rootCert() {
        return dir.resolve("root-cert.pem");
    }

    /** The identity's three files, in the order Istio's agent names them: chain, key, root. */
    public List<Path> files() {
        return List.of(certificateChain(), privateKey(), rootCert());
    }

    /**
     * What a change of the identity's files shows in: each one's name, modification time and size, or that it cannot
     * be read. Reads the files' attributes (blocking).
     */
    public List<String> fingerprint() {
        List<String> out = new java.util.ArrayList<>();
        for (Path f : files()) {
            try {
                out.add(stamp(f));
            } catch (java.io.IOException e) {
                out.add(f.getFileName() + ": " + e.getClass().getSimpleName());
            }
        }
        return out;
    }

    /**
     * What a change of one file shows in: its name, modification time, size and file key (its inode, where the file
     * system has one), so that a file moved in over it with the same time and size ({@code touch -r old new; mv new
     * f}) is still a change, as Envoy's watch sees every file moved to its path (blocking).
     */
    public static String stamp(Path f) throws java.io.IOException {
        java.nio.file.attribute.BasicFileAttributes a = java.nio.file.Files.readAttributes(f,
                java.nio.file.attribute.BasicFileAttributes.class);
        return f.getFileName() + "@" + a.lastModifiedTime().toInstant() + "/" + a.size() + "/" + a.fileKey();
    }

    /** The files of the identity that are not there yet (missing or empty), in the order of {@link #files}. */
    public List<Path> missing() {
        List<Path> missing = new ArrayList<>();
        for (Path p : files()) {
            try {
                if (!Files.isRegularFile(p) || Files.size(p) == 0) {
                    missing.add(p);
                }
            } catch (IOException e) {
                missing.add(p);
            }
        }
        return missing;
    }

    /**
     * Waits, on the calling thread, until every file of the identity is there, looking every 100 ms for
     * {@code timeout} at most, as Envoy waits for an SDS secret up to its {@code initial_fetch_timeout} before it
     * serves without it; says what it waits for, and warns about the files still missing then (which the
     * configuration read next rejects by name).
     *
     * @return the files still missing (none: all there)
     */
    public List<Path> await(Duration timeout) throws InterruptedException {
        List<Path> missing = missing();
        if (missing.isEmpty()) {
            return missing;
        }
        LOG.info("waiting up to " + timeout.toSeconds() + " s for the workload identity files " + missing
                + " (inmesh.identity.wait-seconds)");
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!missing.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(Math.max(1, Math.min(100, (deadline - System.nanoTime()) / 1_000_000)));
            missing = missing();
        }
        if (!missing.isEmpty()) {
            LOG.warning("the workload identity files " + missing + " are still missing after " + timeout.toSeconds()
                    + " s: the configuration that needs them is rejected until they are there");
        }
        return missing;
    }
}
