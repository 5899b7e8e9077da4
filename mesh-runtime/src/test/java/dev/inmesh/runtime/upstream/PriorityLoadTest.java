package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The figures of Envoy's "Priority levels" and "Panic threshold" pages (arch overview, load balancing), with 100
 * hosts per priority so that a percentage of healthy hosts is a count. Where a row of those pages disagrees with the
 * algorithm both pages describe (integer health, rounding leftovers to the first available priority), the row says
 * so and the test follows the algorithm.
 */
class PriorityLoadTest {

    private static PriorityLoad load(double panicThreshold, int... healthyPercent) {
        int[] total = new int[healthyPercent.length];
        java.util.Arrays.fill(total, 100);
        return PriorityLoad.compute(healthyPercent, new int[healthyPercent.length], total, total, 140,
                panicThreshold);
    }

    @ParameterizedTest(name = "P0 {0}% healthy, P1 100% healthy: {1}% / {2}%")
    @CsvSource({"100, 100, 0", "72, 100, 0", "71, 99, 1", "50, 70, 30", "25, 35, 65", "0, 0, 100"})
    void aDegradingFirstPrioritySpillsToAHealthySecond(int p0, int load0, int load1) {
        PriorityLoad l = load(50, p0, 100);
        assertArrayEquals(new int[] {load0, load1}, l.loads());
        assertArrayEquals(new boolean[] {false, false}, l.panic());
    }

    @ParameterizedTest(name = "P0 {0}%, P1 {1}% healthy: {2}% / {3}%")
    @CsvSource({"100, 100, 100, 0", "72, 72, 100, 0", "71, 71, 99, 1", "50, 50, 70, 30", "25, 100, 35, 65"})
    void twoDegradingPrioritiesShareByHealth(int p0, int p1, int load0, int load1) {
        assertArrayEquals(new int[] {load0, load1}, load(50, p0, p1).loads());
    }

    @ParameterizedTest(name = "P0 {0}%, P1 {1}%, P2 {2}% healthy: {3}% / {4}% / {5}%")
    @CsvSource({
        "100, 100, 100, 100, 0, 0",
        "72, 72, 100, 100, 0, 0",
        "71, 71, 100, 99, 1, 0",
        "50, 50, 100, 70, 30, 0",
        "25, 100, 100, 35, 65, 0",
        "25, 25, 100, 35, 35, 30",
        // the page rounds this row to 36/36/28; Envoy's integer algorithm gives the 2 left over to P0
        "25, 25, 20, 37, 35, 28"})
    void threePrioritiesTakeWhatTheOnesAboveLeave(int p0, int p1, int p2, int l0, int l1, int l2) {
        assertArrayEquals(new int[] {l0, l1, l2}, load(0, p0, p1, p2).loads());
    }

    @ParameterizedTest(name = "P0 {0}%, P1 {1}% healthy: panic {2} / {3}")
    @CsvSource({
        "72, 72, 100, 0, false, false",
        "71, 71, 99, 1, false, false",
        "25, 25, 50, 50, true, true",
        // the page shows 7/93; Envoy's algorithm gives 7 and 92 and the 1 left over to P0
        "5, 65, 8, 92, true, false"})
    void aPriorityUnderThePanicThresholdPanicsOnlyWhenTotalHealthIsUnder100(int p0, int p1, int l0, int l1,
                                                                            boolean panic0, boolean panic1) {
        PriorityLoad l = load(50, p0, p1);
        assertArrayEquals(new int[] {l0, l1}, l.loads());
        assertArrayEquals(new boolean[] {panic0, panic1}, l.panic());
    }

    @ParameterizedTest(name = "P0 {0}% healthy, P1 100%: no panic")
    @CsvSource({"25", "0"})
    void aHealthyLowerPriorityKeepsTheFirstOutOfPanic(int p0) {
        assertArrayEquals(new boolean[] {false, false}, load(50, p0, 100).panic());
    }

    @ParameterizedTest(name = "single priority {0}% healthy, threshold {1}: panic {2}")
    @CsvSource({"49, 50, true", "50, 50, false", "10, 0, false", "0, 0, false"})
    void aSinglePriorityPanicsUnderTheThresholdAndZeroTurnsPanicOff(int healthy, double threshold, boolean panic) {
        PriorityLoad l = load(threshold, healthy);
        assertArrayEquals(new boolean[] {panic}, l.panic());
        assertArrayEquals(new int[] {100}, l.loads());
    }

    @ParameterizedTest(name = "hosts {0} and {1}, none healthy: {2}% / {3}%")
    @CsvSource({"100, 100, 50, 50", "30, 10, 75, 25"})
    void inTotalPanicLoadFollowsHostCounts(int hosts0, int hosts1, int l0, int l1) {
        int[] hosts = {hosts0, hosts1};
        PriorityLoad l = PriorityLoad.compute(new int[] {0, 0}, new int[] {0, 0}, hosts, hosts, 140, 50);
        assertArrayEquals(new int[] {l0, l1}, l.loads());
        assertArrayEquals(new boolean[] {true, true}, l.panic());
    }

    /** The figures of Envoy's "Degraded endpoints" page: one priority of 100 hosts, some healthy, some degraded. */
    @ParameterizedTest(name = "{0}% healthy, {1}% degraded: {2}% / {3}%")
    @CsvSource({"100, 0, 100, 0", "71, 29, 99, 1", "50, 50, 70, 30", "25, 65, 35, 65", "25, 25, 50, 50"})
    void degradedHostsTakeOnlyWhatHealthyHostsCannot(int healthy, int degraded, int toHealthy, int toDegraded) {
        PriorityLoad l = PriorityLoad.compute(new int[] {healthy}, new int[] {degraded}, new int[] {100},
                new int[] {100}, 140, 50);
        assertArrayEquals(new int[] {toHealthy}, l.loads());
        assertArrayEquals(new int[] {toDegraded}, l.degradedLoads());
        assertArrayEquals(new boolean[] {false}, l.panic());
    }

    @ParameterizedTest(name = "P0 {0}% healthy, P1 {1}% degraded: {2} / {3}")
    @CsvSource({"50, 100, 70, 30", "0, 100, 0, 100"})
    void healthyHostsOfEveryPriorityComeBeforeDegradedOnes(int p0Healthy, int p1Degraded, int toP0, int toP1) {
        PriorityLoad l = PriorityLoad.compute(new int[] {p0Healthy, 0}, new int[] {0, p1Degraded},
                new int[] {100, 100}, new int[] {100, 100}, 140, 50);
        assertArrayEquals(new int[] {toP0, 0}, l.loads());
        assertArrayEquals(new int[] {0, toP1}, l.degradedLoads());
    }

    @org.junit.jupiter.api.Test
    void excludedHostsCountNeitherForAvailabilityNorPanicButDoInTotalPanic() {
        // 1 healthy of 4, 3 of them excluded (DRAINING): 100% available, no panic
        PriorityLoad l = PriorityLoad.compute(new int[] {1}, new int[] {0}, new int[] {1}, new int[] {4}, 140, 50);
        assertArrayEquals(new int[] {100}, l.loads());
        assertArrayEquals(new boolean[] {false}, l.panic());
        // nothing usable anywhere: total panic shares by all hosts, excluded ones included
        l = PriorityLoad.compute(new int[] {0, 0}, new int[] {0, 0}, new int[] {1, 3}, new int[] {3, 3}, 140, 50);
        assertArrayEquals(new int[] {50, 50}, l.loads());
    }

    /**
     * previous_priorities leaves attempted priorities out: the others share all requests by their availability (the
     * sum capped at 100), the leftover of rounding to the first one left; nothing left available gives none.
     */
    @ParameterizedTest(name = "P0 {0}%, P1 {1}%, P2 {2}% healthy, P0 left out: {3} / {4}")
    @CsvSource({"100, 100, 100, 100, 0", "100, 25, 25, 50, 50", "100, 30, 40, 43, 57", "0, 50, 100, 70, 30",
            "100, 0, 10, 0, 100"})
    void leavingOutAPriorityHandsItsShareToTheOthersByTheirAvailability(int p0, int p1, int p2, int toP1, int toP2) {
        PriorityLoad l = load(0, p0, p1, p2);
        PriorityLoad without = l.excluding(new boolean[] {true});
        assertArrayEquals(new int[] {0, toP1, toP2}, without.loads());
        assertArrayEquals(l.panic(), without.panic());
        org.junit.jupiter.api.Assertions.assertNull(l.excluding(new boolean[] {true, true, true}));
    }

    @org.junit.jupiter.api.Test
    void leavingOutAPriorityKeepsTheOthersDegradedHostsAfterTheirHealthyOnes() {
        // P0 healthy, P1 half healthy (70%), P2 all degraded (100%): without P0, P1's healthy hosts take 70, P2's
        // degraded ones the remaining 30
        PriorityLoad l = PriorityLoad.compute(new int[] {100, 50, 0}, new int[] {0, 0, 100},
                new int[] {100, 100, 100}, new int[] {100, 100, 100}, 140, 50);
        PriorityLoad without = l.excluding(new boolean[] {true, false, false});
        assertArrayEquals(new int[] {0, 70, 0}, without.loads());
        assertArrayEquals(new int[] {0, 0, 30}, without.degradedLoads());
    }
}
