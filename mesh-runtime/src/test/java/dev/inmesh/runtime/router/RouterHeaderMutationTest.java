package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.listener.HeaderMutation;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutation;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutations;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.QueryParameterMutation;
import dev.inmesh.runtime.upstream.ClusterManager;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's header mutation filter in the router (the in-JVM client's and the standalone proxy's path): its own
 * mutations, then every level's {@code HeaderMutationPerRoute}, on the request the upstream gets and on the response
 * the caller gets (a local reply's too), one after the other.
 */
class RouterHeaderMutationTest {
    private final RouterRig rig = new RouterRig();
    private final WireMockServer wm = rig.wiremock();
    private final ClusterManager clusters = rig.clusters(cluster("c", wm.port()));

    RouterHeaderMutationTest() {
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withHeader("x-upstream", "secret")
                .withBody("c")));
    }

    @AfterEach
    void closeRig() {
        rig.close();
    }

    private static Mutation append(String name, String value, HeaderValueOption.AppendAction action) {
        return new Mutation(null, new HeaderValueOption(name, value, action, false));
    }

    /**
     * The filter's own: on the request, x-own added, then added again only if absent (it is not: one value), and
     * x-secret taken off; on the response x-upstream taken off and x-own-response added.
     */
    private static RouterRequest mutated(RouterRequest req, boolean mostSpecificWins) {
        HeaderMutation config = new HeaderMutation(new Mutations(List.of(
                append("x-own", "1", HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD),
                append("x-own", "2", HeaderValueOption.AppendAction.ADD_IF_ABSENT),
                new Mutation("x-secret", null)), List.of(new Mutation("x-upstream", null),
                append("x-own-response", "yes", HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD))),
                mostSpecificWins);
        return withFilter(req, config);
    }

    /** {@code req} under a connection manager whose header mutation filter, named hm, has {@code config}. */
    static RouterRequest withFilter(RouterRequest req, HeaderMutation config) {
        HttpConnectionManager hcm = HttpConnectionManager.of("outbound_0.0.0.0_9080", "9080", List.of(
                HttpFilter.of("hm", "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation")
                        .withHeaderMutation(config),
                HttpFilter.of("envoy.filters.http.router", "")));
        return req.bufferAndHeaderMutation(hcm, HeaderMutationFilter.compile(hcm));
    }

    /** A per-route config that sets x-level (request and response) to {@code level}. */
    private static String level(String level, String indent) {
        return perRoute(indent, "request_mutations: [{append: {header: {key: x-level, value: LEVEL}, "
                + "append_action: OVERWRITE_IF_EXISTS_OR_ADD}}]", "response_mutations: [{append: {header: {key: "
                + "x-level, value: LEVEL}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}}]").replace("LEVEL", level);
    }

    /** A {@code typed_per_filter_config} for hm, indented by {@code indent}, whose mutations are {@code fields}. */
    static String perRoute(String indent, String... fields) {
        StringBuilder out = new StringBuilder(indent + "typed_per_filter_config:\n"
                + indent + "  hm:\n"
                + indent + "    \"@type\": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3"
                + ".HeaderMutationPerRoute\n"
                + indent + "    mutations:\n");
        for (String f : fields) {
            out.append(indent).append("      ").append(f).append('\n');
        }
        return out.toString();
    }

    /** /a has a config at each level; /b at its virtual host and route configuration only; /c has no route. */
    private static RouteTable table() {
        return table(level("route-configuration", ""), level("virtual-host", "  "), level("route", "    "));
    }

    /** Routes to c for /a, whose route has {@code route}, and /b, under the given route configuration's and host's. */
    private static RouteTable table(String routeConfiguration, String virtualHost, String route) {
        return RouterRig.table("name: r\n" + routeConfiguration + """
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                """ + virtualHost + """
                  routes:
                  - match: {prefix: /a}
                    route: {cluster: c}
                """ + route + """
                  - match: {prefix: /b}
                    route: {cluster: c}
                """);
    }

    @Test
    void theFiltersOwnMutationsApplyOneAfterAnotherToTheRequestAndTheResponse() {
        var r = rig.call(rig.router(), mutated(RouterRig.get("/b", "x-secret", "s"), false), table(), clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/b")).withHeader("x-own", equalTo("1")).withoutHeader("x-secret"));
        assertEquals(List.of("1"), wm.getAllServeEvents().get(0).getRequest().getHeaders().getHeader("x-own")
                .values());
        assertNull(r.header("x-upstream"));
        assertEquals("yes", r.header("x-own-response"));
    }

    @Test
    void everyLevelAppliesAndTheLeastSpecificWinsByDefault() {
        var r = rig.call(rig.router(), mutated(RouterRig.get("/a"), false), table(), clusters);
        wm.verify(getRequestedFor(urlEqualTo("/a")).withHeader("x-level", equalTo("route-configuration")));
        assertEquals("route-configuration", r.header("x-level"));
    }

    @Test
    void theMostSpecificWinsWhenTheFilterSaysSo() {
        var a = rig.call(rig.router(), mutated(RouterRig.get("/a"), true), table(), clusters);
        wm.verify(getRequestedFor(urlEqualTo("/a")).withHeader("x-level", equalTo("route")));
        assertEquals("route", a.header("x-level"));
        var b = rig.call(rig.router(), mutated(RouterRig.get("/b"), true), table(), clusters);
        wm.verify(getRequestedFor(urlEqualTo("/b")).withHeader("x-level", equalTo("virtual-host")));
        assertEquals("virtual-host", b.header("x-level"));
    }

    @Test
    void aLocalReplyGetsTheResponseMutations() {
        var r = rig.call(rig.router(), mutated(RouterRig.get("/c"), false), table(), clusters);
        assertEquals(404, r.status());
        assertEquals("yes", r.header("x-own-response"));
        assertEquals("route-configuration", r.header("x-level"));
    }

    /**
     * Envoy's router reads the control headers after the filters before it: one a filter sets counts for an
     * untrusted caller (whose own went at the connection manager), and does not go upstream.
     */
    @Test
    void aControlHeaderTheFilterSetsIsReadByTheRouter() {
        wm.stubFor(any(urlEqualTo("/slow")).willReturn(aResponse().withStatus(200).withFixedDelay(5_000)));
        HeaderMutation config = new HeaderMutation(new Mutations(List.of(append("x-envoy-upstream-rq-timeout-ms", "300",
                HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD)), List.of()), false);
        // the caller's own asks for 10 ms: untrusted, it goes before the filter runs
        var r = rig.call(rig.router(), withFilter(RouterRig.get("/slow", "x-envoy-upstream-rq-timeout-ms", "10"),
                config), RouterRig.routeToC(""), clusters);
        assertEquals(504, r.status());
        assertEquals("UT", r.flags());
        assertTrue(r.elapsedMillis() >= 300 && r.elapsedMillis() < 4_000, r.elapsedMillis() + " ms");
        wm.verify(getRequestedFor(urlEqualTo("/slow")).withoutHeader("x-envoy-upstream-rq-timeout-ms"));
    }

    /**
     * As Envoy's AppendMutation: a value is a substitution format string, formatted when its mutation applies, so
     * that it reads the request's headers as the mutations before it left them; a per-route config's too (refused by
     * path before), and a response mutation's reads the response.
     */
    @Test
    void appendedValuesAreFormattedFromTheRequestAsTheMutationsBeforeLeftIt() {
        HeaderMutation config = new HeaderMutation(new Mutations(List.of(
                append("x-copy", "v", HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD),
                new Mutation(null, new HeaderValueOption("x-seen", "%REQ(x-copy)% via %REQ(:method)%",
                        HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD, false, true))),
                List.of(new Mutation(null, new HeaderValueOption("x-answer", "%RESPONSE_CODE% %RESP(x-upstream)%",
                        HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD, false, true)))), false);
        RouteTable table = table("", "", perRoute("    ", "request_mutations: [{append: {header: {key: x-route, "
                + "value: \"%REQ(:path)%\"}}}]"));
        var r = rig.call(rig.router(), withFilter(RouterRig.get("/a?q=1"), config), table, clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/a?q=1")).withHeader("x-seen", equalTo("v via GET"))
                .withHeader("x-route", equalTo("/a?q=1")));
        assertEquals("200 secret", r.header("x-answer"));
    }

    /**
     * A query parameter mutation's value is formatted as Envoy's {@code Mutations} formats it (its
     * {@code FormatterImpl}), from the request's headers as the level's header mutations left them, whatever its
     * action: the filter's own (x-copy set by the mutation before), and a route's, compiled with its table.
     */
    @Test
    void queryParameterValuesAreFormattedFromTheRequestAsTheHeaderMutationsLeftIt() {
        HeaderMutation config = new HeaderMutation(new Mutations(List.of(
                append("x-copy", "v", HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS_OR_ADD)), List.of(),
                List.of(QueryParameterMutation.append("u", "%REQ(x-copy)%-1",
                        HeaderValueOption.AppendAction.ADD_IF_ABSENT, true))), false);
        RouteTable table = table("", "", perRoute("    ", "query_parameter_mutations: [{append: {record: {key: q, "
                + "value: \"%REQ(:method)%\"}, action: OVERWRITE_IF_EXISTS}}]"));
        var r = rig.call(rig.router(), withFilter(RouterRig.get("/a?q=1"), config), table, clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/a?q=GET&u=v-1")));
    }
}
