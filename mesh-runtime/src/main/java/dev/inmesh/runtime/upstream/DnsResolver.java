package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.DnsLookupFamily;
import io.vertx.core.Future;
import java.util.List;

/** Resolves a STRICT_DNS cluster's host names to addresses. */
@FunctionalInterface
public interface DnsResolver {

    /** The addresses {@code name} resolves to, of the family the cluster asks for (IP literals as they are). */
    Future<List<String>> resolve(String name, DnsLookupFamily family);
}
