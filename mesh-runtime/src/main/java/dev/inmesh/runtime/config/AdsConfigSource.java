package dev.inmesh.runtime.config;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.ads.AdsClient;
import dev.inmesh.runtime.xds.ads.AdsOptions;
import dev.inmesh.runtime.xds.ads.XdsStatus;
import io.vertx.core.Future;
import io.vertx.core.Vertx;

/**
 * Configuration from an xDS server over ADS ({@link AdsClient}). {@link #start} completes when the first complete
 * set of CDS, EDS, LDS and RDS has arrived (or timed out, as Envoy's initial fetch timeouts, also while no server
 * can be reached; a zero timeout waits for a server) and been applied; it fails only when closed first.
 */
public final class AdsConfigSource implements ConfigSource {
    private final Vertx vertx;
    private final AdsOptions options;
    private final dev.inmesh.runtime.xds.ResourceBundle statics;
    private final WorkloadIdentity identity;
    private dev.inmesh.runtime.xds.sds.SdsSecretManager sds;
    private volatile AdsClient client;

    public AdsConfigSource(Vertx vertx, AdsOptions options) {
        this(vertx, options, dev.inmesh.runtime.xds.ResourceBundle.EMPTY);
    }

    /**
     * A source that serves {@code statics} (a bootstrap's {@code static_resources}) beside what the server sends, as
     * Envoy serves a bootstrap's static resources with its dynamic ones.
     */
    public AdsConfigSource(Vertx vertx, AdsOptions options, dev.inmesh.runtime.xds.ResourceBundle statics) {
        this(vertx, options, statics, null);
    }

    /**
     * The same, the TLS contexts naming Istio's SDS secrets {@code default} and {@code ROOTCA} reading the files of
     * {@code identity} (null: refused).
     */
    public AdsConfigSource(Vertx vertx, AdsOptions options, dev.inmesh.runtime.xds.ResourceBundle statics,
                           WorkloadIdentity identity) {
        this.vertx = vertx;
        this.options = options;
        this.statics = statics;
        this.identity = identity;
    }

    /**
     * Has the TLS contexts whose {@code sds_config} names a cluster {@code sds} knows (the bootstrap's static
     * {@code sds-grpc}) fetch their secrets with it, rather than refuse them, and those whose {@code sds_config} is
     * {@code ads: {}} take theirs from this source's stream through it; before {@link #start}.
     */
    public AdsConfigSource sds(dev.inmesh.runtime.xds.sds.SdsSecretManager sds) {
        this.sds = sds;
        return this;
    }

    @Override
    public synchronized Future<Void> start(SnapshotHolder holder) {
        if (client != null) {
            return Future.failedFuture(new IllegalStateException("started already"));
        }
        client = new AdsClient(vertx, options, holder);
        client.staticResources(statics);
        client.identity(identity);
        client.sds(sds);
        return client.start();
    }

    /**
     * The node this source presents to the server ({@code ISTIO_VERSION} and the other metadata istiod reads), which
     * the admin's {@code /config_dump} shows as its bootstrap's node, as Envoy's shows the node it sends.
     */
    public io.envoyproxy.envoy.config.core.v3.Node node() {
        return dev.inmesh.runtime.xds.ads.NodeBuilder.build(options.node());
    }

    /** The stream's status (for {@code /debug/xds_status}); null before {@link #start}. */
    public XdsStatus status() {
        AdsClient c = client;
        return c == null ? null : c.status();
    }

    /** The listeners and clusters warming and the rejected updates (for {@code /config_dump}); none before start. */
    public DynamicState dynamicState() {
        AdsClient c = client;
        return c == null ? DynamicState.NONE : c.dynamicState();
    }

    @Override
    public Future<Void> close() {
        AdsClient c = client;
        return c == null ? Future.succeededFuture() : c.close();
    }
}
