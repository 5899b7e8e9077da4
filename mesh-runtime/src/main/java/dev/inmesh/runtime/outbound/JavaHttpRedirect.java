package dev.inmesh.runtime.outbound;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.util.Locale;
import java.util.Optional;

/**
 * Which redirects {@link MeshJavaHttpClient} follows, as the JDK's client with a {@link HttpClient.Redirect} policy
 * (its {@code RedirectFilter}): a 301, 302, 303, 307 or 308 answer (not 300, 304, 305 or 306) with a {@code Location}
 * (resolved against the request's URI) to an {@code http} or {@code https} URI, never with
 * {@link HttpClient.Redirect#NEVER}, and with {@link HttpClient.Redirect#NORMAL} not from {@code https} to
 * {@code http}; such an answer without a {@code Location} fails the request ("Invalid redirection"). The request that
 * follows keeps the method, headers, timeout and body, but after a 303, and after a 301 or 302 to a POST, where it is
 * a GET without a body; to another scheme or authority it goes without the caller's {@code Authorization},
 * {@code Cookie}, {@code Origin}, {@code Referer} and {@code Host}.
 */
final class JavaHttpRedirect {
    /**
     * The JDK's {@code jdk.httpclient.redirects.retrylimit}: a request follows one redirect fewer than it (the JDK
     * counts the redirect it is about to follow and follows while the count stays below the limit), and the answer
     * that would be the limit's is the response.
     */
    static final int MAX_REDIRECTS = 5;

    /** The headers a redirect to another scheme or authority leaves out, as the JDK's client (lower case). */
    private static final java.util.Set<String> CROSS_ORIGIN_DROPPED = java.util.Set.of("authorization", "cookie",
            "origin", "referer", "host");

    private JavaHttpRedirect() {
    }

    /**
     * The request that follows {@code request}'s answer of {@code status} with {@code location} (null when it had
     * none), under {@code policy}: empty when the answer is the response.
     *
     * @throws IOException a redirect without a {@code Location}, as the JDK's client fails it
     */
    static Optional<HttpRequest> next(HttpRequest request, int status, String location, HttpClient.Redirect policy)
            throws IOException {
        if (policy == HttpClient.Redirect.NEVER || status < 301 || status > 308 || status == 304 || status == 305
                || status == 306) {
            return Optional.empty();
        }
        if (location == null) {
            throw new IOException("Invalid redirection"); // the JDK's words
        }
        URI to;
        try {
            to = request.uri().resolve(new URI(location.trim()));
        } catch (URISyntaxException | IllegalArgumentException e) {
            return Optional.empty(); // not a URI: the answer is the response
        }
        String scheme = to.getScheme() == null ? "" : to.getScheme().toLowerCase(Locale.ROOT);
        boolean secure = "https".equalsIgnoreCase(request.uri().getScheme());
        if (!scheme.equals("http") && !scheme.equals("https") || to.getHost() == null
                || policy == HttpClient.Redirect.NORMAL && secure && scheme.equals("http")) {
            return Optional.empty();
        }
        boolean toGet = status == 303 || (status == 301 || status == 302) && request.method().equals("POST");
        // as the JDK's client: to another origin, the caller's credentials and origin headers stay behind
        boolean sameOrigin = scheme.equalsIgnoreCase(request.uri().getScheme())
                && java.util.Objects.equals(to.getRawAuthority(), request.uri().getRawAuthority());
        HttpRequest.Builder next = HttpRequest.newBuilder(request,
                (name, value) -> sameOrigin || !CROSS_ORIGIN_DROPPED.contains(name.toLowerCase(Locale.ROOT))).uri(to);
        if (toGet) {
            next.GET();
        }
        return Optional.of(next.build());
    }
}
