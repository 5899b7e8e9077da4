package dev.inmesh.runtime.xds.sds;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.inmesh.runtime.tls.TlsMaterial;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;

/**
 * Reads a {@code Secret} of an SDS response into its PEMs, checked as the TLS contexts will use them: a
 * {@code tls_certificate}'s chain and key must make a usable key (the key the certificate's), a
 * {@code validation_context}'s {@code trusted_ca} usable CAs, the secret within the proto constraints of Envoy's API.
 * Anything else rejects the response (a NACK naming the secret), as Envoy's {@code SdsApi} rejects a secret it cannot
 * load and keeps the last good one.
 */
final class SecretParser {
    static final String TYPE_URL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

    private SecretParser() {}

    /** A secret's PEMs: its chain and key, or its CAs; and its validation context (SAN matchers), if any. */
    record Pems(String name, String chain, String key, String ca, Secret secret) {}

    /** The one secret of a response for {@code name}, as Envoy's {@code SdsApi} wants exactly it. */
    static Pems parse(String name, java.util.List<Any> resources) {
        if (resources.isEmpty()) {
            throw new IllegalArgumentException("Missing SDS resources for " + name + " in onConfigUpdate()");
        }
        if (resources.size() != 1) {
            throw new IllegalArgumentException("Unexpected SDS secrets length: " + resources.size());
        }
        Any any = resources.get(0);
        if (!any.getTypeUrl().equals(TYPE_URL)) {
            throw new IllegalArgumentException("a " + TYPE_URL + " is required (got " + any.getTypeUrl() + ")");
        }
        Secret s;
        try {
            s = any.unpack(Secret.class);
        } catch (InvalidProtocolBufferException e) {
            throw new IllegalArgumentException("not a valid Secret: " + e.getMessage(), e);
        }
        if (!s.getName().equals(name)) {
            throw new IllegalArgumentException("Unexpected SDS secret (expecting " + name + "): " + s.getName());
        }
        // as Envoy decodes it, against the proto constraints of its API
        dev.inmesh.runtime.xds.FieldError violation = dev.inmesh.runtime.xds.ProtoConstraintCheck.find(s);
        if (violation != null) {
            throw new IllegalArgumentException("Secret \"" + name + "\": " + violation.getMessage(), violation);
        }
        return switch (s.getTypeCase()) {
            case TLS_CERTIFICATE -> {
                var t = s.getTlsCertificate();
                if (!t.hasCertificateChain() || !t.hasPrivateKey()) {
                    throw new IllegalArgumentException("Secret \"" + name + "\": tls_certificate."
                            + (t.hasCertificateChain() ? "private_key" : "certificate_chain") + ": required");
                }
                String chain = data("tls_certificate.certificate_chain", t.getCertificateChain());
                String key = data("tls_certificate.private_key", t.getPrivateKey());
                try {
                    TlsMaterial.keyManagers(chain, key);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("Secret \"" + name + "\": tls_certificate: " + e.getMessage(),
                            e);
                }
                yield new Pems(name, chain, key, null, s);
            }
            case VALIDATION_CONTEXT -> {
                var v = s.getValidationContext();
                if (!v.hasTrustedCa()) {
                    throw new IllegalArgumentException("Secret \"" + name + "\": validation_context.trusted_ca: "
                            + "required (Inmesh takes a validation context's CAs from it)");
                }
                String ca = data("validation_context.trusted_ca", v.getTrustedCa());
                try {
                    TlsMaterial.trustedCas(ca, false);
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException("Secret \"" + name + "\": " + e.getMessage(), e);
                }
                yield new Pems(name, null, null, ca, s);
            }
            case SESSION_TICKET_KEYS, GENERIC_SECRET -> throw new IllegalArgumentException("Secret \"" + name + "\": "
                    + s.getTypeCase().name().toLowerCase(java.util.Locale.ROOT) + " is not supported");
            case TYPE_NOT_SET -> throw new IllegalArgumentException("Secret \"" + name
                    + "\": tls_certificate or validation_context is required");
        };
    }

    /** The text of {@code d} at {@code field}, read as every DataSource is ({@code CoreParsers.dataSource}). */
    private static String data(String field, DataSource d) {
        try {
            return dev.inmesh.runtime.xds.CoreParsers.dataSource(d);
        } catch (dev.inmesh.runtime.xds.FieldError e) {
            throw new IllegalArgumentException(e.under(field).getMessage(), e);
        }
    }
}
