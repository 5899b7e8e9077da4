package dev.inmesh.runtime.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.inmesh.runtime.router.IstioExtAuthz;
import dev.inmesh.runtime.xds.IstioJwt;
import dev.inmesh.runtime.xds.IstioRateLimit;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A connection manager's JWT authentication and external authorization filters have their counters at 0 from their
 * configs on, as Envoy makes them when it builds the filters, not with the first request they see.
 */
class FilterStatsAtConfigTest {
    private static final String ROUTER = """
            - name: envoy.filters.http.router
              typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
            """;

    @Test
    void theJwtAndExtAuthzFiltersCountersAreMadeWithTheirConnectionManagersStats() {
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        MeshMetrics.create(registry, WorkloadInfo.UNKNOWN).connectionManager(IstioRateLimit.hcm(IstioJwt.FILTER
                + IstioExtAuthz.http("0.5s", false) + ROUTER));
        for (String name : List.of("jwt_authn_allowed", "jwt_authn_denied", "jwt_authn_cors_preflight_bypassed",
                "ext_authz_ok", "ext_authz_denied", "ext_authz_error", "ext_authz_failure_mode_allowed")) {
            var meter = registry.find("envoy_http_" + name).tag("http_conn_manager_prefix", "outbound_0.0.0.0_9080")
                    .meter();
            assertNotNull(meter, name);
            assertEquals(0.0, meter.measure().iterator().next().getValue(), name);
        }
    }
}
