package dev.inmesh.api.config.endpoint;

import dev.inmesh.api.config.Checks;

/**
 * How the cluster's active health checks treat one endpoint, as Envoy's {@code Endpoint.HealthCheckConfig}.
 *
 * @param portValue the port checks go to; 0 for the endpoint's own
 * @param hostname the {@code :authority} of HTTP checks, over the {@code host} the check names (as Envoy's endpoint
 *     setting overrides the cluster's); empty for the check's {@code host}, else the cluster's name
 * @param disableActiveHealthCheck whether the endpoint is not checked at all (it is then never failed by checks)
 */
public record HealthCheckConfig(int portValue, String hostname, boolean disableActiveHealthCheck) {
    /** No setting: the endpoint's own address, checked. */
    public static final HealthCheckConfig NONE = new HealthCheckConfig(0, "", false);

    public HealthCheckConfig {
        Checks.check(portValue >= 0 && portValue <= 65535, "health_check_config.port_value", portValue, "0..65535");
        hostname = hostname == null ? "" : hostname;
    }
}
