package dev.inmesh.runtime.lb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.inmesh.api.config.route.HashPolicy;
import io.vertx.core.MultiMap;
import java.util.List;
import org.junit.jupiter.api.Test;

class HashPoliciesTest {
    private static final MultiMap HEADERS = MultiMap.caseInsensitiveMultiMap()
            .add("x-user", "alice")
            .add("Cookie", "a=1; session=\"s3\"; b=2");

    @Test
    void aHeaderHashesItsValue() {
        assertEquals(Xxhash.hash64("alice"),
                HashPolicies.hash(List.of(new HashPolicy.Header("X-User", false)), HEADERS, null, null));
    }

    @Test
    void severalHeaderValuesAreSortedAndChainedThroughTheSeed() {
        MultiMap h = MultiMap.caseInsensitiveMultiMap().add("x", "b").add("x", "a");
        long expected = Xxhash.hash64("b", Xxhash.hash64("a"));
        assertEquals(expected, HashPolicies.hash(List.of(new HashPolicy.Header("x", false)), h, null, null));
    }

    @Test
    void aHeadersRegexRewriteRewritesEachValueBeforeTheyAreSortedAndHashed() {
        // keep the tenant, drop the session: every session of a tenant goes to one host
        var policy = new HashPolicy.Header("x-key", new dev.inmesh.api.config.route.RegexRewrite("^([^/]+)/.*$", "\\1"),
                false);
        MultiMap one = MultiMap.caseInsensitiveMultiMap().add("x-key", "tenant-7/session-123");
        assertEquals(Xxhash.hash64("tenant-7"), HashPolicies.hash(List.of(policy), one, null, null));
        MultiMap two = MultiMap.caseInsensitiveMultiMap().add("x-key", "b/2").add("x-key", "a/1");
        assertEquals(Xxhash.hash64("b", Xxhash.hash64("a")), HashPolicies.hash(List.of(policy), two, null, null));
    }

    @Test
    void aCookieAQueryParameterAndTheSourceIpHashTheirValues() {
        assertEquals(Xxhash.hash64("s3"),
                HashPolicies.hash(List.of(new HashPolicy.Cookie("session", false)), HEADERS, null, null));
        assertEquals(Xxhash.hash64("42"),
                HashPolicies.hash(List.of(new HashPolicy.QueryParameter("id", false)), HEADERS, null, "x=1&id=42"));
        assertEquals(Xxhash.hash64("10.0.0.9"),
                HashPolicies.hash(List.of(new HashPolicy.SourceIp(false)), HEADERS, "10.0.0.9", null));
    }

    @Test
    void aCookieWithAnEmptyValueGivesNoHashAsInEnvoy() {
        MultiMap empty = MultiMap.caseInsensitiveMultiMap().add("cookie", "session=; other=1");
        assertNull(HashPolicies.hash(List.of(new HashPolicy.Cookie("session", false)), empty, null, null));
        // and the next policy decides alone, as when the cookie is absent
        assertEquals(Xxhash.hash64("10.0.0.9"), HashPolicies.hash(List.of(new HashPolicy.Cookie("session", false),
                new HashPolicy.SourceIp(false)), empty, "10.0.0.9", null));
    }

    @Test
    void hashesCombineByRotatingThePreviousOne() {
        long a = Xxhash.hash64("alice");
        long b = Xxhash.hash64("10.0.0.9");
        assertEquals(Long.rotateLeft(a, 1) ^ b, HashPolicies.hash(
                List.of(new HashPolicy.Header("x-user", false), new HashPolicy.SourceIp(false)),
                HEADERS, "10.0.0.9", null));
    }

    @Test
    void aTerminalPolicyThatHashedStopsTheList() {
        assertEquals(Xxhash.hash64("alice"), HashPolicies.hash(
                List.of(new HashPolicy.Header("x-user", true), new HashPolicy.SourceIp(false)),
                HEADERS, "10.0.0.9", null));
    }

    @Test
    void aTerminalPolicyWithoutAHashDoesNotStopTheList() {
        assertEquals(Xxhash.hash64("10.0.0.9"), HashPolicies.hash(
                List.of(new HashPolicy.Header("absent", true), new HashPolicy.SourceIp(false)),
                HEADERS, "10.0.0.9", null));
    }

    @Test
    void noMatchingPolicyMeansNoHash() {
        assertNull(HashPolicies.hash(List.of(new HashPolicy.Cookie("none", false)), HEADERS, null, null));
    }
}
