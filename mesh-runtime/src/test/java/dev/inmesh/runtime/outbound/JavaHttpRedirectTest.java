package dev.inmesh.runtime.outbound;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient.Redirect;
import java.net.http.HttpRequest;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The redirects {@code mesh.javaHttpClient(policy)} follows, and the request that follows each, as the JDK's. */
class JavaHttpRedirectTest {
    static final HttpRequest POST = HttpRequest.newBuilder(URI.create("https://reviews:9080/a/b?q=1"))
            .header("x-caller", "one").timeout(Duration.ofSeconds(3))
            .POST(HttpRequest.BodyPublishers.ofString("hello")).build();

    static HttpRequest next(int status, String location, Redirect policy) {
        try {
            return JavaHttpRedirect.next(POST, status, location, policy).orElse(null);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void neverFollowsAndTheOthersFollowTheRedirectsTheJdksClientFollowsWithALocation() {
        assertEquals(null, next(302, "/c", Redirect.NEVER));
        for (int status : new int[] {301, 302, 303, 307, 308}) {
            assertEquals(URI.create("https://reviews:9080/c"), next(status, "/c", Redirect.NORMAL).uri(), "" + status);
        }
        // as the JDK's RedirectFilter: multiple choices, not modified, use proxy, the unused 306 and 309 are answers
        for (int status : new int[] {300, 304, 305, 306, 309, 200}) {
            assertEquals(null, next(status, "/c", Redirect.ALWAYS), "" + status);
        }
        // a redirect without a Location fails the request, with the JDK's words; under NEVER it is the response
        IOException e = assertThrows(IOException.class, () -> JavaHttpRedirect.next(POST, 302, null, Redirect.ALWAYS));
        assertEquals("Invalid redirection", e.getMessage());
        assertEquals(null, next(302, null, Redirect.NEVER));
        assertEquals(null, next(300, null, Redirect.ALWAYS));
        assertEquals(null, next(302, "not a uri", Redirect.ALWAYS));
        assertEquals(null, next(302, "ftp://files.example/a", Redirect.ALWAYS));
    }

    @Test
    void aLocationIsResolvedAgainstTheRequestsUri() {
        assertEquals(URI.create("https://reviews:9080/a/c"), next(302, "c", Redirect.ALWAYS).uri());
        assertEquals(URI.create("http://ratings:9080/x"), next(302, "http://ratings:9080/x", Redirect.ALWAYS).uri());
    }

    @Test
    void toAnotherOriginTheCallersCredentialsAndOriginHeadersStayBehindAsTheJdksClientLeavesThem() {
        HttpRequest withCredentials = HttpRequest.newBuilder(URI.create("http://reviews:9080/a"))
                .header("Authorization", "Bearer t").header("Cookie", "s=1").header("Origin", "http://app")
                .header("Referer", "http://app/x").header("x-caller", "one").build();
        String[] dropped = {"authorization", "cookie", "origin", "referer"};
        for (String to : new String[] {"http://ratings:9080/b", "https://reviews:9080/b", "http://reviews:9081/b"}) {
            HttpRequest next = next(withCredentials, to);
            for (String name : dropped) {
                assertTrue(next.headers().firstValue(name).isEmpty(), to + " " + name);
            }
            assertEquals(List.of("one"), next.headers().allValues("x-caller"), to);
        }
        HttpRequest same = next(withCredentials, "/b");
        for (String name : dropped) {
            assertTrue(same.headers().firstValue(name).isPresent(), name);
        }
    }

    private static HttpRequest next(HttpRequest request, String location) {
        try {
            return JavaHttpRedirect.next(request, 302, location, Redirect.ALWAYS).orElseThrow();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void normalDoesNotGoFromHttpsToHttpAndAlwaysDoes() {
        assertEquals(null, next(302, "http://reviews:9080/c", Redirect.NORMAL));
        assertEquals(URI.create("http://reviews:9080/c"), next(302, "http://reviews:9080/c", Redirect.ALWAYS).uri());
    }

    @Test
    void seeOtherAndAMovedPostAreFollowedByAGetWithoutABodyTheOthersKeepTheRequest() throws IOException {
        for (int status : new int[] {301, 302, 303}) {
            HttpRequest get = next(status, "/c", Redirect.ALWAYS);
            assertEquals("GET", get.method(), "" + status);
            assertTrue(get.bodyPublisher().map(p -> p.contentLength() == 0).orElse(true), "" + status);
            assertEquals(List.of("one"), get.headers().allValues("x-caller"));
        }
        for (int status : new int[] {307, 308}) {
            HttpRequest same = next(status, "/c", Redirect.ALWAYS);
            assertEquals("POST", same.method());
            assertSame(POST.bodyPublisher().orElseThrow(), same.bodyPublisher().orElseThrow());
            assertEquals(List.of("one"), same.headers().allValues("x-caller"));
            assertEquals(POST.timeout(), same.timeout());
        }
        HttpRequest put = HttpRequest.newBuilder(URI.create("http://reviews:9080/"))
                .PUT(HttpRequest.BodyPublishers.ofString("x")).build();
        assertEquals("PUT", JavaHttpRedirect.next(put, 302, "/c", Redirect.ALWAYS).orElseThrow().method());
    }
}
