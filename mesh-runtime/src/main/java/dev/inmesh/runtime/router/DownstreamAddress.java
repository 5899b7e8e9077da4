package dev.inmesh.runtime.router;

import dev.inmesh.api.config.core.CidrRange;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.OriginalIpDetection;
import dev.inmesh.api.config.listener.RemoteAddressOptions;
import dev.inmesh.runtime.listener.Cidrs;
import dev.inmesh.runtime.net.IpLiterals;
import dev.inmesh.runtime.net.LocalAddress;
import io.netty.util.AsciiString;
import io.vertx.core.MultiMap;
import java.util.List;

/**
 * What Envoy's HTTP connection manager makes of a request's downstream (its {@code mutateRequestHeaders}): the
 * stream's downstream remote address, whether the request is internal, and the forwarded headers it writes. One
 * function for the in-JVM inbound, the in-JVM client and the standalone proxy.
 *
 * <p>With {@code use_remote_address: false} (Istio's sidecars) the address is the last {@code x-forwarded-for} entry
 * (past {@code xff_num_trusted_hops} more), the header goes on as it came, and only a request whose header holds one
 * address, of the internal ranges, is internal. With {@code true} (Istio's gateways) the address is the connection's
 * peer, or the entry {@code xff_num_trusted_hops} from the right before this hop's; the peer (this host's address for
 * a loopback one) is appended to {@code x-forwarded-for} unless {@code skip_xff_append}; {@code x-forwarded-proto} is
 * the connection's unless a trusted hop set one; a request is internal only when it came without
 * {@code x-forwarded-for} from an internal address; any other is an edge request, which gets
 * {@code x-envoy-external-address} and a fresh {@code x-request-id} (unless {@code preserve_external_request_id}) and
 * loses {@code x-envoy-decorator-operation}, {@code x-envoy-downstream-service-cluster} and {@code -node}.
 */
public final class DownstreamAddress {
    private DownstreamAddress() {}

    private static final AsciiString X_FORWARDED_PORT = AsciiString.cached("x-forwarded-port");
    private static final AsciiString X_ENVOY_EXTERNAL_ADDRESS = AsciiString.cached("x-envoy-external-address");
    /** What Envoy's connection manager takes off an edge request only ({@code cleanInternalHeaders}). */
    private static final AsciiString[] EDGE_ONLY = HeaderNames.of("x-envoy-decorator-operation",
            "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node");

    /**
     * The outcome for one request.
     *
     * @param remoteAddress the stream's downstream remote address, {@code ip:port} ({@code ip:0} when it came from
     *                      {@code x-forwarded-for}), or the peer as it was given when no IP is known
     * @param internal whether the connection manager takes the request for internal
     */
    public record Outcome(String remoteAddress, boolean internal, int rejectStatus) {
        public Outcome(String remoteAddress, boolean internal) {
            this(remoteAddress, internal, 0);
        }
    }

    /**
     * Envoy's response code details of a request an original IP detection extension refused
     * ({@link Outcome#rejectStatus}).
     */
    public static final String DETECTION_FAILED = "rejecting_because_detection_failed";

    /**
     * Finds the downstream address of a request on a connection from {@code peer} ({@code ip:port}, an IPv6 address
     * in brackets; anything else is a peer without an IP, such as a Unix socket's) to local port {@code localPort}
     * (0: unknown), and writes the forwarded headers {@code hcm} (null: Envoy's defaults) says on {@code headers}.
     */
    public static Outcome apply(HttpConnectionManager hcm, MultiMap headers, String peer, boolean tls,
                                int localPort) {
        RemoteAddressOptions options = hcm == null ? RemoteAddressOptions.DEFAULTS : hcm.remoteAddressOptions();
        int hops = hcm == null ? 0 : hcm.xffNumTrustedHops();
        if (hcm == null || !hcm.useRemoteAddress()) {
            if (options.appendXForwardedPort() && !headers.contains(X_FORWARDED_PORT) && localPort > 0) {
                headers.set(X_FORWARDED_PORT, Integer.toString(localPort));
            }
            if (!options.originalIpDetection().isEmpty()) {
                return detected(hcm, options.originalIpDetection(), headers, peer);
            }
            if (hops == 0) {
                return new Outcome(RouterRequest.remoteAddress(headers, peer),
                        RouterRequest.internal(hcm, headers.get(HeaderNames.X_FORWARDED_FOR)));
            }
            // as Envoy's x-forwarded-for detection past trusted hops: never a single address, so never internal
            byte[] ip = forwardedIp(xff(headers), hops);
            return new Outcome(ip == null ? peer : withPort0(ip), false);
        }
        String xff = xff(headers);
        byte[] trusted = hops > 0 ? forwardedIp(xff, hops - 1) : null;
        byte[] peerIp = peerIp(peer);
        if (!options.skipXffAppend() && peerIp != null) {
            String hop = loopback(peerIp) ? LocalAddress.get() : IpLiterals.format(peerIp);
            headers.set(HeaderNames.X_FORWARDED_FOR, xff == null || xff.isEmpty() ? hop : xff + "," + hop);
        }
        if (hops == 0 || !headers.contains(HeaderNames.X_FORWARDED_PROTO)) {
            headers.set(HeaderNames.X_FORWARDED_PROTO, tls ? "https" : "http");
        }
        if (options.appendXForwardedPort() && (hops == 0 || !headers.contains(X_FORWARDED_PORT)) && localPort > 0) {
            headers.set(X_FORWARDED_PORT, Integer.toString(localPort));
        }
        byte[] ip = trusted != null ? trusted : peerIp;
        boolean internal = xff == null && (ip != null ? internal(hcm.internalAddresses(), ip)
                : peer != null && options.unixSocketsInternal());
        if (!internal) {
            for (AsciiString name : EDGE_ONLY) {
                headers.remove(name);
            }
            if (ip != null) {
                headers.set(X_ENVOY_EXTERNAL_ADDRESS, IpLiterals.format(ip));
            }
            if (hcm.generateRequestId() && !hcm.preserveExternalRequestId()) {
                headers.set(HeaderNames.X_REQUEST_ID, RequestIds.next());
            }
        }
        return new Outcome(trusted != null ? withPort0(trusted) : peer, internal);
    }

    /**
     * The outcome of {@code original_ip_detection_extensions}, asked in order as Envoy's connection manager asks them:
     * the first that finds an address decides (internal when it may be trusted, as the XFF detection's single address
     * or the custom header's {@code allow_extension_to_set_address_as_trusted} says, and it is in the internal
     * ranges); one that finds none and rejects ends the request with its status; with none found, the peer's address,
     * external.
     */
    private static Outcome detected(HttpConnectionManager hcm, List<OriginalIpDetection> detections,
                                    MultiMap headers, String peer) {
        for (OriginalIpDetection d : detections) {
            if (d instanceof OriginalIpDetection.Xff x) {
                String xff = xff(headers);
                byte[] ip = forwardedIp(xff, x.trustedHops());
                if (ip != null) {
                    boolean single = x.trustedHops() == 0 && xff.indexOf(',') < 0;
                    return new Outcome(withPort0(ip), single && internal(hcm.internalAddresses(), ip));
                }
            } else if (d instanceof OriginalIpDetection.CustomHeader c) {
                String value = headers.get(c.headerName());
                byte[] ip = value == null ? null : IpLiterals.parse(value);
                if (ip != null) {
                    return new Outcome(withPort0(ip), c.trusted() && internal(hcm.internalAddresses(), ip));
                }
                if (c.rejectStatus() != 0) {
                    return new Outcome(peer, false, c.rejectStatus());
                }
            }
        }
        return new Outcome(peer, false);
    }

    /**
     * Whether {@code hcm} (null: Envoy's defaults) is Istio's sidecars' connection manager: {@code use_remote_address:
     * false}, no trusted hops, no {@code append_x_forwarded_port}. It writes nothing then, the address is
     * {@link RouterRequest#remoteAddress} and internal is
     * {@link RouterRequest#internal(HttpConnectionManager, String)}: callers take that way on the common path, without
     * {@link #apply}'s outcome.
     */
    public static boolean writesNothing(HttpConnectionManager hcm) {
        return hcm == null || !hcm.useRemoteAddress() && hcm.xffNumTrustedHops() == 0
                && !hcm.remoteAddressOptions().appendXForwardedPort()
                && hcm.remoteAddressOptions().originalIpDetection().isEmpty();
    }

    /**
     * The IP of a downstream address found on a connection from {@code peer} (the same string when it is the
     * peer's): the peer's as Java reports it (an IPv4-mapped one as IPv4), an {@code x-forwarded-for} one as Envoy
     * parses it.
     */
    public static byte[] remoteIp(String remoteAddress, String peer) {
        return ip(remoteAddress, remoteAddress == peer);
    }

    /** The request's {@code x-forwarded-for}, several headers read as one joined by commas, or null for none. */
    static String xff(MultiMap headers) {
        return HeaderValues.joined(headers, HeaderNames.X_FORWARDED_FOR);
    }

    /**
     * Envoy's {@code getLastAddressFromXFF}: past the last {@code skip} entries, the last one of {@code xff}, trimmed,
     * when it is an IP literal (an IPv4-mapped IPv6 one stays IPv6, as Envoy parses it); else null, also when the
     * header has too few entries.
     */
    static byte[] forwardedIp(String xff, int skip) {
        if (xff == null) {
            return null;
        }
        String rest = xff;
        for (int i = 0; i < skip; i++) {
            int comma = rest.lastIndexOf(',');
            if (comma < 0) {
                return null;
            }
            rest = rest.substring(0, comma);
        }
        return IpLiterals.parse(rest.substring(rest.lastIndexOf(',') + 1).trim());
    }

    static String withPort0(byte[] ip) {
        return IpLiterals.withPort(IpLiterals.format(ip), 0);
    }

    /** The IP of {@code ip:port} ({@code [v6]:port}), or null when it is none. */
    private static byte[] peerIp(String peer) {
        return ip(peer, false);
    }

    /**
     * The IP of {@code address} ({@code ip:port}, {@code [v6]:port}), or null; an IPv4-mapped one as IPv4 when it is a
     * connection's ({@code connection}), as Java's sockets report such a peer.
     */
    static byte[] ip(String address, boolean connection) {
        if (address == null) {
            return null;
        }
        int colon = address.lastIndexOf(':');
        String ip = IpLiterals.unbracketed(colon > 0 && (address.startsWith("[") || address.indexOf(':') == colon)
                ? address.substring(0, colon) : address);
        return connection ? Cidrs.bytes(ip) : IpLiterals.parse(ip);
    }

    /** Envoy's {@code isLoopbackAddress}: 127.0.0.1 or ::1, no other. */
    private static boolean loopback(byte[] ip) {
        if (ip.length == 4) {
            return ip[0] == 127 && ip[1] == 0 && ip[2] == 0 && ip[3] == 1;
        }
        for (int i = 0; i < 15; i++) {
            if (ip[i] != 0) {
                return false;
            }
        }
        return ip[15] == 1;
    }

    private static boolean internal(List<CidrRange> ranges, byte[] ip) {
        for (CidrRange range : ranges) {
            if (Cidrs.contains(range, ip)) {
                return true;
            }
        }
        return false;
    }
}
