package dev.inmesh.runtime.config;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.vertx.core.Future;

/**
 * A source of configuration: it applies complete bundles to a {@link SnapshotHolder}, each atomically, and keeps the
 * last good one serving when a new one is bad.
 */
public interface ConfigSource {

    /**
     * Starts feeding {@code holder}. The future completes once a first configuration has been applied (the holder is
     * then {@link SnapshotHolder#ready() ready}); see each source for when it fails.
     */
    Future<Void> start(SnapshotHolder holder);

    /** Stops watching; the holder keeps its last snapshot. */
    Future<Void> close();
}
