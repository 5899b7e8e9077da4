package dev.inmesh.runtime.runtime;

import dev.inmesh.api.config.core.FractionalPercent;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The runtime in force, as Envoy's {@code Runtime::SnapshotImpl}: the layers of a bootstrap's {@code layered_runtime}
 * with their values (the admin layer's those {@code /runtime_modify} set), and each key's value from the last layer
 * that has it. Immutable; a configuration's snapshot compiles it into its route tables, so nothing here is read per
 * request. Without a {@code layered_runtime} it has no layers, and every reader takes its default.
 */
public final class RuntimeSnapshot {
    /** No layers: every key takes its default, as Envoy's runtime of a bootstrap without {@code layered_runtime}. */
    public static final RuntimeSnapshot EMPTY = new RuntimeSnapshot(List.of());

    /** One layer as {@code /runtime} shows it: its name and its values. */
    public record Layer(String name, Map<String, RuntimeEntry> values) {
        public Layer {
            values = Map.copyOf(values);
        }
    }

    private final List<Layer> layers;
    private final Map<String, RuntimeEntry> values;

    private RuntimeSnapshot(List<Layer> layers) {
        this.layers = List.copyOf(layers);
        Map<String, RuntimeEntry> merged = new HashMap<>();
        for (Layer l : this.layers) {
            merged.putAll(l.values());
        }
        this.values = Map.copyOf(merged);
    }

    /**
     * The runtime of {@code config} (null: none), its admin layer holding {@code admin} (the values
     * {@code /runtime_modify} set, which a configuration without an admin layer leaves out).
     */
    public static RuntimeSnapshot of(LayeredRuntime config, Map<String, RuntimeEntry> admin) {
        if (config == null) {
            return EMPTY;
        }
        List<Layer> layers = new ArrayList<>();
        for (LayeredRuntime.Layer l : config.layers()) {
            layers.add(new Layer(l.name(), l instanceof LayeredRuntime.StaticLayer s ? s.values() : admin));
        }
        return new RuntimeSnapshot(layers);
    }

    /** The layers, in order. */
    public List<Layer> layers() {
        return layers;
    }

    /**
     * The share Envoy's {@code featureEnabled(key, default_value)} enables ({@code Runtime::SnapshotImpl}, for a
     * {@code RuntimeFractionalPercent}): the key's fractional percent; else its unsigned integer as a percentage, above
     * 100 always; else {@code defaultValue}, also for an empty or null key. A request is in when
     * {@code random % denominator < numerator}.
     */
    public FractionalPercent fraction(String key, FractionalPercent defaultValue) {
        RuntimeEntry e = key == null || key.isEmpty() ? null : values.get(key);
        if (e == null) {
            return defaultValue;
        }
        if (e.fraction() != null) {
            return e.fraction();
        }
        if (e.uint() != null) {
            return new FractionalPercent(Math.min(e.uint(), 100), FractionalPercent.Denominator.HUNDRED);
        }
        return defaultValue;
    }

    /** Envoy's {@code getInteger(key, default_value)}: the key's unsigned integer, else {@code defaultValue}. */
    public long integer(String key, long defaultValue) {
        RuntimeEntry e = key == null || key.isEmpty() ? null : values.get(key);
        return e == null || e.uint() == null ? defaultValue : e.uint();
    }
}
