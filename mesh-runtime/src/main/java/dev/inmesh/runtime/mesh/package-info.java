/**
 * The runtime behind {@link dev.inmesh.api.Mesh}: {@link dev.inmesh.runtime.mesh.DefaultMesh} assembles the snapshot
 * holder, the config source, the shared router, the in-JVM outbound client and inbound handler, metrics, access log
 * and admin server; {@link dev.inmesh.runtime.mesh.MeshSettings} reads {@link dev.inmesh.api.MeshOptions} from
 * smallrye-config.
 */
package dev.inmesh.runtime.mesh;
