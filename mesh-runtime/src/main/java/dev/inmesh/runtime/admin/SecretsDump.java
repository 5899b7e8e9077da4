package dev.inmesh.runtime.admin;

import com.google.protobuf.Any;
import com.google.protobuf.ByteString;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.SdsSecrets;
import io.envoyproxy.envoy.admin.v3.SecretsConfigDump;
import io.envoyproxy.envoy.config.core.v3.DataSource;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.Secret;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Predicate;

/**
 * Envoy's {@code SecretsConfigDump} of the SDS secrets the configuration's clusters and listeners name and Inmesh
 * reads files for ({@link SdsSecrets}): each in {@code dynamic_active_secrets}, as Istio's agent serves them to
 * Envoy, with its files' content now ({@code tls_certificate} with {@code certificate_chain} and {@code private_key},
 * or {@code validation_context} with {@code trusted_ca}, as {@code inline_bytes}; the private key is redacted with
 * the rest of the dump, see {@link SensitiveFields}), a {@code version_info} that is a digest of that content (it
 * changes when the files rotate) and, as {@code last_updated}, the newest modification time of the files. A secret
 * whose file cannot be read now is left out. Then the secrets fetched over SDS (gRPC) as the SDS client holds them
 * ({@link dev.inmesh.runtime.xds.DynamicState#sdsSecrets}). Files are read here: call it off the event loop.
 */
final class SecretsDump {
    private SecretsDump() {}

    static SecretsConfigDump of(ResourceBundle bundle, WorkloadIdentity identity,
                                dev.inmesh.runtime.xds.DynamicState.SdsSecrets fetched, Predicate<String> names) {
        SecretsConfigDump.Builder dump = SecretsConfigDump.newBuilder();
        for (SdsSecrets.Secret s : SdsSecrets.of(SdsSecrets.tlsResources(bundle), identity)) {
            if (names.test(s.name())) {
                SecretsConfigDump.DynamicSecret d = read(s);
                if (d != null) {
                    dump.addDynamicActiveSecrets(d);
                }
            }
        }
        // As Envoy's secret manager dumps its SDS providers: a secret taken with the version_info the server sent
        // and when it came, one asked for and not arrived among the warming ones, its name alone (last_updated at
        // the epoch, as Envoy's unset time)
        for (dev.inmesh.runtime.xds.sds.SdsSecret s : fetched.active()) {
            if (names.test(s.name())) {
                dump.addDynamicActiveSecrets(SecretsConfigDump.DynamicSecret.newBuilder().setName(s.name())
                        .setVersionInfo(s.versionInfo()).setLastUpdated(ConfigDumpBuilder.timestamp(s.lastUpdated()))
                        .setSecret(Any.pack(s.source().toBuilder().setName(s.name()).build())));
            }
        }
        for (String name : fetched.warming()) {
            if (names.test(name)) {
                dump.addDynamicWarmingSecrets(SecretsConfigDump.DynamicSecret.newBuilder().setName(name)
                        .setLastUpdated(ConfigDumpBuilder.timestamp(Instant.EPOCH))
                        .setSecret(Any.pack(Secret.newBuilder().setName(name).build())));
            }
        }
        return dump.build();
    }

    /** The secret as its files are now, or null when one cannot be read. */
    private static SecretsConfigDump.DynamicSecret read(SdsSecrets.Secret s) {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
        List<ByteString> contents = new ArrayList<>();
        Instant updated = Instant.EPOCH;
        try {
            for (String file : s.files()) {
                Path p = Path.of(file);
                byte[] content = Files.readAllBytes(p);
                digest.update(content);
                contents.add(ByteString.copyFrom(content));
                Instant modified = Files.getLastModifiedTime(p).toInstant();
                updated = modified.isAfter(updated) ? modified : updated;
            }
        } catch (IOException | RuntimeException e) {
            return null;
        }
        Secret.Builder secret = Secret.newBuilder().setName(s.name());
        if (s.trustedCa() != null) {
            secret.getValidationContextBuilder().setTrustedCa(inline(contents.get(0)));
        } else {
            secret.getTlsCertificateBuilder().setCertificateChain(inline(contents.get(0)))
                    .setPrivateKey(inline(contents.get(1)));
        }
        return SecretsConfigDump.DynamicSecret.newBuilder().setName(s.name())
                .setVersionInfo(HexFormat.of().formatHex(digest.digest(), 0, 8))
                .setLastUpdated(ConfigDumpBuilder.timestamp(updated))
                .setSecret(Any.pack(secret.build())).build();
    }

    private static DataSource inline(ByteString content) {
        return DataSource.newBuilder().setInlineBytes(content).build();
    }
}
