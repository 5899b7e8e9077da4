package dev.inmesh.runtime.xds.sds;

import dev.inmesh.runtime.identity.IstioCaClient;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;

/**
 * The files one secret's PEMs are kept in, in a directory of its own readable by this user only: {@code key.pem}
 * and {@code cert-chain.pem} for a certificate, {@code root-cert.pem} for a validation context, the names Istio's
 * agent gives them. Each file is replaced whole (written aside, then moved), the key before its certificate, as
 * Istio's agent rotates its files: the TLS contexts read and watch them as they do the files of Istio's file SDS
 * names, which takes the pair once both are new.
 */
final class SecretFiles {
    private final Root root;
    private final Path dir;

    private SecretFiles(Root root, Path dir) {
        this.root = root;
        this.dir = dir;
    }

    /** A secret's directory under {@code root}: its name made a file name, with a hash against collisions. */
    static SecretFiles under(Root root, String name) {
        String safe = name.replaceAll("[^A-Za-z0-9._-]", "_");
        return new SecretFiles(root, root.path.resolve(safe + "-" + Integer.toHexString(name.hashCode())));
    }

    /**
     * The directory the secrets' files are kept under, and its deletion: a write holds its lock and makes only its
     * own secret's directory, never this one, so that a write still running on a worker thread when the manager
     * closes either finishes before the deletion or finds the root closed, and no key is left on disk.
     */
    static final class Root {
        final Path path;
        private boolean closed;

        Root(Path path) {
            this.path = path;
        }

        /** Deletes the directory and what is in it (blocking); a write after this fails. */
        synchronized void delete() {
            closed = true;
            try (var walk = Files.walk(path)) {
                walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            } catch (IOException e) {
                // a temporary directory: left for the system to clean
            }
        }
    }

    /** Writes the PEMs (blocking) and answers the secret they make; fails once the root is deleted. */
    SdsSecret write(SecretParser.Pems pems, String version, Instant now) {
        synchronized (root) {
            if (root.closed) {
                throw new IllegalStateException("secret " + pems.name() + ": the SDS client is closed");
            }
            return writeOpen(pems, version, now);
        }
    }

    private SdsSecret writeOpen(SecretParser.Pems pems, String version, Instant now) {
        try {
            if (!Files.isDirectory(dir)) {
                Files.createDirectory(dir); // its own only: the root, gone, is not made again
                setOwnerOnly(dir, "rwx------");
            }
            if (pems.ca() != null) {
                Path ca = replace("root-cert.pem", pems.ca());
                return new SdsSecret(pems.name(), version, now, null, null, ca, pems.secret());
            }
            Path key = replace("key.pem", pems.key());
            Path chain = replace("cert-chain.pem", pems.chain());
            return new SdsSecret(pems.name(), version, now, chain, key, null, pems.secret());
        } catch (IOException e) {
            throw new UncheckedIOException("secret " + pems.name() + ": cannot write its files in " + dir, e);
        }
    }

    private Path replace(String file, String text) throws IOException {
        Path target = dir.resolve(file);
        IstioCaClient.writeAtomically(target, text, "rw-------");
        return target;
    }

    private static void setOwnerOnly(Path p, String perms) throws IOException {
        try {
            Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(perms));
        } catch (UnsupportedOperationException e) {
            // not a POSIX file system: its default permissions
        }
    }
}
