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
}
