package dev.inmesh.api.config.listener;

/**
 * What an HTTP connection manager does to a request's {@code Host} (HTTP/2 {@code :authority}) before its filters and
 * its route table read it; the upstream gets the header as it is then.
 *
 * @param stripPort which port is taken off: Envoy's {@code strip_matching_host_port} ({@link StripPort#MATCHING}) or
 *                  {@code strip_any_host_port} ({@link StripPort#ANY}); null for {@link StripPort#NONE}
 * @param stripTrailingDot Envoy's {@code strip_trailing_host_dot}: a dot that ends the host name is taken off, the port
 *                         kept ({@code example.com.:443} becomes {@code example.com:443})
 */
public record HostNormalization(StripPort stripPort, boolean stripTrailingDot) {
    /** Which port of a {@code Host} the connection manager takes off. */
    public enum StripPort {
        /** None (Envoy's default): {@code example.com:80} matches only a domain that names the port. */
        NONE,
        /** The port the request's connection arrived at (its original destination's): others are kept. */
        MATCHING,
        /** Any number after the last colon that is not inside an IPv6 literal's brackets. */
        ANY
    }

    /** Envoy's default: the {@code Host} as the caller sent it. */
    public static final HostNormalization NONE = new HostNormalization(StripPort.NONE, false);

    public HostNormalization {
        stripPort = stripPort == null ? StripPort.NONE : stripPort;
    }

    /** Whether it leaves every {@code Host} as it came. */
    public boolean changesNothing() {
        return stripPort == StripPort.NONE && !stripTrailingDot;
    }
}
