package dev.inmesh.runtime.lb;

import java.util.ArrayList;
import java.util.List;

/** A host for selector tests: an address, a weight and a settable active request count. */
final class TestHost implements LbHost {
    final String address;
    final int weight;
    int active;
    long healthySince = NEVER_HEALTHY;
    boolean healthy = true;

    TestHost(String address, int weight) {
        this.address = address;
        this.weight = weight;
    }

    static List<TestHost> hosts(int n) {
        List<TestHost> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new TestHost("10.0." + (i / 250) + "." + (i % 250 + 1) + ":8080", 1));
        }
        return out;
    }

    static List<TestHost> weighted(int... weights) {
        List<TestHost> out = new ArrayList<>();
        for (int i = 0; i < weights.length; i++) {
            out.add(new TestHost("10.1.0." + (i + 1) + ":80", weights[i]));
        }
        return out;
    }

    @Override
    public String addressString() {
        return address;
    }

    @Override
    public long healthySinceNanos() {
        return healthySince;
    }

    @Override
    public boolean healthy() {
        return healthy;
    }

    @Override
    public int weight() {
        return weight;
    }

    @Override
    public int activeRequests() {
        return active;
    }

    @Override
    public String toString() {
        return address;
    }
}
