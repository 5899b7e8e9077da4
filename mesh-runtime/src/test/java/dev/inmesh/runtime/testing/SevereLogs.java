package dev.inmesh.runtime.testing;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * The SEVERE records java.util.logging gets (Vert.x's and Netty's logs go there) while it is open: what an application
 * embedding the mesh would find in its logs.
 */
public final class SevereLogs extends Handler implements AutoCloseable {
    private final Logger root = Logger.getLogger("");
    private final List<String> records = new CopyOnWriteArrayList<>();

    /** Starts collecting. */
    public SevereLogs() {
        setLevel(Level.SEVERE);
        root.addHandler(this);
    }

    /** Each SEVERE record so far, as its logger's name and message. */
    public List<String> records() {
        return List.copyOf(records);
    }

    @Override
    public void publish(LogRecord r) {
        if (r.getLevel().intValue() >= Level.SEVERE.intValue()) {
            records.add(r.getLoggerName() + ": " + r.getMessage());
        }
    }

    @Override
    public void flush() {
    }

    @Override
    public void close() {
        root.removeHandler(this);
    }
}
