package dev.inmesh.runtime.router;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A small ordered header list with case-insensitive names, for tools and tests that route without a server
 * (pseudo-headers such as {@code :path} are ordinary entries here).
 */
public final class SimpleHeaders implements MutableHeaders {
    private final List<String[]> entries = new ArrayList<>();

    @Override
    public List<String> getAll(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        List<String> out = new ArrayList<>(1);
        for (String[] e : entries) {
            if (e[0].equals(n)) {
                out.add(e[1]);
            }
        }
        return out;
    }

    @Override
    public void forEach(java.util.function.BiConsumer<String, String> each) {
        for (String[] e : entries) {
            each.accept(e[0], e[1]);
        }
    }

    /** The first value, or null. */
    public String first(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        for (String[] e : entries) {
            if (e[0].equals(n)) {
                return e[1];
            }
        }
        return null;
    }

    @Override
    public void add(String name, String value) {
        entries.add(new String[] {name.toLowerCase(Locale.ROOT), value});
    }

    @Override
    public void set(String name, String value) {
        String n = name.toLowerCase(Locale.ROOT);
        int first = -1;
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i)[0].equals(n)) {
                if (first < 0) {
                    first = i;
                    entries.get(i)[1] = value;
                } else {
                    entries.remove(i--);
                }
            }
        }
        if (first < 0) {
            entries.add(new String[] {n, value});
        }
    }

    @Override
    public void remove(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        entries.removeIf(e -> e[0].equals(n));
    }

    /** The {@code :path} and {@code :authority} entries as a rewrite target. */
    public HeaderMutator.PathAndHost pathAndHost() {
        return new HeaderMutator.PathAndHost() {
            @Override
            public String path() {
                return first(":path");
            }

            @Override
            public void setPath(String path) {
                set(":path", path);
            }

            @Override
            public String authority() {
                return first(":authority");
            }

            @Override
            public void setAuthority(String authority) {
                set(":authority", authority);
            }
        };
    }
}
