package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.router.IstioExtAuthz;
import dev.inmesh.runtime.router.IstioRbac;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.vertx.core.Vertx;
import io.vertx.core.http.RequestOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The mesh client's outbound requests meet an ext_authz filter with {@code with_request_body} (Istio's
 * {@code includeRequestBodyInCheck}) as a sidecar's do: the router holds the body the caller streams until
 * {@code max_request_bytes} came, the authorizer gets those, and the upstream the whole body.
 */
@Timeout(60)
class MeshClientExtAuthzTest {
    @TempDir
    Path dir;
    final Vertx vertx = Vertx.vertx();
    Mesh mesh;
    io.grpc.Server grpc;

    @AfterEach
    void stop() throws Exception {
        if (mesh != null) {
            mesh.close().await(10, TimeUnit.SECONDS);
        }
        if (grpc != null) {
            grpc.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
        }
        vertx.close().await(10, TimeUnit.SECONDS);
    }

    final List<String> upstream = new CopyOnWriteArrayList<>();
    final List<CheckRequest> asked = new CopyOnWriteArrayList<>();

    /**
     * Starts the mesh with the reviews upstream and an allowing gRPC authorizer, its outbound connection manager's
     * filters first Istio's shadow RBAC filter and an ext_authz filter holding up to 8 bytes of the body;
     * {@code routeField} (YAML at the level of the route's fields, or empty) is added to its one route.
     */
    RequestOptions start(String routeField) throws Exception {
        int reviews = vertx.createHttpServer().requestHandler(req -> req.body().onSuccess(b -> {
            upstream.add(b.toString());
            req.response().end("reviews");
        })).listen(0, "127.0.0.1").await().actualPort();
        grpc = IstioExtAuthz.grpcAuthorizer(r -> {
            asked.add(r);
            return CheckResponse.newBuilder().setStatus(com.google.rpc.Status.newBuilder().setCode(0)).build();
        });
        String route = "                  timeout: 0s\n";
        String config = IstioRbac.first(IstioExtAuthz.SHADOW + IstioExtAuthz.withBody(IstioExtAuthz.grpc("5s",
                false), 8, true, false), MeshWebClientTest.config("", reviews).replace(route, route + routeField))
                + IstioExtAuthz.cluster(grpc.getPort(), true);
        Path file = Files.writeString(dir.resolve("mesh.yaml"), config);
        mesh = Mesh.create(vertx, new MeshOptions().setAdminPort(0).setWorkloadName("productpage-v1")
                .setApp("productpage").setNamespace("default").setConfigFile(file.toString()));
        mesh.start().await(10, TimeUnit.SECONDS);
        return new RequestOptions().setHost("reviews").setPort(9080);
    }

    @Test
    void theMeshClientsStreamedBodyIsHeldForTheCheckAndGoesUpstreamWhole() throws Exception {
        RequestOptions to = start("");

        assertEquals("200 reviews", IstioExtAuthz.post(vertx, mesh.httpClient(),
                new RequestOptions(to).setURI("/secure/a"), asked::size, "0123456789", "abc"));
        var cut = asked.get(0).getAttributes().getRequest().getHttp();
        assertEquals("01234567", cut.getBody());
        assertEquals("true", cut.getHeadersMap().get("x-envoy-auth-partial-body"));
        assertEquals("200 reviews", IstioExtAuthz.post(vertx, mesh.httpClient(),
                new RequestOptions(to).setURI("/secure/b"), asked::size, "whole"));
        assertEquals("whole", asked.get(1).getAttributes().getRequest().getHttp().getBody());
        assertEquals(List.of("0123456789abc", "whole"), upstream, "nothing of the body is lost");
    }

    /** The route's ExtAuthzPerRoute for the ext_authz filter, its fields (YAML, indented) to format in. */
    private static final String PER_ROUTE = "                typed_per_filter_config:\n"
            + "                  envoy.filters.http.ext_authz:\n"
            + "                    \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3"
            + ".ExtAuthzPerRoute\n%s";

    /**
     * An ExtAuthzPerRoute on the outbound route, as Envoy's filter reads it: its check settings' context extensions
     * reach the authorizer, and {@code disable_request_body_buffering} has the check made on the headers, the body
     * going upstream as it streams; {@code disabled} lets the route's requests go unchecked.
     */
    @Test
    void theOutboundRoutesExtAuthzPerRouteSendsItsContextExtensionsAndHoldsNoBody() throws Exception {
        RequestOptions to = start(PER_ROUTE.formatted("""
                check_settings:
                  context_extensions: {caller: productpage}
                  disable_request_body_buffering: true
                """.indent(20)));
        assertEquals("200 reviews", IstioExtAuthz.post(vertx, mesh.httpClient(),
                new RequestOptions(to).setURI("/secure/a"), asked::size, "0123456789", "abc"));
        var attributes = asked.get(0).getAttributes();
        assertEquals(java.util.Map.of("caller", "productpage"), attributes.getContextExtensionsMap());
        assertEquals("", attributes.getRequest().getHttp().getBody(), "checked on its headers");
        assertEquals(List.of("0123456789abc"), upstream);
    }

    @Test
    void aDisabledOutboundRouteIsNotChecked() throws Exception {
        RequestOptions to = start(PER_ROUTE.formatted("disabled: true\n".indent(20)));
        assertEquals("200 reviews", IstioExtAuthz.post(vertx, mesh.httpClient(),
                new RequestOptions(to).setURI("/secure/a"), asked::size, "whole"));
        assertEquals(List.of(), asked);
        assertEquals(List.of("whole"), upstream);
    }
}
