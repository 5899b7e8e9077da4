/**
 * What both TLS sides share, compiled once per configuration: key material and trusted certificate authorities from
 * PEMs ({@link dev.inmesh.runtime.tls.TlsMaterial}), and the peer certificate check Envoy makes (the chain, then
 * the SAN matchers; {@link dev.inmesh.runtime.tls.PeerVerifier}). Origination to upstreams builds on them in
 * {@code upstream.UpstreamTls}, termination on a listener's filter chain in
 * {@link dev.inmesh.runtime.tls.DownstreamTls}, and on a Vert.x HTTP server Inmesh does not run (the application's,
 * in-JVM) in {@link dev.inmesh.runtime.tls.ServerTls}. The files of Istio's file SDS names are watched for rotation by
 * {@link dev.inmesh.runtime.tls.SdsFileWatcher}, on a thread of its own.
 */
package dev.inmesh.runtime.tls;
