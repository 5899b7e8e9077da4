package dev.inmesh.runtime.lb;

import java.nio.charset.StandardCharsets;
import net.openhft.hashing.LongHashFunction;

/** xxHash64, as Envoy uses it for ring hash, Maglev and hash policies: over UTF-8 bytes, seed 0 unless given. */
public final class Xxhash {
    private static final LongHashFunction SEED_0 = LongHashFunction.xx(0);

    private Xxhash() {}

    /** xxHash64 of the UTF-8 bytes of {@code s} with seed 0; {@code hash64("foo") == 3728699739546630719L}. */
    public static long hash64(String s) {
        return SEED_0.hashBytes(s.getBytes(StandardCharsets.UTF_8));
    }

    /** xxHash64 of the UTF-8 bytes of {@code s} with a seed. */
    public static long hash64(String s, long seed) {
        return seed == 0 ? hash64(s) : LongHashFunction.xx(seed).hashBytes(s.getBytes(StandardCharsets.UTF_8));
    }
}
