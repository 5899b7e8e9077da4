package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.HeaderMutations;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A route table ({@code route.v3.RouteConfiguration}, RDS): virtual hosts chosen by the Host header.
 *
 * @param name the name (Istio names outbound route configurations by port, such as {@code 9080})
 * @param virtualHosts the virtual hosts; a domain may appear in one of them only, and {@code *} at most once
 * @param validateClusters whether routes to unknown clusters make the whole configuration invalid (when Envoy's
 *                         field is unset, the parsers take Envoy's default: true for a {@code route_config} inline in
 *                         the HTTP connection manager, false for RDS)
 * @param ignorePortInHostMatching whether the port in Host is dropped before matching domains (Istio sets it)
 * @param headers header mutations at route configuration level
 * @param filterConfigs the buffer and header mutation filters' configs at route configuration level
 *     ({@code typed_per_filter_config}), by filter name; empty for none
 * @param internalOnlyHeaders the headers taken off a request the connection manager does not take for internal,
 *     before its filters see it ({@code internal_only_headers}), in lower case; empty for none
 * @param mostSpecificHeaderMutationsWins {@code most_specific_header_mutations_wins}: the header rules of the route
 *     configuration, virtual host and route apply in that order, so that the route's win an overwrite; by default
 *     the other way round (a weighted cluster's rules apply first either way, as Envoy's)
 */
public record RouteConfiguration(String name, List<VirtualHost> virtualHosts, boolean validateClusters,
                                 boolean ignorePortInHostMatching, HeaderMutations headers,
                                 Map<String, FilterPerRoute> filterConfigs, List<String> internalOnlyHeaders,
                                 boolean mostSpecificHeaderMutationsWins) {
    public RouteConfiguration {
        Checks.nonNull(name, "name");
        virtualHosts = Checks.list(virtualHosts, "virtual_hosts");
        Map<String, String> owner = new HashMap<>();
        Map<String, Boolean> names = new HashMap<>();
        for (VirtualHost vh : virtualHosts) {
            Checks.check(names.put(vh.name(), Boolean.TRUE) == null, "virtual_hosts.name", vh.name(),
                    "unique virtual host names");
            for (String d : vh.domains()) {
                String prev = owner.put(d.toLowerCase(Locale.ROOT), vh.name());
                Checks.check(prev == null, "virtual_hosts." + vh.name() + ".domains", d,
                        "a domain in one virtual host only (already in " + prev + ")");
            }
        }
        headers = headers == null ? HeaderMutations.NONE : headers;
        filterConfigs = Checks.map(filterConfigs);
        internalOnlyHeaders = internalOnlyHeaders == null ? List.of()
                : internalOnlyHeaders.stream().map(h -> h.toLowerCase(Locale.ROOT)).toList();
    }

    /** A route configuration with no internal-only headers, its header rules applied most specific first. */
    public RouteConfiguration(String name, List<VirtualHost> virtualHosts, boolean validateClusters,
                              boolean ignorePortInHostMatching, HeaderMutations headers,
                              Map<String, FilterPerRoute> filterConfigs) {
        this(name, virtualHosts, validateClusters, ignorePortInHostMatching, headers, filterConfigs, null, false);
    }

    /** A route configuration with no filter configs of its own. */
    public RouteConfiguration(String name, List<VirtualHost> virtualHosts, boolean validateClusters,
                              boolean ignorePortInHostMatching, HeaderMutations headers) {
        this(name, virtualHosts, validateClusters, ignorePortInHostMatching, headers, null);
    }

    /** A route configuration with just virtual hosts; {@code validate_clusters} off. */
    public static RouteConfiguration of(String name, List<VirtualHost> virtualHosts) {
        return new RouteConfiguration(name, virtualHosts, false, false, HeaderMutations.NONE);
    }
}
