package dev.inmesh.runtime.xds.sds;

import dev.inmesh.api.config.core.SdsSecretSource;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArraySet;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A secret as the manager holds it, in memory only, as Envoy's {@code SdsApi} holds it: the version taken last, and
 * the {@link SdsSecretSource} the TLS contexts naming it take its rotations from. One per secret subscribed to, on its
 * own stream ({@link SdsStream}) or on the ADS stream ({@link AdsSecret}).
 */
abstract class HeldSecret implements SdsSecretSource {
    private static final Logger LOG = Logger.getLogger(HeldSecret.class.getName());
    final String name;
    /** What runs when a version is taken: the watches of the TLS contexts naming it. */
    private final Set<Runnable> listeners = new CopyOnWriteArraySet<>();
    private volatile SdsSecret secret;
    /** The PEMs of {@link #secret}, one value per version taken. */
    private volatile Pems pems;

    HeldSecret(String name) {
        this.name = name;
    }

    /** The secret taken last, or null before the first. */
    SdsSecret secret() {
        return secret;
    }

    /**
     * Takes {@code s} as the secret's newest version, for the next handshakes; {@link #push} hands it to the TLS
     * contexts that hold it.
     */
    void take(SdsSecret s) {
        secret = s;
        pems = s.pems();
    }

    /**
     * Runs the listeners ({@link #addListener}): each TLS context naming the secret takes its newest version now, for
     * the handshakes that start after. Blocking work (new TLS contexts are made): never on an event loop.
     */
    void push() {
        for (Runnable l : listeners) {
            try {
                l.run();
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "SDS secret " + name + ": a TLS context failed to take its new version", e);
            }
        }
    }

    @Override
    public void addListener(Runnable listener) {
        listeners.add(listener);
    }

    @Override
    public void removeListener(Runnable listener) {
        listeners.remove(listener);
    }

    @Override
    public String name() {
        return name;
    }

    /** The PEMs of the secret taken last; null before the first. */
    @Override
    public Pems current() {
        return pems;
    }
}
