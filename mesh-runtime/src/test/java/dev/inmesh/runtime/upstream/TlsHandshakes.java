package dev.inmesh.runtime.upstream;

import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult.HandshakeStatus;
import javax.net.ssl.SSLException;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509TrustManager;

/** TLS handshakes in memory between two engines, for tests of what a server or a client agrees on. */
public final class TlsHandshakes {
    private TlsHandshakes() {}

    /** A JDK client engine for {@code host} that trusts any server certificate. */
    public static SSLEngine client(String host) throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, new TrustManager[] {new TrustAll()}, new SecureRandom());
        SSLEngine client = ctx.createSSLEngine(host, 443);
        client.setUseClientMode(true);
        return client;
    }

    /**
     * Runs the handshake between {@code server} and {@code client} to its end (at most 100 rounds).
     *
     * @throws SSLException when the handshake fails
     */
    public static void run(SSLEngine server, SSLEngine client) throws SSLException {
        ByteBuffer toServer = ByteBuffer.allocate(1 << 17);
        ByteBuffer toClient = ByteBuffer.allocate(1 << 17);
        client.beginHandshake();
        server.beginHandshake();
        for (int i = 0; i < 100; i++) {
            step(client, toServer, toClient);
            step(server, toClient, toServer);
            if (done(client) && done(server)) {
                return;
            }
        }
        throw new AssertionError("the handshake did not end in 100 rounds");
    }

    private static boolean done(SSLEngine e) {
        HandshakeStatus s = e.getHandshakeStatus();
        return s == HandshakeStatus.NOT_HANDSHAKING || s == HandshakeStatus.FINISHED;
    }

    /** One step of an engine: what it has to send into {@code out}, or what it was sent from {@code in}. */
    private static void step(SSLEngine e, ByteBuffer out, ByteBuffer in) throws SSLException {
        ByteBuffer app = ByteBuffer.allocate(1 << 17);
        for (int n = 0; n < 10; n++) {
            switch (e.getHandshakeStatus()) {
                case NEED_WRAP -> e.wrap(ByteBuffer.allocate(0), out);
                case NEED_UNWRAP -> {
                    in.flip();
                    var r = e.unwrap(in, app);
                    in.compact();
                    if (r.bytesConsumed() == 0) {
                        return; // waits for the other side
                    }
                }
                case NEED_TASK -> {
                    for (Runnable t; (t = e.getDelegatedTask()) != null; ) {
                        t.run();
                    }
                }
                default -> {
                    return;
                }
            }
        }
    }

    private static final class TrustAll implements X509TrustManager {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) {}

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) {}

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return new X509Certificate[0];
        }
    }
}
