package dev.inmesh.runtime.xds;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import com.google.protobuf.Any;
import com.google.protobuf.BoolValue;
import com.google.protobuf.ByteString;
import com.google.protobuf.BytesValue;
import com.google.protobuf.Descriptors.Descriptor;
import com.google.protobuf.Descriptors.EnumDescriptor;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Descriptors.OneofDescriptor;
import com.google.protobuf.DoubleValue;
import com.google.protobuf.Duration;
import com.google.protobuf.FloatValue;
import com.google.protobuf.Int32Value;
import com.google.protobuf.Int64Value;
import com.google.protobuf.Message;
import com.google.protobuf.StringValue;
import com.google.protobuf.Timestamp;
import com.google.protobuf.UInt32Value;
import com.google.protobuf.UInt64Value;
import com.google.protobuf.util.Timestamps;
import com.google.re2j.Pattern;
import io.envoyproxy.pgv.validate.Validate;
import io.envoyproxy.pgv.validate.Validate.FieldRules;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Envoy's proto constraint validation of a resource: the protoc-gen-validate rules ({@code (validate.rules)} on
 * fields, {@code (validate.required)} on oneofs) that Envoy's xDS protos carry, read from the descriptors and checked
 * as Envoy's generated {@code Validate()} checks them when it decodes a resource
 * ({@code MessageUtil::anyConvertAndValidate} in {@code OpaqueResourceDecoderImpl}, before any watch sees the
 * response). Envoy rejects the whole response then, where it rejects only the resource for what its listener and
 * cluster managers find later.
 *
 * <p>As Envoy's: the fields are checked in declaration order (those of a oneof last), a field with presence only when
 * set (but for {@code message.required}, {@code duration.required} and {@code any.required}), a repeated or map field
 * always (unless {@code ignore_empty}); every message field set, repeated item and map value is walked into (unless
 * {@code message.skip}), but not the message packed in an {@code Any}: Envoy validates a {@code typed_config} when
 * the extension's factory reads it, not as the resource is decoded. A message with the {@code disabled} or
 * {@code ignored} option is not checked against its rules. Every duration set in the resource, with rules or not
 * (under {@code message.skip} and in a disabled message too, not in an {@code Any}), must be one Envoy takes: neither
 * part negative, in range ({@link #duration}). The rules are those Envoy's API uses: numbers ({@code const}, {@code lt},
 * {@code lte}, {@code gt}, {@code gte}, {@code in}, {@code not_in}, {@code ignore_empty}) of every numeric type and
 * wrapper, durations and timestamps (the same, and {@code required}), bools ({@code const}), strings ({@code const},
 * {@code in}, {@code not_in}, {@code len}, {@code min_len}, {@code max_len} in characters, {@code len_bytes},
 * {@code min_bytes}, {@code max_bytes}, {@code prefix}, {@code suffix}, {@code contains}, {@code not_contains},
 * {@code pattern} (RE2), {@code well_known_regex} {@code HTTP_HEADER_NAME} and {@code HTTP_HEADER_VALUE} with
 * {@code strict}, {@code ignore_empty}), bytes ({@code const}, {@code len}, {@code min_len}, {@code max_len},
 * {@code ignore_empty}), enums ({@code const}, {@code defined_only}, {@code in}, {@code not_in}), messages
 * ({@code required}, {@code skip}), repeated fields ({@code min_items}, {@code max_items}, {@code unique},
 * {@code items}), maps ({@code min_pairs}, {@code max_pairs}, {@code keys}, {@code values}) and {@code Any}
 * ({@code required}, {@code in}, {@code not_in} of its type URL). The string formats no Envoy field uses (email,
 * hostname, IP, address, URI, UUID) and a timestamp's {@code lt_now}, {@code gt_now} and {@code within} are not
 * checked.
 */
public final class ProtoConstraintCheck {
    /** RE2 expressions of {@code well_known_regex}, as protoc-gen-validate has them. */
    private static final Pattern HEADER_NAME = Pattern.compile("^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$");
    private static final Pattern HEADER_VALUE = Pattern.compile("^[^\\x{0}-\\x{8}\\x{A}-\\x{1F}\\x{7F}]*$");
    /** Either, with {@code strict: false}: no NUL, LF or CR. */
    private static final Pattern HEADER_STRING = Pattern.compile("^[^\\x{0}\\x{A}\\x{D}]*$");
    /** Stands for an infinite float or double, beyond any finite bound. */
    private static final BigDecimal INFINITY = BigDecimal.TEN.pow(400);
    private static final int SHOWN_CHARS = 64;
    /** Envoy's bounds of any duration: what fits in an int64 of nanoseconds. */
    private static final long MAX_DURATION_SECONDS = 9_223_372_035L;
    private static final int MAX_DURATION_NANOS = 999_999_999;
    private static final FieldRules NO_RULES = FieldRules.getDefaultInstance();

    private static final Map<Descriptor, Plan> PLANS = new ConcurrentHashMap<>();
    private static final Map<String, Pattern> PATTERNS = new ConcurrentHashMap<>();
    private static final Map<FieldRules, Range> RANGES = new ConcurrentHashMap<>();

    private ProtoConstraintCheck() {}

    /** A field to check, with its rules (none but the walk into its messages when it has no rules). */
    private record FieldCheck(FieldDescriptor field, FieldRules rules) {}

    /** Whether a message type holds, itself or in the message types it holds, rules or durations to check. */
    private static final Map<Descriptor, Boolean> CHECKED = new ConcurrentHashMap<>();
    /** The value field of each wrapper type ({@code UInt32Value} and the like). */
    private static final Map<Descriptor, FieldDescriptor> WRAPPED = new ConcurrentHashMap<>();

    /** A oneof: the checks of its fields, and whether one must be set. */
    private record OneofCheck(OneofDescriptor oneof, Map<FieldDescriptor, FieldCheck> fields, boolean required) {}

    /**
     * What to check in a message type: its rules unless {@code checked} is false (validation disabled or ignored),
     * where only its durations are checked.
     */
    private record Plan(List<FieldCheck> fields, List<OneofCheck> oneofs, boolean checked) {
        static final Plan NONE = new Plan(List.of(), List.of(), false);
    }

    /** The first violation of Envoy's proto constraints in {@code message}, with its field's path; null for none. */
    public static FieldError find(Message message) {
        try {
            message(message, message.getDescriptorForType(), true);
            return null;
        } catch (FieldError e) {
            return e;
        }
    }

    /**
     * Checks a message of {@code type} (its field's, not asked of the message again): its rules when {@code rules}
     * (not under {@code message.skip}), its durations always.
     */
    private static void message(Message m, Descriptor type, boolean rules) {
        Plan plan = PLANS.computeIfAbsent(type, ProtoConstraintCheck::plan);
        boolean checked = rules && plan.checked;
        for (FieldCheck c : plan.fields) {
            field(m, c.field, checked ? c.rules : NO_RULES, checked);
        }
        for (OneofCheck o : plan.oneofs) {
            FieldDescriptor set = m.getOneofFieldDescriptor(o.oneof);
            FieldCheck c = set == null ? null : o.fields.get(set);
            if (c != null) {
                field(m, c.field, checked ? c.rules : NO_RULES, checked);
            } else if (set == null && o.required && checked) {
                List<String> names = o.oneof.getFields().stream().map(FieldDescriptor::getName).toList();
                throw new FieldError("", "one of " + listed(names) + " is required");
            }
        }
    }

    /** As protoc-gen-validate orders the checks: the plain fields, the proto3 optional ones, then each oneof. */
    private static Plan plan(Descriptor d) {
        if (wellKnown(d)) {
            return Plan.NONE;
        }
        List<FieldCheck> plain = new ArrayList<>();
        List<FieldCheck> optional = new ArrayList<>();
        for (FieldDescriptor f : d.getFields()) {
            FieldCheck c = check(f);
            if (c != null && f.getRealContainingOneof() == null) {
                (f.getContainingOneof() == null ? plain : optional).add(c);
            }
        }
        plain.addAll(optional);
        List<OneofCheck> oneofs = new ArrayList<>();
        for (OneofDescriptor o : d.getRealOneofs()) {
            Map<FieldDescriptor, FieldCheck> fields = new HashMap<>();
            for (FieldDescriptor f : o.getFields()) {
                FieldCheck c = check(f);
                if (c != null) {
                    fields.put(f, c);
                }
            }
            boolean required = o.getOptions().getExtension(Validate.required);
            if (required || !fields.isEmpty()) {
                oneofs.add(new OneofCheck(o, fields, required));
            }
        }
        return new Plan(List.copyOf(plain), List.copyOf(oneofs), !d.getOptions().getExtension(Validate.disabled)
                && !d.getOptions().getExtension(Validate.ignored));
    }

    /**
     * The check of a field: one with rules, one holding durations, or one holding messages to walk into (for their
     * rules or their durations); null for none of these.
     */
    private static FieldCheck check(FieldDescriptor f) {
        FieldRules rules = f.getOptions().getExtension(Validate.rules);
        FieldDescriptor element = f.isMapField() ? f.getMessageType().findFieldByName("value") : f;
        boolean walk = element.getJavaType() == FieldDescriptor.JavaType.MESSAGE && checked(element.getMessageType());
        return walk || !rules.equals(NO_RULES) ? new FieldCheck(f, rules) : null;
    }

    /**
     * Whether the messages of a type are worth walking into: it is a duration, or it or a message type it holds
     * (at any depth) has rules (a field's, a required oneof) or durations. The others are passed over.
     */
    private static boolean checked(Descriptor d) {
        Boolean known = CHECKED.get(d);
        if (known == null) {
            known = reaches(d, new HashSet<>());
            CHECKED.put(d, known);
        }
        return known;
    }

    private static boolean reaches(Descriptor d, Set<Descriptor> seen) {
        if (wellKnown(d)) {
            return d.equals(Duration.getDescriptor());
        }
        if (!seen.add(d)) {
            return false;
        }
        boolean rules = !d.getOptions().getExtension(Validate.disabled) && !d.getOptions().getExtension(Validate.ignored);
        for (OneofDescriptor o : d.getRealOneofs()) {
            if (rules && o.getOptions().getExtension(Validate.required)) {
                return true;
            }
        }
        for (FieldDescriptor f : d.getFields()) {
            if (rules && !f.getOptions().getExtension(Validate.rules).equals(NO_RULES)
                    || f.getJavaType() == FieldDescriptor.JavaType.MESSAGE && reaches(f.getMessageType(), seen)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Protobuf's own message types (the well-known types, {@code Any} among them, whose packed message Envoy leaves
     * to the factory that reads it): no rules inside, and no durations but a {@code Duration} itself.
     */
    private static boolean wellKnown(Descriptor d) {
        return d.getFile().getPackage().equals("google.protobuf");
    }

    private static void field(Message m, FieldDescriptor f, FieldRules r, boolean rules) {
        try {
            if (f.isMapField()) {
                map(m, f, r, rules);
            } else if (f.isRepeated()) {
                repeated(m, f, r, rules);
            } else if (f.hasPresence() && !m.hasField(f)) {
                if (f.getJavaType() == FieldDescriptor.JavaType.MESSAGE && (r.getMessage().getRequired()
                        || r.getDuration().getRequired() || r.getTimestamp().getRequired()
                        || r.getAny().getRequired())) {
                    throw new FieldError("", "required");
                }
            } else {
                value(f, m.getField(f), r, rules);
            }
        } catch (FieldError e) {
            throw e.under(f.getName());
        }
    }

    private static void repeated(Message m, FieldDescriptor f, FieldRules r, boolean rules) {
        Validate.RepeatedRules rr = r.getRepeated();
        int n = counted(m, f, rr.getIgnoreEmpty(), rr.hasMinItems(), rr.getMinItems(), rr.hasMaxItems(),
                rr.getMaxItems(), "item");
        FieldRules items = rr.getItems();
        if (!rr.getUnique() && items.getTypeCase() == FieldRules.TypeCase.TYPE_NOT_SET
                && f.getJavaType() != FieldDescriptor.JavaType.MESSAGE) {
            return;
        }
        Map<Object, Integer> seen = rr.getUnique() ? new HashMap<>() : null;
        for (int i = 0; i < n; i++) {
            Object v = m.getRepeatedField(f, i);
            try {
                Integer first = seen == null ? null : seen.putIfAbsent(v, i);
                if (first != null) {
                    throw new FieldError("", shown(f, v) + " (expected: unique items; [" + first + "] is the same)");
                }
                value(f, v, items, rules);
            } catch (FieldError e) {
                throw e.under("[" + i + "]");
            }
        }
    }

    private static void map(Message m, FieldDescriptor f, FieldRules r, boolean rules) {
        Validate.MapRules mr = r.getMap();
        int n = counted(m, f, mr.getIgnoreEmpty(), mr.hasMinPairs(), mr.getMinPairs(), mr.hasMaxPairs(),
                mr.getMaxPairs(), "pair");
        FieldDescriptor kf = f.getMessageType().findFieldByNumber(1);
        FieldDescriptor vf = f.getMessageType().findFieldByNumber(2);
        for (int i = 0; i < n; i++) {
            Message entry = (Message) m.getRepeatedField(f, i);
            Object key = entry.getField(kf);
            try {
                value(kf, key, mr.getKeys(), rules);
            } catch (FieldError e) {
                throw new FieldError("", "key " + e.detail());
            }
            try {
                value(vf, entry.getField(vf), mr.getValues(), rules);
            } catch (FieldError e) {
                throw e.under("[" + shown(kf, key) + "]");
            }
        }
    }

    /**
     * The number of items or pairs of a repeated or map field, checked against its bounds (unless it has none and
     * {@code ignore_empty} is set).
     */
    private static int counted(Message m, FieldDescriptor f, boolean ignoreEmpty, boolean hasMin, long min,
                               boolean hasMax, long max, String unit) {
        int n = m.getRepeatedFieldCount(f);
        if (n > 0 || !ignoreEmpty) {
            count(() -> n + " " + plural(unit, n), n, hasMin, min, hasMax, max, unit);
        }
        return n;
    }

    /**
     * Checks one value (of a singular field, a repeated item, a map key or value), then walks into it; a duration
     * first as Envoy checks every duration ({@link #duration}).
     */
    private static void value(FieldDescriptor f, Object v, FieldRules r, boolean rules) {
        if (v instanceof Duration d) {
            duration(d);
        }
        switch (r.getTypeCase()) {
            case FLOAT, DOUBLE, INT32, INT64, UINT32, UINT64, SINT32, SINT64, FIXED32, FIXED64, SFIXED32, SFIXED64 -> {
                Scalar s = unwrapped(f, v);
                range(s.field(), s.value(), r);
            }
            case DURATION, TIMESTAMP -> range(f, v, r);
            case BOOL -> {
                Object b = unwrapped(f, v).value();
                if (r.getBool().hasConst() && !b.equals(r.getBool().getConst())) {
                    throw new FieldError("", b + " (expected: " + r.getBool().getConst() + ")");
                }
            }
            case STRING -> string((String) unwrapped(f, v).value(), r.getString());
            case BYTES -> bytes((ByteString) unwrapped(f, v).value(), r.getBytes());
            case ENUM -> enumValue(f, (EnumValueDescriptor) v, r.getEnum());
            case ANY -> {
                Validate.AnyRules a = r.getAny();
                String url = v instanceof Any any ? any.getTypeUrl() : null;
                if (url != null && a.getInCount() > 0 && !a.getInList().contains(url)) {
                    throw new FieldError("", "type_url " + quoted(url) + " (expected: one of " + listed(a.getInList())
                            + ")");
                }
                if (url != null && a.getNotInList().contains(url)) {
                    throw new FieldError("", "type_url " + quoted(url) + " (expected: none of "
                            + listed(a.getNotInList()) + ")");
                }
            }
            case REPEATED, MAP, TYPE_NOT_SET -> {
                // the rules of a repeated or map field, checked by repeated() and map(); or none
            }
        }
        if (v instanceof Message message && checked(f.getMessageType())) {
            message(message, f.getMessageType(), rules && !r.getMessage().getSkip());
        }
    }

    /**
     * Envoy's check of every duration of a resource, with rules or not, in a message that skips its rules too
     * ({@code MessageUtil::validateDurationFields} in {@code source/common/protobuf/utility.cc}, which
     * {@code MessageUtil::validate} runs before the generated {@code Validate()}): neither seconds nor nanos
     * negative ("Expected positive duration"), nanos at most 999,999,999 and seconds at most 9,223,372,035 (the
     * duration in int64 nanoseconds; "Duration out-of-range"). Tighter than protoc-gen-validate's own check of a
     * duration with rules ("value is not a valid duration": nanos within ±999,999,999, seconds within ±10,000
     * years), which it thus covers.
     */
    private static void duration(Duration d) {
        String shown = "{seconds: " + d.getSeconds() + ", nanos: " + d.getNanos() + "}";
        if (d.getSeconds() < 0 || d.getNanos() < 0) {
            throw new FieldError("", shown + " (expected: a duration, neither seconds nor nanos negative)");
        }
        if (d.getNanos() > MAX_DURATION_NANOS || d.getSeconds() > MAX_DURATION_SECONDS) {
            throw new FieldError("", shown + " (expected: a duration, nanos <= " + MAX_DURATION_NANOS
                    + " and seconds <= " + MAX_DURATION_SECONDS + ")");
        }
    }

    /** The field of {@code r}'s oneof {@code type} that is set: the rules of one kind. */
    private static FieldDescriptor rulesOf(FieldRules r) {
        return FieldRules.getDescriptor().findFieldByNumber(r.getTypeCase().getNumber());
    }

    /** A scalar value and its field. */
    private record Scalar(FieldDescriptor field, Object value) {}

    /**
     * The value in a wrapper ({@code UInt32Value} and the like: its one field) with the wrapper's field, or the value
     * as it is.
     */
    private static Scalar unwrapped(FieldDescriptor f, Object v) {
        if (v instanceof Message wrapper) {
            FieldDescriptor inner = WRAPPED.computeIfAbsent(wrapper.getDescriptorForType(),
                    d -> d.findFieldByNumber(1));
            return new Scalar(inner, wrapped(wrapper, inner));
        }
        return new Scalar(f, v);
    }

    /** A wrapper's value: read directly from the generated types (reflection costs more), else through its field. */
    private static Object wrapped(Message w, FieldDescriptor inner) {
        if (w instanceof UInt32Value u) {
            return u.getValue();
        } else if (w instanceof StringValue t) {
            return t.getValue();
        } else if (w instanceof BoolValue b) {
            return b.getValue();
        } else if (w instanceof UInt64Value u) {
            return u.getValue();
        } else if (w instanceof DoubleValue d) {
            return d.getValue();
        } else if (w instanceof Int64Value i) {
            return i.getValue();
        } else if (w instanceof Int32Value i) {
            return i.getValue();
        } else if (w instanceof FloatValue x) {
            return x.getValue();
        } else if (w instanceof BytesValue b) {
            return b.getValue();
        }
        return w.getField(inner);
    }

    /**
     * The rules of a number, a duration or a timestamp, read once: whose rule messages share their field names,
     * {@code const}, {@code lt} or {@code lte} and {@code gt} or {@code gte}, {@code in}, {@code not_in}, and for
     * numbers {@code ignore_empty} (0 is not checked). Each bound and value is a decimal ({@link #decimal}) with how
     * it shows.
     */
    private record Range(Shown constant, Shown low, boolean lowIncluded, Shown high, boolean highIncluded,
                         List<Shown> in, List<Shown> notIn, boolean ignoreEmpty) {
        static Range of(Message rules) {
            Descriptor d = rules.getDescriptorForType();
            FieldDescriptor bound = d.findFieldByName("const");
            Function<String, Object> rule = name -> {
                FieldDescriptor rf = d.findFieldByName(name);
                return rf == null || rf.isRepeated() || !rules.hasField(rf) ? null : rules.getField(rf);
            };
            // a timestamp's rules have no in and not_in
            Function<String, List<Shown>> list = name -> d.findFieldByName(name) == null ? List.of()
                    : ((List<?>) rules.getField(d.findFieldByName(name))).stream().map(v -> Shown.of(bound, v)).toList();
            Object gt = rule.apply("gt");
            Object lt = rule.apply("lt");
            return new Range(Shown.of(bound, rule.apply("const")), Shown.of(bound, gt != null ? gt : rule.apply("gte")),
                    gt == null, Shown.of(bound, lt != null ? lt : rule.apply("lte")), lt == null, list.apply("in"),
                    list.apply("not_in"), Boolean.TRUE.equals(rule.apply("ignore_empty")));
        }
    }

    /** A value of a number, duration or timestamp field as a decimal (null for NaN), and as an error shows it. */
    private record Shown(BigDecimal value, String text) {
        /** Null for no value. */
        static Shown of(FieldDescriptor f, Object v) {
            return v == null ? null : new Shown(decimal(f, v), shown(f, v));
        }
    }

    /**
     * Checks a number, a duration or a timestamp: a range inside the bounds when the upper one is above the lower
     * one, else outside them, as protoc-gen-validate reads them.
     */
    private static void range(FieldDescriptor f, Object v, FieldRules rules) {
        Range r = RANGES.computeIfAbsent(rules, k -> Range.of((Message) k.getField(rulesOf(k))));
        BigDecimal x = decimal(f, v);
        if (r.ignoreEmpty && x != null && x.signum() == 0) {
            return;
        }
        if (r.constant != null && (x == null || x.compareTo(r.constant.value) != 0)) {
            throw new FieldError("", shown(f, v) + " (expected: " + r.constant.text + ")");
        }
        String lower = r.low == null ? null : (r.lowIncluded ? ">= " : "> ") + r.low.text;
        String upper = r.high == null ? null : (r.highIncluded ? "<= " : "< ") + r.high.text;
        boolean above = r.low == null || x == null || x.compareTo(r.low.value) > (r.lowIncluded ? -1 : 0);
        boolean below = r.high == null || x == null || x.compareTo(r.high.value) < (r.highIncluded ? 1 : 0);
        if (lower != null && upper != null) {
            boolean inside = r.high.value.compareTo(r.low.value) > 0;
            if (inside ? !(above && below) : !(above || below)) {
                throw new FieldError("", shown(f, v) + " (expected: " + (inside ? lower + " and " + upper
                        : upper + " or " + lower) + ")");
            }
        } else if (!above || !below) {
            throw new FieldError("", shown(f, v) + " (expected: " + (lower != null ? lower : upper) + ")");
        }
        if (!r.in.isEmpty() && !in(x, r.in)) {
            throw new FieldError("", shown(f, v) + " (expected: one of " + listed(r.in.stream().map(Shown::text)
                    .toList()) + ")");
        }
        if (!r.notIn.isEmpty() && in(x, r.notIn)) {
            throw new FieldError("", shown(f, v) + " (expected: none of " + listed(r.notIn.stream().map(Shown::text)
                    .toList()) + ")");
        }
    }

    private static boolean in(BigDecimal x, List<Shown> values) {
        if (x != null) {
            for (Shown v : values) {
                if (x.compareTo(v.value) == 0) {
                    return true;
                }
            }
        }
        return false;
    }

    /**
     * A number, a duration (in seconds) or a timestamp (seconds since the epoch) as a decimal, exactly; null for NaN,
     * which, as in Envoy's C++, fails {@code const} and {@code in} and passes the bounds.
     */
    private static BigDecimal decimal(FieldDescriptor f, Object v) {
        if (v instanceof Duration d) {
            return BigDecimal.valueOf(d.getSeconds()).add(BigDecimal.valueOf(d.getNanos(), 9));
        }
        if (v instanceof Timestamp t) {
            return BigDecimal.valueOf(t.getSeconds()).add(BigDecimal.valueOf(t.getNanos(), 9));
        }
        if (v instanceof Float || v instanceof Double) {
            double d = ((Number) v).doubleValue();
            return Double.isNaN(d) ? null : Double.isInfinite(d) ? (d > 0 ? INFINITY : INFINITY.negate())
                    : new BigDecimal(d);
        }
        long n = ((Number) v).longValue();
        return switch (f.getType()) {
            case UINT32, FIXED32 -> BigDecimal.valueOf(Integer.toUnsignedLong((int) n));
            case UINT64, FIXED64 -> new BigDecimal(new BigInteger(Long.toUnsignedString(n)));
            default -> BigDecimal.valueOf(n);
        };
    }

    private static void string(String s, Validate.StringRules r) {
        if (r.getIgnoreEmpty() && s.isEmpty()) {
            return;
        }
        if (r.hasConst() && !s.equals(r.getConst())) {
            throw new FieldError("", quoted(s) + " (expected: " + quoted(r.getConst()) + ")");
        }
        if (r.getInCount() > 0 && !r.getInList().contains(s)) {
            throw new FieldError("", quoted(s) + " (expected: one of " + listed(r.getInList()) + ")");
        }
        if (r.getNotInCount() > 0 && r.getNotInList().contains(s)) {
            throw new FieldError("", quoted(s) + " (expected: none of " + listed(r.getNotInList()) + ")");
        }
        if (r.hasLen() || r.hasMinLen() || r.hasMaxLen()) {
            count(() -> quoted(s), s.codePointCount(0, s.length()), r.hasMinLen() || r.hasLen(),
                    r.hasLen() ? r.getLen() : r.getMinLen(), r.hasMaxLen() || r.hasLen(),
                    r.hasLen() ? r.getLen() : r.getMaxLen(), "character");
        }
        if (r.hasLenBytes() || r.hasMinBytes() || r.hasMaxBytes()) {
            count(() -> quoted(s, true), utf8Length(s), r.hasMinBytes() || r.hasLenBytes(),
                    r.hasLenBytes() ? r.getLenBytes() : r.getMinBytes(), r.hasMaxBytes() || r.hasLenBytes(),
                    r.hasLenBytes() ? r.getLenBytes() : r.getMaxBytes(), "byte");
        }
        if (r.hasPrefix() && !s.startsWith(r.getPrefix())) {
            throw new FieldError("", quoted(s) + " (expected: starting with " + quoted(r.getPrefix()) + ")");
        }
        if (r.hasSuffix() && !s.endsWith(r.getSuffix())) {
            throw new FieldError("", quoted(s) + " (expected: ending with " + quoted(r.getSuffix()) + ")");
        }
        if (r.hasContains() && !s.contains(r.getContains())) {
            throw new FieldError("", quoted(s) + " (expected: containing " + quoted(r.getContains()) + ")");
        }
        if (r.hasNotContains() && s.contains(r.getNotContains())) {
            throw new FieldError("", quoted(s) + " (expected: not containing " + quoted(r.getNotContains()) + ")");
        }
        if (r.hasPattern() && !PATTERNS.computeIfAbsent(r.getPattern(), Pattern::compile).matcher(s).matches()) {
            throw new FieldError("", quoted(s) + " (expected: a match of the RE2 expression " + r.getPattern() + ")");
        }
        if (r.getWellKnownCase() == Validate.StringRules.WellKnownCase.WELL_KNOWN_REGEX) {
            Validate.KnownRegex known = r.getWellKnownRegex();
            boolean header = known == Validate.KnownRegex.HTTP_HEADER_NAME
                    || known == Validate.KnownRegex.HTTP_HEADER_VALUE;
            Pattern p = !r.getStrict() ? HEADER_STRING
                    : known == Validate.KnownRegex.HTTP_HEADER_NAME ? HEADER_NAME : HEADER_VALUE;
            if (header && !p.matcher(s).matches()) {
                throw new FieldError("", quoted(s) + " (expected: " + (!r.getStrict() ? "no NUL, CR or LF"
                        : known == Validate.KnownRegex.HTTP_HEADER_NAME ? "an HTTP header name"
                        : "an HTTP header value, without control characters") + ")");
            }
        }
    }

    private static void bytes(ByteString b, Validate.BytesRules r) {
        if (r.getIgnoreEmpty() && b.isEmpty()) {
            return;
        }
        Supplier<String> shown = () -> b.size() + " " + plural("byte", b.size());
        if (r.hasConst() && !b.equals(r.getConst())) {
            throw new FieldError("", shown.get() + " (expected: the bytes of its const rule)");
        }
        count(shown, b.size(), r.hasMinLen() || r.hasLen(), r.hasLen() ? r.getLen() : r.getMinLen(),
                r.hasMaxLen() || r.hasLen(), r.hasLen() ? r.getLen() : r.getMaxLen(), "byte");
    }

    private static void enumValue(FieldDescriptor f, EnumValueDescriptor v, Validate.EnumRules r) {
        EnumDescriptor type = f.getEnumType();
        int n = v.getNumber();
        Function<Integer, String> name = number -> {
            EnumValueDescriptor known = type.findValueByNumber(number);
            return known != null ? known.getName() : String.valueOf(number);
        };
        if (r.hasConst() && n != r.getConst()) {
            throw new FieldError("", name.apply(n) + " (expected: " + name.apply(r.getConst()) + ")");
        }
        if (r.getDefinedOnly() && type.findValueByNumber(n) == null) {
            List<String> names = type.getValues().stream().map(EnumValueDescriptor::getName).toList();
            throw new FieldError("", n + " (expected: one of " + listed(names) + ")");
        }
        if (r.getInCount() > 0 && !r.getInList().contains(n)) {
            throw new FieldError("", name.apply(n) + " (expected: one of "
                    + listed(r.getInList().stream().map(name).toList()) + ")");
        }
        if (r.getNotInCount() > 0 && r.getNotInList().contains(n)) {
            throw new FieldError("", name.apply(n) + " (expected: none of "
                    + listed(r.getNotInList().stream().map(name).toList()) + ")");
        }
    }

    /** Checks a count (of characters, bytes, items or pairs) against its minimum and maximum. */
    private static void count(Supplier<String> shown, long n, boolean hasMin, long min, boolean hasMax, long max,
                              String unit) {
        if (hasMin && hasMax && min == max && n != min) {
            throw new FieldError("", shown.get() + " (expected: exactly " + min + " " + plural(unit, min) + ")");
        }
        if (hasMin && n < min) {
            throw new FieldError("", shown.get() + " (expected: at least " + min + " " + plural(unit, min) + ")");
        }
        if (hasMax && n > max) {
            throw new FieldError("", shown.get() + " (expected: at most " + max + " " + plural(unit, max) + ")");
        }
    }

    /** A value as the error shows it: a string quoted (cut after 64 characters), a duration in seconds. */
    private static String shown(FieldDescriptor f, Object v) {
        if (v instanceof String s) {
            return quoted(s);
        }
        if (v instanceof Duration d) {
            return decimal(f, d).stripTrailingZeros().toPlainString() + "s";
        }
        if (v instanceof Timestamp t) {
            return Timestamps.toString(t);
        }
        if (v instanceof EnumValueDescriptor e) {
            return e.getType().findValueByNumber(e.getNumber()) != null ? e.getName() : String.valueOf(e.getNumber());
        }
        if (v instanceof Message m) {
            return m.getDescriptorForType().getName();
        }
        if ((v instanceof Float || v instanceof Double) && !Double.isFinite(((Number) v).doubleValue())) {
            return String.valueOf(v);
        }
        if (v instanceof Number) {
            return decimal(f, v).stripTrailingZeros().toPlainString();
        }
        return String.valueOf(v);
    }

    private static String quoted(String s) {
        return quoted(s, false);
    }

    /**
     * A string quoted, cut after 64 characters (code points, a surrogate pair kept whole) with its length then: in
     * UTF-8 bytes for a rule in bytes, else in characters as the length rules count them.
     */
    private static String quoted(String s, boolean inBytes) {
        int chars = s.codePointCount(0, s.length());
        String cut = chars > SHOWN_CHARS ? s.substring(0, s.offsetByCodePoints(0, SHOWN_CHARS)) : s;
        long n = inBytes ? utf8Length(s) : chars;
        return "\"" + new String(JsonStringEncoder.getInstance().quoteAsString(cut)) + "\""
                + (cut.length() < s.length() ? "... (" + n + " " + plural(inBytes ? "byte" : "character", n) + ")"
                : "");
    }

    /** The length of a string in UTF-8, without encoding it (a lone surrogate as the 1 byte '?' it encodes to). */
    private static long utf8Length(String s) {
        long n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                n++;
            } else if (c < 0x800) {
                n += 2;
            } else if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else {
                n += Character.isSurrogate(c) ? 1 : 3;
            }
        }
        return n;
    }

    private static String plural(String unit, long n) {
        return n == 1 ? unit : unit + "s";
    }

    /** {@code a, b or c}. */
    private static String listed(List<?> items) {
        List<String> s = items.stream().map(String::valueOf).toList();
        return s.size() <= 1 ? String.join("", s)
                : String.join(", ", s.subList(0, s.size() - 1)) + " or " + s.get(s.size() - 1);
    }
}
