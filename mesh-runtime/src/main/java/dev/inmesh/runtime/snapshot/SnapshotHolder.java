package dev.inmesh.runtime.snapshot;

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

    public SnapshotHolder() {
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
        MeshSnapshot next = SnapshotCompiler.compile(bundle, current.generation() + 1);
        current = next;
        ready = true;
        for (Consumer<MeshSnapshot> l : listeners) {
            l.accept(next);
        }
        return next;
    }

    /** Called with every snapshot published after this call. */
    public void onUpdate(Consumer<MeshSnapshot> listener) {
        listeners.add(listener);
    }
}
