/**
 * Snapshots: every config source hands a {@link dev.inmesh.runtime.xds.ResourceBundle} to
 * {@link dev.inmesh.runtime.snapshot.SnapshotCompiler}, which validates the cross-references and compiles route
 * tables and listener indexes once into an immutable {@link dev.inmesh.runtime.snapshot.MeshSnapshot}. A
 * {@link dev.inmesh.runtime.snapshot.SnapshotHolder} publishes it with one volatile write; the request path reads
 * it with one volatile read and never locks. A bad bundle is rejected and the last good snapshot keeps serving.
 */
package dev.inmesh.runtime.snapshot;
