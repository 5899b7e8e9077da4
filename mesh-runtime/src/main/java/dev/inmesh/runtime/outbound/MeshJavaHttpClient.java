package dev.inmesh.runtime.outbound;

import dev.inmesh.runtime.net.IpLiterals;
import io.vertx.core.Context;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.internal.http.HttpClientInternal;
import java.io.IOException;
import java.net.Authenticator;
import java.net.CookieHandler;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;

/**
 * The JDK's {@link java.net.http.HttpClient} whose requests go through the mesh in this JVM: each one is made a
 * request of the mesh's Vert.x client ({@code mesh.httpClient()}), so it takes the same listener, route, cluster,
 * host, retries, timeouts, metrics ({@code reporter="source"}), access log and tracing headers, with no loopback
 * hop. Code written for the JDK's client (and Spring's {@code RestClient} over {@code JdkClientHttpRequestFactory})
 * runs on it unchanged.
 *
 * <p>What it does as the JDK's client: a request's body publisher is read as the mesh takes its bytes (one
 * {@code request(1)} at a time, the next when the mesh's write queue has room); {@link HttpRequest#timeout()} fails
 * a request whose response headers have not come in time with an {@link java.net.http.HttpTimeoutException}; the
 * body subscriber gets the response body as it comes, as much as it asked for ({@code request(n)}), the upstream
 * paused meanwhile; cancelling the future of {@link #sendAsync} resets the request;
 * {@link HttpRequest#expectContinue()} holds the body back until a {@code 100 Continue} comes. The publisher's
 * {@code request(n)}, the body handler and the subscriber's methods are called on the client's own threads, never on
 * an event loop (a publisher may read a stream, a subscriber write a file); the subscriber's {@code getBody()} and the
 * dependents of {@link #sendAsync}'s future run on other tasks than the subscriber's calls, so that a mapper or a
 * dependent stage may block reading the body's {@code InputStream} as it comes. {@link #send} blocks, so it refuses to
 * run on an event loop.
 *
 * <p>What a sidecar makes moot: the mesh owns the connections, so there is no connect timeout, proxy or
 * authenticator of the caller's. Redirects are followed as the JDK's client follows them with the policy the client
 * was made with ({@link Redirect#NEVER}, the JDK's default, unless told otherwise: {@link #followRedirects()}).
 * Requests reach the mesh as HTTP/1.1: a JDK client asks for HTTP/2 in clear text with an {@code h2c} upgrade,
 * which Envoy's HTTP/1 codec does not take, so behind a sidecar it goes on in HTTP/1.1 too. {@code https://} URIs
 * are treated as {@code mesh.httpClient()} treats TLS, with its TLS settings, not {@link #sslContext()}'s. WebSockets
 * are not supported ({@link #newWebSocketBuilder()}, as the JDK allows; use {@code mesh.webSocketClient()}).
 *
 * <p>It closes as the JDK 21 client closes ({@link #shutdown()}, {@link #shutdownNow()},
 * {@link #awaitTermination(Duration)}, {@link #isTerminated()}, {@link #close()}; on JDK 17 through this class or
 * {@link AutoCloseable}): the requests sent before run to completion, their response bodies delivered, and those
 * sent after fail with an {@link IOException}. Closing it closes nothing of the mesh's: each
 * {@code mesh.javaHttpClient()} is a client of its own over the mesh's shared connections.
 */
public final class MeshJavaHttpClient extends java.net.http.HttpClient implements AutoCloseable {
    /** The JDK client's {@code User-Agent}, sent when the request sets none, as the JDK's client does. */
    static final String USER_AGENT = "Java-http-client/" + System.getProperty("java.version");
    private static final AtomicInteger CLIENTS = new AtomicInteger();

    private final HttpClientInternal client;
    /**
     * Where publishers and subscribers run: as the JDK's default, a cached pool of daemon threads of this client's
     * own, so that a blocking publisher or subscriber holds neither an event loop nor other clients. Its threads
     * end once idle when the mesh closes.
     */
    private final ThreadPoolExecutor executor;
    /** Whether {@link #client} closed (with the mesh): requests fail from then on. */
    private volatile boolean closed;
    private final Redirect redirect;
    /** Whether {@link #shutdown()} was called: requests sent after fail, and the client ends with the last one. */
    private volatile boolean shutdown;
    /**
     * The exchanges not over yet, a redirect's and the request's that follows it both for a moment: the client's
     * operations, which {@link #awaitTermination} waits for and {@link #shutdownNow()} aborts.
     */
    private final Set<JavaHttpExchange<?>> live = ConcurrentHashMap.newKeySet();
    /** Completes when the client is terminated: shut down (or its mesh closed) and no exchange left. */
    private final CompletableFuture<Void> terminated = new CompletableFuture<>();

    /**
     * A client over {@code client}, a Vert.x client of the mesh ({@code mesh.httpClient()}), whose close (the
     * mesh's) ends this client's threads as they become idle (the calls of the requests in flight are made still)
     * and fails the requests that come after with an {@link IOException}, as the JDK's client once shut down. It
     * follows redirects as the JDK's client with {@code redirect} as its policy ({@link #followRedirects()}).
     */
    public MeshJavaHttpClient(HttpClientInternal client, Redirect redirect) {
        this.client = client;
        this.redirect = Objects.requireNonNull(redirect, "redirect");
        int id = CLIENTS.incrementAndGet();
        AtomicInteger threads = new AtomicInteger();
        this.executor = new ThreadPoolExecutor(0, Integer.MAX_VALUE, 60, TimeUnit.SECONDS, new SynchronousQueue<>(),
                r -> {
                    Thread t = new Thread(r, "inmesh-java-http-client-" + id + "-" + threads.incrementAndGet());
                    t.setDaemon(true);
                    return t;
                });
        client.closeFuture().onComplete(v -> {
            closed = true;
            executor.setKeepAliveTime(1, TimeUnit.MILLISECONDS); // the idle threads end now, the busy once idle
            endIfIdle();
        });
        terminated.thenRun(() -> executor.setKeepAliveTime(1, TimeUnit.MILLISECONDS));
    }

    @Override
    public <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler)
            throws IOException, InterruptedException {
        if (Context.isOnEventLoopThread()) {
            throw new IllegalStateException("send(...) blocks, and this thread (" + Thread.currentThread().getName()
                    + ") is a Vert.x event loop: use sendAsync(...), or call send(...) from a worker thread");
        }
        CompletableFuture<HttpResponse<T>> f = sendAsync(request, handler);
        try {
            return f.get();
        } catch (InterruptedException e) {
            f.cancel(true);
            throw e;
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof IOException io) {
                throw io;
            }
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            if (cause instanceof Error err) {
                throw err;
            }
            throw new IOException(cause.getMessage(), cause);
        }
    }

    @Override
    public <T> CompletableFuture<HttpResponse<T>> sendAsync(HttpRequest request,
                                                            HttpResponse.BodyHandler<T> handler) {
        return sendAsync(request, handler, null);
    }

    /**
     * As {@link #sendAsync(HttpRequest, HttpResponse.BodyHandler)}: the requests reach the mesh in HTTP/1.1, where no
     * server pushes, so {@code pushPromiseHandler} is never called.
     */
    @Override
    public <T> CompletableFuture<HttpResponse<T>> sendAsync(HttpRequest request, HttpResponse.BodyHandler<T> handler,
                                                            HttpResponse.PushPromiseHandler<T> pushPromiseHandler) {
        // as the JDK's client: refused at once, not once the response came (the request sent, for nothing)
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(handler, "responseBodyHandler");
        if (closed) {
            return CompletableFuture.failedFuture(new IOException("the mesh is closed: " + request.method() + " "
                    + request.uri() + " was not sent (make requests with the javaHttpClient() of a mesh not closed)"));
        }
        JavaHttpExchange<T> exchange = new JavaHttpExchange<>(this, request, handler, executor, null, 0);
        synchronized (live) {
            if (shutdown) {
                return CompletableFuture.failedFuture(new IOException("closed")); // the JDK's client's words
            }
            live.add(exchange);
        }
        send(exchange);
        return exchange.result();
    }

    /** The mesh's Vert.x instance, for the exchanges' timers. */
    io.vertx.core.Vertx vertx() {
        return client.vertx();
    }

    /** {@code exchange}, following a redirect of one live still, is one of this client's operations. */
    void following(JavaHttpExchange<?> exchange) {
        live.add(exchange);
    }

    /** {@code exchange} is over: failed, cancelled, redirected, or its response body delivered whole. */
    void over(JavaHttpExchange<?> exchange) {
        if (live.remove(exchange)) {
            endIfIdle();
        }
    }

    private void endIfIdle() {
        if ((shutdown || closed) && live.isEmpty()) {
            terminated.complete(null);
        }
    }

    /**
     * As the JDK 21 client's: no request is taken from now on (they fail with {@link IOException} "closed"), and
     * those sent before run to completion, redirects and response bodies included; it returns at once.
     */
    public void shutdown() {
        synchronized (live) {
            shutdown = true;
        }
        endIfIdle();
    }

    /**
     * As the JDK 21 client's: {@link #shutdown()}, and the requests in flight fail with {@link IOException}
     * "shutdownNow" (their subscribers with {@code onError}), reset upstream.
     */
    public void shutdownNow() {
        shutdown();
        IOException e = new IOException("shutdownNow");
        for (JavaHttpExchange<?> exchange : live) {
            exchange.abort(e);
        }
    }

    /**
     * As the JDK 21 client's: waits up to {@code duration} for the client to be terminated, true when it is; a
     * duration of zero or less only looks.
     */
    public boolean awaitTermination(Duration duration) throws InterruptedException {
        Objects.requireNonNull(duration, "duration");
        if (duration.isZero() || duration.isNegative()) {
            return isTerminated();
        }
        try {
            terminated.get(duration.toNanos(), TimeUnit.NANOSECONDS);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (ExecutionException e) {
            throw new IllegalStateException(e); // never: it is only ever completed normally
        }
    }

    /** As the JDK 21 client's: whether it was shut down (or its mesh closed) and every request it took is over. */
    public boolean isTerminated() {
        return terminated.isDone();
    }

    /**
     * As the JDK 21 client's: {@link #shutdown()}, then waits until every request it took is over; interrupted, it
     * calls {@link #shutdownNow()} and waits on, and returns with the thread's interrupt status set again.
     */
    @Override
    public void close() {
        if (isTerminated()) {
            return;
        }
        shutdown();
        boolean interrupted = false;
        while (!isTerminated()) {
            try {
                awaitTermination(Duration.ofDays(1));
            } catch (InterruptedException e) {
                if (!interrupted) {
                    interrupted = true;
                    shutdownNow();
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    /** Makes {@code exchange}'s request one of the mesh's Vert.x client. */
    void send(JavaHttpExchange<?> exchange) {
        client.request(options(exchange.request())).onComplete(exchange::start);
    }

    /**
     * The Vert.x request of a JDK one: its method, host, port and path with query, TLS for {@code https}, its
     * timeout. The JDK's builder accepts only {@code http} and {@code https} URIs with a host; a request of another
     * implementation that has neither is refused as the JDK's client refuses it.
     */
    static RequestOptions options(HttpRequest request) {
        URI uri = request.uri();
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw new IllegalArgumentException("invalid URI scheme: " + uri + " (expected: http or https)");
        }
        if (uri.getHost() == null) {
            throw new IllegalArgumentException("unsupported URI " + uri + " (expected: a host)");
        }
        boolean ssl = scheme.equals("https");
        String path = uri.getRawPath() == null || uri.getRawPath().isEmpty() ? "/" : uri.getRawPath();
        RequestOptions o = new RequestOptions().setMethod(HttpMethod.valueOf(request.method()))
                .setHost(IpLiterals.unbracketed(uri.getHost()))
                .setPort(uri.getPort() >= 0 ? uri.getPort() : ssl ? 443 : 80).setSsl(ssl)
                .setURI(uri.getRawQuery() == null ? path : path + "?" + uri.getRawQuery())
                .setFollowRedirects(false);
        // the JDK's timeout runs until the response headers come, as the Vert.x request's (mesh.httpClient()'s)
        request.timeout().ifPresent(t -> o.setTimeout(Math.max(1, t.toMillis())));
        return o;
    }

    @Override
    public Optional<CookieHandler> cookieHandler() {
        return Optional.empty();
    }

    /** Empty: the mesh connects, with its cluster's {@code connect_timeout}. */
    @Override
    public Optional<Duration> connectTimeout() {
        return Optional.empty();
    }

    /**
     * The redirects followed, as the JDK's client ({@link Redirect#NEVER} unless the mesh's client was made with
     * another): a 3xx answer but 304 with a {@code Location}, at most 5 in a row, each its own request through the
     * mesh (route, cluster, metrics), the 3xx before the response its {@link HttpResponse#previousResponse()}.
     */
    @Override
    public Redirect followRedirects() {
        return redirect;
    }

    /** Empty: the mesh connects, with no proxy of the caller's. */
    @Override
    public Optional<ProxySelector> proxy() {
        return Optional.empty();
    }

    /** The JDK's default context, as the JDK client's default; the mesh's TLS settings are what it uses. */
    @Override
    public SSLContext sslContext() {
        try {
            return SSLContext.getDefault();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public SSLParameters sslParameters() {
        return sslContext().getDefaultSSLParameters();
    }

    @Override
    public Optional<Authenticator> authenticator() {
        return Optional.empty();
    }

    @Override
    public Version version() {
        return Version.HTTP_1_1;
    }

    /** Empty, as the JDK's client with its default executor: this client's threads are its own. */
    @Override
    public Optional<Executor> executor() {
        return Optional.empty();
    }

    /** Not supported (the JDK allows it): WebSockets through the mesh are {@code mesh.webSocketClient()}'s. */
    @Override
    public java.net.http.WebSocket.Builder newWebSocketBuilder() {
        throw new UnsupportedOperationException("WebSockets through the mesh: use mesh.webSocketClient()");
    }
}
