package dev.inmesh.runtime.stats;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

/** Numbers written as Envoy's C++ writes them. */
public final class EnvoyNumbers {
    private EnvoyNumbers() {}

    /**
     * A number as C's {@code %g} and C++'s output stream print a {@code double} by default (six significant digits,
     * no trailing zeros, an exponent below 1e-4 and from 1e6; {@code nan}, {@code inf}), as Envoy prints the
     * outlier detector's figures in {@code /clusters} and router_check_tool its route coverage, and as absl's
     * {@code StrCat} writes one (a runtime layer's number in {@code /runtime}).
     */
    public static String general(double v) {
        if (Double.isNaN(v) || Double.isInfinite(v)) {
            return Double.isNaN(v) ? "nan" : v > 0 ? "inf" : "-inf";
        } else if (v == 0) {
            return "0";
        }
        BigDecimal rounded = new BigDecimal(v).round(new MathContext(6, RoundingMode.HALF_EVEN));
        int exponent = rounded.precision() - rounded.scale() - 1;
        if (exponent < -4 || exponent >= 6) {
            BigDecimal mantissa = rounded.movePointLeft(exponent).stripTrailingZeros();
            String e = String.format("%02d", Math.abs(exponent));
            return mantissa.toPlainString() + "e" + (exponent < 0 ? "-" : "+") + e;
        }
        return rounded.stripTrailingZeros().toPlainString();
    }
}
