package dev.inmesh.runtime.admin;

import com.google.protobuf.Any;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.FieldMask;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.FieldMaskUtil;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ListenerParser;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.admin.v3.BootstrapConfigDump;
import io.envoyproxy.envoy.admin.v3.ClustersConfigDump;
import io.envoyproxy.envoy.admin.v3.ConfigDump;
import io.envoyproxy.envoy.admin.v3.EndpointsConfigDump;
import io.envoyproxy.envoy.admin.v3.ListenersConfigDump;
import io.envoyproxy.envoy.admin.v3.RoutesConfigDump;
import io.envoyproxy.envoy.admin.v3.UpdateFailureState;
import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Envoy's v3 admin {@code ConfigDump} of a {@link ResourceBundle}: a minimal {@code BootstrapConfigDump} (the node
 * id, and the bundle's {@code layered_runtime}), then the clusters ({@code dynamic_active_clusters}), endpoints ({@code dynamic_endpoint_configs}), listeners
 * ({@code dynamic_listeners[].active_state}) and route configurations ({@code dynamic_route_configs}, and the
 * listeners' inline ones in {@code static_route_configs}, as Envoy dumps them), each with its
 * {@code version_info} and {@code last_updated} (but the endpoints, which Envoy dumps bare), and last the SDS secrets they name ({@code SecretsConfigDump}, see
 * {@link SecretsDump}), which a reader of the dump leaves out. Clusters and listeners from a bootstrap's
 * {@code static_resources} (see {@link ResourceBundle#isStatic}) go into {@code static_clusters} and
 * {@code static_listeners} (and their endpoints into {@code static_endpoint_configs}) with their
 * {@code last_updated}, as Envoy dumps them; a cluster of its own {@code load_assignment} (static or DNS) has its
 * hosts in the endpoints dump too, as Envoy's, whose endpoints dump lists every cluster's. Resources
 * are printed from the xDS messages they were parsed from, so a dump reads back through
 * {@link dev.inmesh.runtime.xds.EnvoyConfigReader} into the same resources (and {@code istioctl proxy-config} reads
 * it); resources built in code, which have no message, are left out. Given an xDS client's {@link DynamicState},
 * the dump also has, as Envoy's, the clusters warming ({@code dynamic_warming_clusters}), the listeners warming
 * ({@code warming_state}) and each listener's last rejected update ({@code error_state}); a reader of the dump
 * leaves those out, as Envoy's documentation says one recreating a configuration should. The clusters' and
 * listeners' overall {@code version_info} is then, as Envoy's, that of the last CDS or LDS response that added,
 * changed or deleted one; from files, the version of the one updated last.
 */
public final class ConfigDumpBuilder {
    private ConfigDumpBuilder() {}

    /**
     * What {@code /config_dump} is asked for, by Envoy's query parameters: {@code include_eds} (the endpoints are
     * dumped only with it), {@code resource} (only the entries of that repeated field of the dumps, each a config of
     * its own), {@code mask} (a field mask: on each dump without {@code resource}, dropping those it does not fit;
     * on each entry with it, reaching one level into the entry's typed resource) and {@code name_regex} (only the
     * listeners, route configurations, clusters and load assignments whose whole name the expression matches; the
     * bootstrap stays). An empty {@code resource}, {@code mask} or {@code name_regex} is no parameter, as in Envoy.
     *
     * @param resource the field name, or null
     * @param mask the comma-separated field mask, or null
     * @param nameRegex the regular expression names must match as a whole, or null
     */
    public record Query(boolean includeEds, String resource, String mask, String nameRegex) {
        /** Everything, endpoints included: what {@link #build(ResourceBundle, String, Instant)} dumps. */
        public static final Query ALL = new Query(true, null, null, null);

        public Query {
            resource = resource == null || resource.isEmpty() ? null : resource;
            mask = mask == null || mask.isEmpty() ? null : mask;
            nameRegex = nameRegex == null || nameRegex.isEmpty() ? null : nameRegex;
        }
    }

    /** A query Envoy's admin refuses: the HTTP status and text it answers. */
    public static final class QueryException extends Exception {
        private final int status;

        QueryException(int status, String message) {
            super(message);
            this.status = status;
        }

        public int status() {
            return status;
        }
    }

    /**
     * The health of the hosts the cluster manager holds, which the endpoints dump writes as each endpoint's
     * {@code health_status}, as Envoy's dumps its hosts'.
     */
    @FunctionalInterface
    public interface HostHealth {
        /** None known: the load assignments as they came. */
        HostHealth NONE = (assignment, address, port) -> null;

        /**
         * The health of the host at {@code address:port} of the load assignment {@code assignment} (a cluster's
         * name, or its EDS service name); null when the cluster manager holds none.
         */
        io.envoyproxy.envoy.config.core.v3.HealthStatus of(String assignment, String address, int port);
    }

    /** The whole dump as a message, endpoints included (as {@code /config_dump?include_eds}). */
    public static ConfigDump build(ResourceBundle bundle, String nodeId, Instant bootstrapTime) {
        return ConfigDump.newBuilder().addAllConfigs(sections(bundle, DynamicState.NONE, null, node(nodeId),
                bootstrapTime, true, n -> true, HostHealth.NONE).stream().map(Any::pack).toList()).build();
    }

    /** The dump a query asks for, with no workload identity: Istio's {@code default} and {@code ROOTCA} left out. */
    public static ConfigDump build(ResourceBundle bundle, DynamicState dynamic, String nodeId, Instant bootstrapTime,
                                   Query query) throws QueryException {
        return build(bundle, dynamic, null, nodeId, bootstrapTime, query);
    }

    /**
     * The dump a query asks for, as Envoy's admin answers it; its secrets are those the configuration names and
     * Inmesh reads files for, Istio's {@code default} and {@code ROOTCA} from {@code identity}'s (if not null).
     *
     * @throws QueryException as Envoy: 404 for a {@code resource} no dump has, 400 for a {@code resource} that is not
     *     a repeated field, a {@code mask} that fits nothing or a {@code name_regex} that does not compile
     */
    public static ConfigDump build(ResourceBundle bundle, DynamicState dynamic, WorkloadIdentity identity,
                                   String nodeId, Instant bootstrapTime, Query query) throws QueryException {
        return build(bundle, dynamic, identity, node(nodeId), bootstrapTime, query);
    }

    /** The same, the bootstrap showing {@code node}, the whole node the proxy presents to its xDS server. */
    public static ConfigDump build(ResourceBundle bundle, DynamicState dynamic, WorkloadIdentity identity,
                                   Node node, Instant bootstrapTime, Query query) throws QueryException {
        return build(bundle, dynamic, identity, node, bootstrapTime, query, HostHealth.NONE);
    }

    /** The same, each endpoint's {@code health_status} its host's as {@code health} knows it. */
    public static ConfigDump build(ResourceBundle bundle, DynamicState dynamic, WorkloadIdentity identity,
                                   Node node, Instant bootstrapTime, Query query, HostHealth health)
            throws QueryException {
        Predicate<String> names = n -> true;
        if (query.nameRegex() != null) {
            try {
                // RE2's whole match, as Envoy's (config_dump_handler.cc buildNameMatcher)
                names = AdminRegex.compile(query.nameRegex(), true);
            } catch (com.google.re2j.PatternSyntaxException e) {
                throw new QueryException(400, "INVALID_ARGUMENT: Error while parsing name_regex from "
                        + query.nameRegex() + ": " + e.getDescription());
            }
        }
        // As Envoy, the endpoints are dumped (with include_eds) only when there are clusters
        List<Message> sections = sections(bundle, dynamic, identity, node, bootstrapTime,
                query.includeEds() && !bundle.clusters().isEmpty(), names, health);
        FieldMask mask = query.mask() == null ? null : FieldMaskUtil.fromString(query.mask());
        ConfigDump.Builder dump = ConfigDump.newBuilder();
        if (query.resource() != null) {
            for (Message section : sections) {
                FieldDescriptor field = section.getDescriptorForType().findFieldByName(query.resource());
                if (field == null) {
                    continue;
                }
                if (!field.isRepeated()) {
                    throw new QueryException(400, field.getName() + " is not a repeated field. Use ?mask="
                            + field.getName() + " to get only this field");
                }
                for (int i = 0; i < section.getRepeatedFieldCount(field); i++) {
                    Message entry = (Message) section.getRepeatedField(field, i);
                    if (mask != null) {
                        entry = trimEntry(mask, entry);
                        if (entry == null) {
                            throw new QueryException(400, "FieldMask " + mask + " could not be successfully used.");
                        }
                    }
                    dump.addConfigs(Any.pack(entry));
                }
                return dump.build();
            }
            throw new QueryException(404, query.resource() + " not found in config dump");
        }
        for (Message section : sections) {
            if (mask != null) {
                if (!FieldMaskUtil.isValid(section.getDescriptorForType(), mask)) {
                    continue; // a mask fits some dumps, not others
                }
                section = FieldMaskUtil.trim(mask, section);
            }
            dump.addConfigs(Any.pack(section));
        }
        if (mask != null && dump.getConfigsCount() == 0) {
            throw new QueryException(400, "FieldMask " + query.mask()
                    + " could not be successfully applied to any configs.");
        }
        return dump.build();
    }

    /**
     * A load assignment with each endpoint's {@code health_status} its host's now, where the cluster manager holds
     * one, as Envoy's dump writes its hosts' (their active health checks, outlier ejection and EDS status together);
     * the rest as they came.
     */
    private static Message withHealth(Message m, HostHealth health) {
        if (health == HostHealth.NONE
                || !(m instanceof io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment cla)) {
            return m;
        }
        var b = cla.toBuilder();
        for (var locality : b.getEndpointsBuilderList()) {
            for (var lb : locality.getLbEndpointsBuilderList()) {
                var address = lb.getEndpoint().getAddress().getSocketAddress();
                var status = health.of(cla.getClusterName(), address.getAddress(), address.getPortValue());
                if (status != null) {
                    lb.setHealthStatus(status);
                }
            }
        }
        return b.build();
    }

    /**
     * One load assignment into the endpoints dump, static (a bootstrap's cluster's) or dynamic: as Envoy's, which
     * builds this dump from its clusters' hosts, the entry holds the load assignment alone, with no version or time.
     */
    private static void addEndpoints(EndpointsConfigDump.Builder endpoints, Any cla, boolean isStatic) {
        if (isStatic) {
            endpoints.addStaticEndpointConfigs(EndpointsConfigDump.StaticEndpointConfig.newBuilder()
                    .setEndpointConfig(cla));
        } else {
            endpoints.addDynamicEndpointConfigs(EndpointsConfigDump.DynamicEndpointConfig.newBuilder()
                    .setEndpointConfig(cla));
        }
    }

    /**
     * Applies a mask to one entry of a dump, such as {@code cluster.name,last_updated} to a {@code StaticCluster}: a
     * path through the entry's {@code Any} (its resource) is applied to the resource inside; null if the mask does
     * not fit.
     */
    private static Message trimEntry(FieldMask mask, Message entry) {
        Descriptor d = entry.getDescriptorForType();
        FieldMask.Builder outer = FieldMask.newBuilder();
        FieldMask.Builder inner = FieldMask.newBuilder();
        FieldDescriptor anyField = null;
        for (String path : mask.getPathsList()) {
            int dot = path.indexOf('.');
            String first = dot < 0 ? path : path.substring(0, dot);
            FieldDescriptor f = d.findFieldByName(first);
            if (f != null && !f.isRepeated() && f.getJavaType() == FieldDescriptor.JavaType.MESSAGE
                    && f.getMessageType().getFullName().equals(Any.getDescriptor().getFullName())) {
                anyField = f;
                outer.addPaths(first);
                if (dot >= 0) {
                    inner.addPaths(path.substring(dot + 1));
                }
            } else {
                outer.addPaths(path);
            }
        }
        Message out = entry;
        if (anyField != null && inner.getPathsCount() > 0 && entry.hasField(anyField)) {
            Any any = (Any) entry.getField(anyField);
            Descriptor type = EnvoyJson.descriptor(any.getTypeUrl());
            if (type == null || !FieldMaskUtil.isValid(type, inner.build())) {
                return null;
            }
            try {
                Message resource = FieldMaskUtil.trim(inner.build(), DynamicMessage.parseFrom(type, any.getValue()));
                out = entry.toBuilder().setField(anyField, any.toBuilder().setValue(resource.toByteString()).build())
                        .build();
            } catch (InvalidProtocolBufferException e) {
                return null;
            }
        }
        return FieldMaskUtil.isValid(d, outer.build()) ? FieldMaskUtil.trim(outer.build(), out) : null;
    }

    /**
     * The dumps in Envoy's order: bootstrap, clusters, endpoints (when asked), listeners, routes, secrets
     * ({@link SecretsDump}); of the resources and secrets, those whose name {@code names} accepts. As Envoy's, the
     * clusters warming (those of {@link DynamicState#clustersWarmingInUse} too, but not a bootstrap's, which Envoy
     * makes active at once) are in {@code dynamic_warming_clusters} and a listener warming has a {@code warming_state}
     * (beside the {@code active_state} of the version serving, if any), one draining a {@code draining_state} (the
     * version a configuration removed or replaced); a listener whose last update was rejected has an
     * {@code error_state}. Sensitive fields are redacted ({@link SensitiveFields}).
     */
    private static List<Message> sections(ResourceBundle bundle, DynamicState dynamic, WorkloadIdentity identity,
                                          Node node, Instant bootstrapTime, boolean endpointsToo,
                                          Predicate<String> names, HostHealth health) {
        List<Message> dump = new ArrayList<>();
        Bootstrap.Builder bootstrap = Bootstrap.newBuilder().setNode(node);
        if (bundle.runtime() != null) {
            bootstrap.setLayeredRuntime(bundle.runtime().source());
        }
        dump.add(BootstrapConfigDump.newBuilder().setBootstrap(bootstrap)
                .setLastUpdated(timestamp(bootstrapTime)).build());

        ClustersConfigDump.Builder clusters = ClustersConfigDump.newBuilder();
        Latest lc = new Latest();
        for (String name : bundle.clusters().keySet()) {
            Message m = bundle.message(ResourceType.CLUSTER, name);
            if (m != null) {
                ResourceBundle.Version v = bundle.version(ResourceType.CLUSTER, name);
                boolean isStatic = bundle.isStatic(ResourceType.CLUSTER, name);
                if (!isStatic) {
                    lc.see(v); // as Envoy's: the dump's version is CDS's, which static clusters do not have
                }
                if (!names.test(name)) {
                    continue;
                }
                if (isStatic) {
                    clusters.addStaticClusters(ClustersConfigDump.StaticCluster.newBuilder()
                            .setCluster(Any.pack(EnvoyJson.withUnknownTypesNamed(m)))
                            .setLastUpdated(timestamp(v == null ? null : v.lastUpdated())));
                } else if (dynamic.clustersWarmingInUse().contains(name)) {
                    // a new cluster waiting for its first health checks: Envoy's is warming, not active yet, unless
                    // its next version waits (below), which replaced it among Envoy's warming clusters (one a name)
                    if (!dynamic.warmingClusters().containsKey(name)) {
                        clusters.addDynamicWarmingClusters(dynamicCluster(m, v));
                    }
                } else {
                    clusters.addDynamicActiveClusters(dynamicCluster(m, v));
                }
            }
        }
        dynamic.warmingClusters().forEach((name, held) -> {
            if (names.test(name)) {
                clusters.addDynamicWarmingClusters(dynamicCluster(held.message(), held.version()));
            }
        });
        clusters.setVersionInfo(dynamic.typeVersions().getOrDefault(ResourceType.CLUSTER, lc.version()));
        dump.add(clusters.build());

        EndpointsConfigDump.Builder endpoints = EndpointsConfigDump.newBuilder();
        for (String name : bundle.endpoints().keySet()) {
            Message m = bundle.message(ResourceType.ENDPOINT, name);
            if (m != null && names.test(name)) {
                addEndpoints(endpoints, Any.pack(withHealth(m, health)), bundle.isStatic(ResourceType.ENDPOINT, name)
                        || bundle.isStatic(ResourceType.CLUSTER, name));
            }
        }
        for (Map.Entry<String, dev.inmesh.api.config.cluster.Cluster> e : bundle.clusters().entrySet()) {
            // as Envoy's, whose endpoints dump has every cluster's hosts: those a cluster's own load_assignment
            // gives (a static or DNS cluster), as configured, with no version of their own
            String name = e.getKey();
            if (e.getValue().type() != dev.inmesh.api.config.cluster.DiscoveryType.EDS
                    && !bundle.endpoints().containsKey(name) && names.test(name)
                    && bundle.message(ResourceType.CLUSTER, name)
                            instanceof io.envoyproxy.envoy.config.cluster.v3.Cluster c && c.hasLoadAssignment()) {
                addEndpoints(endpoints, Any.pack(withHealth(c.getLoadAssignment().toBuilder().setClusterName(name)
                                .build(), health)),
                        bundle.isStatic(ResourceType.CLUSTER, name));
            }
        }
        if (endpointsToo) {
            dump.add(endpoints.build());
        }

        ListenersConfigDump.Builder listeners = ListenersConfigDump.newBuilder();
        Map<String, ListenersConfigDump.DynamicListener.Builder> dynamicListeners = new LinkedHashMap<>();
        Latest ll = new Latest();
        for (String name : bundle.listeners().keySet()) {
            Message m = bundle.message(ResourceType.LISTENER, name);
            if (m != null) {
                ResourceBundle.Version v = bundle.version(ResourceType.LISTENER, name);
                boolean isStatic = bundle.isStatic(ResourceType.LISTENER, name);
                if (!isStatic) {
                    ll.see(v); // LDS's version, which static listeners do not have
                }
                if (!names.test(name)) {
                    continue;
                }
                if (isStatic) {
                    listeners.addStaticListeners(ListenersConfigDump.StaticListener.newBuilder()
                            .setListener(Any.pack(m)).setLastUpdated(timestamp(v == null ? null : v.lastUpdated())));
                    continue;
                }
                dynamicListener(dynamicListeners, name).setActiveState(listenerState(m, v));
            }
        }
        dynamic.warmingListeners().forEach((name, held) -> {
            if (names.test(name)) {
                dynamicListener(dynamicListeners, name).setWarmingState(listenerState(held.message(),
                        held.version()));
            }
        });
        // as Envoy's listener manager, a draining state after the warming one; of two versions of one name draining,
        // the oldest, Envoy's list being newest first
        for (DynamicState.Draining d : dynamic.drainingListeners()) {
            if (names.test(d.name()) && d.held().message() != null) {
                dynamicListener(dynamicListeners, d.name()).setDrainingState(listenerState(d.held().message(),
                        d.held().version()));
            }
        }
        dynamic.failures(ResourceType.LISTENER).forEach((name, f) -> {
            if (names.test(name)) {
                UpdateFailureState.Builder error = UpdateFailureState.newBuilder().setDetails(f.details())
                        .setVersionInfo(f.versionInfo()).setLastUpdateAttempt(timestamp(f.lastUpdateAttempt()));
                if (printable(f.failedConfiguration())) {
                    error.setFailedConfiguration(Any.pack(f.failedConfiguration()));
                }
                dynamicListener(dynamicListeners, name).setErrorState(error);
            }
        });
        dynamicListeners.values().forEach(listeners::addDynamicListeners);
        listeners.setVersionInfo(dynamic.typeVersions().getOrDefault(ResourceType.LISTENER, ll.version()));
        dump.add(listeners.build());
        // as Envoy's, whose scoped routes' dump is there (empty: Inmesh has no scoped RDS) between these two
        dump.add(io.envoyproxy.envoy.admin.v3.ScopedRoutesConfigDump.getDefaultInstance());

        RoutesConfigDump.Builder routes = RoutesConfigDump.newBuilder();
        for (String name : bundle.routes().keySet()) {
            Message m = bundle.message(ResourceType.ROUTE, name);
            if (m != null && names.test(name)) {
                ResourceBundle.Version v = bundle.version(ResourceType.ROUTE, name);
                RoutesConfigDump.DynamicRouteConfig.Builder r = RoutesConfigDump.DynamicRouteConfig.newBuilder()
                        .setRouteConfig(Any.pack(m));
                if (v != null) {
                    r.setVersionInfo(v.versionInfo()).setLastUpdated(timestamp(v.lastUpdated()));
                }
                routes.addDynamicRouteConfigs(r);
            }
        }
        for (String name : bundle.listeners().keySet()) {
            if (bundle.message(ResourceType.LISTENER, name) instanceof Listener l) {
                ResourceBundle.Version v = bundle.version(ResourceType.LISTENER, name);
                for (RouteConfiguration inline : inlineRouteConfigs(l)) {
                    if (names.test(inline.getName())) {
                        routes.addStaticRouteConfigs(RoutesConfigDump.StaticRouteConfig.newBuilder()
                                .setRouteConfig(Any.pack(inline))
                                .setLastUpdated(timestamp(v == null ? null : v.lastUpdated())));
                    }
                }
            }
        }
        dump.add(routes.build());
        // as Envoy's, the secrets' dump is there with none
        dump.add(SecretsDump.of(bundle, identity, dynamic.sdsSecrets(), names));
        // as Envoy's admin: what the configuration marks sensitive (a private key, ...) is never dumped
        dump.replaceAll(SensitiveFields::redact);
        return dump;
    }

    /**
     * The route configurations listener {@code l}'s connection managers carry inline ({@code route_config}), one per
     * connection manager in the order of its filter chains (the default chain last): Envoy makes a static route
     * configuration provider of each and dumps them all in {@code static_route_configs}, the same configuration
     * once per chain that repeats it (Istio's inbound chains of a port), where {@code istioctl proxy-config route}
     * lists them after the ones from RDS.
     */
    static List<RouteConfiguration> inlineRouteConfigs(Listener l) {
        return ListenerParser.connectionManagers(l).stream().filter(HttpConnectionManager::hasRouteConfig)
                .map(HttpConnectionManager::getRouteConfig).toList();
    }

    /**
     * Whether a rejected resource prints as JSON: one may have been rejected for a typed_config of a type no one
     * here knows, which JSON cannot print; it is left out of its error_state (an xDS client may leave
     * failed_configuration out, Envoy's API says) rather than failing the whole dump.
     */
    private static boolean printable(Message m) {
        if (m == null) {
            return false;
        }
        try {
            EnvoyJson.print(m);
            return true;
        } catch (IllegalStateException e) {
            return false;
        }
    }

    private static ClustersConfigDump.DynamicCluster dynamicCluster(Message m, ResourceBundle.Version v) {
        ClustersConfigDump.DynamicCluster.Builder c = ClustersConfigDump.DynamicCluster.newBuilder()
                .setCluster(Any.pack(EnvoyJson.withUnknownTypesNamed(m)));
        if (v != null) {
            c.setVersionInfo(v.versionInfo()).setLastUpdated(timestamp(v.lastUpdated()));
        }
        return c.build();
    }

    private static ListenersConfigDump.DynamicListenerState listenerState(Message m, ResourceBundle.Version v) {
        ListenersConfigDump.DynamicListenerState.Builder state =
                ListenersConfigDump.DynamicListenerState.newBuilder().setListener(Any.pack(m));
        if (v != null) {
            state.setVersionInfo(v.versionInfo()).setLastUpdated(timestamp(v.lastUpdated()));
        }
        return state.build();
    }

    /** A listener's entry in {@code dynamic_listeners}, made on first use: one entry per name, as Envoy's. */
    private static ListenersConfigDump.DynamicListener.Builder dynamicListener(
            Map<String, ListenersConfigDump.DynamicListener.Builder> entries, String name) {
        return entries.computeIfAbsent(name, n -> ListenersConfigDump.DynamicListener.newBuilder().setName(n));
    }

    /**
     * The dump as Envoy's admin prints it (JSON, snake_case field names, typed {@code Any}s). CPU-heavy for big
     * configurations: call it off the event loop.
     */
    public static String json(ResourceBundle bundle, String nodeId, Instant bootstrapTime) {
        return EnvoyJson.print(build(bundle, nodeId, bootstrapTime));
    }

    /**
     * The dump a query asks for, with what an xDS client holds beside the bundle, printed as
     * {@link #json(ResourceBundle, String, Instant)} prints the whole.
     */
    public static String json(ResourceBundle bundle, DynamicState dynamic, String nodeId, Instant bootstrapTime,
                              Query query) throws QueryException {
        return json(bundle, dynamic, null, nodeId, bootstrapTime, query);
    }

    /** The same, Istio's {@code default} and {@code ROOTCA} secrets read from {@code identity}'s files. */
    public static String json(ResourceBundle bundle, DynamicState dynamic, WorkloadIdentity identity, String nodeId,
                              Instant bootstrapTime, Query query) throws QueryException {
        return json(bundle, dynamic, identity, node(nodeId), bootstrapTime, query);
    }

    /** The same, the bootstrap showing {@code node}, the whole node the proxy presents to its xDS server. */
    public static String json(ResourceBundle bundle, DynamicState dynamic, WorkloadIdentity identity, Node node,
                              Instant bootstrapTime, Query query) throws QueryException {
        return EnvoyJson.print(build(bundle, dynamic, identity, node, bootstrapTime, query));
    }

    /** The same, each endpoint's {@code health_status} its host's as {@code health} knows it. */
    public static String json(ResourceBundle bundle, DynamicState dynamic, WorkloadIdentity identity, Node node,
                              Instant bootstrapTime, Query query, HostHealth health) throws QueryException {
        return EnvoyJson.print(build(bundle, dynamic, identity, node, bootstrapTime, query, health));
    }

    /** A node known by its id alone. */
    private static Node node(String nodeId) {
        return dev.inmesh.runtime.xds.ads.NodeBuilder.local(nodeId);
    }

    /** A time as Envoy's dump writes it: to the millisecond ({@code 2026-11-30T08:14:02.117Z}), truncated. */
    static Timestamp timestamp(Instant t) {
        Instant i = t == null ? Instant.EPOCH : t.truncatedTo(java.time.temporal.ChronoUnit.MILLIS);
        return Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
    }

    /**
     * The version of the most recently updated resource: the dump's overall {@code version_info} when the
     * {@link DynamicState} has none of its type (a configuration from files).
     */
    private static final class Latest {
        private ResourceBundle.Version latest;

        void see(ResourceBundle.Version v) {
            if (v != null && (latest == null || !v.lastUpdated().isBefore(latest.lastUpdated()))) {
                latest = v;
            }
        }

        String version() {
            return latest == null ? "" : latest.versionInfo();
        }
    }
}
