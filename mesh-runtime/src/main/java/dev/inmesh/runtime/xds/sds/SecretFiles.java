package dev.inmesh.runtime.xds.sds;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
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
    private final Path dir;

    SecretFiles(Path dir) {
        this.dir = dir;
    }

    /** A secret's directory under {@code root}: its name made a file name, with a hash against collisions. */
    static SecretFiles under(Path root, String name) {
        String safe = name.replaceAll("[^A-Za-z0-9._-]", "_");
        return new SecretFiles(root.resolve(safe + "-" + Integer.toHexString(name.hashCode())));
    }

    /** Writes the PEMs (blocking) and answers the secret they make. */
    SdsSecret write(SecretParser.Pems pems, String version, Instant now) {
        try {
            if (!Files.isDirectory(dir)) {
                Files.createDirectories(dir);
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
        Path aside = dir.resolve("." + file + ".tmp");
        Files.writeString(aside, text, StandardCharsets.UTF_8);
        setOwnerOnly(aside, "rw-------");
        Files.move(aside, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
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
