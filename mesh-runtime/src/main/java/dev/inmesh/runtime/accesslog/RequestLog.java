package dev.inmesh.runtime.accesslog;

import io.vertx.core.MultiMap;

/**
 * What a finished request carries for the access logs of the connection manager it came through: those logs, and
 * the request's and response's headers as they were when it ended (references to the maps, not copies).
 *
 * @param logs the connection manager's access logs ({@link AccessLogs#NONE} when it names none)
 * @param requestHeaders the request's headers, after the router's changes
 * @param responseHeaders the headers of the response sent to the caller, or null when none was sent
 * @param responseTrailers the response's trailers, or null
 * @param path the {@code :path} that went upstream (after a rewrite), or null
 * @param scheme the request's scheme, or null
 * @param traced whether a sampled span traced the request
 * @param tls the TLS the request's downstream connection came over, or null for none
 */
public record RequestLog(AccessLogs logs, MultiMap requestHeaders, MultiMap responseHeaders,
                         MultiMap responseTrailers, String path, String scheme, boolean traced, TlsDetails tls) {
    public RequestLog {
        logs = logs == null ? AccessLogs.NONE : logs;
    }

    /** A request whose downstream connection's TLS is not known. */
    public RequestLog(AccessLogs logs, MultiMap requestHeaders, MultiMap responseHeaders, MultiMap responseTrailers,
                      String path, String scheme, boolean traced) {
        this(logs, requestHeaders, responseHeaders, responseTrailers, path, scheme, traced, null);
    }
}
