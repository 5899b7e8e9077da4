package dev.inmesh.runtime.tls;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.DelegatingSslContext;
import io.netty.handler.ssl.SslContext;
import io.vertx.core.net.JdkSSLEngineOptions;
import io.vertx.core.spi.tls.SslContextFactory;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManagerFactory;

/**
 * The JDK's TLS engines for a Vert.x client or server, each handed to a hook once Vert.x has set it up and before
 * its handshake: what Vert.x's options cannot say is said there (an upstream's SNI as Envoy sends it, a server's
 * record of the ALPN protocols its client offered).
 */
public final class EngineHookOptions extends JdkSSLEngineOptions {
    private final Consumer<SSLEngine> hook;

    public EngineHookOptions(Consumer<SSLEngine> hook) {
        this.hook = hook;
    }

    @Override
    public JdkSSLEngineOptions copy() {
        return new EngineHookOptions(hook);
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
                        hook.accept(engine);
                    }
                };
            }
        };
    }
}
