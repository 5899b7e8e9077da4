package dev.inmesh.runtime.lb;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class EdfSchedulerTest {

    @Test
    void aFullCycleGivesEachEntryExactlyItsWeight() {
        EdfScheduler<Integer> edf = new EdfScheduler<>(w -> w);
        List.of(1, 2, 3, 5, 7).forEach(edf::add);
        Map<Integer, Integer> counts = new HashMap<>();
        for (int cycle = 0; cycle < 3; cycle++) {
            for (int i = 0; i < 18; i++) {
                counts.merge(edf.pick(), 1, Integer::sum);
            }
        }
        assertEquals(Map.of(1, 3, 2, 6, 3, 9, 5, 15, 7, 21), counts);
    }

    @Test
    void entriesOfZeroWeightAreNeverPicked() {
        EdfScheduler<Integer> edf = new EdfScheduler<>(w -> w);
        edf.add(0);
        assertNull(edf.pick());
    }

    @Test
    void tiesGoInTheOrderEntriesWereAdded() {
        EdfScheduler<String> edf = new EdfScheduler<>(s -> 1);
        edf.add("a");
        edf.add("b");
        edf.add("c");
        assertEquals(List.of("a", "b", "c", "a", "b", "c"),
                List.of(edf.pick(), edf.pick(), edf.pick(), edf.pick(), edf.pick(), edf.pick()));
    }
}
