package dev.inmesh.runtime.lb;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashMap;
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
}
