package dev.inmesh.runtime.inbound;

import io.vertx.core.Future;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.Cookie;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.http.StreamResetException;
import io.vertx.core.net.HostAndPort;
import java.util.Set;

/**
 * The service's response under its route's stream duration: the server's own until the duration runs out and the
 * connection manager answers in the service's place or resets the answer it began ({@link #cutOff}). From then on,
 * what the service still does with it goes nowhere, as a sidecar's application sees its stream reset (Envoy's codec
 * resets it with {@code NO_ERROR}): each write, end, head or file fails with a {@link StreamResetException} of code 0,
 * and each change to the head or the handlers is dropped, where Vert.x's response, answered already, would throw
 * {@link IllegalStateException}. Its close handler runs once the cut's answer went ({@link #serviceGone}); its end
 * handler still runs when the stream ends,
 * as Vert.x runs it for a response reset; its body's end handler does not.
 */
final class BoundedResponse extends ServiceResponse {
    private volatile boolean cutOff;

    BoundedResponse(HttpServerResponse delegate) {
        super(delegate);
    }

    /** The stream duration ran out: the response is the service's no longer. */
    void cutOff() {
        cutOff = true;
        super.headersEndHandler(null); // the head that goes now is a local reply's, or none
        super.bodyEndHandler(null); // the body that ends now is a local reply's, or none
    }

    /**
     * After the cut's answer or reset went: the service's close handler, as a sidecar's application sees its stream
     * reset or its connection closed then, whatever the caller's connection does after; not when the service had
     * ended its answer (a filter was still sending it), which its application would have finished sending.
     */
    void serviceGone() {
        if (!serviceEnded) {
            onClose();
        }
    }

    /** Whether the service ended its answer (an end, a file) before the cut. */
    private volatile boolean serviceEnded;

    private Future<Void> ends(Future<Void> end) {
        serviceEnded = true;
        return end;
    }

    private static <T> Future<T> reset() {
        return Future.failedFuture(new StreamResetException(0));
    }

    @Override
    public Future<Void> write(Buffer data) {
        return cutOff ? reset() : super.write(data);
    }

    @Override
    public Future<Void> end(Buffer data) {
        return cutOff ? reset() : ends(super.end(data));
    }

    @Override
    public Future<Void> end() {
        return cutOff ? reset() : ends(super.end());
    }

    @Override
    public Future<Void> writeHead() {
        return cutOff ? reset() : super.writeHead();
    }

    @Override
    public Future<Void> writeContinue() {
        return cutOff ? reset() : delegate.writeContinue();
    }

    @Override
    public Future<Void> writeEarlyHints(MultiMap headers) {
        return cutOff ? reset() : delegate.writeEarlyHints(headers);
    }

    @Override
    public Future<Void> writeCustomFrame(int type, int flags, Buffer payload) {
        return cutOff ? reset() : delegate.writeCustomFrame(type, flags, payload);
    }

    @Override
    public Future<Void> sendFile(String filename, long offset, long length) {
        return cutOff ? reset() : ends(super.sendFile(filename, offset, length));
    }

    @Override
    public Future<Void> sendFile(java.nio.channels.FileChannel channel, long offset, long length) {
        return cutOff ? reset() : ends(super.sendFile(channel, offset, length));
    }

    @Override
    public Future<Void> sendFile(java.io.RandomAccessFile file, long offset, long length) {
        return cutOff ? reset() : ends(super.sendFile(file, offset, length));
    }

    @Override
    public Future<HttpServerResponse> push(HttpMethod method, HostAndPort authority, String path, MultiMap headers) {
        return cutOff ? reset() : delegate.push(method, authority, path, headers);
    }

    @Override
    public Future<Void> reset(long code) {
        return cutOff ? reset() : super.reset(code);
    }

    @Override
    public boolean writeQueueFull() {
        return !cutOff && delegate.writeQueueFull();
    }

    @Override
    public HttpServerResponse setWriteQueueMaxSize(int maxSize) {
        return cutOff ? this : super.setWriteQueueMaxSize(maxSize);
    }

    @Override
    public HttpServerResponse exceptionHandler(Handler<Throwable> handler) {
        return cutOff ? this : super.exceptionHandler(handler);
    }

    @Override
    public HttpServerResponse drainHandler(Handler<Void> handler) {
        return cutOff ? this : super.drainHandler(handler);
    }

    @Override
    public HttpServerResponse closeHandler(Handler<Void> handler) {
        return cutOff ? this : super.closeHandler(handler);
    }

    @Override
    public HttpServerResponse endHandler(Handler<Void> handler) {
        return cutOff ? this : super.endHandler(handler);
    }

    @Override
    public HttpServerResponse headersEndHandler(Handler<Void> handler) {
        return cutOff ? this : super.headersEndHandler(handler);
    }

    @Override
    public HttpServerResponse bodyEndHandler(Handler<Void> handler) {
        return cutOff ? this : super.bodyEndHandler(handler);
    }

    @Override
    public HttpServerResponse setStatusCode(int statusCode) {
        return cutOff ? this : super.setStatusCode(statusCode);
    }

    @Override
    public HttpServerResponse setStatusMessage(String statusMessage) {
        return cutOff ? this : super.setStatusMessage(statusMessage);
    }

    @Override
    public HttpServerResponse setChunked(boolean chunked) {
        return cutOff ? this : super.setChunked(chunked);
    }

    @Override
    public HttpServerResponse putHeader(String name, String value) {
        return cutOff ? this : super.putHeader(name, value);
    }

    @Override
    public HttpServerResponse putHeader(CharSequence name, CharSequence value) {
        return cutOff ? this : super.putHeader(name, value);
    }

    @Override
    public HttpServerResponse putHeader(String name, Iterable<String> values) {
        return cutOff ? this : super.putHeader(name, values);
    }

    @Override
    public HttpServerResponse putHeader(CharSequence name, Iterable<CharSequence> values) {
        return cutOff ? this : super.putHeader(name, values);
    }

    @Override
    public HttpServerResponse putTrailer(String name, String value) {
        return cutOff ? this : super.putTrailer(name, value);
    }

    @Override
    public HttpServerResponse putTrailer(CharSequence name, CharSequence value) {
        return cutOff ? this : super.putTrailer(name, value);
    }

    @Override
    public HttpServerResponse putTrailer(String name, Iterable<String> values) {
        return cutOff ? this : super.putTrailer(name, values);
    }

    @Override
    public HttpServerResponse putTrailer(CharSequence name, Iterable<CharSequence> value) {
        return cutOff ? this : super.putTrailer(name, value);
    }

    @Override
    public HttpServerResponse addCookie(Cookie cookie) {
        return cutOff ? this : super.addCookie(cookie);
    }

    @Override
    public Cookie removeCookie(String name, boolean invalidate) {
        return cutOff ? null : super.removeCookie(name, invalidate);
    }

    @Override
    public Set<Cookie> removeCookies(String name, boolean invalidate) {
        return cutOff ? Set.of() : super.removeCookies(name, invalidate);
    }

    @Override
    public Cookie removeCookie(String name, String domain, String path, boolean invalidate) {
        return cutOff ? null : super.removeCookie(name, domain, path, invalidate);
    }
}
