package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.ChannelPromise;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * {@link DelayedClose} on a channel whose clock the test moves: the wait for the writes starts again on progress, a
 * request read whole closes once they went out, one not read whole then waits for the client's close.
 */
class DelayedCloseTest {
    private final EmbeddedChannel channel = new EmbeddedChannel();
    private final AtomicInteger timeouts = new AtomicInteger();
    private final AtomicLong unwritten = new AtomicLong(1_000_000);

    private ChannelPromise closing(boolean requestRead) {
        DelayedClose d = new DelayedClose(channel, Duration.ofMillis(100), timeouts::incrementAndGet, unwritten::get,
                !requestRead);
        channel.pipeline().addFirst(DelayedClose.NAME, d);
        ChannelPromise written = channel.newPromise();
        d.start(written);
        return written;
    }

    private void after(long millis) {
        channel.advanceTimeBy(millis, TimeUnit.MILLISECONDS);
        channel.runScheduledPendingTasks();
    }

    @Test
    void writesThatKeepGoingOutKeepTheConnectionAndWritesThatStallCloseItAfterTheTimeout() {
        closing(true);
        after(60);
        unwritten.set(500_000); // some went out
        after(60);
        assertTrue(channel.isOpen(), "progress restarts the wait");
        after(60);
        assertTrue(channel.isOpen(), "a whole timeout since the progress was seen has not passed");
        after(60);
        assertFalse(channel.isOpen(), "no progress for a whole timeout");
        assertEquals(1, timeouts.get());
    }

    @Test
    void aRequestReadWholeClosesOnceTheWritesWentOut() {
        ChannelPromise written = closing(true);
        written.setSuccess();
        assertFalse(channel.isOpen());
        assertEquals(0, timeouts.get());
    }

    @Test
    void aRequestNotReadWholeWaitsForTheClientsCloseUpToTheTimeoutAndDropsWhatItSends() {
        ChannelPromise written = closing(false);
        after(90);
        written.setSuccess();
        after(90);
        assertTrue(channel.isOpen(), "the wait for the client starts when the writes went out");
        channel.writeInbound(io.netty.buffer.Unpooled.copiedBuffer(new byte[] {1, 2, 3}));
        assertTrue(channel.inboundMessages().isEmpty(), "what the client sends now is dropped");
        after(20);
        assertFalse(channel.isOpen());
        assertEquals(1, timeouts.get());
    }

    @Test
    void theClientsCloseEndsTheWaitWithoutATimeout() {
        ChannelPromise written = closing(false);
        written.setSuccess();
        channel.pipeline().fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
        assertFalse(channel.isOpen());
        after(200);
        assertEquals(0, timeouts.get());
    }
}
