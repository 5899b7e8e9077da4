package dev.inmesh.api.config.listener;

import dev.inmesh.api.config.Checks;

/**
 * One of a connection manager's {@code original_ip_detection_extensions}: how the request's downstream address is
 * found when {@code use_remote_address} is false. The extensions are asked in order; the first that finds an address
 * decides, and a request none finds one for has the connection's peer (taken for external).
 */
public sealed interface OriginalIpDetection {
    /**
     * {@code envoy.extensions.http.original_ip_detection.xff}: the {@code x-forwarded-for} entry {@code trustedHops}
     * from the right, as the connection manager's own detection reads it.
     */
    record Xff(int trustedHops) implements OriginalIpDetection {
        public Xff {
            Checks.check(trustedHops >= 0, "xff_num_trusted_hops", trustedHops, ">= 0");
        }
    }

    /**
     * {@code envoy.extensions.http.original_ip_detection.custom_header}: the IP literal in the first
     * {@code headerName} header.
     *
     * @param trusted {@code allow_extension_to_set_address_as_trusted}: the address may make the request internal
     *     (when it is in the internal ranges)
     * @param rejectStatus {@code reject_with_status}: the status a request without such an address is answered
     *     (details {@code rejecting_because_detection_failed}); 0 for none, the next extension then asked
     */
    record CustomHeader(String headerName, boolean trusted, int rejectStatus) implements OriginalIpDetection {
        public CustomHeader {
            Checks.nonEmpty(headerName, "header_name");
            headerName = headerName.toLowerCase(java.util.Locale.ROOT);
            Checks.check(rejectStatus == 0 || rejectStatus >= 100 && rejectStatus <= 599, "reject_with_status",
                    rejectStatus, "an HTTP status");
        }
    }
}
