package dev.inmesh.runtime.listener;

import dev.inmesh.api.config.core.CidrRange;
import java.net.InetAddress;
import java.net.UnknownHostException;

/** Address prefix checks on literal IPv4 and IPv6 addresses (no name resolution). */
final class Cidrs {
    private Cidrs() {}

    /** The raw bytes of a literal address, or null when it is not a literal. */
    static byte[] bytes(String ip) {
        if (ip == null || ip.isEmpty()) {
            return null;
        }
        char c = ip.charAt(0);
        if (!(Character.isDigit(c) || c == ':' || c == '[' || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return null;
        }
        if (ip.indexOf(':') < 0 && !digitsAndDots(ip)) {
            return null;
        }
        try {
            String literal = ip.startsWith("[") && ip.endsWith("]") ? ip.substring(1, ip.length() - 1) : ip;
            return InetAddress.getByName(literal).getAddress();
        } catch (UnknownHostException e) {
            return null;
        }
    }

    /** Whether {@code ip} lies in {@code range}. */
    static boolean contains(CidrRange range, byte[] ip) {
        byte[] net = bytes(range.addressPrefix());
        if (net == null || ip == null || net.length != ip.length) {
            return false;
        }
        int bits = range.prefixLen();
        for (int i = 0; i < net.length && bits > 0; i++, bits -= 8) {
            int mask = bits >= 8 ? 0xFF : (0xFF << (8 - bits)) & 0xFF;
            if ((net[i] & mask) != (ip[i] & mask)) {
                return false;
            }
        }
        return true;
    }

    private static boolean digitsAndDots(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != '.' && (c < '0' || c > '9')) {
                return false;
            }
        }
        return true;
    }
}
