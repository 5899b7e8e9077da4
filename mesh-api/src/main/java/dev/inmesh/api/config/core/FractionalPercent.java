package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;

/** Envoy's {@code type.v3.FractionalPercent}: {@code numerator} out of a fixed denominator. */
public record FractionalPercent(long numerator, Denominator denominator) {
    public FractionalPercent {
        Checks.nonNegative(numerator, "numerator");
        Checks.nonNull(denominator, "denominator");
    }

    /** The denominators Envoy allows. */
    public enum Denominator {
        HUNDRED(100),
        TEN_THOUSAND(10_000),
        MILLION(1_000_000);

        private final long value;

        Denominator(long value) {
            this.value = value;
        }

        public long value() {
            return value;
        }
    }
}
