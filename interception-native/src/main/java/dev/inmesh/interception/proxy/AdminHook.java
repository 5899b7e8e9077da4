package dev.inmesh.interception.proxy;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;

/**
 * Where the admin server plugs into the standalone proxy: called before the proxy binds its listeners (as Envoy's
 * admin, it answers while the first configuration's clusters initialize) and before it drops privileges, with the
 * addresses of the bootstrap's {@code admin} (default {@code 127.0.0.1:15000}), health ({@code 0.0.0.0:15021},
 * {@code /healthz/ready}), Prometheus ({@code 0.0.0.0:15090}, {@code /stats/prometheus}) and agent
 * ({@code 0.0.0.0:15020}), each but the admin left out when a listener of the configuration binds its port.
 * The in-JVM mode's admin server and metrics are meant to be passed here, with the same observer given to the
 * router ({@link StandaloneProxy.Settings#observer()}).
 */
@FunctionalInterface
public interface AdminHook {
    /** Starts nothing. */
    AdminHook NONE = (vertx, snapshots, addresses, drain, xds, sds) -> () -> { };

    /**
     * Starts the admin, health and stats endpoints.
     *
     * @param drain what {@code POST /drain_listeners} does to the proxy's listeners, or null for nothing
     * @param xds the control plane's stream (for {@code /debug/xds_status} and the config dump's warming and
     *            rejected resources), or null when the configuration comes from a file
     * @param sds the SDS client whose secrets the config dump lists, or null
     * @return what to close when the proxy stops
     */
    AutoCloseable start(Vertx vertx, SnapshotHolder snapshots, Addresses addresses,
                        dev.inmesh.runtime.admin.AdminServer.DrainListeners drain,
                        dev.inmesh.runtime.config.AdsConfigSource xds,
                        dev.inmesh.runtime.xds.sds.SdsSecretManager sds) throws Exception;

    /** Starts the endpoints with no SDS client. */
    default AutoCloseable start(Vertx vertx, SnapshotHolder snapshots, Addresses addresses,
                                dev.inmesh.runtime.admin.AdminServer.DrainListeners drain,
                                dev.inmesh.runtime.config.AdsConfigSource xds) throws Exception {
        return start(vertx, snapshots, addresses, drain, xds, null);
    }

    /** Starts the endpoints for a configuration from a file. */
    default AutoCloseable start(Vertx vertx, SnapshotHolder snapshots, Addresses addresses,
                                dev.inmesh.runtime.admin.AdminServer.DrainListeners drain) throws Exception {
        return start(vertx, snapshots, addresses, drain, null);
    }

    /** Starts the endpoints without {@code /drain_listeners}, for a configuration from a file. */
    default AutoCloseable start(Vertx vertx, SnapshotHolder snapshots, Addresses addresses) throws Exception {
        return start(vertx, snapshots, addresses, null, null);
    }

    /**
     * This hook with the health, Prometheus and agent ports a command line gave (null: as the proxy passes them; 0:
     * not served).
     */
    default AdminHook withPorts(Integer health, Integer prometheus, Integer agent) {
        return (vertx, snapshots, addresses, drain, xds, sds) -> start(vertx, snapshots,
                addresses.withPorts(health, prometheus, agent), drain, xds, sds);
    }

    /**
     * The admin endpoints' addresses: Envoy's admin, and Istio's health, Prometheus and agent ports; null for one
     * not served.
     */
    record Addresses(InetSocketAddress admin, InetSocketAddress health, InetSocketAddress prometheus,
                     InetSocketAddress agent, java.util.Set<Integer> taken) {
        public static final Addresses DEFAULTS = new Addresses(new InetSocketAddress("127.0.0.1", 15000),
                new InetSocketAddress("0.0.0.0", 15021), new InetSocketAddress("0.0.0.0", 15090),
                new InetSocketAddress("0.0.0.0", 15020));

        /** @param taken the ports the configuration's listeners bind, which the health, Prometheus and agent leave */
        public Addresses {
            taken = java.util.Set.copyOf(taken);
            health = free(health, taken);
            prometheus = free(prometheus, taken);
            agent = free(agent, taken);
        }

        public Addresses(InetSocketAddress admin, InetSocketAddress health, InetSocketAddress prometheus,
                         InetSocketAddress agent) {
            this(admin, health, prometheus, agent, java.util.Set.of());
        }

        /**
         * These addresses without the health, Prometheus and agent ports that a listener of the configuration binds:
         * Istio's bootstrap (and a sidecar's config dump) has listeners of its own on 15090 and 15021, routing to
         * the admin's {@code /stats/prometheus} and the agent's {@code /healthz/ready}, which then serve them, as in
         * Istio's sidecar.
         */
        public Addresses besides(dev.inmesh.runtime.xds.ResourceBundle config) {
            java.util.Set<Integer> bound = new java.util.HashSet<>();
            for (dev.inmesh.api.config.listener.Listener l : config.listeners().values()) {
                if (l.bindToPort() && l.address() != null) {
                    bound.add(l.address().port());
                    l.additionalAddresses().forEach(a -> bound.add(a.port()));
                }
            }
            bound.addAll(taken);
            return new Addresses(admin, health, prometheus, agent, bound);
        }

        private static InetSocketAddress free(InetSocketAddress a, java.util.Set<Integer> bound) {
            return a == null || bound.contains(a.getPort()) ? null : a;
        }

        /**
         * These addresses with the health, Prometheus and agent ports a command line gave (null: as they are; 0: not
         * served), on all interfaces as Istio's; still none on a port a listener of the configuration binds.
         */
        public Addresses withPorts(Integer health, Integer prometheus, Integer agent) {
            return new Addresses(admin, port(this.health, health), port(this.prometheus, prometheus),
                    port(this.agent, agent), taken);
        }

        private static InetSocketAddress port(InetSocketAddress a, Integer port) {
            if (port == null) {
                return a;
            }
            return port == 0 ? null : new InetSocketAddress(a == null ? "0.0.0.0" : a.getHostString(), port);
        }
    }
}
