package dev.inmesh.runtime.xds.sds;

import java.time.Duration;

/**
 * A secret of the ADS stream ({@code sds_config: {ads: {}}}), held in memory as a secret of its own stream is:
 * besides the secret taken last, when its wait ends, from when a parse first asked for it (unset before: a secret
 * subscribed to for a resource not parsed yet), why its last version was refused, and why its wait ended early. All
 * but the secret held are touched under the manager's lock.
 */
final class AdsSecret extends HeldSecret {
    boolean asked;
    long deadline;
    Duration timeout;
    String lastError;
    /** Why its wait ended before its {@code initial_fetch_timeout} (a Secret response not taken); else null. */
    String waitEnded;

    AdsSecret(String name) {
        super(name);
    }

    @Override
    void take(SdsSecret s) {
        super.take(s);
        lastError = null;
    }
}
