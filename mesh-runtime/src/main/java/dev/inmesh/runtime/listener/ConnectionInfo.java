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
    public ConnectionInfo {
        serverName = serverName == null ? "" : serverName;
        transportProtocol = transportProtocol == null ? "raw_buffer" : transportProtocol;
        applicationProtocols = applicationProtocols == null ? List.of() : List.copyOf(applicationProtocols);
    }

    /** A plaintext HTTP/1.1 connection. */
    /** A TLS connection from a local client that sends {@code serverName} as its SNI ("" for none) and no ALPN. */
    public static ConnectionInfo tls(String destinationIp, int destinationPort, String serverName, String sourceIp,
                                     int sourcePort) {
        return new ConnectionInfo(destinationIp, destinationPort, serverName, "tls", List.of(), sourceIp,
                sourcePort, sourceIp.startsWith("127.") || sourceIp.equals("::1") || sourceIp.equals(destinationIp));
    }

    public static ConnectionInfo http(String destinationIp, int destinationPort, String sourceIp, int sourcePort) {
        return new ConnectionInfo(destinationIp, destinationPort, "", "raw_buffer", List.of("http/1.1"), sourceIp,
                sourcePort, sourceIp.startsWith("127.") || sourceIp.equals("::1") || sourceIp.equals(destinationIp));
    }
}
