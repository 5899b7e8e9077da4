package dev.inmesh.interception.proxy;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A TLS ClientHello's server name and ALPN protocols, parsed from the first bytes of a connection as Envoy's
 * tls_inspector does. The hello may span several TLS records; only handshake records are read.
 *
 * @param serverName the SNI host name, or empty
 * @param alpn the ALPN protocols offered, in order
 */
record ClientHello(String serverName, List<String> alpn) {
    /**
     * The most bytes looked at (Envoy's tls_inspector reads at most 64 KiB): a hello still unfinished by then is too
     * large, and the connection is closed.
     */
    static final int MAX_BYTES = 64 * 1024;
    /**
     * The longest ClientHello message a TLS server reads (BoringSSL's limit for a handshake message that carries no
     * certificate chain, which Envoy's tls_inspector parses with): a longer one is not a ClientHello it accepts.
     */
    static final int MAX_HELLO_LENGTH = 16384;

    private static final int HANDSHAKE = 22;
    private static final int CLIENT_HELLO = 1;
    private static final int EXT_SERVER_NAME = 0;
    private static final int EXT_ALPN = 16;

    /**
     * What parsing the bytes so far found; {@link #TOO_LARGE}: {@link #MAX_BYTES} read and the hello still unfinished
     * (TLS records too small to carry it), which Envoy's tls_inspector answers by closing the connection.
     */
    enum Status { HELLO, NEED_MORE, NOT_TLS, TOO_LARGE }

    /** The outcome: a status and, for {@link Status#HELLO}, the hello. */
    record Result(Status status, ClientHello hello) {
        static final Result NEED_MORE = new Result(Status.NEED_MORE, null);
        static final Result NOT_TLS = new Result(Status.NOT_TLS, null);
        static final Result TOO_LARGE = new Result(Status.TOO_LARGE, null);
    }

    /** Whether the bytes start like a TLS handshake record (content type 22, version 3.x). */
    static boolean looksLikeTls(byte[] b, int len) {
        if (len < 1) {
            return true; // undecided
        }
        if ((b[0] & 0xff) != HANDSHAKE) {
            return false;
        }
        return len < 2 || (b[1] & 0xff) == 3;
    }

    /** Parses the first {@code len} bytes of a connection. */
    static Result parse(byte[] b, int len) {
        if (!looksLikeTls(b, len)) {
            return Result.NOT_TLS;
        }
        // Join the payloads of the leading handshake records.
        byte[] hs = new byte[Math.min(len, MAX_BYTES)];
        int hsLen = 0;
        int pos = 0;
        while (true) {
            if (pos + 5 > len) {
                return hsLen > 0 && complete(hs, hsLen) ? finish(hs, hsLen) : needMore(len);
            }
            if ((b[pos] & 0xff) != HANDSHAKE || (b[pos + 1] & 0xff) != 3) {
                return hsLen > 0 && complete(hs, hsLen) ? finish(hs, hsLen) : Result.NOT_TLS;
            }
            int recLen = u16(b, pos + 3);
            if (recLen == 0 || recLen > 16384 + 2048) {
                return Result.NOT_TLS;
            }
            int avail = Math.min(recLen, len - pos - 5);
            int copy = Math.min(avail, hs.length - hsLen);
            System.arraycopy(b, pos + 5, hs, hsLen, copy);
            hsLen += copy;
            if (hsLen >= 4 && u24(hs, 1) > MAX_HELLO_LENGTH) {
                return Result.NOT_TLS;
            }
            if (complete(hs, hsLen)) {
                return finish(hs, hsLen);
            }
            if (avail < recLen) {
                return needMore(len);
            }
            pos += 5 + recLen;
        }
    }

    private static Result needMore(int len) {
        return len >= MAX_BYTES ? Result.TOO_LARGE : Result.NEED_MORE;
    }

    private static boolean complete(byte[] hs, int hsLen) {
        return hsLen >= 4 && hsLen >= 4 + u24(hs, 1);
    }

    private static Result finish(byte[] hs, int hsLen) {
        if ((hs[0] & 0xff) != CLIENT_HELLO) {
            return Result.NOT_TLS;
        }
        int end = 4 + u24(hs, 1);
        try {
            int p = 4 + 2 + 32; // version, random
            p += 1 + (hs[p] & 0xff); // session id
            p += 2 + u16(hs, p); // cipher suites
            p += 1 + (hs[p] & 0xff); // compression methods
            String sni = "";
            List<String> alpn = List.of();
            if (p + 2 <= end) {
                int extEnd = Math.min(end, p + 2 + u16(hs, p));
                p += 2;
                while (p + 4 <= extEnd) {
                    int type = u16(hs, p);
                    int extLen = u16(hs, p + 2);
                    int data = p + 4;
                    if (data + extLen > extEnd) {
                        return Result.NOT_TLS;
                    }
                    if (type == EXT_SERVER_NAME) {
                        sni = serverName(hs, data, data + extLen);
                    } else if (type == EXT_ALPN) {
                        alpn = alpn(hs, data, extLen);
                    }
                    p = data + extLen;
                }
            }
            return new Result(Status.HELLO, new ClientHello(sni, List.copyOf(alpn)));
        } catch (ArrayIndexOutOfBoundsException e) {
            return Result.NOT_TLS;
        }
    }

    /**
     * The ALPN extension's protocols; none when it is malformed (its list not exactly the extension, shorter than a
     * protocol, or a protocol empty or past its end), as Envoy's tls_inspector leaves them to the TLS handshake.
     */
    private static List<String> alpn(byte[] hs, int data, int extLen) {
        if (extLen < 2 || u16(hs, data) != extLen - 2 || extLen - 2 < 2) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        int end = data + extLen;
        for (int q = data + 2; q < end; ) {
            int l = hs[q] & 0xff;
            if (l == 0 || q + 1 + l > end) {
                return List.of();
            }
            out.add(new String(hs, q + 1, l, StandardCharsets.US_ASCII));
            q += 1 + l;
        }
        return out;
    }

    private static String serverName(byte[] hs, int from, int to) {
        int q = from + 2;
        while (q + 3 <= to) {
            int type = hs[q] & 0xff;
            int l = u16(hs, q + 1);
            if (q + 3 + l > to) {
                break;
            }
            if (type == 0) {
                return new String(hs, q + 3, l, StandardCharsets.US_ASCII).toLowerCase(java.util.Locale.ROOT);
            }
            q += 3 + l;
        }
        return "";
    }

    private static int u16(byte[] b, int i) {
        return ((b[i] & 0xff) << 8) | (b[i + 1] & 0xff);
    }

    private static int u24(byte[] b, int i) {
        return ((b[i] & 0xff) << 16) | ((b[i + 1] & 0xff) << 8) | (b[i + 2] & 0xff);
    }
}
