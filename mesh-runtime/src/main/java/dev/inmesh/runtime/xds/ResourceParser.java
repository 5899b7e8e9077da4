package dev.inmesh.runtime.xds;

import com.google.protobuf.Message;

/**
 * Parses one xDS resource type from its Envoy v3 protobuf into Inmesh's config records. Parsing is a pure function:
 * no I/O, no state. A resource that cannot be used as it is fails with an error naming it and the field at fault.
 *
 * @param <M> the protobuf message
 * @param <T> the config record
 */
public interface ResourceParser<M extends Message, T> {

    ResourceType type();

    Class<M> messageClass();

    /** The resource's name as the proto carries it. */
    String name(M message);

    /**
     * Parses and validates one resource.
     *
     * @throws FieldError naming the field at fault
     */
    T parseFields(M message);

    /** Parses one resource, or fails with its name and the field at fault. */
    default T parse(M message) throws InvalidResourceException {
        try {
            return parseFields(message);
        } catch (IllegalArgumentException e) {
            throw InvalidResourceException.of(type(), name(message), FieldError.of(e));
        }
    }
}
