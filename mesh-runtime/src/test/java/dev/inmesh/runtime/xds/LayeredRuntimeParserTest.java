package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.config.core.FractionalPercent;
import dev.inmesh.runtime.runtime.LayeredRuntime;
import dev.inmesh.runtime.runtime.RuntimeEntry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * A bootstrap's {@code layered_runtime} as Envoy's runtime loader reads it ({@code runtime_impl.cc}): layers in order,
 * a static layer's objects walked into dotted keys, and what Envoy refuses refused; disk and RTDS layers refused by
 * name.
 */
class LayeredRuntimeParserTest {
    private static LayeredRuntime runtime(String layeredRuntime) throws Exception {
        return EnvoyConfigReader.read("static_resources: {}\nlayered_runtime: " + layeredRuntime + "\n").runtime();
    }

    private static String refused(String layeredRuntime) {
        return assertThrows(EnvoyConfigReader.ConfigReadException.class, () -> runtime(layeredRuntime)).getMessage();
    }

    private static Map<String, RuntimeEntry> staticValues(LayeredRuntime r, int layer) {
        return ((LayeredRuntime.StaticLayer) r.layers().get(layer)).values();
    }

    @Test
    void istiosBootstrapHasItsGlobalConfigLayerThenAnAdminLayer() throws Exception {
        Path istio = Path.of("src/test/resources/istio/bootstrap.json");
        LayeredRuntime r = EnvoyConfigReader.read(Files.readString(istio)).runtime();
        assertEquals(List.of("global config", "admin"), r.layers().stream().map(LayeredRuntime.Layer::name).toList());
        Map<String, RuntimeEntry> flags = staticValues(r, 0);
        // Istio's agent writes its flags as strings: a number among them reads as one
        assertEquals(new RuntimeEntry("2147483647", 2147483647L, null),
                flags.get("overload.global_downstream_max_connections"));
        assertEquals(new RuntimeEntry("false", null, null),
                flags.get("envoy.reloadable_features.http_reject_path_with_fragment"));
        assertTrue(r.layers().get(1) instanceof LayeredRuntime.AdminLayer);
        assertTrue(r.hasAdminLayer());
    }

    @Test
    void aStaticLayersObjectsAreWalkedIntoDottedKeysAndAFractionIsOneValue() throws Exception {
        Map<String, RuntimeEntry> v = staticValues(runtime("""
                {layers: [{name: s, static_layer: {
                  health_check: {min_interval: 5, max: 2.5},
                  "rk.zero": 100,
                  canary: {numerator: 5, denominator: TEN_THOUSAND},
                  none: {},
                  odd: {numerator: 5, extra: 1},
                  flag: true,
                  big: 2147483647,
                  text: " 42 "}}]}"""), 0);
        assertEquals(new RuntimeEntry("5", 5L, null), v.get("health_check.min_interval"));
        assertEquals(new RuntimeEntry("2.5", 2L, null), v.get("health_check.max"));
        assertEquals(new RuntimeEntry("100", 100L, null), v.get("rk.zero"));
        assertEquals(new FractionalPercent(5, FractionalPercent.Denominator.TEN_THOUSAND), v.get("canary").fraction());
        // an empty object is a fraction, 0 of 100, as Envoy's parseFractionValue makes it
        assertEquals(new FractionalPercent(0, FractionalPercent.Denominator.HUNDRED), v.get("none").fraction());
        // a field beside numerator and denominator: one value, no fraction
        assertNull(v.get("odd").fraction());
        assertNull(v.get("odd.extra"));
        assertEquals(new RuntimeEntry("true", null, null), v.get("flag"));
        // a number is shown as Envoy prints a double: six significant digits
        assertEquals(new RuntimeEntry("2.14748e+09", 2147483647L, null), v.get("big"));
        assertEquals(new RuntimeEntry(" 42 ", 42L, null), v.get("text"));
        assertEquals(9, v.size(), v.toString());
    }

    /**
     * A global downstream connection limit, which Inmesh does not apply, is warned of by its path; Istio's value
     * (2147483647, no limit in effect) is not.
     */
    @Test
    void aGlobalDownstreamConnectionLimitInAStaticLayerIsWarnedOfAndIstiosNoLimitIsNot() throws Exception {
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(LayeredRuntimeParser.class.getName());
        List<String> warned = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler h = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                warned.add(r.getMessage());
            }

            @Override
            public void flush() {}

            @Override
            public void close() {}
        };
        log.addHandler(h);
        try {
            runtime("{layers: [{name: istio, static_layer: {overload.global_downstream_max_connections: 2147483647}}]}");
            assertEquals(List.of(), warned);
            runtime("{layers: [{name: s, static_layer: {overload: {global_downstream_max_connections: 3}}}]}");
        } finally {
            log.removeHandler(h);
        }
        assertEquals(List.of("layered_runtime.layers[0].static_layer.overload.global_downstream_max_connections: 3 is "
                + "not applied: Inmesh has no global downstream connection limit (docs/configuration.md, runtime)"),
                warned);
    }

    @Test
    void anEmptyLayeredRuntimeHasOneUnnamedAdminLayerAsEnvoysServerAddsIt() throws Exception {
        LayeredRuntime r = runtime("{}");
        assertEquals(List.of(new LayeredRuntime.AdminLayer("")), r.layers());
        assertNull(EnvoyConfigReader.read("static_resources: {}\n").runtime());
    }

    @Test
    void whatEnvoysLoaderRefusesIsRefusedNamingTheLayer() {
        String list = refused("{layers: [{name: s, static_layer: {a: {b: [1]}}}]}");
        assertTrue(list.contains("layered_runtime.layers[0].static_layer.a.b: Invalid runtime entry value for a.b"),
                list);
        assertTrue(refused("{layers: [{name: s, static_layer: {a: null}}]}")
                .contains("Invalid runtime entry value for a"));
        assertTrue(refused("{layers: [{static_layer: {}}]}").contains("layered_runtime.layers[0].name: ''"));
        assertTrue(refused("{layers: [{name: s, static_layer: {}}, {name: s, admin_layer: {}}]}")
                .contains("layers[1].name: 's': Duplicate layer name"));
        assertTrue(refused("{layers: [{name: a, admin_layer: {}}, {name: b, admin_layer: {}}]}")
                .contains("Too many admin layers specified in LayeredRuntime"));
        assertTrue(refused("{layers: [{name: s}]}").contains("layers[0]: no layer"));
    }

    @Test
    void diskAndRtdsLayersAreRefusedByName() {
        String disk = refused("{layers: [{name: d, disk_layer: {symlink_root: /srv/runtime/current}}]}");
        assertTrue(disk.contains("layered_runtime.layers[0].disk_layer: not supported by Inmesh"), disk);
        String rtds = refused("{layers: [{name: r, rtds_layer: {name: r, rtds_config: {ads: {}}}}]}");
        assertTrue(rtds.contains("layered_runtime.layers[0].rtds_layer: not supported by Inmesh"), rtds);
    }

    @Test
    void aDumpsRefusedRuntimeIsLeftOutWhereRefusedPartsAre() throws Exception {
        String dump = """
                {"configs": [{"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
                  "bootstrap": {"layered_runtime": {"layers": [{"name": "r", "rtds_layer": {"name": "r"}}]}}}]}""";
        List<String> leftOut = new java.util.ArrayList<>();
        assertNull(EnvoyConfigReader.readLeniently(dump, leftOut::add).runtime());
        assertTrue(leftOut.get(0).contains("rtds_layer: not supported by Inmesh"), leftOut.toString());
    }

    @Test
    void anAdminValueIsReadAsYaml() {
        assertEquals(new RuntimeEntry("50", 50L, null), RuntimeEntry.of(LayeredRuntimeParser.yaml("50"), "50"));
        assertEquals(new FractionalPercent(5, FractionalPercent.Denominator.MILLION),
                RuntimeEntry.of(LayeredRuntimeParser.yaml("{numerator: 5, denominator: MILLION}"), "x").fraction());
        // as Envoy's: a quoted number is text, whose number is read from the text as given, quotes and all
        assertEquals(new RuntimeEntry("'50'", null, null), RuntimeEntry.of(LayeredRuntimeParser.yaml("'50'"), "'50'"));
        assertEquals(new RuntimeEntry("0.5", 0L, null), RuntimeEntry.of(LayeredRuntimeParser.yaml("0.5"), "0.5"));
        assertThrows(IllegalArgumentException.class, () -> LayeredRuntimeParser.yaml("{a: [}"));
    }
}
