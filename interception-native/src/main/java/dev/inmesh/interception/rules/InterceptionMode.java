package dev.inmesh.interception.rules;

/**
 * How inbound connections reach the inbound capture port. {@code REDIRECT} rewrites the destination in the nat table
 * (the listener recovers it with SO_ORIGINAL_DST); {@code TPROXY} leaves the packet untouched, marks it in the mangle
 * table and routes it to the local listener, which sees the original destination as its local address.
 */
public enum InterceptionMode {
    REDIRECT,
    TPROXY;

    /**
     * Reads the mode as istio-iptables does: {@code TPROXY} is TPROXY, anything else (empty, {@code REDIRECT}, a
     * typo, {@code tproxy}) is REDIRECT.
     */
    public static InterceptionMode parse(String value) {
        return TPROXY.name().equals(value) ? TPROXY : REDIRECT;
    }

    /** True for the spellings istio-iptables documents: empty, {@code REDIRECT} and {@code TPROXY}. */
    public static boolean isKnown(String value) {
        return value == null || value.isEmpty() || value.equals(REDIRECT.name()) || value.equals(TPROXY.name());
    }
}
