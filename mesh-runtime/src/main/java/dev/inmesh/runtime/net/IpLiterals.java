package dev.inmesh.runtime.net;

/**
 * IPv4 and IPv6 address literals: parsed strictly, without ever resolving a name, and printed as iptables and Envoy
 * print them. One parser for the whole project: the listener's prefix ranges, the DNS resolver's "is this already an
 * address", the outbound path's original destination and the capture rules all read addresses through it.
 *
 * <p>IPv4 is the dotted quad of four decimal parts without leading zeros ({@code 010.0.0.1} is refused: some tools
 * read it as octal). IPv6 is eight groups of one to four hex digits, with at most one {@code ::} for a run of zero
 * groups and, at the end, an optional dotted IPv4 part ({@code ::ffff:10.0.0.1}). No brackets, no zone index.
 */
public final class IpLiterals {
    private IpLiterals() {}

    /** The address's bytes (4 or 16), or null when {@code text} is not a literal. */
    public static byte[] parse(String text) {
        if (text == null || text.isEmpty()) {
            return null;
        }
        return text.indexOf(':') >= 0 ? parseIpv6(text) : parseIpv4(text, 0, text.length());
    }

    /** Whether {@code text} is a literal, an IPv6 one also in brackets ({@code [::1]}, as in a Host header). */
    public static boolean isLiteral(String text) {
        return parse(unbracketed(text)) != null;
    }

    /** An IPv6 literal without its brackets; anything else as it is. */
    public static String unbracketed(String text) {
        return text != null && text.length() > 2 && text.charAt(0) == '[' && text.charAt(text.length() - 1) == ']'
                ? text.substring(1, text.length() - 1) : text;
    }

    /** An IPv4-mapped IPv6 address ({@code ::ffff:10.0.0.1}) as its 4 IPv4 bytes; any other address as it is. */
    public static byte[] unmapped(byte[] a) {
        if (a == null || a.length != 16) {
            return a;
        }
        for (int i = 0; i < 10; i++) {
            if (a[i] != 0) {
                return a;
            }
        }
        return a[10] == (byte) 0xff && a[11] == (byte) 0xff ? java.util.Arrays.copyOfRange(a, 12, 16) : a;
    }

    /**
     * IPv4 as a dotted quad; IPv6 in RFC 5952's form: lower case, the longest run of two or more zero groups as ::, an
     * IPv4-mapped address with its dotted quad ({@code ::ffff:10.0.0.1}).
     */
    public static String format(byte[] a) {
        if (a.length == 4) {
            return (a[0] & 0xff) + "." + (a[1] & 0xff) + "." + (a[2] & 0xff) + "." + (a[3] & 0xff);
        }
        if (a.length != 16) {
            throw new IllegalArgumentException("address: " + a.length + " bytes (expected: 4 or 16)");
        }
        if (unmapped(a).length == 4) {
            // RFC 5952 section 5, as inet_ntop (and so Envoy) prints an IPv4-mapped address
            return "::ffff:" + format(unmapped(a));
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
        StringBuilder sb = new StringBuilder(39);
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

    /**
     * {@code ip:port} as Envoy prints a socket address: an IPv6 address in RFC 5952's form and in brackets
     * ({@code [::1]:8080}); an IPv4 address, or text that is no literal, as it is.
     */
    public static String hostPort(String ip, int port) {
        if (ip.indexOf(':') < 0) {
            return ip + ":" + port;
        }
        byte[] a = parse(unbracketed(ip));
        return withPort(a == null ? unbracketed(ip) : format(a), port);
    }

    /** {@code ip:port} of an address already in its printed form ({@link #format}): an IPv6 one in brackets. */
    public static String withPort(String printedIp, int port) {
        return (printedIp.indexOf(':') >= 0 ? "[" + printedIp + "]" : printedIp) + ":" + port;
    }

    /** The dotted quad in {@code s[from, to)}, or null. */
    private static byte[] parseIpv4(String s, int from, int to) {
        byte[] out = new byte[4];
        int part = 0;
        int i = from;
        while (true) {
            int start = i;
            int v = 0;
            while (i < to && i - start < 4) {
                char c = s.charAt(i);
                if (c < '0' || c > '9') {
                    break;
                }
                v = v * 10 + (c - '0');
                i++;
            }
            int digits = i - start;
            if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && s.charAt(start) == '0')) {
                return null;
            }
            out[part++] = (byte) v;
            if (part == 4) {
                return i == to ? out : null;
            }
            if (i >= to || s.charAt(i) != '.') {
                return null;
            }
            i++;
        }
    }

    /** An ASCII hex digit's value, or -1 (Character.digit would take other scripts' digits too). */
    static int hex(char c) {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    }

    private static byte[] parseIpv6(String s) {
        int n = s.length();
        int[] groups = new int[8];
        int count = 0;
        int gap = -1; // the group index where "::" stands
        int i = 0;
        if (s.startsWith("::")) {
            gap = 0;
            i = 2;
            if (i == n) {
                return new byte[16];
            }
        } else if (s.charAt(0) == ':') {
            return null;
        }
        while (i < n) {
            if (count == 8) {
                return null;
            }
            int start = i;
            int v = 0;
            while (i < n && i - start < 5) {
                int d = hex(s.charAt(i));
                if (d < 0) {
                    break;
                }
                v = (v << 4) | d;
                i++;
            }
            if (i < n && s.charAt(i) == '.') {
                // a dotted IPv4 part: the last two groups
                if (count > 6) {
                    return null;
                }
                byte[] v4 = parseIpv4(s, start, n);
                if (v4 == null) {
                    return null;
                }
                groups[count++] = ((v4[0] & 0xff) << 8) | (v4[1] & 0xff);
                groups[count++] = ((v4[2] & 0xff) << 8) | (v4[3] & 0xff);
                i = n;
                break;
            }
            int digits = i - start;
            if (digits == 0 || digits > 4) {
                return null;
            }
            groups[count++] = v;
            if (i == n) {
                break;
            }
            if (s.charAt(i) != ':') {
                return null;
            }
            i++;
            if (i < n && s.charAt(i) == ':') {
                if (gap >= 0) {
                    return null;
                }
                gap = count;
                i++;
                if (i == n) {
                    break;
                }
            } else if (i == n) {
                return null; // a single trailing ':'
            }
        }
        if (gap < 0 ? count != 8 : count > 7) {
            return null;
        }
        byte[] out = new byte[16];
        int tail = gap < 0 ? 0 : count - gap;
        int head = count - tail;
        for (int k = 0; k < head; k++) {
            out[2 * k] = (byte) (groups[k] >> 8);
            out[2 * k + 1] = (byte) groups[k];
        }
        for (int k = 0; k < tail; k++) {
            int at = 8 - tail + k;
            out[2 * at] = (byte) (groups[head + k] >> 8);
            out[2 * at + 1] = (byte) groups[head + k];
        }
        return out;
    }
}
