package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.net.BindFailures;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * The standalone proxy's listeners: binds every listener of the current snapshot that binds to its port (plain
 * listeners, {@code virtualOutbound} on 15001, {@code virtualInbound} on 15006; {@code bind_to_port: false} ones
 * are reached only through {@code use_original_dst}), as Netty server channels on Vert.x's event loops. Each accepted
 * connection gets a {@link ConnectionHandler} with the newest snapshot. A listener with {@code additional_addresses}
 * binds one socket per address, each with the listener's filter chains, bound, kept and stopped together. The listeners
 * then follow each new snapshot ({@link #follow}); one that cannot be bound rejects its configuration before it is
 * published ({@link #checkBinds}), as Envoy's listener manager rejects it. Transparent listeners get {@code IP_TRANSPARENT} (TPROXY; needs
 * CAP_NET_ADMIN when binding).
 */
public final class ProxyServer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(ProxyServer.class.getName());
    /**
     * How long a listener drain lasts by default: Istio's {@code drainDuration}, which its agent gives its sidecar
     * as Envoy's {@code --drain-time-s} (Envoy's own default is 600 s), for the listeners and filter chains an
     * update removes or changes and for {@code /drain_listeners?graceful}.
     */
    public static final java.time.Duration DEFAULT_DRAIN_TIME = java.time.Duration.ofSeconds(45);

    private final ProxyRuntime runtime;
    /** The bound listeners still accepting (or being bound), by listener name; guarded by this. */
    private final Map<String, Bound> bound = new LinkedHashMap<>();
    /** {@link #bind()} ran: from now on each new snapshot's listeners are bound, updated or stopped. */
    private boolean following;
    /** {@link #close()} ran: nothing is bound any more. */
    private boolean closed;
    /**
     * Listeners were stopped (a drain's end, {@code /drain_listeners}): every one, or the inbound ones. As Envoy's
     * listener manager, a listener of that scope that a later configuration adds is not started either.
     */
    private boolean stoppedAll;
    private boolean stoppedInbound;
    /** Every accepted connection still open. */
    private final io.netty.channel.group.ChannelGroup accepted =
            new io.netty.channel.group.DefaultChannelGroup(io.netty.util.concurrent.GlobalEventExecutor.INSTANCE);
    /** The binds {@link #follow} started that have not completed. */
    private final java.util.Set<io.netty.channel.ChannelFuture> binding =
            java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** A graceful drain was started: as Envoy's drain manager, another one is not. */
    private boolean drainStarted;
    /** The listener versions a configuration removed or replaced, draining: Envoy's draining listeners. */
    private final DrainingListeners draining;
    /** The snapshot whose listeners {@link #follow} applied last; guarded by this. */
    private MeshSnapshot followed;
    /**
     * The listeners whose socket {@link #checkBinds} has probed, by name, not bound since: a later check of the same
     * configuration (the snapshot that publishes a listener the control plane's LDS update checked) does not probe
     * it again; guarded by this.
     */
    private final Map<String, Listener> probed = new java.util.HashMap<>();

    /**
     * A listener bound to its addresses. New connections take {@link #current}: the listener's configuration in the
     * newest snapshot that kept its addresses, and that snapshot.
     */
    private static final class Bound {
        final String name;
        volatile Listener listener;
        volatile Current current;
        /** One server channel per address of the listener, in the order of {@link Listener#addresses()}. */
        volatile List<Channel> channels = List.of();

        Bound(MeshSnapshot snapshot, FilterChainSelector selector) {
            this.name = selector.listener().name();
            this.listener = selector.listener();
            this.current = new Current(snapshot, selector);
        }
    }

    private record Current(MeshSnapshot snapshot, FilterChainSelector selector) {}

    /**
     * @param vertx Vert.x, preferably on a native transport, epoll or io_uring (for SO_ORIGINAL_DST and TPROXY)
     * @param snapshots the configuration
     * @param router the shared router (its observer records metrics and access logs)
     */
    public ProxyServer(Vertx vertx, SnapshotHolder snapshots, Router router) {
        this.runtime = new ProxyRuntime((VertxInternal) vertx, router, snapshots);
        this.draining = new DrainingListeners(runtime);
        snapshots.drainingListeners(draining::now);
        snapshots.addCheck(this::checkBinds);
        // As Envoy's listen sockets listen(), its workers started, only once its cluster manager has initialized the
        // first configuration's clusters (a cluster with health checks after their first round): until then no
        // listener is bound and a connection is refused (Envoy's socket is bound but not listening; Netty's bind
        // listens at once, so Inmesh binds later).
        snapshots.onUpdate(s -> {
            if (snapshots.initialized().isComplete()) {
                follow(s);
            }
        });
        snapshots.initialized().onComplete(ar -> follow(snapshots.current()));
    }

    /**
     * Binds every listener with {@code bind_to_port} (blocking; call before dropping privileges, and once the
     * configuration is initialized, {@link SnapshotHolder#initialized()}, as Envoy's listeners start listening then).
     * From then on the listeners follow the configuration, as Envoy's listener manager follows LDS: see
     * {@link #follow}; a configuration that arrives before the first one is initialized is followed once it is.
     *
     * @return the bound addresses, in the order of the listeners (each listener's own, then its additional ones)
     * @throws IllegalStateException naming the listener that could not be bound; nothing stays bound then
     */
    public List<InetSocketAddress> bind() {
        List<InetSocketAddress> addresses = new ArrayList<>();
        synchronized (this) {
            MeshSnapshot snapshot = runtime.snapshots.current();
            for (Listener l : sorted(snapshot)) {
                Bound b = new Bound(snapshot, snapshot.listener(l.name()));
                List<Channel> channels = new ArrayList<>();
                try {
                    for (SocketAddress a : l.addresses()) {
                        channels.add(bind(b, a).sync().channel());
                    }
                } catch (InterruptedException e) {
                    channels.forEach(Channel::close);
                    Thread.currentThread().interrupt();
                    close();
                    throw new IllegalStateException("interrupted", e);
                } catch (Exception e) { // sync() rethrows the transport's checked IOException as it is
                    channels.forEach(Channel::close);
                    close();
                    throw new IllegalStateException("listener " + l.name() + ": cannot bind '"
                            + l.addresses().get(channels.size()) + "': " + BindFailures.reason(e), e);
                }
                b.channels = List.copyOf(channels);
                bound.put(l.name(), b);
                for (Channel ch : channels) {
                    addresses.add((InetSocketAddress) ch.localAddress());
                }
                logBound(b, b.channels);
            }
            following = true;
        }
        follow(runtime.snapshots.current());
        return addresses;
    }

    /** A snapshot's listeners that bind to their port, by name. */
    private static List<Listener> sorted(MeshSnapshot snapshot) {
        return sorted(snapshot.listeners().values());
    }

    private static List<Listener> sorted(java.util.Collection<Listener> all) {
        List<Listener> listeners = new ArrayList<>();
        for (Listener l : all) {
            if (l.bindToPort()) {
                listeners.add(l);
            }
        }
        listeners.sort(java.util.Comparator.comparing(Listener::name));
        return listeners;
    }

    /**
     * Applies a new snapshot's listeners, as Envoy's listener manager applies an LDS update: a listener that keeps
     * its name and its socket (address, port, transparency) keeps accepting, and its new connections get the new
     * configuration (filter chains, listener filters); a listener that is gone, or no longer binds to its port,
     * stops accepting; a listener that changed its socket stops and binds anew; a new listener is bound. The
     * connections of a listener that is gone or changed, and of filter chains removed or changed, drain
     * ({@link ChainDrains}). Binding does not block (it may run on an event loop). A listener that cannot be bound was
     * rejected before ({@link #checkBinds}); one whose port was taken after that check is logged and left out, and is
     * tried again with the next snapshot; the others are not affected.
     */
    private void follow(MeshSnapshot snapshot) {
        List<Channel> stopped = new ArrayList<>();
        java.util.Set<String> replaced = new java.util.HashSet<>();
        List<Bound> added = new ArrayList<>();
        MeshSnapshot before;
        synchronized (this) {
            if (!following || closed) {
                return;
            }
            before = followed;
            followed = snapshot;
            for (var it = bound.values().iterator(); it.hasNext(); ) {
                Bound b = it.next();
                FilterChainSelector next = snapshot.listener(b.name);
                if (next != null && next.listener().bindToPort() && sameSocket(b.listener, next.listener())) {
                    b.listener = next.listener();
                    b.current = new Current(snapshot, next);
                    for (Channel ch : b.channels) {
                        acceptsPerEvent(ch, b.listener);
                    }
                } else {
                    it.remove();
                    replaced.add(b.name);
                    stopped.addAll(b.channels);
                    LOG.info(() -> "listener " + b.name + (next == null ? " removed" : " changed its address")
                            + ": stopped accepting on " + b.listener.addresses());
                }
            }
            for (Listener l : sorted(snapshot)) {
                if (!bound.containsKey(l.name()) && !stopped(l)) {
                    Bound b = new Bound(snapshot, snapshot.listener(l.name()));
                    bound.put(l.name(), b);
                    added.add(b);
                }
            }
        }
        synchronized (this) {
            for (Bound b : added) {
                probed.remove(b.name);
            }
        }
        for (Channel ch : stopped) {
            ch.close();
        }
        // as Envoy's listener manager: the connections of what went away or changed drain
        runtime.drains.follow(snapshot, replaced);
        if (before != null && before != snapshot) {
            draining.follow(before, snapshot);
        }
        for (Bound b : added) {
            bindAll(b);
        }
    }

    /**
     * Binds each address of {@code b}'s listener without waiting, then hands the channels to {@link #bound}: all of
     * them, or, when one address cannot be bound, none (the others are closed again) and why.
     */
    private void bindAll(Bound b) {
        List<SocketAddress> addresses = b.listener.addresses();
        Channel[] channels = new Channel[addresses.size()];
        java.util.concurrent.atomic.AtomicInteger pending = new java.util.concurrent.atomic.AtomicInteger(
                addresses.size());
        java.util.concurrent.atomic.AtomicReference<Throwable> failure =
                new java.util.concurrent.atomic.AtomicReference<>();
        for (int i = 0; i < addresses.size(); i++) {
            int index = i;
            SocketAddress address = addresses.get(i);
            Runnable done = () -> {
                if (pending.decrementAndGet() == 0) {
                    List<Channel> all = new ArrayList<>();
                    for (Channel ch : channels) {
                        if (ch != null) {
                            all.add(ch);
                        }
                    }
                    if (failure.get() != null) {
                        all.forEach(Channel::close);
                        bound(b, null, failure.get());
                    } else {
                        bound(b, all, null);
                    }
                }
            };
            try {
                io.netty.channel.ChannelFuture binding = bind(b, address);
                this.binding.add(binding);
                binding.addListener((io.netty.channel.ChannelFutureListener) f -> {
                    this.binding.remove(f);
                    if (f.isSuccess()) {
                        channels[index] = f.channel();
                    } else {
                        failure.compareAndSet(null, new IllegalStateException(address + ": "
                                + f.cause().getMessage(), f.cause()));
                    }
                    done.run();
                });
            } catch (RuntimeException e) {
                failure.compareAndSet(null, new IllegalStateException(address + ": " + e.getMessage(), e));
                done.run();
            }
        }
    }

    /**
     * The check a configuration passes before it is published ({@link SnapshotHolder#addCheck}), as Envoy's listener
     * manager creates the socket of a listener it adds or whose address changed, and rejects the listener when it
     * cannot: each listener that binds to its port and is new, or whose socket (address, transparency) changed, must
     * not take an address one of the proxy's listeners keeps (Envoy's duplicate address), nor one another new
     * listener of the update takes, and must be bindable. A probe binds a socket as {@link #bind(Bound)} would
     * ({@code SO_REUSEADDR}, {@code IP_TRANSPARENT} for a transparent listener) on the calling thread (a config
     * source's worker thread: a bind does not wait on the network) and closes it at once; the proxy's own listeners
     * bind later, on the event loops, without waiting. An address one of the proxy's listeners holds and gives up in
     * the same update (removed, or moved elsewhere) is not probed: it is free once that one stops. A port another
     * process takes between the probe and the bind is not caught here: that listener is logged and left out
     * ({@link #bound(Bound, Channel, Throwable)}), and tried again with the next snapshot; a later configuration that
     * keeps it with the same socket is not refused for it (it was checked when it was published), as Envoy's other
     * updates do not fail for a listener whose bind failed.
     *
     * @throws InvalidResourceException naming the first listener (by name) that cannot be bound, and why
     */
    private void checkBinds(ResourceBundle bundle) throws InvalidResourceException {
        Map<String, Listener> kept = new LinkedHashMap<>();
        List<Listener> released = new ArrayList<>();
        List<Listener> wanted = new ArrayList<>();
        Map<String, Listener> known = new java.util.HashMap<>();
        Map<String, Listener> unbound = new LinkedHashMap<>();
        synchronized (this) {
            if (!following || closed) {
                return;
            }
            MeshSnapshot published = runtime.snapshots.current();
            for (Bound b : bound.values()) {
                Listener next = bundle.listeners().get(b.name);
                if (next != null && next.bindToPort() && sameSocket(b.listener, next)) {
                    kept.put(b.name, b.listener);
                } else {
                    released.add(b.listener);
                }
            }
            probed.keySet().retainAll(bundle.listeners().keySet());
            for (Listener l : sorted(bundle.listeners().values())) {
                if (kept.containsKey(l.name()) || stopped(l)) {
                    continue;
                }
                FilterChainSelector was = published.listener(l.name());
                if (was != null && was.listener().bindToPort() && sameSocket(was.listener(), l)) {
                    // published with this socket, its bind failed since (its port taken after its check): follow
                    // tries it again; it is no reason to refuse this configuration
                    unbound.put(l.name(), l);
                } else {
                    wanted.add(l);
                    known.put(l.name(), probed.get(l.name()));
                }
            }
        }
        Map<SocketAddress, String> taken = new java.util.HashMap<>();
        kept.forEach((name, l) -> l.addresses().forEach(a -> taken.put(a, name)));
        unbound.forEach((name, l) -> l.addresses().forEach(a -> {
            if (a.port() != 0) {
                taken.putIfAbsent(a, name);
            }
        }));
        for (Listener l : wanted) {
            for (SocketAddress a : l.addresses()) {
                String holder = a.port() == 0 ? null : taken.putIfAbsent(a, l.name());
                if (holder != null) {
                    throw new InvalidResourceException(ResourceType.LISTENER, l.name(), "address",
                            "duplicate address '" + a + "' as " + (holder.equals(l.name()) ? "its own other address"
                                    : "existing listener '" + holder + "'"));
                }
            }
            if (known.get(l.name()) == l) {
                continue;
            }
            for (SocketAddress a : l.addresses()) {
                if (released.stream().anyMatch(r -> overlaps(r, a))) {
                    continue;
                }
                String failure = probe(l, a);
                if (failure != null) {
                    throw new InvalidResourceException(ResourceType.LISTENER, l.name(), "address", failure);
                }
            }
            synchronized (this) {
                probed.put(l.name(), l);
            }
        }
    }

    /** Whether a listener given up holds {@code a}'s port on an address that {@code a} takes or covers. */
    private static boolean overlaps(Listener released, SocketAddress a) {
        if (a.port() == 0) {
            return false;
        }
        for (SocketAddress r : released.addresses()) {
            if (r.port() == a.port() && (r.address().equals(a.address()) || wildcard(r) || wildcard(a))) {
                return true;
            }
        }
        return false;
    }

    private static boolean wildcard(SocketAddress a) {
        return a.address().equals("0.0.0.0") || a.address().equals("::");
    }

    /**
     * Binds a socket as {@link #bind(Bound, SocketAddress)} binds {@code l}'s address {@code a} and closes it at once
     * (blocking, briefly: a bind system call); why it cannot be bound, or null.
     */
    private String probe(Listener l, SocketAddress a) {
        InetSocketAddress address = new InetSocketAddress(a.address(), a.port());
        String what = "cannot bind '" + a + "'" + (l.transparent() ? " (transparent)" : "") + ": ";
        if (!l.transparent()) {
            try (java.net.Socket s = new java.net.Socket()) {
                s.setReuseAddress(true);
                s.bind(address); // bound only, never listening: no connection can reach it
                return null;
            } catch (java.io.IOException e) {
                return what + e.getMessage();
            }
        }
        if (IoTransport.of(runtime.vertx) == IoTransport.NIO || !io.netty.channel.epoll.Epoll.isAvailable()) {
            return what + "transparent (TPROXY) listeners need a native transport (epoll or io_uring)";
        }
        // IP_TRANSPARENT has no Java socket option: an epoll socket, never registered with an event loop
        io.netty.channel.epoll.EpollServerSocketChannel probe = new io.netty.channel.epoll.EpollServerSocketChannel();
        try {
            probe.config().setReuseAddress(true);
            probe.config().setIpTransparent(true); // needs CAP_NET_ADMIN
            ((io.netty.channel.unix.Socket) probe.fd()).bind(address);
            return null;
        } catch (io.netty.channel.ChannelException | java.io.IOException e) {
            Throwable cause = e instanceof io.netty.channel.ChannelException && e.getCause() != null ? e.getCause() : e;
            return what + cause.getMessage();
        } finally {
            try {
                probe.fd().close();
            } catch (java.io.IOException e) {
                LOG.fine(() -> "closing a probe socket: " + e);
            }
        }
    }

    /**
     * Waits (blocking; not on an event loop) at most {@code timeout} for the binds that configuration updates have
     * started so far, so that the proxy drops root only once the listeners it has been given are bound with it.
     */
    public void awaitBinds(java.time.Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        for (io.netty.channel.ChannelFuture f : List.copyOf(binding)) {
            f.awaitUninterruptibly(Math.max(0, (deadline - System.nanoTime()) / 1_000_000));
        }
    }

    /**
     * A listener bound after start ({@code channels}, one per address), kept if it is still wanted and else closed
     * again; or one that could not be bound ({@code failure}, channels null), logged and left out.
     */
    private void bound(Bound b, List<Channel> channels, Throwable failure) {
        boolean wanted;
        synchronized (this) {
            wanted = !closed && bound.get(b.name) == b;
            if (channels != null && wanted) {
                b.channels = List.copyOf(channels);
                // the configuration may have changed while the sockets were being bound
                for (Channel ch : channels) {
                    acceptsPerEvent(ch, b.listener);
                }
            } else if (wanted) {
                bound.remove(b.name);
            }
        }
        if (channels == null) {
            LOG.warning(() -> "listener " + b.name + ": cannot bind " + failure.getMessage()
                    + " (the listener is left out)");
        } else if (!wanted) {
            channels.forEach(Channel::close);
        } else {
            logBound(b, channels);
        }
    }

    /** Whether {@code l} is in the scope of listeners stopped before; guarded by this. */
    private boolean stopped(Listener l) {
        return stoppedAll || stoppedInbound
                && l.trafficDirection() == dev.inmesh.api.config.listener.TrafficDirection.INBOUND;
    }

    private static void logBound(Bound b, List<Channel> channels) {
        LOG.info(() -> "listener " + b.name + " on " + channels.stream().map(Channel::localAddress).toList()
                + (b.listener.transparent() ? " (transparent)" : ""));
    }

    /**
     * Whether two configurations of a listener use the same sockets: addresses (its own and its additional ones, in
     * order), ports and transparency.
     */
    private static boolean sameSocket(Listener a, Listener b) {
        return a.addresses().equals(b.addresses()) && a.transparent() == b.transparent();
    }

    @SuppressWarnings("deprecation") // MAX_MESSAGES_PER_READ: the server channel's accepts per read, as intended
    private io.netty.channel.ChannelFuture bind(Bound bound, SocketAddress address) {
        Listener l = bound.listener;
        VertxInternal vertx = runtime.vertx;
        ServerBootstrap b = new ServerBootstrap()
                .group(vertx.acceptorEventLoopGroup(), vertx.nettyEventLoopGroup())
                .channelFactory(ipv4Only(l, address) ? () -> new io.netty.channel.epoll.EpollServerSocketChannel(
                        io.netty.channel.socket.SocketProtocolFamily.INET)
                        : vertx.transport().serverChannelFactory(false))
                .option(ChannelOption.SO_REUSEADDR, true)
                .option(ChannelOption.SO_BACKLOG, 1024)
                .option(ChannelOption.MAX_MESSAGES_PER_READ, acceptsPerEvent(l))
                .childOption(ChannelOption.AUTO_READ, false)
                .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
                .childOption(ChannelOption.TCP_NODELAY, true)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        accepted.add(ch);
                        Current c = bound.current;
                        ch.pipeline().addLast("connection", new ConnectionHandler(runtime, c.snapshot(),
                                c.selector()));
                    }
                });
        if (l.transparent()) {
            if (IoTransport.of(vertx) == IoTransport.NIO) {
                throw new IllegalStateException("transparent (TPROXY) listeners need a native transport (epoll or "
                        + "io_uring)");
            }
            // one option for both native transports (io_uring's IP_TRANSPARENT is the same constant)
            b.option(io.netty.channel.epoll.EpollChannelOption.IP_TRANSPARENT, true);
        }
        InetSocketAddress at = new InetSocketAddress(address.address(), address.port());
        if (l.addresses().size() > 1 && at.getAddress() instanceof java.net.Inet6Address) {
            b.option(IPV6_V6ONLY, 1);
        }
        return b.bind(at);
    }

    /**
     * Whether {@code l}'s socket for {@code address} is an IPv4 one. As Envoy's sockets, each of a listener with
     * several addresses takes one family: a listener on 0.0.0.0 and :: of one port (istiod's dual-stack listeners)
     * takes IPv4 on one socket and IPv6 on the other ({@link #IPV6_V6ONLY}), where Netty's epoll binds 0.0.0.0 as a
     * dual-stack :: and the second bind would fail. io_uring and NIO have no IPv4-only server channel (nor NIO an
     * {@code IPV6_V6ONLY}): there such a listener cannot be bound.
     */
    private boolean ipv4Only(Listener l, SocketAddress address) {
        return l.addresses().size() > 1 && IoTransport.of(runtime.vertx) == IoTransport.EPOLL
                && !address.isUnixDomain() && !address.address().contains(":");
    }

    /** {@code IPV6_V6ONLY} (level {@code IPPROTO_IPV6}, 41; option 26 on Linux), for the native transports. */
    private static final io.netty.channel.unix.IntegerUnixChannelOption IPV6_V6ONLY =
            new io.netty.channel.unix.IntegerUnixChannelOption("IPV6_V6ONLY", 41, 26);

    /**
     * How many pending connections the listener's socket accepts each time it is ready, as Envoy's
     * {@code max_connections_to_accept_per_socket_event}: the listener's, else every one pending (Envoy's default,
     * where Netty would stop at 16). The server channel reads that many messages (accepted connections) per read at most.
     */
    static int acceptsPerEvent(Listener l) {
        Integer n = l.maxConnectionsToAcceptPerSocketEvent();
        return n == null ? Integer.MAX_VALUE : n;
    }

    /** Applies {@link #acceptsPerEvent(Listener)} of {@code l} to the bound channel {@code ch}. */
    @SuppressWarnings("deprecation") // MAX_MESSAGES_PER_READ: sets the channel's allocator's maximum, as intended
    private static void acceptsPerEvent(Channel ch, Listener l) {
        ch.config().setOption(ChannelOption.MAX_MESSAGES_PER_READ, acceptsPerEvent(l));
    }

    /** The channel listener {@code name} is bound with, or null: for tests. */
    synchronized Channel channel(String name) {
        Bound b = bound.get(name);
        return b == null || b.channels.isEmpty() ? null : b.channels.get(0);
    }

    /** Closes every listener; connections already accepted run on. */
    @Override
    public void close() {
        synchronized (this) {
            closed = true;
        }
        for (List<Channel> channels : stopListeners(false)) {
            channels.forEach(ch -> ch.closeFuture().syncUninterruptibly());
        }
    }

    /** How long a graceful drain lasts ({@link #DEFAULT_DRAIN_TIME} unless set): Envoy's {@code --drain-time-s}. */
    public void drainTime(java.time.Duration time) {
        runtime.drainTime = time;
    }

    public java.time.Duration drainTime() {
        return runtime.drainTime;
    }

    /**
     * What the admin server's {@code /drain_listeners} and {@code /healthcheck/fail|ok} do to this server's
     * listeners: {@link #drainListeners} and {@link #healthCheckFailed}, for the {@link #drainTime}.
     */
    public dev.inmesh.runtime.admin.AdminServer.DrainListeners adminActions() {
        return adminActions(() -> { });
    }

    /**
     * {@link #adminActions()}, the agent port's {@code /drain} running {@code afterAgentDrain} once the inbound
     * listeners drain (the standalone proxy's: a later stop then skips its termination drain).
     */
    public dev.inmesh.runtime.admin.AdminServer.DrainListeners adminActions(Runnable afterAgentDrain) {
        return new dev.inmesh.runtime.admin.AdminServer.DrainListeners() {
            @Override
            public void agentDrain() {
                drain(true, true, true);
                afterAgentDrain.run();
            }

            @Override
            public void drain(boolean inboundOnly, boolean graceful, boolean skipExit) {
                drainListeners(inboundOnly, graceful, skipExit);
            }

            @Override
            public void healthCheckFailed(boolean failed) {
                ProxyServer.this.healthCheckFailed(failed);
            }

            @Override
            public java.time.Duration drainTime() {
                return ProxyServer.this.drainTime();
            }
        };
    }

    /**
     * Envoy's server while its health checks fail ({@code POST /healthcheck/fail}, until {@code /healthcheck/ok}):
     * every connection manager's drain decision says close, so HTTP/1 answers carry {@code connection: close} and
     * end their connections and an HTTP/2 connection that answers starts its drain sequence (GOAWAY); the listeners
     * keep accepting.
     */
    public void healthCheckFailed(boolean failed) {
        runtime.healthCheckFailed = failed;
    }

    /**
     * Envoy's {@code POST /drain_listeners}; does not block (it runs on the admin server's event loop).
     * Without {@code graceful} the listeners in scope stop accepting at once and their connections run on. With it
     * the drain sequence starts, as Envoy's drain manager (immediate strategy, as Istio runs its sidecars): the
     * listeners keep accepting for the drain time while their HTTP/1 answers carry {@code connection: close} and
     * end their connections and their HTTP/2 connections get GOAWAY; then they stop, unless {@code skipExit}.
     * A graceful drain asked for while one is under way is ignored, as by Envoy.
     *
     * @param inboundOnly only the listeners whose {@code traffic_direction} is {@code INBOUND}
     */
    public void drainListeners(boolean inboundOnly, boolean graceful, boolean skipExit) {
        if (!graceful) {
            stopDrainedListeners(inboundOnly);
            return;
        }
        synchronized (this) {
            if (drainStarted) {
                return;
            }
            drainStarted = true;
        }
        runtime.startDrain(inboundOnly);
        if (!skipExit) {
            runtime.vertx.setTimer(Math.max(1, runtime.drainTime.toMillis()), id -> stopDrainedListeners(inboundOnly));
        }
    }

    /**
     * {@link #stopListeners} for a drain, each listener stopped counted in {@code listener_manager.listener_stopped},
     * as Envoy's listener manager's {@code stopListeners} counts them.
     */
    private void stopDrainedListeners(boolean inboundOnly) {
        runtime.snapshots.stats().listenersStopped(stopListeners(inboundOnly).size());
    }

    /**
     * Closes every accepted connection still open, a request in flight on it included (its upstream request is
     * reset), as Envoy's connections end with its process; waits for the closes, a second at the most.
     */
    public void closeConnections() {
        accepted.close().awaitUninterruptibly(1, java.util.concurrent.TimeUnit.SECONDS);
    }

    /** How many accepted connections are still open. */
    public int openConnections() {
        return accepted.size();
    }

    /**
     * How many accepted connections are still open, leaving out those of the listeners whose bound address
     * {@code uncounted} takes.
     */
    public int openConnections(java.util.function.Predicate<InetSocketAddress> uncounted) {
        int open = 0;
        for (Channel ch : accepted) {
            Channel listener = ch.parent();
            if (listener == null || !(listener.localAddress() instanceof InetSocketAddress a) || !uncounted.test(a)) {
                open++;
            }
        }
        return open;
    }

    /**
     * Stops the listeners in scope from accepting (their server channels close); accepted connections run on.
     *
     * @return the server channels being closed of each listener stopped
     */
    private List<List<Channel>> stopListeners(boolean inboundOnly) {
        List<List<Channel>> stopped = new ArrayList<>();
        synchronized (this) {
            if (inboundOnly) {
                stoppedInbound = true;
            } else {
                stoppedAll = true;
            }
            for (var it = bound.values().iterator(); it.hasNext(); ) {
                Bound b = it.next();
                if (!inboundOnly || b.listener.trafficDirection()
                        == dev.inmesh.api.config.listener.TrafficDirection.INBOUND) {
                    it.remove();
                    stopped.add(b.channels);
                    LOG.fine(() -> "listener " + b.name + " stopped accepting");
                }
            }
        }
        stopped.forEach(channels -> channels.forEach(Channel::close));
        return stopped;
    }

    /** Tests only: sees each HTTP/1 connection once its handlers are in place. */
    void http1Hook(java.util.function.Consumer<Channel> hook) {
        runtime.http1Hook = hook;
    }

    /** Tests only: how often a relayed connection's bytes are added to the TCP metrics while it lasts (5 s). */
    void tcpReportingInterval(java.time.Duration interval) {
        runtime.tcpReportingInterval = interval;
    }

    /** Where relayed TCP connections are counted (Istio's {@code istio_tcp_*} metrics). */
    void tcpMetrics(java.util.function.Function<dev.inmesh.runtime.stats.TcpConnectionInfo,
            dev.inmesh.runtime.stats.MeshMetrics.TcpConnectionMetrics> metrics) {
        runtime.tcpMetrics = metrics;
    }

    /**
     * Where Envoy's statistics of the HTTP connection managers ({@code http.<prefix>.*}) and of the listeners
     * ({@code listener.<address>.*}) are counted; null for none.
     */
    void downstreamStats(java.util.function.Function<dev.inmesh.api.config.listener.HttpConnectionManager,
                                 dev.inmesh.runtime.stats.DownstreamStats> connectionManagers,
                         java.util.function.Function<String, dev.inmesh.runtime.stats.ListenerStats> listeners) {
        runtime.connectionManagerStats = connectionManagers;
        runtime.listenerStats = listeners;
        // made with each configuration, at 0, as Envoy makes them when it builds the listeners
        runtime.snapshots.connectionManagerStats(connectionManagers);
    }

    /**
     * Where Envoy's statistics of the network filters are counted (RBAC, local rate limit, TCP proxy); null for
     * none. Those of the TCP proxies are made with each configuration, at 0, as Envoy makes them with its filters.
     */
    void networkStats(dev.inmesh.runtime.stats.NetworkFilterStats stats) {
        runtime.networkStats = stats;
        runtime.snapshots.tcpProxyStats(stats == null ? null : stats::tcpProxy);
    }

    /**
     * Gets each finished tcp_proxy connection, relayed or closed without an upstream, on its event loop (an access
     * log that must not block); never the HTTP requests' observer, so TCP connections are not counted as requests.
     */
    void tcpAccessLog(java.util.function.Consumer<dev.inmesh.runtime.stats.TcpStreamInfo> log) {
        runtime.tcpAccessLog = log;
    }

    /**
     * This workload's metadata exchange headers, answered on inbound listeners to a caller that sent its own (each
     * when the caller sent that one), as Istio's sidecar answers; null for none.
     */
    void peerMetadata(String value, String id) {
        runtime.peerMetadata = value;
        runtime.peerMetadataId = id;
    }
}
