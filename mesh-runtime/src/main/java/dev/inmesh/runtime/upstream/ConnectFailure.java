package dev.inmesh.runtime.upstream;

import dev.inmesh.runtime.tls.HandshakeFailure;
import java.util.List;

/**
 * Why a connection to an upstream host could not be made, in the words Envoy's router answers and logs it with: the
 * stream reset reason its connection pool reports, and the connection's transport failure reason (null: none).
 *
 * <ul>
 *   <li>the host refused or could not be reached: {@code remote connection failure}, with
 *       {@code delayed connect error: Connection refused} (the socket's error as the C library names it: {@code No
 *       route to host}, {@code Network is unreachable}, ...), as Envoy's connection reads {@code SO_ERROR} once its
 *       non-blocking connect ends;</li>
 *   <li>the cluster's {@code connect_timeout} ran out: {@code connection timeout}, with no transport reason;</li>
 *   <li>the TLS handshake failed: {@code connection failure} with the handshake's reason
 *       ({@link HandshakeFailure#reason}), as Envoy's TLS socket reports it;</li>
 *   <li>a socket option {@code original_src} needs was refused: {@code local connection failure} with its message,
 *       as Envoy's connection closes itself when it cannot set its options.</li>
 * </ul>
 *
 * @param resetReason the reset reason: the end of the 503's body and the first part of its response code details
 * @param transportFailureReason the transport failure reason ({@code %UPSTREAM_TRANSPORT_FAILURE_REASON%}), or null
 */
public record ConnectFailure(String resetReason, String transportFailureReason) {
    /** The socket errors a connect ends with, as {@code strerror} names them (and Java's exceptions quote them). */
    private static final List<String> SOCKET_ERRORS = List.of("Connection refused", "No route to host",
            "Network is unreachable", "Host is down", "Connection reset by peer", "Connection timed out",
            "Cannot assign requested address", "Permission denied", "Protocol not available");

    /**
     * A connect timeout in the whole milliseconds Netty and Vert.x take: at least 1, as 0 would be no timeout at all
     * where Envoy's connect timer of 0 ms (a sub-millisecond {@code connect_timeout}) fires at once; at most
     * {@code Integer.MAX_VALUE}.
     */
    public static int timeoutMillis(java.time.Duration timeout) {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, timeout.toMillis()));
    }

    /** A failure with neither a known cause nor a transport reason: Envoy's plain {@code connection failure}. */
    public static final ConnectFailure UNKNOWN = new ConnectFailure("connection failure", null);

    /** Why connecting failed with {@code cause} (a Vert.x or Netty connect's failure). */
    public static ConnectFailure of(Throwable cause) {
        return of(cause, HandshakeFailure.of(cause));
    }

    /** As {@link #of(Throwable)}, {@code tls} what {@link HandshakeFailure#of} made of {@code cause} (null: none). */
    public static ConnectFailure of(Throwable cause, HandshakeFailure tls) {
        return tls != null ? new ConnectFailure("connection failure", tls.reason()) : withoutTls(cause);
    }

    /** As {@link #of}, for a failure known not to be a TLS handshake's. */
    private static ConnectFailure withoutTls(Throwable cause) {
        List<Throwable> chain = dev.inmesh.runtime.net.Causes.of(cause);
        for (Throwable c : chain) {
            if (c instanceof OriginalSrcBind.Refused refused) {
                // as Envoy's connection, which closes itself (LocalClose) when its socket options cannot be set:
                // the pool's local connection failure
                return new ConnectFailure("local connection failure", refused.getMessage());
            }
            if (c instanceof io.netty.channel.ConnectTimeoutException) {
                return new ConnectFailure("connection timeout", null);
            }
        }
        for (Throwable c : chain) {
            String message = c.getMessage();
            if (message == null) {
                continue;
            }
            for (String error : SOCKET_ERRORS) {
                if (message.contains(error)) {
                    return new ConnectFailure("remote connection failure", "delayed connect error: " + error);
                }
            }
        }
        return cause instanceof java.net.ConnectException ? new ConnectFailure("remote connection failure", null)
                : UNKNOWN;
    }

    /** Whether the host refused the connect or could not be reached (not a local failure, nor a timeout). */
    public boolean remote() {
        return resetReason.equals("remote connection failure");
    }

    /** Whether the cluster's connect timeout ran out ({@code upstream_cx_connect_timeout}). */
    public boolean timedOut() {
        return resetReason.equals("connection timeout");
    }

    /** The end of the local reply's body: the reset reason, then the transport failure reason when there is one. */
    public String reason() {
        return transportFailureReason == null ? resetReason
                : resetReason + ", transport failure reason: " + transportFailureReason;
    }

    /**
     * The response code details of the local reply, as Envoy's router makes them:
     * {@code upstream_reset_before_response_started{REASON|TRANSPORT_REASON}}, every space an underscore.
     */
    public String details() {
        String inner = transportFailureReason == null ? resetReason : resetReason + "|" + transportFailureReason;
        return "upstream_reset_before_response_started{" + inner.replaceAll("\\s", "_") + "}";
    }
}
