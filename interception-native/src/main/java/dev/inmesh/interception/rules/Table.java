package dev.inmesh.interception.rules;

import java.util.Locale;

/** The iptables tables the generator writes to, in the order iptables-restore input lists them (by name). */
public enum Table {
    FILTER,
    MANGLE,
    NAT,
    RAW;

    /** The table's name as iptables spells it. */
    public String iptablesName() {
        return name().toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
        return iptablesName();
    }
}
