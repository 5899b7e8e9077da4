package dev.inmesh.runtime.inbound;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.listener.FilterChainUpdate;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import io.netty.util.AttributeKey;
import io.vertx.core.Future;
import io.vertx.core.http.HttpConnection;
import io.vertx.core.http.impl.HttpServerConnection;

/**
 * What a connection of {@code mesh.inbound} keeps while it lasts, with its channel: the {@code virtualInbound} chain
 * it took at its first request and the configuration that chain is served with, as Envoy's connection keeps the chain
 * it was accepted with; and the decision of that chain's network filters. A later configuration that keeps the chain
 * (equal, the listener changed in its chains at most: {@link FilterChainUpdate}) moves the connection on to it, even
 * where another chain would now match it better; one that drops or changes it, or changes the listener more, leaves
 * the connection on the chain and configuration it had, draining, as Envoy's listener manager drains the connections
 * of a chain it removes. Its requests run on its event loop, but for one an external authorizer let go on.
 */
final class InboundConnection {
    private static final AttributeKey<InboundConnection> KEY = AttributeKey.valueOf(InboundConnection.class,
            "connection");

    private FilterChain chain;
    private MeshSnapshot snapshot;
    private boolean draining;
    private boolean shutDown;
    /** What the chain's network filters decided, once asked (a chain that has none and is an HTTP chain never is). */
    private Future<Admission> admission;

    /**
     * What the network filters decided for a connection: whether it goes on, and the connection a TCP chain took
     * ({@link TcpChainConnection}), null for another chain.
     */
    record Admission(boolean admitted, TcpChainConnection tcp) {}

    private InboundConnection(FilterChain chain, MeshSnapshot snapshot) {
        this.chain = chain;
        this.snapshot = snapshot;
    }

    /** What {@code connection} keeps, or null when it took no chain yet (or is not a server connection Vert.x made). */
    static InboundConnection of(HttpConnection connection) {
        return connection instanceof HttpServerConnection c
                ? c.channelHandlerContext().channel().attr(KEY).get() : null;
    }

    /**
     * Notes that {@code connection} took {@code chain} of {@code snapshot}: what it keeps, or null when it is not a
     * server connection Vert.x made (its requests then each pick their chain).
     */
    static InboundConnection took(HttpConnection connection, FilterChain chain, MeshSnapshot snapshot) {
        if (!(connection instanceof HttpServerConnection c)) {
            return null;
        }
        InboundConnection kept = new InboundConnection(chain, snapshot);
        c.channelHandlerContext().channel().attr(KEY).set(kept);
        return kept;
    }

    /**
     * The configuration the connection's next request is served with, once {@code current} is the newest: it, when it
     * keeps the connection's chain (which becomes its instance of it); else the one the connection had, its chain
     * drained from now on.
     */
    synchronized MeshSnapshot follow(MeshSnapshot current) {
        if (!draining && current != snapshot) {
            FilterChainSelector now = current.listener(InboundTls.LISTENER);
            FilterChain kept = FilterChainUpdate.kept(snapshot.listener(InboundTls.LISTENER).listener(), chain,
                    now == null ? null : now.listener());
            if (kept == null) {
                draining = true;
            } else {
                chain = kept;
                snapshot = current;
            }
        }
        return snapshot;
    }

    /** The chain the connection took, of the configuration {@link #follow} gave. */
    synchronized FilterChain chain() {
        return chain;
    }

    /** Whether a configuration dropped or changed the connection's chain. */
    synchronized boolean draining() {
        return draining;
    }

    /** Whether the connection is to be shut down now: true once, for the first request that finds it draining. */
    synchronized boolean shutDownOnce() {
        boolean first = !shutDown;
        shutDown = true;
        return first;
    }

    /** The network filters' decision, or null when not asked yet. */
    synchronized Future<Admission> admission() {
        return admission;
    }

    synchronized void admission(Future<Admission> decided) {
        admission = decided;
    }
}
