package dev.inmesh.runtime.net;

/**
 * Why a socket could not be bound, in the words Envoy prints after {@code cannot bind 'ADDRESS': } (the caller names
 * the address): the system's reason, such as {@code Address already in use}, whichever transport failed.
 */
public final class BindFailures {
    private BindFailures() {}

    /** {@code e}'s reason, without the native transports' {@code bind(..) failed with error(-98): } prefix. */
    public static String reason(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return m.replaceFirst("^bind\\(\\.\\.\\) failed with error\\(-?\\d+\\): ", "");
    }
}
