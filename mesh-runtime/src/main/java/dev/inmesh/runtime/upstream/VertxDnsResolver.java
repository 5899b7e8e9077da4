package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.net.IpLiterals;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.dns.DnsClient;
import java.util.List;
import java.util.function.Function;

/**
 * STRICT_DNS resolution through Vert.x's DNS client: all A records, or all AAAA records when there are none. An IP
 * literal resolves to itself and {@code localhost} to 127.0.0.1 (the DNS client does not read /etc/hosts).
 */
final class VertxDnsResolver implements Function<String, Future<List<String>>> {
    private final Vertx vertx;
    private DnsClient client;

    VertxDnsResolver(Vertx vertx) {
        this.vertx = vertx;
    }

    @Override
    public Future<List<String>> apply(String name) {
        if (IpLiterals.isLiteral(name)) {
            return Future.succeededFuture(List.of(name));
        }
        if (name.equals("localhost")) {
            return Future.succeededFuture(List.of("127.0.0.1"));
        }
        DnsClient c = client();
        return c.resolveA(name).compose(v4 -> v4.isEmpty() ? c.resolveAAAA(name) : Future.succeededFuture(v4));
    }

    private synchronized DnsClient client() {
        if (client == null) {
            client = vertx.createDnsClient();
        }
        return client;
    }
}
