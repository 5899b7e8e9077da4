package dev.inmesh.runtime.upstream;

import io.vertx.core.Vertx;
import java.util.concurrent.ThreadLocalRandom;
import java.util.random.RandomGenerator;

/**
 * What the upstream layer runs on: Vert.x (timers, HTTP clients, DNS), a time source, randomness and a DNS resolver.
 * Without Vert.x (tests, benchmarks) nothing is scheduled, outlier intervals are run by hand, and
 * {@link UpstreamCluster#httpClient} is unavailable.
 *
 * @param vertx the Vert.x instance, or null
 * @param resolver host name to addresses, for STRICT_DNS; null to use Vert.x's DNS client
 */
public record UpstreamEnvironment(Vertx vertx, Ticker ticker, RandomGenerator random,
                                  DnsResolver resolver) {

    public UpstreamEnvironment {
        ticker = ticker == null ? Ticker.system() : ticker;
        random = random == null ? ThreadLocalRandom.current() : random;
        if (resolver == null && vertx != null) {
            resolver = new VertxDnsResolver(vertx);
        }
    }

    /** The production environment: Vert.x, the system clock, thread-local randomness, Vert.x DNS. */
    public static UpstreamEnvironment of(Vertx vertx) {
        return new UpstreamEnvironment(vertx, Ticker.system(), ThreadLocalRandom.current(), null);
    }
}
