package dev.inmesh.runtime.upstream;

import java.io.IOException;

/**
 * The source a request's upstream connections leave from when its downstream connection was accepted by a listener
 * that runs the {@code original_src} listener filter (the standalone proxy under TPROXY): the downstream's remote IP,
 * bound with port 0, with {@code IP_TRANSPARENT} and the filter's {@code SO_MARK}. A host's pool keeps the
 * connections of each source apart ({@link HostPool}), as Envoy keys its connection pools by the socket options'
 * hash key, so that no connection made from one client's address carries another client's request.
 *
 * <p>Vert.x's clients take a local address as a string and offer no hook to set socket options before they bind:
 * a pool made for a source gives Vert.x {@link #localAddress()}, which names the IP and the mark, and the proxy's
 * Vert.x transport reads it back ({@link #parse}), binds the IP and sets the options on the socket before it binds.
 * Only a transport that does so may be given one (the in-JVM mesh never is).
 *
 * @param ip the downstream's remote IP, a literal
 * @param mark the {@code SO_MARK}, 0 for none
 */
public record OriginalSrcBind(String ip, long mark) {
    private static final String PREFIX = "original_src:";

    public OriginalSrcBind {
        java.util.Objects.requireNonNull(ip, "ip");
    }

    /** The local address a pool made for this source gives Vert.x: {@code original_src:MARK/IP}. */
    public String localAddress() {
        return PREFIX + mark + "/" + ip;
    }

    /** The source a {@link #localAddress()} names, or null for any other local address (or none). */
    public static OriginalSrcBind parse(String localAddress) {
        if (localAddress == null || !localAddress.startsWith(PREFIX)) {
            return null;
        }
        int slash = localAddress.indexOf('/', PREFIX.length());
        if (slash < 0) {
            return null;
        }
        try {
            return new OriginalSrcBind(localAddress.substring(slash + 1),
                    Long.parseLong(localAddress.substring(PREFIX.length(), slash)));
        } catch (NumberFormatException e) {
            return null;
        }
    }

    /**
     * An upstream socket that refused one of the source's options (the proxy lacks CAP_NET_ADMIN): the connection
     * attempt fails (UF) with this message as its {@code %UPSTREAM_TRANSPORT_FAILURE_REASON%}, as Envoy closes a
     * connection whose socket options it could not set.
     */
    public static class Refused extends IOException {
        public Refused(String message) {
            super(message);
        }
    }
}
