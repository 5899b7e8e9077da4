package dev.inmesh.runtime.router;

import static dev.inmesh.runtime.router.Routes.cluster;
import static dev.inmesh.runtime.router.Routes.req;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class RouteMatchTest {

    private static RouteTable routes(String routesYaml) {
        StringBuilder indented = new StringBuilder();
        for (String line : routesYaml.split("\n")) {
            indented.append("  ").append(line).append('\n');
        }
        return Routes.table("name: r\nvirtual_hosts:\n- name: vh\n  domains: [\"*\"]\n  routes:\n" + indented);
    }

    @Test
    void theFirstMatchingRouteInListOrderWins() {
        var t = routes("""
                - {match: {prefix: /}, route: {cluster: first}}
                - {match: {prefix: /api}, route: {cluster: second}}
                """);
        assertEquals("first", cluster(t, req("h", "/api/x")));
    }

    @Test
    void prefixMatchesThePathWithoutQuery() {
        var t = routes("""
                - {match: {prefix: "/api?"}, route: {cluster: never}}
                - {match: {prefix: /api}, route: {cluster: api}}
                """);
        assertEquals("api", cluster(t, req("h", "/api?x=1")));
        assertEquals("api", cluster(t, req("h", "/apis")));
    }

    @Test
    void pathIsAnExactMatchOfThePathWithoutQueryAndFragment() {
        var t = routes("""
                - {match: {path: /exact}, route: {cluster: exact}}
                """);
        assertEquals("exact", cluster(t, req("h", "/exact?a=b")));
        assertEquals("exact", cluster(t, req("h", "/exact#frag")));
        assertEquals("", cluster(t, req("h", "/exact/more")));
    }

    @Test
    void matchingIsCaseSensitiveUnlessTurnedOff() {
        var t = routes("""
                - {match: {prefix: /API}, route: {cluster: sensitive}}
                - {match: {prefix: /Api, case_sensitive: false}, route: {cluster: insensitive}}
                - {match: {path: /Exact, case_sensitive: false}, route: {cluster: exact}}
                """);
        assertEquals("sensitive", cluster(t, req("h", "/API/x")));
        assertEquals("insensitive", cluster(t, req("h", "/api/x")));
        assertEquals("exact", cluster(t, req("h", "/EXACT")));
    }

    @Test
    void safeRegexMustMatchTheWholePathWithoutQuery() {
        var t = routes("""
                - {match: {safe_regex: {regex: "/v[0-9]+/items"}}, route: {cluster: rx}}
                """);
        assertEquals("rx", cluster(t, req("h", "/v12/items?page=2")));
        assertEquals("", cluster(t, req("h", "/v12/items/3")));
        assertEquals("", cluster(t, req("h", "/x/v12/items")));
    }

    @Test
    void pathSeparatedPrefixMatchesWholeSegmentsOnly() {
        var t = routes("""
                - {match: {path_separated_prefix: /api}, route: {cluster: seg}}
                """);
        assertEquals("seg", cluster(t, req("h", "/api")));
        assertEquals("seg", cluster(t, req("h", "/api/v1")));
        assertEquals("seg", cluster(t, req("h", "/api?x")));
        assertEquals("", cluster(t, req("h", "/apis")));
    }

    @Test
    void headerMatchersAreAnded() {
        var t = routes("""
                - match:
                    prefix: /
                    headers:
                    - {name: end-user, string_match: {exact: jason}}
                    - {name: x-canary, present_match: true}
                  route: {cluster: both}
                - {match: {prefix: /}, route: {cluster: rest}}
                """);
        assertEquals("both", cluster(t, req("h", "/").with("end-user", "jason").with("x-canary", "1")));
        assertEquals("rest", cluster(t, req("h", "/").with("end-user", "jason")));
    }

    @Test
    void ignoringCaseFoldsAsciiLettersOnlyAsEnvoysMatchersDo() {
        // A path or a header value is held one char per byte off the wire: "\u00c3" and "\u00e3" are the bytes
        // 0xC3 and 0xE3 (the first bytes of UTF-8's "é" and "ã"), which Envoy never takes for one another.
        var t = routes("""
                - {match: {path: /Abc, case_sensitive: false}, route: {cluster: exact}}
                - {match: {prefix: "/x\u00c3", case_sensitive: false}, route: {cluster: prefix}}
                - {match: {prefix: /, headers: [{name: h, string_match: {exact: k, ignore_case: true}}]}, route: {cluster: header}}
                - {match: {prefix: /, headers: [{name: s, string_match: {suffix: "\u00c9", ignore_case: true}}]}, route: {cluster: suffix}}
                - {match: {prefix: /, headers: [{name: c, string_match: {contains: "\u00d6K", ignore_case: true}}]}, route: {cluster: contains}}
                - {match: {prefix: /}, route: {cluster: other}}
                """);
        assertEquals("exact", cluster(t, req("h", "/aBC")));
        assertEquals("prefix", cluster(t, req("h", "/X\u00c3\u00a9")));
        assertEquals("other", cluster(t, req("h", "/x\u00e3\u00a9")));
        assertEquals("header", cluster(t, req("h", "/").with("h", "K")));
        assertEquals("other", cluster(t, req("h", "/").with("h", "\u212a")), "the Kelvin sign is not k");
        assertEquals("suffix", cluster(t, req("h", "/").with("s", "x\u00c9")));
        assertEquals("other", cluster(t, req("h", "/").with("s", "x\u00e9")));
        assertEquals("contains", cluster(t, req("h", "/").with("c", "a\u00d6kb")));
        assertEquals("other", cluster(t, req("h", "/").with("c", "a\u00f6kb")));
    }

    @Test
    void eachHeaderMatcherKindBehavesAsEnvoys() {
        var t = routes("""
                - {match: {prefix: /, headers: [{name: h, exact_match: abc}]}, route: {cluster: exact}}
                - {match: {prefix: /, headers: [{name: h, prefix_match: pre}]}, route: {cluster: prefix}}
                - {match: {prefix: /, headers: [{name: h, suffix_match: suf}]}, route: {cluster: suffix}}
                - {match: {prefix: /, headers: [{name: h, contains_match: mid}]}, route: {cluster: contains}}
                - {match: {prefix: /, headers: [{name: h, safe_regex_match: {regex: "[0-9]{3}"}}]}, route: {cluster: regex}}
                - {match: {prefix: /, headers: [{name: h, range_match: {start: -10, end: 0}}]}, route: {cluster: range}}
                - {match: {prefix: /, headers: [{name: h, string_match: {exact: CI, ignore_case: true}}]}, route: {cluster: ci}}
                - {match: {prefix: /}, route: {cluster: none}}
                """);
        assertEquals("exact", cluster(t, req("h", "/").with("h", "abc")));
        assertEquals("prefix", cluster(t, req("h", "/").with("h", "prefix")));
        assertEquals("suffix", cluster(t, req("h", "/").with("h", "thesuf")));
        assertEquals("contains", cluster(t, req("h", "/").with("h", "amidst")));
        assertEquals("regex", cluster(t, req("h", "/").with("h", "123")));
        assertEquals("none", cluster(t, req("h", "/").with("h", "1234")), "a regex must match the whole value");
        assertEquals("range", cluster(t, req("h", "/").with("h", "-1")));
        assertEquals("none", cluster(t, req("h", "/").with("h", "0")), "a range is [start, end)");
        assertEquals("none", cluster(t, req("h", "/").with("h", "-1x")), "a range needs an integer");
        assertEquals("ci", cluster(t, req("h", "/").with("h", "ci")));
    }

    @Test
    void anEmptyLegacyExactMatchTakesAnyValueWhereAnEmptyStringMatchExactTakesOnlyTheEmptyValue() {
        var t = routes("""
                - {match: {prefix: /legacy, headers: [{name: h, exact_match: ""}]}, route: {cluster: legacy}}
                - {match: {prefix: /sm, headers: [{name: h, string_match: {exact: ""}}]}, route: {cluster: sm}}
                - {match: {prefix: /}, route: {cluster: other}}
                """);
        assertEquals("legacy", cluster(t, req("h", "/legacy").with("h", "v")));
        assertEquals("other", cluster(t, req("h", "/legacy")), "the legacy form still needs the header");
        assertEquals("sm", cluster(t, req("h", "/sm").with("h", "")));
        assertEquals("other", cluster(t, req("h", "/sm").with("h", "v")));
    }

    @Test
    void aHeaderSentTwiceIsMatchedAsItsValuesJoinedByComma() {
        var t = routes("""
                - {match: {prefix: /, headers: [{name: h, exact_match: "a,b"}]}, route: {cluster: joined}}
                """);
        assertEquals("joined", cluster(t, req("h", "/").with("h", "a").with("h", "b")));
    }

    @Test
    void invertMatchInvertsAPresentHeadersResult() {
        var t = routes("""
                - {match: {prefix: /, headers: [{name: h, string_match: {exact: v1}, invert_match: true}]}, route: {cluster: not-v1}}
                - {match: {prefix: /}, route: {cluster: other}}
                """);
        assertEquals("not-v1", cluster(t, req("h", "/").with("h", "v2")));
        assertEquals("other", cluster(t, req("h", "/").with("h", "v1")));
    }

    @Test
    void aMissingHeaderMatchesOnlyPresentFalseOrInvertedPresentTrue() {
        var t = routes("""
                - {match: {prefix: /a, headers: [{name: h, string_match: {exact: v}, invert_match: true}]}, route: {cluster: inverted-value}}
                - {match: {prefix: /a, headers: [{name: h, present_match: false}]}, route: {cluster: absent}}
                - {match: {prefix: /b, headers: [{name: h, present_match: true, invert_match: true}]}, route: {cluster: inverted-present}}
                - {match: {prefix: /c, headers: [{name: h, range_match: {start: 0, end: 10}}]}, route: {cluster: range}}
                - {match: {prefix: /}, route: {cluster: fallthrough}}
                """);
        assertEquals("absent", cluster(t, req("h", "/a")), "an inverted value matcher does not match a missing header");
        assertEquals("inverted-present", cluster(t, req("h", "/b")));
        assertEquals("fallthrough", cluster(t, req("h", "/c")));
    }

    @Test
    void treatMissingHeaderAsEmptyMatchesTheEmptyValue() {
        var t = routes("""
                - {match: {prefix: /, headers: [{name: h, range_match: {start: 0, end: 10}, invert_match: true, treat_missing_header_as_empty: true}]}, route: {cluster: empty-not-in-range}}
                - {match: {prefix: /}, route: {cluster: other}}
                """);
        assertEquals("empty-not-in-range", cluster(t, req("h", "/")));
    }

    @Test
    void queryParameterMatchersUseTheFirstOccurrenceAndANameAloneMeansPresent() {
        var t = routes("""
                - {match: {prefix: /, query_parameters: [{name: debug}]}, route: {cluster: debug}}
                - {match: {prefix: /, query_parameters: [{name: v, string_match: {exact: "2"}}]}, route: {cluster: v2}}
                - {match: {prefix: /}, route: {cluster: other}}
                """);
        assertEquals("debug", cluster(t, req("h", "/x?debug")));
        assertEquals("debug", cluster(t, req("h", "/x?a=1&debug=")));
        assertEquals("v2", cluster(t, req("h", "/x?v=2&v=3")));
        assertEquals("other", cluster(t, req("h", "/x?v=3&v=2")));
        assertEquals("other", cluster(t, req("h", "/x?vv=2")));
    }

    @Test
    void aRuntimeFractionMatchesWhenRandomModDenominatorIsBelowTheNumerator() {
        var t = routes("""
                - {match: {prefix: /, runtime_fraction: {default_value: {numerator: 25, denominator: HUNDRED}, runtime_key: k}}, route: {cluster: canary}}
                - {match: {prefix: /}, route: {cluster: stable}}
                """);
        assertEquals("canary", cluster(t, req("h", "/"), 24));
        assertEquals("stable", cluster(t, req("h", "/"), 25));
        assertEquals("canary", cluster(t, req("h", "/"), 1024));
        var m = routes("""
                - {match: {prefix: /, runtime_fraction: {default_value: {numerator: 5, denominator: MILLION}}}, route: {cluster: tiny}}
                - {match: {prefix: /}, route: {cluster: stable}}
                """);
        assertEquals("tiny", cluster(m, req("h", "/"), 3_000_004));
        assertEquals("stable", cluster(m, req("h", "/"), 3_000_005));
    }

    @Test
    void grpcMatchNeedsApplicationGrpcExactlyOrWithAPlusSuffixButNotGrpcWeb() {
        var t = routes("""
                - {match: {prefix: /, grpc: {}}, route: {cluster: grpc}}
                - {match: {prefix: /}, route: {cluster: http}}
                """);
        assertEquals("grpc", cluster(t, req("h", "/svc/M").with("content-type", "application/grpc+proto")));
        assertEquals("grpc", cluster(t, req("h", "/svc/M").with("content-type", "application/grpc")));
        assertEquals("http", cluster(t, req("h", "/svc/M").with("content-type", "application/json")));
        assertEquals("http", cluster(t, req("h", "/svc/M").with("content-type", "application/grpc-web")));
        assertEquals("http", cluster(t, req("h", "/svc/M").with("content-type", "application/grpc-web+proto")));
        assertEquals("http", cluster(t, req("h", "/svc/M")));
    }
}
