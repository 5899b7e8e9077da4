package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.aResponse;
import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.equalTo;
import static com.github.tomakehurst.wiremock.client.WireMock.getRequestedFor;
import static com.github.tomakehurst.wiremock.client.WireMock.urlEqualTo;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.core.HeaderValueOption.AppendAction;
import dev.inmesh.api.config.listener.HeaderMutation;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutations;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.QueryParameterMutation;
import dev.inmesh.runtime.upstream.ClusterManager;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Envoy's header mutation filter's {@code query_parameter_mutations} in the router (the in-JVM client's and the
 * standalone proxy's path): the path the upstream gets, its query decoded, changed and written back by name as
 * Envoy's filter writes it; every level's, in the filter's order; the route the caller's own path chose.
 */
class RouterQueryParameterMutationTest {
    private final RouterRig rig = new RouterRig();
    private final WireMockServer wm = rig.wiremock();
    private final ClusterManager clusters = rig.clusters(cluster("c", wm.port()));

    RouterQueryParameterMutationTest() {
        wm.stubFor(any(anyUrl()).willReturn(aResponse().withStatus(200).withBody("c")));
    }

    @AfterEach
    void closeRig() {
        rig.close();
    }

    private static RouterRequest mutated(RouterRequest req, List<QueryParameterMutation> query,
                                         boolean mostSpecificWins) {
        return RouterHeaderMutationTest.withFilter(req, new HeaderMutation(new Mutations(List.of(), List.of(), query),
                mostSpecificWins));
    }

    /**
     * drop removed; add's value percent-encoded (as Envoy's urlEncodeQueryParameter); k overwritten; z kept by
     * ADD_IF_ABSENT, then a second value appended; absent not added by OVERWRITE_IF_EXISTS; keep's a%2Fb decoded.
     */
    @Test
    void theUpstreamGetsTheQueryAddedOverwrittenAndRemovedInNameOrder() {
        var r = rig.call(rig.router(), mutated(RouterRig.get("/b?z=1&drop=x&keep=a%2Fb&k=old"), List.of(
                QueryParameterMutation.remove("drop"),
                QueryParameterMutation.append("add", "v 1&", AppendAction.APPEND_IF_EXISTS_OR_ADD),
                QueryParameterMutation.append("k", "new", AppendAction.OVERWRITE_IF_EXISTS),
                QueryParameterMutation.append("z", "2", AppendAction.ADD_IF_ABSENT),
                QueryParameterMutation.append("z", "3", AppendAction.APPEND_IF_EXISTS_OR_ADD),
                QueryParameterMutation.append("absent", "1", AppendAction.OVERWRITE_IF_EXISTS)), false),
                RouterRig.routeToC(""), clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/b?add=v%201%26&k=new&keep=a/b&z=1&z=3")));
    }

    /**
     * Envoy's route rewrites the :path the filters left (RouteEntryImplBase::finalizePathHeader reads the headers'
     * path), so a prefix_rewrite or a regex_rewrite keeps the query the mutations made.
     */
    @Test
    void aRewrittenPathKeepsTheMutatedQuery() {
        var r = rig.call(rig.router(), mutated(RouterRig.get("/b/x?drop=1&k=v"),
                List.of(QueryParameterMutation.remove("drop")), false), RouterRig.routeToC("prefix_rewrite: /new/"),
                clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/new/b/x?k=v")));
        var regex = rig.call(rig.router(), mutated(RouterRig.get("/b/y?drop=1"),
                List.of(QueryParameterMutation.remove("drop")), false), RouterRig.routeToC(
                        "regex_rewrite: {pattern: {regex: \"^/b\"}, substitution: /r}"), clusters);
        assertEquals(200, regex.status());
        wm.verify(getRequestedFor(urlEqualTo("/r/y")));
    }

    @Test
    void noParameterLeftLeavesNoQuestionMark() {
        var r = rig.call(rig.router(), mutated(RouterRig.get("/b?drop=1"),
                List.of(QueryParameterMutation.remove("drop")), false), RouterRig.routeToC(""), clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/b")));
    }

    /** Envoy writes a decoded value back as it is: a space no request line can carry is answered 400. */
    @Test
    void aDecodedSpaceLeavesAPathThatIsAnswered400() {
        var r = rig.call(rig.router(), mutated(RouterRig.get("/b?q=a%20b"),
                List.of(QueryParameterMutation.remove("drop")), false), RouterRig.routeToC(""), clusters);
        assertEquals(400, r.status());
        assertTrue(wm.getAllServeEvents().isEmpty());
    }

    /**
     * A WebSocket upgrade relayed from its head on (the standalone proxy's, the in-JVM client's) gets the same answer:
     * its head is written to the upstream as it is, a decoded CR LF would end the request line there.
     */
    @Test
    void anUpgradeWhoseDecodedQueryNoRequestLineCanCarryIsAnswered400() {
        RouterRequest req = mutated(RouterRig.get("/ws?q=a%0D%0AX-Injected:%20y", "connection", "upgrade",
                "upgrade", "websocket"), List.of(QueryParameterMutation.remove("drop")), false);
        Router.Relay relay = rig.router().relay(req.websocketUpgrade(true), RouterRig.routeToC(""), clusters, () -> { })
                .result();
        assertNotNull(relay.refusal(), "not relayed: " + relay.path());
        assertEquals(400, relay.refusal().status());
        assertTrue(wm.getAllServeEvents().isEmpty());
    }

    /** A per-route config that sets the parameter lvl to {@code level}. */
    private static String level(String level, String indent) {
        return RouterHeaderMutationTest.perRoute(indent, "query_parameter_mutations: [{append: {record: {key: lvl, "
                + "value: " + level + "}, action: OVERWRITE_IF_EXISTS_OR_ADD}}]");
    }

    @Test
    void everyLevelAppliesInTheFiltersOrder() {
        RouteTable table = RouterRig.table("name: r\n" + level("rc", "") + """
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                  - match: {prefix: /a}
                    route: {cluster: c}
                """ + level("route", "    "));
        rig.call(rig.router(), mutated(RouterRig.get("/a"), List.of(), false), table, clusters);
        wm.verify(getRequestedFor(urlEqualTo("/a?lvl=rc")));
        rig.call(rig.router(), mutated(RouterRig.get("/a?x=1"), List.of(), true), table, clusters);
        wm.verify(getRequestedFor(urlEqualTo("/a?lvl=route&x=1")));
    }

    /**
     * Envoy's filter leaves the route cache alone: the route the caller's path chose (no go parameter) forwards
     * the path with go added.
     */
    @Test
    void theRouteIsTheOneTheCallersPathChose() {
        RouteTable table = RouterRig.table("""
                name: r
                virtual_hosts:
                - name: vh
                  domains: ["*"]
                  routes:
                  - match: {prefix: /m, query_parameters: [{name: go, present_match: true}]}
                    route: {cluster: c}
                    request_headers_to_add: [{header: {key: x-route, value: with-go}}]
                  - match: {prefix: /m}
                    route: {cluster: c}
                    request_headers_to_add: [{header: {key: x-route, value: without-go}}]
                """);
        var r = rig.call(rig.router(), mutated(RouterRig.get("/m"), List.of(
                QueryParameterMutation.append("go", "1", AppendAction.APPEND_IF_EXISTS_OR_ADD)), false), table,
                clusters);
        assertEquals(200, r.status());
        wm.verify(getRequestedFor(urlEqualTo("/m?go=1")).withHeader("x-route", equalTo("without-go")));
    }
}
