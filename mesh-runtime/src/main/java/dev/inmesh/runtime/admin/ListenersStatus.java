package dev.inmesh.runtime.admin;

import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.listener.Listener;
import io.envoyproxy.envoy.admin.v3.Listeners;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.Pipe;
import java.util.Collection;

/**
 * {@code /listeners}: Envoy's {@code name::address} lines, one for each address a listener listens on (its
 * {@code additional_addresses} after its own), or its {@code admin.v3.Listeners}, the additional addresses in
 * {@code additional_local_addresses}.
 */
final class ListenersStatus {
    private ListenersStatus() {}

    static String text(Collection<Listener> listeners) {
        StringBuilder b = new StringBuilder();
        for (Listener l : listeners) {
            for (SocketAddress a : l.addresses()) {
                b.append(l.name()).append("::").append(a).append('\n');
            }
        }
        return b.toString();
    }

    static Listeners json(Collection<Listener> listeners) {
        Listeners.Builder out = Listeners.newBuilder();
        for (Listener l : listeners) {
            var status = out.addListenerStatusesBuilder().setName(l.name()).setLocalAddress(address(l.address()));
            l.additionalAddresses().forEach(a -> status.addAdditionalLocalAddresses(address(a)));
        }
        return out.build();
    }

    static Address address(SocketAddress a) {
        if (a.isUnixDomain()) {
            return Address.newBuilder().setPipe(Pipe.newBuilder()
                    .setPath(a.address().substring(SocketAddress.UNIX_PREFIX.length()))).build();
        }
        return Address.newBuilder().setSocketAddress(io.envoyproxy.envoy.config.core.v3.SocketAddress.newBuilder()
                .setAddress(a.address()).setPortValue(a.port())).build();
    }
}
