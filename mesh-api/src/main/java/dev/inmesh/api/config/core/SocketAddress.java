package dev.inmesh.api.config.core;

import dev.inmesh.api.config.Checks;

/** An IP address (or host name, for STRICT_DNS) and a port, as Envoy's {@code core.v3.SocketAddress}. */
public record SocketAddress(String address, int port) {
    public SocketAddress {
        Checks.nonEmpty(address, "address");
        Checks.port(port, "port_value");
    }

    /** {@code host:port}, with brackets around an IPv6 address. */
    @Override
    public String toString() {
        return (address.indexOf(':') >= 0 ? "[" + address + "]" : address) + ":" + port;
    }
}
