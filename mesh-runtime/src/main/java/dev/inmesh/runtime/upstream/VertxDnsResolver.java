package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.DnsLookupFamily;
import dev.inmesh.runtime.net.IpLiterals;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.dns.DnsClient;
import io.vertx.core.dns.DnsClientOptions;
import io.vertx.core.dns.DnsException;
import io.vertx.core.dns.DnsResponseCode;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * STRICT_DNS resolution through Vert.x's DNS client, by the cluster's {@code dns_lookup_family} as Envoy resolves:
 * the A records, the AAAA records, one family with the other as fallback when it has none, or both. An IP literal
 * resolves to itself, and {@code localhost} to 127.0.0.1 and ::1 (the DNS client does not read /etc/hosts). A name
 * that does not exist resolves to no address; other errors fail the lookup.
 */
final class VertxDnsResolver implements DnsResolver {
    private final Vertx vertx;
    /** The DNS client's options, or null for the system's name servers. */
    private final DnsClientOptions options;
    private DnsClient client;

    VertxDnsResolver(Vertx vertx) {
        this(vertx, null);
    }

    VertxDnsResolver(Vertx vertx, DnsClientOptions options) {
        this.vertx = vertx;
        this.options = options;
    }

    @Override
    public Future<List<String>> resolve(String name, DnsLookupFamily family) {
        if (IpLiterals.isLiteral(name)) {
            return Future.succeededFuture(List.of(name));
        }
        if (name.equals("localhost")) {
            return byFamily(family, () -> Future.succeededFuture(List.of("127.0.0.1")),
                    () -> Future.succeededFuture(List.of("::1")));
        }
        DnsClient c = client();
        return byFamily(family, () -> noSuchNameIsEmpty(c.resolveA(name)),
                () -> noSuchNameIsEmpty(c.resolveAAAA(name)));
    }

    /**
     * A name that does not exist (NXDOMAIN) has no addresses: Envoy's resolver answers it as a success with none, so
     * that the name's hosts leave the cluster, where other failures keep them.
     */
    private static Future<List<String>> noSuchNameIsEmpty(Future<List<String>> lookup) {
        return lookup.recover(t -> t instanceof DnsException e && e.code() == DnsResponseCode.NXDOMAIN
                ? Future.succeededFuture(List.of()) : Future.failedFuture(t));
    }

    /** The lookups a family makes, in its order: a fallback family is asked when the first gives no address. */
    static Future<List<String>> byFamily(DnsLookupFamily family, Supplier<Future<List<String>>> v4,
                                         Supplier<Future<List<String>>> v6) {
        return switch (family) {
            case V4_ONLY -> v4.get();
            case V6_ONLY -> v6.get();
            case AUTO -> orElse(v6.get(), v4);
            case V4_PREFERRED -> orElse(v4.get(), v6);
            case ALL -> {
                Future<List<String>> a = v4.get();
                Future<List<String>> aaaa = v6.get();
                yield Future.join(a, aaaa).transform(ar -> {
                    if (a.failed() && aaaa.failed()) {
                        return Future.failedFuture(a.cause());
                    }
                    List<String> both = new ArrayList<>();
                    for (Future<List<String>> f : List.of(a, aaaa)) {
                        if (f.succeeded() && f.result() != null) {
                            both.addAll(f.result());
                        }
                    }
                    return Future.succeededFuture(both);
                });
            }
        };
    }

    /** The first lookup's addresses, or the fallback's when it failed or found none. */
    private static Future<List<String>> orElse(Future<List<String>> first, Supplier<Future<List<String>>> fallback) {
        return first.transform(ar -> ar.succeeded() && ar.result() != null && !ar.result().isEmpty()
                ? Future.succeededFuture(ar.result()) : fallback.get());
    }

    private synchronized DnsClient client() {
        if (client == null) {
            client = options == null ? vertx.createDnsClient() : vertx.createDnsClient(options);
        }
        return client;
    }
}
