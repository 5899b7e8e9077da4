package dev.inmesh.runtime.lb;

import dev.inmesh.api.config.cluster.LbConfig;
import java.util.List;
import java.util.function.LongSupplier;
import java.util.function.ToDoubleFunction;

/**
 * Envoy's slow start for ROUND_ROBIN and LEAST_REQUEST: while a host first found healthy less than the window ago is
 * among the hosts, picks follow an EDF schedule whose weights are the policy's own ({@code base}) times each healthy
 * host's ramp factor, read again each time a host is put back, as Envoy's scheduler does. Once the youngest host is
 * past the window, every pick goes to the policy's ordinary selector ({@code steady}), without a lock.
 *
 * @param <H> the host type
 */
final class SlowStartSelector<H extends LbHost> implements HostSelector<H> {
    private final List<H> hosts;
    private final HostSelector<H> steady;
    private final EdfScheduler<H> edf;
    private final LongSupplier clock;
    /** When the youngest host leaves its window (clock nanos). */
    private final long endsAt;
    /** Set once the clock passed {@link #endsAt}. */
    private boolean over;

    private SlowStartSelector(List<H> hosts, HostSelector<H> steady, EdfScheduler<H> edf, LongSupplier clock,
                              long endsAt, int skip) {
        this.hosts = hosts;
        this.steady = steady;
        this.edf = edf;
        this.clock = clock;
        this.endsAt = endsAt;
        hosts.forEach(edf::add);
        for (int i = 0; i < skip; i++) {
            edf.pick();
        }
    }

    /**
     * {@code steady} alone when no host of {@code hosts} is in its window now, else a selector that ramps the young
     * hosts up until the last of them is out of its window.
     *
     * @param base the policy's weight of a host (its weight, or least request's weight over active requests)
     * @param skip picks made at build, so that proxies built at the same moment do not all start alike
     */
    static <H extends LbHost> HostSelector<H> of(List<H> hosts, HostSelector<H> steady, LbConfig.SlowStart config,
                                                 LongSupplier clock, ToDoubleFunction<H> base, int skip) {
        if (config == null || hosts.isEmpty()) {
            return steady;
        }
        long windowNanos = config.window().toNanos();
        long now = clock.getAsLong();
        boolean any = false;
        long youngest = 0;
        for (H h : hosts) {
            long since = h.healthySinceNanos();
            if (since != LbHost.NEVER_HEALTHY && now - since < windowNanos) {
                youngest = any ? Math.max(youngest, since) : since;
                any = true;
            }
        }
        if (!any) {
            return steady;
        }
        EdfScheduler<H> edf = new EdfScheduler<>(h -> {
            double w = base.applyAsDouble(h);
            long since = h.healthySinceNanos();
            return h.healthy() && since != LbHost.NEVER_HEALTHY ? w * config.factor(clock.getAsLong() - since) : w;
        });
        return new SlowStartSelector<>(List.copyOf(hosts), steady, edf, clock, youngest + windowNanos, skip);
    }

    /** The selector after the ramp, to carry over into the next selector's build (the round-robin cursor). */
    static <H extends LbHost> HostSelector<H> steady(HostSelector<H> selector) {
        return selector instanceof SlowStartSelector<H> s ? s.steady : selector;
    }

    @Override
    public H pick(boolean hasHash, long hash, int attempt) {
        if (over || clock.getAsLong() - endsAt >= 0) {
            over = true; // the clock is not read again for a selector that may live long after the ramp
            return steady.pick(hasHash, hash, attempt);
        }
        synchronized (this) {
            return edf.pick();
        }
    }

    @Override
    public List<H> hosts() {
        return hosts;
    }
}
