package dev.inmesh.runtime.stats;

import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import java.util.ArrayList;
import java.util.List;

/**
 * The label values of one Istio metric series; a value (record equality) so that series can be cached by it. Field
 * order is the order Istio's stats filter emits them in.
 */
record IstioLabels(String reporter,
                   String sourceWorkload, String sourceWorkloadNamespace, String sourceApp, String sourceVersion,
                   String destinationWorkload, String destinationWorkloadNamespace, String destinationApp,
                   String destinationVersion, String destinationService, String destinationServiceName,
                   String destinationServiceNamespace, String destinationCluster, String requestProtocol,
                   String responseCode, String responseFlags, String connectionSecurityPolicy) {

    /** The labels as Micrometer tags; {@code responseCode} is left out when null (TCP metrics have none). */
    Tags tags() {
        List<Tag> t = new ArrayList<>(17);
        t.add(Tag.of("reporter", reporter));
        t.add(Tag.of("source_workload", sourceWorkload));
        t.add(Tag.of("source_workload_namespace", sourceWorkloadNamespace));
        t.add(Tag.of("source_app", sourceApp));
        t.add(Tag.of("source_version", sourceVersion));
        t.add(Tag.of("destination_workload", destinationWorkload));
        t.add(Tag.of("destination_workload_namespace", destinationWorkloadNamespace));
        t.add(Tag.of("destination_app", destinationApp));
        t.add(Tag.of("destination_version", destinationVersion));
        t.add(Tag.of("destination_service", destinationService));
        t.add(Tag.of("destination_service_name", destinationServiceName));
        t.add(Tag.of("destination_service_namespace", destinationServiceNamespace));
        t.add(Tag.of("destination_cluster", destinationCluster));
        t.add(Tag.of("request_protocol", requestProtocol));
        if (responseCode != null) {
            t.add(Tag.of("response_code", responseCode));
        }
        t.add(Tag.of("response_flags", responseFlags));
        t.add(Tag.of("connection_security_policy", connectionSecurityPolicy));
        return Tags.of(t);
    }
}
