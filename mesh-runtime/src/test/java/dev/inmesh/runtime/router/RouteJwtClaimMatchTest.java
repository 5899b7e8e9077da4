package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.get;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.github.tomakehurst.wiremock.WireMockServer;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A route's {@code dynamic_metadata} conditions, in the shape istiod writes for a VirtualService match on
 * {@code @request.auth.claims.<claim>} ({@code headers}, or {@code withoutHeaders} inverted): the JWT authentication
 * filter's metadata under {@code payload}, the claim a string or a list holding the string. They read the metadata as
 * it is when the route is chosen, which on a sidecar (Envoy's and Inmesh's) is none: a claim route never matches there
 * and an inverted one always does.
 */
class RouteJwtClaimMatchTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    /** istiod's value matcher for a claim that equals {@code admin}: a string, or a list with it. */
    private static final String ADMIN = """
            {or_match: {value_matchers: [{string_match: {exact: admin}}, \
            {list_match: {one_of: {string_match: {exact: admin}}}}]}}""";

    private static String table(boolean invert) {
        return """
                name: "9080"
                virtual_hosts:
                - name: reviews:9080
                  domains: ["*"]
                  routes:
                  - name: claims
                    match:
                      prefix: /
                      dynamic_metadata:
                      - filter: envoy.filters.http.jwt_authn
                        path: [{key: payload}, {key: group}]
                        value: %s
                        invert: %s
                    route: {cluster: admins}
                  - name: default
                    match: {prefix: /}
                    route: {cluster: users}
                """.formatted(ADMIN, invert);
    }

    private static RouteRequest withMetadata(Map<String, Object> jwtMetadata) {
        return Routes.req("reviews", "/").withJwtMetadata(jwtMetadata);
    }

    @Test
    void onASidecarAClaimRouteNeverMatchesEvenWithATokenAndTheNextRouteTakesTheRequest() {
        WireMockServer admins = rig.wiremock();
        admins.stubFor(any(anyUrl()).willReturn(ok("admins")));
        WireMockServer users = rig.wiremock();
        users.stubFor(any(anyUrl()).willReturn(ok("users")));
        var clusters = rig.clusters(cluster("admins", admins.port()), cluster("users", users.port()));
        var r = rig.call(rig.router(), get("/", "authorization", "Bearer eyJhbGciOiJub25lIn0.eyJncm91cCI6ImFkbWluIn0."),
                RouterRig.table(table(false)), clusters);
        assertEquals(200, r.status());
        assertEquals("users", r.body());
        assertEquals(0, admins.getAllServeEvents().size());
    }

    @Test
    void onASidecarAnInvertedClaimRouteAlwaysMatches() {
        WireMockServer admins = rig.wiremock();
        admins.stubFor(any(anyUrl()).willReturn(ok("admins")));
        var clusters = rig.clusters(cluster("admins", admins.port()), cluster("users", RouterRig.closedPort()));
        var r = rig.call(rig.router(), get("/"), RouterRig.table(table(true)), clusters);
        assertEquals(200, r.status());
        assertEquals("admins", r.body());
    }

    @Test
    void theConditionsReadTheJwtFiltersMetadataAtTheClaimsPathAsAStringOrAListHoldingIt() {
        RouteTable t = RouterRig.table(table(false));
        assertEquals("admins", Routes.cluster(t, withMetadata(Map.of("payload", Map.of("group", "admin")))));
        assertEquals("admins", Routes.cluster(t, withMetadata(Map.of("payload",
                Map.of("group", List.of("dev", "admin"))))));
        assertEquals("users", Routes.cluster(t, withMetadata(Map.of("payload", Map.of("group", "dev")))));
        assertEquals("users", Routes.cluster(t, withMetadata(Map.of("payload", Map.of("sub", "admin")))));
        assertEquals("users", Routes.cluster(t, withMetadata(Map.of())));
        RouteTable inverted = RouterRig.table(table(true));
        assertEquals("users", Routes.cluster(inverted, withMetadata(Map.of("payload", Map.of("group", "admin")))));
        assertEquals("admins", Routes.cluster(inverted, withMetadata(Map.of("payload", Map.of("group", "dev")))));
    }
}
