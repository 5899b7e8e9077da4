package dev.inmesh.runtime.tls;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** A DNS SAN matched against a name as Envoy matches it (its DNS name match, for exact matchers and host checks). */
class PeerVerifierTest {
    private static void assertMatches(boolean expected, String name, String san) {
        assertEquals(expected, PeerVerifier.dnsNameMatches(name, san), name + " against the SAN " + san);
    }

    @Test
    void aDnsNameMatchesItsSanIgnoringCase() {
        assertMatches(true, "API.Example.com", "api.example.COM");
        assertMatches(true, "localhost", "LOCALHOST");
        assertMatches(false, "api.example.com", "api.example.org");
    }

    @Test
    void aWildcardFirstLabelStandsForExactlyOneLabel() {
        assertMatches(true, "api.example.com", "*.example.com");
        assertMatches(true, "API.example.com", "*.EXAMPLE.com");
        for (String name : List.of("a.b.example.com", "example.com", "api.example.org", "com")) {
            assertMatches(false, name, "*.example.com");
        }
    }

    @Test
    void aWildcardWithinTheFirstLabelStandsForPartOfOneLabel() {
        for (String san : List.of("api*.example.com", "*pi.example.com", "a*i.example.com", "api-*.example.com")) {
            assertMatches(!san.equals("api-*.example.com"), "api.example.com", san);
        }
        assertMatches(true, "api-v2.example.com", "api*.example.com");
        assertMatches(true, "api-v2.example.com", "api-*.example.com");
        // the wildcard stands for no characters, but the name's label keeps the text on both of its sides
        assertMatches(true, "ai.example.com", "a*i.example.com");
        assertMatches(false, "a.example.com", "a*a.example.com");
        assertMatches(false, "api.v2.example.com", "api*.example.com");
    }

    @Test
    void aWildcardOutsideTheFirstLabelTwoWildcardsOrAnALabelsPrefixMatchOnlyTheSameText() {
        assertMatches(false, "api.example.com", "api.*.com");
        assertMatches(false, "api.example.com", "*.*.com");
        assertMatches(false, "api.example.com", "a**.example.com");
        assertMatches(false, "xn--api.example.com", "xn--*.example.com");
        assertMatches(true, "xn--*.example.com", "xn--*.example.com");
        assertMatches(false, "api.example.com", "*");
    }
}
