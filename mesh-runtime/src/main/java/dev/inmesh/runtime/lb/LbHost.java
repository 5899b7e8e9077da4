package dev.inmesh.runtime.lb;

/** What a load balancer needs to know about a host: its hash key, its weight and its current load. */
public interface LbHost {

    /** The host's address as {@code ip:port} ({@code [ip6]:port}). */
    String addressString();

    /**
     * The key ring hash and Maglev place the host by: its address unless the host says otherwise (Envoy's endpoint
     * metadata {@code envoy.lb} {@code hash_key}, or its hostname under {@code use_hostname_for_hashing}).
     */
    default String hashKey() {
        return addressString();
    }

    /** The load balancing weight, at least 1. */
    int weight();

    /** Requests in flight to this host right now. */
    int activeRequests();

    /** {@link #healthySinceNanos()} of a host never seen healthy. */
    long NEVER_HEALTHY = Long.MIN_VALUE;

    /**
     * When the host's cluster first found it healthy (on joining, or later when it joined unhealthy), on the
     * cluster's monotonic clock in nanoseconds, or {@link #NEVER_HEALTHY}; slow start counts from here.
     */
    long healthySinceNanos();

    /** Whether the host is healthy (not degraded, ejected or excluded); slow start scales healthy hosts only. */
    boolean healthy();

    /**
     * The hosts' own weights, in order, normalised as Envoy normalises them for a ring or table: each over their sum
     * (the same arithmetic, so that the same hosts make Envoy's ring or table to the last entry).
     */
    static double[] weights(java.util.List<? extends LbHost> hosts) {
        long sum = 0;
        for (LbHost h : hosts) {
            sum += h.weight();
        }
        double[] w = new double[hosts.size()];
        for (int i = 0; i < w.length; i++) {
            w[i] = hosts.get(i).weight() * 1.0 / sum;
        }
        return w;
    }
}
