/**
 * Where configuration comes from: a {@link dev.inmesh.runtime.config.ConfigSource} feeds a
 * {@link dev.inmesh.runtime.snapshot.SnapshotHolder} with complete resource bundles, each applied atomically. Two
 * sources: {@link dev.inmesh.runtime.config.FileConfigSource}, the local default, which loads Envoy JSON or YAML from a
 * file or directory and reloads it when it changes; and {@link dev.inmesh.runtime.config.AdsConfigSource}, an xDS
 * server (istiod) over ADS.
 */
package dev.inmesh.runtime.config;
