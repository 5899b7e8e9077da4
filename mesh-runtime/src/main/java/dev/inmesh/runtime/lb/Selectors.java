package dev.inmesh.runtime.lb;

import java.util.List;

/** Small helpers shared by the policies. */
final class Selectors {
    private Selectors() {}

    static boolean equalWeights(List<? extends LbHost> hosts) {
        for (int i = 1; i < hosts.size(); i++) {
            if (hosts.get(i).weight() != hosts.get(0).weight()) {
                return false;
            }
        }
        return true;
    }
}
