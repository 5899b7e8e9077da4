package dev.inmesh.api.config.listener;

import java.util.Objects;

/**
 * How an HTTP connection manager normalizes request paths before routing (and as they go upstream): Envoy's
 * {@code normalize_path}, {@code merge_slashes} and {@code path_with_escaped_slashes_action}, which Istio sets from
 * its mesh-wide {@code pathNormalization} ({@code BASE}: normalize; {@code MERGE_SLASHES}: and merge;
 * {@code DECODE_AND_MERGE_SLASHES}: and unescape slashes).
 *
 * @param normalizePath RFC 3986 normalization of the path: percent-encoded unreserved characters decoded (other
 *                      percent-encodings kept as they came), {@code .} and {@code ..} segments removed
 * @param mergeSlashes runs of {@code /} made one
 * @param escapedSlashes what {@code %2F} and {@code %5C} in the path do
 */
public record PathNormalization(boolean normalizePath, boolean mergeSlashes, EscapedSlashes escapedSlashes) {
    /** Nothing changed: Envoy's defaults. */
    public static final PathNormalization NONE = new PathNormalization(false, false, EscapedSlashes.KEEP_UNCHANGED);

    /** Envoy's {@code path_with_escaped_slashes_action}. */
    public enum EscapedSlashes {
        /** Left as they are (Envoy's default). */
        KEEP_UNCHANGED,
        /** A request whose path has one is answered 400. */
        REJECT_REQUEST,
        /** Decoded to {@code /} and {@code \} before the other steps, and forwarded so. */
        UNESCAPE_AND_FORWARD,
        /**
         * Decoded as {@link #UNESCAPE_AND_FORWARD}, after which a request whose path had one is answered
         * {@code 307} with the normalized path (and query) as its {@code Location}, so that the client asks again
         * with the path every party reads alike; a gRPC request, which cannot follow it, is answered 400.
         */
        UNESCAPE_AND_REDIRECT
    }

    public PathNormalization {
        Objects.requireNonNull(escapedSlashes, "path_with_escaped_slashes_action");
    }

    /** Whether the path is left exactly as it came. */
    public boolean none() {
        return !normalizePath && !mergeSlashes && escapedSlashes == EscapedSlashes.KEEP_UNCHANGED;
    }
}
