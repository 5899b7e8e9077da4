/**
 * Envoy's runtime as a bootstrap's {@code layered_runtime} gives it: its layers in order
 * ({@link dev.inmesh.runtime.runtime.LayeredRuntime}: static layers, and the admin layer whose values the admin's
 * {@code /runtime_modify} sets), their values typed as Envoy's runtime snapshot types them
 * ({@link dev.inmesh.runtime.runtime.RuntimeEntry}), and the values in force, a later layer's over an earlier one's
 * ({@link dev.inmesh.runtime.runtime.RuntimeSnapshot}), which a configuration's snapshot compiles into its route tables:
 * a route's {@code runtime_fraction}, a weighted split's {@code runtime_key_prefix} and a mirror policy's
 * {@code runtime_fraction} read it once per configuration or runtime change, not per request.
 * Internal: not part of the public API.
 */
package dev.inmesh.runtime.runtime;
