package dev.inmesh.api;

import dev.inmesh.api.spi.MeshProvider;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.ext.web.client.WebClient;
import io.vertx.ext.web.client.WebClientOptions;

/**
 * A service mesh inside this JVM: Istio's outbound and inbound behaviour for the service that creates it, with no
 * sidecar and no extra hop.
 *
 * <pre>{@code
 * Mesh mesh = Mesh.create(vertx, new MeshOptions().setWorkloadName("productpage-v1").setApp("productpage")
 *     .setVersion("v1").setConfigFile("mesh/"));
 * mesh.start().onSuccess(v -> {
 *   WebClient client = mesh.webClient();              // requests go through routes, clusters, retries
 *   vertx.createHttpServer().requestHandler(mesh.inbound(router)).listen(9080);
 * });
 * }</pre>
 *
 * <p>Outbound, a request to {@code http://reviews:9080/...} goes through the listener for its port, the route table,
 * a host of the chosen cluster, and the router's timeouts and retries. Inbound, {@link #inbound} records Istio's
 * metrics with {@code reporter="destination"} and applies the inbound route. Create it with
 * {@link #create(Vertx, MeshOptions)}, or {@link #create(Vertx)} to read its settings from configuration.
 */
public interface Mesh {

    /** A mesh with the given settings (not started). */
    static Mesh create(Vertx vertx, MeshOptions options) {
        return MeshProvider.load().create(vertx, options);
    }

    /**
     * A mesh whose settings come from configuration: system properties, environment variables and
     * {@code application.properties}, under the prefix {@code inmesh.}.
     */
    static Mesh create(Vertx vertx) {
        MeshProvider p = MeshProvider.load();
        return p.create(vertx, p.optionsFromConfiguration());
    }

    /** Loads the configuration and starts the admin server; completes when the first configuration is applied. */
    Future<Void> start();

    /** Stops everything the mesh started (clients, admin server, config watches). */
    Future<Void> close();

    /** Whether a first complete configuration has been applied (what {@code /healthz/ready} reports). */
    boolean isReady();

    /** A Vert.x {@link WebClient} whose requests go through the mesh. */
    WebClient webClient();

    /** A Vert.x {@link WebClient} with options, whose requests go through the mesh. */
    WebClient webClient(WebClientOptions options);

    /** A Vert.x {@link HttpClient} whose requests go through the mesh. */
    HttpClient httpClient();

    /** A Vert.x {@link HttpClient} with options, whose requests go through the mesh. */
    HttpClient httpClient(HttpClientOptions options);

    /**
     * Wraps a server's request handler with the mesh's inbound side: request id, the inbound route for the
     * server's port, metrics with {@code reporter="destination"}, the access log.
     */
    Handler<HttpServerRequest> inbound(Handler<HttpServerRequest> handler);

    /** The admin server's actual port, or -1 when it is off or not started. */
    int adminPort();
}
