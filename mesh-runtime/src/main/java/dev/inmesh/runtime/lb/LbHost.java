package dev.inmesh.runtime.lb;

/** What a load balancer needs to know about a host: its hash key, its weight and its current load. */
public interface LbHost {

    /** The host's address as {@code ip:port} ({@code [ip6]:port}), the key ring hash and Maglev hash. */
    String addressString();

    /** The load balancing weight, at least 1. */
    int weight();

    /** Requests in flight to this host right now. */
    int activeRequests();
}
