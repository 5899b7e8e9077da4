package dev.inmesh.runtime.xds.sds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The secrets' files and their root's deletion: no key written once the SDS client has closed. */
class SecretFilesTest {
    @TempDir
    Path tmp;

    private static SecretParser.Pems key(String name) {
        return new SecretParser.Pems(name, "CHAIN", "KEY", null, null);
    }

    @Test
    void writesTheKeyAndChainInTheSecretsOwnDirectory() throws Exception {
        var root = new SecretFiles.Root(Files.createDirectory(tmp.resolve("sds")));

        SdsSecret s = SecretFiles.under(root, "default").write(key("default"), "v1", Instant.EPOCH);

        assertEquals("KEY", Files.readString(s.privateKey()));
        assertEquals(root.path, s.privateKey().getParent().getParent());
    }

    @Test
    void aWriteFinishingAfterTheCloseLeavesNothingOnDisk() throws Exception {
        var root = new SecretFiles.Root(Files.createDirectory(tmp.resolve("sds")));
        SecretFiles files = SecretFiles.under(root, "default"); // a stream's, its response being taken
        files.write(key("default"), "v1", Instant.EPOCH);

        root.delete();
        assertThrows(IllegalStateException.class, () -> files.write(key("default"), "v2", Instant.EPOCH));

        assertFalse(Files.exists(root.path), "the root is not made again");
    }

    @Test
    void aSecretsDirectoryIsNeverMadeWithItsRoot() throws Exception {
        // a root gone by other means (the system's clean-up): a write fails rather than making it again
        var root = new SecretFiles.Root(tmp.resolve("gone"));

        assertThrows(java.io.UncheckedIOException.class,
                () -> SecretFiles.under(root, "default").write(key("default"), "v1", Instant.EPOCH));

        assertFalse(Files.exists(root.path));
    }
}
