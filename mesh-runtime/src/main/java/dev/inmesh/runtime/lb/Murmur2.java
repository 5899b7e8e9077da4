package dev.inmesh.runtime.lb;

import java.nio.charset.StandardCharsets;

/**
 * The 64-bit MurmurHash2 that Envoy's ring hash uses under {@code hash_function: MURMUR_HASH_2} (that of
 * {@code std::hash} for strings in libstdc++ on 64-bit platforms), over UTF-8 bytes with its seed {@code 0xc70f6907}:
 * {@code hash64("foo") == 9631199822919835226L} read as unsigned.
 */
final class Murmur2 {
    private static final long MUL = 0xc6a4a7935bd1e995L;
    private static final long SEED = 0xc70f6907L;

    private Murmur2() {}

    static long hash64(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        int aligned = b.length & ~7;
        long hash = SEED ^ (b.length * MUL);
        for (int i = 0; i < aligned; i += 8) {
            hash ^= shiftMix(littleEndian(b, i, 8) * MUL) * MUL;
            hash *= MUL;
        }
        if ((b.length & 7) != 0) {
            hash ^= littleEndian(b, aligned, b.length & 7);
            hash *= MUL;
        }
        return shiftMix(shiftMix(hash) * MUL);
    }

    private static long shiftMix(long v) {
        return v ^ (v >>> 47);
    }

    /** {@code n} bytes from {@code from}, the first the least significant. */
    private static long littleEndian(byte[] b, int from, int n) {
        long v = 0;
        for (int i = n - 1; i >= 0; i--) {
            v = (v << 8) | (b[from + i] & 0xffL);
        }
        return v;
    }
}
