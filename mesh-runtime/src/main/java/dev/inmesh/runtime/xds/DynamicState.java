package dev.inmesh.runtime.xds;

import com.google.protobuf.Message;
import java.time.Instant;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What an xDS client holds beside the configuration it serves, as Envoy's config dump shows it: the listeners and
 * clusters warming (a new version that waits for its route configurations or load assignment while the version
 * before it, if any, serves) and the last rejected update of each resource (Envoy's {@code UpdateFailureState}), set
 * by a rejected update and cleared by an accepted one, and the {@code version_info} of the last response of each
 * type that changed what the client holds (Envoy's LDS and CDS {@code version_info}). Immutable.
 *
 * @param warmingListeners the listeners warming, by name
 * @param warmingClusters the clusters warming, by name
 * @param failures the last rejected update of a resource, keyed by {@link ResourceBundle#key}
 * @param typeVersions by type, the version_info of the last response that added, changed or deleted a resource of
 *     that type (warming ones too), as the config dump's {@code version_info} shows it; a type none changed yet is
 *     absent
 * @param clustersWarmingInUse the clusters of the configuration in force that are not in use yet (a new cluster
 *     waiting for its first health checks): Envoy holds such a cluster among its warming ones, not its active ones
 * @param sdsSecrets the secrets fetched over SDS (gRPC) as the SDS client holds them
 * @param drainingListeners the listeners draining, newest first, as Envoy's listener manager lists them: each a
 *     version a configuration removed or replaced other than in its filter chains, whose connections drain for the
 *     drain time (Envoy's draining listeners)
 */
public record DynamicState(Map<String, Held> warmingListeners, Map<String, Held> warmingClusters,
                           Map<String, Failure> failures, Map<ResourceType, String> typeVersions,
                           Set<String> clustersWarmingInUse, SdsSecrets sdsSecrets,
                           List<Draining> drainingListeners) {
    /** Nothing warming, nothing rejected: a configuration from a file. */
    public static final DynamicState NONE = new DynamicState(Map.of(), Map.of(), Map.of());

    public DynamicState {
        warmingListeners = copy(warmingListeners);
        warmingClusters = copy(warmingClusters);
        failures = copy(failures);
        typeVersions = copy(typeVersions);
        clustersWarmingInUse = Set.copyOf(clustersWarmingInUse);
        sdsSecrets = sdsSecrets == null ? SdsSecrets.NONE : sdsSecrets;
        drainingListeners = List.copyOf(drainingListeners);
    }

    /** The same, with no listener draining. */
    public DynamicState(Map<String, Held> warmingListeners, Map<String, Held> warmingClusters,
                        Map<String, Failure> failures, Map<ResourceType, String> typeVersions,
                        Set<String> clustersWarmingInUse, SdsSecrets sdsSecrets) {
        this(warmingListeners, warmingClusters, failures, typeVersions, clustersWarmingInUse, sdsSecrets, List.of());
    }

    /** The same, with no secret fetched over SDS. */
    public DynamicState(Map<String, Held> warmingListeners, Map<String, Held> warmingClusters,
                        Map<String, Failure> failures, Map<ResourceType, String> typeVersions,
                        Set<String> clustersWarmingInUse) {
        this(warmingListeners, warmingClusters, failures, typeVersions, clustersWarmingInUse, null);
    }

    /** What an xDS client holds, with no cluster of the configuration in force warming. */
    public DynamicState(Map<String, Held> warmingListeners, Map<String, Held> warmingClusters,
                        Map<String, Failure> failures, Map<ResourceType, String> typeVersions) {
        this(warmingListeners, warmingClusters, failures, typeVersions, Set.of());
    }

    /** With no response of any type having changed anything yet. */
    public DynamicState(Map<String, Held> warmingListeners, Map<String, Held> warmingClusters,
                        Map<String, Failure> failures) {
        this(warmingListeners, warmingClusters, failures, Map.of());
    }

    /** The same, with {@code names} the clusters of the configuration in force that warm. */
    public DynamicState withClustersWarmingInUse(Set<String> names) {
        return new DynamicState(warmingListeners, warmingClusters, failures, typeVersions, names, sdsSecrets,
                drainingListeners);
    }

    /** The same, with the secrets the SDS client {@code sds} holds now (none when null). */
    public DynamicState withSdsSecrets(dev.inmesh.runtime.xds.sds.SdsSecretManager sds) {
        return sds == null ? this : new DynamicState(warmingListeners, warmingClusters, failures, typeVersions,
                clustersWarmingInUse, new SdsSecrets(sds.active(), sds.warming()), drainingListeners);
    }

    /** The same, with these listeners draining. */
    public DynamicState withDrainingListeners(List<Draining> draining) {
        return new DynamicState(warmingListeners, warmingClusters, failures, typeVersions, clustersWarmingInUse,
                sdsSecrets, draining);
    }

    /** A version of listener {@code name} that drains: the message it came from and its version. */
    public record Draining(String name, Held held) {}

    /**
     * The secrets an SDS client holds, as Envoy's secret manager dumps them.
     *
     * @param active the secrets taken, as the server last sent them
     * @param warming the names asked for whose first secret has not arrived
     */
    public record SdsSecrets(List<dev.inmesh.runtime.xds.sds.SdsSecret> active, List<String> warming) {
        public static final SdsSecrets NONE = new SdsSecrets(List.of(), List.of());

        public SdsSecrets {
            active = List.copyOf(active);
            warming = List.copyOf(warming);
        }
    }

    /** A resource held: the message it came from and its version. */
    public record Held(Message message, ResourceBundle.Version version) {}

    /**
     * A rejected update of one resource.
     *
     * @param failedConfiguration the resource rejected, or null when it could not be decoded
     * @param versionInfo the version_info of the response that carried it
     * @param lastUpdateAttempt when it was rejected
     * @param details why
     */
    public record Failure(Message failedConfiguration, String versionInfo, Instant lastUpdateAttempt,
                          String details) {}

    /** The last rejected update of a resource, or null when its last update was accepted. */
    public Failure failure(ResourceType type, String name) {
        return failures.get(ResourceBundle.key(type, name));
    }

    /** The last rejected updates of one type's resources, by name. */
    public Map<String, Failure> failures(ResourceType type) {
        String prefix = ResourceBundle.key(type, "");
        Map<String, Failure> out = new LinkedHashMap<>();
        failures.forEach((key, f) -> {
            if (key.startsWith(prefix)) {
                out.put(key.substring(prefix.length()), f);
            }
        });
        return out;
    }

    private static <K, V> Map<K, V> copy(Map<K, V> m) {
        return Collections.unmodifiableMap(new LinkedHashMap<>(m));
    }
}
