package dev.inmesh.benchmarks;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Ticker;
import dev.inmesh.runtime.upstream.UpstreamEnvironment;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * An EDS update of a 10 000-endpoint cluster: each update replaces one host in ten (the others stay, keeping their
 * state) and rebuilds the selectors. Alternates between two assignments.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class EdsUpdateBenchmark {

    @Param({"ROUND_ROBIN", "LEAST_REQUEST", "RING_HASH", "MAGLEV"})
    public String policy;

    @Param({"10000"})
    public int endpoints;

    private ClusterManager manager;
    private Map<String, Cluster> clusters;
    private ClusterLoadAssignment a;
    private ClusterLoadAssignment b;
    private boolean flip;

    @Setup
    public void setUp() {
        UpstreamEnvironment env = new UpstreamEnvironment(null, Ticker.system(), ThreadLocalRandom.current(), null);
        clusters = Map.of("c", Upstreams.eds("c", LbPolicy.valueOf(policy)));
        a = Upstreams.assignment("c", endpoints, 0, false);
        b = Upstreams.assignment("c", endpoints, endpoints / 10, false);
        manager = ClusterManager.create(env, clusters, Map.of("c", a));
    }

    @Benchmark
    public ClusterManager update() {
        flip = !flip;
        manager = manager.update(clusters, Map.of("c", flip ? b : a));
        return manager;
    }
}
