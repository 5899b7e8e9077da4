package dev.inmesh.runtime.xds;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.type.v3.Percent;
import org.junit.jupiter.api.Test;

class EnvoyJsonPrintTest {

    @Test
    void wholeDoublesPrintWithoutAFractionAsEnvoysAdminPrintsThem() {
        Struct istio = Struct.newBuilder()
                .putFields("default_original_port", Value.newBuilder().setNumberValue(9080).build())
                .putFields("max", Value.newBuilder().setNumberValue(4294967295.0).build())
                .putFields("ratio", Value.newBuilder().setNumberValue(0.25).build())
                .putFields("big", Value.newBuilder().setNumberValue(1e20).build())
                .putFields("text", Value.newBuilder().setStringValue("9080.0 \"1.0\" 2E3").build())
                .build();
        String json = EnvoyJson.print(Metadata.newBuilder().putFilterMetadata("istio", istio).build());
        assertEquals("""
                {
                  "filter_metadata": {
                    "istio": {
                      "default_original_port": 9080,
                      "max": 4294967295,
                      "ratio": 0.25,
                      "big": 1.0E20,
                      "text": "9080.0 \\"1.0\\" 2E3"
                    }
                  }
                }""", json);
        assertEquals("{\n  \"value\": -100\n}", EnvoyJson.print(Percent.newBuilder().setValue(-100).build()));
    }
}
