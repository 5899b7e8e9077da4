package dev.inmesh.interception.proxy;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.vertx.core.Vertx;
import java.net.InetSocketAddress;

/**
 * Where the admin server plugs into the standalone proxy: called once the proxy's listeners are bound and before it
 * drops privileges, with the addresses of the bootstrap's {@code admin} (default {@code 127.0.0.1:15000}), health
 * ({@code 0.0.0.0:15021}, {@code /healthz/ready}), Prometheus ({@code 0.0.0.0:15090}, {@code /stats/prometheus}) and
 * agent ({@code 0.0.0.0:15020}).
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

    /** The admin endpoints' addresses: Envoy's admin, and Istio's health, Prometheus and agent ports. */
    record Addresses(InetSocketAddress admin, InetSocketAddress health, InetSocketAddress prometheus,
                     InetSocketAddress agent) {
        public static final Addresses DEFAULTS = new Addresses(new InetSocketAddress("127.0.0.1", 15000),
                new InetSocketAddress("0.0.0.0", 15021), new InetSocketAddress("0.0.0.0", 15090),
                new InetSocketAddress("0.0.0.0", 15020));
    }
}
