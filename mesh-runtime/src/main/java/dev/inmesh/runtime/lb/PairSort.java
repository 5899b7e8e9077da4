package dev.inmesh.runtime.lb;

/** Sorts a {@code long[]} of keys ascending and a parallel {@code int[]} with it (a quicksort, no boxing). */
final class PairSort {
    private PairSort() {}

    static void sort(long[] keys, int[] values) {
        sort(keys, values, 0, keys.length - 1);
    }

    private static void sort(long[] k, int[] v, int lo, int hi) {
        while (hi - lo > 16) {
            int mid = (lo + hi) >>> 1;
            // median of three as the pivot
            if (k[mid] < k[lo]) {
                swap(k, v, mid, lo);
            }
            if (k[hi] < k[lo]) {
                swap(k, v, hi, lo);
            }
            if (k[hi] < k[mid]) {
                swap(k, v, hi, mid);
            }
            long pivot = k[mid];
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (k[i] < pivot) {
                    i++;
                }
                while (k[j] > pivot) {
                    j--;
                }
                if (i <= j) {
                    swap(k, v, i++, j--);
                }
            }
            // recurse into the smaller part, loop on the larger
            if (j - lo < hi - i) {
                sort(k, v, lo, j);
                lo = i;
            } else {
                sort(k, v, i, hi);
                hi = j;
            }
        }
        for (int i = lo + 1; i <= hi; i++) {
            long key = k[i];
            int val = v[i];
            int j = i - 1;
            while (j >= lo && k[j] > key) {
                k[j + 1] = k[j];
                v[j + 1] = v[j];
                j--;
            }
            k[j + 1] = key;
            v[j + 1] = val;
        }
    }

    private static void swap(long[] k, int[] v, int a, int b) {
        long tk = k[a];
        k[a] = k[b];
        k[b] = tk;
        int tv = v[a];
        v[a] = v[b];
        v[b] = tv;
    }
}
