package dev.inmesh.api.config.listener;

/**
 * What an HTTP connection manager does with a request's {@code x-forwarded-client-cert} (XFCC): Envoy's
 * {@code forward_client_cert_details} and {@code set_current_client_cert_details}.
 *
 * @param mode what happens to the header ({@link Mode}); null for {@link Mode#SANITIZE}, Envoy's default
 * @param cert whether the element added carries the client's certificate ({@code Cert="<URL-encoded PEM>"})
 * @param chain whether it carries the client's chain, its own certificate first ({@code Chain="..."})
 * @param subject whether it carries the certificate's subject ({@code Subject="..."})
 * @param uri whether it carries the certificate's URI SANs ({@code URI=...}, one pair each)
 * @param dns whether it carries the certificate's DNS SANs ({@code DNS=...}, one pair each)
 */
public record ForwardClientCert(Mode mode, boolean cert, boolean chain, boolean subject, boolean uri, boolean dns) {
    /**
     * Envoy's {@code forward_client_cert_details}. Every mode but {@code ALWAYS_FORWARD_ONLY} removes the header of a
     * request whose connection did not present a client certificate (no mTLS).
     */
    public enum Mode {
        /** The header is removed (Envoy's default). */
        SANITIZE,
        /** With mTLS the header goes on as it came. */
        FORWARD_ONLY,
        /** With mTLS the header goes on with this hop's element appended (Istio's inbound sidecar). */
        APPEND_FORWARD,
        /** With mTLS the header is replaced by this hop's element. */
        SANITIZE_SET,
        /** The header goes on as it came, with or without mTLS. */
        ALWAYS_FORWARD_ONLY
    }

    /** Envoy's default: the header is removed, whatever the connection. */
    public static final ForwardClientCert SANITIZE = new ForwardClientCert(Mode.SANITIZE, false, false, false, false,
            false);

    public ForwardClientCert {
        mode = mode == null ? Mode.SANITIZE : mode;
    }

    /** Whether this hop adds its own element (the client certificate's details) to the header. */
    public boolean addsElement() {
        return mode == Mode.APPEND_FORWARD || mode == Mode.SANITIZE_SET;
    }
}
