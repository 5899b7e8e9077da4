package dev.inmesh.runtime.tls;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.runtime.upstream.TestCertificates;
import java.io.IOException;
import java.lang.ref.Reference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The watcher of a certificate and key file, looked at by the test as a poll looks (no polling thread): a rotation
 * that writes the key, then its certificate, is taken whole without a warning for the look in between, while a key
 * that stays unusable is warned about.
 */
class SdsFileWatcherTest {
    private static final TestCertificates.Issued CA = TestCertificates.ca("watch-ca");
    private static final TestCertificates.Issued OLD = TestCertificates.issue(CA, "old", List.of("old"), List.of());
    private static final TestCertificates.Issued NEW = TestCertificates.issue(CA, "new", List.of("new"), List.of());
    private static final Logger LOG = Logger.getLogger(SdsFileWatcher.class.getName());

    @TempDir
    Path dir;
    Path cert;
    Path key;
    /** Each file's modification time, a second later at each write: a look sees every write. */
    long modified = System.currentTimeMillis() - 60_000;
    final List<LogRecord> logged = new ArrayList<>();
    /** The test's thread: the looks run here, while the shared poller of other tests' watches may log beside them. */
    final Thread looking = Thread.currentThread();
    final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord r) {
            if (Thread.currentThread() == looking) {
                logged.add(r);
            }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };
    Level level;
    /** The pairs the target was rebuilt with. */
    final List<String> taken = new ArrayList<>();

    @BeforeEach
    void files() throws IOException {
        cert = write("cert-chain.pem", OLD.certificatePem());
        key = write("key.pem", OLD.keyPem());
        level = LOG.getLevel();
        LOG.setLevel(Level.ALL);
        LOG.addHandler(handler);
    }

    @AfterEach
    void logger() {
        LOG.removeHandler(handler);
        LOG.setLevel(level);
    }

    private Path write(String name, String text) throws IOException {
        Path p = Files.writeString(dir.resolve(name), text);
        modified += 1000;
        Files.setLastModifiedTime(p, FileTime.fromMillis(modified));
        return p;
    }

    /** A watch of the pair for a target that takes a pair as a TLS context does: the key must be the certificate's. */
    private SdsFileWatcher.Watch<Object> watch(Object target) {
        return new SdsFileWatcher.Watch<>(target, "cluster c",
                Map.of(cert.toString(), OLD.certificatePem(), key.toString(), OLD.keyPem()), Map.of(), (t, texts) -> {
                    TlsMaterial.keyManagers(texts.get(cert.toString()), texts.get(key.toString()));
                    taken.add(texts.get(cert.toString()));
                });
    }

    private List<LogRecord> logged(Level l) {
        return logged.stream().filter(r -> r.getLevel().equals(l)).toList();
    }

    /**
     * A pair moved in over the files with the same sizes and modification times (as {@code touch -r old new; mv new
     * old} makes them) is new files (new inodes): taken, as a file moved to a watched path is a change.
     */
    @Test
    void aPairMovedInWithTheSameSizesAndModificationTimesIsTaken() throws Exception {
        int certLength = Math.max(OLD.certificatePem().length(), NEW.certificatePem().length());
        int keyLength = Math.max(OLD.keyPem().length(), NEW.keyPem().length());
        String oldCert = OLD.certificatePem() + "\n".repeat(certLength - OLD.certificatePem().length());
        String oldKey = OLD.keyPem() + "\n".repeat(keyLength - OLD.keyPem().length());
        String newCert = NEW.certificatePem() + "\n".repeat(certLength - NEW.certificatePem().length());
        String newKey = NEW.keyPem() + "\n".repeat(keyLength - NEW.keyPem().length());
        FileTime time = FileTime.fromMillis(modified);
        Files.setLastModifiedTime(Files.writeString(cert, oldCert), time);
        Files.setLastModifiedTime(Files.writeString(key, oldKey), time);
        Object target = new Object();
        var w = new SdsFileWatcher.Watch<>(target, "cluster c",
                Map.of(cert.toString(), oldCert, key.toString(), oldKey), Map.of(), (t, texts) -> {
                    TlsMaterial.keyManagers(texts.get(cert.toString()), texts.get(key.toString()));
                    taken.add(texts.get(cert.toString()));
                });
        assertTrue(w.check());
        for (var moved : Map.of(key, newKey, cert, newCert).entrySet()) {
            Path tmp = Files.writeString(dir.resolve("moved.tmp"), moved.getValue());
            Files.setLastModifiedTime(tmp, time);
            Files.move(tmp, moved.getKey(), java.nio.file.StandardCopyOption.ATOMIC_MOVE,
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        assertTrue(w.check());
        assertEquals(List.of(newCert), taken);
        Reference.reachabilityFence(target);
    }

    @Test
    void aKeyWrittenBeforeItsCertificateIsNoWarningWhenTheNextLookFindsTheCertificate() throws Exception {
        Object target = new Object();
        var w = watch(target);
        assertTrue(w.check()); // the first look reads the files, as they were compiled
        write("key.pem", NEW.keyPem());
        assertTrue(w.check()); // between the two writes: the new key is not the old certificate's
        write("cert-chain.pem", NEW.certificatePem());
        assertTrue(w.check());
        assertEquals(List.of(NEW.certificatePem()), taken);
        assertEquals(List.of(), logged(Level.WARNING));
        assertEquals(1, logged(Level.FINE).size());
        assertTrue(logged(Level.FINE).get(0).getMessage().contains("\"" + key + "\" is not usable"));
        Reference.reachabilityFence(target); // held weakly by the watch
    }

    @Test
    void aKeyThatStaysUnusableIsWarnedAboutAtTheNextLookOnce() throws Exception {
        Object target = new Object();
        var w = watch(target);
        assertTrue(w.check());
        write("key.pem", NEW.keyPem());
        assertTrue(w.check());
        assertEquals(List.of(), logged(Level.WARNING));
        assertTrue(w.check()); // unchanged a look later: no rotation under way
        assertTrue(w.check());
        assertEquals(1, logged(Level.WARNING).size());
        String warning = logged(Level.WARNING).get(0).getMessage();
        assertTrue(warning.startsWith("cluster c: the changed TLS file \"" + key + "\" is not usable (")
                && warning.contains("the private key is not the certificate's")
                && warning.endsWith("it keeps its last good certificates"), warning);
        assertEquals(List.of(), taken);

        // a key that still does not match, written again: warned about at the look that finds it
        write("key.pem", TestCertificates.issue(CA, "other", List.of(), List.of()).keyPem());
        assertTrue(w.check());
        assertEquals(1, logged(Level.WARNING).size());
        write("cert-chain.pem", "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
        assertTrue(w.check()); // not usable twice in a row: the first is warned about now
        assertEquals(2, logged(Level.WARNING).size());
        Reference.reachabilityFence(target);
    }
}
