package dev.inmesh.runtime.tls;

import java.nio.file.Path;
import java.util.Objects;

/**
 * The workload's identity as files in one directory, under the names Istio's agent writes to its
 * {@code OUTPUT_CERTS} directory (and its gRPC-agent bootstrap's file-watcher certificate provider reads):
 * {@code cert-chain.pem} (the workload's certificate chain, its SPIFFE URI SAN first), {@code key.pem} (its private
 * key) and {@code root-cert.pem} (the mesh's root CA). TLS contexts naming Istio's SDS secrets {@code default} (the
 * certificate chain and key) and {@code ROOTCA} (the root CA to verify peers with) read these files, which are
 * watched for rotation as the files of Istio's {@code file-cert:}/{@code file-root:} names are.
 *
 * @param dir the directory
 */
public record WorkloadIdentity(Path dir) {
    /** Istio's SDS name of the workload's certificate chain and key (pkg/security WorkloadKeyCertResourceName). */
    public static final String CERTIFICATE_SECRET = "default";
    /** Istio's SDS name of the mesh's root CA (pkg/security RootCertReqResourceName). */
    public static final String ROOT_SECRET = "ROOTCA";

    public WorkloadIdentity {
        Objects.requireNonNull(dir, "dir");
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
}
