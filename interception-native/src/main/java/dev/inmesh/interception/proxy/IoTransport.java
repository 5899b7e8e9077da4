package dev.inmesh.interception.proxy;

import io.vertx.core.internal.VertxInternal;
import io.vertx.core.transport.Transport;
import java.util.logging.Logger;

/**
 * The I/O transport of the standalone proxy's sockets ({@code inmesh proxy --transport}): Netty's native Linux
 * transports, epoll or io_uring, or the JDK's selectors. Both native ones give the accepted socket's descriptor (for
 * {@code SO_ORIGINAL_DST}) and {@code IP_TRANSPARENT} (TPROXY listeners); NIO gives neither.
 */
public enum IoTransport {
    /** Linux epoll: the default. */
    EPOLL,
    /**
     * Linux io_uring (kernel 5.10 or later, and not refused by the kernel's {@code io_uring_disabled} or a seccomp
     * profile, as containers' default profiles refuse it): fewer system calls per request than epoll.
     */
    IO_URING,
    /** The JDK's selectors: original destinations are the local addresses only, and no TPROXY. */
    NIO;

    private static final Logger LOG = Logger.getLogger(IoTransport.class.getName());

    /** The name {@code --transport} takes. */
    public String optionName() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    private Transport vertx() {
        return switch (this) {
            case EPOLL -> Transport.EPOLL;
            case IO_URING -> Transport.IO_URING;
            case NIO -> Transport.NIO;
        };
    }

    /**
     * Vert.x's transport for {@code requested}. One that was asked for and cannot load is an
     * {@link IllegalStateException} saying why; with none asked for, epoll, else NIO with a warning.
     */
    static Transport choose(IoTransport requested) {
        Transport t = (requested == null ? EPOLL : requested).vertx();
        if (t.available()) {
            return OriginalSourceTransport.wrap(t);
        }
        if (requested != null) {
            throw new IllegalStateException("transport " + requested.optionName() + " is unavailable: "
                    + t.unavailabilityCause());
        }
        LOG.warning("the native epoll transport is unavailable (" + t.unavailabilityCause()
                + "): original destinations are the local addresses only, TPROXY is off");
        return OriginalSourceTransport.wrap(Transport.NIO);
    }

    /** The transport {@code vertx} runs on. */
    static IoTransport of(VertxInternal vertx) {
        String name = OriginalSourceTransport.unwrap(vertx.transport()).getClass().getSimpleName();
        return name.startsWith("IoUring") ? IO_URING : name.startsWith("Epoll") ? EPOLL : NIO;
    }
}
