package dev.inmesh.interception.rules;

import dev.inmesh.runtime.net.IpLiterals;
import java.util.Objects;

/**
 * An address range in CIDR form, as iptables prints it: the address as written (IPv6 in its RFC 5952 short form) and
 * the prefix length. Parsing accepts literals only; it never resolves a name.
 */
public record Cidr(IpFamily family, byte[] address, int prefixLength) {

    public Cidr {
        Objects.requireNonNull(family, "family");
        Objects.requireNonNull(address, "address");
        int bits = family == IpFamily.V4 ? 32 : 128;
        if (address.length != bits / 8) {
            throw new IllegalArgumentException("address: " + address.length + " bytes (expected: " + bits / 8 + ")");
        }
        if (prefixLength < 0 || prefixLength > bits) {
            throw new IllegalArgumentException("prefix length: " + prefixLength + " (expected: 0.." + bits + ")");
        }
        address = address.clone();
    }

    /**
     * Parses {@code 10.0.0.0/8} or {@code 2001:db8::/32}.
     *
     * @param flag names the flag in the error message
     */
    public static Cidr parse(String flag, String text) {
        int slash = text.indexOf('/');
        String expected = " (expected: an IPv4 or IPv6 range in CIDR form, like 10.0.0.0/8)";
        if (slash < 0) {
            throw new IllegalArgumentException(flag + ": " + text + expected);
        }
        String addressText = text.substring(0, slash);
        String prefixText = text.substring(slash + 1);
        byte[] address = IpLiterals.parse(addressText);
        if (address == null || !isDecimal(prefixText) || prefixText.length() > 3) {
            throw new IllegalArgumentException(flag + ": " + text + expected);
        }
        IpFamily family = address.length == 4 ? IpFamily.V4 : IpFamily.V6;
        int prefix = Integer.parseInt(prefixText);
        if (prefix > address.length * 8) {
            throw new IllegalArgumentException(flag + ": " + text + expected);
        }
        return new Cidr(family, address, prefix);
    }

    /** True when the text is an IPv4 address literal (dotted quad). */
    public static boolean isIpv4Literal(String text) {
        byte[] address = IpLiterals.parse(text);
        return address != null && address.length == 4;
    }

    /** True when the text is an IPv6 address literal. */
    public static boolean isIpv6Literal(String text) {
        byte[] address = IpLiterals.parse(text);
        return address != null && address.length == 16;
    }

    /** True for 127.0.0.0/8 addresses and for ::1. */
    public boolean isLoopback() {
        if (family == IpFamily.V4) {
            return (address[0] & 0xff) == 127;
        }
        for (int i = 0; i < 15; i++) {
            if (address[i] != 0) {
                return false;
            }
        }
        return address[15] == 1;
    }

    @Override
    public byte[] address() {
        return address.clone();
    }

    @Override
    public String toString() {
        return IpLiterals.format(address) + "/" + prefixLength;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Cidr other
                && family == other.family
                && prefixLength == other.prefixLength
                && java.util.Arrays.equals(address, other.address);
    }

    @Override
    public int hashCode() {
        return Objects.hash(family, prefixLength, java.util.Arrays.hashCode(address));
    }

    private static boolean isDecimal(String s) {
        return !s.isEmpty() && s.chars().allMatch(c -> c >= '0' && c <= '9');
    }
}
