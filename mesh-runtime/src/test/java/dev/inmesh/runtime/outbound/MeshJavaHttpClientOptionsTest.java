package dev.inmesh.runtime.outbound;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** How a JDK request becomes the request of the mesh's Vert.x client. */
class MeshJavaHttpClientOptionsTest {

    @Test
    void anHttpUriGivesHostPortPathAndQueryAsWritten() {
        RequestOptions o = MeshJavaHttpClient.options(HttpRequest.newBuilder(
                URI.create("http://reviews:9080/reviews/0?user=a%20b&x")).DELETE().build());
        assertEquals(HttpMethod.DELETE, o.getMethod());
        assertEquals("reviews", o.getHost());
        assertEquals(9080, o.getPort());
        assertEquals("/reviews/0?user=a%20b&x", o.getURI());
        assertEquals(false, o.isSsl());
        assertEquals(false, o.getFollowRedirects());
    }

    @Test
    void withoutAPortOrPathTheSchemesDefaultsApply() {
        RequestOptions http = MeshJavaHttpClient.options(HttpRequest.newBuilder(URI.create("http://[::1]")).build());
        assertEquals("::1", http.getHost());
        assertEquals(80, http.getPort());
        assertEquals("/", http.getURI());
        // https: the caller's own TLS, as mesh.httpClient() takes setSsl(true)
        RequestOptions https = MeshJavaHttpClient.options(HttpRequest.newBuilder(URI.create("https://api.example"))
                .build());
        assertEquals(true, https.isSsl());
        assertEquals(443, https.getPort());
    }

    @Test
    void theRequestsTimeoutIsTheVertxRequestsTimeout() {
        RequestOptions o = MeshJavaHttpClient.options(HttpRequest.newBuilder(URI.create("http://reviews:9080/"))
                .timeout(Duration.ofMillis(1500)).build());
        assertEquals(1500, o.getTimeout());
        RequestOptions none = MeshJavaHttpClient.options(HttpRequest.newBuilder(URI.create("http://reviews:9080/"))
                .build());
        assertTrue(none.getTimeout() <= 0, "no timeout: " + none.getTimeout());
    }

    @Test
    void aRequestOfAnotherSchemeIsRefusedWithAnIllegalArgumentException() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> MeshJavaHttpClient.options(request(URI.create("ftp://files.example/a"))));
        assertTrue(e.getMessage().contains("ftp://files.example/a"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> MeshJavaHttpClient.options(request(URI.create("http:/a"))));
    }

    /** A request of another implementation than the JDK's builder, which refuses such URIs itself. */
    static HttpRequest request(URI uri) {
        return new HttpRequest() {
            @Override
            public Optional<BodyPublisher> bodyPublisher() {
                return Optional.empty();
            }

            @Override
            public String method() {
                return "GET";
            }

            @Override
            public Optional<Duration> timeout() {
                return Optional.empty();
            }

            @Override
            public boolean expectContinue() {
                return false;
            }

            @Override
            public URI uri() {
                return uri;
            }

            @Override
            public Optional<HttpClient.Version> version() {
                return Optional.empty();
            }

            @Override
            public HttpHeaders headers() {
                return HttpHeaders.of(Map.of(), (a, b) -> true);
            }
        };
    }
}
