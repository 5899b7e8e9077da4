package dev.inmesh.runtime.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/**
 * Numbers as Envoy prints them (router_check_tool's coverage, /clusters' outlier figures): a C++ stream's default
 * form of a double.
 */
class EnvoyNumbersTest {

    @Test
    void aPercentageIsPrintedWithSixSignificantDigitsAndNoTrailingZeros() {
        assertEquals("100", EnvoyNumbers.general(100));
        assertEquals("50", EnvoyNumbers.general(50));
        assertEquals("0", EnvoyNumbers.general(0));
        assertEquals("7.44863", EnvoyNumbers.general(7.448632));
        assertEquals("66.6667", EnvoyNumbers.general((float) (200.0 / 3)));
        assertEquals("50.1", EnvoyNumbers.general((float) 50.1));
        assertEquals("0.0001", EnvoyNumbers.general(0.0001));
        assertEquals("1e-05", EnvoyNumbers.general(0.00001));
        assertEquals("1.23457e+06", EnvoyNumbers.general(1234567));
        assertEquals("nan", EnvoyNumbers.general(Float.NaN));
    }

    /** absl's StrCat, with which Envoy shows a runtime layer's number, writes a double the same way. */
    @Test
    void aRuntimeNumberIsWrittenInSixSignificantDigitsAsAbslStrCatWritesIt() {
        assertEquals("100", EnvoyNumbers.general(100));
        assertEquals("0.5", EnvoyNumbers.general(0.5));
        assertEquals("-3.25", EnvoyNumbers.general(-3.25));
        assertEquals("123457", EnvoyNumbers.general(123456.7));
        assertEquals("1.23457e+06", EnvoyNumbers.general(1234567));
        assertEquals("2.14748e+09", EnvoyNumbers.general(2147483647));
        assertEquals("1e-05", EnvoyNumbers.general(0.00001));
        assertEquals("0.0001", EnvoyNumbers.general(0.0001));
        assertEquals("0", EnvoyNumbers.general(0));
    }
}
