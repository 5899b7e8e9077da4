package dev.inmesh.runtime.accesslog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.stats.StreamInfos;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** A CEL expression's value as Envoy prints it, for Istio's stats dimensions. */
class CelValuesTest {
    private static final StreamInfo OK = StreamInfos.outboundOk();

    private static String value(String expression) {
        return CelValues.compile(expression).apply(OK);
    }

    @Test
    void valuesArePrintedAsEnvoyPrintsThem() {
        assertEquals("reviews:9080", value("request.host"));
        assertEquals("200", value("response.code"));
        assertEquals("9080", value("string(destination.port)"));
        assertEquals("true", value("response.code == 200"));
        assertEquals("GET /reviews/0", value("request.method + ' ' + request.path"));
        assertEquals("1.5", value("3.0 / 2.0"));
        assertEquals("12ms", value("request.duration"));
    }

    @Test
    void aValueThatCannotBeEvaluatedIsNullAndABadExpressionIsRefused() {
        assertNull(value("request.headers['x-absent']"));
        assertNull(value("response.code + 'x'"));
        assertThrows(IllegalArgumentException.class, () -> CelValues.compile("request.host +"));
        assertThrows(IllegalArgumentException.class, () -> CelValues.compile("node.metadata['NAME']"));
    }

    @Test
    void doublesHaveSixSignificantDigitsAndDurationsAbseilsForm() {
        assertEquals("0.333333", dev.inmesh.runtime.stats.EnvoyNumbers.general(1.0 / 3));
        assertEquals("100000", dev.inmesh.runtime.stats.EnvoyNumbers.general(1e5));
        assertEquals("1e+06", dev.inmesh.runtime.stats.EnvoyNumbers.general(1e6));
        assertEquals("1.5e-05", dev.inmesh.runtime.stats.EnvoyNumbers.general(1.5e-5));
        assertEquals("0", CelFilter.durationText(Duration.ZERO));
        assertEquals("250ms", CelFilter.durationText(Duration.ofMillis(250)));
        assertEquals("1.5ms", CelFilter.durationText(Duration.ofNanos(1_500_000)));
        assertEquals("1.5s", CelFilter.durationText(Duration.ofMillis(1500)));
        assertEquals("2m3s", CelFilter.durationText(Duration.ofSeconds(123)));
        assertEquals("1h0m0.5s", CelFilter.durationText(Duration.ofMillis(3_600_500)));
    }
}
