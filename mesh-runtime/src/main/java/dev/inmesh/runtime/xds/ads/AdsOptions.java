package dev.inmesh.runtime.xds.ads;

import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.PemTrustOptions;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * How the ADS client reaches its xDS servers and presents itself.
 *
 * @param servers the xDS servers in order of preference: the first, and optionally a second tried while the first
 *                is down (one or two, or more)
 * @param node who this proxy is to the server
 * @param initialFetchTimeout how long a subscribed resource may stay unanswered before it counts as empty (Envoy's
 *                            {@code initial_fetch_timeout}, default 15 s; {@link Duration#ZERO}, as Envoy's 0, waits
 *                            with no end); a route configuration or load assignment whose connection manager's
 *                            {@code rds.config_source} or cluster's {@code eds_config} sets its own (istiod sets 0s)
 *                            takes that one instead. The first configuration is applied once everything has arrived
 *                            or timed out
 * @param backoffBase the first reconnect interval (Envoy's xDS back-off: 500 ms by default, doubled per attempt,
 *                    each delay drawn at random from [0, interval))
 * @param backoffMax the longest reconnect interval (default 30 s, as Envoy's)
 * @param connectTimeout the TCP connect timeout (default 10 s)
 * @param maxMessageBytes the largest DiscoveryResponse accepted (default 64 MiB: istiod's EDS can be large)
 * @param keepaliveInterval how often an HTTP/2 PING checks the connection (default 30 s, as Istio's bootstrap for
 *                          the xds-grpc cluster; {@link Duration#ZERO} turns it off)
 * @param keepaliveTimeout how long a PING may go unanswered before the stream ends and reconnects (default 10 s, as
 *                         Istio's bootstrap for the xds-grpc cluster: its {@code connection_keepalive}'s timeout)
 * @param delta whether the stream is incremental xDS ({@code DeltaAggregatedResources}, as Istio 1.22+ sidecars use)
 *              rather than state of the world ({@code StreamAggregatedResources}, the default: every xDS server
 *              serves it, while delta is served by istiod and some others only)
 * @param agentTypes the types Istio's agent asks istiod for on the proxy's stream and handles itself, by type URL
 *                   (its name table, {@link #NAME_TABLE_TYPE}, for its DNS proxy): each is asked for once the
 *                   listeners are, on every stream, and its first resource handed to the handler, which the
 *                   response is ACKed or NACKed by; none by default
 */
public record AdsOptions(List<XdsServer> servers, NodeOptions node, Duration initialFetchTimeout,
                         Duration backoffBase, Duration backoffMax, Duration connectTimeout, long maxMessageBytes,
                         Duration keepaliveInterval, Duration keepaliveTimeout, boolean delta,
                         Map<String, AgentHandler> agentTypes) {

    /** The type URL of istiod's name table (NDS), which Istio's agent asks for when it runs its DNS proxy. */
    public static final String NAME_TABLE_TYPE = "type.googleapis.com/istio.networking.nds.v1.NameTable";

    /** What handles a resource of one of {@link #agentTypes}. */
    @FunctionalInterface
    public interface AgentHandler {
        /**
         * Takes the resource a response carries (its first, as Istio's agent: these types are one resource each),
         * on the client's event loop; throws, with a message naming what is wrong, to NACK it.
         */
        void accept(com.google.protobuf.Any resource) throws Exception;
    }

    public static final Duration DEFAULT_INITIAL_FETCH_TIMEOUT = Duration.ofSeconds(15);
    public static final Duration DEFAULT_BACKOFF_BASE = Duration.ofMillis(500);
    public static final Duration DEFAULT_BACKOFF_MAX = Duration.ofSeconds(30);
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
    public static final long DEFAULT_MAX_MESSAGE_BYTES = 64L * 1024 * 1024;
    public static final Duration DEFAULT_KEEPALIVE_INTERVAL = Duration.ofSeconds(30);
    public static final Duration DEFAULT_KEEPALIVE_TIMEOUT = Duration.ofSeconds(10);

    public AdsOptions {
        servers = List.copyOf(Objects.requireNonNull(servers, "servers"));
        if (servers.isEmpty()) {
            throw new IllegalArgumentException("servers: [] (expected: at least one xDS server)");
        }
        Objects.requireNonNull(node, "node");
        initialFetchTimeout = initialFetchTimeout == null ? DEFAULT_INITIAL_FETCH_TIMEOUT : initialFetchTimeout;
        if (initialFetchTimeout.isNegative()) {
            throw new IllegalArgumentException("initialFetchTimeout: " + initialFetchTimeout
                    + " (expected: >= 0; 0 waits with no end)");
        }
        backoffBase = positive(backoffBase, DEFAULT_BACKOFF_BASE, "backoffBase");
        backoffMax = positive(backoffMax, DEFAULT_BACKOFF_MAX, "backoffMax");
        if (backoffMax.compareTo(backoffBase) < 0) {
            throw new IllegalArgumentException("backoffMax: " + backoffMax + " (expected: >= backoffBase "
                    + backoffBase + ")");
        }
        connectTimeout = positive(connectTimeout, DEFAULT_CONNECT_TIMEOUT, "connectTimeout");
        maxMessageBytes = maxMessageBytes == 0 ? DEFAULT_MAX_MESSAGE_BYTES : maxMessageBytes;
        if (maxMessageBytes < 0) {
            throw new IllegalArgumentException("maxMessageBytes: " + maxMessageBytes + " (expected: > 0)");
        }
        keepaliveInterval = keepaliveInterval == null ? DEFAULT_KEEPALIVE_INTERVAL : keepaliveInterval;
        if (keepaliveInterval.isNegative()) {
            throw new IllegalArgumentException("keepaliveInterval: " + keepaliveInterval + " (expected: >= 0)");
        }
        keepaliveTimeout = positive(keepaliveTimeout, DEFAULT_KEEPALIVE_TIMEOUT, "keepaliveTimeout");
        agentTypes = agentTypes == null ? Map.of() : java.util.Collections.unmodifiableMap(
                new LinkedHashMap<>(agentTypes));
    }

    /** Options with the defaults, for a node and its servers. */
    public static AdsOptions of(NodeOptions node, XdsServer... servers) {
        return new AdsOptions(List.of(servers), node, null, null, null, null, 0, null, null, false, null);
    }

    /** The same options with another initial fetch timeout ({@link Duration#ZERO}: none, as Envoy's 0). */
    public AdsOptions withInitialFetchTimeout(Duration d) {
        return new AdsOptions(servers, node, d, backoffBase, backoffMax, connectTimeout, maxMessageBytes,
                keepaliveInterval, keepaliveTimeout, delta, agentTypes);
    }

    public AdsOptions withBackoff(Duration base, Duration max) {
        return new AdsOptions(servers, node, initialFetchTimeout, base, max, connectTimeout, maxMessageBytes,
                keepaliveInterval, keepaliveTimeout, delta, agentTypes);
    }

    /** The same options with another keepalive interval ({@link Duration#ZERO}: none). */
    public AdsOptions withKeepalive(Duration interval) {
        return withKeepalive(interval, keepaliveTimeout);
    }

    /** The same options with another keepalive interval ({@link Duration#ZERO}: none) and timeout. */
    public AdsOptions withKeepalive(Duration interval, Duration timeout) {
        return new AdsOptions(servers, node, initialFetchTimeout, backoffBase, backoffMax, connectTimeout,
                maxMessageBytes, interval, timeout, delta, agentTypes);
    }

    /** The same options over incremental (delta) xDS when {@code on}, else over state of the world. */
    public AdsOptions withDelta(boolean on) {
        return new AdsOptions(servers, node, initialFetchTimeout, backoffBase, backoffMax, connectTimeout,
                maxMessageBytes, keepaliveInterval, keepaliveTimeout, on, agentTypes);
    }

    /** The same options for another node. */
    public AdsOptions withNode(NodeOptions n) {
        return new AdsOptions(servers, n, initialFetchTimeout, backoffBase, backoffMax, connectTimeout,
                maxMessageBytes, keepaliveInterval, keepaliveTimeout, delta, agentTypes);
    }

    /** The same options with {@code handler} taking the resources of agent type {@code typeUrl}. */
    public AdsOptions withAgentType(String typeUrl, AgentHandler handler) {
        Map<String, AgentHandler> types = new LinkedHashMap<>(agentTypes);
        types.put(Objects.requireNonNull(typeUrl, "typeUrl"), Objects.requireNonNull(handler, "handler"));
        return new AdsOptions(servers, node, initialFetchTimeout, backoffBase, backoffMax, connectTimeout,
                maxMessageBytes, keepaliveInterval, keepaliveTimeout, delta, types);
    }

    private static Duration positive(Duration d, Duration dflt, String name) {
        if (d == null) {
            return dflt;
        }
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(name + ": " + d + " (expected: > 0)");
        }
        return d;
    }

    /**
     * One xDS server.
     *
     * @param host the host name or IP (istiod's {@code istiod.istio-system.svc})
     * @param port the port: istiod serves plaintext on 15010 and TLS on 15012
     * @param tls whether the connection uses TLS
     * @param caFile the PEM CA certificates that sign the server's certificate, or null for the JVM's trust store
     * @param tokenFile a file holding a bearer token (a Kubernetes service account token), sent as
     *                  {@code authorization: Bearer <token>} and re-read on every connect; or null
     * @param verifyHost whether the server certificate must name {@code host} (true unless told otherwise)
     */
    public record XdsServer(String host, int port, boolean tls, Path caFile, Path tokenFile, boolean verifyHost) {
        public XdsServer {
            if (host == null || host.isEmpty()) {
                throw new IllegalArgumentException("host: \"" + host + "\" (expected: a host name or IP)");
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("port: " + port + " (expected: 1-65535)");
            }
            if (!tls && caFile != null) {
                throw new IllegalArgumentException("caFile: " + caFile + " (expected: none without TLS)");
            }
        }

        /** A plaintext server, as istiod's 15010. */
        public static XdsServer plaintext(String host, int port) {
            return new XdsServer(host, port, false, null, null, true);
        }

        /** A TLS server, as istiod's 15012, with the CA that signs its certificate and a bearer token file. */
        public static XdsServer tls(String host, int port, Path caFile, Path tokenFile) {
            return new XdsServer(host, port, true, caFile, tokenFile, true);
        }

        /**
         * The server at {@code address} ({@code host:port}, the value of setting {@code setting}, named when it is
         * not one): TLS verified against {@code caFile}, with {@code tokenFile} (or null) sent as bearer, when
         * {@code caFile} is set; else plaintext, with no token.
         */
        public static XdsServer of(String setting, String address, Path caFile, Path tokenFile) {
            int colon = address.lastIndexOf(':');
            int port;
            try {
                port = colon <= 0 ? -1 : Integer.parseInt(address.substring(colon + 1));
            } catch (NumberFormatException e) {
                port = -1;
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException(setting + ": " + address + " (expected: host:port)");
            }
            String host = address.substring(0, colon);
            return caFile == null ? plaintext(host, port) : tls(host, port, caFile, tokenFile);
        }

        /** {@code host:port}. */
        public String address() {
            return host + ":" + port;
        }

        /**
         * The HTTP/2 client options of a gRPC client of this server (the ADS stream's, Istio's CA's): prior knowledge
         * on plaintext, ALPN over TLS verified against {@link #caFile} (else the JVM's CAs).
         */
        public HttpClientOptions httpOptions(Duration connectTimeout) {
            HttpClientOptions http = new HttpClientOptions()
                    .setProtocolVersion(HttpVersion.HTTP_2)
                    .setHttp2ClearTextUpgrade(false)
                    .setConnectTimeout((int) Math.min(Integer.MAX_VALUE, connectTimeout.toMillis()));
            if (tls) {
                http.setSsl(true).setUseAlpn(true).setVerifyHost(verifyHost);
                if (caFile != null) {
                    http.setTrustOptions(new PemTrustOptions().addCertPath(caFile.toString()));
                }
            }
            return http;
        }

        /**
         * The bearer token to send, read again for every call (Kubernetes rotates service account tokens); null
         * without a token file.
         */
        public Future<String> token(Vertx vertx) {
            if (tokenFile == null) {
                return Future.succeededFuture(null);
            }
            return vertx.fileSystem().readFile(tokenFile.toString())
                    .map(b -> b.toString().trim())
                    .recover(e -> Future.failedFuture(new IllegalStateException("cannot read the token file "
                            + tokenFile + ": " + describe(e), e)));
        }

        /** An error's message on one line, or its class's name when it has none. */
        public static String describe(Throwable e) {
            String m = e.getMessage();
            return m == null || m.isEmpty() ? e.getClass().getSimpleName() : m.replace('\n', ' ');
        }
    }
}
