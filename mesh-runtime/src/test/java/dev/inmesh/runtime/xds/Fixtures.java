package dev.inmesh.runtime.xds;

import java.net.URISyntaxException;
import java.nio.file.Path;

/** Test helpers: the Istio-shaped fixtures under {@code src/test/resources/istio}, and reading them. */
final class Fixtures {
    private Fixtures() {}

    static Path istio(String name) {
        return resource("istio/" + name);
    }

    static Path resource(String name) {
        try {
            var url = Fixtures.class.getClassLoader().getResource(name);
            if (url == null) {
                throw new AssertionError("no test resource " + name);
            }
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new AssertionError(e);
        }
    }

    static ResourceBundle read(Path path) {
        try {
            return EnvoyConfigReader.read(path);
        } catch (EnvoyConfigReader.ConfigReadException e) {
            throw new AssertionError("expected " + path + " to load: " + e.getMessage(), e);
        }
    }
}
