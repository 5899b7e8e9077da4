package dev.inmesh.runtime.upstream;

/** A monotonic time source in nanoseconds, injectable so that tests can drive time by hand. */
@FunctionalInterface
public interface Ticker {

    long nanoTime();

    /** {@link System#nanoTime()}. */
    static Ticker system() {
        return System::nanoTime;
    }
}
