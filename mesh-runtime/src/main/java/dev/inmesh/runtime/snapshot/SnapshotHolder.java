package dev.inmesh.runtime.snapshot;

import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.ResourceBundle;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * Holds the current {@link MeshSnapshot} and swaps it atomically. Readers call {@link #current()} (one volatile
 * read); a config source calls {@link #apply}: a bundle that fails to compile is rejected with the error naming the
 * resource, and the previous snapshot stays.
 */
public final class SnapshotHolder {
    private volatile MeshSnapshot current;
    private volatile boolean ready;
    private final List<Consumer<MeshSnapshot>> listeners = new CopyOnWriteArrayList<>();
    private final UpstreamEnvironment upstream;
    private ClusterManager clusters;

    /** A holder without Vert.x: clusters are compiled but have no connection pools (tools, tests). */
    public SnapshotHolder() {
        this(new UpstreamEnvironment(null, null, null, null));
    }

    /** A holder whose snapshots' clusters run in {@code upstream} (Vert.x pools, timers, DNS). */
    public SnapshotHolder(UpstreamEnvironment upstream) {
        this.upstream = upstream;
        this.current = MeshSnapshot.empty();
    }

    /** The snapshot requests should use now. */
    public MeshSnapshot current() {
        return current;
    }

    /** Whether a first complete configuration has been applied. */
    public boolean ready() {
        return ready;
    }

    /**
     * Compiles and publishes a bundle.
     *
     * @throws InvalidResourceException when a resource is unusable; nothing changes then
     */
    public synchronized MeshSnapshot apply(ResourceBundle bundle) throws InvalidResourceException {
        MeshSnapshot compiled = SnapshotCompiler.compile(bundle, current.generation() + 1);
        clusters = clusters == null ? ClusterManager.create(upstream, bundle.clusters(), bundle.endpoints())
                : clusters.update(bundle.clusters(), bundle.endpoints());
        MeshSnapshot next = compiled.withClusters(clusters);
        current = next;
        ready = true;
        for (Consumer<MeshSnapshot> l : listeners) {
            l.accept(next);
        }
        return next;
    }

    /** Closes the clusters of the current snapshot (timers, pools). */
    public synchronized void close() {
        if (clusters != null) {
            clusters.close();
        }
    }

    /** Called with every snapshot published after this call. */
    public void onUpdate(Consumer<MeshSnapshot> listener) {
        listeners.add(listener);
    }
}
