package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.api.config.listener.ProxyProtocol;
import dev.inmesh.interception.proxy.ProxyProtocolHeader.Found;
import dev.inmesh.interception.proxy.ProxyProtocolHeader.NeedMore;
import dev.inmesh.interception.proxy.ProxyProtocolHeader.NotFound;
import dev.inmesh.interception.proxy.ProxyProtocolHeader.Rejected;
import dev.inmesh.interception.proxy.ProxyProtocolHeader.Version;
import java.io.ByteArrayOutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The PROXY header as Envoy's proxy_protocol listener filter reads it, each case as Envoy decides it. */
class ProxyProtocolHeaderTest {
    private static final ProxyProtocol REQUIRED = ProxyProtocol.DEFAULT;
    private static final ProxyProtocol OPTIONAL = new ProxyProtocol(true, true, true, "");

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static ProxyProtocolHeader.Result read(byte[] b, ProxyProtocol config) {
        return ProxyProtocolHeader.read(b, b.length, config);
    }

    /** A v2 header: version 2, this command, family and transport, these address bytes and TLVs. */
    static byte[] v2(int command, int familyTransport, byte[] addresses, byte[] tlvs) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ProxyProtocolHeader.V2_SIGNATURE);
        out.write(0x20 | command);
        out.write(familyTransport);
        int length = addresses.length + tlvs.length;
        out.write(length >> 8);
        out.write(length & 0xFF);
        out.writeBytes(addresses);
        out.writeBytes(tlvs);
        return out.toByteArray();
    }

    /** IPv4 addresses and ports of a v2 header: source, destination, source port, destination port. */
    static byte[] ipv4(int[] src, int[] dst, int srcPort, int dstPort) {
        byte[] a = new byte[12];
        for (int i = 0; i < 4; i++) {
            a[i] = (byte) src[i];
            a[4 + i] = (byte) dst[i];
        }
        a[8] = (byte) (srcPort >> 8);
        a[9] = (byte) srcPort;
        a[10] = (byte) (dstPort >> 8);
        a[11] = (byte) dstPort;
        return a;
    }

    @Test
    void aV1LineGivesItsSourceAndDestinationAndItsLength() {
        byte[] b = ascii("PROXY TCP4 203.0.113.7 198.51.100.1 51234 443\r\nGET / HTTP/1.1\r\n");
        Found f = assertInstanceOf(Found.class, read(b, REQUIRED));
        assertEquals(Version.V1, f.version());
        assertEquals(47, f.length());
        assertEquals(new InetSocketAddress("203.0.113.7", 51234), f.source());
        assertEquals(new InetSocketAddress("198.51.100.1", 443), f.destination());

        Found six = assertInstanceOf(Found.class, read(ascii("PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n"),
                REQUIRED));
        assertEquals(new InetSocketAddress("2001:db8::7", 1), six.source());
    }

    @Test
    void aV1LineComesInPiecesAndUnknownKeepsTheRealAddresses() {
        assertInstanceOf(NeedMore.class, read(ascii("PROX"), REQUIRED));
        assertInstanceOf(NeedMore.class, read(ascii("PROXY TCP4 203.0.113.7 198.51.100.1 1 2\r"), REQUIRED));
        Found unknown = assertInstanceOf(Found.class, read(ascii("PROXY UNKNOWN whatever\r\n"), REQUIRED));
        assertNull(unknown.source());
        assertEquals(24, unknown.length());
    }

    @Test
    void malformedV1LinesAreErrorsOfV1() {
        for (String line : new String[] {"PROXY TCP4 203.0.113.7 198.51.100.1 1\r\n",
            "PROXY TCP4 203.0.113.7  198.51.100.1 1 2\r\n", "PROXY TCP4 2001:db8::7 198.51.100.1 1 2\r\n",
            "PROXY TCP4 203.0.113.7 198.51.100.1 1 65536\r\n", "PROXY TCP6 203.0.113.7 2001:db8::1 1 2\r\n",
            "PROXY TCP4 0.0.0.0 198.51.100.1 1 2\r\n", "PROXY TCP4 203.0.113.7 224.0.0.1 1 2\r\n",
            "PROXY UDP4 203.0.113.7 198.51.100.1 1 2\r\n", "PROXY TCP4 203.0.113.07 198.51.100.1 1 2\r\n"}) {
            assertEquals(new Rejected(Version.V1, false), read(ascii(line), REQUIRED), line);
        }
    }

    /**
     * TCP6 addresses as inet_pton reads them (Envoy's parser for an address without a scope): the forms it takes
     * give their bytes; a group of five digits, a leading zero in an embedded quad, a :: that stands for no group,
     * a lone colon at either end and a string that is not a literal are errors (InetAddress took the first two and
     * looked the last up as a host name).
     */
    @Test
    void tcp6AddressesAreReadAsInetPtonReadsThem() {
        String[][] good = {{"::1", "0:0:0:0:0:0:0:1"}, {"2001:DB8::", "2001:db8:0:0:0:0:0:0"},
            {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"}, {"1::8", "1:0:0:0:0:0:0:8"}, {"::1:2:3:4:5:6:7", "0:1:2:3:4:5:6:7"},
            {"64:ff9b::203.0.113.7", "64:ff9b:0:0:0:0:cb00:7107"}, {"::ffff:203.0.113.7", "203.0.113.7"}};
        for (String[] g : good) {
            Found f = assertInstanceOf(Found.class, read(ascii("PROXY TCP6 " + g[0] + " 2001:db8::1 1 2\r\n"),
                    REQUIRED), g[0]);
            assertEquals(g[1], f.source().getAddress().getHostAddress(), g[0]);
        }
        for (String bad : new String[] {"0::00001", "::203.0.113.07", "1:2:3:4::5:6:7:8", "1:2:3:4:5:6:7:8:9",
            ":1::2", "1::2:", "1:::2", "1::2::3", "::203.0.113", "1:2:3:4:5:6:7:203.0.113.7", ".::1", "fe80::1%1",
            "[::1]", "1:2:3:4:5:6:7"}) {
            assertEquals(new Rejected(Version.V1, false), read(ascii("PROXY TCP6 " + bad + " 2001:db8::1 1 2\r\n"),
                    REQUIRED), bad);
        }
    }

    /**
     * Ports as Envoy's address parser reads them, with absl's SimpleAtoi into an unsigned integer: ASCII white space
     * around the digits (tab, vertical tab, form feed: a space splits the line) and a {@code +} are skipped and any
     * number of leading zeros taken; a {@code -}, a hexadecimal or empty port, or one past 65535 is an error.
     */
    @Test
    void v1PortsAreReadAsEnvoysSimpleAtoiReadsThem() {
        String[][] good = {{"+51234", "51234"}, {"051234", "51234"}, {"0000000000000000000000051234", "51234"},
            {"\t51234", "51234"}, {"51234\u000B", "51234"}, {"\f+51234\t", "51234"}, {"0", "0"}, {"65535", "65535"}};
        for (String[] g : good) {
            for (String family : new String[] {"TCP4 203.0.113.7 198.51.100.1", "TCP6 2001:db8::7 2001:db8::1"}) {
                String line = "PROXY " + family + " " + g[0] + " 443\r\n";
                Found f = assertInstanceOf(Found.class, read(ascii(line), REQUIRED), line);
                assertEquals(Integer.parseInt(g[1]), f.source().getPort(), line);
            }
        }
        for (String bad : new String[] {"-51234", "-0", "+", "+-1", "\t", "65536", "0065536", "0x50", "5_1",
            "99999999999999999999999", "51234\u001F", "\u001F51234", "+ 1"}) {
            for (String family : new String[] {"TCP4 203.0.113.7 198.51.100.1", "TCP6 2001:db8::7 2001:db8::1"}) {
                String line = "PROXY " + family + " " + bad + " 443\r\n";
                assertEquals(new Rejected(Version.V1, false), read(ascii(line), REQUIRED), line);
            }
        }
        // the line's end loses Envoy's white space (StringUtil::rtrim), no other control character
        assertInstanceOf(Found.class, read(ascii("PROXY TCP4 203.0.113.7 198.51.100.1 1 2\t\f\r\n"), REQUIRED));
        assertEquals(new Rejected(Version.V1, false),
                read(ascii("PROXY TCP4 203.0.113.7 198.51.100.1 1 2\u001F\r\n"), REQUIRED));
    }

    /**
     * TCP4 addresses as inet_pton(AF_INET) reads them (Envoy parses {@code ip:port} of a TCP4 line as IPv4 only): a
     * dotted quad without leading zeros; an IPv4-mapped IPv6 address, a short or long quad, white space are errors.
     */
    @Test
    void tcp4AddressesAreDottedQuadsOnly() {
        for (String bad : new String[] {"::ffff:203.0.113.7", "::203.0.113.7", "01.2.3.4", "203.0.113", "203.0.113.7.1",
            "203.0.113.256", "\t203.0.113.7", "203.0.113.7\t", "0x7f.0.0.1", "2130706433"}) {
            String line = "PROXY TCP4 " + bad + " 198.51.100.1 1 2\r\n";
            assertEquals(new Rejected(Version.V1, false), read(ascii(line), REQUIRED), line);
        }
        Found f = assertInstanceOf(Found.class, read(ascii("PROXY TCP4 0.2.3.4 198.51.100.1 1 2\r\n"), REQUIRED));
        assertEquals("0.2.3.4", f.source().getAddress().getHostAddress());
    }

    @Test
    void aV1LineLongerThanEnvoyReadsIsAnError() {
        String longest = "PROXY UNKNOWN " + "x".repeat(108 - 16) + "\r\n";
        assertInstanceOf(Found.class, read(ascii(longest), REQUIRED));
        assertEquals(new Rejected(Version.V1, false), read(ascii("PROXY UNKNOWN x" + longest.substring(14)),
                REQUIRED));
        assertEquals(new Rejected(Version.NONE, false), read(ascii("PROXY UNKNOWN " + "x".repeat(300)), REQUIRED));
    }

    @Test
    void aV2HeaderGivesItsAddressesAndSkipsItsTlvs() {
        byte[] tlv = {0x04, 0x00, 0x02, 'n', 'o'};
        byte[] h = v2(1, 0x11, ipv4(new int[] {203, 0, 113, 7}, new int[] {198, 51, 100, 1}, 51234, 443), tlv);
        Found f = assertInstanceOf(Found.class, read(h, REQUIRED));
        assertEquals(Version.V2, f.version());
        assertEquals(16 + 12 + 5, f.length());
        assertEquals(new InetSocketAddress("203.0.113.7", 51234), f.source());
        assertEquals(new InetSocketAddress("198.51.100.1", 443), f.destination());
        // the header less its last byte: more is needed
        assertInstanceOf(NeedMore.class, ProxyProtocolHeader.read(h, h.length - 1, REQUIRED));
        assertInstanceOf(NeedMore.class, ProxyProtocolHeader.read(h, 15, REQUIRED));
    }

    @Test
    void aV2Ipv6HeaderAndALocalOne() {
        byte[] a = new byte[36];
        a[0] = 0x20;
        a[1] = 0x01;
        a[15] = 7;
        a[16] = 0x20;
        a[17] = 0x01;
        a[31] = 1;
        a[33] = 80;
        a[35] = (byte) 443;
        Found f = assertInstanceOf(Found.class, read(v2(1, 0x21, a, new byte[0]), REQUIRED));
        assertEquals(new InetSocketAddress("2001::7", 80), f.source());
        // LOCAL: the balancer's own health check, whatever family it names; the real addresses stay
        Found local = assertInstanceOf(Found.class, read(v2(0, 0x00, new byte[0], new byte[0]), REQUIRED));
        assertNull(local.source());
        assertEquals(16, local.length());
    }

    @Test
    void malformedV2HeadersAreErrorsOfV2() {
        byte[] v4 = ipv4(new int[] {203, 0, 113, 7}, new int[] {198, 51, 100, 1}, 1, 2);
        // AF_UNSPEC with the PROXY command, AF_UNIX, a command past PROXY, an unspecified transport, addresses
        // longer than the header, a TLV running past it, a multicast source
        byte[][] bad = {v2(1, 0x00, new byte[0], new byte[0]), v2(1, 0x31, new byte[216], new byte[0]),
            v2(2, 0x11, v4, new byte[0]), v2(1, 0x10, v4, new byte[0]), v2(1, 0x11, new byte[8], new byte[0]),
            v2(1, 0x11, v4, new byte[] {0x04, 0x00, 0x09, 'x'}),
            v2(1, 0x11, ipv4(new int[] {239, 1, 1, 1}, new int[] {198, 51, 100, 1}, 1, 2), new byte[0])};
        for (byte[] h : bad) {
            assertEquals(new Rejected(Version.V2, false), read(h, REQUIRED));
        }
        byte[] version1 = v2(1, 0x11, v4, new byte[0]);
        version1[12] = 0x11;
        assertEquals(new Rejected(Version.V2, false), read(version1, REQUIRED));
    }

    @Test
    void withoutAHeaderTheConnectionIsRefusedUnlessTheFilterAllowsIt() {
        byte[] http = ascii("GET / HTTP/1.1\r\nhost: svc\r\n\r\n");
        assertEquals(new Rejected(Version.NONE, false), read(http, REQUIRED));
        assertInstanceOf(NotFound.class, read(http, OPTIONAL));
        // what could still become a header waits, as Envoy's does
        assertInstanceOf(NeedMore.class, read(ascii("PRO"), OPTIONAL));
        assertInstanceOf(NeedMore.class, read(new byte[] {0x0D, 0x0A, 0x0D}, OPTIONAL));
    }

    @Test
    void aDisallowedVersionIsRejectedOrWithAllowRequestsWithoutProxyProtocolPassesOnAsItIs() {
        byte[] h = v2(1, 0x11, ipv4(new int[] {203, 0, 113, 7}, new int[] {198, 51, 100, 1}, 1, 2), new byte[0]);
        assertEquals(new Rejected(Version.V2, true), read(h, new ProxyProtocol(false, true, false, "")));
        assertInstanceOf(NotFound.class, read(h, new ProxyProtocol(true, true, false, "")));
        byte[] line = ascii("PROXY TCP4 203.0.113.7 198.51.100.1 1 2\r\n");
        assertEquals(new Rejected(Version.V1, true), read(line, new ProxyProtocol(false, false, true, "")));
        assertInstanceOf(NotFound.class, read(line, new ProxyProtocol(true, false, true, "")));
    }
}
