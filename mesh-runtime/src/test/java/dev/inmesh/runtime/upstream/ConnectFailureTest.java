package dev.inmesh.runtime.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.ConnectException;
import org.junit.jupiter.api.Test;

/**
 * A failed connect in Envoy's words, whichever transport reported it: NIO's {@code ConnectException}, Netty's epoll
 * one ({@code finishConnect(..) failed: ...}) wrapped with the address Netty annotates it with, a connect timeout, a
 * failed TLS handshake.
 */
class ConnectFailureTest {

    @Test
    void aRefusedConnectIsARemoteConnectionFailureWithTheSocketsError() {
        for (Throwable t : new Throwable[] {
            new ConnectException("Connection refused"),
            new ConnectException("finishConnect(..) failed: Connection refused: /127.0.0.1:1"),
            new RuntimeException("wrapped", new ConnectException("finishConnect(..) failed: Connection refused"))}) {
            ConnectFailure f = ConnectFailure.of(t);
            assertEquals("remote connection failure", f.resetReason(), t.toString());
            assertEquals("delayed connect error: Connection refused", f.transportFailureReason(), t.toString());
            assertEquals("remote connection failure, transport failure reason: delayed connect error: Connection "
                    + "refused", f.reason());
            assertEquals("upstream_reset_before_response_started{remote_connection_failure|"
                    + "delayed_connect_error:_Connection_refused}", f.details());
            assertFalse(f.timedOut());
        }
        assertEquals("delayed connect error: No route to host",
                ConnectFailure.of(new java.net.NoRouteToHostException("No route to host")).transportFailureReason());
        // a connect error whose cause is not named: the reset reason alone
        ConnectFailure bare = ConnectFailure.of(new ConnectException("something else"));
        assertEquals("remote connection failure", bare.reason());
        assertEquals("upstream_reset_before_response_started{remote_connection_failure}", bare.details());
    }

    @Test
    void aConnectTimeoutIsAConnectionTimeoutWithoutATransportReason() {
        ConnectFailure f = ConnectFailure.of(new io.netty.channel.ConnectTimeoutException(
                "connection timed out after 300 ms: /127.0.0.1:1"));
        assertEquals("connection timeout", f.reason());
        assertNull(f.transportFailureReason());
        assertEquals("upstream_reset_before_response_started{connection_timeout}", f.details());
        assertTrue(f.timedOut());
    }

    @Test
    void aFailedHandshakeIsAConnectionFailureWithTheHandshakesReason() {
        ConnectFailure f = ConnectFailure.of(new javax.net.ssl.SSLHandshakeException(
                "Received fatal alert: certificate_unknown"));
        assertEquals("connection failure", f.resetReason());
        assertTrue(f.transportFailureReason().startsWith("TLS_error:"), f.transportFailureReason());
        assertTrue(f.details().startsWith("upstream_reset_before_response_started{connection_failure|TLS_error:"),
                f.details());
    }

    /** As Envoy's connection, which closes itself when it cannot set its socket options: a local failure. */
    @Test
    void aSocketOptionTheSocketRefusedIsALocalConnectionFailureWithItsReason() {
        ConnectFailure f = ConnectFailure.of(new io.netty.channel.ChannelException("connect",
                new OriginalSrcBind.Refused("original_src: setsockopt(IP_TRANSPARENT) failed: Operation not "
                        + "permitted")));
        assertEquals("local connection failure", f.resetReason());
        assertEquals("original_src: setsockopt(IP_TRANSPARENT) failed: Operation not permitted",
                f.transportFailureReason());
        assertTrue(f.details().startsWith("upstream_reset_before_response_started{local_connection_failure|"),
                f.details());
    }

    @Test
    void anythingElseIsEnvoysPlainConnectionFailure() {
        assertEquals(ConnectFailure.UNKNOWN, ConnectFailure.of(new IllegalStateException("closed")));
        assertEquals("upstream_reset_before_response_started{connection_failure}", ConnectFailure.UNKNOWN.details());
    }
}
