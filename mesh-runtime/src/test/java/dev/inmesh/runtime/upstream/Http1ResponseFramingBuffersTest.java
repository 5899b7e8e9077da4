package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.vertx.core.http.HttpClientOptions;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * An answer's body leaves the framing for Vert.x's handler in heap buffers of its own, the pooled buffers it was read
 * into released at once: Vert.x drops unreleased the chunks it holds while its reading is paused when the connection
 * closes then (a proxy's client gone mid-answer), which leaked pooled buffers.
 */
class Http1ResponseFramingBuffersTest {
    @Test
    void theBodyGoesOnInUnpooledCopiesAndTheReadBuffersAreReleased() {
        EmbeddedChannel channel = new EmbeddedChannel();
        channel.pipeline().addLast("codec", new HttpClientCodec());
        Http1ResponseFraming.install(channel, new HttpClientOptions(), true, () -> { });
        channel.writeOutbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/big"));
        for (Object request; (request = channel.readOutbound()) != null; ) {
            io.netty.util.ReferenceCountUtil.release(request);
        }

        ByteBuf read = PooledByteBufAllocator.DEFAULT.directBuffer();
        read.writeCharSequence("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
                + "0\r\nx-sum: 1\r\n\r\n", StandardCharsets.US_ASCII);
        channel.writeInbound(read);
        assertEquals(0, read.refCnt(), "the read buffer is released once its bytes went on");

        List<Object> passed = new ArrayList<>();
        for (Object m; (m = channel.readInbound()) != null; ) {
            passed.add(m);
        }
        assertInstanceOf(HttpResponse.class, passed.get(0));
        StringBuilder body = new StringBuilder();
        for (Object m : passed.subList(1, passed.size())) {
            ByteBuf b = ((HttpContent) m).content();
            if (b.isReadable()) {
                assertInstanceOf(UnpooledByteBufAllocator.class, b.alloc(), "a chunk in its own heap buffer");
                assertFalse(b.isDirect());
            }
            body.append(b.toString(StandardCharsets.US_ASCII));
            ((HttpContent) m).release();
        }
        assertEquals("hello world", body.toString());
        LastHttpContent last = (LastHttpContent) passed.get(passed.size() - 1);
        assertEquals("1", last.trailingHeaders().get("x-sum"), "the trailers go on with the last chunk");
        assertTrue(last.decoderResult().isSuccess());
        channel.finishAndReleaseAll();
    }
}
