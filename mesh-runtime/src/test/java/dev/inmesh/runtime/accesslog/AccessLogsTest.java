package dev.inmesh.runtime.accesslog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.api.config.listener.AccessLogConfig;
import dev.inmesh.api.config.route.HeaderMatcher;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.StreamInfos;
import dev.inmesh.runtime.stats.TcpStreamInfo;
import io.vertx.core.MultiMap;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/** Envoy's command operators, JSON format and access log filters (CEL included), compiled from configuration. */
class AccessLogsTest {
    /** Istio's default text format, as istiod writes it into a connection manager's access log. */
    static final String ISTIO_TEXT = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
            + "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
            + "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
            + "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
            + "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER_RAW% "
            + "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% "
            + "%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

    private static AccessLogEntry entry(StreamInfo s, MultiMap req, MultiMap resp) {
        return AccessLogEntry.of(s, new RequestLog(AccessLogs.NONE, req, resp, null, null, "http", false));
    }

    private static String format(String f, AccessLogEntry e) {
        return CommandFormat.compile(f, false).format(e);
    }

    @Test
    void istiosDefaultFormatFromConfigurationWritesWhatInmeshsOwnIstioFormatWrites() {
        StreamInfo ok = StreamInfos.outboundOk();
        MultiMap req = MultiMap.caseInsensitiveMultiMap().add("User-Agent", "Java-http-client/17")
                .add("x-request-id", "b2b5a5b1-7f0e-4f5c-a0d4-1d6a0f7a5f11");
        MultiMap resp = MultiMap.caseInsensitiveMultiMap().add("x-envoy-upstream-service-time", "9");
        assertEquals(AccessLog.text(ok, null) + "\n", format(ISTIO_TEXT, entry(ok, req, resp)));
        StreamInfo uh = StreamInfos.inboundNoHealthyUpstream();
        assertEquals(AccessLog.text(uh, null) + "\n", format(ISTIO_TEXT, entry(uh, MultiMap.caseInsensitiveMultiMap(),
                MultiMap.caseInsensitiveMultiMap())));
        TcpStreamInfo tcp = new TcpStreamInfo(Instant.parse("2026-11-28T13:07:16.000Z"),
                Set.of(ResponseFlag.NO_HEALTHY_UPSTREAM), 0, 0, 0, null, "BlackHoleCluster", null,
                "93.184.216.34:443", "10.244.0.194:40500", "example.com", null, "rbac_access_denied_matched_policy[none]");
        assertEquals(AccessLog.create(AccessLog.Format.TEXT, l -> { }).format(tcp) + "\n",
                format(ISTIO_TEXT, AccessLogEntry.of(tcp)));
    }

    @Test
    void anHttpStreamsIdIsItsRequestIdAsEnvoysStreamIdProviderAndATcpConnectionHasNone() {
        MultiMap req = MultiMap.caseInsensitiveMultiMap().add("x-request-id", "b2b5a5b1-7f0e-4f5c-a0d4-1d6a0f7a5f11");
        assertEquals("b2b5a5b1-7f0e-4f5c-a0d4-1d6a0f7a5f11",
                format("%STREAM_ID%", entry(StreamInfos.outboundOk(), req, null)));
        assertEquals("-", format("%STREAM_ID%", entry(StreamInfos.outboundOk(), MultiMap.caseInsensitiveMultiMap(),
                null)), "no request id: unknown");
        TcpStreamInfo tcp = new TcpStreamInfo(Instant.parse("2026-11-28T13:07:16.000Z"), Set.of(), 0, 0, 0, null,
                "BlackHoleCluster", null, "93.184.216.34:443", "10.244.0.194:40500", null, null, null);
        assertEquals("-", format("%STREAM_ID%", AccessLogEntry.of(tcp)));
    }

    @Test
    void aCertificatesSerialIsWrittenInWholeBytesAsEnvoysBnToHex() {
        assertEquals("0abc", TlsDetails.hex(java.math.BigInteger.valueOf(0xabc)));
        assertEquals("1abc", TlsDetails.hex(java.math.BigInteger.valueOf(0x1abc)));
        assertEquals("0", TlsDetails.hex(java.math.BigInteger.ZERO));
    }

    @Test
    void aTcpConnectionsLineHasTheIdentitiesOfItsTlsOnBothSides() {
        TcpStreamInfo tcp = new TcpStreamInfo(Instant.parse("2026-11-28T13:07:16.000Z"), Set.of(), 4, 8, 3,
                "10.0.0.9:27017", "outbound|27017||mongo", "10.0.0.1:50000", "10.0.0.1:27017", "10.0.0.2:40500", null,
                null, null, 1, null, null, null, "spiffe://td/ns/a/sa/client", "spiffe://td/ns/a/sa/proxy",
                "spiffe://td/ns/db/sa/mongo", "spiffe://td/ns/a/sa/proxy");
        assertEquals("spiffe://td/ns/a/sa/client spiffe://td/ns/a/sa/proxy spiffe://td/ns/db/sa/mongo "
                + "spiffe://td/ns/a/sa/proxy", format("%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_LOCAL_URI_SAN% "
                + "%UPSTREAM_PEER_URI_SAN% %UPSTREAM_LOCAL_URI_SAN%", AccessLogEntry.of(tcp)));
    }

    @Test
    void headerOperatorsTakeTheAlternativeAndTheLengthAndPercentIsEscapedByPercent() {
        MultiMap req = MultiMap.caseInsensitiveMultiMap().add("X-Long", "abcdefgh").add("x-envoy-original-path", "/o");
        MultiMap resp = MultiMap.caseInsensitiveMultiMap().add("content-type", "text/plain");
        AccessLogEntry e = entry(StreamInfos.outboundOk(), req, resp);
        assertEquals("abc|/o|/reviews/0|text/plain|200|-|100%|-", format(
                "%REQ(x-long):3%|%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%|%REQ(:PATH)%|%RESP(CONTENT-TYPE)%|%RESP(:STATUS)%"
                        + "|%TRAILER(GRPC-STATUS)%|100%%|%REQ(X-MISSING?X-ALSO-MISSING)%", e));
    }

    @Test
    void operatorsForAddressesFlagsAndTimesFollowEnvoy() {
        StreamInfo s = StreamInfos.inboundNoHealthyUpstream();
        AccessLogEntry e = entry(s, null, null);
        assertEquals("10.244.0.194 51234 10.244.0.192 9080 NoHealthyUpstream UH",
                format("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_REMOTE_PORT% "
                        + "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT% %DOWNSTREAM_LOCAL_PORT% %RESPONSE_FLAGS_LONG% "
                        + "%RESPONSE_FLAGS%", e));
        assertEquals("2026/11/28T13:07:14.001+0000 1795871234 001000",
                format("%START_TIME(%Y/%m/%dT%H:%M:%S.%3f%z)% %START_TIME(%s)% %START_TIME(%6f)%", e));
        assertEquals("13:07:14 2026-11-28 11/28/26 Nov November Sat Saturday 332",
                format("%START_TIME(%T %F %D %b %B %a %A %j)%", e), "as C's strftime");
        assertEquals("", CommandFormat.compile("%UPSTREAM_HOST%", true).format(e), "omit_empty_values");
    }

    @Test
    void startTimeWritesTheDirectivesAbslFormatTimeAndStrftimeKnowAndEnvoysFractions() {
        AccessLogEntry e = entry(StreamInfos.inboundNoHealthyUpstream(), null, null); // 2026-11-28T13:07:14.001Z
        assertEquals("01 PM 6 6 20 26 2026 48 47 47 13:07 13:07:14 13  1", format("%START_TIME(%I %p %u %w %C %g %G "
                + "%V %U %W %R %T %k %l)%", e), "as glibc's strftime");
        assertEquals("01:07:14 PM|Sat Nov 28 13:07:14 2026|11/28/26 13:07:14", format("%START_TIME(%r|%c|%x %X)%",
                e));
        assertEquals("+00:00 +00:00:00 2026 14.001 14.001000 001 00100 001 001", format("%START_TIME(%Ez %E*z %E4Y "
                + "%E*S %E6S %E3f %E5f %E*f %*f)%", e));
        StreamInfo s = StreamInfos.inboundNoHealthyUpstream();
        StreamInfo whole = new StreamInfo(s.direction(), Instant.parse("2027-01-01T03:00:00Z"), s.method(), s.path(),
                s.protocol(), 503, Set.of(), "x", 0, 0, 1, -1, null, null, null, null, null, null, null, null, null,
                null, null, 1, null, null, null, null, null);
        assertEquals("00 00.000 0 0 03 AM 53 00 00 2026 5", format("%START_TIME(%E*S %E3S %E*f %*f %I %p %V %U %W "
                + "%G %u)%", entry(whole, null, null)), "no fraction: %E*S without a dot, %*f one digit");
    }

    @Test
    void commandsAreReadAsEnvoysCommandPatternAndSyntaxCheckReadThem() {
        StreamInfo s = StreamInfos.inboundNoHealthyUpstream();
        StreamInfo spaced = new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(), 503,
                Set.of(), "upstream reset: connection failure", 0, 0, 1, -1, null, null, null, null, null, null, null,
                null, null, null, null, 1, null, null, null, null, null);
        AccessLogEntry e = entry(spaced, null, null);
        assertEquals("upstream reset: connection failure|upstream_reset:_connection_failure", format(
                "%RESPONSE_CODE_DETAILS(ALLOW_WHITESPACES)%|%RESPONSE_CODE_DETAILS%", e));
        // the parameter ends at the first ')' that the command's end follows
        assertEquals("2026)(11 14", format("%START_TIME(%Y)(%m)% %START_TIME(%S)%", e));
        assertEquals("[x)y]", format("[%START_TIME(x)y)%]", e));
        String[][] refused = {
            {"%RESPONSE_CODE:3%", "RESPONSE_CODE does not take any parameters or length"},
            {"%PROTOCOL(x)%", "PROTOCOL does not take any parameters or length"},
            {"%FILTER_STATE()%", "FILTER_STATE requires parameters"},
            {"%DYNAMIC_METADATA()%", "DYNAMIC_METADATA requires parameters"},
            {"%START_TIME(%Y):4%", "START_TIME does not allow length to be specified."},
            {"%START_TIME(%Y\n)%", "position 0"},
            {"%REQ(X-A\n)%", "position 0"},
            // Envoy takes a time format here; Inmesh fills the operator only without one (not a syntax error)
            {"%DOWNSTREAM_PEER_CERT_V_START(%Y)%", "is not a command operator of Envoy's"},
        };
        for (String[] r : refused) {
            IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                    () -> CommandFormat.compile(r[0], false), r[0]);
            assertTrue(ex.getMessage().contains(r[1]), ex.getMessage());
        }
    }

    @Test
    void grpcStatusOperatorsSpellTheStatusAsEnvoyCancelledInSnakeCase() {
        StreamInfo s = new StreamInfo(StreamInfo.Direction.OUTBOUND, Instant.parse("2026-11-28T13:07:13.409Z"),
                "POST", "/reviews.Reviews/Get", "HTTP/2", 200, Set.of(), "via_upstream", 5, 0, 2, 1, null,
                "reviews:9080", null, null, null, null, null, null, null, null, null, 1, null, null, null, null, "1");
        assertEquals("Canceled CANCELLED 1 1", format("%GRPC_STATUS% %GRPC_STATUS(SNAKE_STRING)% "
                + "%GRPC_STATUS(NUMBER)% %GRPC_STATUS_NUMBER%", entry(s, null, null)));
    }

    @Test
    void operatorsEnvoyDoesNotKnowAndMalformedCommandsAreRefusedByName() {
        for (String bad : List.of("%FOO%", "%DYNAMIC_METADATA2(x)%", "%REQ%", "100%", "%REQ(a?b?c)%",
                "%START_TIME", "%GRPC_STATUS(WEIRD)%", "%PROTOCOL(x)%")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> CommandFormat.compile(bad, false), bad);
            assertTrue(e.getMessage().contains(bad.startsWith("%") && bad.endsWith("%") ? bad.substring(0,
                    Math.min(bad.length(), 4)) : "position"), e.getMessage());
        }
    }

    @Test
    void operatorsEnvoyKnowsAndInmeshDoesNotFillAreWrittenAsUnknownAndReqWithoutQueryCutsTheQuery() {
        MultiMap req = MultiMap.caseInsensitiveMultiMap().add("x-path", "/a/b?c=d");
        AccessLogEntry e = entry(StreamInfos.outboundOk(), req, null);
        assertEquals("- - - - 200", format("%DYNAMIC_METADATA(istio.mixer:status)% %FILTER_STATE(x:PLAIN):10% "
                + "%REQUEST_DURATION% %DOWNSTREAM_TLS_VERSION% %RESPONSE_CODE%", e));
        assertEquals("/reviews/0 /a/b /a", format("%REQ_WITHOUT_QUERY(:PATH)% %REQ_WITHOUT_QUERY(X-PATH)% "
                + "%REQ_WITHOUT_QUERY(X-PATH):2%", e));
        assertEquals("", CommandFormat.compile("%UPSTREAM_TLS_VERSION%", true).format(e), "omit_empty_values");
    }

    @Test
    void envoysFullHeaderNamesQueryParamAndUniqueIdAreFilled() {
        MultiMap req = MultiMap.caseInsensitiveMultiMap().add("x-path", "/a/b?c=d");
        AccessLogEntry e = AccessLogEntry.of(StreamInfos.outboundOk(), new RequestLog(AccessLogs.NONE, req, null, null,
                "/search?q=hello%20world&q=second&empty=&flag", "http", false));
        assertEquals(format("%REQ(X-PATH)% %REQ(USER-AGENT?X-PATH):4%", e),
                format("%REQUEST_HEADER(X-PATH)% %REQUEST_HEADER(USER-AGENT?X-PATH):4%", e));
        assertEquals(format("%RESP(:STATUS)% %TRAILER(GRPC-STATUS)%", e),
                format("%RESPONSE_HEADER(:STATUS)% %RESPONSE_TRAILER(GRPC-STATUS)%", e));
        // the first value, decoded; a parameter with no value is empty, one not there unknown
        assertEquals("[hello world] [hello] [] [] -", format("[%QUERY_PARAM(q)%] [%QUERY_PARAM(q):5%] "
                + "[%QUERY_PARAM(empty)%] [%QUERY_PARAM(flag)%] %QUERY_PARAM(none)%", e));
        String first = format("%UNIQUE_ID%", e);
        assertTrue(first.matches("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"), first);
        assertTrue(!first.equals(format("%UNIQUE_ID%", e)), "a new one each time, as Envoy's");
    }

    @Test
    void aJsonFormatKeepsTheTypeOfALoneCommandSortsItsKeysAndWritesNullsUnlessOmitted() throws Exception {
        java.util.Map<String, Object> format = new java.util.LinkedHashMap<>();
        format.put("line", "%REQ(:METHOD)% %RESPONSE_CODE%");
        format.put("code", "%RESPONSE_CODE%");
        format.put("sni", "%REQUESTED_SERVER_NAME%");
        format.put("nested", java.util.Map.of("n", 1.0, "b", true, "route", "%ROUTE_NAME%"));
        AccessLogEntry e = entry(StreamInfos.outboundOk(), null, null);
        java.nio.file.Path kept = java.nio.file.Files.createTempFile("json", ".log");
        java.nio.file.Path omitted = java.nio.file.Files.createTempFile("json-omit", ".log");
        AccessLogs.compile(List.of(new AccessLogConfig("f", kept.toString(), new AccessLogConfig.Json(format, false),
                null), new AccessLogConfig("f", omitted.toString(), new AccessLogConfig.Json(format, true), null)))
                .log(e);
        assertEquals("{\"code\":200,\"line\":\"GET 200\",\"nested\":{\"b\":true,\"n\":1,\"route\":\"default\"},"
                + "\"sni\":null}", firstLine(kept));
        assertEquals("{\"code\":200,\"line\":\"GET 200\",\"nested\":{\"b\":true,\"n\":1,\"route\":\"default\"}}",
                firstLine(omitted));
        assertThrows(IllegalArgumentException.class, () -> AccessLogs.validate(new AccessLogConfig.Json(
                java.util.Map.of("x", "%NOPE%"), false)));
    }

    @Test
    void aJsonFormatTakesListsAndNullsAsEnvoysJsonFormatBuilder() throws Exception {
        // lists are written as arrays, their format strings substituted (an unknown value null), and a null as null;
        // omit_empty_values leaves out a key whose value is null, of the format or unknown
        java.util.Map<String, Object> format = new java.util.LinkedHashMap<>();
        format.put("l", java.util.Arrays.asList("%RESPONSE_CODE%", 1.0, "x %REQ(:METHOD)%", null, "%REQUESTED_SERVER_NAME%",
                java.util.List.of(true)));
        format.put("n", null);
        AccessLogEntry e = entry(StreamInfos.outboundOk(), null, null);
        java.nio.file.Path kept = java.nio.file.Files.createTempFile("json-list", ".log");
        java.nio.file.Path omitted = java.nio.file.Files.createTempFile("json-list-omit", ".log");
        AccessLogs.compile(List.of(new AccessLogConfig("f", kept.toString(), new AccessLogConfig.Json(format, false),
                null), new AccessLogConfig("f", omitted.toString(), new AccessLogConfig.Json(format, true), null)))
                .log(e);
        assertEquals("{\"l\":[200,1,\"x GET\",null,null,[true]],\"n\":null}", firstLine(kept));
        assertEquals("{\"l\":[200,1,\"x GET\",null,null,[true]]}", firstLine(omitted));
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class, () -> AccessLogs.validate(
                new AccessLogConfig.Json(java.util.Map.of("l", java.util.List.of("%NOPE%")), false)));
        assertTrue(bad.getMessage().contains("l[0]"), bad.getMessage());
    }

    @Test
    void theLogsOfAFilterChainsConnectionManagerWriteItsNameAsFilterChainName() throws Exception {
        AccessLogEntry e = entry(StreamInfos.outboundOk(), null, null);
        assertEquals("- default\n", format("%FILTER_CHAIN_NAME% %ROUTE_NAME%\n", e));
        assertEquals("0.0.0.0_9080\n", format("%FILTER_CHAIN_NAME%\n", e.withFilterChainName("0.0.0.0_9080")));
        java.nio.file.Path file = java.nio.file.Files.createTempFile("chain", ".log");
        AccessLogs.compile(List.of(new AccessLogConfig("f", file.toString(), new AccessLogConfig.Text(
                "%FILTER_CHAIN_NAME% %RESPONSE_CODE%\n", false), null)), "inbound|9080||").log(e);
        assertEquals("inbound|9080|| 200", firstLine(file));
    }

    @Test
    void aHeadersNonAsciiBytesAreWrittenAsTheyCameNotEncodedTwice() throws Exception {
        // Netty holds a header one char per byte: "café" sent as UTF-8 is held as c a f 0xC3 0xA9
        String wire = "caf\u00c3\u00a9";
        MultiMap req = MultiMap.caseInsensitiveMultiMap().add("x-foo", wire).add("x-bad", "\u00e9t\u00e9")
                .add("x-ascii", "plain");
        AccessLogEntry e = entry(StreamInfos.outboundOk(), req, null);
        assertEquals("caf\u00e9 \u00e9t\u00e9 plain", format("%REQ(X-FOO)% %REQ(X-BAD)% %REQ(X-ASCII)%", e),
                "valid UTF-8 decoded; bytes that are not UTF-8 left as they are");
        String ascii = req.get("x-ascii");
        assertTrue(CommandFormat.wireText(ascii) == ascii, "an ASCII value is not copied");
        java.nio.file.Path text = java.nio.file.Files.createTempFile("utf8", ".log");
        java.nio.file.Path json = java.nio.file.Files.createTempFile("utf8", ".json");
        AccessLogs.compile(List.of(new AccessLogConfig("t", text.toString(), new AccessLogConfig.Text(
                "%REQ(X-FOO)%\n", false), null), new AccessLogConfig("j", json.toString(), new AccessLogConfig.Json(
                java.util.Map.of("foo", "%REQ(X-FOO)%"), false), null))).log(e);
        firstLine(text);
        firstLine(json);
        byte[] cafe = {'c', 'a', 'f', (byte) 0xC3, (byte) 0xA9, '\n'};
        org.junit.jupiter.api.Assertions.assertArrayEquals(cafe, java.nio.file.Files.readAllBytes(text));
        assertEquals("{\"foo\":\"caf\u00e9\"}", firstLine(json), "written as UTF-8, unescaped, as Envoy's JSON");
        StreamInfo s = StreamInfos.outboundOk();
        StreamInfo odd = new StreamInfo(s.direction(), s.startTime(), s.method(), "/caf\u00c3\u00a9", s.protocol(),
                200, Set.of(), "via_upstream", 0, 295, 12, 9, s.requestId(), s.authority(), wire, null,
                s.upstreamHost(), s.upstreamCluster(), s.upstreamLocalAddress(), s.downstreamLocalAddress(),
                s.downstreamRemoteAddress(), null, "default", 1, null, null, null, null, null);
        assertTrue(AccessLog.text(odd, null).contains("GET /caf\u00e9 HTTP/1.1"), AccessLog.text(odd, null));
        assertTrue(AccessLog.json(odd, null).contains("\"user_agent\":\"caf\u00e9\""), AccessLog.json(odd, null));
    }

    @Test
    void aHeaderThatIsThereEmptyIsWrittenEmptyAndStopsTheAlternative() throws Exception {
        MultiMap req = MultiMap.caseInsensitiveMultiMap().add("x-empty", "").add("x-alt", "alt")
                .add("user-agent", "");
        AccessLogEntry e = entry(StreamInfos.outboundOk(), req, MultiMap.caseInsensitiveMultiMap().add("x-r", ""));
        assertEquals("REQE= ALT= RESP= MISSING=- OTHER=alt", format("REQE=%REQ(X-EMPTY)% ALT=%REQ(X-EMPTY?X-ALT)% "
                + "RESP=%RESP(X-R)% MISSING=%REQ(X-NONE)% OTHER=%REQ(X-NONE?X-ALT)%", e));
        java.nio.file.Path json = java.nio.file.Files.createTempFile("empty", ".json");
        AccessLogs.compile(List.of(new AccessLogConfig("j", json.toString(), new AccessLogConfig.Json(
                java.util.Map.of("reqe", "%REQ(X-EMPTY)%", "none", "%REQ(X-NONE)%"), true), null))).log(e);
        assertEquals("{\"reqe\":\"\"}", firstLine(json), "omit_empty_values leaves out only what is not there");
        StreamInfo s = StreamInfos.outboundOk();
        StreamInfo emptyAgent = new StreamInfo(s.direction(), s.startTime(), s.method(), s.path(), s.protocol(),
                200, Set.of(), "via_upstream", 0, 295, 12, 9, s.requestId(), s.authority(), "", null,
                s.upstreamHost(), s.upstreamCluster(), s.upstreamLocalAddress(), s.downstreamLocalAddress(),
                s.downstreamRemoteAddress(), null, "default", 1, null, null, null, null, null);
        assertTrue(AccessLog.text(emptyAgent, null).contains(" \"-\" \"\" \"b2b5"), AccessLog.text(emptyAgent, null));
        assertTrue(AccessLog.json(emptyAgent, null).contains("\"user_agent\":\"\""), AccessLog.json(emptyAgent, null));
    }

    @Test
    void reopenWritesTheNextLinesToANewFileAtThePathAfterARotationMovedTheOldOne() throws Exception {
        java.nio.file.Path file = java.nio.file.Files.createTempFile("reopen", ".log");
        java.nio.file.Path rotated = file.resolveSibling(file.getFileName() + ".1");
        AccessLogs logs = AccessLogs.compile(List.of(new AccessLogConfig("r", file.toString(),
                new AccessLogConfig.Text("%RESPONSE_CODE%\n", false), null)));
        try {
            logs.log(entry(StreamInfos.outboundOk(), null, null));
            assertEquals("200", firstLine(file));
            // as logrotate's create: the file moved away, an empty one in its place
            java.nio.file.Files.move(file, rotated);
            java.nio.file.Files.createFile(file);

            AccessLogs.reopen();
            logs.log(entry(StreamInfos.outboundOk(), null, null));

            assertEquals("200", firstLine(file), "a new file at the path, as after Envoy's /reopen_logs");
            assertEquals(List.of("200"), java.nio.file.Files.readAllLines(rotated), "the rotated file is left");
        } finally {
            java.nio.file.Files.deleteIfExists(rotated);
        }
    }

    private static String firstLine(java.nio.file.Path file) throws Exception {
        long deadline = System.currentTimeMillis() + 5000;
        while (System.currentTimeMillis() < deadline) {
            List<String> lines = java.nio.file.Files.readAllLines(file);
            if (!lines.isEmpty()) {
                return lines.get(0);
            }
            Thread.sleep(10);
        }
        throw new AssertionError("nothing written to " + file);
    }

    @Test
    void filtersOnStatusDurationFlagsHeadersAndGrpcStatusCombine() {
        AccessLogEntry ok = entry(StreamInfos.outboundOk(), MultiMap.caseInsensitiveMultiMap().add("x-debug", "on"),
                null);
        AccessLogEntry uh = entry(StreamInfos.inboundNoHealthyUpstream(), MultiMap.caseInsensitiveMultiMap(), null);
        Predicate<AccessLogEntry> errors = AccessLogs.filter(new AccessLogConfig.StatusCode(AccessLogConfig.Op.GE, 400));
        assertFalse(errors.test(ok));
        assertTrue(errors.test(uh));
        Predicate<AccessLogEntry> slow = AccessLogs.filter(new AccessLogConfig.RequestDuration(AccessLogConfig.Op.GE,
                10));
        assertTrue(slow.test(ok)); // 12 ms
        assertFalse(slow.test(uh)); // 3 ms
        assertTrue(AccessLogs.filter(new AccessLogConfig.ResponseFlags(Set.of())).test(uh));
        assertFalse(AccessLogs.filter(new AccessLogConfig.ResponseFlags(Set.of())).test(ok));
        assertFalse(AccessLogs.filter(new AccessLogConfig.ResponseFlags(Set.of("UF", "UO"))).test(uh));
        Predicate<AccessLogEntry> debug = AccessLogs.filter(new AccessLogConfig.Header(new HeaderMatcher("X-Debug",
                new HeaderMatcher.Value(new StringMatcher.Exact("on", false)), false, false)));
        assertTrue(debug.test(ok));
        assertFalse(debug.test(uh));
        assertTrue(AccessLogs.filter(new AccessLogConfig.Or(List.of(
                new AccessLogConfig.StatusCode(AccessLogConfig.Op.EQ, 503),
                new AccessLogConfig.RequestDuration(AccessLogConfig.Op.LE, 1)))).test(uh));
        assertFalse(AccessLogs.filter(new AccessLogConfig.And(List.of(
                new AccessLogConfig.StatusCode(AccessLogConfig.Op.EQ, 503),
                new AccessLogConfig.RequestDuration(AccessLogConfig.Op.LE, 1)))).test(uh));
        // without a grpc-status, Envoy maps the HTTP status: 503 is UNAVAILABLE (14), 200 UNKNOWN (2)
        assertTrue(AccessLogs.filter(new AccessLogConfig.GrpcStatus(Set.of(14), false)).test(uh));
        assertFalse(AccessLogs.filter(new AccessLogConfig.GrpcStatus(Set.of(2), true)).test(ok));
        assertTrue(AccessLogs.filter(new AccessLogConfig.GrpcStatus(Set.of(0), true)).test(ok));
        assertFalse(AccessLogs.filter(new AccessLogConfig.Sampled("k", 0, 100)).test(ok));
        assertTrue(AccessLogs.filter(new AccessLogConfig.Sampled("k", 100, 100)).test(ok));
    }

    /**
     * Envoy's traceable_filter takes a request its connection manager traces for the reason ServiceForced (a trusted
     * x-envoy-force-trace: the request id's 'a'), not one sampled ('9'), traced for its client ('b') or only by the
     * caller's B3 flag, nor one of a connection manager that does not trace.
     */
    @Test
    void theTraceableFilterTakesOnlyTheRequestsWhoseTraceWasForced() {
        dev.inmesh.runtime.tracing.Tracer tracer = dev.inmesh.runtime.tracing.Tracer.compile(
                new dev.inmesh.api.config.listener.Tracing(100, 100, 100, 256, List.of(), "envoy.tracers.zipkin",
                        new dev.inmesh.api.config.listener.Tracing.Zipkin("zipkin", "/api/v2/spans",
                                "zipkin.istio-system", true, false)), null, name -> null);
        Predicate<AccessLogEntry> traceable = AccessLogs.filter(new AccessLogConfig.Traceable());
        java.util.function.BiFunction<MultiMap, Boolean, AccessLogEntry> traced = (h, force) -> {
            var span = tracer.start(h, force, true, "reviews", Instant.EPOCH, 0, new java.util.Random(7), null);
            return AccessLogEntry.of(StreamInfos.outboundOk(), new RequestLog(AccessLogs.NONE, h, null, null, null,
                    "http", span.sampled(), null, null, -1, null, -1, -1, null, null, null, span));
        };
        String rid = "12345678-7f0e-4f5c-a0d4-1d6a0f7a5f11";
        assertTrue(traceable.test(traced.apply(MultiMap.caseInsensitiveMultiMap().add("x-request-id", rid), true)));
        assertFalse(traceable.test(traced.apply(MultiMap.caseInsensitiveMultiMap().add("x-request-id", rid), false)),
                "sampled at 100%: not forced");
        assertFalse(traceable.test(traced.apply(MultiMap.caseInsensitiveMultiMap().add("x-request-id", rid)
                .add("x-client-trace-id", "c1"), false)), "traced for its client");
        assertFalse(traceable.test(entry(StreamInfos.outboundOk(), MultiMap.caseInsensitiveMultiMap()
                .add("x-request-id", "12345678-7f0e-4f5c-a0d4-1d6a0f7a5f11".replace("-4f5c-", "-af5c-")), null)),
                "no span: a connection manager that does not trace");
    }

    @Test
    void aRuntimeFilterSamplesARequestByItsRequestIdAsEnvoySoEveryHopAgreesUnlessIndependent() {
        // Envoy: the id's first 8 hexadecimal digits modulo the denominator, against the numerator
        AccessLogEntry in = entry(StreamInfos.outboundOk(), MultiMap.caseInsensitiveMultiMap()
                .add("x-request-id", "00000031-7f0e-4f5c-a0d4-1d6a0f7a5f11"), null); // 49
        AccessLogEntry out = entry(StreamInfos.outboundOk(), MultiMap.caseInsensitiveMultiMap()
                .add("x-request-id", "00000096-7f0e-4f5c-a0d4-1d6a0f7a5f11"), null); // 150: 50 of 100
        Predicate<AccessLogEntry> half = AccessLogs.filter(new AccessLogConfig.Sampled("k", 50, 100));
        Predicate<AccessLogEntry> independent = AccessLogs.filter(new AccessLogConfig.Sampled("k", 50, 100, true));
        Set<Boolean> independentOutcomes = new java.util.HashSet<>();
        for (int i = 0; i < 200; i++) {
            assertTrue(half.test(in));
            assertFalse(half.test(out));
            independentOutcomes.add(independent.test(out));
        }
        assertEquals(Set.of(true, false), independentOutcomes, "use_independent_randomness ignores the id");
    }

    /**
     * A header sent on several lines: Envoy's header_filter (HeaderUtility::matchHeaders) and CEL's headers[...] read
     * all its values joined with ",", where %REQ(...)% and %RESP(...)% print only the first.
     */
    @Test
    void headerFilterAndCelReadARepeatedHeaderJoinedWhereReqPrintsItsFirstValue() {
        MultiMap req = MultiMap.caseInsensitiveMultiMap().add("x-m", "a").add("x-m", "b");
        MultiMap resp = MultiMap.caseInsensitiveMultiMap().add("x-r", "c").add("x-r", "d");
        MultiMap trailers = MultiMap.caseInsensitiveMultiMap().add("x-t", "e").add("x-t", "f");
        AccessLogEntry e = AccessLogEntry.of(StreamInfos.outboundOk(),
                new RequestLog(AccessLogs.NONE, req, resp, trailers, null, "http", false));
        java.util.function.Function<String, Predicate<AccessLogEntry>> exact = v -> AccessLogs.filter(
                new AccessLogConfig.Header(new HeaderMatcher("x-m",
                        new HeaderMatcher.Value(new StringMatcher.Exact(v, false)), false, false)));
        assertTrue(exact.apply("a,b").test(e));
        assertFalse(exact.apply("a").test(e));
        for (String yes : List.of("request.headers['x-m'] == 'a,b'", "response.headers['x-r'] == 'c,d'",
                "response.trailers['x-t'] == 'e,f'")) {
            assertTrue(AccessLogs.filter(new AccessLogConfig.Cel(yes)).test(e), yes);
        }
        assertFalse(AccessLogs.filter(new AccessLogConfig.Cel("request.headers['x-m'] == 'a'")).test(e));
        assertEquals("a c", format("%REQ(X-M)% %RESP(X-R)%", e));
    }

    /**
     * Envoy's grpc_status_filter reads a response's grpc-status (its trailers', then its headers') whatever the
     * request was (Grpc::Common::getGrpcStatus(trailers, headers, info)), where %GRPC_STATUS% prints "-" for a request
     * that was not gRPC.
     */
    @Test
    void grpcStatusFilterReadsTheResponsesGrpcStatusOfARequestThatWasNotGrpc() {
        Predicate<AccessLogEntry> notFound = AccessLogs.filter(new AccessLogConfig.GrpcStatus(Set.of(5), false));
        AccessLogEntry inHeaders = entry(StreamInfos.outboundOk(), MultiMap.caseInsensitiveMultiMap(),
                MultiMap.caseInsensitiveMultiMap().add("grpc-status", "5"));
        assertTrue(notFound.test(inHeaders));
        assertEquals("-", format("%GRPC_STATUS%", inHeaders));
        AccessLogEntry inTrailers = AccessLogEntry.of(StreamInfos.outboundOk(), new RequestLog(AccessLogs.NONE,
                MultiMap.caseInsensitiveMultiMap(), MultiMap.caseInsensitiveMultiMap().add("grpc-status", "0"),
                MultiMap.caseInsensitiveMultiMap().add("grpc-status", "5"), null, "http", false));
        assertTrue(notFound.test(inTrailers), "the trailers' status first");
        assertTrue(AccessLogs.filter(new AccessLogConfig.Cel("response.grpc_status == 5")).test(inTrailers));
        // one that is no status is Envoy's InvalidCode: not UNKNOWN, nor the HTTP status's
        AccessLogEntry invalid = entry(StreamInfos.outboundOk(), MultiMap.caseInsensitiveMultiMap(),
                MultiMap.caseInsensitiveMultiMap().add("grpc-status", "x"));
        assertFalse(AccessLogs.filter(new AccessLogConfig.GrpcStatus(Set.of(2), false)).test(invalid));
    }

    /** Each case: a CEL expression, whether it takes {@code ok}, whether it takes {@code uh}. */
    private static void assertCel(String[][] cases, AccessLogEntry ok, AccessLogEntry uh) {
        for (String[] c : cases) {
            Predicate<AccessLogEntry> p = AccessLogs.filter(new AccessLogConfig.Cel(c[0]));
            assertEquals(Boolean.parseBoolean(c[1]), p.test(ok), c[0] + " on ok");
            assertEquals(Boolean.parseBoolean(c[2]), p.test(uh), c[0] + " on uh");
        }
    }

    @Test
    void celFiltersEvaluateEnvoysAttributesAndAnErrorIsNoMatch() {
        AccessLogEntry ok = entry(StreamInfos.outboundOk(), MultiMap.caseInsensitiveMultiMap().add("x-debug", "on"),
                MultiMap.caseInsensitiveMultiMap().add("x-served-by", "reviews-a"));
        AccessLogEntry uh = entry(StreamInfos.inboundNoHealthyUpstream(), MultiMap.caseInsensitiveMultiMap(), null);
        String[][] cases = {
            // expression, on ok (200 GET /reviews/0, x-debug: on), on uh (503 UH POST /reviews/1)
            {"response.code >= 400", "false", "true"},
            {"response.code >= 400 || request.headers['x-debug'] == 'on'", "true", "true"},
            {"request.headers['x-debug'] == 'on'", "true", "false"}, // absent: an error, no match
            {"has(request.headers.x_debug) || has(request.headers['x-debug'])", "true", "false"},
            {"request.method in ['POST', 'PUT'] && request.url_path.startsWith('/reviews/')", "false", "true"},
            {"response.flags != 0u", "false", "true"},
            {"xds.cluster_name.endsWith('cluster.local') && upstream.port == 9080", "true", "false"},
            {"destination.port == 9080 && source.address.startsWith('10.244.')", "true", "true"},
            {"request.duration > duration('10ms') ? response.code == 200 : false", "true", "false"},
            {"response.headers['x-served-by'].matches('^rev.*-a$') && size(request.path) == 10", "true", "false"},
            {"!(response.code == 200) && int(string(response.code)) + 1 == 504", "false", "true"},
            {"response.code_details == 'no_healthy_upstream'", "false", "true"},
        };
        assertCel(cases, ok, uh);
        for (String bad : List.of("response.code >=", "reponse.code == 200", "response.code == 'a", "foo(1)",
                "request.path.lower()", "response.code == 200)")) {
            assertThrows(IllegalArgumentException.class, () -> AccessLogs.validate(new AccessLogConfig.Cel(bad)), bad);
        }
    }

    @Test
    void celFiltersIstioUsersWriteEvaluateAsEnvoysDurationsAddressesHeaderKeysAndGrpcStatus() {
        AccessLogEntry ok = entry(StreamInfos.outboundOk(), MultiMap.caseInsensitiveMultiMap().add("x-debug", "on"),
                null); // 200 in 12 ms, from 10.244.0.194:47020 to 10.96.12.7:9080
        AccessLogEntry uh = entry(StreamInfos.inboundNoHealthyUpstream(), MultiMap.caseInsensitiveMultiMap(), null);
        String[][] cases = {
            // request.duration is a CEL duration: compared with duration(), and with a number an error (no match)
            {"response.code >= 400 || request.duration > duration('10ms')", "true", "true"},
            {"request.duration >= duration('0.5s') || request.duration < duration('1m') - duration('59.995s')",
                "false", "true"},
            {"request.duration > 10", "false", "false"},
            // Envoy's source and destination addresses carry the port
            {"source.address == '10.244.0.194:51234' && destination.address == '10.244.0.192:9080'", "false",
                "true"},
            // a header map's key, as Envoy's maps take in
            {"'X-Debug' in request.headers", "true", "false"},
            {"!('x-debug' in request.headers) && response.code == 503", "false", "true"},
            // without a grpc-status, the one the HTTP status maps to, as Envoy's attribute reads it
            {"response.grpc_status == 14", "false", "true"},
            {"request.url_path.matches('^/reviews/[01]$')", "true", "true"},
            // a raw string keeps its backslashes; an escaped one is the backslash
            {"request.url_path.matches(r'^/reviews/\\d$') && request.url_path.matches('^/\\\\w+/\\\\d$')",
                "true", "true"},
            {"'a\\'b' == \"a'b\"", "true", "true"},
            // without TLS, the server name is empty, as Envoy's
            {"connection.requested_server_name == ''", "true", "true"},
        };
        assertCel(cases, ok, uh);
        for (String bad : List.of("request.duration > duration('2 s')", "request.path.matches('(')",
                "request.path.matches('^/v\\d+/')")) {
            assertThrows(IllegalArgumentException.class, () -> AccessLogs.validate(new AccessLogConfig.Cel(bad)), bad);
        }
    }

    @Test
    void hostnameIsTheKernelsHostNameWithoutTheJdksDnsLookup(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        // as Envoy's gethostname(): the kernel's name; the JDK's getLocalHost() also resolves it in DNS, which can
        // hold the thread (an event loop, at the first request) for as long as the resolver takes
        java.nio.file.Path kernel = java.nio.file.Files.writeString(dir.resolve("hostname"), "pod-7\n");
        java.util.concurrent.Callable<String> noLookup = () -> {
            throw new AssertionError("looked up in DNS");
        };
        assertEquals("pod-7", CommandFormat.hostname(null, kernel, noLookup));
        assertEquals("from-env", CommandFormat.hostname("from-env", kernel, noLookup), "$HOSTNAME first");
        assertEquals("looked-up", CommandFormat.hostname("", dir.resolve("absent"), () -> "looked-up"),
                "not Linux: the JDK's name");
        assertEquals(null, CommandFormat.hostname(null, dir.resolve("absent"), () -> {
            throw new java.net.UnknownHostException("vm");
        }), "no name at all");
        assertThrows(IllegalArgumentException.class, () -> CommandFormat.compile("%HOSTNAME(x)%", false));
    }
}
