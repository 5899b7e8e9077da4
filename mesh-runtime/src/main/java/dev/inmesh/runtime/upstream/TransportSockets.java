package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.TransportSocketMatch;
import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.core.Metadata;
import dev.inmesh.runtime.tls.SdsFileWatcher;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A cluster's transport sockets for one configuration: its own ({@code transport_socket}) and those of its
 * {@code transport_socket_matches}, each compiled once, and the choice of one for each host by the host's metadata,
 * as Envoy resolves a host's transport socket when the host is made or its metadata changes: the first match, in the
 * cluster's order, whose values are all in the host's {@code envoy.transport_socket_match} metadata; failing that,
 * the first whose values are all in its locality's; else the cluster's own.
 */
final class TransportSockets {
    /**
     * One transport socket of the cluster, as long as its configured TLS stays the same across configurations: the
     * hosts that chose it read its {@link #current} compiled form, which a rotated SDS file replaces in place.
     */
    static final class Slot {
        /** The configured TLS (before any SDS file was read again), or null for plaintext. */
        final UpstreamTlsContext configured;
        volatile Socket current;
        /** The watch of the configured TLS's SDS files, or null; guarded by the cluster. */
        SdsFileWatcher.Watch<UpstreamCluster> watch;

        Slot(UpstreamTlsContext configured, Socket current) {
            this.configured = configured;
            this.current = current;
        }

        /** Whether the hosts of this socket keep pools per request host name ({@code auto_sni}). */
        boolean perRequestHost() {
            UpstreamTls t = current.tls;
            return t != null && t.context().perRequestHost();
        }
    }

    /**
     * A transport socket compiled: TLS (null: plaintext), or why its TLS is not usable (its hosts' connections then
     * fail rather than go in plaintext), and the pool settings of the configuration in force, made once.
     */
    static final class Socket {
        final UpstreamTls tls;
        final IllegalStateException error;
        volatile UpstreamCluster.PoolSettings poolSettings;

        Socket(UpstreamTls tls, IllegalStateException error) {
            this.tls = tls;
            this.error = error;
        }
    }

    private final Slot own;
    /** The matches, and their slots, index for index. */
    private final List<TransportSocketMatch> matches;
    private final List<Slot> matchSlots;

    private TransportSockets(Slot own, List<TransportSocketMatch> matches, List<Slot> matchSlots) {
        this.own = own;
        this.matches = matches;
        this.matchSlots = matchSlots;
    }

    /**
     * The sockets of a configuration, each compiled once: a slot of {@code previous} whose configured TLS is the same
     * (and usable) is kept, with its watch and its SDS files as last read. {@code compile} compiles a new slot's TLS.
     */
    static TransportSockets of(Cluster config, TransportSockets previous,
                               java.util.function.Function<UpstreamTlsContext, Slot> compile) {
        List<Slot> kept = previous == null ? List.of() : previous.slots();
        List<Slot> made = new ArrayList<>();
        java.util.function.Function<UpstreamTlsContext, Slot> slot = tls -> {
            for (List<Slot> from : List.of(kept, made)) {
                for (Slot s : from) {
                    if (Objects.equals(s.configured, tls) && s.current.error == null) {
                        return s;
                    }
                }
            }
            Slot s = compile.apply(tls);
            made.add(s);
            return s;
        };
        // TLS Inmesh cannot have (yet): its hosts' connections fail, never in plaintext
        Slot own = config.tlsNotReady() == null ? slot.apply(config.tls())
                : notReady("cluster " + config.name() + ": TLS not ready: " + config.tlsNotReady());
        List<TransportSocketMatch> matches = new ArrayList<>();
        List<Slot> slots = new ArrayList<>();
        for (TransportSocketMatch m : config.transportSocketMatches()) {
            matches.add(m);
            slots.add(m.notReady() == null ? slot.apply(m.tls())
                    : notReady("transport socket match \"" + m.name() + "\" not ready: " + m.notReady()));
        }
        return new TransportSockets(own, List.copyOf(matches), List.copyOf(slots));
    }

    /** A socket whose connections fail with {@code why}, as Envoy's {@code NotReadySslSocket}; never kept. */
    private static Slot notReady(String why) {
        return new Slot(null, new Socket(null, new IllegalStateException(why)));
    }

    /**
     * The socket of a host: the first match that applies to its endpoint's metadata, else the first that applies to
     * its locality's, else the cluster's own.
     */
    Slot select(Metadata endpoint, Metadata locality) {
        for (Metadata m : new Metadata[] {endpoint, locality}) {
            for (int i = 0; i < matches.size(); i++) {
                if (matches.get(i).appliesTo(m)) {
                    return matchSlots.get(i);
                }
            }
        }
        return own;
    }

    /** The cluster's own socket. */
    Slot own() {
        return own;
    }

    /** Every slot, the cluster's own first, each once. */
    List<Slot> slots() {
        List<Slot> out = new ArrayList<>();
        out.add(own);
        for (Slot s : matchSlots) {
            if (!out.contains(s)) {
                out.add(s);
            }
        }
        return out;
    }
}
