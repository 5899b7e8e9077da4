package dev.inmesh.runtime.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import dev.inmesh.runtime.tls.DownstreamTls;
import dev.inmesh.runtime.tls.HandshakeFailure;
import dev.inmesh.runtime.upstream.ConnectFailure;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class CausesTest {
    /** Two failures each the other's cause: {@link Throwable#initCause} refuses only a failure its own cause. */
    private static IOException cycle() {
        IOException outer = new IOException("outer");
        IOException inner = new IOException("inner");
        outer.initCause(inner);
        inner.initCause(outer);
        return outer;
    }

    @Test
    void aChainIsReadOutermostFirstEachFailureOnceAndAtMostEightDeep() {
        IOException cycle = cycle();
        assertEquals(List.of(cycle, cycle.getCause()), Causes.of(cycle));
        Exception deep = new IOException("0");
        for (int i = 1; i < 20; i++) {
            deep = new RuntimeException(String.valueOf(i), deep);
        }
        List<Throwable> chain = Causes.of(deep);
        assertEquals(Causes.MAX_DEPTH, chain.size());
        assertEquals("19", chain.get(0).getMessage());
        assertEquals(List.of(), Causes.of(null));
    }

    /** Each reader of a failure's causes ends on a chain that leads back into itself (before, some never did). */
    @Test
    void theFailureNamersEndOnACycle() {
        IOException cycle = cycle();
        assertTimeoutPreemptively(Duration.ofSeconds(5), () -> {
            assertNull(DownstreamTls.failure(cycle), "no TLS error in it");
            assertNull(HandshakeFailure.of(cycle));
            assertEquals("connection failure", ConnectFailure.of(cycle).reason());
        });
    }
}
