package dev.inmesh.runtime.tls;

import dev.inmesh.api.config.listener.DownstreamTlsContext;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import java.util.List;
import javax.net.ssl.ExtendedSSLSession;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SNIServerName;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;

/**
 * A filter chain's {@link DownstreamTlsContext} compiled once per configuration into a server TLS context: its
 * certificate and key, the client certificate check (asked for only with a validation context, required only when
 * the context says so, as Envoy), the TLS versions, and ALPN as Envoy's listener selects it (the first of the
 * chain's protocols the client offers; none in common, or none configured: no protocol is negotiated and the
 * handshake goes on).
 */
public final class DownstreamTls {
    private final DownstreamTlsContext context;
    private final SslContext sslContext;

    private DownstreamTls(DownstreamTlsContext context, SslContext sslContext) {
        this.context = context;
        this.sslContext = sslContext;
    }

    /**
     * Compiles a context: parses its certificate, key and CAs.
     *
     * @throws IllegalArgumentException naming the field whose PEM is not usable
     */
    public static DownstreamTls compile(DownstreamTlsContext c) {
        var keys = TlsMaterial.keyManagers(c.certificateChain(), c.privateKey());
        var verifier = TlsMaterial.verifier(TlsMaterial.trustedCas(c.trustedCa(), false), c.subjectAltNames());
        ClientAuth auth = c.clientCertificateRequired() ? ClientAuth.REQUIRE
                : c.requestsClientCertificate() ? ClientAuth.OPTIONAL : ClientAuth.NONE;
        try {
            SslContext ssl = SslContextBuilder.forServer(keys).sslProvider(SslProvider.JDK).trustManager(verifier)
                    .clientAuth(auth).protocols(TlsMaterial.protocols(c.minVersion(), c.maxVersion())).build();
            return new DownstreamTls(c, ssl);
        } catch (SSLException | RuntimeException e) {
            throw new IllegalArgumentException("common_tls_context: " + e.getMessage(), e);
        }
    }

    /** The context this was compiled from. */
    public DownstreamTlsContext context() {
        return context;
    }

    /** A TLS handler for one accepted connection, in server mode. */
    public SslHandler newHandler(ByteBufAllocator alloc) {
        SslHandler h = sslContext.newHandler(alloc);
        List<String> alpn = context.alpnProtocols();
        if (!alpn.isEmpty()) {
            h.engine().setHandshakeApplicationProtocolSelector((SSLEngine engine, List<String> offered) -> {
                for (String p : alpn) {
                    if (offered.contains(p)) {
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
     * validation context's CAs (Istio's {@code connection_security_policy} {@code mutual_tls}).
     */
    public boolean verifiedPeer(SSLEngine engine) {
        if (context.trustedCa() == null) {
            return false;
        }
        try {
            return engine.getSession().getPeerCertificates().length > 0;
        } catch (SSLPeerUnverifiedException e) {
            return false;
        }
    }

    /** The server name a client asked for in its handshake (SNI), or null. */
    public static String requestedServerName(SSLEngine engine) {
        if (engine.getHandshakeSession() == null && engine.getSession() instanceof ExtendedSSLSession s) {
            for (SNIServerName n : s.getRequestedServerNames()) {
                if (n instanceof SNIHostName h) {
                    return h.getAsciiName();
                }
            }
        }
        return null;
    }
}
