package dev.inmesh.runtime.testing;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Loopback ports for a test to listen on or to find closed. */
public final class LoopbackPorts {
    /** The ports {@link #freePort} handed out in this JVM. */
    private static final Set<Integer> HANDED_OUT = ConcurrentHashMap.newKeySet();

    private LoopbackPorts() {}

    /**
     * A loopback port free now (bound and released) and not handed out before in this JVM: the kernel may give the
     * same ephemeral port to two calls in a row, and a test that asks for two ports (two listeners) then got one port
     * twice (seen on Temurin 25 in a full build: the second listener was refused as a duplicate address).
     */
    public static int freePort() throws IOException {
        for (int attempt = 0; ; attempt++) {
            try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
                if (HANDED_OUT.add(s.getLocalPort()) || attempt >= 100) {
                    return s.getLocalPort();
                }
            }
        }
    }
}
