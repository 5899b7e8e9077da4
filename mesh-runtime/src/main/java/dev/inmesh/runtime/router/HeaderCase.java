package dev.inmesh.runtime.router;

import io.vertx.core.MultiMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

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
        respell(headers, Map.of()); // which scans the names once and leaves them when none has upper case
    }

    /**
     * The first spelling of each name of {@code headers}, by name in any case, of the names whose first spelling has
     * upper case (empty when none has): what Envoy's preserve-case formatter remembers of the names its codec read,
     * the first spelling of each (a later {@code Foo} after {@code foo} is written {@code foo}).
     */
    static Map<String, String> spellings(MultiMap headers) {
        if (!hasUpperCaseName(headers)) {
            return Map.of();
        }
        Map<String, String> first = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
        for (Map.Entry<String, String> e : headers) {
            first.putIfAbsent(e.getKey(), e.getKey());
        }
        first.values().removeIf(spelling -> !hasUpperCase(spelling));
        return first;
    }

    /**
     * Writes each name of {@code headers} as {@code spellings} (by name in any case) spells it, else in lower case,
     * in place and keeping their order, as Envoy's preserve-case formatter writes a request's names; a map already
     * so written is left as it is.
     */
    static void respell(MultiMap headers, Map<String, String> spellings) {
        if (spelled(headers, spellings)) {
            return;
        }
        List<Map.Entry<String, String>> all = headers.entries();
        headers.clear();
        for (Map.Entry<String, String> e : all) {
            String spelling = spellings.get(e.getKey());
            headers.add(spelling != null ? spelling : e.getKey().toLowerCase(Locale.ROOT), e.getValue());
        }
    }

    /** Whether every name of {@code headers} is written as {@link #respell} would write it. */
    private static boolean spelled(MultiMap headers, Map<String, String> spellings) {
        for (Map.Entry<String, String> e : headers) {
            String spelling = spellings.get(e.getKey());
            if (spelling != null ? !spelling.equals(e.getKey()) : hasUpperCase(e.getKey())) {
                return false;
            }
        }
        return true;
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
