package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.DnsLookupFamily;
import io.vertx.core.Future;
import java.util.List;

/** Resolves a STRICT_DNS cluster's host names to addresses. */
@FunctionalInterface
public interface DnsResolver {

    /** The addresses {@code name} resolves to, of the family the cluster asks for (IP literals as they are). */
    Future<List<String>> resolve(String name, DnsLookupFamily family);

    /**
     * The addresses with the time the records may be kept, for {@code respect_dns_ttl}. A resolver that does not know
     * the records' TTLs answers 0 (unknown), and the cluster re-resolves at its {@code dns_refresh_rate}.
     */
    default Future<Answer> resolveWithTtl(String name, DnsLookupFamily family) {
        return resolve(name, family).map(addresses -> new Answer(addresses, 0));
    }

    /**
     * One name's answer.
     *
     * @param addresses the addresses found, none for a name that does not exist or has no record of the family
     * @param ttlSeconds the smallest TTL of the records the addresses came from; 0 when unknown or none
     */
    record Answer(List<String> addresses, long ttlSeconds) {
        public Answer {
            addresses = addresses == null ? List.of() : List.copyOf(addresses);
            ttlSeconds = Math.max(0, ttlSeconds);
        }
    }
}
