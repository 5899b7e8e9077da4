package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;

/**
 * Answer with a redirect ({@code route.v3.RedirectAction}). Null fields keep that part of the request's URL.
 *
 * @param scheme the new scheme ({@code https_redirect} sets {@code https})
 * @param host the new host
 * @param port the new port, 0 to keep it
 * @param path the new path (query kept unless {@code stripQuery})
 * @param prefixRewrite replaces the matched prefix
 * @param regexRewrite rewrites the path by regex
 * @param responseCode 301, 302, 303, 307 or 308 (default 301)
 * @param stripQuery whether the query is dropped
 */
public record RedirectAction(String scheme, String host, int port, String path, String prefixRewrite,
                             RegexRewrite regexRewrite, int responseCode, boolean stripQuery) implements Action {
    public RedirectAction {
        Checks.port(port, "port_redirect");
        Checks.check(responseCode == 301 || responseCode == 302 || responseCode == 303 || responseCode == 307
                || responseCode == 308, "response_code", responseCode, "301, 302, 303, 307 or 308");
        int pathForms = (path != null ? 1 : 0) + (prefixRewrite != null ? 1 : 0) + (regexRewrite != null ? 1 : 0);
        Checks.check(pathForms <= 1, "path_rewrite_specifier", pathForms + " forms", "at most one of path_redirect, "
                + "prefix_rewrite, regex_rewrite");
    }
}
