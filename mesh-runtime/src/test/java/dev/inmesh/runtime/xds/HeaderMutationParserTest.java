package dev.inmesh.runtime.xds;

import static dev.inmesh.runtime.xds.BufferParserTest.hcm;
import static dev.inmesh.runtime.xds.BufferParserTest.inbound;
import static dev.inmesh.runtime.xds.BufferParserTest.refusal;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.HeaderValueOption;
import dev.inmesh.api.config.listener.HeaderMutation;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.route.HeaderMutationPerRoute;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutation;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.Mutations;
import dev.inmesh.api.config.route.HeaderMutationPerRoute.QueryParameterMutation;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Envoy's header mutation filter: its {@code mutations} (request and response, {@code remove} or {@code append}) and
 * {@code most_specific_header_mutations_wins}, its {@code HeaderMutationPerRoute} at each level, the query parameter
 * mutations; an append's value and a query parameter's with a {@code %COMMAND%} kept as the format it is; an invalid
 * query parameter mutation, a header name or value with a line break, an operator Envoy does not know (a query
 * parameter's legacy {@code %PER_REQUEST_STATE(k)%} too) and a pseudo-header or host refused by field path.
 */
class HeaderMutationParserTest {
    private static final String FILTER = """
            {"name": "hm", "typedConfig": {
              "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation", %s}}""";

    @Test
    void mutationsAndMostSpecificHeaderMutationsWinsAreRead() throws Exception {
        HttpConnectionManager h = hcm(inbound(FILTER.formatted("""
                "mutations": {"requestMutations": [{"remove": "X-Secret"},
                  {"append": {"header": {"key": "x-a", "value": "1"}, "appendAction": "ADD_IF_ABSENT"}}],
                  "responseMutations": [{"append": {"header": {"key": "x-b", "value": "100%%"}}}]},
                "mostSpecificHeaderMutationsWins": true"""), "", "", ""));
        assertEquals(new HeaderMutation(new Mutations(List.of(new Mutation("x-secret", null),
                new Mutation(null, new HeaderValueOption("x-a", "1", HeaderValueOption.AppendAction.ADD_IF_ABSENT,
                        false))), List.of(new Mutation(null, new HeaderValueOption("x-b", "100%",
                HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD, false)))), true),
                h.httpFilters().get(0).headerMutation());
    }

    @Test
    void headerMutationPerRouteIsReadAtEachLevel() throws Exception {
        String perRoute = """
                "typedPerFilterConfig": {"hm": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute",
                  "mutations": {"responseMutations": [{"remove": "x-%s"}]}}},""";
        HttpConnectionManager h = hcm(inbound(FILTER.formatted("\"mutations\": {}"), perRoute.formatted("rc"),
                perRoute.formatted("vh"), perRoute.formatted("route")));
        var rc = h.routeConfig();
        assertEquals(perRoute("x-rc"), rc.filterConfigs().get("hm"));
        assertEquals(perRoute("x-vh"), rc.virtualHosts().get(0).filterConfigs().get("hm"));
        assertEquals(perRoute("x-route"), rc.virtualHosts().get(0).routes().get(0).filterConfigs().get("hm"));
    }

    private static HeaderMutationPerRoute perRoute(String removed) {
        return new HeaderMutationPerRoute(new Mutations(List.of(), List.of(new Mutation(removed, null))));
    }

    @Test
    void queryParameterMutationsAreReadAtTheFilterAndPerRoute() throws Exception {
        String perRoute = """
                "typedPerFilterConfig": {"hm": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute",
                  "mutations": {"queryParameterMutations": [{"remove": "r"}]}}},""";
        HttpConnectionManager h = hcm(inbound(FILTER.formatted("""
                "mutations": {"queryParameterMutations": [{"remove": "q"},
                  {"append": {"record": {"key": "k", "value": "v 100%%"}, "action": "OVERWRITE_IF_EXISTS"}},
                  {"append": {"record": {"key": "a", "value": ""}}}]}"""), "", "", perRoute));
        assertEquals(new Mutations(List.of(), List.of(), List.of(QueryParameterMutation.remove("q"),
                QueryParameterMutation.append("k", "v 100%", HeaderValueOption.AppendAction.OVERWRITE_IF_EXISTS),
                QueryParameterMutation.append("a", "", HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD))),
                h.httpFilters().get(0).headerMutation().mutations());
        assertEquals(new HeaderMutationPerRoute(new Mutations(List.of(), List.of(),
                List.of(QueryParameterMutation.remove("r")))),
                h.routeConfig().virtualHosts().get(0).routes().get(0).filterConfigs().get("hm"));
    }

    /** As Envoy's filter refuses them when it builds its config, and its proto validation. */
    @Test
    void anInvalidQueryParameterMutationIsRefusedByPath() {
        String field = "http_filters[0].typed_config.mutations.query_parameter_mutations[0]";
        for (String[] c : new String[][] {
                {"{}", ""},
                {"{\"remove\": \"q\", \"append\": {\"record\": {\"key\": \"k\", \"value\": \"v\"}}}", ""},
                {"{\"append\": {\"action\": \"ADD_IF_ABSENT\"}}", ".append.record"},
                {"{\"append\": {\"record\": {\"key\": \"k\", \"value\": 1}}}", ".append.record.value"},
                {"{\"append\": {\"record\": {\"key\": \"k\"}}}", ".append.record.value"},
                {"{\"append\": {\"record\": {\"key\": \"\", \"value\": \"v\"}}}", ".append.record.key"},
                {"{\"append\": {\"record\": {\"key\": \"k\", \"value\": \"%NOT_ENVOYS%\"}}}",
                        ".append.record.value"},
                {"{\"append\": {\"record\": {\"key\": \"k\", \"value\": \"%PER_REQUEST_STATE(s)%\"}}}",
                        ".append.record.value"},
                {"{\"append\": {\"record\": {\"key\": \"k\", \"value\": \"100%\"}}}",
                        ".append.record.value"},
                {"{\"append\": {\"entry\": {\"key\": \"k\"}, \"record\": {\"key\": \"k\", \"value\": \"v\"}}}",
                        ".append.entry"}}) {
            String m = refusal(inbound(FILTER.formatted("\"mutations\": {\"queryParameterMutations\": ["
                    + c[0] + "]}"), "", "", ""));
            assertTrue(m.contains(field + c[1] + ":"), c[0] + " -> " + m);
        }
    }

    /** As Envoy's {@code Mutations} compiles it: {@code FormatterImpl::create(value, true)}. */
    @Test
    void aQueryParametersCommandIsKeptAsTheFormatEnvoyFormats() throws Exception {
        HttpConnectionManager h = hcm(inbound(FILTER.formatted("""
                "mutations": {"queryParameterMutations": [
                  {"append": {"record": {"key": "u", "value": "%REQ(x-user)% 100%%"}, "action": "ADD_IF_ABSENT"}}]}"""),
                "", "", ""));
        assertEquals(List.of(QueryParameterMutation.append("u", "%REQ(x-user)% 100%%",
                HeaderValueOption.AppendAction.ADD_IF_ABSENT, true)),
                h.httpFilters().get(0).headerMutation().mutations().query());
    }

    @Test
    void aHeaderNameWithALineBreakIsRefusedByPath() {
        String remove = refusal(inbound(FILTER.formatted("""
                "mutations": {"requestMutations": [{"remove": "x\\r\\ny"}]}"""), "", "", ""));
        assertTrue(remove.contains("mutations.request_mutations[0].remove"), remove);
        String append = refusal(inbound(FILTER.formatted("""
                "mutations": {"responseMutations": [{"append": {"header": {"key": "x", "value": "a\\nb"}}}]}"""),
                "", "", ""));
        assertTrue(append.contains("mutations.response_mutations[0].append.header.value"), append);
    }

    @Test
    void anAppendsCommandIsKeptAsTheFormatEnvoyFormats() throws Exception {
        HttpConnectionManager h = hcm(inbound(FILTER.formatted("""
                "mutations": {"requestMutations": [{"append": {"header": {"key": "x", "value": "%REQ(y)% 100%%"}}}]}"""),
                "", "", ""));
        assertEquals(new Mutation(null, new HeaderValueOption("x", "%REQ(y)% 100%%",
                HeaderValueOption.AppendAction.APPEND_IF_EXISTS_OR_ADD, false, true)),
                h.httpFilters().get(0).headerMutation().mutations().request().get(0));
    }

    @Test
    void anUnknownOperatorPseudoHeaderHostOrEmptyMutationIsRefusedByPath() {
        String format = refusal(inbound(FILTER.formatted("""
                "mutations": {"requestMutations": [{"append": {"header": {"key": "x", "value": "%NOT_ENVOYS%"}}}]}"""),
                "", "", ""));
        assertTrue(format.contains("mutations.request_mutations[0].append.header.value"), format);
        String pseudo = refusal(inbound(FILTER.formatted("""
                "mutations": {"responseMutations": [{"remove": "x"}, {"remove": ":status"}]}"""), "", "", ""));
        assertTrue(pseudo.contains("mutations.response_mutations[1].remove"), pseudo);
        String host = refusal(inbound(FILTER.formatted("""
                "mutations": {"requestMutations": [{"append": {"header": {"key": "Host", "value": "h"}}}]}"""),
                "", "", ""));
        assertTrue(host.contains("mutations.request_mutations[0].append.header.key"), host);
        String none = refusal(inbound(FILTER.formatted("\"mutations\": {\"requestMutations\": [{}]}"), "", "", ""));
        assertTrue(none.contains("mutations.request_mutations[0].action"), none);
    }

    @Test
    void aFilterInmeshRunsEarlierAfterItIsRefusedByName() {
        String m = refusal(inbound(FILTER.formatted("\"mutations\": {}") + """
                , {"name": "envoy.filters.http.fault", "typedConfig": {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}}""", "", "", ""));
        assertTrue(m.contains("http_filters[1].name"), m);
    }
}
