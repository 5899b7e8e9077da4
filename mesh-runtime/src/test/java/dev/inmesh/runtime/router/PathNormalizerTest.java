package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.inmesh.api.config.listener.PathNormalization;
import dev.inmesh.api.config.listener.PathNormalization.EscapedSlashes;
import org.junit.jupiter.api.Test;

class PathNormalizerTest {
    private static final PathNormalization BASE = new PathNormalization(true, false, EscapedSlashes.KEEP_UNCHANGED);
    private static final PathNormalization MERGE = new PathNormalization(true, true, EscapedSlashes.KEEP_UNCHANGED);

    @Test
    void dotSegmentsGoAsRfc3986RemovesThem() {
        // RFC 3986 5.2.4's examples, and the edges of the root
        assertEquals("/a/g", PathNormalizer.apply("/a/b/c/./../../g", BASE));
        assertEquals("/mid/6", PathNormalizer.apply("/mid/content=5/../6", BASE));
        assertEquals("/a", PathNormalizer.apply("/../a", BASE));
        assertEquals("/", PathNormalizer.apply("/a/..", BASE));
        assertEquals("/a/", PathNormalizer.apply("/a/b/..", BASE));
        assertEquals("/a/", PathNormalizer.apply("/a/.", BASE));
        assertEquals("/a/b", PathNormalizer.apply("/a/./b", BASE));
        assertEquals("/.well-known/x/...", PathNormalizer.apply("/.well-known/x/...", BASE));
        // a backslash is a slash in an http path (WHATWG URL), so it cannot hide a dot segment
        assertEquals("/admin", PathNormalizer.apply("/public\\..\\admin", BASE));
        assertEquals("/a\\b", PathNormalizer.apply("/a\\b", new PathNormalization(false, true,
                EscapedSlashes.KEEP_UNCHANGED)));
    }

    @Test
    void aDotSegmentsParametersAreTakenOffSoThatItCollapsesAsEnvoysNormalizationDoes() {
        // Envoy's PathUtil::stripParametersFromDotSegments (path_utility_test.cc's vectors): a server that reads
        // "..;x" as ".." must not be handed a path other than the one routed
        assertEquals("/admin", PathNormalizer.apply("/public/..;/admin", BASE));
        assertEquals("/abc", PathNormalizer.apply("/xyz/..;foo=bar/abc", BASE));
        assertEquals("/?blah=woops", PathNormalizer.apply("/xyz/..;foo=bar/.;fff=zzz?blah=woops", BASE));
        assertEquals("/b", PathNormalizer.apply("/a/..;param1;param2/b", BASE));
        assertEquals("/c", PathNormalizer.apply("/a/..;foo/b/..;bar/c", BASE));
        assertEquals("/xyz/abc", PathNormalizer.apply("/xyz/.;foo=bar/abc", BASE));
        assertEquals("/admin", PathNormalizer.apply("/a/b/..;x/..;y/admin", MERGE));
        // not a dot segment's parameters: kept
        assertEquals("/xyz/...;foo", PathNormalizer.apply("/xyz/...;foo", BASE));
        assertEquals("/xyz/..foo", PathNormalizer.apply("/xyz/..foo", BASE));
        assertEquals("/a;b/c", PathNormalizer.apply("/a;b/c", BASE));
        // the query is not the path
        assertEquals("/xyz?param=/..;foo", PathNormalizer.apply("/xyz?param=/..;foo", BASE));
        // only under normalize_path
        assertEquals("/public/..;/admin", PathNormalizer.apply("/public/..;/admin",
                new PathNormalization(false, true, EscapedSlashes.KEEP_UNCHANGED)));
    }

    @Test
    void percentEncodingIsNormalizedAndAnEncodedDotIsADot() {
        assertEquals("/admin", PathNormalizer.apply("/public/%2e%2E/admin", BASE));
        // other escapes are kept exactly, hex case included, as Envoy's canonicalizer keeps them
        assertEquals("/A-Z_~/%2f%3A%c3%a9", PathNormalizer.apply("/%41-%5a%5f%7e/%2f%3A%c3%a9", BASE));
        // an encoded NUL makes the path invalid: refused
        assertNull(PathNormalizer.apply("/a%00b", BASE));
        // not an escape: left as it is
        assertEquals("/100%/x%2", PathNormalizer.apply("/100%/x%2", BASE));
        // what a path may not hold as it is gets percent-encoded, upper-case, as Envoy's canonicalizer writes it;
        // the query is not touched
        assertEquals("/api/%7Bid%7D/%7C%5E%60%3C%3E%22?q={x}", PathNormalizer.apply("/api/{id}/|^`<>\"?q={x}", BASE));
        assertEquals("/a/%7Bb%7D", PathNormalizer.apply("/a/./{b}", BASE));
        assertEquals("/caf%C3%A9", PathNormalizer.apply("/caf\u00c3\u00a9", BASE), "bytes read as ISO-8859-1");
        // without normalize_path nothing is encoded
        assertEquals("/api/{id}", PathNormalizer.apply("//api/{id}", new PathNormalization(false, true,
                EscapedSlashes.KEEP_UNCHANGED)));
        // no case normalization of the path itself, as in Envoy
        assertEquals("/Reviews", PathNormalizer.apply("/Reviews", BASE));
    }

    @Test
    void theQueryAndTheFragmentStayAsTheyCame() {
        assertEquals("/b?x=/../%2e&y=//", PathNormalizer.apply("/a/../b?x=/../%2e&y=//", MERGE));
        assertEquals("/b#/../", PathNormalizer.apply("/a/../b#/../", BASE));
    }

    @Test
    void aFragmentIsDroppedBeforeRoutingAndUpstream() {
        assertEquals("/a/b?x=1", PathNormalizer.withoutFragment("/a/b?x=1#/../c"));
        String plain = "/a/b?x=1";
        assertSame(plain, PathNormalizer.withoutFragment(plain));
    }

    @Test
    void mergeSlashesComesAfterNormalization() {
        assertEquals("/a/b/c", PathNormalizer.apply("//a///b//c", MERGE));
        assertEquals("//a/b", PathNormalizer.apply("//a/./b", BASE));
        assertEquals("/a/b", PathNormalizer.apply("/a//b", new PathNormalization(false, true,
                EscapedSlashes.KEEP_UNCHANGED)));
    }

    @Test
    void escapedSlashesAreKeptRefusedOrDecodedFirst() {
        assertEquals("/a%2f..%2fadmin", PathNormalizer.apply("/a%2f..%2fadmin", BASE));
        assertNull(PathNormalizer.apply("/a%2Fb", new PathNormalization(false, false, EscapedSlashes.REJECT_REQUEST)));
        assertNull(PathNormalizer.apply("/a%5cb", new PathNormalization(true, true, EscapedSlashes.REJECT_REQUEST)));
        assertEquals("/ok?q=%2F", PathNormalizer.apply("/ok?q=%2F",
                new PathNormalization(false, false, EscapedSlashes.REJECT_REQUEST)));
        // decoded before normalization, so the decoded slashes make dot segments
        PathNormalization decode = new PathNormalization(true, true, EscapedSlashes.UNESCAPE_AND_FORWARD);
        assertEquals("/admin", PathNormalizer.apply("/a%2F..%2Fadmin", decode));
        // a decoded backslash is then a slash to the normalization; decoded alone, it stays a backslash
        assertEquals("/a/b", PathNormalizer.apply("/a%5Cb", decode));
        assertEquals("/a\\b", PathNormalizer.apply("/a%5cb", new PathNormalization(false, false,
                EscapedSlashes.UNESCAPE_AND_FORWARD)));
    }

    @Test
    void nothingChangesWithoutNormalizationOrForATargetThatIsNotAPath() {
        String target = "/a/../b//c";
        assertSame(target, PathNormalizer.apply(target, PathNormalization.NONE));
        // a plain path is handed back as it is, with whatever its query holds
        String plain = "/reviews/0.json?next=/a/../b//c%2F";
        assertSame(plain, PathNormalizer.apply(plain, MERGE));
        assertEquals("*", PathNormalizer.apply("*", MERGE));
        assertEquals("", PathNormalizer.apply("", MERGE));
    }

    @Test
    void unescapeAndRedirectAnswers307ToTheNormalizedTargetAndGrpc400() {
        PathNormalization redirect = new PathNormalization(true, true,
                PathNormalization.EscapedSlashes.UNESCAPE_AND_REDIRECT);
        String sent = "/a%2Fb/..//c%5Cd?q=%2F#frag";
        String normalized = PathNormalizer.ofRequest(sent, redirect);
        assertEquals("/a/c/d?q=%2F", normalized, "unescaped, then normalized and merged; the query as it came");
        assertEquals(new PathNormalizer.Refusal(307, "/a/c/d?q=%2F"),
                PathNormalizer.refusal(sent, normalized, redirect, null));
        assertEquals(PathNormalizer.Refusal.INVALID, PathNormalizer.refusal(sent, normalized, redirect,
                "application/grpc+proto"), "gRPC cannot follow it");
        // nothing escaped (an escape in the query only): no redirect, even when other steps changed the path
        assertEquals(null, PathNormalizer.refusal("/a/../b?q=%2F", PathNormalizer.ofRequest("/a/../b?q=%2F",
                redirect), redirect, null));
        // an invalid path is refused whatever the action
        assertEquals(PathNormalizer.Refusal.INVALID, PathNormalizer.refusal("/a%2F%00", null, redirect, null));
        // under UNESCAPE_AND_FORWARD the same request goes on
        PathNormalization forward = new PathNormalization(true, true,
                PathNormalization.EscapedSlashes.UNESCAPE_AND_FORWARD);
        assertEquals(null, PathNormalizer.refusal(sent, PathNormalizer.ofRequest(sent, forward), forward, null));
    }
}
