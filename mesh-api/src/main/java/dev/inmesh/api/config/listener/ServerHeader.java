package dev.inmesh.api.config.listener;

import java.util.Objects;

/**
 * The headers by which an HTTP connection manager names itself: the {@code server} header of responses, Envoy's
 * {@code server_name} (default {@code envoy}) and {@code server_header_transformation} (default OVERWRITE); and the
 * {@code via} it appends to requests and responses, Envoy's {@code via} (none by default).
 *
 * @param serverName the value written
 * @param transformation when it is written
 * @param via what is appended to the {@code via} header of each request and response ({@code ", "} after a value
 *            already there); empty for nothing
 */
public record ServerHeader(String serverName, Transformation transformation, String via) {
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
        via = via == null ? "" : via;
    }

    /** The {@code server} header alone, no {@code via}. */
    public ServerHeader(String serverName, Transformation transformation) {
        this(serverName, transformation, "");
    }

    /** {@code headerValue} with this connection manager's {@code via} appended ({@code via} alone for null). */
    public String appendVia(String headerValue) {
        return headerValue == null || headerValue.isEmpty() ? via : headerValue + ", " + via;
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
