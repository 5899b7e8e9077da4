package dev.inmesh.runtime.router;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.vertx.core.buffer.Buffer;
import org.junit.jupiter.api.Test;

class GrpcFramesTest {
    static Buffer message(int flags, String s) {
        Buffer b = Buffer.buffer(s);
        return Buffer.buffer().appendByte((byte) flags).appendInt(b.length()).appendBuffer(b);
    }

    @Test
    void eachMessageCountsOnceWhereverTheChunksSplitIt() {
        Buffer body = Buffer.buffer().appendBuffer(message(0, "first")).appendBuffer(message(1, "compressed"))
                .appendBuffer(message(0, "")).appendBuffer(message(0, "x".repeat(300)));
        assertEquals(4, GrpcFrames.count(body));
        for (int size = 1; size <= body.length(); size++) {
            GrpcFrames f = new GrpcFrames();
            for (int at = 0; at < body.length(); at += size) {
                f.inspect(body.getBuffer(at, Math.min(body.length(), at + size)));
            }
            assertEquals(4, f.count(), "chunks of " + size);
        }
    }

    @Test
    void aMessageCountsWhenItsFlagsByteComesBeforeItsPayload() {
        GrpcFrames f = new GrpcFrames();
        Buffer m = message(0, "payload");
        f.inspect(m.getBuffer(0, 1));
        assertEquals(1, f.count(), "counted as it starts, as Envoy's frame inspector does");
        f.inspect(m.getBuffer(1, m.length()));
        assertEquals(1, f.count());
    }

    @Test
    void aBodyThatIsNotGrpcStopsTheCount() {
        assertEquals(0, GrpcFrames.count(Buffer.buffer("{\"json\": true}")));
        assertEquals(1, GrpcFrames.count(message(0, "ok").appendString("garbage after")),
                "the message before the bad flags byte counts, nothing after it");
        assertEquals(0, GrpcFrames.count(null));
    }
}
