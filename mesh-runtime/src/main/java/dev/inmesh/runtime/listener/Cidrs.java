package dev.inmesh.runtime.listener;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.runtime.net.IpLiterals;

/** Address prefix checks on literal IPv4 and IPv6 addresses (no name resolution). */
public final class Cidrs {
    private Cidrs() {}

    /**
     * The raw bytes of a literal address (an IPv6 one may be in brackets), or null when it is not a literal. An
     * IPv4-mapped IPv6 address ({@code ::ffff:10.0.0.1}) gives its IPv4 bytes, as Java's sockets report such a peer.
     */
    public static byte[] bytes(String ip) {
        return IpLiterals.unmapped(IpLiterals.parse(IpLiterals.unbracketed(ip)));
    }

    /** Whether {@code ip} lies in {@code range}. */
    public static boolean contains(CidrRange range, byte[] ip) {
        return contains(bytes(range.addressPrefix()), range.prefixLen(), ip);
    }

    /** Whether {@code ip} lies in the range of the network address {@code net} (its bytes) and {@code prefixLen}. */
    public static boolean contains(byte[] net, int prefixLen, byte[] ip) {
        if (net == null || ip == null || net.length != ip.length) {
            return false;
        }
        int bits = prefixLen;
        for (int i = 0; i < net.length && bits > 0; i++, bits -= 8) {
            int mask = bits >= 8 ? 0xFF : (0xFF << (8 - bits)) & 0xFF;
            if ((net[i] & mask) != (ip[i] & mask)) {
                return false;
            }
        }
        return true;
    }
}
