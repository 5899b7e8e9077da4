package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.listener.Http1Options;
import dev.inmesh.runtime.router.Http1Admission;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpVersion;
import io.vertx.core.MultiMap;
import io.vertx.core.http.impl.headers.HeadersAdaptor;

/**
 * Which HTTP/1 requests the proxy takes ({@link Http1Admission}, which {@code mesh.inbound} applies too), on the
 * request head Netty's codec read: an absolute-form request line becomes origin-form with its authority as the Host,
 * and a request taken as HTTP/1.0 says so. Two Host lines are refused by {@code HttpBridge.HeadLimits}; transfer
 * codings are the codec's ({@code Http1ServerCodec}).
 */
final class Http1Requests {
    private Http1Requests() {}

    /**
     * Null when the request is taken, after giving it its host and origin-form path when it came in absolute form or
     * as HTTP/1.0 without a Host; otherwise why it is refused. {@code req} is a request head whose framing the codec
     * took.
     */
    static Http1Admission.Refusal admit(HttpRequest req, Http1Options o, boolean validateScheme, boolean tls) {
        return Http1Admission.admit(new NettyHead(req, tls), o, validateScheme);
    }

    /** Takes an h2c offer's upgrade off the request, as Envoy's codec ({@link Http1Admission#withoutH2cUpgrade}). */
    static void withoutH2cUpgrade(HttpRequest req) {
        if (req.headers().contains(HttpHeaderNames.UPGRADE)) {
            Http1Admission.withoutH2cUpgrade(new NettyHead(req, false)); // only an upgrade offer reads its head
        }
    }

    /**
     * What an upgrade request asks to become ({@link Http1Admission#upgradeType}: {@code websocket} for a WebSocket),
     * or null for a request that is no upgrade (an h2c offer is none).
     */
    static String upgradeType(HttpRequest req) {
        return Http1Admission.upgradeType(req.headers() instanceof MultiMap m ? m : new HeadersAdaptor(req.headers()));
    }

    /**
     * Whether Envoy's HTTP/1 codec takes the request as an upgrade ({@code handling_upgrade_} in
     * source/common/http/http1/codec_impl.cc): an upgrade ({@link #upgradeType}) or a {@code CONNECT}, whose head ends
     * what is read as HTTP; every byte after it is the upgrade's payload, never a body or a request.
     */
    static boolean upgradeOrConnect(HttpRequest req) {
        return HttpMethod.CONNECT.equals(req.method()) || upgradeType(req) != null;
    }

    /**
     * Whether the connection stays open after this request's answer, as Envoy's connection manager reads a request
     * ({@code HeaderUtility::shouldCloseConnection}): not when {@code Connection} lists {@code close} (in HTTP/1.0,
     * unless it lists {@code keep-alive}), nor when {@code Proxy-Connection} lists {@code close}, a header no standard
     * has that Envoy honours as its first parser did.
     */
    static boolean keepAlive(HttpRequest req) {
        return io.netty.handler.codec.http.HttpUtil.isKeepAlive(req)
                && !req.headers().containsValue("proxy-connection", "close", true);
    }

    /** A Netty request head, rewritten in place. */
    private record NettyHead(HttpRequest req, boolean tls) implements Http1Admission.Head {
        @Override
        public String method() {
            return req.method().name();
        }

        @Override
        public String uri() {
            return req.uri();
        }

        @Override
        public boolean http11() {
            return req.protocolVersion().equals(HttpVersion.HTTP_1_1);
        }

        @Override
        public String host() {
            return req.headers().get(HttpHeaderNames.HOST);
        }

        @Override
        public void servedAsHttp10() {
            req.setProtocolVersion(HttpVersion.HTTP_1_0);
        }

        @Override
        public void originForm(String uri, String authority) {
            req.setUri(uri);
            req.headers().set(HttpHeaderNames.HOST, authority);
        }

        @Override
        public void defaultHost(String host) {
            req.headers().set(HttpHeaderNames.HOST, host);
        }

        @Override
        public String header(String name) {
            java.util.List<String> values = req.headers().getAll(name);
            return values.isEmpty() ? null : String.join(",", values);
        }

        @Override
        public void header(String name, String value) {
            if (value == null) {
                req.headers().remove(name);
            } else {
                req.headers().set(name, value);
            }
        }
    }
}
