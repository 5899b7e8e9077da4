package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.RedirectAction;

/** Builds a redirect's {@code Location} as Envoy does. */
final class Redirects {
    /** A redirect that changes nothing: its location is the request's URL. */
    private static final RedirectAction NONE = new RedirectAction(null, null, 0, null, null, null, 301, false);

    private Redirects() {}

    /**
     * The request's own URL, built as a redirect's (scheme, Host with its port, path and query); {@code route} is not
     * read (there is no rewrite) and may be null.
     */
    static String requestUrl(CompiledRoute route, RouteRequest req, String fullPath, String pathOnly) {
        return location(NONE, route, req, fullPath, pathOnly);
    }

    static String location(RedirectAction r, CompiledRoute route, RouteRequest req, String fullPath,
                           String pathOnly) {
        String scheme = r.scheme() != null ? r.scheme() : (req.scheme() == null ? "http" : req.scheme());
        String port = r.port() != 0 ? ":" + r.port() : "";
        String host;
        if (r.host() != null) {
            host = r.host();
        } else {
            String h = req.authority() == null ? "" : req.authority();
            int portStart = h.startsWith("[") ? (h.indexOf("]:") >= 0 ? h.indexOf("]:") + 1 : -1) : h.lastIndexOf(':');
            if (portStart >= 0) {
                String requestPort = h.substring(portStart);
                h = h.substring(0, portStart);
                String requestScheme = req.scheme() == null ? "http" : req.scheme();
                boolean removePort = !port.isEmpty();
                if (!scheme.equals(requestScheme)) {
                    removePort |= requestScheme.equals("https") && requestPort.equals(":443");
                    removePort |= requestScheme.equals("http") && requestPort.equals(":80");
                }
                if (!removePort) {
                    port = requestPort;
                }
            }
            host = h;
        }
        String path = null;
        boolean pathHasQuery = false;
        if (r.path() != null) {
            pathHasQuery = r.path().indexOf('?') >= 0;
            path = pathHasQuery ? r.path() : r.path() + fullPath.substring(pathOnly.length());
        } else if (r.prefixRewrite() != null || r.regexRewrite() != null) {
            path = route.rewritePath(fullPath, pathOnly, r.prefixRewrite());
        }
        if (path == null) {
            path = fullPath; // no rewrite, or one that left no path
        }
        if (!path.startsWith("/")) {
            path = "/" + path;
        }
        if (!pathHasQuery && r.stripQuery()) {
            int q = path.indexOf('?');
            if (q >= 0) {
                path = path.substring(0, q);
            }
        }
        return scheme + "://" + host + port + path;
    }
}
