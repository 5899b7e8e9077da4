package dev.inmesh.runtime.router;

import io.vertx.core.MultiMap;
import java.nio.charset.StandardCharsets;

/**
 * What the router knows of gRPC, as Envoy's {@code Grpc::Common} and {@code Grpc::Utility} define it: which requests
 * are gRPC, the two status mappings (HTTP to gRPC for local replies, gRPC to HTTP for outlier detection), the
 * {@code grpc-status} a finished request ends with, the trailers-only form of a local reply, and the
 * {@code grpc-timeout} header's encoding.
 */
public final class Grpc {
    /** Envoy's stand-in for a {@code grpc-status} that is not a number from 0 to 16. */
    public static final int INVALID_STATUS = -1;
    private static final String CONTENT_TYPE = "application/grpc";
    private static final int MAX_KNOWN_STATUS = 16;
    /** The largest value a {@code grpc-timeout} carries: 8 digits. */
    private static final long MAX_TIMEOUT_VALUE = 99_999_999L;
    private static final char[] HEX = "0123456789ABCDEF".toCharArray();

    private Grpc() {}

    /**
     * Whether a request is gRPC: its content type is {@code application/grpc} exactly or starts with
     * {@code application/grpc+} (so {@code application/grpc-web} is not).
     */
    public static boolean isRequest(MultiMap headers) {
        return isContentType(headers.get(HeaderNames.CONTENT_TYPE));
    }

    /** Whether a content type is gRPC's, as {@link #isRequest} reads it (Envoy's {@code hasGrpcContentType}). */
    public static boolean isContentType(String ct) {
        return ct != null && ct.startsWith(CONTENT_TYPE)
                && (ct.length() == CONTENT_TYPE.length() || ct.charAt(CONTENT_TYPE.length()) == '+');
    }

    /** The gRPC status a local reply with this HTTP status carries (gRPC's HTTP-to-gRPC status mapping). */
    public static int fromHttp(int status) {
        return switch (status) {
            case 400 -> 13; // INTERNAL
            case 401 -> 16; // UNAUTHENTICATED
            case 403 -> 7; // PERMISSION_DENIED
            case 404 -> 12; // UNIMPLEMENTED
            case 429, 502, 503, 504 -> 14; // UNAVAILABLE
            default -> 2; // UNKNOWN
        };
    }

    /** The HTTP status a gRPC status stands for (Google's API error mapping), as outlier detection counts it. */
    public static int toHttp(int grpcStatus) {
        return switch (grpcStatus) {
            case 0 -> 200;
            case 1 -> 499; // CANCELLED: client closed request
            case 3, 9, 11 -> 400; // INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
            case 4 -> 504; // DEADLINE_EXCEEDED
            case 5 -> 404;
            case 6, 10 -> 409; // ALREADY_EXISTS, ABORTED
            case 7 -> 403;
            case 8 -> 429; // RESOURCE_EXHAUSTED
            case 12 -> 501; // UNIMPLEMENTED
            case 14 -> 503; // UNAVAILABLE
            case 16 -> 401; // UNAUTHENTICATED
            default -> 500; // UNKNOWN, INTERNAL, DATA_LOSS, and any invalid code
        };
    }

    /**
     * A {@code grpc-status} header's value as a status, read as Envoy's {@code getGrpcStatus} reads it (absl's
     * {@code SimpleAtoi}: whitespace around it, a {@code +} and leading zeros taken, so {@code 014} is 14): null when
     * absent or empty, {@link #INVALID_STATUS} when it is no such number or above 16.
     */
    public static Integer parseStatus(String v) {
        if (v == null || v.isEmpty()) {
            return null;
        }
        long n = simpleAtoi(v, v.length(), MAX_KNOWN_STATUS);
        return n < 0 ? INVALID_STATUS : (int) n;
    }

    /**
     * The first {@code end} characters of {@code v} as absl's {@code SimpleAtoi} reads an unsigned number (whitespace
     * around it, a {@code +} and leading zeros taken, however many digits); -1 when they are no such number or it is
     * above {@code max}.
     */
    static long simpleAtoi(String v, int end, long max) {
        int from = 0;
        int to = end;
        while (from < to && isAsciiSpace(v.charAt(from))) {
            from++;
        }
        while (to > from && isAsciiSpace(v.charAt(to - 1))) {
            to--;
        }
        if (from < to && v.charAt(from) == '+') {
            from++;
        }
        if (from == to) {
            return -1;
        }
        long n = 0;
        for (int i = from; i < to; i++) {
            char c = v.charAt(i);
            if (c < '0' || c > '9') {
                return -1;
            }
            n = n * 10 + (c - '0');
            if (n > max) {
                return -1; // (and no overflow, however many digits)
            }
        }
        return n;
    }

    /** The whitespace absl's {@code SimpleAtoi} strips: space, tab, CR, LF, VT and FF. */
    private static boolean isAsciiSpace(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0x0b || c == '\f';
    }

    /**
     * The gRPC status a gRPC request finished with, as the text of a metric label: the {@code grpc-status} of the
     * trailers, else of the headers, else the one the HTTP status maps to; empty when no response was sent.
     *
     * @param trailers the response trailers, or null
     * @param headers the response headers, or null
     * @param responseCode the HTTP status sent, 0 for none
     */
    public static String finalStatus(MultiMap trailers, MultiMap headers, int responseCode) {
        Integer s = trailers == null ? null : parseStatus(trailers.get(HeaderNames.GRPC_STATUS));
        if (s == null && headers != null) {
            s = parseStatus(headers.get(HeaderNames.GRPC_STATUS));
        }
        if (s == null && responseCode > 0) {
            s = fromHttp(responseCode);
        }
        return s == null ? "" : Integer.toString(s);
    }

    /**
     * Turns a local reply's headers into a gRPC trailers-only response, as Envoy answers a gRPC request itself: the
     * HTTP status becomes 200 (the caller sends that), {@code content-type} {@code application/grpc},
     * {@code grpc-status} the mapped status unless the headers already carry one, and {@code grpc-message} the body,
     * percent-encoded (not for HEAD). The caller sends no body.
     */
    public static void toTrailersOnly(MultiMap h, int status, String body, boolean head) {
        h.set(HeaderNames.CONTENT_TYPE, CONTENT_TYPE);
        // as Envoy's gRPC local reply: no content-length (an HTTP/1 codec writes its own 0)
        h.remove(HeaderNames.CONTENT_LENGTH);
        String current = h.get(HeaderNames.GRPC_STATUS);
        if (current == null || current.isEmpty()) {
            h.set(HeaderNames.GRPC_STATUS, Integer.toString(fromHttp(status)));
        }
        if (body != null && !body.isEmpty() && !head) {
            h.set(HeaderNames.GRPC_MESSAGE, percentEncode(body));
        }
    }

    /**
     * gRPC's percent-encoding of {@code grpc-message} as Envoy writes it: the UTF-8 bytes outside 0x20 to 0x7D, and
     * {@code %} itself, become {@code %XX} (Envoy encodes '~' too, which gRPC's spec would leave).
     */
    static String percentEncode(String s) {
        int i = 0;
        while (i < s.length() && printable(s.charAt(i))) {
            i++;
        }
        if (i == s.length()) {
            return s;
        }
        return percentEncode(s.getBytes(StandardCharsets.UTF_8));
    }

    /** As {@link #percentEncode(String)}, for bytes as they came (a response body that is not gRPC, say). */
    static String percentEncode(byte[] bytes) {
        StringBuilder b = new StringBuilder(bytes.length + 16);
        for (byte x : bytes) {
            int c = x & 0xFF;
            if (printable((char) c)) {
                b.append((char) c);
            } else {
                b.append('%').append(HEX[c >> 4]).append(HEX[c & 0xF]);
            }
        }
        return b.toString();
    }

    /** Kept as it is: ' ' up to '}' but '%', as Envoy's {@code PercentEncoding::encode} ('~' is encoded too). */
    private static boolean printable(char c) {
        return c >= 0x20 && c < '~' && c != '%';
    }

    /**
     * A timeout in milliseconds as a {@code grpc-timeout} value: milliseconds while they fit in 8 digits, else the
     * largest unit (seconds, minutes, hours) that does, rounded down; at most 99999999 hours (Envoy's
     * {@code Grpc::Common::toGrpcTimeout}).
     */
    public static String timeoutValue(long millis) {
        long t = millis;
        String units = "mSMH";
        int unit = 0;
        if (t > MAX_TIMEOUT_VALUE) {
            t /= 1000;
            unit++;
        }
        while (t > MAX_TIMEOUT_VALUE) {
            if (unit == units.length() - 1) {
                t = MAX_TIMEOUT_VALUE;
            } else {
                t /= 60;
                unit++;
            }
        }
        return t + units.substring(unit, unit + 1);
    }
}
