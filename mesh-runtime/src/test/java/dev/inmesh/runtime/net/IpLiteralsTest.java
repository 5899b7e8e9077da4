package dev.inmesh.runtime.net;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.util.Random;
import org.junit.jupiter.api.Test;

class IpLiteralsTest {

    @Test
    void parsesDottedQuadsAndEveryIpv6Form() throws Exception {
        assertArrayEquals(new byte[] {10, 0, 0, 1}, IpLiterals.parse("10.0.0.1"));
        assertArrayEquals(new byte[] {(byte) 255, (byte) 255, (byte) 255, (byte) 255},
                IpLiterals.parse("255.255.255.255"));
        for (String v6 : new String[] {"::", "::1", "1::", "fe80::1", "2001:db8::8:800:200c:417a",
                "2001:DB8:0:0:8:800:200C:417A", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
                "::ffff:10.0.0.1", "::127.0.0.53", "64:ff9b::192.0.2.33", "1:2:3:4:5:6:1.2.3.4"}) {
            byte[] expected = v6Bytes(v6);
            assertArrayEquals(expected, IpLiterals.parse(v6), v6);
        }
    }

    @Test
    void refusesWhatIsNotALiteral() {
        for (String s : new String[] {"", "1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.1.1.1", "1.2.3.04", "1..2.3",
                ".1.2.3", "1.2.3.", " 1.2.3.4", "1.2.3.4 ", "1.2.3.-4", "1.2.3.4/8", "localhost", "reviews",
                "١.٢.٣.٤", ":", ":::", "::1::", "1::2::3", ":1::", "1:", "1::2:", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
                "12345::", "g::", "::ffff:1.2.3", "::ffff:1.2.3.4.5", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4:5",
                "[::1]", "fe80::1%eth0", "::٣"}) {
            assertNull(IpLiterals.parse(s), s);
        }
        assertNull(IpLiterals.parse(null));
    }

    @Test
    void bracketsAreTakenOffOnlyByTheHostForms() {
        assertTrue(IpLiterals.isLiteral("[::1]"));
        assertTrue(IpLiterals.isLiteral("::1"));
        assertTrue(IpLiterals.isLiteral("127.0.0.1"));
        assertFalse(IpLiterals.isLiteral("[127.0.0.1"));
        assertFalse(IpLiterals.isLiteral("reviews.default.svc.cluster.local"));
        assertFalse(IpLiterals.isLiteral(null));
        assertEquals("::1", IpLiterals.unbracketed("[::1]"));
        assertEquals("[]", IpLiterals.unbracketed("[]"));
    }

    @Test
    void anIpv4MappedAddressUnmapsToItsIpv4Bytes() {
        assertArrayEquals(new byte[] {10, 1, 2, 3}, IpLiterals.unmapped(IpLiterals.parse("::ffff:10.1.2.3")));
        byte[] compatible = IpLiterals.parse("::10.1.2.3");
        assertEquals(16, IpLiterals.unmapped(compatible).length, "only ::ffff:0:0/96 is mapped");
        byte[] v4 = {1, 2, 3, 4};
        assertEquals(v4, IpLiterals.unmapped(v4));
        assertNull(IpLiterals.unmapped(null));
    }

    @Test
    void formatsAsRfc5952AndParsesBackWhatItFormats() throws Exception {
        assertEquals("2001:db8::1", IpLiterals.format(IpLiterals.parse("2001:0DB8:0:0:0:0:0:1")));
        assertEquals("2001:db8:0:1:1:1:1:1", IpLiterals.format(IpLiterals.parse("2001:db8:0:1:1:1:1:1")));
        assertEquals("2001:0:0:1::1", IpLiterals.format(IpLiterals.parse("2001:0:0:1:0:0:0:1")));
        assertEquals("::", IpLiterals.format(new byte[16]));
        assertEquals("0.0.0.0", IpLiterals.format(new byte[4]));
        Random r = new Random(5);
        for (int i = 0; i < 20_000; i++) {
            byte[] a = new byte[i % 2 == 0 ? 4 : 16];
            r.nextBytes(a);
            if (a.length == 16 && i % 3 == 0) {
                // runs of zero groups, where the short forms differ
                for (int g = r.nextInt(8), n = r.nextInt(8 - g) + 1, k = 2 * g; k < 2 * (g + n); k++) {
                    a[k] = 0;
                }
            }
            String text = IpLiterals.format(a);
            assertArrayEquals(a, IpLiterals.parse(text), text);
            assertArrayEquals(a, v6OrV4Bytes(text), text);
        }
    }

    @Test
    void printsASocketAddressAsEnvoyDoesWithIpv6InItsShortFormInBrackets() {
        assertEquals("10.244.0.194:47022", IpLiterals.hostPort("10.244.0.194", 47022));
        assertEquals("[::1]:8080", IpLiterals.hostPort("0:0:0:0:0:0:0:1", 8080));
        assertEquals("[fd00::2]:9080", IpLiterals.hostPort("fd00:0:0:0:0:0:0:2", 9080));
        assertEquals("[fd00::2]:9080", IpLiterals.hostPort("[fd00::2]", 9080));
    }

    /** The JDK's reading of a literal, as 16 bytes even for an IPv4-mapped one (which the JDK gives as IPv4). */
    private static byte[] v6Bytes(String literal) throws Exception {
        byte[] b = InetAddress.getByName(literal).getAddress();
        if (b.length == 4) {
            byte[] mapped = new byte[16];
            mapped[10] = (byte) 0xff;
            mapped[11] = (byte) 0xff;
            System.arraycopy(b, 0, mapped, 12, 4);
            return mapped;
        }
        return b;
    }

    private static byte[] v6OrV4Bytes(String literal) throws Exception {
        return literal.indexOf(':') >= 0 ? v6Bytes(literal) : InetAddress.getByName(literal).getAddress();
    }
}
