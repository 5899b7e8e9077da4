/**
 * Access logs: one line per finished request (and per TCP connection of the standalone proxy's {@code tcp_proxy}), in
 * Istio's default text format or its JSON variant, formatted from a {@link dev.inmesh.runtime.stats.StreamInfo} (or a
 * {@link dev.inmesh.runtime.stats.TcpStreamInfo}) by an {@link dev.inmesh.runtime.accesslog.AccessLog} and handed to a
 * pluggable {@link dev.inmesh.runtime.accesslog.AccessLogSink}. The default sink writes on its own thread, so that
 * logging never blocks an event loop.
 */
package dev.inmesh.runtime.accesslog;
