package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.DnsLookupFamily;
import dev.inmesh.runtime.net.IpLiterals;
import io.netty.buffer.ByteBuf;
import io.netty.handler.codec.dns.DefaultDnsQuestion;
import io.netty.handler.codec.dns.DnsRawRecord;
import io.netty.handler.codec.dns.DnsRecord;
import io.netty.handler.codec.dns.DnsRecordType;
import io.netty.handler.codec.dns.DnsResponseCode;
import io.netty.resolver.dns.DnsErrorCauseException;
import io.netty.resolver.dns.DnsNameResolver;
import io.netty.resolver.dns.DnsNameResolverBuilder;
import io.netty.resolver.dns.DnsServerAddressStreamProviders;
import io.netty.resolver.dns.NoopDnsCache;
import io.netty.resolver.dns.NoopDnsCnameCache;
import io.netty.resolver.dns.SingletonDnsServerAddressStreamProvider;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.dns.DnsClientOptions;
import io.vertx.core.internal.VertxInternal;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * STRICT_DNS resolution on Vert.x's event loops with Netty's DNS resolver, by the cluster's {@code dns_lookup_family}
 * as Envoy resolves: the A records, the AAAA records, one family with the other as fallback when it has none, or both;
 * with the records' TTLs, for {@code respect_dns_ttl}. An IP literal resolves to itself. As Envoy's c-ares resolver
 * ({@code ares_getaddrinfo}), each lookup of a family first looks in the hosts file ({@link HostsFile}): the name's
 * addresses of that family there are the answer, with no TTL (the cluster re-resolves at its refresh rate); a name
 * the file has no address of the family for is asked of DNS ({@code ALL}, one lookup of both families, takes the
 * file's addresses of both when it has any). {@code localhost} not in the file resolves to 127.0.0.1 and ::1, never
 * asked of DNS. A name that does not exist, or has no record of the family, resolves to no address; other errors (a
 * server failure, no answer in time) fail the lookup. No answer from DNS is cached: each lookup asks the name servers,
 * as a cluster re-resolves only when its records' time is up. The system's name servers are asked with its search
 * domains and {@code ndots} (/etc/resolv.conf), as Envoy's resolver asks them.
 */
final class VertxDnsResolver implements DnsResolver {
    private final Vertx vertx;
    /** Where to ask and for how long, or null for the system's name servers (/etc/resolv.conf). */
    private final DnsClientOptions options;
    private final HostsFile hostsFile;
    private DnsNameResolver resolver;

    VertxDnsResolver(Vertx vertx) {
        this(vertx, null, HostsFile.SYSTEM);
    }

    /**
     * @param options where to ask and for how long, or null for the system's name servers
     * @param hostsFile the hosts file looked in first
     */
    VertxDnsResolver(Vertx vertx, DnsClientOptions options, java.nio.file.Path hostsFile) {
        this.vertx = vertx;
        this.options = options;
        this.hostsFile = new HostsFile(vertx, hostsFile);
    }

    @Override
    public Future<List<String>> resolve(String name, DnsLookupFamily family) {
        return resolveWithTtl(name, family).map(Answer::addresses);
    }

    @Override
    public Future<Answer> resolveWithTtl(String name, DnsLookupFamily family) {
        if (IpLiterals.isLiteral(name)) {
            return Future.succeededFuture(new Answer(List.of(name), 0));
        }
        return hostsFile.entries().compose(hosts -> {
            if (family == DnsLookupFamily.ALL) {
                List<String> both = new ArrayList<>(hosts.addresses(name, false));
                both.addAll(hosts.addresses(name, true));
                if (!both.isEmpty()) {
                    return Future.succeededFuture(new Answer(both, 0));
                }
            }
            return byFamily(family, () -> lookup(hosts, name, false), () -> lookup(hosts, name, true));
        });
    }

    /**
     * One family's lookup, as c-ares's for it: the hosts file's addresses, else {@code localhost}'s loopback address,
     * else the name servers' records.
     */
    private Future<Answer> lookup(HostsFile.Entries hosts, String name, boolean v6) {
        List<String> inFile = hosts.addresses(name, v6);
        if (!inFile.isEmpty()) {
            return Future.succeededFuture(new Answer(inFile, 0));
        }
        if (name.equals("localhost")) {
            return Future.succeededFuture(new Answer(List.of(v6 ? "::1" : "127.0.0.1"), 0));
        }
        return query(resolver(), name, v6 ? DnsRecordType.AAAA : DnsRecordType.A);
    }

    /** The addresses of one record type, and their smallest TTL. */
    private static Future<Answer> query(DnsNameResolver r, String name, DnsRecordType type) {
        Promise<Answer> answer = Promise.promise();
        r.resolveAll(new DefaultDnsQuestion(name, type)).addListener(f -> {
            if (!f.isSuccess()) {
                if (noSuchName(f.cause())) {
                    answer.complete(new Answer(List.of(), 0));
                } else {
                    answer.fail(f.cause());
                }
                return;
            }
            @SuppressWarnings("unchecked")
            List<DnsRecord> records = (List<DnsRecord>) f.getNow();
            List<String> addresses = new ArrayList<>();
            long ttl = 0;
            try {
                for (DnsRecord record : records) {
                    if (record.type().equals(type) && record instanceof DnsRawRecord raw) {
                        ByteBuf content = raw.content();
                        byte[] address = new byte[content.readableBytes()];
                        content.getBytes(content.readerIndex(), address);
                        if (address.length == 4 || address.length == 16) {
                            addresses.add(IpLiterals.format(address));
                            ttl = ttl == 0 ? record.timeToLive() : Math.min(ttl, record.timeToLive());
                        }
                    }
                }
            } finally {
                records.forEach(ReferenceCountUtil::release);
            }
            answer.complete(new Answer(addresses, ttl));
        });
        return answer.future();
    }

    /**
     * Whether a failed lookup is an answer with nothing in it: the name does not exist (NXDOMAIN), or has no record of
     * the type (Netty fails such a lookup with an {@link UnknownHostException} of no cause). As Envoy's resolver,
     * these are answers, so that the name's hosts leave the cluster, where other failures keep them.
     */
    private static boolean noSuchName(Throwable t) {
        if (!(t instanceof UnknownHostException)) {
            return false;
        }
        Throwable cause = t.getCause();
        return cause == null || cause instanceof DnsErrorCauseException e && e.getCode() == DnsResponseCode.NXDOMAIN;
    }

    /** The lookups a family makes, in its order: a fallback family is asked when the first gives no address. */
    static Future<Answer> byFamily(DnsLookupFamily family, Supplier<Future<Answer>> v4, Supplier<Future<Answer>> v6) {
        return switch (family) {
            case V4_ONLY -> v4.get();
            case V6_ONLY -> v6.get();
            case AUTO -> orElse(v6.get(), v4);
            case V4_PREFERRED -> orElse(v4.get(), v6);
            case ALL -> {
                Future<Answer> a = v4.get();
                Future<Answer> aaaa = v6.get();
                yield Future.join(a, aaaa).transform(ar -> {
                    if (a.failed() && aaaa.failed()) {
                        return Future.failedFuture(a.cause());
                    }
                    List<String> both = new ArrayList<>();
                    long ttl = 0;
                    for (Future<Answer> f : List.of(a, aaaa)) {
                        if (f.succeeded() && f.result() != null) {
                            both.addAll(f.result().addresses());
                            long t = f.result().ttlSeconds();
                            ttl = ttl == 0 ? t : t == 0 ? ttl : Math.min(ttl, t);
                        }
                    }
                    return Future.succeededFuture(new Answer(both, ttl));
                });
            }
        };
    }

    /** The first lookup's answer, or the fallback's when it failed or found no address. */
    private static Future<Answer> orElse(Future<Answer> first, Supplier<Future<Answer>> fallback) {
        return first.transform(ar -> ar.succeeded() && ar.result() != null && !ar.result().addresses().isEmpty()
                ? Future.succeededFuture(ar.result()) : fallback.get());
    }

    private synchronized DnsNameResolver resolver() {
        if (resolver == null) {
            VertxInternal internal = (VertxInternal) vertx;
            DnsNameResolverBuilder b = new DnsNameResolverBuilder(internal.nettyEventLoopGroup().next())
                    .datagramChannelFactory(() -> internal.transport().datagramChannel())
                    // the hosts file is looked in first, as it is (HostsFile): Netty's would answer from the file
                    // as it was when first read, with a day's TTL
                    .hostsFileEntriesResolver((host, types) -> null)
                    .resolveCache(NoopDnsCache.INSTANCE)
                    .cnameCache(NoopDnsCnameCache.INSTANCE)
                    .nameServerProvider(DnsServerAddressStreamProviders.platformDefault());
            if (options != null) {
                if (options.getHost() != null) {
                    // one name server, asked for the names as they are (no search domains of this machine's)
                    b.nameServerProvider(new SingletonDnsServerAddressStreamProvider(new InetSocketAddress(
                            options.getHost(), options.getPort() > 0 ? options.getPort() : 53)))
                            .searchDomains(List.of());
                }
                b.queryTimeoutMillis(options.getQueryTimeout()).recursionDesired(options.isRecursionDesired());
            }
            resolver = b.build();
        }
        return resolver;
    }
}
