package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;

/**
 * An IP address (or host name, for STRICT_DNS) and a port, as Envoy's {@code core.v3.SocketAddress}; or a Unix domain
 * socket (Envoy's {@code pipe}) as {@code unix:PATH} with port 0.
 */
public record SocketAddress(String address, int port) {
    /** The prefix of a Unix domain socket's address. */
    public static final String UNIX_PREFIX = "unix:";

    public SocketAddress {
        Checks.nonEmpty(address, "address");
        Checks.port(port, "port_value");
    }

    /** Whether this is a Unix domain socket. */
    public boolean isUnixDomain() {
        return address.startsWith(UNIX_PREFIX);
    }

    /** {@code host:port}, with brackets around an IPv6 address; {@code unix:PATH} for a domain socket. */
    @Override
    public String toString() {
        if (isUnixDomain()) {
            return address;
        }
        return (address.indexOf(':') >= 0 ? "[" + address + "]" : address) + ":" + port;
    }
}
