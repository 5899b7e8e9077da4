package dev.inmesh.runtime.router;

import io.vertx.core.MultiMap;
import io.vertx.core.buffer.Buffer;
import java.util.Base64;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * Envoy's gRPC-Web filter ({@code envoy.filters.http.grpc_web}) for one request, as a connection manager that streams
 * the bodies itself applies it: a browser's gRPC-Web request becomes a gRPC request upstream, and the gRPC response
 * becomes a gRPC-Web one, its trailers the last frame of the body. Istio adds the filter to the connection managers of
 * a port whose protocol is gRPC-Web (a Kubernetes port named {@code grpc-web}), whose cluster speaks HTTP/2.
 *
 * <p>A request is gRPC-Web when its {@code content-type} is exactly {@code application/grpc-web},
 * {@code application/grpc-web+proto}, {@code application/grpc-web-text} or {@code application/grpc-web-text+proto}
 * (Envoy implements no other sub-type: {@code +json} passes untouched, as any other request does), whatever its
 * method. Upstream it has {@code content-type: application/grpc}, {@code te: trailers}, no {@code content-length},
 * and {@code grpc-accept-encoding: identity,deflate,gzip} (Envoy's default value, whatever the comment beside it in
 * Envoy's filter says) unless it named its own; its other headers ({@code x-grpc-web},
 * {@code x-user-agent}, {@code accept}) go as they came. A {@code -text} body is base64, decoded as it arrives in
 * groups of four characters, whatever the chunks; the response is base64 too when {@code accept} asks for
 * {@code application/grpc-web-text} (or {@code +proto}), each gRPC frame encoded on its own as Envoy's filter does.
 *
 * <p>The response's {@code content-type} becomes {@code application/grpc-web+proto} (or
 * {@code application/grpc-web-text+proto}) and its {@code content-length} goes. A gRPC response (200 with a gRPC
 * content type, or already gRPC-Web) streams on, its trailers turned into a final frame: flag {@code 0x80}, a 4-byte
 * big-endian length, then {@code name:value\r\n} for each trailer, names in lower case; no HTTP trailers follow. A
 * trailers-only answer stays as it is. Any other response (a 503 with a text body, say) is answered as Envoy's filter
 * answers it: same status, {@code grpc-status} mapped from it ({@link Grpc#fromHttp}, over any the response
 * carries), {@code grpc-message} the first 16 KiB of its body, percent-encoded, and an empty body.
 *
 * <p>One instance per request; not thread-safe (the connection's event loop uses it).
 */
public final class GrpcWeb {
    /** The answer to a {@code -text} body that is not base64, with {@link #DECODE_FAILED} or its bad-size form. */
    public static final String BAD_REQUEST_BODY = "Bad gRPC-web request, invalid base64 data.";
    /** Envoy's response code details for a {@code -text} body with a character outside base64. */
    public static final String DECODE_FAILED = "grpc_base_64_decode_failed";
    /** Envoy's response code details for a {@code -text} body whose length is not a multiple of four. */
    public static final String DECODE_FAILED_BAD_SIZE = "grpc_base_64_decode_failed_bad_size";

    static final String WEB = "application/grpc-web";
    static final String WEB_PROTO = "application/grpc-web+proto";
    static final String TEXT = "application/grpc-web-text";
    static final String TEXT_PROTO = "application/grpc-web-text+proto";
    /** What Envoy's filter sets {@code grpc-accept-encoding} to on a request without one. */
    static final String GRPC_ACCEPT_ENCODING = "identity,deflate,gzip";
    private static final Set<String> CONTENT_TYPES = Set.of(WEB, WEB_PROTO, TEXT, TEXT_PROTO);
    /** The most of a non-gRPC response body that becomes its {@code grpc-message}, as Envoy's filter keeps. */
    static final int MAX_MESSAGE_BYTES = 16 * 1024;
    /** The flag byte of the trailers frame. */
    static final int TRAILERS_FLAG = 0x80;
    private static final int FRAME_HEADER = 5;
    private static final byte[] DECODE = new byte[128];

    static {
        java.util.Arrays.fill(DECODE, (byte) -1);
        String alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (int i = 0; i < alphabet.length(); i++) {
            DECODE[alphabet.charAt(i)] = (byte) i;
        }
    }

    private final boolean textRequest;
    private final boolean textResponse;
    /** Base64 characters of the request body not yet decoded: fewer than four. */
    private final byte[] quartet = new byte[4];
    private int quartetLength;
    /** Why the request body could not be decoded ({@link #DECODE_FAILED} or its bad-size form), or null. */
    private String failure;
    /** Whether the response needs Envoy's translation of a non-gRPC response (see {@link #responseHeaders}). */
    private boolean nonGrpcResponse;
    /** A text response's bytes that are not a whole gRPC frame yet; null before any. */
    private Buffer partialFrame;
    /** The start of a non-gRPC response's body, for its {@code grpc-message}. */
    private Buffer kept;

    private GrpcWeb(boolean textRequest, boolean textResponse) {
        this.textRequest = textRequest;
        this.textResponse = textResponse;
    }

    /**
     * Whether a request is gRPC-Web: its first {@code content-type} is one of the four gRPC-Web types, exactly (case
     * and parameters count, as Envoy compares it).
     */
    public static boolean isRequest(MultiMap headers) {
        String ct = headers.get(HeaderNames.CONTENT_TYPE);
        return ct != null && CONTENT_TYPES.contains(ct);
    }

    /**
     * Translates a gRPC-Web request's headers for its gRPC upstream, in place, and returns the translation for its
     * body and response; null (the headers untouched) for any other request.
     */
    public static GrpcWeb request(MultiMap headers) {
        if (!isRequest(headers)) {
            return null;
        }
        String ct = headers.get(HeaderNames.CONTENT_TYPE);
        String accept = headers.get("accept");
        GrpcWeb web = new GrpcWeb(ct.equals(TEXT) || ct.equals(TEXT_PROTO),
                TEXT.equals(accept) || TEXT_PROTO.equals(accept));
        // the body changes length (base64), and an HTTP/1 length does not describe HTTP/2 frames anyway
        headers.remove("content-length");
        headers.set(HeaderNames.CONTENT_TYPE, "application/grpc");
        headers.set(HeaderNames.TE, "trailers");
        if (!headers.contains("grpc-accept-encoding")) {
            headers.set("grpc-accept-encoding", GRPC_ACCEPT_ENCODING);
        }
        return web;
    }

    /** Whether the request body is base64 ({@code application/grpc-web-text}). */
    public boolean textRequest() {
        return textRequest;
    }

    /** Whether the response body is to be base64 (the request's {@code accept} asked for the text form). */
    public boolean textResponse() {
        return textResponse;
    }

    /**
     * The request body as the upstream gets it: a binary body as it is, a text one decoded. A whole body is checked
     * as the last chunk; null when it is not valid base64 ({@link #failure()} says why).
     */
    public Buffer decodeWhole(Buffer body) {
        return decode(body == null ? Buffer.buffer() : body, true);
    }

    /**
     * A chunk of the request body as the upstream gets it: a binary chunk as it is; of a text body, what the base64
     * characters so far decode to (a group of four split between chunks waits for the rest). Null when the body is
     * not valid base64 (then and after: {@link #failure()} says why): a character outside the alphabet, padding
     * before the end of a group, or, on the {@code last} chunk, a length that is not a multiple of four.
     */
    public Buffer decode(Buffer chunk, boolean last) {
        if (!textRequest) {
            return chunk;
        }
        if (failure != null) {
            return null;
        }
        int n = chunk == null ? 0 : chunk.length();
        if (last && (quartetLength + n) % 4 != 0) {
            failure = DECODE_FAILED_BAD_SIZE;
            return null;
        }
        byte[] out = new byte[(quartetLength + n) / 4 * 3];
        int o = 0;
        for (int i = 0; i < n; i++) {
            quartet[quartetLength++] = chunk.getByte(i);
            if (quartetLength == 4) {
                quartetLength = 0;
                int d = decodeQuartet(out, o);
                if (d < 0) {
                    failure = DECODE_FAILED;
                    return null;
                }
                o += d;
            }
        }
        return Buffer.buffer(o == out.length ? out : java.util.Arrays.copyOf(out, o));
    }

    /** Decodes {@link #quartet} into {@code out} at {@code at}: the bytes written, -1 when it is not base64. */
    private int decodeQuartet(byte[] out, int at) {
        int pad = quartet[3] == '=' ? quartet[2] == '=' ? 2 : 1 : 0;
        int bits = 0;
        for (int i = 0; i < 4 - pad; i++) {
            int c = quartet[i];
            int v = c < 0 ? -1 : DECODE[c];
            if (v < 0) {
                return -1;
            }
            bits = bits << 6 | v;
        }
        bits <<= 6 * pad;
        int bytes = 3 - pad;
        for (int i = 0; i < bytes; i++) {
            out[at + i] = (byte) (bits >> 16 - 8 * i);
        }
        return bytes;
    }

    /** Why the request body could not be decoded: {@link #DECODE_FAILED} or its bad-size form; null while it could. */
    public String failure() {
        return failure;
    }

    /**
     * Translates the response's headers, in place, before they go downstream: its gRPC-Web content type, no
     * {@code content-length}. Then {@link #buffersResponse()} says whether its body streams through {@link #encode}
     * and {@link #trailers}, or is kept for {@link #endNonGrpc}.
     */
    public void responseHeaders(int status, MultiMap headers) {
        String ct = headers.get(HeaderNames.CONTENT_TYPE);
        nonGrpcResponse = status != 200 || !Grpc.isContentType(ct) && !protoEncoded(ct);
        headers.remove("content-length");
        headers.set(HeaderNames.CONTENT_TYPE, textResponse ? TEXT_PROTO : WEB_PROTO);
    }

    /** Whether a content type is already gRPC-Web with proto encoding, parameters and case aside (as Envoy's test). */
    private static boolean protoEncoded(String ct) {
        if (ct == null) {
            return false;
        }
        int semicolon = ct.indexOf(';');
        String type = (semicolon < 0 ? ct : ct.substring(0, semicolon)).strip();
        return type.equalsIgnoreCase(WEB) || type.equalsIgnoreCase(WEB_PROTO);
    }

    /**
     * Whether the response is not gRPC: its body is not passed on but kept ({@link #keep}) for the
     * {@code grpc-message} that {@link #endNonGrpc} sets, the headers going downstream only then.
     */
    public boolean buffersResponse() {
        return nonGrpcResponse;
    }

    /**
     * A chunk of a gRPC response's body as it goes downstream: as it is for a binary response; for a text one, the
     * gRPC frames it completes, each base64-encoded on its own (empty while a frame is still incomplete).
     */
    public Buffer encode(Buffer chunk) {
        if (!textResponse) {
            return chunk;
        }
        Buffer in = partialFrame == null || partialFrame.length() == 0 ? chunk
                : partialFrame.appendBuffer(chunk);
        Buffer out = Buffer.buffer();
        int at = 0;
        while (in.length() - at >= FRAME_HEADER) {
            long length = in.getUnsignedInt(at + 1);
            if (in.length() - at - FRAME_HEADER < length) {
                break;
            }
            int end = at + FRAME_HEADER + (int) length;
            out.appendBytes(Base64.getEncoder().encode(in.getBytes(at, end)));
            at = end;
        }
        partialFrame = at == in.length() ? null : in.getBuffer(at, in.length());
        return out;
    }

    /**
     * A gRPC response's trailers as the last frame of its body (base64 for a text response), or null when it has
     * none: the trailers themselves are not sent.
     */
    public Buffer trailers(MultiMap trailers) {
        if (trailers == null || trailers.isEmpty()) {
            return null;
        }
        StringBuilder b = new StringBuilder();
        for (Map.Entry<String, String> e : trailers) {
            b.append(e.getKey().toLowerCase(Locale.ROOT)).append(':').append(e.getValue()).append("\r\n");
        }
        byte[] text = b.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Buffer frame = Buffer.buffer(FRAME_HEADER + text.length).appendByte((byte) TRAILERS_FLAG)
                .appendInt(text.length).appendBytes(text);
        return textResponse ? Buffer.buffer(Base64.getEncoder().encode(frame.getBytes())) : frame;
    }

    /** Keeps a chunk of a non-gRPC response's body, up to the first 16 KiB, for its {@code grpc-message}. */
    public void keep(Buffer chunk) {
        if (kept == null) {
            kept = Buffer.buffer();
        }
        int room = MAX_MESSAGE_BYTES - kept.length();
        if (room > 0 && chunk != null) {
            kept.appendBuffer(chunk.length() <= room ? chunk : chunk.getBuffer(0, room));
        }
    }

    /**
     * Ends a non-gRPC response, whose body was {@link #keep kept}, as Envoy's filter does: its headers (already
     * translated by {@link #responseHeaders}) get {@code grpc-status}, mapped from {@code status} (over one they
     * carry: a refusal's RESOURCE_EXHAUSTED too, as Envoy's local reply to gRPC-Web carries none), {@code grpc-message} (the body, percent-encoded) and {@code content-length: 0}; no body follows. A response
     * that had neither body nor trailers is left as it is (a trailers-only answer among them), with that length.
     */
    public void endNonGrpc(int status, MultiMap headers, MultiMap trailers) {
        headers.set("content-length", "0");
        if ((kept == null || kept.length() == 0) && (trailers == null || trailers.isEmpty())) {
            return;
        }
        // whatever grpc-status it carried, as Envoy's filter sets it
        headers.set(HeaderNames.GRPC_STATUS, Integer.toString(Grpc.fromHttp(status)));
        headers.set(HeaderNames.GRPC_MESSAGE, Grpc.percentEncode(kept == null ? new byte[0] : kept.getBytes()));
        kept = null;
    }

    /**
     * A local reply to the request, translated as the filter translates any response: the headers in place, and the
     * body to send instead of {@code body} (empty for a non-gRPC answer), with its {@code content-length}.
     */
    public Buffer localReply(int status, MultiMap headers, Buffer body) {
        responseHeaders(status, headers);
        Buffer out;
        if (nonGrpcResponse) {
            keep(body);
            endNonGrpc(status, headers, null);
            out = Buffer.buffer();
        } else {
            out = body == null ? Buffer.buffer() : encode(body);
        }
        headers.set("content-length", Integer.toString(out.length()));
        return out;
    }
}
