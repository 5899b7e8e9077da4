package dev.inmesh.interception.proxy;

import dev.inmesh.api.config.core.Http2ProtocolOptions;
import dev.inmesh.api.config.core.SocketAddress;
import dev.inmesh.api.config.listener.Compressor;
import dev.inmesh.api.config.listener.HeadersWithUnderscoresAction;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.listener.ServerHeader;
import dev.inmesh.runtime.router.CompressorFilter;
import dev.inmesh.runtime.router.ForwardedClientCert;
import dev.inmesh.runtime.router.GrpcWeb;
import dev.inmesh.runtime.router.HeaderValues;
import dev.inmesh.runtime.router.Http1Admission;
import dev.inmesh.runtime.router.Http2HeaderValidator;
import dev.inmesh.runtime.router.HttpDate;
import dev.inmesh.runtime.router.LocalRateLimitFilter;
import dev.inmesh.runtime.router.PathNormalizer;
import dev.inmesh.runtime.router.RbacFilter;
import dev.inmesh.runtime.router.RequestBodyStream;
import dev.inmesh.runtime.router.RouteResult;
import dev.inmesh.runtime.router.RouteTable;
import dev.inmesh.runtime.router.RouterRequest;
import dev.inmesh.runtime.router.RouterResponse;
import dev.inmesh.runtime.router.Router;
import dev.inmesh.runtime.router.StreamRateLimiter;
import dev.inmesh.runtime.router.UnderscoreHeaders;
import dev.inmesh.runtime.stats.CodecStats;
import dev.inmesh.runtime.stats.DownstreamStats;
import dev.inmesh.runtime.stats.ResponseFlag;
import dev.inmesh.runtime.stats.StreamInfo;
import dev.inmesh.runtime.upstream.Host;
import dev.inmesh.runtime.upstream.UpstreamCluster;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpDecoderConfig;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpHeadersFactory;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpRequestEncoder;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseEncoder;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import io.netty.handler.codec.http2.DefaultHttp2WindowUpdateFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2Exception;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2FrameListenerDecorator;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.AsciiString;
import io.netty.util.ReferenceCountUtil;
import io.vertx.core.Handler;
import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.impl.headers.HeadersMultiMap;
import io.vertx.core.internal.ContextInternal;
import io.vertx.core.internal.buffer.BufferInternal;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * HTTP connections of the standalone proxy, bridged to the shared {@link dev.inmesh.runtime.router.Router}: HTTP/1.1
 * (and h2c with prior knowledge, one Netty child channel per stream) is decoded by Netty on the connection's event
 * loop, each request goes through the router on a Vert.x context bound to that same event loop (with its body
 * whole, or streamed upstream as it arrives when it was not whole in the read that brought its head), and the
 * response body is streamed back with back-pressure. Requests of one HTTP/1 connection are served in order, one at a
 * time. An {@code Upgrade: websocket} request, when the connection manager's {@code upgrade_configs} enables it, is
 * routed by the route table and then relayed as bytes (other upgrades get 403; an h2c upgrade is served as HTTP/1.1).
 */
final class HttpBridge {
    private static final Logger LOG = Logger.getLogger(HttpBridge.class.getName());
    private static final io.netty.util.AsciiString PEER_METADATA =
            io.netty.util.AsciiString.cached(dev.inmesh.runtime.stats.PeerMetadata.HEADER);
    private static final io.netty.util.AsciiString PEER_METADATA_ID =
            io.netty.util.AsciiString.cached(dev.inmesh.runtime.stats.PeerMetadata.ID_HEADER);
    private static final byte[] PREFACE = ProtocolDetector.H2_PREFACE.getBytes(StandardCharsets.US_ASCII);

    /**
     * HTTP/1 request heads are decoded straight into Vert.x header maps, which the router takes as they are (Vert.x's
     * own server decodes into the same maps).
     */
    private static final HttpHeadersFactory HEADERS = new HttpHeadersFactory() {
        @Override
        public HttpHeaders newHeaders() {
            return HeadersMultiMap.httpHeaders();
        }

        @Override
        public HttpHeaders newEmptyHeaders() {
            return HeadersMultiMap.httpHeaders();
        }
    };

    /**
     * The headers of an answer whose map the router did not make (a Lua script's, a local reply's): their values not
     * validated again, as Envoy's codec writes the values a filter set as they are (a script's header value with a
     * control character that Netty's validation refused left the caller waiting for an answer that never came; the
     * Lua filter refuses CR, LF and NUL, which would split the message, and names that are no token).
     */
    private static final HttpHeadersFactory RESPONSE_HEADERS =
            io.netty.handler.codec.http.DefaultHttpHeadersFactory.headersFactory().withValueValidation(false);

    private HttpBridge() {}

    /**
     * What the HTTP side of one downstream connection knows, with the address strings every request of it carries
     * (formatted once per connection), its connection manager's statistics (looked up once per connection; null
     * when none are kept), its listener's {@code per_connection_buffer_limit_bytes} (null: none set) and its
     * lifetime (idle and duration timers, requests so far), whether its connection manager runs the gRPC-Web
     * filter and its compressor filter's config (read from its filter list once per connection, not per request),
     * and whether its listener drains while
     * the server fails its health checks (Envoy's {@code DEFAULT} drain type).
     */
    record Connection(ProxyRuntime runtime, RouteTable table, HttpConnectionManager hcm,
                      StreamInfo.Direction direction, InetSocketAddress destination, InetSocketAddress source,
                      boolean tls, String tlsServerName, boolean mutualTls, boolean peerCertificate,
                      String clientCertElement, String peerPrincipal, String localPrincipal,
                      String sourceHostPort, String destinationHostPort,
                      SocketAddress originalDestination, DownstreamStats stats, ChainDrains.Drain drain,
                      Long listenerBufferLimit, ConnectionLifetime lifetime, RbacFilter.Chain rbac,
                      RbacFilter.PeerIdentity peerIdentity, RbacFilter.PeerIdentity localIdentity,
                      LocalRateLimitFilter localRateLimit, boolean grpcWeb, Compressor compressor,
                      dev.inmesh.runtime.tracing.Tracer tracer, boolean healthCheckDrains,
                      dev.inmesh.runtime.accesslog.AccessLogs accessLogs,
                      dev.inmesh.runtime.stats.StatsOverrides statsOverrides,
                      java.util.List<dev.inmesh.runtime.router.LuaFilter> lua,
                      dev.inmesh.runtime.accesslog.LocalReply localReply,
                      dev.inmesh.runtime.router.HeaderMutationFilter headerMutation,
                      dev.inmesh.runtime.accesslog.TlsDetails tlsDetails, boolean tracingIngress) {
        /**
         * @param originalDestination the destination the listener filters restored (original_dst, a PROXY header),
         *     which an ORIGINAL_DST cluster connects to; null when none did
         * @param tls whether the proxy terminated TLS for the connection (its requests are https)
         * @param tlsServerName the SNI of that TLS, or null
         * @param mutualTls whether that TLS verified the client's certificate
         * @param peerCertificates the certificates the client presented in that TLS, its own first; null for none
         * @param localCertificates the certificates the proxy presented in it; null for none
         * @param drain the drain of the connection's filter chain
         * @param listener the listener whose filter chain took the connection
         * @param rbac the connection manager's RBAC filters, compiled ({@code MeshSnapshot#rbac})
         * @param localRateLimit the connection manager's local rate limit filter, compiled with its bucket
         *     ({@code MeshSnapshot#localRateLimit}): the connection keeps it, as an Envoy connection keeps the filter
         *     chain it was accepted on; an update that leaves the filter's config as it was hands the new snapshot
         *     the same bucket, so the connection's requests and new connections' share it
         * @param tracer the connection manager's tracing, compiled ({@code MeshSnapshot#tracer}); null for none
         * @param accessLogs the connection manager's access logs, compiled ({@code MeshSnapshot#accessLogs})
         * @param statsOverrides the metric overrides of the connection manager's Istio stats filter, compiled
         *     ({@code MeshSnapshot#statsOverrides})
         * @param lua the connection manager's Lua filters, compiled ({@code MeshSnapshot#lua})
         * @param localReply the connection manager's {@code local_reply_config}, compiled
         *     ({@code MeshSnapshot#localReply}); null for none
         * @param headerMutation the connection manager's header mutation filter, compiled
         *     ({@code MeshSnapshot#headerMutation})
         * @param session the session of the TLS the chain terminated (null for none), which the access log reads
         */
        Connection(ProxyRuntime runtime, RouteTable table, HttpConnectionManager hcm,
                   StreamInfo.Direction direction, InetSocketAddress destination, SocketAddress originalDestination,
                   InetSocketAddress source, boolean tls, String tlsServerName, boolean mutualTls,
                   java.security.cert.Certificate[] peerCertificates,
                   java.security.cert.Certificate[] localCertificates, javax.net.ssl.SSLSession session,
                   ChainDrains.Drain drain,
                   Listener listener, RbacFilter.Chain rbac, LocalRateLimitFilter localRateLimit,
                   dev.inmesh.runtime.tracing.Tracer tracer, dev.inmesh.runtime.accesslog.AccessLogs accessLogs,
                   dev.inmesh.runtime.stats.StatsOverrides statsOverrides,
                   java.util.List<dev.inmesh.runtime.router.LuaFilter> lua,
                   dev.inmesh.runtime.accesslog.LocalReply localReply,
                   dev.inmesh.runtime.router.HeaderMutationFilter headerMutation) {
            // the x-forwarded-client-cert element is the connection's: made once here, not per request
            this(runtime, table, hcm, direction, destination, source, tls, tlsServerName, mutualTls,
                    peerCertificates != null && peerCertificates.length > 0,
                    ForwardedClientCert.element(hcm.forwardClientCert(), peerCertificates, localCertificates),
                    ForwardedClientCert.principal(peerCertificates), peerCertificates == null
                            || peerCertificates.length == 0 ? null : ForwardedClientCert.principal(localCertificates),
                    ListenerDispatch.hostPort(source), ListenerDispatch.hostPort(destination),
                    originalDestination, runtime.stats(hcm),
                    drain, listener.perConnectionBufferLimitBytes(), new ConnectionLifetime(hcm.lifetimes()), rbac,
                    // the identities RBAC principals match: read once per connection, and only where a filter runs
                    rbac.isEmpty() ? null : RbacFilter.PeerIdentity.of(tls, peerCertificates),
                    rbac.isEmpty() ? null : RbacFilter.PeerIdentity.of(tls, localCertificates), localRateLimit,
                    hcm.grpcWebFilter(), hcm.compressorFilter(), tracer,
                    listener.drainType() == Listener.DrainType.DEFAULT, accessLogs, statsOverrides, lua, localReply,
                    headerMutation, dev.inmesh.runtime.accesslog.TlsDetails.of(tls ? session : null),
                    // Envoy's tracing takes a listener without traffic_direction for inbound: server spans
                    listener.trafficDirection() != dev.inmesh.api.config.listener.TrafficDirection.OUTBOUND);
        }

        /**
         * The route table for a request starting now. A connection manager that names its routes (RDS) takes them
         * from the newest snapshot, so that a route update reaches the next request of a connection already open, as
         * Envoy's connection manager takes the latest route configuration for each stream; inline routes are the
         * listener's own and stay those the connection was accepted with. Null: no such route configuration (404).
         */
        RouteTable routes() {
            String rds = hcm.rdsRouteConfigName();
            return rds == null ? table : runtime.snapshots.current().routeTable(rds);
        }

        /** The clusters for a request starting now: the newest snapshot's (a cluster added since the accept too). */
        dev.inmesh.runtime.upstream.ClusterManager clusters() {
            return runtime.snapshots.current().clusterManager();
        }

        /**
         * Whether this connection's listener drains (see ProxyRuntime#draining), or its filter chain, which a new
         * configuration dropped or changed (see ChainDrains): its requests are discouraged.
         */
        boolean draining() {
            return runtime.draining(direction == StreamInfo.Direction.INBOUND, healthCheckDrains)
                    || drain != null && drain.started();
        }

        /** The connection manager's {@code max_request_headers_kb}, in bytes. */
        int maxRequestHeadBytes() {
            return hcm.maxRequestHeadersKb() * 1024;
        }

        /**
         * The HTTP/1 decoder for this connection: request heads decode into Vert.x header maps ({@code HEADERS});
         * the request line and the headers may each be as long as the connection manager's
         * {@code max_request_headers_kb}, Envoy's limit for the two together (Netty's defaults, 4 and 8 KiB, would
         * refuse the long cookies and tokens Envoy takes).
         */
        HttpDecoderConfig http1Decoder() {
            return new HttpDecoderConfig().setHeadersFactory(HEADERS).setTrailersFactory(HEADERS)
                    .setMaxInitialLineLength(maxRequestHeadBytes()).setMaxHeaderSize(maxRequestHeadBytes());
        }
    }

    /**
     * The SETTINGS of a downstream HTTP/2 connection: the request head limit ({@code max_request_headers_kb}), and the
     * connection manager's {@code http2_protocol_options}: {@code max_concurrent_streams} (a client's stream beyond it
     * is refused, as Envoy refuses it), {@code hpack_table_size} and {@code initial_stream_window_size}.
     */
    static Http2Settings http2Settings(Connection conn) {
        Http2ProtocolOptions h2 = conn.hcm().http2();
        // the list size counts 32 octets a header beside its name and value (RFC 9113), Envoy's limit only those:
        // advertised (and enforced by Netty's HPACK decoder) with that overhead for as many headers as may come, so
        // that a head within max_request_headers_kb is taken; HeadLimits holds it to the limit itself
        long listSize = conn.maxRequestHeadBytes() + 32L * (conn.hcm().maxRequestHeadersCount() + 4);
        Http2Settings settings = Http2Settings.defaultSettings().maxHeaderListSize(Math.min(listSize, 0xFFFFFFFFL))
                .maxConcurrentStreams(h2.maxConcurrentStreams()).headerTableSize(h2.hpackTableSize());
        if (h2.initialStreamWindowSize() != null) {
            settings.initialWindowSize(h2.initialStreamWindowSize());
        }
        return settings;
    }

    /**
     * A request of {@code conn} whose head was not read whole (a codec error, a request header timeout), answered by
     * the connection manager: counted in its statistics and written to its access logs, as Envoy's.
     */
    static RouterRequest unparsed(Connection conn, String protocol) {
        return RouterRequest.unparsed(conn.direction(), conn.sourceHostPort(), conn.destinationHostPort(),
                protocol).serverHeader(conn.hcm().serverHeader()).downstreamStats(conn.stats())
                .accessLogs(conn.accessLogs()).localReply(conn.localReply());
    }

    /**
     * An HTTP/2 stream of {@code conn} its codec resets for its head, as Envoy's HTTP/2 codec resets it: logged and
     * counted with no response (code 0), flag DPE and the codec's {@code details}.
     */
    static void reportReset(Connection conn, String details) {
        Router router = conn.runtime().router;
        router.abort(router.localReply(unparsed(conn, "HTTP/2"), 0, "", details,
                ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR), 0, null);
    }

    /**
     * The frame codec of a downstream HTTP/2 connection. A stream whose header block is over
     * {@code max_request_headers_kb} (its HPACK decoding went past the limit) is reset, as Envoy's HTTP/2 codec resets
     * it, where Netty's would answer 431 first: counted in {@code http2.header_overflow} and logged with no response,
     * details {@code http2.too_many_headers} and flag DPE, as a stream over {@code max_headers_count} is
     * ({@link HeadLimits}).
     *
     * <p>A request that breaks HTTP/2's messaging rules, as Envoy's codec checks them (its head or trailers, see
     * {@link Http2HeaderValidator}; a body longer or shorter than its {@code content-length}), is handled as Envoy's
     * codec handles an invalid frame (source/common/http/http2/codec_impl.cc onInvalidFrame): counted in
     * {@code http2.rx_messaging_error} and logged once with no response (flag DPE, details {@code
     * http2.invalid.header.field} or {@code http2.violation.of.messaging.rule}): a stream refused for its head
     * without its request ({@code - - -}), one whose head was taken (refused for its body or trailers) by its exchange
     * ({@link CodecReset}), with its request, route and upstream, its upstream request reset, as Envoy's connection
     * manager logs a stream its codec reset (ActiveStream::onResetStream, source/common/http/conn_manager_impl.cc).
     * Then the whole connection ends (GOAWAY PROTOCOL_ERROR, {@code downstream_cx_protocol_error}), or, under
     * {@code override_stream_error_on_invalid_http_message}, only the stream (RST_STREAM PROTOCOL_ERROR).
     *
     * <p>Counted as Envoy's HTTP/2 codec counts them (source/common/http/http2/codec_stats.h): RST_STREAM frames read
     * and written ({@code http2.rx_reset}, {@code tx_reset}), streams refused beyond {@code max_concurrent_streams}
     * ({@code stream_refused_errors}), requests that ended with trailers ({@code trailers}), and the streams open
     * ({@code streams_active}).
     */
    static final class ServerHttp2Codec extends Http2FrameCodecBuilder {
        private final Connection conn;
        /** The codecs' statistics, or null when none are kept. */
        private final CodecStats stats;
        /** The last streams refused beyond {@code max_concurrent_streams}, whose frames in flight are ignored. */
        private final int[] refused = new int[32];
        private int refusals;
        /** The stream being marked as refused ({@link #markRefused}), for which no exchange is made; 0 for none. */
        int marking;

        /** Counts the frames the flood limits weigh. */
        private final FrameCounter frameCounter;

        ServerHttp2Codec(Connection conn) {
            this.conn = conn;
            this.stats = conn.stats() == null ? null : conn.stats().codec();
            server(true);
            frameCounter = new FrameCounter(stats);
            frameLogger(frameCounter);
            // max_consecutive_inbound_frames_with_empty_payload is the listener's below, as Envoy counts it
            decoderEnforceMaxConsecutiveEmptyDataFrames(0);
            // Netty's limits on RST_STREAM frames, read (200 in 30 s) and, since 4.2, sent (200 in 30 s, all but
            // NO_ERROR and CANCEL), are off: they closed connections Envoy keeps, a client cancelling calls that lived
            // or one refused a few hundred streams beyond max_concurrent_streams once. Envoy's premature reset check
            // (PrematureResets) guards against rapid reset in their place; a stream the codec resets after it opened
            // counts there too, a refused one opens none and costs no upstream work, and the RST_STREAMs a client
            // makes the proxy queue without reading them stay bounded by Netty's queued control frame limit (10000),
            // as by Envoy's max_outbound_control_frames
            decoderEnforceMaxRstFramesPerWindow(0, 0);
            encoderEnforceMaxRstFramesPerWindow(0, 0);
        }

        @Override
        protected Http2FrameCodec build(io.netty.handler.codec.http2.Http2ConnectionDecoder decoder,
                                        io.netty.handler.codec.http2.Http2ConnectionEncoder encoder,
                                        Http2Settings initialSettings) {
            Connection c = conn;
            var prematureResets = new PrematureResets(decoder.connection(), () -> marking,
                    conn.runtime().snapshots.current().runtime(), conn.stats());
            decoder.connection().addListener(prematureResets);
            Http2FrameCodec codec = new Http2FrameCodec(encoder, decoder, initialSettings, decoupleCloseAndGoAway(),
                    flushPreface()) {
                @Override
                protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) throws Exception {
                    // (handlerAdded is final): every stream opens in a decode, so the check has the context before
                    // any stream closes
                    prematureResets.codec(ctx);
                    super.decode(ctx, in, out);
                }

                @Override
                protected void handleServerHeaderDecodeSizeError(ChannelHandlerContext ctx,
                                                                 io.netty.handler.codec.http2.Http2Stream stream) {
                    // no 431: the codec resets the stream after this (with INTERNAL_ERROR, see onError)
                    try {
                        if (stats != null) {
                            stats.headerOverflow();
                        }
                        reportReset(c, "http2.too_many_headers");
                    } catch (RuntimeException e) {
                        // the stream is reset all the same; a failure here must not end the connection
                        LOG.log(Level.WARNING, "recording an HTTP/2 header overflow failed", e);
                    }
                }

                @Override
                public void onError(ChannelHandlerContext ctx, boolean outbound, Throwable cause) {
                    if (io.netty.handler.codec.http2.Http2CodecUtil.getEmbeddedHttp2Exception(cause)
                            instanceof Http2Exception.HeaderListSizeException over && over.duringDecode()
                            && over.error() != Http2Error.INTERNAL_ERROR) {
                        // a header block over the limit: its stream is reset with INTERNAL_ERROR, as nghttp2 and
                        // oghttp2 reset a stream whose header callback failed (Envoy's saveHeader fails one over
                        // max_request_headers_kb or max_headers_count, source/common/http/http2/codec_impl.cc), where
                        // Netty's decoder says PROTOCOL_ERROR
                        cause = Http2Exception.headerListSizeError(over.streamId(), Http2Error.INTERNAL_ERROR, true,
                                "%s", over.getMessage());
                    }
                    var invalid = outbound ? null : invalidMessage(cause);
                    if (invalid == null) {
                        var streamError = outbound ? null : io.netty.handler.codec.http2.Http2CodecUtil
                                .getEmbeddedHttp2Exception(cause) instanceof Http2Exception.StreamException s ? s
                                : null;
                        if (streamError != null && streamError.error() == Http2Error.STREAM_CLOSED
                                && stateError(ctx, streamError.streamId())) {
                            return;
                        }
                        if (streamError != null && streamError.error() == Http2Error.REFUSED_STREAM) {
                            if (stats != null) {
                                stats.streamRefused();
                            }
                            markRefused(streamError.streamId()); // first: the stream gone before its RST_STREAM
                            super.onError(ctx, false, cause);
                            return;
                        }
                        super.onError(ctx, outbound, cause);
                        return;
                    }
                    Throwable why = invalid.getCause();
                    // Netty's own checks: of a header block before its stream opened, of a body after
                    String details = why instanceof InvalidMessage m ? m.getMessage()
                            : connection().stream(invalid.streamId()) == null ? Http2HeaderValidator.INVALID_HEADER
                            : Http2HeaderValidator.MESSAGING;
                    if (stats != null) {
                        stats.rxMessagingError();
                    }
                    if (!toExchange(ctx, invalid.streamId(), details)) {
                        reportReset(c, details);
                    }
                    if (c.hcm().http2().streamErrorOnInvalidHttpMessage()) {
                        resetStream(ctx, invalid.streamId(), Http2Error.PROTOCOL_ERROR.code(), ctx.newPromise());
                        ctx.flush();
                    } else {
                        super.onError(ctx, false, Http2Exception.connectionError(Http2Error.PROTOCOL_ERROR, cause,
                                "stream %d: %s", invalid.streamId(), details));
                    }
                }

                /**
                 * Marks stream {@code id}, just refused beyond {@code max_concurrent_streams} (RST_STREAM
                 * REFUSED_STREAM), as one the connection has seen, as nghttp2 does: the frames the client sent on it
                 * before it read the refusal (its body, its own RST_STREAM, a WINDOW_UPDATE) are then ignored, where
                 * Netty's decoder takes them for frames of a stream that never existed and ends the connection
                 * (GOAWAY PROTOCOL_ERROR) with the streams it had taken. Netty has no way to mark an id but to open
                 * the stream, so it is opened past the limit and closed at once, with no exchange ({@link #marking}).
                 */
                private void markRefused(int id) {
                    var remote = connection().remote();
                    if (connection().stream(id) != null || remote.mayHaveCreatedStream(id)) {
                        return;
                    }
                    refused[refusals++ % refused.length] = id;
                    int max = remote.maxActiveStreams();
                    remote.maxActiveStreams(Integer.MAX_VALUE);
                    marking = id;
                    try {
                        remote.createStream(id, true).close();
                    } catch (Http2Exception e) {
                        // after a GOAWAY (the decoder ignores the frames of streams above its last one) or closed
                        LOG.log(Level.FINE, "HTTP/2 stream " + id + " not marked as refused", e);
                    } finally {
                        marking = 0;
                        remote.maxActiveStreams(max);
                    }
                }

                /**
                 * A STREAM_CLOSED stream error the decoder raised for a frame on stream {@code id}; false when
                 * Netty's handling stands (a RST_STREAM of the stream, which it sends for a frame of one it closed).
                 * A frame on a stream refused a moment ago is ignored (RFC 9113 §5.4.2: the client may have sent
                 * it before it read the refusal). One after the end of the stream's request, which is open, its
                 * response to come (DATA after END_STREAM: RFC 9113 §5.1, half-closed (remote)), resets the stream
                 * with STREAM_CLOSED, its exchange ending as the codec reset it ({@link CodecReset}).
                 */
                private boolean stateError(ChannelHandlerContext ctx, int id) {
                    if (connection().stream(id) == null) {
                        for (int r : refused) {
                            if (r == id) {
                                return true;
                            }
                        }
                        return false;
                    }
                    if (!toExchange(ctx, id, Http2HeaderValidator.MESSAGING)) {
                        reportReset(c, Http2HeaderValidator.MESSAGING);
                    }
                    resetStream(ctx, id, Http2Error.STREAM_CLOSED.code(), ctx.newPromise());
                    ctx.flush();
                    return true;
                }

                /**
                 * Tells the exchange of stream {@code id}, if it has one, that the codec resets it ({@link
                 * CodecReset}): it ends the stream's request and logs the stream. False when the stream has none.
                 */
                private boolean toExchange(ChannelHandlerContext ctx, int id, String details) {
                    var stream = connection().stream(id);
                    io.netty.handler.codec.http2.Http2FrameStream frames = stream == null ? null
                            : stream.getProperty(streamKey);
                    if (frames == null) {
                        return false;
                    }
                    ctx.fireChannelRead(new CodecReset(details).stream(frames));
                    return true;
                }

                @Override
                protected void onConnectionError(ChannelHandlerContext ctx, boolean outbound, Throwable cause,
                                                 Http2Exception http2Ex) {
                    if (!outbound && c.stats() != null) {
                        c.stats().protocolError(); // GOAWAY, and the connection closes
                    }
                    super.onConnectionError(ctx, outbound, cause, lastProcessed(http2Ex));
                }
            };
            if (stats != null) {
                decoder.connection().addListener(new io.netty.handler.codec.http2.Http2ConnectionAdapter() {
                    @Override
                    public void onStreamActive(io.netty.handler.codec.http2.Http2Stream stream) {
                        stats.streamsActive(1);
                    }

                    @Override
                    public void onStreamClosed(io.netty.handler.codec.http2.Http2Stream stream) {
                        stats.streamsActive(-1);
                    }
                });
            }
            var requests = decoder.connection().newKey();
            Http2ProtocolOptions limits = conn.hcm().http2();
            decoder.frameListener(new Http2FrameListenerDecorator(decoder.frameListener()) {
                /** The streams the client opened, and the frames the flood limits weigh, as Envoy's codec counts. */
                private long opened;
                private long priorityFrames;
                private long windowUpdates;
                private long emptyInARow;

                @Override
                public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers, int padding,
                                          boolean endOfStream) throws Http2Exception {
                    check(streamId, headers);
                    super.onHeadersRead(ctx, streamId, headers, padding, endOfStream);
                }

                @Override
                public void onHeadersRead(ChannelHandlerContext ctx, int streamId, Http2Headers headers,
                                          int streamDependency, short weight, boolean exclusive, int padding,
                                          boolean endOfStream) throws Http2Exception {
                    check(streamId, headers);
                    super.onHeadersRead(ctx, streamId, headers, streamDependency, weight, exclusive, padding,
                            endOfStream);
                }

                @Override
                public int onDataRead(ChannelHandlerContext ctx, int streamId, io.netty.buffer.ByteBuf data,
                                      int padding, boolean endOfStream) throws Http2Exception {
                    if (data.isReadable() || padding > 0 || endOfStream) {
                        emptyInARow = 0;
                    } else if (++emptyInARow > Math.max(1, limits.maxConsecutiveInboundFramesWithEmptyPayload())) {
                        throw flood(CodecStats::emptyFramesFlood, "DATA frames without payload in a row");
                    }
                    return super.onDataRead(ctx, streamId, data, padding, endOfStream);
                }

                @Override
                public void onPriorityRead(ChannelHandlerContext ctx, int streamId, int streamDependency,
                                           short weight, boolean exclusive) throws Http2Exception {
                    if (++priorityFrames > limits.maxInboundPriorityFramesPerStream() * (1 + opened)) {
                        throw flood(CodecStats::priorityFlood, "PRIORITY frames");
                    }
                    super.onPriorityRead(ctx, streamId, streamDependency, weight, exclusive);
                }

                @Override
                public void onWindowUpdateRead(ChannelHandlerContext ctx, int streamId, int windowSizeIncrement)
                        throws Http2Exception {
                    if (++windowUpdates > 5 + 2 * (opened + limits.maxInboundWindowUpdateFramesPerDataFrameSent()
                            * frameCounter.dataSent)) {
                        throw flood(CodecStats::windowUpdateFlood, "WINDOW_UPDATE frames");
                    }
                    super.onWindowUpdateRead(ctx, streamId, windowSizeIncrement);
                }

                /**
                 * A client flooding the connection with frames that cost it work and bring nothing, as Envoy's codec
                 * limits them ({@code http2_protocol_options}' inbound flood limits): the connection ends (GOAWAY
                 * ENHANCE_YOUR_CALM), counted in Envoy's {@code http2.inbound_*_flood}.
                 */
                private Http2Exception flood(java.util.function.Consumer<CodecStats> count, String what) {
                    if (stats != null) {
                        count.accept(stats);
                    }
                    return Http2Exception.connectionError(Http2Error.ENHANCE_YOUR_CALM, "too many %s: a flood", what);
                }

                /** The first header block of a stream is its request head; a later one, its trailers. */
                private void check(int streamId, Http2Headers headers) throws Http2Exception {
                    emptyInARow = 0;
                    var stream = decoder.connection().stream(streamId);
                    boolean head = stream.getProperty(requests) == null;
                    if (head) {
                        opened++;
                    }
                    stream.setProperty(requests, Boolean.TRUE);
                    String details = head ? Http2HeaderValidator.request(headers)
                            : Http2HeaderValidator.trailers(headers);
                    if (details != null) {
                        throw Http2Exception.streamError(streamId, Http2Error.PROTOCOL_ERROR,
                                new InvalidMessage(details), details);
                    }
                    if (head) {
                        encodeSpaces(headers);
                    }
                    if (!head && stats != null) {
                        stats.trailers();
                    }
                }
            });
            return codec;
        }

        /**
         * A space in {@code :path} (which Envoy's HTTP/2 codec takes, not checking the path's characters) as
         * {@code %20}, as Envoy's path normalization (Istio turns it on) encodes it: no HTTP/1 request line, which the
         * stream is converted to, can carry it.
         */
        private static void encodeSpaces(Http2Headers headers) {
            CharSequence path = headers.path();
            if (path != null && io.netty.util.AsciiString.indexOf(path, ' ', 0) >= 0) {
                headers.path(path.toString().replace(" ", "%20"));
            }
        }

        /**
         * {@code e} (a connection error) as one whose GOAWAY names the last stream the connection took, as nghttp2's
         * (nghttp2_session_terminate_session sends its last_proc_stream_id; only a graceful shutdown's first GOAWAY
         * says 2^31-1): Netty's frame codec says 2^31-1 for any error that ends the connection at once (a hard
         * shutdown, as a header block it could not decode may have opened a stream it has not created yet), and then
         * closes; with no shutdown hint it names the last stream created and closes all the same. A stream whose
         * header block failed to decode was not created, and is not named (nghttp2 names it, as it opened it first):
         * the client may retry it, nothing of it having been taken.
         */
        private static Http2Exception lastProcessed(Http2Exception e) {
            return e == null || e.shutdownHint() != Http2Exception.ShutdownHint.HARD_SHUTDOWN ? e
                    : new Http2Exception(e.error(), e.getMessage(), e, Http2Exception.ShutdownHint.NO_SHUTDOWN);
        }

        /**
         * The stream error of an invalid message among {@code cause}'s: one of Netty's PROTOCOL_ERRORs or this
         * codec's own, but a header block over the size limits ({@link #handleServerHeaderDecodeSizeError}); null
         * for any other error.
         */
        private static Http2Exception.StreamException invalidMessage(Throwable cause) {
            Http2Exception e = io.netty.handler.codec.http2.Http2CodecUtil.getEmbeddedHttp2Exception(cause);
            return e instanceof Http2Exception.StreamException s && s.error() == Http2Error.PROTOCOL_ERROR
                    && !(s instanceof Http2Exception.HeaderListSizeException) && !emptyPseudoHeader(s) ? s : null;
        }

        /**
         * Netty's decoder refusing an empty {@code :authority} (which HTTP/1 gateways forward from an empty Host):
         * oghttp2 takes one, so Envoy serves the request; Netty cannot, and only its stream is reset, the
         * connection's other streams going on (an empty {@code :method} or {@code :path} Envoy refuses too).
         */
        private static boolean emptyPseudoHeader(Http2Exception.StreamException s) {
            for (Throwable t = s; t != null; t = t.getCause()) {
                if (t.getMessage() != null && t.getMessage().contains("':authority'")
                        && t.getMessage().contains("must not be empty")) {
                    return true;
                }
            }
            return false;
        }
    }

    /**
     * Counts the RST_STREAM frames a downstream HTTP/2 connection reads and writes (when statistics are kept: {@code
     * stats} not null), and the DATA frames it writes, which the WINDOW_UPDATE flood limit weighs: Netty's frame codec
     * hands each frame to its frame logger. Logs nothing but at TRACE, as Netty's own.
     */
    static final class FrameCounter extends io.netty.handler.codec.http2.Http2FrameLogger {
        private final CodecStats stats;
        /** The DATA frames written. */
        long dataSent;

        FrameCounter(CodecStats stats) {
            super(io.netty.handler.logging.LogLevel.TRACE, FrameCounter.class);
            this.stats = stats;
        }

        @Override
        public void logRstStream(Direction direction, ChannelHandlerContext ctx, int streamId, long errorCode) {
            if (stats != null) {
                stats.reset(direction == Direction.INBOUND);
            }
            super.logRstStream(direction, ctx, streamId, errorCode);
        }

        @Override
        public void logData(Direction direction, ChannelHandlerContext ctx, int streamId, io.netty.buffer.ByteBuf data,
                            int padding, boolean endStream) {
            if (direction == Direction.OUTBOUND) {
                dataSent++;
            }
            super.logData(direction, ctx, streamId, data, padding, endStream);
        }
    }

    /**
     * The codec resets a stream for what its client sent after the head ({@link ServerHttp2Codec}): handed to the
     * stream's pipeline as a user event (as Netty hands on a client's RST_STREAM) before the reset closes it, so that
     * its exchange ends the request it forwarded as Envoy's connection manager ends a stream its codec reset (flag DPE,
     * the codec's {@code details}), in the one access log line of the stream.
     */
    static final class CodecReset extends io.netty.handler.codec.http2.AbstractHttp2StreamFrame
            implements io.netty.handler.codec.http2.Http2ResetFrame {
        final String details;

        CodecReset(String details) {
            this.details = details;
        }

        @Override
        public long errorCode() {
            return Http2Error.PROTOCOL_ERROR.code();
        }

        @Override
        public String name() {
            return "CODEC_RESET";
        }
    }

    /** Why a request broke HTTP/2's rules, its message Envoy's response code details. */
    static final class InvalidMessage extends Exception {
        private static final long serialVersionUID = 1L;

        InvalidMessage(String details) {
            super(details, null, false, false);
        }
    }

    /**
     * Picks the codec by the connection manager's {@code codec_type}: HTTP/1 or h2c as it says, or, for AUTO, by the
     * first bytes (the HTTP/2 preface selects h2c, anything else HTTP/1). Then removes itself.
     */
    static final class CodecSelector extends ByteToMessageDecoder {
        private final Connection conn;
        private DownstreamCounter counter;

        CodecSelector(Connection conn) {
            this.conn = conn;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) throws Exception {
            super.handlerAdded(ctx);
            if (conn.stats() != null) {
                counter = new DownstreamCounter(conn.stats());
                ctx.pipeline().addBefore(ctx.name(), "http-stats", counter);
            }
            // as Envoy's connection manager, its idle and duration timers run from when it takes the connection
            conn.lifetime().start(ctx.channel(), conn.stats());
        }

        @Override
        protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
            var codec = conn.hcm().codecType();
            boolean preface = codec == HttpConnectionManager.CodecType.HTTP2;
            if (codec == HttpConnectionManager.CodecType.AUTO) {
                int n = Math.min(in.readableBytes(), PREFACE.length);
                preface = true;
                for (int i = 0; i < n; i++) {
                    if (in.getByte(in.readerIndex() + i) != PREFACE[i]) {
                        preface = false;
                        break;
                    }
                }
                if (preface && n < PREFACE.length) {
                    return; // wait for more
                }
            }
            var p = ctx.pipeline();
            if (counter != null) {
                counter.codecChosen(preface);
            }
            conn.lifetime().codecChosen(preface);
            if (preface) {
                // A close (a listener's or chain's drain, the proxy's) sends GOAWAY and lets the streams it took
                // finish, for the drain time at most, as Envoy's drain: Netty's frame codec waits for none by default
                ServerHttp2Codec frames = new ServerHttp2Codec(conn);
                Http2FrameCodec h2 = frames
                        .initialSettings(http2Settings(conn))
                        .gracefulShutdownTimeoutMillis(Math.max(1, conn.runtime().drainTime.toMillis()))
                        .build();
                p.addAfter(ctx.name(), "h2", h2);
                p.addAfter("h2", "h2-streams", new Http2MultiplexHandler(new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel stream) {
                        if (frames.marking != 0 && stream instanceof io.netty.handler.codec.http2.Http2StreamChannel s
                                && s.stream().id() == frames.marking) {
                            return; // a refused stream, opened and closed at once to mark it: no request
                        }
                        conn.lifetime().streamStarted();
                        stream.closeFuture().addListener(f -> conn.lifetime().streamEnded());
                        // (no HTTP/1 validation of the head: the frame codec checked it by HTTP/2's rules, which take
                        // a value with a leading space, as Envoy's codec takes it)
                        stream.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(true, false),
                                new HeadLimits(conn.hcm().maxRequestHeadersCount(), conn.maxRequestHeadBytes(),
                                        true, conn.hcm().headersWithUnderscores(), conn.stats()),
                                new RequestBodies(),
                                new Exchange(conn, true, null));
                    }
                }));
                conn.runtime().http2Opened(ctx.channel(), conn.direction() == StreamInfo.Direction.INBOUND);
                if (conn.drain() != null) {
                    conn.drain().http2Opened(ctx.channel());
                }
                // the connection's window (initial_connection_window_size, else the default one larger than a
                // stream's): the codec takes a WINDOW_UPDATE without a stream as the connection's. It has already
                // grown the window by twice what a larger stream window adds to 65535 bytes (which a WINDOW_UPDATE
                // cannot take back): the window is at least the one asked for
                int window = conn.hcm().http2().connectionWindowSize();
                var c = h2.connection();
                int now = c.local().flowController().initialWindowSize(c.connectionStream());
                if (window > now) {
                    ctx.channel().writeAndFlush(new DefaultHttp2WindowUpdateFrame(window - now));
                }
                p.addAfter("h2-streams", "h2-errors", new ChannelInboundHandlerAdapter() {
                    @Override
                    public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
                        LOG.log(Level.FINE, "HTTP/2 connection from " + conn.source() + " failed", cause);
                        // a connection error (a client that does not speak HTTP/2, a broken frame, an invalid
                        // message): the frame codec sends its GOAWAY with the error's code, then closes; a close from
                        // here, first, would be a graceful one (GOAWAY NO_ERROR, then up to the drain time)
                        if (io.netty.handler.codec.http2.Http2CodecUtil.getEmbeddedHttp2Exception(cause) == null) {
                            c.close();
                        }
                    }

                    @Override
                    public void userEventTriggered(ChannelHandlerContext c, Object evt) {
                        if (evt instanceof ChannelInputShutdownEvent) {
                            // the client closed its side: as Envoy, the connection ends and its streams are reset
                            // now; closed past the frame codec, whose own close would be a drain's (GOAWAY, then up
                            // to the drain time for the streams), for a client still there
                            ChannelHandlerContext codec = c.pipeline().context("h2");
                            (codec != null ? codec : c).close();
                            return;
                        }
                        c.fireUserEventTriggered(evt);
                    }
                });
            } else {
                // where each request begins, and its request_timeout, request_headers_timeout and, until its head
                // is read, stream_idle_timeout: timed per connection, from the decoder
                java.time.Duration streamIdle = conn.hcm().streamIdleTimeout();
                RequestTimeouts timeouts = RequestTimeouts.of(conn.hcm().lifetimes(), streamIdle != null ? streamIdle
                        : HttpConnectionManager.DEFAULT_STREAM_IDLE_TIMEOUT, conn.lifetime());
                Exchange exchange = new Exchange(conn, false, timeouts);
                p.addAfter(ctx.name(), "http1", new Http1ServerCodec(conn.http1Decoder(), conn.hcm().http1(),
                        timeouts));
                p.addAfter("http1", "http1-limits", new HeadLimits(conn.hcm().maxRequestHeadersCount(),
                        conn.maxRequestHeadBytes(), false, conn.hcm().headersWithUnderscores(), conn.stats()));
                p.addAfter("http1-limits", "http1-bodies", new RequestBodies());
                p.addAfter("http1-bodies", "http1-exchange", exchange);
                var hook = conn.runtime().http1Hook;
                if (hook != null) {
                    hook.accept(ctx.channel());
                }
            }
            p.remove(this);
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) throws Exception {
            if (evt instanceof ChannelInputShutdownEvent) {
                ctx.close(); // the client ended its side before a request began
                return;
            }
            super.userEventTriggered(ctx, evt);
        }
    }

    /**
     * Counts a connection in its connection manager's {@code downstream_cx_*} statistics, as Envoy's connection
     * manager does: open and active from when it reached the connection manager until it closes, by protocol once
     * the codec is chosen, and the bytes read from it and written to it as they pass.
     */
    static final class DownstreamCounter extends ChannelDuplexHandler {
        private final DownstreamStats stats;
        /** 0 before the codec is chosen, 1 HTTP/1, 2 HTTP/2. */
        private int codec;

        DownstreamCounter(DownstreamStats stats) {
            this.stats = stats;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            stats.connectionOpened();
            long opened = System.nanoTime();
            ctx.channel().closeFuture().addListener(
                    f -> stats.connectionClosed(codec, (System.nanoTime() - opened) / 1_000_000));
        }

        void codecChosen(boolean http2) {
            codec = http2 ? 2 : 1;
            stats.codecChosen(http2);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof ByteBuf b) {
                stats.received(b.readableBytes());
            }
            ctx.fireChannelRead(msg);
        }

        @Override
        public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
            if (msg instanceof ByteBuf b) {
                stats.sent(b.readableBytes());
            }
            ctx.write(msg, promise);
        }
    }

    /**
     * The connection manager's limits on a request head, checked on the head as it came, before RequestBodies adds
     * to it: at most {@code max_headers_count} header lines, and at most {@code max_request_headers_kb} of header
     * names and values with the path (Envoy's measure: a long path and long headers together can pass Netty's two
     * separate limits); and, for HTTP/1, one Host line and a name to every header. A head over a limit goes on
     * marked with a failed decoder result, which the exchange answers (431, or 400 for two Hosts or a nameless
     * header) before closing the connection.
     */
    static final class HeadLimits extends ChannelInboundHandlerAdapter {
        private final int maxHeaders;
        private final int maxHeadBytes;
        private final boolean http2;
        private final HeadersWithUnderscoresAction underscores;
        private final CodecStats codec;

        /**
         * @param underscores the connection manager's {@code headers_with_underscores_action}, applied here as
         *                    Envoy's codecs apply it: a header dropped counts toward no limit
         * @param stats the connection manager's statistics, whose codec counters count what {@code underscores}
         *              did (null: none)
         */
        HeadLimits(int maxHeaders, int maxHeadBytes, boolean http2, HeadersWithUnderscoresAction underscores,
                   DownstreamStats stats) {
            this.maxHeaders = maxHeaders;
            this.maxHeadBytes = maxHeadBytes;
            this.http2 = http2;
            this.underscores = underscores;
            this.codec = stats == null ? null : stats.codec();
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof HttpRequest r && r.decoderResult().isSuccess()) {
                Exception refused = check(r);
                if (refused != null) {
                    r.setDecoderResult(DecoderResult.failure(refused));
                }
            }
            ctx.fireChannelRead(msg);
        }

        private Exception check(HttpRequest r) {
            int lines = 0;
            int hosts = 0;
            long bytes = r.uri().length();
            List<CharSequence> dropped = null;
            for (var it = r.headers().iteratorCharSequence(); it.hasNext(); ) {
                var e = it.next();
                CharSequence name = e.getKey();
                // what Netty's HTTP/2 conversion adds is not the client's: its stream id and scheme, and the
                // transfer-encoding it gives a body without a length (HTTP/2 forbids the header itself)
                if (http2 && (AsciiString.regionMatches(name, true, 0, "x-http2-", 0, 8)
                        || AsciiString.contentEqualsIgnoreCase(name, HttpHeaderNames.TRANSFER_ENCODING))) {
                    continue;
                }
                if (!http2 && (name.length() == 0 || name.charAt(0) == ':')) {
                    // ": v" or ":path: /x": Netty reads a line that starts with its colon as a header without a
                    // name, which Envoy's codec refuses (HTTP/1 has no pseudo-headers)
                    return new RefusedHead(HttpResponseStatus.BAD_REQUEST, CODEC_ERROR, "a header without a name");
                }
                if (underscores != HeadersWithUnderscoresAction.ALLOW && UnderscoreHeaders.named(name)) {
                    if (underscores == HeadersWithUnderscoresAction.REJECT_REQUEST) {
                        // Envoy's HTTP/1 codec answers 400; its HTTP/2 codec resets the stream
                        if (codec != null) {
                            codec.underscoreRejected(http2);
                        }
                        return new RefusedHead(HttpResponseStatus.BAD_REQUEST, http2 ? UnderscoreHeaders.HTTP2_DETAILS
                                : UnderscoreHeaders.HTTP1_DETAILS, "a header name with an underscore", http2);
                    }
                    if (dropped == null) {
                        dropped = new ArrayList<>(2);
                    }
                    dropped.add(name);
                    continue;
                }
                lines++;
                bytes += name.length() + e.getValue().length();
                if (AsciiString.contentEqualsIgnoreCase(name, HttpHeaderNames.HOST)) {
                    hosts++;
                }
            }
            if (http2) {
                // as Envoy's HTTP/2 codec counts a stream's headers: its pseudo-headers too (Netty's conversion
                // made :authority the host, counted above; :method, :path and :scheme are on the request line and
                // in x-http2-scheme), their names and values in the bytes
                boolean connect = io.netty.handler.codec.http.HttpMethod.CONNECT.equals(r.method());
                String scheme = r.headers().get(
                        io.netty.handler.codec.http2.HttpConversionUtil.ExtensionHeaderNames.SCHEME.text());
                lines += 1 + (connect ? 0 : 1) + (scheme == null ? 0 : 1);
                // (a CONNECT has no :path: Netty's request line holds its :authority, already counted as the host)
                bytes += ":method".length() + r.method().name().length()
                        + (connect ? (hosts > 0 ? -r.uri().length() : 0) : ":path".length())
                        + (scheme == null ? 0 : ":scheme".length() + scheme.length())
                        + (hosts > 0 ? ":authority".length() - "host".length() : 0);
            }
            if (http2 && (lines > maxHeaders || bytes > maxHeadBytes)) {
                // as Envoy's HTTP/2 codec: the stream is reset (no 431), http2.header_overflow counted
                if (codec != null) {
                    codec.headerOverflow();
                }
                return new RefusedHead(HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "http2.too_many_headers",
                        "request headers over max_headers_count or max_request_headers_kb", true);
            }
            if (lines > maxHeaders) {
                return new RefusedHead(HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "http1.too_many_headers",
                        "more than " + maxHeaders + " request headers");
            }
            if (bytes > maxHeadBytes) {
                return new RefusedHead(HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "http1.headers_too_large",
                        "request headers larger than " + maxHeadBytes + " bytes");
            }
            if (dropped != null) {
                dropped.forEach(r.headers()::remove);
                if (codec != null) {
                    codec.underscoresDropped(http2, dropped.size());
                }
            }
            Http1Admission.Refusal twoHosts = Http1Admission.Refusal.HOSTS;
            return !http2 && hosts > 1 ? new RefusedHead(dev.inmesh.runtime.router.ReasonPhrases.status(twoHosts.status),
                    twoHosts.details, "more than one Host") : null;
        }
    }

    /** Envoy's response code details for an HTTP/1 request its codec could not read. */
    static final String CODEC_ERROR = Http1Admission.CODEC_ERROR;

    /**
     * Why a request head was refused before the connection manager took it (a codec error, as Envoy's HTTP/1 codec
     * refuses it): the status answered and Envoy's response code details.
     */
    static final class RefusedHead extends Exception {
        private static final long serialVersionUID = 1L;
        final transient HttpResponseStatus status;
        final String details;
        /** Whether the stream is reset rather than answered (an HTTP/2 codec's refusal). */
        final boolean reset;

        RefusedHead(HttpResponseStatus status, String details, String message) {
            this(status, details, message, false);
        }

        RefusedHead(HttpResponseStatus status, String details, String message, boolean reset) {
            super(message, null, false, false);
            this.status = status;
            this.details = details;
            this.reset = reset;
        }
    }

    /**
     * Where a request's body goes, decided per request: a body that arrives whole in the read that brought its head
     * (no body at all, or a small one: the common case) makes one {@link FullHttpRequest}, as an aggregator would;
     * one still arriving when that read is over streams: the head goes on alone, then the body's content as it
     * comes, its last content ending it, as Envoy's router takes a body (the exchange routes on the head and sends
     * the body upstream, see {@link dev.inmesh.runtime.router.RequestBodyStream}). No size limit applies: Envoy's
     * connection manager sets none on a streamed body. A chunked body loses {@code chunked} from its
     * {@code Transfer-Encoding}, and a gathered one gets no {@code Content-Length}: the router sends it chunked, as
     * Envoy's codec does a body of no stated length (one with no chunk but the last streams, so that it is not taken
     * for no body); a head refused by {@link HeadLimits} or the decoder goes on at once, without its body.
     */
    static final class RequestBodies extends ChannelInboundHandlerAdapter {
        /** A head whose body is being gathered within this read; null when none is. */
        private HttpRequest head;
        /** That body so far; null while it is empty. */
        private ByteBuf gathered;
        /** The body of the last head streams: its content goes on as it comes. */
        private boolean streaming;
        /** The body of the last head is dropped (the head was refused). */
        private boolean dropping;
        /** The last head's body is chunked. */
        private boolean chunkedBody;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (msg instanceof FullHttpRequest) {
                ctx.fireChannelRead(msg); // no body to wait for (h2 HEADERS with END_STREAM, a head Netty refused)
            } else if (msg instanceof HttpRequest r) {
                streaming = false;
                dropping = false;
                if (!r.decoderResult().isSuccess()) {
                    dropping = true;
                    ctx.fireChannelRead(whole(r, Unpooled.EMPTY_BUFFER, LastHttpContent.EMPTY_LAST_CONTENT));
                    return;
                }
                chunkedBody = r.headers().contains(HttpHeaderNames.TRANSFER_ENCODING);
                if (chunkedBody) {
                    HttpUtil.setTransferEncodingChunked(r, false); // decoded here (the codec took only chunked)
                }
                head = r;
            } else if (msg instanceof HttpContent c) {
                content(ctx, c);
            } else {
                ctx.fireChannelRead(msg);
            }
        }

        private void content(ChannelHandlerContext ctx, HttpContent c) {
            boolean last = c instanceof LastHttpContent;
            if (streaming) {
                streaming = !last;
                ctx.fireChannelRead(c);
                return;
            }
            HttpRequest h = head;
            if (dropping || h == null) {
                dropping &= !last;
                c.release();
                return;
            }
            if (!c.decoderResult().isSuccess()) {
                // a broken body (a bad chunk): the request is refused as a whole one with a broken head would be
                head = null;
                dropping = !last;
                h.setDecoderResult(c.decoderResult());
                c.release();
                ctx.fireChannelRead(whole(h, takeGathered(), LastHttpContent.EMPTY_LAST_CONTENT));
                return;
            }
            ByteBuf b = c.content();
            if (b.isReadable()) {
                if (gathered == null) {
                    gathered = b.retain();
                } else {
                    CompositeByteBuf all = gathered instanceof CompositeByteBuf cb ? cb
                            : ctx.alloc().compositeBuffer().addComponent(true, gathered);
                    gathered = all.addComponent(true, b.retain());
                }
            }
            if (last && chunkedBody && gathered == null) {
                // a chunked body with no chunk but the last: the head goes on alone, then its end, so that the
                // router sends the last chunk alone too, as Envoy's codec does (a whole request has no such body)
                head = null;
                ctx.fireChannelRead(h);
                ctx.fireChannelRead(c);
                return;
            }
            if (last) {
                head = null;
                LastHttpContent end = (LastHttpContent) c;
                ctx.fireChannelRead(whole(h, takeGathered(), end));
            }
            c.release();
        }

        private ByteBuf takeGathered() {
            ByteBuf b = gathered;
            gathered = null;
            return b == null ? Unpooled.EMPTY_BUFFER : b;
        }

        private static FullHttpRequest whole(HttpRequest h, ByteBuf body, LastHttpContent end) {
            var full = new DefaultFullHttpRequest(h.protocolVersion(), h.method(), h.uri(), body, h.headers(),
                    end.trailingHeaders());
            full.setDecoderResult(h.decoderResult());
            return full;
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            passHead(ctx);
            ctx.fireChannelReadComplete();
        }

        /** A head whose body is still arriving goes on now, its body after it as it comes. */
        private void passHead(ChannelHandlerContext ctx) {
            HttpRequest h = head;
            if (h != null) {
                head = null;
                streaming = true;
                ctx.fireChannelRead(h);
                if (gathered != null) {
                    ctx.fireChannelRead(new DefaultHttpContent(takeGathered()));
                }
            }
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof CodecReset) {
                // the codec resets the stream for what came after the head in this read: the head was decoded, and
                // goes on (as Envoy's codec had passed it on), for the exchange to end as the codec reset it
                passHead(ctx);
            }
            ctx.fireUserEventTriggered(evt);
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            ReferenceCountUtil.release(takeGathered());
        }
    }

    /**
     * The requests of one HTTP/1 connection (or one h2c stream) through the router, answered in order, one at a time.
     * The connection keeps reading while a request is in flight (no read-interest change per request); a pipelined
     * request that arrives meanwhile waits in {@link #pending}, and only then is reading paused until the queue is
     * drained. A response is written without flushing and flushed once: when its last content is written, or, for a
     * body that streams over several upstream reads, once per event-loop turn. A request whose body streams
     * ({@link RequestBodies}) is routed on its head; its content goes to the router's {@link RequestBodyStream} as it
     * comes, and reading pauses while that stream reports back-pressure, until it drains.
     */
    static final class Exchange extends ChannelInboundHandlerAdapter {
        private final Connection conn;
        private final boolean http2;
        /**
         * Where the HTTP/1 connection's requests begin, and their timeouts until read ({@link RequestTimeouts}); null
         * for h2c.
         */
        private final RequestTimeouts timeouts;
        /** An h2c stream's request_timeout while its body arrives (see forward); null when none is pending. */
        private io.netty.util.concurrent.ScheduledFuture<?> streamTimer;
        /** Pipelined requests waiting their turn: whole ones, or a streamed head followed by its content so far. */
        private final java.util.ArrayDeque<HttpObject> pending = new java.util.ArrayDeque<>();
        private HttpClientResponse streaming;
        /** The fault filter's response rate limit on the response being sent, or null for none. */
        private StreamRateLimiter limiter;
        private RouterResponse inFlight;
        private long bytesSent;
        private boolean paused;
        /**
         * The {@code accept-encoding} of the request being answered, as the compressor filter read it, or null; and
         * the gzip stream of its response's body while the filter compresses it, else null.
         */
        private String acceptEncoding;
        private CompressorFilter.Gzip gzip;
        /** An HTTP/1 request is being answered: a request read meanwhile waits in {@link #pending}. */
        private boolean busy;
        /** The UNESCAPE_AND_REDIRECT answer of the request being handled, for its router request; null for none. */
        private PathNormalizer.Refusal pathRedirect;
        /**
         * An HTTP/1 request was refused and the connection is closing: nothing more it sent is handled, since the
         * bytes after a refused head (a body in a coding the proxy cannot read, say) are not requests.
         */
        private boolean closing;
        /** The body of the request being handled, while its content is still arriving; else null. */
        private RequestBodyStream body;
        /** Where {@link #body} is written: the context the router runs its exchange on. */
        private ContextInternal bodyContext;
        /** The gRPC-Web translation of the request whose body is {@link #body}, or null. */
        private GrpcWeb bodyWeb;
        /** The request whose body streams, until its response comes: cancelled if the client goes away. */
        private RouterRequest streamed;
        /**
         * The request forwarded and not answered yet, its body whole or streaming: cancelled when the connection
         * (HTTP/1) or the stream (HTTP/2) goes away before its answer, as Envoy resets the upstream request on a
         * downstream reset, rather than leave the attempt running (and retried) for nobody. An HTTP/1 client that only
         * half-closes (FIN) still gets its answer: its connection stays until then.
         */
        private RouterRequest awaiting;
        /**
         * The codec's response code details of the client's RST_STREAM on this h2c stream ({@code http2.remote_reset},
         * {@code http2.remote_refuse}), or null: the request then ends DR rather than DC.
         */
        private String remoteReset;
        /**
         * The details of the codec's reset of this h2c stream ({@link CodecReset}), or null: the request then ends
         * DPE rather than DC.
         */
        private String codecReset;
        /** This h2c stream's request was taken (and is logged by its exchange). */
        private boolean requested;
        /** Reading was paused because the body stream reported back-pressure; it resumes on the drain. */
        private boolean bodyPaused;
        private final Handler<Void> bodyDrained = v -> {
            if (bodyPaused) {
                bodyPaused = false;
                if (!this.readPaused && !this.closing) {
                    this.ctx.channel().config().setAutoRead(true);
                }
            }
        };
        /** Reading was paused because requests are waiting. */
        private boolean readPaused;
        /** Body content was written but not flushed; a flush task is queued on the event loop. */
        private boolean flushPending;
        private ChannelHandlerContext ctx;
        private final Runnable flushTask = () -> {
            writeHead();
            if (flushPending) {
                flushPending = false;
                ctx.channel().flush();
            }
        };
        /**
         * The head of the response being sent (HTTP/2, or HTTP/1.1 chunked), held until its body's first chunk, its
         * end or its flush: an upstream answer that ended with its head (a gRPC trailers-only answer) goes on as one
         * HEADERS frame that ends the stream, as Envoy passes it, not as HEADERS and an empty DATA frame (gRPC clients
         * then lose its status); over HTTP/1.1, with {@code content-length: 0} rather than an empty chunked body, as
         * Envoy's HTTP/1 codec writes a headers-only answer.
         */
        private HttpResponse pendingHead;

        /** Writes the held head of the response being sent, if any. */
        private void writeHead() {
            HttpResponse h = pendingHead;
            if (h != null) {
                pendingHead = null;
                ctx.channel().write(h, ctx.channel().voidPromise());
            }
        }

        Exchange(Connection conn, boolean http2, RequestTimeouts timeouts) {
            this.conn = conn;
            this.http2 = http2;
            this.timeouts = timeouts;
        }

        @Override
        public void handlerAdded(ChannelHandlerContext ctx) {
            this.ctx = ctx;
            if (timeouts != null) {
                timeouts.start(ctx.channel(), this);
            }
        }

        /** An h2c stream's request_timeout ran out with its body still arriving and no answer yet: as HTTP/1's. */
        private void streamTimedOut(RouterRequest rr) {
            streamTimer = null;
            if (streamed == rr && body != null) {
                if (conn.stats() != null) {
                    conn.stats().requestTimeout();
                }
                conn.runtime().router.requestTimeout(rr);
            }
        }

        /**
         * The connection manager's {@code request_timeout}, {@code request_headers_timeout} or, before the head was
         * read, {@code stream_idle_timeout} ran out for the request being read ({@link RequestTimeouts}), as Envoy's
         * connection manager ends it: a request whose head is not whole is answered {@code 408} ({@code request header
         * timeout}, {@code downstream_rq_header_timeout}; {@code request timeout}, {@code downstream_rq_timeout}; or
         * {@code stream timeout}, flag SI, {@code downstream_rq_idle_timeout}) and the connection closes; one whose
         * body is still arriving ends in the router, which answers {@code 408 request timeout}, and the connection
         * closes after it. False while an earlier request is still being answered: this one is not timed yet.
         *
         * @param headRead whether the request's head was read
         * @param which the timeout that ran out ({@link RequestTimeouts.Expired#REQUEST} once the head was read)
         * @param began when the request began ({@link System#nanoTime}): its first byte, where Envoy's stream starts
         */
        boolean requestTimedOut(boolean headRead, RequestTimeouts.Expired which, long began) {
            if (closing || !ctx.channel().isActive()) {
                return true;
            }
            RouterRequest waiting = streamed;
            if (busy && (waiting == null || body == null || !headRead)) {
                // a request read while an earlier one is answered (a head arriving after a streamed body ended, or
                // read and waiting its turn), as Envoy's codec reads it later: timed from that answer on
                return false;
            }
            DownstreamStats stats = conn.stats();
            if (stats != null) {
                switch (which) {
                    case HEADERS -> stats.requestHeaderTimeout();
                    case REQUEST -> stats.requestTimeout();
                    case IDLE -> stats.idleTimeout();
                }
            }
            if (headRead) {
                if (waiting != null) {
                    conn.runtime().router.requestTimeout(waiting); // its answer comes through forward, 408
                }
                return true;
            }
            conn.lifetime().streamStarted(); // Envoy's stream began with the request's first byte
            busy = true;
            refuseFurther();
            // timed, as Envoy's stream, from the request's first byte (its %DURATION% the wait, not the reply's)
            RouterRequest rr = unparsed("HTTP/1.1").startedAt(began);
            var router = conn.runtime().router;
            respond(ctx, switch (which) {
                case HEADERS -> router.localReply(rr, 408, "request header timeout", "request_header_timeout", null);
                case REQUEST -> router.localReply(rr, 408, "request timeout", "request_overall_timeout", null);
                case IDLE -> router.localReply(rr, 408, "stream timeout", "stream_idle_timeout",
                        ResponseFlag.STREAM_IDLE_TIMEOUT);
            }, HttpVersion.HTTP_1_1, false, false);
            return true;
        }

        @Override
        public void handlerRemoved(ChannelHandlerContext ctx) {
            releasePending();
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (closing) {
                ReferenceCountUtil.release(msg);
                return;
            }
            if (!(msg instanceof HttpRequest req)) {
                if (msg instanceof HttpContent c) {
                    if (pending.isEmpty()) {
                        bodyContent(c);
                    } else {
                        pending.add(c); // the body of a request that waits its turn
                    }
                    return;
                }
                ctx.fireChannelRead(msg);
                return;
            }
            if (busy) {
                // pipelined: answered after the ones before it; no more reading until the queue is worked off
                pending.add(req);
                if (!readPaused) {
                    readPaused = true;
                    ctx.channel().config().setAutoRead(false);
                }
                return;
            }
            handle(ctx, req);
        }

        /**
         * The trailers that end a request's body, as they go upstream (Envoy's router passes them on): an HTTP/2
         * request's, and an HTTP/1 request's under {@code enable_trailers} (without it Envoy's HTTP/1 codec drops
         * them); null for none.
         */
        private MultiMap trailers(LastHttpContent end) {
            if (end.trailingHeaders().isEmpty() || !http2 && !conn.hcm().http1().enableTrailers()) {
                return null;
            }
            MultiMap trailers = MultiMap.caseInsensitiveMultiMap();
            for (Map.Entry<String, String> e : end.trailingHeaders()) {
                trailers.add(e.getKey(), e.getValue());
            }
            return trailers;
        }

        /** Content of the streamed body of the request being handled: written to its stream, with back-pressure. */
        private void bodyContent(HttpContent c) {
            RequestBodyStream s = body;
            boolean last = c instanceof LastHttpContent;
            try {
                if (s == null) {
                    return; // the request was refused or answered: the rest of its body goes nowhere
                }
                if (!c.decoderResult().isSuccess()) {
                    // a broken body (a bad chunk, the client closing mid-body): the request cannot go on
                    LOG.log(Level.FINE, "request body from " + conn.source() + " failed", c.decoderResult().cause());
                    body = null;
                    ctx.close();
                    return;
                }
                ByteBuf b = c.content();
                Buffer chunk = b.isReadable() ? Buffer.buffer(ByteBufUtil.getBytes(b)) : null;
                if (bodyWeb != null && bodyWeb.textRequest()) {
                    boolean refusedBefore = bodyWeb.failure() != null;
                    chunk = bodyWeb.decode(chunk == null ? Buffer.buffer() : chunk, last);
                    if (chunk == null) {
                        // not base64: refused once; the rest of the body goes nowhere (while it still comes, an
                        // HTTP/1 connection closes after the answer, as for any answer before its request ended)
                        if (last) {
                            body = null;
                        }
                        if (!refusedBefore) {
                            refuseGrpcWebBody(bodyWeb);
                        }
                        return;
                    }
                }
                if (chunk != null && chunk.length() > 0) {
                    bodyContext.dispatch(chunk, s::write);
                }
                if (last) {
                    body = null;
                    MultiMap trailers = trailers((LastHttpContent) c);
                    bodyContext.dispatch(() -> s.end(trailers));
                    cancelStreamTimer(); // the request is whole
                } else if (!bodyPaused && s.writeQueueFull()) {
                    bodyPaused = true;
                    ctx.channel().config().setAutoRead(false); // until the stream drains (bodyDrained)
                }
            } finally {
                c.release();
            }
        }

        /**
         * The gRPC-Web filter found the streamed body is not base64: as Envoy's local reply from a filter, the request
         * ends with {@code 400} ({@link GrpcWeb#BAD_REQUEST_BODY}), or, once its answer began, the stream is reset.
         */
        private void refuseGrpcWebBody(GrpcWeb web) {
            RouterRequest waiting = streamed;
            if (waiting == null) {
                ctx.close();
                return;
            }
            cancelStreamTimer();
            bodyContext.dispatch(() -> conn.runtime().router.refuseBody(waiting, 400, GrpcWeb.BAD_REQUEST_BODY,
                    web.failure()));
        }

        private void handle(ChannelHandlerContext ctx, HttpRequest req) {
            if (!http2 && req.decoderResult().cause()
                    instanceof io.netty.handler.codec.PrematureChannelClosureException) {
                // the client closed mid-head: not a codec error, as Envoy's stream, begun with the first byte, is
                // reset by the close (logged as it closes: channelInactive)
                ReferenceCountUtil.release(req);
                return;
            }
            if (!http2) {
                conn.lifetime().streamStarted(); // an h2c stream counts from its channel (CodecSelector)
            }
            requested = true;
            try {
                if (!req.decoderResult().isSuccess()) {
                    Throwable cause = req.decoderResult().cause();
                    if (cause instanceof RefusedHead h && h.reset) {
                        resetRefused(ctx, h.details);
                    } else if (cause instanceof RefusedHead h) {
                        refuse(ctx, null, h.status, h.details, true);
                    } else if (cause instanceof TooLongHttpHeaderException
                            || cause instanceof TooLongHttpLineException) {
                        // a head over max_request_headers_kb: 431, as Envoy answers it
                        refuse(ctx, null, HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                "http1.headers_too_large", true);
                    } else {
                        refuse(ctx, null, HttpResponseStatus.BAD_REQUEST, CODEC_ERROR, true);
                    }
                    return;
                }
                HttpConnectionManager hcm = conn.hcm();
                Http1Admission.Refusal refused = http2 ? nonRelativePath(req) : Http1Requests.admit(req, hcm.http1(),
                        hcm.useRemoteAddress() && hcm.xffNumTrustedHops() == 0, conn.tls());
                if (refused != null) {
                    refused.count(conn.stats());
                    refuse(ctx, req, dev.inmesh.runtime.router.ReasonPhrases.status(refused.status), refused.details, refused.codecError);
                    return;
                }
                String target = PathNormalizer.ofRequest(req.uri(), conn.hcm().pathNormalization());
                PathNormalizer.Refusal pathRefusal = PathNormalizer.refusal(req.uri(), target,
                        conn.hcm().pathNormalization(), req.headers().get(HttpHeaderNames.CONTENT_TYPE));
                if (pathRefusal != null && pathRefusal.location() == null) {
                    // an escaped slash (REJECT_REQUEST), or %00: 400
                    pathRefusal.count(conn.stats());
                    refuse(ctx, req, HttpResponseStatus.BAD_REQUEST, PathNormalizer.Refusal.DETAILS, false);
                    return;
                }
                // an escaped slash UNESCAPE_AND_REDIRECT redirects: the router answers it as the request it routes
                // would be (logged with the path it is sent to; the connection kept, as Envoy's local reply keeps it)
                pathRedirect = pathRefusal;
                req.setUri(target);
                if (!http2) {
                    busy = true; // one request at a time
                    // as Envoy's HTTP/1 codec: h2c upgrades are not taken, the request is served as HTTP/1.1
                    Http1Requests.withoutH2cUpgrade(req);
                }
                if (io.netty.handler.codec.http.HttpMethod.CONNECT.equals(req.method())) {
                    // as Envoy's connection manager: CONNECT is an upgrade, which no upgrade_configs here enable
                    refuseUpgrade(ctx, req, true);
                    return;
                }
                String upgrade = http2 ? null : Http1Requests.upgradeType(req);
                if (upgrade != null) {
                    if (!"websocket".equalsIgnoreCase(upgrade)) {
                        refuseUpgrade(ctx, req, false);
                        return;
                    }
                    // a websocket one: the router decides once it knows the route, whose own upgrade_configs entry
                    // decides over the connection manager's
                    // the bytes after the head belong to the relay: stop decoding them as requests
                    ctx.channel().config().setAutoRead(false);
                    upgrade(ctx, req);
                    return;
                }
                if (req.headers().contains(HttpHeaderNames.EXPECT)) {
                    expectation(ctx, req);
                }
                forward(ctx, req);
            } finally {
                ReferenceCountUtil.release(req);
            }
        }

        /**
         * An h2c request whose {@code :path} does not begin with {@code /} ({@code OPTIONS *}), which the codec takes:
         * as Envoy's connection manager refuses it whatever the protocol, before filters and routing, 404
         * {@code absolute_path_rejected} (HTTP/1's is refused by {@link Http1Requests#admit}); null for any other.
         */
        private static Http1Admission.Refusal nonRelativePath(HttpRequest req) {
            return req.uri().startsWith("/") || io.netty.handler.codec.http.HttpMethod.CONNECT.equals(req.method())
                    ? null : Http1Admission.Refusal.ABSOLUTE_PATH;
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (!http2 && evt instanceof ChannelInputShutdownEvent) {
                // Auto-read stays on, so the end of input is seen at once. As Envoy's connection manager, whose
                // connections have no half-close (its connection turns the end of input into a close): the
                // connection closes, and a request not answered yet, in flight or pipelined behind one, is reset
                // (channelInactive), logged 0 DC. A client that closed its socket looks the same until a write
                // fails, and its request would otherwise go on upstream and be counted as answered.
                ctx.close();
                return;
            }
            if (evt instanceof CodecReset reset) {
                // the codec resets the stream, which now closes (channelInactive): a request taken ends with the
                // codec's details; a stream whose head the codec refused is logged now, without one
                codecReset = reset.details;
                if (!requested) {
                    reportReset(conn, reset.details);
                }
                return;
            }
            if (evt instanceof io.netty.handler.codec.http2.Http2ResetFrame reset) {
                // the client reset the stream, which now closes (channelInactive): as Envoy's HTTP/2 codec tells its
                // connection manager (Http2ResponseCodeDetails in source/common/http/http2/codec_impl.cc)
                remoteReset = reset.errorCode() == Http2Error.REFUSED_STREAM.code() ? "http2.remote_refuse"
                        : "http2.remote_reset";
            }
            ctx.fireUserEventTriggered(evt);
        }

        /**
         * Records a response the client did not take whole, its stream or connection gone: DPE with the codec's
         * details when the codec reset its stream, DR with the codec's details when the client did, else DC.
         */
        private void callerGone(RouterResponse r, long sent) {
            var router = conn.runtime().router;
            if (codecReset != null) {
                router.codecReset(r, sent, codecReset);
            } else if (remoteReset != null) {
                router.callerReset(r, sent, remoteReset);
            } else {
                router.abort(r, sent, ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION);
            }
        }

        /**
         * An {@code Expect: 100-continue}, answered by the proxy and not passed on, as Envoy's connection manager does
         * without {@code proxy_100_continue}: {@code 100 Continue} when the body is still to come (the request is
         * handled only once those before it are answered, so the interim answer never overtakes theirs). With
         * {@code proxy_100_continue} it goes upstream, and the upstream's {@code 100 Continue} is relayed
         * ({@link #forward}). Any other expectation goes upstream as it came, as Envoy passes it: the application
         * answers it.
         */
        private void expectation(ChannelHandlerContext ctx, HttpRequest req) {
            if (HttpUtil.is100ContinueExpected(req) && !conn.hcm().proxy100Continue()) {
                HttpUtil.set100ContinueExpected(req, false);
                if (!(req instanceof FullHttpRequest)) {
                    writeContinue(ctx);
                }
            }
        }

        /** A {@code 100 Continue} to the client: an HTTP/1.1 one, or HTTP/2 interim headers. */
        private static void writeContinue(ChannelHandlerContext ctx) {
            ctx.writeAndFlush(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE,
                    Unpooled.EMPTY_BUFFER), ctx.voidPromise());
        }

        /** The connection ends: what the client sent after the current request is not read as requests. */
        void refuseFurther() {
            closing = true;
            ctx.channel().config().setAutoRead(false);
            releasePending();
        }

        /**
         * Closes the HTTP/1 connection once {@code written}, its last write, went out, within the connection manager's
         * {@code delayed_close_timeout}, and, when what the client sent was not all read (a request refused, or
         * answered before its body ended), once the client closed too or the timeout ran out again
         * ({@link DelayedClose}).
         */
        private void closeAfter(ChannelFuture written, boolean requestRead) {
            DownstreamStats stats = conn.stats();
            DelayedClose.close(ctx.channel(), written, conn.hcm().lifetimes().delayedCloseTimeout(),
                    stats == null ? null : stats::delayedCloseTimeout, requestRead);
        }

        /** Whether what the client sent so far was read as requests: no body still arriving, nothing refused. */
        private boolean requestRead() {
            return body == null && !closing;
        }

        private void releasePending() {
            for (HttpObject r; (r = pending.poll()) != null; ) {
                ReferenceCountUtil.release(r);
            }
        }

        private RouterRequest routerRequest(HttpRequest req) {
            MultiMap headers;
            if (!http2 && req.headers() instanceof HeadersMultiMap decoded) {
                // HTTP/1: the decoder wrote the headers into a Vert.x map already (see HEADERS): no copy
                headers = decoded;
                if (!headers.isEmpty()) {
                    headers.remove("x-http2-stream-id").remove("x-http2-scheme");
                }
            } else {
                headers = MultiMap.caseInsensitiveMultiMap();
                for (Map.Entry<String, String> e : req.headers()) {
                    if (!e.getKey().startsWith(":") && !e.getKey().equalsIgnoreCase("x-http2-stream-id")
                            && !e.getKey().equalsIgnoreCase("x-http2-scheme")) {
                        headers.add(e.getKey(), e.getValue());
                    }
                }
            }
            // (Netty's HTTP/2 conversion made the :authority the Host; an h2c request with neither is an invalid
            // message, which never gets here, as Envoy's codec refuses it; an HTTP/1 request without a Host is
            // refused, missing_host_header, and logged without one, "-", as Envoy's; it is not routed)
            String authority = req.headers().get(HttpHeaderNames.HOST);
            // the connection manager's strip_*_host_port and strip_trailing_host_dot, before filters and routes
            authority = dev.inmesh.runtime.router.HostNormalizer.apply(conn.hcm(), authority,
                    conn.destination().getPort(), req.method().name());
            Buffer body = req instanceof FullHttpRequest full && full.content().isReadable()
                    && trailers(full) == null ? Buffer.buffer(ByteBufUtil.getBytes(full.content())) : null;
            // the connection manager's gRPC-Web filter: the headers now, a whole body now, a streamed one as it comes
            GrpcWeb web = conn.grpcWeb() ? GrpcWeb.request(headers) : null;
            if (web != null && req instanceof FullHttpRequest) {
                body = web.decodeWhole(body); // null when it is not base64: forward refuses it
            }
            var direct = ctx == null ? ListenerDispatch.PhysicalAddresses.SAME : ListenerDispatch.PhysicalAddresses.of(
                    ctx.channel().remoteAddress(), ctx.channel().localAddress(), conn.source(), conn.destination());
            PathNormalizer.Refusal redirect = pathRedirect;
            pathRedirect = null;
            return new RouterRequest(conn.direction(), HttpMethod.valueOf(req.method().name()), req.uri(), authority,
                    conn.tls() ? "https" : "http", headers, body, conn.sourceHostPort(), conn.destinationHostPort(),
                    conn.originalDestination(), http2 ? "HTTP/2" : req.protocolVersion().text())
                    .serverHeader(conn.hcm().serverHeader()).generateRequestId(conn.hcm().generateRequestId())
                    .alwaysSetRequestIdInResponse(conn.hcm().alwaysSetRequestIdInResponse())
                    .websocketUpgrade(conn.hcm().websocketUpgrade())
                    .internal(conn.hcm()).headerCase(conn.hcm()).routerFilter(conn.hcm().router())
                    .streamIdleTimeout(conn.hcm().streamIdleTimeout()).faultFilter(conn.hcm())
                    .maxStreamDuration(conn.hcm().lifetimes().maxStreamDuration())
                    .corsFilter(conn.hcm()).statsFilters(conn.hcm()).statefulSession(conn.hcm()).lua(conn.lua())
                    .downstreamStats(conn.stats()).accessLogs(conn.accessLogs()).localReply(conn.localReply())
                    .downstreamTls(conn.tlsServerName(), conn.mutualTls()).forwardClientCert(conn.hcm())
                    .clientCertificate(conn.peerCertificate(), conn.clientCertElement())
                    .downstreamPrincipals(conn.peerPrincipal(), conn.localPrincipal())
                    .downstreamTls(conn.tlsDetails())
                    .listenerBufferLimit(conn.listenerBufferLimit())
                    .rbac(conn.rbac(), conn.peerIdentity(), conn.localIdentity())
                    .directAddresses(direct.remote(), direct.local())
                    .originalSource(originalSource(ctx))
                    .grpcWeb(web).localRateLimit(conn.localRateLimit()).tracer(conn.tracer(), conn.tracingIngress())
                    .statsOverrides(conn.statsOverrides()).bufferAndHeaderMutation(conn.hcm(), conn.headerMutation())
                    .pathRedirect(redirect);
        }

        /** original_src: where the request's upstream connections leave from, or null (the cluster's address). */
        private static dev.inmesh.runtime.upstream.OriginalSrcBind originalSource(ChannelHandlerContext ctx) {
            OriginalSource source = ctx == null ? null : OriginalSource.of(ctx.channel());
            return source == null ? null : source.bind();
        }

        private void forward(ChannelHandlerContext ctx, HttpRequest req) {
            boolean keepAlive = http2 || Http1Requests.keepAlive(req);
            // answered in the request's version, HTTP/1.0 or 1.1 (a higher 1.x is read as 1.1, RFC 9110 2.5)
            HttpVersion version = req.protocolVersion().minorVersion() == 0 ? HttpVersion.HTTP_1_0
                    : HttpVersion.HTTP_1_1;
            boolean head = req.method().name().equals("HEAD");
            RouterRequest rr = routerRequest(req);
            Compressor compressor = conn.compressor();
            // read now; the router takes it off once the request is routed, as the route's settings say
            acceptEncoding = compressor == null ? null : CompressorFilter.acceptEncoding(rr.headers());
            if (compressor != null) {
                rr.compressor(compressor, conn.hcm().compressorFilterName());
                DownstreamStats ds = conn.stats();
                if (ds != null) {
                    // the request direction's, for each request the filter decodes: no request is compressed
                    ds.compressor(compressor.libraryName(), compressor.responseDirection()).requestNotCompressed();
                }
            }
            if (conn.hcm().proxy100Continue() && HttpUtil.is100ContinueExpected(req)) {
                // as Envoy's with proxy_100_continue: the expectation goes upstream, whose 100 Continue is relayed
                // (the router relays the first only); an HTTP/1.0 client, which expects none, gets none
                rr.proxy100Continue(v -> writeContinue(ctx));
            }
            // inbound, as Istio's sidecar: a caller that sent its metadata exchange headers gets this workload's
            // (each when it sent that one); noted now, as the router takes them off the request
            ProxyRuntime rt = conn.runtime();
            boolean inbound = conn.direction() == StreamInfo.Direction.INBOUND;
            String answerPeer = inbound && rt.peerMetadata != null
                    && rr.headers().contains(PEER_METADATA) ? rt.peerMetadata : null;
            String answerPeerId = inbound && rt.peerMetadataId != null
                    && rr.headers().contains(PEER_METADATA_ID) ? rt.peerMetadataId : null;
            ContextInternal vctx = conn.runtime().context(ctx.channel());
            MultiMap trailers = req instanceof FullHttpRequest full ? trailers(full) : null;
            if (trailers != null) {
                // a body that came whole with its trailers goes as a streamed one, which carries them
                RequestBodyStream s = new RequestBodyStream();
                rr.bodyStream(s);
                ByteBuf content = ((FullHttpRequest) req).content();
                Buffer whole = content.isReadable() ? Buffer.buffer(ByteBufUtil.getBytes(content)) : null;
                vctx.dispatch(() -> {
                    s.write(whole);
                    s.end(trailers);
                });
            } else if (!(req instanceof FullHttpRequest)) {
                // the body is still arriving: it goes upstream as it comes (bodyContent)
                RequestBodyStream s = new RequestBodyStream();
                s.drainHandler(bodyDrained);
                rr.bodyStream(s);
                body = s;
                bodyContext = vctx;
                bodyWeb = rr.grpcWeb();
                streamed = rr;
                Duration limit = conn.hcm().lifetimes().requestTimeout();
                if (http2 && limit != null) {
                    // an h2c stream whose body is still arriving (one whole with its head needs no timer): its
                    // request_timeout, from its head on, until its body ends or its answer begins
                    streamTimer = ctx.channel().eventLoop().schedule(() -> streamTimedOut(rr),
                            Math.max(1, RequestTimeouts.nanos(limit)), TimeUnit.NANOSECONDS);
                }
            }
            RouteTable routes = conn.routes();
            awaiting = rr;
            GrpcWeb web = rr.grpcWeb();
            vctx.dispatch(() -> {
                if (web != null && web.failure() != null) {
                    // a whole -text body that is not base64, refused by the gRPC-Web filter before routing
                    respond(ctx, answerPeer(conn.runtime().router.localReply(rr, 400, GrpcWeb.BAD_REQUEST_BODY,
                            web.failure(), null), answerPeer, answerPeerId), version, keepAlive, head);
                    return;
                }
                if (routes == null) {
                    respond(ctx, answerPeer(conn.runtime().router.localReply(rr, 404, "", "route_not_found",
                            ResponseFlag.NO_ROUTE_FOUND), answerPeer, answerPeerId), version, keepAlive, head);
                    return;
                }
                conn.runtime().router.forward(rr, routes, conn.clusters())
                        .onComplete(ar -> {
                            if (ar.succeeded()) {
                                respond(ctx, answerPeer(ar.result(), answerPeer, answerPeerId), version, keepAlive,
                                        head);
                            } else {
                                LOG.log(Level.WARNING, "router failed", ar.cause());
                                sendError(ctx, HttpResponseStatus.INTERNAL_SERVER_ERROR);
                            }
                        });
            });
        }

        /** Adds this workload's metadata exchange answer (the values not null) to a response; returns it. */
        private static RouterResponse answerPeer(RouterResponse r, String peer, String peerId) {
            if (peer != null) {
                r.headers().set(PEER_METADATA, peer);
            }
            if (peerId != null) {
                r.headers().set(PEER_METADATA_ID, peerId);
            }
            return r;
        }

        private void respond(ChannelHandlerContext ctx, RouterResponse r, HttpVersion version, boolean keepAlive,
                             boolean head) {
            Channel ch = ctx.channel();
            var router = conn.runtime().router;
            if (timeouts != null && streamed != null && body != null) {
                // the answer to the request still being read began: its timeout stops (once its body ended, the
                // request being read is a later one, timed from this answer on)
                timeouts.answered();
            }
            cancelStreamTimer();
            streamed = null;
            awaiting = null;
            if (!http2 && (conn.draining() || conn.lifetime().draining())) {
                // as Envoy's connection manager while its listener or the connection drains (its idle timeout, its
                // max_connection_duration, its last allowed request): this answer ends the connection
                keepAlive = false;
            }
            if (body != null && !http2) {
                // as Envoy's HTTP/1 codec: a response that starts before its request ended closes the connection
                // after it (nothing else tells where the rest of the body ends)
                keepAlive = false;
            }
            if (!ch.isActive()) {
                if (r.upstream() != null) {
                    r.upstream().request().reset();
                }
                callerGone(r, 0);
                return;
            }
            HttpResponseStatus status = dev.inmesh.runtime.router.ReasonPhrases.status(r.status());
            GrpcWeb web = r.grpcWeb();
            if (r.isLocalReply()) {
                Buffer b = web == null ? r.localBody() : web.localReply(r.status(), r.headers(), r.localBody());
                respondWhole(ctx, r, b, version, keepAlive);
                return;
            }
            if (web != null) {
                web.responseHeaders(r.status(), r.headers());
                if (web.buffersResponse()) {
                    respondNonGrpc(ctx, r, web, version, keepAlive);
                    return;
                }
            }
            Compressor filter = conn.compressor();
            // as Envoy's filter: the route's CompressorPerRoute, else its virtual host's, over the filter's own
            Compressor compressor = filter == null ? null
                    : CompressorFilter.forRoute(filter, conn.hcm().compressorFilterName(), r.route());
            DownstreamStats ds = conn.stats();
            // the connection manager's compressor filter, on the headers the router made; not for a gRPC-Web
            // answer: Envoy's compressor, before the router, sees its upstream's application/grpc
            CompressorFilter.Gzip gz = compressor == null || web != null ? null
                    : CompressorFilter.response(compressor, head, acceptEncoding, r.status(), r.headers(),
                            ds == null ? null : ds.compressor(compressor.libraryName(),
                                    compressor.responseDirection()));
            gzip = gz;
            HttpResponse resp;
            if (r.headers() instanceof HttpHeaders h) {
                resp = new DefaultHttpResponse(version, status, h); // the router's map is ours now: no copy
            } else {
                resp = new DefaultHttpResponse(version, status, RESPONSE_HEADERS);
                copyHeaders(r.headers(), resp);
            }
            boolean bodyAllowed = !head && r.status() >= 200 && r.status() != 204 && r.status() != 304;
            if (!http2 && bodyAllowed && !resp.headers().contains(HttpHeaderNames.CONTENT_LENGTH)) {
                if (version.equals(HttpVersion.HTTP_1_1)) {
                    HttpUtil.setTransferEncodingChunked(resp, true);
                } else {
                    keepAlive = false; // HTTP/1.0 without a length: the body ends with the connection
                }
            }
            connectionHeader(resp, version, keepAlive);
            boolean keep = keepAlive;
            HttpClientResponse up = r.upstream();
            streaming = up;
            inFlight = r;
            bytesSent = 0;
            // Nothing is flushed until the body ends (or an upstream read ends): a response that arrived in one read
            // leaves in one write.
            if (http2 || HttpUtil.isTransferEncodingChunked(resp)) {
                // held: the framing of an answer that ends with its head is settled at its end (one HEADERS frame;
                // over HTTP/1.1 a length of 0 rather than an empty chunked body, as Envoy's HTTP/1 codec writes it)
                pendingHead = resp;
            } else {
                ch.write(resp, ch.voidPromise());
            }
            flushPending = true;
            boolean[] bodyRefused = {false};
            Handler<Void> ends = v -> {
                if (streaming == up && !HeaderValues.valid(up.trailers())) {
                    // as Envoy's HTTP/2 codec, a CR, LF or NUL in a trailer resets the stream: a protocol error
                    upstreamFailed(up, r, new IllegalArgumentException("a trailer value with a CR, LF or NUL"));
                    return;
                }
                if (!ended(up)) {
                    return;
                }
                LastHttpContent last;
                MultiMap trailers = up.trailers();
                Buffer trailerFrame = web == null ? null : web.trailers(trailers);
                if (web != null) {
                    trailers = MultiMap.caseInsensitiveMultiMap(); // in the body, as gRPC-Web carries them
                } else if (!http2 && !conn.hcm().http1().enableTrailers()) {
                    // as Envoy's HTTP/1 codec without enable_trailers: the chunked body ends without them
                    trailers = MultiMap.caseInsensitiveMultiMap();
                }
                // an HTTP/2 answer that ended with its head: one HEADERS frame that ends the stream
                HttpResponse headOnly = gz == null && trailerFrame == null && trailers.isEmpty() ? pendingHead : null;
                if (headOnly == null) {
                    writeHead();
                }
                pendingHead = null;
                if (gz != null) {
                    Buffer end = gz.finish(); // the rest of the gzip stream, and its trailer
                    gzip = null;
                    bytesSent += end.length();
                    ch.write(new DefaultHttpContent(((BufferInternal) end).getByteBuf()), ch.voidPromise());
                }
                if (trailerFrame != null) {
                    bytesSent += trailerFrame.length();
                    ch.write(new DefaultHttpContent(((BufferInternal) trailerFrame).getByteBuf()), ch.voidPromise());
                }
                if (headOnly != null && !http2) {
                    HttpUtil.setTransferEncodingChunked(headOnly, false);
                    HttpUtil.setContentLength(headOnly, 0);
                }
                if (headOnly != null) {
                    last = new DefaultFullHttpResponse(headOnly.protocolVersion(), headOnly.status(),
                            Unpooled.EMPTY_BUFFER, headOnly.headers(),
                            io.netty.handler.codec.http.EmptyHttpHeaders.INSTANCE);
                } else if (trailers.isEmpty()) {
                    last = LastHttpContent.EMPTY_LAST_CONTENT;
                } else {
                    last = new DefaultLastHttpContent();
                    trailers.forEach(e -> last.trailingHeaders().add(e.getKey(), e.getValue()));
                }
                long n = bytesSent;
                flushPending = false;
                ch.writeAndFlush(last).addListener(f -> {
                    if (bodyRefused[0]) {
                        // as Envoy's HTTP/2 codec resets a stream whose answer has DATA where none may be: the
                        // exchange is an upstream protocol error (UPE), though the caller got the whole answer
                        router.upstreamBodyFailed(r, n,
                                new IllegalArgumentException("a body on an answer that has none"));
                    } else {
                        router.complete(r, n);
                    }
                    next(ctx, keep && f.isSuccess());
                });
            };
            Handler<Buffer> chunks = upstreamChunk -> {
                if (streaming != up) {
                    return; // given up (the client left, the body failed): what still comes goes nowhere
                }
                r.bodyChunk(upstreamChunk);
                if (!bodyAllowed) {
                    // an answer to HEAD, a 204 or a 304 has no body (an HTTP/1 upstream's framing leaves it off; an
                    // HTTP/2 upstream may still send DATA): none goes to the caller, nor counts as sent; the head
                    // ends the caller's stream, and the upstream stream is reset as Envoy's codec resets it
                    if (upstreamChunk.length() > 0 && !bodyRefused[0]) {
                        bodyRefused[0] = true;
                        cancelLimiter();
                        ends.handle(null);
                        up.request().reset(Http2Error.PROTOCOL_ERROR.code());
                    }
                    return;
                }
                Buffer buf = web == null ? upstreamChunk : web.encode(upstreamChunk);
                if (buf.length() == 0) {
                    return; // a text response's frame still incomplete
                }
                if (gz != null) {
                    buf = gz.compress(buf); // flushed: what came so far goes on now
                }
                ByteBuf bb = ((BufferInternal) buf).getByteBuf();
                writeHead();
                bytesSent += bb.readableBytes();
                // the upstream's chunk is retained for the write; one the gRPC-Web filter made is the write's own
                ch.write(new DefaultHttpContent(buf == upstreamChunk ? bb.retainedDuplicate() : bb),
                        ch.voidPromise());
                if (!ch.isWritable()) {
                    // unflushed bytes count against the high-water mark: flush them, and wait for the drain
                    ch.flush();
                    if (!ch.isWritable() && !paused) {
                        paused = true;
                        up.pause();
                    }
                } else if (!flushPending) {
                    // a body that arrives over several upstream reads streams on: flushed once this turn is over
                    flushPending = true;
                    ch.eventLoop().execute(flushTask);
                }
            };
            // the fault filter's response rate limit, when one applies: the body (and its end) go through it
            StreamRateLimiter rl = r.responseRateLimiter(conn.runtime().context(ch), chunks::handle, up::pause,
                    () -> {
                        if (!paused) {
                            up.resume();
                        }
                    });
            limiter = rl;
            up.handler(rl == null ? chunks : rl::write);
            up.exceptionHandler(t -> upstreamFailed(up, r, t));
            up.endHandler(rl == null ? ends : v -> rl.end(() -> ends.handle(null)));
            // The router hands the response over paused: its body flows from here, what was already read at once.
            up.resume();
            if (flushPending && streaming == up && (bodyAllowed || !http2)) {
                // the rest of the body is still to come: the head and what came so far go out when this turn ends
                // (an HTTP/2 answer without a body waits for its end, so that its head ends the stream)
                ch.eventLoop().execute(flushTask);
            }
        }

        /** Whether {@code up} is the response being sent, which ended: then no response is being sent any more. */
        private boolean ended(HttpClientResponse up) {
            if (streaming != up) {
                return false;
            }
            streaming = null;
            inFlight = null;
            return true;
        }

        /**
         * The upstream body of the response being sent failed ({@code cause}): the request is aborted, the stream
         * reset. An HTTP/1 connection closes once what was passed on is written (the head and the body so far, still
         * unflushed when the body failed in the read that brought the head), as Envoy's connection manager flushes
         * its writes before it closes.
         */
        private void upstreamFailed(HttpClientResponse up, RouterResponse r, Throwable cause) {
            if (streaming == up) {
                streaming = null;
                inFlight = null;
                releaseGzip();
                cancelLimiter();
                conn.runtime().router.upstreamBodyFailed(r, bytesSent, cause);
                if (http2) {
                    // the head that came goes first; then, as Envoy's HTTP/2 codec resets a stream it ends itself,
                    // RST_STREAM NO_ERROR (Netty's close would say CANCEL)
                    writeHead();
                    ctx.channel().writeAndFlush(new io.netty.handler.codec.http2.DefaultHttp2ResetFrame(
                            io.netty.handler.codec.http2.Http2Error.NO_ERROR)).addListener(ChannelFutureListener.CLOSE);
                    return;
                }
                flushPending = false;
                writeHead(); // the head that came goes first
                // an empty content ends nothing (no last chunk); its write completes after those before it
                closeAfter(ctx.channel().writeAndFlush(new DefaultHttpContent(Unpooled.EMPTY_BUFFER)),
                        requestRead());
            }
        }

        /** Stops the response rate limit of the response being sent, which will not end. */
        private void cancelLimiter() {
            if (limiter != null) {
                limiter.cancel();
                limiter = null;
            }
        }

        /** Frees the deflater of the response being compressed, which will not end (its stream failed or closed). */
        private void releaseGzip() {
            if (gzip != null) {
                gzip.release();
                gzip = null;
            }
        }

        /**
         * The HTTP/1 answer's {@code connection} header, as Envoy's connection manager writes it: {@code close} when
         * the connection ends after it, and {@code keep-alive} on an HTTP/1.0 answer when it does not (an HTTP/1.0
         * client takes an answer without it to end the connection).
         */
        private void connectionHeader(HttpResponse resp, HttpVersion version, boolean keepAlive) {
            if (http2) {
                return;
            }
            if (!keepAlive) {
                resp.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            } else if (version.equals(HttpVersion.HTTP_1_0)) {
                resp.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
            }
        }

        /** Sends a response whose body is whole ({@code body}, null for none) in one write, then the next request. */
        private void respondWhole(ChannelHandlerContext ctx, RouterResponse r, Buffer body, HttpVersion version,
                                  boolean keepAlive) {
            ByteBuf content = body == null ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(body.getBytes());
            HttpResponseStatus status = dev.inmesh.runtime.router.ReasonPhrases.status(r.status());
            DefaultFullHttpResponse resp;
            if (r.headers() instanceof HttpHeaders h) {
                resp = new DefaultFullHttpResponse(version, status, content, h, HeadersMultiMap.httpHeaders());
            } else {
                resp = new DefaultFullHttpResponse(version, status, content, RESPONSE_HEADERS, RESPONSE_HEADERS);
                copyHeaders(r.headers(), resp);
            }
            connectionHeader(resp, version, keepAlive);
            if (!http2 && !resp.headers().contains(HttpHeaderNames.CONTENT_LENGTH) && r.status() >= 200
                    && r.status() != 204 && r.status() != 304 && !"HEAD".equals(r.request().method())) {
                // as Envoy's HTTP/1 codec frames a whole answer without one (a gRPC local reply has none; an answer
                // to a HEAD, whose body the router left off, gets none)
                HttpUtil.setContentLength(resp, resp.content().readableBytes());
            }
            long n = resp.content().readableBytes();
            ctx.channel().writeAndFlush(resp).addListener(f -> {
                conn.runtime().router.complete(r, n);
                next(ctx, keepAlive && f.isSuccess());
            });
        }

        /**
         * An upstream response to a gRPC-Web request that is not gRPC ({@link GrpcWeb#buffersResponse}): its body is
         * read (the first 16 KiB kept) and becomes the {@code grpc-message} of headers sent when it ends, with no body.
         */
        private void respondNonGrpc(ChannelHandlerContext ctx, RouterResponse r, GrpcWeb web, HttpVersion version,
                                    boolean keepAlive) {
            HttpClientResponse up = r.upstream();
            streaming = up;
            inFlight = r;
            bytesSent = 0;
            up.handler(chunk -> {
                r.bodyActivity();
                web.keep(chunk);
            });
            up.exceptionHandler(t -> upstreamFailed(up, r, t));
            up.endHandler(v -> {
                if (!ended(up)) {
                    return;
                }
                web.endNonGrpc(r.status(), r.headers(), up.trailers());
                respondWhole(ctx, r, null, version, keepAlive);
            });
            up.resume();
        }

        private void next(ChannelHandlerContext ctx, boolean keepAlive) {
            Channel ch = ctx.channel();
            if (http2) {
                if (body != null && ch.isActive()) {
                    // the answer ended before its request did (an upstream that refused the body unread): as Envoy's
                    // connection manager ends such a stream, RST_STREAM NO_ERROR (RFC 9113 8.1), so that the client
                    // stops sending a body nobody reads. The request was answered: only http2.tx_reset counts it
                    body = null;
                    ch.writeAndFlush(new io.netty.handler.codec.http2.DefaultHttp2ResetFrame(Http2Error.NO_ERROR))
                            .addListener(ChannelFutureListener.CLOSE);
                }
                if (conn.draining() && ch.parent() != null) {
                    // as Envoy's connection manager while its listener drains: its drain sequence (the shutdown
                    // notice, the final GOAWAY drain_timeout later), if not started yet, and the connection closes
                    // once its streams are done
                    ConnectionLifetime.drain(ch.parent());
                }
                return; // the stream ended with the last content
            }
            conn.lifetime().streamEnded();
            if (!keepAlive) {
                boolean read = requestRead();
                refuseFurther();
                closeAfter(ch.newSucceededFuture(), read); // the answer went out
                return;
            }
            busy = false;
            if (timeouts != null) {
                timeouts.previousAnswered();
            }
            if (!pending.isEmpty()) {
                // the next pipelined request, in a task of its own (a local reply completes within this call)
                ch.eventLoop().execute(() -> {
                    if (!busy && !closing && ch.isActive() && pending.poll() instanceof HttpRequest q) {
                        handle(ctx, q);
                        // a streamed request's content that came with it follows it
                        while (pending.peek() instanceof HttpContent c && !(c instanceof HttpRequest)) {
                            bodyContent((HttpContent) pending.poll());
                        }
                        if (body != null && pending.isEmpty() && readPaused && !closing) {
                            readPaused = false; // the rest of its body is still to be read
                            if (!bodyPaused) {
                                ch.config().setAutoRead(true);
                            }
                        }
                    }
                });
                return;
            }
            if (readPaused) {
                readPaused = false;
                if (!bodyPaused) {
                    ch.config().setAutoRead(true); // reads at once
                }
            }
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            if (ctx.channel().isWritable() && paused && streaming != null) {
                paused = false;
                streaming.resume();
            }
            ctx.fireChannelWritabilityChanged();
        }

        private void cancelStreamTimer() {
            if (streamTimer != null) {
                streamTimer.cancel(false);
                streamTimer = null;
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            cancelStreamTimer();
            RouterRequest waiting = awaiting != null ? awaiting : streamed;
            if (waiting != null) {
                // the client went away before an answer (its body streaming or whole): as Envoy on a downstream
                // reset, the attempt is reset
                streamed = null;
                awaiting = null;
                body = null;
                if (codecReset != null) {
                    conn.runtime().router.codecReset(waiting, codecReset);
                } else if (remoteReset != null) {
                    conn.runtime().router.callerReset(waiting, remoteReset);
                } else {
                    conn.runtime().router.cancel(waiting);
                }
            }
            HttpClientResponse up = streaming;
            RouterResponse r = inFlight;
            streaming = null;
            inFlight = null;
            releaseGzip(); // the response being compressed ends here: its deflater's memory is freed now
            cancelLimiter(); // as Envoy's rate limiter when its stream goes: its timer stops
            releasePending();
            if (up != null && r != null) {
                up.request().reset();
                callerGone(r, bytesSent);
            }
            if (timeouts != null && timeouts.headArriving() && !busy && !closing) {
                // the client closed mid-head: as Envoy's stream, begun with the request's first byte, which the close
                // resets (no response, DC, downstream_rq_rx_reset), not a codec error; a request not begun logs none
                var router = conn.runtime().router;
                router.abort(router.localReply(unparsed("HTTP/1.1").startedAt(timeouts.began()), 0, "",
                        "downstream_remote_disconnect", null), 0, ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION);
            }
            ctx.fireChannelInactive();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            LOG.log(Level.FINE, "HTTP connection from " + conn.source() + " failed", cause);
            if (http2 && ctx.channel().isActive()) {
                // the stream is reset: Netty's close of a stream whose request ended resets nothing, and would leave
                // it open unanswered, holding one of the connection's max_concurrent_streams
                ctx.writeAndFlush(new io.netty.handler.codec.http2.DefaultHttp2ResetFrame(Http2Error.INTERNAL_ERROR))
                        .addListener(ChannelFutureListener.CLOSE);
                return;
            }
            ctx.close();
        }

        private static void copyHeaders(MultiMap from, HttpResponse to) {
            for (Map.Entry<String, String> e : from) {
                to.headers().add(e.getKey(), e.getValue());
            }
        }

        /**
         * Refuses a request with a local reply from the router, as Envoy's connection manager sends one: the metrics
         * count it and the access log writes it, with Envoy's response code details. A codec error ({@code codec}:
         * a head Envoy's codec would not have passed on; {@code req} may be null) is answered as Envoy's codec answers
         * it: its status text as the body, flag DPE, and no method, path or authority in the log ({@code "- -
         * HTTP/1.1"}), counted in {@code downstream_cx_protocol_error}. An HTTP/1 connection closes after the answer;
         * nothing more it carried is read as a request.
         */
        private void refuse(ChannelHandlerContext ctx, HttpRequest req, HttpResponseStatus status, String details,
                            boolean codec) {
            RouterRequest rr;
            if (codec || req == null) {
                rr = unparsed(http2 ? "HTTP/2" : req != null && req.protocolVersion().minorVersion() == 0
                        ? "HTTP/1.0" : "HTTP/1.1");
            } else {
                rr = routerRequest(req);
            }
            // as Envoy's connection manager: a request it refuses (not its codec) whose head ended the stream (no
            // body) leaves an HTTP/1 connection open for the next one; after a codec error, for a request with a body
            // (refused at its head, before the body was read, even when the aggregator since read it whole), or for
            // an upgrade or a CONNECT (whose stream Envoy's codec never sees end, and whose refusal Envoy's connection
            // manager follows with a close, so that no request smuggled in what would have been its payload is read),
            // it closes
            boolean keepAlive = !codec && req instanceof FullHttpRequest && (http2 || Http1Requests.keepAlive(req)
                    && !Http1Requests.upgradeOrConnect(req) && !framesABody(req));
            if (!http2) {
                busy = true;
                if (!keepAlive) {
                    refuseFurther();
                }
                if (codec && conn.stats() != null) {
                    conn.stats().protocolError(); // as Envoy's connection manager counts its codec's protocol error
                }
            }
            respond(ctx, conn.runtime().router.localReply(rr, status.code(), codec ? status.reasonPhrase() : "",
                    details, codec ? ResponseFlag.DOWNSTREAM_PROTOCOL_ERROR : null), HttpVersion.HTTP_1_1, keepAlive,
                    false);
        }

        /**
         * Answers an upgrade the connection manager does not take, or a {@code CONNECT}, as the router decides
         * ({@link dev.inmesh.runtime.router.Router#upgradeRefused}: 403 when a route matched it, else 404 NR); an
         * HTTP/1 connection closes after it, and nothing it carried after the head is read as a request.
         */
        private void refuseUpgrade(ChannelHandlerContext ctx, HttpRequest req, boolean connect) {
            RouterRequest rr = routerRequest(req);
            if (!http2) {
                busy = true;
                refuseFurther();
            }
            respond(ctx, conn.runtime().router.upgradeRefused(rr, conn.routes(), conn.clusters(), connect),
                    HttpVersion.HTTP_1_1, http2, false);
        }

        /**
         * Whether an HTTP/1 request head announced a body (chunked, or a {@code content-length} above 0): one Envoy's
         * codec hands on without {@code end_stream}. A chunked body gathered whole has lost its
         * {@code Transfer-Encoding} ({@link RequestBodies}); its content tells it.
         */
        private static boolean framesABody(HttpRequest req) {
            String length = req.headers().get(HttpHeaderNames.CONTENT_LENGTH);
            return req.headers().contains(HttpHeaderNames.TRANSFER_ENCODING)
                    || length != null && !length.trim().equals("0")
                    || req instanceof FullHttpRequest full && full.content().isReadable();
        }

        /**
         * An HTTP/2 stream whose head the codec refused by resetting it, as Envoy's HTTP/2 codec resets it: logged and
         * counted with no response (code 0), flag DPE and the codec's {@code details}.
         */
        private void resetRefused(ChannelHandlerContext ctx, String details) {
            reportReset(conn, details);
            ctx.writeAndFlush(new io.netty.handler.codec.http2.DefaultHttp2ResetFrame(
                    io.netty.handler.codec.http2.Http2Error.INTERNAL_ERROR)).addListener(ChannelFutureListener.CLOSE);
        }

        /**
         * A request whose head was not read whole (a codec error, a request header timeout), answered by the
         * connection manager: counted in its statistics and written to its access logs, as Envoy's.
         */
        private RouterRequest unparsed(String protocol) {
            return HttpBridge.unparsed(conn, protocol);
        }

        private void sendError(ChannelHandlerContext ctx, HttpResponseStatus status) {
            DefaultFullHttpResponse resp = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status);
            resp.headers().set(HttpHeaderNames.CONTENT_LENGTH, 0);
            resp.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
            resp.headers().set(HttpHeaderNames.DATE, HttpDate.now());
            ServerHeader server = conn.hcm().serverHeader();
            if (server.writes(false)) {
                resp.headers().set(HttpHeaderNames.SERVER, server.serverName());
            }
            if (!server.via().isEmpty()) {
                resp.headers().set(HttpHeaderNames.VIA, server.via());
            }
            if (!http2) {
                refuseFurther();
            }
            ChannelFuture written = ctx.writeAndFlush(resp);
            if (!http2) {
                closeAfter(written, false); // a request the proxy could not read
            }
        }

        /**
         * An upgrade (WebSocket): the route table picks the cluster as for any request, then the request head is sent
         * to a host of that cluster and the connection becomes a byte relay, the 101 answer included.
         */
        private void upgrade(ChannelHandlerContext ctx, HttpRequest req) {
            RouterRequest rr = routerRequest(req);
            // as Envoy's connection manager once it made the filter chain for an upgrade it takes (its route known):
            // downstream_cx_upgrades_total, and downstream_cx_upgrades_active until the stream ends (however it ends)
            DownstreamStats stats = conn.stats();
            java.util.concurrent.atomic.AtomicBoolean active = new java.util.concurrent.atomic.AtomicBoolean();
            Runnable taken = () -> {
                if (stats != null && active.compareAndSet(false, true)) {
                    stats.upgradeStarted();
                }
            };
            Runnable upgradeEnded = () -> {
                if (active.compareAndSet(true, false)) {
                    stats.upgradeEnded();
                }
            };
            var decided = conn.runtime().router.relay(rr, conn.routes(), conn.clusters(), taken);
            if (decided.isComplete()) {
                relay(ctx, req, rr, decided.result(), upgradeEnded);
                return;
            }
            // an external authorizer decides: nothing more is read from the caller until it has
            Channel down = ctx.channel();
            down.config().setAutoRead(false);
            decided.onComplete(ar -> down.eventLoop().execute(() -> {
                relay(ctx, req, rr, ar.result(), upgradeEnded);
                down.config().setAutoRead(true);
            }));
        }

        /**
         * The rest of {@link #upgrade}, once the router decided: its answer, or the relay to a host, to which the
         * request's head goes; {@code upgradeEnded} runs when the upgraded stream ends.
         */
        private void relay(ChannelHandlerContext ctx, HttpRequest req, RouterRequest rr,
                           dev.inmesh.runtime.router.Router.Relay decided, Runnable upgradeEnded) {
            Channel down = ctx.channel();
            HttpVersion version = req.protocolVersion();
            var router = conn.runtime().router;
            if (decided.refusal() != null) {
                upgradeEnded.run();
                conn.runtime().context(ctx.channel()).dispatch(() -> respond(ctx, decided.refusal(), version, false,
                        false));
                return;
            }
            RouterResponse relay = decided.started();
            if (!down.isActive()) {
                // the client left while an authorizer decided: its pipeline is gone; the relay ends unstarted
                upgradeEnded.run();
                router.relayEnded(relay, 0, "downstream_remote_disconnect", 0, 0,
                        ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION);
                return;
            }
            RouteResult.Forward f = decided.route();
            UpstreamCluster cluster = decided.cluster();
            Host host = decided.host();
            DefaultHttpRequest head = new DefaultHttpRequest(req.protocolVersion(), req.method(), decided.path());
            for (Map.Entry<String, String> h : rr.headers()) {
                head.headers().add(h.getKey(), h.getValue()); // the router's map: what it and the rules left
            }
            head.headers().set(HttpHeaderNames.HOST, decided.authority());
            ByteBuf encoded = encodeHead(new HttpRequestEncoder(), head, null);
            // an answer the proxy gives in the upstream's place: the router's local reply, and the connection closes
            UpgradeStatus.LocalReplies replies = (status, body) -> {
                RouterResponse r = router.relayLocalReply(relay, status, body);
                DefaultHttpResponse resp = new DefaultHttpResponse(version,
                        dev.inmesh.runtime.router.ReasonPhrases.status(status), RESPONSE_HEADERS);
                copyHeaders(r.headers(), resp);
                resp.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
                return encodeHead(new HttpResponseEncoder(), resp, r.localBody());
            };
            // From here on the connection is bytes: the HTTP handlers go, and what the client sent after its request
            // head (the codec held it, and hands it on as it goes) and sends after it waits in the gate for the
            // upstream's answer: on, unchanged, only after a 101, as Envoy's router holds an upgrade's payload until
            // then (paused_for_websocket_, source/common/router/upstream_request.cc; upstream_codec_filter.cc goes on
            // on a 101)
            var p = down.pipeline();
            UpgradeStatus.Gate gate = new UpgradeStatus.Gate();
            p.addLast("upgrade-gate", gate);
            p.remove("http1-exchange");
            p.remove("http1-bodies");
            p.remove("http1-limits");
            p.remove("http1");
            // read on while the upstream is connected to and answers (the gate holds what comes), so that a client
            // that leaves first is seen then, as Envoy sees a downstream close at any time
            down.config().setAutoRead(true);
            long connectStart = System.nanoTime();
            // the host's addresses raced (a dual-stack pod's), as tcp_proxy's
            conn.runtime().connectHost(down,
                    (int) Math.min(Integer.MAX_VALUE, cluster.config().connectTimeout().toMillis()), cluster, host,
                    dev.inmesh.runtime.upstream.UpstreamTls.requestHost(rr.authority()))
                    .addListener(cf -> {
                        if (cf.isSuccess()) {
                            connectionCounted((Channel) cf.getNow(), router.upstreamStats(f.cluster()), host,
                                    connectStart);
                        }
                        if (!cf.isSuccess() || !down.isActive()) {
                            upgradeEnded.run();
                            encoded.release();
                            if (cf.isSuccess()) {
                                ((Channel) cf.getNow()).close();
                                router.relayEnded(relay, 0, "downstream_remote_disconnect", 0, 0,
                                        ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION);
                            } else {
                                var why = router.relayConnectFailed(relay, cf.cause());
                                ByteBuf refusal = replies.encode(503,
                                        dev.inmesh.runtime.router.Router.upstreamResetBody(why.reason()));
                                router.relayEnded(relay, 503, why.details(), 0,
                                        UpgradeStatus.bodyBytes(refusal), ResponseFlag.UPSTREAM_CONNECTION_FAILURE);
                                gate.drop();
                                closeAfter(down.writeAndFlush(refusal), true); // the upgrade request was read whole
                            }
                            return;
                        }
                        Channel up = (Channel) cf.getNow();
                        // the upstream's answer head through the Lua filters' response scripts, where the request
                        // ran them, and the connection manager's date and server headers: as Envoy's filters and
                        // connection manager give an upgrade's response headers
                        UpgradeStatus status = new UpgradeStatus(gate, down, replies,
                                (code, headers) -> router.relayResponseHead(relay, code, headers), version);
                        up.pipeline().addLast("upgrade-status", status);
                        // the upgrade request is active until its refusal's head comes, or, upgraded, until the
                        // connection closes: a close cuts it short (upstream_cx_destroy_*_with_active_rq)
                        dev.inmesh.runtime.upstream.CloseSide.requestActive(up, true);
                        up.writeAndFlush(encoded);
                        TcpRelay.Counters[] counted = {null};
                        // Envoy's stream idle timeout on the upgraded stream: the route's idle_timeout, else the
                        // connection manager's stream_idle_timeout (5 minutes by default); 0 disables it. Before the
                        // upstream's answer, the client is answered 408 in its place.
                        java.time.Duration idle = dev.inmesh.runtime.router.Router.relayIdleTimeout(rr, f);
                        // and its max_stream_duration: the route's, else the connection manager's, from the
                        // request's start
                        long left = dev.inmesh.runtime.router.Router.relayDurationLeftMillis(rr, f);
                        io.netty.util.concurrent.Future<?>[] lifetime = {null};
                        counted[0] = TcpRelay.join(down, up, idle,
                                () -> status.answerLocally(408, "stream timeout", "stream_idle_timeout",
                                        ResponseFlag.STREAM_IDLE_TIMEOUT), () -> {
                            if (lifetime[0] != null) {
                                lifetime[0].cancel(false);
                            }
                            upgradeEnded.run();
                            relayEnded(router, relay, status, counted[0], up);
                        });
                        if (left > 0) {
                            lifetime[0] = down.eventLoop().schedule(() -> {
                                counted[0].durationReached = true;
                                status.answerLocally(408, "downstream duration timeout", "max_duration_timeout", null);
                                // the client's side closes once its answer is written; the relay then closes the
                                // upstream at once (a close made here)
                                TcpRelay.flushAndClose(down);
                            }, left, java.util.concurrent.TimeUnit.MILLISECONDS);
                        }
                    });
        }

        /**
         * The upstream connection {@code up} of a relayed upgrade, opened to {@code host}, counted as Envoy's HTTP/1
         * pool counts the connection it makes for one: the cluster's {@code upstream_cx_total} and
         * {@code upstream_cx_active} (until it closes), its connect time and length, and the host's {@code cx_total}
         * and {@code cx_active} (/clusters), its close the proxy's ({@code upstream_cx_destroy_local}: a timeout, its
         * own answer, the client gone) or the upstream's, as tcp_proxy's. (A failed connect is counted by the
         * router's {@code relayConnectFailed}.)
         */
        private static void connectionCounted(Channel up, dev.inmesh.runtime.stats.UpstreamStats clusterStats,
                                              Host host, long connectStart) {
            dev.inmesh.runtime.upstream.CloseSide.install(up);
            ConnectionHandler.connectionOpened(up, clusterStats, connectStart);
            host.stats().connectionOpened();
            up.closeFuture().addListener(c -> host.stats().connectionClosed());
        }

        /**
         * Reports a relay that ended, with the answer the client had and how the relay ended; {@code up} its upstream
         * connection, closed.
         */
        private static void relayEnded(dev.inmesh.runtime.router.Router router, RouterResponse relay,
                                       UpgradeStatus status, TcpRelay.Counters c, Channel up) {
            int code = status.code();
            String details;
            ResponseFlag flag;
            if (status.localDetails() != null) {
                details = status.localDetails();
                flag = status.localFlag();
            } else if (c.durationReached) {
                details = "max_duration_timeout";
                flag = null;
            } else if (c.idleTimedOut) {
                details = "stream_idle_timeout";
                flag = ResponseFlag.STREAM_IDLE_TIMEOUT;
            } else if (code == 0) {
                // the client left before any answer
                details = "downstream_remote_disconnect";
                flag = ResponseFlag.DOWNSTREAM_CONNECTION_TERMINATION;
            } else if (code == 101 && dev.inmesh.runtime.upstream.CloseSide.brokenOff(up)) {
                // the upstream reset the upgraded connection: as Envoy's router reports an upstream reset once the
                // response started (a clean close, its FIN, ends the stream as the upstream's)
                details = "upstream_reset_after_response_started{connection_termination}";
                flag = ResponseFlag.UPSTREAM_CONNECTION_TERMINATION;
            } else {
                details = "via_upstream";
                flag = null;
            }
            // the body bytes sent, as Envoy counts them: what the relay sent less the upstream's answer head, or the
            // body of the answer the proxy gave in its place
            router.relayEnded(relay, code, details, c.downstreamToUpstream.get(),
                    Math.max(0, c.upstreamToDownstream.get() - status.headBytes()) + status.localBytes(), flag);
        }

        /**
         * The bytes of an HTTP message's head, and of {@code body} after it (null: none), as {@code encoder} writes
         * them.
         */
        private static ByteBuf encodeHead(io.netty.channel.ChannelHandler encoder, HttpObject head,
                                          io.vertx.core.buffer.Buffer body) {
            EmbeddedChannel channel = new EmbeddedChannel(encoder);
            channel.writeOutbound(head);
            ByteBuf encoded = Unpooled.buffer();
            for (Object o; (o = channel.readOutbound()) != null; ) {
                ByteBuf b = (ByteBuf) o;
                encoded.writeBytes(b);
                b.release();
            }
            channel.finishAndReleaseAll();
            if (body != null) {
                encoded.writeBytes(body.getBytes());
            }
            return encoded;
        }
    }
}
