package dev.inmesh.runtime.router;

import io.vertx.core.MultiMap;
import java.util.List;

/** A Vert.x {@link MultiMap} seen as {@link MutableHeaders} (names are case-insensitive in both). */
public final class MultiMapHeaders implements MutableHeaders {
    private final MultiMap map;

    public MultiMapHeaders(MultiMap map) {
        this.map = map;
    }

    @Override
    public List<String> getAll(String name) {
        return map.getAll(name);
    }

    @Override
    public void add(String name, String value) {
        map.add(name, value);
    }

    @Override
    public void set(String name, String value) {
        map.set(name, value);
    }

    @Override
    public void remove(String name) {
        map.remove(name);
    }

    @Override
    public void forEach(java.util.function.BiConsumer<String, String> each) {
        map.forEach(each);
    }

    @Override
    public boolean contains(String name) {
        return map.contains(name);
    }
}
