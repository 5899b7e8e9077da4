package dev.inmesh.benchmarks;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.listener.Lua;
import dev.inmesh.runtime.router.LuaFilter;
import io.vertx.core.MultiMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * What Envoy's Lua filter costs a request in Inmesh: the request script of the common Istio EnvoyFilter (a header
 * read, one added) and a response script adding a header, run over a request and a response with a dozen headers
 * each, as one request's filter stream runs them. The scripts are compiled once per config and loaded once per
 * thread, as on an event loop.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class LuaFilterBenchmark {
    private static final String SCRIPT = """
            function envoy_on_request(request_handle)
              local id = request_handle:headers():get("x-request-id")
              request_handle:headers():add("x-lua-seen", id or "none")
            end
            function envoy_on_response(response_handle)
              response_handle:headers():add("x-lua-response", "1")
            end
            """;
    private static final LuaFilter.Info INFO = new LuaFilter.Info("HTTP/1.1", "10.0.0.2:9080", "10.0.0.1:40000",
            "10.0.0.1:40000", "", "default");

    private List<LuaFilter> filters;
    private MultiMap request;
    private MultiMap response;

    @Setup
    public void setUp() {
        HttpConnectionManager hcm = HttpConnectionManager.of("in", "r", List.of(
                HttpFilter.of("envoy.filters.http.lua", "").withLua(new Lua(SCRIPT, Map.of(), true)),
                HttpFilter.of("envoy.filters.http.router", "")));
        filters = LuaFilter.compile(hcm);
        request = headers();
        response = headers();
    }

    private static MultiMap headers() {
        MultiMap h = MultiMap.caseInsensitiveMultiMap();
        for (int i = 0; i < 10; i++) {
            h.add("x-header-" + i, "value-" + i);
        }
        return h.add("x-request-id", "5f1c3c6e-0d2a-4a8e-9c1b-2e7f0a9d4b11").add("content-type", "application/json");
    }

    /** One request's run: its request script, then its response script. */
    @Benchmark
    public Object requestAndResponse() {
        MultiMap req = MultiMap.caseInsensitiveMultiMap().addAll(request);
        MultiMap resp = MultiMap.caseInsensitiveMultiMap().addAll(response);
        LuaFilter.Stream s = new LuaFilter.Stream(filters);
        LuaFilter.Reply reply = s.request(new LuaFilter.Head() {
            @Override
            public MultiMap headers() {
                return req;
            }

            @Override
            public String pseudo(String name) {
                return name.equals(":path") ? "/reviews/1" : null;
            }

            @Override
            public boolean setPseudo(String name, String value) {
                return false;
            }
        }, INFO, null);
        s.response(LuaFilter.responseHead(resp, () -> 200), INFO);
        return reply != null ? reply : resp;
    }

    /** The same copies of the headers without a script: what {@link #requestAndResponse} costs besides Lua. */
    @Benchmark
    public Object headersOnly() {
        MultiMap req = MultiMap.caseInsensitiveMultiMap().addAll(request);
        return MultiMap.caseInsensitiveMultiMap().addAll(response).add("x", req.get("x-request-id"));
    }
}
