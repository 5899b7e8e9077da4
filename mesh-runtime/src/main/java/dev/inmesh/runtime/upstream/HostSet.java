package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.runtime.lb.EdfScheduler;
import dev.inmesh.runtime.lb.HostSelector;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The hosts of one priority, as they stood when the {@link PrioritySet} was built: all of them, those available
 * (selectable health, not ejected), grouped by locality, with the selectors that pick among them.
 */
public final class HostSet {
    private final int priority;
    private final List<Host> hosts;
    private final List<Host> available;
    private final List<LocalityGroup> localities;
    private final boolean panic;
    private final HostSelector<Host> selector;
    private final EdfScheduler<LocalityGroup> localityScheduler;

    /** The hosts of one locality in one priority. */
    record LocalityGroup(Locality locality, int weight, List<Host> hosts, List<Host> available,
                         double effectiveWeight, HostSelector<Host> selector) {}

    /** One locality's hosts and weight as configured, before availability is known. */
    record LocalityHosts(Locality locality, int weight, List<Host> hosts) {}

    HostSet(int priority, List<LocalityHosts> groups, boolean panic, Builder builder) {
        this.priority = priority;
        this.panic = panic;
        List<Host> all = new ArrayList<>();
        List<Host> avail = new ArrayList<>();
        for (LocalityHosts g : groups) {
            for (Host h : g.hosts()) {
                all.add(h);
                if (h.available()) {
                    avail.add(h);
                }
            }
        }
        this.hosts = List.copyOf(all);
        this.available = List.copyOf(avail);
        this.selector = builder.selector("p" + priority + (panic ? "/all" : "/available"), panic ? hosts : available);
        List<LocalityGroup> locs = new ArrayList<>();
        EdfScheduler<LocalityGroup> scheduler = null;
        if (builder.localityWeighted && !panic) {
            scheduler = new EdfScheduler<>(LocalityGroup::effectiveWeight);
            for (LocalityHosts g : groups) {
                List<Host> ga = g.hosts().stream().filter(Host::available).toList();
                double availability = g.hosts().isEmpty() ? 0
                        : Math.min(100.0, builder.overprovisioningFactor * (double) ga.size() / g.hosts().size());
                LocalityGroup lg = new LocalityGroup(g.locality(), g.weight(), g.hosts(), ga, g.weight() * availability,
                        builder.selector("p" + priority + "/" + g.locality(), ga));
                locs.add(lg);
                scheduler.add(lg);
            }
            if (scheduler.isEmpty()) {
                scheduler = null;
            }
        }
        this.localities = List.copyOf(locs);
        this.localityScheduler = scheduler;
    }

    Host pick(boolean hasHash, long hash, int attempt) {
        if (localityScheduler != null) {
            LocalityGroup g;
            synchronized (localityScheduler) {
                g = localityScheduler.pick();
            }
            return g.selector().pick(hasHash, hash, attempt);
        }
        return selector.pick(hasHash, hash, attempt);
    }

    public int priority() {
        return priority;
    }

    /** All hosts of this priority. */
    public List<Host> hosts() {
        return hosts;
    }

    /** The hosts that were available (selectable health, not ejected) when the set was built. */
    public List<Host> availableHosts() {
        return available;
    }

    /** Whether this priority is in panic: its selector uses all hosts regardless of health. */
    public boolean panic() {
        return panic;
    }

    /** Locality groups with their effective weights, when locality weighted balancing is on; else empty. */
    List<LocalityGroup> localities() {
        return localities;
    }

    /** Builds selectors, handing each the selector it replaces for the same group of hosts. */
    static final class Builder {
        final dev.inmesh.runtime.lb.LoadBalancer lb;
        final Map<String, HostSelector<Host>> previous;
        final Map<String, HostSelector<Host>> built;
        final boolean localityWeighted;
        final int overprovisioningFactor;

        Builder(dev.inmesh.runtime.lb.LoadBalancer lb, Map<String, HostSelector<Host>> previous,
                Map<String, HostSelector<Host>> built, boolean localityWeighted, int overprovisioningFactor) {
            this.lb = lb;
            this.previous = previous;
            this.built = built;
            this.localityWeighted = localityWeighted && !lb.hashing();
            this.overprovisioningFactor = overprovisioningFactor;
        }

        HostSelector<Host> selector(String key, List<Host> hosts) {
            HostSelector<Host> s = lb.newSelector(hosts, previous.get(key));
            built.put(key, s);
            return s;
        }
    }
}
