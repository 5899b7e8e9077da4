package dev.inmesh.runtime.xds;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumDescriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.OneofDescriptor;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * Finds where a JSON document does not fit its protobuf message, walking the JSON tree alongside the message's
 * descriptor, so that an error names the JSON path ({@code virtual_hosts[0].routes[0].route.weighted_clusterz})
 * instead of protobuf's pathless "Cannot find field: weighted_clusterz in message ...". Field names are accepted in
 * snake_case and lowerCamelCase, as JsonFormat accepts them; the path uses the spelling of the document. An
 * {@code Any} is followed into its {@code @type} when Inmesh has that type, and left alone when it does not (it is
 * kept as a TypedStruct). Run only after JsonFormat has failed, to say where; or, {@link #findNonString strict on
 * strings}, after it has read a message, to find what it read leniently.
 */
final class JsonShapeCheck {
    private static final Pattern DURATION = Pattern.compile("-?[0-9]+(\\.[0-9]{1,9})?s");
    private static final Set<String> SPECIAL_JSON = Set.of("google.protobuf.Duration", "google.protobuf.Timestamp",
            "google.protobuf.FieldMask", "google.protobuf.Struct", "google.protobuf.Value",
            "google.protobuf.ListValue", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
            "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value",
            "google.protobuf.UInt32Value", "google.protobuf.BoolValue", "google.protobuf.StringValue",
            "google.protobuf.BytesValue", "google.protobuf.Any", "google.protobuf.Empty");

    /**
     * Whether a string or bytes field takes a JSON string only, as protobuf's C++ JSON parser reads one (parser.cc,
     * ParseStrOrBytes), where JsonFormat takes any JSON value but a list or an object, as its text.
     */
    private final boolean stringsOnly;

    private JsonShapeCheck(boolean stringsOnly) {
        this.stringsOnly = stringsOnly;
    }

    /** The first field of {@code node} that does not fit {@code type}, or null when none is found. */
    static FieldError find(JsonNode node, Descriptor type) {
        return new JsonShapeCheck(false).message(node, type, "");
    }

    /**
     * As {@link #find}, a string or bytes field that holds no JSON string (a number or bool, which JsonFormat reads
     * as its text) not fitting either.
     */
    static FieldError findNonString(JsonNode node, Descriptor type) {
        return new JsonShapeCheck(true).message(node, type, "");
    }

    private FieldError message(JsonNode node, Descriptor type, String path) {
        String full = type.getFullName();
        if (node.isObject() && EnvoyJson.LEGACY_OBJECT_TYPES.contains(full)) {
            return fields(node, type, path); // the object of its fields, as EnvoyJson reads it too
        }
        switch (full) {
            case "google.protobuf.Any":
                return any(node, path);
            case "google.protobuf.Struct":
                return node.isObject() ? null : error(path, node, "an object");
            case "google.protobuf.Value":
                return null;
            case "google.protobuf.ListValue":
                return node.isArray() ? null : error(path, node, "a list");
            case "google.protobuf.Duration":
                return node.isTextual() && DURATION.matcher(node.asText()).matches() ? null
                        : error(path, node, "a duration in seconds with an \"s\", such as \"15s\" or \"0.250s\"");
            case "google.protobuf.Timestamp":
            case "google.protobuf.FieldMask":
                return node.isTextual() ? null : error(path, node, "a string");
            default:
                break;
        }
        if (full.startsWith("google.protobuf.") && full.endsWith("Value")) {
            // wrappers: the JSON is the wrapped value itself
            return scalar(node, type.findFieldByName("value"), path);
        }
        if (!node.isObject()) {
            return error(path, node, "an object (" + type.getName() + ")");
        }
        return fields(node, type, path);
    }

    /** The first field of the object {@code node} that does not fit {@code type}, or null when none is found. */
    private FieldError fields(JsonNode node, Descriptor type, String path) {
        Map<FieldDescriptor, String> seen = new HashMap<>();
        Map<OneofDescriptor, String> oneofs = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            String at = path.isEmpty() ? name : path + "." + name;
            FieldDescriptor f = field(type, name);
            if (f == null) {
                return new FieldError(at, "unknown field (expected: a field of " + type.getFullName() + ")");
            }
            String twin = seen.put(f, name);
            if (twin != null) {
                return new FieldError(at, "set twice, also as " + twin + " (expected: each field once)");
            }
            OneofDescriptor oneof = f.getRealContainingOneof();
            if (oneof != null && !e.getValue().isNull()) {
                String other = oneofs.putIfAbsent(oneof, name);
                if (other != null) {
                    return new FieldError(at, "set together with " + other + " (expected: only one of "
                            + oneof.getFields().stream().map(FieldDescriptor::getName)
                            .collect(Collectors.joining(", ")) + ")");
                }
            }
            FieldError fe = value(e.getValue(), f, at);
            if (fe != null) {
                return fe;
            }
        }
        return null;
    }

    /** The field {@code name} of {@code type}, by its name or its JSON name; null when it has none. */
    static FieldDescriptor field(Descriptor type, String name) {
        FieldDescriptor f = type.findFieldByName(name);
        if (f != null) {
            return f;
        }
        for (FieldDescriptor d : type.getFields()) {
            if (d.getJsonName().equals(name)) {
                return d;
            }
        }
        return null;
    }

    private FieldError value(JsonNode node, FieldDescriptor f, String path) {
        if (node.isNull()) {
            return null;
        }
        if (f.isMapField()) {
            if (!node.isObject()) {
                return error(path, node, "an object");
            }
            FieldDescriptor valueField = f.getMessageType().findFieldByName("value");
            for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                FieldError fe = single(e.getValue(), valueField, path + "." + e.getKey());
                if (fe != null) {
                    return fe;
                }
            }
            return null;
        }
        if (f.isRepeated()) {
            if (!node.isArray()) {
                return error(path, node, "a list");
            }
            for (int i = 0; i < node.size(); i++) {
                FieldError fe = single(node.get(i), f, path + "[" + i + "]");
                if (fe != null) {
                    return fe;
                }
            }
            return null;
        }
        return single(node, f, path);
    }

    private FieldError single(JsonNode node, FieldDescriptor f, String path) {
        if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE) {
            if (node.isNull() && !f.getMessageType().getFullName().equals("google.protobuf.Value")) {
                return null;
            }
            return message(node, f.getMessageType(), path);
        }
        return scalar(node, f, path);
    }

    private FieldError any(JsonNode node, String path) {
        if (!node.isObject()) {
            return error(path, node, "an object with an \"@type\"");
        }
        JsonNode t = node.get("@type");
        if (t == null || !t.isTextual()) {
            return node.size() == 0 ? null : new FieldError(path.isEmpty() ? "@type" : path + ".@type",
                    "missing (expected: the type URL of the typed config)");
        }
        Descriptor d = EnvoyJson.descriptor(t.asText());
        if (d == null) {
            return null; // kept as a TypedStruct: nothing to check against
        }
        if (SPECIAL_JSON.contains(d.getFullName())) {
            JsonNode v = node.get("value");
            return v == null ? null : message(v, d, path.isEmpty() ? "value" : path + ".value");
        }
        com.fasterxml.jackson.databind.node.ObjectNode rest =
                ((com.fasterxml.jackson.databind.node.ObjectNode) node).deepCopy();
        rest.remove("@type");
        return message(rest, d, path);
    }

    private FieldError scalar(JsonNode node, FieldDescriptor f, String path) {
        switch (f.getType()) {
            case INT32, SINT32, SFIXED32:
                return integer(node, path, BigInteger.valueOf(Integer.MIN_VALUE), BigInteger.valueOf(Integer.MAX_VALUE),
                        "an int32");
            case UINT32, FIXED32:
                return integer(node, path, BigInteger.ZERO, BigInteger.valueOf(0xFFFFFFFFL), "a uint32");
            case INT64, SINT64, SFIXED64:
                return integer(node, path, BigInteger.valueOf(Long.MIN_VALUE), BigInteger.valueOf(Long.MAX_VALUE),
                        "an int64");
            case UINT64, FIXED64:
                return integer(node, path, BigInteger.ZERO, BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE),
                        "a uint64");
            case DOUBLE, FLOAT:
                if (node.isNumber() || node.isTextual() && number(node.asText()) != null
                        || node.isTextual() && Set.of("NaN", "Infinity", "-Infinity").contains(node.asText())) {
                    return null;
                }
                return error(path, node, "a number");
            case BOOL:
                return node.isBoolean() || node.isTextual() && Set.of("true", "false").contains(node.asText()) ? null
                        : error(path, node, "true or false");
            case STRING:
            case BYTES:
                if (stringsOnly) {
                    return EnvoyJson.nonString(node, path);
                }
                return node.isValueNode() ? null : error(path, node, "a string");
            case ENUM:
                return enumValue(node, f.getEnumType(), path);
            default:
                return null;
        }
    }

    private static FieldError integer(JsonNode node, String path, BigInteger min, BigInteger max, String what) {
        BigDecimal n = node.isNumber() ? node.decimalValue() : node.isTextual() ? number(node.asText()) : null;
        BigInteger i = null;
        if (n != null) {
            try {
                i = n.toBigIntegerExact();
            } catch (ArithmeticException e) {
                i = null;
            }
        }
        if (i == null || i.compareTo(min) < 0 || i.compareTo(max) > 0) {
            return error(path, node, what + " (" + min + ".." + max + ")");
        }
        return null;
    }

    private static BigDecimal number(String s) {
        try {
            return new BigDecimal(s.strip());
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static FieldError enumValue(JsonNode node, EnumDescriptor type, String path) {
        if (node.isTextual() && type.findValueByName(node.asText()) != null
                || node.isIntegralNumber()) {
            return null;
        }
        String names = type.getValues().stream().map(EnumValueDescriptor::getName).collect(Collectors.joining(", "));
        return error(path, node, "one of " + names);
    }

    static FieldError error(String path, JsonNode node, String expected) {
        String shown = node.isContainerNode() ? (node.isArray() ? "a list" : "an object") : node.toString();
        return new FieldError(path, shown + " (expected: " + expected + ")");
    }
}
