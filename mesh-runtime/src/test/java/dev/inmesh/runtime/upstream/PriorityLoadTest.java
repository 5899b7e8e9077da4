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
        return PriorityLoad.compute(healthyPercent, total, 140, panicThreshold);
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
        PriorityLoad l = PriorityLoad.compute(new int[] {0, 0}, new int[] {hosts0, hosts1}, 140, 50);
        assertArrayEquals(new int[] {l0, l1}, l.loads());
        assertArrayEquals(new boolean[] {true, true}, l.panic());
    }
}
