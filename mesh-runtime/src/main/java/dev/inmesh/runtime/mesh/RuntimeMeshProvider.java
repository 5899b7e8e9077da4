package dev.inmesh.runtime.mesh;

import dev.inmesh.api.Mesh;
import dev.inmesh.api.MeshOptions;
import dev.inmesh.api.spi.MeshProvider;
import io.vertx.core.Vertx;

/** The {@link MeshProvider} of mesh-runtime, registered in {@code META-INF/services}. */
public final class RuntimeMeshProvider implements MeshProvider {
    @Override
    public Mesh create(Vertx vertx, MeshOptions options) {
        return new DefaultMesh(vertx, new MeshOptions(options));
    }

    @Override
    public MeshOptions optionsFromConfiguration() {
        return MeshSettings.fromConfiguration();
    }
}
