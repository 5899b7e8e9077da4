package dev.inmesh.runtime.xds;

import com.google.protobuf.Message;
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

    /** Parses a message of any of the four types. */
    public static Object parse(ResourceType type, Message message) throws InvalidResourceException {
        ResourceParser<Message, ?> p = forType(type);
        return p.parse(message);
    }
}
