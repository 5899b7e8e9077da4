package dev.inmesh.runtime.router;

import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;

/**
 * {@code x-request-id} values: random (version 4) UUIDs, as Envoy generates them. They identify requests in logs and
 * traces and need no cryptographic strength, so they come from {@link ThreadLocalRandom} rather than
 * {@link UUID#randomUUID()}'s shared {@code SecureRandom}, which would contend on the request path.
 */
public final class RequestIds {
    private RequestIds() {}

    /** A new version 4, IETF variant UUID in its canonical text form. */
    public static String next() {
        ThreadLocalRandom r = ThreadLocalRandom.current();
        long msb = (r.nextLong() & 0xFFFFFFFFFFFF0FFFL) | 0x0000000000004000L;
        long lsb = (r.nextLong() & 0x3FFFFFFFFFFFFFFFL) | 0x8000000000000000L;
        return new UUID(msb, lsb).toString();
    }
}
