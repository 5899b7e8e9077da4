package dev.inmesh.runtime.tls;

import dev.inmesh.api.config.listener.DownstreamTlsContext;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.KeyCertOptions;
import io.vertx.core.net.TrustOptions;
import java.net.Socket;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import java.util.function.Supplier;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSession;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509KeyManager;

/**
 * A filter chain's TLS on an HTTP server Inmesh does not run: the application's own Vert.x server, which the in-JVM
 * inbound side wraps. What Vert.x's options fix when the server starts is the context's (client certificate asked
 * for or required, TLS versions, cipher suites, ALPN: {@code h2} and {@code http/1.1} as the chain lists them); the certificate,
 * the key and the client certificate check are taken at each handshake from the {@link DownstreamTls} the supplier
 * gives then. So a rotated SDS file or secret (which the configuration's {@code DownstreamTls} takes) and a new
 * configuration reach the next handshake without restarting the server or updating its options; this class starts
 * no watch of its own, and keeps no {@code DownstreamTls} but through the supplier.
 *
 * <p>The ALPN protocols a client offered, which filter chain selection matches ({@code istio-http/1.1} from an Istio
 * sidecar, where the server negotiates {@code http/1.1}), are kept on the session: {@link #offeredAlpn}.
 */
public final class ServerTls {
    /** The session value of the ALPN protocols the client offered. */
    private static final String OFFERED_ALPN = "dev.inmesh.alpn.offered";

    private ServerTls() {}

    /**
     * {@code options} with TLS on as {@code context} says, from the {@code DownstreamTls} {@code current} gives at
     * each handshake (a context with the same client certificate check, versions and ALPN; the supplier is called on
     * the handshake's thread, so it must not block).
     */
    public static HttpServerOptions apply(HttpServerOptions options, DownstreamTlsContext context,
                                          Supplier<DownstreamTls> current) {
        options.setSsl(true)
                .setKeyCertOptions(KeyCertOptions.wrap(new CurrentKeyManager(current)))
                .setTrustOptions(TrustOptions.wrap(new CurrentTrustManager(current)))
                .setClientAuth(context.clientCertificateRequired() ? ClientAuth.REQUIRED
                        : context.requestsClientCertificate() ? ClientAuth.REQUEST : ClientAuth.NONE)
                .setEnabledSecureTransportProtocols(TlsMaterial.protocols(context.minVersion(), context.maxVersion()))
                .setSslEngineOptions(new EngineHookOptions(ServerTls::recordOfferedAlpn));
        // the chain's cipher suites of TLS 1.2 and older (or Envoy's default list), TLS 1.3's all
        options.getEnabledCipherSuites().clear();
        TlsMaterial.cipherSuites(context.cipherSuites(), context.maxVersion()).forEach(options::addEnabledCipherSuite);
        List<HttpVersion> alpn = new ArrayList<>();
        for (String p : context.alpnProtocols()) {
            HttpVersion v = switch (p) {
                case "h2" -> HttpVersion.HTTP_2;
                case "http/1.1" -> HttpVersion.HTTP_1_1;
                case "http/1.0" -> HttpVersion.HTTP_1_0;
                default -> null; // a name a Vert.x HTTP server cannot speak
            };
            if (v != null && !alpn.contains(v)) {
                alpn.add(v);
            }
        }
        // as Envoy's listener: the first of the chain's protocols the client offers; none configured, no ALPN
        options.setUseAlpn(!alpn.isEmpty());
        if (!alpn.isEmpty()) {
            options.setAlpnVersions(alpn);
        }
        return options;
    }

    /**
     * Has the JDK's TLS servers leave the SNI extension alone ({@code jdk.tls.server.disableExtensions=server_name})
     * unless the JVM was given a value: they refuse a ClientHello whose SNI is no DNS host name with an
     * illegal_parameter alert, and an Istio sidecar sends its mTLS cluster's {@code outbound_.9080_._.HOST}. The JDK
     * reads the property once, at its first TLS server handshake: a JVM whose TLS servers have run before keeps
     * what it read then. Handshakes then parse no SNI, so a chain's requested server name is what the caller's
     * TLS inspector found (the standalone proxy), or none (in-JVM).
     */
    public static void acceptIstioServerNames() {
        if (System.getProperty(SERVER_DISABLED_EXTENSIONS) == null) {
            System.setProperty(SERVER_DISABLED_EXTENSIONS, "server_name");
        }
    }

    /** The JDK's system property of the TLS extensions its servers ignore. */
    public static final String SERVER_DISABLED_EXTENSIONS = "jdk.tls.server.disableExtensions";

    /**
     * The ALPN protocols the client of a session offered, in its order: empty when it offered none, null when the
     * session was not made by a server of {@link #apply} (not known).
     */
    @SuppressWarnings("unchecked")
    public static List<String> offeredAlpn(SSLSession session) {
        return session == null ? null : (List<String>) session.getValue(OFFERED_ALPN);
    }

    /**
     * Wraps the engine's ALPN choice (Vert.x's, or none) to keep what the client offered on the handshake's session,
     * which becomes the connection's; a client that offers no ALPN is never asked about, and keeps the empty list. A
     * client offering none of the server's protocols gets no ALPN rather than Vert.x's refusal.
     */
    private static void recordOfferedAlpn(SSLEngine engine) {
        BiFunction<SSLEngine, List<String>, String> choice = engine.getHandshakeApplicationProtocolSelector();
        engine.setHandshakeApplicationProtocolSelector((e, offered) -> {
            SSLSession s = e.getHandshakeSession();
            if (s != null) {
                s.putValue(OFFERED_ALPN, List.copyOf(offered));
            }
            String chosen = choice == null ? "" : choice.apply(e, offered);
            // nothing in common: no ALPN, the handshake goes on, as Envoy's listener (alpnSelectCallback answers
            // SSL_TLSEXT_ERR_NOACK), where the JDK's server sends a no_application_protocol alert for Vert.x's null
            return chosen == null ? "" : chosen;
        });
    }

    /**
     * The certificate and key of the current {@code DownstreamTls}. The JDK picks an alias, then asks for its chain
     * and key: an alias names the key manager it came from, so that a rotation between the calls cannot pair one
     * certificate with another's key.
     */
    private static final class CurrentKeyManager extends X509ExtendedKeyManager {
        private final Supplier<DownstreamTls> current;
        /** The key managers aliases were last chosen from, the newest first. */
        private volatile List<X509KeyManager> recent = List.of();

        CurrentKeyManager(Supplier<DownstreamTls> current) {
            this.current = current;
        }

        @Override
        public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
            X509KeyManager km = current.get().keyManager();
            String alias = km instanceof X509ExtendedKeyManager x ? x.chooseEngineServerAlias(keyType, issuers, engine)
                    : km.chooseServerAlias(keyType, issuers, null);
            return tagged(km, alias);
        }

        @Override
        public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
            X509KeyManager km = current.get().keyManager();
            return tagged(km, km.chooseServerAlias(keyType, issuers, socket));
        }

        @Override
        public String[] getServerAliases(String keyType, Principal[] issuers) {
            X509KeyManager km = current.get().keyManager();
            String[] aliases = km.getServerAliases(keyType, issuers);
            if (aliases == null) {
                return null;
            }
            String[] out = new String[aliases.length];
            for (int i = 0; i < aliases.length; i++) {
                out[i] = tagged(km, aliases[i]);
            }
            return out;
        }

        @Override
        public X509Certificate[] getCertificateChain(String alias) {
            X509KeyManager km = tagOf(alias);
            return km == null ? null : km.getCertificateChain(untagged(alias));
        }

        @Override
        public PrivateKey getPrivateKey(String alias) {
            X509KeyManager km = tagOf(alias);
            return km == null ? null : km.getPrivateKey(untagged(alias));
        }

        @Override
        public String[] getClientAliases(String keyType, Principal[] issuers) {
            return null; // a server's
        }

        @Override
        public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
            return null;
        }

        private String tagged(X509KeyManager km, String alias) {
            if (alias == null) {
                return null;
            }
            List<X509KeyManager> r = recent;
            if (r.isEmpty() || r.get(0) != km) {
                synchronized (this) {
                    r = recent;
                    if (r.isEmpty() || r.get(0) != km) {
                        // the one before stays for a handshake that chose from it just before the rotation
                        recent = r.isEmpty() ? List.of(km) : List.of(km, r.get(0));
                    }
                }
            }
            return Integer.toHexString(System.identityHashCode(km)) + "/" + alias;
        }

        private X509KeyManager tagOf(String alias) {
            int slash = alias == null ? -1 : alias.indexOf('/');
            if (slash < 0) {
                return null;
            }
            String tag = alias.substring(0, slash);
            for (X509KeyManager km : recent) {
                if (Integer.toHexString(System.identityHashCode(km)).equals(tag)) {
                    return km;
                }
            }
            return null;
        }

        private static String untagged(String alias) {
            return alias.substring(alias.indexOf('/') + 1);
        }
    }

    /** The client certificate check of the current {@code DownstreamTls}: its chain check and SAN matchers. */
    private static final class CurrentTrustManager extends X509ExtendedTrustManager {
        private final Supplier<DownstreamTls> current;

        CurrentTrustManager(Supplier<DownstreamTls> current) {
            this.current = current;
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            current.get().verifier().checkClientTrusted(chain, authType);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            current.get().verifier().checkClientTrusted(chain, authType, socket);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            current.get().verifier().checkClientTrusted(chain, authType, engine);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            throw new CertificateException("a server's check of its clients verifies no server");
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
                throws CertificateException {
            checkServerTrusted(chain, authType);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
                throws CertificateException {
            checkServerTrusted(chain, authType);
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return current.get().verifier().getAcceptedIssuers();
        }
    }
}
