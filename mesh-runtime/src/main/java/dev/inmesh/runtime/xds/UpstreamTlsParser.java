package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.cluster.UpstreamTlsContext;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.upstream.UpstreamTls;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
import java.util.List;
import java.util.Set;

/**
 * Parses a cluster's {@code transport_socket}: {@code raw_buffer} (plaintext, null) or
 * {@code envoy.transport_sockets.tls} with an {@code UpstreamTlsContext}. Files (certificates, keys, CAs) are read
 * here, when the configuration is parsed (off the event loop), so that a missing or bad one rejects the cluster by
 * name.
 *
 * <p>Of SDS, only the names Istio gives a DestinationRule's files are taken ({@link CommonTlsParser}), and Istio's
 * own secrets ({@code default}, {@code ROOTCA}) when the parse has a workload identity directory; without one they
 * are refused, as any other SDS name.
 */
final class UpstreamTlsParser {
    /**
     * Istio's ALPN names of in-mesh traffic: its mTLS clusters' ({@code istio-peer-exchange}, {@code istio}) and
     * those its {@code istio.alpn} filter offers per upstream protocol.
     */
    private static final List<String> ISTIO_ALPN = List.of("istio-peer-exchange", "istio", "istio-h2",
            "istio-http/1.1", "istio-http/1.0");

    private UpstreamTlsParser() {}

    /** The TLS context of a transport socket, or null for raw_buffer. */
    static UpstreamTlsContext parse(TransportSocket ts) {
        var u = CommonTlsParser.context(ts,
                io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext.class);
        return u == null ? null : Fields.at("typed_config", () -> context(u));
    }

    /**
     * A cluster's transport socket (its own, or a match's) as parsed: its TLS (null for plaintext), or why it is
     * not ready (the TLS null then).
     */
    record Socket(UpstreamTlsContext tls, String notReady) {}

    /**
     * The transport socket {@code ts}, or, when its TLS does not parse because an SDS secret it names had not
     * arrived within its {@code initial_fetch_timeout} and the parse leaves such TLS not ready
     * ({@link Parsers#withSecretsNotReady}), a socket not ready: as Envoy's cluster initializes once the secret's
     * initial fetch timed out ({@code SdsApi::onConfigUpdateFailed} readies its init target), its connections
     * failing through the {@code NotReadySslSocket} until the secret comes. For a transport socket match,
     * {@code istioMatch}, so is one that needs Istio's own SDS secrets ({@link #notReadyMatch}).
     *
     * @throws FieldError why the socket rejects its cluster
     */
    static Socket socket(TransportSocket ts, boolean istioMatch) {
        java.util.Set<String> outer = CommonTlsParser.NOT_ARRIVED.get();
        java.util.Set<String> late = new java.util.LinkedHashSet<>();
        try {
            return new Socket(outer == null ? parse(ts) : Parsers.with(CommonTlsParser.NOT_ARRIVED, late,
                    () -> parse(ts)), null);
        } catch (FieldError e) {
            FieldError failure = e.under("transport_socket"); // as the message of the cluster's rejection would say
            if (!late.isEmpty()) {
                outer.addAll(late);
                return new Socket(null, "its SDS secret \"" + late.iterator().next() + "\" has not arrived ("
                        + failure.getMessage() + ")");
            }
            String notReady = istioMatch ? notReadyMatch(ts, failure) : null;
            if (notReady == null) {
                throw e;
            }
            return new Socket(null, notReady);
        }
    }

    /**
     * Why a transport socket match whose TLS did not parse ({@code failure}) is kept, not ready, rather than rejecting
     * its cluster, or null when it is not: without a workload identity directory, a match is not ready when its TLS
     * names Istio's own SDS secrets ({@code default}, {@code ROOTCA}: istiod's workload certificate and root, which
     * Inmesh then cannot resolve), as Istio's {@code tlsMode-istio} match does; the connections of its hosts then
     * fail, as Envoy's to hosts whose secret SDS has not supplied (its {@code NotReadySslSocket}), and never go in
     * plaintext. With a directory those secrets parse, and a match that still fails (a missing or unusable identity
     * file) rejects its cluster by name.
     */
    private static String notReadyMatch(TransportSocket ts, FieldError failure) {
        io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext u;
        try {
            u = CommonTlsParser.context(ts,
                    io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext.class);
        } catch (FieldError e) {
            return null;
        }
        if (u == null || CommonTlsParser.IDENTITY.get() != null) {
            return null;
        }
        for (var s : CommonTlsParser.sdsSecrets(u.getCommonTlsContext())) {
            String name = s.getName();
            if (WorkloadIdentity.servesSecret(name) && !CommonTlsParser.fetched(s)) {
                return "its TLS needs Istio's SDS secret \"" + name + "\" (" + failure.getMessage() + ")";
            }
        }
        return null;
    }

    private static UpstreamTlsContext context(
            io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext u) {
        // session resumption and renegotiation tune the handshake; the JDK resumes sessions and refuses
        // renegotiation under TLS 1.3 on its own
        Fields.onlyKnown(u, Set.of("common_tls_context", "sni"),
                Set.of("max_session_keys", "allow_renegotiation", "enforce_rsa_key_usage"));
        String sni = u.getSni();
        if (!sni.isEmpty() && UpstreamTls.serverName(sni) == null) {
            throw new FieldError("sni", "\"" + sni + "\" is not a host name TLS can send");
        }
        CommonTlsContext c = u.getCommonTlsContext();
        CommonTlsParser.Common common = Fields.at("common_tls_context", () -> CommonTlsParser.parse(c, "a client"));
        return CommonTlsParser.compiled(common, pems -> {
            UpstreamTlsContext parsed = Fields.at("common_tls_context", () -> common(sni, pems));
            try {
                UpstreamTls.compile(parsed); // the PEMs must make a key and trust managers now, not at connect time
            } catch (IllegalArgumentException e) {
                throw FieldError.of(e).under("common_tls_context");
            }
            return parsed;
        });
    }

    private static UpstreamTlsContext common(String sni, CommonTlsParser.Common parsed) {
        Fields.each("alpn_protocols", parsed.alpn(), p -> {
            if (!p.equals("h2") && !p.equals("http/1.1") && !ISTIO_ALPN.contains(p)) {
                throw new FieldError("", "\"" + p + "\" is not supported (Inmesh offers h2 and http/1.1, and "
                        + "Istio's in-mesh names " + ISTIO_ALPN + ")");
            }
            return p;
        });
        String[] pair = parsed.keyPair();
        CommonTlsParser.Trust t = parsed.trust();
        return Fields.record("", () -> new UpstreamTlsContext(sni, pair == null ? null : pair[0],
                pair == null ? null : pair[1], t.ca(), t.system(), t.sans(), parsed.alpn(), parsed.min(),
                parsed.max(), false, false, parsed.files(), parsed.ciphers()));
    }
}
