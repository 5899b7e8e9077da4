package dev.inmesh.runtime.xds.ads;

import io.envoyproxy.controlplane.cache.Response;
import io.envoyproxy.controlplane.cache.Watch;
import io.envoyproxy.controlplane.cache.XdsRequest;
import io.envoyproxy.controlplane.cache.v3.SimpleCache;
import java.util.Set;
import java.util.function.Consumer;

/**
 * java-control-plane's {@link SimpleCache} with a watch made only once {@code setSnapshot} (synchronized) has answered
 * the open ones. The cache answers them type by type outside its lock (respondWithSpecificOrder) and discards a watch
 * whose version differs even when it declined to answer it (in ADS mode, a name asked for that is not in the
 * snapshot): a request that came between its CDS and its EDS answers (the EDS names a new CDS response asks for) was
 * dropped, and no later snapshot answered it (AdsClusterTest flaked on it, 1 run in 200). Every test control plane
 * uses this one.
 */
public final class OrderedSimpleCache extends SimpleCache<String> {

    public OrderedSimpleCache(String group) {
        super(node -> group);
    }

    @Override
    public synchronized Watch createWatch(boolean ads, XdsRequest request, Set<String> knownResourceNames,
            Consumer<Response> responseConsumer, boolean hasClusterChanged, boolean allowDefaultEmptyEdsUpdate) {
        return super.createWatch(ads, request, knownResourceNames, responseConsumer, hasClusterChanged,
                allowDefaultEmptyEdsUpdate);
    }
}
