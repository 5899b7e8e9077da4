package dev.inmesh.runtime.runtime;

import com.google.protobuf.Struct;
import com.google.protobuf.TextFormat;
import com.google.protobuf.Value;
import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.runtime.net.AbslText;

/**
 * One runtime value, typed as Envoy's runtime snapshot types it when a layer is loaded
 * ({@code Runtime::SnapshotImpl::createEntry}, {@code runtime_impl.cc}), for the readers Inmesh has:
 * <ul>
 *   <li>a number, or a string that reads whole as a decimal number (as {@code absl::SimpleAtod} reads it: ASCII
 *       whitespace around it, a sign, a fraction, an exponent), is an unsigned integer when it is not negative, its
 *       fraction dropped ({@code 3.7} is 3);</li>
 *   <li>an object whose only fields are {@code numerator} (a number) and {@code denominator} ({@code HUNDRED},
 *       {@code TEN_THOUSAND} or {@code MILLION}, {@code HUNDRED} when left out) is a fractional percent; an empty object
 *       is 0 of {@code HUNDRED};</li>
 *   <li>anything else (a boolean, other text, a list) is text only: no reader here takes it.</li>
 * </ul>
 *
 * @param raw the value as {@code /runtime} shows it: an admin value as it was given; a static layer's number in six
 *     significant digits ({@code 100}, {@code 0.5}, {@code 2.14748e+09}, as Envoy prints a double), a boolean as
 *     {@code true} or {@code false}, text as it is, an object in protobuf's text format
 * @param uint the value as an unsigned integer, capped at {@link Long#MAX_VALUE}; null when it is none
 * @param fraction the value as a fractional percent; null when it is none
 */
public record RuntimeEntry(String raw, Long uint, FractionalPercent fraction) {
    /** The largest numerator a {@code FractionalPercent} holds (a {@code uint32}). */
    private static final long MAX_NUMERATOR = 0xFFFFFFFFL;

    public RuntimeEntry {
        raw = raw == null ? "" : raw;
    }

    /**
     * The entry of {@code value}, shown as {@code raw} when that is not empty (an admin value: the text it was given,
     * whose YAML {@code value} is), else as Envoy shows the value itself. As Envoy's, a string's number is read from
     * that text: an admin value given quoted is text only.
     */
    public static RuntimeEntry of(Value value, String raw) {
        boolean given = raw != null && !raw.isEmpty();
        return switch (value.getKindCase()) {
            case NUMBER_VALUE -> new RuntimeEntry(given ? raw : dev.inmesh.runtime.stats.EnvoyNumbers.general(value.getNumberValue()),
                    uint(value.getNumberValue()), null);
            case BOOL_VALUE -> new RuntimeEntry(given ? raw : Boolean.toString(value.getBoolValue()), null, null);
            case STRUCT_VALUE -> new RuntimeEntry(given ? raw : TextFormat.printer().printToString(
                    value.getStructValue()), null, fraction(value.getStructValue()));
            case STRING_VALUE -> {
                String text = given ? raw : value.getStringValue();
                yield new RuntimeEntry(text, number(text), null);
            }
            case LIST_VALUE, NULL_VALUE, KIND_NOT_SET -> new RuntimeEntry(given ? raw : "", null, null);
        };
    }

    /** The unsigned integer of a string that reads as a decimal number ({@link AbslText#decimal}), else null. */
    private static Long number(String text) {
        Double d = AbslText.decimal(text);
        return d == null ? null : uint(d);
    }

    /** A number as an unsigned integer, its fraction dropped; null when negative or not finite. */
    private static Long uint(double d) {
        if (!(d >= 0) || Double.isInfinite(d)) {
            return null;
        }
        return d >= 0x1p63 ? Long.MAX_VALUE : (long) d;
    }

    /**
     * A {@code FractionalPercent} object as Envoy's runtime reads one: its {@code numerator} when that is a number, of
     * its {@code denominator} (by name), {@code HUNDRED} when it has none; null when it has another field or a
     * denominator that is no such name.
     */
    private static FractionalPercent fraction(Struct s) {
        long numerator = 0;
        FractionalPercent.Denominator denominator = FractionalPercent.Denominator.HUNDRED;
        for (var f : s.getFieldsMap().entrySet()) {
            Value v = f.getValue();
            if (f.getKey().equals("numerator")) {
                if (v.getKindCase() == Value.KindCase.NUMBER_VALUE) {
                    numerator = Math.min(MAX_NUMERATOR, Math.max(0, (long) v.getNumberValue()));
                }
            } else if (f.getKey().equals("denominator") && v.getKindCase() == Value.KindCase.STRING_VALUE) {
                denominator = switch (v.getStringValue()) {
                    case "HUNDRED" -> FractionalPercent.Denominator.HUNDRED;
                    case "TEN_THOUSAND" -> FractionalPercent.Denominator.TEN_THOUSAND;
                    case "MILLION" -> FractionalPercent.Denominator.MILLION;
                    default -> null;
                };
                if (denominator == null) {
                    return null;
                }
            } else {
                return null;
            }
        }
        return new FractionalPercent(numerator, denominator);
    }
}
