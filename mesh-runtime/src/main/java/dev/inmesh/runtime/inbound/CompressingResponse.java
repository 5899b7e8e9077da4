package dev.inmesh.runtime.inbound;

import dev.inmesh.api.config.listener.Compressor;
import dev.inmesh.runtime.router.CompressorFilter;
import dev.inmesh.runtime.stats.DownstreamStats;
import io.vertx.core.Future;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpServerResponse;

/**
 * The response a service writes through the inbound connection manager's compressor filter ({@link CompressorFilter}):
 * at its head (the first write, {@code writeHead}, {@code end} or {@code send}) the filter decides from the headers the
 * service set, and, when it compresses, each buffer written is gzipped and flushed on its way, and the end closes the
 * gzip stream; the body is never held whole. Everything else goes to the server's own response. A file sent with
 * {@code sendFile} (which the server writes straight from the file) leaves the response uncompressed. Since the
 * decision reads the service's headers, those the route and the other filters add when the head goes out do not
 * count in it.
 */
final class CompressingResponse extends DelegatingResponse {
    private final Compressor config;
    private final boolean head;
    private final String acceptEncoding;
    private final boolean http1;
    private final DownstreamStats.CompressorCounters counters;
    private final Runnable headComplete;
    private boolean decided;
    private CompressorFilter.Gzip gzip;

    /**
     * @param head whether it answers a {@code HEAD} request
     * @param acceptEncoding the request's {@code accept-encoding} ({@link CompressorFilter#acceptEncoding}), or null
     * @param http1 whether the response goes over HTTP/1.1, where a compressed body goes chunked
     * @param counters the filter's statistics, or null for none
     * @param headComplete completes the service's head before the filter reads it (its head's end handler)
     */
    CompressingResponse(HttpServerResponse delegate, Compressor config, boolean head, String acceptEncoding,
                        boolean http1, DownstreamStats.CompressorCounters counters, Runnable headComplete) {
        super(delegate);
        this.config = config;
        this.head = head;
        this.acceptEncoding = acceptEncoding;
        this.http1 = http1;
        this.counters = counters;
        this.headComplete = headComplete;
    }

    /** Decides once, before the head goes out. */
    private void head() {
        if (decided || delegate.headWritten()) {
            decided = true;
            return;
        }
        decided = true;
        headComplete.run();
        gzip = CompressorFilter.response(config, head, acceptEncoding, delegate.getStatusCode(), delegate.headers(),
                counters);
        if (gzip != null && http1) {
            delegate.setChunked(true); // its length is not known before it ends
        }
    }

    @Override
    public Future<Void> write(Buffer data) {
        head();
        return delegate.write(gzip == null ? data : gzip.compress(data));
    }

    @Override
    public Future<Void> end(Buffer data) {
        if (!decided && !delegate.headWritten() && !delegate.isChunked()
                && !delegate.headers().contains("content-length")) {
            // the whole body in one end: its length, which the server would send, is what the filter reads
            delegate.headers().set("content-length", Integer.toString(data.length()));
        }
        head();
        if (gzip == null) {
            return delegate.end(data);
        }
        return delegate.end(gzip.compress(data).appendBuffer(gzip.finish()));
    }

    @Override
    public Future<Void> end() {
        head();
        return gzip == null ? delegate.end() : delegate.end(gzip.finish());
    }

    @Override
    public Future<Void> writeHead() {
        head();
        return delegate.writeHead();
    }

    @Override
    public Future<Void> sendFile(String filename, long offset, long length) {
        return asIs(() -> delegate.sendFile(filename, offset, length));
    }

    @Override
    public Future<Void> sendFile(java.nio.channels.FileChannel channel, long offset, long length) {
        return asIs(() -> delegate.sendFile(channel, offset, length));
    }

    @Override
    public Future<Void> sendFile(java.io.RandomAccessFile file, long offset, long length) {
        return asIs(() -> delegate.sendFile(file, offset, length));
    }

    /** A file the server writes itself: the response goes uncompressed, as it is. */
    private Future<Void> asIs(java.util.function.Supplier<Future<Void>> send) {
        decided = true;
        if (gzip != null) {
            return Future.failedFuture(new IllegalStateException("a file sent into a compressed body"));
        }
        return send.get();
    }

    @Override
    public Future<Void> reset(long code) {
        abandon();
        return delegate.reset(code);
    }

    /**
     * The response will not end (the service reset it, or its stream or connection closed): the gzip stream's
     * deflater is freed now, not left to the garbage collector; what the service still writes goes nowhere.
     */
    void abandon() {
        if (gzip != null) {
            gzip.release();
        }
    }
}
