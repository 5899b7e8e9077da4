package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SanType;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.runtime.router.StringMatchers;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.DelegatingSslContext;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.util.NetUtil;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.core.net.JdkSSLEngineOptions;
import io.vertx.core.net.KeyCertOptions;
import io.vertx.core.net.TrustOptions;
import io.vertx.core.net.impl.KeyStoreHelper;
import io.vertx.core.spi.tls.SslContextFactory;
import java.net.InetAddress;
import java.net.Socket;
import java.net.UnknownHostException;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Stream;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * A cluster's {@link UpstreamTlsContext} compiled once per configuration: its key material and trust manager, made
 * from the PEMs the parser read, and the SNI to send. It sets up the host pools' Vert.x clients as Envoy's TLS
 * transport socket connects: no server verification without trusted CAs, no host name verification, SAN matchers
 * only when configured, and the configured SNI or none at all; with {@code auto_sni} or {@code auto_san_validation},
 * the SNI or a SAN to check from the host of the pool's requests (the pools are then per host name). Equal for equal
 * contexts, so that a cluster update that keeps its TLS settings keeps its pools.
 */
public final class UpstreamTls {
    private final UpstreamTlsContext context;
    private final KeyManagerFactory keyManagers;
    private final Verifier trustManager;
    /** For connections that are bytes, not HTTP (the standalone proxy's tcp_proxy and WebSocket relays). */
    private final SslContext relayContext;

    private UpstreamTls(UpstreamTlsContext context, KeyManagerFactory keyManagers,
                        Verifier trustManager) {
        this.context = context;
        this.keyManagers = keyManagers;
        this.trustManager = trustManager;
        try {
            this.relayContext = SslContextBuilder.forClient().sslProvider(SslProvider.JDK)
                    .trustManager(context.autoSanValidation() ? trustManager.withEngineHost() : trustManager)
                    .keyManager(keyManagers).protocols(protocols(context)).build();
        } catch (SSLException e) {
            throw new IllegalArgumentException("common_tls_context: " + e.getMessage(), e);
        }
    }

    /**
     * Compiles a context: parses its certificates and key.
     *
     * @throws IllegalArgumentException naming the field whose PEM is not usable
     */
    public static UpstreamTls compile(UpstreamTlsContext c) {
        KeyManagerFactory kmf = null;
        if (c.certificateChain() != null) {
            try {
                KeyStore ks = KeyStoreHelper.loadKeyCert(List.of(Buffer.buffer(c.privateKey())),
                        List.of(Buffer.buffer(c.certificateChain())));
                kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                kmf.init(ks, KeyStoreHelper.DUMMY_PASSWORD.toCharArray());
            } catch (Exception e) {
                throw new IllegalArgumentException("tls_certificates: not a usable PEM certificate chain and private "
                        + "key: " + e.getMessage(), e);
            }
        }
        X509TrustManager chain = null;
        if (c.trustedCa() != null || c.systemRootCerts()) {
            try {
                TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                if (c.trustedCa() != null) {
                    KeyStore cas = KeyStoreHelper.loadCA(Stream.of(Buffer.buffer(c.trustedCa())));
                    if (cas.size() == 0) {
                        throw new IllegalArgumentException("no certificate in it");
                    }
                    tmf.init(cas);
                } else {
                    tmf.init((KeyStore) null); // the JVM's trusted certificate authorities
                }
                for (TrustManager tm : tmf.getTrustManagers()) {
                    if (tm instanceof X509TrustManager x) {
                        chain = x;
                    }
                }
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("validation_context.trusted_ca: " + e.getMessage(), e);
            } catch (Exception e) {
                throw new IllegalArgumentException("validation_context.trusted_ca: not usable PEM certificates: "
                        + e.getMessage(), e);
            }
        }
        List<SanPredicate> sans = new ArrayList<>();
        for (UpstreamTlsContext.SubjectAltNameMatcher m : c.subjectAltNames()) {
            sans.add(new SanPredicate(m.type(), m.matcher(), StringMatchers.compile(m.matcher())));
        }
        return new UpstreamTls(c, kmf, new Verifier(chain, List.copyOf(sans), null));
    }

    /** The context this was compiled from. */
    public UpstreamTlsContext context() {
        return context;
    }

    /**
     * Turns TLS on in a host pool's client options, speaking HTTP/2 through ALPN when {@code http2} (the protocols
     * offered are the context's, h2 and http/1.1 when it lists none). {@code requestHost} is the host of the
     * requests the pool carries when the context takes the SNI ({@code auto_sni}) or a SAN to check
     * ({@code auto_san_validation}) from it, else null.
     */
    void apply(HttpClientOptions options, boolean http2, String requestHost) {
        boolean byHost = requestHost != null;
        String sni = byHost && context.autoSni() ? requestHost : context.sni();
        Verifier verifier = byHost && context.autoSanValidation() ? trustManager.withHost(requestHost) : trustManager;
        options.setSsl(true)
                .setVerifyHost(false) // Envoy checks no host name, only the SAN matchers
                .setTrustOptions(TrustOptions.wrap(verifier))
                .setEnabledSecureTransportProtocols(protocols(context))
                .setSslEngineOptions(new SniEngineOptions(sni));
        if (keyManagers != null) {
            options.setKeyCertOptions(KeyCertOptions.wrap(keyManagers));
        }
        if (http2) {
            List<HttpVersion> alpn = new ArrayList<>();
            for (String p : context.alpnProtocols()) {
                alpn.add("h2".equals(p) ? HttpVersion.HTTP_2 : HttpVersion.HTTP_1_1);
            }
            options.setUseAlpn(true).setAlpnVersions(alpn.isEmpty()
                    ? List.of(HttpVersion.HTTP_2, HttpVersion.HTTP_1_1) : alpn);
        }
    }

    /**
     * A TLS handler for a byte relay's upstream connection, as the HTTP pools' connections: the same verification,
     * client certificate, versions and SNI; the handshake must end within {@code handshakeTimeoutMillis}.
     * {@code requestHost} is the host of the request a WebSocket relay carries (null for tcp_proxy): with
     * {@code auto_sni} its SNI, with {@code auto_san_validation} the SAN its server must have, as for an HTTP pool's.
     */
    public SslHandler relayHandler(ByteBufAllocator alloc, long handshakeTimeoutMillis, String requestHost,
                                   int port) {
        boolean byHost = requestHost != null && context.perRequestHost();
        // the engine's peer host is the name the relay's verifier checks (auto_san_validation)
        SslHandler h = byHost && context.autoSanValidation() ? relayContext.newHandler(alloc, requestHost, port)
                : relayContext.newHandler(alloc);
        SniEngineOptions.configure(h.engine(), byHost && context.autoSni() ? requestHost : context.sni());
        h.setHandshakeTimeoutMillis(handshakeTimeoutMillis);
        return h;
    }

    private static Set<String> protocols(UpstreamTlsContext c) {
        Set<String> versions = new LinkedHashSet<>();
        for (UpstreamTlsContext.TlsVersion v : UpstreamTlsContext.TlsVersion.values()) {
            if (v.compareTo(c.minVersion()) >= 0 && v.compareTo(c.maxVersion()) <= 0) {
                versions.add(v.javaName());
            }
        }
        return versions;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof UpstreamTls t && t.context.equals(context);
    }

    @Override
    public int hashCode() {
        return context.hashCode();
    }

    /**
     * Whether a DNS SAN names {@code name}, ignoring case: RFC 6125 6.4.3, as Envoy, {@code *.example.com} stands for
     * exactly one label before example.com.
     */
    static boolean dnsNameMatches(String name, String san) {
        if (san.startsWith("*.")) {
            int dot = name.indexOf('.');
            return dot > 0 && name.substring(dot).equalsIgnoreCase(san.substring(1));
        }
        return san.equalsIgnoreCase(name);
    }

    /**
     * A SAN as Envoy prints it to match it: an IPv6 address in its shortest form ({@code 2001:db8::1}), where the JDK
     * gives every group ({@code 2001:db8:0:0:0:0:0:1}); any other as it is.
     */
    static String sanText(int tag, String value) {
        if (tag != 7 || value.indexOf(':') < 0) {
            return value;
        }
        byte[] address = NetUtil.createByteArrayFromIpAddressString(value);
        try {
            return address == null ? value : NetUtil.toAddressString(InetAddress.getByAddress(address));
        } catch (UnknownHostException e) {
            return value;
        }
    }

    private record SanPredicate(SanType type, StringMatcher matcher, Predicate<String> test) {
        /** Whether one SAN of the certificate (its GeneralName tag and value) matches. */
        boolean matches(int tag, String value) {
            if (tag != tag(type)) {
                return false;
            }
            if (type == SanType.DNS && matcher instanceof StringMatcher.Exact e && value.startsWith("*.")) {
                return dnsNameMatches(e.value(), value);
            }
            return test.test(value);
        }

        private static int tag(SanType t) {
            return switch (t) {
                case EMAIL -> 1;
                case DNS -> 2;
                case URI -> 6;
                case IP_ADDRESS -> 7;
            };
        }
    }

    /**
     * The server's certificate check: the chain against the trusted CAs (none: anything goes, as Envoy without a
     * validation context), then the request's host ({@code auto_san_validation}, checked with or without trusted CAs,
     * as Envoy's SAN list override), then the SAN matchers; never the connection's address.
     */
    private static final class Verifier extends X509ExtendedTrustManager {
        private final X509TrustManager chain;
        private final List<SanPredicate> sans;
        /** The name a SAN must match (a request's host), or null. */
        private final String host;
        /** Whether the name a SAN must match is the engine's peer host, when it has one (a relay's). */
        private final boolean engineHost;

        Verifier(X509TrustManager chain, List<SanPredicate> sans, String host) {
            this(chain, sans, host, false);
        }

        private Verifier(X509TrustManager chain, List<SanPredicate> sans, String host, boolean engineHost) {
            this.chain = chain;
            this.sans = sans;
            this.host = host;
            this.engineHost = engineHost;
        }

        Verifier withHost(String name) {
            return new Verifier(chain, sans, name);
        }

        Verifier withEngineHost() {
            return new Verifier(chain, sans, null, true);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] certs, String authType) throws CertificateException {
            if (chain != null) {
                chain.checkServerTrusted(certs, authType); // PKIX without endpoint identification
            }
            if (host != null && !hostMatches(certs[0])) {
                throw new CertificateException("no subject alternative name of the server's certificate matches "
                        + "the request's host " + host + " (auto_san_validation)");
            }
            if (!sans.isEmpty() && !sanMatches(certs[0])) {
                throw new CertificateException("no subject alternative name of the server's certificate matches "
                        + "the cluster's SAN matchers");
            }
        }

        /** Whether a SAN is the host: a DNS SAN as a name (a wildcard for one label), any other type exactly. */
        private boolean hostMatches(X509Certificate cert) throws CertificateException {
            Collection<List<?>> names = cert.getSubjectAlternativeNames();
            if (names == null) {
                return false;
            }
            for (List<?> n : names) {
                if (n.size() >= 2 && n.get(0) instanceof Integer tag && n.get(1) instanceof String value
                        && (tag == 2 ? dnsNameMatches(host, value) : sanText(tag, value).equals(host))) {
                    return true;
                }
            }
            return false;
        }

        private boolean sanMatches(X509Certificate cert) throws CertificateException {
            Collection<List<?>> names = cert.getSubjectAlternativeNames();
            if (names == null) {
                return false;
            }
            for (List<?> n : names) {
                if (n.size() >= 2 && n.get(0) instanceof Integer tag && n.get(1) instanceof String value) {
                    String text = sanText(tag, value);
                    for (SanPredicate p : sans) {
                        if (p.matches(tag, text)) {
                            return true;
                        }
                    }
                }
            }
            return false;
        }

        @Override
        public void checkServerTrusted(X509Certificate[] certs, String authType, Socket socket)
                throws CertificateException {
            checkServerTrusted(certs, authType);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] certs, String authType, SSLEngine engine)
                throws CertificateException {
            if (engineHost && engine != null && engine.getPeerHost() != null) {
                withHost(engine.getPeerHost()).checkServerTrusted(certs, authType);
                return;
            }
            checkServerTrusted(certs, authType);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] certs, String authType) throws CertificateException {
            throw new CertificateException("an upstream connection does not take client certificates");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] certs, String authType, Socket socket)
                throws CertificateException {
            checkClientTrusted(certs, authType);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] certs, String authType, SSLEngine engine)
                throws CertificateException {
            checkClientTrusted(certs, authType);
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return chain == null ? new X509Certificate[0] : chain.getAcceptedIssuers();
        }
    }

    /**
     * The JDK engine, with the pool's SNI in every handshake (none when it is empty, even for a host known by name),
     * whatever host Vert.x would name: Envoy sends {@code sni} as configured, or the request's host with
     * {@code auto_sni}.
     */
    private static final class SniEngineOptions extends JdkSSLEngineOptions {
        private final String sni;

        SniEngineOptions(String sni) {
            this.sni = sni;
        }

        /** The SNI (none when empty) and no host name check on an engine. */
        static void configure(SSLEngine engine, String sni) {
            SSLParameters p = engine.getSSLParameters();
            p.setServerNames(sni.isEmpty() || !validHostName(sni) ? List.of() : List.of(new SNIHostName(sni)));
            p.setEndpointIdentificationAlgorithm(null);
            engine.setSSLParameters(p);
        }

        /** Whether a name can be sent as SNI (an IPv6 literal from a request's host cannot). */
        private static boolean validHostName(String name) {
            try {
                new SNIHostName(name);
                return true;
            } catch (IllegalArgumentException e) {
                return false;
            }
        }

        @Override
        public JdkSSLEngineOptions copy() {
            return new SniEngineOptions(sni);
        }

        @Override
        public SslContextFactory sslContextFactory() {
            SslContextFactory base = super.sslContextFactory();
            return new SslContextFactory() {
                @Override
                public SslContextFactory useAlpn(boolean useAlpn) {
                    base.useAlpn(useAlpn);
                    return this;
                }

                @Override
                public SslContextFactory clientAuth(ClientAuth clientAuth) {
                    base.clientAuth(clientAuth);
                    return this;
                }

                @Override
                public SslContextFactory forClient(boolean forClient) {
                    base.forClient(forClient);
                    return this;
                }

                @Override
                public SslContextFactory keyMananagerFactory(KeyManagerFactory kmf) {
                    base.keyMananagerFactory(kmf);
                    return this;
                }

                @Override
                public SslContextFactory trustManagerFactory(TrustManagerFactory tmf) {
                    base.trustManagerFactory(tmf);
                    return this;
                }

                @Override
                public SslContextFactory enabledCipherSuites(Set<String> suites) {
                    base.enabledCipherSuites(suites);
                    return this;
                }

                @Override
                public SslContextFactory applicationProtocols(List<String> protocols) {
                    base.applicationProtocols(protocols);
                    return this;
                }

                @Override
                public SslContextFactory serverName(String serverName) {
                    base.serverName(serverName);
                    return this;
                }

                @Override
                public SslContext create() throws SSLException {
                    return new DelegatingSslContext(base.create()) {
                        @Override
                        protected void initEngine(SSLEngine engine) {
                            configure(engine, sni);
                        }
                    };
                }
            };
        }
    }
}
