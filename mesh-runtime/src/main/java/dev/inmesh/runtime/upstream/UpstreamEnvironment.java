package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.stats.UpstreamStats;
import io.vertx.core.Vertx;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import java.util.random.RandomGenerator;

/**
 * What the upstream layer runs on: Vert.x (timers, HTTP clients, DNS), a time source, randomness, a DNS resolver and
 * the clusters' statistics. Without Vert.x (tests, benchmarks) nothing is scheduled, outlier intervals are run by
 * hand, and {@link UpstreamCluster#httpClient} is unavailable.
 *
 * @param vertx the Vert.x instance, or null
 * @param resolver host name to addresses, for STRICT_DNS and LOGICAL_DNS; null for the system's hosts file, then
 *                 Netty's DNS resolver on Vert.x's event loops
 * @param stats a cluster's statistics by its name (what the cluster itself counts, such as its outlier detection's
 *              ejections), or null for none
 */
public record UpstreamEnvironment(Vertx vertx, Ticker ticker, RandomGenerator random,
                                  DnsResolver resolver, Function<String, UpstreamStats> stats) {

    public UpstreamEnvironment {
        ticker = ticker == null ? Ticker.system() : ticker;
        random = random == null ? ThreadLocalRandom.current() : random;
        if (resolver == null && vertx != null) {
            resolver = new VertxDnsResolver(vertx);
        }
    }

    /** An environment that keeps no statistics. */
    public UpstreamEnvironment(Vertx vertx, Ticker ticker, RandomGenerator random, DnsResolver resolver) {
        this(vertx, ticker, random, resolver, null);
    }

    /** The production environment: Vert.x, the system clock, thread-local randomness, DNS on Vert.x's event loops. */
    public static UpstreamEnvironment of(Vertx vertx) {
        return of(vertx, null);
    }

    /** The production environment with the clusters' statistics ({@code null}: none). */
    public static UpstreamEnvironment of(Vertx vertx, Function<String, UpstreamStats> stats) {
        return new UpstreamEnvironment(vertx, Ticker.system(), ThreadLocalRandom.current(), null, stats);
    }
}
