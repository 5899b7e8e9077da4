package dev.inmesh.runtime.tls;

import dev.inmesh.api.config.cluster.UpstreamTlsContext.SanType;
import dev.inmesh.api.config.cluster.UpstreamTlsContext.SubjectAltNameMatcher;
import dev.inmesh.api.config.core.StringMatcher;
import dev.inmesh.runtime.router.StringMatchers;
import io.netty.util.NetUtil;
import java.net.InetAddress;
import java.net.Socket;
import java.net.UnknownHostException;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * The peer's certificate check, as Envoy's validation context makes it on both sides: the chain against the trusted
 * CAs (none: anything goes), then, for a server, the request's host ({@code auto_san_validation}, checked with or
 * without trusted CAs, as Envoy's SAN list override), then the SAN matchers; never the connection's address.
 */
public final class PeerVerifier extends X509ExtendedTrustManager {
    private final X509TrustManager chain;
    private final List<SanPredicate> sans;
    /** The name a server's SAN must match (a request's host), or null. */
    private final String host;
    /** Whether the name a server's SAN must match is the engine's peer host, when it has one (a relay's). */
    private final boolean engineHost;

    PeerVerifier(X509TrustManager chain, List<SubjectAltNameMatcher> matchers) {
        List<SanPredicate> compiled = new ArrayList<>();
        for (SubjectAltNameMatcher m : matchers) {
            compiled.add(new SanPredicate(m.type(), m.matcher(), StringMatchers.compile(m.matcher())));
        }
        this.chain = chain;
        this.sans = List.copyOf(compiled);
        this.host = null;
        this.engineHost = false;
    }

    private PeerVerifier(X509TrustManager chain, List<SanPredicate> sans, String host, boolean engineHost) {
        this.chain = chain;
        this.sans = sans;
        this.host = host;
        this.engineHost = engineHost;
    }

    /**
     * This check, with a server's certificate required to have a SAN naming {@code name} too: an IPv6 host without
     * its brackets, as Envoy takes it from the authority, to compare with an IP SAN.
     */
    public PeerVerifier withHost(String name) {
        boolean bracketed = name.length() > 1 && name.startsWith("[") && name.endsWith("]");
        return new PeerVerifier(chain, sans, bracketed ? name.substring(1, name.length() - 1) : name, false);
    }

    /** This check, with a server's certificate required to have a SAN naming the engine's peer host, if any. */
    public PeerVerifier withEngineHost() {
        return new PeerVerifier(chain, sans, null, true);
    }

    /**
     * Whether a DNS SAN names {@code name}, ignoring case, as Envoy matches a DNS name: the same name, or a SAN whose
     * first label holds one {@code *} (not an A-label's {@code xn--}, and no other label any) standing for one label
     * of the name or for part of it: {@code *.example.com} and {@code api*.example.com} name api.example.com, not
     * a.b.example.com nor example.com.
     */
    static boolean dnsNameMatches(String name, String san) {
        String n = name.toLowerCase(Locale.ROOT);
        String pattern = san.toLowerCase(Locale.ROOT);
        if (n.equals(pattern)) {
            return true;
        }
        int nameDot = n.indexOf('.');
        int dot = pattern.indexOf('.');
        if (nameDot < 0 || dot < 0) {
            return false;
        }
        String label = pattern.substring(0, dot);
        int star = label.indexOf('*');
        if (star < 0 || label.indexOf('*', star + 1) >= 0 || label.startsWith("xn--")
                || pattern.indexOf('*', dot) >= 0 || !n.substring(nameDot).equals(pattern.substring(dot))) {
            return false;
        }
        String nameLabel = n.substring(0, nameDot);
        return label.length() == 1 || label.length() <= nameLabel.length() + 1
                && nameLabel.startsWith(label.substring(0, star)) && nameLabel.endsWith(label.substring(star + 1));
    }

    /**
     * A SAN as Envoy prints it to match it: an IPv6 address in its shortest form ({@code 2001:db8::1}), where the JDK
     * gives every group ({@code 2001:db8:0:0:0:0:0:1}); any other as it is.
     */
    public static String sanText(int tag, String value) {
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

    @Override
    public void checkServerTrusted(X509Certificate[] certs, String authType) throws CertificateException {
        if (chain != null) {
            chain.checkServerTrusted(certs, authType); // PKIX without endpoint identification
        }
        if (host != null && !hostMatches(certs[0])) {
            throw new SanMismatchException("no subject alternative name of the server's certificate matches "
                    + "the request's host " + host + " (auto_san_validation)");
        }
        if (!sans.isEmpty() && !sanMatches(certs[0])) {
            throw new SanMismatchException("no subject alternative name of the server's certificate matches "
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
        checkServerTrusted(certs, authType, (SSLEngine) null);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] certs, String authType, SSLEngine engine)
            throws CertificateException {
        boolean byEngine = engineHost && engine != null && engine.getPeerHost() != null;
        (byEngine ? withHost(engine.getPeerHost()) : this).checkServerTrusted(certs, authType);
    }

    /** A client's certificate, on a listener that terminates TLS: the chain, then the SAN matchers. */
    @Override
    public void checkClientTrusted(X509Certificate[] certs, String authType) throws CertificateException {
        if (chain != null) {
            chain.checkClientTrusted(certs, authType);
        }
        if (!sans.isEmpty() && !sanMatches(certs[0])) {
            throw new SanMismatchException("no subject alternative name of the client's certificate matches "
                    + "the listener's SAN matchers");
        }
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket s) throws CertificateException {
        checkClientTrusted(chain, authType);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String type, SSLEngine e) throws CertificateException {
        checkClientTrusted(chain, type);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return chain == null ? new X509Certificate[0] : chain.getAcceptedIssuers();
    }

    /** A peer certificate whose chain is good and no SAN of which matches the SAN matchers. */
    public static final class SanMismatchException extends CertificateException {
        private static final long serialVersionUID = 1L;

        SanMismatchException(String message) {
            super(message);
        }
    }

    private record SanPredicate(SanType type, StringMatcher matcher, Predicate<String> test) {
        /** Whether one SAN of the certificate (its GeneralName tag and value) matches. */
        boolean matches(int tag, String value) {
            if (tag != tag(type)) {
                return false;
            }
            if (type == SanType.DNS && matcher instanceof StringMatcher.Exact e) {
                return dnsNameMatches(e.value(), value); // as Envoy: a DNS name's case and wildcards, never a text's
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
}
