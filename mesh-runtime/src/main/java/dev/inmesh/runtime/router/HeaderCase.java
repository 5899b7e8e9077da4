package dev.inmesh.runtime.router;

import io.vertx.core.MultiMap;
import java.util.HashMap;
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
     * lower case already (the standalone proxy's decoder wrote them so) is left as it is.
     */
    public static void lowerCase(MultiMap headers) {
        if (hasUpperCaseName(headers)) {
            respell(headers, Map.of());
        }
    }

    /**
     * The first spelling of each name of {@code headers} that has upper case, by its lower-case form (empty when none
     * has): what Envoy's preserve-case formatter remembers of the names its codec read.
     */
    static Map<String, String> spellings(MultiMap headers) {
        if (!hasUpperCaseName(headers)) {
            return Map.of();
        }
        Map<String, String> first = new HashMap<>();
        for (Map.Entry<String, String> e : headers) {
            if (hasUpperCase(e.getKey())) {
                first.putIfAbsent(e.getKey().toLowerCase(Locale.ROOT), e.getKey());
            }
        }
        return first;
    }

    /**
     * Writes each name of {@code headers} as {@code spellings} spells its lower-case form, else in lower case, in
     * place and keeping their order, as Envoy's preserve-case formatter writes a request's names.
     */
    static void respell(MultiMap headers, Map<String, String> spellings) {
        if (spellings.isEmpty() && !hasUpperCaseName(headers)) {
            return;
        }
        List<Map.Entry<String, String>> all = headers.entries();
        headers.clear();
        for (Map.Entry<String, String> e : all) {
            String lower = e.getKey().toLowerCase(Locale.ROOT);
            headers.add(spellings.getOrDefault(lower, lower), e.getValue());
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
