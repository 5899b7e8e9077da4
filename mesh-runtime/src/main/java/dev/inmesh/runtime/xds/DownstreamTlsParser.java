package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.listener.DownstreamTlsContext;
import dev.inmesh.runtime.tls.DownstreamTls;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import java.util.Set;

/**
 * Parses a filter chain's {@code transport_socket}: {@code raw_buffer} (plaintext) or
 * {@code envoy.transport_sockets.tls} with a {@code DownstreamTlsContext}, whose certificate, key and CAs are read
 * here (files when the configuration is parsed, off the event loop), so that a missing or bad one rejects the
 * listener by name.
 *
 * <p>Istio's {@code default} and {@code ROOTCA} secrets, on every sidecar's inbound mTLS chain, are read from the
 * workload identity directory when the parse has one, as any file SDS name. A context that names SDS secrets
 * Inmesh has no source for (those two without an identity directory, a gateway's {@code kubernetes://...}) is taken
 * as a chain Inmesh cannot serve: it loads, so that Istio's {@code virtualInbound} listener loads with its plaintext
 * chains, and the proxy closes its connections. A secret whose {@code sds_config} is a file (not Istio's) is refused
 * by name, as on a cluster.
 */
final class DownstreamTlsParser {
    private DownstreamTlsParser() {}

    /**
     * A chain's transport socket.
     *
     * @param tls whether it terminates TLS
     * @param context the TLS it terminates, or null (none, or secrets Inmesh has no source for)
     * @param unavailable the SDS secret Inmesh has no source for, or null
     */
    record Parsed(boolean tls, DownstreamTlsContext context, String unavailable) {
        static final Parsed PLAIN = new Parsed(false, null, null);
    }

    static Parsed parse(TransportSocket ts) {
        var d = CommonTlsParser.context(ts,
                io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext.class);
        return d == null ? Parsed.PLAIN : Fields.at("typed_config", () -> context(d));
    }

    private static Parsed context(io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext d) {
        Fields.at("common_tls_context", () -> {
            CommonTlsParser.refuseFileSources(d.getCommonTlsContext());
            return null;
        });
        String unavailable = CommonTlsParser.unsupportedSdsName(d.getCommonTlsContext());
        if (unavailable != null) {
            return new Parsed(true, null, unavailable);
        }
        // one certificate: nothing to scan on an SNI mismatch
        Fields.onlyKnown(d, Set.of("common_tls_context", "require_client_certificate"),
                Set.of("full_scan_certs_on_sni_mismatch"));
        if (!d.hasCommonTlsContext()) {
            throw new FieldError("common_tls_context", "required: a listener needs a certificate");
        }
        CommonTlsParser.Common c = Fields.at("common_tls_context",
                () -> CommonTlsParser.parse(d.getCommonTlsContext(), "a listener"));
        if (c.keyPair() == null) {
            throw new FieldError("common_tls_context.tls_certificates", "required: a listener needs a certificate");
        }
        if (c.trust().system()) {
            throw new FieldError("common_tls_context.validation_context", "the system's CAs (system_root_certs, "
                    + "file-root:system) verify servers only; a listener's client certificates need a trusted_ca");
        }
        DownstreamTlsContext parsed = CommonTlsParser.compiled(c, pems -> {
            DownstreamTlsContext t = Fields.record("", () -> new DownstreamTlsContext(pems.keyPair()[0],
                    pems.keyPair()[1], pems.trust().ca(), pems.trust().sans(),
                    d.getRequireClientCertificate().getValue(), pems.alpn(), pems.min(), pems.max(), pems.files(),
                    pems.ciphers()));
            try {
                DownstreamTls.compile(t); // the PEMs must make a key and trust managers now, not per connection
            } catch (IllegalArgumentException e) {
                throw FieldError.of(e).under("common_tls_context");
            }
            return t;
        });
        return new Parsed(true, parsed, null);
    }
}
