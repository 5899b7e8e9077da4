package dev.inmesh.runtime.testing;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;

/** Reads a connection manager's statistics out of a registry, as the in-JVM and the standalone proxy's tests do. */
public final class HcmStats {
    private HcmStats() {}

    /**
     * The connection manager {@code statPrefix}'s counter {@code envoy_http_<name>} in {@code registry} (Envoy's
     * {@code http.<statPrefix>.<name>}); an AssertionError when it was never registered.
     */
    public static long get(MeterRegistry registry, String statPrefix, String name) {
        Meter meter = registry.find("envoy_http_" + name).tag("http_conn_manager_prefix", statPrefix).meter();
        if (meter == null) {
            throw new AssertionError("no envoy_http_" + name + " of " + statPrefix);
        }
        return (long) meter.measure().iterator().next().getValue();
    }
}
