package dev.inmesh.runtime.tools;

import java.net.URI;
import java.util.Locale;

/**
 * The {@code --admin} of the command line tools: an admin server as {@code HOST:PORT} or as the URL a proxy prints
 * for it ({@code http://HOST:PORT/}), either form in every tool.
 */
final class AdminAddress {
    private AdminAddress() {
    }

    /**
     * The URI of {@code path} (starting with {@code /}) on the admin server {@code admin}.
     *
     * @throws IllegalArgumentException naming {@code --admin} when it is neither form
     */
    static URI uri(String admin, String path) {
        String base = admin.strip().replaceAll("/+$", "");
        if (!base.toLowerCase(Locale.ROOT).startsWith("http://")) {
            base = "http://" + base;
        }
        URI uri;
        try {
            uri = URI.create(base + path);
        } catch (IllegalArgumentException e) {
            uri = null;
        }
        if (uri == null || uri.getHost() == null || uri.getPort() < 0 || !pathOnly(path).equals(uri.getRawPath())) {
            throw new IllegalArgumentException("--admin " + admin + ": not HOST:PORT or http://HOST:PORT");
        }
        return uri;
    }

    private static String pathOnly(String path) {
        int q = path.indexOf('?');
        return q < 0 ? path : path.substring(0, q);
    }
}
