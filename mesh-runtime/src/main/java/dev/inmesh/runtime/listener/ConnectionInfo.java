package dev.inmesh.runtime.listener;

import java.util.List;

/**
 * What filter chain selection knows of a connection: its original destination, what the inspectors found (SNI,
 * transport protocol, ALPN or detected HTTP version) and its source.
 *
 * @param destinationIp the original destination address (literal)
 * @param destinationPort the original destination port
 * @param serverName the TLS SNI, or empty
 * @param transportProtocol {@code tls} or {@code raw_buffer}
 * @param applicationProtocols ALPN values, or what HTTP inspection found ({@code http/1.1}, {@code h2c})
 * @param sourceIp the source address (literal)
 * @param sourcePort the source port
 * @param sourceIsLocal whether the source is this host (loopback or the destination's own address)
 */
public record ConnectionInfo(String destinationIp, int destinationPort, String serverName, String transportProtocol,
                             List<String> applicationProtocols, String sourceIp, int sourcePort,
                             boolean sourceIsLocal) {
    private static final byte[] IPV4_LOOPBACK = {127, 0, 0, 1};
    private static final byte[] IPV6_LOOPBACK = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

    public ConnectionInfo {
        serverName = serverName == null ? "" : serverName;
        transportProtocol = transportProtocol == null ? "raw_buffer" : transportProtocol;
        applicationProtocols = applicationProtocols == null ? List.of() : List.copyOf(applicationProtocols);
    }

    /** A TLS connection that sends {@code serverName} as its SNI ("" for none) and no ALPN. */
    public static ConnectionInfo tls(String destinationIp, int destinationPort, String serverName, String sourceIp,
                                     int sourcePort) {
        return new ConnectionInfo(destinationIp, destinationPort, serverName, "tls", List.of(), sourceIp,
                sourcePort, sameIpOrLoopback(sourceIp, destinationIp));
    }

    /** A plaintext HTTP/1.1 connection. */
    public static ConnectionInfo http(String destinationIp, int destinationPort, String sourceIp, int sourcePort) {
        return new ConnectionInfo(destinationIp, destinationPort, "", "raw_buffer", List.of("http/1.1"), sourceIp,
                sourcePort, sameIpOrLoopback(sourceIp, destinationIp));
    }

    /**
     * Whether a connection is local for the {@code SAME_IP_OR_LOOPBACK} source type, as Envoy decides: its source is
     * the loopback address itself ({@code 127.0.0.1} or {@code ::1}; Envoy counts no other address of 127.0.0.0/8,
     * such as the 127.0.0.6 Istio's sidecars connect from) or the same address as its destination. IPv4-mapped IPv6
     * addresses count as their IPv4 address.
     */
    public static boolean sameIpOrLoopback(String sourceIp, String destinationIp) {
        byte[] src = Cidrs.bytes(sourceIp);
        if (src == null) {
            return false;
        }
        return java.util.Arrays.equals(src, IPV4_LOOPBACK) || java.util.Arrays.equals(src, IPV6_LOOPBACK)
                || java.util.Arrays.equals(src, Cidrs.bytes(destinationIp));
    }

}
