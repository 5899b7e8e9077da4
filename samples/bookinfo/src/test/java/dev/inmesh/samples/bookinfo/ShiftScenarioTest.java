package dev.inmesh.samples.bookinfo;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.samples.bookinfo.ShiftScenario.PageLoad;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The rule by which the shift scenario's loader stops and its report confirms: the same for both. */
class ShiftScenarioTest {
    private static final long PUSH = 1_000;

    @Test
    void aV3PageThatEndedBeforeThePushDoesNotCount() {
        // CI once saw the loader stop after 20 v3 pages in a row while the report counted 19: the first of them had
        // ended just before the push and was only recorded after it.
        List<PageLoad> loads = new ArrayList<>();
        loads.add(new PageLoad(PUSH - 10, 200, "v1", "no stars"));
        loads.add(new PageLoad(PUSH - 1, 200, "v3", "red stars"));
        for (int i = 0; i < ShiftScenario.CONFIRM - 1; i++) {
            loads.add(new PageLoad(PUSH + i, 200, "v3", "red stars"));
        }
        assertEquals(ShiftScenario.CONFIRM - 1, ShiftScenario.v3Tail(loads, PUSH));
        loads.add(new PageLoad(PUSH + 100, 200, "v3", "red stars"));
        assertEquals(ShiftScenario.CONFIRM, ShiftScenario.v3Tail(loads, PUSH));
    }

    @Test
    void anErrorOrAnotherVersionAfterThePushRestartsTheCount() {
        List<PageLoad> loads = new ArrayList<>(List.of(
                new PageLoad(PUSH + 1, 200, "v3", "red stars"),
                new PageLoad(PUSH + 2, 200, "v2", "black stars"),
                new PageLoad(PUSH + 3, 200, "v3", "red stars"),
                new PageLoad(PUSH + 4, 0, "error: timeout", ""),
                new PageLoad(PUSH + 5, 200, "v3", "red stars"),
                new PageLoad(PUSH + 6, 200, "v3", "red stars")));
        assertEquals(2, ShiftScenario.v3Tail(loads, PUSH));
        loads.add(new PageLoad(PUSH + 7, 503, "v3", ""));
        assertEquals(0, ShiftScenario.v3Tail(loads, PUSH));
        assertEquals(0, ShiftScenario.v3Tail(List.of(), PUSH));
    }
}
