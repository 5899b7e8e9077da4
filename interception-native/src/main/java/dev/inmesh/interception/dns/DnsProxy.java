package dev.inmesh.interception.dns;

import dev.inmesh.runtime.snapshot.SnapshotHolder;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoop;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.DatagramPacket;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.codec.dns.DatagramDnsQuery;
import io.netty.handler.codec.dns.DatagramDnsQueryDecoder;
import io.netty.handler.codec.dns.DatagramDnsQueryEncoder;
import io.netty.handler.codec.dns.DatagramDnsResponse;
import io.netty.handler.codec.dns.DatagramDnsResponseEncoder;
import io.netty.handler.codec.dns.DefaultDnsQuery;
import io.netty.handler.codec.dns.DefaultDnsRawRecord;
import io.netty.handler.codec.dns.DefaultDnsResponse;
import io.netty.handler.codec.dns.DnsOpCode;
import io.netty.handler.codec.dns.DnsQuery;
import io.netty.handler.codec.dns.DnsQuestion;
import io.netty.handler.codec.dns.DnsRecord;
import io.netty.handler.codec.dns.DnsRecordType;
import io.netty.handler.codec.dns.DnsResponse;
import io.netty.handler.codec.dns.DnsResponseCode;
import io.netty.handler.codec.dns.DnsSection;
import io.netty.handler.codec.dns.TcpDnsQueryDecoder;
import io.netty.handler.codec.dns.TcpDnsQueryEncoder;
import io.netty.handler.codec.dns.TcpDnsResponseEncoder;
import io.netty.handler.flow.FlowControlHandler;
import io.netty.handler.timeout.ReadTimeoutHandler;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.Vertx;
import io.vertx.core.internal.VertxInternal;
import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The DNS proxy Istio's agent runs with {@code ISTIO_META_DNS_CAPTURE=true}, on Vert.x's event loops: UDP and TCP
 * servers (127.0.0.1:15053, and [::1]:15053 when the host has IPv6 loopback) where {@code inmesh iptables
 * --redirect-dns} sends the application's queries. The question of a query is answered from the {@link DnsTable}
 * of the configuration the proxy runs (rebuilt on each snapshot, swapped atomically), or, once istiod has sent one,
 * of istiod's name table ({@link #nameTable}, as Istio's agent answers), authoritative, TTL 30 s, its addresses
 * shuffled; until the first configuration or name table, every query gets SERVFAIL, as the agent's before its first
 * name table (so that no application caches a forwarded NXDOMAIN for a name of the mesh); every other query is
 * forwarded to the upstream resolvers in turn (over UDP for a UDP query, over TCP for a TCP one; its header flags,
 * opcode, RD, AD and CD, as the application set them), from a new socket
 * of the proxy's (whose user the capture rules leave alone), and the first answer is relayed to the application as
 * it came (its id is the query's; over UDP cut to the records that fit, TC set, when larger than the query takes); when
 * none answers in time, SERVFAIL. A query the DNS server library of
 * Istio's agent rejects gets NOTIMP (an opcode other than QUERY and NOTIFY) or FORMERR (not one question, see
 * {@link #rejected}). UDP answers from the table keep to 512 bytes, or the query's EDNS size, their names
 * compressed when they would not fit otherwise, with TC set when records still had to be left out. At most
 * {@link Options#maxPending()} queries are forwarded at once, more get SERVFAIL; at most
 * {@link #MAX_TCP_IN_FLIGHT} of one TCP connection.
 */
public final class DnsProxy implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(DnsProxy.class.getName());

    /** The port Istio's agent listens on for the queries the capture rules redirect. */
    public static final int PORT = 15053;

    /**
     * How many queries of one TCP connection are forwarded at once; its next ones are left unread until one is
     * answered (and while the application does not read its answers), so that one connection cannot take every
     * {@link Options#maxPending()} slot nor fill the proxy's memory with answers.
     */
    static final int MAX_TCP_IN_FLIGHT = 8;

    /** The UDP payload size the proxy's EDNS answers announce, the one DNS Flag Day 2020 settled on. */
    static final int EDNS_SIZE = 1232;

    /**
     * How the DNS proxy runs.
     *
     * @param listen the addresses to listen on, UDP and TCP each
     * @param upstreams the resolvers unknown names are asked of, in order
     * @param searchDomains the application's search domains (the first makes the table's aliases)
     * @param upstreamTimeout how long one resolver is waited for
     * @param maxPending how many queries may be forwarded at once
     * @param parallel whether a query is sent to every resolver at once, the first answer taken (Istio's agent's
     *                 {@code DNS_FORWARD_PARALLEL}), rather than to each in turn
     */
    public record Options(List<InetSocketAddress> listen, List<InetSocketAddress> upstreams,
                          List<String> searchDomains, Duration upstreamTimeout, int maxPending, boolean parallel) {
        /** How long Istio's agent waits for a resolver (DNS_FORWARD_TIMEOUT's default; 5 s since istio/istio#32890). */
        public static final Duration DEFAULT_UPSTREAM_TIMEOUT = Duration.ofSeconds(5);

        public Options {
            listen = List.copyOf(listen);
            upstreams = List.copyOf(upstreams);
            searchDomains = List.copyOf(searchDomains);
            if (listen.isEmpty()) {
                throw new IllegalArgumentException("dns.listen: [] (expected: at least one address)");
            }
            if (upstreamTimeout == null || upstreamTimeout.isNegative() || upstreamTimeout.isZero()) {
                throw new IllegalArgumentException("dns.upstream_timeout: " + upstreamTimeout
                        + " (expected: a positive duration)");
            }
            if (maxPending < 1) {
                throw new IllegalArgumentException("dns.max_pending: " + maxPending + " (expected: at least 1)");
            }
        }

        /** Options asking the resolvers in turn. */
        public Options(List<InetSocketAddress> listen, List<InetSocketAddress> upstreams, List<String> searchDomains,
                       Duration upstreamTimeout, int maxPending) {
            this(listen, upstreams, searchDomains, upstreamTimeout, maxPending, false);
        }

        /** These options, the resolvers asked all at once when {@code parallel}. */
        public Options withParallel(boolean parallel) {
            return new Options(listen, upstreams, searchDomains, upstreamTimeout, maxPending, parallel);
        }

        /**
         * Istio's agent's settings: {@link #defaultListen()}, the {@code nameserver}s (port 53) and the
         * {@code search} domains of {@code resolvConf} (none when it cannot be read), 5 s per resolver.
         */
        public static Options fromResolvConf(Path resolvConf) {
            List<InetSocketAddress> servers = new ArrayList<>();
            List<String> search = new ArrayList<>();
            List<String> lines;
            try {
                lines = Files.readAllLines(resolvConf, StandardCharsets.UTF_8);
            } catch (IOException e) {
                LOG.warning("dns: cannot read " + resolvConf + " (" + e.getMessage() + "): every name the "
                        + "configuration does not know gets SERVFAIL");
                lines = List.of();
            }
            for (String line : lines) {
                String[] words = line.trim().split("\\s+");
                if (words.length >= 2 && words[0].equals("nameserver")) {
                    InetAddress ip = nameServer(words[1]);
                    if (ip != null) {
                        servers.add(new InetSocketAddress(ip, 53));
                    }
                } else if (words.length >= 2 && (words[0].equals("search") || words[0].equals("domain"))) {
                    search.clear(); // the last search or domain line wins, as in the resolver
                    search.addAll(List.of(words).subList(1, words.length));
                }
            }
            return new Options(defaultListen(), servers, search, DEFAULT_UPSTREAM_TIMEOUT, 1024);
        }

        /**
         * The address of a {@code nameserver} line, an IPv6 one with its {@code %ZONE} (an interface's name or index,
         * which a link-local address needs to be reached), or null when it is not an IP address.
         */
        static InetAddress nameServer(String word) {
            int percent = word.indexOf('%');
            InetAddress ip = io.netty.util.NetUtil.createInetAddressFromIpAddressString(
                    percent < 0 ? word : word.substring(0, percent));
            if (ip instanceof Inet6Address && percent >= 0) {
                String zone = word.substring(percent + 1);
                try {
                    NetworkInterface nic = NetworkInterface.getByName(zone);
                    return Inet6Address.getByAddress(null, ip.getAddress(),
                            nic != null ? nic.getIndex() : Integer.parseInt(zone));
                } catch (IOException | NumberFormatException e) {
                    LOG.warning("dns: nameserver " + word + ": no interface " + zone + ", the zone is left out");
                }
            }
            return ip;
        }

        /** 127.0.0.1:15053, and [::1]:15053 when the loopback interface has ::1. */
        public static List<InetSocketAddress> defaultListen() {
            List<InetSocketAddress> out = new ArrayList<>(List.of(new InetSocketAddress("127.0.0.1", PORT)));
            try {
                NetworkInterface lo = NetworkInterface.getByInetAddress(InetAddress.getLoopbackAddress());
                if (lo != null && lo.inetAddresses().anyMatch(a -> a instanceof Inet6Address
                        && a.isLoopbackAddress())) {
                    out.add(new InetSocketAddress("::1", PORT));
                }
            } catch (SocketException e) {
                // no IPv6 loopback to tell of
            }
            return out;
        }
    }

    /**
     * Istio's agent's DNS metrics. Its metrics registry prefixes every name with {@code istio_agent_} (ztunnel's
     * DNS proxy has the bare {@code istio_dns_*} ones), and its port 15020 alone serves them: they belong in the
     * agent's own registry, not the proxy's (Envoy's 15090 has no DNS metric).
     */
    public interface Metrics {
        /** Counts nothing. */
        Metrics NONE = new Metrics() {
            @Override
            public void request() { }

            @Override
            public void upstreamRequest() { }

            @Override
            public void upstreamFailure() { }

            @Override
            public void upstreamDuration(long nanos) { }
        };

        /** A query received. */
        void request();

        /** A query forwarded. */
        void upstreamRequest();

        /** A forwarded query no resolver answered. */
        void upstreamFailure();

        /** How long a forwarded query took, answered or not. */
        void upstreamDuration(long nanos);

        /**
         * Istio's agent's {@code istio_agent_dns_requests_total}, {@code istio_agent_dns_upstream_requests_total},
         * {@code istio_agent_dns_upstream_failures_total} and
         * {@code istio_agent_dns_upstream_request_duration_seconds} (its buckets: 1 ms, 5 ms, 10 ms, 100 ms, 1 s,
         * 5 s) in {@code registry}, the agent's own.
         */
        static Metrics of(MeterRegistry registry) {
            Counter requests = Counter.builder("istio_agent_dns_requests").description("Total number of DNS requests.")
                    .register(registry);
            Counter upstream = Counter.builder("istio_agent_dns_upstream_requests")
                    .description("Total number of DNS requests forwarded to upstream.").register(registry);
            Counter failures = Counter.builder("istio_agent_dns_upstream_failures")
                    .description("Total number of DNS requests forwarded to upstream that failed.")
                    .register(registry);
            Timer duration = Timer.builder("istio_agent_dns_upstream_request_duration")
                    .description("Total time in seconds Istio takes to get DNS response from upstream.")
                    .serviceLevelObjectives(Duration.ofMillis(1), Duration.ofMillis(5), Duration.ofMillis(10),
                            Duration.ofMillis(100), Duration.ofSeconds(1), Duration.ofSeconds(5))
                    .register(registry);
            return new Metrics() {
                @Override
                public void request() {
                    requests.increment();
                }

                @Override
                public void upstreamRequest() {
                    upstream.increment();
                }

                @Override
                public void upstreamFailure() {
                    failures.increment();
                }

                @Override
                public void upstreamDuration(long nanos) {
                    duration.record(nanos, TimeUnit.NANOSECONDS);
                }
            };
        }
    }

    private final VertxInternal vertx;
    private final Options options;
    private final Metrics metrics;
    private final List<Channel> servers = new ArrayList<>();
    /** The open TCP connections of the applications and the sockets of the queries being forwarded. */
    private final Set<Channel> open = ConcurrentHashMap.newKeySet();
    private final AtomicInteger pending = new AtomicInteger();
    /** Shuffles the addresses of each answer from the table. */
    private final Random random;
    private volatile DnsTable table = DnsTable.EMPTY;
    /** Whether the table is istiod's name table, which the configuration's snapshots then no longer replace. */
    private volatile boolean fromNameTable;
    /** Whether a table to answer from is there: a first configuration applied, or a name table. */
    private volatile java.util.function.BooleanSupplier synced = () -> true;
    private volatile boolean closed;

    private DnsProxy(Vertx vertx, Options options, Metrics metrics, Random random) {
        this.vertx = (VertxInternal) vertx;
        this.options = options;
        this.metrics = metrics == null ? Metrics.NONE : metrics;
        this.random = random;
    }

    /**
     * Listens on every address of {@code options}, the table following {@code snapshots} (its current snapshot
     * now, each new one as it is published); blocking. Nothing is left listening when it throws.
     */
    public static DnsProxy start(Vertx vertx, SnapshotHolder snapshots, Options options, Metrics metrics)
            throws Exception {
        return start(vertx, snapshots, options, metrics, new Random());
    }

    /** {@link #start(Vertx, SnapshotHolder, Options, Metrics)}, the answers' addresses shuffled with {@code random}. */
    static DnsProxy start(Vertx vertx, SnapshotHolder snapshots, Options options, Metrics metrics, Random random)
            throws Exception {
        DnsProxy proxy = new DnsProxy(vertx, options, metrics, random);
        proxy.synced = () -> proxy.fromNameTable || snapshots.ready();
        snapshots.onUpdate(s -> {
            if (!proxy.closed) {
                proxy.update(s.resources());
            }
        });
        proxy.update(snapshots.current().resources());
        try {
            for (InetSocketAddress a : options.listen()) {
                proxy.servers.add(proxy.bindUdp(a));
                proxy.servers.add(proxy.bindTcp(a));
            }
        } catch (Exception | Error e) {
            proxy.close();
            throw e;
        }
        LOG.info("dns: listening on " + options.listen() + " (UDP, TCP); upstream " + options.upstreams()
                + ", search " + options.searchDomains());
        return proxy;
    }

    /**
     * Compiles the table of a configuration and makes it the one queries are answered from, unless istiod's name
     * table answers them.
     */
    public synchronized void update(dev.inmesh.runtime.xds.ResourceBundle bundle) {
        if (fromNameTable) {
            return;
        }
        DnsTable next = DnsTable.of(bundle, options.searchDomains());
        table = next;
        LOG.fine(() -> "dns: " + next.size() + " names");
    }

    /**
     * Makes istiod's name table {@code nt} the one queries are answered from, for good: as Istio's agent, which
     * answers from nothing else, a proxy whose control plane sends name tables answers from the latest one.
     *
     * @param proxyNamespace the proxy's namespace (a service of it is also answered by its short name alone)
     * @param clusterDomain the cluster's DNS domain ({@code cluster.local})
     */
    public synchronized void nameTable(NameTable nt, String proxyNamespace, String clusterDomain) {
        DnsTable next = DnsTable.of(nt, options.searchDomains(), proxyNamespace, clusterDomain);
        table = next;
        fromNameTable = true;
        LOG.fine(() -> "dns: " + next.size() + " names from istiod's name table");
    }

    /** The table queries are answered from now. */
    public DnsTable table() {
        return table;
    }

    /** The local addresses of the servers, UDP then TCP for each address listened on. */
    public List<InetSocketAddress> addresses() {
        return servers.stream().map(c -> (InetSocketAddress) c.localAddress()).toList();
    }

    private Channel bindUdp(InetSocketAddress address) throws InterruptedException {
        Bootstrap b = new Bootstrap().group(vertx.nettyEventLoopGroup())
                .channelFactory(() -> vertx.transport().datagramChannel())
                .handler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        ch.pipeline().addLast(new DatagramDnsQueryDecoder(), new DatagramDnsResponseEncoder() {
                            @Override
                            public boolean acceptOutboundMessage(Object msg) {
                                // an upstream's answer, relayed as it came, is a datagram already
                                return msg instanceof io.netty.channel.AddressedEnvelope<?, ?> e
                                        && e.content() instanceof DnsResponse;
                            }
                        }, new Queries(false));
                    }
                });
        return b.bind(address).sync().channel();
    }

    private Channel bindTcp(InetSocketAddress address) throws InterruptedException {
        ServerBootstrap b = new ServerBootstrap().group(vertx.acceptorEventLoopGroup(), vertx.nettyEventLoopGroup())
                .channelFactory(vertx.transport().serverChannelFactory(false))
                .option(io.netty.channel.ChannelOption.SO_REUSEADDR, true)
                .childOption(io.netty.channel.ChannelOption.AUTO_READ, false)
                .childHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                        track(ch);
                        // a connection that sends nothing for 8 s is closed, as the agent's server does
                        // the queries read are handed on one by one, as Queries asks for them
                        ch.pipeline().addLast(new ReadTimeoutHandler(8), new TcpDnsQueryDecoder(),
                                new FlowControlHandler(), new TcpDnsResponseEncoder(), new Queries(true));
                    }
                });
        return b.bind(address).sync().channel();
    }

    /** Keeps {@code ch} among the channels {@link #close()} closes while it is open; closes it when closed already. */
    private void track(Channel ch) {
        open.add(ch);
        ch.closeFuture().addListener(f -> open.remove(ch));
        if (closed) {
            ch.close();
        }
    }

    /** Answers or forwards each query of a channel. */
    private final class Queries extends SimpleChannelInboundHandler<DnsQuery> {
        private final boolean tcp;
        /** The TCP connection's queries being forwarded (on its event loop). */
        private int inFlight;

        Queries(boolean tcp) {
            this.tcp = tcp;
        }

        @Override
        public void channelActive(ChannelHandlerContext ctx) throws Exception {
            super.channelActive(ctx);
            readMore(ctx.channel());
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) throws Exception {
            super.channelWritabilityChanged(ctx);
            readMore(ctx.channel());
        }

        /**
         * Over TCP, reads the connection's next query when fewer than {@link #MAX_TCP_IN_FLIGHT} are being forwarded
         * and the application reads its answers (a task of its own, not to nest one query's handling in another's).
         */
        private void readMore(Channel ch) {
            if (tcp) {
                ch.eventLoop().execute(() -> {
                    if (ch.isActive() && ch.isWritable() && inFlight < MAX_TCP_IN_FLIGHT) {
                        ch.read();
                    }
                });
            }
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, DnsQuery query) {
            Channel ch = ctx.channel();
            readMore(ch);
            InetSocketAddress sender = query instanceof DatagramDnsQuery d ? d.sender() : null;
            DnsResponseCode rejected = rejected(query);
            if (rejected != null) {
                ch.writeAndFlush(rejection(query, sender, rejected));
                return;
            }
            metrics.request();
            if (!synced.getAsBoolean()) {
                ch.writeAndFlush(reply(query, sender, DnsResponseCode.SERVFAIL));
                return;
            }
            DnsQuestion question = query.recordAt(DnsSection.QUESTION);
            DnsTable.Answer answer = table.lookup(question.name(), question.type());
            if (answer != null) {
                ByteBuf m = answer(query, question, answer, random, sender == null ? 65535 : udpLimit(query));
                ch.writeAndFlush(sender == null ? framed(m) : new DatagramPacket(m, sender));
                return;
            }
            forward(query, sender, ch);
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // a query that does not decode is dropped, as the agent's server drops it; a TCP connection is closed
            LOG.log(Level.FINE, "dns: " + cause, cause);
            if (tcp) {
                ctx.close();
            }
        }

        private void forward(DnsQuery query, InetSocketAddress sender, Channel downstream) {
            metrics.upstreamRequest();
            if (options.upstreams().isEmpty() || pending.incrementAndGet() > options.maxPending()) {
                if (!options.upstreams().isEmpty()) {
                    pending.decrementAndGet();
                }
                metrics.upstreamFailure();
                downstream.writeAndFlush(reply(query, sender, DnsResponseCode.SERVFAIL));
                return;
            }
            long start = System.nanoTime();
            DnsQuery copy = copy(query);
            inFlight++;
            Consumer<ByteBuf> done = raw -> {
                pending.decrementAndGet();
                inFlight--;
                metrics.upstreamDuration(System.nanoTime() - start);
                if (raw == null) {
                    metrics.upstreamFailure();
                    downstream.writeAndFlush(reply(copy, sender, DnsResponseCode.SERVFAIL));
                } else if (tcp) {
                    downstream.writeAndFlush(framed(raw));
                } else {
                    downstream.writeAndFlush(new DatagramPacket(fit(raw, copy), sender));
                }
                ReferenceCountUtil.release(copy);
                readMore(downstream);
            };
            if (options.parallel()) {
                exchangeAll(copy, downstream.eventLoop(), done);
            } else {
                exchange(copy, 0, downstream.eventLoop(), done);
            }
        }

        /**
         * Asks every upstream at once, as Istio's agent with {@code DNS_FORWARD_PARALLEL}: the first answer (the
         * other attempts then stopped), or null when none answered.
         */
        private void exchangeAll(DnsQuery query, EventLoop loop, Consumer<ByteBuf> done) {
            if (closed) {
                done.accept(null);
                return;
            }
            List<Attempt> attempts = new ArrayList<>();
            AtomicBoolean answered = new AtomicBoolean();
            AtomicInteger failed = new AtomicInteger();
            for (int i = 0; i < options.upstreams().size(); i++) {
                attempts.add(new Attempt(raw -> {
                    if (raw == null) {
                        if (failed.incrementAndGet() == attempts.size()) {
                            done.accept(null);
                        }
                    } else if (answered.compareAndSet(false, true)) {
                        attempts.forEach(a -> a.accept(null));
                        done.accept(raw);
                    } else {
                        raw.release();
                    }
                }));
            }
            for (int i = 0; i < attempts.size(); i++) {
                ask(query, options.upstreams().get(i), loop, attempts.get(i));
            }
        }

        /** Asks upstream {@code index} and, when it does not answer in time, the next; null when none answered. */
        private void exchange(DnsQuery query, int index, EventLoop loop, Consumer<ByteBuf> done) {
            if (index >= options.upstreams().size() || closed) {
                done.accept(null);
                return;
            }
            ask(query, options.upstreams().get(index), loop, new Attempt(raw -> {
                if (raw != null) {
                    done.accept(raw);
                } else {
                    exchange(query, index + 1, loop, done);
                }
            }));
        }

        /** Sends the query to {@code upstream} from a new socket, closed when {@code attempt} ends or times out. */
        private void ask(DnsQuery query, InetSocketAddress upstream, EventLoop loop, Attempt attempt) {
            Channel ch = tcp ? tcpExchange(query, upstream, loop, attempt)
                    : udpExchange(query, upstream, loop, attempt);
            track(ch);
            attempt.watch(ch, loop.schedule(() -> {
                ch.close();
            }, options.upstreamTimeout().toNanos(), TimeUnit.NANOSECONDS));
        }

        private Channel udpExchange(DnsQuery query, InetSocketAddress upstream, EventLoop loop,
                                    Consumer<ByteBuf> attempt) {
            Bootstrap b = new Bootstrap().group(loop).channelFactory(() -> vertx.transport().datagramChannel())
                    .handler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(new QueryFlags(query, 0), new DatagramDnsQueryEncoder(),
                                    new Answers<>(DatagramPacket.class,
                                    p -> p.sender().equals(upstream) ? p.content() : null, query.id(), attempt));
                        }
                    });
            ReferenceCountUtil.retain(query);
            io.netty.channel.ChannelFuture bind = b.bind(new InetSocketAddress(0));
            Channel ch = bind.channel();
            bind.addListener(f -> {
                if (!f.isSuccess()) {
                    ReferenceCountUtil.release(query);
                    attempt.accept(null);
                    return;
                }
                DatagramDnsQuery out = new DatagramDnsQuery(null, upstream, query.id(), query.opCode());
                ch.writeAndFlush(into(query, out)).addListener(w -> {
                    if (!w.isSuccess()) {
                        attempt.accept(null);
                    }
                });
                ReferenceCountUtil.release(query);
            });
            return ch;
        }

        private Channel tcpExchange(DnsQuery query, InetSocketAddress upstream, EventLoop loop,
                                    Consumer<ByteBuf> attempt) {
            Bootstrap b = new Bootstrap().group(loop).channelFactory(vertx.transport().channelFactory(false))
                    .option(io.netty.channel.ChannelOption.CONNECT_TIMEOUT_MILLIS,
                            (int) Math.max(1, options.upstreamTimeout().toMillis()))
                    .handler(new ChannelInitializer<Channel>() {
                        @Override
                        protected void initChannel(Channel ch) {
                            ch.pipeline().addLast(new LengthFieldBasedFrameDecoder(65535, 0, 2, 0, 2),
                                    new QueryFlags(query, 2), new TcpDnsQueryEncoder(),
                                    new Answers<>(ByteBuf.class, f -> f, query.id(), attempt));
                        }
                    });
            ReferenceCountUtil.retain(query);
            io.netty.channel.ChannelFuture connect = b.connect(upstream);
            connect.addListener(f -> {
                if (!f.isSuccess()) {
                    ReferenceCountUtil.release(query);
                    attempt.accept(null);
                    return;
                }
                connect.channel().writeAndFlush(into(query, new DefaultDnsQuery(query.id(), query.opCode())))
                        .addListener(w -> {
                            if (!w.isSuccess()) {
                                attempt.accept(null);
                            }
                        });
                ReferenceCountUtil.release(query);
            });
            return connect.channel();
        }
    }

    /**
     * Writes the query's own header flags over those of Netty's query encoder, which writes RD alone (the opcode
     * shifted beyond the 16 bits, so that a NOTIFY goes out as a QUERY) and drops the Z, AD and CD bits: Istio's
     * agent sends upstream the application's query as it is, so that a validating client's CD (do not validate,
     * hand me the records) and AD reach the resolver.
     */
    private static final class QueryFlags extends io.netty.channel.ChannelOutboundHandlerAdapter {
        private final int flags;
        /** Where the message begins in what the encoder writes: after the length of a TCP message. */
        private final int at;

        QueryFlags(DnsQuery query, int at) {
            this.flags = (query.opCode().byteValue() & 0xf) << 11 | (query.isRecursionDesired() ? 0x0100 : 0)
                    | (query.z() & 0x7) << 4;
            this.at = at;
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, io.netty.channel.ChannelPromise promise)
                throws Exception {
            ByteBuf m = msg instanceof DatagramPacket p ? p.content() : msg instanceof ByteBuf b ? b : null;
            if (m != null && m.readableBytes() >= at + 4) {
                m.setShort(m.readerIndex() + at + 2, flags);
            }
            super.write(ctx, msg, promise);
        }
    }

    /**
     * One resolver asked: its answer, or null when its socket closes with none (timed out, failed, the proxy closed),
     * passed on once; then its time out is cancelled and its socket closed.
     */
    private static final class Attempt implements Consumer<ByteBuf> {
        private final AtomicBoolean finished = new AtomicBoolean();
        private final Consumer<ByteBuf> then;
        private volatile Channel channel;
        private volatile Future<?> timeout;

        Attempt(Consumer<ByteBuf> then) {
            this.then = then;
        }

        @Override
        public void accept(ByteBuf raw) {
            if (!finished.compareAndSet(false, true)) {
                ReferenceCountUtil.release(raw);
                return;
            }
            stop();
            then.accept(raw);
        }

        /** The socket the resolver is asked from, whose closing ends the attempt, and the time out that closes it. */
        void watch(Channel ch, Future<?> timeout) {
            this.channel = ch;
            this.timeout = timeout;
            ch.closeFuture().addListener(f -> accept(null));
            if (finished.get()) {
                stop();
            }
        }

        private void stop() {
            Future<?> t = timeout;
            if (t != null) {
                t.cancel(false);
            }
            Channel c = channel;
            if (c != null) {
                c.close();
            }
        }
    }

    /**
     * Takes the first message of an upstream channel that is an answer to query {@code id} (12 bytes or more, the
     * response bit set, the id the query's) as the answer, closing the channel; others are dropped.
     */
    private static final class Answers<T> extends SimpleChannelInboundHandler<T> {
        private final java.util.function.Function<T, ByteBuf> content;
        private final int id;
        private final Consumer<ByteBuf> attempt;

        Answers(Class<T> type, java.util.function.Function<T, ByteBuf> content, int id, Consumer<ByteBuf> attempt) {
            super(type);
            this.content = content;
            this.id = id;
            this.attempt = attempt;
        }

        @Override
        protected void channelRead0(ChannelHandlerContext ctx, T msg) {
            ByteBuf raw = content.apply(msg);
            if (raw == null || raw.readableBytes() < 12 || raw.getUnsignedShort(raw.readerIndex()) != id
                    || (raw.getByte(raw.readerIndex() + 2) & 0x80) == 0) {
                return;
            }
            attempt.accept(raw.retain());
            ctx.close();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            ctx.close();
            attempt.accept(null);
        }
    }

    /**
     * Why the DNS server library of Istio's agent (miekg/dns) rejects a query before its handler sees it, or null:
     * NOTIMP for an opcode other than QUERY and NOTIFY; FORMERR for a question count other than 1, more than one
     * answer or authority record, or more than two additional records.
     */
    static DnsResponseCode rejected(DnsQuery query) {
        int op = query.opCode().byteValue();
        if (op != DnsOpCode.QUERY.byteValue() && op != DnsOpCode.NOTIFY.byteValue()) {
            return DnsResponseCode.NOTIMP;
        }
        if (query.count(DnsSection.QUESTION) != 1 || query.count(DnsSection.ANSWER) > 1
                || query.count(DnsSection.AUTHORITY) > 1 || query.count(DnsSection.ADDITIONAL) > 2) {
            return DnsResponseCode.FORMERR;
        }
        return null;
    }

    /**
     * The reply of miekg/dns to a query it rejects: the query's id, RD, AD and CD, its opcode for NOTIMP (QUERY for
     * FORMERR), and no record at all (no question, no OPT).
     */
    private static DnsResponse rejection(DnsQuery query, InetSocketAddress sender, DnsResponseCode code) {
        DnsOpCode op = DnsResponseCode.NOTIMP.equals(code) ? query.opCode() : DnsOpCode.QUERY;
        DnsResponse r = sender == null ? new DefaultDnsResponse(query.id(), op, code)
                : new DatagramDnsResponse(null, sender, query.id(), op, code);
        return r.setRecursionDesired(query.isRecursionDesired()).setZ(query.z() & 0x3);
    }

    /** A copy of a query's question and additional records (EDNS), its flags and id, to send upstream. */
    private static DnsQuery copy(DnsQuery query) {
        return into(query, new DefaultDnsQuery(query.id(), query.opCode()));
    }

    private static <Q extends DnsQuery> Q into(DnsQuery from, Q to) {
        to.setRecursionDesired(from.isRecursionDesired()).setZ(from.z());
        for (DnsSection s : new DnsSection[] {DnsSection.QUESTION, DnsSection.ADDITIONAL}) {
            for (int i = 0; i < from.count(s); i++) {
                DnsRecord r = from.recordAt(s, i);
                to.addRecord(s, ReferenceCountUtil.retain(r));
            }
        }
        return to;
    }

    /**
     * A reply to {@code query} with no record but its question ({@link #replyFlags} its RD and CD) and, when the
     * query has EDNS, an OPT record of the proxy's (RFC 6891: payload size {@link #EDNS_SIZE}, version 0, the query's
     * DO bit).
     */
    private static DnsResponse reply(DnsQuery query, InetSocketAddress sender, DnsResponseCode code) {
        DnsResponse r = sender == null ? new DefaultDnsResponse(query.id(), query.opCode(), code)
                : new DatagramDnsResponse(null, sender, query.id(), query.opCode(), code);
        int flags = replyFlags(query);
        r.setRecursionDesired((flags & 0x0100) != 0).setZ(flags >> 4 & 0x7);
        for (int i = 0; i < query.count(DnsSection.QUESTION); i++) {
            r.addRecord(DnsSection.QUESTION, ReferenceCountUtil.retain(query.recordAt(DnsSection.QUESTION, i)));
        }
        DnsRecord opt = opt(query);
        if (opt != null) {
            r.addRecord(DnsSection.ADDITIONAL, new DefaultDnsRawRecord(".", DnsRecordType.OPT, EDNS_SIZE,
                    opt.timeToLive() & 0x8000, Unpooled.EMPTY_BUFFER));
        }
        return r;
    }

    /**
     * The RD and CD bits of the answers the proxy makes (the table's, its SERVFAILs), as miekg/dns's
     * {@code SetReply} makes Istio's agent's: the query's, for the opcode QUERY only; AD is not copied (the agent
     * validates nothing).
     */
    private static int replyFlags(DnsQuery query) {
        if (query.opCode().byteValue() != DnsOpCode.QUERY.byteValue()) {
            return 0;
        }
        return (query.isRecursionDesired() ? 0x0100 : 0) | (query.z() & 0x1) << 4;
    }

    /** The query's OPT record (EDNS), or null. */
    private static DnsRecord opt(DnsQuery query) {
        for (int i = 0; i < query.count(DnsSection.ADDITIONAL); i++) {
            DnsRecord r = query.recordAt(DnsSection.ADDITIONAL, i);
            if (DnsRecordType.OPT.equals(r.type())) {
                return r;
            }
        }
        return null;
    }

    /**
     * The table's answer, a DNS message of {@code limit} bytes at most: authoritative, NOERROR, the question, a CNAME
     * to the name first when the question is an alias, then the addresses (none, CNAME included, when the name has
     * none of the family asked) in an order {@code random} shuffles, as Istio's agent shuffles them so that clients
     * spread over a service's addresses, then the query's EDNS answer ({@link #reply}).
     * <p>
     * Its size is kept as Istio's agent keeps it (miekg/dns's {@code Msg.Truncate}): a message that fits as it is
     * goes out with its names written in full; one that does not has its names compressed (RFC 1035 4.1.4: a name,
     * or its tail, already written becomes a pointer to it), which brings a record of an address under the same
     * name down to 16 bytes (20 addresses fit 512 bytes where they would not in full), and the records that still
     * do not fit, from the first one that does not, are left out with TC set.
     */
    static ByteBuf answer(DnsQuery query, DnsQuestion question, DnsTable.Answer answer, Random random, int limit) {
        List<InetAddress> addresses = new ArrayList<>(answer.addresses());
        Collections.shuffle(addresses, random);
        DnsRecord opt = opt(query);
        ByteBuf whole = answerMessage(query, question, answer, addresses, opt, Integer.MAX_VALUE, null);
        if (whole.readableBytes() <= limit) {
            return whole;
        }
        whole.release();
        // the OPT record, a root name and no option, is written after the records in its 11 bytes
        return answerMessage(query, question, answer, addresses, opt, limit - (opt == null ? 0 : 11),
                new java.util.HashMap<>());
    }

    /**
     * The message of {@link #answer}, its records within {@code budget} bytes (those from the first one beyond it
     * left out, TC set), its names compressed when {@code names} (the offsets of the names written) is not null.
     */
    private static ByteBuf answerMessage(DnsQuery query, DnsQuestion question, DnsTable.Answer answer,
                                         List<InetAddress> addresses, DnsRecord opt, int budget,
                                         java.util.Map<String, Integer> names) {
        ByteBuf out = Unpooled.buffer(512);
        int flags = 0x8000 | (query.opCode().byteValue() & 0xf) << 11 | 0x0400 | replyFlags(query);
        out.writeShort(query.id()).writeShort(flags).writeShort(1).writeShort(0).writeShort(0)
                .writeShort(opt == null ? 0 : 1);
        writeName(out, question.name(), names);
        out.writeShort(question.type().intValue()).writeShort(question.dnsClass());
        int count = 0;
        boolean cut = false;
        int total = addresses.size() + (!addresses.isEmpty() && answer.alias() != null ? 1 : 0);
        for (int i = 0; i < total && !cut; i++) {
            int start = out.writerIndex();
            boolean cname = i == 0 && total > addresses.size();
            writeName(out, cname ? answer.alias() : answer.name(), names);
            out.writeShort(cname ? DnsRecordType.CNAME.intValue() : question.type().intValue())
                    .writeShort(DnsRecord.CLASS_IN).writeInt((int) DnsTable.TTL_SECONDS);
            int length = out.writerIndex();
            out.writeShort(0);
            if (cname) {
                writeName(out, answer.name(), names);
            } else {
                out.writeBytes(addresses.get(i - (total - addresses.size())).getAddress());
            }
            out.setShort(length, out.writerIndex() - length - 2);
            if (out.writerIndex() > budget) {
                out.writerIndex(start); // and the records after it, as miekg/dns stops at the first that does not fit
                cut = true;
            } else {
                count++;
            }
        }
        out.setShort(6, count);
        if (cut) {
            out.setShort(2, flags | 0x0200);
        }
        if (opt != null) {
            out.writeByte(0).writeShort(DnsRecordType.OPT.intValue()).writeShort(EDNS_SIZE)
                    .writeInt((int) (opt.timeToLive() & 0x8000)).writeShort(0);
        }
        return out;
    }

    /**
     * Writes {@code name} in DNS wire format; with {@code names} (the offsets of the names and tails written so far
     * in the message, which must start at the buffer's index 0) its longest tail already written is a pointer to
     * it, and its own tails are noted (those a pointer's 14 bits can reach).
     */
    private static void writeName(ByteBuf out, String name, java.util.Map<String, Integer> names) {
        List<String> labels = new ArrayList<>();
        for (String label : name.split("\\.")) {
            if (!label.isEmpty()) {
                labels.add(label);
            }
        }
        for (int i = 0; i < labels.size(); i++) {
            if (names != null) {
                String tail = String.join(".", labels.subList(i, labels.size())) + ".";
                Integer at = names.get(tail);
                if (at != null) {
                    out.writeShort(0xc000 | at);
                    return;
                }
                if (out.writerIndex() < 0x4000) {
                    names.put(tail, out.writerIndex());
                }
            }
            byte[] bytes = labels.get(i).getBytes(StandardCharsets.UTF_8);
            out.writeByte(bytes.length).writeBytes(bytes);
        }
        out.writeByte(0);
    }

    /** A DNS message for a TCP connection: after its length in two bytes (RFC 1035 4.2.2). */
    private static ByteBuf framed(ByteBuf m) {
        return Unpooled.wrappedBuffer(Unpooled.buffer(2).writeShort(m.readableBytes()), m);
    }

    /**
     * An upstream's UDP answer as it came when it fits the query's {@link #udpLimit}; else, as Istio's agent cuts it
     * (miekg/dns's {@code Msg.Truncate}), TC set and its records kept in order up to the first that does not fit,
     * the answer's OPT record (EDNS) kept last, so that a client that does not ask again over TCP (musl's resolver)
     * has the addresses that fit, and one that does asks again. The message is cut at records' ends, so the upstream's
     * name compression still holds (a pointer only ever points back); one that does not parse as DNS is cut to its
     * question.
     */
    static ByteBuf fit(ByteBuf raw, DnsQuery query) {
        int limit = udpLimit(query);
        if (raw.readableBytes() <= limit) {
            return raw;
        }
        ByteBuf m = raw.slice();
        ByteBuf out;
        try {
            out = cut(m, limit);
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            out = questionOnly(m, query); // not DNS as this reads it
        }
        raw.release();
        return out;
    }

    /** {@link #fit}'s cut of message {@code m} to {@code limit} bytes, at records' ends. */
    private static ByteBuf cut(ByteBuf m, int limit) {
        int questions = m.getUnsignedShort(4);
        int records = m.getUnsignedShort(6) + m.getUnsignedShort(8) + m.getUnsignedShort(10);
        if (records > m.readableBytes() / 11) {
            throw new IllegalArgumentException("more records than the message holds"); // 11 bytes each at least
        }
        int at = 12;
        for (int i = 0; i < questions; i++) {
            at = skipName(m, at) + 4;
        }
        int questionEnd = at;
        // each record's end, and the OPT record's place (the first, of the additional section)
        int[] ends = new int[records];
        int optStart = -1;
        int optEnd = -1;
        int additionalFrom = m.getUnsignedShort(6) + m.getUnsignedShort(8);
        for (int i = 0; i < records; i++) {
            int begin = at;
            at = skipName(m, at);
            int type = m.getUnsignedShort(at);
            at += 10 + m.getUnsignedShort(at + 8);
            if (at > m.readableBytes()) {
                throw new IllegalArgumentException("a record past the message's end");
            }
            ends[i] = at;
            if (type == 41 && i >= additionalFrom && optStart < 0) {
                optStart = begin;
                optEnd = at;
            }
        }
        int budget = limit - (optStart < 0 ? 0 : optEnd - optStart);
        // the records before the first that does not fit, and never past the OPT record (what follows it may point
        // into it, and it goes last)
        int kept = 0;
        int keptEnd = questionEnd;
        for (int i = 0; i < records && ends[i] <= budget && (optStart < 0 || ends[i] <= optStart); i++) {
            kept++;
            keptEnd = ends[i];
        }
        int answers = Math.min(kept, m.getUnsignedShort(6));
        int authority = Math.min(kept - answers, m.getUnsignedShort(8));
        int additional = kept - answers - authority + (optStart < 0 ? 0 : 1);
        ByteBuf out = Unpooled.buffer(limit);
        out.writeBytes(m, 0, keptEnd);
        if (optStart >= 0) {
            out.writeBytes(m, optStart, optEnd - optStart);
        }
        // TC as miekg/dns sets it: when a record was left out (the OPT record is always kept)
        boolean dropped = kept + (optStart < 0 ? 0 : 1) < records;
        out.setShort(2, m.getUnsignedShort(2) | (dropped ? 0x0200 : 0));
        out.setShort(6, answers).setShort(8, authority).setShort(10, additional);
        return out;
    }

    /** The index after the name at {@code at} in {@code m}: its labels up to the root's 0, or a pointer's 2 bytes. */
    private static int skipName(ByteBuf m, int at) {
        for (int labels = 0; labels < 128; labels++) {
            int length = m.getUnsignedByte(at);
            if (length == 0) {
                return at + 1;
            }
            if ((length & 0xc0) == 0xc0) {
                return at + 2;
            }
            if ((length & 0xc0) != 0) {
                throw new IllegalArgumentException("a label of an unknown kind");
            }
            at += 1 + length;
        }
        throw new IllegalArgumentException("a name of more than 127 labels");
    }

    /** The header of {@code m} with TC set and the query's question, no record: what a message that is not DNS gets. */
    private static ByteBuf questionOnly(ByteBuf m, DnsQuery query) {
        ByteBuf out = Unpooled.buffer(512).writeShort(m.getUnsignedShort(0))
                .writeShort(m.getUnsignedShort(2) | 0x0200)
                .writeShort(query.count(DnsSection.QUESTION)).writeShort(0).writeShort(0).writeShort(0);
        for (int i = 0; i < query.count(DnsSection.QUESTION); i++) {
            DnsRecord q = query.recordAt(DnsSection.QUESTION, i);
            out.writeBytes(encodeName(q.name())).writeShort(q.type().intValue()).writeShort(q.dnsClass());
        }
        return out;
    }

    /** The largest UDP answer a query takes: its EDNS payload size, at least 512. */
    private static int udpLimit(DnsQuery query) {
        DnsRecord opt = opt(query);
        return opt == null ? 512 : Math.max(512, opt.dnsClass());
    }

    /** A name in DNS wire format: its labels, each after its length, then the root's 0. */
    static byte[] encodeName(String name) {
        ByteBuf out = Unpooled.buffer();
        for (String label : name.split("\\.")) {
            if (!label.isEmpty()) {
                byte[] bytes = label.getBytes(StandardCharsets.UTF_8);
                out.writeByte(bytes.length).writeBytes(bytes);
            }
        }
        out.writeByte(0);
        return ByteBufUtil.getBytes(out);
    }

    /**
     * Unbinds the servers, closes the applications' TCP connections and the sockets of the queries being forwarded
     * (which get SERVFAIL when their connection is still open), cancelling their time outs. Blocking.
     */
    @Override
    public void close() {
        closed = true;
        for (Channel c : servers) {
            c.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
        for (Channel c : List.copyOf(open)) {
            c.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
        }
    }
}
