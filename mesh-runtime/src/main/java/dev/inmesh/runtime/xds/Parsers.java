package dev.inmesh.runtime.xds;

import com.google.protobuf.Message;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import java.util.EnumMap;
import java.util.Map;

/** The parser of each resource type. */
public final class Parsers {
    private static final Map<ResourceType, ResourceParser<?, ?>> PARSERS = new EnumMap<>(ResourceType.class);

    static {
        PARSERS.put(ResourceType.LISTENER, new ListenerParser());
        PARSERS.put(ResourceType.ROUTE, new RouteConfigurationParser());
        PARSERS.put(ResourceType.CLUSTER, new ClusterParser());
        PARSERS.put(ResourceType.ENDPOINT, new ClusterLoadAssignmentParser());
    }

    private Parsers() {}

    /** The parser for a type. */
    @SuppressWarnings("unchecked")
    public static <M extends Message> ResourceParser<M, ?> forType(ResourceType type) {
        ResourceParser<?, ?> p = PARSERS.get(type);
        if (p == null) {
            throw new IllegalStateException("no parser for " + type);
        }
        return (ResourceParser<M, ?>) p;
    }

    /** A parse that may fail with a checked exception (a configuration that does not read). */
    @FunctionalInterface
    public interface Parse<T, E extends Exception> {
        T run() throws E;
    }

    /**
     * Runs {@code parse} (a read of resources, the decoding of a response: parsing on this thread) with Istio's SDS
     * secrets {@code default} and {@code ROOTCA} resolved to the files of {@code identity}, as an Istio sidecar's
     * agent serves them; a null identity leaves them refused. The resources keep the names as given (a config dump
     * prints {@code default}); only the PEMs and the files watched for rotation come from the directory.
     */
    public static <T, E extends Exception> T withIdentity(WorkloadIdentity identity, Parse<T, E> parse) throws E {
        return with(CommonTlsParser.IDENTITY, identity, parse);
    }

    /** Runs {@code parse} with {@code local} set to {@code value}, then as it was. */
    public static <V, T, E extends Exception> T with(ThreadLocal<V> local, V value, Parse<T, E> parse) throws E {
        V outer = local.get();
        local.set(value);
        try {
            return parse.run();
        } finally {
            if (outer == null) {
                local.remove();
            } else {
                local.set(outer);
            }
        }
    }

    /**
     * Runs {@code parse} with the SDS secrets that TLS contexts name with a gRPC {@code sds_config} fetched by
     * {@code sds} (a null one leaves them refused by name, as before). Istio's {@code default} and {@code ROOTCA}
     * still come from a workload identity directory when the parse has one ({@link #withIdentity}).
     */
    public static <T, E extends Exception> T withSds(dev.inmesh.runtime.xds.sds.SdsSecretManager sds,
                                                     Parse<T, E> parse) throws E {
        return with(CommonTlsParser.SDS, sds, parse);
    }

    /**
     * Runs {@code parse} with a cluster's TLS whose SDS secret (of a gRPC {@code sds_config}) has not arrived within
     * its {@code initial_fetch_timeout} left not ready rather than rejecting the cluster, as Envoy's cluster
     * initializes once its secret's initial fetch timed out, its connections failing until the secret comes: the
     * cluster's {@code tlsNotReady}, or its transport socket match's {@code notReady}. The names of the secrets
     * not arrived in time are added to {@code names}, for the caller to parse again once they arrive. A listener's
     * TLS still needs its secret (rejected by name without it).
     */
    public static <T, E extends Exception> T withSecretsNotReady(java.util.Set<String> names, Parse<T, E> parse)
            throws E {
        return with(CommonTlsParser.NOT_ARRIVED, names, parse);
    }

    /**
     * Runs {@code parse} with each file it reads (a TLS context's certificate, key or CAs, a {@code filename}
     * DataSource's) put into {@code files}, with how it looked before the read ({@link CoreParsers#stamp}): what the
     * caller looks at to parse again a configuration rejected for one of them, once one changes.
     */
    public static <T, E extends Exception> T withFilesRead(Map<String, String> files, Parse<T, E> parse) throws E {
        return with(CoreParsers.FILES_READ, files, parse);
    }

    /** Parses a message of any of the four types. */
    public static Object parse(ResourceType type, Message message) throws InvalidResourceException {
        ResourceParser<Message, ?> p = forType(type);
        return p.parse(message);
    }
}
