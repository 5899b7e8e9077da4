package dev.inmesh.runtime.inbound;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.runtime.listener.ConnectionInfo;
import dev.inmesh.runtime.listener.FilterChainSelector;
import dev.inmesh.runtime.snapshot.MeshSnapshot;
import dev.inmesh.runtime.snapshot.SnapshotHolder;
import dev.inmesh.runtime.tls.DownstreamTls;
import dev.inmesh.runtime.tls.ServerTls;
import dev.inmesh.runtime.upstream.UpstreamTls;
import io.vertx.core.http.HttpServerOptions;
import java.util.List;
import java.util.function.Supplier;

/**
 * Whether the application's HTTP server on a port terminates Istio's inbound mTLS, from the {@code virtualInbound}
 * filter chains for that port, as a sidecar's listener would take the port's connections:
 * <ul>
 *   <li>a plaintext HTTP connection to the port has an HTTP chain (PERMISSIVE or DISABLE, or no inbound
 *       configuration at all): the server stays plain HTTP. A Vert.x HTTP server cannot take TLS and plaintext on
 *       one port, and Istio's callers send plaintext to a PERMISSIVE workload whose pod has no
 *       {@code security.istio.io/tlsMode} label (auto mTLS), which an Inmesh workload without a sidecar has not;
 *   <li>only TLS connections have an HTTP chain (Istio's STRICT PeerAuthentication: the port's chains match
 *       {@code transport_protocol: tls}): the server terminates TLS as that chain's {@code DownstreamTlsContext} says
 *       (Istio's: the workload certificate from the identity directory, clients verified against {@code ROOTCA} and
 *       the trust domain's SPIFFE prefix, a client certificate required, ALPN {@code h2}, {@code http/1.1}), with
 *       the certificate, key and CAs of the newest configuration and files at each handshake
 *       ({@link ServerTls});
 *   <li>only TLS, with secrets Inmesh has no source for (Istio's {@code default} and {@code ROOTCA} without an
 *       identity directory): an error naming the setting.
 * </ul>
 */
public final class InboundTls {
    /** Istio's inbound listener, whose chains the in-JVM inbound side follows. */
    static final String LISTENER = "virtualInbound";
    /** A caller's address when none is known yet: not this host. */
    private static final String ANY_SOURCE = "0.0.0.0";

    private InboundTls() {}

    /**
     * The options of the application's server on {@code base}'s port: a copy of {@code base}, with TLS when only TLS
     * connections to the port have an HTTP chain in the current configuration.
     *
     * @param ip the workload's address, which the chains' destination ranges are matched with
     * @throws IllegalStateException when the port takes TLS only, with Istio secrets there is no identity directory
     *     for
     */
    public static HttpServerOptions serverOptions(SnapshotHolder snapshots, HttpServerOptions base, String ip) {
        HttpServerOptions options = new HttpServerOptions(base);
        int port = base.getPort();
        FilterChainSelector inbound = snapshots.current().listener(LISTENER);
        if (inbound == null) {
            return options;
        }
        FilterChain plain = inbound.select(ConnectionInfo.http(ip, port, ANY_SOURCE, 0));
        if (http(plain)) {
            return headLimits(options, base, (HttpConnectionManager) plain.filter());
        }
        FilterChain chain = tlsChain(inbound, ip, port);
        if (chain == null) {
            return options; // no HTTP chain takes the port at all: nothing to follow
        }
        headLimits(options, base, (HttpConnectionManager) chain.filter());
        DownstreamTls tls = inbound.tls(chain);
        if (tls == null) {
            throw new IllegalStateException("port " + port + " takes mTLS only (filter chain " + chain.name() + " of "
                    + LISTENER + ", as for Istio's STRICT PeerAuthentication), whose certificate and CAs are Istio's "
                    + "SDS secrets default and ROOTCA: set the workload identity directory (inmesh.identity.dir, "
                    + "MeshOptions.setIdentityDir), which Istio's agent or inmesh.identity.ca.enabled fills");
        }
        // an Istio sidecar's SNI (outbound_.PORT_._.HOST) is no DNS name, which the JDK's TLS servers refuse
        ServerTls.acceptIstioServerNames();
        return ServerTls.apply(options, tls.context(), new PortTls(snapshots, ip, port, tls));
    }

    /**
     * Vert.x's own limits on a request's head raised to take what the port's connection manager takes
     * ({@code max_request_headers_kb}, default 60 KiB, the request line within it; {@code max_headers_count}): Vert.x
     * refuses an HTTP/1 head over 8 KiB and a request line over 4 KiB, and asks HTTP/2 clients for 8 KiB, where
     * Envoy takes 60 KiB; {@link InboundHandler} then refuses what is over the connection manager's limits as Envoy's
     * codec does (431 {@code http1.headers_too_large}, {@code http1.too_many_headers}; an HTTP/2 stream reset), up
     * to twice the limit, beyond which Vert.x answers 431 itself, unlogged. Limits the application set on
     * {@code base} itself are left as they are.
     */
    private static HttpServerOptions headLimits(HttpServerOptions options, HttpServerOptions base,
                                                HttpConnectionManager hcm) {
        // twice the connection manager's: a head over its limit reaches InboundHandler, which answers and logs it as
        // Envoy's codec does; Vert.x answers one beyond that itself, unlogged
        int bytes = hcm.maxRequestHeadersKb() * 1024;
        if (base.getMaxHeaderSize() == HttpServerOptions.DEFAULT_MAX_HEADER_SIZE) {
            options.setMaxHeaderSize(Math.max(HttpServerOptions.DEFAULT_MAX_HEADER_SIZE, 2 * bytes));
        }
        if (base.getMaxInitialLineLength() == HttpServerOptions.DEFAULT_MAX_INITIAL_LINE_LENGTH) {
            options.setMaxInitialLineLength(Math.max(HttpServerOptions.DEFAULT_MAX_INITIAL_LINE_LENGTH, 2 * bytes));
        }
        io.vertx.core.http.Http2Settings h2 = options.getInitialSettings();
        if (h2 != null && h2.getMaxHeaderListSize() == io.vertx.core.http.Http2Settings.DEFAULT_MAX_HEADER_LIST_SIZE) {
            // HPACK's count: each field's name and value and 32 bytes; twice, as for HTTP/1
            h2.setMaxHeaderListSize(Math.max(h2.getMaxHeaderListSize(),
                    2L * (bytes + 32L * (hcm.maxRequestHeadersCount() + 4))));
        }
        return options;
    }

    /**
     * The ALPN a TLS connection's chain is selected with: what its client offered, kept by a server of
     * {@link #serverOptions}; for a TLS server the application set up itself, the protocol negotiated, which is all
     * it knows.
     */
    static List<String> alpn(javax.net.ssl.SSLSession session, boolean http2) {
        List<String> offered = ServerTls.offeredAlpn(session);
        return offered != null ? offered : List.of(http2 ? "h2" : "http/1.1");
    }

    /**
     * The port's HTTP chain for a TLS connection, as an HTTP caller in the mesh offers ALPN (Istio's names for
     * HTTP/1.1, then for HTTP/2, which Istio's inbound HTTP chains match), else as any other HTTP client does; null
     * when there is none.
     */
    private static FilterChain tlsChain(FilterChainSelector inbound, String ip, int port) {
        for (List<String> alpn : List.of(UpstreamTls.istioHttpAlpn(false), UpstreamTls.istioHttpAlpn(true),
                List.of("h2", "http/1.1"))) {
            FilterChain c = inbound.select(new ConnectionInfo(ip, port, "", "tls", alpn, ANY_SOURCE, 0, false));
            if (c != null && c.tls() && http(c)) {
                return c;
            }
        }
        return null;
    }

    private static boolean http(FilterChain c) {
        return c != null && c.filter() instanceof HttpConnectionManager;
    }

    /**
     * The TLS of the port's chain in the current configuration, looked up again when the configuration changes; one
     * without that chain (or its secrets) leaves the last, as the server keeps terminating TLS.
     */
    private static final class PortTls implements Supplier<DownstreamTls> {
        private final SnapshotHolder snapshots;
        private final String ip;
        private final int port;
        private volatile Resolved last;

        private record Resolved(MeshSnapshot snapshot, DownstreamTls tls) {}

        PortTls(SnapshotHolder snapshots, String ip, int port, DownstreamTls first) {
            this.snapshots = snapshots;
            this.ip = ip;
            this.port = port;
            this.last = new Resolved(snapshots.current(), first);
        }

        @Override
        public DownstreamTls get() {
            MeshSnapshot s = snapshots.current();
            Resolved r = last;
            if (r.snapshot != s) {
                FilterChainSelector inbound = s.listener(LISTENER);
                FilterChain chain = inbound == null ? null : tlsChain(inbound, ip, port);
                DownstreamTls tls = chain == null ? null : inbound.tls(chain);
                r = new Resolved(s, tls == null ? r.tls : tls);
                last = r;
            }
            return r.tls;
        }
    }
}
