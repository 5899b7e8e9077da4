package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.endpoint.Locality;
import dev.inmesh.runtime.lb.EdfScheduler;
import dev.inmesh.runtime.lb.HostSelector;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The hosts of one priority, as they stood when the {@link PrioritySet} was built: all of them, the healthy ones and
 * the degraded ones (neither ejected; excluded DRAINING hosts are neither), grouped by locality, with the selectors
 * that pick among them. A priority in panic picks among all its hosts.
 */
public final class HostSet {
    private final int priority;
    private final List<Host> hosts;
    private final List<Host> healthy;
    private final List<Host> degraded;
    private final List<LocalityGroup> localities;
    private final boolean panic;
    /** Over all hosts in panic, else over the healthy ones. */
    private final HostSelector<Host> selector;
    /** Over the degraded hosts, or null when there are none (or in panic). */
    private final HostSelector<Host> degradedSelector;
    private final EdfScheduler<LocalityGroup> localityScheduler;
    private final EdfScheduler<LocalityGroup> degradedLocalityScheduler;

    /**
     * The hosts of one locality in one priority that one source (healthy or degraded) picks among, with the
     * locality's effective weight for that source.
     */
    record LocalityGroup(Locality locality, int weight, List<Host> hosts, List<Host> available,
                         double effectiveWeight, HostSelector<Host> selector) {}

    /** One locality's hosts and weight as configured, before availability is known. */
    record LocalityHosts(Locality locality, int weight, List<Host> hosts) {}

    HostSet(int priority, List<LocalityHosts> groups, boolean panic, Builder builder) {
        this.priority = priority;
        this.panic = panic;
        List<Host> all = new ArrayList<>();
        List<Host> good = new ArrayList<>();
        List<Host> poor = new ArrayList<>();
        for (LocalityHosts g : groups) {
            for (Host h : g.hosts()) {
                all.add(h);
                if (h.healthy()) {
                    good.add(h);
                } else if (h.degraded()) {
                    poor.add(h);
                }
            }
        }
        this.hosts = List.copyOf(all);
        this.healthy = List.copyOf(good);
        this.degraded = List.copyOf(poor);
        String key = "p" + priority + (panic ? "/all" : "/healthy");
        this.selector = builder.hashing && builder.localityWeighted
                ? localityWeightedRing(key, groups, panic ? h -> true : Host::healthy, builder)
                : builder.selector(key, panic ? hosts : healthy);
        // a hashing policy keeps to the healthy hosts (Envoy builds its ring or table from them alone)
        this.degradedSelector = panic || degraded.isEmpty() || builder.hashing ? null
                : builder.selector("p" + priority + "/degraded", degraded);
        List<LocalityGroup> locs = new ArrayList<>();
        this.localityScheduler = panic || builder.hashing ? null
                : localityScheduler(groups, Host::healthy, "", builder, locs);
        this.degradedLocalityScheduler = degradedSelector == null ? null
                : localityScheduler(groups, Host::degraded, "/degraded", builder, new ArrayList<>());
        this.localities = List.copyOf(locs);
    }

    /**
     * An EDF schedule of localities for one source, when locality weighted balancing is on: a locality's effective
     * weight is {@code weight × min(100, overprovisioning_factor × eligible / hosts)}, its excluded hosts not counted.
     */
    private EdfScheduler<LocalityGroup> localityScheduler(List<LocalityHosts> groups,
                                                          java.util.function.Predicate<Host> eligible, String suffix,
                                                          Builder builder, List<LocalityGroup> into) {
        if (!builder.localityWeighted) {
            return null;
        }
        EdfScheduler<LocalityGroup> scheduler = new EdfScheduler<>(LocalityGroup::effectiveWeight);
        for (LocalityHosts g : groups) {
            List<Host> ga = g.hosts().stream().filter(eligible).toList();
            long counted = g.hosts().stream().filter(h -> !h.excluded()).count();
            double availability = counted == 0 ? 0
                    : Math.min(100.0, builder.overprovisioningFactor * (double) ga.size() / counted);
            LocalityGroup lg = new LocalityGroup(g.locality(), g.weight(), g.hosts(), ga, g.weight() * availability,
                    builder.selector("p" + priority + "/" + g.locality() + suffix, ga));
            into.add(lg);
            scheduler.add(lg);
        }
        return scheduler.isEmpty() ? null : scheduler;
    }

    /**
     * A hashing policy's selector with localities weighed in, as Envoy builds its ring or table: a host of a locality
     * of weight {@code w} counts {@code its weight / the locality's host weights × w / all locality weights}; the
     * hosts of a locality of weight 0 are left out (all of them when every weight is 0).
     */
    private static HostSelector<Host> localityWeightedRing(String key, List<LocalityHosts> groups,
                                                           java.util.function.Predicate<Host> eligible,
                                                           Builder builder) {
        long localityTotal = 0;
        for (LocalityHosts g : groups) {
            localityTotal += g.weight();
        }
        List<Host> ring = new ArrayList<>();
        List<Double> weights = new ArrayList<>();
        for (LocalityHosts g : groups) {
            if (g.weight() == 0) {
                continue;
            }
            List<Host> in = g.hosts().stream().filter(eligible).toList();
            long hostTotal = in.stream().mapToLong(Host::weight).sum();
            for (Host h : in) {
                ring.add(h);
                // Envoy's arithmetic, to the last bit: the host's weight, times its locality's share, over the
                // locality's host weights
                weights.add(h.weight() * ((double) g.weight() / localityTotal) / hostTotal);
            }
        }
        return builder.selector(key, ring, weights.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /** A host from the degraded hosts when {@code degradedSource}, else from the healthy ones (all in panic). */
    Host pick(boolean degradedSource, boolean hasHash, long hash, int attempt) {
        boolean degradedHosts = degradedSource && !panic && degradedSelector != null;
        EdfScheduler<LocalityGroup> scheduler = degradedHosts ? degradedLocalityScheduler : localityScheduler;
        if (scheduler != null) {
            LocalityGroup g;
            synchronized (scheduler) {
                g = scheduler.pick();
            }
            return g.selector().pick(hasHash, hash, attempt);
        }
        return (degradedHosts ? degradedSelector : selector).pick(hasHash, hash, attempt);
    }

    public int priority() {
        return priority;
    }

    /** All hosts of this priority. */
    public List<Host> hosts() {
        return hosts;
    }

    /** The hosts that were available outside panic (healthy or degraded, not ejected) when the set was built. */
    public List<Host> availableHosts() {
        List<Host> both = new ArrayList<>(healthy);
        both.addAll(degraded);
        return both;
    }

    /** The healthy hosts (not degraded, not ejected, not excluded) when the set was built. */
    public List<Host> healthyHosts() {
        return healthy;
    }

    /** The degraded hosts (not ejected) when the set was built. */
    public List<Host> degradedHosts() {
        return degraded;
    }

    /** Whether this priority is in panic: its selector uses all hosts regardless of health. */
    public boolean panic() {
        return panic;
    }

    /**
     * The healthy hosts' locality groups with their effective weights, when locality weighted balancing is on (and
     * the priority not in panic); else empty.
     */
    List<LocalityGroup> localities() {
        return localities;
    }

    /** Builds selectors, handing each the selector it replaces for the same group of hosts. */
    static final class Builder {
        final dev.inmesh.runtime.lb.LoadBalancer lb;
        final Map<String, HostSelector<Host>> previous;
        final Map<String, HostSelector<Host>> built;
        final boolean localityWeighted;
        /** Whether the policy hashes (RING_HASH, MAGLEV): localities are weighed into its ring, not picked first. */
        final boolean hashing;
        final int overprovisioningFactor;

        Builder(dev.inmesh.runtime.lb.LoadBalancer lb, Map<String, HostSelector<Host>> previous,
                Map<String, HostSelector<Host>> built, boolean localityWeighted, int overprovisioningFactor) {
            this.lb = lb;
            this.previous = previous;
            this.built = built;
            this.localityWeighted = localityWeighted;
            this.hashing = lb.hashing();
            this.overprovisioningFactor = overprovisioningFactor;
        }

        HostSelector<Host> selector(String key, List<Host> hosts) {
            return selector(key, hosts, null);
        }

        /** With {@code weights} (hashing policies only), or the hosts' own weights when null. */
        HostSelector<Host> selector(String key, List<Host> hosts, double[] weights) {
            HostSelector<Host> s = weights == null ? lb.newSelector(hosts, previous.get(key))
                    : lb.newSelector(hosts, weights, previous.get(key));
            built.put(key, s);
            return s;
        }
    }
}
