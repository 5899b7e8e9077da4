package dev.inmesh.interception.rules;

/** The two address families iptables keeps separate tables for. */
public enum IpFamily {
    V4("iptables"),
    V6("ip6tables");

    private final String iptablesBinary;

    IpFamily(String iptablesBinary) {
        this.iptablesBinary = iptablesBinary;
    }

    /** {@code iptables} or {@code ip6tables}. */
    public String iptables() {
        return iptablesBinary;
    }

    /** {@code iptables-restore} or {@code ip6tables-restore}. */
    public String iptablesRestore() {
        return iptablesBinary + "-restore";
    }

    /** {@code iptables-save} or {@code ip6tables-save}. */
    public String iptablesSave() {
        return iptablesBinary + "-save";
    }

    /** The family switch of {@code ip}: {@code inet} or {@code inet6}. */
    public String ipFamilyName() {
        return this == V4 ? "inet" : "inet6";
    }
}
