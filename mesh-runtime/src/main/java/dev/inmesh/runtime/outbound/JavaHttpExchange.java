package dev.inmesh.runtime.outbound;

import io.vertx.core.AsyncResult;
import io.vertx.core.Context;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLSession;

/**
 * One request of {@link MeshJavaHttpClient}: the JDK request sent as a request of the mesh's Vert.x client, its body
 * publisher read as the mesh takes the bytes, and the Vert.x response given to the JDK body subscriber as it asks for
 * it. {@link #result()} completes as the JDK's does: when the subscriber's body is there.
 */
final class JavaHttpExchange<T> {
    /** How long a request with {@code expectContinue(true)} waits for a 100 at most before its body goes: the JDK's. */
    static final long EXPECT_CONTINUE_WAIT_MS = 5000;
    private final MeshJavaHttpClient client;
    private final HttpRequest request;
    private final HttpResponse.BodyHandler<T> handler;
    private final Executor executor;
    /** The redirect that this request follows, or null; the redirects before it are its previous responses. */
    private final HttpResponse<T> previous;
    /** How many redirects led to this request. */
    private final int redirects;
    private final CompletableFuture<HttpResponse<T>> result = new CompletableFuture<>() {
        /** As the JDK's client: cancelling the exchange's future stops the exchange (here, resets the request). */
        @Override
        public boolean cancel(boolean mayInterruptIfRunning) {
            boolean cancelled = super.cancel(mayInterruptIfRunning);
            HttpClientRequest r = sent;
            if (cancelled && r != null) {
                r.reset();
            }
            JavaHttpExchange<T> next = followed;
            if (cancelled && next != null) {
                next.result.cancel(mayInterruptIfRunning);
            }
            return cancelled;
        }
    };
    /** The Vert.x request, once made. */
    private volatile HttpClientRequest sent;
    /** The exchange of the redirect followed, once made: the one whose response is this one's. */
    private volatile JavaHttpExchange<T> followed;
    /** The response's body given to the subscriber, once the response came (and is no redirect followed). */
    private volatile ResponseBody body;
    /**
     * Under {@code expectContinue(true)}: whether it is decided if the body goes (a 100 came, or the wait for one
     * ended) or not (a final answer came first).
     */
    private final AtomicBoolean bodyDecided = new AtomicBoolean();

    /**
     * The exchange of {@code request} by {@code client}, whose publisher and subscriber run on {@code executor};
     * {@code previous} is the redirect it follows (null for the caller's request), after {@code redirects} of them.
     */
    JavaHttpExchange(MeshJavaHttpClient client, HttpRequest request, HttpResponse.BodyHandler<T> handler,
                     Executor executor, HttpResponse<T> previous, int redirects) {
        this.client = client;
        this.request = request;
        this.handler = handler;
        this.executor = executor;
        this.previous = previous;
        this.redirects = redirects;
    }

    HttpRequest request() {
        return request;
    }

    CompletableFuture<HttpResponse<T>> result() {
        return result;
    }

    /** The Vert.x request is made (or could not be): its headers, its response's handling, its body. */
    void start(AsyncResult<HttpClientRequest> made) {
        if (made.failed()) {
            result.completeExceptionally(made.cause());
            client.over(this);
            return;
        }
        HttpClientRequest r = made.result();
        sent = r;
        if (result.isDone()) {
            r.reset(); // cancelled (or aborted) meanwhile
            client.over(this);
            return;
        }
        request.headers().map().forEach((name, values) -> values.forEach(v -> r.headers().add(name, v)));
        if (!r.headers().contains("user-agent")) {
            r.putHeader("user-agent", MeshJavaHttpClient.USER_AGENT);
        }
        r.response().onComplete(this::respond);
        HttpRequest.BodyPublisher publisher = request.bodyPublisher().orElse(null);
        long length = publisher == null ? 0 : publisher.contentLength();
        if (length == 0) {
            r.end();
            return;
        }
        if (length > 0) {
            r.putHeader("content-length", Long.toString(length));
        } else {
            r.setChunked(true);
        }
        RequestBody body = new RequestBody(r, length);
        if (request.expectContinue()) {
            // as the JDK's client: the body goes once a 100 Continue comes (the mesh's, at once, or the upstream's
            // under proxy_100_continue), or once 5 s (the request's timeout if shorter) passed without one, as from
            // a server that ignores the expectation; a final answer before it is the response, the body not sent
            r.putHeader("expect", "100-continue");
            Runnable send = () -> {
                if (bodyDecided.compareAndSet(false, true)) {
                    publisher.subscribe(body);
                }
            };
            r.continueHandler(v -> send.run());
            long wait = Math.min(EXPECT_CONTINUE_WAIT_MS,
                    request.timeout().map(java.time.Duration::toMillis).orElse(EXPECT_CONTINUE_WAIT_MS));
            client.vertx().setTimer(Math.max(1, wait), id -> send.run());
            r.sendHead();
        } else {
            publisher.subscribe(body);
        }
    }

    /**
     * The publisher's bytes, written to the Vert.x request one buffer at a time: the next is asked for once the
     * request's write queue has room ({@code drainHandler}), and always on the client's threads, as a publisher may
     * block in {@code request(n)} (one over an {@code InputStream} reads it there). A publisher of a known length that
     * gives more or fewer bytes fails the request, as the JDK's client fails it: the bytes past the length would be
     * read upstream as the next request on the connection, and a body short of it would leave the upstream waiting.
     */
    private final class RequestBody implements Flow.Subscriber<ByteBuffer> {
        private final HttpClientRequest r;
        /** The publisher's {@code contentLength()}: the content-length sent, or negative for a chunked body. */
        private final long length;
        /** The bytes written so far; the publisher's calls are serialised. */
        private long written;
        /** Whether the request failed for what the publisher did: what it signals after is ignored. */
        private boolean failed;
        private Flow.Subscription subscription;
        /** The asks for a buffer not yet made, and the cancel not yet made ({@link #next}). */
        private final AtomicLong asks = new AtomicLong();
        /** Whether the publisher is to be cancelled ({@link #cancel}). */
        private volatile boolean cancelling;
        /** Whether it was: set by the task that calls the subscription only. */
        private boolean cancelled;

        RequestBody(HttpClientRequest r, long length) {
            this.r = r;
            this.length = length;
        }

        @Override
        public void onSubscribe(Flow.Subscription s) {
            subscription = s;
            r.drainHandler(v -> next());
            result.whenComplete((resp, err) -> {
                if (err != null) {
                    cancel(); // the request failed or was cancelled: nothing more to send
                }
            });
            next();
        }

        /**
         * Asks the publisher for one more buffer, on the client's threads. The drain handler (on the event loop) and
         * {@code onNext} (on the publisher's thread) may both ask at once, and the exchange may fail meanwhile on any
         * thread: the asks and the cancel are counted and made one after another by one task, since a subscriber's
         * calls to its subscription must be serial (Flow, rule 2.7). Once cancelled, the publisher is asked no more.
         */
        private void next() {
            if (asks.getAndIncrement() == 0) {
                executor.execute(() -> {
                    do {
                        if (!cancelling) {
                            subscription.request(1);
                        } else if (!cancelled) {
                            cancelled = true;
                            subscription.cancel();
                        }
                    } while (asks.decrementAndGet() > 0);
                });
            }
        }

        /**
         * Cancels the publisher by the task that asks it for buffers, after the {@code request(1)} it may be in (one
         * that blocks on a stream, or that calls {@code onNext} from within), never at once with it.
         */
        private void cancel() {
            cancelling = true;
            next();
        }

        @Override
        public void onNext(ByteBuffer item) {
            if (failed) {
                return;
            }
            written += item.remaining();
            if (length >= 0 && written > length) {
                cancel();
                fail(new IOException("Too many bytes in request body. Expected: " + length + ", got: " + written));
                return;
            }
            byte[] bytes = new byte[item.remaining()];
            item.get(bytes);
            r.write(Buffer.buffer(bytes));
            if (!r.writeQueueFull()) {
                next(); // else the drain handler asks for it
            }
        }

        @Override
        public void onError(Throwable t) {
            fail(t);
        }

        @Override
        public void onComplete() {
            if (failed) {
                return;
            }
            if (length >= 0 && written < length) {
                fail(new IOException("Too few bytes returned by the publisher (" + written + "/" + length + ")"));
            } else {
                r.end();
            }
        }

        /** The body cannot be sent whole: the request is reset, upstream too, and fails with {@code t}. */
        private void fail(Throwable t) {
            if (!failed) {
                failed = true;
                result.completeExceptionally(t);
                r.reset(0, t);
            }
        }
    }

    /**
     * Fails the exchange with {@code e} ({@link MeshJavaHttpClient#shutdownNow()}): its future, its subscriber if
     * the body is coming, and its request, reset upstream.
     */
    void abort(IOException e) {
        result.completeExceptionally(e);
        ResponseBody b = body;
        if (b != null) {
            b.end(e);
        }
        HttpClientRequest r = sent;
        if (r != null) {
            r.reset(0, e);
        }
    }

    private void respond(AsyncResult<HttpClientResponse> ar) {
        if (ar.failed()) {
            result.completeExceptionally(failure(ar.cause()));
            client.over(this);
            return;
        }
        HttpClientResponse resp = ar.result();
        resp.pause(); // the subscriber's demand lets the body come
        // an answer before the 100: the body is never sent (the mesh closes the connection it was due on)
        bodyDecided.set(true);
        Optional<HttpRequest> next;
        try {
            next = JavaHttpRedirect.next(request, resp.statusCode(), resp.getHeader("location"),
                    client.followRedirects());
            if (redirects + 1 >= JavaHttpRedirect.MAX_REDIRECTS) {
                next = Optional.empty(); // as the JDK's: the redirect that reaches the limit is the response
            }
        } catch (IOException e) {
            result.completeExceptionally(e);
            resp.resume(); // its body is dropped, the connection kept
            client.over(this);
            return;
        }
        if (next.isPresent()) {
            follow(next.get(), new Response<>(resp.statusCode(), request, headers(resp), null,
                    Optional.ofNullable(previous)));
            resp.resume(); // its body is dropped, the connection kept
            client.over(this); // after the request that follows is one of the client's, so that it never looks idle
            return;
        }
        ResponseBody b = new ResponseBody(resp, Vertx.currentContext(), executor);
        body = b;
        b.start();
    }

    /** Sends {@code next}, the request that follows {@code redirect}, whose response completes this exchange. */
    private void follow(HttpRequest next, HttpResponse<T> redirect) {
        JavaHttpExchange<T> exchange = new JavaHttpExchange<>(client, next, handler, executor, redirect,
                redirects + 1);
        followed = exchange;
        if (result.isDone()) {
            return; // cancelled meanwhile
        }
        exchange.result.whenComplete((r, err) -> {
            if (err != null) {
                result.completeExceptionally(err);
            } else {
                result.complete(r);
            }
        });
        client.following(exchange);
        client.send(exchange);
    }

    /**
     * What the JDK's client fails with: {@link HttpTimeoutException} for the request's timeout, an
     * {@link IOException} for what breaks the exchange, as is for what the caller did wrong or the mesh refused (a
     * mesh without configuration yet: {@link IllegalStateException}). A connect that failed on a name that does not
     * resolve (a request relayed as bytes, which the mesh connects as the caller named it) is a
     * {@link ConnectException} with that failure as its cause, as the JDK's client's connect fails
     * ({@code jdk.internal.net.http.common.Utils.toConnectException}).
     */
    static Throwable failure(Throwable t) {
        if (t instanceof TimeoutException) {
            return new HttpTimeoutException("request timed out"); // the JDK's words
        }
        if (t instanceof UnknownHostException) {
            ConnectException e = new ConnectException(t.getMessage());
            e.initCause(t);
            return e;
        }
        if (t instanceof IOException || t instanceof IllegalStateException || t instanceof IllegalArgumentException
                || t instanceof Error) {
            return t;
        }
        return new IOException(t.getMessage(), t);
    }

    private static HttpHeaders headers(HttpClientResponse resp) {
        Map<String, List<String>> map = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
        resp.headers().forEach(e -> map.computeIfAbsent(e.getKey(), k -> new ArrayList<>()).add(e.getValue()));
        return HttpHeaders.of(map, (name, value) -> true);
    }

    /**
     * The Vert.x response's body given to the JDK subscriber: a {@code List<ByteBuffer>} per chunk, as many chunks as
     * it asked for ({@code request(n)} is the response's {@code fetch(n)}), then its end or failure. The body handler
     * and the subscriber's methods run one after the other on the client's threads, in the order the response's
     * events came: a handler is the caller's code, which may block as a subscriber may, and an event loop must not.
     */
    private final class ResponseBody implements Flow.Subscription {
        private final HttpClientResponse resp;
        private final Context context;
        private final Executor executor;
        private final ConcurrentLinkedQueue<Runnable> calls = new ConcurrentLinkedQueue<>();
        private final AtomicBoolean calling = new AtomicBoolean();
        /** Whether the body ended (or failed, or was cancelled): set once, from the event loop or a client thread. */
        private final AtomicBoolean done = new AtomicBoolean();
        /**
         * Whether the subscriber cancelled (or threw): it hears nothing more, not even the chunks that the body, asked
         * for before, brings on until the reset reaches it on the event loop.
         */
        private volatile boolean cancelled;
        /** The handler's, set by the first of the calls, which the others follow. */
        private HttpResponse.BodySubscriber<T> subscriber;
        /**
         * Whether the subscriber was told the body's end or failure: the chunks queued after it (a {@code request(0)}
         * fails the body on a client thread while the event loop brings on what was asked for) are not given, as a
         * subscriber hears nothing after {@code onError} (Reactive Streams rule 1.7). Read and set by the calls only,
         * which run one at a time.
         */
        private boolean told;

        ResponseBody(HttpClientResponse resp, Context context, Executor executor) {
            this.resp = resp;
            this.context = context;
            this.executor = executor;
        }

        /** On the response's context. */
        void start() {
            call(this::subscribe);
            resp.handler(chunk -> call(() -> {
                if (!told) {
                    subscriber.onNext(List.of(ByteBuffer.wrap(chunk.getBytes())));
                }
            }));
            resp.endHandler(v -> end(null));
            resp.exceptionHandler(this::end);
        }

        /**
         * The body handler's subscriber for the response, whose body is the response's; one that throws fails the
         * exchange and resets the request (see {@link #drain}). Its {@code getBody()} is called, and the exchange's
         * future completed, on other tasks of the executor than the calls: as the JDK's client (its
         * {@code ResponseSubscribers.getBodyAsync}, and {@code HttpClientImpl.sendAsync} completing the future's
         * dependents on another pool), so that a mapper ({@code BodySubscribers.mapping}) or a dependent stage that
         * reads the body's {@code InputStream} blocks neither the calls that bring the body nor the client's end.
         */
        private void subscribe() {
            HttpHeaders headers = headers(resp);
            int status = resp.statusCode();
            HttpResponse.BodySubscriber<T> s = handler.apply(new Info(status, headers, HttpClient.Version.HTTP_1_1));
            subscriber = s;
            executor.execute(() -> {
                try {
                    s.getBody().whenCompleteAsync((body, err) -> {
                        if (err != null) {
                            result.completeExceptionally(err);
                        } else {
                            result.complete(new Response<>(status, request, headers, body,
                                    Optional.ofNullable(previous)));
                        }
                    }, executor);
                } catch (RuntimeException e) {
                    fail(e);
                }
            });
            s.onSubscribe(this);
        }

        private void end(Throwable t) {
            if (!done.compareAndSet(false, true)) {
                return;
            }
            // a lambda, not subscriber::onComplete: the subscriber is the first call's to set
            call(() -> {
                told = true;
                try {
                    if (t == null) {
                        subscriber.onComplete();
                    } else {
                        subscriber.onError(failure(t));
                    }
                } finally {
                    // its response delivered, and the future of it complete (on another task: see subscribe)
                    result.whenComplete((r, err) -> client.over(JavaHttpExchange.this));
                }
            });
        }

        @Override
        public void request(long n) {
            if (n <= 0) {
                // Reactive Streams rule 3.9
                end(new IllegalArgumentException("request(" + n + ") (expected: > 0)"));
                resp.request().reset();
                return;
            }
            context.runOnContext(v -> resp.fetch(n));
        }

        @Override
        public void cancel() {
            done.set(true);
            cancelled = true;
            calls.clear();
            resp.request().reset();
            client.over(JavaHttpExchange.this);
        }

        /** A handler or subscriber that throws is done with the body, as the JDK's client takes it. */
        private void fail(RuntimeException e) {
            cancel();
            result.completeExceptionally(e);
        }

        /** Runs the subscriber's calls in order, one at a time, on the executor. */
        private void call(Runnable r) {
            if (!cancelled) {
                calls.add(r);
                drain();
            }
        }

        private void drain() {
            if (calls.isEmpty() || !calling.compareAndSet(false, true)) {
                return;
            }
            executor.execute(() -> {
                Runnable next;
                while ((next = calls.poll()) != null && !cancelled) {
                    try {
                        next.run();
                    } catch (RuntimeException e) {
                        fail(e);
                    }
                }
                if (cancelled) {
                    calls.clear();
                }
                calling.set(false);
                drain(); // one added after the loop ended and before the flag was cleared
            });
        }
    }

    private record Info(int statusCode, HttpHeaders headers, HttpClient.Version version)
            implements HttpResponse.ResponseInfo {}

    /**
     * The response as the JDK's client gives it after a request in HTTP/1.1: {@code request} the one it answers (the
     * last redirect's), the redirects followed before it its {@code previousResponse}, each with a null body.
     */
    private record Response<T>(int statusCode, HttpRequest request, HttpHeaders headers, T body,
                               Optional<HttpResponse<T>> previousResponse) implements HttpResponse<T> {

        @Override
        public Optional<SSLSession> sslSession() {
            return Optional.empty();
        }

        @Override
        public URI uri() {
            return request.uri();
        }

        @Override
        public HttpClient.Version version() {
            return HttpClient.Version.HTTP_1_1;
        }
    }
}
