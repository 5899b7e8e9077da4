package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.endpoint.ClusterLoadAssignment;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.Tracing;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.runtime.runtime.LayeredRuntime;
import com.google.protobuf.Message;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * A complete set of parsed resources by name, with the version and update time of each: what a config source hands
 * to the snapshot compiler. Immutable. {@link #statics} holds the keys (see {@link #key}) of the resources that came
 * from a bootstrap's {@code static_resources} (or a dump's {@code static_*} lists) rather than from xDS: Envoy's
 * admin reports those as static ({@code static_clusters}, {@code added_via_api false}). {@link #tracer} is the
 * bootstrap's tracer ({@code tracing.http}), which reports for the connection managers whose {@code tracing}
 * names no provider; null for none. {@link #runtime} is the bootstrap's {@code layered_runtime}; null for none (no
 * runtime layers: every runtime key takes its default).
 */
public record ResourceBundle(Map<String, Listener> listeners, Map<String, RouteConfiguration> routes,
                             Map<String, Cluster> clusters, Map<String, ClusterLoadAssignment> endpoints,
                             Map<String, Version> versions, Map<String, Message> messages, Set<String> statics,
                             Tracing.Provider tracer, LayeredRuntime runtime) {

    public static final ResourceBundle EMPTY = new ResourceBundle(Map.of(), Map.of(), Map.of(), Map.of(), Map.of(),
            Map.of(), Set.of());

    public ResourceBundle {
        listeners = copy(listeners);
        routes = copy(routes);
        clusters = copy(clusters);
        endpoints = copy(endpoints);
        versions = copy(versions);
        messages = copy(messages);
        statics = java.util.Collections.unmodifiableSet(new LinkedHashSet<>(statics));
    }

    /** A bundle without a bootstrap tracer or runtime. */
    public ResourceBundle(Map<String, Listener> listeners, Map<String, RouteConfiguration> routes,
                          Map<String, Cluster> clusters, Map<String, ClusterLoadAssignment> endpoints,
                          Map<String, Version> versions, Map<String, Message> messages, Set<String> statics) {
        this(listeners, routes, clusters, endpoints, versions, messages, statics, null, null);
    }

    /** A bundle of resources that all came from xDS (none static). */
    public ResourceBundle(Map<String, Listener> listeners, Map<String, RouteConfiguration> routes,
                          Map<String, Cluster> clusters, Map<String, ClusterLoadAssignment> endpoints,
                          Map<String, Version> versions, Map<String, Message> messages) {
        this(listeners, routes, clusters, endpoints, versions, messages, Set.of());
    }

    /** Whether a resource came from a bootstrap's {@code static_resources} rather than from xDS. */
    public boolean isStatic(ResourceType type, String name) {
        return statics.contains(key(type, name));
    }

    /**
     * The Envoy message a resource was parsed from, keyed like {@link #versions}, or null for resources built in
     * code; {@code /config_dump} prints these, so that a dump loads back into the same configuration.
     */
    public Message message(ResourceType type, String name) {
        return messages.get(key(type, name));
    }

    private static <V> Map<String, V> copy(Map<String, V> m) {
        return java.util.Collections.unmodifiableMap(new LinkedHashMap<>(m));
    }

    /** The version and update time of one resource, keyed in {@link #versions} by {@link #key}. */
    public record Version(String versionInfo, Instant lastUpdated) {}

    /** The key of a resource in {@link #versions}: {@code Kind/name}. */
    public static String key(ResourceType type, String name) {
        return type.kind() + "/" + name;
    }

    /** The version of a resource, or null. */
    public Version version(ResourceType type, String name) {
        return versions.get(key(type, name));
    }

    /**
     * This bundle with each resource that {@code previous} has unchanged (the same message, both static or both not)
     * keeping the version and update time it had there, as Envoy leaves a listener or cluster a new update gives
     * again unchanged as it was (its dump's {@code version_info} and {@code last_updated} those of the update that
     * last changed it); the others keep this bundle's.
     */
    public ResourceBundle keepingVersionsOf(ResourceBundle previous) {
        if (previous == null || previous.versions().isEmpty()) {
            return this;
        }
        Map<String, Version> kept = new LinkedHashMap<>(versions);
        boolean changed = false;
        for (Map.Entry<String, Version> e : versions.entrySet()) {
            String k = e.getKey();
            Version before = previous.versions().get(k);
            Message m = messages.get(k);
            if (before != null && m != null && !before.equals(e.getValue()) && m.equals(previous.messages().get(k))
                    && statics.contains(k) == previous.statics().contains(k)) {
                kept.put(k, before);
                changed = true;
            }
        }
        return changed ? new ResourceBundle(listeners, routes, clusters, endpoints, kept, messages, statics, tracer,
                runtime) : this;
    }

    /** A mutable builder; later puts of a name replace earlier ones. */
    public static Builder builder() {
        return new Builder();
    }

    public static final class Builder {
        private final Map<String, Listener> listeners = new LinkedHashMap<>();
        private final Map<String, RouteConfiguration> routes = new LinkedHashMap<>();
        private final Map<String, Cluster> clusters = new LinkedHashMap<>();
        private final Map<String, ClusterLoadAssignment> endpoints = new LinkedHashMap<>();
        private final Map<String, Version> versions = new LinkedHashMap<>();
        private final Map<String, Message> messages = new LinkedHashMap<>();
        private final Set<String> statics = new LinkedHashSet<>();
        private Tracing.Provider tracer;
        private LayeredRuntime runtime;
        /** Where a resource that does not read goes, when it is to be left out rather than fail the read; or null. */
        private java.util.function.Consumer<String> leftOut;

        /**
         * Leaves out a resource Inmesh refuses (a valid resource of what Inmesh does not serve), telling {@code why}
         * to {@code leftOut}, instead of failing the whole read: for tools that show what a dump holds, not for
         * configuration that is served.
         */
        public Builder leavingOut(java.util.function.Consumer<String> leftOut) {
            this.leftOut = leftOut;
            return this;
        }

        /** Whether a resource Inmesh refuses is left out ({@link #leavingOut}), after telling why. */
        boolean leftOut(String why) {
            if (leftOut == null) {
                return false;
            }
            leftOut.accept(why);
            return true;
        }

        public Builder listener(Listener l, Version v) {
            listeners.put(l.name(), l);
            return version(ResourceType.LISTENER, l.name(), v);
        }

        public Builder route(RouteConfiguration r, Version v) {
            routes.put(r.name(), r);
            return version(ResourceType.ROUTE, r.name(), v);
        }

        public Builder cluster(Cluster c, Version v) {
            clusters.put(c.name(), c);
            return version(ResourceType.CLUSTER, c.name(), v);
        }

        public Builder endpoints(ClusterLoadAssignment e, Version v) {
            endpoints.put(e.clusterName(), e);
            return version(ResourceType.ENDPOINT, e.clusterName(), v);
        }

        /** Whether a resource of this type and name has been added. */
        public boolean contains(ResourceType type, String name) {
            return switch (type) {
                case LISTENER -> listeners.containsKey(name);
                case ROUTE -> routes.containsKey(name);
                case CLUSTER -> clusters.containsKey(name);
                case ENDPOINT -> endpoints.containsKey(name);
            };
        }

        /** Adds any parsed resource by its record type. */
        public Builder add(Object resource, Version v) {
            if (resource instanceof Listener l) {
                return listener(l, v);
            } else if (resource instanceof RouteConfiguration r) {
                return route(r, v);
            } else if (resource instanceof Cluster c) {
                return cluster(c, v);
            } else if (resource instanceof ClusterLoadAssignment e) {
                return endpoints(e, v);
            }
            throw new IllegalArgumentException("not a resource: " + resource.getClass().getName());
        }

        /** Adds a parsed resource together with the message it was parsed from. */
        public Builder add(Object resource, Version v, Message source) {
            add(resource, v);
            ResourceType type = resource instanceof Listener ? ResourceType.LISTENER
                    : resource instanceof RouteConfiguration ? ResourceType.ROUTE
                    : resource instanceof Cluster ? ResourceType.CLUSTER : ResourceType.ENDPOINT;
            String name = resource instanceof ClusterLoadAssignment e ? e.clusterName()
                    : resource instanceof Listener l ? l.name()
                    : resource instanceof RouteConfiguration r ? r.name() : ((Cluster) resource).name();
            if (source != null) {
                messages.put(key(type, name), source);
            }
            return this;
        }

        /** Removes a resource (and its version and message). */
        public Builder remove(ResourceType type, String name) {
            switch (type) {
                case LISTENER -> listeners.remove(name);
                case ROUTE -> routes.remove(name);
                case CLUSTER -> clusters.remove(name);
                case ENDPOINT -> endpoints.remove(name);
            }
            versions.remove(key(type, name));
            messages.remove(key(type, name));
            statics.remove(key(type, name));
            return this;
        }

        /** Marks a resource as one from a bootstrap's {@code static_resources} (see {@link ResourceBundle#statics}). */
        public Builder markStatic(ResourceType type, String name) {
            statics.add(key(type, name));
            return this;
        }

        /** Sets the bootstrap's tracer ({@code tracing.http}; see {@link ResourceBundle#tracer}). */
        public Builder tracer(Tracing.Provider t) {
            this.tracer = t;
            return this;
        }

        /** Sets the bootstrap's {@code layered_runtime} (see {@link ResourceBundle#runtime}). */
        public Builder runtime(LayeredRuntime r) {
            this.runtime = r;
            return this;
        }

        /** Starts from an existing bundle's resources. */
        public Builder from(ResourceBundle b) {
            listeners.putAll(b.listeners());
            routes.putAll(b.routes());
            clusters.putAll(b.clusters());
            endpoints.putAll(b.endpoints());
            versions.putAll(b.versions());
            messages.putAll(b.messages());
            statics.addAll(b.statics());
            tracer = b.tracer();
            runtime = b.runtime();
            return this;
        }

        private Builder version(ResourceType type, String name, Version v) {
            if (v != null) {
                versions.put(key(type, name), v);
            }
            return this;
        }

        public ResourceBundle build() {
            return new ResourceBundle(listeners, routes, clusters, endpoints, versions, messages, statics, tracer,
                    runtime);
        }
    }
}
