package dev.inmesh.interception;

import java.util.logging.LogManager;
import java.util.logging.Logger;

/**
 * The {@code java.util.logging} manager of the {@code inmesh} command ({@code java.util.logging.manager}, which
 * {@code InmeshCommand.main} sets): the JDK's own, except that the reset its shutdown hook runs as soon as the JVM
 * starts to stop, which closes every handler, waits while something {@link #hold() holds} the logs. The proxy holds
 * them until its stop is over, so that what it logs as it drains after SIGTERM (the drain's progress, configuration
 * reloads and their errors) is printed, as Envoy logs throughout its drain. Outside a JVM shutdown a reset (a
 * reading of the configuration) is done at once.
 */
public final class ProxyLogManager extends LogManager {
    private final Object lock = new Object();
    private int holds;

    /** Made by the JDK, from {@code java.util.logging.manager}. */
    public ProxyLogManager() {
    }

    /**
     * Keeps the handlers open through a JVM shutdown until the returned action runs (once; it then closes them
     * itself when the JVM is stopping). Does nothing when the JVM's manager is another one (the property was set too
     * late, or to another class).
     */
    public static Runnable hold() {
        if (!(LogManager.getLogManager() instanceof ProxyLogManager manager)) {
            return () -> { };
        }
        // the root handlers made now: the JDK makes none once its shutdown hook has started
        Logger.getLogger("").getHandlers();
        synchronized (manager.lock) {
            if (shuttingDown()) {
                return () -> { }; // the JDK's hook may be waiting already: a hold now would never be let go
            }
            manager.holds++;
        }
        java.util.concurrent.atomic.AtomicBoolean released = new java.util.concurrent.atomic.AtomicBoolean();
        return () -> {
            if (released.compareAndSet(false, true)) {
                synchronized (manager.lock) {
                    manager.holds--;
                    manager.lock.notifyAll();
                }
                if (shuttingDown()) {
                    // what the handlers buffer written and the handlers closed before the caller may halt the JVM
                    manager.reset();
                }
            }
        };
    }

    @Override
    public void reset() {
        if (shuttingDown()) {
            synchronized (lock) {
                while (holds > 0) {
                    try {
                        lock.wait();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
            }
        }
        super.reset();
    }

    /** Whether the JVM is stopping: it then takes no more shutdown hooks. */
    private static boolean shuttingDown() {
        Thread probe = new Thread(() -> { });
        try {
            Runtime.getRuntime().addShutdownHook(probe);
            Runtime.getRuntime().removeShutdownHook(probe);
            return false;
        } catch (IllegalStateException e) {
            return true;
        }
    }
}
