package dev.inmesh.runtime.upstream;

/**
 * A failure that happened on our side of the connection, reported to outlier detection. Unless
 * {@code split_external_local_origin_errors} is set, each counts as the HTTP status Envoy maps it to: a connect
 * failure or a reset as 503, a timeout as 504, so they count toward both consecutive 5xx and consecutive gateway
 * failures.
 */
public enum LocalOriginFailure {
    CONNECT_FAILED(503),
    TIMEOUT(504),
    RESET(503);

    private final int httpStatus;

    LocalOriginFailure(int httpStatus) {
        this.httpStatus = httpStatus;
    }

    /** The status this failure counts as when local and external errors are not split. */
    public int httpStatus() {
        return httpStatus;
    }
}
