package dev.inmesh.benchmarks;

import com.google.protobuf.Struct;
import com.google.protobuf.UInt32Value;
import com.google.protobuf.Value;
import dev.inmesh.runtime.xds.FieldError;
import dev.inmesh.runtime.xds.ProtoConstraintCheck;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.HealthStatus;
import io.envoyproxy.envoy.config.core.v3.Locality;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.config.core.v3.SocketAddress;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.Endpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
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
 * Envoy's proto constraints checked on a load assignment of 10 000 endpoints in three localities, each with a weight,
 * a health status and the metadata istiod sends (the workload in {@code istio}, the TLS mode in
 * {@code envoy.transport_socket_match}): what every EDS response of that size costs before it is parsed.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class ProtoConstraintCheckBenchmark {

    @Param({"10000"})
    public int endpoints;

    private ClusterLoadAssignment assignment;

    @Setup
    public void setUp() {
        ClusterLoadAssignment.Builder b = ClusterLoadAssignment.newBuilder()
                .setClusterName("outbound|9080||reviews.default.svc.cluster.local");
        LocalityLbEndpoints.Builder[] zones = new LocalityLbEndpoints.Builder[3];
        for (int z = 0; z < 3; z++) {
            zones[z] = LocalityLbEndpoints.newBuilder().setLocality(Locality.newBuilder().setRegion("r")
                    .setZone("z" + z)).setLoadBalancingWeight(UInt32Value.of(endpoints / 3));
        }
        for (int i = 0; i < endpoints; i++) {
            String ip = "10." + (i >> 16 & 255) + "." + (i >> 8 & 255) + "." + (i & 255);
            Metadata metadata = Metadata.newBuilder()
                    .putFilterMetadata("istio", Struct.newBuilder().putFields("workload", Value.newBuilder()
                            .setStringValue("reviews-v" + (i % 3 + 1) + ";default;reviews;v" + (i % 3 + 1)
                                    + ";Kubernetes").build()).build())
                    .putFilterMetadata("envoy.transport_socket_match", Struct.newBuilder().putFields("tlsMode",
                            Value.newBuilder().setStringValue("istio").build()).build())
                    .build();
            zones[i % 3].addLbEndpoints(LbEndpoint.newBuilder()
                    .setEndpoint(Endpoint.newBuilder().setAddress(Address.newBuilder().setSocketAddress(
                            SocketAddress.newBuilder().setAddress(ip).setPortValue(9080))))
                    .setHealthStatus(HealthStatus.HEALTHY).setMetadata(metadata)
                    .setLoadBalancingWeight(UInt32Value.of(1)));
        }
        for (LocalityLbEndpoints.Builder zone : zones) {
            b.addEndpoints(zone);
        }
        assignment = b.build();
        if (ProtoConstraintCheck.find(assignment) != null) {
            throw new IllegalStateException(ProtoConstraintCheck.find(assignment).getMessage());
        }
    }

    @Benchmark
    public FieldError check() {
        return ProtoConstraintCheck.find(assignment);
    }
}
