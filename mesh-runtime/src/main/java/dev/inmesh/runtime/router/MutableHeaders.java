package dev.inmesh.runtime.router;

import java.util.List;

/** A header map that header mutations can change; names are compared case-insensitively. */
public interface MutableHeaders {
    /** Every value of a header, in order; empty when absent. */
    List<String> getAll(String name);

    /** Adds a value, keeping existing ones. */
    void add(String name, String value);

    /** Replaces every value with one. */
    void set(String name, String value);

    void remove(String name);

    /** Every header, in order, one call per value (names as stored). */
    void forEach(java.util.function.BiConsumer<String, String> each);

    default boolean contains(String name) {
        return !getAll(name).isEmpty();
    }

    /** Every value joined by {@code ","}, as Envoy reads a repeated header as one; null when absent. */
    default String joined(String name) {
        List<String> all = getAll(name);
        return all.isEmpty() ? null : all.size() == 1 ? all.get(0) : String.join(",", all);
    }
}
