package dev.inmesh.interception.rules;

import java.util.Locale;
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
        byte[] address = parseAddress(addressText);
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
        byte[] address = parseAddress(text);
        return address != null && address.length == 4;
    }

    /** True when the text is an IPv6 address literal. */
    public static boolean isIpv6Literal(String text) {
        byte[] address = parseAddress(text);
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
        return formatAddress(address) + "/" + prefixLength;
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

    /** Parses an IPv4 or IPv6 literal; null when it is neither. */
    static byte[] parseAddress(String text) {
        if (text.indexOf(':') >= 0) {
            return parseIpv6(text);
        }
        return parseIpv4(text);
    }

    private static byte[] parseIpv4(String text) {
        String[] parts = text.split("\\.", -1);
        if (parts.length != 4) {
            return null;
        }
        byte[] out = new byte[4];
        for (int i = 0; i < 4; i++) {
            String p = parts[i];
            if (!isDecimal(p) || p.length() > 3 || (p.length() > 1 && p.charAt(0) == '0')) {
                return null;
            }
            int v = Integer.parseInt(p);
            if (v > 255) {
                return null;
            }
            out[i] = (byte) v;
        }
        return out;
    }

    private static byte[] parseIpv6(String text) {
        String s = text.toLowerCase(Locale.ROOT);
        int doubleColon = s.indexOf("::");
        if (doubleColon >= 0 && s.indexOf("::", doubleColon + 1) >= 0) {
            return null;
        }
        String head = doubleColon >= 0 ? s.substring(0, doubleColon) : s;
        String tail = doubleColon >= 0 ? s.substring(doubleColon + 2) : "";
        int[] headGroups = groups(head, doubleColon < 0);
        int[] tailGroups = doubleColon >= 0 ? groups(tail, true) : new int[0];
        if (headGroups == null || tailGroups == null) {
            return null;
        }
        int total = headGroups.length + tailGroups.length;
        if (doubleColon < 0 ? total != 8 : total > 7) {
            return null;
        }
        byte[] out = new byte[16];
        for (int i = 0; i < headGroups.length; i++) {
            out[2 * i] = (byte) (headGroups[i] >> 8);
            out[2 * i + 1] = (byte) headGroups[i];
        }
        int offset = 8 - tailGroups.length;
        for (int i = 0; i < tailGroups.length; i++) {
            out[2 * (offset + i)] = (byte) (tailGroups[i] >> 8);
            out[2 * (offset + i) + 1] = (byte) tailGroups[i];
        }
        return out;
    }

    /** Groups of 16 bits; the last one may be a dotted IPv4 address (two groups) when allowed. */
    private static int[] groups(String part, boolean mayEndInIpv4) {
        if (part.isEmpty()) {
            return new int[0];
        }
        String[] items = part.split(":", -1);
        java.util.List<Integer> out = new java.util.ArrayList<>();
        for (int i = 0; i < items.length; i++) {
            String item = items[i];
            if (i == items.length - 1 && item.indexOf('.') >= 0) {
                byte[] v4 = mayEndInIpv4 ? parseIpv4(item) : null;
                if (v4 == null) {
                    return null;
                }
                out.add(((v4[0] & 0xff) << 8) | (v4[1] & 0xff));
                out.add(((v4[2] & 0xff) << 8) | (v4[3] & 0xff));
                continue;
            }
            if (item.isEmpty() || item.length() > 4 || !item.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                return null;
            }
            out.add(Integer.parseInt(item, 16));
        }
        return out.stream().mapToInt(Integer::intValue).toArray();
    }

    private static boolean isDecimal(String s) {
        return !s.isEmpty() && s.chars().allMatch(c -> c >= '0' && c <= '9');
    }

    /** IPv4 dotted quad; IPv6 in RFC 5952 form (lower case, the longest run of zero groups shortened to ::). */
    static String formatAddress(byte[] a) {
        if (a.length == 4) {
            return (a[0] & 0xff) + "." + (a[1] & 0xff) + "." + (a[2] & 0xff) + "." + (a[3] & 0xff);
        }
        int[] g = new int[8];
        for (int i = 0; i < 8; i++) {
            g[i] = ((a[2 * i] & 0xff) << 8) | (a[2 * i + 1] & 0xff);
        }
        int bestStart = -1;
        int bestLen = 1;
        for (int i = 0; i < 8; ) {
            if (g[i] != 0) {
                i++;
                continue;
            }
            int j = i;
            while (j < 8 && g[j] == 0) {
                j++;
            }
            if (j - i > bestLen) {
                bestStart = i;
                bestLen = j - i;
            }
            i = j;
        }
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                sb.append("::");
                i += bestLen - 1;
                continue;
            }
            if (sb.length() > 0 && sb.charAt(sb.length() - 1) != ':') {
                sb.append(':');
            }
            sb.append(Integer.toHexString(g[i]));
        }
        return sb.toString();
    }
}
