package dev.inmesh.runtime.router;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.UnaryOperator;

/**
 * A query's parameters as Envoy's {@code Http::Utility::QueryParamsMulti} holds them when a filter rewrites
 * {@code :path} (the JWT filter taking its tokens out, an authorizer setting and removing some, the header mutation
 * filter's query parameter mutations): split at {@code &}
 * and the first {@code =}, by name in name order, each name's values in order; and the path they make again.
 */
public final class QueryParameters {
    private QueryParameters() {}

    /**
     * The parameters of {@code query} (without its {@code ?}): an empty last piece is none, a name without {@code =}
     * valued {@code ""}, each name and value passed through {@code decode}.
     */
    public static TreeMap<String, List<String>> parse(String query, UnaryOperator<String> decode) {
        TreeMap<String, List<String>> out = new TreeMap<>();
        int start = 0;
        while (start < query.length()) {
            int end = query.indexOf('&', start);
            end = end < 0 ? query.length() : end;
            int eq = query.indexOf('=', start);
            boolean valued = eq >= 0 && eq < end;
            String name = decode.apply(query.substring(start, valued ? eq : end));
            out.computeIfAbsent(name, k -> new ArrayList<>(1))
                    .add(valued ? decode.apply(query.substring(eq + 1, end)) : "");
            start = end + 1;
        }
        return out;
    }

    /**
     * {@code path} (its query, if any, left out) with {@code params} as its query, {@code name=value} each in the
     * map's order; no {@code ?} when there is none.
     */
    static String path(String path, Map<String, List<String>> params) {
        int q = path.indexOf('?');
        StringBuilder out = new StringBuilder(path.length()).append(path, 0, q < 0 ? path.length() : q);
        char separator = '?';
        for (Map.Entry<String, List<String>> p : params.entrySet()) {
            for (String value : p.getValue()) {
                out.append(separator).append(p.getKey()).append('=').append(value);
                separator = '&';
            }
        }
        return out.toString();
    }

    /** Envoy's {@code PercentEncoding::decode}: each {@code %} and two hex digits a byte, anything else as it is. */
    public static String decode(String s) {
        if (s.indexOf('%') < 0) {
            return s;
        }
        byte[] in = s.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream(in.length);
        for (int i = 0; i < in.length; i++) {
            int hi = in[i] == '%' && i + 2 < in.length ? Character.digit(in[i + 1], 16) : -1;
            int lo = hi < 0 ? -1 : Character.digit(in[i + 2], 16);
            if (lo >= 0) {
                out.write(hi << 4 | lo);
                i += 2;
            } else {
                out.write(in[i]);
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /**
     * Envoy's {@code PercentEncoding::urlEncodeQueryParameter}: every byte of the value's UTF-8 as {@code %XX}
     * (upper case hex) but letters, digits, {@code *}, {@code -}, {@code .} and {@code _}; a space is {@code %20}.
     */
    static String urlEncode(String value) {
        StringBuilder out = null;
        byte[] in = value.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < in.length; i++) {
            int b = in[i] & 0xff;
            boolean kept = b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
                    || b == '*' || b == '-' || b == '.' || b == '_';
            if (out == null && !kept) {
                out = new StringBuilder(in.length + 8).append(value, 0, i); // the bytes before are ASCII
            }
            if (out != null) {
                out.append(kept ? Character.toString(b) : String.format("%%%02X", b));
            }
        }
        return out == null ? value : out.toString();
    }
}
