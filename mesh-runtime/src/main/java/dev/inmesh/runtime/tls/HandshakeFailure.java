package dev.inmesh.runtime.tls;

import dev.inmesh.runtime.stats.ListenerStats.TlsFailure;
import java.util.Locale;
import javax.net.ssl.SSLException;

/**
 * Why an upstream TLS handshake failed: the {@code ssl.*} statistic of the cluster it counts in, as Envoy's TLS
 * transport socket counts its handshakes, and the text of the access log's {@code %UPSTREAM_TRANSPORT_FAILURE_REASON%}.
 * Envoy prints BoringSSL's error queue there ({@code TLS_error:|268435581:SSL_routines:OPENSSL_internal:
 * CERTIFICATE_VERIFY_FAILED:TLS_error_end}); the JDK has no such codes, so the reason names the failure's class in a
 * text of the same shape, with spaces already underscores:
 * <ul>
 *   <li>{@code TLS_error:|CERTIFICATE_VERIFY_FAILED:verify_chain:TLS_error_end}: the server's chain does not lead to
 *       the trusted CAs (or is expired, or not usable);
 *   <li>{@code TLS_error:|CERTIFICATE_VERIFY_FAILED:verify_SAN_list:TLS_error_end}: no SAN of the server's
 *       certificate matches the SAN matchers, or the request's host ({@code auto_san_validation});
 *   <li>{@code TLS_error:|ALERT_<NAME>:TLS_error_end}: the server ended the handshake with a TLS alert, such as
 *       {@code ALERT_BAD_CERTIFICATE} or {@code ALERT_CERTIFICATE_REQUIRED} (the client certificate refused or
 *       missing) or {@code ALERT_PROTOCOL_VERSION} (no TLS version in common);
 *   <li>{@code TLS_error:|UNSUPPORTED_PROTOCOL:TLS_error_end}: the server chose a TLS version the cluster does not
 *       allow;
 *   <li>{@code TLS_error:|HANDSHAKE_FAILED:TLS_error_end}: any other TLS error.
 * </ul>
 *
 * @param kind the {@code ssl.*} statistic it counts in
 * @param reason the access log's {@code %UPSTREAM_TRANSPORT_FAILURE_REASON%}
 */
public record HandshakeFailure(TlsFailure kind, String reason) {
    private static final HandshakeFailure CHAIN = new HandshakeFailure(TlsFailure.VERIFY_ERROR,
            reason("CERTIFICATE_VERIFY_FAILED:verify_chain"));
    private static final HandshakeFailure SAN = new HandshakeFailure(TlsFailure.VERIFY_SAN,
            reason("CERTIFICATE_VERIFY_FAILED:verify_SAN_list"));
    private static final HandshakeFailure PROTOCOL = new HandshakeFailure(TlsFailure.CONNECTION_ERROR,
            reason("UNSUPPORTED_PROTOCOL"));
    private static final HandshakeFailure OTHER = new HandshakeFailure(TlsFailure.CONNECTION_ERROR,
            reason("HANDSHAKE_FAILED"));
    private static final String ALERT = "Received fatal alert: ";

    private static String reason(String what) {
        return "TLS_error:|" + what + ":TLS_error_end";
    }

    /**
     * The failure a connection's error tells of, or null when it is no TLS error (a refused or timed out connect, a
     * handshake that timed out, a reset), which counts in no {@code ssl.*} statistic and has no reason.
     */
    public static HandshakeFailure of(Throwable cause) {
        TlsFailure kind = DownstreamTls.failure(cause);
        if (kind == null) {
            return null;
        }
        switch (kind) {
            case VERIFY_SAN:
                return SAN;
            case VERIFY_ERROR:
                return CHAIN;
            default:
                break;
        }
        for (Throwable t : dev.inmesh.runtime.net.Causes.of(cause)) {
            String m = t instanceof SSLException ? String.valueOf(t.getMessage()) : "";
            int at = m.indexOf(ALERT);
            if (at >= 0) {
                String alert = m.substring(at + ALERT.length()).trim();
                if (!alert.isEmpty() && alert.chars().allMatch(c -> c == '_' || c >= 'a' && c <= 'z')) {
                    return new HandshakeFailure(TlsFailure.CONNECTION_ERROR,
                            reason("ALERT_" + alert.toUpperCase(Locale.ROOT)));
                }
            }
            // the JDK's words for a version the client's settings refuse (the server's choice, or none enabled)
            if (m.contains("not accepted by client preferences") || m.contains("No appropriate protocol")) {
                return PROTOCOL;
            }
        }
        return OTHER;
    }
}
