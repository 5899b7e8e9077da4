package dev.inmesh.runtime.lb;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class Murmur2Test {
    @Test
    void hashesAsEnvoysMurmurHash2() {
        // Envoy's own expectations (test/common/common/hash_test.cc), as unsigned 64-bit numbers
        assertEquals(Long.parseUnsignedLong("9631199822919835226"), Murmur2.hash64("foo"));
        assertEquals(Long.parseUnsignedLong("11474628671133349555"), Murmur2.hash64("bar"));
        assertEquals(Long.parseUnsignedLong("16306510975912980159"), Murmur2.hash64("foo\nbar"));
        assertEquals(Long.parseUnsignedLong("12847078931730529320"), Murmur2.hash64("lyft"));
        assertEquals(Long.parseUnsignedLong("6142509188972423790"), Murmur2.hash64(""));
    }
}
