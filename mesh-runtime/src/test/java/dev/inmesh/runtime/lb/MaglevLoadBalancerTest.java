package dev.inmesh.runtime.lb;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class MaglevLoadBalancerTest {

    @Test
    void theTableGivesEachHostAnEqualShareOfSlots() {
        var hosts = TestHost.hosts(7);
        var table = new MaglevLoadBalancer.Table<>(hosts, LbHost.weights(hosts), 65_537, new Random(1));
        Map<TestHost, Integer> slots = new HashMap<>();
        for (long i = 0; i < 65_537; i++) {
            slots.merge(table.pick(true, i, 0), 1, Integer::sum);
        }
        for (int c : slots.values()) {
            assertEquals(65_537 / 7.0, c, 1.0);
        }
    }

    @Test
    void weightsSetTheShareOfSlots() {
        var hosts = TestHost.weighted(1, 3);
        var table = new MaglevLoadBalancer.Table<>(hosts, LbHost.weights(hosts), 65_537, new Random(1));
        Map<TestHost, Integer> slots = new HashMap<>();
        for (long i = 0; i < 65_537; i++) {
            slots.merge(table.pick(true, i, 0), 1, Integer::sum);
        }
        assertEquals(65_537 / 4.0, slots.get(hosts.get(0)), 2.0);
    }

    /** Hosts 127.0.0.1:90 and up with these weights. */
    private static List<TestHost> envoyHosts(int... weights) {
        List<TestHost> out = new java.util.ArrayList<>();
        for (int i = 0; i < weights.length; i++) {
            out.add(new TestHost("127.0.0.1:" + (90 + i), weights[i]));
        }
        return out;
    }

    private static <H extends LbHost> void assertTable(List<H> expected, HostSelector<H> table) {
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(expected.get(i), table.pick(true, i, 0), "slot " + i);
        }
    }

    @Test
    void theTableIsEnvoysForTheSameHosts() {
        // Envoy's maglev_lb_test Basic: six hosts, a table of 7
        var h = envoyHosts(1, 1, 1, 1, 1, 1);
        var table = new MaglevLoadBalancer.Table<>(h, LbHost.weights(h), 7, new Random(1));
        assertTable(List.of(h.get(2), h.get(4), h.get(0), h.get(1), h.get(5), h.get(0), h.get(3)), table);
    }

    @Test
    void theTableDoesNotDependOnTheOrderTheHostsCameIn() {
        var h = envoyHosts(1, 1, 1, 1, 1, 1);
        var shuffled = List.of(h.get(3), h.get(5), h.get(0), h.get(4), h.get(1), h.get(2));
        var table = new MaglevLoadBalancer.Table<>(shuffled, LbHost.weights(shuffled), 7, new Random(1));
        assertTable(List.of(h.get(2), h.get(4), h.get(0), h.get(1), h.get(5), h.get(0), h.get(3)), table);
    }

    @Test
    void aWeightedTableIsEnvoys() {
        // Envoy's maglev_lb_test Weighted: weights 1 and 2, a table of 17
        var h = envoyHosts(1, 2);
        var table = new MaglevLoadBalancer.Table<>(h, LbHost.weights(h), 17, new Random(1));
        int[] expected = {1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1};
        assertTable(java.util.Arrays.stream(expected).mapToObj(h::get).toList(), table);
    }

    @Test
    void aWeightedTableTakesEnvoysNormalisedWeights() {
        // Envoy fills the table with each host's weight over the sum of weights, in floating point: with weights 8
        // and 1, a table of 307 has slots that integer weights would give the other host
        var h = TestHost.weighted(8, 1);
        var policy = new MaglevLoadBalancer(new dev.inmesh.api.config.cluster.LbConfig.Maglev(307), new Random(1));
        HostSelector<TestHost> table = policy.newSelector(h, null);
        var envoys = new MaglevLoadBalancer.Table<>(h, new double[] {8 / 9.0, 1 / 9.0}, 307, new Random(1));
        for (int i = 0; i < 307; i++) {
            assertEquals(envoys.pick(true, i, 0), table.pick(true, i, 0), "slot " + i);
        }
    }
}
