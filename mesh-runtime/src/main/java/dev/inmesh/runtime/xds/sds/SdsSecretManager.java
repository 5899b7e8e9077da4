package dev.inmesh.runtime.xds.sds;

import io.envoyproxy.envoy.config.core.v3.ApiConfigSource;
import io.envoyproxy.envoy.config.core.v3.ApiVersion;
import io.envoyproxy.envoy.config.core.v3.ConfigSource;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The secrets TLS contexts fetch over SDS, as Envoy's secret manager: a secret config whose {@code sds_config} is an
 * {@code api_config_source} of {@code api_type: GRPC} (transport API V3) naming one of the configured clusters (Istio's
 * bootstrap cluster {@code sds-grpc}, its agent's Unix socket) opens one {@code StreamSecrets} stream for that name,
 * shared by every context naming it on the same cluster. A parse waits for its first secret, off the event loop, up to
 * the config source's {@code initial_fetch_timeout} (Envoy's default, 15 s) from when the secret was first asked for,
 * and is refused by name after that until the secret arrives; a later secret (a rotation) rewrites its files, which the
 * TLS contexts watch as they do Istio's file names, so that new connections use it without a restart.
 */
public final class SdsSecretManager implements AutoCloseable {
    /** Envoy's {@code initial_fetch_timeout} when a config source does not set one. */
    static final Duration INITIAL_FETCH_TIMEOUT = Duration.ofSeconds(15);

    private final Vertx vertx;
    private final Node node;
    private final Map<String, dev.inmesh.api.config.core.SocketAddress> clusters = new ConcurrentHashMap<>();
    private final Duration defaultWait;
    private final Context context;
    private final Map<String, GrpcClient> clients = new LinkedHashMap<>();
    private final Map<String, SdsStream> streams = new LinkedHashMap<>();
    /** The directory of the secrets' files, made with the first stream. */
    private SecretFiles.Root dir;
    private boolean closed;

    /**
     * A manager presenting {@code node} to its SDS servers, the clusters of {@code clusters} (by name, each one
     * address: a socket address, or a {@code pipe} as {@code unix:PATH}) the ones a {@code sds_config} may name.
     */
    public SdsSecretManager(Vertx vertx, Node node, Map<String, dev.inmesh.api.config.core.SocketAddress> clusters) {
        this(vertx, node, clusters, INITIAL_FETCH_TIMEOUT);
    }

    /**
     * The same, waiting {@code defaultWait} for a secret whose config source sets no {@code initial_fetch_timeout}
     * or {@code 0s} (Istio's: Envoy then waits without end; a parse here waits this long, then refuses the resource).
     */
    public SdsSecretManager(Vertx vertx, Node node, Map<String, dev.inmesh.api.config.core.SocketAddress> clusters,
                            Duration defaultWait) {
        this.vertx = vertx;
        this.node = node;
        this.clusters.putAll(clusters);
        this.defaultWait = defaultWait;
        // a context of its own: the ordered blocking work that takes each secret must not queue behind the parse
        // that waits for it (a caller's context, which a thread that is not Vert.x's keeps, would be shared)
        this.context = ((io.vertx.core.internal.VertxInternal) vertx).createEventLoopContext();
    }

    /**
     * Makes {@code name} (a bootstrap's static cluster, Istio's {@code sds-grpc}) one a {@code sds_config} may name,
     * at {@code address}; a stream open on it keeps the address it opened with.
     */
    public void cluster(String name, dev.inmesh.api.config.core.SocketAddress address) {
        clusters.put(name, address);
    }

    /**
     * Whether {@code s}'s {@code sds_config} names, in an {@code api_config_source}, one of the clusters this manager
     * knows: a secret of another source is left to the TLS context's other ways (files), or refused there.
     */
    public boolean serves(SdsSecretConfig s) {
        ApiConfigSource a = s.getSdsConfig().getApiConfigSource();
        return s.getSdsConfig().hasApiConfigSource() && a.getGrpcServicesCount() > 0
                && clusters.containsKey(a.getGrpcServices(0).getEnvoyGrpc().getClusterName());
    }

    /**
     * The secret {@code s} names, its stream opened on first use; waits for the first one (blocking, never call it on
     * an event loop) up to its config source's {@code initial_fetch_timeout}.
     *
     * @throws IllegalArgumentException why the secret cannot be had: a config source Inmesh does not take, or no
     *     secret (yet, or a rejected one) within the time
     */
    public SdsSecret await(SdsSecretConfig s) {
        ConfigSource source = s.getSdsConfig();
        String cluster = cluster(s.getName(), source);
        Duration timeout = source.hasInitialFetchTimeout() && (source.getInitialFetchTimeout().getSeconds() > 0
                || source.getInitialFetchTimeout().getNanos() > 0)
                ? Duration.ofSeconds(source.getInitialFetchTimeout().getSeconds(),
                        source.getInitialFetchTimeout().getNanos())
                : defaultWait;
        SdsStream stream = stream(cluster, s.getName(), timeout);
        SdsSecret now = stream.secret();
        if (now != null) {
            return now;
        }
        long left = stream.deadline - System.nanoTime();
        try {
            if (left > 0) {
                return stream.first.get(left, TimeUnit.NANOSECONDS);
            }
        } catch (TimeoutException | ExecutionException e) {
            // below
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        String error = stream.lastError();
        throw new IllegalArgumentException("SDS secret \"" + s.getName() + "\" has not arrived from cluster \""
                + cluster + "\" within its initial_fetch_timeout (" + timeout.toMillis() + " ms)"
                + (error == null ? "" : ": " + error));
    }

    /** The cluster a gRPC config source names, checked as Inmesh takes it. */
    private String cluster(String name, ConfigSource source) {
        String refused = "SDS secret \"" + name + "\": ";
        if (source.hasAds()) {
            throw new IllegalArgumentException(refused + "sds_config.ads is not supported (Inmesh fetches secrets "
                    + "over a gRPC api_config_source only)");
        }
        if (!source.hasApiConfigSource()) {
            throw new IllegalArgumentException(refused + "sds_config needs an api_config_source of api_type GRPC");
        }
        ApiConfigSource a = source.getApiConfigSource();
        if (a.getApiType() != ApiConfigSource.ApiType.GRPC) {
            throw new IllegalArgumentException(refused + "sds_config.api_config_source.api_type " + a.getApiType()
                    + " is not supported (GRPC only)");
        }
        if (a.getTransportApiVersion() == ApiVersion.V2) { // AUTO is V3, as in Envoy since V2 went
            throw new IllegalArgumentException(refused + "sds_config.api_config_source.transport_api_version "
                    + "V2 is not supported");
        }
        if (a.getGrpcServicesCount() != 1 || !a.getGrpcServices(0).hasEnvoyGrpc()) {
            throw new IllegalArgumentException(refused + "sds_config.api_config_source.grpc_services: one "
                    + "envoy_grpc service is required");
        }
        String cluster = a.getGrpcServices(0).getEnvoyGrpc().getClusterName();
        var address = clusters.get(cluster);
        if (address == null) {
            throw new IllegalArgumentException(refused + "sds_config names cluster \"" + cluster
                    + "\", which is not a static cluster Inmesh knows "
                    + new java.util.TreeSet<>(clusters.keySet()));
        }
        if (address.isUnixDomain() && !vertx.isNativeTransportEnabled()) {
            throw new IllegalArgumentException(refused + "cluster \"" + cluster + "\" is the Unix domain socket "
                    + address.address() + ", which needs Vert.x's native transport (not available)");
        }
        return cluster;
    }

    private synchronized SdsStream stream(String cluster, String name, Duration timeout) {
        if (closed) {
            throw new IllegalArgumentException("SDS secret \"" + name + "\": the SDS client is closed");
        }
        if (dir == null) {
            dir = new SecretFiles.Root(newDirectory());
        }
        return streams.computeIfAbsent(cluster + "\n" + name, k -> {
            var a = clusters.get(cluster);
            SocketAddress address = a.isUnixDomain()
                    ? SocketAddress.domainSocketAddress(a.address().substring(
                            dev.inmesh.api.config.core.SocketAddress.UNIX_PREFIX.length()))
                    : SocketAddress.inetSocketAddress(a.port(), a.address());
            GrpcClient client = clients.computeIfAbsent(cluster, c -> GrpcClient.client(vertx,
                    new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false)));
            SdsStream s = new SdsStream(name, cluster + " (" + a.address() + ")", client, address, node, context,
                    SecretFiles.under(dir, name), System.nanoTime() + timeout.toNanos());
            s.start();
            return s;
        });
    }

    /** A directory for the secrets' files, readable by this user only. */
    private static Path newDirectory() {
        try {
            return Files.createTempDirectory("inmesh-sds-", PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rwx------")));
        } catch (UnsupportedOperationException e) {
            try {
                return Files.createTempDirectory("inmesh-sds-");
            } catch (IOException io) {
                throw new UncheckedIOException("cannot make the directory of the SDS secrets' files", io);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot make the directory of the SDS secrets' files", e);
        }
    }

    /** The secrets taken, in the order first asked for. */
    public synchronized List<SdsSecret> active() {
        List<SdsSecret> out = new ArrayList<>();
        streams.values().forEach(s -> {
            if (s.secret() != null) {
                out.add(s.secret());
            }
        });
        return out;
    }

    /**
     * What a new secret shows in: each name asked for with the version taken (none yet), for a source that rejected
     * a configuration for a secret not arrived to read it again once it has.
     */
    public synchronized List<String> fingerprint() {
        List<String> out = new ArrayList<>();
        streams.forEach((k, s) -> out.add(k + "@" + (s.secret() == null ? "" : s.secret().versionInfo())));
        return out;
    }

    /** The names asked for whose first secret has not arrived, in the order first asked for. */
    public synchronized List<String> warming() {
        List<String> out = new ArrayList<>();
        streams.forEach((k, s) -> {
            if (s.secret() == null) {
                out.add(k.substring(k.indexOf('\n') + 1));
            }
        });
        return out;
    }

    /**
     * Ends the streams and removes the secrets' files; a secret still being written on a worker thread is either
     * removed with the rest or not written. Blocking, refused on an event loop (before it has done anything): a caller
     * there runs it with {@code executeBlocking}.
     */
    @Override
    public synchronized void close() {
        if (Context.isOnEventLoopThread()) {
            throw new IllegalStateException("SdsSecretManager.close() deletes files: call it off the event loop");
        }
        closed = true;
        streams.values().forEach(SdsStream::close);
        streams.clear();
        clients.values().forEach(GrpcClient::close);
        clients.clear();
        if (dir != null) {
            dir.delete();
        }
    }
}
