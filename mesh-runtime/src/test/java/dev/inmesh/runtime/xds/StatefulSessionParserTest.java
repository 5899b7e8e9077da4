package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.Cluster;
import dev.inmesh.api.config.cluster.CommonLbConfig;
import dev.inmesh.api.config.endpoint.HealthStatus;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.StatefulSession;
import dev.inmesh.api.config.route.StatefulSessionPerRoute;
import dev.inmesh.api.config.route.VirtualHost;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * Envoy's stateful session filter ({@code envoy.filters.http.stateful_session}) as istiod writes it for a Service
 * labelled {@code istio.io/persistent-session} or {@code istio.io/persistent-session-header}: the empty filter in the
 * outbound connection manager, the session state per virtual host, and the cluster's {@code override_host_status};
 * and what Inmesh refuses by name.
 */
class StatefulSessionParserTest {
    private static final String NAME = "envoy.filters.http.stateful_session";

    private static String refused(String text) {
        return LocalRateLimitParserTest.refused(text);
    }

    /** istiod's outbound route table of port 8080 with the Service's virtual host carrying {@code config}. */
    private static String routes(String config) {
        return routes(config, "");
    }

    /** As {@link #routes(String)}, with {@code routeFields} (block YAML) on its route. */
    private static String routes(String config, String routeFields) {
        return """
                name: "8080"
                virtual_hosts:
                - name: echo.default.svc.cluster.local:8080
                  domains: [echo.default.svc.cluster.local, echo, echo.default.svc, 10.96.0.10]
                """ + config.stripTrailing().indent(2) + """
                  routes:
                  - name: default
                    match: {prefix: /}
                    route:
                      cluster: outbound|8080||echo.default.svc.cluster.local
                      timeout: 0s
                      max_grpc_timeout: 0s
                      retry_policy:
                        retry_on: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes
                        num_retries: 2
                        retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, typed_config:
                          {"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}]
                        host_selection_retry_max_attempts: "5"
                """ + routeFields.stripTrailing().indent(4) + """
                  include_request_attempt_count: true
                """;
    }

    private static VirtualHost virtualHost(String config) throws Exception {
        RouteConfiguration rc = EnvoyConfigReader.read(routes(config)).routes().get("8080");
        return rc.virtualHosts().get(0);
    }

    @Test
    void istiodsOutboundConnectionManagerLoadsWithItsEmptyStatefulSessionFilterBeforeTheRouter() {
        HttpConnectionManager h = IstioPersistentSession.hcm();
        HttpFilter f = h.httpFilters().get(h.httpFilters().size() - 2);
        assertEquals(NAME, f.name());
        assertEquals(StatefulSession.EMPTY, f.statefulSession(), "no session state: the filter does nothing");
    }

    @Test
    void aCookieLabelBecomesTheVirtualHostsCookieSessionWithItsPathAndNoTtl() throws Exception {
        VirtualHost vh = virtualHost(IstioPersistentSession.cookieVirtualHostConfig("sugar", "/cart"));
        StatefulSessionPerRoute p = vh.statefulSession().get(NAME);
        assertEquals(StatefulSessionPerRoute.of(new StatefulSession(
                new StatefulSession.Cookie("sugar", "/cart", Duration.ZERO), false)), p);
    }

    @Test
    void aHeaderLabelBecomesTheVirtualHostsHeaderSessionWithALowerCaseName() throws Exception {
        VirtualHost vh = virtualHost(IstioPersistentSession.headerVirtualHostConfig("X-Session"));
        assertEquals(new StatefulSession.Header("x-session"),
                vh.statefulSession().get(NAME).statefulSession().sessionState());
    }

    @Test
    void aRouteCanTurnTheFilterOffAndAFilterCanBeStrictWithACookieTtl() throws Exception {
        RouteConfiguration rc = EnvoyConfigReader.read(routes("", IstioPersistentSession.DISABLED_ROUTE_CONFIG))
                .routes().get("8080");
        assertEquals(Map.of(NAME, StatefulSessionPerRoute.DISABLED),
                rc.virtualHosts().get(0).routes().get(0).statefulSession());

        HttpConnectionManager h = IstioPersistentSession.hcm(IstioPersistentSession.filter("strict: true\n"
                + IstioPersistentSession.cookieState("{name: s, path: /api/, ttl: 120s}")));
        assertEquals(new StatefulSession(new StatefulSession.Cookie("s", "/api/", Duration.ofSeconds(120)), true),
                h.httpFilters().get(0).statefulSession());
    }

    @Test
    void thePersistentSessionClustersOverrideHostStatusIsReadAndAnUnsetOneIsEnvoysDefault() throws Exception {
        Cluster c = IstioTrafficPolicyShapesTest.cluster(IstioTrafficPolicyShapesTest.eds(
                IstioPersistentSession.COMMON_LB_CONFIG));
        assertEquals(Set.of(HealthStatus.HEALTHY, HealthStatus.DRAINING, HealthStatus.UNKNOWN,
                HealthStatus.DEGRADED), c.commonLbConfig().overrideHostStatus());
        Cluster plain = IstioTrafficPolicyShapesTest.cluster(IstioTrafficPolicyShapesTest.eds(""));
        assertEquals(CommonLbConfig.DEFAULT_OVERRIDE_HOST_STATUS, plain.commonLbConfig().overrideHostStatus());
    }

    @Test
    void otherSessionStatesAndUnknownFieldsAreRefusedByName() {
        String envelope = refused(routes(IstioPersistentSession.perRoute(IstioPersistentSession.sessionState(
                "envoy.http.stateful_session.envelope",
                "envoy.extensions.http.stateful_session.envelope.v3.EnvelopeSessionState",
                "header: {name: session-header}"))));
        assertTrue(envelope.contains("typed_per_filter_config[envoy.filters.http.stateful_session]"
                + ".stateful_session.session_state.typed_config"), envelope);
        assertTrue(envelope.contains("envoy.extensions.http.stateful_session.envelope.v3.EnvelopeSessionState is "
                + "not supported by Inmesh"), envelope);

        String emptyHeader = refused(routes(IstioPersistentSession.headerVirtualHostConfig("\"\"")));
        assertTrue(emptyHeader.contains("session_state.typed_config.name"), emptyHeader);

        String noName = refused(routes(IstioPersistentSession.cookieVirtualHostConfig("\"\"", "/")));
        assertTrue(noName.contains("cookie.name"), noName);

        String secondFilter = refused(EnvoyValidationTest.listenerWithHttpFilters(IstioPersistentSession.FILTER
                + IstioPersistentSession.FILTER + EnvoyValidationTest.ROUTER));
        assertTrue(secondFilter.contains("a second stateful session filter"), secondFilter);
    }
}
