package dev.inmesh.runtime.tracing;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.MultiMap;
import org.junit.jupiter.api.Test;

/**
 * B3 as Envoy's Zipkin tracer reads it: the multi-header and single-header forms, 64- and 128-bit trace ids, the
 * sampling flag and its fallback to the local decision, and malformed contexts, which give no span at all.
 */
class B3Test {
    private static MultiMap headers(String... nameValues) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i < nameValues.length; i += 2) {
            h.add(nameValues[i], nameValues[i + 1]);
        }
        return h;
    }

    @Test
    void theMultiHeaderFormGivesA64BitContextWithItsParent() {
        MultiMap h = headers("x-b3-traceid", "463ac35c9f6413ad", "x-b3-spanid", "a2fb4a1d1a96d312",
                "x-b3-parentspanid", "0020000000000001", "x-b3-sampled", "1");
        boolean sampled = B3.sampled(h, false);
        assertTrue(sampled, "the caller's 1 overrides a local decision not to trace");
        assertEquals(new SpanContext(0, 0x463ac35c9f6413adL, 0xa2fb4a1d1a96d312L, 0x0020000000000001L, true),
                B3.extract(h, sampled));
    }

    @Test
    void aTraceIdOf32DigitsIs128BitAndShortIdsAreHexNumbers() {
        SpanContext c = B3.extract(headers("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124",
                "x-b3-spanid", "abc"), true);
        assertEquals(new SpanContext(0x463ac35c9f6413adL, 0x48485a3953bb6124L, 0xabc, 0, true), c);
        assertEquals("463ac35c9f6413ad48485a3953bb6124", c.traceIdHex());
        assertEquals("0000000000000abc", SpanContext.hex(c.spanId()));
        assertNull(B3.extract(headers("x-b3-traceid", "463ac35c9f6413ad"), true), "no span id: no context");
        assertEquals(0, B3.extract(headers("x-b3-traceid", "1", "x-b3-spanid", "2", "x-b3-parentspanid", ""), true)
                .parentId(), "an empty parent is none");
    }

    @Test
    void malformedIdsGiveNoSpanAsEnvoyDoes() {
        assertSame(B3.INVALID, B3.extract(headers("x-b3-traceid", "xyz", "x-b3-spanid", "a2fb4a1d1a96d312"), true));
        assertSame(B3.INVALID, B3.extract(headers("x-b3-traceid", "463ac35c9f6413ad",
                "x-b3-spanid", "a2fb4a1d1a96d3120"), true), "17 digits");
        assertSame(B3.INVALID, B3.extract(headers("x-b3-traceid", "463ac35c9f6413ad", "x-b3-spanid", "1",
                "x-b3-parentspanid", "-1"), true));
        assertSame(B3.INVALID, B3.extract(headers("x-b3-traceid", "463ac35c9f6413adZZ485a3953bb6124",
                "x-b3-spanid", "1"), true), "a bad half of a 128-bit id");
        assertSame(B3.INVALID, B3.extract(headers("b3", "80f198ee56343ba8-e457b5a2e4d86bd"), true), "truncated");
        assertSame(B3.INVALID, B3.extract(headers("b3", "x"), true), "a flag that is none");
        assertSame(B3.INVALID, B3.extract(headers("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-2"), true));
        assertSame(B3.INVALID, B3.extract(headers("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b9"),
                true), "a short parent");
    }

    @Test
    void theSingleHeaderWinsOverTheOthersAndCarriesTheFlagAndParent() {
        MultiMap h = headers("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
                "x-b3-traceid", "1", "x-b3-spanid", "2", "x-b3-sampled", "0");
        assertTrue(B3.sampled(h, false));
        assertEquals(new SpanContext(0x80f198ee56343ba8L, 0x64fe8b2a57d3eff7L, 0xe457b5a2e4d86bd1L,
                0x05e3ac9a4f6e3b90L, true), B3.extract(h, true));
        MultiMap debug = headers("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-d");
        assertTrue(B3.sampled(debug, false), "d, debug, is sampled");
        assertEquals(new SpanContext(0, 0x80f198ee56343ba8L, 0xe457b5a2e4d86bd1L, 0, true),
                B3.extract(debug, true));
        MultiMap idsOnly = headers("b3", "80f198ee56343ba8-e457b5a2e4d86bd1");
        assertTrue(B3.sampled(idsOnly, true), "no flag: the local decision");
        assertFalse(B3.sampled(idsOnly, false));
    }

    @Test
    void aSingleFlagIsADecisionWithoutAContext() {
        MultiMap deny = headers("b3", "0");
        assertFalse(B3.sampled(deny, true));
        assertNull(B3.extract(deny, false));
        assertTrue(B3.sampled(headers("b3", "1"), false));
    }

    @Test
    void xB3SampledIsOneOrTrueAndItsAbsenceLeavesTheLocalDecision() {
        assertTrue(B3.sampled(headers("x-b3-sampled", "true"), false));
        assertFalse(B3.sampled(headers("x-b3-sampled", "0"), true));
        assertFalse(B3.sampled(headers("x-b3-sampled", "yes"), true), "any other value is not sampled");
        assertTrue(B3.sampled(headers(), true));
        assertFalse(B3.sampled(headers(), false));
    }

    @Test
    void injectionWritesTheFourHeadersAndLeavesTheSingleOneAndFlags() {
        MultiMap h = headers("b3", "0", "x-b3-flags", "1", "x-b3-parentspanid", "99");
        B3.inject(h, 0x463ac35c9f6413adL, 0x48485a3953bb6124L, 0xabc, 0, false);
        assertEquals("463ac35c9f6413ad48485a3953bb6124", h.get("x-b3-traceid"));
        assertEquals("0000000000000abc", h.get("x-b3-spanid"));
        assertNull(h.get("x-b3-parentspanid"), "a root span has no parent");
        assertEquals("0", h.get("x-b3-sampled"));
        assertEquals("0", h.get("b3"));
        assertEquals("1", h.get("x-b3-flags"));
    }
}
