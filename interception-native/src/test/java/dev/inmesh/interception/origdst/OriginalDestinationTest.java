package dev.inmesh.interception.origdst;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

class OriginalDestinationTest {

    @Test
    void decodesASockaddrIn() {
        byte[] sa = {2, 0, 0x1f, (byte) 0x90, 10, 77, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0};
        assertEquals(new InetSocketAddress("10.77.9.9", 8080), OriginalDestination.decode(sa));
    }

    @Test
    void decodesASockaddrIn6() {
        byte[] sa = new byte[28];
        sa[0] = 10;
        sa[2] = 0x23;
        sa[3] = (byte) 0x82; // 9090
        sa[8] = (byte) 0xfd;
        sa[23] = 6;
        assertEquals(new InetSocketAddress("fd00::6", 9090), OriginalDestination.decode(sa));
    }

    @Test
    void anUnknownFamilyOrAShortAddressIsNothing() {
        assertNull(OriginalDestination.decode(new byte[] {1, 0, 0, 80}));
        assertNull(OriginalDestination.decode(new byte[16]));
    }

    @Test
    void withoutNatTheLocalAddressIsTheOriginalDestination() {
        InetSocketAddress local = new InetSocketAddress("127.0.0.1", 15006);
        assertEquals(local, OriginalDestination.resolve(-1, local));
        // descriptor 0 is not a socket: the kernel has no original destination for it
        assertNull(OriginalDestination.query(0, false));
        assertEquals(local, OriginalDestination.resolve(0, local));
    }
}
