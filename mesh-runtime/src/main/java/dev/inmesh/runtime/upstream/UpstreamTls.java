package dev.inmesh.runtime.upstream;

import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.runtime.tls.EngineHookOptions;
import dev.inmesh.runtime.tls.PeerVerifier;
import dev.inmesh.runtime.tls.TlsMaterial;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import io.netty.handler.ssl.SupportedCipherSuiteFilter;
import io.netty.util.NetUtil;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.net.KeyCertOptions;
import io.vertx.core.net.TrustOptions;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SNIServerName;
import javax.net.ssl.StandardConstants;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
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
    private final PeerVerifier trustManager;
    /** Printable ASCII but an IP literal's colons and brackets. */
    private static final Pattern SNI_TEXT = Pattern.compile("[!-~&&[^:\\[\\]]]+");
    /** Istio's ALPN name for in-mesh traffic (pilot's ALPNInMesh), which its mTLS contexts list. */
    static final String ISTIO_IN_MESH = "istio";
    /** For connections that are bytes, not HTTP (the standalone proxy's tcp_proxy and WebSocket relays). */
    private final SslContext relayContext;
    /** What a tcp_proxy connection offers: the context's ALPN protocols but {@code istio-peer-exchange}. */
    private final List<String> tcpAlpn;

    private UpstreamTls(UpstreamTlsContext context, KeyManagerFactory keyManagers,
                        PeerVerifier trustManager) {
        this.context = context;
        this.keyManagers = keyManagers;
        this.trustManager = trustManager;
        this.tcpAlpn = context.alpnProtocols().stream()
                .filter(p -> !p.equals(dev.inmesh.runtime.tls.DownstreamTls.PEER_EXCHANGE)).toList();
        try {
            this.relayContext = SslContextBuilder.forClient().sslProvider(SslProvider.JDK)
                    .trustManager(context.autoSanValidation() ? trustManager.withEngineHost() : trustManager)
                    .keyManager(keyManagers).protocols(protocols(context))
                    .ciphers(ciphers(context), SupportedCipherSuiteFilter.INSTANCE).build();
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
        KeyManagerFactory kmf = c.certificateChain() == null ? null
                : TlsMaterial.keyManagers(c.certificateChain(), c.privateKey());
        X509TrustManager chain = TlsMaterial.trustedCas(c.trustedCa(), c.systemRootCerts());
        return new UpstreamTls(c, kmf, TlsMaterial.verifier(chain, c.subjectAltNames()));
    }

    /**
     * The host of a request's authority, without its port (null: none), as {@code auto_sni} and
     * {@code auto_san_validation} take it.
     */
    public static String requestHost(String authority) {
        io.vertx.core.net.HostAndPort hp = dev.inmesh.runtime.net.Authorities.parse(authority);
        return hp == null ? null : hp.host();
    }

    /** The context this was compiled from. */
    public UpstreamTlsContext context() {
        return context;
    }

    /**
     * Turns TLS on in a host pool's client options, speaking HTTP/2 through ALPN when {@code http2}, offering the
     * protocols of {@link #httpAlpn}. {@code requestHost} is the host of the requests the pool carries when the
     * context takes the SNI ({@code auto_sni}) or a SAN to check ({@code auto_san_validation}) from it, else null.
     * The handshake must end within {@code handshakeTimeoutMillis}: the cluster's {@code connect_timeout}, which
     * covers it as Envoy's connection is connected once its TLS handshake is done.
     */
    void apply(HttpClientOptions options, boolean http2, String requestHost, long handshakeTimeoutMillis) {
        options.setVerifyHost(false); // Envoy checks no host name, only the SAN matchers
        applyTo(options, httpAlpn(http2), false, requestHost, handshakeTimeoutMillis);
    }

    /**
     * Turns TLS on in the options of a WebSocket client's connections, as in an HTTP/1.1 host pool's ({@link #apply}):
     * the same verification, client certificate, versions, suites, SNI and ALPN (offered by the engine itself:
     * Vert.x's WebSocket client turns its own ALPN off).
     */
    public void apply(io.vertx.core.http.WebSocketClientOptions options, String requestHost,
                      long handshakeTimeoutMillis) {
        options.setVerifyHost(false);
        applyTo(options, httpAlpn(false), true, requestHost, handshakeTimeoutMillis);
    }

    /** {@code engineAlpn}: the engine offers {@code alpn} itself, else Vert.x's ALPN does. */
    private void applyTo(io.vertx.core.net.ClientOptionsBase options, List<String> alpn, boolean engineAlpn,
                         String requestHost, long handshakeTimeoutMillis) {
        boolean byHost = requestHost != null;
        String sni = sni(byHost ? requestHost : null);
        PeerVerifier verifier = byHost && context.autoSanValidation() ? trustManager.withHost(requestHost)
                : trustManager;
        options.setSsl(true)
                .setTrustOptions(TrustOptions.wrap(verifier))
                .setEnabledSecureTransportProtocols(protocols(context))
                .setSslEngineOptions(new EngineHookOptions(engine -> configure(engine, sni,
                        engineAlpn && !alpn.isEmpty() ? alpn : null)))
                .setSslHandshakeTimeout(Math.max(1, handshakeTimeoutMillis))
                .setSslHandshakeTimeoutUnit(java.util.concurrent.TimeUnit.MILLISECONDS);
        if (keyManagers != null) {
            options.setKeyCertOptions(KeyCertOptions.wrap(keyManagers));
        }
        options.getSslOptions().getEnabledCipherSuites().clear();
        ciphers(context).forEach(options.getSslOptions()::addEnabledCipherSuite);
        if (!alpn.isEmpty() && !engineAlpn) {
            // the names as they are, Istio's among them; the connection speaks HTTP/2 when the server picks h2
            options.setUseAlpn(true);
            options.getSslOptions().setApplicationLayerProtocols(alpn);
        }
    }

    /**
     * The protocols an HTTP connection offers through ALPN. A context with Istio's in-mesh name {@code istio} (an
     * ISTIO_MUTUAL cluster's {@code istio-peer-exchange}, {@code istio}) offers what Istio's {@code istio.alpn}
     * filter, which Istio puts in every sidecar's outbound connection manager, sets for the upstream protocol:
     * {@code istio-h2, istio, h2} for HTTP/2 and {@code istio-http/1.1, istio, http/1.1} for HTTP/1.1, which an
     * Istio sidecar's inbound mTLS chains match to pick their HTTP chain. Otherwise, for HTTP/2, the context's
     * protocols (h2 alone when it lists none, as Envoy's HTTP/2 pool offers its protocol); for HTTP/1.1 none.
     */
    List<String> httpAlpn(boolean http2) {
        if (context.alpnProtocols().contains(ISTIO_IN_MESH)) {
            return istioHttpAlpn(http2);
        }
        if (!http2) {
            return List.of();
        }
        // as Envoy's HTTP/2 pool, whose protocol is the ALPN of a context that lists none: the cluster's codec is
        // HTTP/2, not the server's choice
        return context.alpnProtocols().isEmpty() ? List.of("h2") : context.alpnProtocols();
    }

    /**
     * What Istio's {@code istio.alpn} filter has an in-mesh HTTP connection offer: {@code istio-h2, istio, h2} for
     * HTTP/2, {@code istio-http/1.1, istio, http/1.1} for HTTP/1.1.
     */
    public static List<String> istioHttpAlpn(boolean http2) {
        return http2 ? List.of("istio-h2", ISTIO_IN_MESH, "h2") : List.of("istio-http/1.1", ISTIO_IN_MESH, "http/1.1");
    }

    /**
     * A TLS handler for a byte relay's upstream connection, as the HTTP pools' connections: the same verification,
     * client certificate, versions and SNI; the handshake must end within {@code handshakeTimeoutMillis}.
     * {@code requestHost} is the host of the request a WebSocket relay carries (null for tcp_proxy): with
     * {@code auto_sni} its SNI, with {@code auto_san_validation} the SAN its server must have, as for an HTTP pool's.
     * A tcp_proxy connection offers the context's ALPN protocols but {@code istio-peer-exchange} (of Istio's
     * {@code istio-peer-exchange, istio}, {@code istio} alone, which an Istio sidecar's inbound TCP chains match as
     * well: a sidecar that agreed on {@code istio-peer-exchange} would send its TCP metadata exchange frame first,
     * which nothing here reads), a WebSocket relay those of an HTTP/1.1 connection.
     */
    public SslHandler relayHandler(ByteBufAllocator alloc, long handshakeTimeoutMillis, String requestHost,
                                   int port) {
        boolean byHost = requestHost != null && context.perRequestHost();
        // the engine's peer host is the name the relay's verifier checks (auto_san_validation)
        SslHandler h = byHost && context.autoSanValidation() ? relayContext.newHandler(alloc, requestHost, port)
                : relayContext.newHandler(alloc);
        configure(h.engine(), sni(byHost ? requestHost : null),
                requestHost == null ? tcpAlpn : httpAlpn(false));
        h.setHandshakeTimeoutMillis(handshakeTimeoutMillis);
        return h;
    }

    /**
     * The SNI of a connection for the requests of {@code requestHost} (null: no host): that host with
     * {@code auto_sni}, but for an IP address, which Envoy does not send as SNI; otherwise the context's {@code sni}.
     */
    private String sni(String requestHost) {
        boolean ip = requestHost != null && (NetUtil.isValidIpV4Address(requestHost)
                || NetUtil.isValidIpV6Address(requestHost));
        return requestHost != null && context.autoSni() && !ip ? requestHost : context.sni();
    }

    private static Set<String> protocols(UpstreamTlsContext c) {
        return TlsMaterial.protocols(c.minVersion(), c.maxVersion());
    }

    /** The JDK's names of the suites the context offers: its list (or Envoy's default) and TLS 1.3's. */
    private static List<String> ciphers(UpstreamTlsContext c) {
        return TlsMaterial.cipherSuites(c.cipherSuites(), c.maxVersion());
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
     * The SNI a name is sent as, or null for none (an empty name, or an IPv6 literal from a request's host). A name
     * the JDK's {@link SNIHostName} refuses, as the {@code outbound_.9080_._.reviews.default.svc.cluster.local} or
     * {@code outbound|9080||reviews.default.svc.cluster.local} of Istio's mTLS clusters, goes as it is in a
     * host_name entry, as Envoy sends its {@code sni}.
     */
    public static SNIServerName serverName(String name) {
        if (name.isEmpty()) {
            return null;
        }
        try {
            return new SNIHostName(name);
        } catch (IllegalArgumentException e) {
            if (!SNI_TEXT.matcher(name).matches()) {
                return null;
            }
            return new SNIServerName(StandardConstants.SNI_HOST_NAME, name.getBytes(StandardCharsets.US_ASCII)) {};
        }
    }

    /**
     * The SNI (none when empty) and no host name check on an engine, which offers {@code alpn} when it is not empty
     * (null: as the engine was made). Each engine of a pool gets the pool's SNI in every handshake (none when it is
     * empty, even for a host known by name), whatever host Vert.x would name: Envoy sends {@code sni} as configured,
     * or the request's host with {@code auto_sni}.
     */
    static void configure(SSLEngine engine, String sni, List<String> alpn) {
        SSLParameters p = engine.getSSLParameters();
        SNIServerName name = serverName(sni);
        p.setServerNames(name == null ? List.of() : List.of(name));
        p.setEndpointIdentificationAlgorithm(null);
        if (alpn != null && !alpn.isEmpty()) {
            p.setApplicationProtocols(alpn.toArray(String[]::new));
        }
        engine.setSSLParameters(p);
    }
}
