package dev.inmesh.runtime.tls;

import dev.inmesh.api.config.listener.DownstreamTlsContext;
import dev.inmesh.runtime.stats.ListenerStats;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.SupportedCipherSuiteFilter;
import java.security.cert.CertificateException;
import java.util.List;
import java.util.Map;
import javax.net.ssl.ExtendedSSLSession;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SNIServerName;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import javax.net.ssl.X509KeyManager;

/**
 * A filter chain's {@link DownstreamTlsContext} compiled once per configuration into a server TLS context: its
 * certificate and key, the client certificate check (asked for only with a validation context, required only when
 * the context says so, as Envoy), the TLS versions, and ALPN as Envoy's listener selects it (the first of the
 * chain's protocols the client offers, {@link #PEER_EXCHANGE} aside; none in common, or none configured: no protocol
 * is negotiated and the handshake goes on). Once {@link #watchSdsFiles watched}, a changed file of Istio's file SDS
 * names, or a new version of a secret fetched over SDS, makes a new server TLS context for the handshakes that
 * follow, as Envoy's listener takes an SDS secret update.
 */
public final class DownstreamTls {
    /**
     * Istio's ALPN name for its in-band TCP metadata exchange: a peer that negotiates it sends a metadata frame as
     * the stream's first bytes and expects one back. Inmesh speaks no such frame, so it never agrees on this name
     * (as istiod's {@code DisableMxALPN} leaves it out) nor offers it upstream ({@code UpstreamTls}): the peer then
     * exchanges nothing, and its bytes reach the chain's filter as they are.
     */
    public static final String PEER_EXCHANGE = "istio-peer-exchange";

    /** The context and what it compiled to, replaced together when an SDS file changes. */
    private volatile Compiled current;

    /**
     * @param keyManager the certificate and key, for a TLS server that is not this class's ({@link ServerTls})
     * @param verifier the client certificate check, for such a server too
     */
    private record Compiled(DownstreamTlsContext context, SslContext sslContext, X509KeyManager keyManager,
                            PeerVerifier verifier) {}

    private DownstreamTls(Compiled compiled) {
        this.current = compiled;
    }

    /**
     * Compiles a context: parses its certificate, key and CAs, those of its SDS secrets as the secrets hold them now
     * ({@link TlsMaterial#currentPems}).
     *
     * @throws IllegalArgumentException naming the field whose PEM is not usable
     */
    public static DownstreamTls compile(DownstreamTlsContext c) {
        String[] pems = TlsMaterial.currentPems(c.sdsFiles(), c.certificateChain(), c.privateKey(), c.trustedCa());
        return new DownstreamTls(compiled(c.withPems(pems[0], pems[1], pems[2])));
    }

    /**
     * Watches the context's SDS files, if it has any: handshakes after a change present the new certificate and check
     * clients against the new CAs; a changed file that is not usable leaves the last good ones, with a warning naming
     * {@code owner} ("listener NAME").
     */
    public void watchSdsFiles(String owner) {
        DownstreamTlsContext c = current.context;
        SdsFileWatcher.watch(this, owner, c.sdsFiles(), c.certificateChain(), c.privateKey(), c.trustedCa(),
                DownstreamTls::reload);
    }

    private void reload(Map<String, String> texts) {
        DownstreamTlsContext c = current.context;
        String[] pems = TlsMaterial.sdsPems(c.sdsFiles(), texts, c.certificateChain(), c.privateKey(), c.trustedCa());
        current = compiled(c.withPems(pems[0], pems[1], pems[2]));
    }

    private static Compiled compiled(DownstreamTlsContext c) {
        var keys = TlsMaterial.keyManagers(c.certificateChain(), c.privateKey());
        var verifier = TlsMaterial.verifier(TlsMaterial.trustedCas(c.trustedCa(), false), c.subjectAltNames());
        ClientAuth auth = c.clientCertificateRequired() ? ClientAuth.REQUIRE
                : c.requestsClientCertificate() ? ClientAuth.OPTIONAL : ClientAuth.NONE;
        try {
            SslContext ssl = SslContextBuilder.forServer(keys).sslProvider(SslProvider.JDK).trustManager(verifier)
                    .clientAuth(auth).protocols(TlsMaterial.protocols(c.minVersion(), c.maxVersion()))
                    .ciphers(TlsMaterial.cipherSuites(c.cipherSuites(), c.maxVersion()),
                            SupportedCipherSuiteFilter.INSTANCE).build();
            X509KeyManager km = null;
            for (var m : keys.getKeyManagers()) {
                if (m instanceof X509KeyManager x) {
                    km = x;
                }
            }
            return new Compiled(c, ssl, km, verifier);
        } catch (SSLException | RuntimeException e) {
            throw new IllegalArgumentException("common_tls_context: " + e.getMessage(), e);
        }
    }

    /** The context this was compiled from. */
    public DownstreamTlsContext context() {
        return current.context;
    }

    /** The certificate and key of the handshakes that start now (the newest of the SDS files). */
    X509KeyManager keyManager() {
        return current.keyManager;
    }

    /** The client certificate check of the handshakes that start now (the newest CAs of the SDS files). */
    PeerVerifier verifier() {
        return current.verifier;
    }

    /** A TLS handler for one accepted connection, in server mode. */
    public SslHandler newHandler(ByteBufAllocator alloc) {
        Compiled c = current;
        SslHandler h = c.sslContext.newHandler(alloc);
        List<String> alpn = c.context.alpnProtocols();
        if (!alpn.isEmpty()) {
            h.engine().setHandshakeApplicationProtocolSelector((SSLEngine engine, List<String> offered) -> {
                for (String p : alpn) {
                    if (offered.contains(p) && !p.equals(PEER_EXCHANGE)) {
                        return p;
                    }
                }
                return ""; // nothing in common: no ALPN, the handshake goes on
            });
        }
        return h;
    }

    /**
     * Whether a finished handshake verified the client's certificate: one was sent and checked against the
     * validation context's CAs.
     */
    public boolean verifiedPeer(SSLEngine engine) {
        return verifiedPeer(engine.getSession());
    }

    /** Whether a finished handshake's session verified the client's certificate, as {@link #verifiedPeer(SSLEngine)}. */
    public boolean verifiedPeer(SSLSession session) {
        return current.context.trustedCa() != null && clientCertificate(session);
    }

    /** Whether the client of a finished handshake presented a certificate. */
    public static boolean clientCertificate(SSLEngine engine) {
        return clientCertificate(engine.getSession());
    }

    /** Whether the client of a finished handshake's session presented a certificate. */
    public static boolean clientCertificate(SSLSession session) {
        try {
            return session.getPeerCertificates().length > 0;
        } catch (SSLPeerUnverifiedException e) {
            return false;
        }
    }

    /**
     * Why a handshake failed, as Envoy's listener counts it: a client certificate whose SANs do not match, one whose
     * chain does not lead to the trusted CAs, a required one not sent, or another TLS error; null when no TLS error
     * ended it (the handshake timed out, or the client went away), which Envoy counts in none of them.
     */
    public static ListenerStats.TlsFailure failure(Throwable cause) {
        boolean tlsError = false;
        for (Throwable t : dev.inmesh.runtime.net.Causes.of(cause)) {
            if (t instanceof PeerVerifier.SanMismatchException) {
                return ListenerStats.TlsFailure.VERIFY_SAN;
            }
            if (t instanceof CertificateException) {
                return ListenerStats.TlsFailure.VERIFY_ERROR;
            }
            if (t instanceof SslHandshakeTimeoutException) {
                return null;
            }
            if (t instanceof SSLException) {
                tlsError = true;
                // the JDK's words for a required client certificate not sent (TLS 1.2 and 1.3)
                if (String.valueOf(t.getMessage()).contains("Empty client certificate chain")) {
                    return ListenerStats.TlsFailure.NO_CERTIFICATE;
                }
            }
        }
        return tlsError ? ListenerStats.TlsFailure.CONNECTION_ERROR : null;
    }

    /** The server name a client asked for in its handshake (SNI), or null. */
    public static String requestedServerName(SSLEngine engine) {
        return engine.getHandshakeSession() == null ? requestedServerName(engine.getSession()) : null;
    }

    /** The server name a client asked for in the handshake of a session (SNI), or null. */
    public static String requestedServerName(SSLSession session) {
        if (session instanceof ExtendedSSLSession s) {
            for (SNIServerName n : s.getRequestedServerNames()) {
                if (n instanceof SNIHostName h) {
                    return h.getAsciiName();
                }
            }
        }
        return null;
    }
}
