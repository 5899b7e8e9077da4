package dev.inmesh.runtime.net;

import java.util.ArrayList;
import java.util.List;

/**
 * The cause chain of a failure, as the code that names a failure reads it (a connect's, a TLS handshake's): the
 * failure itself, then its causes, at most {@link #MAX_DEPTH} and each once, so that a chain that leads back into
 * itself (which {@link Throwable#initCause} allows past one link) cannot hold an event loop.
 */
public final class Causes {
    /** How deep a chain is read: Netty's and Vert.x's connect failures wrap the socket's error two or three deep. */
    public static final int MAX_DEPTH = 8;

    private Causes() {}

    /** {@code failure} and its causes, outermost first; empty for null. */
    public static List<Throwable> of(Throwable failure) {
        List<Throwable> chain = new ArrayList<>(4);
        for (Throwable t = failure; t != null && chain.size() < MAX_DEPTH && !seen(chain, t); t = t.getCause()) {
            chain.add(t);
        }
        return chain;
    }

    private static boolean seen(List<Throwable> chain, Throwable t) {
        for (Throwable c : chain) {
            if (c == t) {
                return true;
            }
        }
        return false;
    }
}
