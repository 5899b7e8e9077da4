package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.ResourceType;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The listener versions that drain, as Envoy's listener manager keeps its draining listeners: a dynamic listener a
 * configuration removes, or replaces with one that differs in more than its filter chains (an update of its filter
 * chains alone drains those chains, {@link ChainDrains}, not the listener), drains for the drain time, and is shown
 * meanwhile as its config dump's {@code draining_state} and counted in
 * {@code listener_manager.total_listeners_draining}.
 * A bootstrap's static listeners are not among them, as Envoy's cannot be removed or replaced.
 */
final class DrainingListeners {
    private final ProxyRuntime runtime;
    private final List<DynamicState.Draining> draining = new CopyOnWriteArrayList<>();

    DrainingListeners(ProxyRuntime runtime) {
        this.runtime = runtime;
    }

    /** Those draining now, newest first, as Envoy's listener manager lists them. */
    List<DynamicState.Draining> now() {
        return List.copyOf(draining);
    }

    /** Notes the listeners of {@code before} that {@code next} removes or replaces, each for the drain time. */
    void follow(MeshSnapshot before, MeshSnapshot next) {
        for (Listener l : before.listeners().values()) {
            FilterChainSelector now = next.listener(l.name());
            if (before.resources().isStatic(ResourceType.LISTENER, l.name())
                    || now != null && dev.inmesh.runtime.listener.FilterChainUpdate.sameApartFromChains(l, now.listener())) {
                continue;
            }
            DynamicState.Draining d = new DynamicState.Draining(l.name(), new DynamicState.Held(
                    before.resources().message(ResourceType.LISTENER, l.name()),
                    before.resources().version(ResourceType.LISTENER, l.name())));
            draining.add(0, d);
            runtime.vertx.setTimer(Math.max(1, runtime.drainTime.toMillis()), id -> draining.remove(d));
        }
    }
}
