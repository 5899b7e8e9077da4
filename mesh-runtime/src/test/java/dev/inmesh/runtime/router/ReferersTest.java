package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.MultiMap;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The {@code Referer} values Envoy's connection manager keeps, and those it takes off. */
class ReferersTest {
    @Test
    void anAbsoluteUrlWithoutUserInformationOrFragmentAndAPartialUrlAreKept() {
        for (String v : List.of("http://www.example.com", "http://www.example.com/foo?bar=xyz", "/resource.html",
                "resource.html", "foo/bar/resource.html", "https://[::1]:8443/x", "http://a.example:80",
                "/a:b?c=d", "")) {
            assertTrue(Referers.valid(v), v);
        }
    }

    @Test
    void aValueThatIsNoUriReferenceOrHoldsUserInformationOrAFragmentIsNot() {
        for (String v : List.of("http://[bad", "mal  formed/path/resource.html", "htp:/www.malformed.com",
                "http://www.example.com/?foo=bar#fragment", "http://user:pass@example.com/", "http://", "a:b",
                "http://a.example:99999/", "http://a.example:/", "/x#y", "http://a b/")) {
            assertFalse(Referers.valid(v), v);
        }
    }

    @Test
    void twoReferersOrAnInvalidOneAreTakenOffAndAValidOneStays() {
        MultiMap two = MultiMap.caseInsensitiveMultiMap().add("Referer", "/a").add("referer", "/b");
        Referers.sanitize(two);
        assertFalse(two.contains("referer"));
        MultiMap bad = MultiMap.caseInsensitiveMultiMap().add("referer", "http://[bad");
        Referers.sanitize(bad);
        assertFalse(bad.contains("referer"));
        MultiMap good = MultiMap.caseInsensitiveMultiMap().add("referer", "http://a.example/x");
        Referers.sanitize(good);
        assertEquals("http://a.example/x", good.get("referer"));
    }
}
