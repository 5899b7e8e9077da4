package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.ratelimit.NetworkLocalRateLimit;
import dev.inmesh.api.config.route.LocalRateLimit;
import dev.inmesh.runtime.accesslog.AccessLogEntry;
import dev.inmesh.runtime.stats.DownstreamStats;
import io.envoyproxy.envoy.extensions.common.ratelimit.v3.RateLimitDescriptor;
import io.vertx.core.MultiMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.function.Function;

/**
 * Envoy's local rate limit HTTP filter ({@code envoy.filters.http.local_ratelimit}) of one connection manager,
 * compiled with its snapshot: the filter's own config and bucket, and where it runs (before the RBAC, fault and CORS
 * filters, or after them). A request's route or virtual host may carry a config of its own for it, with its own
 * bucket ({@link RouteTable#localRateLimit}), which replaces the filter's. A checked request takes a token; one that
 * finds none is refused ({@code 429 local_rate_limited}, response flag {@code RL}) where the config is enforced.
 *
 * <p>A config with {@code descriptors} makes the request's descriptors as Envoy's filter does
 * ({@code local_ratelimit.cc}): from its own {@code rate_limits} when it has any, else from the {@code rate_limits}
 * entries of its {@code stage} of a forwarding route and, as its {@code vh_rate_limits} (or the route's
 * {@code include_vh_rate_limits}) says, of the route's virtual host, by the global rate limit filter's actions
 * ({@link RateLimitFilter.Policy}). Each request descriptor equal to a configured one, else matching a wildcard one,
 * takes a token from that descriptor's bucket, the slowest filling first, then the default bucket when none matched
 * or {@code always_consume_default_token_bucket} ({@code local_ratelimit_impl.cc}); the first empty bucket refuses
 * the request and the later ones are not taken from.
 *
 * <p>Buckets are shared by every event loop (lock-free: a compare-and-set of an immutable state, refilled lazily from
 * the monotonic clock, no timer). They live in {@link Buckets}, which hands the same bucket to the next snapshot where
 * the filter's (or route's) place and config are unchanged, so an unrelated update (an endpoint change) does not
 * refill them; a changed config gets a new, full bucket, as Envoy's does when it rebuilds the config.
 *
 * <p>The values of {@code response_headers_to_add} and {@code request_headers_to_add_when_not_enforced} are Envoy's
 * substitution format strings, as Envoy's filter configures them with the router's header parser
 * ({@code local_ratelimit.cc}, {@code HeaderParser::configure}): the filter's own compiled with it, a route's or
 * virtual host's with its {@link RouteTable}; formatted from the request so far (Envoy's {@code evaluateHeaders} with
 * the stream info alone: no response headers).
 */
public final class LocalRateLimitFilter {
    /** The body of a refusal, as Envoy's. */
    public static final String BODY = "local_rate_limited";
    /** The response code details of a refusal, as Envoy's. */
    public static final String DETAILS = "local_rate_limited";
    /** gRPC's RESOURCE_EXHAUSTED, for {@code rate_limited_as_resource_exhausted}. */
    static final int GRPC_RESOURCE_EXHAUSTED = 8;

    /** A connection manager without a local rate limit filter. */
    public static final LocalRateLimitFilter NONE = new LocalRateLimitFilter(null, null, false, null,
            HeaderFormats.NONE);

    private final String name;
    private final LocalRateLimit config;
    private final boolean first;
    private final Limiter limiter;
    /** The formatted header values of its own config, compiled. */
    private final HeaderFormats formats;

    private LocalRateLimitFilter(String name, LocalRateLimit config, boolean first, Limiter limiter,
                                 HeaderFormats formats) {
        this.name = name;
        this.config = config;
        this.first = first;
        this.limiter = limiter;
        this.formats = formats;
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
                buckets.limiter(where + "/" + f.name(), c),
                HeaderFormats.compile(List.of(c.responseHeadersToAdd(), c.requestHeadersToAddWhenNotEnforced())));
    }

    /** Whether a header value of its own config is a format: one that reads the request. */
    public boolean formatsHeaders() {
        return !formats.isEmpty();
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
     * @param rateLimitBucket the bucket whose state the {@code x-ratelimit-*} headers of its response show, or null for
     *     none
     * @param formats the compiled formats of that config's header values
     */
    public record Outcome(boolean refused, LocalRateLimit config, Bucket rateLimitBucket, HeaderFormats formats) {
        /** The status of the refusal. */
        public int status() {
            return config.status();
        }

        /**
         * Applies the headers of the refusal to {@code h}, its headers so far (the route's response header rules
         * applied, as Envoy's local reply applies them before the filter's own): {@code response_headers_to_add} (the
         * {@code x-ratelimit-*} ones are added by {@link #setOn}, as on any response), and for a gRPC request
         * RESOURCE_EXHAUSTED if the config says so; returns {@code h}. Their values' command operators read the
         * request so far ({@code request}, null: nothing known) with the refusal's status.
         */
        public MultiMap applyRefusalHeaders(MultiMap h, boolean grpc, AccessLogEntry.Source request) {
            HeaderMutator.apply(List.of(), config.responseHeadersToAdd(), new MultiMapHeaders(h), formats,
                    formats.reading(request, status(), null)); // no response headers, as Envoy's evaluateHeaders
            if (grpc && config.rateLimitedAsResourceExhausted()) {
                h.set(HeaderNames.GRPC_STATUS, Integer.toString(GRPC_RESOURCE_EXHAUSTED));
            }
            return h;
        }

        /**
         * Adds the {@code x-ratelimit-*} headers to a response, if the config asks for them: the bucket's state as the
         * response goes, as Envoy's filter reads its bucket in {@code encodeHeaders} (a slow upstream's answer shows
         * the tokens filled meanwhile).
         */
        public void setOn(MultiMap responseHeaders) {
            if (rateLimitBucket != null) {
                double tokens = rateLimitBucket.tokensNow();
                responseHeaders.add("x-ratelimit-limit", Long.toString(rateLimitBucket.maxTokens))
                        .add("x-ratelimit-remaining", Long.toString(Bucket.whole(tokens)))
                        .add("x-ratelimit-reset", Long.toString(rateLimitBucket.resetSeconds(tokens)));
            }
        }

        /**
         * What a request that goes on gets: {@code request_headers_to_add_when_not_enforced} when it found no token
         * (null headers: none to change), their values' command operators reading {@code request}.
         */
        void onRequest(MutableHeaders requestHeaders, boolean limited, AccessLogEntry.Source request) {
            if (limited && requestHeaders != null) {
                HeaderMutator.apply(List.of(), config.requestHeadersToAddWhenNotEnforced(), requestHeaders, formats,
                        formats.reading(request, 0, null));
            }
        }
    }

    /**
     * Runs the filter for a request on its route ({@code result} of {@code table}; the most specific config for the
     * filter replaces its own), counting {@code <stat_prefix>.http_local_rate_limit.*} in {@code stats} (null: none).
     * Null when the request is not checked; {@code requestHeaders} gets the not-enforced headers of one that found
     * no token and goes on. {@code subject} (the request and its peer, for the descriptors' actions) is made of
     * {@code source} only when the config in force has descriptors, so that a request without any allocates nothing
     * for them. The values of the headers it adds read {@code request}, the request so far (null: nothing known).
     */
    public <T> Outcome check(Function<? super T, RbacFilter.Subject> subject, T source, RouteTable table,
                             RouteResult result, DownstreamStats stats, MutableHeaders requestHeaders,
                             AccessLogEntry.Source request) {
        if (config == null) {
            return null;
        }
        Limit perRoute = table == null ? null : table.localRateLimit(result, name);
        LocalRateLimit c = perRoute != null ? perRoute.config() : config;
        Limiter l = perRoute != null ? perRoute.limiter() : limiter;
        HeaderFormats f = perRoute != null ? table.headerFormats() : formats;
        if (!enabled(c.filterEnabled())) {
            return null;
        }
        DownstreamStats.LocalRateLimitCounters counters = stats == null ? null
                : stats.localRateLimit(c.statPrefix());
        if (counters != null) {
            counters.enabled();
        }
        Bucket.Take d = l.take(l.hasDescriptors() ? l.descriptors(c, subject.apply(source), table, result)
                : List.of());
        Bucket headers = d == null || !c.xRateLimitHeaders() ? null : d.bucket();
        if (d == null || d.allowed()) {
            if (counters != null) {
                counters.ok();
            }
            return new Outcome(false, c, headers, f);
        }
        if (counters != null) {
            counters.rateLimited();
        }
        if (!enabled(c.filterEnforced())) {
            Outcome o = new Outcome(false, c, headers, f);
            o.onRequest(requestHeaders, true, request);
            return o;
        }
        if (counters != null) {
            counters.enforced();
        }
        return new Outcome(true, c, headers, f);
    }

    /** A runtime fractional percent's default value (absent: 0%, Envoy's default), drawn per request. */
    private static boolean enabled(dev.inmesh.api.config.core.FractionalPercent p) {
        return p != null && FaultFilter.enabled(p, java.util.concurrent.ThreadLocalRandom.current().nextLong());
    }

    /** A virtual host's or route's config for the filter, with its buckets. */
    record Limit(LocalRateLimit config, Limiter limiter) {}

    /**
     * The buckets of one config at one place: its default bucket (null: none), its descriptors' (the exact ones by
     * their entries, the wildcard ones each with the buckets of the values it saw) and its own {@code rate_limits},
     * compiled.
     */
    static final class Limiter {
        private static final Comparator<Bucket> SLOWEST_FIRST = Comparator.comparingDouble(Bucket::fillRate);

        private final Bucket bucket;
        private final Map<List<RateLimitDescriptor.Entry>, Bucket> exact;
        private final List<Wildcard> wildcards;
        private final List<RateLimitFilter.Descriptor> rateLimits;
        private final boolean alwaysConsumeDefault;

        Limiter(LocalRateLimit config, LongSupplier clock) {
            this.bucket = config.tokenBucket() == null ? null : new Bucket(config.tokenBucket(), clock);
            Map<List<RateLimitDescriptor.Entry>, Bucket> exact = new HashMap<>();
            List<Wildcard> wildcards = new ArrayList<>();
            for (LocalRateLimit.Descriptor d : config.descriptors()) {
                List<RateLimitDescriptor.Entry> entries = d.entries().stream().map(e -> RateLimitDescriptor.Entry
                        .newBuilder().setKey(e.key()).setValue(e.value()).build()).toList();
                if (d.wildcard()) {
                    wildcards.add(new Wildcard(entries, d.tokenBucket(), config.maxDynamicDescriptors(), clock));
                } else {
                    exact.put(entries, new Bucket(d.tokenBucket(), clock));
                }
            }
            this.exact = Map.copyOf(exact);
            this.wildcards = List.copyOf(wildcards);
            this.rateLimits = config.rateLimits().stream().map(RateLimitFilter.Descriptor::new).toList();
            this.alwaysConsumeDefault = config.alwaysConsumeDefaultTokenBucket();
        }

        boolean hasDescriptors() {
            return !exact.isEmpty() || !wildcards.isEmpty();
        }

        /**
         * A request's descriptors, as Envoy's filter makes them: by the config's own {@code rate_limits} when it has
         * any, else by the {@code rate_limits} of its stage of a forwarding route and its virtual host.
         */
        List<RateLimitDescriptor> descriptors(LocalRateLimit c, RbacFilter.Subject s, RouteTable table,
                                              RouteResult result) {
            String cluster = result instanceof RouteResult.Forward f ? f.cluster() : null;
            List<RateLimitDescriptor> out = new ArrayList<>(2);
            if (!rateLimits.isEmpty()) {
                for (RateLimitFilter.Descriptor d : rateLimits) {
                    d.addTo(out, s, cluster);
                }
                return out;
            }
            // as Envoy: only a route entry (a forwarding route) has rate_limits to read, its virtual host's too
            RateLimitFilter.Policy p = result instanceof RouteResult.Forward f && table != null
                    ? table.rateLimitPolicy(f.route()) : null;
            if (p != null) {
                p.addTo(out, c.stage(), p.virtualHostsToo(c.vhRateLimits()), true, s, cluster);
            }
            return out;
        }

        /**
         * Takes a token from the bucket of each descriptor of {@code request} that matches a configured one, the
         * slowest filling first, then from the default bucket when none matched or the config always consumes it;
         * stops at the first that has none. The take of the bucket whose state the {@code x-ratelimit-*} headers show
         * (the one that refused the request, else the first taken from); null when no bucket was taken from.
         */
        Bucket.Take take(List<RateLimitDescriptor> request) {
            if (request.isEmpty()) {
                // no descriptors: the default bucket alone, allocating no more than its take
                return bucket == null ? null : bucket.take();
            }
            Bucket[] matched = new Bucket[request.size()];
            int n = 0;
            for (RateLimitDescriptor d : request) {
                Bucket b = exact.get(d.getEntriesList());
                for (int i = 0; b == null && i < wildcards.size(); i++) {
                    b = wildcards.get(i).bucket(d.getEntriesList());
                }
                if (b != null) {
                    matched[n++] = b;
                }
            }
            if (n > 1) {
                // as Envoy: the slowest filling first, so that a request it refuses takes nothing from the others
                Arrays.sort(matched, 0, n, SLOWEST_FIRST);
            }
            Bucket.Take first = null;
            for (int i = 0; i < n; i++) {
                Bucket.Take t = matched[i].take();
                if (!t.allowed()) {
                    return t;
                }
                if (first == null) {
                    first = t;
                }
            }
            if ((n == 0 || alwaysConsumeDefault) && bucket != null) {
                Bucket.Take t = bucket.take();
                if (!t.allowed() || first == null) {
                    return t;
                }
            }
            return first;
        }
    }

    /**
     * A descriptor with wildcard entries (empty values): a request descriptor with the same keys in the same order
     * and the same values where this one has any matches it, and each distinct one gets a bucket of its own. As
     * Envoy's, it keeps at most {@code max_dynamic_descriptors} of them, dropping the least recently used (the map is
     * locked only while a bucket is looked up or added).
     */
    static final class Wildcard {
        private final List<RateLimitDescriptor.Entry> entries;
        private final LocalRateLimit.TokenBucket config;
        private final LongSupplier clock;
        private final Map<List<RateLimitDescriptor.Entry>, Bucket> seen;

        Wildcard(List<RateLimitDescriptor.Entry> entries, LocalRateLimit.TokenBucket config, int max,
                 LongSupplier clock) {
            this.entries = entries;
            this.config = config;
            this.clock = clock;
            this.seen = new LinkedHashMap<>(16, 0.75f, true) {
                @Override
                protected boolean removeEldestEntry(Map.Entry<List<RateLimitDescriptor.Entry>, Bucket> eldest) {
                    return size() > max;
                }
            };
        }

        /** The bucket of a request descriptor that matches, made on its first request; null when it does not. */
        Bucket bucket(List<RateLimitDescriptor.Entry> request) {
            if (request.size() != entries.size()) {
                return null;
            }
            for (int i = 0; i < entries.size(); i++) {
                RateLimitDescriptor.Entry e = entries.get(i);
                RateLimitDescriptor.Entry r = request.get(i);
                if (!e.getKey().equals(r.getKey()) || !e.getValue().isEmpty() && !e.getValue().equals(r.getValue())) {
                    return null;
                }
            }
            synchronized (seen) {
                return seen.computeIfAbsent(List.copyOf(request), k -> new Bucket(config, clock));
            }
        }
    }

    /**
     * A token bucket as Envoy's since 1.32 ({@code AtomicTokenBucketImpl}, which replaced the timer that added
     * {@code tokens_per_fill} at each {@code fill_interval}): full at first, it fills continuously at
     * {@code tokens_per_fill / fill_interval} tokens a second up to {@code max_tokens}, so a bucket emptied by a burst
     * gets its first token back after {@code fill_interval / tokens_per_fill}, not at the next interval's end. Its
     * whole state is one moment, in nanoseconds of the monotonic clock: the tokens are the time since it times the
     * rate, at most {@code max_tokens}; a take moves it forward by one token's time (a compare-and-set, no lock, no
     * timer).
     */
    static final class Bucket {
        /**
         * How far below a whole token a count may be and still be that token: the tokens are computed in doubles, so
         * a bucket given whole tokens (a fake clock, a fill interval in whole tokens) must not lose one to rounding.
         */
        private static final double ROUNDING = 1e-9;
        private final long maxTokens;
        private final double tokensPerFill;
        private final double intervalNanos;
        private final LongSupplier clock;
        /** The clock's reading when the bucket was made: the moments below are nanoseconds since it. */
        private final long origin;
        /**
         * The moment from which the bucket has filled (its tokens are the time since times the rate, at most
         * {@code max_tokens}), as the bits of a double: a bucket that takes centuries to fill cannot overflow it.
         */
        private final AtomicLong since;
        /** The takes this bucket gives, made once: a take allocates nothing. */
        private final Take allowedTake = new Take(true, this);
        private final Take refusedTake = new Take(false, this);

        /** A request's take: whether it got a token, and of which bucket. */
        record Take(boolean allowed, Bucket bucket) {}

        /** Tokens a second, by which Envoy orders the buckets a request takes from. */
        double fillRate() {
            return tokensPerFill * 1e9 / intervalNanos;
        }

        Bucket(LocalRateLimit.TokenBucket config, LongSupplier clock) {
            this.maxTokens = config.maxTokens();
            this.tokensPerFill = config.tokensPerFill();
            this.intervalNanos = config.fillInterval().toNanos();
            this.clock = clock;
            this.origin = clock.getAsLong();
            // full: as if it had been filling for as long as max_tokens take
            this.since = new AtomicLong(Double.doubleToRawLongBits(-nanosFor(maxTokens)));
        }

        Take take() {
            double now = clock.getAsLong() - origin;
            while (true) {
                long bits = since.get();
                double from = Double.longBitsToDouble(bits);
                double tokens = tokens(now, from);
                if (tokens < 1 - ROUNDING) {
                    return refusedTake;
                }
                double left = Math.max(0, tokens - 1);
                // the moment from which the tokens left have filled; never backwards
                double next = Math.max(from, now - nanosFor(left));
                if (since.compareAndSet(bits, Double.doubleToRawLongBits(next))) {
                    return allowedTake;
                }
            }
        }

        /** The tokens in the bucket now. */
        double tokensNow() {
            double now = clock.getAsLong() - origin;
            double from = Double.longBitsToDouble(since.get());
            return tokens(now, from);
        }

        /** The tokens at moment {@code now} of a bucket filling since {@code from}, at most {@code max_tokens}. */
        private double tokens(double now, double from) {
            return now <= from ? 0 : Math.min(maxTokens, (now - from) * tokensPerFill / intervalNanos);
        }

        /** The whole tokens of {@code tokens} ({@code x-ratelimit-remaining}). */
        static long whole(double tokens) {
            return (long) Math.floor(tokens + ROUNDING);
        }

        /** The nanoseconds the bucket takes to fill {@code tokens}. */
        private double nanosFor(double tokens) {
            return tokens * intervalNanos / tokensPerFill;
        }

        /**
         * The {@code x-ratelimit-reset} of a bucket left with {@code tokens}, as Envoy's timer-less bucket (1.32 on)
         * works it out: 0 while a whole token is left, else the milliseconds one token takes to fill (rounded up),
         * in whole seconds rounded down (Envoy divides the milliseconds by 1000 as integers): a bucket of 3 tokens a
         * minute says 20 once empty, one of 2 a second 0.
         */
        long resetSeconds(double tokens) {
            if (tokens >= 1 - ROUNDING) {
                return 0;
            }
            return (long) Math.ceil(nanosFor(1) / 1e6) / 1000;
        }
    }

    /**
     * The buckets of a snapshot holder's snapshots, by place and config: a new snapshot takes the bucket of the one
     * before where a filter's or route's place and config are the same ({@link Session}). The HTTP filter's are
     * {@link Limiter}s (a default bucket and its descriptors'), the network filter's ({@link NetworkLocalRateLimit})
     * single {@link Bucket}s.
     */
    public static final class Buckets {
        private final LongSupplier clock;
        private volatile Map<Key, Object> live = Map.of();

        /** A place and the config there: a {@link LocalRateLimit} (a {@link Limiter}) or a token bucket's. */
        private record Key(String where, Object config) {}

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
            private final Map<Key, Object> used = new HashMap<>();

            /** The buckets of a config at a place: the last committed ones there, else new, full ones. */
            Limiter limiter(String where, LocalRateLimit config) {
                return (Limiter) kept(new Key(where, config), () -> new Limiter(config, clock));
            }

            /** The bucket of a token bucket config at a place: the last committed one there, else a new, full one. */
            Bucket bucket(String where, LocalRateLimit.TokenBucket config) {
                return (Bucket) kept(new Key(where, config), () -> new Bucket(config, clock));
            }

            private Object kept(Key k, java.util.function.Supplier<Object> create) {
                return used.computeIfAbsent(k, key -> {
                    Object kept = live.get(key);
                    return kept != null ? kept : create.get();
                });
            }

            /** The snapshot was published: its buckets are the ones the next takes over; others are dropped. */
            public void commit() {
                live = Map.copyOf(used);
            }
        }
    }
}
