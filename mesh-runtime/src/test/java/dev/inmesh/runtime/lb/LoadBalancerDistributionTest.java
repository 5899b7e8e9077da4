package dev.inmesh.runtime.lb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.cluster.LbConfig;
import dev.inmesh.api.config.cluster.LbPolicy;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Distribution of each policy, with seeded randomness; tolerances are stated per test. */
class LoadBalancerDistributionTest {
    private static final int PICKS = 100_000;

    private static RandomGenerator seeded() {
        return new java.util.Random(42);
    }

    private static LoadBalancer lb(LbPolicy policy) {
        LbConfig config = switch (policy) {
            case LEAST_REQUEST -> LbConfig.LeastRequest.DEFAULTS;
            // a larger ring than the default 1 024 entries, so that ring arcs even out to within 5%
            case RING_HASH -> new LbConfig.RingHash(65_536, 8_388_608);
            case MAGLEV -> LbConfig.Maglev.DEFAULTS;
            default -> new LbConfig.Default();
        };
        return LoadBalancer.of(policy, config, seeded());
    }

    private static Map<TestHost, Integer> count(HostSelector<TestHost> s, int picks, boolean hashed) {
        Map<TestHost, Integer> counts = new HashMap<>();
        SplittableRandom keys = new SplittableRandom(7);
        for (int i = 0; i < picks; i++) {
            counts.merge(s.pick(hashed, keys.nextLong(), 0), 1, Integer::sum);
        }
        return counts;
    }

    @ParameterizedTest
    @EnumSource(value = LbPolicy.class, names = "CLUSTER_PROVIDED", mode = EnumSource.Mode.EXCLUDE)
    void equalWeightsSpreadEvenlyWithinFivePercent(LbPolicy policy) {
        List<TestHost> hosts = TestHost.hosts(10);
        Map<TestHost, Integer> counts = count(lb(policy).newSelector(hosts, null), PICKS, true);
        assertEquals(10, counts.size());
        for (int c : counts.values()) {
            assertEquals(PICKS / 10.0, c, PICKS / 10.0 * 0.05, policy + " " + counts);
        }
    }

    @ParameterizedTest
    @EnumSource(value = LbPolicy.class, names = {"ROUND_ROBIN", "LEAST_REQUEST", "RING_HASH", "MAGLEV"})
    void unequalWeightsTakeTrafficInProportionWithinFivePercent(LbPolicy policy) {
        assertWeightsHold(policy, true);
    }

    private static void assertWeightsHold(LbPolicy policy, boolean hashed) {
        List<TestHost> hosts = TestHost.weighted(1, 2, 3, 4);
        Map<TestHost, Integer> counts = count(lb(policy).newSelector(hosts, null), PICKS, hashed);
        for (TestHost h : hosts) {
            double expected = PICKS * h.weight / 10.0;
            assertEquals(expected, counts.get(h), expected * 0.05, policy + " " + counts);
        }
    }

    @Test
    void weightedRoundRobinIsExactOverAFullCycle() {
        List<TestHost> hosts = TestHost.weighted(1, 2, 3, 4);
        HostSelector<TestHost> s = lb(LbPolicy.ROUND_ROBIN).newSelector(hosts, null);
        Map<TestHost, Integer> counts = count(s, 10 * 50, false);
        for (TestHost h : hosts) {
            assertEquals(h.weight * 50, counts.get(h));
        }
    }

    @Test
    void roundRobinVisitsEveryHostOnceACycle() {
        List<TestHost> hosts = TestHost.hosts(5);
        HostSelector<TestHost> s = lb(LbPolicy.ROUND_ROBIN).newSelector(hosts, null);
        assertEquals(5, count(s, 5, false).size());
    }

    @Test
    void roundRobinKeepsItsPositionAcrossARebuild() {
        List<TestHost> hosts = TestHost.hosts(5);
        LoadBalancer lb = lb(LbPolicy.ROUND_ROBIN);
        HostSelector<TestHost> first = lb.newSelector(hosts, null);
        TestHost a = first.pick(false, 0, 0);
        HostSelector<TestHost> second = lb.newSelector(hosts, first);
        TestHost b = second.pick(false, 0, 0);
        assertEquals((hosts.indexOf(a) + 1) % 5, hosts.indexOf(b));
    }

    @Test
    void leastRequestPrefersTheLessLoadedOfItsChoices() {
        List<TestHost> hosts = TestHost.hosts(2);
        hosts.get(0).active = 10;
        Map<TestHost, Integer> counts = count(lb(LbPolicy.LEAST_REQUEST).newSelector(hosts, null), 10_000, false);
        // two choices: the busy host wins only when both choices land on it, one time in four
        assertEquals(2_500, counts.get(hosts.get(0)), 250);
    }

    @Test
    void weightedLeastRequestDividesWeightByActiveRequestsPlusOne() {
        List<TestHost> hosts = TestHost.weighted(2, 1);
        hosts.get(0).active = 3; // effective weights 2/4 = 0.5 and 1/1 = 1
        Map<TestHost, Integer> counts = count(lb(LbPolicy.LEAST_REQUEST).newSelector(hosts, null), 30_000, false);
        assertEquals(10_000, counts.get(hosts.get(0)), 300);
        assertEquals(20_000, counts.get(hosts.get(1)), 300);
    }

    @Test
    void moreChoicesFavourTheIdleHostMore() {
        List<TestHost> hosts = TestHost.hosts(2);
        hosts.get(0).active = 10;
        LoadBalancer lb = LoadBalancer.of(LbPolicy.LEAST_REQUEST, new LbConfig.LeastRequest(4, 1.0), seeded());
        Map<TestHost, Integer> counts = count(lb.newSelector(hosts, null), 10_000, false);
        assertEquals(625, counts.get(hosts.get(0)), 150); // (1/2)^4
    }

    @ParameterizedTest
    @EnumSource(value = LbPolicy.class, names = "CLUSTER_PROVIDED", mode = EnumSource.Mode.EXCLUDE)
    void anEmptyHostListPicksNothing(LbPolicy policy) {
        assertNull(lb(policy).newSelector(List.<TestHost>of(), null).pick(true, 1, 0));
    }

    @ParameterizedTest
    @EnumSource(value = LbPolicy.class, names = {"RING_HASH", "MAGLEV"})
    void theSameHashAlwaysPicksTheSameHost(LbPolicy policy) {
        HostSelector<TestHost> s = lb(policy).newSelector(TestHost.hosts(10), null);
        for (long key = 0; key < 1000; key++) {
            long hash = Xxhash.hash64("user-" + key);
            assertSame(s.pick(true, hash, 0), s.pick(true, hash, 0));
        }
    }

    @ParameterizedTest
    @EnumSource(value = LbPolicy.class, names = {"RING_HASH", "MAGLEV"})
    void aRequestWithoutAHashPicksAtRandom(LbPolicy policy) {
        Map<TestHost, Integer> counts = count(lb(policy).newSelector(TestHost.hosts(4), null), 4_000, false);
        assertEquals(4, counts.size());
    }

    @ParameterizedTest
    @EnumSource(value = LbPolicy.class, names = {"RING_HASH", "MAGLEV"})
    void aRetryAttemptMovesToAnotherHostMostOfTheTime(LbPolicy policy) {
        HostSelector<TestHost> s = lb(policy).newSelector(TestHost.hosts(10), null);
        int moved = 0;
        for (long key = 0; key < 1000; key++) {
            long hash = Xxhash.hash64("k" + key);
            if (s.pick(true, hash, 0) != s.pick(true, hash, 1)) {
                moved++;
            }
        }
        assertTrue(moved > 800, policy + " moved " + moved);
    }
    /** Envoy hashes a random number onto the ring or table for a request without a hash: host weights still hold. */
    @ParameterizedTest
    @EnumSource(value = LbPolicy.class, names = {"RING_HASH", "MAGLEV"})
    void requestsWithoutAHashFollowHostWeightsWithinFivePercent(LbPolicy policy) {
        assertWeightsHold(policy, false);
    }

    @Test
    void theDefaultRingOf128EntriesPerHostSpreadsEqualHostsWithinAQuarter() {
        // A host's share of a ring is the sum of 128 random arcs: its standard deviation is about 1/sqrt(128), 9%,
        // so the largest of ten shares lies near two deviations out. Larger rings spread closer (next test).
        LoadBalancer ring = LoadBalancer.of(LbPolicy.RING_HASH, LbConfig.RingHash.DEFAULTS, seeded());
        Map<TestHost, Integer> counts = count(ring.newSelector(TestHost.hosts(10), null), PICKS, true);
        for (int c : counts.values()) {
            assertEquals(PICKS / 10.0, c, PICKS / 10.0 * 0.25, counts.toString());
        }
    }

    @Test
    void aRingOf8192EntriesPerHostSpreadsEqualHostsWithinTenPercent() {
        LoadBalancer ring = LoadBalancer.of(LbPolicy.RING_HASH, new LbConfig.RingHash(65_536, 8_388_608), seeded());
        Map<TestHost, Integer> counts = count(ring.newSelector(TestHost.hosts(10), null), PICKS, true);
        for (int c : counts.values()) {
            assertEquals(PICKS / 10.0, c, PICKS / 10.0 * 0.10, counts.toString());
        }
    }

    @Test
    void addingATenthHostToMaglevMovesAtMostATenthOfKeysPlusTwoPercent() {
        double moved = movedFraction(lb(LbPolicy.MAGLEV), 9);
        assertTrue(moved <= 1.0 / 10 + 0.02, "moved " + moved);
    }

    @Test
    void addingAnEleventhHostToMaglevMovesAtMostAnEleventhOfKeysPlusTwoPercent() {
        double moved = movedFraction(lb(LbPolicy.MAGLEV), 10);
        assertTrue(moved <= 1.0 / 11 + 0.02, "moved " + moved);
    }

    /**
     * Envoy's ring: every host gets ceil(minimum_ring_size / hosts) entries, so a host that joins takes its share and
     * every other host gives up its last entries ({@code <address>_<i>} for i from the new count on): the keys that
     * move are at most the new host's share plus the share of the entries given up (about 18% from nine hosts to
     * ten, where consistent hashing alone would move a tenth).
     */
    private static double envoyRingBound(int hostsBefore) {
        double before = Math.ceil(1024.0 / hostsBefore);
        double after = Math.ceil(1024.0 / (hostsBefore + 1));
        return 1.0 / (hostsBefore + 1) + (1 - after / before) + 0.02;
    }

    @Test
    void addingATenthHostToTheRingMovesItsShareAndTheEntriesEnvoysSizingTakesOff() {
        double moved = movedFraction(LoadBalancer.of(LbPolicy.RING_HASH, LbConfig.RingHash.DEFAULTS, seeded()), 9);
        assertTrue(moved <= envoyRingBound(9), "moved " + moved);
        assertTrue(moved >= 1.0 / 10 - 0.03, "moved " + moved);
    }

    @Test
    void addingAnEleventhHostToTheRingMovesItsShareAndTheEntriesEnvoysSizingTakesOff() {
        double moved = movedFraction(LoadBalancer.of(LbPolicy.RING_HASH, LbConfig.RingHash.DEFAULTS, seeded()), 10);
        assertTrue(moved <= envoyRingBound(10), "moved " + moved);
        assertTrue(moved >= 1.0 / 11 - 0.03, "moved " + moved);
    }

    /**
     * When a host joins and every host keeps its entry count (ceil(1024 / 100) = ceil(1024 / 101) = 11), the ring only
     * gains the new host's entries: every key that moves goes to it.
     */
    @Test
    void keysThatMoveOnTheRingAllMoveToTheNewHostWhenTheEntryCountHolds() {
        LoadBalancer ring = LoadBalancer.of(LbPolicy.RING_HASH, LbConfig.RingHash.DEFAULTS, seeded());
        List<TestHost> after = TestHost.hosts(101);
        HostSelector<TestHost> b = ring.newSelector(after.subList(0, 100), null);
        HostSelector<TestHost> a = ring.newSelector(after, null);
        int toNew = 0;
        int moved = 0;
        for (int k = 0; k < 20_000; k++) {
            long hash = Xxhash.hash64("key-" + k);
            TestHost now = a.pick(true, hash, 0);
            if (b.pick(true, hash, 0) != now) {
                moved++;
                if (now == after.get(100)) {
                    toNew++;
                }
            }
        }
        assertTrue(moved > 0, "the new host takes some keys");
        assertEquals(moved, toNew, toNew + " of " + moved);
    }

    private static double movedFraction(LoadBalancer lb, int hostsBefore) {
        List<TestHost> after = TestHost.hosts(hostsBefore + 1);
        HostSelector<TestHost> before = lb.newSelector(after.subList(0, hostsBefore), null);
        HostSelector<TestHost> next = lb.newSelector(after, null);
        int keys = 20_000;
        int moved = 0;
        for (int k = 0; k < keys; k++) {
            long hash = Xxhash.hash64("key-" + k);
            if (before.pick(true, hash, 0) != next.pick(true, hash, 0)) {
                moved++;
            }
        }
        return moved / (double) keys;
    }
}
