package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import org.junit.jupiter.api.Test;

class ClientHelloTest {

    /** The first flight of a real TLS client (the JDK's), with SNI and ALPN. */
    static byte[] clientHello(String sni, String... alpn) throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, null, null);
        SSLEngine engine = ctx.createSSLEngine(sni, 443);
        engine.setUseClientMode(true);
        SSLParameters params = engine.getSSLParameters();
        if (sni != null) {
            params.setServerNames(List.of(new SNIHostName(sni)));
        }
        params.setApplicationProtocols(alpn);
        engine.setSSLParameters(params);
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] b = new byte[out.remaining()];
        out.get(b);
        return b;
    }

    @Test
    void readsTheServerNameAndAlpnOfARealClientHello() throws Exception {
        byte[] hello = clientHello("reviews.default.svc.cluster.local", "h2", "http/1.1");
        ClientHello.Result r = ClientHello.parse(hello, hello.length);
        assertEquals(ClientHello.Status.HELLO, r.status());
        assertEquals("reviews.default.svc.cluster.local", r.hello().serverName());
        assertEquals(List.of("h2", "http/1.1"), r.hello().alpn());
    }

    @Test
    void aHelloWithoutExtensionsOfInterestHasNoNameAndNoProtocols() throws Exception {
        byte[] hello = clientHello(null);
        ClientHello.Result r = ClientHello.parse(hello, hello.length);
        assertEquals(ClientHello.Status.HELLO, r.status());
        assertEquals("", r.hello().serverName());
        assertEquals(List.of(), r.hello().alpn());
    }

    @Test
    void aMalformedAlpnListGivesNoProtocolsButTheHelloIsStillTls() throws Exception {
        byte[] hello = clientHello("a.example", "h2", "http/1.1");
        byte[] h11 = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        int at = -1;
        for (int i = 0; at < 0 && i + h11.length <= hello.length; i++) {
            if (Arrays.equals(hello, i, i + h11.length, h11, 0, h11.length)) {
                at = i;
            }
        }
        hello[at] = 0; // an empty protocol name, then bytes that are none
        ClientHello.Result r = ClientHello.parse(hello, hello.length);
        assertEquals(ClientHello.Status.HELLO, r.status());
        assertEquals("a.example", r.hello().serverName());
        assertEquals(List.of(), r.hello().alpn());
    }

    @Test
    void aHelloLongerThanATlsServerReadsIsNotTlsAtOnce() {
        // a handshake record whose ClientHello claims 16385 bytes: BoringSSL refuses it as soon as it reads the length
        byte[] b = {22, 3, 1, 0, 4, 1, 0, 0x40, 0x01};
        assertEquals(ClientHello.Status.NOT_TLS, ClientHello.parse(b, b.length).status());
        byte[] max = {22, 3, 1, 0, 4, 1, 0, 0x40, 0x00};
        assertEquals(ClientHello.Status.NEED_MORE, ClientHello.parse(max, max.length).status());
    }

    @Test
    void aHelloStillUnfinishedAfter64KibIsTooLargeAndTheInspectorDropsTheConnection() throws Exception {
        // a 16 KiB hello cut into one-byte handshake records: 64 KiB of them are not enough to finish it
        byte[] b = new byte[(ClientHello.MAX_BYTES + 5) / 6 * 6];
        byte[] header = {1, 0, 0x40, 0x00};
        for (int i = 0; i + 6 <= b.length; i += 6) {
            int at = i / 6;
            b[i] = 22;
            b[i + 1] = 3;
            b[i + 2] = 1;
            b[i + 3] = 0;
            b[i + 4] = 1;
            b[i + 5] = at < header.length ? header[at] : 0;
        }
        assertEquals(ClientHello.Status.NEED_MORE, ClientHello.parse(b, b.length - 6).status());
        assertEquals(ClientHello.Status.TOO_LARGE, ClientHello.parse(b, b.length).status());
        // the HTTP inspector does not get to call it plaintext: the connection is dropped, as Envoy closes it
        assertEquals(ProtocolDetector.Detection.DROP, new ProtocolDetector(true, true).detect(b, b.length));
    }

    @Test
    void asksForMoreUntilTheWholeHelloIsThere() throws Exception {
        byte[] hello = clientHello("a.example", "istio-peer-exchange", "istio");
        for (int len : new int[] {1, 5, 6, 40, hello.length - 1}) {
            assertEquals(ClientHello.Status.NEED_MORE, ClientHello.parse(hello, len).status(), "length " + len);
        }
    }

    @Test
    void readsAHelloSplitOverTwoRecords() throws Exception {
        byte[] hello = clientHello("split.example", "h2");
        int payload = ((hello[3] & 0xff) << 8) | (hello[4] & 0xff);
        int first = payload / 2;
        byte[] two = new byte[hello.length + 5];
        System.arraycopy(hello, 0, two, 0, 5 + first);
        two[3] = (byte) (first >> 8);
        two[4] = (byte) first;
        int rest = payload - first;
        two[5 + first] = 22;
        two[6 + first] = hello[1];
        two[7 + first] = hello[2];
        two[8 + first] = (byte) (rest >> 8);
        two[9 + first] = (byte) rest;
        System.arraycopy(hello, 5 + first, two, 10 + first, rest);
        ClientHello.Result r = ClientHello.parse(two, two.length);
        assertEquals(ClientHello.Status.HELLO, r.status());
        assertEquals("split.example", r.hello().serverName());
        assertEquals(ClientHello.Status.NEED_MORE, ClientHello.parse(two, 5 + first + 3).status());
    }

    @Test
    void anythingThatIsNotAHandshakeRecordIsNotTls() {
        byte[] http = "GET / HTTP/1.1\r\n".getBytes();
        assertEquals(ClientHello.Status.NOT_TLS, ClientHello.parse(http, http.length).status());
        byte[] alert = {21, 3, 3, 0, 2, 2, 40};
        assertEquals(ClientHello.Status.NOT_TLS, ClientHello.parse(alert, alert.length).status());
        byte[] serverHello = {22, 3, 3, 0, 6, 2, 0, 0, 2, 3, 3};
        assertEquals(ClientHello.Status.NOT_TLS, ClientHello.parse(serverHello, serverHello.length).status());
    }

    @Test
    void aTruncatedHelloBodyIsNotTlsRatherThanAnError() throws Exception {
        byte[] hello = clientHello("x.example", "h2");
        byte[] bad = Arrays.copyOf(hello, hello.length);
        // claim a huge session id length: the parse runs off the end of the handshake
        bad[5 + 4 + 2 + 32] = (byte) 0xff;
        assertEquals(ClientHello.Status.NOT_TLS, ClientHello.parse(bad, bad.length).status());
    }
}
