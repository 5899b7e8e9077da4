package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.Test;

class RequestIdsTest {
    @Test
    void requestIdsAreVersionFourUuidsOfTheIetfVariant() {
        for (int i = 0; i < 1000; i++) {
            UUID u = UUID.fromString(RequestIds.next());
            assertEquals(4, u.version());
            assertEquals(2, u.variant());
        }
    }

    @Test
    void requestIdsDoNotRepeat() {
        Set<String> seen = new HashSet<>();
        for (int i = 0; i < 100_000; i++) {
            assertTrue(seen.add(RequestIds.next()));
        }
    }
}
