package dev.inmesh.runtime.router;

import static com.github.tomakehurst.wiremock.client.WireMock.any;
import static com.github.tomakehurst.wiremock.client.WireMock.anyUrl;
import static com.github.tomakehurst.wiremock.client.WireMock.ok;
import static dev.inmesh.runtime.router.RouterRig.cluster;
import static dev.inmesh.runtime.router.RouterRig.routeToC;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.tomakehurst.wiremock.WireMockServer;
import dev.inmesh.api.config.cluster.LbPolicy;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.upstream.ClusterManager;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpMethod;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A route's header hash policy naming a pseudo-header hashes the request's value of it, as Envoy's does. */
class RouterHashPolicyTest {
    private final RouterRig rig = new RouterRig();

    @AfterEach
    void close() {
        rig.close();
    }

    private static RouterRequest request(String authority, String path) {
        return new RouterRequest(StreamInfo.Direction.OUTBOUND, HttpMethod.GET, path, authority, "http",
                MultiMap.caseInsensitiveMultiMap(), null, "127.0.0.1:50000", "127.0.0.1:15001", null, "HTTP/1.1");
    }

    private ClusterManager threeHosts() {
        int[] ports = new int[3];
        for (int i = 0; i < 3; i++) {
            WireMockServer wm = rig.wiremock();
            wm.stubFor(any(anyUrl()).willReturn(ok("host" + i)));
            ports[i] = wm.port();
        }
        return rig.clusters(cluster("c", LbPolicy.RING_HASH, null, null, ports));
    }

    @Test
    void aHashPolicyOnTheAuthorityOrThePathKeepsEachValueOnOneHost() {
        ClusterManager clusters = threeHosts();
        for (String name : new String[] {":authority", ":path"}) {
            RouteTable table = routeToC("hash_policy: [{header: {header_name: \"" + name + "\"}}]");
            Set<String> hostsSeen = new HashSet<>();
            for (int key = 0; key < 8; key++) {
                String authority = name.equals(":authority") ? "tenant" + key + ".local" : "svc.local";
                String path = name.equals(":path") ? "/items/" + key : "/";
                String first = rig.call(rig.router(), request(authority, path), table, clusters).body();
                hostsSeen.add(first);
                for (int i = 0; i < 4; i++) {
                    assertEquals(first, rig.call(rig.router(), request(authority, path), table, clusters).body(),
                            name + " " + authority + path + " keeps its host");
                }
            }
            assertTrue(hostsSeen.size() > 1, name + ": values spread over the hosts: " + hostsSeen);
        }
    }
}
