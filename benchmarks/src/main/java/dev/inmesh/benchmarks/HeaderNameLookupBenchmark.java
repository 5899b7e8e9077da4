package dev.inmesh.benchmarks;

import io.netty.util.AsciiString;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpHeaders;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * The router's reading of Envoy's control headers on each request ({@code x-envoy-retry-on},
 * {@code x-envoy-max-retries}, {@code x-envoy-upstream-rq-timeout-ms}, ...: nine names, none of them present, as
 * for most requests) from a request's Vert.x header map, by String names and by cached {@link AsciiString} names:
 * the map hashes a String name on every lookup, where an AsciiString keeps its hash.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class HeaderNameLookupBenchmark {
    private static final String[] NAMES = {"x-envoy-retry-on", "x-envoy-retry-grpc-on",
            "x-envoy-retriable-header-names", "x-envoy-retriable-status-codes", "x-envoy-hedge-on-per-try-timeout",
            "x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-max-retries",
            "x-envoy-upstream-stream-duration-ms"};
    private static final AsciiString[] CACHED = new AsciiString[NAMES.length];

    static {
        for (int i = 0; i < NAMES.length; i++) {
            CACHED[i] = AsciiString.cached(NAMES[i]);
        }
    }

    private MultiMap headers;

    @Setup
    public void setUp() {
        // a request from the mesh's WebClient as the router holds it
        headers = HttpHeaders.headers().add("user-agent", "Vert.x-WebClient/5.0.7").add("accept", "*/*")
                .add("x-request-id", "b2b5a5b1-7f0e-4f5c-a0d4-1d6a0f7a5f11").add("x-envoy-attempt-count", "1")
                .add("x-envoy-peer-metadata-id", "sidecar~10.244.0.194~productpage-v1.default~default.svc")
                .add("x-forwarded-proto", "http");
    }

    /** The nine lookups by String names. */
    @Benchmark
    public int stringNames() {
        return found(NAMES);
    }

    /** The nine lookups by cached AsciiString names. */
    @Benchmark
    public int asciiStringNames() {
        return found(CACHED);
    }

    private int found(CharSequence[] names) {
        int found = 0;
        for (CharSequence name : names) {
            if (headers.get(name) != null) {
                found++;
            }
        }
        return found;
    }
}
