package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The coverage's number as router_check_tool prints it: a C++ stream's default form of a double. */
class RouteCoverageTest {

    @Test
    void aPercentageIsPrintedWithSixSignificantDigitsAndNoTrailingZeros() {
        assertEquals("100", RouteCoverage.format(100));
        assertEquals("50", RouteCoverage.format(50));
        assertEquals("0", RouteCoverage.format(0));
        assertEquals("7.44863", RouteCoverage.format(7.448632));
        assertEquals("66.6667", RouteCoverage.format((float) (200.0 / 3)));
        assertEquals("50.1", RouteCoverage.format((float) 50.1));
        assertEquals("0.0001", RouteCoverage.format(0.0001));
        assertEquals("1e-05", RouteCoverage.format(0.00001));
        assertEquals("1.23457e+06", RouteCoverage.format(1234567));
        assertEquals("nan", RouteCoverage.format(Float.NaN));
    }
}
