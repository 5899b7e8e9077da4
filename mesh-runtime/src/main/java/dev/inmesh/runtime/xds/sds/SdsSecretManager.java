package dev.inmesh.runtime.xds.sds;

import dev.inmesh.api.config.core.SdsSecretSource;
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
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Logger;

/**
 * The secrets TLS contexts fetch over SDS, as Envoy's secret manager: a secret config whose {@code sds_config} is an
 * {@code api_config_source} of {@code api_type: GRPC} (transport API V3) naming one of the configured clusters (Istio's
 * bootstrap cluster {@code sds-grpc}, its agent's Unix socket) opens one {@code StreamSecrets} stream for that name,
 * shared by every context naming it on the same cluster. A parse waits for its first secret, off the event loop, up to
 * the config source's {@code initial_fetch_timeout} (Envoy's default, 15 s) from when the secret was first asked for,
 * and is refused by name after that until the secret arrives ({@link NotArrivedException}: a parse may leave a
 * cluster's TLS not ready for it instead, {@code Parsers.withSecretsNotReady}), the stream asking on. Secrets are
 * held in memory only, as Envoy's: a TLS context takes a secret's PEMs and its {@link SdsSecretSource}, from which a
 * later secret (a rotation) reaches its next handshakes without a restart.
 *
 * <p>A secret whose {@code sds_config} is {@code ads: {}} comes on the ADS stream instead, once an ADS client takes
 * this manager ({@link #overAds}): the client subscribes to the names its clusters and listeners ask for and hands
 * each secret it receives to {@link #takeFromAds}. A parse never waits for such a secret (it runs on the ADS client's
 * own context, which the secret has to come through): one asked for and not arrived within its
 * {@code initial_fetch_timeout} ends the parse, which the client holds and runs again once the secret is in
 * ({@link #collectingAwaited}), and after that time refuses the resource by name, as for a gRPC source. It is held
 * in memory as well, and its {@link SdsSecretSource} gives the TLS contexts its rotations.
 */
public final class SdsSecretManager implements AutoCloseable {
    /** The type URL of SDS secrets, on their own stream and on the ADS stream alike. */
    public static final String SECRET_TYPE_URL = SecretParser.TYPE_URL;

    /** Envoy's {@code initial_fetch_timeout} when a config source does not set one. */
    static final Duration INITIAL_FETCH_TIMEOUT = Duration.ofSeconds(15);
    private static final Logger LOG = Logger.getLogger(SdsSecretManager.class.getName());

    private final Vertx vertx;
    private final Node node;
    private final Map<String, dev.inmesh.api.config.core.SocketAddress> clusters = new ConcurrentHashMap<>();
    private final Duration defaultWait;
    private final Context context;
    private final Map<String, GrpcClient> clients = new LinkedHashMap<>();
    private final Map<String, SdsStream> streams = new LinkedHashMap<>();
    /** The secrets of {@code ads} config sources, by name, in the order first asked for. */
    private final Map<String, AdsSecret> adsSecrets = new LinkedHashMap<>();
    /** The names of ADS secrets a parse on this thread asked for before they arrived ({@link #collectingAwaited}). */
    private final ThreadLocal<java.util.Set<String>> awaited = new ThreadLocal<>();
    private boolean closed;
    /** Whether an ADS client serves the secrets of {@code ads} config sources ({@link #overAds}). */
    private volatile boolean overAds;

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
        if (s.getSdsConfig().hasAds()) {
            return overAds;
        }
        ApiConfigSource a = s.getSdsConfig().getApiConfigSource();
        return s.getSdsConfig().hasApiConfigSource() && a.getGrpcServicesCount() > 0
                && clusters.containsKey(a.getGrpcServices(0).getEnvoyGrpc().getClusterName());
    }

    /**
     * The secret {@code s} names, its stream opened on first use; waits for the first one (blocking, never call it on
     * an event loop) up to its config source's {@code initial_fetch_timeout}.
     *
     * @throws IllegalArgumentException why the secret cannot be had: a config source Inmesh does not take, or
     *     ({@link NotArrivedException}) no secret (yet, or a rejected one) within the time
     */
    public SdsSecret await(SdsSecretConfig s) {
        ConfigSource source = s.getSdsConfig();
        Duration timeout = source.hasInitialFetchTimeout() && (source.getInitialFetchTimeout().getSeconds() > 0
                || source.getInitialFetchTimeout().getNanos() > 0)
                ? Duration.ofSeconds(source.getInitialFetchTimeout().getSeconds(),
                        source.getInitialFetchTimeout().getNanos())
                : defaultWait;
        if (source.hasAds() && overAds) {
            return adsSecret(s.getName(), timeout);
        }
        String cluster = cluster(s.getName(), source);
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
        throw new NotArrivedException("SDS secret \"" + s.getName() + "\" has not arrived from cluster \""
                + cluster + "\" within its initial_fetch_timeout (" + timeout.toMillis() + " ms)"
                + (error == null ? "" : ": " + error));
    }

    /**
     * The ADS secret {@code name}, asked for now if it was not; never waits. Not arrived yet, it ends the parse: its
     * name joins those of {@link #collectingAwaited}, or, once its {@code initial_fetch_timeout} is over, the
     * resource is refused by name.
     */
    private synchronized SdsSecret adsSecret(String name, Duration timeout) {
        if (closed) {
            throw new IllegalArgumentException("SDS secret \"" + name + "\": the SDS client is closed");
        }
        AdsSecret a = adsSecrets.computeIfAbsent(name, AdsSecret::new);
        if (a.secret() != null) {
            return a.secret();
        }
        if (!a.asked) {
            a.asked = true;
            a.deadline = System.nanoTime() + timeout.toNanos();
            a.timeout = timeout;
        }
        boolean waited = a.deadline - System.nanoTime() <= 0;
        java.util.Set<String> into = awaited.get();
        if (into != null && !waited) {
            into.add(name);
        }
        throw new IllegalArgumentException("SDS secret \"" + name + "\" has not arrived on the ADS stream "
                + (!waited ? "yet" : a.waitEnded != null ? "before " + a.waitEnded
                : "within its initial_fetch_timeout (" + a.timeout.toMillis() + " ms)")
                + (a.lastError == null ? "" : ": " + a.lastError));
    }

    /**
     * Has an ADS client serve the secrets whose {@code sds_config} is {@code ads: {}} (else refused by name, as
     * without an ADS stream); call before it parses anything.
     */
    public void overAds() {
        overAds = true;
    }

    /**
     * Runs {@code parse}, adding to {@code names} each ADS secret it asked for that has not arrived and whose
     * {@code initial_fetch_timeout} is not over: a parse that names any is to be run again once they are in.
     */
    public <T, E extends Exception> T collectingAwaited(java.util.Set<String> names,
                                                        dev.inmesh.runtime.xds.Parsers.Parse<T, E> parse) throws E {
        return dev.inmesh.runtime.xds.Parsers.with(awaited, names, parse);
    }

    /**
     * Milliseconds until the first of {@code names} (ADS secrets asked for) stops being waited for, 0 when one is
     * over already; -1 when none is waited for any more (arrived, or not asked for).
     */
    public synchronized long adsWaitMillis(java.util.Set<String> names) {
        long least = -1;
        for (String n : names) {
            AdsSecret a = adsSecrets.get(n);
            if (a != null && a.secret() == null && a.asked) {
                long left = Math.max(0, TimeUnit.NANOSECONDS.toMillis(a.deadline - System.nanoTime()));
                least = least < 0 ? left : Math.min(least, left);
            }
        }
        return least;
    }

    /**
     * Ends the wait for each ADS secret of {@code names} not arrived, {@code why} (a Secret response NACKed, or
     * whose taking failed in the client): as Envoy's mux fails every watch of the type then, and the {@code SdsApi} of a secret
     * not arrived readies its init target (source/common/secret/sds_api.cc, onConfigUpdateFailed), no parse waits
     * for it any more; one that names it refuses its resource by name until it arrives.
     */
    public synchronized void endAdsWaits(java.util.Collection<String> names, String why) {
        long now = System.nanoTime();
        for (String n : names) {
            AdsSecret a = adsSecrets.get(n);
            if (a != null && a.secret() == null && (!a.asked || a.deadline - now > 0)) {
                a.asked = true;
                a.deadline = now;
                a.waitEnded = why;
            }
        }
    }

    /**
     * Takes {@code secret} (a {@code Secret}, as the ADS stream carried it) as the ADS secret {@code name} of
     * {@code version}, checked and held in memory, and hands it to the TLS contexts holding the secret, whose next
     * handshakes use it (blocking: on the client's worker context); a secret that fails the checks is refused (the
     * last good one stays) with why, for the client's NACK.
     *
     * @throws IllegalArgumentException why the secret is refused
     */
    public void takeFromAds(String name, com.google.protobuf.Any secret, String version) {
        AdsSecret a;
        synchronized (this) {
            if (closed) {
                throw new IllegalArgumentException("SDS secret \"" + name + "\": the SDS client is closed");
            }
            a = adsSecrets.computeIfAbsent(name, AdsSecret::new);
        }
        SdsSecret taken;
        try {
            taken = SdsSecret.parse(name, List.of(secret), version);
        } catch (RuntimeException e) {
            synchronized (this) {
                a.lastError = String.valueOf(e.getMessage());
            }
            throw e instanceof IllegalArgumentException iae ? iae : new IllegalArgumentException(e.getMessage(), e);
        }
        synchronized (this) {
            a.take(taken);
        }
        a.push(); // outside the lock: the TLS contexts holding it take it now, before the client ACKs it
    }

    /** The versions of the ADS secrets taken, by name, for a reconnected delta stream's initial versions. */
    public synchronized Map<String, String> adsVersions() {
        Map<String, String> out = new LinkedHashMap<>();
        adsSecrets.forEach((n, a) -> {
            if (a.secret() != null) {
                out.put(n, a.secret().versionInfo());
            }
        });
        return out;
    }

    /**
     * What a TLS context keeps of {@code s}, once {@link #await} has its first secret: the newest PEMs the server
     * sent (on the secret's own stream, or on the ADS stream), in memory.
     */
    public synchronized SdsSecretSource source(SdsSecretConfig s) {
        SdsSecretSource source = s.getSdsConfig().hasAds() && overAds ? adsSecrets.get(s.getName())
                : streams.get(key(cluster(s.getName(), s.getSdsConfig()), s.getName()));
        if (source == null) {
            throw new IllegalArgumentException("SDS secret \"" + s.getName() + "\" is not asked for");
        }
        return source;
    }

    private static String key(String cluster, String name) {
        return cluster + "\n" + name;
    }

    /** The cluster a gRPC config source names, checked as Inmesh takes it. */
    private String cluster(String name, ConfigSource source) {
        String refused = "SDS secret \"" + name + "\": ";
        if (source.hasAds()) {
            throw new IllegalArgumentException(refused + "sds_config.ads needs secrets on the ADS stream, which only "
                    + "a configuration from an xDS server has");
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
        // a Unix domain socket (the agent's) needs no native transport: Vert.x 5 reaches one over the JDK's own
        return cluster;
    }

    private synchronized SdsStream stream(String cluster, String name, Duration timeout) {
        if (closed) {
            throw new IllegalArgumentException("SDS secret \"" + name + "\": the SDS client is closed");
        }
        return streams.computeIfAbsent(key(cluster, name), k -> {
            var a = clusters.get(cluster);
            SocketAddress address = a.isUnixDomain()
                    ? SocketAddress.domainSocketAddress(a.address().substring(
                            dev.inmesh.api.config.core.SocketAddress.UNIX_PREFIX.length()))
                    : SocketAddress.inetSocketAddress(a.port(), a.address());
            GrpcClient client = clients.computeIfAbsent(cluster, c -> GrpcClient.client(vertx,
                    new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2).setHttp2ClearTextUpgrade(false)));
            SdsStream s = new SdsStream(name, cluster + " (" + a.address() + ")", client, address, node, context,
                    System.nanoTime() + timeout.toNanos());
            s.start();
            return s;
        });
    }

    /**
     * Lets go of each secret that none of {@code named} (the SDS secret configs of every listener and cluster held,
     * warming ones and ones waiting for a secret included) asks for, as Envoy's {@code SdsApi} goes with the last
     * listener or cluster that holds it, and leaves its config dump: a secret of its own stream has the stream ended,
     * and one of the ADS stream is forgotten (the ADS client unsubscribes from it with the same names, those of
     * {@code named} whose {@code sds_config} is {@code ads: {}}). Those of the ADS stream named and not arrived show as
     * warming. A secret asked for again later opens a new stream or is subscribed to again. A TLS context still in use
     * keeps the last PEMs it took of a secret let go of.
     */
    public synchronized void retain(Collection<SdsSecretConfig> named) {
        if (closed) {
            return;
        }
        Set<String> kept = new HashSet<>();
        Set<String> overAdsKept = new java.util.LinkedHashSet<>();
        for (SdsSecretConfig s : named) {
            if (s.getSdsConfig().hasAds()) {
                if (overAds) {
                    overAdsKept.add(s.getName());
                }
            } else if (serves(s)) {
                kept.add(key(s.getSdsConfig().getApiConfigSource().getGrpcServices(0).getEnvoyGrpc().getClusterName(),
                        s.getName()));
            }
        }
        streams.entrySet().removeIf(e -> {
            if (kept.contains(e.getKey())) {
                return false;
            }
            e.getValue().close();
            LOG.fine(() -> "SDS secret " + e.getValue().name() + ": no listener or cluster names it, its stream ends");
            return true;
        });
        adsSecrets.keySet().retainAll(overAdsKept);
        overAdsKept.forEach(n -> adsSecrets.computeIfAbsent(n, AdsSecret::new));
    }

    /** The secrets taken, in the order first asked for: those of gRPC streams, then those of the ADS stream. */
    public synchronized List<SdsSecret> active() {
        List<SdsSecret> out = new ArrayList<>();
        streams.values().forEach(s -> {
            if (s.secret() != null) {
                out.add(s.secret());
            }
        });
        adsSecrets.values().forEach(a -> {
            if (a.secret() != null) {
                out.add(a.secret());
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
        adsSecrets.forEach((n, a) -> out.add("ads\n" + n + "@"
                + (a.secret() == null ? "" : a.secret().versionInfo())));
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
        adsSecrets.forEach((n, a) -> {
            if (a.secret() == null) {
                out.add(n);
            }
        });
        return out;
    }

    /**
     * A secret of its own stream has not arrived (or only rejected versions have) within its
     * {@code initial_fetch_timeout}, as Envoy's {@code SdsApi} times out its initial fetch and lets its cluster or
     * listener initialize without it; the stream goes on asking.
     */
    public static final class NotArrivedException extends IllegalArgumentException {
        private static final long serialVersionUID = 1L;

        NotArrivedException(String message) {
            super(message);
        }
    }

    /** Ends the streams; the secrets held go with them. Does not block. */
    @Override
    public synchronized void close() {
        closed = true;
        streams.values().forEach(SdsStream::close);
        streams.clear();
        adsSecrets.clear();
        clients.values().forEach(GrpcClient::close);
        clients.clear();
    }
}
