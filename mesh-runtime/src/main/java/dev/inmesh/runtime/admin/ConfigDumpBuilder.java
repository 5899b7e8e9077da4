package dev.inmesh.runtime.admin;

import com.google.protobuf.Any;
import com.google.protobuf.Message;
import com.google.protobuf.Timestamp;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.admin.v3.BootstrapConfigDump;
import io.envoyproxy.envoy.admin.v3.ClustersConfigDump;
import io.envoyproxy.envoy.admin.v3.ConfigDump;
import io.envoyproxy.envoy.admin.v3.EndpointsConfigDump;
import io.envoyproxy.envoy.admin.v3.ListenersConfigDump;
import io.envoyproxy.envoy.admin.v3.RoutesConfigDump;
import io.envoyproxy.envoy.config.bootstrap.v3.Bootstrap;
import io.envoyproxy.envoy.config.core.v3.Node;
import java.time.Instant;

/**
 * Envoy's v3 admin {@code ConfigDump} of a {@link ResourceBundle}: a minimal {@code BootstrapConfigDump} (the node
 * id), then the clusters ({@code dynamic_active_clusters}), endpoints ({@code dynamic_endpoint_configs}), listeners
 * ({@code dynamic_listeners[].active_state}) and route configurations ({@code dynamic_route_configs}), each with its
 * {@code version_info} and {@code last_updated}. Clusters and listeners from a bootstrap's {@code static_resources}
 * (see {@link ResourceBundle#isStatic}) go into {@code static_clusters} and {@code static_listeners} (and their
 * endpoints into {@code static_endpoint_configs}) with their {@code last_updated}, as Envoy dumps them. Resources are printed from the xDS messages they were parsed from, so
 * a dump reads back through {@link dev.inmesh.runtime.xds.EnvoyConfigReader} into the same resources (and
 * {@code istioctl proxy-config} reads it); resources built in code, which have no message, are left out.
 */
public final class ConfigDumpBuilder {
    private ConfigDumpBuilder() {}

    /** The dump as a message. */
    public static ConfigDump build(ResourceBundle bundle, String nodeId, Instant bootstrapTime) {
        ConfigDump.Builder dump = ConfigDump.newBuilder();
        dump.addConfigs(Any.pack(BootstrapConfigDump.newBuilder()
                .setBootstrap(Bootstrap.newBuilder().setNode(Node.newBuilder().setId(nodeId == null ? "" : nodeId)))
                .setLastUpdated(timestamp(bootstrapTime)).build()));

        ClustersConfigDump.Builder clusters = ClustersConfigDump.newBuilder();
        Latest lc = new Latest();
        for (String name : bundle.clusters().keySet()) {
            Message m = bundle.message(ResourceType.CLUSTER, name);
            if (m != null) {
                ResourceBundle.Version v = bundle.version(ResourceType.CLUSTER, name);
                ClustersConfigDump.DynamicCluster.Builder c = ClustersConfigDump.DynamicCluster.newBuilder()
                        .setCluster(Any.pack(m));
                if (v != null) {
                    c.setVersionInfo(v.versionInfo()).setLastUpdated(timestamp(v.lastUpdated()));
                }
                lc.see(v);
                if (bundle.isStatic(ResourceType.CLUSTER, name)) {
                    clusters.addStaticClusters(ClustersConfigDump.StaticCluster.newBuilder().setCluster(Any.pack(m))
                            .setLastUpdated(timestamp(v == null ? null : v.lastUpdated())));
                } else {
                    clusters.addDynamicActiveClusters(c);
                }
            }
        }
        clusters.setVersionInfo(lc.version());
        dump.addConfigs(Any.pack(clusters.build()));

        EndpointsConfigDump.Builder endpoints = EndpointsConfigDump.newBuilder();
        for (String name : bundle.endpoints().keySet()) {
            Message m = bundle.message(ResourceType.ENDPOINT, name);
            if (m != null) {
                ResourceBundle.Version v = bundle.version(ResourceType.ENDPOINT, name);
                EndpointsConfigDump.DynamicEndpointConfig.Builder e =
                        EndpointsConfigDump.DynamicEndpointConfig.newBuilder().setEndpointConfig(Any.pack(m));
                if (bundle.isStatic(ResourceType.ENDPOINT, name) || bundle.isStatic(ResourceType.CLUSTER, name)) {
                    endpoints.addStaticEndpointConfigs(EndpointsConfigDump.StaticEndpointConfig.newBuilder()
                            .setEndpointConfig(Any.pack(m))
                            .setLastUpdated(timestamp(v == null ? null : v.lastUpdated())));
                    continue;
                }
                if (v != null) {
                    e.setVersionInfo(v.versionInfo()).setLastUpdated(timestamp(v.lastUpdated()));
                }
                endpoints.addDynamicEndpointConfigs(e);
            }
        }
        dump.addConfigs(Any.pack(endpoints.build()));

        ListenersConfigDump.Builder listeners = ListenersConfigDump.newBuilder();
        Latest ll = new Latest();
        for (String name : bundle.listeners().keySet()) {
            Message m = bundle.message(ResourceType.LISTENER, name);
            if (m != null) {
                ResourceBundle.Version v = bundle.version(ResourceType.LISTENER, name);
                ListenersConfigDump.DynamicListenerState.Builder state =
                        ListenersConfigDump.DynamicListenerState.newBuilder().setListener(Any.pack(m));
                if (v != null) {
                    state.setVersionInfo(v.versionInfo()).setLastUpdated(timestamp(v.lastUpdated()));
                }
                ll.see(v);
                if (bundle.isStatic(ResourceType.LISTENER, name)) {
                    listeners.addStaticListeners(ListenersConfigDump.StaticListener.newBuilder()
                            .setListener(Any.pack(m)).setLastUpdated(timestamp(v == null ? null : v.lastUpdated())));
                    continue;
                }
                listeners.addDynamicListeners(ListenersConfigDump.DynamicListener.newBuilder().setName(name)
                        .setActiveState(state));
            }
        }
        listeners.setVersionInfo(ll.version());
        dump.addConfigs(Any.pack(listeners.build()));

        RoutesConfigDump.Builder routes = RoutesConfigDump.newBuilder();
        for (String name : bundle.routes().keySet()) {
            Message m = bundle.message(ResourceType.ROUTE, name);
            if (m != null) {
                ResourceBundle.Version v = bundle.version(ResourceType.ROUTE, name);
                RoutesConfigDump.DynamicRouteConfig.Builder r = RoutesConfigDump.DynamicRouteConfig.newBuilder()
                        .setRouteConfig(Any.pack(m));
                if (v != null) {
                    r.setVersionInfo(v.versionInfo()).setLastUpdated(timestamp(v.lastUpdated()));
                }
                routes.addDynamicRouteConfigs(r);
            }
        }
        dump.addConfigs(Any.pack(routes.build()));
        return dump.build();
    }

    /**
     * The dump as Envoy's admin prints it (JSON, snake_case field names, typed {@code Any}s). CPU-heavy for big
     * configurations: call it off the event loop.
     */
    public static String json(ResourceBundle bundle, String nodeId, Instant bootstrapTime) {
        return EnvoyJson.print(build(bundle, nodeId, bootstrapTime));
    }

    private static Timestamp timestamp(Instant t) {
        Instant i = t == null ? Instant.EPOCH : t;
        return Timestamp.newBuilder().setSeconds(i.getEpochSecond()).setNanos(i.getNano()).build();
    }

    /** The version of the most recently updated resource: the dump's overall {@code version_info}. */
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
