package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.route.RetryPolicy;
import io.vertx.core.MultiMap;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RetryStateTest {
    private static RetryState state(String... on) {
        return new RetryState(RetryPolicy.on(3, on), -1, null, null, new SplittableRandom(1));
    }

    private static MultiMap headers(String... pairs) {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i + 1 < pairs.length; i += 2) {
            h.add(pairs[i], pairs[i + 1]);
        }
        return h;
    }

    private static RetryState rateLimited(java.util.random.RandomGenerator random, long maxSeconds,
                                          RetryPolicy.ResetHeader... headers) {
        RetryPolicy p = new RetryPolicy(Set.of("5xx"), 3, null, null, Set.of(), List.of(), List.of(), null, null,
                List.of(), 1, 0, new RetryPolicy.RateLimitedBackOff(List.of(headers),
                java.time.Duration.ofSeconds(maxSeconds)), java.util.Map.of());
        return new RetryState(p, -1, null, null, random);
    }

    /** Envoy's reset header parser: seconds or a Unix time, the first usable header within max_interval wins. */
    @Test
    void aResetHeaderSetsTheNextBackOffToItsIntervalJitteredUpToHalfOfIt() {
        var seconds = new RetryPolicy.ResetHeader("x-ratelimit-reset", false);
        var unix = new RetryPolicy.ResetHeader("x-reset-at", true);
        RetryState s = rateLimited(new SplittableRandom(7), 300, unix, seconds);
        s.readResetHeaders(headers("x-ratelimit-reset", "4"), 1_000);
        assertTrue(s.rateLimitedBackOff());
        assertEquals(RetryState.Decision.RETRY, s.next(true));
        long b = s.backOffMillis();
        assertTrue(b >= 4000 && b < 6000, "" + b);
        assertFalse(s.rateLimitedBackOff(), "for that retry only");
        long e = s.backOffMillis();
        assertTrue(e >= 0 && e < 25, "the exponential back-off's first step: " + e);

        // a Unix time: the interval until then; one already past is passed over for the next header
        s.readResetHeaders(headers("x-reset-at", "1010", "x-ratelimit-reset", "2"), 1_000);
        long u = s.backOffMillis();
        assertTrue(u >= 10_000 && u < 15_000, "" + u);
        s.readResetHeaders(headers("x-reset-at", "999", "x-ratelimit-reset", "2"), 1_000);
        long v = s.backOffMillis();
        assertTrue(v >= 2_000 && v < 3_000, "" + v);
    }

    @Test
    void aResetHeaderPastMaxIntervalOrNotANumberIsPassedOverAndZeroSetsNoBackOff() {
        var a = new RetryPolicy.ResetHeader("a", false);
        var b = new RetryPolicy.ResetHeader("b", false);
        RetryState s = rateLimited(new SplittableRandom(7), 60, a, b);
        s.readResetHeaders(headers("a", "61", "b", "abc"), 0);
        assertFalse(s.rateLimitedBackOff(), "61 s is past max_interval and abc no number");
        s.readResetHeaders(headers("a", "-5", "b", "3x"), 0);
        assertFalse(s.rateLimitedBackOff(), "a sign other than + or a trailing letter is no uint64");
        s.readResetHeaders(headers("a", "0", "b", "3"), 0);
        assertFalse(s.rateLimitedBackOff(), "the first header within max_interval decides, 0 ms is no back-off");
        s.readResetHeaders(headers("A", "60"), 0);
        assertTrue(s.rateLimitedBackOff(), "names are case-insensitive, max_interval itself is within");
        RetryState none = state("5xx");
        none.readResetHeaders(headers("retry-after", "3"), 0);
        assertFalse(none.rateLimitedBackOff(), "without rate_limited_retry_back_off");
    }

    @Test
    void aResetHeaderIsReadAsAbslSimpleAtoiReadsAUint64() {
        assertEquals(3, RetryState.unsigned("+3"), "a leading + is allowed");
        assertEquals(42, RetryState.unsigned(" \t42\r\n"), "ASCII white space around the digits is skipped");
        assertEquals(7, RetryState.unsigned("007"));
        assertEquals(7, RetryState.unsigned("0".repeat(30) + "7"), "leading zeros never overflow a uint64");
        assertEquals(Long.MAX_VALUE, RetryState.unsigned(Long.toString(Long.MAX_VALUE)));
        for (String bad : new String[] {"", " ", "+", "-0", "-5", "4 2", "0x10", "1.5", "++1", "+ 1", "1e3",
                "99999999999999999999"}) {
            assertEquals(-1, RetryState.unsigned(bad), "'" + bad + "'");
        }
        var a = new RetryPolicy.ResetHeader("a", false);
        RetryState s = rateLimited(new SplittableRandom(7), 60, a);
        s.readResetHeaders(headers("a", " +2 "), 0);
        assertTrue(s.rateLimitedBackOff());
        long v = s.backOffMillis();
        assertTrue(v >= 2_000 && v < 3_000, "" + v);
    }

    @Test
    void fiveXxCoversEvery5xxAndEveryFailureWithoutAResponse() {
        RetryState s = state("5xx");
        for (int code : new int[] {500, 501, 502, 503, 504, 599}) {
            assertTrue(s.retriableResponse(code, headers()), "" + code);
        }
        assertFalse(s.retriableResponse(409, headers()));
        for (RetryState.Failure f : RetryState.Failure.values()) {
            assertTrue(s.retriableFailure(f), f.name());
        }
    }

    @Test
    void gatewayErrorCovers502To504AndEveryFailureWithoutAResponse() {
        RetryState s = state("gateway-error");
        assertFalse(s.retriableResponse(500, headers()));
        assertTrue(s.retriableResponse(502, headers()));
        assertTrue(s.retriableResponse(503, headers()));
        assertTrue(s.retriableResponse(504, headers()));
        for (RetryState.Failure f : RetryState.Failure.values()) {
            assertTrue(s.retriableFailure(f), f.name());
        }
    }

    @Test
    void connectFailureAndRefusedStreamCoverOnlyTheirOwnFailure() {
        RetryState cf = state("connect-failure");
        assertTrue(cf.retriableFailure(RetryState.Failure.CONNECT_FAILURE));
        assertFalse(cf.retriableFailure(RetryState.Failure.RESET));
        assertFalse(cf.retriableFailure(RetryState.Failure.REFUSED_STREAM));
        assertFalse(cf.retriableFailure(RetryState.Failure.PER_TRY_TIMEOUT));
        assertFalse(cf.retriableResponse(503, headers()));
        RetryState rs = state("refused-stream");
        assertTrue(rs.retriableFailure(RetryState.Failure.REFUSED_STREAM));
        assertFalse(rs.retriableFailure(RetryState.Failure.RESET));
        assertFalse(rs.retriableFailure(RetryState.Failure.CONNECT_FAILURE));
    }

    @Test
    void resetBeforeRequestRetriesAConnectFailureUntilASentAttemptWasReset() {
        RetryState s = state("reset-before-request");
        assertTrue(s.retriableFailure(RetryState.Failure.CONNECT_FAILURE));
        assertFalse(s.retriableFailure(RetryState.Failure.RESET), "this one had been sent");
        assertFalse(s.retriableResponse(503, headers()));
        assertTrue(s.retriableFailure(RetryState.Failure.CONNECT_FAILURE), "an answer changes nothing");
        s.resetAfterSent();
        assertFalse(s.retriableFailure(RetryState.Failure.CONNECT_FAILURE));
        RetryState.NONE.resetAfterSent(); // shared: keeps nothing
    }

    @Test
    void aRateLimitedResponseIsRetriedOnlyUnderEnvoyRatelimited() {
        MultiMap limited = headers("x-envoy-ratelimited", "true");
        assertFalse(state("5xx").retriableResponse(503, limited));
        assertFalse(state("gateway-error").retriableResponse(503, limited));
        assertFalse(state("5xx", "retriable-4xx").retriableResponse(409, limited));
        assertTrue(state("envoy-ratelimited").retriableResponse(429, limited));
        assertTrue(state("5xx", "envoy-ratelimited").retriableResponse(503, limited));
        assertFalse(state("envoy-ratelimited").retriableResponse(429, headers()));
    }

    @Test
    void anOverloadedResponseIsRetriedAsAny5xx() {
        assertTrue(state("5xx").retriableResponse(503, headers("x-envoy-overloaded", "true")));
        assertTrue(state("gateway-error").retriableResponse(503, headers("x-envoy-overloaded", "true")));
    }

    @Test
    void eachGrpcConditionRetriesItsCode() {
        String[] conditions = {"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"};
        String[] codes = {"1", "4", "13", "8", "14"};
        for (int i = 0; i < conditions.length; i++) {
            RetryState s = state(conditions[i]);
            for (int j = 0; j < codes.length; j++) {
                assertEquals(i == j, s.retriableResponse(200, headers("grpc-status", codes[j])),
                        conditions[i] + " on grpc-status " + codes[j]);
            }
        }
        // the status read as Envoy's getGrpcStatus reads it (absl's SimpleAtoi)
        for (String unavailable : new String[] {"014", "+14", " 14 "}) {
            assertTrue(state("unavailable").retriableResponse(200, headers("grpc-status", unavailable)), unavailable);
        }
        assertFalse(state("unavailable").retriableResponse(200, headers("grpc-status", "1 4")));
    }

    @Test
    void retriesRunOutAfterNumRetries() {
        RetryState s = state("5xx");
        assertEquals(RetryState.Decision.RETRY, s.next(true));
        assertEquals(RetryState.Decision.NO_RETRY, s.next(false));
        assertEquals(RetryState.Decision.RETRY, s.next(true));
        assertEquals(RetryState.Decision.RETRY, s.next(true));
        assertEquals(RetryState.Decision.LIMIT_EXCEEDED, s.next(true));
    }

    @Test
    void backOffStaysBelowItsJitteredExponentialCeiling() {
        RetryPolicy p = new RetryPolicy(Set.of("5xx"), 8, null, null, Set.of(), List.of(), List.of(), null, null,
                List.of(), 1);
        for (int seed = 0; seed < 200; seed++) {
            RetryState s = new RetryState(p, -1, null, null, new SplittableRandom(seed));
            long[] ceilings = {25, 50, 100, 200, 250, 250, 250, 250};
            for (long ceiling : ceilings) {
                assertEquals(RetryState.Decision.RETRY, s.next(true));
                long b = s.backOffMillis();
                assertTrue(b >= 0 && b < ceiling, b + " within [0, " + ceiling + ")");
            }
        }
    }

    @Test
    void aCallersRetryOnAddsToTheRoutesConditions() {
        RetryState s = new RetryState(RetryPolicy.on(1, "connect-failure"), -1, Set.of("retriable-4xx"), null,
                new SplittableRandom(1));
        assertTrue(s.retriableResponse(409, headers()));
        assertTrue(s.retriableFailure(RetryState.Failure.CONNECT_FAILURE));
    }

    @Test
    void withoutAPolicyACallersRetryOnAllowsOneRetry() {
        RetryState s = new RetryState(null, -1, Set.of("5xx"), null, new SplittableRandom(1));
        assertTrue(s.enabledFor(RouterRig.get("/")));
        assertEquals(RetryState.Decision.RETRY, s.next(true));
        assertEquals(RetryState.Decision.LIMIT_EXCEEDED, s.next(true));
        assertFalse(new RetryState(null, -1, null, null, new SplittableRandom(1)).enabledFor(RouterRig.get("/")));
    }

    @Test
    void aTablesRetryPoliciesHaveTheirHeaderConditionsCompiledOnceAtBuild() {
        RouteTable table = RouterRig.routeToC("retry_policy: {retry_on: retriable-headers, num_retries: 1, "
                + "retriable_headers: [{name: x-try-again, string_match: {exact: \"yes\"}}], "
                + "retriable_request_headers: [{name: x-idempotent, present_match: true}]}");
        RetryPolicy policy = ((dev.inmesh.api.config.route.RouteAction) table.config().virtualHosts().get(0).routes()
                .get(0).action()).retryPolicy();
        RetryState.Conditions c = table.retryConditions(policy);
        assertSame(c, table.retryConditions(policy));
        assertEquals(1, c.responseHeaders().size());
        assertEquals(1, c.requestHeaders().size());
        assertSame(RetryState.Conditions.NONE, table.retryConditions(null));
    }
}
