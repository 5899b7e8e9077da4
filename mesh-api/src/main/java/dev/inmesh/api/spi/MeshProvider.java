package dev.inmesh.api.spi;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import io.vertx.core.Vertx;
import java.util.ServiceLoader;

/**
 * The implementation behind {@link Mesh#create}: found with {@link ServiceLoader}; {@code mesh-runtime} provides it.
 */
public interface MeshProvider {

    Mesh create(Vertx vertx, MeshOptions options);

    /** Options read from configuration (system properties, environment, application.properties). */
    MeshOptions optionsFromConfiguration();

    /** The provider on the class path. */
    static MeshProvider load() {
        return ServiceLoader.load(MeshProvider.class, MeshProvider.class.getClassLoader()).findFirst()
                .orElseThrow(() -> new IllegalStateException("no Inmesh implementation on the class path: add the "
                        + "dependency dev.inmesh:mesh-runtime"));
    }
}
