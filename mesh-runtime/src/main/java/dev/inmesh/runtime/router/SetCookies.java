package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.HashPolicy;
import java.util.List;

/**
 * The {@code Set-Cookie} values Envoy writes for the cookies it makes up (a hash policy's routing cookie, a stateful
 * session's cookie): {@code name="value"}, then {@code ; Max-Age=N} unless it is 0 (a session cookie),
 * {@code ; Path=path} when there is one, each attribute as {@code ; name=value} or {@code ; name}, and
 * {@code ; HttpOnly}.
 */
final class SetCookies {
    private SetCookies() {}

    static String value(String name, String value, long maxAgeSeconds, String path,
                        List<HashPolicy.CookieAttribute> attributes) {
        StringBuilder b = new StringBuilder(name).append("=\"").append(value).append('"');
        if (maxAgeSeconds != 0) {
            b.append("; Max-Age=").append(maxAgeSeconds);
        }
        if (!path.isEmpty()) {
            b.append("; Path=").append(path);
        }
        for (HashPolicy.CookieAttribute a : attributes) {
            b.append("; ").append(a.name());
            if (!a.value().isEmpty()) {
                b.append('=').append(a.value());
            }
        }
        return b.append("; HttpOnly").toString();
    }
}
