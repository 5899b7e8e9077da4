package dev.inmesh.runtime.admin;

import com.google.protobuf.ListValue;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.inmesh.runtime.runtime.RuntimeEntry;
import dev.inmesh.runtime.runtime.RuntimeSnapshot;
import java.util.Map;
import java.util.TreeMap;

/**
 * Envoy's admin {@code /runtime} ({@code RuntimeHandler::handlerRuntime}): {@code layers}, the runtime's layer names
 * in order, and {@code entries}, each key any layer has (sorted), with {@code layer_values}, its text in each layer
 * ({@code ""} in a layer without it), and {@code final_value}, the last of those that is not empty.
 */
final class RuntimeJson {
    private RuntimeJson() {}

    static Struct of(RuntimeSnapshot runtime) {
        Map<String, ListValue.Builder> values = new TreeMap<>();
        for (RuntimeSnapshot.Layer l : runtime.layers()) {
            l.values().keySet().forEach(key -> values.putIfAbsent(key, ListValue.newBuilder()));
        }
        Struct.Builder entries = Struct.newBuilder();
        values.forEach((key, list) -> {
            String last = "";
            for (RuntimeSnapshot.Layer l : runtime.layers()) {
                RuntimeEntry e = l.values().get(key);
                String raw = e == null ? "" : e.raw();
                last = raw.isEmpty() ? last : raw;
                list.addValues(text(raw));
            }
            entries.putFields(key, Value.newBuilder().setStructValue(Struct.newBuilder()
                    .putFields("layer_values", Value.newBuilder().setListValue(list).build())
                    .putFields("final_value", text(last))).build());
        });
        ListValue.Builder layers = ListValue.newBuilder();
        runtime.layers().forEach(l -> layers.addValues(text(l.name())));
        return Struct.newBuilder().putFields("entries", Value.newBuilder().setStructValue(entries).build())
                .putFields("layers", Value.newBuilder().setListValue(layers).build()).build();
    }

    private static Value text(String s) {
        return Value.newBuilder().setStringValue(s).build();
    }
}
