package dev.inmesh.runtime.inbound;

import dev.inmesh.api.config.listener.Compressor;
import dev.inmesh.runtime.router.CompressorFilter;
import dev.inmesh.runtime.stats.DownstreamStats;
import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.Cookie;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.StreamPriority;
import io.vertx.core.net.HostAndPort;
import java.util.Set;

/**
 * The response a service writes through the inbound connection manager's compressor filter ({@link CompressorFilter}):
 * at its head (the first write, {@code writeHead}, {@code end} or {@code send}) the filter decides from the headers the
 * service set, and, when it compresses, each buffer written is gzipped and flushed on its way, and the end closes the
 * gzip stream; the body is never held whole. Everything else goes to the server's own response. A file sent with
 * {@code sendFile} (which the server writes straight from the file) leaves the response uncompressed. Since the
 * decision reads the service's headers, those the route and the other filters add when the head goes out do not
 * count in it.
 */
final class CompressingResponse implements HttpServerResponse {
    private final HttpServerResponse delegate;
    private final Compressor config;
    private final boolean head;
    private final String acceptEncoding;
    private final boolean http1;
    private final DownstreamStats.CompressorCounters counters;
    private boolean decided;
    private CompressorFilter.Gzip gzip;

    /**
     * @param head whether it answers a {@code HEAD} request
     * @param acceptEncoding the request's {@code accept-encoding} ({@link CompressorFilter#acceptEncoding}), or null
     * @param http1 whether the response goes over HTTP/1.1, where a compressed body goes chunked
     * @param counters the filter's statistics, or null for none
     */
    CompressingResponse(HttpServerResponse delegate, Compressor config, boolean head, String acceptEncoding,
                        boolean http1, DownstreamStats.CompressorCounters counters) {
        this.delegate = delegate;
        this.config = config;
        this.head = head;
        this.acceptEncoding = acceptEncoding;
        this.http1 = http1;
        this.counters = counters;
    }

    /** Decides once, before the head goes out. */
    private void head() {
        if (decided || delegate.headWritten()) {
            decided = true;
            return;
        }
        decided = true;
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
    public Future<Void> write(String chunk, String enc) {
        return write(Buffer.buffer(chunk, enc));
    }

    @Override
    public Future<Void> write(String chunk) {
        return write(Buffer.buffer(chunk));
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
    public Future<Void> end(String chunk) {
        return end(Buffer.buffer(chunk));
    }

    @Override
    public Future<Void> end(String chunk, String enc) {
        return end(Buffer.buffer(chunk, enc));
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

    @Override
    public HttpServerResponse exceptionHandler(Handler<Throwable> handler) {
        delegate.exceptionHandler(handler);
        return this;
    }

    @Override
    public HttpServerResponse setWriteQueueMaxSize(int maxSize) {
        delegate.setWriteQueueMaxSize(maxSize);
        return this;
    }

    @Override
    public boolean writeQueueFull() {
        return delegate.writeQueueFull();
    }

    @Override
    public HttpServerResponse drainHandler(Handler<Void> handler) {
        delegate.drainHandler(handler);
        return this;
    }

    @Override
    public int getStatusCode() {
        return delegate.getStatusCode();
    }

    @Override
    public HttpServerResponse setStatusCode(int statusCode) {
        delegate.setStatusCode(statusCode);
        return this;
    }

    @Override
    public String getStatusMessage() {
        return delegate.getStatusMessage();
    }

    @Override
    public HttpServerResponse setStatusMessage(String statusMessage) {
        delegate.setStatusMessage(statusMessage);
        return this;
    }

    @Override
    public HttpServerResponse setChunked(boolean chunked) {
        delegate.setChunked(chunked);
        return this;
    }

    @Override
    public boolean isChunked() {
        return delegate.isChunked();
    }

    @Override
    public MultiMap headers() {
        return delegate.headers();
    }

    @Override
    public HttpServerResponse putHeader(String name, String value) {
        delegate.putHeader(name, value);
        return this;
    }

    @Override
    public HttpServerResponse putHeader(CharSequence name, CharSequence value) {
        delegate.putHeader(name, value);
        return this;
    }

    @Override
    public HttpServerResponse putHeader(String name, Iterable<String> values) {
        delegate.putHeader(name, values);
        return this;
    }

    @Override
    public HttpServerResponse putHeader(CharSequence name, Iterable<CharSequence> values) {
        delegate.putHeader(name, values);
        return this;
    }

    @Override
    public MultiMap trailers() {
        return delegate.trailers();
    }

    @Override
    public HttpServerResponse putTrailer(String name, String value) {
        delegate.putTrailer(name, value);
        return this;
    }

    @Override
    public HttpServerResponse putTrailer(CharSequence name, CharSequence value) {
        delegate.putTrailer(name, value);
        return this;
    }

    @Override
    public HttpServerResponse putTrailer(String name, Iterable<String> values) {
        delegate.putTrailer(name, values);
        return this;
    }

    @Override
    public HttpServerResponse putTrailer(CharSequence name, Iterable<CharSequence> value) {
        delegate.putTrailer(name, value);
        return this;
    }

    @Override
    public HttpServerResponse closeHandler(Handler<Void> handler) {
        delegate.closeHandler(handler);
        return this;
    }

    @Override
    public HttpServerResponse endHandler(Handler<Void> handler) {
        delegate.endHandler(handler);
        return this;
    }

    @Override
    public Future<Void> writeContinue() {
        return delegate.writeContinue();
    }

    @Override
    public Future<Void> writeEarlyHints(MultiMap headers) {
        return delegate.writeEarlyHints(headers);
    }

    @Override
    public boolean ended() {
        return delegate.ended();
    }

    @Override
    public boolean closed() {
        return delegate.closed();
    }

    @Override
    public boolean headWritten() {
        return delegate.headWritten();
    }

    @Override
    public HttpServerResponse headersEndHandler(Handler<Void> handler) {
        delegate.headersEndHandler(handler);
        return this;
    }

    @Override
    public HttpServerResponse bodyEndHandler(Handler<Void> handler) {
        delegate.bodyEndHandler(handler);
        return this;
    }

    @Override
    public long bytesWritten() {
        return delegate.bytesWritten();
    }

    @Override
    public int streamId() {
        return delegate.streamId();
    }

    @Override
    public Future<HttpServerResponse> push(HttpMethod method, HostAndPort authority, String path, MultiMap headers) {
        return delegate.push(method, authority, path, headers);
    }

    @Override
    public Future<Void> writeCustomFrame(int type, int flags, Buffer payload) {
        return delegate.writeCustomFrame(type, flags, payload);
    }

    @Override
    public HttpServerResponse setStreamPriority(StreamPriority streamPriority) {
        delegate.setStreamPriority(streamPriority);
        return this;
    }

    @Override
    public HttpServerResponse addCookie(Cookie cookie) {
        delegate.addCookie(cookie);
        return this;
    }

    @Override
    public Cookie removeCookie(String name, boolean invalidate) {
        return delegate.removeCookie(name, invalidate);
    }

    @Override
    public Set<Cookie> removeCookies(String name, boolean invalidate) {
        return delegate.removeCookies(name, invalidate);
    }

    @Override
    public Cookie removeCookie(String name, String domain, String path, boolean invalidate) {
        return delegate.removeCookie(name, domain, path, invalidate);
    }
}
