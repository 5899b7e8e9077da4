package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;

/**
 * The original source listener filter ({@code envoy.filters.listener.original_src},
 * {@code listener.original_src.v3.OriginalSrc}): the upstream connections a connection of the listener opens leave
 * from that connection's remote IP (port 0), with {@code IP_TRANSPARENT} (so that the kernel lets the proxy bind an
 * address that is not its own) and, when {@code mark} is not 0, {@code SO_MARK}, so that the application's replies to
 * that address are routed back to the proxy. istiod adds it, with mark 1337, to the TPROXY {@code virtualInbound}.
 * As in Envoy, {@code bind_port} (not implemented there) is accepted and changes nothing: the port is always 0.
 *
 * @param mark {@code mark}: the {@code SO_MARK} of the upstream sockets, an unsigned 32-bit value; 0 for none
 */
public record OriginalSrc(long mark) {
    /** Envoy's default: no mark. */
    public static final OriginalSrc DEFAULT = new OriginalSrc(0);

    public OriginalSrc {
        Checks.check(mark >= 0 && mark <= 0xFFFF_FFFFL, "mark", String.valueOf(mark), "0 to 4294967295");
    }
}
