package dev.inmesh.runtime.accesslog;

import dev.inmesh.runtime.router.ForwardedClientCert;
import java.math.BigInteger;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.HexFormat;
import java.util.List;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import javax.security.auth.x500.X500Principal;

/**
 * The TLS a request's downstream connection came over (the TLS the proxy, or the service's server, terminated), as
 * Envoy's access log operators read it: {@code %DOWNSTREAM_TLS_VERSION%}, {@code %DOWNSTREAM_TLS_CIPHER%} (the name
 * BoringSSL gives it now: OpenSSL's for TLS 1.2, {@code ECDHE-RSA-AES128-GCM-SHA256}, the RFC's for TLS 1.3,
 * {@code TLS_AES_128_GCM_SHA256}), {@code %DOWNSTREAM_TLS_SESSION_ID%}, and of the client's and the proxy's
 * certificates the subject and issuer (RFC 2253), the SHA-256 and SHA-1 fingerprints and serial (lower-case hex, whole
 * bytes, as {@code BN_bn2hex} writes it), the DNS, IP and email
 * SANs (joined by commas), the validity (ISO 8601, milliseconds, UTC) and the URL-encoded PEM. Each value is read from
 * the session when a format asks for it; null when the session has none (no client certificate, say). The Lua
 * filter's SSL connection object reads the same.
 */
public final class TlsDetails {
    private static final DateTimeFormatter VALIDITY =
            DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private final SSLSession session;

    private TlsDetails(SSLSession session) {
        this.session = session;
    }

    /** The details of {@code session}; null for none (a connection without TLS). */
    public static TlsDetails of(SSLSession session) {
        return session == null ? null : new TlsDetails(session);
    }

    public String version() {
        return session.getProtocol();
    }

    public String cipher() {
        String java = session.getCipherSuite();
        // OpenSSL's names, whose TLS 1.3 ones are the RFC's, as BoringSSL's since 2019 (not its older AEAD-...)
        String openSsl = java == null ? null : io.netty.handler.ssl.CipherSuiteConverter.toOpenSsl(java, false);
        return openSsl != null ? openSsl : java;
    }

    public String sessionId() {
        byte[] id = session.getId();
        return id == null || id.length == 0 ? null : HexFormat.of().formatHex(id);
    }

    /** The client's certificate (its own, first of its chain), or null. */
    public X509Certificate peer() {
        try {
            return first(session.getPeerCertificates());
        } catch (SSLPeerUnverifiedException e) {
            return null;
        }
    }

    /** The certificate this side presented, or null. */
    public X509Certificate local() {
        return first(session.getLocalCertificates());
    }

    private static X509Certificate first(Certificate[] chain) {
        return chain != null && chain.length > 0 && chain[0] instanceof X509Certificate c ? c : null;
    }

    public static String subject(X509Certificate c) {
        return c == null ? null : c.getSubjectX500Principal().getName(X500Principal.RFC2253);
    }

    public static String issuer(X509Certificate c) {
        return c == null ? null : c.getIssuerX500Principal().getName(X500Principal.RFC2253);
    }

    /** The certificate's fingerprint ({@link ForwardedClientCert#fingerprint}); one that cannot be made is unknown. */
    static String fingerprint(X509Certificate c, String algorithm) {
        return c == null ? null : ForwardedClientCert.fingerprint(c, algorithm);
    }

    public static String serial(X509Certificate c) {
        return c == null ? null : hex(c.getSerialNumber());
    }

    /** A serial as Envoy writes it ({@code BN_bn2hex}, lower-cased): whole bytes, so an even number of digits. */
    static String hex(BigInteger n) {
        if (n == null) {
            return null;
        }
        String h = n.toString(16);
        return h.length() % 2 == 0 || n.signum() == 0 ? h : "0" + h;
    }

    /** The SANs of {@code type} (2 DNS, 7 IP, 1 email), joined by commas as Envoy joins them; null for none. */
    static String sans(X509Certificate c, int type) {
        List<String> all = c == null ? List.of() : ForwardedClientCert.sans(c, type);
        return all.isEmpty() ? null : String.join(",", all);
    }

    static String validFrom(X509Certificate c) {
        return c == null ? null : VALIDITY.format(c.getNotBefore().toInstant());
    }

    static String validUntil(X509Certificate c) {
        return c == null ? null : VALIDITY.format(c.getNotAfter().toInstant());
    }

    static String pem(X509Certificate c) {
        return c == null ? null : ForwardedClientCert.urlEncodedPem(List.of(c));
    }
}
