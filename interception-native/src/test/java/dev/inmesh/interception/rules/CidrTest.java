package dev.inmesh.interception.rules;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class CidrTest {

    @Test
    void printsIpv6InItsShortForm() {
        assertEquals("2001:db8::/32", Cidr.parse("f", "2001:0DB8:0:0:0:0:0:0/32").toString());
        assertEquals("::1/128", Cidr.parse("f", "0:0:0:0:0:0:0:1/128").toString());
        assertEquals("fd00::2:0:0:1/64", Cidr.parse("f", "fd00:0:0:0:2:0:0:1/64").toString());
    }

    @Test
    void keepsTheAddressAsWrittenRatherThanMaskingIt() {
        assertEquals("127.1.2.3/8", Cidr.parse("f", "127.1.2.3/8").toString());
    }

    @Test
    void knowsLoopbackRanges() {
        assertTrue(Cidr.parse("f", "127.0.0.0/8").isLoopback());
        assertTrue(Cidr.parse("f", "::1/128").isLoopback());
        assertFalse(Cidr.parse("f", "10.0.0.0/8").isLoopback());
    }

    @Test
    void rejectsWhatIsNotAnAddressLiteral() {
        assertThrows(IllegalArgumentException.class, () -> Cidr.parse("f", "10.0.0.0"));
        assertThrows(IllegalArgumentException.class, () -> Cidr.parse("f", "10.0.0/8"));
        assertThrows(IllegalArgumentException.class, () -> Cidr.parse("f", "1::2::3/64"));
        assertThrows(IllegalArgumentException.class, () -> Cidr.parse("f", "localhost/8"));
        assertTrue(Cidr.isIpv6Literal("::127.0.0.53"));
        assertFalse(Cidr.isIpv4Literal("010.0.0.1"));
    }
}
