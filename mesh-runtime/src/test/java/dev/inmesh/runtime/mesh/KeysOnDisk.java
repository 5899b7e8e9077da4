package dev.inmesh.runtime.mesh;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What the temp directory gained since a moment: a test of an SDS client that holds its secrets in memory looks there
 * (where a client writing them would make its directory) for a file holding one of the keys it was sent.
 */
final class KeysOnDisk {
    private static final Path TMP = Path.of(System.getProperty("java.io.tmpdir"));
    private final Set<Path> before;

    private KeysOnDisk(Set<Path> before) {
        this.before = before;
    }

    /** The temp directory's entries now, to look past later. */
    static KeysOnDisk fromNow() throws IOException {
        try (var list = Files.list(TMP)) {
            return new KeysOnDisk(list.collect(Collectors.toSet()));
        }
    }

    /** The regular files under the entries the temp directory gained since that hold one of {@code keys}. */
    List<Path> filesHolding(String... keys) throws IOException {
        List<Path> written = new ArrayList<>();
        try (var list = Files.list(TMP)) {
            for (Path p : list.filter(p -> !before.contains(p)).toList()) {
                try (var walk = Files.walk(p)) {
                    walk.filter(Files::isRegularFile).filter(f -> holdsOneOf(f, keys)).forEach(written::add);
                } catch (IOException | UncheckedIOException e) {
                    // another's, gone or not ours to read
                }
            }
        }
        return written;
    }

    private static boolean holdsOneOf(Path f, String... keys) {
        try {
            String text = Files.readString(f);
            for (String key : keys) {
                if (text.contains(key)) {
                    return true;
                }
            }
            return false;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }
}
