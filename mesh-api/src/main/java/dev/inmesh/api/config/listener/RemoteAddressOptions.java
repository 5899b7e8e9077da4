package dev.inmesh.api.config.listener;

/**
 * The settings of an HTTP connection manager, besides {@code use_remote_address} and {@code xff_num_trusted_hops},
 * that say what it writes about the request's downstream and whom it takes for internal.
 *
 * @param skipXffAppend Envoy's {@code skip_xff_append}: with {@code use_remote_address: true}, the connection's peer
 *                      is not appended to {@code x-forwarded-for} (the downstream address is found as without it)
 * @param appendXForwardedPort Envoy's {@code append_x_forwarded_port}: the request gets {@code x-forwarded-port}, the
 *                             port its connection arrived at, when it has none (and, with {@code use_remote_address:
 *                             true} and no trusted hops, over the one it has)
 * @param unixSocketsInternal {@code internal_address_config.unix_sockets}: with {@code use_remote_address: true}, a
 *                            request from a Unix domain socket peer (no IP) that came without
 *                            {@code x-forwarded-for} is internal
 * @param originalIpDetection its {@code original_ip_detection_extensions}, in order, which find the downstream
 *                            address under {@code use_remote_address: false} instead of {@code x-forwarded-for};
 *                            empty: that header, past {@code xff_num_trusted_hops}
 */
public record RemoteAddressOptions(boolean skipXffAppend, boolean appendXForwardedPort,
                                   boolean unixSocketsInternal, java.util.List<OriginalIpDetection> originalIpDetection) {
    /** Envoy's defaults: the peer is appended, no {@code x-forwarded-port}, a Unix socket peer is external. */
    public static final RemoteAddressOptions DEFAULTS = new RemoteAddressOptions(false, false, false);

    /** Without original IP detection extensions. */
    public RemoteAddressOptions(boolean skipXffAppend, boolean appendXForwardedPort, boolean unixSocketsInternal) {
        this(skipXffAppend, appendXForwardedPort, unixSocketsInternal, java.util.List.of());
    }

    public RemoteAddressOptions {
        originalIpDetection = originalIpDetection == null ? java.util.List.of()
                : java.util.List.copyOf(originalIpDetection);
    }
}
