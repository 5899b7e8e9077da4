package dev.inmesh.runtime.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.api.config.core.FractionalPercent.Denominator;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.LayeredRuntimeParser;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The runtime in force as Envoy's {@code Runtime::SnapshotImpl}: a later layer's value over an earlier one's, and
 * {@code featureEnabled(key, FractionalPercent)} and {@code getInteger} reading them as Envoy's do.
 */
class RuntimeSnapshotTest {
    private static final FractionalPercent TEN = new FractionalPercent(10, Denominator.HUNDRED);

    private static RuntimeSnapshot runtime(String layers, Map<String, String> admin) throws Exception {
        LayeredRuntime config = EnvoyConfigReader.read("static_resources: {}\nlayered_runtime: {layers: " + layers
                + "}\n").runtime();
        Map<String, RuntimeEntry> values = new java.util.HashMap<>();
        admin.forEach((k, v) -> values.put(k, RuntimeEntry.of(LayeredRuntimeParser.yaml(v), v)));
        return RuntimeSnapshot.of(config, values);
    }

    private static RuntimeSnapshot staticLayer(String values) throws Exception {
        return runtime("[{name: s, static_layer: " + values + "}]", Map.of());
    }

    @Test
    void anIntegerIsAPercentageAFractionIsItselfAndAnythingElseLeavesTheDefault() throws Exception {
        RuntimeSnapshot r = staticLayer("""
                {zero: 0, half: 50, all: 100, over: 150, cut: 3.7, negative: -5, text: "25", word: "on", flag: true,
                 tiny: {numerator: 5, denominator: MILLION}, empty: {}, odd: {numerator: 5, denominator: 3}}""");
        assertEquals(new FractionalPercent(0, Denominator.HUNDRED), r.fraction("zero", TEN));
        assertEquals(new FractionalPercent(50, Denominator.HUNDRED), r.fraction("half", TEN));
        assertEquals(new FractionalPercent(100, Denominator.HUNDRED), r.fraction("all", TEN));
        // above 100: always, as Envoy's featureEnabled answers true for it
        assertEquals(new FractionalPercent(100, Denominator.HUNDRED), r.fraction("over", TEN));
        assertEquals(new FractionalPercent(3, Denominator.HUNDRED), r.fraction("cut", TEN));
        assertEquals(new FractionalPercent(25, Denominator.HUNDRED), r.fraction("text", TEN));
        assertEquals(new FractionalPercent(5, Denominator.MILLION), r.fraction("tiny", TEN));
        assertEquals(new FractionalPercent(0, Denominator.HUNDRED), r.fraction("empty", TEN));
        for (String key : new String[] {"negative", "word", "flag", "odd", "absent", "", null}) {
            assertEquals(TEN, r.fraction(key, TEN), key);
        }
        assertEquals(150, r.integer("over", 7));
        assertEquals(3, r.integer("cut", 7));
        assertEquals(7, r.integer("negative", 7));
        assertEquals(7, r.integer("tiny", 7));
        assertEquals(7, r.integer("absent", 7));
    }

    @Test
    void aLaterLayerOverridesAnEarlierOneAndTheAdminLayerHoldsItsPlace() throws Exception {
        String layers = "[{name: base, static_layer: {a: 1, b: 1, c: 1}}, {name: admin, admin_layer: {}},"
                + " {name: top, static_layer: {c: 3}}]";
        RuntimeSnapshot r = runtime(layers, Map.of("a", "2", "c", "2"));
        assertEquals(2, r.integer("a", 0));
        assertEquals(1, r.integer("b", 0));
        // the layer after the admin layer wins over it
        assertEquals(3, r.integer("c", 0));
        assertEquals(List.of("base", "admin", "top"), r.layers().stream().map(RuntimeSnapshot.Layer::name).toList());
        assertEquals("2", r.layers().get(1).values().get("a").raw());
        assertEquals(0, RuntimeSnapshot.EMPTY.layers().size());
        assertEquals(9, RuntimeSnapshot.EMPTY.integer("a", 9));
    }
}
