package dev.inmesh.runtime.lb;

import java.util.PriorityQueue;
import java.util.function.ToDoubleFunction;

/**
 * Earliest deadline first scheduling, as Envoy uses for weighted round robin, weighted least request and locality
 * picks: every entry is due {@code 1 / weight} after it was last picked; the entry due first is picked, ties in the
 * order entries were added. With fixed integer weights, a cycle of {@code sum(weights)} picks gives each entry exactly
 * its weight. The weight is read again each time an entry is put back, so it may change (least request). Not
 * thread-safe: callers hold a lock.
 *
 * @param <T> the entry type
 */
public final class EdfScheduler<T> {
    private final PriorityQueue<Slot<T>> queue = new PriorityQueue<>();
    private final ToDoubleFunction<T> weight;
    private double now;
    private long order;

    public EdfScheduler(ToDoubleFunction<T> weight) {
        this.weight = weight;
    }

    /** Adds an entry, first due one period from now; entries of weight 0 or less are never picked. */
    public void add(T entry) {
        double w = weight.applyAsDouble(entry);
        if (w > 0) {
            queue.add(new Slot<>(entry, now + 1.0 / w, order++));
        }
    }

    /** Picks the entry due first and puts it back with its next deadline; null when empty. */
    public T pick() {
        Slot<T> slot = queue.poll();
        if (slot == null) {
            return null;
        }
        now = slot.deadline;
        add(slot.entry);
        return slot.entry;
    }

    /** The entry that {@link #pick()} would return, without picking it; null when empty. */
    public T peek() {
        Slot<T> slot = queue.peek();
        return slot == null ? null : slot.entry;
    }

    public boolean isEmpty() {
        return queue.isEmpty();
    }

    private record Slot<T>(T entry, double deadline, long order) implements Comparable<Slot<T>> {
        @Override
        public int compareTo(Slot<T> o) {
            int c = Double.compare(deadline, o.deadline);
            return c != 0 ? c : Long.compare(order, o.order);
        }
    }
}
