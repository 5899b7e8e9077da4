package dev.inmesh.runtime.xds;

import com.google.protobuf.Message;
import dev.inmesh.runtime.tls.WorkloadIdentity;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.TransportSocket;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.CommonTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig;
import io.envoyproxy.envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The SDS secrets that the TLS contexts of clusters (their transport socket and transport socket matches) and
 * listeners (their filter chains') name, with the files Inmesh reads for each, as Istio's agent serves them: a
 * certificate for {@code file-cert:CERT~KEY}, and for {@code default} the workload identity's {@code cert-chain.pem}
 * and {@code key.pem}; a validation context for {@code file-root:CA}, and for {@code ROOTCA} the identity's
 * {@code root-cert.pem}. Names Inmesh does not read a file for ({@code file-root:system}, the JVM's CAs; another SDS
 * name; {@code default} and {@code ROOTCA} without an identity) are left out.
 */
public final class SdsSecrets {
    private SdsSecrets() {}

    /**
     * One secret: a certificate (its chain's and key's files) or a validation context (its CAs' file).
     *
     * @param name the SDS name
     * @param certificateChain the certificate chain's file, or null for a validation context
     * @param privateKey the private key's file, or null for a validation context
     * @param trustedCa the CAs' file, or null for a certificate
     */
    public record Secret(String name, String certificateChain, String privateKey, String trustedCa) {
        /** The secret's files: its chain's and key's, or its CAs'. */
        public List<String> files() {
            return trustedCa != null ? List.of(trustedCa) : List.of(certificateChain, privateKey);
        }
    }

    /** The secrets of these clusters and listeners, each once, in the order they are first named. */
    public static List<Secret> of(List<? extends Message> resources, WorkloadIdentity identity) {
        return Parsers.withIdentity(identity, () -> {
            Map<String, Secret> secrets = new LinkedHashMap<>();
            for (Message m : resources) {
                for (CommonTlsContext c : contexts(m)) {
                    for (SdsSecretConfig s : c.getTlsCertificateSdsSecretConfigsList()) {
                        if (!secrets.containsKey(s.getName())) {
                            try {
                                String[] files = CommonTlsParser.fileCertPaths(s);
                                secrets.put(s.getName(), new Secret(s.getName(), files[0], files[1], null));
                            } catch (FieldError e) {
                                // not a name Inmesh reads files for
                            }
                        }
                    }
                    for (SdsSecretConfig s : CommonTlsParser.validationSdsSecrets(c)) {
                        String file = CommonTlsParser.fileRootPath(s);
                        if (file != null) {
                            secrets.putIfAbsent(s.getName(), new Secret(s.getName(), null, null, file));
                        }
                    }
                }
            }
            return List.copyOf(secrets.values());
        });
    }

    /**
     * The names, sorted, of the secrets among {@code named} asked for on the ADS stream
     * ({@code sds_config: {ads: {}}}): what an ADS client subscribes to for them.
     */
    public static java.util.SortedSet<String> overAds(java.util.Collection<SdsSecretConfig> named) {
        java.util.SortedSet<String> out = new java.util.TreeSet<>();
        named.stream().filter(s -> s.getSdsConfig().hasAds()).forEach(s -> out.add(s.getName()));
        return out;
    }

    /** The SDS secret configs the TLS contexts of these clusters and listeners name, as many times as named. */
    public static List<SdsSecretConfig> named(List<? extends Message> resources) {
        List<SdsSecretConfig> out = new ArrayList<>();
        for (Message m : resources) {
            contexts(m).forEach(c -> out.addAll(CommonTlsParser.sdsSecrets(c)));
        }
        return out;
    }

    /** The same of a bundle's clusters and listeners. */
    public static List<SdsSecretConfig> named(ResourceBundle bundle) {
        return named(tlsResources(bundle));
    }

    /** The messages of a bundle's clusters, then its listeners (those it has a message of). */
    public static List<Message> tlsResources(ResourceBundle bundle) {
        List<Message> resources = new ArrayList<>();
        bundle.clusters().keySet().forEach(n -> resources.add(bundle.message(ResourceType.CLUSTER, n)));
        bundle.listeners().keySet().forEach(n -> resources.add(bundle.message(ResourceType.LISTENER, n)));
        resources.removeIf(java.util.Objects::isNull);
        return resources;
    }

    /** The common TLS contexts of a cluster's or a listener's transport sockets that are TLS. */
    private static List<CommonTlsContext> contexts(Message m) {
        List<CommonTlsContext> out = new ArrayList<>();
        if (m instanceof Cluster c) {
            List<TransportSocket> sockets = new ArrayList<>();
            if (c.hasTransportSocket()) {
                sockets.add(c.getTransportSocket());
            }
            c.getTransportSocketMatchesList().forEach(match -> sockets.add(match.getTransportSocket()));
            for (TransportSocket ts : sockets) {
                UpstreamTlsContext u = tls(ts, UpstreamTlsContext.class);
                if (u != null) {
                    out.add(u.getCommonTlsContext());
                }
            }
        } else if (m instanceof Listener l) {
            for (FilterChain fc : ListenerParser.chainsWithDefault(l)) {
                DownstreamTlsContext d = fc.hasTransportSocket() ? tls(fc.getTransportSocket(),
                        DownstreamTlsContext.class) : null;
                if (d != null) {
                    out.add(d.getCommonTlsContext());
                }
            }
        }
        return out;
    }

    private static <T extends Message> T tls(TransportSocket ts, Class<T> type) {
        try {
            return CommonTlsParser.context(ts, type);
        } catch (FieldError e) {
            return null; // not TLS Inmesh takes: its resource was refused, or the socket is another kind
        }
    }
}
