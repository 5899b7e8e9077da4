package dev.inmesh.api.config.listener;

import java.util.Objects;

/**
 * The {@code server} header of responses, as an HTTP connection manager writes it: Envoy's {@code server_name}
 * (default {@code envoy}) and {@code server_header_transformation} (default OVERWRITE).
 *
 * @param serverName the value written
 * @param transformation when it is written
 */
public record ServerHeader(String serverName, Transformation transformation) {
    /** Envoy's defaults: {@code server: envoy} on every response. */
    public static final ServerHeader DEFAULT = new ServerHeader("envoy", Transformation.OVERWRITE);

    /** Envoy's {@code server_header_transformation}. */
    public enum Transformation {
        /** The header is set to the server name, whatever the upstream sent. */
        OVERWRITE,
        /** The server name is written only when the upstream sent no {@code server} header. */
        APPEND_IF_ABSENT,
        /** The upstream's header, or none, goes through. */
        PASS_THROUGH
    }

    public ServerHeader {
        serverName = serverName == null || serverName.isEmpty() ? "envoy" : serverName;
        Objects.requireNonNull(transformation, "server_header_transformation");
    }

    /**
     * Whether the connection manager writes {@link #serverName} into a response that has a {@code server} header
     * ({@code upstreamHasOne}) or not: always for OVERWRITE, only into one without for APPEND_IF_ABSENT, never for
     * PASS_THROUGH.
     */
    public boolean writes(boolean upstreamHasOne) {
        return switch (transformation) {
            case OVERWRITE -> true;
            case APPEND_IF_ABSENT -> !upstreamHasOne;
            case PASS_THROUGH -> false;
        };
    }
}
