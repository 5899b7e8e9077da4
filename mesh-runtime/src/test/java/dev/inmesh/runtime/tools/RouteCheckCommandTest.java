package dev.inmesh.runtime.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.DescriptorProtos;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto.Label;
import com.google.protobuf.DescriptorProtos.FieldDescriptorProto.Type;
import com.google.protobuf.Descriptors;
import com.google.protobuf.DynamicMessage;
import com.google.protobuf.StringValue;
import com.google.protobuf.TextFormat;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code inmesh route-check} run in-process, as router_check_tool is run: exit codes and what it prints. */
class RouteCheckCommandTest {

    @TempDir
    Path dir;

    private static Path resource(String name) {
        try {
            return Path.of(RouteCheckCommandTest.class.getClassLoader().getResource("routecheck/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new AssertionError(e);
        }
    }

    /** The exit code, standard output and standard error of one run. */
    private record Run(int exit, String out, String err) {}

    private static Run run(String... args) {
        RouteCheckCommand command = new RouteCheckCommand();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        command.out = new PrintStream(out, true, StandardCharsets.UTF_8);
        command.err = new PrintStream(err, true, StandardCharsets.UTF_8);
        CommandLine cli = new CommandLine(command);
        cli.setOut(new java.io.PrintWriter(out, true));
        cli.setErr(new java.io.PrintWriter(err, true));
        int exit = cli.execute(args);
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    /**
     * Runs tests (written to a file) against a route file with {@code --only-show-failures}, and checks the exit code
     * and what it printed of the failed tests (on standard error).
     */
    private Run runTests(Path routes, String tests, int exit, String failures) throws IOException {
        Run r = run("--only-show-failures", "-c", routes.toString(), "-t",
                Files.writeString(dir.resolve("tests.yaml"), tests).toString());
        assertEquals(exit, r.exit(), r.out() + r.err());
        assertEquals(failures, r.err());
        return r;
    }

    @Test
    void allExpectationsOfTheExampleFilePassAndOnlyTheCoverageIsPrinted() {
        Run r = run("-c", resource("routes.yaml").toString(), "-t", resource("tests.yaml").toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("Current route coverage: 88.8889%\n", r.out());
        assertEquals("", r.err());
    }

    @Test
    void detailsPrintsTheNameOfEveryPassedTestOnStandardOutput() {
        Run r = run("--details", "-c", resource("routes.yaml").toString(), "-t", resource("tests.yaml").toString());
        assertEquals(0, r.exit());
        assertTrue(r.out().startsWith("jason goes to v2\nrandom 79 is v1\nrandom 80 is v3\n"), r.out());
        assertTrue(r.out().endsWith("\nwildcard never matches empty\nCurrent route coverage: 88.8889%\n"), r.out());
        assertEquals("", r.err());
    }

    /**
     * As router_check_tool, which finalizes the headers with the route's header parsers: formatted values read the
     * test's request (and response) headers; one that comes out empty adds nothing.
     */
    @Test
    void formattedHeaderValuesReadTheTestsHeaders() throws IOException {
        Path routes = Files.writeString(dir.resolve("formatted.yaml"), """
                name: r
                virtual_hosts:
                - name: api
                  domains: [api]
                  routes:
                  - match: {prefix: /}
                    route: {cluster: users}
                    request_headers_to_add:
                    - {header: {key: x-copy, value: "%REQ(x-user)% 100%%"}}
                    - {header: {key: x-none, value: "%REQ(x-absent)%"}}
                    response_headers_to_add:
                    - {header: {key: x-echo, value: "%RESP(x-up)%"}}
                """);
        runTests(routes, """
                tests:
                - test_name: formatted
                  input: {authority: api, path: /, method: GET, additional_request_headers: [{key: x-user, value: b}],
                    additional_response_headers: [{key: x-up, value: u}]}
                  validate:
                    request_header_matches:
                    - {name: x-copy, string_match: {exact: "b 100%"}}
                    - {name: x-none, present_match: false}
                    response_header_matches:
                    - {name: x-echo, string_match: {exact: u}}
                """, 0, "");
    }

    /**
     * As router_check_tool's stream info (router.cc, compareEntries): a request over HTTP/1.1 from 127.0.0.1 port 0,
     * which the connection's command operators read, in the request's rules and the response's.
     */
    @Test
    void theConnectionsCommandOperatorsReadTheToolsHttp11StreamFromLoopbackPortZero() throws IOException {
        Path routes = Files.writeString(dir.resolve("connection.yaml"), """
                name: r
                virtual_hosts:
                - name: api
                  domains: [api]
                  routes:
                  - match: {prefix: /}
                    route: {cluster: users}
                    request_headers_to_add:
                    - {header: {key: x-client-ip, value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}}
                    - {header: {key: x-client, value: "%DOWNSTREAM_REMOTE_ADDRESS%"}}
                    - {header: {key: x-protocol, value: "%PROTOCOL%"}}
                    - {header: {key: x-method, value: "%REQ(:method)%"}}
                    response_headers_to_add:
                    - {header: {key: x-client-port, value: "%DOWNSTREAM_REMOTE_PORT%"}}
                    - {header: {key: x-protocol, value: "%PROTOCOL%"}}
                """);
        runTests(routes, """
                tests:
                - test_name: connection
                  input: {authority: api, path: /, method: PUT}
                  validate:
                    request_header_matches:
                    - {name: x-client-ip, string_match: {exact: 127.0.0.1}}
                    - {name: x-client, string_match: {exact: "127.0.0.1:0"}}
                    - {name: x-protocol, string_match: {exact: HTTP/1.1}}
                    - {name: x-method, string_match: {exact: PUT}}
                    response_header_matches:
                    - {name: x-client-port, string_match: {exact: "0"}}
                    - {name: x-protocol, string_match: {exact: HTTP/1.1}}
                """, 0, "");
    }

    /**
     * As router_check_tool, which answers a direct response with Envoy's sendLocalReply before the route's response
     * rules (router.cc, finalizeHeaders): a body has its length and {@code text/plain}, which a rule may replace or
     * add to; an empty body has neither.
     */
    @Test
    void aDirectResponsesBodyHasItsLengthAndTextPlainBeforeTheRoutesRulesAsInRouterCheckTool() throws IOException {
        Path routes = Files.writeString(dir.resolve("direct.yaml"), """
                name: r
                virtual_hosts:
                - name: www
                  domains: [www]
                  routes:
                  - match: {path: /text}
                    direct_response: {status: 200, body: {inline_string: "héllo"}}
                  - match: {path: /json}
                    direct_response: {status: 200, body: {inline_string: "{}"}}
                    response_headers_to_add:
                    - header: {key: content-type, value: application/json}
                      append_action: OVERWRITE_IF_EXISTS_OR_ADD
                  - match: {path: /json-added}
                    direct_response: {status: 200, body: {inline_string: "{}"}}
                    response_headers_to_add:
                    - header: {key: content-type, value: application/json}
                  - match: {path: /empty}
                    direct_response: {status: 503, body: {inline_string: ""}}
                  - match: {path: /moved}
                    redirect: {host_redirect: elsewhere}
                """);
        runTests(routes, """
                tests:
                - test_name: text
                  input: {authority: www, path: /text, method: GET}
                  validate:
                    response_header_matches:
                    - {name: content-type, string_match: {exact: text/plain}}
                    - {name: content-length, string_match: {exact: "6"}}
                    - {name: ":status", string_match: {exact: "200"}}
                - test_name: replaced
                  input: {authority: www, path: /json, method: GET}
                  validate:
                    response_header_matches:
                    - {name: content-type, string_match: {exact: application/json}}
                    - {name: content-length, string_match: {exact: "2"}}
                - test_name: added
                  input: {authority: www, path: /json-added, method: GET}
                  validate:
                    response_header_matches:
                    - {name: content-type, string_match: {exact: "text/plain,application/json"}}
                - test_name: empty
                  input: {authority: www, path: /empty, method: GET}
                  validate:
                    response_header_matches:
                    - {name: content-type, present_match: true, invert_match: true}
                    - {name: content-length, present_match: true, invert_match: true}
                    - {name: ":status", string_match: {exact: "503"}}
                - test_name: redirect
                  input: {authority: www, path: /moved, method: GET}
                  validate:
                    response_header_matches:
                    - {name: content-length, present_match: true, invert_match: true}
                    - {name: location, present_match: true, invert_match: true}
                    - {name: ":status", string_match: {exact: "301"}}
                """, 0, "");
    }

    private static final String FAILING_TESTS = """
            tests:
            - test_name: users passes
              input: {authority: api, path: /users/1, method: GET}
              validate: {cluster_name: users}
            - test_name: every field fails
              input: {authority: api, path: /users/1, method: GET, additional_request_headers: [
                {key: x-user, value: b}, {key: x-user, value: c}]}
              validate:
                cluster_name: orders
                virtual_cluster_name: vc
                virtual_host_name: www
                path_rewrite: /v1/users/1
                host_rewrite: users.internal
                path_redirect: "http://api/new"
                code_redirect: 301
                request_header_fields: [{key: x-user, value: "b,c"}, {key: x-absent, value: v}]
                request_header_matches:
                - {name: x-user, string_match: {exact: a}}
                - {name: X-Forwarded-Proto, string_match: {exact: http}, invert_match: true}
                - {name: x-absent, string_match: {exact: a}}
                - {name: x-user, string_match: {prefix: a}}
                - {name: x-user, prefix_match: a}
                - {name: x-user, range_match: {start: 1, end: 2}}
                - {name: x-none, present_match: true}
                - {name: x-user, present_match: true, invert_match: true}
                response_header_fields: [{key: x-absent, value: v}]
                response_header_matches: [{name: x-absent, safe_regex_match: {regex: ".*"}}]
            - test_name: no route
              input: {authority: nowhere, path: /, method: GET}
              validate: {cluster_name: users, virtual_host_name: api, path_redirect: "http://api/new"}
            """;

    /** What Envoy's tool prints of the failed tests of {@link #FAILING_TESTS}, in its words. */
    private static final String FAILURES = """
            every field fails
            expected: [orders], actual: [users], test type: cluster_name
            expected: [vc], actual: [], test type: virtual_cluster_name
            expected: [www], actual: [api], test type: virtual_host_name
            expected: [/v1/users/1], actual: [/v2/users/1], test type: path_rewrite
            expected: [users.internal], actual: [api], test type: host_rewrite
            expected: [http://api/new], actual: [], test type: path_redirect
            expected: [301], actual: [0], test type: code_redirect
            expected: [x-user: a], actual: [x-user: b], test type: request_header_matches.string_match.exact
            expected: [X-Forwarded-Proto: http], actual: NOT [X-Forwarded-Proto: http], test type: \
            request_header_matches.string_match.exact
            expected: [x-absent: a], actual: [x-absent: NULL], test type: request_header_matches.string_match.exact
            actual: [x-user: b], test type: request_header_matches.string_match.prefix
            actual: [x-user: b], test type: request_header_matches.prefix_match
            actual: [x-user: b], test type: request_header_matches.range_match
            expected: [has(x-none):true], actual: [has(x-none):false], test type: request_header_matches.present_match
            expected: [has(x-user):false], actual: [has(x-user):true], test type: request_header_matches.present_match
            expected: [b,c], actual: [b], test type: request_header_fields
            expected: [v], actual: [], test type: request_header_fields
            actual: [x-absent: NULL], test type: response_header_matches.safe_regex_match
            expected: [v], actual: [], test type: response_header_fields
            no route
            expected: [users], actual: [], test type: cluster_name
            expected: [api], actual: [], test type: virtual_host_name
            expected: [http://api/new], actual: [], test type: path_redirect
            """;

    @Test
    void withoutDetailsOrOnlyShowFailuresAFailedRunPrintsNothingAndExitsOneAsRouterCheckTool() throws IOException {
        Path tests = Files.writeString(dir.resolve("tests.yaml"), FAILING_TESTS);
        Run r = run("-c", COVERAGE_ROUTES, "-t", tests.toString());
        assertEquals(1, r.exit(), r.out() + r.err());
        assertEquals("", r.out());
        assertEquals("", r.err());
    }

    @Test
    void detailsPrintsPassedTestsOnStandardOutputAndFailedOnesWithEachFailureInEnvoysWordsOnStandardError()
            throws IOException {
        Path tests = Files.writeString(dir.resolve("tests.yaml"), FAILING_TESTS);
        Run r = run("-d", "-c", COVERAGE_ROUTES, "-t", tests.toString());
        assertEquals(1, r.exit(), r.out() + r.err());
        assertEquals("users passes\n", r.out());
        assertEquals(FAILURES, r.err());
    }

    @Test
    void onlyShowFailuresPrintsTheFailedTestsOnlyWithOrWithoutDetails() throws IOException {
        Path tests = Files.writeString(dir.resolve("tests.yaml"), FAILING_TESTS);
        Run alone = run("--only-show-failures", "-c", COVERAGE_ROUTES, "-t", tests.toString());
        Run withDetails = run("--only-show-failures", "--details", "-c", COVERAGE_ROUTES, "-t", tests.toString());
        for (Run r : new Run[] {alone, withDetails}) {
            assertEquals(1, r.exit(), r.out() + r.err());
            assertEquals("", r.out());
            assertEquals(FAILURES, r.err());
        }
    }

    @Test
    void aFailingExpectationPrintsExpectedAndActualAndExitsOne() throws IOException {
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - test_name: jason goes to v3
                  input:
                    authority: reviews
                    path: /reviews/0
                    method: GET
                    additional_request_headers: [{key: end-user, value: jason}]
                  validate:
                    cluster_name: "outbound|9080|v3|reviews.default.svc.cluster.local"
                - test_name: no virtual host
                  input: {authority: unknown, path: /, method: GET}
                  validate: {cluster_name: ""}
                """);
        Run r = run("--details", "-c", resource("routes.yaml").toString(), "-t", tests.toString());
        assertEquals(1, r.exit(), r.out() + r.err());
        assertEquals("jason goes to v3\nexpected: [outbound|9080|v3|reviews.default.svc.cluster.local], "
                + "actual: [outbound|9080|v2|reviews.default.svc.cluster.local], test type: cluster_name\n", r.err());
        assertEquals("no virtual host\n", r.out());
    }

    @Test
    void aCommandLineWithoutTheRouteOrTestFileExitsOneInRouterCheckToolsWords() {
        for (Run r : new Run[] {run("-c", resource("routes.yaml").toString()), run("-t", "t.yaml"), run()}) {
            assertEquals(1, r.exit(), r.out() + r.err());
            assertEquals("", r.out());
            assertEquals("error: Both --config-path/c and --test-path/t are mandatory\n", r.err());
        }
        assertEquals(1, run("-c", resource("routes.yaml").toString(), "-t", "t.yaml", "--no-such-flag").exit());
    }

    @Test
    void aMissingTestFileExitsOneNamingIt() {
        Path missing = dir.resolve("no-tests.yaml");
        Run r = run("-c", resource("routes.yaml").toString(), "-t", missing.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains(missing.toString()), r.err());
        assertTrue(r.err().contains("no such file"), r.err());
        assertFalse(r.err().contains("Exception"), r.err());
    }

    @Test
    void aTestFileThatIsNotTextExitsOneNamingIt() throws IOException {
        Path tests = Files.write(dir.resolve("tests.yaml"), new byte[] {(byte) 0xC3, 0x28, (byte) 0xFF});
        Run r = run("-c", resource("routes.yaml").toString(), "-t", tests.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains(tests + ": cannot read: not UTF-8 text"), r.err());
    }

    @Test
    void aDirectoryAsTheTestFileExitsOneNamingIt() {
        Run r = run("-c", resource("routes.yaml").toString(), "-t", dir.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains(dir + ": is a directory"), r.err());
    }

    @Test
    void aTestFileThatIsNotATestFileExitsOneNamingIt() throws IOException {
        Path tests = Files.writeString(dir.resolve("tests.yaml"), "name: \"9080\"\nvirtual_hosts: []\n");
        Run r = run("-c", resource("routes.yaml").toString(), "-t", tests.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains(tests.toString()), r.err());
        assertTrue(r.err().contains("tests"), r.err());
    }

    @Test
    void aMissingRouteFileExitsOneNamingIt() {
        Path missing = dir.resolve("no-routes.yaml");
        Run r = run("-c", missing.toString(), "-t", resource("tests.yaml").toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains(missing.toString()), r.err());
    }

    @Test
    void anInvalidRouteFileExitsOneNamingTheFileAndTheField() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), """
                name: "9080"
                virtual_hosts:
                - name: reviews
                  domains: [reviews]
                  routes: [{match: {safe_regex: {regex: "(["}}, route: {cluster: a}}]
                """);
        Run r = run("-c", routes.toString(), "-t", resource("tests.yaml").toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains(routes + ": RouteConfiguration \"9080\": virtual_hosts[0].routes[0].match"
                + ".safe_regex.regex"), r.err());
    }

    @Test
    void theJsonFormOfTheTestFileWorksToo() throws IOException {
        Path tests = Files.writeString(dir.resolve("tests.json"), """
                {
                  "tests": [
                    {
                      "test_name": "jason goes to v2",
                      "input": {
                        "authority": "reviews:9080",
                        "path": "/reviews/0",
                        "method": "GET",
                        "additional_request_headers": [{"key": "end-user", "value": "jason"}]
                      },
                      "validate": {
                        "cluster_name": "outbound|9080|v2|reviews.default.svc.cluster.local",
                        "virtual_host_name": "reviews.default.svc.cluster.local:9080"
                      }
                    },
                    {
                      "test_name": "random 79 is v1",
                      "input": {"authority": "reviews", "path": "/reviews/0", "method": "GET", "random_value": 79},
                      "validate": {"cluster_name": "outbound|9080|v1|reviews.default.svc.cluster.local"}
                    },
                    {
                      "test_name": "direct response",
                      "input": {"authority": "ratings", "path": "/health", "method": "GET"},
                      "validate": {
                        "cluster_name": "",
                        "response_header_matches": [{"name": ":status", "string_match": {"exact": "200"}}]
                      }
                    }
                  ]
                }
                """);
        Run r = run("-d", "-c", resource("routes.yaml").toString(), "-t", tests.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().startsWith("jason goes to v2\nrandom 79 is v1\ndirect response\n"), r.out());
    }

    @Test
    void aRouteFileInJsonAsIstioctlPrintsItWorks() throws IOException, URISyntaxException {
        Path routes = Path.of(RouteCheckCommandTest.class.getClassLoader().getResource("istio/routes.json").toURI());
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - test_name: jason goes to reviews v2
                  input:
                    authority: reviews:9080
                    path: /reviews/0
                    method: GET
                    additional_request_headers: [{key: end-user, value: jason}]
                  validate: {cluster_name: "outbound|9080|v2|reviews.default.svc.cluster.local"}
                - test_name: anyone else to v1 below 50
                  input: {authority: reviews.default.svc.cluster.local, path: /, method: GET, random_value: 49}
                  validate: {cluster_name: "outbound|9080|v1|reviews.default.svc.cluster.local"}
                - test_name: anyone else to v3 from 50
                  input: {authority: reviews.default.svc.cluster.local, path: /, method: GET, random_value: 150}
                  validate: {cluster_name: "outbound|9080|v3|reviews.default.svc.cluster.local"}
                - test_name: an external host passes through
                  input: {authority: "www.example.com:443", path: /, method: GET}
                  validate: {cluster_name: PassthroughCluster, virtual_host_name: allow_any}
                - test_name: the cluster IP picks details
                  input: {authority: "10.96.171.138:9080", path: /details/0, method: GET}
                  validate: {cluster_name: "outbound|9080||details.default.svc.cluster.local"}
                """);
        Run r = run("-c", routes.toString(), "-t", tests.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("", r.err());
    }

    private static final String HEADER_RULES = """
            name: r
            virtual_hosts:
            - name: svc
              domains: ["svc"]
              response_headers_to_remove: [x-internal]
              routes:
              - match: {prefix: /}
                route: {cluster: c}
                response_headers_to_add:
                - header: {key: x-served-by, value: mesh}
                  append_action: OVERWRITE_IF_EXISTS_OR_ADD
            """;

    @Test
    void additionalResponseHeadersAreTheUpstreamsAndTheRouteRulesActOnThemWithoutAStatusAsInRouterCheckTool()
            throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), HEADER_RULES);
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - test_name: rules on the upstream's headers
                  input:
                    authority: svc
                    path: /
                    method: GET
                    additional_response_headers:
                    - {key: x-internal, value: secret}
                    - {key: x-served-by, value: app}
                    - {key: x-app, value: "1"}
                  validate:
                    response_header_matches:
                    - {name: x-internal, present_match: true, invert_match: true}
                    - {name: x-served-by, string_match: {exact: mesh}}
                    - {name: x-app, string_match: {exact: "1"}}
                    - {name: ":status", present_match: true, invert_match: true}
                - test_name: the response of no route
                  input: {authority: other, path: /, method: GET, additional_response_headers: [{key: x-app, value: a}]}
                  validate:
                    response_header_matches:
                    - {name: x-app, string_match: {exact: a}}
                    - {name: ":status", present_match: true, invert_match: true}
                """);
        Run r = run("-d", "-c", routes.toString(), "-t", tests.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("", r.err());
    }

    @Test
    void theDeprecatedHeaderFieldsAreExactMatchesAndAreChecked() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), HEADER_RULES);
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - test_name: request and response fields
                  input:
                    authority: svc
                    path: /
                    method: GET
                    additional_response_headers: [{key: x-app, value: "1"}]
                  validate:
                    request_header_fields: [{key: x-forwarded-proto, value: http}]
                    response_header_fields: [{key: x-served-by, value: mesh}, {key: x-app, value: "1"}]
                - test_name: a field that does not hold
                  input: {authority: svc, path: /, method: GET}
                  validate:
                    response_header_fields: [{key: x-served-by, value: app}]
                """);
        Run r = run("-d", "-c", routes.toString(), "-t", tests.toString());
        assertEquals(1, r.exit(), r.out() + r.err());
        assertEquals("request and response fields\n", r.out());
        assertEquals("a field that does not hold\nexpected: [app], actual: [mesh], test type: response_header_fields\n",
                r.err());
    }

    @Test
    void aHostHeaderMatcherReadsTheTestsAuthorityAsEnvoysHeaderMapDoes() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), """
                name: r
                virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes:
                  - match: {prefix: /, headers: [{name: host, string_match: {exact: api.example.com}}]}
                    route: {cluster: api}
                  - match: {prefix: /}
                    route: {cluster: other}
                """);
        runTests(routes, """
                tests:
                - test_name: host is the authority
                  input: {authority: api.example.com, path: /, method: GET}
                  validate: {cluster_name: api}
                - test_name: another authority
                  input: {authority: www.example.com, path: /, method: GET}
                  validate: {cluster_name: other}
                """, 0, "");
    }

    /**
     * As Envoy's request header map, which files {@code host} under {@code :authority} (its legacy host mapping): a
     * test's checks of the request's {@code host} read the authority, and a {@code host} among its
     * additional_request_headers is appended to it as to any header the map keeps once; a response has no such
     * mapping.
     */
    @Test
    void aTestsRequestHostIsTheAuthorityInItsChecksAndItsAdditionalHeadersAsInEnvoysHeaderMap() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), """
                name: r
                virtual_hosts:
                - name: all
                  domains: ["*"]
                  routes:
                  - match: {prefix: /}
                    route: {cluster: c}
                """);
        runTests(routes, """
                tests:
                - test_name: checks
                  input: {authority: svc, path: /, method: GET, additional_response_headers: [{key: x-up, value: u}]}
                  validate:
                    request_header_matches: [{name: host, string_match: {exact: svc}}]
                    request_header_fields: [{key: Host, value: svc}]
                    response_header_matches: [{name: host, present_match: true, invert_match: true}]
                - test_name: an additional host
                  input: {authority: svc, path: /, method: GET, additional_request_headers: [{key: Host, value: other}]}
                  validate:
                    host_rewrite: "svc,other"
                    request_header_matches: [{name: ":authority", string_match: {exact: "svc,other"}}]
                    request_header_fields: [{key: ":authority", value: "svc,other"}]
                """, 0, "");
    }

    @Test
    void aDeprecatedHeaderFieldReadsAnAbsentHeaderAsTheEmptyValue() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), HEADER_RULES);
        Run r = runTests(routes, """
                tests:
                - test_name: an absent header is the empty value
                  input: {authority: svc, path: /, method: GET}
                  validate:
                    request_header_fields: [{key: x-absent, value: ""}]
                    response_header_fields: [{key: x-absent, value: ""}]
                - test_name: an empty expectation does not take any value
                  input: {authority: svc, path: /, method: GET}
                  validate:
                    response_header_fields: [{key: x-served-by, value: ""}]
                """, 1, "an empty expectation does not take any value\n"
                + "expected: [], actual: [mesh], test type: response_header_fields\n");
    }

    @Test
    void codeRedirectIsTheStatusOfARedirectOrADirectResponseAndZeroOtherwise() throws IOException {
        Run r = runTests(resource("routes.yaml"), """
                tests:
                - test_name: a redirect's code
                  input: {authority: ratings, path: /old, method: GET}
                  validate: {code_redirect: 302, path_redirect: "http://ratings/new"}
                - test_name: the default redirect code
                  input: {authority: ratings, path: /secure, method: GET}
                  validate: {codeRedirect: 301}
                - test_name: a direct response's status
                  input: {authority: ratings, path: /health, method: GET}
                  validate: {code_redirect: 200}
                - test_name: a forward has none
                  input: {authority: ratings, path: /v1/x, method: GET}
                  validate: {code_redirect: 0}
                - test_name: a wrong code fails
                  input: {authority: ratings, path: /old, method: GET}
                  validate: {code_redirect: 301}
                """, 1, "a wrong code fails\nexpected: [301], actual: [302], test type: code_redirect\n");
    }

    @Test
    void aDirectResponsesPathRedirectIsTheRequestsOwnUrlAsInRouterCheckTool() throws IOException {
        runTests(resource("routes.yaml"), """
                tests:
                - test_name: direct response
                  input: {authority: "ratings:9080", path: "/health?probe=1", method: GET, ssl: true}
                  validate: {path_redirect: "https://ratings:9080/health?probe=1"}
                - test_name: forward
                  input: {authority: ratings, path: /v1/x, method: GET}
                  validate: {path_redirect: ""}
                """, 0, "");
    }

    @Test
    void aRedirectOrADirectResponseHasNoVirtualHostNameAsInRouterCheckTool() throws IOException {
        runTests(resource("routes.yaml"), """
                tests:
                - test_name: redirect
                  input: {authority: ratings, path: /old, method: GET}
                  validate: {virtual_host_name: ""}
                - test_name: direct response
                  input: {authority: ratings, path: /health, method: GET}
                  validate: {virtual_host_name: ""}
                - test_name: forward
                  input: {authority: ratings, path: /v1/x, method: GET}
                  validate: {virtual_host_name: ratings}
                """, 0, "");
    }

    @Test
    void aFieldTheToolWouldNotCheckStopsTheRunInsteadOfPassingUnchecked() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), HEADER_RULES);
        String[][] cases = {
            {"validate: {cluster: c}", "tests[0] (t).validate.cluster: unknown field"},
        };
        for (String[] c : cases) {
            Path tests = Files.writeString(dir.resolve("tests.yaml"), "tests:\n- test_name: t\n"
                    + "  input: {authority: svc, path: /, method: GET}\n  " + c[0] + "\n");
            Run r = run("-c", routes.toString(), "-t", tests.toString());
            assertEquals(1, r.exit(), c[0] + ": " + r.out() + r.err());
            assertTrue(r.err().contains(c[1]), c[0] + ": " + r.err());
        }
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - test_name: t
                  input: {authority: svc, path: /, method: GET, runtime: routing.enabled, headers: []}
                  validate: {cluster_name: c}
                """);
        Run r = run("-c", routes.toString(), "-t", tests.toString());
        assertEquals(1, r.exit());
        assertTrue(r.err().contains("tests[0] (t).input.headers: unknown field"), r.err());
    }

    /**
     * As router_check_tool, which loads its test file strictly into validation.proto's Validation and validates it
     * (TestUtility::loadFromFile, TestUtility::validate): an unknown field anywhere, no test, a method shorter than
     * 3 characters or none, an empty authority or path, a random_value that is no uint64, a header check of the
     * wrong type, a string field (of the test, a header value, a header matcher or a StringValue check) that holds no
     * JSON string (protobuf's parser.cc, ParseStrOrBytes) stop the run with exit 1, naming the field.
     */
    @Test
    void aTestFileIsReadAsStrictlyAsRouterCheckToolReadsItWithExitOne() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), HEADER_RULES);
        String input = "input: {authority: svc, path: /, method: GET}";
        String[][] cases = {
            {"{tests: [{test_name: t, " + input + ", validate: {}}], extra: 1}", "extra: unknown field"},
            {"{tests: []}", "tests: none (expected: at least one test)"},
            {"{tests: [{tst_name: t, " + input + ", validate: {}}]}", "tests[0].tst_name: unknown field"},
            {"{tests: [{" + input + ", validate: {}}]}", "tests[0].test_name: missing"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /}, validate: {}}]}",
                "tests[0] (t).input.method: missing (expected: a method of at least 3 characters)"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: GE}, validate: {}}]}",
                "tests[0] (t).input.method: \"GE\" (expected: a method of at least 3 characters)"},
            {"{tests: [{test_name: t, input: {authority: \"\", path: /, method: GET}, validate: {}}]}",
                "tests[0] (t).input.authority: missing (expected: a non-empty value)"},
            {"{tests: [{test_name: t, input: {authority: svc, path: \"\", method: GET}, validate: {}}]}",
                "tests[0] (t).input.path: missing (expected: a non-empty value)"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: GET, random_value: abc}, "
                + "validate: {}}]}", "tests[0] (t).input.random_value: \"abc\" (expected: a uint64"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: GET, random_value: -5}, "
                + "validate: {}}]}", "tests[0] (t).input.random_value: -5 (expected: a uint64"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: GET, random_value: 1.5}, "
                + "validate: {}}]}", "tests[0] (t).input.random_value: \"1.5\" (expected: a uint64"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: GET, ssl: 1}, validate: {}}]}",
                "tests[0] (t).input.ssl: 1 (expected: true or false)"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: GET, "
                + "additional_request_headers: [{key: k, value: v, append: true}]}, validate: {}}]}",
                "tests[0] (t).input.additional_request_headers[0]: "},
            {"{tests: [{test_name: t, " + input + ", validate: {request_header_fields: [{key: k, bogus: 1}]}}]}",
                "tests[0] (t).validate.request_header_fields[0]: "},
            {"{tests: [{test_name: t, " + input + ", validate: {response_header_matches: x-foo}}]}",
                "tests[0] (t).validate.response_header_matches[0]: "},
            {"{tests: [{test_name: t, " + input + ", validate: {cluster_name: {value: c, x: 1}}}]}",
                "tests[0] (t).validate.cluster_name: "},
            // a string field takes a string only; in YAML as Envoy types its scalars: 5, yes, 0x10 are none
            {"{tests: [{test_name: 5, " + input + ", validate: {}}]}", "tests[0].test_name: 5 (expected: a string)"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: 123}, validate: {}}]}",
                "tests[0] (t).input.method: 123 (expected: a string)"},
            {"{tests: [{test_name: t, input: {authority: yes, path: /, method: GET}, validate: {}}]}",
                "tests[0] (t).input.authority: true (expected: a string)"},
            {"{tests: [{test_name: t, input: {authority: svc, path: [/a], method: GET}, validate: {}}]}",
                "tests[0] (t).input.path: a list (expected: a string)"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: GET, runtime: {}}, validate: {}}]}",
                "tests[0] (t).input.runtime: an object (expected: a string)"},
            {"{\"tests\": [{\"test_name\": \"t\", \"input\": {\"authority\": \"svc\", \"path\": \"/\", "
                + "\"method\": \"GET\", \"runtime\": 0x10}, \"validate\": {}}]}",
                "tests[0] (t).input.runtime: 16 (expected: a string)"},
            // so is every string of a header value, a header matcher and a StringValue check, {value: ...} too
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: GET, "
                + "additional_request_headers: [{key: k, value: 123}]}, validate: {}}]}",
                "tests[0] (t).input.additional_request_headers[0].value: 123 (expected: a string)"},
            {"{tests: [{test_name: t, input: {authority: svc, path: /, method: GET, "
                + "additional_response_headers: {key: 5, value: v}}, validate: {}}]}",
                "tests[0] (t).input.additional_response_headers[0].key: 5 (expected: a string)"},
            {"{tests: [{test_name: t, " + input + ", validate: {cluster_name: 5}}]}",
                "tests[0] (t).validate.cluster_name: 5 (expected: a string)"},
            {"{tests: [{test_name: t, " + input + ", validate: {virtual_host_name: {value: 5}}}]}",
                "tests[0] (t).validate.virtual_host_name.value: 5 (expected: a string)"},
            {"{tests: [{test_name: t, " + input + ", validate: {virtual_cluster_name: on}}]}",
                "tests[0] (t).validate.virtual_cluster_name: true (expected: a string)"},
            {"{tests: [{test_name: t, " + input + ", validate: {path_rewrite: yes}}]}",
                "tests[0] (t).validate.path_rewrite: true (expected: a string)"},
            {"{tests: [{test_name: t, " + input + ", validate: {host_rewrite: 0x10}}]}",
                "tests[0] (t).validate.host_rewrite: 16 (expected: a string)"},
            {"{tests: [{test_name: t, " + input + ", validate: {path_redirect: {value: false}}}]}",
                "tests[0] (t).validate.path_redirect.value: false (expected: a string)"},
            {"{tests: [{test_name: t, " + input + ", validate: {request_header_fields: [{key: k, value: yes}]}}]}",
                "tests[0] (t).validate.request_header_fields[0].value: true (expected: a string)"},
            {"{tests: [{test_name: t, " + input + ", validate: {request_header_matches: "
                + "{name: x-k, string_match: {exact: 5}}}}]}",
                "tests[0] (t).validate.request_header_matches[0].string_match.exact: 5 (expected: a string)"},
            {"{tests: [{test_name: t, " + input + ", validate: {response_header_matches: "
                + "[{name: 200, present_match: true}]}}]}",
                "tests[0] (t).validate.response_header_matches[0].name: 200 (expected: a string)"},
        };
        for (String[] c : cases) {
            Path tests = Files.writeString(dir.resolve("tests.yaml"), c[0]);
            Run r = run("-c", routes.toString(), "-t", tests.toString());
            assertEquals(1, r.exit(), c[0] + ": " + r.out() + r.err());
            assertTrue(r.err().startsWith("route-check: " + tests + ": " + c[1]), c[0] + ": " + r.err());
            assertFalse(r.err().contains("Exception"), c[0] + ": " + r.err());
        }
    }

    /**
     * As router_check_tool, whose validation.proto only requires a test's validate to be there, and whose JSON
     * parser (protobuf's, in the legacy syntax Envoy's loading allows) takes a single element in place of a list, a
     * wrapper as {@code {value: ...}}, a quoted uint64 and a bool as a string such as {@code "yes"}.
     */
    @Test
    void aTestFileInTheFormsRouterCheckToolsParserAlsoTakesWorks() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), HEADER_RULES);
        runTests(routes, """
                tests:
                  test_name: one test, no list
                  input:
                    authority: svc
                    path: /
                    method: GET
                    random_value: "4294967296"
                    ssl: "yes"
                    additional_request_headers: {key: x-k, value: v}
                  validate:
                    cluster_name: {value: c}
                    code_redirect: {value: 0}
                    request_header_matches: {name: x-k, string_match: {exact: v}}
                    request_header_fields: {key: x-forwarded-proto, value: https}
                """, 0, "");
        runTests(routes, """
                tests:
                - test_name: nothing to check
                  input: {authority: svc, path: /, method: GET}
                  validate: {}
                - test_name: a wrapper's value that does not hold
                  input: {authority: svc, path: /, method: GET}
                  validate: {cluster_name: {value: other}}
                """, 1, "a wrapper's value that does not hold\n"
                + "expected: [other], actual: [c], test type: cluster_name\n");
        // as Envoy types YAML's scalars: a plain 2.50 or 1e3 is the string as written, 1.0 a whole number
        runTests(routes, """
                tests:
                - test_name: 2.50
                  input: {authority: svc, path: /, method: 1e3, random_value: 1.0}
                  validate: {cluster_name: other}
                """, 1, "2.50\nexpected: [other], actual: [c], test type: cluster_name\n");
    }

    @Test
    void aRuntimeFractionRouteMatchesOnlyForTheTestsRuntimeKeyAndRandomValueAsInRouterCheckTool()
            throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), """
                name: r
                virtual_hosts:
                - name: svc
                  domains: ["svc"]
                  routes:
                  - match:
                      prefix: /
                      runtime_fraction: {default_value: {numerator: 50}, runtime_key: canary.enabled}
                    route: {cluster: canary}
                  - match: {prefix: /}
                    route: {cluster: stable}
                - name: zero
                  domains: ["zero"]
                  routes:
                  - match:
                      prefix: /
                      runtime_fraction: {default_value: {numerator: 0}, runtime_key: zero.enabled}
                    route: {cluster: z}
                  - match: {prefix: /}
                    route: {cluster: rest}
                """);
        // Envoy's tool: a route's runtime_fraction is on only for the key the test's runtime names, by its
        // random_value against the default value (a numerator of 0 read as 1); without it, never
        Run r = runTests(routes, """
                tests:
                - test_name: no runtime key
                  input: {authority: svc, path: /, method: GET, random_value: 0}
                  validate: {cluster_name: stable}
                - test_name: its key, within the fraction
                  input: {authority: svc, path: /, method: GET, runtime: canary.enabled, random_value: 10}
                  validate: {cluster_name: canary}
                - test_name: its key, outside the fraction
                  input: {authority: svc, path: /, method: GET, runtime: canary.enabled, random_value: 60}
                  validate: {cluster_name: stable}
                - test_name: another key
                  input: {authority: svc, path: /, method: GET, runtime: other.enabled, random_value: 0}
                  validate: {cluster_name: stable}
                - test_name: a numerator of 0
                  input: {authority: zero, path: /, method: GET, runtime: zero.enabled, random_value: 0}
                  validate: {cluster_name: z}
                - test_name: a numerator of 0, outside
                  input: {authority: zero, path: /, method: GET, runtime: zero.enabled, random_value: 1}
                  validate: {cluster_name: rest}
                """, 0, "");
        assertEquals("Current route coverage: 100%\n", r.out()); // each route found, in the configuration's terms
    }

    /**
     * As router_check_tool, which keeps a test's random_value in an int (router.h, ToolConfig) that the route table
     * then reads as a uint64: past 2^31 the value picks as its low 32 bits, sign-extended, do.
     */
    @Test
    void aRandomValuePast2To31PicksAsTheIntRouterCheckToolKeepsItIn() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), """
                name: r
                virtual_hosts:
                - name: split
                  domains: [split]
                  routes:
                  - match: {prefix: /}
                    route: {weighted_clusters: {clusters: [{name: low, weight: 80}, {name: high, weight: 20}]}}
                - name: svc
                  domains: [svc]
                  routes:
                  - match:
                      prefix: /
                      runtime_fraction: {default_value: {numerator: 50}, runtime_key: canary.enabled}
                    route: {cluster: canary}
                  - match: {prefix: /}
                    route: {cluster: stable}
                """);
        // 2^32 + 80 is 80 (not 76); 2^31 + 40 is -2147483608, 2^64 - 2147483608 as a uint64 (8 modulo 100, not 88)
        runTests(routes, """
                tests:
                - test_name: 2^32 + 80
                  input: {authority: split, path: /, method: GET, random_value: 4294967376}
                  validate: {cluster_name: high}
                - test_name: 2^31 + 40
                  input: {authority: split, path: /, method: GET, random_value: 2147483688}
                  validate: {cluster_name: low}
                - test_name: 2^64 - 1
                  input: {authority: split, path: /, method: GET, random_value: 18446744073709551615}
                  validate: {cluster_name: low}
                - test_name: runtime, 2^32 + 50
                  input: {authority: svc, path: /, method: GET, runtime: canary.enabled, random_value: 4294967346}
                  validate: {cluster_name: stable}
                - test_name: runtime, 2^31 + 40
                  input: {authority: svc, path: /, method: GET, runtime: canary.enabled, random_value: 2147483688}
                  validate: {cluster_name: canary}
                """, 0, "");
    }

    @Test
    void aRequestHasNoVirtualClusterAsInmeshRefusesThemSoVirtualClusterNameIsTheEmptyName() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), HEADER_RULES);
        Run r = runTests(routes, """
                tests:
                - test_name: none expected
                  input: {authority: svc, path: /, method: GET}
                  validate: {cluster_name: c, virtual_cluster_name: ""}
                - test_name: no route has none either
                  input: {authority: other, path: /, method: GET}
                  validate: {virtualClusterName: ""}
                - test_name: one expected
                  input: {authority: svc, path: /, method: GET}
                  validate: {virtual_cluster_name: reviews-get}
                """, 1, "one expected\nexpected: [reviews-get], actual: [], test type: virtual_cluster_name\n");

        Path withVirtualClusters = Files.writeString(dir.resolve("vc.yaml"), HEADER_RULES
                + "  virtual_clusters: [{name: reviews-get, headers: [{name: \":method\", exact_match: GET}]}]\n");
        Run refused = run("-c", withVirtualClusters.toString(), "-t", dir.resolve("tests.yaml").toString());
        assertEquals(1, refused.exit(), refused.out() + refused.err());
        assertTrue(refused.err().contains("virtual_clusters"), refused.err());
    }

    private static final String COVERAGE_ROUTES = resource("coverage-routes.yaml").toString();
    private static final String COVERAGE_TESTS = resource("coverage-tests.yaml").toString();

    @Test
    void aPassingRunPrintsTheShareOfRoutesATestCoveredAsRouterCheckToolDoes() {
        // users, the split's orders-v1 and the redirect are covered; the split's orders-v2, the direct response
        // (whose checks found nothing it has) and www's route are not: 3 of 6, a weighted cluster counting as one
        Run r = run("-c", COVERAGE_ROUTES, "-t", COVERAGE_TESTS);
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("Current route coverage: 50%\n", r.out());
        assertEquals("", r.err());
    }

    @Test
    void aRouteConfigurationWithoutRoutesHasTheCoverageRouterCheckToolPrintsOnThisProcessorAndMeetsAnyThreshold()
            throws IOException {
        // Envoy's tool divides 0 by 0 and prints the NaN as glibc does: with the sign bit x86 sets, ARM does not
        String nan = System.getProperty("os.arch").matches("amd64|x86_64") ? "-nan" : "nan";
        Path routes = Files.writeString(dir.resolve("routes.yaml"), "name: none\nvirtual_hosts: []\n");
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - {test_name: nothing, input: {authority: svc, path: /, method: GET}, validate: {cluster_name: ""}}
                """);
        for (String covall : new String[] {"--covall", "--detailed-coverage"}) {
            Run r = run("-c", routes.toString(), "-t", tests.toString(), covall, "-f", "50");
            assertEquals(0, r.exit(), r.out() + r.err());
            assertEquals("Current route coverage: " + nan + "%\n", r.out());
            assertEquals("", r.err());
        }
    }

    @Test
    void failUnderExitsOneWhenTheCoverageIsBelowItAndZeroAtIt() {
        Run at = run("-c", COVERAGE_ROUTES, "-t", COVERAGE_TESTS, "-f", "50");
        assertEquals(0, at.exit(), at.out() + at.err());
        Run under = run("-c", COVERAGE_ROUTES, "-t", COVERAGE_TESTS, "--fail-under", "50.1");
        assertEquals(1, under.exit(), under.out() + under.err());
        assertTrue(under.out().contains("Current route coverage: 50%"), under.out());
        assertEquals("Failed to meet coverage requirement: 50.1%\n", under.err());
    }

    @Test
    void covallCountsTheShareOfEachRoutesFieldsAndListsTheRoutesWithoutATest() {
        // users 5 of 5 fields, orders-v1 1 of 5, the redirect 1 of 2: 1.7 of 6 routes
        Run r = run("-c", COVERAGE_ROUTES, "-t", COVERAGE_TESTS, "--covall", "-f", "28.4");
        assertEquals(1, r.exit(), r.out() + r.err());
        assertEquals("""
                Missing test for host: api, route: headers {
                  name: "x-probe"
                  present_match: true
                }
                safe_regex {
                  regex: "/health.*"
                }

                Missing test for host: www, route: prefix: "/"
                case_sensitive {
                }

                Current route coverage: 28.3333%
                """, r.out());
        assertEquals("Failed to meet coverage requirement: 28.4%\n", r.err());
    }

    @Test
    void covallPrintsARoutesMatchAsRouterCheckToolDoesWithARuntimeFractionOfZeroReadAsOne() throws IOException {
        Path routes = Files.writeString(dir.resolve("routes.yaml"), """
                name: canary
                virtual_hosts: [{name: canary, domains: [canary], routes: [{route: {cluster: c}, match: {
                      prefix: /,
                      runtime_fraction: {default_value: {numerator: 0}, runtime_key: canary},
                      headers: [{name: x-canary, string_match: {exact: "\u00e9"}}]}}]}]
                """);
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - test_name: elsewhere
                  input: {authority: other, path: /, method: GET}
                  validate: {cluster_name: ""}
                """);
        Run r = run("--covall", "-c", routes.toString(), "-t", tests.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertEquals("""
                Missing test for host: canary, route: prefix: "/"
                headers {
                  name: "x-canary"
                  string_match {
                    exact: "\\303\\251"
                  }
                }
                runtime_fraction {
                  default_value {
                    numerator: 1
                  }
                  runtime_key: "canary"
                }

                Current route coverage: 0%
                """, r.out());
    }

    @Test
    void detailedCoverageListsTheRoutesWithoutATestByTheNameRouterCheckToolGivesThemWithAUuid() throws IOException {
        String uuid = "-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n";
        Run r = run("-c", COVERAGE_ROUTES, "-t", COVERAGE_TESTS, "--detailed-coverage");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().matches(""
                + "Missing test for host: api, route name: health" + uuid
                + "Missing test for host: www, route name: home" + uuid
                + "Current route coverage: 50%\n"), r.out());
        Run unnamed = run("-c", Files.writeString(dir.resolve("routes.yaml"), HEADER_RULES).toString(), "-t",
                Files.writeString(dir.resolve("tests.yaml"), "tests: [{test_name: t, "
                        + "input: {authority: x, path: /, method: GET}, validate: {cluster_name: \"\"}}]").toString(),
                "--detailed-coverage");
        assertTrue(unnamed.out().matches("Missing test for host: svc, route name: " + uuid
                + "Current route coverage: 0%\n"), unnamed.out());
    }

    @Test
    void aFailingRunPrintsNoCoverageAndExitsOneWhateverTheThreshold() throws IOException {
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - test_name: wrong cluster
                  input: {authority: api, path: /users, method: GET}
                  validate: {cluster_name: orders-v1}
                """);
        Run r = run("-c", COVERAGE_ROUTES, "-t", tests.toString(), "-f", "0");
        assertEquals(1, r.exit(), r.out() + r.err());
        assertFalse(r.out().contains("Current route coverage"), r.out());
    }

    @Test
    void everyClusterOfAWeightedSplitTestedCoversItsShare() throws IOException {
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - test_name: orders-v1
                  input: {authority: api, path: /orders, method: GET, random_value: 10}
                  validate: {cluster_name: orders-v1}
                - test_name: orders-v1 again
                  input: {authority: api, path: /orders, method: GET, random_value: 20}
                  validate: {cluster_name: orders-v1}
                - test_name: orders-v2
                  input: {authority: api, path: /orders, method: GET, random_value: 60}
                  validate: {cluster_name: orders-v2}
                """);
        Run r = run("-c", COVERAGE_ROUTES, "-t", tests.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("Current route coverage: 33.3333%"), r.out());
    }

    @Test
    void disableDeprecationCheckIsAcceptedAndChangesNothing() throws IOException {
        // a deprecated field (HeaderMatcher.exact_match) loads the same with or without the flag
        Path routes = Files.writeString(dir.resolve("routes.yaml"), """
                name: r
                virtual_hosts:
                - name: svc
                  domains: [svc]
                  routes:
                  - match: {prefix: /, headers: [{name: end-user, exact_match: jason}]}
                    route: {cluster: jason}
                """);
        Path tests = Files.writeString(dir.resolve("tests.yaml"), """
                tests:
                - test_name: jason
                  input:
                    authority: svc
                    path: /
                    method: GET
                    additional_request_headers: [{key: end-user, value: jason}]
                  validate: {cluster_name: jason}
                """);
        Run with = run("-c", routes.toString(), "-t", tests.toString(), "--disable-deprecation-check");
        Run without = run("-c", routes.toString(), "-t", tests.toString());
        assertEquals(0, with.exit(), with.out() + with.err());
        assertEquals(without.exit(), with.exit());
        assertEquals(without.out(), with.out());
        assertEquals("", with.err());
    }

    /**
     * Envoy's ValidationResult schema (test/tools/router_check/validation.proto) rebuilt from its field numbers, to
     * read what --output-path writes.
     */
    private static Descriptors.Descriptor validationResultType() throws Descriptors.DescriptorValidationException {
        String pkg = ".envoy.RouterCheckToolSchema.";
        String string = ".google.protobuf.StringValue";
        String uint32 = ".google.protobuf.UInt32Value";
        DescriptorProtos.DescriptorProto.Builder failure = message("ValidationFailure");
        String[] fields = {"cluster_name", "virtual_cluster_name", "virtual_host_name", "host_rewrite", "path_rewrite",
            "path_redirect", "code_redirect"};
        for (int i = 0; i < fields.length; i++) {
            String type = fields[i].equals("code_redirect") ? uint32 : string;
            failure.addField(field("expected_" + fields[i], 2 * i + 1, type, false));
            failure.addField(field("actual_" + fields[i], 2 * i + 2, type, false));
        }
        failure.addField(field("request_header_match_failures", 15, pkg + "HeaderMatchFailure", true));
        failure.addField(field("response_header_match_failures", 16, pkg + "HeaderMatchFailure", true));
        var file = DescriptorProtos.FileDescriptorProto.newBuilder().setName("validation.proto")
                .setPackage("envoy.RouterCheckToolSchema").setSyntax("proto3")
                .addDependency("google/protobuf/wrappers.proto")
                .addDependency("envoy/config/route/v3/route_components.proto")
                .addMessageType(message("ValidationResult")
                        .addField(field("test_results", 1, pkg + "ValidationItemResult", true)))
                .addMessageType(message("ValidationItemResult")
                        .addField(field("test_name", 1, null, false).setType(Type.TYPE_STRING))
                        .addField(field("test_passed", 2, null, false).setType(Type.TYPE_BOOL))
                        .addField(field("failure", 3, pkg + "ValidationFailure", false)))
                .addMessageType(failure)
                .addMessageType(message("HeaderMatchFailure")
                        .addField(field("header_matcher", 1, ".envoy.config.route.v3.HeaderMatcher", false))
                        .addField(field("actual_header_value", 2, string, false)))
                .build();
        return Descriptors.FileDescriptor.buildFrom(file, new Descriptors.FileDescriptor[] {
            StringValue.getDescriptor().getFile(),
            io.envoyproxy.envoy.config.route.v3.HeaderMatcher.getDescriptor().getFile()})
                .findMessageTypeByName("ValidationResult");
    }

    private static DescriptorProtos.DescriptorProto.Builder message(String name) {
        return DescriptorProtos.DescriptorProto.newBuilder().setName(name);
    }

    private static DescriptorProtos.FieldDescriptorProto.Builder field(String name, int number, String messageType,
                                                                       boolean repeated) {
        var f = DescriptorProtos.FieldDescriptorProto.newBuilder().setName(name).setNumber(number)
                .setLabel(repeated ? Label.LABEL_REPEATED : Label.LABEL_OPTIONAL);
        return messageType == null ? f : f.setType(Type.TYPE_MESSAGE).setTypeName(messageType);
    }

    private static final String OUTPUT_TESTS = """
            tests:
            - test_name: users passes
              input: {authority: api, path: /users/1, method: GET}
              validate: {cluster_name: users}
            - test_name: users fails
              input:
                authority: api
                path: /users/1
                method: GET
                additional_request_headers: [{key: x-user, value: b}, {key: x-user, value: c}]
              validate:
                cluster_name: orders
                virtual_host_name: api
                path_rewrite: /v1/users/1
                code_redirect: 301
                request_header_fields: [{key: x-missing, value: v}]
                request_header_matches: [{name: x-user, string_match: {exact: a}}]
            - test_name: a response header
              input: {authority: api, path: /old, method: GET}
              validate:
                path_redirect: "http://api/new"
                response_header_matches: [{name: x-absent, present_match: true}]
            """;

    @Test
    void outputPathWritesTheResultsAsEnvoysBinaryValidationResult() throws Exception {
        Path tests = Files.writeString(dir.resolve("tests.yaml"), OUTPUT_TESTS);
        Path output = dir.resolve("results.pb");
        Run r = run("-c", COVERAGE_ROUTES, "-t", tests.toString(), "-o", output.toString());
        assertEquals(1, r.exit(), r.out() + r.err());
        DynamicMessage result = DynamicMessage.parseFrom(validationResultType(), Files.readAllBytes(output));
        assertEquals("""
                test_results {
                  test_name: "users passes"
                  test_passed: true
                }
                test_results {
                  test_name: "users fails"
                  failure {
                    expected_cluster_name {
                      value: "orders"
                    }
                    actual_cluster_name {
                      value: "users"
                    }
                    expected_path_rewrite {
                      value: "/v1/users/1"
                    }
                    actual_path_rewrite {
                      value: "/v2/users/1"
                    }
                    expected_code_redirect {
                      value: 301
                    }
                    actual_code_redirect {
                    }
                    request_header_match_failures {
                      header_matcher {
                        name: "x-user"
                        string_match {
                          exact: "a"
                        }
                      }
                      actual_header_value {
                        value: "b"
                      }
                    }
                  }
                }
                test_results {
                  test_name: "a response header"
                  failure {
                    response_header_match_failures {
                      header_matcher {
                        name: "x-absent"
                        present_match: true
                      }
                      actual_header_value {
                      }
                    }
                  }
                }
                """, TextFormat.printer().printToString(result));
    }

    @Test
    void outputPathHoldsOnlyTheFailuresWithOnlyShowFailuresAndIsWrittenWhenAllPass() throws Exception {
        Path tests = Files.writeString(dir.resolve("tests.yaml"), OUTPUT_TESTS);
        Path output = dir.resolve("results.pb");
        Run r = run("-c", COVERAGE_ROUTES, "-t", tests.toString(), "--output-path", output.toString(),
                "--only-show-failures");
        assertEquals(1, r.exit(), r.out() + r.err());
        Descriptors.Descriptor type = validationResultType();
        DynamicMessage result = DynamicMessage.parseFrom(type, Files.readAllBytes(output));
        var results = type.findFieldByName("test_results");
        assertEquals(2, result.getRepeatedFieldCount(results));

        Run passing = run("-c", COVERAGE_ROUTES, "-t", COVERAGE_TESTS, "-o", output.toString());
        assertEquals(0, passing.exit(), passing.out() + passing.err());
        result = DynamicMessage.parseFrom(type, Files.readAllBytes(output));
        assertEquals(6, result.getRepeatedFieldCount(results));

        Run unwritable = run("-c", COVERAGE_ROUTES, "-t", COVERAGE_TESTS, "-o", dir.toString());
        assertEquals(1, unwritable.exit(), unwritable.out() + unwritable.err());
        assertTrue(unwritable.err().contains(dir + ": cannot write"), unwritable.err());
    }
}
