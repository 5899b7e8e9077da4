package dev.inmesh.benchmarks;

import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.upstream.ClusterManager;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.LbContext;
import dev.inmesh.runtime.upstream.Ticker;
import dev.inmesh.runtime.upstream.UpstreamCluster;
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
 * One host pick through {@link UpstreamCluster#chooseHost}: priority choice and the policy's selector, for each
 * policy and cluster size, hosts of equal weight (hashing policies get a fresh request hash each pick).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class LbPickBenchmark {

    @Param({"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"})
    public String policy;

    @Param({"10", "1000", "10000"})
    public int hosts;

    private UpstreamCluster cluster;
    private long key;

    @Setup
    public void setUp() {
        UpstreamEnvironment env = new UpstreamEnvironment(null, Ticker.system(), ThreadLocalRandom.current(), null);
        ClusterManager manager = ClusterManager.create(env,
                Map.of("c", Upstreams.eds("c", LbPolicy.valueOf(policy))),
                Map.of("c", Upstreams.assignment("c", hosts, 0, false)));
        cluster = manager.cluster("c");
    }

    @Benchmark
    public Host pick() {
        long hash = (key++) * 0x9E3779B97F4A7C15L;
        return cluster.chooseHost(new LbContext(true, hash, null, 1, null));
    }
}
