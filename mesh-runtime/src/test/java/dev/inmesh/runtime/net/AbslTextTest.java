package dev.inmesh.runtime.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import org.junit.jupiter.api.Test;

/** Numbers read and written as absl reads and writes them for Envoy. */
class AbslTextTest {
    @Test
    void aDecimalIsReadWholeWithAsciiWhiteSpaceAroundIt() {
        assertEquals(42.0, AbslText.decimal(" 42\t"));
        assertEquals(-0.5, AbslText.decimal("-.5"));
        assertEquals(3.0, AbslText.decimal("+3."));
        assertEquals(1500.0, AbslText.decimal("1.5e3"));
        for (String no : new String[] {"", "+-1", "1e", "0x10", "inf", "nan", "4 2", "true", "\u00a042"}) {
            assertNull(AbslText.decimal(no), no);
        }
    }

    @Test
    void aDoubleIsWrittenInSixSignificantDigitsAsStrCatWritesIt() {
        assertEquals("100", AbslText.sixDigits(100));
        assertEquals("0.5", AbslText.sixDigits(0.5));
        assertEquals("-3.25", AbslText.sixDigits(-3.25));
        assertEquals("123457", AbslText.sixDigits(123456.7));
        assertEquals("1.23457e+06", AbslText.sixDigits(1234567));
        assertEquals("2.14748e+09", AbslText.sixDigits(2147483647));
        assertEquals("1e-05", AbslText.sixDigits(0.00001));
        assertEquals("0.0001", AbslText.sixDigits(0.0001));
        assertEquals("0", AbslText.sixDigits(0));
    }
}
