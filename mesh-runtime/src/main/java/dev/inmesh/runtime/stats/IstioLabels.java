package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import java.util.ArrayList;
import java.util.List;

/**
 * The label values of one Istio metric series; a value (record equality) so that series can be cached by it. Field
 * order is the order of Istio's standard label list.
 */
record IstioLabels(String reporter,
                   String sourceWorkload, String sourceWorkloadNamespace, String sourcePrincipal, String sourceApp,
                   String sourceVersion, String sourceCanonicalService, String sourceCanonicalRevision,
                   String sourceCluster,
                   String destinationWorkload, String destinationWorkloadNamespace, String destinationPrincipal,
                   String destinationApp, String destinationVersion, String destinationService,
                   String destinationServiceName, String destinationServiceNamespace,
                   String destinationCanonicalService, String destinationCanonicalRevision, String destinationCluster,
                   String requestProtocol, String responseFlags, String connectionSecurityPolicy,
                   String responseCode, String grpcResponseStatus) {

    /**
     * These labels without those of the request's outcome ({@code request_protocol}, {@code response_flags},
     * {@code connection_security_policy}, {@code response_code}, {@code grpc_response_status}): Istio's stats label
     * the gRPC message counts with the reporter and the peers only.
     */
    IstioLabels peersOnly() {
        return new IstioLabels(reporter, sourceWorkload, sourceWorkloadNamespace, sourcePrincipal, sourceApp,
                sourceVersion, sourceCanonicalService, sourceCanonicalRevision, sourceCluster, destinationWorkload,
                destinationWorkloadNamespace, destinationPrincipal, destinationApp, destinationVersion,
                destinationService, destinationServiceName, destinationServiceNamespace, destinationCanonicalService,
                destinationCanonicalRevision, destinationCluster, null, null, null, null, null);
    }

    /**
     * The labels as Micrometer tags; those of the request's outcome are left out when null ({@code responseCode} and
     * {@code grpcResponseStatus} on TCP metrics, all of them on the gRPC message counts, {@link #peersOnly}).
     */
    Tags tags() {
        List<Tag> t = new ArrayList<>(25);
        t.add(Tag.of("reporter", reporter));
        t.add(Tag.of("source_workload", sourceWorkload));
        t.add(Tag.of("source_workload_namespace", sourceWorkloadNamespace));
        t.add(Tag.of("source_principal", sourcePrincipal));
        t.add(Tag.of("source_app", sourceApp));
        t.add(Tag.of("source_version", sourceVersion));
        t.add(Tag.of("source_canonical_service", sourceCanonicalService));
        t.add(Tag.of("source_canonical_revision", sourceCanonicalRevision));
        t.add(Tag.of("source_cluster", sourceCluster));
        t.add(Tag.of("destination_workload", destinationWorkload));
        t.add(Tag.of("destination_workload_namespace", destinationWorkloadNamespace));
        t.add(Tag.of("destination_principal", destinationPrincipal));
        t.add(Tag.of("destination_app", destinationApp));
        t.add(Tag.of("destination_version", destinationVersion));
        t.add(Tag.of("destination_service", destinationService));
        t.add(Tag.of("destination_service_name", destinationServiceName));
        t.add(Tag.of("destination_service_namespace", destinationServiceNamespace));
        t.add(Tag.of("destination_canonical_service", destinationCanonicalService));
        t.add(Tag.of("destination_canonical_revision", destinationCanonicalRevision));
        t.add(Tag.of("destination_cluster", destinationCluster));
        if (requestProtocol != null) {
            t.add(Tag.of("request_protocol", requestProtocol));
            t.add(Tag.of("response_flags", responseFlags));
            t.add(Tag.of("connection_security_policy", connectionSecurityPolicy));
        }
        if (responseCode != null) {
            t.add(Tag.of("response_code", responseCode));
        }
        if (grpcResponseStatus != null) {
            t.add(Tag.of("grpc_response_status", grpcResponseStatus));
        }
        return Tags.of(t);
    }
}
