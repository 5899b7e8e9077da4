package dev.inmesh.benchmarks;

import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotCompiler;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.ResourceBundle;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/** Compiling a snapshot of 1 000 route configurations (10 virtual hosts of 10 routes each). */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 5)
@Measurement(iterations = 10)
@Fork(1)
public class SnapshotBuildBenchmark {
    private ResourceBundle bundle;

    @Setup(Level.Trial)
    public void setUp() {
        ResourceBundle.Builder b = ResourceBundle.builder();
        for (int i = 0; i < 1000; i++) {
            RouteConfiguration rc = RouteSelectionBenchmark.routeConfiguration("rc" + i, 10);
            b.route(rc, null);
        }
        bundle = b.build();
    }

    @Benchmark
    public MeshSnapshot compile1000RouteConfigurations() throws InvalidResourceException {
        return SnapshotCompiler.compile(bundle, 1);
    }
}
