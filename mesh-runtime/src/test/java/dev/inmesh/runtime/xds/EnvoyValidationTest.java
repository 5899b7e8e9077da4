package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.api.config.listener.ConnectionLifetimes;
import dev.inmesh.api.config.listener.Http1Options;
import dev.inmesh.api.config.listener.HeadersWithUnderscoresAction;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.OriginalIpDetection;
import dev.inmesh.api.config.listener.OriginalSrc;
import dev.inmesh.api.config.listener.PathNormalization;
import dev.inmesh.api.config.listener.ProxyProtocol;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What Envoy rejects, Inmesh rejects, with a message that names the file, the resource and the field path, in the
 * words of the config rather than of a Java exception.
 */
class EnvoyValidationTest {

    @TempDir
    Path dir;

    /** A route configuration "9080" with one virtual host "reviews" whose only route is {@code route}. */
    static String oneRoute(String route) {
        return """
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: [reviews, reviews.default.svc.cluster.local]
                  routes:
                  - match: {prefix: /}
                """ + "    " + route.strip().replace("\n", "\n    ") + "\n";
    }

    /** A listener "0.0.0.0_9080" whose HCM has the given HTTP filters (YAML list items). */
    static String listenerWithHttpFilters(String filters) {
        return """
                name: 0.0.0.0_9080
                address: {socket_address: {address: 0.0.0.0, port_value: 9080}}
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: outbound_0.0.0.0_9080
                      rds: {route_config_name: "9080"}
                      http_filters:
                """ + filters.stripTrailing().indent(8);
    }

    static final String ROUTER = """
            - name: envoy.filters.http.router
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
            """;

    private static String tcpChain(String name, String match, String cluster) {
        return "- name: " + name + "\n" + (match.isEmpty() ? "" : "  filter_chain_match: " + match + "\n") + """
                  filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: %s
                      cluster: %s
                """.formatted(cluster, cluster);
    }

    /** A listener {@code virtualInbound} with the given filter chains (YAML list items). */
    private static String virtualInbound(String chains) {
        return """
                name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                filter_chains:
                """ + chains;
    }

    private Path file(String name, String text) throws IOException {
        return Files.writeString(dir.resolve(name), text);
    }

    private static String rejected(Path path) {
        var e = assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(path));
        String m = e.getMessage();
        assertTrue(m.startsWith(path.toString() + ": "), "names the file: " + m);
        assertFalse(m.matches("(?s).*\\b(java|com|io)\\.[a-z]+\\..*Exception.*"), "no Java class names: " + m);
        assertFalse(m.substring(path.toString().length() + 2).matches("[A-Za-z.]*(Exception|Error)"),
                "more than an exception's class name: " + m);
        return m;
    }

    private static void assertContains(String message, String... parts) {
        for (String p : parts) {
            assertTrue(message.contains(p), "expected <" + p + "> in: " + message);
        }
    }

    private String rejectedRoutes(String yaml) throws IOException {
        return rejected(file("routes.yaml", yaml));
    }

    /** Envoy's validation requires a network filter's name and a connection manager's or TCP proxy's stat_prefix. */
    @Test
    void anEmptyStatPrefixOrNetworkFilterNameIsRejectedAsEnvoyValidatesThem() throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        assertContains(rejected(file("hcm.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                "stat_prefix: \"\""))), "stat_prefix", "at least 1 character");
        assertContains(rejected(file("name.yaml", base.replace("- name: envoy.filters.network.http_connection_manager",
                "- name: \"\""))), "filters[0].name", "at least 1 character");
        assertContains(rejected(file("tcp.yaml", virtualInbound(tcpChain("c", "", "c1")
                .replace("stat_prefix: c1", "stat_prefix: \"\"")))), "stat_prefix", "at least 1 character");
    }

    /**
     * A value Envoy's API refuses (a metadata namespace must have a name), which Inmesh's own parsing takes, fails the
     * read, as Envoy's file subscription refuses the file; a lenient read does not leave it out.
     */
    @Test
    void aValueTheProtoConstraintsOfEnvoysApiRefuseFailsEvenALenientRead() throws IOException {
        String cluster = """
                name: c1
                type: STATIC
                connect_timeout: 1s
                metadata: {filter_metadata: {"": {}}}
                load_assignment:
                  cluster_name: c1
                  endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1,
                    port_value: 9080}}}}]}]
                """;
        String expected = "Cluster \"c1\": metadata.filter_metadata: key \"\" (expected: at least 1 character)";
        assertContains(rejected(file("c1.yaml", cluster)), expected);
        List<String> leftOut = new java.util.ArrayList<>();
        var e = assertThrows(EnvoyConfigReader.ConfigReadException.class,
                () -> EnvoyConfigReader.readLeniently(cluster, leftOut::add));
        assertContains(e.getMessage(), expected);
        assertEquals(List.of(), leftOut);
    }

    @Test
    void aDomainInTwoVirtualHostsIsRejectedAtItsIndex() throws IOException {
        String twice = """
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: [reviews, reviews.default]
                  routes: [{match: {prefix: /}, route: {cluster: a}}]
                - name: reviews-again
                  domains: [reviews.default.svc.cluster.local, Reviews]
                  routes: [{match: {prefix: /}, route: {cluster: b}}]
                """;
        assertContains(rejectedRoutes(twice), "RouteConfiguration \"9080\": virtual_hosts[1].domains[1]: \"Reviews\"",
                "virtual host \"reviews\"");
        // Envoy's RouteMatcher keeps a domain with a '*' inside as an exact name, and refuses it twice as any
        String stars = twice.replace("reviews, reviews.default]", "reviews, \"foo.*.com\"]")
                .replace("Reviews]", "\"FOO.*.com\"]");
        assertContains(rejectedRoutes(stars), "virtual_hosts[1].domains[1]: \"FOO.*.com\"", "virtual host \"reviews\"");
    }

    @Test
    void aSecondWildcardVirtualHostIsRejected() throws IOException {
        String m = rejectedRoutes("""
                name: "9080"
                virtual_hosts:
                - name: allow_any
                  domains: ["*"]
                  routes: [{match: {prefix: /}, route: {cluster: PassthroughCluster}}]
                - name: block_all
                  domains: ["*"]
                  routes: [{match: {prefix: /}, route: {cluster: BlackHoleCluster}}]
                """);
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[1].domains[0]: \"*\"", "single wildcard");
    }

    @Test
    void aDomainTwiceInOneVirtualHostIsRejected() throws IOException {
        String m = rejectedRoutes("""
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: [reviews, reviews.default, reviews]
                  routes: [{match: {prefix: /}, route: {cluster: a}}]
                """);
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0].domains[2]: \"reviews\"");
    }

    @Test
    void twoVirtualHostsOfTheSameNameAreRejected() throws IOException {
        String m = rejectedRoutes("""
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: [reviews]
                  routes: [{match: {prefix: /}, route: {cluster: a}}]
                - name: reviews
                  domains: [reviews.default]
                  routes: [{match: {prefix: /}, route: {cluster: b}}]
                """);
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[1].name: \"reviews\" (expected: unique "
                + "virtual host names; virtual_hosts[0] has it)");
    }

    @Test
    void weightsThatSumToZeroAreRejected() throws IOException {
        String m = rejectedRoutes(oneRoute("""
                route:
                  weighted_clusters:
                    clusters:
                    - {name: "outbound|9080|v1|reviews.default.svc.cluster.local", weight: 0}
                    - {name: "outbound|9080|v2|reviews.default.svc.cluster.local", weight: 0}
                """));
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.weighted_clusters.clusters",
                "sum 0");
        assertFalse(m.contains("weighted_clusters.weighted_clusters"), m);
    }

    @Test
    void anInvalidPathRegexIsRejected() throws IOException {
        String m = rejectedRoutes("""
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: [reviews]
                  routes:
                  - match: {safe_regex: {regex: "/reviews/(["}}
                    route: {cluster: a}
                """);
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].match.safe_regex.regex: "
                + "\"/reviews/([\" is not a valid RE2 regex");
    }

    @Test
    void anInvalidHeaderRegexIsRejected() throws IOException {
        String m = rejectedRoutes("""
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: [reviews]
                  routes:
                  - match:
                      prefix: /
                      headers: [{name: end-user, safe_regex_match: {regex: "jas(on"}}]
                    route: {cluster: a}
                """);
        assertContains(m, "virtual_hosts[0].routes[0].match.headers[0].safe_regex_match.regex: \"jas(on\"");
    }

    @Test
    void aHeaderMatcherWithoutANameIsNamedByItsIndexOnce() throws IOException {
        String m = rejectedRoutes(oneRoute("""
                route: {cluster: a}
                """).replace("match: {prefix: /}", "match: {prefix: /, headers: [{name: x, present_match: true}, "
                + "{exact_match: jason}]}"));
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].match.headers[1].name: ");
        assertFalse(m.contains("headers.name"), m);
    }

    @Test
    void anHttpFilterWithoutANameIsNamedByItsIndex() throws IOException {
        String m = rejected(file("listener.yaml", listenerWithHttpFilters("""
                - typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
                """ + ROUTER)));
        assertContains(m, "Listener \"0.0.0.0_9080\": filter_chains[0].filters[0].typed_config.http_filters[0]"
                + ".name: ");
    }

    @Test
    void emptyRequiredValuesAreNamedByTheirPathOnce() throws IOException {
        String[][] cases = {
            {"match: {prefix: /, query_parameters: [{name: \"\", present_match: true}]}\n    route: {cluster: a}",
                "routes[0].match.query_parameters[0].name: "},
            {"match: {prefix: /}\n    direct_response: {status: 100}", "routes[0].direct_response.status: 100"},
            {"match: {prefix: /}\n    route: {cluster: a, regex_rewrite: {pattern: {regex: \"\"}, substitution: x}}",
                "routes[0].route.regex_rewrite.pattern.regex: "},
            {"match: {prefix: /}\n    redirect: {regex_rewrite: {pattern: {regex: \"\"}, substitution: x}}",
                "routes[0].redirect.regex_rewrite.pattern.regex: "},
            {"match: {prefix: /}\n    route: {cluster: a, hash_policy: [{header: {header_name: \"\"}}]}",
                "routes[0].route.hash_policy[0].header.header_name: "},
            {"match: {prefix: /}\n    route: {cluster: a}\n    request_headers_to_add: [{header: {key: \"\", value: v}}]",
                "routes[0].request_headers_to_add[0].header.key: "},
            {"match: {prefix: /, headers: [{name: x, safe_regex_match: {regex: \"\"}}]}\n    route: {cluster: a}",
                "routes[0].match.headers[0].safe_regex_match.regex: "},
        };
        for (String[] c : cases) {
            String yaml = """
                    name: "9080"
                    virtual_hosts:
                    - name: reviews
                      domains: [reviews]
                      routes:
                      - %s
                    """.formatted(c[0]);
            String m = rejectedRoutes(yaml);
            assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0]." + c[1]);
        }
    }

    @Test
    void anInvalidRegexRewriteIsRejected() throws IOException {
        String m = rejectedRoutes(oneRoute("""
                route: {cluster: a, regex_rewrite: {pattern: {regex: "^/v1/(.*"}, substitution: "/\\\\1"}}
                """));
        assertContains(m, "virtual_hosts[0].routes[0].route.regex_rewrite.pattern.regex: \"^/v1/(.*\"");
    }

    /** A route's hedge policy, else its virtual host's (the route's replaces it whole, as Envoy builds it). */
    @Test
    void aHedgePolicyIsReadOnRoutesAndVirtualHosts() throws Exception {
        var rc = EnvoyConfigReader.read(file("routes.yaml", """
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: [reviews]
                  hedge_policy: {hedge_on_per_try_timeout: true, initial_requests: 1,
                                 additional_request_chance: {numerator: 0}}
                  routes:
                  - match: {prefix: /own}
                    route: {cluster: a, hedge_policy: {}}
                  - match: {prefix: /}
                    route: {cluster: a}
                """)).routes().get("9080");
        var vh = rc.virtualHosts().get(0);
        assertEquals(new dev.inmesh.api.config.route.HedgePolicy(true), vh.hedgePolicy());
        var own = (dev.inmesh.api.config.route.RouteAction) vh.routes().get(0).action();
        assertEquals(dev.inmesh.api.config.route.HedgePolicy.NONE, own.hedgePolicy(), "the route's own, off");
        var inherits = (dev.inmesh.api.config.route.RouteAction) vh.routes().get(1).action();
        assertEquals(null, inherits.hedgePolicy(), "none of its own: the virtual host's applies");
    }

    /**
     * Envoy never reads {@code initial_requests} nor {@code additional_request_chance} (not implemented); a value
     * other than the default is refused by path, and an {@code initial_requests} of 0 as Envoy's validation refuses it.
     */
    @Test
    void hedgeFieldsEnvoyDoesNotImplementAreRejectedUnlessDefault() throws IOException {
        String m = rejectedRoutes(oneRoute("""
                route: {cluster: a, hedge_policy: {initial_requests: 2}}
                """));
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.hedge_policy"
                + ".initial_requests: 2 is not supported");
        m = rejectedRoutes(oneRoute("""
                route: {cluster: a, hedge_policy: {initial_requests: 0}}
                """));
        assertContains(m, "virtual_hosts[0].routes[0].route.hedge_policy.initial_requests: 0 (expected: >= 1)");
        m = rejectedRoutes("""
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: [reviews]
                  hedge_policy: {additional_request_chance: {numerator: 5}}
                  routes: [{match: {prefix: /}, route: {cluster: a}}]
                """);
        assertContains(m, "virtual_hosts[0].hedge_policy.additional_request_chance: not supported");
    }

    @Test
    void appendWithAnAppendActionOtherThanTheDefaultIsRejected() throws IOException {
        String m = rejectedRoutes(oneRoute("""
                route: {cluster: a}
                request_headers_to_add:
                - {header: {key: x-a, value: "1"}, append: false, append_action: ADD_IF_ABSENT}
                """));
        assertContains(m, "virtual_hosts[0].routes[0].request_headers_to_add[0]", "append", "append_action");
    }

    @Test
    void headerRulesThatAddOrRemoveHostOrAPseudoHeaderAreRejectedAtEachLevelAsEnvoyRejectsThem() throws IOException {
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a}
                request_headers_to_add:
                - {header: {key: x-a, value: "1"}}
                - {header: {key: Host, value: other}}
                """)), "virtual_hosts[0].routes[0].request_headers_to_add[1].header.key: \"Host\"", "pseudo-headers");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a}
                request_headers_to_remove: [x-a, ":path"]
                """)), "virtual_hosts[0].routes[0].request_headers_to_remove[1]: \":path\"");
        assertContains(rejectedRoutes(oneRoute("""
                route: {weighted_clusters: {clusters: [{name: a, weight: 1,
                  response_headers_to_add: [{header: {key: ":status", value: "201"}}]}]}}
                """)), "route.weighted_clusters.clusters[0].response_headers_to_add[0].header.key: \":status\"");
        assertContains(rejectedRoutes("""
                name: "9080"
                response_headers_to_remove: [host]
                virtual_hosts:
                - name: reviews
                  domains: [reviews]
                  request_headers_to_add: [{header: {key: ":authority", value: x}}]
                  routes: [{match: {prefix: /}, route: {cluster: a}}]
                """), "virtual_hosts[0].request_headers_to_add[0].header.key: \":authority\"");
        assertContains(rejectedRoutes("""
                name: "9080"
                response_headers_to_remove: [host]
                virtual_hosts: []
                """), "RouteConfiguration \"9080\": response_headers_to_remove[0]: \"host\"");
    }

    /**
     * Header values are Envoy's substitution format strings (header_parser.cc): istiod puts every service of a port in
     * one route configuration, so a VirtualService's {@code %HOSTNAME%} must load rather than take them all down; an
     * operator Envoy does not know is refused at its path.
     */
    @Test
    void headerValuesWithEnvoysCommandOperatorsLoadAndAnUnknownOperatorIsRefusedAtItsPath() throws Exception {
        var config = EnvoyConfigReader.read(file("ok.yaml", oneRoute("""
                route: {cluster: a}
                request_headers_to_add:
                - {header: {key: x-peer, value: "%DOWNSTREAM_REMOTE_ADDRESS%"}}
                - {header: {key: x-copy, value: "%REQ(x-foo)%"}}
                - {header: {key: x-host, value: "prefix %HOSTNAME% suffix"}}
                - {header: {key: x-legacy, value: '%UPSTREAM_METADATA(["istio", "x"])%%PER_REQUEST_STATE(a.b)%'}}
                - {header: {key: x-literal, value: "100%%"}}
                """)));
        var added = config.routes().get("9080").virtualHosts().get(0).routes().get(0).headers().requestHeadersToAdd();
        assertEquals("%DOWNSTREAM_REMOTE_ADDRESS%", added.get(0).value());
        assertTrue(added.get(0).formatted());
        assertEquals("%REQ(x-foo)%", added.get(1).value());
        assertEquals("prefix %HOSTNAME% suffix", added.get(2).value());
        assertTrue(added.get(3).formatted());
        assertEquals("100%", added.get(4).value(), "a value without a command is its literal");
        assertFalse(added.get(4).formatted());
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a}
                response_headers_to_add:
                - {header: {key: x-a, value: "1"}}
                - {header: {key: x-b, value: "a %NOT_AN_OPERATOR% b"}}
                """)), "virtual_hosts[0].routes[0].response_headers_to_add[1].header.value",
                "%NOT_AN_OPERATOR% is not a command operator");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a}
                request_headers_to_add: [{header: {key: x-a, value: "50%"}}]
                """)), "virtual_hosts[0].routes[0].request_headers_to_add[0].header.value", "no valid command operator");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a}
                response_headers_to_add: [{header: {key: x-a, value: "%UPSTREAM_METADATA([istio, x])%"}}]
                """)), "virtual_hosts[0].routes[0].response_headers_to_add[0].header.value",
                "not a JSON array of keys");
    }

    @Test
    void aHeaderRuleWithALineBreakOrAnEmptyNameToRemoveIsRejectedAsEnvoyValidatesHeaders() throws IOException {
        // a value with CR or LF cannot be sent as an HTTP header; Envoy refuses it in the configuration
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a}
                request_headers_to_add: [{header: {key: x-a, value: "1\\r\\nx-injected: 2"}}]
                """)), "virtual_hosts[0].routes[0].request_headers_to_add[0].header.value: \"1\\r\\nx-injected: 2\"",
                "no NUL, CR or LF");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a}
                response_headers_to_add: [{header: {key: "x-a\\nb", value: "1"}}]
                """)), "virtual_hosts[0].routes[0].response_headers_to_add[0].header.key: \"x-a\\nb\"");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a}
                request_headers_to_remove: [x-a, ""]
                """)), "virtual_hosts[0].routes[0].request_headers_to_remove[1]: \"\"",
                "(expected: at least 1 character)");
    }

    @Test
    void ignoreCaseOnASafeRegexStringMatchIsRejectedAsEnvoyRejectsIt() throws IOException {
        String header = "{name: x-a, string_match: {exact: A, ignore_case: true}}";
        String query = "{name: q, string_match: {safe_regex: {regex: \"a.*\"}, ignore_case: true}}";
        String m = rejectedRoutes("name: \"9080\"\nvirtual_hosts: [{name: reviews, domains: [reviews], routes: ["
                + "{match: {prefix: /, headers: [" + header + "]}, route: {cluster: a}}, "
                + "{match: {prefix: /, query_parameters: [" + query + "]}, route: {cluster: a}}]}]\n");
        assertContains(m, "virtual_hosts[0].routes[1].match.query_parameters[0].string_match.ignore_case: true with "
                + "safe_regex");
    }

    @Test
    void aDirectResponseBodyLongerThanTheRouteConfigurationsLimitIsRejectedAsEnvoyRejectsIt() throws Exception {
        String routes = "name: \"9080\"\n%svirtual_hosts: [{name: reviews, domains: [reviews], routes: ["
                + "{match: {prefix: /a}, direct_response: {status: 200, body: {inline_string: \"%s\"}}}]}]\n";
        assertContains(rejectedRoutes(routes.formatted("", "x".repeat(4097))),
                "virtual_hosts[0].routes[0].direct_response.body: 4097 bytes (expected: at most 4096");
        // bytes, not characters: 2049 two-byte characters are 4098 bytes
        assertContains(rejectedRoutes(routes.formatted("", "\u00e9".repeat(2049))), "body: 4098 bytes");
        assertContains(rejectedRoutes(routes.formatted("max_direct_response_body_size_bytes: 10\n", "x".repeat(11))),
                "body: 11 bytes (expected: at most 10,");
        var loaded = EnvoyConfigReader.read(file("big.yaml", routes.formatted(
                "max_direct_response_body_size_bytes: 1048576\n", "x".repeat(5000))));
        var action = (dev.inmesh.api.config.route.DirectResponseAction) loaded.routes().get("9080").virtualHosts()
                .get(0).routes().get(0).action();
        assertEquals(5000, action.body().length());
        EnvoyConfigReader.read(file("limit.yaml", routes.formatted("", "x".repeat(4096))));
    }

    @Test
    void aDirectResponseBodyFromAFileIsReadWithTheConfigurationAndOneNotThereIsRejectedByName() throws Exception {
        String routes = "name: \"9080\"\nvirtual_hosts: [{name: reviews, domains: [reviews], routes: ["
                + "{match: {prefix: /a}, direct_response: {status: 200, body: %s}}]}]\n";
        Path body = file("body.txt", "from a file\n");
        var loaded = EnvoyConfigReader.read(file("file.yaml", routes.formatted("{filename: \"" + body + "\"}")));
        var action = (dev.inmesh.api.config.route.DirectResponseAction) loaded.routes().get("9080").virtualHosts()
                .get(0).routes().get(0).action();
        assertEquals("from a file\n", action.body());
        assertContains(rejectedRoutes(routes.formatted("{filename: /nonexistent/body.txt}")),
                "virtual_hosts[0].routes[0].direct_response.body.filename: cannot read \"/nonexistent/body.txt\"");
        assertContains(rejectedRoutes(routes.formatted("{environment_variable: INMESH_TEST_UNSET_VARIABLE}")),
                "direct_response.body.environment_variable: \"INMESH_TEST_UNSET_VARIABLE\" is not set");
        // the limit holds for a file's body too
        Path big = file("big.txt", "x".repeat(4097));
        assertContains(rejectedRoutes(routes.formatted("{filename: \"" + big + "\"}")),
                "virtual_hosts[0].routes[0].direct_response.body: 4097 bytes (expected: at most 4096");
        // an environment variable the test's process has
        String path = System.getenv("PATH");
        var fromEnv = EnvoyConfigReader.read(file("env.yaml", routes.formatted("{environment_variable: PATH}").replace("name: \"9080\"\n",
                        "name: \"9080\"\nmax_direct_response_body_size_bytes: 1048576\n")));
        assertEquals(path, ((dev.inmesh.api.config.route.DirectResponseAction) fromEnv.routes().get("9080")
                .virtualHosts().get(0).routes().get(0).action()).body());
    }

    @Test
    void aMirrorPolicyThatNamesBothAClusterAndAClusterHeaderIsRejectedAtItsIndexAsEnvoyDoes() throws IOException {
        String m = rejectedRoutes(oneRoute("""
                route: {cluster: a, request_mirror_policies: [{cluster: s}, {cluster: shadow, cluster_header: x-m}]}
                """));
        assertContains(m, "virtual_hosts[0].routes[0].route.request_mirror_policies[1].cluster: shadow",
                "exactly one of cluster or cluster_header");
    }

    @Test
    void anUnknownJsonFieldIsRejectedWithItsPath() throws IOException {
        String m = rejected(file("routes.json", """
                {"name": "9080", "virtual_hosts": [{"name": "reviews", "domains": ["reviews"],
                  "routes": [{"match": {"prefix": "/"},
                              "route": {"weighted_clusterz": {"clusters": [{"name": "a", "weight": 1}]}}}]}]}
                """));
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.weighted_clusterz: "
                + "unknown field");
    }

    @Test
    void anUnknownCamelCaseFieldIsRejectedWithItsPath() throws IOException {
        String m = rejected(file("routes.json", """
                [{"name": "9080", "virtualHosts": [{"name": "reviews", "domains": ["reviews"],
                  "routes": [{"match": {"prefix": "/"},
                              "route": {"cluster": "a", "retryPolicy": {"retryOn": "5xx", "numRetriez": 3}}}]}]}]
                """));
        assertContains(m, "RouteConfiguration \"9080\": virtualHosts[0].routes[0].route.retryPolicy.numRetriez: "
                + "unknown field");
    }

    @Test
    void anUnknownFieldInsideATypedConfigIsRejectedWithItsPath() throws IOException {
        String m = rejected(file("listener.yaml", listenerWithHttpFilters("""
                - name: envoy.filters.http.router
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
                    dynamic_statz: true
                """)));
        assertContains(m, "Listener \"0.0.0.0_9080\": filter_chains[0].filters[0].typed_config.http_filters[0]"
                + ".typed_config.dynamic_statz: unknown field");
    }

    @Test
    void aStringWhereANumberIsExpectedIsRejectedWithItsPath() throws IOException {
        String m = rejectedRoutes(oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx, num_retries: two}}
                """));
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.retry_policy.num_retries: ",
                "two");
    }

    @Test
    void aRetryPriorityOtherThanPreviousPrioritiesOrWithoutAnUpdateFrequencyIsRejectedWithItsPath()
            throws IOException {
        String at = "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.retry_policy.retry_priority.";
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx, retry_priority: {name: envoy.retry_priorities.other}}}
                """)), at + "name: envoy.retry_priorities.other (expected: envoy.retry_priorities.previous_priorities)");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx,
                  retry_priority: {name: envoy.retry_priorities.previous_priorities}}}
                """)), at + "typed_config: none (expected: a envoy.extensions.retry.priority.previous_priorities.v3"
                + ".PreviousPrioritiesConfig with its update_frequency)");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx,
                  retry_priority: {name: envoy.retry_priorities.previous_priorities, typed_config: {"@type":
                    type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig}}}}
                """)), at + "typed_config.update_frequency: 0 (expected: > 0)");
    }

    @Test
    void aRetryConditionEnvoyDoesNotKnowIsIgnoredAndTheKnownOnesKept() throws Exception {
        // Envoy's route config keeps the conditions it knows and drops the rest; the route is not refused
        var routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: "5xx, some-future-condition ,connect-failure,,unavailable",
                  num_retries: 2}}
                """))).routes();
        var action = (dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes().get(0)
                .action();
        assertEquals(Set.of("5xx", "connect-failure", "unavailable"), action.retryPolicy().retryOn());
    }

    @Test
    void aRateLimitedRetryBackOffIsReadWithItsDefaultsAndABadOneRefusedAtItsPath() throws Exception {
        var routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx, rate_limited_retry_back_off: {reset_headers: [
                  {name: Retry-After}, {name: x-ratelimit-reset, format: UNIX_TIMESTAMP}]}}}
                """))).routes();
        var action = (dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes().get(0)
                .action();
        assertEquals(new dev.inmesh.api.config.route.RetryPolicy.RateLimitedBackOff(List.of(
                new dev.inmesh.api.config.route.RetryPolicy.ResetHeader("retry-after", false),
                new dev.inmesh.api.config.route.RetryPolicy.ResetHeader("x-ratelimit-reset", true)),
                java.time.Duration.ofSeconds(300)), action.retryPolicy().rateLimitedBackOff());
        String at = "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.retry_policy."
                + "rate_limited_retry_back_off.";
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx, rate_limited_retry_back_off: {reset_headers: []}}}
                """)), at + "reset_headers: 0 items (expected: at least 1 item)");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx, rate_limited_retry_back_off: {
                  reset_headers: [{name: "bad name"}]}}}
                """)), at + "reset_headers[0].name: \"bad name\" (expected: an HTTP header name)");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx, rate_limited_retry_back_off: {
                  reset_headers: [{name: retry-after}], max_interval: 0.001s}}}
                """)), at + "max_interval: PT0.001S (expected: > 1ms)");
    }

    /**
     * As Envoy's RetryPolicyImpl: a retry back-off's intervals are read in whole milliseconds, one under 1 ms rounded up
     * to 1 ms (as its base_interval's documentation says), and only then is max_interval compared with base_interval.
     */
    @Test
    void aRetryBackOffUnderAMillisecondIsRoundedUpAndTheIntervalsComparedInWholeMilliseconds() throws Exception {
        for (String[] c : new String[][] {{"{base_interval: 0.0005s}", "1", "10"},
            {"{base_interval: 0.0005s, max_interval: 0.0007s}", "1", "1"},
            {"{base_interval: 0.0015s, max_interval: 0.0012s}", "1", "1"},
            {"{base_interval: 0.025s}", "25", "250"}}) {
            var routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute(
                    "route: {cluster: a, retry_policy: {retry_on: 5xx, retry_back_off: " + c[0] + "}}\n"))).routes();
            var policy = ((dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes()
                    .get(0).action()).retryPolicy();
            assertEquals(Long.parseLong(c[1]), policy.backOffBase().toMillis(), c[0]);
            assertEquals(Long.parseLong(c[2]), policy.backOffMax().toMillis(), c[0]);
        }
        assertContains(rejectedRoutes(oneRoute(
                "route: {cluster: a, retry_policy: {retry_on: 5xx, retry_back_off: {base_interval: 0.003s, "
                        + "max_interval: 0.0029s}}}\n")),
                "retry_back_off.max_interval: PT0.0029S (expected: >= base_interval PT0.003S)");
        assertContains(rejectedRoutes(oneRoute(
                "route: {cluster: a, retry_policy: {retry_on: 5xx, retry_back_off: {base_interval: 0.0005s, "
                        + "max_interval: 0s}}}\n")), "retry_back_off.max_interval: 0s (expected: > 0s)");
    }

    @Test
    void retryHostPredicatesAreReadByNameOrTypeAndAnUnknownOneIsRefusedAtItsPath() throws Exception {
        var routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx, retry_host_predicate: [
                  {name: envoy.retry_host_predicates.omit_canary_hosts},
                  {name: x, typed_config: {"@type":
                    type.googleapis.com/envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig,
                    metadata_match: {filter_metadata: {envoy.lb: {stage: canary}}}}}]}}
                """))).routes();
        var policy = ((dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes()
                .get(0).action()).retryPolicy();
        assertEquals(List.of("envoy.retry_host_predicates.omit_canary_hosts",
                "envoy.retry_host_predicates.omit_host_metadata"), policy.retryHostPredicates());
        assertEquals(java.util.Map.of("stage", "canary"), policy.omitHostMetadata());
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx, retry_host_predicate: [{name: custom.predicate}]}}
                """)), "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.retry_policy."
                + "retry_host_predicate[0].name: custom.predicate (expected: envoy.retry_host_predicates.previous_hosts, "
                + "envoy.retry_host_predicates.omit_canary_hosts or envoy.retry_host_predicates.omit_host_metadata)");
    }

    @Test
    void hostRewritesByHeaderOrPathRegexLoadAndABadOneIsRefusedAtItsPath() throws Exception {
        var routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute("""
                route: {cluster: a, host_rewrite_header: X-Host, append_x_forwarded_host: true}
                """))).routes();
        var action = (dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes().get(0)
                .action();
        assertEquals("x-host", action.hostRewriteHeader());
        assertTrue(action.appendXForwardedHost());
        String at = "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.";
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, host_rewrite_header: "x host"}
                """)), at + "host_rewrite_header: \"x host\" (expected: an HTTP header name)");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, host_rewrite_path_regex: {pattern: {regex: "(unclosed"}, substitution: x}}
                """)), at + "host_rewrite_path_regex.pattern");
    }

    @Test
    void internalRedirectsAreReadFromThePolicyOrTheDeprecatedActionAndAnUnknownPredicateIsRefused() throws Exception {
        var routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute("""
                route: {cluster: a, internal_redirect_policy: {max_internal_redirects: 3,
                  redirect_response_codes: [301, 303, 200], response_headers_to_copy: [X-Token], predicates: [
                  {name: p, typed_config: {"@type":
                    type.googleapis.com/envoy.extensions.internal_redirect.previous_routes.v3.PreviousRoutesConfig}}]}}
                """))).routes();
        var policy = ((dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes()
                .get(0).action()).internalRedirectPolicy();
        assertEquals(new dev.inmesh.api.config.route.InternalRedirectPolicy(3, Set.of(301, 303),
                List.of(new dev.inmesh.api.config.route.InternalRedirectPolicy.PreviousRoutes()), false,
                List.of("x-token")), policy, "200 is not a redirect code: left out, as Envoy ignores it");
        routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute("""
                route: {cluster: a, internal_redirect_action: HANDLE_INTERNAL_REDIRECT, max_internal_redirects: 2}
                """))).routes();
        assertEquals(new dev.inmesh.api.config.route.InternalRedirectPolicy(2, Set.of(302), List.of(), false,
                List.of()), ((dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0)
                .routes().get(0).action()).internalRedirectPolicy());
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, internal_redirect_policy: {predicates: [{name: custom, typed_config: {"@type":
                  type.googleapis.com/google.protobuf.Empty}}]}}
                """)), "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.internal_redirect_policy."
                + "predicates[0].typed_config: type.googleapis.com/google.protobuf.Empty (expected: an "
                + "AllowListedRoutesConfig, PreviousRoutesConfig or SafeCrossSchemeConfig)");
        String allowListed = """
                route: {cluster: a, internal_redirect_policy: {predicates: [{name: p, typed_config: {"@type":
                  type.googleapis.com/envoy.extensions.internal_redirect.allow_listed_routes.v3.AllowListedRoutesConfig,
                  allowed_route_names: %s}}]}}
                """;
        routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute(allowListed.formatted("[]")))).routes();
        assertEquals(List.of(new dev.inmesh.api.config.route.InternalRedirectPolicy.AllowListedRoutes(Set.of())),
                ((dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes().get(0)
                        .action()).internalRedirectPolicy().predicates(), "an empty list is valid: nothing allowed");
        assertContains(rejectedRoutes(oneRoute(allowListed.formatted("[a, \"\"]"))), "RouteConfiguration \"9080\": "
                + "virtual_hosts[0].routes[0].route.internal_redirect_policy.predicates[0].typed_config."
                + "allowed_route_names: \"\" (expected: non-empty route names)");
    }

    @Test
    void istiosRetryToRemoteLocalitiesIsTakenWithItsUpdateFrequency() throws Exception {
        var routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute("""
                route: {cluster: a, retry_policy: {retry_on: 5xx, num_retries: 2,
                  retry_priority: {name: envoy.retry_priorities.previous_priorities, typed_config: {"@type":
                    type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig,
                    update_frequency: 2}}}}
                """))).routes();
        var action = (dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes().get(0)
                .action();
        assertEquals(2, action.retryPolicy().previousPrioritiesUpdateFrequency());
    }

    @Test
    void aHashPolicyOfConnectionPropertiesWithoutSourceIpHashesNothingAHeadersRegexRewriteLoadsAndFilterStateIsRefused()
            throws Exception {
        // as Envoy: connection_properties without source_ip adds no hash method, so its terminal stops nothing
        var routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute("""
                route: {cluster: a, hash_policy: [{connection_properties: {source_ip: false}, terminal: true},
                  {header: {header_name: x-user}}]}
                """))).routes();
        var action = (dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes().get(0)
                .action();
        assertEquals(List.of(new dev.inmesh.api.config.route.HashPolicy.Header("x-user", false)),
                action.hashPolicies());
        // a header's regex_rewrite loads; a bad pattern is refused at its path
        routes = EnvoyConfigReader.read(file("routes.yaml", oneRoute("""
                route: {cluster: a, hash_policy: [{header: {header_name: x-key,
                  regex_rewrite: {pattern: {regex: "^([^/]+)/.*$"}, substitution: "\\\\1"}}}]}
                """))).routes();
        action = (dev.inmesh.api.config.route.RouteAction) routes.get("9080").virtualHosts().get(0).routes().get(0)
                .action();
        assertEquals(List.of(new dev.inmesh.api.config.route.HashPolicy.Header("x-key",
                new dev.inmesh.api.config.route.RegexRewrite("^([^/]+)/.*$", "\\1"), false)), action.hashPolicies());
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, hash_policy: [{header: {header_name: x-key,
                  regex_rewrite: {pattern: {regex: "(("}, substitution: ""}}}]}
                """)), "routes[0].route.hash_policy[0].header.regex_rewrite.pattern");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a, hash_policy: [{filter_state: {key: io.example.k}}]}
                """)), "routes[0].route.hash_policy[0].filter_state: not supported by Inmesh");
    }

    @Test
    void twoMembersOfAOneofAreRejectedWithThePathOfTheSecond() throws IOException {
        String m = rejected(file("routes.json", """
                {"name": "9080", "virtual_hosts": [{"name": "reviews", "domains": ["reviews"],
                  "routes": [{"match": {"prefix": "/", "path": "/reviews"}, "route": {"cluster": "a"}}]}]}
                """));
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].match.path: set together with "
                + "prefix");
    }

    @Test
    void aFieldGivenInSnakeCaseAndCamelCaseIsRejected() throws IOException {
        String m = rejected(file("routes.json", """
                {"name": "9080", "virtual_hosts": [{"name": "reviews", "domains": ["reviews"],
                  "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "a", "timeout": "1s",
                              "idle_timeout": "1s", "idleTimeout": "2s"}}]}]}
                """));
        assertContains(m, "virtual_hosts[0].routes[0].route.idleTimeout: set twice, also as idle_timeout");
    }

    @Test
    void aBadEnumValueIsRejectedWithItsPath() throws IOException {
        String m = rejected(file("listener.yaml", """
                name: 0.0.0.0_9080
                address: {socket_address: {address: 0.0.0.0, port_value: 9080}}
                traffic_direction: OUTGOING
                filter_chains: []
                """));
        assertContains(m, "Listener \"0.0.0.0_9080\": traffic_direction: \"OUTGOING\" (expected: one of "
                + "UNSPECIFIED, INBOUND, OUTBOUND)");
    }

    @Test
    void anEnumNumberEnvoyDoesNotDefineIsRejectedWithItsPathNotTakenAsTheDefault() throws IOException {
        assertContains(rejectedRoutes(oneRoute("redirect: {https_redirect: true, response_code: 9}")),
                "virtual_hosts[0].routes[0].redirect.response_code: 9");
        assertContains(rejectedRoutes(oneRoute("""
                route: {cluster: a}
                request_headers_to_add: [{header: {key: x-a, value: "1"}, append_action: 7}]
                """)), "virtual_hosts[0].routes[0].request_headers_to_add[0].append_action: 7");
        assertContains(rejectedRoutes("name: \"9080\"\nvirtual_hosts: [{name: reviews, domains: [reviews], routes: ["
                + "{match: {prefix: /, runtime_fraction: {default_value: {numerator: 1, denominator: 5}}}, "
                + "route: {cluster: a}}]}]\n"), "routes[0].match.runtime_fraction.default_value.denominator: 5");
    }

    @Test
    void aBadDurationIsRejectedWithItsPath() throws IOException {
        String m = rejectedRoutes(oneRoute("""
                route: {cluster: a, timeout: 15}
                """));
        assertContains(m, "RouteConfiguration \"9080\": virtual_hosts[0].routes[0].route.timeout: ");
    }

    @Test
    void anUnknownHttpFilterIsRejectedUnlessOptional() throws IOException {
        String csrf = """
                - name: envoy.filters.http.csrf
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy
                    filter_enabled: {default_value: {numerator: 100}}
                """;
        String m = rejected(file("listener.yaml", listenerWithHttpFilters(csrf + ROUTER)));
        assertContains(m, "Listener \"0.0.0.0_9080\": filter_chains[0].filters[0].typed_config.http_filters[0].name: "
                + "envoy.filters.http.csrf (envoy.extensions.filters.http.csrf.v3.CsrfPolicy) is not supported");

        Path optional = file("optional.yaml", listenerWithHttpFilters(csrf + "  is_optional: true\n" + ROUTER));
        var l = Fixtures.read(optional).listeners().get("0.0.0.0_9080");
        assertEquals(List.of("envoy.filters.http.csrf", "envoy.filters.http.router"),
                ((HttpConnectionManager) l.filterChains().get(0).filter()).httpFilters().stream()
                        .map(f -> f.name()).toList());
    }

    @Test
    void anHttpFilterIsKnownByItsConfigTypeNotItsName() throws IOException {
        String m = rejected(file("listener.yaml", listenerWithHttpFilters("""
                - name: envoy.filters.http.cors
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.csrf.v3.CsrfPolicy
                    filter_enabled: {default_value: {numerator: 100}}
                """ + ROUTER)));
        assertContains(m, "filter_chains[0].filters[0].typed_config.http_filters[0].name: envoy.filters.http.cors "
                + "(envoy.extensions.filters.http.csrf.v3.CsrfPolicy) is not supported");
    }

    @Test
    void httpProtocolOptionsGiveTheHttp1OptionsAndEnvoysDefaultsStandWithoutThem() throws IOException {
        Path none = file("none.yaml", listenerWithHttpFilters(ROUTER));
        assertEquals(Http1Options.DEFAULTS, hcm(none).http1());
        assertFalse(Http1Options.DEFAULTS.acceptHttp10());
        assertTrue(Http1Options.DEFAULTS.allowAbsoluteUrl());
        Path set = file("set.yaml", listenerWithHttpFilters(ROUTER).replace("stat_prefix: outbound_0.0.0.0_9080",
                "stat_prefix: outbound_0.0.0.0_9080\n      http_protocol_options: {accept_http_10: true, "
                        + "default_host_for_http_10: reviews, allow_absolute_url: false, allow_chunked_length: true, "
                        + "allow_custom_methods: true, enable_trailers: true}"));
        assertEquals(new Http1Options(true, "reviews", false, true, true, true), hcm(set).http1());
        assertFalse(Http1Options.DEFAULTS.allowChunkedLength());
        assertFalse(Http1Options.DEFAULTS.allowCustomMethods());
        assertFalse(Http1Options.DEFAULTS.enableTrailers());
    }

    @Test
    void anRdsConfigSourceOtherThanAdsIsRefusedByNameWhereAdsAndSelfLoad() throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        for (String ok : List.of("{ads: {}, resource_api_version: V3}", "{self: {}, initial_fetch_timeout: 0s}")) {
            assertEquals("9080", hcm(file("ok.yaml", base.replace("rds: {route_config_name: \"9080\"}",
                    "rds: {route_config_name: \"9080\", config_source: " + ok + "}"))).rdsRouteConfigName(), ok);
        }
        assertContains(rejected(file("path.yaml", base.replace("rds: {route_config_name: \"9080\"}",
                "rds: {route_config_name: \"9080\", config_source: {path: /etc/envoy/rds.yaml}}"))),
                "typed_config.rds.config_source.path: not supported by Inmesh");
        assertContains(rejected(file("api.yaml", base.replace("rds: {route_config_name: \"9080\"}",
                "rds: {route_config_name: \"9080\", config_source: {api_config_source: {api_type: GRPC, "
                        + "grpc_services: [{envoy_grpc: {cluster_name: xds}}]}}}"))),
                "rds.config_source.api_config_source: not supported by Inmesh");
        assertContains(rejected(file("none.yaml", base.replace("rds: {route_config_name: \"9080\"}",
                "rds: {route_config_name: \"9080\", config_source: {initial_fetch_timeout: 1s}}"))),
                "rds.config_source.config_source_specifier: missing (expected: ads or self)");
    }

    @Test
    void anEdgeConnectionManagerThatTrustsForwardedAddressesLoads() throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        var edge = hcm(file("remote.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                "stat_prefix: outbound_0.0.0.0_9080\n      use_remote_address: true\n      xff_num_trusted_hops: 2")));
        assertTrue(edge.useRemoteAddress());
        assertEquals(2, edge.xffNumTrustedHops());
        // what Istio's sidecars send is taken
        assertFalse(hcm(file("sidecar.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                "stat_prefix: outbound_0.0.0.0_9080\n      use_remote_address: false\n      generate_request_id: false")))
                .generateRequestId());
    }

    @Test
    void theCodecTypeIsReadAndHttp3OnATcpListenerIsRefusedAsEnvoyRefusesIt() throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        assertEquals(HttpConnectionManager.CodecType.AUTO, hcm(file("auto.yaml", base)).codecType());
        assertEquals(HttpConnectionManager.CodecType.HTTP2, hcm(file("h2.yaml", base.replace(
                "stat_prefix: outbound_0.0.0.0_9080", "stat_prefix: outbound_0.0.0.0_9080\n      codec_type: HTTP2")))
                .codecType());
        assertContains(rejected(file("h3.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                "stat_prefix: outbound_0.0.0.0_9080\n      codec_type: HTTP3"))),
                "typed_config.codec_type: HTTP3 is not supported by Inmesh");
    }

    @Test
    void theConnectionManagersHttp2ProtocolOptionsAreReadAndThoseNotAppliedAreRefusedByName() throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        assertEquals(Http2ProtocolOptions.DEFAULTS, hcm(file("unset.yaml", base)).http2());
        String options = "stat_prefix: outbound_0.0.0.0_9080\n      http2_protocol_options: ";
        assertEquals(new Http2ProtocolOptions(0, 7, 1_048_576, 4_194_304), hcm(file("set.yaml", base.replace(
                "stat_prefix: outbound_0.0.0.0_9080", options + "{max_concurrent_streams: 7, hpack_table_size: 0, "
                        + "initial_stream_window_size: 1048576, initial_connection_window_size: 4194304}")))
                .http2());
        // what an invalid message costs: the codec's option, else the connection manager's, else the deprecated one
        String hcmOption = "stat_prefix: outbound_0.0.0.0_9080\n      stream_error_on_invalid_http_message: true";
        assertTrue(hcm(file("hcm.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080", hcmOption))).http2()
                .streamErrorOnInvalidHttpMessage());
        assertFalse(hcm(file("both.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080", hcmOption
                + "\n      http2_protocol_options: {override_stream_error_on_invalid_http_message: false}")))
                .http2().streamErrorOnInvalidHttpMessage());
        assertTrue(hcm(file("deprecated.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                options + "{stream_error_on_invalid_http_messaging: true}"))).http2()
                .streamErrorOnInvalidHttpMessage());
        assertFalse(hcm(file("unset.yaml", base)).http2().streamErrorOnInvalidHttpMessage());
        assertContains(rejected(file("zero.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                options + "{max_concurrent_streams: 0}"))),
                "typed_config.http2_protocol_options.max_concurrent_streams: 0 (expected: 1..2147483647)");
        assertContains(rejected(file("connect.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                options + "{allow_connect: true}"))),
                "typed_config.http2_protocol_options.allow_connect: not supported by Inmesh");
    }

    @Test
    void pathNormalizationIsReadFromTheConnectionManager() throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        assertEquals(PathNormalization.NONE, hcm(file("none.yaml", base)).pathNormalization());
        String options = "stat_prefix: outbound_0.0.0.0_9080\n      normalize_path: true\n      merge_slashes: true"
                + "\n      path_with_escaped_slashes_action: ";
        assertEquals(new PathNormalization(true, true, PathNormalization.EscapedSlashes.UNESCAPE_AND_FORWARD),
                hcm(file("decode.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                        options + "UNESCAPE_AND_FORWARD"))).pathNormalization());
        assertEquals(new PathNormalization(true, true, PathNormalization.EscapedSlashes.UNESCAPE_AND_REDIRECT),
                hcm(file("redirect.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                        options + "UNESCAPE_AND_REDIRECT"))).pathNormalization());
    }

    @Test
    void originalIpDetectionExtensionsAreReadAndRefusedBesideTrustedHops() throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        String at = "stat_prefix: outbound_0.0.0.0_9080";
        String extensions = "\n      original_ip_detection_extensions:"
                + "\n      - name: custom"
                + "\n        typed_config: {\"@type\": type.googleapis.com/envoy.extensions.http.original_ip_detection."
                + "custom_header.v3.CustomHeaderConfig, header_name: X-Real-IP, reject_with_status: {code: Forbidden}}"
                + "\n      - name: xff"
                + "\n        typed_config: {\"@type\": type.googleapis.com/envoy.extensions.http.original_ip_detection."
                + "xff.v3.XffConfig, xff_num_trusted_hops: 2}";
        assertEquals(List.of(new OriginalIpDetection.CustomHeader("x-real-ip", false, 403),
                new OriginalIpDetection.Xff(2)), hcm(file("ext.yaml", base.replace(at, at + extensions)))
                .remoteAddressOptions().originalIpDetection());
        assertContains(rejected(file("mixed.yaml", base.replace(at, at + "\n      xff_num_trusted_hops: 1"
                + extensions))), "original_ip_detection_extensions: with xff_num_trusted_hops 1 (expected: one or "
                + "the other, as Envoy requires)");
        assertContains(rejected(file("edge.yaml", base.replace(at, at + "\n      use_remote_address: true"
                + extensions))), "original_ip_detection_extensions: with use_remote_address: true");
        assertContains(rejected(file("name.yaml", base.replace(at, at + extensions.replace("X-Real-IP",
                "\"x real\"")))), "original_ip_detection_extensions[0].typed_config.header_name: \"x real\"");
    }

    @Test
    void maxHeadersCountIsEnvoysHundredAndTheUnderscoreActionIsRead() throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        assertEquals(100, hcm(file("none.yaml", base)).maxRequestHeadersCount());
        String at = "stat_prefix: outbound_0.0.0.0_9080";
        assertEquals(7, hcm(file("set.yaml", base.replace(at, at + "\n      common_http_protocol_options: "
                + "{max_headers_count: 7, idle_timeout: 3600s}"))).maxRequestHeadersCount());
        assertContains(rejected(file("zero.yaml", base.replace(at, at
                + "\n      common_http_protocol_options: {max_headers_count: 0}"))),
                "common_http_protocol_options.max_headers_count: 0 (expected: >= 1)");
        assertEquals(HeadersWithUnderscoresAction.ALLOW, hcm(file("none.yaml", base)).headersWithUnderscores());
        for (HeadersWithUnderscoresAction a : HeadersWithUnderscoresAction.values()) {
            assertEquals(a, hcm(file(a + ".yaml", base.replace(at, at + "\n      common_http_protocol_options: "
                    + "{headers_with_underscores_action: " + a + "}"))).headersWithUnderscores());
        }
    }

    @Test
    void theConnectionLifetimesAreReadWithEnvoysDefaultsAndMaxResponseHeadersKbIsRefusedAsEnvoyRefusesIt()
            throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        String at = "stat_prefix: outbound_0.0.0.0_9080";
        // unset: an idle timeout of one hour, a drain timeout of 5 s, no other limit
        assertEquals(new ConnectionLifetimes(Duration.ofHours(1), null, 0, null, Duration.ofSeconds(5), null, null,
                Duration.ofSeconds(1)),
                hcm(file("none.yaml", base)).lifetimes());
        assertEquals(new ConnectionLifetimes(Duration.ofMillis(300), Duration.ofSeconds(60), 2,
                Duration.ofMillis(1500), Duration.ofMillis(100)), hcm(file("set.yaml", base.replace(at, at
                + "\n      drain_timeout: 0.1s\n      common_http_protocol_options: {idle_timeout: 0.3s, "
                + "max_connection_duration: 60s, max_requests_per_connection: 2, max_stream_duration: 1.5s}")))
                .lifetimes());
        // 0s: no idle timeout
        assertEquals(Duration.ZERO, hcm(file("zero.yaml", base.replace(at, at
                + "\n      common_http_protocol_options: {idle_timeout: 0s}"))).lifetimes().idleTimeout());
        // delayed_close_timeout: Envoy's 1 s unset (above), 0s for none
        assertEquals(Duration.ofMillis(250), hcm(file("delayed.yaml", base.replace(at, at
                + "\n      delayed_close_timeout: 0.25s"))).lifetimes().delayedCloseTimeout());
        assertEquals(Duration.ZERO, hcm(file("nodelay.yaml", base.replace(at, at
                + "\n      delayed_close_timeout: 0s"))).lifetimes().delayedCloseTimeout());
        assertContains(rejected(file("response.yaml", base.replace(at, at
                + "\n      common_http_protocol_options: {max_response_headers_kb: 80}"))),
                "common_http_protocol_options.max_response_headers_kb: cannot be set on a connection manager");
    }

    @Test
    void requestTimeoutAndRequestHeadersTimeoutAreReadAndZeroIsNone() throws IOException {
        String base = listenerWithHttpFilters(ROUTER);
        String at = "stat_prefix: outbound_0.0.0.0_9080";
        ConnectionLifetimes unset = hcm(file("none.yaml", base)).lifetimes();
        assertEquals(null, unset.requestTimeout());
        assertEquals(null, unset.requestHeadersTimeout());
        ConnectionLifetimes set = hcm(file("set.yaml", base.replace(at, at
                + "\n      request_timeout: 2s\n      request_headers_timeout: 0.5s"))).lifetimes();
        assertEquals(Duration.ofSeconds(2), set.requestTimeout());
        assertEquals(Duration.ofMillis(500), set.requestHeadersTimeout());
        assertEquals(Duration.ofHours(1), set.idleTimeout()); // the other lifetimes keep Envoy's defaults
        ConnectionLifetimes zero = hcm(file("zero.yaml", base.replace(at, at
                + "\n      request_timeout: 0s\n      request_headers_timeout: 0s"))).lifetimes();
        assertEquals(null, zero.requestTimeout());
        assertEquals(null, zero.requestHeadersTimeout());
        assertContains(rejected(file("negative.yaml", base.replace(at, at + "\n      request_timeout: -1s"))),
                "request_timeout");
    }

    @Test
    void maxRequestHeadersKbIsEnvoysSixtyUnlessSetFromOneTo8192() throws IOException {
        assertEquals(60, hcm(file("none.yaml", listenerWithHttpFilters(ROUTER))).maxRequestHeadersKb());
        String base = listenerWithHttpFilters(ROUTER);
        assertEquals(96, hcm(file("set.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                "stat_prefix: outbound_0.0.0.0_9080\n      max_request_headers_kb: 96"))).maxRequestHeadersKb());
        for (String bad : new String[] {"0", "8193"}) {
            String m = rejected(file("bad.yaml", base.replace("stat_prefix: outbound_0.0.0.0_9080",
                    "stat_prefix: outbound_0.0.0.0_9080\n      max_request_headers_kb: " + bad)));
            assertContains(m, "max_request_headers_kb: " + bad + " (expected: 1 to 8192)");
        }
    }

    private static HttpConnectionManager hcm(Path listenerFile) throws IOException {
        return (HttpConnectionManager) Fixtures.read(listenerFile).listeners().get("0.0.0.0_9080").filterChains()
                .get(0).filter();
    }

    @Test
    void aNetworkFilterNamedLikeIstioStatsButOfAnotherTypeIsRejected() throws IOException {
        String m = rejected(file("listener.yaml", """
                name: virtualOutbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15001}}
                filter_chains:
                - filters:
                  - name: istio.stats
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.ratelimit.v3.RateLimit
                      stat_prefix: tcp.
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: PassthroughCluster
                      cluster: PassthroughCluster
                """));
        assertContains(m, "Listener \"virtualOutbound\": filter_chains[0].filters[0].name: istio.stats "
                + "(envoy.extensions.filters.network.ratelimit.v3.RateLimit) is not supported");
    }

    @Test
    void aFilterChainThatDoesNotEndInAConnectionManagerOrTcpProxyIsRejected() throws IOException {
        String m = rejected(file("listener.yaml", """
                name: virtualOutbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15001}}
                use_original_dst: true
                filter_chains:
                - name: virtualOutbound-catchall-tcp
                  filters:
                  - name: istio.stats
                    typed_config: {"@type": type.googleapis.com/stats.PluginConfig}
                """));
        assertContains(m, "Listener \"virtualOutbound\": filter_chains[0].filters: a chain must end with "
                + "envoy.filters.network.http_connection_manager or envoy.filters.network.tcp_proxy");
    }

    @Test
    void aTerminalFilterFollowedByAnotherIsRejected() throws IOException {
        String m = rejected(file("listener.yaml", """
                name: virtualOutbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15001}}
                filter_chains:
                - filters:
                  - name: envoy.filters.network.tcp_proxy
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
                      stat_prefix: PassthroughCluster
                      cluster: PassthroughCluster
                  - name: istio.stats
                    typed_config: {"@type": type.googleapis.com/stats.PluginConfig}
                """));
        assertContains(m, "Listener \"virtualOutbound\": filter_chains[0].filters[0].name: "
                + "envoy.filters.network.tcp_proxy (expected: the last filter of the chain)");
    }

    /** A virtualInbound listener with these listener filters (YAML list items) and one TCP chain. */
    private static String inboundWithListenerFilters(String filters) {
        return """
                name: virtualInbound
                address: {socket_address: {address: 0.0.0.0, port_value: 15006}}
                listener_filters:
                """ + filters + "filter_chains:\n" + tcpChain("catchall", "", "InboundPassthroughClusterIpv4");
    }

    @Test
    void aListenerFilterIsKnownByItsConfigTypeAndProxyProtocolLoadsInItsPlace() throws IOException {
        String listener = inboundWithListenerFilters("""
                - name: envoy.filters.listener.original_dst
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst}
                - name: %s
                  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.%s}
                """);
        var l = Fixtures.read(file("listener.yaml", listener.formatted("my-pp", "proxy_protocol.v3.ProxyProtocol, "
                + "allow_requests_without_proxy_protocol: true, disallowed_versions: [V1], stat_prefix: nlb")))
                .listeners().get("virtualInbound");
        assertEquals(List.of("envoy.filters.listener.original_dst", "envoy.filters.listener.proxy_protocol"),
                l.listenerFilters());
        assertEquals(new ProxyProtocol(true, false, true, "nlb"), l.proxyProtocol());
        var plain = Fixtures.read(file("plain.yaml", listener.formatted("envoy.filters.listener.proxy_protocol",
                "proxy_protocol.v3.ProxyProtocol"))).listeners().get("virtualInbound");
        assertEquals(ProxyProtocol.DEFAULT, plain.proxyProtocol());

        Path renamed = file("renamed.yaml", listener.formatted("my-tls-sniffer", "tls_inspector.v3.TlsInspector"));
        var sniffed = Fixtures.read(renamed).listeners().get("virtualInbound");
        assertEquals(List.of("envoy.filters.listener.original_dst", "envoy.filters.listener.tls_inspector"),
                sniffed.listenerFilters());
        assertEquals(null, sniffed.proxyProtocol());
    }

    @Test
    void proxyProtocolFieldsInmeshCannotHonourAreRefusedByPath() throws IOException {
        String listener = inboundWithListenerFilters("""
                - name: envoy.filters.listener.proxy_protocol
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol
                    %s
                """);
        assertContains(rejected(file("rules.yaml", listener.formatted(
                "rules: [{tlv_type: 5, on_tlv_present: {key: id}}]"))),
                "Listener \"virtualInbound\": listener_filters[0].typed_config.rules: not supported by Inmesh");
        assertContains(rejected(file("tlvs.yaml", listener.formatted(
                "pass_through_tlvs: {match_type: INCLUDE_ALL}"))),
                "listener_filters[0].typed_config.pass_through_tlvs: not supported by Inmesh");
        assertContains(rejected(file("none.yaml", listener.formatted("disallowed_versions: [V1, V2]"))),
                "listener_filters[0].typed_config.disallowed_versions: [V1, V2] (expected: at most one version");
        String twice = inboundWithListenerFilters("""
                - name: envoy.filters.listener.proxy_protocol
                - name: envoy.filters.listener.proxy_protocol
                """);
        assertContains(rejected(file("twice.yaml", twice)),
                "listener_filters[1]: envoy.filters.listener.proxy_protocol a second time");
    }

    @Test
    void originalSrcLoadsItsMarkAcceptsBindPortAsEnvoyDoesAndIsRefusedTwice() throws IOException {
        String listener = inboundWithListenerFilters("""
                - name: envoy.filters.listener.original_src
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.listener.original_src.v3.OriginalSrc
                    %s
                """);
        var marked = Fixtures.read(file("marked.yaml", listener.formatted("mark: 1337"))).listeners()
                .get("virtualInbound");
        assertEquals(List.of(Listener.ORIGINAL_SRC), marked.listenerFilters());
        assertEquals(new OriginalSrc(1337), marked.originalSrc());
        // the whole uint32 range, beyond a Java int
        assertEquals(new OriginalSrc(4294967295L), Fixtures.read(file("max.yaml", listener.formatted(
                "mark: 4294967295"))).listeners().get("virtualInbound").originalSrc());
        // bind_port is not implemented in Envoy (the port is always 0): accepted, and it changes nothing
        assertEquals(OriginalSrc.DEFAULT, Fixtures.read(file("port.yaml", listener.formatted("bind_port: true")))
                .listeners().get("virtualInbound").originalSrc());
        var untyped = Fixtures.read(file("untyped.yaml", inboundWithListenerFilters(
                "- name: envoy.filters.listener.original_src\n"))).listeners().get("virtualInbound");
        assertEquals(OriginalSrc.DEFAULT, untyped.originalSrc());
        var without = Fixtures.read(file("without.yaml", inboundWithListenerFilters(
                "- name: envoy.filters.listener.tls_inspector\n"))).listeners().get("virtualInbound");
        assertEquals(null, without.originalSrc());
        assertContains(rejected(file("twice.yaml", inboundWithListenerFilters("""
                - name: envoy.filters.listener.original_src
                - name: envoy.filters.listener.original_src
                """))), "listener_filters[1]: envoy.filters.listener.original_src a second time");
    }

    @Test
    void aListenerFiltersFilterDisabledIsReadAndAMalformedOneRejectedByField() throws IOException {
        String listener = inboundWithListenerFilters("""
                - name: envoy.filters.listener.http_inspector
                  filter_disabled: %s
                """);
        var l = Fixtures.read(file("ok.yaml", listener.formatted("{and_match: {rules: [{any_match: true}, "
                + "{not_match: {destination_port_range: {start: 9080, end: 9082}}}]}}"))).listeners()
                .get("virtualInbound");
        assertEquals(false, l.listenerFilterRuns("envoy.filters.listener.http_inspector", 3306));
        assertEquals(true, l.listenerFilterRuns("envoy.filters.listener.http_inspector", 9081));
        assertEquals(false, l.listenerFilterRuns("envoy.filters.listener.http_inspector", 9082));

        assertContains(rejected(file("one.yaml", listener.formatted(
                "{or_match: {rules: [{destination_port_range: {start: 1, end: 2}}]}}"))),
                "listener_filters[0].filter_disabled.or_match.rules: 1 item (expected: at least 2 items)");
        assertContains(rejected(file("false.yaml", listener.formatted("{any_match: false}"))),
                "listener_filters[0].filter_disabled.any_match: false (expected: true)");
        assertContains(rejected(file("unset.yaml", listener.formatted("{}"))),
                "listener_filters[0].filter_disabled: one of or_match, and_match, not_match, any_match or "
                        + "destination_port_range is required");
    }

    @Test
    void twoFilterChainsWithTheSameMatchAreRejected() throws IOException {
        String m = rejected(file("listener.yaml", virtualInbound(
                tcpChain("inbound-a", "{destination_port: 9080, transport_protocol: raw_buffer}", "a")
                + tcpChain("inbound-b", "{destination_port: 9080, transport_protocol: raw_buffer}", "b"))));
        assertContains(m, "Listener \"virtualInbound\": filter_chains[1].filter_chain_match: the same match as chain "
                + "\"inbound-a\"");
    }

    @Test
    void filterChainsWhoseRulesOverlapOnOneValueOfAListAreRejectedAsEnvoyRejectsThem() throws Exception {
        // the same server name in two chains otherwise alike: a connection to b.example.com has no one chain
        String m = rejected(file("names.yaml", virtualInbound(
                tcpChain("a", "{destination_port: 9443, server_names: [a.example.com, b.example.com]}", "a")
                + tcpChain("b", "{destination_port: 9443, server_names: [B.example.com]}", "b"))));
        assertContains(m, "Listener \"virtualInbound\": filter_chains[1].filter_chain_match: its rules overlap "
                + "those of chain \"a\"");
        // one network written two ways, 10.0.0.1/8 being 10.0.0.0/8
        assertContains(rejected(file("ranges.yaml", virtualInbound(
                tcpChain("a", "{prefix_ranges: [{address_prefix: 10.0.0.1, prefix_len: 8}]}", "a")
                + tcpChain("b", "{prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}, "
                        + "{address_prefix: 192.168.0.0, prefix_len: 16}]}", "b")))),
                "filter_chains[1].filter_chain_match: its rules overlap those of chain \"a\"");
        // one chain naming a source port twice is ambiguous with itself
        assertContains(rejected(file("ports.yaml", virtualInbound(
                tcpChain("a", "{source_ports: [1000, 1000]}", "a")))),
                "filter_chains[0].filter_chain_match: its rules overlap those of chain \"a\"");
        // rules that differ in one value of each list do not overlap, and load
        EnvoyConfigReader.read(file("apart.yaml", virtualInbound(
                tcpChain("a", "{destination_port: 9443, server_names: [a.example.com, \"*.example.com\"]}", "a")
                + tcpChain("b", "{destination_port: 9443, server_names: [b.example.com]}", "b")
                + tcpChain("c", "{prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 8}]}", "c")
                + tcpChain("d", "{prefix_ranges: [{address_prefix: 10.0.0.0, prefix_len: 9}]}", "d"))));
    }

    @Test
    void aFilterChainMatchPortOfZeroOrPastTheRangeIsRejectedAsEnvoyValidatesIt() throws IOException {
        assertContains(rejected(file("dst.yaml", virtualInbound(tcpChain("a", "{destination_port: 0}", "a")))),
                "filter_chains[0].filter_chain_match.destination_port: 0 (expected: >= 1 and <= 65535)");
        assertContains(rejected(file("big.yaml", virtualInbound(tcpChain("a", "{destination_port: 65536}", "a")))),
                "filter_chains[0].filter_chain_match.destination_port: 65536 (expected: >= 1 and <= 65535)");
        assertContains(rejected(file("src.yaml", virtualInbound(tcpChain("a", "{source_ports: [8080, 0]}", "a")))),
                "filter_chains[0].filter_chain_match.source_ports[1]: 0 (expected: >= 1 and <= 65535)");
        assertContains(rejected(file("type.yaml", virtualInbound(tcpChain("a", "{source_type: 7}", "a")))),
                "filter_chains[0].filter_chain_match.source_type: 7 (expected: one of ANY, SAME_IP_OR_LOOPBACK or EXTERNAL)");
    }

    @Test
    void aPartialWildcardServerNameIsRejectedAsEnvoyRejectsIt() throws IOException {
        String m = rejected(file("listener.yaml", virtualInbound(tcpChain("a",
                "{server_names: [a.example.com, \"*w.example.com\"]}", "a"))));
        assertContains(m, "Listener \"virtualInbound\": filter_chains[0].filter_chain_match.server_names[1]: "
                + "\"*w.example.com\" (expected: a name, or *. and a domain; partial wildcards are not supported)");
        assertContains(rejected(file("star.yaml", virtualInbound(tcpChain("a", "{server_names: [\"*\"]}", "a")))),
                "filter_chains[0].filter_chain_match.server_names[0]: \"*\"");
    }

    @Test
    void aFilterChainMatchPrefixRangeThatIsNotAnIpAddressIsRejectedAsEnvoyRejectsIt() throws IOException {
        String m = rejected(file("listener.yaml", virtualInbound(tcpChain("inbound-a",
                "{source_prefix_ranges: [{address_prefix: localhost, prefix_len: 32}]}", "a"))));
        assertContains(m, "Listener \"virtualInbound\": filter_chains[0].filter_chain_match.source_prefix_ranges[0]"
                + ".address_prefix: \"localhost\" (expected: an IPv4 or IPv6 address)");
    }

    @Test
    void aSecondResourceOfTheSameNameIsRejectedAsEnvoyRejectsIt() throws IOException {
        String m = rejected(file("listeners.yaml", """
                - name: virtualOutbound
                  address: {socket_address: {address: 0.0.0.0, port_value: 15001}}
                  filter_chains:
                  %s
                - name: virtualOutbound
                  address: {socket_address: {address: 0.0.0.0, port_value: 15002}}
                  filter_chains:
                  %s
                """.formatted(tcpChain("a", "", "PassthroughCluster").strip().replace("\n", "\n  "),
                tcpChain("b", "", "PassthroughCluster").strip().replace("\n", "\n  "))));
        assertContains(m, "[1]: Listener \"virtualOutbound\": a second Listener of this name");
    }

    @Test
    void theSameRouteConfigurationInTwoFilesOfADirectoryIsRejectedNamingTheSecondFile() throws IOException {
        Path d = Files.createDirectory(dir.resolve("config"));
        Files.copy(Fixtures.istio("routes.json"), d.resolve("a.json"));
        Files.copy(Fixtures.istio("config_dump.json"), d.resolve("b.json"));
        var e = assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(d));
        assertContains(e.getMessage(), d.resolve("b.json") + ": configs[2].dynamic_route_configs[0]: "
                + "RouteConfiguration \"9080\": a second RouteConfiguration of this name");
    }

    @Test
    void aBadListenerInTheBootstrapOfAConfigDumpIsNamedByItsPathInTheDump() throws IOException {
        Path f = file("dump.json", """
                {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
                  "bootstrap": {"static_resources": {"listeners": [
                    {"address": {"socket_address": {"address": "0.0.0.0", "port_value": 15090}},
                     "filter_chains": [{"filters": [{"name": "istio.stats"}]}]}]}}}]}
                """);
        assertContains(rejected(f), "configs[0].bootstrap.static_resources.listeners[0]: Listener \"0.0.0.0_15090\": "
                + "filter_chains[0].filters: a chain must end with");
    }

    /**
     * A bootstrap's filesystem LDS or CDS ({@code dynamic_resources.*_config.path_config_source}, or {@code path}),
     * which Inmesh would not read, is refused by name, with or without {@code static_resources} (it was ignored, or
     * "cannot tell which resource this is"); an ADS config source without {@code ads_config} is refused as Envoy
     * refuses it, while Istio's (ADS with an {@code ads_config}) reads as before.
     */
    @Test
    void aBootstrapsFileSubscriptionsAreRefusedByNameAndItsAdsOnesRead() throws Exception {
        assertContains(rejected(file("a.yaml", "static_resources: {}\ndynamic_resources:\n  lds_config:\n"
                + "    path_config_source: {path: /etc/envoy/lds.yaml, watched_directory: {path: /etc/envoy}}\n")),
                "dynamic_resources.lds_config.path_config_source: a file subscription (filesystem LDS) is not "
                        + "supported by Inmesh (expected: the file of Listeners");
        assertContains(rejected(file("b.yaml", "dynamic_resources: {cds_config: {path: /etc/envoy/cds.yaml}}\n")),
                "dynamic_resources.cds_config.path: a file subscription (filesystem CDS) is not supported");
        assertContains(rejected(file("c.yaml", "dynamic_resources: {lds_config: {ads: {}}}\n")),
                "dynamic_resources.lds_config.ads: an ADS config source without dynamic_resources.ads_config");
        ResourceBundle istio = EnvoyConfigReader.read(file("d.yaml", "dynamic_resources:\n"
                + "  lds_config: {ads: {}}\n  cds_config: {ads: {}}\n  ads_config: {api_type: GRPC, grpc_services: "
                + "[{envoy_grpc: {cluster_name: xds-grpc}}]}\n"));
        assertTrue(istio.listeners().isEmpty() && istio.clusters().isEmpty());
    }

    @Test
    void aBootstrapFieldEnvoysBootstrapHasNotIsRefusedByNameAsEnvoyRefusesIt() throws Exception {
        // misspelt, these would leave the proxy without its listeners, silently
        assertContains(rejected(file("a.yaml", "static_resources:\n  listener: []\n")),
                "static_resources.listener: unknown field (expected a field of Envoy's "
                        + "envoy.config.bootstrap.v3.Bootstrap.StaticResources; did you mean listeners?)");
        assertContains(rejected(file("e.yaml", "static_resources: {listenerz: []}\n")),
                "static_resources.listenerz: unknown field");
        assertContains(rejected(file("b.yaml", "static_resources: {}\nstats_configs: {}\n")),
                "stats_configs: unknown field (expected a field of Envoy's envoy.config.bootstrap.v3.Bootstrap; "
                        + "did you mean stats_config?)");
        // a field of a newer Envoy than Inmesh's API knows (1.35's, which Istio writes for a pod's annotation) is no
        // near miss: taken, with a warning
        EnvoyConfigReader.read(file("d.yaml", "static_resources: {}\nstats_eviction_interval: 60s\n"));
        // both spellings of Envoy's fields are taken, as its JSON parser takes them
        EnvoyConfigReader.read(file("c.yaml", "node: {id: n}\nstatic_resources: {listeners: [], clusters: []}\n"
                + "layeredRuntime: {}\nadmin: {}\nstats_config: {}\n"));
    }

    /**
     * Envoy's config dump writes a locality's {@code load_balancing_weight} as 0 where the cluster has no locality
     * weights (istioctl's proxyconfig testdata/config_dump.json has it for prometheus_stats), which as configuration
     * would be refused (a weight is 1 or more): a dump's load assignments are read without those zeros. EDS and a
     * bootstrap's own load assignments still refuse it, as Envoy does.
     */
    @Test
    void aConfigDumpsLocalityWeightOfZeroIsNoWeight() throws Exception {
        String assignment = """
                {"@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
                 "cluster_name": "prometheus_stats",
                 "endpoints": [{"locality": {}, "load_balancing_weight": 0,
                   "lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                     "port_value": 15000}}}, "health_status": "HEALTHY", "load_balancing_weight": 1}]}]}
                """;
        ResourceBundle dump = EnvoyConfigReader.read(file("dump.json", "{\"configs\": [{\"@type\": "
                + "\"type.googleapis.com/envoy.admin.v3.EndpointsConfigDump\", \"static_endpoint_configs\": "
                + "[{\"endpoint_config\": " + assignment + "}]}]}"));
        var loaded = dump.endpoints().get("prometheus_stats");
        assertEquals(0, loaded.endpoints().get(0).loadBalancingWeight());
        assertEquals(1, loaded.endpoints().get(0).lbEndpoints().size());
        assertContains(rejected(file("eds.json", assignment)), "load_balancing_weight: 0 (expected: >= 1)");
    }

    @Test
    void aBootstrapOfItsAdminAloneIsABootstrapAsEveryFieldOfEnvoysIsOptional() throws Exception {
        // it was "cannot tell which resource this is": only static_resources or dynamic_resources made a bootstrap
        Path admin = file("00-bootstrap.yaml", "admin: {address: {socket_address: {address: 127.0.0.1, "
                + "port_value: 15000}}}\n");
        ResourceBundle none = EnvoyConfigReader.read(admin);
        assertTrue(none.listeners().isEmpty() && none.clusters().isEmpty());
        // in a directory beside resources, it is the configuration's bootstrap
        Files.writeString(dir.resolve("10-clusters.yaml"), "name: c\ntype: STATIC\n");
        assertEquals(List.of("c"), List.copyOf(EnvoyConfigReader.read(dir).clusters().keySet()));
        assertTrue(EnvoyConfigReader.bootstrapDocument(dir).has("admin"));
        // and its fields are still checked as a bootstrap's
        assertContains(rejected(file("x.yaml", "admin: {}\nstats_configs: {}\n")),
                "stats_configs: unknown field (expected a field of Envoy's envoy.config.bootstrap.v3.Bootstrap");
    }

    @Test
    void aMissingFileIsNamed() {
        Path missing = dir.resolve("no-such-routes.yaml");
        assertContains(rejected(missing), "no such file");
    }

    @Test
    void aFileThatIsNotTextIsNamed() throws IOException {
        Path binary = Files.write(dir.resolve("routes.json"), new byte[] {(byte) 0xC3, 0x28, (byte) 0xFF, 0x00});
        String m = rejected(binary);
        assertContains(m, "cannot read", "UTF-8");
    }

    @Test
    void anUnreadableFileIsNamed() throws IOException {
        Path locked = file("routes.yaml", "name: x\n");
        // Root reads files whatever their mode: a directory named like a file is unreadable as text for anyone.
        Path notAFile = Files.createDirectory(dir.resolve("listeners.json"));
        Files.writeString(notAFile.resolve("inner.txt"), "x");
        String m = rejected(Path.of(notAFile.toString()));
        assertContains(m, "no .json, .yaml or .yml files");
        assertTrue(locked.toFile().setReadable(false, false));
        if (!Files.isReadable(locked)) {
            assertContains(rejected(locked), "cannot read", "permission denied");
        }
    }

    @Test
    void aUtf8ByteOrderMarkIsReadPast() throws IOException {
        byte[] json = Files.readAllBytes(Fixtures.istio("routes.json"));
        byte[] withBom = new byte[json.length + 3];
        withBom[0] = (byte) 0xEF;
        withBom[1] = (byte) 0xBB;
        withBom[2] = (byte) 0xBF;
        System.arraycopy(json, 0, withBom, 3, json.length);
        Path f = Files.write(dir.resolve("routes.json"), withBom);
        assertEquals(Set.of("9080"), Fixtures.read(f).routes().keySet());
    }

    @Test
    void utf16WithAByteOrderMarkAsWindowsPowerShellRedirectsIsRead() throws IOException {
        String json = Files.readString(Fixtures.istio("routes.json"));
        Path le = Files.write(dir.resolve("le.json"), ("\uFEFF" + json).getBytes(StandardCharsets.UTF_16LE));
        assertEquals(Set.of("9080"), Fixtures.read(le).routes().keySet());
        Path be = Files.write(dir.resolve("be.json"), ("\uFEFF" + json).getBytes(StandardCharsets.UTF_16BE));
        assertEquals(Set.of("9080"), Fixtures.read(be).routes().keySet());
        Path noBom = Files.write(dir.resolve("nobom.json"), json.getBytes(StandardCharsets.UTF_16LE));
        assertContains(rejected(noBom), "not UTF-8 text");
    }

    @Test
    void everyDocumentOfAMultiDocumentYamlFileIsRead() throws IOException {
        String routes = oneRoute("route: {cluster: a}");
        Path f = file("all.yaml", "---\n" + routes + "---\n" + routes.replace("\"9080\"", "\"9090\"")
                + "---\n# an empty document\n");
        assertEquals(Set.of("9080", "9090"), Fixtures.read(f).routes().keySet());

        Path bad = file("bad.yaml", routes + "---\n" + oneRoute("route: {cluster: a, timeout: 15}"));
        assertContains(rejected(bad), "YAML document 2 of 2: RouteConfiguration \"9080\": "
                + "virtual_hosts[0].routes[0].route.timeout: 15");
    }

    @Test
    void anEmptyFileIsNamed() throws IOException {
        assertContains(rejected(file("empty.yaml", "")), "empty");
        assertContains(rejected(file("blank.json", "  \n\n")), "empty");
        assertContains(rejected(file("comments.yaml", "# nothing here\n")), "empty");
        assertContains(rejected(file("dashes.yaml", "---\n---\n")), "empty");
    }

    @Test
    void invalidYamlIsNamedWithItsLine() throws IOException {
        String m = rejected(file("bad.yaml", "name: \"9080\"\nvirtual_hosts:\n  - name: [unclosed\n"));
        assertContains(m, "not valid JSON or YAML", "(line 3, column 11)");
        assertFalse(m.contains("\n"), "one line: " + m);
        String json = rejected(file("bad.json", "{\"name\": \"9080\",\n \"virtual_hosts\": [}"));
        assertContains(json, "not valid JSON or YAML", "line");
        assertFalse(json.contains("\n"), "one line: " + json);
    }

    @Test
    void aDirectoryWithNoConfigFilesIsNamed() throws IOException {
        Path empty = Files.createDirectory(dir.resolve("config"));
        Files.writeString(empty.resolve("notes.txt"), "hello");
        assertContains(rejected(empty), "no .json, .yaml or .yml files in the directory");
    }

    @Test
    void aBadFileInADirectoryIsNamedByItsOwnPath() throws IOException {
        Path d = Files.createDirectory(dir.resolve("config"));
        Files.copy(Fixtures.istio("routes.json"), d.resolve("a-routes.json"));
        Files.writeString(d.resolve("b-listener.yaml"), "name: l\naddress: {socket_address: {address: 0.0.0.0, "
                + "port_value: 70000}}\nfilter_chains: []\n");
        var e = assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> EnvoyConfigReader.read(d));
        assertContains(e.getMessage(), d.resolve("b-listener.yaml") + ": Listener \"l\": ");
    }

    @Test
    void aClusterWhileNoClusterParserIsRegisteredIsNamedNotThrownAsAnInternalError() throws IOException {
        // Until the cluster parser is merged, a Cluster must still fail as a config error naming the resource.
        Path f = file("cluster.yaml", "name: outbound|9080||reviews.default.svc.cluster.local\ntype: EDS\n"
                + "connect_timeout: 10s\n");
        try {
            EnvoyConfigReader.read(f);
        } catch (EnvoyConfigReader.ConfigReadException e) {
            assertContains(e.getMessage(), f.toString(), "Cluster \"outbound|9080||reviews.default.svc.cluster.local\"");
        }
    }

    /**
     * A resource whose {@code @type} Inmesh does not read is refused naming that type (it was "cannot tell which
     * resource this is ... or an @type" of one that had one), the v2 API's with the v3 type to use; in a dump's
     * section, which says the type itself, alike (a v2 cluster there was read as a v3 one).
     */
    @Test
    void aResourceOfAV2OrUnknownTypeIsRefusedByItsType() throws Exception {
        String v2 = "{\"@type\": \"type.googleapis.com/envoy.api.v2.Cluster\", \"name\": \"x\", \"type\": \"STATIC\", "
                + "\"connect_timeout\": \"1s\"}";
        String useV3 = "@type \"type.googleapis.com/envoy.api.v2.Cluster\": the v2 API is not supported, use v3 "
                + "(expected: type.googleapis.com/envoy.config.cluster.v3.Cluster)";
        assertContains(rejected(file("v2.json", "[" + v2 + "]")), "[0]: " + useV3);
        assertContains(rejected(file("dump.json", "{\"configs\": [{\"@type\": "
                + "\"type.googleapis.com/envoy.admin.v3.ClustersConfigDump\", \"dynamic_active_clusters\": "
                + "[{\"cluster\": " + v2 + "}]}]}")), "configs[0].dynamic_active_clusters[0]: " + useV3);
        assertContains(rejected(file("typo.json", "[{\"@type\": "
                + "\"type.googleapis.com/envoy.config.listener.v3.Listenr\", \"name\": \"x\"}]")),
                "[0]: @type \"type.googleapis.com/envoy.config.listener.v3.Listenr\": not a resource type Inmesh "
                + "reads; did you mean type.googleapis.com/envoy.config.listener.v3.Listener? "
                + "(expected: ");
        assertContains(rejected(file("other.yaml", """
                static_resources:
                  clusters:
                  - {"@type": type.googleapis.com/envoy.config.listener.v3.Listener, name: c, type: STATIC}
                """)), "static_resources.clusters[0]: @type \"type.googleapis.com/envoy.config.listener.v3.Listener\": "
                + "another type than the Cluster expected here (expected: "
                + "type.googleapis.com/envoy.config.cluster.v3.Cluster)");
    }

    /** The network filters an unsupported one's refusal lists are in the same order on every run (a set's was not). */
    @Test
    void anUnsupportedNetworkFiltersRefusalListsTheOthersSorted() throws Exception {
        assertContains(rejected(file("redis.yaml", """
                name: l
                address: {socket_address: {address: 127.0.0.1, port_value: 6379}}
                filter_chains:
                - filters:
                  - name: envoy.filters.network.redis_proxy
                """)), "envoy.filters.network.redis_proxy is not supported by Inmesh (expected: ",
                "or one of [envoy.filters.network.metadata_exchange, envoy.filters.network.wasm_stats, "
                + "istio.metadata_exchange, istio.stats, istio_authn])");
    }
}
