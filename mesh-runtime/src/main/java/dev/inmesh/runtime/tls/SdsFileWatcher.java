package dev.inmesh.runtime.tls;

import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.api.config.core.SdsSecretSource;
import java.io.IOException;
import java.lang.ref.WeakReference;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Watches the files of Istio's file SDS names ({@code file-cert:CERT~KEY}, {@code file-root:CA}, and the workload
 * identity directory's for {@code default} and {@code ROOTCA}) that compiled TLS contexts use, as Istio's agent
 * watches them and serves a changed file to Envoy again: every second, on a thread of
 * its own (never an event loop), it compares each file's modification time and size with what it saw; a file that
 * changed is read, and when its text differs from what the context was compiled with, the context's owner rebuilds
 * it with the new texts. A rebuild that fails (a file unreadable, or not a usable PEM) keeps the last good material;
 * the file is tried again when it changes again. A file that cannot be read is warned about at once; material that
 * is not usable is logged at FINE, and warned about (naming the file and the owner) only when the next look finds
 * it unchanged or not usable again: a rotation that writes the key and then its certificate is between the two for
 * up to one look, which takes the pair once both are new.
 *
 * <p>A context's PEMs that came from a secret fetched over SDS (its own gRPC stream or the ADS stream) have no file:
 * they are in the memory of the SDS client, which holds the secret's newest version and pushes it to the watch on
 * its arrival ({@link SdsSecretSource#addListener}), before it ACKs it: the context is rebuilt then, on the thread
 * that took the secret, as Envoy's TLS contexts take an SDS secret update, so the next handshake uses it. The looks
 * every second read them too.
 *
 * <p>The watcher holds its targets weakly: a context no snapshot uses any more is dropped with it.
 */
public final class SdsFileWatcher {
    private static final Logger LOG = Logger.getLogger(SdsFileWatcher.class.getName());
    /** How often files are looked at, in milliseconds. */
    private static final long POLL_MILLIS = 1000;
    private static final List<Watch<?>> WATCHES = new CopyOnWriteArrayList<>();
    private static ScheduledExecutorService poller;

    private SdsFileWatcher() {}

    /**
     * Watches {@code files} (each file's path and the text the target was compiled with) for {@code target}, named
     * {@code owner} in warnings ("listener 0.0.0.0_8443"). When one changes, {@code rebuild} is called, off the event
     * loop, with the target and the texts of all its files; it throws {@link IllegalArgumentException} to keep the
     * old material. {@code rebuild} must not capture the target, which is held weakly.
     */
    public static <T> Watch<T> watch(T target, String owner, Map<String, String> files,
                                     BiConsumer<T, Map<String, String>> rebuild) {
        return watch(target, owner, files, Map.of(), rebuild);
    }

    /**
     * Watches the SDS sources of a context whose certificate chain, key and CAs are {@code chain}, {@code key} and
     * {@code ca}: the files of {@code sds}, and its secrets fetched over SDS, in memory.
     */
    public static <T> Watch<T> watch(T target, String owner, SdsFiles sds, String chain, String key, String ca,
                                     BiConsumer<T, Map<String, String>> rebuild) {
        Watch<T> w = watch(target, owner, TlsMaterial.sdsTexts(sds, chain, key, ca),
                TlsMaterial.sdsSecretReaders(sds), rebuild);
        if (w.listening()) {
            for (SdsSecretSource s : new java.util.LinkedHashSet<>(java.util.Arrays.asList(sds.certificateSecret(),
                    sds.validationSecret()))) {
                if (s != null) {
                    w.listenTo(s);
                }
            }
        }
        return w;
    }

    /**
     * The same, where the keys of {@code inMemory} among those of {@code files} are not files: each is read with its
     * supplier (the PEM an SDS secret holds now).
     */
    static <T> Watch<T> watch(T target, String owner, Map<String, String> files,
                              Map<String, Supplier<String>> inMemory, BiConsumer<T, Map<String, String>> rebuild) {
        Watch<T> w = new Watch<>(target, owner, files, inMemory, rebuild);
        if (!files.isEmpty()) {
            WATCHES.add(w);
            startPolling();
        }
        return w;
    }

    private static synchronized void startPolling() {
        if (poller == null) {
            poller = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "inmesh-sds-files");
                t.setDaemon(true);
                return t;
            });
            poller.scheduleWithFixedDelay(SdsFileWatcher::poll, POLL_MILLIS, POLL_MILLIS, TimeUnit.MILLISECONDS);
        }
    }

    private static void poll() {
        Map<String, Stamp> stamps = new HashMap<>();
        for (Watch<?> w : WATCHES) {
            try {
                if (!w.check(stamps)) {
                    w.cancel();
                }
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, w.owner + ": checking its TLS files failed", e);
            }
        }
    }

    /**
     * A file's modification time, size and file key (its inode, where the file system has one: a file moved in with
     * the same time and size is another), or null when it cannot be looked at.
     */
    private record Stamp(long modified, long size, Object key) {
        static Stamp of(String file) {
            try {
                BasicFileAttributes a = Files.readAttributes(Path.of(file), BasicFileAttributes.class);
                return new Stamp(a.lastModifiedTime().toMillis(), a.size(), a.fileKey());
            } catch (IOException | RuntimeException e) {
                return null;
            }
        }
    }

    /** The watch of one target's files; {@link #cancel()} ends it. */
    public static final class Watch<T> {
        private final WeakReference<T> target;
        private final String owner;
        private final BiConsumer<T, Map<String, String>> rebuild;
        /** The texts the target's material was last made of. */
        private Map<String, String> texts;
        /**
         * The texts last read, usable or not: a certificate and its key rotated one after the other are taken
         * together once both are new.
         */
        private Map<String, String> latest;
        /** The keys of the PEMs held in memory, not files, and how each is read. */
        private final Map<String, Supplier<String>> inMemory;
        /**
         * What each file looked like when last read (a PEM in memory: its text); none yet: read at the first check.
         */
        private final Map<String, Object> seen = new HashMap<>();
        /**
         * The warning of the last check's rebuild, which failed, or null: logged at FINE, and as a warning at the next
         * check unless that one makes usable material (the rest of a rotation).
         */
        private String heldWarning;
        /** The SDS secrets that push their new versions to this watch ({@link #pushed}). */
        private final List<SdsSecretSource> sources = new CopyOnWriteArrayList<>();
        /** What a secret runs on a new version: a look at once. */
        private final Runnable pushed = this::pushed;

        Watch(T target, String owner, Map<String, String> files, Map<String, Supplier<String>> inMemory,
              BiConsumer<T, Map<String, String>> rebuild) {
            this.target = new WeakReference<>(target);
            this.inMemory = Map.copyOf(inMemory);
            this.owner = owner;
            this.texts = Map.copyOf(files);
            this.latest = texts;
            this.rebuild = rebuild;
        }

        public void cancel() {
            WATCHES.remove(this);
            sources.forEach(s -> s.removeListener(pushed));
            sources.clear();
        }

        /** Whether the watch looks at anything (it has files or secrets): else it is not kept. */
        private boolean listening() {
            return WATCHES.contains(this);
        }

        /** Has {@code s} push its new versions to this watch. */
        private void listenTo(SdsSecretSource s) {
            sources.add(s);
            s.addListener(pushed);
        }

        /** A secret of the target took a new version: the target takes it now, not at the next look. */
        private void pushed() {
            try {
                if (!check()) {
                    cancel();
                }
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, owner + ": taking a new SDS secret version failed", e);
            }
        }

        /** Looks at the files now, as a poll does; false once the target is gone. */
        boolean check() {
            return check(new HashMap<>());
        }

        /**
         * Looks at the files; false once the target is gone. One look at a time: a secret's push and the poll may
         * come together.
         */
        private synchronized boolean check(Map<String, Stamp> stamps) {
            T t = target.get();
            if (t == null) {
                return false;
            }
            List<String> changed = new ArrayList<>();
            for (String file : texts.keySet()) {
                Supplier<String> memory = inMemory.get(file);
                Object now = memory != null ? memory.get() : stamps.computeIfAbsent(file, Stamp::of);
                if (memory != null && now == null) {
                    continue; // a secret not taken: none to look at
                }
                if (!seen.containsKey(file) || !Objects.equals(seen.get(file), now)) {
                    seen.put(file, now);
                    changed.add(file);
                }
            }
            if (changed.isEmpty()) {
                warnHeld(); // unchanged since a rebuild failed: no rotation is under way
                return true;
            }
            Map<String, String> next = new LinkedHashMap<>(latest);
            for (String file : changed) {
                try {
                    next.put(file, inMemory.containsKey(file) ? (String) seen.get(file)
                            : Files.readString(Path.of(file), StandardCharsets.UTF_8));
                } catch (IOException | RuntimeException e) {
                    LOG.warning(() -> owner + ": cannot read the changed TLS file \"" + file + "\" (" + e
                            + "); it keeps its last good certificates");
                    return true;
                }
            }
            latest = Map.copyOf(next);
            if (next.equals(texts)) {
                heldWarning = null;
                return true;
            }
            try {
                rebuild.accept(t, next);
                texts = latest;
                heldWarning = null;
                LOG.info(() -> owner + ": TLS files " + changed + " changed; new connections use them");
            } catch (IllegalArgumentException e) {
                warnHeld(); // not usable twice in a row
                String warning = owner + ": the changed TLS file" + (changed.size() == 1 ? " \"" + changed.get(0)
                        + "\" is" : "s " + changed + " are") + " not usable (" + e.getMessage()
                        + "); it keeps its last good certificates";
                heldWarning = warning;
                LOG.fine(() -> warning + " (warned about if the next look finds it so: a key and its certificate "
                        + "are rotated one after the other)");
            }
            return true;
        }

        private void warnHeld() {
            if (heldWarning != null) {
                LOG.warning(heldWarning);
                heldWarning = null;
            }
        }
    }
}
