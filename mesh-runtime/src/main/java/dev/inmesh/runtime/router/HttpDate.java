package dev.inmesh.runtime.router;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Locale;

/**
 * The {@code date} a connection manager writes on a response that has none, as Envoy's date provider gives it: the
 * current second in RFC 9110's IMF-fixdate form ({@code Sun, 06 Nov 1994 08:49:37 GMT}), formatted once a second.
 */
public final class HttpDate {
    private static final DateTimeFormatter IMF_FIXDATE =
            DateTimeFormatter.ofPattern("EEE, dd MMM yyyy HH:mm:ss 'GMT'", Locale.ROOT).withZone(ZoneOffset.UTC);
    private static volatile Second cached = new Second(-1, "");

    private record Second(long epochSecond, String text) {}

    private HttpDate() {}

    /** The header's value for now. */
    public static String now() {
        long s = System.currentTimeMillis() / 1000;
        Second c = cached;
        if (c.epochSecond != s) {
            c = new Second(s, IMF_FIXDATE.format(Instant.ofEpochSecond(s)));
            cached = c;
        }
        return c.text;
    }
}
