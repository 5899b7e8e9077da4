package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.Test;

class GrpcHealthMessagesTest {
    private static Buffer frame(int flags, byte... message) {
        return Buffer.buffer().appendByte((byte) flags).appendInt(message.length).appendBytes(message);
    }

    private static final Buffer SERVING = frame(0, (byte) 0x08, (byte) 1);

    @Test
    void aRequestIsAFramedHealthCheckRequestWithTheServiceOnlyWhenNamed() {
        assertArrayEquals(new byte[] {0, 0, 0, 0, 5, 0x0a, 3, 's', 'v', 'c'},
                GrpcHealthMessages.request("svc").getBytes());
        assertArrayEquals(new byte[] {0, 0, 0, 0, 0}, GrpcHealthMessages.request("").getBytes());
    }

    /** As Envoy's toGrpcTimeout: at most 8 digits, in the smallest unit that fits. */
    @Test
    void theGrpcTimeoutIsInMillisecondsWhileTheyFitEightDigits() {
        assertEquals("500m", dev.inmesh.runtime.router.Grpc.timeoutValue(500));
        assertEquals("99999999m", dev.inmesh.runtime.router.Grpc.timeoutValue(99_999_999L));
        assertEquals("100000S", dev.inmesh.runtime.router.Grpc.timeoutValue(100_000_000L));
    }

    @Test
    void oneServingMessageSplitAnywherePassesAndAnEmptyMessageIsSkipped() {
        var reader = new GrpcHealthMessages.ResponseReader();
        Buffer all = frame(0).appendBuffer(SERVING);
        for (int i = 0; i < all.length(); i++) {
            assertTrue(reader.feed(all.getBuffer(i, i + 1)));
        }
        assertTrue(reader.serving());
    }

    @Test
    void aCompressedFrameASecondMessageOrAnUnparsableOneCannotPass() {
        var compressed = new GrpcHealthMessages.ResponseReader();
        assertFalse(compressed.feed(frame(1, (byte) 0x08, (byte) 1)));
        assertFalse(compressed.serving());
        var twice = new GrpcHealthMessages.ResponseReader();
        assertFalse(twice.feed(SERVING.copy().appendBuffer(SERVING)));
        assertFalse(twice.serving());
        var truncated = new GrpcHealthMessages.ResponseReader();
        assertFalse(truncated.feed(frame(0, (byte) 0x08)));
        var notServing = new GrpcHealthMessages.ResponseReader();
        assertTrue(notServing.feed(frame(0, (byte) 0x08, (byte) 2)));
        assertFalse(notServing.serving());
        var nothing = new GrpcHealthMessages.ResponseReader();
        assertFalse(nothing.serving());
    }
}
