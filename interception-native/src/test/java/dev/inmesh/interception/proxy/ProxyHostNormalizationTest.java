package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.http.RequestOptions;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The connection manager's {@code strip_matching_host_port} and {@code strip_trailing_host_dot} in the standalone
 * proxy, as an edge proxy's routes name domains without ports: the Host is normalized before routing and goes
 * upstream so, over HTTP/1.1 and HTTP/2.
 */
@Timeout(30)
class ProxyHostNormalizationTest {
    private Vertx vertx;
    private int upstream;
    private LoopbackProxy proxy;
    private int port;

    @BeforeEach
    void start() throws Exception {
        vertx = Vertx.vertx();
        upstream = vertx.createHttpServer().requestHandler(req -> req.response()
                .putHeader("x-seen-host", String.valueOf(req.authority())).end())
                .listen(0, "127.0.0.1").await(10, TimeUnit.SECONDS).actualPort();
        port = LoopbackProxy.freePort();
        proxy = new LoopbackProxy(LoopbackProxy.inboundConfig(port, upstream, "")
                .replace("domains: [\"*\"]", "domains: [example.com]")
                .replace("stat_prefix: inbound_0.0.0.0_8080\n", "stat_prefix: inbound_0.0.0.0_8080\n"
                        + "          strip_matching_host_port: true\n          strip_trailing_host_dot: true\n"));
    }

    @AfterEach
    void stop() throws Exception {
        proxy.close();
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    /** A GET to the proxy whose Host ({@code :authority} over HTTP/2) is {@code host:hostPort}. */
    private String[] get(HttpVersion version, String host, int hostPort) throws Exception {
        var client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(version)
                .setHttp2ClearTextUpgrade(false));
        try {
            return client.request(new RequestOptions().setMethod(HttpMethod.GET)
                            .setServer(io.vertx.core.net.SocketAddress.inetSocketAddress(port, "127.0.0.1"))
                            .setHost(host).setPort(hostPort).setURI("/x"))
                    .compose(req -> req.send().compose(resp -> resp.body().map(b -> new String[] {
                            Integer.toString(resp.statusCode()), resp.getHeader("x-seen-host")})))
                    .await(10, TimeUnit.SECONDS);
        } finally {
            client.close();
        }
    }

    @Test
    void theListenersPortAndATrailingDotAreTakenOffBeforeRouting() throws Exception {
        for (HttpVersion v : new HttpVersion[] {HttpVersion.HTTP_1_1, HttpVersion.HTTP_2}) {
            String[] plain = get(v, "example.com", port);
            assertEquals("200", plain[0], v.toString());
            assertEquals("example.com", plain[1], "the upstream's Host too");
            String[] dotted = get(v, "example.com.", port);
            assertEquals("200", dotted[0], v.toString());
            assertEquals("example.com", dotted[1]);
            // a port the connection did not arrive at stays, and no domain names it
            assertEquals("404", get(v, "example.com", 1)[0], v.toString());
        }
    }
}
