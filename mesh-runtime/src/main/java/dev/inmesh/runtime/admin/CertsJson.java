package dev.inmesh.runtime.admin;

import com.google.protobuf.Timestamp;
import dev.inmesh.api.config.core.SdsFiles;
import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.tls.DownstreamTls;
import dev.inmesh.runtime.tls.PeerVerifier;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import dev.inmesh.runtime.upstream.UpstreamTls;
import io.envoyproxy.envoy.admin.v3.Certificate;
import io.envoyproxy.envoy.admin.v3.CertificateDetails;
import io.envoyproxy.envoy.admin.v3.Certificates;
import io.envoyproxy.envoy.admin.v3.SubjectAlternateName;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * {@code /certs} as Envoy's {@code admin.v3.Certificates}: one entry per TLS context in use, the listeners' filter
 * chains' and then the clusters', each by name, with its trusted CA ({@code ca_cert}) and its own certificate
 * ({@code cert_chain}): the first certificate of each PEM, with its file ({@code path}, for Istio's file SDS names;
 * empty for an inline PEM or a plain {@code filename}, which the configuration does not keep apart), serial number,
 * SANs, validity and days left. A rotated file of Istio's file SDS names shows the certificate now used.
 */
final class CertsJson {
    private CertsJson() {}

    static Certificates certificates(MeshSnapshot snapshot, Instant now) {
        Certificates.Builder out = Certificates.newBuilder();
        for (String name : new TreeSet<>(snapshot.listeners().keySet())) {
            FilterChainSelector sel = snapshot.listener(name);
            if (sel == null) {
                continue;
            }
            List<FilterChain> chains = new ArrayList<>(sel.listener().filterChains());
            if (sel.listener().defaultFilterChain() != null) {
                chains.add(sel.listener().defaultFilterChain());
            }
            for (FilterChain chain : chains) {
                DownstreamTls tls = sel.tls(chain);
                if (tls != null) {
                    var c = tls.context();
                    add(out, c.certificateChain(), c.trustedCa(), c.sdsFiles(), now);
                }
            }
        }
        for (UpstreamCluster cluster : new TreeMap<>(snapshot.clusterManager().clusters()).values()) {
            // its own transport socket's and its transport socket matches' (TLS not usable: no certificate in use)
            for (UpstreamTls tls : cluster.tlsInUse()) {
                var c = tls.context();
                add(out, c.certificateChain(), c.trustedCa(), c.sdsFiles(), now);
            }
        }
        return out.build();
    }

    /**
     * Envoy's {@code server.days_until_first_cert_expiring}: the fewest days left of the certificates {@code /certs}
     * shows (each context's CA and own certificate), or, as Envoy gives it without any, the largest 32-bit number.
     */
    static long daysUntilFirstCertExpiring(MeshSnapshot snapshot, Instant now) {
        long fewest = 0xFFFFFFFFL;
        for (Certificate c : certificates(snapshot, now).getCertificatesList()) {
            for (CertificateDetails d : c.getCaCertList()) {
                fewest = d.hasExpirationTime() ? Math.min(fewest, d.getDaysUntilExpiration()) : fewest;
            }
            for (CertificateDetails d : c.getCertChainList()) {
                fewest = d.hasExpirationTime() ? Math.min(fewest, d.getDaysUntilExpiration()) : fewest;
            }
        }
        return fewest;
    }

    private static void add(Certificates.Builder out, String chain, String ca, SdsFiles files, Instant now) {
        if (chain == null && ca == null) {
            return;
        }
        Certificate.Builder c = Certificate.newBuilder();
        if (ca != null) {
            details(ca, files.trustedCa(), now, c.addCaCertBuilder());
        }
        if (chain != null) {
            details(chain, files.certificateChain(), now, c.addCertChainBuilder());
        }
        out.addCertificates(c);
    }

    private static void details(String pem, String file, Instant now, CertificateDetails.Builder d) {
        if (file != null) {
            d.setPath(file);
        }
        X509Certificate cert;
        try {
            Collection<? extends java.security.cert.Certificate> all = CertificateFactory.getInstance("X.509")
                    .generateCertificates(new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII)));
            if (all.isEmpty() || !(all.iterator().next() instanceof X509Certificate x)) {
                return;
            }
            cert = x;
        } catch (CertificateException e) {
            return;
        }
        d.setSerialNumber(cert.getSerialNumber().toString(16));
        Instant notAfter = cert.getNotAfter().toInstant();
        d.setDaysUntilExpiration(Math.max(0, Duration.between(now, notAfter).toDays()));
        d.setValidFrom(timestamp(cert.getNotBefore().toInstant()));
        d.setExpirationTime(timestamp(notAfter));
        try {
            Collection<List<?>> sans = cert.getSubjectAlternativeNames();
            if (sans != null) {
                for (List<?> n : sans) {
                    if (n.size() >= 2 && n.get(0) instanceof Integer tag && n.get(1) instanceof String value) {
                        SubjectAlternateName.Builder s = SubjectAlternateName.newBuilder();
                        switch (tag) {
                            case 2 -> d.addSubjectAltNames(s.setDns(value));
                            case 6 -> d.addSubjectAltNames(s.setUri(value));
                            case 7 -> d.addSubjectAltNames(s.setIpAddress(PeerVerifier.sanText(tag, value)));
                            default -> { } // as Envoy: DNS, URI and IP only
                        }
                    }
                }
            }
        } catch (CertificateParsingException e) {
            // no SANs to list
        }
    }

    private static Timestamp timestamp(Instant t) {
        return Timestamp.newBuilder().setSeconds(t.getEpochSecond()).setNanos(t.getNano()).build();
    }
}
