/**
 * Access logs: one line per finished request, in Istio's default text format or its JSON variant, formatted from a
 * {@link dev.inmesh.runtime.stats.StreamInfo} by an {@link dev.inmesh.runtime.accesslog.AccessLog} and handed to a
 * pluggable {@link dev.inmesh.runtime.accesslog.AccessLogSink}. The default sink writes on its own thread, so that
 * logging never blocks an event loop.
 */
package dev.inmesh.runtime.accesslog;
