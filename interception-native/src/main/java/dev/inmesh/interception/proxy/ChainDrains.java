package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.listener.FilterChainUpdate;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import io.netty.channel.Channel;
import java.util.IdentityHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The connections of each listener's filter chains, drained as Envoy's listener manager drains them on an LDS update:
 * the connections of a listener that went away or changed more than its filter chains (its socket, its listener
 * filters, its direction), and those of a filter chain that was removed or changed (Envoy's filter chain only update:
 * the connections of a chain that stays equal run on). A drain discourages requests for the drain time (HTTP/1
 * answers carry {@code connection: close} and end their connection, HTTP/2 connections get Envoy's two GOAWAYs: the
 * shutdown notice, then after the connection manager's {@code drain_timeout} the final one), then closes what
 * is still open, tcp_proxy connections included (Envoy's tcp_proxy has no drain of its own: they are closed with the
 * listener or chain at the end of its drain).
 */
final class ChainDrains {
    /** The connections of one filter chain of one listener configuration. */
    static final class Drain {
        private volatile boolean started;
        private volatile boolean closed;
        private final Set<Channel> connections = ConcurrentHashMap.newKeySet();
        private final Set<Channel> http2 = ConcurrentHashMap.newKeySet();

        /** Whether the chain drains: its requests are discouraged. A volatile read, once per answer. */
        boolean started() {
            return started;
        }

        /** Notes a connection of the chain; one that arrives after the drain's end is closed at once. */
        void add(Channel ch) {
            connections.add(ch);
            ch.closeFuture().addListener(f -> {
                connections.remove(ch);
                http2.remove(ch);
            });
            if (closed) {
                ch.close();
            }
        }

        /** Notes an HTTP/2 connection of the chain, so that the drain starts its GOAWAYs (at once if it drains now). */
        void http2Opened(Channel ch) {
            http2.add(ch);
            if (started) {
                ConnectionLifetime.drain(ch); // GOAWAY twice, drain_timeout apart
            }
        }

        private void start(ProxyRuntime runtime) {
            started = true;
            for (Channel ch : http2) {
                ConnectionLifetime.drain(ch);
            }
            runtime.vertx.setTimer(Math.max(1, runtime.drainTime.toMillis()), id -> {
                closed = true;
                for (Channel ch : connections) {
                    ch.close();
                }
            });
        }
    }

    /**
     * The chains of one listener with connections so far, and the listener configuration they belong to. The chains
     * are looked up by identity (a record's equality would walk a chain's whole configuration for each connection):
     * an equal chain of a later configuration is added under its own instance, with the same drain, when its first
     * connection comes. Copied on write, under the owner's lock.
     */
    private static final class Generation {
        volatile Listener listener;
        volatile Map<FilterChain, Drain> chains = Map.of();

        Generation(Listener listener) {
            this.listener = listener;
        }
    }

    private final ProxyRuntime runtime;
    /** By listener name; changed under this. */
    private final Map<String, Generation> live = new ConcurrentHashMap<>();

    ChainDrains(ProxyRuntime runtime) {
        this.runtime = runtime;
    }

    /**
     * The drain of a chain of a listener, for a connection the chain takes: the same for every connection of an equal
     * chain of that listener until a configuration drops or changes it. A chain the newest configuration no longer
     * has (a connection accepted before an update and given its chain after it) gets a drain already started.
     */
    Drain of(Listener listener, FilterChain chain) {
        Generation g = live.get(listener.name());
        Drain d = g == null ? null : g.chains.get(chain);
        if (d != null) {
            return d;
        }
        synchronized (this) {
            FilterChainSelector now = runtime.snapshots.current().listener(listener.name());
            if (now == null || FilterChainUpdate.kept(listener, chain, now.listener()) == null) {
                Drain gone = new Drain();
                gone.start(runtime);
                return gone;
            }
            g = live.computeIfAbsent(listener.name(), n -> new Generation(now.listener()));
            Drain found = null;
            for (var e : g.chains.entrySet()) {
                if (e.getKey().equals(chain)) {
                    found = e.getValue(); // the same chain, from another configuration's instance
                    break;
                }
            }
            Drain drain = found != null ? found : new Drain();
            Map<FilterChain, Drain> copy = new IdentityHashMap<>(g.chains);
            copy.put(chain, drain);
            g.chains = copy;
            return drain;
        }
    }

    /**
     * Drains, for a new configuration, the chains it no longer has: every chain of a listener it drops, of one in
     * {@code replaced} (a bound listener stopped for its new socket) or of one that changed more than its chains; the
     * removed and changed chains of the others.
     */
    void follow(MeshSnapshot next, Set<String> replaced) {
        Set<Drain> draining = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        synchronized (this) {
            for (var it = live.entrySet().iterator(); it.hasNext(); ) {
                var e = it.next();
                Generation g = e.getValue();
                FilterChainSelector now = next.listener(e.getKey());
                if (now == null || replaced.contains(e.getKey())
                        || !FilterChainUpdate.sameApartFromChains(g.listener, now.listener())) {
                    it.remove();
                    draining.addAll(g.chains.values());
                    continue;
                }
                g.listener = now.listener();
                Map<FilterChain, Drain> kept = new IdentityHashMap<>();
                g.chains.forEach((chain, drain) -> {
                    if (FilterChainUpdate.find(now.listener(), chain) != null) {
                        kept.put(chain, drain);
                    } else {
                        draining.add(drain);
                    }
                });
                g.chains = kept;
            }
        }
        for (Drain d : draining) {
            d.start(runtime);
        }
    }
}
