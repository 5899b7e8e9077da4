package dev.inmesh.runtime.upstream;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.ClientAuth;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpServerRequest;
import io.vertx.core.net.PemKeyCertOptions;
import io.vertx.core.net.PemTrustOptions;
import java.security.cert.X509Certificate;
import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * X.509 certificates made in the test, in PEM, with no tool and no library but the JDK: a CA, and certificates it
 * signs with DNS and URI subject alternative names (ECDSA P-256, valid from an hour ago for a day).
 */
public final class TestCertificates {
    private static final AtomicLong SERIAL = new AtomicLong(1);
    private static final byte[] ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));

    /** A certificate and its key, in PEM. */
    public record Issued(String name, String certificatePem, String keyPem, PrivateKey key) {}

    private TestCertificates() {}

    /** A self-signed CA certificate. */
    public static Issued ca(String name) {
        KeyPair kp = keyPair();
        return new Issued(name, pem("CERTIFICATE", certificate(name, name, kp, kp.getPrivate(), List.of(), List.of(),
                List.of(), true)), pem("PRIVATE KEY", kp.getPrivate().getEncoded()), kp.getPrivate());
    }

    /** A certificate for {@code name}, signed by {@code issuer}, with these DNS and URI SANs. */
    public static Issued issue(Issued issuer, String name, List<String> dnsNames, List<String> uris) {
        KeyPair kp = keyPair();
        return new Issued(name, pem("CERTIFICATE", certificate(name, issuer.name(), kp, issuer.key(), dnsNames, uris,
                List.of(), false)), pem("PRIVATE KEY", kp.getPrivate().getEncoded()), kp.getPrivate());
    }

    /** A TLS server's options presenting {@code own} and requiring a client certificate leading to {@code ca}. */
    public static HttpServerOptions requiringClientCertificate(Issued own, Issued ca) {
        return new HttpServerOptions().setSsl(true)
                .setKeyCertOptions(new PemKeyCertOptions().setCertValue(Buffer.buffer(own.certificatePem()))
                        .setKeyValue(Buffer.buffer(own.keyPem())))
                .setClientAuth(ClientAuth.REQUIRED)
                .setTrustOptions(new PemTrustOptions().addCertValue(Buffer.buffer(ca.certificatePem())));
    }

    /**
     * A workload identity directory {@code identity} under {@code parent}, with Istio's file names: {@code own}'s
     * chain ({@code cert-chain.pem}) and key ({@code key.pem}), and {@code root}'s certificate ({@code root-cert.pem}).
     */
    public static java.nio.file.Path identityDirectory(java.nio.file.Path parent, Issued own, Issued root)
            throws java.io.IOException {
        java.nio.file.Path id = java.nio.file.Files.createDirectories(parent.resolve("identity"));
        java.nio.file.Files.writeString(id.resolve("key.pem"), own.keyPem());
        java.nio.file.Files.writeString(id.resolve("cert-chain.pem"), own.certificatePem());
        java.nio.file.Files.writeString(id.resolve("root-cert.pem"), root.certificatePem());
        return id;
    }

    /**
     * A {@code resources:} YAML document whose one cluster, {@code outbound|9080||reviews.default.svc.cluster.local}
     * at 10.244.0.7:9080, has the TLS istiod writes for ISTIO_MUTUAL: Istio's SDS secrets {@code default} and
     * {@code ROOTCA}.
     */
    public static final String ISTIO_MUTUAL_CLUSTER = """
            resources:
            - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster
              name: "outbound|9080||reviews.default.svc.cluster.local"
              type: STATIC
              load_assignment:
                cluster_name: "outbound|9080||reviews.default.svc.cluster.local"
                endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 10.244.0.7,
                  port_value: 9080}}}}]}]
              transport_socket:
                name: envoy.transport_sockets.tls
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
                  sni: outbound_.9080_._.reviews.default.svc.cluster.local
                  common_tls_context:
                    tls_certificate_sds_secret_configs: [{name: default}]
                    combined_validation_context:
                      default_validation_context: {}
                      validation_context_sds_secret_config: {name: ROOTCA}
            """;

    /**
     * A Vert.x client's options as an Istio sidecar's connection to an mTLS chain: the ALPN its istio.alpn filter sets
     * for the protocol ({@code istio-h2, istio, h2}, or {@code istio-http/1.1, istio, http/1.1}), {@code own}'s
     * certificate (none: null), the server's checked against {@code ca}, not its host name.
     */
    public static io.vertx.core.http.HttpClientOptions istioClientOptions(Issued own, Issued ca, boolean http2) {
        var o = new io.vertx.core.http.HttpClientOptions().setSsl(true).setVerifyHost(false).setUseAlpn(true)
                .setProtocolVersion(http2 ? io.vertx.core.http.HttpVersion.HTTP_2
                        : io.vertx.core.http.HttpVersion.HTTP_1_1)
                .setTrustOptions(new PemTrustOptions().addCertValue(Buffer.buffer(ca.certificatePem())));
        o.getSslOptions().setApplicationLayerProtocols(http2 ? List.of("istio-h2", "istio", "h2")
                : List.of("istio-http/1.1", "istio", "http/1.1"));
        if (own != null) {
            o.setKeyCertOptions(new PemKeyCertOptions().setCertValue(Buffer.buffer(own.certificatePem()))
                    .setKeyValue(Buffer.buffer(own.keyPem())));
        }
        return o;
    }

    /**
     * GET / over a connection as an Istio sidecar's HTTP/1.1 client opens it to an mTLS chain: its mTLS cluster's
     * {@code sni} as it is (no DNS name), ALPN {@code istio-http/1.1, istio, http/1.1}, {@code caller}'s certificate,
     * the server's checked against {@code ca}; the raw HTTP/1.1 answer, read until the server closes.
     */
    public static String istioSidecarGet(int port, Issued caller, Issued ca, String sni) throws Exception {
        return tlsGet(port, caller, ca, sni, "istio-http/1.1", "istio", "http/1.1");
    }

    /**
     * GET / over TLS to 127.0.0.1 {@code port} with {@code caller}'s certificate, the server's checked against
     * {@code ca}, SNI {@code sni} (none: null), offering the ALPN protocols {@code alpn}; the raw HTTP/1.1 answer,
     * read until the server closes.
     */
    public static String tlsGet(int port, Issued caller, Issued ca, String sni, String... alpn) throws Exception {
        var tls = clientContext(caller, ca);
        try (var socket = (javax.net.ssl.SSLSocket) tls.getSocketFactory().createSocket("127.0.0.1", port)) {
            socket.setSoTimeout(10_000);
            var p = socket.getSSLParameters();
            if (sni != null) {
                p.setServerNames(List.of(UpstreamTls.serverName(sni)));
            }
            p.setApplicationProtocols(alpn);
            socket.setSSLParameters(p);
            socket.getOutputStream().write("GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII));
            return new String(socket.getInputStream().readAllBytes(), StandardCharsets.US_ASCII);
        }
    }

    /** A JDK TLS client context presenting {@code caller}'s certificate and trusting only {@code ca}. */
    public static javax.net.ssl.SSLContext clientContext(Issued caller, Issued ca) throws Exception {
        var certs = java.security.cert.CertificateFactory.getInstance("X.509");
        var keys = java.security.KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        keys.setKeyEntry("caller", caller.key(), new char[0], new java.security.cert.Certificate[] {
            certs.generateCertificate(new java.io.ByteArrayInputStream(caller.certificatePem().getBytes()))});
        var trust = java.security.KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("mesh", certs.generateCertificate(
                new java.io.ByteArrayInputStream(ca.certificatePem().getBytes())));
        var kmf = javax.net.ssl.KeyManagerFactory.getInstance("PKIX");
        kmf.init(keys, new char[0]);
        var tmf = javax.net.ssl.TrustManagerFactory.getInstance("PKIX");
        tmf.init(trust);
        var tls = javax.net.ssl.SSLContext.getInstance("TLS");
        tls.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return tls;
    }

    /** Answers a request with {@code client=} and the subject of its client's certificate ({@code none} without). */
    public static void answerClientSubject(HttpServerRequest req) {
        String client;
        try {
            client = ((X509Certificate) req.connection().peerCertificates().get(0)).getSubjectX500Principal()
                    .getName();
        } catch (Exception e) {
            client = "none";
        }
        req.response().end("client=" + client);
    }

    /** A certificate for {@code name}, signed by {@code issuer}, with these IP address SANs (literals) only. */
    public static Issued issueForIps(Issued issuer, String name, List<String> ips) {
        KeyPair kp = keyPair();
        return new Issued(name, pem("CERTIFICATE", certificate(name, issuer.name(), kp, issuer.key(), List.of(),
                List.of(), ips, false)), pem("PRIVATE KEY", kp.getPrivate().getEncoded()), kp.getPrivate());
    }

    private static KeyPair keyPair() {
        try {
            KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
            g.initialize(new ECGenParameterSpec("secp256r1"));
            return g.generateKeyPair();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] certificate(String subject, String issuer, KeyPair subjectKeys, PrivateKey signer,
                                      List<String> dnsNames, List<String> uris, List<String> ips, boolean ca) {
        Instant now = Instant.now().truncatedTo(ChronoUnit.SECONDS);
        ByteArrayOutputStream sans = new ByteArrayOutputStream();
        dnsNames.forEach(d -> sans.writeBytes(tlv(0x82, d.getBytes(StandardCharsets.US_ASCII))));
        uris.forEach(u -> sans.writeBytes(tlv(0x86, u.getBytes(StandardCharsets.US_ASCII))));
        for (String ip : ips) {
            try {
                sans.writeBytes(tlv(0x87, java.net.InetAddress.getByName(ip).getAddress())); // a literal: no lookup
            } catch (java.net.UnknownHostException e) {
                throw new IllegalArgumentException(ip, e);
            }
        }
        byte[] extensions = ca
                ? seq(seq(oid("2.5.29.19"), tlv(0x01, new byte[] {(byte) 0xff}), tlv(0x04, seq(tlv(0x01,
                        new byte[] {(byte) 0xff})))))
                : seq(seq(oid("2.5.29.17"), tlv(0x04, tlv(0x30, sans.toByteArray()))));
        byte[] tbs = seq(
                tlv(0xa0, tlv(0x02, new byte[] {2})), // v3
                tlv(0x02, BigInteger.valueOf(SERIAL.getAndIncrement()).toByteArray()),
                ECDSA_SHA256,
                name(issuer),
                seq(time(now.minus(1, ChronoUnit.HOURS)), time(now.plus(1, ChronoUnit.DAYS))),
                name(subject),
                subjectKeys.getPublic().getEncoded(),
                tlv(0xa3, extensions));
        try {
            Signature s = Signature.getInstance("SHA256withECDSA");
            s.initSign(signer);
            s.update(tbs);
            byte[] sig = s.sign();
            byte[] bits = new byte[sig.length + 1];
            System.arraycopy(sig, 0, bits, 1, sig.length);
            return seq(tbs, ECDSA_SHA256, tlv(0x03, bits));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] name(String cn) {
        return seq(tlv(0x31, seq(oid("2.5.4.3"), tlv(0x0c, cn.getBytes(StandardCharsets.UTF_8)))));
    }

    private static byte[] time(Instant t) {
        String s = DateTimeFormatter.ofPattern("yyMMddHHmmss'Z'").withZone(ZoneOffset.UTC).format(t);
        return tlv(0x17, s.getBytes(StandardCharsets.US_ASCII));
    }

    private static byte[] oid(String dotted) {
        String[] parts = dotted.split("\\.");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(Integer.parseInt(parts[0]) * 40 + Integer.parseInt(parts[1]));
        for (int i = 2; i < parts.length; i++) {
            long v = Long.parseLong(parts[i]);
            int groups = 1;
            for (long x = v >> 7; x > 0; x >>= 7) {
                groups++;
            }
            for (int g = groups - 1; g >= 0; g--) {
                out.write((int) ((v >> (7 * g)) & 0x7f) | (g > 0 ? 0x80 : 0));
            }
        }
        return tlv(0x06, out.toByteArray());
    }

    private static byte[] seq(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return tlv(0x30, out.toByteArray());
    }

    private static byte[] tlv(int tag, byte[] value) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(tag);
        int n = value.length;
        if (n < 0x80) {
            out.write(n);
        } else if (n < 0x100) {
            out.write(0x81);
            out.write(n);
        } else {
            out.write(0x82);
            out.write(n >> 8);
            out.write(n & 0xff);
        }
        out.writeBytes(value);
        return out.toByteArray();
    }

    private static String pem(String type, byte[] der) {
        return "-----BEGIN " + type + "-----\n" + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
                + "\n-----END " + type + "-----\n";
    }
}
