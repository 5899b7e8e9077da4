package dev.inmesh.runtime.tools;

import java.util.ArrayList;
import java.util.List;

/**
 * Aligns tab-separated rows as Go's {@code text/tabwriter} does with a space pad character and no flags (as istioctl
 * prints its tables): each cell but the last of a row is padded to its column's widest cell plus {@code padding}.
 */
final class TabWriter {
    private final int padding;
    private final List<String[]> rows = new ArrayList<>();

    TabWriter(int padding) {
        this.padding = padding;
    }

    TabWriter row(String... cells) {
        rows.add(cells);
        return this;
    }

    /** The table, each row ending in a newline. */
    String render() {
        int columns = 0;
        for (String[] r : rows) {
            columns = Math.max(columns, r.length);
        }
        int[] width = new int[columns];
        for (String[] r : rows) {
            for (int i = 0; i < r.length - 1; i++) {
                width[i] = Math.max(width[i], r[i].codePointCount(0, r[i].length()));
            }
        }
        StringBuilder b = new StringBuilder();
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                b.append(r[i]);
                if (i < r.length - 1) {
                    b.append(" ".repeat(width[i] + padding - r[i].codePointCount(0, r[i].length())));
                }
            }
            b.append('\n');
        }
        return b.toString();
    }
}
