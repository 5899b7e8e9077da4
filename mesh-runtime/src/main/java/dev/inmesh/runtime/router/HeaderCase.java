package dev.inmesh.runtime.router;

import io.vertx.core.MultiMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The case of header names as Envoy's HTTP/1 codec writes them: lower case unless a stateful formatter keeps it. */
public final class HeaderCase {
    private HeaderCase() {}

    /**
     * Writes the names of {@code headers} that have upper case in lower case, in place and keeping their order, as
     * Envoy's header map holds every name (its HTTP/1 codec lower-cases the names it reads, and those of header rules
     * are lower-case strings), so that its HTTP/1 codec writes them upstream in lower case; a map whose names are all
     * lower case already is left as it is.
     */
    static void lowerCase(MultiMap headers) {
        if (!hasUpperCaseName(headers)) {
            return;
        }
        List<Map.Entry<String, String>> all = headers.entries();
        headers.clear();
        for (Map.Entry<String, String> e : all) {
            headers.add(e.getKey().toLowerCase(Locale.ROOT), e.getValue());
        }
    }

    private static boolean hasUpperCaseName(MultiMap headers) {
        if (headers instanceof io.netty.handler.codec.http.HttpHeaders netty) {
            // Vert.x's own map: its names as they are held, without a String made of each
            Iterator<Map.Entry<CharSequence, CharSequence>> it = netty.iteratorCharSequence();
            while (it.hasNext()) {
                if (hasUpperCase(it.next().getKey())) {
                    return true;
                }
            }
            return false;
        }
        for (Map.Entry<String, String> e : headers) {
            if (hasUpperCase(e.getKey())) {
                return true;
            }
        }
        return false;
    }

    /** Whether {@code name} has an ASCII upper-case letter. */
    public static boolean hasUpperCase(CharSequence name) {
        for (int i = 0; i < name.length(); i++) {
            char c = name.charAt(i);
            if (c >= 'A' && c <= 'Z') {
                return true;
            }
        }
        return false;
    }

}
