package dev.inmesh.runtime.lb;

import dev.inmesh.api.config.route.HashPolicy;
import io.vertx.core.MultiMap;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A request's hash from a route's hash policies, combined as Envoy combines them: policies are tried in order; each
 * that yields a hash is mixed in as {@code rotl(previous, 1) ^ new}; a terminal policy that leaves a hash stops the
 * list. Each policy hashes with xxHash64 (seed 0): a header's value (a pseudo-header's too; each first rewritten by
 * the policy's {@code regex_rewrite}; several values: sorted, then chained through the seed), a cookie's value, the
 * source IP's text, or a query parameter's raw value (the first one of that name).
 */
public final class HashPolicies {
    private HashPolicies() {}

    /** The header policies' rewrites compiled, by rewrite: bounded (emptied when full), as configurations change. */
    private static final java.util.concurrent.ConcurrentHashMap<dev.inmesh.api.config.route.RegexRewrite,
            RegexRewriter> REWRITERS = new java.util.concurrent.ConcurrentHashMap<>();
    private static final int MAX_REWRITERS = 256;

    private static RegexRewriter rewriter(dev.inmesh.api.config.route.RegexRewrite rewrite) {
        RegexRewriter r = REWRITERS.get(rewrite);
        if (r == null) {
            if (REWRITERS.size() >= MAX_REWRITERS) {
                REWRITERS.clear();
            }
            r = REWRITERS.computeIfAbsent(rewrite, RegexRewriter::of);
        }
        return r;
    }

    /**
     * The combined hash, or null when no policy produced one (such a request is balanced at random by RING_HASH and
     * MAGLEV).
     *
     * @param headers the request headers (case-insensitive names)
     * @param sourceIp the downstream address without port, or null
     * @param query the raw query string without {@code ?}, or null
     */
    public static Long hash(List<HashPolicy> policies, MultiMap headers, String sourceIp, String query) {
        return hash(policies, headers, sourceIp, query, null);
    }

    /**
     * Makes up the value of a cookie hash policy's cookie that the request does not carry (Envoy's router: hands it
     * to the client in a {@code Set-Cookie} on the response), for a policy with a {@code ttl}.
     */
    @FunctionalInterface
    public interface CookieGenerator {
        /** The new cookie's value, or null or empty when none is made (the policy then gives no hash). */
        String generate(HashPolicy.Cookie policy);
    }

    /**
     * As {@link #hash(List, MultiMap, String, String)}; a cookie policy with a {@code ttl} whose cookie the request
     * lacks hashes the value {@code cookies} makes up (null: none is made, as for a policy without {@code ttl}).
     */
    public static Long hash(List<HashPolicy> policies, MultiMap headers, String sourceIp, String query,
                            CookieGenerator cookies) {
        return hash(policies, headers, sourceIp, query, cookies, null);
    }

    /**
     * As {@link #hash(List, MultiMap, String, String, CookieGenerator)}; a header policy naming a pseudo-header
     * ({@code :authority}, {@code :path}, {@code :method}, {@code :scheme}), which Envoy's request headers hold as any
     * other, hashes the value {@code pseudoHeaders} gives for that name (in lower case), or nothing when it gives null
     * or is null.
     */
    public static Long hash(List<HashPolicy> policies, MultiMap headers, String sourceIp, String query,
                            CookieGenerator cookies, java.util.function.UnaryOperator<String> pseudoHeaders) {
        Long hash = null;
        for (HashPolicy p : policies) {
            Long h = one(p, headers, sourceIp, query, cookies, pseudoHeaders);
            if (h != null) {
                long old = hash == null ? 0 : Long.rotateLeft(hash, 1);
                hash = old ^ h;
            }
            if (p.terminal() && hash != null) {
                break;
            }
        }
        return hash;
    }

    private static Long one(HashPolicy p, MultiMap headers, String sourceIp, String query, CookieGenerator cookies,
                            java.util.function.UnaryOperator<String> pseudoHeaders) {
        if (p instanceof HashPolicy.Header h) {
            List<String> values = headers == null ? List.of() : headers.getAll(h.name());
            if (h.name().startsWith(":")) {
                String v = pseudoHeaders == null ? null
                        : pseudoHeaders.apply(h.name().toLowerCase(java.util.Locale.ROOT));
                values = v == null ? List.of() : List.of(v);
            }
            if (values.isEmpty()) {
                return null;
            }
            if (h.regexRewrite() != null) {
                RegexRewriter rewriter = rewriter(h.regexRewrite());
                values = values.stream().map(rewriter::apply).toList();
            }
            if (values.size() == 1) {
                return Xxhash.hash64(values.get(0));
            }
            List<String> sorted = new ArrayList<>(values);
            Collections.sort(sorted);
            long seed = 0;
            for (String v : sorted) {
                seed = Xxhash.hash64(v, seed);
            }
            return seed;
        } else if (p instanceof HashPolicy.Cookie c) {
            String value = cookie(headers, c.name());
            // as Envoy: a cookie present with an empty value counts as absent (every such client would share one
            // host); one is made up only under a ttl
            if ((value == null || value.isEmpty()) && c.ttl() != null && cookies != null) {
                value = cookies.generate(c);
            }
            return value == null || value.isEmpty() ? null : Xxhash.hash64(value);
        } else if (p instanceof HashPolicy.SourceIp) {
            return sourceIp == null || sourceIp.isEmpty() ? null : Xxhash.hash64(sourceIp);
        } else if (p instanceof HashPolicy.QueryParameter q) {
            String value = queryParameter(query, q.name());
            return value == null ? null : Xxhash.hash64(value);
        }
        throw new IllegalStateException("unknown hash policy " + p);
    }

    /** The value of the first cookie named {@code name} in the request's Cookie headers, or null. */
    static String cookie(MultiMap headers, String name) {
        return headers == null ? null : cookie(headers.getAll("cookie"), name);
    }

    /**
     * The value of the first cookie named {@code name} in these Cookie header values ({@code a=1; b="2"}: a quoted
     * value without its quotes), or null. The JWT filter reads its tokens' cookies with it too.
     */
    public static String cookie(List<String> cookieHeaders, String name) {
        for (String header : cookieHeaders) {
            for (String part : header.split(";")) {
                int eq = part.indexOf('=');
                if (eq > 0 && part.substring(0, eq).trim().equals(name)) {
                    String v = part.substring(eq + 1).trim();
                    if (v.length() >= 2 && v.startsWith("\"") && v.endsWith("\"")) {
                        v = v.substring(1, v.length() - 1);
                    }
                    return v;
                }
            }
        }
        return null;
    }

    /** The raw value of the first query parameter named {@code name} ("" when it has no {@code =}), or null. */
    static String queryParameter(String query, String name) {
        if (query == null || query.isEmpty()) {
            return null;
        }
        for (String pair : query.split("&")) {
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            if (key.equals(name)) {
                return eq < 0 ? "" : pair.substring(eq + 1);
            }
        }
        return null;
    }
}
