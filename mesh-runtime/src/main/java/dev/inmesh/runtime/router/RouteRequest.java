package dev.inmesh.runtime.router;

/**
 * What route selection reads of a request. Header names are asked for in lower case; a header sent several times is
 * answered with its values joined by {@code ","}, as Envoy matches them.
 */
public interface RouteRequest {
    /** The Host header ({@code :authority}). */
    String authority();

    /** The path with its query, as sent. */
    String path();

    String method();

    /** {@code http} or {@code https}. */
    String scheme();

    /** The value of a header (name in lower case), or null when absent. */
    String header(String lowerCaseName);
}
