package dev.inmesh.runtime.xds;

import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Duration;
import com.google.protobuf.Message;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.function.Supplier;

/** Helpers shared by the parsers: field paths, unsupported-field checks, and conversions of well-known types. */
public final class Fields {
    private Fields() {}

    /** Runs a part of a parse, prefixing any error's field path with {@code segment}. */
    public static <T> T at(String segment, Supplier<T> part) {
        try {
            return part.get();
        } catch (IllegalArgumentException e) {
            throw FieldError.of(e).under(segment);
        }
    }

    /**
     * Builds a config record whose checks name their fields from a level the parser's path already includes (the
     * records say {@code weighted_clusters.clusters.weight}, the parser is at {@code ...weighted_clusters}): the
     * {@code recordPrefix} is dropped from the error's field so that the path is not doubled.
     */
    public static <T> T record(String recordPrefix, Supplier<T> build) {
        try {
            return build.get();
        } catch (IllegalArgumentException e) {
            FieldError fe = FieldError.of(e);
            if (fe.field().startsWith(recordPrefix)) {
                throw new FieldError(fe.field().substring(recordPrefix.length()), fe.detail());
            }
            throw fe;
        }
    }

    /** Parses every element of a repeated field, naming a failing one by index: {@code segment[i]}. */
    public static <P, T> List<T> each(String segment, List<P> items, Function<P, T> parse) {
        List<T> out = new ArrayList<>(items.size());
        for (int i = 0; i < items.size(); i++) {
            P item = items.get(i);
            out.add(at(segment + "[" + i + "]", () -> parse.apply(item)));
        }
        return out;
    }

    /**
     * Rejects any field that is set on {@code message} but is neither supported nor known to change nothing, so that
     * no behaviour is silently dropped. The error names the field.
     */
    public static void onlyKnown(Message message, Set<String> supported, Set<String> harmless) {
        for (FieldDescriptor f : message.getAllFields().keySet()) {
            String name = f.getName();
            if (!supported.contains(name) && !harmless.contains(name)) {
                throw new FieldError(name, "not supported by Inmesh (field of " + message.getDescriptorForType()
                        .getName() + "); remove it or leave it unset");
            }
        }
    }

    /** A protobuf Duration as a Java Duration. */
    public static java.time.Duration duration(Duration d) {
        return java.time.Duration.ofSeconds(d.getSeconds(), d.getNanos());
    }

    /** A protobuf Duration, or null when the field is unset. */
    public static java.time.Duration durationOrNull(boolean has, Duration d) {
        return has ? duration(d) : null;
    }

    /** A protobuf {@code UInt32Value} as an unsigned value, or null when the field is unset. */
    public static Long uint32OrNull(boolean has, com.google.protobuf.UInt32Value v) {
        return has ? Integer.toUnsignedLong(v.getValue()) : null;
    }

    /** A protobuf Struct as plain Java values. */
    public static Map<String, Object> struct(Struct s) {
        Map<String, Object> out = new LinkedHashMap<>();
        s.getFieldsMap().forEach((k, v) -> out.put(k, value(v)));
        return out;
    }

    private static Object value(Value v) {
        return switch (v.getKindCase()) {
            case NULL_VALUE, KIND_NOT_SET -> null;
            case NUMBER_VALUE -> v.getNumberValue();
            case STRING_VALUE -> v.getStringValue();
            case BOOL_VALUE -> v.getBoolValue();
            case STRUCT_VALUE -> struct(v.getStructValue());
            case LIST_VALUE -> v.getListValue().getValuesList().stream().map(Fields::value).toList();
        };
    }
}
