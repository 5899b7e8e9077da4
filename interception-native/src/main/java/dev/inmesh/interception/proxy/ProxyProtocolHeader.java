package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.ProxyProtocol;
import dev.inmesh.runtime.net.AbslText;
import dev.inmesh.runtime.net.IpLiterals;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * Envoy's PROXY protocol listener filter on the first bytes of a connection: a v1 text line
 * ({@code PROXY TCP4|TCP6|UNKNOWN ...\r\n}) or a v2 binary header (its 12-byte signature, version 2, the LOCAL or
 * PROXY command, AF_INET or AF_INET6 addresses, then TLVs). Pure: the caller feeds the bytes read so far until the
 * answer is final. What is accepted and what is refused is Envoy's, case by case: a PROXY command with AF_UNSPEC (or
 * AF_UNIX) addresses, a TLV running past the header, an address that is not unicast are errors; LOCAL and
 * {@code UNKNOWN} keep the connection's own addresses; each answer names the version the statistics count it under.
 */
final class ProxyProtocolHeader {
    /** The v2 signature. */
    static final byte[] V2_SIGNATURE = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    /** The v1 signature, {@code "PROXY "}. */
    static final byte[] V1_SIGNATURE = "PROXY ".getBytes(StandardCharsets.US_ASCII);
    /** A v2 header's fixed part: signature, version and command, family and transport, length. */
    static final int V2_FIXED = 16;
    /**
     * The longest v1 line Envoy reads, its CRLF included (the specification's 107 bytes, and one more that Envoy's
     * bound lets through).
     */
    static final int V1_MAX = 108;
    /**
     * How far Envoy's filter looks for a v1 line's end: the bytes it peeks at, as many as the longest v2 header
     * without TLVs (one with AF_UNIX addresses).
     */
    private static final int PEEK = V2_FIXED + 216;

    /** Which version's statistics an answer counts in: none when no header was recognised. */
    enum Version { NONE, V1, V2 }

    /** What the first bytes say. */
    sealed interface Result {
    }

    /** More bytes are needed. */
    record NeedMore() implements Result {
    }

    /**
     * No header, and the filter lets such connections through ({@code allow_requests_without_proxy_protocol}): the
     * bytes pass on untouched.
     */
    record NotFound() implements Result {
    }

    /**
     * The connection is closed: a malformed header, or none where one is required ({@code error} counted), or a
     * version the filter disallows ({@code disallowed}).
     *
     * @param version the version the statistics count it under
     * @param disallowed whether the header was well begun but of a disallowed version
     */
    record Rejected(Version version, boolean disallowed) implements Result {
    }

    /**
     * A header of {@code length} bytes, taken off the connection.
     *
     * @param version its version
     * @param length its length, TLVs included
     * @param source the client's address, or null to keep the connection's (LOCAL, {@code UNKNOWN})
     * @param destination the address the client connected to, null with {@code source}
     */
    record Found(Version version, int length, InetSocketAddress source, InetSocketAddress destination)
            implements Result {
    }

    private static final NeedMore NEED_MORE = new NeedMore();

    private ProxyProtocolHeader() {}

    /** Reads the first {@code len} bytes of {@code b} as the filter configured by {@code config} does. */
    static Result read(byte[] b, int len, ProxyProtocol config) {
        if (config.allowRequestsWithoutProxyProtocol()
                && !(config.v2Allowed() && startsLike(b, len, V2_SIGNATURE))
                && !(config.v1Allowed() && startsLike(b, len, V1_SIGNATURE))) {
            // the bytes so far cannot begin an allowed header: passed on as they are
            return new NotFound();
        }
        boolean v2 = len >= V2_FIXED && startsLike(b, len, V2_SIGNATURE);
        if (len >= V2_FIXED && !v2 && !startsLike(b, len, V1_SIGNATURE)) {
            return new Rejected(Version.NONE, false);
        }
        if (v2) {
            return config.v2Allowed() ? v2(b, len) : new Rejected(Version.V2, true);
        }
        // Envoy looks for the CRLF from the second byte on; one there may begin the v2 signature: it waits
        int end = -1;
        for (int i = 1; i < Math.min(len, PEEK); i++) {
            if (b[i] == '\n' && b[i - 1] == '\r') {
                if (i == 1) {
                    return NEED_MORE;
                }
                end = i + 1;
                break;
            }
        }
        if (end < 0) {
            return len > V1_MAX ? new Rejected(Version.NONE, false) : NEED_MORE;
        }
        if (end > V1_MAX) {
            return new Rejected(Version.V1, false);
        }
        if (!config.v1Allowed()) {
            return new Rejected(Version.V1, true);
        }
        return v1(new String(b, 0, end, StandardCharsets.US_ASCII), end);
    }

    /** Whether the first bytes, as many as there are of the signature, are those of {@code signature}. */
    private static boolean startsLike(byte[] b, int len, byte[] signature) {
        int n = Math.min(len, signature.length);
        return Arrays.equals(b, 0, n, signature, 0, n);
    }

    private static Result v2(byte[] b, int len) {
        int versionCommand = b[12] & 0xFF;
        int familyTransport = b[13] & 0xFF;
        int declared = ((b[14] & 0xFF) << 8) | (b[15] & 0xFF);
        Rejected error = new Rejected(Version.V2, false);
        if (versionCommand >> 4 != 2) {
            return error;
        }
        int command = versionCommand & 0x0F;
        int family = familyTransport >> 4;
        int transport = familyTransport & 0x0F;
        int addresses = command == 0 ? 0 : family == 1 ? 12 : family == 2 ? 36 : -1;
        if (addresses < 0 || declared < addresses) {
            // AF_UNSPEC or AF_UNIX with the PROXY command, or addresses longer than the header says
            return error;
        }
        if (command != 0 && (command != 1 || (transport != 1 && transport != 2))) {
            return error;
        }
        int length = V2_FIXED + declared;
        if (len < length) {
            return NEED_MORE;
        }
        if (command == 0) {
            // LOCAL (a health check of the balancer): the real addresses stay, the TLVs are skipped
            return new Found(Version.V2, length, null, null);
        }
        int ipLength = family == 1 ? 4 : 16;
        int at = V2_FIXED;
        InetSocketAddress source = address(Arrays.copyOfRange(b, at, at + ipLength),
                port(b, at + 2 * ipLength));
        InetSocketAddress destination = address(Arrays.copyOfRange(b, at + ipLength, at + 2 * ipLength),
                port(b, at + 2 * ipLength + 2));
        if (!tlvsFit(b, V2_FIXED + addresses, length) || !unicast(source) || !unicast(destination)) {
            return error;
        }
        return new Found(Version.V2, length, source, destination);
    }

    private static int port(byte[] b, int at) {
        return ((b[at] & 0xFF) << 8) | (b[at + 1] & 0xFF);
    }

    /** Whether the TLVs from {@code from} to {@code to} are each a type, a length and that many bytes. */
    private static boolean tlvsFit(byte[] b, int from, int to) {
        int i = from;
        while (i < to) {
            if (i + 3 > to) {
                return false;
            }
            int valueLength = ((b[i + 1] & 0xFF) << 8) | (b[i + 2] & 0xFF);
            i += 3 + valueLength;
            if (i > to) {
                return false;
            }
        }
        return true;
    }

    /** A v1 line of {@code length} bytes, its CRLF included. */
    private static Result v1(String line, int length) {
        Rejected error = new Rejected(Version.V1, false);
        // as Envoy: trailing white space off (StringUtil::rtrim's), then split on single spaces (two spaces make an
        // empty part)
        int end = line.length();
        while (end > 0 && AbslText.isSpace(line.charAt(end - 1))) {
            end--;
        }
        List<String> parts = Arrays.asList(line.substring(0, end).split(" ", -1));
        if (parts.size() < 2 || !parts.get(0).equals("PROXY")) {
            return error;
        }
        if (parts.get(1).equals("UNKNOWN")) {
            return new Found(Version.V1, length, null, null);
        }
        if (parts.size() != 6 || !(parts.get(1).equals("TCP4") || parts.get(1).equals("TCP6"))) {
            return error;
        }
        boolean v4 = parts.get(1).equals("TCP4");
        byte[] sourceIp = literal(parts.get(2), v4);
        byte[] destinationIp = literal(parts.get(3), v4);
        int sourcePort = decimalPort(parts.get(4));
        int destinationPort = decimalPort(parts.get(5));
        if (sourceIp == null || destinationIp == null || sourcePort < 0 || destinationPort < 0) {
            return error;
        }
        InetSocketAddress source = address(sourceIp, sourcePort);
        InetSocketAddress destination = address(destinationIp, destinationPort);
        if (!unicast(source) || !unicast(destination)) {
            return error;
        }
        return new Found(Version.V1, length, source, destination);
    }

    /**
     * An address of the family the line names, as {@code inet_pton} reads one (Envoy's address parser calls it for
     * an address without a scope): the project's strict literal parser ({@link IpLiterals}), which never looks a
     * name up, as {@code InetAddress.getByName} would on the event loop; null for anything else.
     */
    private static byte[] literal(String s, boolean v4) {
        byte[] a = IpLiterals.parse(s);
        return a != null && a.length == (v4 ? 4 : 16) ? a : null;
    }

    /**
     * A port, 0 to 65535, or -1, as Envoy's address parser reads one with {@code absl::SimpleAtoi} into an unsigned
     * integer ({@link AbslText#unsigned}): white space around it, a {@code +} and leading zeros pass.
     */
    private static int decimalPort(String s) {
        return (int) AbslText.unsigned(s, 65535);
    }

    private static InetSocketAddress address(byte[] ip, int port) {
        try {
            return new InetSocketAddress(InetAddress.getByAddress(ip), port);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("an address of 4 or 16 bytes", e);
        }
    }

    /** As Envoy requires of both addresses: neither the any address, nor multicast, nor IPv4 broadcast. */
    private static boolean unicast(InetSocketAddress a) {
        InetAddress ip = a.getAddress();
        byte[] raw = ip.getAddress();
        boolean broadcast = raw.length == 4 && (raw[0] & raw[1] & raw[2] & raw[3]) == (byte) 0xFF;
        return !ip.isAnyLocalAddress() && !ip.isMulticastAddress() && !broadcast;
    }
}
