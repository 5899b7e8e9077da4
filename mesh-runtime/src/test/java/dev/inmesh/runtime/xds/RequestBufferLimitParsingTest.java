package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.route.Route;
import dev.inmesh.api.config.route.RouteAction;
import dev.inmesh.api.config.route.RouteMatch;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.admin.ConfigDumpBuilder;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The request buffer limits: a listener's {@code per_connection_buffer_limit_bytes} and a virtual host's and a route's
 * {@code per_request_buffer_limit_bytes} are read into the records (the router applies them), and a dump keeps them.
 */
class RequestBufferLimitParsingTest {
    /** Route configuration "9080": its virtual host keeps 8192 bytes, its route 1024. */
    private static final String ROUTES = EnvoyValidationTest.oneRoute("""
            route: {cluster: reviews}
            per_request_buffer_limit_bytes: 1024
            """).replace("  routes:", "  per_request_buffer_limit_bytes: 8192\n  routes:");
    /** Listener "0.0.0.0_9080" (RDS "9080"), with the largest limit a uint32 holds. */
    private static final String LISTENER = EnvoyValidationTest.listenerWithHttpFilters(EnvoyValidationTest.ROUTER)
            + "per_connection_buffer_limit_bytes: 4294967295\n";

    @Test
    void theListenersTheVirtualHostsAndTheRoutesLimitsAreInTheRecords() throws Exception {
        assertEquals(4294967295L, EnvoyConfigReader.read(LISTENER).listeners().get("0.0.0.0_9080")
                .perConnectionBufferLimitBytes());
        VirtualHost vh = EnvoyConfigReader.read(ROUTES).routes().get("9080").virtualHosts().get(0);
        assertEquals(8192L, vh.perRequestBufferLimitBytes());
        assertEquals(1024L, vh.routes().get(0).perRequestBufferLimitBytes());
    }

    @Test
    void unsetLimitsAreNull() throws Exception {
        assertNull(EnvoyConfigReader.read(EnvoyValidationTest.listenerWithHttpFilters(EnvoyValidationTest.ROUTER))
                .listeners().get("0.0.0.0_9080").perConnectionBufferLimitBytes());
        VirtualHost vh = EnvoyConfigReader.read(EnvoyValidationTest.oneRoute("route: {cluster: reviews}"))
                .routes().get("9080").virtualHosts().get(0);
        assertNull(vh.perRequestBufferLimitBytes());
        assertNull(vh.routes().get(0).perRequestBufferLimitBytes());
    }

    @Test
    void aConfigDumpKeepsTheLimits() throws Exception {
        ResourceBundle listener = EnvoyConfigReader.read(LISTENER);
        ResourceBundle routes = EnvoyConfigReader.read(ROUTES);
        ResourceBundle.Version v = new ResourceBundle.Version("1", Instant.EPOCH);
        ResourceBundle original = ResourceBundle.builder()
                .add(listener.listeners().get("0.0.0.0_9080"), v, listener.message(ResourceType.LISTENER,
                        "0.0.0.0_9080"))
                .add(routes.routes().get("9080"), v, routes.message(ResourceType.ROUTE, "9080")).build();
        ResourceBundle back = EnvoyConfigReader.read(ConfigDumpBuilder.json(original, "node-1", Instant.EPOCH));
        assertEquals(original.listeners(), back.listeners());
        assertEquals(original.routes(), back.routes());
        assertEquals(4294967295L, back.listeners().get("0.0.0.0_9080").perConnectionBufferLimitBytes());
        assertEquals(1024L, back.routes().get("9080").virtualHosts().get(0).routes().get(0)
                .perRequestBufferLimitBytes());
    }

    @Test
    void aRouteAndAVirtualHostRefuseALimitOutsideAUint32() {
        RouteAction action = RouteAction.toCluster("c");
        assertThrows(IllegalArgumentException.class, () -> Route.of(RouteMatch.prefix("/"), action)
                .withPerRequestBufferLimitBytes(-1L));
        assertThrows(IllegalArgumentException.class, () -> VirtualHost.of("vh", List.of("*"), List.of())
                .withPerRequestBufferLimitBytes(1L << 32));
    }

    @Test
    void aListenerRefusesALimitOutsideAUint32() throws Exception {
        Listener ok = EnvoyConfigReader.read(LISTENER).listeners().get("0.0.0.0_9080");
        assertThrows(IllegalArgumentException.class, () -> ok.withPerConnectionBufferLimitBytes(1L << 32));
    }
}
