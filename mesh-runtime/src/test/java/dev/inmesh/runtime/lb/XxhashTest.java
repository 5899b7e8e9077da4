package dev.inmesh.runtime.lb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.junit.jupiter.api.Test;

class XxhashTest {

    @Test
    void hashesFooToEnvoysValue() {
        assertEquals(3728699739546630719L, Xxhash.hash64("foo"));
    }

    @Test
    void aSeedChangesTheHash() {
        assertNotEquals(Xxhash.hash64("foo"), Xxhash.hash64("foo", 1));
        assertEquals(Xxhash.hash64("foo"), Xxhash.hash64("foo", 0));
    }
}
