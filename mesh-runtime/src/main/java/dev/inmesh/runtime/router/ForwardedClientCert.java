package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.ForwardClientCert;
import io.vertx.core.MultiMap;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.cert.Certificate;
import java.security.cert.CertificateEncodingException;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import javax.security.auth.x500.X500Principal;

/**
 * The {@code x-forwarded-client-cert} (XFCC) of a request, as Envoy's connection manager writes it: the header is a
 * comma-separated list of elements, one per proxy that took a client certificate; an element is {@code ;}-separated
 * {@code Key=value} pairs: {@code By} (each URI SAN of this proxy's own certificate), {@code Hash} (the SHA-256 of the
 * client certificate's DER, in lower-case hex), then, as {@code set_current_client_cert_details} asks, {@code Cert}
 * and {@code Chain} (URL-encoded PEM, in double quotes), {@code Subject} (RFC 2253, in double quotes, present even
 * when empty), {@code URI} (each URI SAN; {@code URI=} when there is none) and {@code DNS} (each DNS SAN).
 */
public final class ForwardedClientCert {
    static final int SAN_DNS = 2;
    static final int SAN_URI = 6;

    private ForwardedClientCert() {}

    /**
     * This hop's element for a client certificate, or null when the connection manager adds none (or there is no
     * client certificate). Made once per connection.
     *
     * @param f the connection manager's setting
     * @param peerChain the client's certificates, its own first; null or empty for none
     * @param local this proxy's certificates, its own first; null for none
     */
    public static String element(ForwardClientCert f, Certificate[] peerChain, Certificate[] local) {
        if (!f.addsElement() || peerChain == null || peerChain.length == 0
                || !(peerChain[0] instanceof X509Certificate peer)) {
            return null;
        }
        List<String> pairs = new ArrayList<>();
        if (local != null && local.length > 0 && local[0] instanceof X509Certificate own) {
            for (String uri : sans(own, SAN_URI)) {
                pairs.add("By=" + uri);
            }
        }
        pairs.add("Hash=" + fingerprint(peer, "SHA-256"));
        if (f.cert()) {
            pairs.add("Cert=\"" + urlEncodedPem(List.of(peer)) + "\"");
        }
        if (f.chain()) {
            pairs.add("Chain=\"" + urlEncodedPem(List.of(peerChain)) + "\"");
        }
        if (f.subject()) {
            pairs.add("Subject=\"" + peer.getSubjectX500Principal().getName(X500Principal.RFC2253) + "\"");
        }
        if (f.uri()) {
            List<String> uris = sans(peer, SAN_URI);
            if (uris.isEmpty()) {
                pairs.add("URI=");
            }
            for (String uri : uris) {
                pairs.add("URI=" + uri);
            }
        }
        if (f.dns()) {
            for (String dns : sans(peer, SAN_DNS)) {
                pairs.add("DNS=" + dns);
            }
        }
        return String.join(";", pairs);
    }

    /**
     * The principal of the peer's certificate in a TLS session ({@link #principal}), or null when it presented none.
     */
    public static String peerPrincipal(javax.net.ssl.SSLSession session) {
        try {
            return principal(session.getPeerCertificates());
        } catch (javax.net.ssl.SSLPeerUnverifiedException e) {
            return null;
        }
    }

    /**
     * The first URI SAN of a certificate (Istio's SPIFFE identity: the principal in its metrics), or null.
     *
     * @param chain the certificates, the one named first; null or empty for none
     */
    public static String principal(Certificate[] chain) {
        if (chain == null || chain.length == 0 || !(chain[0] instanceof X509Certificate c)) {
            return null;
        }
        List<String> uris = sans(c, SAN_URI);
        return uris.isEmpty() ? null : uris.get(0);
    }

    /**
     * Applies the connection manager's {@code forward_client_cert_details} to a request's headers, as Envoy's table
     * says: {@code ALWAYS_FORWARD_ONLY} keeps the header; without a client certificate, or under {@code SANITIZE},
     * it is removed; {@code FORWARD_ONLY} keeps it; {@code APPEND_FORWARD} appends this hop's element after a comma,
     * {@code SANITIZE_SET} replaces the header with it.
     *
     * @param peerCertificate whether the request's connection presented a client certificate
     * @param element this hop's element ({@link #element}), or null when there is none
     */
    static void apply(MultiMap headers, ForwardClientCert.Mode mode, boolean peerCertificate, String element) {
        if (mode == ForwardClientCert.Mode.ALWAYS_FORWARD_ONLY) {
            return;
        }
        if (mode == ForwardClientCert.Mode.SANITIZE || !peerCertificate) {
            headers.remove(HeaderNames.X_FORWARDED_CLIENT_CERT);
            return;
        }
        if (mode == ForwardClientCert.Mode.FORWARD_ONLY || element == null) {
            return;
        }
        String before = mode == ForwardClientCert.Mode.APPEND_FORWARD
                ? String.join(",", headers.getAll(HeaderNames.X_FORWARDED_CLIENT_CERT)) : "";
        headers.set(HeaderNames.X_FORWARDED_CLIENT_CERT, before.isEmpty() ? element : before + "," + element);
    }

    public static List<String> sans(X509Certificate c, int type) {
        List<String> out = new ArrayList<>(1);
        try {
            Collection<List<?>> all = c.getSubjectAlternativeNames();
            if (all != null) {
                for (List<?> san : all) {
                    if (san.size() >= 2 && san.get(0) instanceof Integer t && t == type
                            && san.get(1) instanceof String v) {
                        out.add(v);
                    }
                }
            }
        } catch (CertificateParsingException e) {
            // an unreadable SAN extension: no SANs, as a certificate without them
        }
        return out;
    }

    /**
     * The certificate's fingerprint by {@code algorithm} ({@code SHA-256}, {@code SHA-1}) in lower-case hex: XFCC's
     * {@code Hash}, and the access log's {@code %DOWNSTREAM_PEER_FINGERPRINT_256%} and {@code _1%}.
     */
    public static String fingerprint(X509Certificate c, String algorithm) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance(algorithm).digest(c.getEncoded()));
        } catch (NoSuchAlgorithmException | CertificateEncodingException e) {
            throw new IllegalStateException("cannot hash the certificate", e);
        }
    }

    /** The certificates in PEM, percent-encoded but for letters, digits and {@code -._~}. */
    public static String urlEncodedPem(List<Certificate> certs) {
        StringBuilder pem = new StringBuilder();
        Base64.Encoder b64 = Base64.getMimeEncoder(64, new byte[] {'\n'});
        for (Certificate c : certs) {
            try {
                pem.append("-----BEGIN CERTIFICATE-----\n").append(b64.encodeToString(c.getEncoded()))
                        .append("\n-----END CERTIFICATE-----\n");
            } catch (CertificateEncodingException e) {
                throw new IllegalStateException("cannot encode the client certificate", e);
            }
        }
        StringBuilder out = new StringBuilder(pem.length() * 2);
        for (byte b : pem.toString().getBytes(StandardCharsets.US_ASCII)) {
            char ch = (char) (b & 0xff);
            if (ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || "-._~".indexOf(ch) >= 0) {
                out.append(ch);
            } else {
                out.append('%').append(Character.toUpperCase(Character.forDigit((b >> 4) & 0xf, 16)))
                        .append(Character.toUpperCase(Character.forDigit(b & 0xf, 16)));
            }
        }
        return out.toString();
    }
}
