package dev.inmesh.runtime.config;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.stats.ConfigStats;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.sds.SdsSecretManager;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.Parsers;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The local default: Envoy JSON or YAML from a file or a directory ({@code inmesh.config.file}, or {@code -c}), read
 * by {@link EnvoyConfigReader}, and watched. Every poll interval a worker thread compares the files' modification
 * times, sizes and file keys (inodes: a file moved in with the same time and size is a change); once a change has
 * stayed as it is for one poll (a file written in place is not read half-written), the whole configuration is read
 * again and applied atomically. A broken file changes
 * nothing: the last good snapshot keeps serving, and the error, naming the file, the resource and the field, is
 * logged and kept in {@link #lastError()}; such a configuration is read again once its files change, or once a file
 * its resources read (TLS files, {@code filename} DataSources) does. Nothing here runs on an event loop.
 *
 * <p>{@link #start} fails when the configuration cannot be read the first time: there is nothing to serve then.
 */
public final class FileConfigSource implements ConfigSource {
    private static final System.Logger LOG = System.getLogger(FileConfigSource.class.getName());

    /** The default poll interval. */
    public static final Duration DEFAULT_POLL_INTERVAL = Duration.ofSeconds(1);

    private final Vertx vertx;
    private final Path path;
    private final Duration pollInterval;
    private final WorkloadIdentity identity;
    private SnapshotHolder holder;
    private long timerId = -1;
    private volatile boolean closed;
    private boolean polling;
    private Future<Void> inflight = Future.succeededFuture();
    private List<String> fingerprint = List.of();
    /** The files as the last poll found them changed, not read yet: read when the next poll finds them the same. */
    private List<String> settling;
    /** Whether {@link #loadNow} read the configuration, and whether {@link #start} then started the watch. */
    private boolean loaded;
    private boolean startedWatching;
    /**
     * The identity files (and the SDS secrets' versions) as the last poll after a failed reload, or one that left a
     * cluster's TLS not ready, saw them (null: not looked at): a configuration rejected for a missing or unusable
     * identity file, or an SDS secret not arrived, is read again once those change, as Envoy's listener
     * warms until its SDS secret arrives, where it would otherwise wait for the configuration's next change; so is
     * one applied with a cluster's TLS not ready for its SDS secret, which then takes the secret, as Envoy's cluster
     * does on its arrival.
     */
    private List<String> identityFingerprint;
    /**
     * Whether the configuration applied last left a cluster's TLS not ready, its SDS secret not arrived within its
     * {@code initial_fetch_timeout} ({@link Parsers#withSecretsNotReady}).
     */
    private volatile boolean secretsNotReady;
    /** The SDS client of the TLS contexts naming secrets with a gRPC {@code sds_config}, or null: refused. */
    private volatile SdsSecretManager sds;
    private volatile String lastError;
    /**
     * The files the last read of the configuration read for its resources (TLS files, {@code filename} DataSources),
     * each with how it looked before that read: a configuration rejected (perhaps for one of them: a key that is not
     * its certificate's) is read again once one changes, as it is once the identity's files change.
     */
    private volatile java.util.Map<String, String> filesRead = java.util.Map.of();
    private volatile long reloads;
    /** The subscriptions Envoy would run for what the configuration gave so far ({@link #subscribe}). */
    private final List<ConfigStats.Subscription> subscriptions = new java.util.concurrent.CopyOnWriteArrayList<>();

    public FileConfigSource(Vertx vertx, Path path) {
        this(vertx, path, DEFAULT_POLL_INTERVAL);
    }

    public FileConfigSource(Vertx vertx, Path path, Duration pollInterval) {
        this(vertx, path, pollInterval, null);
    }

    /**
     * A source whose TLS contexts naming Istio's SDS secrets {@code default} and {@code ROOTCA} read the files of
     * {@code identity} (null: refused).
     */
    public FileConfigSource(Vertx vertx, Path path, Duration pollInterval, WorkloadIdentity identity) {
        if (pollInterval.isNegative() || pollInterval.isZero()) {
            throw new IllegalArgumentException("pollInterval: " + pollInterval + " (expected: > 0)");
        }
        this.vertx = vertx;
        this.path = path;
        this.pollInterval = pollInterval;
        this.identity = identity;
    }

    /**
     * Has the TLS contexts that name secrets with a gRPC {@code sds_config} fetch them with {@code sds} (the
     * bootstrap's static clusters tell it where), rather than refuse them; before {@link #start}.
     */
    public FileConfigSource sds(SdsSecretManager sds) {
        this.sds = sds;
        return this;
    }

    /** The identity's files and the SDS secrets' versions, as a change shows in them; null with neither. */
    private List<String> secretsFingerprint() {
        SdsSecretManager s = sds;
        if (identity == null && s == null) {
            return null;
        }
        List<String> out = new java.util.ArrayList<>(identity == null ? List.of() : identity.fingerprint());
        if (s != null) {
            out.addAll(s.fingerprint());
        }
        return out;
    }

    /**
     * Reads and applies the configuration to {@code holder} now, on the calling thread (blocking: not for an event
     * loop), counted as {@link #start}'s first read is; {@link #start} with the same holder then only watches, from
     * the files as they were before this read: a file replaced since (even before {@code start}) is a reload, which a
     * bad file fails as any reload does, the configuration read here serving on. What the standalone proxy reads its
     * file with, once, before it binds the listeners, as Envoy reads its bootstrap once.
     *
     * @return the configuration applied
     * @throws ConfigException when it cannot be used (nothing applied; the source can then not be started)
     */
    public synchronized ResourceBundle loadNow(SnapshotHolder holder) throws ConfigException {
        if (this.holder != null) {
            throw new IllegalStateException("loaded or started already");
        }
        this.holder = holder;
        List<String> fp = fingerprint(path);
        try {
            ResourceBundle applied = load();
            fingerprint = fp;
            loaded = true;
            return applied;
        } catch (ConfigException | RuntimeException e) {
            this.holder = null;
            throw e;
        }
    }

    @Override
    public synchronized Future<Void> start(SnapshotHolder holder) {
        if (loaded && this.holder == holder && timerId < 0 && !startedWatching) {
            // read by loadNow: only the watch is left to start
            startedWatching = true;
            if (!closed) {
                timerId = vertx.setPeriodic(pollInterval.toMillis(), id -> poll());
            }
            return Future.succeededFuture();
        }
        if (this.holder != null) {
            return Future.failedFuture(new IllegalStateException("started already"));
        }
        this.holder = holder;
        return vertx.<List<String>>executeBlocking(() -> {
            List<String> fp = fingerprint(path);
            load();
            return fp;
        }, false).map(fp -> {
            synchronized (this) {
                fingerprint = fp;
                if (!closed) {
                    timerId = vertx.setPeriodic(pollInterval.toMillis(), id -> poll());
                }
            }
            return (Void) null;
        });
    }

    /** The last reload's error (file, resource and field), or null when the last reload worked. */
    public String lastError() {
        return lastError;
    }

    /** How many times the configuration was applied, the first load included. */
    public long reloads() {
        return reloads;
    }

    /** Stops polling; completes once a reload in progress has finished. */
    @Override
    public synchronized Future<Void> close() {
        closed = true;
        if (timerId >= 0) {
            vertx.cancelTimer(timerId);
        }
        return inflight.otherwiseEmpty();
    }

    /** One poll (the timer's; a test's too); completes once it and the reload it made, if any, are done. */
    synchronized Future<Void> poll() {
        if (polling || closed) {
            return inflight.otherwiseEmpty();
        }
        polling = true;
        List<String> known = fingerprint;
        List<String> knownIdentity = identityFingerprint;
        inflight = vertx.<Void>executeBlocking(() -> {
            List<String> now = fingerprint(path);
            // after a failed reload, the identity's files too: the rejection may have been theirs; and the secrets
            // a cluster's TLS waits for
            List<String> identityNow = lastError == null && !secretsNotReady ? knownIdentity : secretsFingerprint();
            boolean filesChanged = lastError != null && filesRead.entrySet().stream()
                    .anyMatch(f -> !f.getValue().equals(dev.inmesh.runtime.xds.CoreParsers.stamp(f.getKey())));
            synchronized (this) {
                if (!now.equals(known) && !now.equals(settling)) {
                    // changed since the poll before: perhaps still being written, read once it stays put for a poll
                    // interval (a file written in place, cut short, may still parse, and would drop the resources of
                    // its unwritten part)
                    settling = now;
                    return null;
                }
                settling = null; // read now, or back as they were read: a later change settles afresh
            }
            if (!now.equals(known) || !java.util.Objects.equals(identityNow, knownIdentity) || filesChanged) {
                // the identity's files as this read finds them, taken before it: a change during it reads again
                List<String> identityBefore = secretsFingerprint();
                synchronized (this) {
                    fingerprint = now;
                }
                try {
                    load();
                    LOG.log(System.Logger.Level.INFO, "reloaded the configuration from {0}", path);
                } catch (ConfigException e) {
                    LOG.log(System.Logger.Level.ERROR, "kept the last good configuration: {0}", e.getMessage());
                }
                synchronized (this) {
                    identityFingerprint = identityBefore;
                }
            }
            return null;
        }, false).andThen(ar -> {
            synchronized (this) {
                polling = false;
            }
        });
        return inflight;
    }

    /**
     * Reads and applies the configuration; on a worker thread. Each read counts in the statistics of the CDS and LDS
     * subscriptions ({@code cluster_manager.cds.}, {@code listener_manager.lds.}) that Envoy would run for what the
     * configuration has given ({@link #subscribe}), as Envoy counts a filesystem subscription's ({@code path} config
     * source) refresh: accepted, rejected (a resource, or the whole configuration, refused), or failed (the file
     * cannot be read, or is not JSON or YAML).
     */
    private ResourceBundle load() throws ConfigException {
        String error;
        java.util.Map<String, String> read = new java.util.HashMap<>();
        try {
            java.util.Set<String> late = new java.util.HashSet<>();
            ResourceBundle bundle = Parsers.withIdentity(identity, () -> Parsers.withSds(sds,
                    () -> Parsers.withSecretsNotReady(late, () -> Parsers.withFilesRead(read,
                            () -> EnvoyConfigReader.read(path)))))
                    .keepingVersionsOf(holder.current().resources());
            subscribe(bundle);
            holder.apply(bundle);
            if (sds != null) {
                // the secrets no listener or cluster names now: their streams end
                sds.retain(dev.inmesh.runtime.xds.SdsSecrets.named(bundle));
            }
            lastError = null;
            secretsNotReady = !late.isEmpty();
            reloads++;
            long now = System.currentTimeMillis();
            subscriptions.forEach(s -> s.accepted(now));
            return bundle;
        } catch (EnvoyConfigReader.ConfigReadException e) {
            error = e.getMessage();
            // a file that cannot be read or is not JSON or YAML (Jackson's errors are IOExceptions) is a failure,
            // as one Envoy cannot load; a resource refused, a protobuf field unknown included, a rejection
            boolean unread = e.getCause() instanceof IOException
                    && !(e.getCause() instanceof com.google.protobuf.InvalidProtocolBufferException);
            subscriptions.forEach(unread ? ConfigStats.Subscription::failed : ConfigStats.Subscription::rejected);
        } catch (InvalidResourceException e) {
            error = path + ": " + e.getMessage();
            subscriptions.forEach(ConfigStats.Subscription::rejected);
        } finally {
            filesRead = java.util.Map.copyOf(read);
        }
        lastError = error;
        throw new ConfigException(error);
    }

    /**
     * Starts the CDS subscription once a read gives a cluster that is not static, the LDS one once it gives such a
     * listener: what a bootstrap's {@code static_resources} (or a config dump's {@code static_*} lists) holds Envoy
     * loads with no subscription, while the other shapes (xDS response-like {@code resources}, lists, single
     * resources, a dump's {@code dynamic_*} lists) are what its {@code cds_config} or {@code lds_config} subscription,
     * a {@code path} one for a file, would deliver. Once started, a subscription counts every read after.
     */
    private void subscribe(ResourceBundle bundle) {
        subscribe(bundle, ResourceType.CLUSTER, bundle.clusters().keySet(), holder.stats().cds());
        subscribe(bundle, ResourceType.LISTENER, bundle.listeners().keySet(), holder.stats().lds());
    }

    private void subscribe(ResourceBundle bundle, ResourceType type, java.util.Set<String> names,
                           ConfigStats.Subscription stats) {
        if (!subscriptions.contains(stats) && names.stream().anyMatch(n -> !bundle.isStatic(type, n))) {
            stats.watched();
            subscriptions.add(stats);
        }
    }

    /** What a change shows in: each file's name, modification time, size and file key (see WorkloadIdentity#stamp). */
    static List<String> fingerprint(Path path) {
        List<String> out = new ArrayList<>();
        try {
            if (Files.isDirectory(path)) {
                for (Path f : EnvoyConfigReader.configFiles(path)) {
                    out.add(WorkloadIdentity.stamp(f));
                }
            } else {
                out.add(WorkloadIdentity.stamp(path));
            }
        } catch (IOException e) {
            out.add("unreadable: " + e.getMessage());
        }
        return out;
    }


    /** The configuration cannot be used; the message names the file, the resource and the field. */
    public static final class ConfigException extends Exception {
        private static final long serialVersionUID = 1L;

        ConfigException(String message) {
            super(message);
        }
    }
}
