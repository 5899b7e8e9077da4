package dev.inmesh.runtime.inbound;

import dev.inmesh.runtime.accesslog.AccessLogEntry;
import dev.inmesh.runtime.accesslog.AccessLogs;
import dev.inmesh.runtime.stats.MeshMetrics;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.TcpStreamInfo;
import java.time.Instant;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * A connection {@code mesh.inbound} took through a TCP chain of {@code virtualInbound}, the service standing in for
 * its {@code tcp_proxy}'s cluster: counted and logged as the standalone proxy counts and logs an inbound relay, not as
 * HTTP requests, as Envoy has no HTTP stream on such a chain (Istio puts its {@code istio.stats} network filter there,
 * after the RBAC filters, and no connection manager). Istio's TCP metrics: opened once the network filters let it go
 * on, its bytes as each of its requests ends, closed when it closes and its last request has ended; one they (or a
 * missing cluster, or one without hosts) refused is counted opened and closed at once, with its flags. One line in the
 * {@code tcp_proxy}'s access log, else the mesh's, when it is done. Its bytes are those of the requests and responses
 * it carried, each head counted as HTTP/1.1 writes it ({@link dev.inmesh.runtime.stats.HeadSize}), as
 * {@code istio_request_bytes} counts them. Used on the connection's event loop.
 */
final class TcpChainConnection {
    /** The handle the connection is counted through, given its values when first counted; null: not counted. */
    private final Function<Supplier<TcpStreamInfo>, MeshMetrics.TcpConnectionMetrics> counter;
    /** Where the connection is counted, once it is; null before, and when nowhere. */
    private MeshMetrics.TcpConnectionMetrics metrics;
    private final AccessLogs logs;
    /** The mesh's access log, for a {@code tcp_proxy} that names none; null: none. */
    private final Consumer<TcpStreamInfo> fallbackLog;
    private final Instant startTime = Instant.now();
    private final long startNanos = System.nanoTime();
    /** The {@code tcp_proxy}'s cluster, null when it does not exist. */
    private final String cluster;
    private final String observabilityName;
    private final String local;
    private final String remote;
    private final String serverName;
    private final String peerPrincipal;
    private final String localPrincipal;
    private final Set<ResponseFlag> flags = new LinkedHashSet<>();
    private String terminationDetails;
    private long received;
    private long sent;
    private int requests;
    private boolean closed;
    private boolean done;

    /**
     * @param counter the handle the connection is counted through in Istio's TCP metrics, labelled under its chain's
     *     overrides with its values when first counted (asked once); null for none
     * @param cluster the {@code tcp_proxy}'s cluster, null when it does not exist
     * @param local the address the connection arrived at, {@code ip:port}
     * @param remote the peer's, {@code ip:port}
     * @param serverName the TLS SNI, or null
     * @param peerPrincipal the first URI SAN of the client's certificate, or null
     * @param localPrincipal the first URI SAN of the server's own certificate in the TLS, or null
     */
    TcpChainConnection(Function<Supplier<TcpStreamInfo>, MeshMetrics.TcpConnectionMetrics> counter,
                       AccessLogs logs, Consumer<TcpStreamInfo> fallbackLog, String cluster, String observabilityName,
                       String local, String remote, String serverName, String peerPrincipal, String localPrincipal) {
        this.counter = counter;
        this.logs = logs;
        this.fallbackLog = fallbackLog;
        this.cluster = cluster;
        this.observabilityName = observabilityName;
        this.local = local;
        this.remote = remote;
        this.serverName = serverName;
        this.peerPrincipal = peerPrincipal;
        this.localPrincipal = localPrincipal;
    }

    /** The network filters let the connection go on: counted opened, with no flag. */
    void opened() {
        if (counter != null) {
            metrics = counter.apply(this::streamInfo);
            metrics.opened();
        }
    }

    /**
     * The connection is refused before anything was served: counted opened and closed with {@code flag} (null for
     * none), and logged with the network filter's {@code details} (null for none) as the connection termination
     * details, as the standalone proxy's {@code tcp_proxy} logs a denied connection.
     */
    void refused(ResponseFlag flag, String details) {
        if (flag != null) {
            flags.add(flag);
        }
        terminationDetails = details;
        done();
    }

    /** One of its requests reaches the service. */
    void requestStarted() {
        requests++;
    }

    /** That request ended, having read {@code in} bytes from the client and written {@code out} to it. */
    void requestEnded(long in, long out) {
        received += in;
        sent += out;
        if (metrics != null) {
            metrics.received(in);
            metrics.sent(out);
        }
        if (--requests == 0 && closed) {
            done();
        }
    }

    /** The connection closed: done now, or once the requests still in progress have ended. */
    void closed() {
        closed = true;
        if (requests == 0) {
            done();
        }
    }

    private void done() {
        if (done) {
            return;
        }
        done = true;
        if (metrics == null && counter != null) {
            // never counted opened (refused): labelled now, with its flags, as Istio's stats report it at its close
            metrics = counter.apply(this::streamInfo);
        }
        if (metrics != null) {
            metrics.closed(flags);
        }
        try {
            if (!logs.isEmpty()) {
                logs.log(AccessLogEntry.of(streamInfo()));
            } else if (fallbackLog != null) {
                fallbackLog.accept(streamInfo());
            }
        } catch (RuntimeException e) {
            // the access log must never break a connection
        }
    }

    /** What is known of the connection now; the service, standing in for the cluster's host, is its upstream. */
    private TcpStreamInfo streamInfo() {
        boolean served = terminationDetails == null && flags.isEmpty();
        return new TcpStreamInfo(startTime, flags, received, sent, (System.nanoTime() - startNanos) / 1_000_000,
                served ? local : null, cluster, null, local, remote, serverName, null, terminationDetails,
                served ? 1 : 0, observabilityName, null, null, peerPrincipal, localPrincipal, null, null);
    }
}
