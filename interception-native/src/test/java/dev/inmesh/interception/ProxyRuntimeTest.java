package dev.inmesh.interception;

import static dev.inmesh.runtime.testing.LoopbackPorts.freePort;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import dev.inmesh.interception.proxy.StandaloneProxy;
import dev.inmesh.runtime.xds.EnvoyJson;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The standalone proxy routes by its bootstrap's {@code layered_runtime} as Envoy does: a route's
 * {@code runtime_fraction} takes its {@code runtime_key}'s value in a static layer over its default, the admin's
 * {@code /runtime} shows the layers and their values, and {@code /runtime_modify} sets the admin layer's, which the
 * next connection's requests take.
 */
class ProxyRuntimeTest {
    @TempDir
    Path dir;
    private StandaloneProxy proxy;

    @AfterEach
    void tearDown() throws Exception {
        if (proxy != null) {
            proxy.close();
        }
    }

    /** Envoy answers rf0: its route matching asks the runtime, whose static layer enables rk.zero fully. */
    private static final String CONFIG = """
            layered_runtime:
              layers:
              - name: static
                static_layer: {rk.zero: 100, rk.hundred: 0}
              - name: admin
                admin_layer: {}
            static_resources:
              listeners:
              - name: rf
                address: {socket_address: {address: 127.0.0.1, port_value: 0}}
                filter_chains:
                - filters:
                  - name: envoy.filters.network.http_connection_manager
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                      stat_prefix: rf
                      route_config:
                        name: r
                        virtual_hosts:
                        - name: all
                          domains: ["*"]
                          routes:
                          - name: rf0
                            match: {prefix: /rf, runtime_fraction: {default_value: {numerator: 0}, runtime_key: rk.zero}}
                            direct_response: {status: 200, body: {inline_string: rf0}}
                          - name: rf100
                            match: {prefix: /rf, runtime_fraction: {default_value: {numerator: 100}, runtime_key: rk.hundred}}
                            direct_response: {status: 200, body: {inline_string: rf100}}
                      http_filters:
                      - name: envoy.filters.http.router
                        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
            """;

    /** The body of {@code GET /rf} on a connection of its own (a client of its own). */
    private String rf() throws Exception {
        return ProxyDownstreamStatsTest.get(proxy.addresses().get(0).getPort(), "/rf").body();
    }

    private static HttpResponse<String> post(int port, String path) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void aRouteFractionsRuntimeKeyTakesTheStaticLayersValueAndTheAdminLayersOnceSet() throws Exception {
        int admin = freePort();
        Path config = Files.writeString(dir.resolve("envoy.yaml"), CONFIG);
        proxy = ProxyDownstreamStatsTest.start(config, admin);
        for (int i = 0; i < 5; i++) {
            assertEquals("rf0", rf());
        }

        JsonNode runtime = EnvoyJson.tree(ProxyDownstreamStatsTest.get(admin, "/runtime").body());
        assertEquals("[\"static\",\"admin\"]", runtime.get("layers").toString());
        assertEquals("{\"layer_values\":[\"100\",\"\"],\"final_value\":\"100\"}",
                runtime.get("entries").get("rk.zero").toString());
        assertEquals("0", runtime.get("entries").get("rk.hundred").get("final_value").asText());

        HttpResponse<String> modified = post(admin, "/runtime_modify?rk.zero=0&rk.hundred=100");
        assertEquals(200, modified.statusCode(), modified.body());
        for (int i = 0; i < 5; i++) {
            assertEquals("rf100", rf());
        }
        runtime = EnvoyJson.tree(ProxyDownstreamStatsTest.get(admin, "/runtime").body());
        assertEquals("{\"layer_values\":[\"100\",\"0\"],\"final_value\":\"0\"}",
                runtime.get("entries").get("rk.zero").toString());
    }
}
