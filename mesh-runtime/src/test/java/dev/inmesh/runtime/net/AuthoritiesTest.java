package dev.inmesh.runtime.net;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.vertx.core.net.HostAndPort;
import org.junit.jupiter.api.Test;

class AuthoritiesTest {
    private static String read(String authority) {
        HostAndPort hp = Authorities.parse(authority);
        return hp == null ? null : hp.host() + " " + hp.port();
    }

    @Test
    void anAuthorityVertxReadsIsReadAsVertxReadsIt() {
        assertEquals("reviews -1", read("reviews"));
        assertEquals("reviews.default.svc.cluster.local 9080", read("reviews.default.svc.cluster.local:9080"));
        assertEquals("[::1] 80", read("[::1]:80"));
        assertEquals("10.0.0.1 -1", read("10.0.0.1"));
        assertNull(read(null));
        assertNull(read(""));
        assertNull(read("a b"));
        assertNull(read("a/b"));
    }

    @Test
    void aHostNameWithPercentEncodingsIsTakenUndecodedShortOrLong() {
        assertEquals("a%41b -1", read("a%41b"));
        assertEquals("a%41b 8080", read("a%41b:8080"));
        // past Vert.x's wrong index (the '%' is 37): Vert.x refuses rather than throws
        String longName = "service-with-a-rather-long-name-%41.default.svc.cluster.local";
        assertEquals(longName + " 9080", read(longName + ":9080"));
        assertNull(read("a%zzb"), "not a percent-encoding");
        assertNull(read("a%4"));
        assertNull(read("a%41b:"));
        assertNull(read("a%41b:99999"));
        assertNull(read("a%41b:8x"));
    }
}
