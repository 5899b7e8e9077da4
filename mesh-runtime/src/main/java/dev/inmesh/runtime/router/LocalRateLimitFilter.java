package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.route.LocalRateLimit;
import dev.inmesh.runtime.stats.DownstreamStats;
import io.vertx.core.MultiMap;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;

/**
 * Envoy's local rate limit HTTP filter ({@code envoy.filters.http.local_ratelimit}) of one connection manager,
 * compiled with its snapshot: the filter's own config and bucket, and where it runs (before the RBAC, fault and CORS
 * filters, or after them). A request's route or virtual host may carry a config of its own for it, with its own
 * bucket ({@link RouteTable#localRateLimit}), which replaces the filter's. A checked request takes a token; one that
 * finds none is refused ({@code 429 local_rate_limited}, response flag {@code RL}) where the config is enforced.
 *
 * <p>Buckets are shared by every event loop (lock-free: a compare-and-set of an immutable state, refilled lazily from
 * the monotonic clock, no timer). They live in {@link Buckets}, which hands the same bucket to the next snapshot where
 * the filter's (or route's) place and config are unchanged, so an unrelated update (an endpoint change) does not
 * refill them; a changed config gets a new, full bucket, as Envoy's does when it rebuilds the config.
 */
public final class LocalRateLimitFilter {
    /** The body of a refusal, as Envoy's. */
    public static final String BODY = "local_rate_limited";
    /** The response code details of a refusal, as Envoy's. */
    public static final String DETAILS = "local_rate_limited";
    /** gRPC's RESOURCE_EXHAUSTED, for {@code rate_limited_as_resource_exhausted}. */
    static final int GRPC_RESOURCE_EXHAUSTED = 8;

    /** A connection manager without a local rate limit filter. */
    public static final LocalRateLimitFilter NONE = new LocalRateLimitFilter(null, null, false, null);

    private final String name;
    private final LocalRateLimit config;
    private final boolean first;
    private final Bucket bucket;

    private LocalRateLimitFilter(String name, LocalRateLimit config, boolean first, Bucket bucket) {
        this.name = name;
        this.config = config;
        this.first = first;
        this.bucket = bucket;
    }

    /**
     * The local rate limit filter of a connection manager ({@link #NONE} when it runs none), its bucket from
     * {@code buckets} at {@code where} (the connection manager's place: listener and filter chain).
     */
    public static LocalRateLimitFilter compile(HttpConnectionManager hcm, String where, Buckets.Session buckets) {
        HttpFilter f = hcm == null ? null : hcm.localRateLimitFilter();
        if (f == null) {
            return NONE;
        }
        LocalRateLimit c = f.localRateLimit();
        return new LocalRateLimitFilter(f.name(), c, hcm.localRateLimitFirst(),
                c.tokenBucket() == null ? null : buckets.bucket(where + "/" + f.name(), c));
    }

    /** Whether there is no filter to run. */
    public boolean isEmpty() {
        return config == null;
    }

    /** Whether it runs before the RBAC, fault and CORS filters; else after them, right before the router. */
    public boolean first() {
        return first;
    }

    /**
     * What the filter decided for a request, if it checked it ({@code filter_enabled}).
     *
     * @param refused whether it is refused (no token, enforced)
     * @param config the config in force (the route's, the virtual host's or the filter's own)
     * @param rateLimitHeaders the {@code x-ratelimit-*} headers of its response, or null for none
     */
    public record Outcome(boolean refused, LocalRateLimit config, MultiMap rateLimitHeaders) {
        /** The status of the refusal. */
        public int status() {
            return config.status();
        }

        /**
         * Applies the headers of the refusal to {@code h}, its headers so far (the route's response header rules
         * applied, as Envoy's local reply applies them before the filter's own): {@code response_headers_to_add} (the
         * {@code x-ratelimit-*} ones are added by {@link #setOn}, as on any response), and for a gRPC request
         * RESOURCE_EXHAUSTED if the config says so; returns {@code h}.
         */
        public MultiMap applyRefusalHeaders(MultiMap h, boolean grpc) {
            HeaderMutator.apply(java.util.List.of(), config.responseHeadersToAdd(), new MultiMapHeaders(h));
            if (grpc && config.rateLimitedAsResourceExhausted()) {
                h.set(HeaderNames.GRPC_STATUS, Integer.toString(GRPC_RESOURCE_EXHAUSTED));
            }
            return h;
        }

        /** Adds the {@code x-ratelimit-*} headers to a response, if the config asks for them. */
        public void setOn(MultiMap responseHeaders) {
            if (rateLimitHeaders != null) {
                responseHeaders.addAll(rateLimitHeaders);
            }
        }

        /**
         * What a request that goes on gets: {@code request_headers_to_add_when_not_enforced} when it found no token
         * (null headers: none to change).
         */
        public void onRequest(MutableHeaders requestHeaders, boolean limited) {
            if (limited && requestHeaders != null) {
                HeaderMutator.apply(java.util.List.of(), config.requestHeadersToAddWhenNotEnforced(), requestHeaders);
            }
        }
    }

    /**
     * Runs the filter for a request on its route ({@code result} of {@code table}; the most specific config for the
     * filter replaces its own), counting {@code <stat_prefix>.http_local_rate_limit.*} in {@code stats} (null: none).
     * Null when the request is not checked; {@code requestHeaders} gets the not-enforced headers of one that found
     * no token and goes on.
     */
    public Outcome check(RouteTable table, RouteResult result, DownstreamStats stats, MutableHeaders requestHeaders) {
        if (config == null) {
            return null;
        }
        Limit perRoute = table == null ? null : table.localRateLimit(result, name);
        LocalRateLimit c = perRoute != null ? perRoute.config() : config;
        Bucket b = perRoute != null ? perRoute.bucket() : bucket;
        if (!enabled(c.filterEnabled())) {
            return null;
        }
        DownstreamStats.LocalRateLimitCounters counters = stats == null ? null
                : stats.localRateLimit(c.statPrefix());
        if (counters != null) {
            counters.enabled();
        }
        Bucket.Take take = b == null ? null : b.take();
        MultiMap headers = take == null || !c.xRateLimitHeaders() ? null : MultiMap.caseInsensitiveMultiMap()
                .set("x-ratelimit-limit", Long.toString(b.maxTokens))
                .set("x-ratelimit-remaining", Long.toString(take.remaining()))
                .set("x-ratelimit-reset", Long.toString(take.resetSeconds()));
        if (take == null || take.allowed()) {
            if (counters != null) {
                counters.ok();
            }
            return new Outcome(false, c, headers);
        }
        if (counters != null) {
            counters.rateLimited();
        }
        if (!enabled(c.filterEnforced())) {
            Outcome o = new Outcome(false, c, headers);
            o.onRequest(requestHeaders, true);
            return o;
        }
        if (counters != null) {
            counters.enforced();
        }
        return new Outcome(true, c, headers);
    }

    /** A runtime fractional percent's default value (absent: 0%, Envoy's default), drawn per request. */
    private static boolean enabled(dev.inmesh.api.config.core.FractionalPercent p) {
        return p != null && FaultFilter.enabled(p, java.util.concurrent.ThreadLocalRandom.current().nextLong());
    }

    /** A virtual host's or route's config for the filter, with its bucket. */
    record Limit(LocalRateLimit config, Bucket bucket) {}

    /**
     * A token bucket: full at first, {@code tokens_per_fill} more at each {@code fill_interval} since it was made,
     * up to {@code max_tokens}. The fills are counted when a request comes, from the monotonic clock.
     */
    static final class Bucket {
        private final long maxTokens;
        private final long tokensPerFill;
        private final long intervalNanos;
        private final long startNanos;
        private final LongSupplier clock;
        private final AtomicReference<State> state;

        /** The fills counted so far and the tokens left after them. */
        private record State(long fills, long tokens) {}

        /** A request's take: whether it got a token, the tokens left, the seconds to the next fill. */
        record Take(boolean allowed, long remaining, long resetSeconds) {}

        Bucket(LocalRateLimit.TokenBucket config, LongSupplier clock) {
            this.maxTokens = config.maxTokens();
            this.tokensPerFill = config.tokensPerFill();
            this.intervalNanos = config.fillInterval().toNanos();
            this.clock = clock;
            this.startNanos = clock.getAsLong();
            this.state = new AtomicReference<>(new State(0, maxTokens));
        }

        Take take() {
            long now = clock.getAsLong();
            long fills = Math.max(0, (now - startNanos) / intervalNanos);
            long reset = Math.max(0, startNanos + (fills + 1) * intervalNanos - now);
            long resetSeconds = (reset + 999_999_999L) / 1_000_000_000L;
            while (true) {
                State s = state.get();
                long tokens = s.tokens;
                long at = Math.max(fills, s.fills);
                if (fills > s.fills) {
                    long missed = fills - s.fills;
                    tokens = missed >= (maxTokens - tokens) / tokensPerFill + 1 ? maxTokens
                            : Math.min(maxTokens, tokens + missed * tokensPerFill);
                }
                State next = new State(at, tokens > 0 ? tokens - 1 : 0);
                if (next.equals(s) || state.compareAndSet(s, next)) {
                    return new Take(tokens > 0, next.tokens, resetSeconds);
                }
            }
        }
    }

    /**
     * The buckets of a snapshot holder's snapshots, by place and config: a new snapshot takes the bucket of the one
     * before where a filter's or route's place and config are the same ({@link Session}).
     */
    public static final class Buckets {
        private final LongSupplier clock;
        private volatile Map<Key, Bucket> live = Map.of();

        private record Key(String where, LocalRateLimit config) {}

        public Buckets() {
            this(System::nanoTime);
        }

        /** Buckets on a clock of nanoseconds (a test's). */
        public Buckets(LongSupplier clock) {
            this.clock = clock;
        }

        /** The buckets for compiling one snapshot. */
        public Session session() {
            return new Session();
        }

        /** The buckets one snapshot's compilation asked for; {@link #commit} makes them the ones to keep. */
        public final class Session {
            private final Map<Key, Bucket> used = new HashMap<>();

            /** The bucket of a config at a place: the last committed one there, else a new, full one. */
            Bucket bucket(String where, LocalRateLimit config) {
                Key k = new Key(where, config);
                return used.computeIfAbsent(k, key -> {
                    Bucket kept = live.get(key);
                    return kept != null ? kept : new Bucket(config.tokenBucket(), clock);
                });
            }

            /** The snapshot was published: its buckets are the ones the next takes over; others are dropped. */
            public void commit() {
                live = Map.copyOf(used);
            }
        }
    }
}
