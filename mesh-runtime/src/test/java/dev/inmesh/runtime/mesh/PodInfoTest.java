package dev.inmesh.runtime.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** How a pod is read as Istio's agent reads it: its downward API files, its variables, its mounted secrets. */
class PodInfoTest {
    @Test
    void goQuotedValuesOfTheDownwardApiAreUnquotedAndOthersRefused() {
        assertEquals("plain", PodInfo.unquote("\"plain\""));
        assertEquals("tab\there \"q\" back\\slash", PodInfo.unquote("\"tab\\there \\\"q\\\" back\\\\slash\""));
        assertEquals("\u00e9\u00e9\u00e9 \u0001", PodInfo.unquote("\"\\xc3\\xa9\\u00e9\\303\\251 \\x01\""));
        assertEquals(null, PodInfo.unquote("unquoted"));
        assertEquals(null, PodInfo.unquote("\"\\U00110000\""), "beyond Unicode");
        assertEquals(null, PodInfo.unquote("\"bad \\q escape\""));
        assertEquals(null, PodInfo.unquote("\"cut \\x4\""));
        List<String> warnings = new ArrayList<>();
        assertEquals(Map.of("a", "1", "b", "x=y"), PodInfo.downwardApi("a=\"1\"\nb=\"x=y\"\nbroken\nc=unquoted\n",
                Path.of("labels"), warnings::add));
        assertEquals(2, warnings.size(), warnings.toString());
    }
}
