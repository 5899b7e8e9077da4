package dev.inmesh.runtime.router;

import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.HttpFilter;
import dev.inmesh.api.config.route.LuaPerRoute;
import dev.inmesh.runtime.accesslog.TlsDetails;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.luaj.vm2.Globals;
import org.luaj.vm2.LoadState;
import org.luaj.vm2.Lua;
import org.luaj.vm2.LuaClosure;
import org.luaj.vm2.LuaError;
import org.luaj.vm2.LuaTable;
import org.luaj.vm2.LuaValue;
import org.luaj.vm2.Prototype;
import org.luaj.vm2.Varargs;
import org.luaj.vm2.compiler.LuaC;
import org.luaj.vm2.lib.Bit32Lib;
import org.luaj.vm2.lib.CoroutineLib;
import org.luaj.vm2.lib.PackageLib;
import org.luaj.vm2.lib.StringLib;
import org.luaj.vm2.lib.TableLib;
import org.luaj.vm2.lib.VarArgFunction;
import org.luaj.vm2.lib.jse.JseBaseLib;
import org.luaj.vm2.lib.jse.JseMathLib;
import org.luaj.vm2.lib.jse.JseOsLib;

/**
 * Envoy's Lua HTTP filter ({@code envoy.filters.http.lua}) with LuaJ: each script is compiled once per config, and
 * loaded (run once, defining its {@code envoy_on_request} and {@code envoy_on_response}) once per thread that runs
 * it, as Envoy keeps one Lua state per worker: LuaJ's globals are not thread-safe, and a script's globals are then
 * per event loop, as they are per worker in Envoy. A script runs to its end on the event loop: nothing it can call
 * waits (no {@code httpCall}), so running it whole is what Envoy's coroutine does. Envoy's {@code body()} suspends the
 * script until the body is whole; here the body is held whole before the script runs instead, for requests whose
 * route runs a script that may call it ({@link Stream#readsBody}): one whose compiled code names the string
 * {@code "body"} anywhere (a method call {@code handle:body()} does; so does any use of that string, which only
 * holds a body needlessly), and for their responses when it names it outside its {@code envoy_on_request}
 * ({@link Stream#readsResponseBody}). A script that reaches {@code body} by a name it computes is not seen to, and
 * its {@code body()} raises an error.
 *
 * <p>The API is Envoy's subset: {@code headers()} ({@code get}, {@code getAtIndex}, {@code getNumValues},
 * {@code add}, {@code replace}, {@code remove}, {@code pairs}, {@code setHttp1ReasonPhrase} ignored),
 * {@code respond(headers, body)} on the request path, {@code logTrace} to {@code logCritical},
 * {@code streamInfo()} ({@code protocol}, the downstream addresses, {@code requestedServerName},
 * {@code routeName}, {@code virtualClusterName}, {@code dynamicMetadata()} kept for the request,
 * {@code downstreamSslConnection()}), {@code connection()} ({@code ssl()}), {@code metadata()} (empty: route metadata
 * is not read; so are {@code route()}'s and {@code virtualHost()}'s), {@code clearRouteCache()}, {@code timestamp()},
 * {@code timestampString()}, {@code base64Escape} and {@code body(always_wrap_body)} ({@link Body}: a buffer object
 * with {@code length}, {@code getBytes} and {@code setBytes}). What it has not ({@code bodyChunks}, {@code trailers},
 * {@code httpCall}, signatures, ...) raises a script error saying so. A script error is what Envoy
 * makes of one: logged ({@code script log: ...} at error) and the request goes on as the script left it.
 */
public final class LuaFilter {
    /** The response code details of a script's {@code respond()}, as Envoy's. */
    public static final String DETAILS = "lua_response";
    private static final System.Logger LOG = System.getLogger(LuaFilter.class.getName());

    private final String name;
    /** The script that runs where no route says otherwise, or null for none. */
    private final Script script;
    /** Its {@code source_codes}, which a route's {@code LuaPerRoute} may name. */
    private final Map<String, Script> named;
    /** The scripts routes' {@code LuaPerRoute}s carry, compiled once each for this config, by source. */
    private final Map<String, Script> routeScripts = new ConcurrentHashMap<>();
    private final boolean clearRouteCache;

    private LuaFilter(String name, Script script, Map<String, Script> named, boolean clearRouteCache) {
        this.name = name;
        this.script = script;
        this.named = named;
        this.clearRouteCache = clearRouteCache;
    }

    /** The Lua filters of a connection manager, in chain order; compiled once. */
    public static List<LuaFilter> compile(HttpConnectionManager hcm) {
        if (hcm == null) {
            return List.of();
        }
        List<LuaFilter> out = new ArrayList<>();
        for (HttpFilter f : hcm.luaFilters()) {
            Map<String, Script> named = new HashMap<>();
            f.lua().sourceCodes().forEach((n, source) -> named.put(n, script(source, n, f.name(),
                    "source_codes[" + n + "]")));
            String source = f.lua().defaultSourceCode();
            out.add(new LuaFilter(f.name(), source == null ? null : script(source, f.name(), f.name(),
                    "default_source_code"), Map.copyOf(named), f.lua().clearRouteCache()));
        }
        return List.copyOf(out);
    }

    /**
     * Compiles the scripts a virtual host's or route's {@code LuaPerRoute}s ({@code overrides}, by filter name) give,
     * when the route table is compiled, so that one that does not compile is refused with the table (an xDS one was
     * refused when it was read) rather than on the request that would run it.
     *
     * @param where the virtual host or route, as the error names it
     * @throws IllegalArgumentException naming the filter, {@code where} and the Lua compiler's message
     */
    public static void compilePerRoute(String where, Map<String, LuaPerRoute> overrides) {
        overrides.forEach((filter, p) -> {
            if (p.sourceCode() != null) {
                script(p.sourceCode(), filter, filter, where + "'s LuaPerRoute source_code");
            }
        });
    }

    /**
     * A script of filter {@code filter} ({@code field}: where its config gives it), compiled as {@code chunkName}. Its
     * chunk is not run here (the xDS parser ran it once, {@link #refusal}): each snapshot compiles its scripts.
     *
     * @throws IllegalArgumentException when it does not compile or calls a handle method Inmesh does not run, naming
     *     the filter, the field and why: a config built in code gets what the xDS parser would have said of it
     */
    private static Script script(String source, String chunkName, String filter, String field) {
        String refusal = compileRefusal(source, chunkName);
        if (refusal != null) {
            throw new IllegalArgumentException("Lua filter " + filter + ": " + field + " " + refusal);
        }
        return new Script(compiled(source, chunkName));
    }

    /**
     * The script that runs for a request of {@code route}: as Envoy's, the route's {@code LuaPerRoute} for this
     * filter, else its virtual host's, disables the filter, names one of its {@code source_codes} (none when it has
     * no such name) or gives a script; without one the filter's default. A redirect's or direct response's route
     * chooses as a forwarding one does; a request no route matched runs the default. Null: no script runs.
     */
    private Script scriptFor(RouteResult route) {
        LuaPerRoute p = null;
        dev.inmesh.api.config.route.Route r = RouteResult.routeOf(route);
        if (r != null) {
            p = r.lua().get(name);
            if (p == null && route.virtualHost() != null) {
                p = route.virtualHost().lua().get(name);
            }
        }
        if (p == null) {
            return script;
        }
        if (p.disabled()) {
            return null;
        }
        if (p.name() != null) {
            return named.get(p.name());
        }
        return routeScripts.computeIfAbsent(p.sourceCode(), s -> script(s, name, name, "LuaPerRoute source_code"));
    }

    /**
     * The handle methods of Envoy's Lua API that Inmesh's filter does not run. A script that calls one is refused
     * when it is read ({@link #refusal}), as it would otherwise go on without what the call does: a request an
     * {@code httpCall} to an authorizer should have refused would pass.
     */
    private static final List<String> NOT_RUN = List.of("httpCall", "bodyChunks", "trailers", "verifySignature",
            "importPublicKey");

    /**
     * Why Inmesh refuses a script, or null when it takes it: it {@code does not compile: } (the Lua compiler's
     * message), it {@code calls NAME(), ...} a handle method of {@link #NOT_RUN}, or it {@code fails when loaded: },
     * the error its chunk raised when run, as Envoy runs a script's chunk when it reads its configuration and refuses
     * one that fails. Taking such a script would leave its functions undefined: a script that refuses requests would
     * let them all through. Its chunk runs once here, in a sandbox of its own; the parser and the route tables'
     * compile ask this, not each snapshot's compile ({@link #compileRefusal}).
     */
    public static String refusal(String source, String chunkName) {
        String refusal = compileRefusal(source, chunkName);
        if (refusal != null) {
            return refusal;
        }
        try {
            new LuaClosure(compiled(source, chunkName), sandbox()).call();
            return null;
        } catch (LuaError | StackOverflowError | OutOfMemoryError e) {
            return "fails when loaded: " + scriptError(e) + " (the sandbox has no io, no require of a file, and of os "
                    + "only time, clock, date, difftime and getenv)";
        }
    }

    /** {@link #refusal} without running the chunk: it does not compile, or it calls a method Inmesh does not run. */
    private static String compileRefusal(String source, String chunkName) {
        Prototype p;
        try {
            p = compiled(source, chunkName);
        } catch (LuaError e) {
            return "does not compile: " + e.getMessage();
        }
        String call = calledNotRun(p);
        return call == null ? null : "calls " + call + "(), which Inmesh's Lua filter does not run";
    }

    /**
     * The first method of {@link #NOT_RUN} that {@code p} or a function in it calls with the method syntax
     * ({@code h:httpCall(...)}), or null; a table's field of that name read otherwise ({@code cfg.trailers}) is not
     * one.
     */
    private static String calledNotRun(Prototype p) {
        for (int i : p.code) {
            if (Lua.GET_OPCODE(i) == Lua.OP_SELF && Lua.ISK(Lua.GETARG_C(i))) {
                LuaValue key = p.k[Lua.INDEXK(Lua.GETARG_C(i))];
                if (key.isstring() && NOT_RUN.contains(key.tojstring())) {
                    return key.tojstring();
                }
            }
        }
        for (Prototype inner : p.p) {
            String call = calledNotRun(inner);
            if (call != null) {
                return call;
            }
        }
        return null;
    }

    /**
     * The message of an error a script raised: a {@link LuaError}'s, or for the JVM's stack or heap running out (what
     * Lua reports as {@code stack overflow} and {@code not enough memory}, script errors like any other) those words.
     */
    static String scriptError(Throwable t) {
        if (t instanceof StackOverflowError) {
            return "stack overflow";
        }
        if (t instanceof OutOfMemoryError) {
            return "not enough memory";
        }
        return t.getMessage();
    }

    /** A script's source text and the name it is compiled under (which the compiler's messages name). */
    private record Source(String text, String chunkName) {}

    /** The most compiled scripts {@link #COMPILED} keeps. */
    private static final int COMPILED_KEPT = 256;

    /**
     * Compiled scripts by source, the least recently used going past {@link #COMPILED_KEPT}: the xDS parser compiles
     * each script to refuse one that does not compile ({@link #refusal}), and each snapshot compiles its
     * connection managers' filters and route tables, also after an update that left the scripts as they were. The
     * compiler is a function of the source alone and a {@link Prototype} is only read once made (each thread runs
     * it in its own globals), so each of those compiles one script once, however many configs carry it.
     */
    private static final Map<Source, Prototype> COMPILED = java.util.Collections.synchronizedMap(
            new java.util.LinkedHashMap<>(16, 0.75f, true) {
                @Override
                protected boolean removeEldestEntry(Map.Entry<Source, Prototype> eldest) {
                    return size() > COMPILED_KEPT;
                }
            });

    /** The script compiled, once while {@link #COMPILED} keeps it; a {@link LuaError} when it does not compile. */
    static Prototype compiled(String source, String chunkName) {
        Source key = new Source(source, chunkName);
        Prototype p = COMPILED.get(key);
        if (p == null) {
            try {
                p = LuaC.instance.compile(new ByteArrayInputStream(source.getBytes(StandardCharsets.UTF_8)),
                        chunkName);
            } catch (java.io.IOException e) {
                throw new LuaError(e.getMessage());
            }
            Prototype raced = COMPILED.putIfAbsent(key, p);
            if (raced != null) {
                p = raced; // another thread compiled it meanwhile: one prototype for all
            }
        }
        return p;
    }

    /** A compiled script and its globals, loaded once on each thread that runs it. */
    private static final class Script {
        private static final LuaValue BODY = LuaValue.valueOf("body");
        private final Prototype prototype;
        private final ThreadLocal<Globals> globals = ThreadLocal.withInitial(this::load);
        /** Whether it may call {@code body()}: its code, or a function's in it, has the constant {@code "body"}. */
        private final boolean readsBody;
        /**
         * Whether its {@code envoy_on_response} may call {@code body()}: the constant {@code "body"} is in its code
         * outside the function the chunk defines as {@code envoy_on_request} (which runs only on the request), so in
         * {@code envoy_on_response} or in code either may call.
         */
        private final boolean readsResponseBody;

        Script(Prototype prototype) {
            this.prototype = prototype;
            this.readsBody = names(prototype, BODY, null);
            this.readsResponseBody = names(prototype, BODY, definedGlobal(prototype, "envoy_on_request"));
        }

        /** Whether {@code p}, or a function in it other than {@code except}, has {@code constant}. */
        private static boolean names(Prototype p, LuaValue constant, Prototype except) {
            for (LuaValue k : p.k) {
                if (k.raweq(constant)) {
                    return true;
                }
            }
            for (Prototype inner : p.p) {
                if (inner != except && names(inner, constant, except)) {
                    return true;
                }
            }
            return false;
        }

        /**
         * The function the chunk {@code main} defines as global {@code name} ({@code function name(h) ... end}, or
         * {@code name = function(h) ... end}: a closure made and stored right away), or null when it defines it
         * otherwise (then nothing is left out of {@link #names}).
         */
        private static Prototype definedGlobal(Prototype main, String name) {
            LuaValue key = LuaValue.valueOf(name);
            int[] code = main.code;
            for (int pc = 1; pc < code.length; pc++) {
                int i = code[pc];
                int before = code[pc - 1];
                if (Lua.GET_OPCODE(i) == Lua.OP_SETTABUP && Lua.ISK(Lua.GETARG_B(i))
                        && main.k[Lua.INDEXK(Lua.GETARG_B(i))].raweq(key)
                        && Lua.GET_OPCODE(before) == Lua.OP_CLOSURE && Lua.GETARG_A(before) == Lua.GETARG_C(i)) {
                    return main.p[Lua.GETARG_Bx(before)];
                }
            }
            return null;
        }

        private Globals load() {
            Globals g = sandbox();
            try {
                new LuaClosure(prototype, g).call();
            } catch (LuaError | StackOverflowError | OutOfMemoryError e) {
                scriptLog(System.Logger.Level.ERROR, scriptError(e));
            }
            return g;
        }

        /** The script's global function {@code name} on this thread, or null. */
        LuaValue function(String name) {
            LuaValue f = globals.get().get(name);
            return f.isfunction() ? f : null;
        }
    }

    /**
     * Globals with the libraries a script may use: base (without file loading), package, string, table, math,
     * bit32 and coroutine, and of {@code os} only {@code time}, {@code clock}, {@code date}, {@code difftime} and
     * {@code getenv}: no {@code io}, no {@code luajava}, nothing that reads files or runs programs.
     */
    private static Globals sandbox() {
        Globals g = new Globals();
        g.load(new JseBaseLib());
        g.load(new PackageLib());
        g.load(new Bit32Lib());
        g.load(new TableLib());
        g.load(new StringLib());
        g.load(new CoroutineLib());
        g.load(new JseMathLib());
        g.load(new JseOsLib());
        LuaTable os = new LuaTable();
        LuaValue full = g.get("os");
        for (String n : List.of("time", "clock", "date", "difftime", "getenv")) {
            os.set(n, full.get(n));
        }
        g.set("os", os);
        LuaTable resolution = new LuaTable(); // Envoy's enum for timestamp() and timestampString()
        resolution.set("MILLISECOND", 0);
        resolution.set("MICROSECOND", 1);
        g.set("EnvoyTimestampResolution", resolution);
        g.package_.setLuaPath("");
        for (String n : List.of("dofile", "loadfile", "require")) {
            g.set(n, LuaValue.NIL);
        }
        LuaTable loaders = g.get("package").get("searchers").checktable();
        while (loaders.length() > 1) {
            loaders.remove(loaders.length()); // the preload searcher only: no module from a file
        }
        g.get("package").set("loaded", new LuaTable());
        LoadState.install(g);
        LuaC.install(g);
        LuaValue next = g.get("next");
        // pairs() honours __pairs, as LuaJIT's (Lua 5.2 compatible) does: a header map iterates its entries
        g.set("pairs", new VarArgFunction() {
            @Override
            public Varargs invoke(Varargs args) {
                LuaValue t = args.arg1();
                LuaValue meta = t.getmetatable();
                LuaValue p = meta == null ? NIL : meta.get("__pairs");
                if (!p.isnil()) {
                    return p.invoke(t);
                }
                return varargsOf(next, t.checktable(), NIL);
            }
        });
        return g;
    }

    private static void scriptLog(System.Logger.Level level, String message) {
        LOG.log(level, "script log: {0}", message);
    }

    /** A request's or a response's head as a script sees it: its headers and pseudo-headers. */
    public interface Head {
        MultiMap headers();

        /** A pseudo-header's value ({@code :path}, {@code :status}...), or null. */
        String pseudo(String name);

        /** Sets a pseudo-header; false when this head has none such that may change. */
        boolean setPseudo(String name, String value);
    }

    /** A response's head: its headers, and its {@code :status}, which a script reads but does not change. */
    public static Head responseHead(MultiMap headers, java.util.function.IntSupplier status) {
        return new Head() {
            @Override
            public MultiMap headers() {
                return headers;
            }

            @Override
            public String pseudo(String name) {
                return name.equals(":status") ? Integer.toString(status.getAsInt()) : null;
            }

            @Override
            public boolean setPseudo(String name, String value) {
                return false;
            }
        };
    }

    /**
     * What {@code streamInfo()} and {@code connection()} tell of the request.
     *
     * @param downstreamDirectLocalAddress the address the connection physically arrived at (null: the downstream
     *     local address)
     * @param downstreamTls the TLS the request's connection came over, or null for none
     * @param peerCertificateValidated whether that TLS verified the client's certificate
     */
    public record Info(String protocol, String downstreamLocalAddress, String downstreamDirectRemoteAddress,
                       String downstreamRemoteAddress, String requestedServerName, String routeName,
                       String downstreamDirectLocalAddress, dev.inmesh.runtime.accesslog.TlsDetails downstreamTls,
                       boolean peerCertificateValidated) {
        /** A request over a connection without TLS, physically at its downstream local address. */
        public Info(String protocol, String downstreamLocalAddress, String downstreamDirectRemoteAddress,
                    String downstreamRemoteAddress, String requestedServerName, String routeName) {
            this(protocol, downstreamLocalAddress, downstreamDirectRemoteAddress, downstreamRemoteAddress,
                    requestedServerName, routeName, null, null, false);
        }
    }

    /**
     * A request's or a response's body as {@code body()} gives it to the scripts: held whole before they run (or none
     * to hold), and what the request or response goes on with once a script replaced it ({@code setBytes}).
     */
    public interface Body {
        /** The body as it is now; null for none (a request without a body). */
        Buffer held();

        /** The request goes on with {@code body} instead. */
        void replace(Buffer body);

        /** A body held as {@code body} (null or empty: none), whose replacements go to {@code replaced}. */
        static Body of(Buffer body, java.util.function.Consumer<Buffer> replaced) {
            return new Body() {
                private Buffer now = body;

                @Override
                public Buffer held() {
                    return now == null || now.length() == 0 ? null : now;
                }

                @Override
                public void replace(Buffer b) {
                    now = b;
                    replaced.accept(b);
                }
            };
        }
    }

    /** A script's {@code respond()}: the local reply that answers the request. */
    public record Reply(int status, MultiMap headers, String body) {}

    /**
     * One request's run of its connection manager's Lua filters: the request scripts in chain order, then, on its
     * response, the response scripts of the filters it reached, in reverse order. Not thread-safe: on the request's
     * context.
     */
    public static final class Stream {
        private final List<LuaFilter> filters;
        /** The filters whose request side the request reached (all but those after one that responded). */
        private int reached;
        /** The script each filter runs for the request, chosen by its route (null: none). */
        private final Script[] scripts;
        private boolean reroute;
        /** Dynamic metadata set by the scripts, by filter name. */
        private final Map<String, LuaTable> dynamicMetadata = new HashMap<>();

        public Stream(List<LuaFilter> filters) {
            this.filters = filters == null ? List.of() : filters;
            this.scripts = new Script[this.filters.size()];
        }

        /**
         * Whether the request's body must be held before its scripts run: its {@code route} runs a script of these
         * filters that may call {@code body()} ({@link LuaFilter}).
         */
        public boolean readsBody(RouteResult route) {
            for (LuaFilter f : filters) {
                Script s = f.scriptFor(route);
                if (s != null && s.readsBody) {
                    return true;
                }
            }
            return false;
        }

        /**
         * Whether the response's body must be held before the response scripts run: a script the request's route ran
         * for one of the filters it reached may call {@code body()} in {@code envoy_on_response}
         * ({@link Script#readsResponseBody}). Known once {@link #request} ran.
         */
        public boolean readsResponseBody() {
            for (int i = 0; i < reached; i++) {
                if (scripts[i] != null && scripts[i].readsResponseBody) {
                    return true;
                }
            }
            return false;
        }

        /** {@link #request(Head, Info, RouteResult, Body)} for a request whose body was not held. */
        public Reply request(Head head, Info info, RouteResult route) {
            return request(head, info, route, null);
        }

        /**
         * Runs the request scripts over {@code head}, each filter's as {@code route} chooses it: the reply of one that
         * responded (the filters after it then do not run), or null when the request goes on. {@code body}: the body
         * held for the scripts' {@code body()}, or null when it was not ({@link #readsBody} false).
         */
        public Reply request(Head head, Info info, RouteResult route, Body body) {
            for (int i = 0; i < filters.size(); i++) {
                LuaFilter f = filters.get(i);
                reached = i + 1;
                scripts[i] = f.scriptFor(route);
                Call c = new Call(f, scripts[i], head, info, body);
                c.run("envoy_on_request");
                if (c.reply != null) {
                    reached = i; // as Envoy's local reply: only the filters before it encode it
                    return c.reply;
                }
                // as Envoy's: a changed header clears the route cache where the filter says so, clearRouteCache()
                // whatever it says
                reroute |= c.modified && f.clearRouteCache || c.routeCleared;
            }
            return null;
        }

        /**
         * Whether a request script changed the request's headers where its filter clears the route cache, or called
         * {@code clearRouteCache()}: the route is to be chosen again.
         */
        public boolean reroute() {
            return reroute;
        }

        /** {@link #response(Head, Info, Body)} for a response whose body was not held. */
        public void response(Head head, Info info) {
            response(head, info, null);
        }

        /**
         * Runs the response scripts of the filters the request reached over the response's head; {@code body}: the
         * response's body held for their {@code body()}, or null when it was not ({@link #readsResponseBody} false).
         */
        public void response(Head head, Info info, Body body) {
            for (int i = reached - 1; i >= 0; i--) {
                new Call(filters.get(i), scripts[i], head, info, body, false).run("envoy_on_response");
            }
        }

        /** One script's run: its handle and what it did. */
        private final class Call {
            private final LuaFilter filter;
            private final Script script;
            private final Head head;
            private final Info info;
            private final boolean request;
            /** The request's body held for {@code body()}, or null. */
            private final Body body;
            private boolean modified;
            /** Whether the script called {@code clearRouteCache()} (on the request path: the route is chosen again). */
            private boolean routeCleared;
            private Reply reply;
            private boolean done;

            /** A request script's run. */
            Call(LuaFilter filter, Script script, Head head, Info info, Body body) {
                this(filter, script, head, info, body, true);
            }

            Call(LuaFilter filter, Script script, Head head, Info info, Body body, boolean request) {
                this.filter = filter;
                this.script = script;
                this.head = head;
                this.info = info;
                this.body = body;
                this.request = request;
            }

            void run(String function) {
                LuaValue fn = script == null ? null : script.function(function);
                if (fn == null) {
                    return;
                }
                Handles handles = HANDLES.get();
                Call outer = handles.current;
                handles.current = this;
                try {
                    fn.call(handles.handle);
                } catch (LuaError | StackOverflowError | OutOfMemoryError e) {
                    // as Envoy's: an error ends the script, and the request goes on with what it did before it
                    if (reply == null) {
                        scriptLog(System.Logger.Level.ERROR, scriptError(e));
                    }
                } finally {
                    handles.current = outer;
                    done = true;
                }
            }

            /**
             * {@code body(always_wrap_body)}, as Envoy's: the whole body as a buffer object, nil for a request or
             * response without one unless {@code always_wrap_body} (a boolean, when given) asks for an empty buffer.
             */
            private Varargs body(Varargs a) {
                boolean wrap = a.narg() >= 2 && a.checkboolean(2);
                if (body == null) {
                    throw new LuaError("body() is not supported by Inmesh where the script does not name it: the "
                            + (request ? "request's" : "response's") + " body was not held");
                }
                if (body.held() == null && !wrap) {
                    return LuaValue.NIL;
                }
                LuaTable methods = new LuaTable();
                method(methods, "length", x -> LuaValue.valueOf(length()));
                method(methods, "getBytes", x -> {
                    int index = x.checkint(2);
                    int length = x.checkint(3);
                    if (index < 0 || length < 0 || (long) index + length > length()) {
                        throw new LuaError("getBytes: index and length may not be negative, nor reach past the "
                                + length() + " bytes of the body");
                    }
                    byte[] bytes = body.held().getBytes(index, index + length);
                    return LuaValue.valueOf(bytes);
                });
                method(methods, "setBytes", x -> {
                    byte[] bytes = bytes(x, 2);
                    body.replace(Buffer.buffer(bytes));
                    // as Envoy's buffer wrapper: the content-length is the new body's, which then goes
                    // whole with that length, not chunked
                    head.headers().set("content-length", Integer.toString(bytes.length));
                    head.headers().remove("transfer-encoding");
                    return LuaValue.valueOf(bytes.length);
                });
                LuaTable meta = new LuaTable();
                meta.set("__index", methods);
                LuaTable buffer = new LuaTable();
                buffer.setmetatable(meta);
                return buffer;
            }

            private int length() {
                Buffer b = body.held();
                return b == null ? 0 : b.length();
            }

            private Varargs respond(Varargs a) {
                if (!request) {
                    throw new LuaError("respond not currently supported in the response path");
                }
                LuaTable t = a.checktable(2);
                String body = a.isnil(3) ? null : a.checkjstring(3);
                MultiMap headers = MultiMap.caseInsensitiveMultiMap();
                String status = null;
                for (LuaValue k = t.next(LuaValue.NIL).arg1(); !k.isnil(); k = t.next(k).arg1()) {
                    String key = k.checkjstring().toLowerCase(Locale.ROOT);
                    LuaValue v = t.get(k);
                    List<String> values = new ArrayList<>();
                    if (v.istable()) {
                        for (int i = 1; i <= v.length(); i++) {
                            values.add(v.get(i).checkjstring());
                        }
                    } else {
                        values.add(v.checkjstring());
                    }
                    if (key.equals(":status")) {
                        status = values.get(0);
                    } else {
                        values.forEach(value -> checkHeader(key, value));
                        headers.add(key, values);
                    }
                }
                int code;
                try {
                    code = status == null ? 0 : Integer.parseInt(status);
                } catch (NumberFormatException e) {
                    code = 0;
                }
                if (code < 200 || code >= 600) {
                    throw new LuaError(":status must be between 200-599");
                }
                if (body != null) {
                    headers.set("content-length", Integer.toString(body.getBytes(StandardCharsets.UTF_8).length));
                }
                reply = new Reply(code, headers, body == null ? "" : body);
                // as Envoy's yield: the rest of the script does not run
                throw new LuaError("responded");
            }

            /**
             * A header's name as Envoy's header map keys it: lower case, and on a request {@code host} is
             * {@code :authority} (HTTP/1's Host is the authority there, one header, not two).
             */
            private String key(String name) {
                String k = name.toLowerCase(Locale.ROOT);
                return request && k.equals("host") ? ":authority" : k;
            }

            private Varargs get(Varargs a) {
                String key = key(a.checkjstring(2));
                String p = key.startsWith(":") ? head.pseudo(key) : null;
                if (p != null) {
                    return LuaValue.valueOf(p);
                }
                List<String> all = head.headers().getAll(key);
                return all.isEmpty() ? LuaValue.NIL : LuaValue.valueOf(String.join(",", all));
            }

            private Varargs getAtIndex(Varargs a) {
                List<String> all = values(a.checkjstring(2));
                int i = a.checkint(3);
                return i >= 0 && i < all.size() && !all.get(i).isEmpty() ? LuaValue.valueOf(all.get(i)) : LuaValue.NIL;
            }

            private Varargs remove(Varargs a) {
                checkModifiable();
                String key = key(a.checkjstring(2));
                if (!key.startsWith(":")) {
                    head.headers().remove(key);
                    modified = true;
                }
                return LuaValue.NONE;
            }

            /** The head's entries as Envoy iterates them: the pseudo-headers first, then one pair per value. */
            private List<String[]> entries() {
                List<String[]> out = new ArrayList<>();
                for (String p : request ? List.of(":authority", ":path", ":method", ":scheme") : List.of(":status")) {
                    String v = head.pseudo(p);
                    if (v != null) {
                        out.add(new String[] {p, v});
                    }
                }
                head.headers().forEach(e -> {
                    String k = key(e.getKey());
                    if (!k.startsWith(":")) {
                        out.add(new String[] {k, e.getValue()}); // a request's host is its :authority, listed above
                    }
                });
                return out;
            }

            private List<String> values(String key) {
                String k = key(key);
                String p = k.startsWith(":") ? head.pseudo(k) : null;
                return p != null ? List.of(p) : head.headers().getAll(k);
            }

            private void change(String key, String value, boolean add) {
                checkModifiable();
                String k = key(key);
                checkHeader(k, value);
                if (k.startsWith(":")) {
                    if (!head.setPseudo(k, value)) {
                        throw new LuaError(k + " cannot be changed by Inmesh's Lua filter");
                    }
                } else if (add) {
                    head.headers().add(k, value);
                } else {
                    head.headers().set(k, value);
                }
                modified = true;
            }

            /**
             * Refuses, as a script error, a header no HTTP message can carry as it is: a name that is not a token (a
             * pseudo-header aside), a value with CR, LF or NUL, which would end the line it is written on (what else
             * a value holds is written as it is, as Envoy's codec writes a filter's values).
             */
            private static void checkHeader(String name, String value) {
                int from = name.startsWith(":") ? 1 : 0;
                if (name.length() == from) {
                    throw new LuaError("invalid header name: '" + name + "'");
                }
                for (int i = from; i < name.length(); i++) {
                    char c = name.charAt(i);
                    if (c <= ' ' || c >= 127 || "\"(),/:;<=>?@[\\]{}".indexOf(c) >= 0) {
                        throw new LuaError("invalid header name: '" + name + "'");
                    }
                }
                for (int i = 0; i < value.length(); i++) {
                    char c = value.charAt(i);
                    if (c == '\r' || c == '\n' || c == 0) {
                        throw new LuaError("invalid header value for " + name + ": CR, LF and NUL cannot be sent");
                    }
                }
            }

            private void checkModifiable() {
                if (done) {
                    throw new LuaError("header map can no longer be modified");
                }
            }

            private LuaValue dynamicMetadataGet(Varargs a) {
                LuaTable t = Stream.this.dynamicMetadata.get(a.checkjstring(2));
                return t == null ? LuaValue.NIL : t;
            }

            private Varargs dynamicMetadataSet(Varargs a) {
                Stream.this.dynamicMetadata.computeIfAbsent(a.checkjstring(2), k -> new LuaTable())
                        .set(a.checkjstring(3), a.arg(4));
                return LuaValue.NONE;
            }

            private LuaTable dynamicMetadataAll() {
                LuaTable all = new LuaTable();
                Stream.this.dynamicMetadata.forEach(all::set);
                return all;
            }
        }
    }

    private static final ThreadLocal<Handles> HANDLES = ThreadLocal.withInitial(Handles::new);

    /**
     * The objects a script's handle gives (the handle, its header map, stream info, dynamic metadata, metadata),
     * made once per thread rather than for every call (a call building its own cost 7 µs and 12.5 KB a request,
     * docs/benchmarks.md): their methods act on the call that runs on the thread now, and fail outside one, as
     * Envoy's handle objects fail used out of their scope. One difference: a handle a script kept in a global from an
     * earlier call acts on the current call, where Envoy's would fail.
     */
    private static final class Handles {
        private Stream.Call current;
        final LuaTable handle = new LuaTable();

        Handles() {
            LuaTable headers = new LuaTable();
            method(headers, "get", a -> running().get(a));
            method(headers, "getAtIndex", a -> running().getAtIndex(a));
            method(headers, "getNumValues", a -> LuaValue.valueOf(running().values(a.checkjstring(2)).size()));
            method(headers, "add", a -> {
                running().change(a.checkjstring(2), a.checkjstring(3), true);
                return LuaValue.NONE;
            });
            method(headers, "replace", a -> {
                running().change(a.checkjstring(2), a.checkjstring(3), false);
                return LuaValue.NONE;
            });
            method(headers, "remove", a -> running().remove(a));
            method(headers, "setHttp1ReasonPhrase", a -> LuaValue.NONE); // HTTP/1 reason phrases are not kept
            LuaTable headerMeta = new LuaTable();
            headerMeta.set("__index", headers);
            headerMeta.set("__pairs", new VarArgFunction() {
                @Override
                public Varargs invoke(Varargs args) {
                    Iterator<String[]> it = running().entries().iterator();
                    return new VarArgFunction() {
                        @Override
                        public Varargs invoke(Varargs ignored) {
                            if (!it.hasNext()) {
                                return NIL;
                            }
                            String[] e = it.next();
                            return varargsOf(valueOf(e[0]), valueOf(e[1]));
                        }
                    };
                }
            });
            LuaTable headerMap = new LuaTable();
            headerMap.setmetatable(headerMeta);

            LuaTable metadataMethods = new LuaTable();
            method(metadataMethods, "get", a -> running().dynamicMetadataGet(a));
            method(metadataMethods, "set", a -> running().dynamicMetadataSet(a));
            LuaValue dynamicMetadata = withPairs(metadataMethods, () -> running().dynamicMetadataAll());

            LuaTable info = new LuaTable();
            method(info, "protocol", a -> string(running().info.protocol()));
            method(info, "downstreamLocalAddress", a -> string(running().info.downstreamLocalAddress()));
            method(info, "downstreamDirectRemoteAddress", a -> string(running().info.downstreamDirectRemoteAddress()));
            method(info, "downstreamRemoteAddress", a -> string(running().info.downstreamRemoteAddress()));
            method(info, "requestedServerName", a -> LuaValue.valueOf(
                    running().info.requestedServerName() == null ? "" : running().info.requestedServerName()));
            method(info, "routeName", a -> LuaValue.valueOf(
                    running().info.routeName() == null ? "" : running().info.routeName()));
            method(info, "dynamicMetadata", a -> {
                running();
                return dynamicMetadata;
            });
            method(info, "downstreamDirectLocalAddress", a -> string(running().info.downstreamDirectLocalAddress() != null
                    ? running().info.downstreamDirectLocalAddress() : running().info.downstreamLocalAddress()));
            method(info, "virtualClusterName", a -> {
                running();
                return LuaValue.valueOf(""); // Inmesh refuses virtual_clusters: none is ever matched
            });
            LuaValue ssl = sslConnection();
            method(info, "downstreamSslConnection", a -> running().info.downstreamTls() == null ? LuaValue.NIL : ssl);
            LuaTable connection = new LuaTable();
            method(connection, "ssl", a -> running().info.downstreamTls() == null ? LuaValue.NIL : ssl);
            unsupported(info, List.of("filterState", "dynamicTypedMetadata"));

            // the route's metadata under the filter's name: empty, as Inmesh does not read route metadata
            LuaTable noMetadata = new LuaTable();
            LuaTable metadataGet = new LuaTable();
            method(metadataGet, "get", a -> noMetadata.get(a.checkjstring(2)));
            LuaValue metadata = withPairs(metadataGet, () -> noMetadata);

            method(handle, "headers", a -> {
                running();
                return headerMap;
            });
            method(handle, "respond", a -> running().respond(a));
            method(handle, "streamInfo", a -> {
                running();
                return info;
            });
            method(handle, "metadata", a -> {
                running();
                return metadata;
            });
            // the route's and virtual host's objects: their metadata() is empty, as the handle's
            LuaTable routeObject = new LuaTable();
            method(routeObject, "metadata", a -> {
                running();
                return metadata;
            });
            method(handle, "route", a -> {
                running();
                return routeObject;
            });
            method(handle, "virtualHost", a -> {
                running();
                return routeObject;
            });
            method(handle, "connection", a -> {
                running();
                return connection;
            });
            method(handle, "clearRouteCache", a -> {
                running().routeCleared = true;
                return LuaValue.NONE;
            });
            method(handle, "timestamp", a -> {
                running();
                if (resolution(a) != 0) {
                    throw new LuaError("timestamp format must be MILLISECOND.");
                }
                return LuaValue.valueOf((double) System.currentTimeMillis());
            });
            method(handle, "timestampString", a -> {
                running();
                java.time.Instant now = java.time.Instant.now();
                return switch (resolution(a)) {
                    case 0 -> LuaValue.valueOf(Long.toString(now.toEpochMilli()));
                    case 1 -> LuaValue.valueOf(Long.toString(now.getEpochSecond() * 1_000_000L + now.getNano() / 1000));
                    default -> throw new LuaError("timestamp format must be MILLISECOND or MICROSECOND.");
                };
            });
            unsupported(handle, List.of("connectionStreamInfo", "filterContext", "setUpstreamOverrideHost"));
            log("logTrace", System.Logger.Level.TRACE);
            log("logDebug", System.Logger.Level.DEBUG);
            log("logInfo", System.Logger.Level.INFO);
            log("logWarn", System.Logger.Level.WARNING);
            log("logErr", System.Logger.Level.ERROR);
            log("logCritical", System.Logger.Level.ERROR);
            method(handle, "base64Escape", a -> LuaValue.valueOf(Base64.getEncoder().encodeToString(bytes(a, 2))));
            method(handle, "body", a -> running().body(a));
            // refused when called by name (refusal); reached another way, a script error
            unsupported(handle, NOT_RUN);
        }

        /**
         * The SSL connection object of Envoy's {@code downstreamSslConnection()} and {@code connection():ssl()}, over
         * the running call's TLS ({@link Info#downstreamTls}): what Envoy's gives for no certificate, an empty string,
         * an empty table or 0, where the certificate is not there.
         */
        private LuaValue sslConnection() {
            LuaTable ssl = new LuaTable();
            method(ssl, "peerCertificatePresented", a -> LuaValue.valueOf(tls().peer() != null));
            method(ssl, "peerCertificateValidated", a -> LuaValue.valueOf(tls() != null
                    && running().info.peerCertificateValidated()));
            method(ssl, "uriSanPeerCertificate", a -> sans(tls().peer(), 6));
            method(ssl, "uriSanLocalCertificate", a -> sans(tls().local(), 6));
            method(ssl, "dnsSansPeerCertificate", a -> sans(tls().peer(), 2));
            method(ssl, "dnsSansLocalCertificate", a -> sans(tls().local(), 2));
            method(ssl, "subjectPeerCertificate", a -> orEmpty(TlsDetails.subject(tls().peer())));
            method(ssl, "issuerPeerCertificate", a -> orEmpty(TlsDetails.issuer(tls().peer())));
            method(ssl, "subjectLocalCertificate", a -> orEmpty(TlsDetails.subject(tls().local())));
            method(ssl, "serialNumberPeerCertificate", a -> orEmpty(TlsDetails.serial(tls().peer())));
            method(ssl, "sha256PeerCertificateDigest", a -> {
                java.security.cert.X509Certificate peer = tls().peer();
                return LuaValue.valueOf(peer == null ? "" : ForwardedClientCert.fingerprint(peer, "SHA-256"));
            });
            method(ssl, "urlEncodedPemEncodedPeerCertificate", a -> {
                java.security.cert.X509Certificate peer = tls().peer();
                return LuaValue.valueOf(peer == null ? "" : ForwardedClientCert.urlEncodedPem(List.of(peer)));
            });
            method(ssl, "validFromPeerCertificate",
                    a -> seconds(tls().peer(), java.security.cert.X509Certificate::getNotBefore));
            method(ssl, "expirationPeerCertificate",
                    a -> seconds(tls().peer(), java.security.cert.X509Certificate::getNotAfter));
            method(ssl, "tlsVersion", a -> orEmpty(tls().version()));
            method(ssl, "ciphersuiteString", a -> orEmpty(tls().cipher()));
            method(ssl, "sessionId", a -> orEmpty(tls().sessionId()));
            unsupported(ssl, List.of("ciphersuiteId", "parsedSubjectPeerCertificate",
                    "urlEncodedPemEncodedPeerCertificateChain", "oidsPeerCertificate", "oidsLocalCertificate"));
            return ssl;
        }

        /** The running call's TLS; its SSL connection object used where there is none fails, as out of scope. */
        private TlsDetails tls() {
            TlsDetails tls = running().info.downstreamTls();
            if (tls == null) {
                throw new LuaError("object used outside of proper scope");
            }
            return tls;
        }

        /** The SANs of {@code type} (6 URI, 2 DNS) of a certificate as a Lua list; empty for none or no certificate. */
        private static LuaTable sans(java.security.cert.X509Certificate c, int type) {
            LuaTable t = new LuaTable();
            if (c != null) {
                for (String san : ForwardedClientCert.sans(c, type)) {
                    t.set(t.length() + 1, LuaValue.valueOf(san));
                }
            }
            return t;
        }

        /** A time of a certificate in seconds since the epoch, as Envoy's; 0 without the certificate. */
        private static LuaValue seconds(java.security.cert.X509Certificate c,
                                        java.util.function.Function<java.security.cert.X509Certificate,
                                                java.util.Date> time) {
            return LuaValue.valueOf(c == null ? 0 : (double) time.apply(c).toInstant().getEpochSecond());
        }

        private static LuaValue orEmpty(String s) {
            return LuaValue.valueOf(s == null ? "" : s);
        }

        /** Envoy's methods {@code names} of {@code on} that Inmesh has not: each a script error saying so. */
        private static void unsupported(LuaTable on, List<String> names) {
            for (String n : names) {
                method(on, n, a -> {
                    throw new LuaError(n + "() is not supported by Inmesh");
                });
            }
        }

        /**
         * The {@code EnvoyTimestampResolution} argument of {@code timestamp} and {@code timestampString}: 0 for
         * {@code MILLISECOND} (also when none is given), 1 for {@code MICROSECOND}, -1 for anything else.
         */
        private static int resolution(Varargs a) {
            String r = a.isnoneornil(2) ? "0" : a.checkjstring(2);
            return r.equals("0") ? 0 : r.equals("1") ? 1 : -1;
        }

        private void log(String name, System.Logger.Level level) {
            method(handle, name, a -> {
                scriptLog(level, a.checkjstring(2));
                return LuaValue.NONE;
            });
        }

        /** The call running on this thread; an object used outside one fails, as Envoy's. */
        private Stream.Call running() {
            if (current == null) {
                throw new LuaError("object used outside of proper scope");
            }
            return current;
        }
    }

    /** The bytes of argument {@code i}, a string. */
    private static byte[] bytes(Varargs a, int i) {
        org.luaj.vm2.LuaString raw = a.checkstring(i);
        byte[] bytes = new byte[raw.length()];
        raw.copyInto(0, bytes, 0, bytes.length);
        return bytes;
    }

    private static LuaValue string(String s) {
        return s == null ? LuaValue.NIL : LuaValue.valueOf(s);
    }

    /** A map object: {@code methods} on it, {@code pairs()} over what {@code entries} gives. */
    private static LuaValue withPairs(LuaTable methods, java.util.function.Supplier<LuaTable> entries) {
        LuaTable meta = new LuaTable();
        meta.set("__index", methods);
        meta.set("__pairs", new VarArgFunction() {
            @Override
            public Varargs invoke(Varargs args) {
                LuaTable t = entries.get();
                LuaValue[] key = {LuaValue.NIL};
                return new VarArgFunction() {
                    @Override
                    public Varargs invoke(Varargs ignored) {
                        Varargs n = t.next(key[0]);
                        key[0] = n.arg1();
                        return n;
                    }
                };
            }
        });
        LuaTable map = new LuaTable();
        map.setmetatable(meta);
        return map;
    }

    private static void method(LuaTable on, String name, java.util.function.Function<Varargs, Varargs> body) {
        on.set(name, new VarArgFunction() {
            @Override
            public Varargs invoke(Varargs args) {
                return body.apply(args);
            }
        });
    }
}
