package dev.inmesh.runtime.router;

import com.nimbusds.jose.JOSEException;
import com.nimbusds.jose.JWSAlgorithm;
import com.nimbusds.jose.JWSHeader;
import com.nimbusds.jose.JWSVerifier;
import com.nimbusds.jose.crypto.ECDSAVerifier;
import com.nimbusds.jose.crypto.RSASSAVerifier;
import com.nimbusds.jose.jwk.Curve;
import com.nimbusds.jose.jwk.ECKey;
import com.nimbusds.jose.jwk.OctetKeyPair;
import com.nimbusds.jose.jwk.OctetSequenceKey;
import com.nimbusds.jose.jwk.RSAKey;
import com.nimbusds.jose.util.Base64URL;
import com.nimbusds.jose.util.JSONObjectUtils;
import dev.inmesh.api.config.jwt.JwtAuthentication;
import dev.inmesh.api.config.jwt.JwtAuthentication.JwtRequirement;
import dev.inmesh.runtime.lb.HashPolicies;
import dev.inmesh.runtime.stats.DownstreamStats;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.LongSupplier;

/**
 * Envoy's JWT authentication HTTP filter ({@code envoy.filters.http.jwt_authn}) of one connection manager, compiled
 * once per snapshot from its {@link JwtAuthentication} config: each provider's JWKS becomes signature verifiers
 * (RSA, RSA-PSS, EC and HMAC keys through Nimbus JOSE, Ed25519 keys through the JDK), each rule's route match a
 * compiled matcher, each requirement a tree of verifiers. Nothing of the config is parsed again per request and
 * nothing blocks: the keys are local (istiod inlines the JWKS it fetched), or a {@code remote_jwks} set that
 * {@link #fetchKeys} fetched through its cluster before, so a request is verified where it stands.
 *
 * <p>As Envoy's: the first rule whose match matches the request names its requirement (none matches: the request goes
 * on unchecked); a token is read from the provider's locations ({@code Authorization: Bearer} and the
 * {@code access_token} query parameter when none are configured) and checked in Envoy's order: its form, its issuer,
 * {@code nbf}/{@code exp} with the clock skew, its audience, then its signature. A request that fails is answered
 * {@code 401} (an audience not allowed: {@code 403}) with jwt_verify_lib's words as its body ({@code Jwt is missing},
 * {@code Jwt verification fails}, ...), a {@code www-authenticate: Bearer realm="<uri>"} header (with
 * {@code error="invalid_token"} unless the token was missing) and the response code details
 * {@code jwt_authn_access_denied{<words_with_underscores>}}. A verified token's payload goes into the request's
 * dynamic metadata ({@link Outcome#metadata}, read by the RBAC filters' {@code metadata} principals), to the
 * {@code forward_payload_header} and the {@code claim_to_headers}; without {@code forward}, its header is removed,
 * or its query parameter leaves the path ({@link Outcome#tokenParameters}). Immutable and thread-safe.
 */
public final class JwtAuthnFilter {
    /** The filter's name: the namespace of the dynamic metadata it writes. */
    public static final String NAME = "envoy.filters.http.jwt_authn";

    /**
     * Envoy's {@code jwt_verify_lib} statuses that Inmesh can reach, with their words as the library Envoy links today
     * spells them (a malformed token's say which part or claim is wrong).
     */
    public enum Status {
        OK("OK"),
        JWT_MISSED("Jwt is missing"),
        JWT_NOT_YET_VALID("Jwt not yet valid"),
        JWT_EXPIRED("Jwt is expired"),
        JWT_BAD_FORMAT("Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"),
        JWT_HEADER_BAD_BASE64("Jwt header is an invalid Base64url encoded"),
        JWT_HEADER_BAD_JSON("Jwt header is an invalid JSON"),
        JWT_HEADER_BAD_ALG("Jwt header [alg] field is required and must be a string"),
        JWT_HEADER_NOT_IMPLEMENTED_ALG("Jwt header [alg] is not supported"),
        JWT_HEADER_BAD_KID("Jwt header [kid] field is not a string"),
        JWT_PAYLOAD_BAD_BASE64("Jwt payload is an invalid Base64url encoded"),
        JWT_PAYLOAD_BAD_JSON("Jwt payload is an invalid JSON"),
        JWT_PAYLOAD_ISS_NOT_STRING("Jwt payload [iss] field is not a string"),
        JWT_PAYLOAD_SUB_NOT_STRING("Jwt payload [sub] field is not a string"),
        JWT_PAYLOAD_IAT_NOT_INTEGER("Jwt payload [iat] field is not an integer"),
        JWT_PAYLOAD_IAT_OUT_OF_RANGE("Jwt payload [iat] field is not a positive 64 bit integer"),
        JWT_PAYLOAD_NBF_NOT_INTEGER("Jwt payload [nbf] field is not an integer"),
        JWT_PAYLOAD_NBF_OUT_OF_RANGE("Jwt payload [nbf] field is not a positive 64 bit integer"),
        JWT_PAYLOAD_EXP_NOT_INTEGER("Jwt payload [exp] field is not an integer"),
        JWT_PAYLOAD_EXP_OUT_OF_RANGE("Jwt payload [exp] field is not a positive 64 bit integer"),
        JWT_PAYLOAD_JTI_NOT_STRING("Jwt payload [jti] field is not a string"),
        JWT_PAYLOAD_AUD_NOT_STRING("Jwt payload [aud] field is not a string or string list"),
        JWT_SIGNATURE_BAD_BASE64("Jwt signature is an invalid Base64url encoded"),
        JWT_UNKNOWN_ISSUER("Jwt issuer is not configured"),
        JWT_AUDIENCE_NOT_ALLOWED("Audiences in Jwt are not allowed"),
        JWT_VERIFICATION_FAIL("Jwt verification fails"),
        JWKS_NO_VALID_KEYS("Jwks doesn't have any valid public key"),
        JWKS_FETCH_FAIL("Jwks remote fetch is failed"),
        JWKS_KID_ALG_MISMATCH("Jwks doesn't have key to match kid or alg from Jwt");

        private final String message;

        Status(String message) {
            this.message = message;
        }

        /** The words Envoy answers with (the body of its refusal). */
        public String message() {
            return message;
        }
    }

    /** The longest path of the {@code www-authenticate} realm, as Envoy's. */
    private static final int MAX_REALM_PATH = 256;
    private static final Set<String> ALGORITHMS = Set.of("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
            "ES256", "ES384", "ES512", "HS256", "HS384", "HS512", "EdDSA");

    private final String name;
    private final Map<String, Provider> providers;
    private final Provider[] byName;
    private final CompiledMatch[] matches;
    private final Verifier[] verifiers;
    private final boolean bypassCorsPreflight;
    private final LongSupplier nowSeconds;

    private JwtAuthnFilter(String name, JwtAuthentication config, LongSupplier nowSeconds) {
        this.name = name;
        this.nowSeconds = nowSeconds;
        Map<String, Provider> ps = new LinkedHashMap<>();
        config.providers().forEach((n, p) -> ps.put(n, new Provider(p)));
        this.providers = Map.copyOf(ps);
        this.byName = ps.values().toArray(Provider[]::new); // name order: the config keeps them sorted
        RouteTable.Interner interner = new RouteTable.Interner();
        this.matches = new CompiledMatch[config.rules().size()];
        this.verifiers = new Verifier[matches.length];
        for (int i = 0; i < matches.length; i++) {
            JwtAuthentication.RequirementRule r = config.rules().get(i);
            matches[i] = new CompiledMatch(r.match(), interner);
            verifiers[i] = r.requires() == null ? ctx -> Status.OK : verifier(r.requires());
        }
        this.bypassCorsPreflight = config.bypassCorsPreflight();
    }

    /** The filter of a config, on the system clock. */
    public static JwtAuthnFilter compile(String filterName, JwtAuthentication config) {
        return new JwtAuthnFilter(filterName, config, () -> System.currentTimeMillis() / 1000);
    }

    /** The filter of a config, on a clock of Unix seconds (a test's). */
    public static JwtAuthnFilter compile(String filterName, JwtAuthentication config, LongSupplier nowSeconds) {
        return new JwtAuthnFilter(filterName, config, nowSeconds);
    }

    /** The filter's name in its connection manager. */
    public String name() {
        return name;
    }

    /** Whether a provider fetches its key set ({@code remote_jwks}): deciding may then wait for the fetch. */
    public boolean fetches() {
        for (Provider p : byName) {
            if (p.remote != null) {
                return true;
            }
        }
        return false;
    }

    /**
     * Fetches, through their clusters, the key sets a request may need before {@link #authenticate} verifies it: those
     * of the {@code remote_jwks} providers a token of the request is found for, whose set was not fetched yet, has
     * expired ({@code cache_duration}) or failed last time, as Envoy's filter fetches a provider's set when a token
     * needs it and its cache has none. A fetch that fails (no host, an error, an answer other than 200, a set without
     * a valid key) leaves its provider's tokens refused {@code Jwks remote fetch is failed}, and is tried again on the
     * next request that needs it.
     *
     * @return completes when every fetch ended; never fails
     */
    public io.vertx.core.Future<Void> fetchKeys(RouteRequest req, MutableHeaders headers,
                                                dev.inmesh.runtime.upstream.ClusterManager clusters) {
        String path = req.path() == null ? "" : req.path();
        int q = path.indexOf('?');
        String query = q < 0 ? null : path.substring(q + 1);
        List<io.vertx.core.Future<Void>> fetches = new ArrayList<>();
        for (Provider p : byName) {
            if (p.remote != null && p.stale() && p.needsKeys(p.extractor.extract(headers, query),
                    nowSeconds.getAsLong())) {
                fetches.add(p.fetch(clusters));
            }
        }
        return fetches.isEmpty() ? io.vertx.core.Future.succeededFuture()
                : io.vertx.core.Future.join(fetches).mapEmpty();
    }

    /**
     * What the filter decided for a request.
     *
     * @param status {@link Status#OK} when the request goes on
     * @param metadata the verified payloads by their {@code payload_in_metadata} key (the dynamic metadata of
     *     {@link #NAME}); empty when none was verified
     * @param realm the request's URI as the {@code www-authenticate} realm: scheme, host and path (at most 256
     *     characters of it, as Envoy)
     * @param tokenParameters the query parameters verified tokens came in whose providers do not {@code forward}
     *     them: as Envoy's, they leave the request's path ({@link #withoutParameters}); empty when none
     */
    public record Outcome(Status status, Map<String, Object> metadata, String realm, Set<String> tokenParameters) {
        public Outcome {
            tokenParameters = tokenParameters == null ? Set.of() : Set.copyOf(tokenParameters);
        }

        /** Whether the request is refused. */
        public boolean denied() {
            return status != Status.OK;
        }

        /** The status of a refusal: 403 for an audience not allowed, else 401, as Envoy's. */
        public int code() {
            return status == Status.JWT_AUDIENCE_NOT_ALLOWED ? 403 : 401;
        }

        /** The body of a refusal: jwt_verify_lib's words. */
        public String body() {
            return status.message();
        }

        /** The response code details of a refusal: {@code jwt_authn_access_denied{Jwt_is_missing}} and so on. */
        public String details() {
            return "jwt_authn_access_denied{" + status.message().replaceAll("\\s", "_") + "}";
        }

        /**
         * The {@code www-authenticate} header of a refusal: {@code Bearer realm="<uri>"}, with
         * {@code , error="invalid_token"} unless the token was missing.
         */
        public String wwwAuthenticate() {
            return "Bearer realm=\"" + realm + "\"" + (status == Status.JWT_MISSED ? "" : ", error=\"invalid_token\"");
        }
    }

    /**
     * Runs the filter for a request: finds its rule, verifies what the rule requires, and on success changes its
     * headers as the verified providers say. Counts {@code jwt_authn.allowed}, {@code denied} and
     * {@code cors_preflight_bypassed} in {@code stats} (null: none).
     *
     * @param req the request as route matching reads it (its path, with the query, and {@code :authority})
     * @param headers the request's headers, which the filter changes
     */
    public Outcome authenticate(RouteRequest req, MutableHeaders headers, DownstreamStats stats) {
        DownstreamStats.JwtAuthnCounters counters = stats == null ? null : stats.jwtAuthn();
        if (bypassCorsPreflight && "OPTIONS".equals(req.method()) && nonEmpty(headers, "origin")
                && nonEmpty(headers, "access-control-request-method")) {
            if (counters != null) {
                counters.corsPreflightBypassed();
            }
            return new Outcome(Status.OK, Map.of(), null, Set.of());
        }
        String path = req.path() == null ? "" : req.path();
        int q = path.indexOf('?');
        String pathOnly = q < 0 ? path : path.substring(0, q);
        String query = q < 0 ? null : path.substring(q + 1);
        Verifier verifier = null;
        for (int i = 0; i < matches.length; i++) {
            if (matches[i].matches(req, pathOnly, query, 0)) {
                verifier = verifiers[i];
                break;
            }
        }
        Context ctx = new Context(headers, query);
        Status s = verifier == null ? Status.OK : verifier.verify(ctx);
        if (counters != null) {
            counters.count(s == Status.OK);
        }
        if (s == Status.OK) {
            return new Outcome(s, ctx.payloads == null ? Map.of() : ctx.payloads, null, ctx.tokenParameters);
        }
        return new Outcome(s, Map.of(), realm(req, headers, path), Set.of());
    }

    /**
     * The request's URI as Envoy writes it in the realm: the scheme {@code x-forwarded-proto} says (the connection's
     * without one), the host, and the path {@code x-envoy-original-path} keeps or else the request's, at most
     * {@link #MAX_REALM_PATH} characters.
     */
    private static String realm(RouteRequest req, MutableHeaders headers, String path) {
        List<String> proto = headers.getAll("x-forwarded-proto");
        List<String> original = headers.getAll("x-envoy-original-path");
        String p = original.isEmpty() ? path : original.get(0);
        return (proto.isEmpty() ? req.scheme() : proto.get(0)) + "://"
                + (req.authority() == null ? "" : req.authority())
                + (p.length() > MAX_REALM_PATH ? p.substring(0, MAX_REALM_PATH) : p);
    }

    private static boolean nonEmpty(MutableHeaders headers, String name) {
        for (String v : headers.getAll(name)) {
            if (!v.isEmpty()) {
                return true;
            }
        }
        return false;
    }

    /**
     * One request's verification: its headers, its query, the payloads verified so far and the query parameters
     * their tokens leave.
     */
    private static final class Context {
        final MutableHeaders headers;
        final String query;
        Map<String, Object> payloads;
        Set<String> tokenParameters;

        Context(MutableHeaders headers, String query) {
            this.headers = headers;
            this.query = query;
        }
    }

    /** A requirement, compiled: the status it ends with for a request. */
    private interface Verifier {
        Status verify(Context ctx);
    }

    /**
     * A requirement's verifier. As Envoy's, {@code allow_missing} and {@code allow_missing_or_failed} on their own read
     * the tokens of every provider, each verified by the provider of its issuer; in a {@code requires_any} beside other
     * requirements they only say what becomes of its failure.
     */
    private Verifier verifier(JwtRequirement r) {
        if (r instanceof JwtRequirement.ProviderName p) {
            Provider provider = providers.get(p.name());
            Extractor extractor = new Extractor(List.of(provider));
            return ctx -> authenticate(ctx, extractor, provider, provider.audiences, false, false);
        } else if (r instanceof JwtRequirement.ProviderAndAudiences p) {
            Provider provider = providers.get(p.name());
            Extractor extractor = new Extractor(List.of(provider));
            // as Envoy's, no audiences here is a plain provider_name: the provider's own audiences hold
            Set<String> audiences = p.audiences().isEmpty() ? provider.audiences : audiences(p.audiences());
            return ctx -> authenticate(ctx, extractor, provider, audiences, false, false);
        } else if (r instanceof JwtRequirement.AllowMissing) {
            Extractor extractor = new Extractor(List.of(byName));
            return ctx -> authenticate(ctx, extractor, null, null, false, true);
        } else if (r instanceof JwtRequirement.AllowMissingOrFailed) {
            Extractor extractor = new Extractor(List.of(byName));
            return ctx -> authenticate(ctx, extractor, null, null, true, true);
        } else if (r instanceof JwtRequirement.RequiresAll a) {
            Verifier[] all = a.requirements().stream().map(this::verifier).toArray(Verifier[]::new);
            return ctx -> {
                for (Verifier v : all) {
                    Status s = v.verify(ctx);
                    if (s != Status.OK) {
                        return s;
                    }
                }
                return Status.OK;
            };
        }
        return any(((JwtRequirement.RequiresAny) r).requirements());
    }

    /**
     * Envoy's {@code requires_any}: its requirements but {@code allow_missing} and {@code allow_missing_or_failed} in
     * order, the first that passes passing it (with only those two, the one that allows more, alone). When none
     * passes, its failure is the last one that is neither a missing token nor an unknown issuer, else an unknown issuer,
     * else a missing token; {@code allow_missing_or_failed} turns any failure into a pass, {@code allow_missing} a
     * missing token.
     */
    private Verifier any(List<JwtRequirement> requirements) {
        boolean allowFailed = requirements.stream().anyMatch(x -> x instanceof JwtRequirement.AllowMissingOrFailed);
        boolean allowMissing = requirements.stream().anyMatch(x -> x instanceof JwtRequirement.AllowMissing);
        List<Verifier> children = new ArrayList<>();
        for (JwtRequirement x : requirements) {
            if (!(x instanceof JwtRequirement.AllowMissing || x instanceof JwtRequirement.AllowMissingOrFailed)) {
                children.add(verifier(x));
            }
        }
        if (children.isEmpty()) {
            children.add(verifier(allowFailed ? new JwtRequirement.AllowMissingOrFailed()
                    : new JwtRequirement.AllowMissing()));
        }
        Verifier[] all = children.toArray(Verifier[]::new);
        return ctx -> {
            Status result = Status.JWT_MISSED;
            for (Verifier v : all) {
                Status s = v.verify(ctx);
                if (s == Status.OK) {
                    return s;
                }
                if (s != Status.JWT_MISSED && s != Status.JWT_UNKNOWN_ISSUER || result == Status.JWT_MISSED) {
                    result = s;
                }
            }
            return allowFailed || allowMissing && result == Status.JWT_MISSED ? Status.OK : result;
        };
    }

    /**
     * Envoy's authenticator: takes the request's tokens from the extractor's locations (after removing the payload
     * and claim headers a client may have sent), and verifies them from the last found to the first. Every token must
     * pass unless missing or failing is allowed; the answer is the status of the last token verified.
     *
     * @param provider the provider to verify with, or null to find it by the token's issuer (allow_missing*)
     * @param audiences the audiences that provider's tokens must name one of (empty: any)
     */
    private Status authenticate(Context ctx, Extractor extractor, Provider provider, Set<String> audiences,
                                boolean allowFailed, boolean allowMissing) {
        extractor.sanitize(ctx.headers);
        List<Token> tokens = extractor.extract(ctx.headers, ctx.query);
        Status s = Status.JWT_MISSED;
        for (int i = tokens.size() - 1; i >= 0; i--) {
            s = verify(ctx, tokens.get(i), provider, audiences);
            if (s != Status.OK && !allowFailed && !allowMissing) {
                break;
            }
        }
        if (allowFailed || allowMissing && s == Status.JWT_MISSED) {
            return Status.OK;
        }
        return s;
    }

    private Status verify(Context ctx, Token token, Provider provider, Set<String> audiences) {
        Jwt jwt = new Jwt();
        Status s = jwt.parse(token.value);
        if (s != Status.OK) {
            return s;
        }
        if (!token.location.allows(jwt.iss)) {
            return Status.JWT_UNKNOWN_ISSUER;
        }
        Provider p = provider != null ? provider : byIssuer(jwt.iss);
        if (p == null) {
            return Status.JWT_UNKNOWN_ISSUER;
        }
        s = p.timely(jwt, nowSeconds.getAsLong());
        if (s != Status.OK) {
            return s;
        }
        Set<String> allowed = provider != null ? audiences : p.audiences;
        if (!allowed.isEmpty() && jwt.aud.stream().noneMatch(a -> allowed.contains(normalizeAudience(a)))) {
            return Status.JWT_AUDIENCE_NOT_ALLOWED;
        }
        s = p.verifySignature(jwt);
        if (s != Status.OK) {
            return s;
        }
        p.accepted(ctx, token, jwt);
        return Status.OK;
    }

    /** The provider of an issuer: the first by name with it, else the first with none (any issuer), as Envoy's. */
    private Provider byIssuer(String iss) {
        for (Provider p : byName) {
            if (p.issuer.equals(iss)) {
                return p;
            }
        }
        for (Provider p : byName) {
            if (p.issuer.isEmpty()) {
                return p;
            }
        }
        return null;
    }

    /** An audience as jwt_verify_lib compares them: without {@code http://} or {@code https://}, without a last /. */
    private static String normalizeAudience(String a) {
        String s = a.startsWith("http://") ? a.substring(7) : a.startsWith("https://") ? a.substring(8) : a;
        return s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
    }

    private static Set<String> audiences(List<String> list) {
        Set<String> out = new HashSet<>();
        for (String a : list) {
            out.add(normalizeAudience(a));
        }
        return Set.copyOf(out);
    }

    /**
     * A provider, compiled: its issuer, audiences, keys (its local set's, or the last set fetched of its
     * {@code remote_jwks}) and what a verified token leaves on the request.
     */
    private static final class Provider {
        final JwtAuthentication.JwtProvider config;
        final String issuer;
        final Set<String> audiences;
        final long clockSkew;
        final Key[] keys;
        final Set<String> spaceDelimited;
        final JwtAuthentication.RemoteJwks remote;
        /** Its own locations, where {@link #fetchKeys} looks for its tokens. */
        final Extractor extractor;
        /** The last set fetched and until when (System.nanoTime) it is used; null keys: the fetch failed. */
        private volatile Fetched fetched;

        /** A fetched key set; {@code keys} null when the fetch failed. */
        private record Fetched(Key[] keys, long until) {}

        Provider(JwtAuthentication.JwtProvider c) {
            this.config = c;
            this.issuer = c.issuer();
            this.audiences = audiences(c.audiences());
            this.clockSkew = c.clockSkewSeconds();
            this.remote = c.remoteJwks();
            this.keys = remote != null ? null : keys(c.localJwks());
            this.spaceDelimited = Set.copyOf(c.spaceDelimitedClaims());
            this.extractor = new Extractor(List.of(this));
        }

        /** Whether {@code jwt} is within its time ({@code nbf}, {@code exp}) at {@code now}, with the clock skew. */
        Status timely(Jwt jwt, long now) {
            if (jwt.nbf != null && now + clockSkew < jwt.nbf) {
                return Status.JWT_NOT_YET_VALID;
            }
            if (jwt.exp != null && jwt.exp != 0 && now > jwt.exp + clockSkew) {
                return Status.JWT_EXPIRED;
            }
            return Status.OK;
        }

        /**
         * Whether one of {@code tokens} (found in its locations) reaches the check of its signature, as Envoy's
         * authenticator fetches a remote set only then: it parses, names its issuer and is within its time. (Its
         * audiences are not checked here: a requirement may name others.)
         */
        boolean needsKeys(List<Token> tokens, long now) {
            for (Token t : tokens) {
                Jwt jwt = new Jwt();
                if (jwt.parse(t.value()) == Status.OK && t.location().allows(jwt.iss)
                        && timely(jwt, now) == Status.OK) {
                    return true;
                }
            }
            return false;
        }

        /** Whether its remote set must be fetched: never fetched, failed, or past its cache duration. */
        boolean stale() {
            Fetched f = fetched;
            return f == null || f.keys == null || System.nanoTime() - f.until >= 0;
        }

        /**
         * Fetches its remote set as Envoy's JWKS fetcher does: a GET of the URI's path, with its host as
         * {@code :authority}, through the cluster, within the timeout; a 200 whose body has a valid key is kept for
         * the cache duration, anything else is a failure.
         */
        io.vertx.core.Future<Void> fetch(dev.inmesh.runtime.upstream.ClusterManager clusters) {
            String uri = remote.uri();
            int scheme = uri.indexOf("://");
            String rest = scheme < 0 ? uri : uri.substring(scheme + 3);
            int slash = rest.indexOf('/');
            String authority = slash < 0 ? rest : rest.substring(0, slash);
            String path = slash < 0 ? "/" : rest.substring(slash);
            io.vertx.core.Future<dev.inmesh.runtime.upstream.Exchange.Answer> answer;
            try {
                answer = ClusterCall.send(clusters, remote.cluster(), false,
                        ro -> ro.setMethod(io.vertx.core.http.HttpMethod.GET).setURI(path),
                        io.vertx.core.buffer.Buffer.buffer(), authority, remote.timeout());
            } catch (RuntimeException e) {
                answer = io.vertx.core.Future.failedFuture(e);
            }
            return answer.transform(ar -> {
                Key[] ks = ar.succeeded() && ar.result().status() == 200 ? keys(ar.result().body().toString())
                        : new Key[0];
                fetched = new Fetched(ks.length == 0 ? null : ks, System.nanoTime() + remote.cacheDuration().toNanos());
                return io.vertx.core.Future.succeededFuture();
            });
        }

        /**
         * The keys of a JWKS that Inmesh verifies with, each with its verifier built now, read key by key as
         * jwt_verify_lib reads them: a key it would refuse is left out and the others stay; none when the set does not
         * parse (Envoy then answers every token {@code Jwks doesn't have any valid public key}). A set without a
         * {@code keys} list is read as jwt_verify_lib's other form, X.509 certificates by their {@code kid}.
         */
        private static Key[] keys(String jwks) {
            List<?> list;
            try {
                Map<String, Object> set = JSONObjectUtils.parse(jwks);
                if (!set.containsKey("keys")) {
                    return x509Keys(set);
                }
                list = set.get("keys") instanceof List<?> l ? l : List.of();
            } catch (java.text.ParseException | RuntimeException e) {
                return new Key[0];
            }
            List<Key> out = new ArrayList<>();
            for (Object o : list) {
                if (o instanceof Map<?, ?> m) {
                    try {
                        Key k = key(m);
                        if (k != null) {
                            out.add(k);
                        }
                    } catch (JOSEException | java.text.ParseException | java.security.GeneralSecurityException
                             | RuntimeException e) {
                        // a key that does not parse, or that Nimbus or the JDK cannot use: not a key here
                    }
                }
            }
            return out.toArray(Key[]::new);
        }

        /**
         * One key of a JWKS as jwt_verify_lib takes it, or null when it refuses it: its {@code kid} and {@code alg}
         * when strings (an empty one, or another type, is none); an {@code RSA} key of {@code RS*} or {@code PS*}
         * whose exponent is 3 or 65537 and whose modulus is odd, of 34 to 16384 bits (BoringSSL's check); an
         * {@code EC} key of {@code ES*} on the curve its {@code crv} names, else its {@code alg}'s, else P-256; an
         * {@code oct} key of {@code HS256}, {@code HS384} or {@code HS512}; an {@code OKP} key of {@code EdDSA} on
         * Ed25519 with a 32-byte {@code x}.
         */
        private static Key key(Map<?, ?> jwk) throws JOSEException, java.text.ParseException,
                java.security.GeneralSecurityException {
            String kty = jwk.get("kty") instanceof String t ? t : "";
            String kid = jwk.get("kid") instanceof String k && !k.isEmpty() ? k : null;
            String alg = jwk.get("alg") instanceof String a && !a.isEmpty() ? a : null;
            Map<String, Object> clean = new LinkedHashMap<>();
            jwk.forEach((k, v) -> clean.put((String) k, v));
            clean.remove("kid");
            clean.remove("alg"); // read above: Nimbus need not (nor refuse a kid that is not a string)
            Curve curve = null;
            JWSVerifier v;
            switch (kty) {
                case "RSA" -> {
                    if (alg != null && !alg.startsWith("RS") && !alg.startsWith("PS")) {
                        return null;
                    }
                    RSAKey rsa = RSAKey.parse(clean);
                    java.math.BigInteger n = rsa.getModulus().decodeToBigInteger();
                    java.math.BigInteger e = rsa.getPublicExponent().decodeToBigInteger();
                    if (e.intValue() != 3 && e.intValue() != 65537 || e.bitLength() > 17 || !n.testBit(0)
                            || n.bitLength() <= 33 || n.bitLength() > 16384) {
                        return null;
                    }
                    // the JDK takes no modulus under 512 bits, where BoringSSL does (istiod's stand-in for a JWKS it
                    // could not fetch may be one): such a key is one, of its kid, that verifies nothing
                    v = n.bitLength() < 512 ? null : new RSASSAVerifier(rsa);
                }
                case "EC" -> {
                    Object crv = clean.get("crv");
                    String named = crv instanceof String c ? c : "";
                    String curveName = !named.isEmpty() ? named : alg == null ? "P-256" : ecCurve(alg);
                    if (alg != null && !alg.startsWith("ES") || crv != null && !(crv instanceof String)
                            || alg != null && !named.isEmpty() && !named.equals(ecCurve(alg)) || curveName == null
                            || !Set.of("P-256", "P-384", "P-521").contains(curveName)) {
                        return null;
                    }
                    clean.put("crv", curveName);
                    ECKey ec = ECKey.parse(clean);
                    curve = ec.getCurve();
                    v = new ECDSAVerifier(ec);
                }
                case "oct" -> {
                    if (alg != null && !Set.of("HS256", "HS384", "HS512").contains(alg)) {
                        return null;
                    }
                    v = new HmacVerifier(OctetSequenceKey.parse(clean).toByteArray());
                }
                case "OKP" -> {
                    OctetKeyPair okp = OctetKeyPair.parse(clean);
                    if (alg != null && !alg.equals("EdDSA") || !Curve.Ed25519.equals(okp.getCurve())) {
                        return null;
                    }
                    v = new Ed25519Verifier(okp.getDecodedX());
                }
                default -> {
                    return null;
                }
            }
            return new Key(kid, alg, kty, curve, v);
        }

        /**
         * jwt_verify_lib's X.509 form of a JWKS (Google's service account keys): an object whose every member is a
         * PEM certificate (one {@code BEGIN CERTIFICATE} block ending in a newline) named by a non-empty {@code kid};
         * each certificate's RSA key is a key of that {@code kid}. Another object, or a certificate that does not
         * parse or holds another key, leaves none.
         */
        private static Key[] x509Keys(Map<String, Object> set) {
            String begin = "-----BEGIN CERTIFICATE-----\n";
            String end = "\n-----END CERTIFICATE-----\n";
            List<Key> out = new ArrayList<>();
            try {
                java.security.cert.CertificateFactory x509 = java.security.cert.CertificateFactory.getInstance("X.509");
                for (Map.Entry<String, Object> e : set.entrySet()) {
                    if (e.getKey().isEmpty() || !(e.getValue() instanceof String pem) || !pem.startsWith(begin)
                            || !pem.endsWith(end)) {
                        return new Key[0];
                    }
                    var cert = x509.generateCertificate(new java.io.ByteArrayInputStream(
                            pem.getBytes(StandardCharsets.US_ASCII)));
                    if (!(cert.getPublicKey() instanceof java.security.interfaces.RSAPublicKey rsa)) {
                        return new Key[0];
                    }
                    out.add(new Key(e.getKey(), null, "RSA", null, new RSASSAVerifier(rsa)));
                }
            } catch (java.security.GeneralSecurityException | RuntimeException e) {
                return new Key[0];
            }
            return out.toArray(Key[]::new);
        }

        /** The curve of an {@code ES*} algorithm, as jwt_verify_lib pairs them; null for another. */
        private static String ecCurve(String alg) {
            return switch (alg) {
                case "ES256" -> "P-256";
                case "ES384" -> "P-384";
                case "ES512" -> "P-521";
                default -> null;
            };
        }

        /**
         * jwt_verify_lib's key choice (an empty {@code kid} or {@code alg} counting as none): a key whose {@code kid}
         * differs from the token's (both set) or whose {@code alg} differs from the token's is skipped; the token passes
         * when one of the others of its family verifies its signature.
         */
        Status verifySignature(Jwt jwt) {
            Key[] keys = this.keys;
            if (remote != null) {
                Fetched f = fetched;
                if (f == null || f.keys == null) {
                    return Status.JWKS_FETCH_FAIL; // as Envoy's when its fetch failed (or, here, never ran)
                }
                keys = f.keys;
            }
            if (keys.length == 0) {
                return Status.JWKS_NO_VALID_KEYS;
            }
            boolean matched = false;
            for (Key k : keys) {
                if (jwt.kid != null && k.kid != null && !k.kid.equals(jwt.kid)
                        || k.alg != null && !k.alg.equals(jwt.alg)) {
                    continue;
                }
                matched = true;
                if (k.fits(jwt.alg) && k.verifies(jwt)) {
                    return Status.OK;
                }
            }
            return matched ? Status.JWT_VERIFICATION_FAIL : Status.JWKS_KID_ALG_MISMATCH;
        }

        /**
         * A token of this provider passed: its payload goes to {@code forward_payload_header}, its claims to their
         * headers, into the metadata under {@code payload_in_metadata}; and unless {@code forward}, its header goes.
         */
        void accepted(Context ctx, Token token, Jwt jwt) {
            if (!config.forwardPayloadHeader().isEmpty()) {
                String payload = jwt.payloadBase64;
                if (config.padForwardPayloadHeader()) {
                    payload = payload + "===".substring(0, (4 - payload.length() % 4) % 4);
                }
                ctx.headers.add(config.forwardPayloadHeader(), payload);
            }
            for (JwtAuthentication.ClaimToHeader c : config.claimToHeaders()) {
                String v = claimString(claim(jwt.payload, c.claimName()));
                if (v != null && !v.isEmpty()) {
                    ctx.headers.add(c.headerName(), v);
                }
            }
            if (!config.forward() && token.location.header != null) {
                ctx.headers.remove(token.location.header);
            } else if (!config.forward() && token.location.param != null) {
                // as Envoy's, the parameter leaves the path; a token in a cookie stays where it is
                if (ctx.tokenParameters == null) {
                    ctx.tokenParameters = new HashSet<>();
                }
                ctx.tokenParameters.add(token.location.param);
            }
            if (!config.payloadInMetadata().isEmpty()) {
                if (ctx.payloads == null) {
                    ctx.payloads = new LinkedHashMap<>();
                }
                ctx.payloads.put(config.payloadInMetadata(), normalized(jwt.payload));
            }
        }

        /** The payload as the metadata keeps it: the space-delimited claims' strings split into lists. */
        private Map<String, Object> normalized(Map<String, Object> payload) {
            if (spaceDelimited.isEmpty()) {
                return payload;
            }
            Map<String, Object> out = new LinkedHashMap<>(payload);
            for (String c : spaceDelimited) {
                if (out.get(c) instanceof String s) {
                    List<String> words = Arrays.stream(s.split(" ")).filter(x -> !x.isEmpty()).toList();
                    if (!words.isEmpty()) { // as Envoy's, a string without words is left a string
                        out.put(c, words);
                    }
                }
            }
            return java.util.Collections.unmodifiableMap(out);
        }
    }

    /** A claim by its dotted path (a nested claim), or null. */
    private static Object claim(Map<String, Object> payload, String path) {
        Object v = payload;
        for (String part : path.split("\\.", -1)) {
            if (!(v instanceof Map<?, ?> m)) {
                return null;
            }
            v = m.get(part);
        }
        return v;
    }

    /**
     * A claim's header value as Envoy writes it: a string, an integer or a decimal number, true or false; a list or an
     * object as its JSON in standard base64 (Envoy since 1.29, its {@code MessageToJsonString}: compact, an object's
     * names in order, a whole number without a fraction).
     */
    private static String claimString(Object v) {
        if (v instanceof String s) {
            return s;
        } else if (v instanceof Boolean b) {
            return b.toString();
        } else if (v instanceof Number n) {
            double d = n.doubleValue();
            if (d >= 0 && d < 0x1p64 && d == Math.floor(d)) {
                return n instanceof Long || n instanceof Integer ? n.toString()
                        : new java.math.BigDecimal(d).toBigInteger().toString();
            }
            return String.format(java.util.Locale.ROOT, "%.6f", d);
        } else if (v instanceof List<?> || v instanceof Map<?, ?>) {
            StringBuilder json = new StringBuilder();
            writeJson(json, v);
            return java.util.Base64.getEncoder().encodeToString(json.toString().getBytes(StandardCharsets.UTF_8));
        }
        return null;
    }

    /** {@code v}, a claim's value, as compact JSON: an object's names sorted, a whole number without a fraction. */
    private static void writeJson(StringBuilder out, Object v) {
        if (v instanceof Map<?, ?> m) {
            out.append('{');
            var sorted = new java.util.TreeMap<String, Object>();
            m.forEach((k, x) -> sorted.put(String.valueOf(k), x));
            boolean first = true;
            for (var e : sorted.entrySet()) {
                out.append(first ? "" : ",");
                first = false;
                writeJson(out, e.getKey());
                out.append(':');
                writeJson(out, e.getValue());
            }
            out.append('}');
        } else if (v instanceof List<?> l) {
            out.append('[');
            for (int i = 0; i < l.size(); i++) {
                out.append(i == 0 ? "" : ",");
                writeJson(out, l.get(i));
            }
            out.append(']');
        } else if (v instanceof String s) {
            out.append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    case '\n' -> out.append("\\n");
                    case '\r' -> out.append("\\r");
                    case '\t' -> out.append("\\t");
                    case '\b' -> out.append("\\b");
                    case '\f' -> out.append("\\f");
                    default -> out.append(c < 0x20 ? String.format("\\u%04x", (int) c) : String.valueOf(c));
                }
            }
            out.append('"');
        } else if (v instanceof Number n) {
            double d = n.doubleValue();
            out.append(n instanceof Long || n instanceof Integer ? n.toString()
                    : d == Math.rint(d) && Math.abs(d) < 0x1p53 ? Long.toString((long) d) : Double.toString(d));
        } else {
            out.append(v == null ? "null" : v.toString()); // true, false
        }
    }

    /**
     * An HMAC key's verifier, as jwt_verify_lib's: the token's {@code HS*} over the signing input with the secret,
     * compared in constant time. A secret of any length verifies (Nimbus's {@code MACVerifier} takes none under 256
     * bits, so a JWKS that Envoy reads would have verified nothing).
     */
    private static final class HmacVerifier implements JWSVerifier {
        private final byte[] secret;
        private final com.nimbusds.jose.jca.JCAContext jca = new com.nimbusds.jose.jca.JCAContext();

        HmacVerifier(byte[] secret) {
            this.secret = secret.clone();
        }

        @Override
        public boolean verify(JWSHeader header, byte[] signingInput, Base64URL signature) throws JOSEException {
            String name = switch (header.getAlgorithm().getName()) {
                case "HS256" -> "HmacSHA256";
                case "HS384" -> "HmacSHA384";
                case "HS512" -> "HmacSHA512";
                default -> null;
            };
            if (name == null || secret.length == 0) {
                return false;
            }
            try {
                javax.crypto.Mac mac = javax.crypto.Mac.getInstance(name);
                mac.init(new javax.crypto.spec.SecretKeySpec(secret, name));
                return java.security.MessageDigest.isEqual(mac.doFinal(signingInput), signature.decode());
            } catch (java.security.GeneralSecurityException e) {
                throw new JOSEException(e.getMessage(), e);
            }
        }

        @Override
        public Set<JWSAlgorithm> supportedJWSAlgorithms() {
            return Set.of(JWSAlgorithm.HS256, JWSAlgorithm.HS384, JWSAlgorithm.HS512);
        }

        @Override
        public com.nimbusds.jose.jca.JCAContext getJCAContext() {
            return jca;
        }
    }

    /**
     * An Ed25519 key's verifier, through the JDK's own EdDSA (Nimbus's {@code Ed25519Verifier} needs Tink, which
     * Inmesh does not carry): the token's {@code EdDSA} signature over the signing input with the raw 32-byte public
     * key, as jwt_verify_lib verifies it.
     */
    private static final class Ed25519Verifier implements JWSVerifier {
        /** The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), before its 32 raw bytes. */
        private static final byte[] SPKI_PREFIX = java.util.HexFormat.of().parseHex("302a300506032b6570032100");

        private final java.security.PublicKey key;
        private final com.nimbusds.jose.jca.JCAContext jca = new com.nimbusds.jose.jca.JCAContext();

        Ed25519Verifier(byte[] x) throws JOSEException {
            if (x.length != 32) {
                throw new JOSEException("an Ed25519 key is 32 bytes, not " + x.length);
            }
            byte[] spki = Arrays.copyOf(SPKI_PREFIX, SPKI_PREFIX.length + x.length);
            System.arraycopy(x, 0, spki, SPKI_PREFIX.length, x.length);
            try {
                this.key = java.security.KeyFactory.getInstance("Ed25519")
                        .generatePublic(new java.security.spec.X509EncodedKeySpec(spki));
            } catch (java.security.GeneralSecurityException e) {
                throw new JOSEException(e.getMessage(), e);
            }
        }

        @Override
        public boolean verify(JWSHeader header, byte[] signingInput, Base64URL signature) throws JOSEException {
            try {
                java.security.Signature s = java.security.Signature.getInstance("Ed25519");
                s.initVerify(key);
                s.update(signingInput);
                return s.verify(signature.decode());
            } catch (java.security.GeneralSecurityException e) {
                return false; // a signature of the wrong length or form verifies nothing
            }
        }

        @Override
        public Set<JWSAlgorithm> supportedJWSAlgorithms() {
            return Set.of(JWSAlgorithm.EdDSA);
        }

        @Override
        public com.nimbusds.jose.jca.JCAContext getJCAContext() {
            return jca;
        }
    }

    /** One key of a provider's JWKS and its verifier (null: it verifies nothing). */
    private record Key(String kid, String alg, String kty, Curve curve, JWSVerifier verifier) {
        /** Whether the key's family can verify a token of this algorithm (an EC key: of its curve's). */
        boolean fits(String tokenAlg) {
            return switch (kty) {
                case "RSA" -> tokenAlg.startsWith("RS") || tokenAlg.startsWith("PS");
                case "EC" -> tokenAlg.equals("ES256") && Curve.P_256.equals(curve)
                        || tokenAlg.equals("ES384") && Curve.P_384.equals(curve)
                        || tokenAlg.equals("ES512") && Curve.P_521.equals(curve);
                case "oct" -> tokenAlg.startsWith("HS");
                case "OKP" -> tokenAlg.equals("EdDSA");
                default -> false;
            };
        }

        /** Whether the key verifies the token's signature; a key without a verifier verifies none. */
        boolean verifies(Jwt jwt) {
            try {
                return verifier != null && verifier.verify(jwt.header, jwt.signingInput, jwt.signature);
            } catch (JOSEException | RuntimeException e) {
                return false;
            }
        }
    }

    /** A token, parsed: its header, claims and signature, as jwt_verify_lib reads them. */
    private static final class Jwt {
        JWSHeader header;
        String alg;
        String kid;
        Map<String, Object> payload;
        String payloadBase64;
        String iss = "";
        List<String> aud = List.of();
        Long exp;
        Long nbf;
        byte[] signingInput;
        Base64URL signature;

        /**
         * jwt_verify_lib's parse, in its order: exactly two dots and three non-empty sections, the header (base64url,
         * a JSON object, a string {@code alg} it implements, a string {@code kid} if any), the payload (base64url, a
         * JSON object, string {@code iss} and {@code sub}, {@code iat}, {@code nbf} and {@code exp} numbers from 0 to
         * 2^64, a string {@code jti}, {@code aud} a string or a list of strings), then the signature (base64url).
         */
        Status parse(String token) {
            int a = token.indexOf('.');
            int b = a < 0 ? -1 : token.indexOf('.', a + 1);
            if (a <= 0 || b < 0 || b == a + 1 || b == token.length() - 1 || token.indexOf('.', b + 1) >= 0) {
                return Status.JWT_BAD_FORMAT;
            }
            String h = token.substring(0, a);
            String p = token.substring(a + 1, b);
            String sig = token.substring(b + 1);
            if (!base64Url(h)) {
                return Status.JWT_HEADER_BAD_BASE64;
            }
            Map<String, Object> headerJson = json(h);
            if (headerJson == null) {
                return Status.JWT_HEADER_BAD_JSON;
            }
            if (!(headerJson.get("alg") instanceof String algorithm)) {
                return Status.JWT_HEADER_BAD_ALG;
            }
            if (!ALGORITHMS.contains(algorithm)) {
                return Status.JWT_HEADER_NOT_IMPLEMENTED_ALG;
            }
            Object k = headerJson.get("kid");
            if (headerJson.containsKey("kid") && !(k instanceof String)) {
                return Status.JWT_HEADER_BAD_KID;
            }
            // the verifiers get a header of the algorithm alone: jwt_verify_lib reads nothing else of it (no typ, no
            // crit), where Nimbus would refuse a header with other members of the wrong type or a crit it lacks
            header = new JWSHeader(JWSAlgorithm.parse(algorithm));
            alg = algorithm;
            kid = k == null || ((String) k).isEmpty() ? null : (String) k; // an empty kid names no key
            if (!base64Url(p)) {
                return Status.JWT_PAYLOAD_BAD_BASE64;
            }
            payload = json(p);
            if (payload == null) {
                return Status.JWT_PAYLOAD_BAD_JSON;
            }
            Status claims = claimTypes(payload);
            if (claims != null) {
                return claims;
            }
            Object i = payload.get("iss");
            Object u = payload.get("aud");
            Object e = payload.get("exp");
            Object n = payload.get("nbf");
            iss = i == null ? "" : (String) i;
            exp = e == null ? null : ((Number) e).longValue();
            nbf = n == null ? null : ((Number) n).longValue();
            if (u instanceof String one) {
                aud = List.of(one);
            } else if (u instanceof List<?> many) {
                List<String> out = new ArrayList<>(many.size());
                for (Object x : many) {
                    if (!(x instanceof String s)) {
                        return Status.JWT_PAYLOAD_AUD_NOT_STRING;
                    }
                    out.add(s);
                }
                aud = out;
            } else if (payload.containsKey("aud")) {
                return Status.JWT_PAYLOAD_AUD_NOT_STRING;
            }
            if (!base64Url(sig)) {
                return Status.JWT_SIGNATURE_BAD_BASE64;
            }
            payloadBase64 = p;
            signature = new Base64URL(sig);
            signingInput = token.substring(0, b).getBytes(StandardCharsets.US_ASCII);
            return Status.OK;
        }

        /** Whether a claim is there (JSON {@code null} included) and not of this type. */
        private static boolean wrongType(Map<String, Object> payload, String claim, Class<?> type) {
            return payload.containsKey(claim) && !type.isInstance(payload.get(claim));
        }

        /**
         * jwt_verify_lib's checks of the registered claims' types, in its order: string {@code iss} and {@code sub},
         * {@code iat}, {@code nbf} and {@code exp} numbers from 0 below 2^64, a string {@code jti}; null when they hold.
         */
        private static Status claimTypes(Map<String, Object> payload) {
            if (wrongType(payload, "iss", String.class)) {
                return Status.JWT_PAYLOAD_ISS_NOT_STRING;
            }
            if (wrongType(payload, "sub", String.class)) {
                return Status.JWT_PAYLOAD_SUB_NOT_STRING;
            }
            String[] times = {"iat", "nbf", "exp"};
            Status[] notInteger = {Status.JWT_PAYLOAD_IAT_NOT_INTEGER, Status.JWT_PAYLOAD_NBF_NOT_INTEGER,
                    Status.JWT_PAYLOAD_EXP_NOT_INTEGER};
            Status[] outOfRange = {Status.JWT_PAYLOAD_IAT_OUT_OF_RANGE, Status.JWT_PAYLOAD_NBF_OUT_OF_RANGE,
                    Status.JWT_PAYLOAD_EXP_OUT_OF_RANGE};
            for (int t = 0; t < times.length; t++) {
                if (wrongType(payload, times[t], Number.class)) {
                    return notInteger[t];
                }
                if (payload.get(times[t]) instanceof Number n && (n.doubleValue() < 0 || n.doubleValue() >= 0x1p64)) {
                    return outOfRange[t];
                }
            }
            return wrongType(payload, "jti", String.class) ? Status.JWT_PAYLOAD_JTI_NOT_STRING : null;
        }

        /** A base64url JSON object, or null when it is not one. */
        private static Map<String, Object> json(String part) {
            try {
                return JSONObjectUtils.parse(new Base64URL(part).decodeToString());
            } catch (java.text.ParseException | RuntimeException e) {
                return null;
            }
        }

        /** Whether a section is base64url as jwt_verify_lib decodes it: its alphabet, padded or not. */
        private static boolean base64Url(String s) {
            int end = s.length();
            while (end > 0 && s.length() - end < 2 && s.charAt(end - 1) == '=') {
                end--;
            }
            if (end == 0 || end % 4 == 1 || end < s.length() && s.length() % 4 != 0) {
                return false;
            }
            for (int i = 0; i < end; i++) {
                char c = s.charAt(i);
                if (!(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_')) {
                    return false;
                }
            }
            return true;
        }
    }

    /** A token found in a request, and where. */
    private record Token(String value, Location location) {}

    /**
     * A place tokens are read from: a header (with its value prefix), a query parameter or a cookie, and the issuers
     * of the providers that name it (a provider without an issuer: any).
     */
    private static final class Location {
        final String header;
        final String prefix;
        /** The query parameter's name; null for a header or a cookie. */
        final String param;
        final Set<String> issuers = new HashSet<>();
        boolean anyIssuer;

        Location(String header, String prefix, String param) {
            this.header = header;
            this.prefix = prefix;
            this.param = param;
        }

        void add(String issuer) {
            if (issuer.isEmpty()) {
                anyIssuer = true;
            } else {
                issuers.add(issuer);
            }
        }

        boolean allows(String iss) {
            return anyIssuer || issuers.contains(iss);
        }
    }

    /**
     * Envoy's extractor for a set of providers: their header locations (in the order of name and prefix), query
     * parameters and cookies (in name order); for a provider that names none, {@code Authorization: Bearer} and
     * {@code access_token}. It also knows the headers a verified token writes, which a request's own copies of are
     * removed before the verification.
     */
    private static final class Extractor {
        private final Location[] headers;
        private final String[] params;
        private final Location[] paramLocations;
        private final String[] cookies;
        private final Location[] cookieLocations;
        private final String[] sanitized;

        Extractor(List<Provider> providers) {
            TreeMap<String, Location> hs = new TreeMap<>();
            TreeMap<String, Location> ps = new TreeMap<>();
            TreeMap<String, Location> cs = new TreeMap<>();
            List<String> clean = new ArrayList<>();
            for (Provider p : providers) {
                JwtAuthentication.JwtProvider c = p.config;
                for (JwtAuthentication.JwtHeader h : c.fromHeaders()) {
                    String n = h.name().toLowerCase(java.util.Locale.ROOT);
                    hs.computeIfAbsent(n + h.valuePrefix(), key -> new Location(n, h.valuePrefix(), null))
                            .add(c.issuer());
                }
                for (String q : c.fromParams()) {
                    ps.computeIfAbsent(q, key -> new Location(null, null, q)).add(c.issuer());
                }
                for (String k : c.fromCookies()) {
                    cs.computeIfAbsent(k, key -> new Location(null, null, null)).add(c.issuer());
                }
                if (c.fromHeaders().isEmpty() && c.fromParams().isEmpty() && c.fromCookies().isEmpty()) {
                    hs.computeIfAbsent("authorizationBearer ", key -> new Location("authorization", "Bearer ", null))
                            .add(c.issuer());
                    ps.computeIfAbsent("access_token", key -> new Location(null, null, "access_token"))
                            .add(c.issuer());
                }
                if (!c.forwardPayloadHeader().isEmpty()) {
                    clean.add(c.forwardPayloadHeader());
                }
                for (JwtAuthentication.ClaimToHeader h : c.claimToHeaders()) {
                    clean.add(h.headerName());
                }
            }
            this.headers = hs.values().toArray(Location[]::new);
            this.params = ps.keySet().toArray(String[]::new);
            this.paramLocations = ps.values().toArray(Location[]::new);
            this.cookies = cs.keySet().toArray(String[]::new);
            this.cookieLocations = cs.values().toArray(Location[]::new);
            this.sanitized = clean.toArray(String[]::new);
        }

        void sanitize(MutableHeaders h) {
            for (String s : sanitized) {
                h.remove(s);
            }
        }

        List<Token> extract(MutableHeaders h, String query) {
            List<Token> out = new ArrayList<>(1);
            for (Location l : headers) {
                // a header sent on several lines is one value, its lines joined by commas, as Envoy reads it
                String v = h.joined(l.header);
                if (v == null) {
                    continue;
                }
                if (!l.prefix.isEmpty()) {
                    int at = v.indexOf(l.prefix);
                    if (at < 0) {
                        continue;
                    }
                    v = afterPrefix(v, at + l.prefix.length());
                }
                out.add(new Token(v, l));
            }
            for (int i = 0; query != null && i < params.length; i++) {
                String v = firstParam(query, params[i]);
                if (v != null) {
                    out.add(new Token(v, paramLocations[i]));
                }
            }
            for (int i = 0; i < cookies.length; i++) {
                String v = HashPolicies.cookie(h.getAll("cookie"), cookies[i]);
                if (v != null) {
                    out.add(new Token(v, cookieLocations[i]));
                }
            }
            return out;
        }

        /**
         * The token after a value prefix, as Envoy's extractor cuts it: the run of base64url characters and dots that
         * begins first after the prefix (what follows it, a comma and another value or a quote, is not the token's);
         * the whole value when none begins there.
         */
        private static String afterPrefix(String v, int after) {
            int start = after;
            while (start < v.length() && !tokenChar(v.charAt(start))) {
                start++;
            }
            if (start == v.length()) {
                return v;
            }
            int end = start;
            while (end < v.length() && tokenChar(v.charAt(end))) {
                end++;
            }
            return v.substring(start, end);
        }

        private static boolean tokenChar(char c) {
            return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
                    || c == '.';
        }

        private static String firstParam(String query, String name) {
            List<String> values = parameters(query).get(name);
            return values == null ? null : values.get(0);
        }
    }

    /**
     * A query's parameters as Envoy's {@code parseAndDecodeQueryString} reads them: split at {@code &} (an empty last
     * piece is none), each name and value percent-decoded ({@code +} stays a {@code +}), a name without {@code =}
     * valued {@code ""}; by name, each name's values in order.
     */
    private static TreeMap<String, List<String>> parameters(String query) {
        return QueryParameters.parse(query, QueryParameters::decode);
    }

    /**
     * A path without some query parameters, as Envoy's JWT filter takes a verified token's parameter out of
     * {@code :path} when its provider does not {@code forward} it: the query is rebuilt from the parameters left, as
     * Envoy's {@code QueryParamsMulti::replaceQueryString} writes them (by name, each {@code name=value}
     * as decoded, joined by {@code &}), and dropped when none is left. A path without the parameters is returned as
     * it is.
     */
    public static String withoutParameters(String path, Set<String> names) {
        int q = path == null ? -1 : path.indexOf('?');
        if (q < 0 || names.isEmpty()) {
            return path;
        }
        TreeMap<String, List<String>> params = parameters(path.substring(q + 1));
        if (!params.keySet().removeAll(names)) {
            return path;
        }
        return QueryParameters.path(path, params);
    }
}
