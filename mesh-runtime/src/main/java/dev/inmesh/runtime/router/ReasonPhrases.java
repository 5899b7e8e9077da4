package dev.inmesh.runtime.router;

import io.netty.handler.codec.http.HttpResponseStatus;

/**
 * The reason phrase of an HTTP/1 status line, as Envoy's HTTP/1 codec writes it: the IANA registry's name of the codes
 * Envoy knows, {@code Unknown} for any other (a 418 or 499 an upstream answers, a 600). Envoy writes its own phrase,
 * not the upstream's, and so does the proxy.
 */
public final class ReasonPhrases {
    private ReasonPhrases() {}

    private static final HttpResponseStatus[] STATUSES = new HttpResponseStatus[1000];

    static {
        String[] known = {
            "100 Continue", "101 Switching Protocols",
            "200 OK", "201 Created", "202 Accepted", "203 Non-Authoritative Information", "204 No Content",
            "205 Reset Content", "206 Partial Content", "207 Multi-Status", "208 Already Reported", "226 IM Used",
            "300 Multiple Choices", "301 Moved Permanently", "302 Found", "303 See Other", "304 Not Modified",
            "305 Use Proxy", "307 Temporary Redirect", "308 Permanent Redirect",
            "400 Bad Request", "401 Unauthorized", "402 Payment Required", "403 Forbidden", "404 Not Found",
            "405 Method Not Allowed", "406 Not Acceptable", "407 Proxy Authentication Required",
            "408 Request Timeout", "409 Conflict", "410 Gone", "411 Length Required", "412 Precondition Failed",
            "413 Payload Too Large", "414 URI Too Long", "415 Unsupported Media Type", "416 Range Not Satisfiable",
            "417 Expectation Failed", "421 Misdirected Request", "422 Unprocessable Entity", "423 Locked",
            "424 Failed Dependency", "425 Too Early", "426 Upgrade Required", "428 Precondition Required", "429 Too Many Requests",
            "431 Request Header Fields Too Large",
            "500 Internal Server Error", "501 Not Implemented", "502 Bad Gateway", "503 Service Unavailable",
            "504 Gateway Timeout", "505 HTTP Version Not Supported", "506 Variant Also Negotiates",
            "507 Insufficient Storage", "508 Loop Detected", "510 Not Extended",
            "511 Network Authentication Required", "599 Last Unassigned Server Error Code"};
        for (String k : known) {
            int code = Integer.parseInt(k.substring(0, 3));
            STATUSES[code] = new HttpResponseStatus(code, k.substring(4));
        }
        for (int code = 100; code < STATUSES.length; code++) {
            if (STATUSES[code] == null) {
                STATUSES[code] = new HttpResponseStatus(code, "Unknown");
            }
        }
    }

    /** The status with Envoy's reason phrase (a code outside 100..999 gets Netty's own). */
    public static HttpResponseStatus status(int code) {
        return code >= 100 && code < STATUSES.length ? STATUSES[code] : HttpResponseStatus.valueOf(code);
    }

    /** Envoy's reason phrase of a status code. */
    public static String of(int code) {
        return status(code).reasonPhrase();
    }
}
