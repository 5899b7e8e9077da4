package dev.inmesh.runtime.xds;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Duration;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Timestamp;
import com.google.protobuf.util.Durations;
import com.google.protobuf.util.JsonFormat;
import com.google.protobuf.util.Timestamps;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Envoy's JSON (and YAML) into protobuf messages, the way Envoy and istioctl print them: field names in
 * {@code snake_case} or {@code lowerCamelCase}, {@code Any} values with {@code @type}. An {@code Any} whose type Inmesh
 * has no class for (Istio's own filters, WASM plugins) is kept as a {@code xds.type.v3.TypedStruct} carrying the
 * original type URL, so that the parser can name it rather than the JSON reader failing on it.
 */
public final class EnvoyJson {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TYPED_STRUCT = "type.googleapis.com/xds.type.v3.TypedStruct";
    private static final Map<String, Descriptor> KNOWN = new ConcurrentHashMap<>();
    private static final Map<String, Boolean> UNKNOWN = new ConcurrentHashMap<>();

    private EnvoyJson() {}

    /** Reads JSON or YAML text (YAML is a superset; JSON is tried first for speed): its first document. */
    public static JsonNode tree(String text) throws JsonProcessingException {
        return documents(text).get(0);
    }

    /**
     * Reads JSON, or YAML with one or more documents ({@code ---} between them, as {@code kubectl} and hand-written
     * files have them); empty documents are dropped, and no document at all is an error.
     */
    public static java.util.List<JsonNode> documents(String text) throws JsonProcessingException {
        return documents(text, false);
    }

    /**
     * Reads JSON or YAML as Envoy's own loading turns a file into JSON (MessageUtil::loadFromYaml,
     * source/common/protobuf/yaml_utility.cc): its first document, YAML's scalars typed as Envoy types them, so that
     * an unquoted {@code 123} or {@code yes} is no string there and {@code 1.50} is the string {@code "1.50"}.
     */
    public static JsonNode envoyTree(String text) throws JsonProcessingException {
        return documents(text, true).get(0);
    }

    private static java.util.List<JsonNode> documents(String text, boolean envoyScalars)
            throws JsonProcessingException {
        String t = text.stripLeading();
        if (t.startsWith("{") || t.startsWith("[")) {
            try {
                return java.util.List.of(JSON.readTree(text));
            } catch (JsonProcessingException e) {
                // not JSON after all: fall through to YAML, whose error is the one reported
            }
        }
        // anchors, aliases and !ignore keys as Envoy reads them
        java.util.List<JsonNode> docs = YamlTrees.documents(text, envoyScalars);
        if (docs.isEmpty()) {
            throw new JsonProcessingException("empty document") {
                private static final long serialVersionUID = 1L;
            };
        }
        return docs;
    }

    /** Converts one JSON object into a message of the given type. */
    public static <M extends Message> M toMessage(JsonNode node, M.Builder builder, Class<M> type)
            throws InvalidProtocolBufferException {
        JsonNode copy = legacyForms(node.deepCopy(), builder.getDescriptorForType());
        JsonFormat.TypeRegistry.Builder registry = JsonFormat.TypeRegistry.newBuilder();
        prepareAnys(copy, registry);
        JsonFormat.parser().usingTypeRegistry(registry.build()).merge(copy.toString(), builder);
        return type.cast(builder.build());
    }

    /**
     * The types that protobuf's C++ JSON parser also reads written as the object of their fields in its legacy
     * syntax, which Envoy's loading allows (JsonStreamToMessage sets allow_legacy_syntax,
     * src/google/protobuf/json/json.cc; parser.cc, ParseMessage): a Duration or Timestamp as
     * {@code {"seconds": 1, "nanos": 5}}, a wrapper as {@code {"value": "c"}}, a ListValue as
     * {@code {"values": [1, "a"]}}, a FieldMask as {@code {"paths": ["a.b"]}}.
     */
    static final Set<String> LEGACY_OBJECT_TYPES = Set.of("google.protobuf.Duration",
            "google.protobuf.Timestamp", "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
            "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value",
            "google.protobuf.UInt32Value", "google.protobuf.BoolValue", "google.protobuf.StringValue",
            "google.protobuf.BytesValue", "google.protobuf.ListValue", "google.protobuf.FieldMask");

    /**
     * {@code node}, a message of {@code type}, with each value of a {@link #LEGACY_OBJECT_TYPES} type written as an
     * object rewritten (in place) into the form protobuf-java's JsonFormat reads: a Duration's or Timestamp's string,
     * a wrapper's value ({@code {}} its default), a ListValue's list, a FieldMask's string. An object that is not
     * such a form (another field, a value that is no integer) is left for the parse to refuse.
     */
    static JsonNode legacyForms(JsonNode node, Descriptor type) {
        if (!(node instanceof ObjectNode obj)) {
            return node;
        }
        String full = type.getFullName();
        if (LEGACY_OBJECT_TYPES.contains(full)) {
            JsonNode form = switch (full) {
                case "google.protobuf.ListValue" -> values(obj);
                case "google.protobuf.FieldMask" -> paths(obj);
                case "google.protobuf.Duration", "google.protobuf.Timestamp" -> time(obj, full);
                default -> wrapped(obj, type.findFieldByName("value"));
            };
            return form == null ? node : form;
        }
        if (full.equals("google.protobuf.Any")) {
            JsonNode url = obj.get("@type");
            Descriptor d = url != null && url.isTextual() ? descriptor(url.asText()) : null;
            if (d != null && d.getFullName().startsWith("google.protobuf.") && obj.has("value")) {
                obj.set("value", legacyForms(obj.get("value"), d));
            } else if (d != null) {
                legacyFields(obj, d);
            }
        } else if (!full.equals("google.protobuf.Struct") && !full.equals("google.protobuf.Value")) {
            legacyFields(obj, type);
        }
        return node;
    }

    private static void legacyFields(ObjectNode obj, Descriptor type) {
        for (Iterator<Map.Entry<String, JsonNode>> it = obj.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            FieldDescriptor f = JsonShapeCheck.field(type, e.getKey());
            if (f == null || f.getJavaType() != FieldDescriptor.JavaType.MESSAGE) {
                continue;
            }
            Descriptor t = f.getMessageType();
            if (f.isMapField()) {
                FieldDescriptor valueField = t.findFieldByName("value");
                if (valueField.getJavaType() == FieldDescriptor.JavaType.MESSAGE
                        && e.getValue() instanceof ObjectNode map) {
                    map.fields().forEachRemaining(v -> v.setValue(legacyForms(v.getValue(),
                            valueField.getMessageType())));
                }
            } else if (e.getValue() instanceof ArrayNode list) {
                for (int i = 0; i < list.size(); i++) {
                    list.set(i, legacyForms(list.get(i), t));
                }
            } else {
                e.setValue(legacyForms(e.getValue(), t));
            }
        }
    }

    /** A wrapper's {@code {"value": v}} as {@code v}, {@code {}} as its default; null for any other object. */
    private static JsonNode wrapped(ObjectNode obj, FieldDescriptor value) {
        if (obj.size() == 1 && obj.has("value")) {
            return obj.get("value");
        } else if (!obj.isEmpty()) {
            return null;
        }
        return switch (value.getJavaType()) {
            case STRING, BYTE_STRING -> obj.textNode("");
            case BOOLEAN -> obj.booleanNode(false);
            default -> obj.numberNode(0);
        };
    }

    /**
     * A ListValue's {@code {"values": [...]}} as its list: as protobuf's parser in the legacy syntax reads a repeated
     * field (parser.cc, ParseField), a single value in place of the list is a list of it ({@code null} too, a Value),
     * and {@code {}} is the empty list; null for any other object.
     */
    private static JsonNode values(ObjectNode obj) {
        if (obj.isEmpty()) {
            return obj.arrayNode();
        } else if (obj.size() != 1 || !obj.has("values")) {
            return null;
        }
        JsonNode v = obj.get("values");
        return v.isArray() ? v : obj.arrayNode().add(v);
    }

    /**
     * A FieldMask's {@code {"paths": [...]}} (a single path, or none, in place of the list too) as the string
     * JsonFormat reads; null for any other object, and for paths that string cannot carry as the object does
     * (protobuf's parser keeps them as written; JsonFormat splits its string at commas, drops an empty path and turns
     * {@code aB} into {@code a_b}), so that the parse refuses them rather than read other paths.
     */
    private static JsonNode paths(ObjectNode obj) {
        if (obj.size() > 1 || obj.size() == 1 && !obj.has("paths")) {
            return null;
        }
        JsonNode v = obj.path("paths");
        JsonNode list = v.isArray() ? v : v.isMissingNode() || v.isNull() ? obj.arrayNode() : obj.arrayNode().add(v);
        java.util.List<String> paths = new java.util.ArrayList<>();
        for (JsonNode p : list) {
            if (!p.isTextual() || p.asText().isEmpty() || !FIELD_MASK_PATH.matcher(p.asText()).matches()) {
                return null;
            }
            paths.add(p.asText());
        }
        return obj.textNode(String.join(",", paths));
    }

    /**
     * A Duration's or Timestamp's {@code {"seconds": s, "nanos": n}} (either left out: 0) as its JSON string; null
     * when it has another field, a value that is no integer, or is no valid Duration or Timestamp.
     */
    private static JsonNode time(ObjectNode obj, String type) {
        long seconds;
        int nanos;
        try {
            for (Iterator<String> it = obj.fieldNames(); it.hasNext(); ) {
                if (!Set.of("seconds", "nanos").contains(it.next())) {
                    return null;
                }
            }
            seconds = int64(obj.get("seconds"));
            nanos = Math.toIntExact(int64(obj.get("nanos")));
            return obj.textNode(type.equals("google.protobuf.Duration")
                    ? Durations.toString(Duration.newBuilder()
                            .setSeconds(seconds).setNanos(nanos).build())
                    : Timestamps.toString(Timestamp.newBuilder()
                            .setSeconds(seconds).setNanos(nanos).build()));
        } catch (IllegalArgumentException | ArithmeticException e) {
            return null;
        }
    }

    /**
     * 2^53: below it, every whole double is exact as a long; the bound of an integer that protobuf's parser reads
     * written with a fraction or an exponent.
     */
    private static final double EXACT = 9007199254740992.0;
    private static final java.util.regex.Pattern DIGITS = java.util.regex.Pattern.compile("[+-]?[0-9]+");
    /** A FieldMask path JsonFormat's string form can carry: no comma, no capital (its camelCase is undone). */
    private static final java.util.regex.Pattern FIELD_MASK_PATH = java.util.regex.Pattern.compile("[^,A-Z]*");
    private static final java.util.regex.Pattern DECIMAL =
            java.util.regex.Pattern.compile("[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?");

    /**
     * An integer field's value as protobuf's JSON parser reads one (parser.cc, ParseIntInner): a JSON number or a
     * string of one, its digits within the 64 bits of the type (signed, or {@code unsigned}), or else a finite number
     * with no fraction from -2^53 (0 unsigned) to 2^53 (2^54 unsigned), such as {@code 1.0} or {@code 1e3}; null
     * for anything else.
     */
    public static java.math.BigInteger integer(JsonNode n, boolean unsigned) {
        java.math.BigInteger digits = n.isIntegralNumber() ? n.bigIntegerValue()
                : n.isTextual() && DIGITS.matcher(n.asText()).matches() ? new java.math.BigInteger(n.asText()) : null;
        if (digits != null && (unsigned ? digits.signum() >= 0 && digits.bitLength() <= 64
                : digits.bitLength() <= 63)) {
            return digits;
        }
        double d;
        if (n.isNumber()) {
            d = n.doubleValue();
        } else if (n.isTextual() && DECIMAL.matcher(n.asText()).matches()) {
            d = Double.parseDouble(n.asText());
        } else {
            return null;
        }
        boolean inRange = unsigned ? d >= 0 && d <= 2 * EXACT : Math.abs(d) <= EXACT;
        return inRange && d == Math.rint(d) ? java.math.BigInteger.valueOf((long) d) : null;
    }

    /** An int64 read as {@link #integer(JsonNode, boolean)} reads it, 0 when absent. */
    private static long int64(JsonNode n) {
        java.math.BigInteger i = n == null ? java.math.BigInteger.ZERO : integer(n, false);
        if (i == null) {
            throw new IllegalArgumentException("not an integer: " + n);
        }
        return i.longValueExact();
    }

    /** Parses one message of a class that has a static {@code newBuilder()}. */
    public static <M extends Message> M toMessage(JsonNode node, Class<M> type) throws InvalidProtocolBufferException {
        try {
            Message.Builder b = (Message.Builder) type.getMethod("newBuilder").invoke(null);
            return toMessage(node, b, type);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("not a protobuf message class: " + type, e);
        }
    }

    /**
     * {@link #toMessage(JsonNode, Class)} with its string and bytes fields read as protobuf's C++ JSON parser reads
     * them (parser.cc, ParseStrOrBytes): from a JSON string only, where JsonFormat takes a number or a bool as its
     * text; a {@code StringValue} too, bare or as {@code {"value": ...}}.
     *
     * @throws FieldError naming the first such field that holds another value
     */
    public static <M extends Message> M toMessageStringsOnly(JsonNode node, Class<M> type)
            throws InvalidProtocolBufferException {
        M m = toMessage(node, type);
        FieldError misfit = JsonShapeCheck.findNonString(node, m.getDescriptorForType());
        if (misfit != null) {
            throw misfit;
        }
        return m;
    }

    /**
     * Null when {@code value} is a JSON string, else the error of a string field at {@code path} holding it, as
     * protobuf's C++ JSON parser refuses a number, bool, list or object there: {@code PATH: 5 (expected: a string)}.
     */
    public static FieldError nonString(JsonNode value, String path) {
        return value.isTextual() ? null : JsonShapeCheck.error(path, value, "a string");
    }

    /** Prints a message as Envoy's JSON, field names in snake_case as Envoy's admin does. */
    public static String print(Message m) {
        return print(m, true);
    }

    /**
     * Prints a message as JSON with typed {@code Any}s: field names in snake_case as Envoy's admin prints them
     * ({@code protoFieldNames}), or in lowerCamelCase as istioctl does.
     */
    public static String print(Message m, boolean protoFieldNames) {
        try {
            JsonFormat.TypeRegistry.Builder registry = JsonFormat.TypeRegistry.newBuilder();
            registerTree(m, registry);
            JsonFormat.Printer printer = JsonFormat.printer().usingTypeRegistry(registry.build());
            return wholeNumbers((protoFieldNames ? printer.preservingProtoFieldNames() : printer).print(m));
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalStateException("cannot print " + m.getDescriptorForType().getFullName(), e);
        }
    }

    /**
     * {@code m} with each {@code Any} of a type no one here has the schema of (one that came in binary, over ADS,
     * where Envoy skips it, as an entry of a cluster's {@code load_balancing_policy}) replaced by a
     * {@code xds.type.v3.TypedStruct} naming that type with no fields, the way the JSON reader keeps such a type: JSON
     * cannot print its bytes. Anything else is kept as it is; {@code m} itself when it holds no such {@code Any}.
     */
    public static Message withUnknownTypesNamed(Message m) {
        Message.Builder b = null;
        for (var e : m.getAllFields().entrySet()) {
            var f = e.getKey();
            if (f.getJavaType() != com.google.protobuf.Descriptors.FieldDescriptor.JavaType.MESSAGE) {
                continue;
            }
            if (f.isRepeated()) {
                java.util.List<?> list = (java.util.List<?>) e.getValue();
                for (int i = 0; i < list.size(); i++) {
                    Message before = (Message) list.get(i);
                    Message after = namedIfUnknown(before);
                    if (after != before) {
                        b = b == null ? m.toBuilder() : b;
                        b.setRepeatedField(f, i, after);
                    }
                }
            } else {
                Message before = (Message) e.getValue();
                Message after = namedIfUnknown(before);
                if (after != before) {
                    b = b == null ? m.toBuilder() : b;
                    b.setField(f, after);
                }
            }
        }
        return b == null ? m : b.build();
    }

    private static Message namedIfUnknown(Message v) {
        if (v instanceof com.google.protobuf.Any any) {
            return any.getTypeUrl().isEmpty() || descriptor(any.getTypeUrl()) != null ? any
                    : com.google.protobuf.Any.pack(com.github.xds.type.v3.TypedStruct.newBuilder()
                            .setTypeUrl(any.getTypeUrl()).build());
        }
        return withUnknownTypesNamed(v);
    }

    /**
     * The JSON with each whole-valued double (a {@code Struct}'s number, a {@code Percent}) written without a
     * fraction, as Envoy's and istioctl's printers write it ({@code 9080}, {@code 4294967295}), where protobuf-java
     * writes {@code 9080.0} and {@code 4.294967295E9}. Integers are never printed with a point or exponent, and
     * strings are left as they are.
     */
    static String wholeNumbers(String json) {
        StringBuilder out = null;
        int copied = 0;
        for (int i = 0; i < json.length(); i++) {
            char c = json.charAt(i);
            if (c == '"') {
                for (i++; i < json.length() && json.charAt(i) != '"'; i++) {
                    if (json.charAt(i) == '\\') {
                        i++;
                    }
                }
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                int end = i;
                boolean fraction = false;
                while (end < json.length() && "0123456789.eE+-".indexOf(json.charAt(end)) >= 0) {
                    fraction |= "eE.".indexOf(json.charAt(end)) >= 0;
                    end++;
                }
                if (fraction) {
                    double v = Double.parseDouble(json.substring(i, end));
                    if (v == Math.rint(v) && Math.abs(v) < EXACT) {
                        out = out == null ? new StringBuilder(json.length()) : out;
                        out.append(json, copied, i).append((long) v);
                        copied = end;
                    }
                }
                i = end - 1;
            }
        }
        return out == null ? json : out.append(json, copied, json.length()).toString();
    }

    private static void registerTree(Message m, JsonFormat.TypeRegistry.Builder registry) {
        for (var e : m.getAllFields().entrySet()) {
            Object v = e.getValue();
            if (v instanceof java.util.List<?> list) {
                for (Object o : list) {
                    registerValue(o, registry);
                }
            } else {
                registerValue(v, registry);
            }
        }
    }

    private static void registerValue(Object v, JsonFormat.TypeRegistry.Builder registry) {
        if (v instanceof com.google.protobuf.Any any) {
            registerAny(any.getTypeUrl(), any.getValue(), registry);
        } else if (v instanceof Message msg && msg.getDescriptorForType().getFullName().equals("google.protobuf.Any")) {
            // an Any inside a DynamicMessage (an Any within an Any) is itself dynamic
            var fields = msg.getDescriptorForType();
            registerAny((String) msg.getField(fields.findFieldByName("type_url")),
                    (com.google.protobuf.ByteString) msg.getField(fields.findFieldByName("value")), registry);
        } else if (v instanceof Message msg) {
            registerTree(msg, registry);
        }
    }

    private static void registerAny(String typeUrl, com.google.protobuf.ByteString value,
                                    JsonFormat.TypeRegistry.Builder registry) {
        Descriptor d = descriptor(typeUrl);
        if (d != null) {
            registry.add(d);
            try {
                registerTree(com.google.protobuf.DynamicMessage.parseFrom(d, value), registry);
            } catch (InvalidProtocolBufferException ignored) {
                // printed as it is
            }
        }
    }

    /**
     * Registers the type of every {@code @type} in the tree, and rewrites those Inmesh has no class for into
     * TypedStructs that keep the original type URL and fields.
     */
    private static void prepareAnys(JsonNode node, JsonFormat.TypeRegistry.Builder registry) {
        if (node instanceof ObjectNode obj) {
            JsonNode type = obj.get("@type");
            if (type != null && type.isTextual()) {
                Descriptor d = descriptor(type.asText());
                if (d != null) {
                    registry.add(d);
                } else {
                    ObjectNode value = obj.deepCopy();
                    value.remove("@type");
                    obj.removeAll();
                    obj.put("@type", TYPED_STRUCT);
                    obj.put("type_url", type.asText());
                    obj.set("value", value);
                    registry.add(com.github.xds.type.v3.TypedStruct.getDescriptor());
                    return;
                }
            }
            for (Iterator<JsonNode> it = obj.elements(); it.hasNext(); ) {
                prepareAnys(it.next(), registry);
            }
        } else if (node instanceof ArrayNode arr) {
            for (JsonNode n : arr) {
                prepareAnys(n, registry);
            }
        }
    }

    /**
     * The descriptor for a type URL, found by the protobuf-java naming convention of the Envoy, xDS, UDPA and
     * Google API jars; null when there is no such class.
     */
    public static Descriptor descriptor(String typeUrl) {
        String name = typeUrl.substring(typeUrl.lastIndexOf('/') + 1);
        Descriptor known = KNOWN.get(name);
        if (known != null || UNKNOWN.containsKey(name)) {
            return known;
        }
        String[] candidates;
        if (name.startsWith("envoy.")) {
            candidates = new String[] {"io.envoyproxy." + name};
        } else if (name.startsWith("xds.")) {
            candidates = new String[] {"com.github." + name};
        } else if (name.startsWith("udpa.")) {
            candidates = new String[] {"com.github.udpa." + name};
        } else if (name.startsWith("google.protobuf.")) {
            candidates = new String[] {"com.google.protobuf." + name.substring("google.protobuf.".length())};
        } else {
            candidates = new String[0];
        }
        for (String c : candidates) {
            Descriptor d = load(c, name);
            if (d != null) {
                KNOWN.put(name, d);
                return d;
            }
        }
        UNKNOWN.put(name, Boolean.TRUE);
        return null;
    }

    private static Descriptor load(String className, String fullName) {
        // Nested messages: a.b.Outer.Inner is class a.b.Outer$Inner.
        String cn = className;
        while (true) {
            try {
                Class<?> c = Class.forName(cn, false, EnvoyJson.class.getClassLoader());
                Descriptor d = (Descriptor) c.getMethod("getDescriptor").invoke(null);
                return d.getFullName().equals(fullName) ? d : null;
            } catch (ClassNotFoundException e) {
                int dot = cn.lastIndexOf('.');
                if (dot < 0 || !Character.isUpperCase(cn.charAt(cn.lastIndexOf('.', dot - 1) + 1))) {
                    return null;
                }
                cn = cn.substring(0, dot) + "$" + cn.substring(dot + 1);
            } catch (ReflectiveOperationException | ClassCastException e) {
                return null;
            }
        }
    }
}
