package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.CidrRange;
import java.util.List;

/**
 * When a filter chain applies to a connection ({@code listener.v3.FilterChainMatch}). Empty lists and nulls match
 * anything. Envoy picks the most specific chain, criterion by criterion, in this order: destination port,
 * destination IP, server name, transport protocol, application protocols, source type, source IP, source port.
 *
 * @param destinationPort the original destination port, or 0 for any
 * @param prefixRanges destination address ranges
 * @param serverNames SNI names, exact or {@code *.suffix}
 * @param transportProtocol {@code raw_buffer} or {@code tls}, or empty for any
 * @param applicationProtocols ALPN values (Istio's {@code istio-http/1.1}, {@code h2c}, ...)
 * @param sourceType any, local or external source
 * @param sourcePrefixRanges source address ranges
 * @param sourcePorts source ports
 */
public record FilterChainMatch(int destinationPort, List<CidrRange> prefixRanges, List<String> serverNames,
                               String transportProtocol, List<String> applicationProtocols, SourceType sourceType,
                               List<CidrRange> sourcePrefixRanges, List<Integer> sourcePorts) {
    public static final FilterChainMatch ANY = new FilterChainMatch(0, List.of(), List.of(), "", List.of(),
            SourceType.ANY, List.of(), List.of());

    public FilterChainMatch {
        Checks.port(destinationPort, "destination_port");
        prefixRanges = Checks.list(prefixRanges, "prefix_ranges");
        serverNames = Checks.list(serverNames, "server_names");
        transportProtocol = transportProtocol == null ? "" : transportProtocol;
        applicationProtocols = Checks.list(applicationProtocols, "application_protocols");
        sourceType = sourceType == null ? SourceType.ANY : sourceType;
        sourcePrefixRanges = Checks.list(sourcePrefixRanges, "source_prefix_ranges");
        sourcePorts = Checks.list(sourcePorts, "source_ports");
        for (int p : sourcePorts) {
            Checks.port(p, "source_ports");
        }
    }

    /** Envoy's {@code ConnectionSourceType}. */
    public enum SourceType { ANY, SAME_IP_OR_LOOPBACK, EXTERNAL }
}
