package dev.inmesh.interception.rules;

/**
 * How inbound connections reach the inbound capture port. {@code REDIRECT} rewrites the destination in the nat table
 * (the listener recovers it with SO_ORIGINAL_DST); {@code TPROXY} leaves the packet untouched, marks it in the mangle
 * table and routes it to the local listener, which sees the original destination as its local address.
 */
public enum InterceptionMode {
    REDIRECT,
    TPROXY;

    /** Parses Istio's spelling ({@code REDIRECT} or {@code TPROXY}); an empty value means {@code REDIRECT}. */
    public static InterceptionMode parse(String flag, String value) {
        if (value == null || value.isEmpty()) {
            return REDIRECT;
        }
        for (InterceptionMode mode : values()) {
            if (mode.name().equals(value)) {
                return mode;
            }
        }
        throw new IllegalArgumentException(flag + ": " + value + " (expected: REDIRECT or TPROXY)");
    }
}
