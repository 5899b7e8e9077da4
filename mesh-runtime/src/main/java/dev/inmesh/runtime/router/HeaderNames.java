package dev.inmesh.runtime.router;

import io.netty.util.AsciiString;

/**
 * Header names the router reads and writes on every request, as {@link AsciiString}s: Vert.x's and Netty's header
 * maps hash a name on every lookup, and an AsciiString keeps its (case-insensitive) hash, where a String's is computed
 * again each time (about a tenth of the in-JVM client's samples went to hashing these names).
 */
final class HeaderNames {
    static final AsciiString X_REQUEST_ID = AsciiString.cached("x-request-id");
    static final AsciiString SERVER = AsciiString.cached("server");
    static final AsciiString DATE = AsciiString.cached("date");
    static final AsciiString X_FORWARDED_PROTO = AsciiString.cached("x-forwarded-proto");
    static final AsciiString VIA = AsciiString.cached("via");
    static final AsciiString X_FORWARDED_FOR = AsciiString.cached("x-forwarded-for");
    static final AsciiString X_FORWARDED_CLIENT_CERT = AsciiString.cached("x-forwarded-client-cert");
    static final AsciiString X_ENVOY_PEER_METADATA = AsciiString.cached("x-envoy-peer-metadata");
    static final AsciiString X_ENVOY_PEER_METADATA_ID = AsciiString.cached("x-envoy-peer-metadata-id");
    static final AsciiString X_ENVOY_ORIGINAL_PATH = AsciiString.cached("x-envoy-original-path");
    static final AsciiString X_ENVOY_UPSTREAM_SERVICE_TIME = AsciiString.cached("x-envoy-upstream-service-time");
    static final AsciiString X_ENVOY_ATTEMPT_COUNT = AsciiString.cached("x-envoy-attempt-count");
    static final AsciiString X_ENVOY_IS_TIMEOUT_RETRY = AsciiString.cached("x-envoy-is-timeout-retry");
    static final AsciiString X_ENVOY_EXPECTED_RQ_TIMEOUT_MS = AsciiString.cached("x-envoy-expected-rq-timeout-ms");
    static final AsciiString X_ENVOY_RATELIMITED = AsciiString.cached("x-envoy-ratelimited");
    static final AsciiString X_ENVOY_IMMEDIATE_HEALTH_CHECK_FAIL =
            AsciiString.cached("x-envoy-immediate-health-check-fail");
    static final AsciiString GRPC_STATUS = AsciiString.cached("grpc-status");
    static final AsciiString GRPC_MESSAGE = AsciiString.cached("grpc-message");
    static final AsciiString GRPC_TIMEOUT = AsciiString.cached("grpc-timeout");
    static final AsciiString CONTENT_TYPE = AsciiString.cached("content-type");
    static final AsciiString CONTENT_LENGTH = AsciiString.cached("content-length");
    static final AsciiString USER_AGENT = AsciiString.cached("user-agent");
    static final AsciiString TE = AsciiString.cached("te");
    static final AsciiString CONNECTION = AsciiString.cached("connection");
    static final AsciiString UPGRADE = AsciiString.cached("upgrade");
    static final AsciiString KEEP_ALIVE = AsciiString.cached("keep-alive");
    static final AsciiString PROXY_CONNECTION = AsciiString.cached("proxy-connection");
    static final AsciiString TRANSFER_ENCODING = AsciiString.cached("transfer-encoding");

    private HeaderNames() {
    }

    static AsciiString[] of(String... names) {
        AsciiString[] a = new AsciiString[names.length];
        for (int i = 0; i < names.length; i++) {
            a[i] = AsciiString.cached(names[i]);
        }
        return a;
    }
}
